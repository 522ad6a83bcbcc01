//! The gofer server: serves one directory tree over a SOCK_SEQPACKET socket.
//!
//! Security model: every host path is reached with `openat(parent_fd, name,
//! O_PATH | O_NOFOLLOW)` one validated component at a time starting at the root
//! fd, so nothing outside the root is ever reachable (no "..", no '/', symlinks
//! never followed, no /proc magic links). Only regular files and directories are
//! ever opened for I/O; opens are re-checked against the walked inode.
//! Every frame from the peer is untrusted: malformed frames get `EINVAL`,
//! unknown handles `EBADF`; nothing the peer sends can make the server panic.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

use abi::linux::{Stat, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use abi::Errno;

use crate::proto::{
    self, Dirent, Request, Response, StatFs, DIRENT_OVERHEAD, MAX_DIRENT_BYTES, MAX_FRAME,
};
use crate::sys;
use crate::Handle;

/// Most live handles per connection (beyond it, walks and mounts fail with ENFILE).
pub const MAX_NODES: usize = 1 << 20;

/// Open flags the peer may pass; everything else is stripped.
const ALLOWED_OPEN_FLAGS: i32 = libc::O_ACCMODE
    | libc::O_DIRECTORY
    | libc::O_APPEND
    | libc::O_TRUNC
    | libc::O_NONBLOCK
    | libc::O_DSYNC
    | libc::O_SYNC
    | abi::linux::O_LARGEFILE;

struct Node {
    /// O_PATH | O_NOFOLLOW fd of the node itself.
    fd: Rc<OwnedFd>,
    /// O_PATH fd of the directory it was walked from (the root fd for the root).
    parent: Rc<OwnedFd>,
    /// Its name in `parent` ("." for the root).
    name: CString,
    /// Directory entries read at the last `Getdents` with offset 0.
    dirents: Option<Vec<Dirent>>,
}

struct Server {
    root: Rc<OwnedFd>,
    read_only: bool,
    nodes: HashMap<Handle, Node>,
    next: Handle,
}

type Reply = Result<(Response, Option<OwnedFd>), Errno>;

fn errno(e: io::Error) -> Errno {
    Errno::from_io(&e)
}

fn host_stat(fd: &OwnedFd) -> Result<libc::stat, Errno> {
    sys::fstat(fd.as_fd()).map_err(errno)
}

/// Serves `root` (an O_PATH or O_RDONLY directory fd) on `sock` until the peer hangs up (Ok(())).
pub fn serve(root: OwnedFd, sock: OwnedFd, read_only: bool) -> io::Result<()> {
    let st = sys::fstat(root.as_fd())?;
    if st.st_mode & S_IFMT != S_IFDIR {
        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    let mut srv = Server {
        root: Rc::new(root),
        read_only,
        nodes: HashMap::new(),
        next: 1,
    };
    let mut buf = vec![0u8; MAX_FRAME];
    loop {
        let r = match sys::recv(sock.as_fd(), &mut buf) {
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => return Ok(()),
            Err(e) => return Err(e),
        };
        if r.len == 0 && r.fds.is_empty() && !r.truncated {
            return Ok(()); // hangup
        }
        let (resp, fd) = if !r.fds.is_empty() || r.truncated {
            tracing::debug!(
                fds = r.fds.len(),
                truncated = r.truncated,
                "gofer: rejecting frame"
            );
            (Response::Error(Errno::EINVAL.0), None)
        } else {
            match Request::decode(&buf[..r.len]) {
                Ok(req) => match srv.handle(req) {
                    Ok(x) => x,
                    Err(e) => (Response::Error(e.0), None),
                },
                Err(e) => {
                    tracing::debug!(error = %e, "gofer: malformed request");
                    (Response::Error(Errno::EINVAL.0), None)
                }
            }
        };
        drop(r); // closes any fds the peer sent
        match sys::send(sock.as_fd(), &resp.encode(), fd.as_ref().map(|f| f.as_fd())) {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPIPE) | Some(libc::ECONNRESET)) => {
                return Ok(())
            }
            Err(e) => return Err(e),
        }
    }
}

