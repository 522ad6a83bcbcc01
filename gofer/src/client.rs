//! The gofer client used by the sentry's gofer-backed file system.
//!
//! One request is in flight at a time (a Mutex serializes request/response).
//! Replies are validated: anything malformed or not matching the request is
//! `EIO`; a transport failure (peer hangup, send/recv error) also gives `EIO`
//! and marks the client broken so every later call fails fast with `EIO`.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use abi::linux::Stat;
use abi::Errno;

use crate::proto::{self, Dirent, Request, Response, StatFs, MAX_FRAME, MAX_WALK};
use crate::sys;
use crate::Handle;

pub struct Client {
    sock: OwnedFd,
    state: Mutex<State>,
}

struct State {
    broken: bool,
    buf: Vec<u8>,
}

fn reply_errno(e: i32) -> Errno {
    if (1..4096).contains(&e) {
        Errno(e)
    } else {
        Errno::EIO
    }
}

impl Client {
    pub fn new(sock: OwnedFd) -> Client {
        Client {
            sock,
            state: Mutex::new(State {
                broken: false,
                buf: vec![0u8; MAX_FRAME + 1],
            }),
        }
    }

    /// One round trip. Returns the reply (never `Response::Error`) and the fd that came
    /// with an `Open` reply.
    fn call(&self, req: &Request) -> Result<(Response, Option<OwnedFd>), Errno> {
        let frame = req.encode();
        if frame.len() > MAX_FRAME {
            return Err(Errno::EINVAL);
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.broken {
            return Err(Errno::EIO);
        }
        if let Err(e) = sys::send(self.sock.as_fd(), &frame, None) {
            tracing::warn!(error = %e, "gofer client: send failed");
            st.broken = true;
            return Err(Errno::EIO);
        }
        let r = match sys::recv(self.sock.as_fd(), &mut st.buf) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "gofer client: recv failed");
                st.broken = true;
                return Err(Errno::EIO);
            }
        };
        if r.len == 0 && r.fds.is_empty() {
            st.broken = true; // hangup
            return Err(Errno::EIO);
        }
        if r.truncated || r.len > MAX_FRAME {
            return Err(Errno::EIO); // fds in `r` are closed on drop
        }
        let resp = Response::decode(&st.buf[..r.len]).map_err(|_| Errno::EIO)?;
        let mut fds = r.fds;
        match (&resp, fds.len()) {
            (Response::Error(e), 0) => Err(reply_errno(*e)),
            (Response::Open, 1) => Ok((resp, fds.pop())),
            (Response::Open, _) => Err(Errno::EIO),
            (_, 0) => Ok((resp, None)),
            _ => Err(Errno::EIO),
        }
    }

    /// The root of the served tree (a fresh handle each call).
    pub fn mount(&self) -> Result<(Handle, Stat), Errno> {
        match self.call(&Request::Mount)? {
            (Response::Mount { handle, stat }, _) => Ok((handle, stat)),
            _ => Err(Errno::EIO),
        }
    }

    /// Looks up one name in directory `dir` (no symlink following). ENOENT, ENOTDIR, EINVAL for bad names.
    pub fn walk(&self, dir: Handle, name: &[u8]) -> Result<(Handle, Stat), Errno> {
        let (mut v, err) = self.walk_partial(dir, &[name]);
        match (v.pop(), err) {
            (Some(n), None) => Ok(n),
            (_, Some(e)) => Err(e),
            (None, None) => Err(Errno::EIO),
        }
    }

    /// Walks several names; returns the nodes found, stopping at the first failure
    /// (empty vec + Err if the first fails; a shorter Ok vec if a later one fails).
    pub fn walk_many(&self, dir: Handle, names: &[&[u8]]) -> Result<Vec<(Handle, Stat)>, Errno> {
        match self.walk_partial(dir, names) {
            (v, Some(e)) if v.is_empty() => Err(e),
            (v, _) => Ok(v),
        }
    }

    /// Like [`walk_many`](Self::walk_many) but also returns the errno that stopped the
    /// walk (None when every name was walked). Any number of names (split into
    /// requests of at most [`MAX_WALK`]).
    pub fn walk_partial(
        &self,
        dir: Handle,
        names: &[&[u8]],
    ) -> (Vec<(Handle, Stat)>, Option<Errno>) {
        let mut out = Vec::with_capacity(names.len());
        let mut cur = dir;
        for chunk in names.chunks(MAX_WALK) {
            let mut valid = chunk.len();
            if let Some(i) = chunk.iter().position(|n| !proto::valid_name(n)) {
                valid = i;
            }
            let mut err = None;
            if valid > 0 {
                let req = Request::Walk {
                    dir: cur,
                    names: chunk[..valid].iter().map(|n| n.to_vec()).collect(),
                };
                match self.call(&req) {
                    Ok((Response::Walk { nodes, error }, _)) => {
                        let ok = if error == 0 {
                            nodes.len() == valid
                        } else {
                            nodes.len() < valid
                        };
                        if !ok {
                            for (h, _) in &nodes {
                                self.close(*h);
                            }
                            return (out, Some(Errno::EIO));
                        }
                        if error != 0 {
                            err = Some(reply_errno(error));
                        }
                        out.extend(nodes);
                    }
                    Ok(_) => err = Some(Errno::EIO),
                    Err(e) => err = Some(e),
                }
            }
            if err.is_none() && valid < chunk.len() {
                err = Some(Errno::EINVAL);
            }
            if err.is_some() {
                return (out, err);
            }
            if let Some(&(h, _)) = out.last() {
                cur = h;
            }
        }
        (out, None)
    }

    /// Fresh stat of a node (fstatat on it; symlinks not followed).
    pub fn stat(&self, h: Handle) -> Result<Stat, Errno> {
        match self.call(&Request::Stat { handle: h })? {
            (Response::Stat(s), _) => Ok(s),
            _ => Err(Errno::EIO),
        }
    }

    /// Opens the node and returns the host fd. See the crate docs for flag handling.
    pub fn open(&self, h: Handle, flags: i32) -> Result<OwnedFd, Errno> {
        match self.call(&Request::Open { handle: h, flags })? {
            (Response::Open, Some(fd)) => Ok(fd),
            _ => Err(Errno::EIO),
        }
    }

    /// The target of a symlink node (EINVAL if it is not a symlink).
    pub fn readlink(&self, h: Handle) -> Result<Vec<u8>, Errno> {
        match self.call(&Request::Readlink { handle: h })? {
            (Response::Readlink(t), _) => Ok(t),
            _ => Err(Errno::EIO),
        }
    }

    /// Directory entries starting at `offset` (0 = start, and re-reads the directory;
    /// each entry carries the offset of the NEXT entry), at most about `max_bytes`
    /// per reply (always at least one entry unless at the end). Empty = end.
    /// Includes "." and "..".
    pub fn getdents(&self, h: Handle, offset: u64, max_bytes: u32) -> Result<Vec<Dirent>, Errno> {
        match self.call(&Request::Getdents {
            handle: h,
            offset,
            max_bytes,
        })? {
            (Response::Getdents(v), _) => {
                if v.iter()
                    .all(|d| proto::valid_name(&d.name) || d.name == b"." || d.name == b"..")
                {
                    Ok(v)
                } else {
                    Err(Errno::EIO)
                }
            }
            _ => Err(Errno::EIO),
        }
    }

    pub fn statfs(&self, h: Handle) -> Result<StatFs, Errno> {
        match self.call(&Request::StatFs { handle: h })? {
            (Response::StatFs(s), _) => Ok(s),
            _ => Err(Errno::EIO),
        }
    }

    /// Releases a handle (best effort; errors ignored).
    pub fn close(&self, h: Handle) {
        let _ = self.call(&Request::Close { handle: h });
    }
}
