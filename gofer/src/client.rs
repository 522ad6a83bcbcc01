//! The gofer client used by the sentry's gofer-backed file system.
//!
//! One request is in flight at a time (a Mutex serializes request/response).
//! Replies are validated: anything malformed or not matching the request is
//! `EIO`; a transport failure (peer hangup, send/recv error) also gives `EIO`
//! and marks the client broken so every later call fails fast with `EIO`.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use abi::linux::{Stat, Timespec, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
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

    /// Blocks until the gofer hangs up (its end of the socket closed: it
    /// exited or was killed), then marks the client broken so that every later
    /// call fails at once with EIO. Meant for a watcher thread: a request in
    /// flight sees the hangup itself.
    pub fn wait_hangup(&self) {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.sock);
        loop {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLRDHUP,
                revents: 0,
            };
            // SAFETY: poll on one pollfd we own; it reads nothing from the socket.
            let r = unsafe { libc::poll(&mut p, 1, -1) };
            if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            if r < 0
                || p.revents & (libc::POLLHUP | libc::POLLRDHUP | libc::POLLERR | libc::POLLNVAL)
                    != 0
            {
                break;
            }
        }
        self.state.lock().unwrap_or_else(|p| p.into_inner()).broken = true;
    }

    /// One round trip. Returns the reply (never `Response::Error`) and the fd that came
    /// with an `Open` or `Create` reply.
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
            (Response::Open | Response::Create { .. }, 1) => Ok((resp, fds.pop())),
            (Response::Open | Response::Create { .. }, _) => Err(Errno::EIO),
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

    /// [`proto::validate`]s `req` locally (no round trip for bad arguments), then sends it.
    fn call_checked(&self, req: &Request) -> Result<(Response, Option<OwnedFd>), Errno> {
        proto::validate(req)?;
        self.call(req)
    }

    /// Checks a new node's reply: its file type must be `kind`, else the handle is
    /// released and the result is EIO.
    fn new_node(&self, handle: Handle, stat: Stat, kind: u32) -> Result<(Handle, Stat), Errno> {
        if stat.mode & S_IFMT != kind {
            self.close(handle);
            return Err(Errno::EIO);
        }
        Ok((handle, stat))
    }

    /// Creates and opens a new regular file `name` in directory `dir`.
    ///
    /// `flags`: access mode plus O_TRUNC/O_APPEND/O_NONBLOCK/O_DSYNC/O_SYNC/O_LARGEFILE
    /// (O_CREAT, O_EXCL, O_CLOEXEC accepted and implied; anything else EINVAL). The file
    /// never exists beforehand: an existing name of any type gives EEXIST (the caller
    /// handles O_CREAT without O_EXCL by walking first). `mode`: permission bits only
    /// (no umask is applied), `uid`/`gid`: the owner (u32::MAX = the gofer's own id;
    /// other ids need a privileged gofer, else EPERM and nothing is created).
    /// Returns the new node and the opened host fd (close-on-exec).
    /// Errors: EINVAL (bad name/flags/mode), EEXIST, ENOTDIR, EROFS, EBADF, host errnos.
    pub fn create(
        &self,
        dir: Handle,
        name: &[u8],
        flags: i32,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(Handle, Stat, OwnedFd), Errno> {
        let req = Request::Create {
            dir,
            name: name.to_vec(),
            flags,
            mode,
            uid,
            gid,
        };
        match self.call_checked(&req)? {
            (Response::Create { handle, stat }, Some(fd)) => {
                let (h, st) = self.new_node(handle, stat, S_IFREG)?;
                Ok((h, st, fd))
            }
            _ => Err(Errno::EIO),
        }
    }

    /// Creates directory `name` in `dir` with permission bits `mode` (exactly; no umask)
    /// owned by `uid`/`gid` (u32::MAX = unchanged). Errors as for [`create`](Self::create).
    pub fn mkdir(
        &self,
        dir: Handle,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(Handle, Stat), Errno> {
        let req = Request::Mkdir {
            dir,
            name: name.to_vec(),
            mode,
            uid,
            gid,
        };
        match self.call_checked(&req)? {
            (Response::Node { handle, stat }, _) => self.new_node(handle, stat, S_IFDIR),
            _ => Err(Errno::EIO),
        }
    }

    /// Creates a regular file (type S_IFREG or 0), FIFO (S_IFIFO) or socket node
    /// (S_IFSOCK) `name` in `dir`; `mode` = type | permission bits. Device nodes give
    /// EPERM, other types EINVAL; `rdev` is ignored. Nothing is opened.
    pub fn mknod(
        &self,
        dir: Handle,
        name: &[u8],
        mode: u32,
        rdev: u64,
        uid: u32,
        gid: u32,
    ) -> Result<(Handle, Stat), Errno> {
        let req = Request::Mknod {
            dir,
            name: name.to_vec(),
            mode,
            rdev,
            uid,
            gid,
        };
        let kind = match mode & S_IFMT {
            0 => S_IFREG,
            k => k,
        };
        match self.call_checked(&req)? {
            (Response::Node { handle, stat }, _) => self.new_node(handle, stat, kind),
            _ => Err(Errno::EIO),
        }
    }

    /// Creates symlink `name` in `dir` with the opaque `target` (non-empty, no NUL,
    /// shorter than PATH_MAX: else EINVAL / ENAMETOOLONG); the gofer never resolves it.
    pub fn symlink(
        &self,
        dir: Handle,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<(Handle, Stat), Errno> {
        let req = Request::Symlink {
            dir,
            name: name.to_vec(),
            target: target.to_vec(),
            uid,
            gid,
        };
        match self.call_checked(&req)? {
            (Response::Node { handle, stat }, _) => self.new_node(handle, stat, S_IFLNK),
            _ => Err(Errno::EIO),
        }
    }

    /// Hard-links the node `target` as `name` in `dir`; returns the (shared) inode's
    /// fresh stat. Directories give EPERM; a `target` whose name was replaced, ESTALE.
    pub fn link(&self, dir: Handle, name: &[u8], target: Handle) -> Result<Stat, Errno> {
        let req = Request::Link {
            dir,
            name: name.to_vec(),
            target,
        };
        match self.call_checked(&req)? {
            (Response::Stat(s), _) => Ok(s),
            _ => Err(Errno::EIO),
        }
    }

    /// Removes `name` from `dir`: `flags` 0 for a non-directory (EISDIR otherwise),
    /// `libc::AT_REMOVEDIR` for an empty directory (ENOTDIR, ENOTEMPTY). Handles to the
    /// removed node still stat the old inode; name-based ops on them give ENOENT.
    pub fn unlink(&self, dir: Handle, name: &[u8], flags: i32) -> Result<(), Errno> {
        let req = Request::Unlink {
            dir,
            name: name.to_vec(),
            flags,
        };
        match self.call_checked(&req)? {
            (Response::Ok, _) => Ok(()),
            _ => Err(Errno::EIO),
        }
    }

    /// renameat2(old_dir/old_name, new_dir/new_name, flags) with flags 0,
    /// [`proto::RENAME_NOREPLACE`] or [`proto::RENAME_EXCHANGE`]. Handles of the moved
    /// node(s) follow the rename; handles of a replaced target become stale (ESTALE).
    pub fn rename(
        &self,
        old_dir: Handle,
        old_name: &[u8],
        new_dir: Handle,
        new_name: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        let req = Request::Rename {
            old_dir,
            old_name: old_name.to_vec(),
            new_dir,
            new_name: new_name.to_vec(),
            flags,
        };
        match self.call_checked(&req)? {
            (Response::Ok, _) => Ok(()),
            _ => Err(Errno::EIO),
        }
    }

    /// Sets the attributes selected by `mask` ([`proto::setstat`] bits; unknown bits,
    /// ATIME with ATIME_NOW, MTIME with MTIME_NOW, mode bits beyond 0o7777, size beyond
    /// i64::MAX or nsec outside 0..1e9: EINVAL), in the order size (regular files only;
    /// directories EISDIR, others EINVAL), owner, mode (symlinks EOPNOTSUPP), times.
    /// Returns the fresh stat. ESTALE if the handle's name now names another inode.
    #[allow(clippy::too_many_arguments)]
    pub fn setstat(
        &self,
        h: Handle,
        mask: u32,
        mode: u32,
        uid: u32,
        gid: u32,
        size: u64,
        atime: Timespec,
        mtime: Timespec,
    ) -> Result<Stat, Errno> {
        let req = Request::SetStat {
            handle: h,
            mask,
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
        };
        match self.call_checked(&req)? {
            (Response::Stat(s), _) => Ok(s),
            _ => Err(Errno::EIO),
        }
    }

    /// The value of xattr `name` ("user." namespace only, else
    /// EOPNOTSUPP). `size` 0 = any length up to [`proto::MAX_XATTR_SIZE`] (longer: E2BIG);
    /// otherwise ERANGE when the value is longer than `size`. ENODATA if absent;
    /// EOPNOTSUPP on symlinks and special files.
    pub fn getxattr(&self, h: Handle, name: &[u8], size: u32) -> Result<Vec<u8>, Errno> {
        let req = Request::GetXattr {
            handle: h,
            name: name.to_vec(),
            size,
        };
        match self.call_checked(&req)? {
            (Response::Xattr(v), _) if size == 0 || v.len() <= size as usize => Ok(v),
            _ => Err(Errno::EIO),
        }
    }

    /// The node's xattr names in the passed-through namespaces, each NUL-terminated.
    /// `size` as for [`getxattr`](Self::getxattr).
    pub fn listxattr(&self, h: Handle, size: u32) -> Result<Vec<u8>, Errno> {
        let req = Request::ListXattr { handle: h, size };
        match self.call_checked(&req)? {
            (Response::Xattr(v), _)
                if (size == 0 || v.len() <= size as usize)
                    && (v.is_empty() || v.last() == Some(&0))
                    && v.split(|&c| c == 0)
                        .filter(|n| !n.is_empty())
                        .all(|n| proto::check_xattr_name(n).is_ok()) =>
            {
                Ok(v)
            }
            _ => Err(Errno::EIO),
        }
    }

    /// Sets xattr `name` to `value` (at most [`proto::MAX_XATTR_SIZE`] bytes, else E2BIG);
    /// `flags` 0, [`proto::XATTR_CREATE`] (EEXIST if present) or [`proto::XATTR_REPLACE`]
    /// (ENODATA if absent).
    pub fn setxattr(&self, h: Handle, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno> {
        let req = Request::SetXattr {
            handle: h,
            name: name.to_vec(),
            value: value.to_vec(),
            flags,
        };
        match self.call_checked(&req)? {
            (Response::Ok, _) => Ok(()),
            _ => Err(Errno::EIO),
        }
    }

    /// Removes xattr `name` (ENODATA if absent).
    pub fn removexattr(&self, h: Handle, name: &[u8]) -> Result<(), Errno> {
        let req = Request::RemoveXattr {
            handle: h,
            name: name.to_vec(),
        };
        match self.call_checked(&req)? {
            (Response::Ok, _) => Ok(()),
            _ => Err(Errno::EIO),
        }
    }

    /// Releases a handle (best effort; errors ignored).
    pub fn close(&self, h: Handle) {
        let _ = self.call(&Request::Close { handle: h });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hangup_breaks_the_client() {
        let (a, b) = crate::socketpair().unwrap();
        let c = std::sync::Arc::new(Client::new(a));
        let c2 = c.clone();
        let watcher = std::thread::spawn(move || c2.wait_hangup());
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!watcher.is_finished(), "no hangup yet");
        drop(b);
        watcher.join().unwrap();
        assert_eq!(c.mount().err(), Some(Errno::EIO));
    }
}