impl Server {
    fn handle(&mut self, req: Request) -> Reply {
        let plain = |r: Response| Ok((r, None));
        match req {
            Request::Mount => {
                let stat = Stat::from_host(&host_stat(&self.root)?);
                let root = self.root.clone();
                let handle = self.insert(Node {
                    fd: root.clone(),
                    parent: root,
                    name: c".".into(),
                    dirents: None,
                })?;
                plain(Response::Mount { handle, stat })
            }
            Request::Walk { dir, names } => plain(self.walk(dir, &names)?),
            Request::Stat { handle } => plain(Response::Stat(Stat::from_host(&host_stat(
                &self.node(handle)?.fd,
            )?))),
            Request::Open { handle, flags } => {
                let fd = self.open(handle, flags)?;
                Ok((Response::Open, Some(fd)))
            }
            Request::Readlink { handle } => {
                let n = self.node(handle)?;
                if host_stat(&n.fd)?.st_mode & S_IFMT != S_IFLNK {
                    return Err(Errno::EINVAL);
                }
                plain(Response::Readlink(
                    sys::readlink(n.fd.as_fd(), proto::PATH_MAX).map_err(errno)?,
                ))
            }
            Request::Getdents {
                handle,
                offset,
                max_bytes,
            } => plain(self.getdents(handle, offset, max_bytes)?),
            Request::StatFs { handle } => plain(Response::StatFs(self.statfs(handle)?)),
            Request::Close { handle } => {
                self.nodes.remove(&handle).ok_or(Errno::EBADF)?;
                plain(Response::Closed)
            }
        }
    }

    fn node(&self, h: Handle) -> Result<&Node, Errno> {
        self.nodes.get(&h).ok_or(Errno::EBADF)
    }

    fn insert(&mut self, n: Node) -> Result<Handle, Errno> {
        if self.nodes.len() >= MAX_NODES {
            return Err(Errno::ENFILE);
        }
        let h = self.next;
        self.next += 1;
        self.nodes.insert(h, n);
        Ok(h)
    }

    fn walk(&mut self, dir: Handle, names: &[Vec<u8>]) -> Result<Response, Errno> {
        let mut cur = self.node(dir)?.fd.clone();
        let mut nodes = Vec::with_capacity(names.len());
        let mut error = 0;
        for name in names {
            match self.walk_one(&cur, name) {
                Ok((node, stat)) => {
                    let fd = node.fd.clone();
                    let h = self.insert(node)?;
                    nodes.push((h, stat));
                    cur = fd;
                }
                Err(e) => {
                    error = e.0;
                    break;
                }
            }
        }
        if nodes.len() < names.len() && error == 0 {
            error = Errno::EIO.0; // unreachable in practice; keep the reply consistent
        }
        Ok(Response::Walk { nodes, error })
    }

    fn walk_one(&mut self, parent: &Rc<OwnedFd>, name: &[u8]) -> Result<(Node, Stat), Errno> {
        if !proto::valid_name(name) {
            return Err(Errno::EINVAL);
        }
        if self.nodes.len() >= MAX_NODES {
            return Err(Errno::ENFILE);
        }
        let cname = CString::new(name).map_err(|_| Errno::EINVAL)?;
        let fd = sys::openat(
            parent.as_fd(),
            &cname,
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
        .map_err(errno)?;
        let stat = Stat::from_host(&host_stat(&fd)?);
        Ok((
            Node {
                fd: Rc::new(fd),
                parent: parent.clone(),
                name: cname,
                dirents: None,
            },
            stat,
        ))
    }

    fn open(&mut self, h: Handle, flags: i32) -> Result<OwnedFd, Errno> {
        let read_only = self.read_only;
        let n = self.node(h)?;
        let acc = flags & libc::O_ACCMODE;
        if acc == libc::O_ACCMODE {
            return Err(Errno::EINVAL);
        }
        if read_only && (acc != libc::O_RDONLY || flags & libc::O_TRUNC != 0) {
            return Err(Errno::EROFS);
        }
        // Always open non-blocking (so nothing can hang the server), then restore.
        let oflags = (flags & ALLOWED_OPEN_FLAGS)
            | libc::O_NOFOLLOW
            | libc::O_CLOEXEC
            | libc::O_NOCTTY
            | libc::O_NONBLOCK;
        let st = host_stat(&n.fd)?;
        let fd = match st.st_mode & S_IFMT {
            // "." of the node's own O_PATH fd: no name lookup, so no race with renames.
            S_IFDIR => sys::openat(n.fd.as_fd(), c".", oflags),
            S_IFREG => {
                if flags & libc::O_DIRECTORY != 0 {
                    return Err(Errno::ENOTDIR);
                }
                sys::openat(n.parent.as_fd(), &n.name, oflags)
            }
            S_IFLNK => return Err(Errno::ELOOP),
            // Devices, FIFOs and sockets in the tree are never opened on the host.
            _ => return Err(Errno::ENXIO),
        }
        .map_err(errno)?;
        let st2 = host_stat(&fd)?;
        if (st2.st_dev, st2.st_ino) != (st.st_dev, st.st_ino) {
            return Err(Errno::ESTALE); // the name now refers to a different file
        }
        if flags & libc::O_NONBLOCK == 0 {
            sys::clear_nonblock(fd.as_fd()).map_err(errno)?;
        }
        Ok(fd)
    }

    fn getdents(&mut self, h: Handle, offset: u64, max_bytes: u32) -> Result<Response, Errno> {
        let n = self.nodes.get_mut(&h).ok_or(Errno::EBADF)?;
        if offset == 0 || n.dirents.is_none() {
            n.dirents = Some(read_dir(&n.fd)?);
        }
        let ents = n.dirents.as_deref().unwrap_or_default();
        let cap = max_bytes.clamp(1, MAX_DIRENT_BYTES) as usize;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(ents.len());
        let mut out = Vec::new();
        let mut used = 0;
        for e in &ents[start..] {
            let sz = DIRENT_OVERHEAD + e.name.len();
            if !out.is_empty() && used + sz > cap {
                break;
            }
            used += sz;
            out.push(e.clone());
        }
        Ok(Response::Getdents(out))
    }

    fn statfs(&self, h: Handle) -> Result<StatFs, Errno> {
        let n = self.node(h)?;
        let s = sys::fstatfs(n.fd.as_fd()).map_err(errno)?;
        let v = sys::fstatvfs(n.fd.as_fd()).map_err(errno)?;
        let mut flags = v.f_flag as u64;
        if self.read_only {
            flags |= libc::ST_RDONLY;
        }
        Ok(StatFs {
            fs_type: s.f_type as u64,
            bsize: s.f_bsize as u64,
            blocks: s.f_blocks as u64,
            bfree: s.f_bfree as u64,
            bavail: s.f_bavail as u64,
            files: s.f_files as u64,
            ffree: s.f_ffree as u64,
            fsid: v.f_fsid as u64,
            namelen: s.f_namelen as u64,
            frsize: s.f_frsize as u64,
            flags,
        })
    }
}

/// All entries of the directory `dir` (an O_PATH fd), in host order, with
/// `next_offset` = index + 1.
fn read_dir(dir: &OwnedFd) -> Result<Vec<Dirent>, Errno> {
    if host_stat(dir)?.st_mode & S_IFMT != S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    let fd = sys::openat(
        dir.as_fd(),
        c".",
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
    )
    .map_err(errno)?;
    let mut buf = vec![0u8; 32 * 1024];
    let mut out = Vec::new();
    loop {
        let n = sys::getdents64(fd.as_fd(), &mut buf).map_err(errno)?;
        if n == 0 {
            break;
        }
        parse_dirents64(&buf[..n.min(buf.len())], &mut out)?;
    }
    for (i, d) in out.iter_mut().enumerate() {
        d.next_offset = i as u64 + 1;
    }
    Ok(out)
}

/// Parses host `linux_dirent64` records (bounds-checked).
fn parse_dirents64(b: &[u8], out: &mut Vec<Dirent>) -> Result<(), Errno> {
    let mut pos = 0;
    while pos < b.len() {
        let rec = b.get(pos..pos + 19).ok_or(Errno::EIO)?;
        let ino = u64::from_le_bytes(rec[0..8].try_into().map_err(|_| Errno::EIO)?);
        let reclen = u16::from_le_bytes([rec[16], rec[17]]) as usize;
        let dtype = rec[18];
        if reclen < 19 {
            return Err(Errno::EIO);
        }
        let raw = b.get(pos + 19..pos + reclen).ok_or(Errno::EIO)?;
        let name = &raw[..raw.iter().position(|&c| c == 0).unwrap_or(raw.len())];
        if !name.is_empty() && name.len() <= proto::NAME_MAX {
            out.push(Dirent {
                ino,
                next_offset: 0,
                dtype,
                name: name.to_vec(),
            });
        }
        pos += reclen;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fds the peer sends are closed and the frame rejected; the server keeps serving.
    #[test]
    fn fds_from_peer_rejected() {
        let (a, b) = sys::socketpair().unwrap();
        let root: OwnedFd = std::fs::File::open(std::env::temp_dir()).unwrap().into();
        let t = std::thread::spawn(move || serve(root, b, true));
        let (x, _y) = sys::socketpair().unwrap();
        let mut buf = vec![0u8; MAX_FRAME];
        sys::send(a.as_fd(), &Request::Mount.encode(), Some(x.as_fd())).unwrap();
        let r = sys::recv(a.as_fd(), &mut buf).unwrap();
        assert_eq!(
            Response::decode(&buf[..r.len]),
            Ok(Response::Error(Errno::EINVAL.0))
        );
        sys::send(a.as_fd(), &Request::Mount.encode(), None).unwrap();
        let r = sys::recv(a.as_fd(), &mut buf).unwrap();
        assert!(matches!(
            Response::decode(&buf[..r.len]),
            Ok(Response::Mount { .. })
        ));
        drop(a);
        t.join().unwrap().unwrap();
    }

    /// A client drops fds that come with a reply other than Open.
    #[test]
    fn client_rejects_unexpected_fd() {
        let (a, b) = sys::socketpair().unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = vec![0u8; MAX_FRAME];
            sys::recv(b.as_fd(), &mut buf).unwrap();
            let (x, _y) = sys::socketpair().unwrap();
            sys::send(
                b.as_fd(),
                &Response::Stat(Stat::default()).encode(),
                Some(x.as_fd()),
            )
            .unwrap();
        });
        let c = crate::Client::new(a);
        assert_eq!(c.stat(1).unwrap_err(), Errno::EIO);
        t.join().unwrap();
    }

    #[test]
    fn serve_rejects_non_directory_root() {
        let (_a, b) = sys::socketpair().unwrap();
        let (x, _y) = sys::socketpair().unwrap();
        assert!(serve(x, b, false).is_err());
    }

    #[test]
    fn parse_dirents_bounds() {
        let mut out = Vec::new();
        assert!(parse_dirents64(&[0u8; 10], &mut out).is_err());
        let mut b = Vec::new();
        abi::linux::push_dirent64(&mut b, 1024, 7, 1, 4, b"abc");
        assert!(parse_dirents64(&b, &mut out).is_ok());
        assert_eq!(out[0].name, b"abc");
        assert_eq!(out[0].ino, 7);
        b[16] = 200; // reclen beyond the buffer
        assert!(parse_dirents64(&b, &mut out).is_err());
        b[16] = 3; // reclen below the header
        assert!(parse_dirents64(&b, &mut out).is_err());
    }
}
