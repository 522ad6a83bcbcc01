//! The gofer server: serves one directory tree over a SOCK_SEQPACKET socket.
//!
//! Security model: every host path is reached with `openat(parent_fd, name,
//! O_PATH | O_NOFOLLOW)` one validated component at a time starting at the root
//! fd, so nothing outside the root is ever reachable (no "..", no '/', symlinks
//! never followed, no /proc magic links). Only regular files and directories are
//! ever opened for I/O; opens are re-checked against the walked inode.
//! Every frame from the peer is untrusted: malformed frames get `EINVAL`,
//! unknown handles `EBADF`; nothing the peer sends can make the server panic.
//!
//! Writes (Create, Mkdir, Mknod, Symlink, Link, Unlink, Rename, SetStat, SetXattr,
//! RemoveXattr) are checked with [`proto::validate`], refused with EROFS by a read-only
//! server, and done with `*at()` calls on the parent directory's fd and a validated
//! name, or on the node's own O_PATH fd with `AT_EMPTY_PATH` (fchownat, utimensat,
//! fchmodat2): never a path with '/', never following a symlink, never /proc.
//!
//! Stale handles: a node is (its own O_PATH fd, parent dir fd, name). A Rename done
//! through this server moves the renamed nodes' (parent, name) along, so their handles
//! keep working. Otherwise (the name was unlinked, replaced, or changed on the host),
//! operations that go through parent + name (Open, SetStat, the xattr calls, Link's
//! target) first check that the name still refers to the walked inode: ENOENT if the name
//! is gone, ESTALE if it names another inode. Stat and Readlink use the node's own fd and
//! keep describing the old inode. Nothing a stale handle does can reach a node outside
//! the root: the parent fd is a directory inside the root and the name one component.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

use abi::linux::{Stat, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use abi::Errno;

use crate::proto::{
    self, setstat, Dirent, Request, Response, StatFs, DIRENT_OVERHEAD, MAX_DIRENT_BYTES, MAX_FRAME,
    MAX_XATTR_SIZE,
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
    /// (st_dev, st_ino) of the node when walked/created.
    id: (u64, u64),
    /// (st_dev, st_ino) of `parent`.
    parent_id: (u64, u64),
    /// Directory entries read at the last `Getdents` with offset 0.
    dirents: Option<Vec<Dirent>>,
}

struct Server {
    root: Rc<OwnedFd>,
    /// Single-file mode ([`serve_file`]): the served file's name in `root`
    /// (then the directory itself is never handed out).
    file: Option<CString>,
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

fn id_of(st: &libc::stat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
}

/// Flags for every O_PATH node fd.
const PATH_FLAGS: i32 = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
/// Flags for opening a node's name for I/O (never blocks, never follows, never a tty).
const IO_FLAGS: i32 = libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;

/// Checks that `name` in `parent` still refers to the inode `id`: ENOENT if gone,
/// ESTALE if it names another inode.
fn check_fresh(parent: &OwnedFd, name: &std::ffi::CStr, id: (u64, u64)) -> Result<(), Errno> {
    let st = sys::fstatat_nofollow(parent.as_fd(), name).map_err(errno)?;
    if id_of(&st) != id {
        return Err(Errno::ESTALE);
    }
    Ok(())
}

/// Opens a regular file or directory node for I/O with `flags` (access mode etc.):
/// directories through their own fd ("."), regular files through parent + name with
/// O_NOFOLLOW and an identity check (ESTALE). Other types give `other`.
fn open_node(n: &Node, flags: i32, other: Errno) -> Result<OwnedFd, Errno> {
    let st = host_stat(&n.fd)?;
    let fd = match st.st_mode & S_IFMT {
        S_IFDIR => sys::openat(n.fd.as_fd(), c".", flags | IO_FLAGS | libc::O_DIRECTORY),
        S_IFREG => sys::openat(n.parent.as_fd(), &n.name, flags | IO_FLAGS),
        _ => return Err(other),
    }
    .map_err(errno)?;
    if id_of(&host_stat(&fd)?) != id_of(&st) {
        return Err(Errno::ESTALE);
    }
    Ok(fd)
}

/// chmod of the node `fd` (an O_PATH fd) without following symlinks: fchmodat2 with
/// AT_EMPTY_PATH, or (kernels before 6.6) fchmod of the node opened via `open`.
/// Symlinks give EOPNOTSUPP (Linux has no lchmod).
fn chmod_node(
    fd: &OwnedFd,
    mode: u32,
    open: impl FnOnce() -> Result<OwnedFd, Errno>,
) -> Result<(), Errno> {
    if host_stat(fd)?.st_mode & S_IFMT == S_IFLNK {
        return Err(Errno::EOPNOTSUPP);
    }
    match sys::fchmod_empty(fd.as_fd(), mode) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            sys::fchmod(open()?.as_fd(), mode).map_err(errno)
        }
        r => r.map_err(errno),
    }
}

/// Best-effort removal of a node this server just created, if the name still refers to it.
fn rollback(dir: &OwnedFd, name: &std::ffi::CStr, id: (u64, u64), flags: i32) {
    if check_fresh(dir, name, id).is_ok() {
        let _ = sys::unlinkat(dir.as_fd(), name, flags);
    }
}

fn cname(name: &[u8]) -> Result<CString, Errno> {
    if !proto::valid_name(name) {
        return Err(Errno::EINVAL);
    }
    CString::new(name).map_err(|_| Errno::EINVAL)
}

fn owner_changes(uid: u32, gid: u32) -> bool {
    uid != u32::MAX || gid != u32::MAX
}

fn to_host_ts(t: &abi::linux::Timespec) -> libc::timespec {
    libc::timespec {
        tv_sec: t.sec as libc::time_t,
        tv_nsec: t.nsec as libc::c_long,
    }
}

/// The NUL-terminated names of `list` that are in [`proto::XATTR_NAMESPACES`].
fn filter_xattr_list(list: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(list.len());
    for n in list.split(|&c| c == 0).filter(|n| !n.is_empty()) {
        if proto::check_xattr_name(n).is_ok() {
            out.extend_from_slice(n);
            out.push(0);
        }
    }
    out
}

/// Serves `root` (an O_PATH or O_RDONLY directory fd) on `sock` until the peer hangs up (Ok(())).
pub fn serve(root: OwnedFd, sock: OwnedFd, read_only: bool) -> io::Result<()> {
    let st = sys::fstat(root.as_fd())?;
    if st.st_mode & S_IFMT != S_IFDIR {
        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    let srv = Server {
        root: Rc::new(root),
        file: None,
        read_only,
        nodes: HashMap::new(),
        next: 1,
    };
    run(srv, sock)
}

/// Serves the one regular file `name` of the directory `dir` (an O_PATH
/// directory fd) on `sock`: a bind mount of a single file. The mount handle is
/// the file; the directory is never handed out, so nothing else in it is
/// reachable (walks from a file fail with ENOTDIR, and every write request
/// needs a directory handle).
pub fn serve_file(dir: OwnedFd, name: &[u8], sock: OwnedFd, read_only: bool) -> io::Result<()> {
    let st = sys::fstat(dir.as_fd())?;
    if st.st_mode & S_IFMT != S_IFDIR {
        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    if !proto::valid_name(name) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let name = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let fd = sys::openat(dir.as_fd(), &name, PATH_FLAGS)?;
    if sys::fstat(fd.as_fd())?.st_mode & S_IFMT != S_IFREG {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    drop(fd);
    let srv = Server {
        root: Rc::new(dir),
        file: Some(name),
        read_only,
        nodes: HashMap::new(),
        next: 1,
    };
    run(srv, sock)
}

fn run(mut srv: Server, sock: OwnedFd) -> io::Result<()> {
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
            Request::Mount if self.file.is_some() => {
                let name = self.file.clone().unwrap_or_default();
                let root = self.root.clone();
                let root_id = id_of(&host_stat(&root)?);
                let (node, stat) = self.walk_one(&root, root_id, name.as_bytes())?;
                if stat.mode & S_IFMT != S_IFREG {
                    return Err(Errno::ESTALE);
                }
                let handle = self.insert(node)?;
                plain(Response::Mount { handle, stat })
            }
            Request::Mount => {
                let st = host_stat(&self.root)?;
                let stat = Stat::from_host(&st);
                let root = self.root.clone();
                let handle = self.insert(Node {
                    fd: root.clone(),
                    parent: root,
                    name: c".".into(),
                    id: id_of(&st),
                    parent_id: id_of(&st),
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
            // A SetStat that changes nothing is a stat (allowed on a read-only server).
            Request::SetStat {
                handle, mask: 0, ..
            } => {
                proto::validate(&req)?;
                plain(Response::Stat(Stat::from_host(&host_stat(
                    &self.node(handle)?.fd,
                )?)))
            }
            Request::GetXattr { .. } | Request::ListXattr { .. } => {
                proto::validate(&req)?;
                plain(self.read_xattr(req)?)
            }
            req => {
                proto::validate(&req)?;
                if self.read_only {
                    return Err(Errno::EROFS);
                }
                self.write(req)
            }
        }
    }

    /// The write requests (already validated; the server is read-write).
    fn write(&mut self, req: Request) -> Reply {
        let plain = |r: Response| Ok((r, None));
        match req {
            Request::Create {
                dir,
                name,
                flags,
                mode,
                uid,
                gid,
            } => {
                let (handle, stat, fd) = self.create(dir, &name, flags, mode, uid, gid)?;
                Ok((Response::Create { handle, stat }, Some(fd)))
            }
            Request::Mkdir {
                dir,
                name,
                mode,
                uid,
                gid,
            } => {
                let d = self.node(dir)?;
                let (dfd, name) = (d.fd.clone(), cname(&name)?);
                sys::mkdirat(dfd.as_fd(), &name, 0o700).map_err(errno)?;
                let fd = sys::openat(dfd.as_fd(), &name, PATH_FLAGS | libc::O_DIRECTORY)
                    .map_err(errno)?;
                let id = id_of(&host_stat(&fd)?);
                let setup = || -> Result<(), Errno> {
                    if owner_changes(uid, gid) {
                        sys::fchown_empty(fd.as_fd(), uid, gid).map_err(errno)?;
                    }
                    chmod_node(&fd, mode, || {
                        sys::openat(
                            fd.as_fd(),
                            c".",
                            libc::O_RDONLY | IO_FLAGS | libc::O_DIRECTORY,
                        )
                        .map_err(errno)
                    })
                };
                if let Err(e) = setup() {
                    rollback(&dfd, &name, id, libc::AT_REMOVEDIR);
                    return Err(e);
                }
                plain(self.new_node(dir, name, fd)?)
            }
            Request::Mknod {
                dir,
                name,
                mode,
                rdev: _,
                uid,
                gid,
            } => {
                let d = self.node(dir)?;
                let (dfd, name) = (d.fd.clone(), cname(&name)?);
                let kind = match mode & S_IFMT {
                    0 => S_IFREG,
                    k => k,
                };
                // Only regular files, FIFOs and sockets (validated): rdev is meaningless.
                sys::mknodat(dfd.as_fd(), &name, kind | 0o600, 0).map_err(errno)?;
                let fd = sys::openat(dfd.as_fd(), &name, PATH_FLAGS).map_err(errno)?;
                let st = host_stat(&fd)?;
                let id = id_of(&st);
                if st.st_mode & S_IFMT != kind {
                    return Err(Errno::ESTALE); // replaced under us
                }
                let setup = || -> Result<(), Errno> {
                    if owner_changes(uid, gid) {
                        sys::fchown_empty(fd.as_fd(), uid, gid).map_err(errno)?;
                    }
                    chmod_node(&fd, mode & proto::MODE_PERM, || {
                        if kind != S_IFREG {
                            return Err(Errno::EOPNOTSUPP);
                        }
                        let f = sys::openat(dfd.as_fd(), &name, libc::O_RDONLY | IO_FLAGS)
                            .map_err(errno)?;
                        if id_of(&host_stat(&f)?) != id {
                            return Err(Errno::ESTALE);
                        }
                        Ok(f)
                    })
                };
                if let Err(e) = setup() {
                    rollback(&dfd, &name, id, 0);
                    return Err(e);
                }
                plain(self.new_node(dir, name, fd)?)
            }
            Request::Symlink {
                dir,
                name,
                target,
                uid,
                gid,
            } => {
                let d = self.node(dir)?;
                let (dfd, name) = (d.fd.clone(), cname(&name)?);
                let target = CString::new(target).map_err(|_| Errno::EINVAL)?;
                sys::symlinkat(&target, dfd.as_fd(), &name).map_err(errno)?;
                let fd = sys::openat(dfd.as_fd(), &name, PATH_FLAGS).map_err(errno)?;
                let st = host_stat(&fd)?;
                if st.st_mode & S_IFMT != S_IFLNK {
                    return Err(Errno::ESTALE);
                }
                if owner_changes(uid, gid) {
                    if let Err(e) = sys::fchown_empty(fd.as_fd(), uid, gid) {
                        rollback(&dfd, &name, id_of(&st), 0);
                        return Err(errno(e));
                    }
                }
                plain(self.new_node(dir, name, fd)?)
            }
            Request::Link { dir, name, target } => {
                let dfd = self.node(dir)?.fd.clone();
                let name = cname(&name)?;
                let t = self.node(target)?;
                check_fresh(&t.parent, &t.name, t.id)?;
                if host_stat(&t.fd)?.st_mode & S_IFMT == S_IFDIR {
                    return Err(Errno::EPERM);
                }
                let tid = t.id;
                sys::linkat(t.parent.as_fd(), &t.name, dfd.as_fd(), &name).map_err(errno)?;
                let st = sys::fstatat_nofollow(dfd.as_fd(), &name).map_err(errno)?;
                if id_of(&st) != tid {
                    // The target's name was replaced between the check and linkat (a host
                    // race): undo the link to the wrong inode.
                    rollback(&dfd, &name, id_of(&st), 0);
                    return Err(Errno::ESTALE);
                }
                plain(Response::Stat(Stat::from_host(&st)))
            }
            Request::Unlink { dir, name, flags } => {
                let d = self.node(dir)?;
                sys::unlinkat(d.fd.as_fd(), &cname(&name)?, flags).map_err(errno)?;
                plain(Response::Ok)
            }
            Request::Rename {
                old_dir,
                old_name,
                new_dir,
                new_name,
                flags,
            } => {
                self.rename(old_dir, &old_name, new_dir, &new_name, flags)?;
                plain(Response::Ok)
            }
            Request::SetStat {
                handle,
                mask,
                mode,
                uid,
                gid,
                size,
                atime,
                mtime,
            } => {
                let n = self.node(handle)?;
                if mask != 0 {
                    check_fresh(&n.parent, &n.name, n.id)?;
                }
                if mask & setstat::SIZE != 0 {
                    let f = open_node(n, libc::O_WRONLY, Errno::EINVAL)?;
                    sys::ftruncate(f.as_fd(), size as i64).map_err(errno)?;
                }
                if mask & (setstat::UID | setstat::GID) != 0 {
                    let uid = if mask & setstat::UID != 0 {
                        uid
                    } else {
                        u32::MAX
                    };
                    let gid = if mask & setstat::GID != 0 {
                        gid
                    } else {
                        u32::MAX
                    };
                    sys::fchown_empty(n.fd.as_fd(), uid, gid).map_err(errno)?;
                }
                if mask & setstat::MODE != 0 {
                    chmod_node(&n.fd, mode, || {
                        open_node(n, libc::O_RDONLY, Errno::EOPNOTSUPP)
                    })?;
                }
                let omit = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: libc::UTIME_OMIT,
                };
                let now = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: libc::UTIME_NOW,
                };
                let pick = |set: u32, now_bit: u32, t: &abi::linux::Timespec| {
                    if mask & set != 0 {
                        to_host_ts(t)
                    } else if mask & now_bit != 0 {
                        now
                    } else {
                        omit
                    }
                };
                let times = [
                    pick(setstat::ATIME, setstat::ATIME_NOW, &atime),
                    pick(setstat::MTIME, setstat::MTIME_NOW, &mtime),
                ];
                if times.iter().any(|t| t.tv_nsec != libc::UTIME_OMIT) {
                    sys::utimens_empty(n.fd.as_fd(), &times).map_err(errno)?;
                }
                plain(Response::Stat(Stat::from_host(&host_stat(&n.fd)?)))
            }
            Request::SetXattr {
                handle,
                name,
                value,
                flags,
            } => {
                let f = self.xattr_fd(handle)?;
                let name = CString::new(name).map_err(|_| Errno::EINVAL)?;
                sys::fsetxattr(f.as_fd(), &name, &value, flags).map_err(errno)?;
                plain(Response::Ok)
            }
            Request::RemoveXattr { handle, name } => {
                let f = self.xattr_fd(handle)?;
                let name = CString::new(name).map_err(|_| Errno::EINVAL)?;
                sys::fremovexattr(f.as_fd(), &name).map_err(errno)?;
                plain(Response::Ok)
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn create(
        &mut self,
        dir: Handle,
        name: &[u8],
        flags: i32,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(Handle, Stat, OwnedFd), Errno> {
        let d = self.node(dir)?;
        let (dfd, name) = (d.fd.clone(), cname(name)?);
        let keep = libc::O_ACCMODE
            | libc::O_TRUNC
            | libc::O_APPEND
            | libc::O_DSYNC
            | libc::O_SYNC
            | abi::linux::O_LARGEFILE;
        // Always O_EXCL: an existing name (a FIFO, a device, a symlink) is never opened.
        let oflags = (flags & keep) | libc::O_CREAT | libc::O_EXCL | IO_FLAGS;
        let fd = sys::openat_mode(dfd.as_fd(), &name, oflags, 0o600).map_err(errno)?;
        let id = id_of(&host_stat(&fd)?);
        let setup = || -> Result<OwnedFd, Errno> {
            if owner_changes(uid, gid) {
                sys::fchown_empty(fd.as_fd(), uid, gid).map_err(errno)?;
            }
            sys::fchmod(fd.as_fd(), mode).map_err(errno)?;
            if flags & libc::O_NONBLOCK == 0 {
                sys::clear_nonblock(fd.as_fd()).map_err(errno)?;
            }
            let pfd = sys::openat(dfd.as_fd(), &name, PATH_FLAGS).map_err(errno)?;
            if id_of(&host_stat(&pfd)?) != id {
                return Err(Errno::ESTALE);
            }
            Ok(pfd)
        };
        let pfd = match setup() {
            Ok(p) => p,
            Err(e) => {
                rollback(&dfd, &name, id, 0);
                return Err(e);
            }
        };
        let Response::Node { handle, stat } = self.new_node(dir, name, pfd)? else {
            return Err(Errno::EIO);
        };
        Ok((handle, stat, fd))
    }

    /// Registers a node just created as `name` in `dir` (its O_PATH fd `fd`).
    fn new_node(&mut self, dir: Handle, name: CString, fd: OwnedFd) -> Result<Response, Errno> {
        let d = self.node(dir)?;
        let (parent, parent_id) = (d.fd.clone(), d.id);
        let st = host_stat(&fd)?;
        let handle = self.insert(Node {
            fd: Rc::new(fd),
            parent,
            name,
            id: id_of(&st),
            parent_id,
            dirents: None,
        })?;
        Ok(Response::Node {
            handle,
            stat: Stat::from_host(&st),
        })
    }

    fn rename(
        &mut self,
        old_dir: Handle,
        old_name: &[u8],
        new_dir: Handle,
        new_name: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        let (ofd, oid) = {
            let d = self.node(old_dir)?;
            (d.fd.clone(), d.id)
        };
        let (nfd, nid) = {
            let d = self.node(new_dir)?;
            (d.fd.clone(), d.id)
        };
        let (oname, nname) = (cname(old_name)?, cname(new_name)?);
        sys::renameat2(ofd.as_fd(), &oname, nfd.as_fd(), &nname, flags).map_err(errno)?;
        // Move the handles of the renamed node(s) along (best effort: if the names were
        // changed again on the host meanwhile, those handles just become stale).
        let moved = sys::fstatat_nofollow(nfd.as_fd(), &nname)
            .ok()
            .map(|s| id_of(&s));
        let swapped = if flags == proto::RENAME_EXCHANGE {
            sys::fstatat_nofollow(ofd.as_fd(), &oname)
                .ok()
                .map(|s| id_of(&s))
        } else {
            None
        };
        for n in self.nodes.values_mut() {
            if Some(n.id) == moved && n.parent_id == oid && n.name == oname {
                (n.parent, n.parent_id, n.name) = (nfd.clone(), nid, nname.clone());
            } else if Some(n.id) == swapped && n.parent_id == nid && n.name == nname {
                (n.parent, n.parent_id, n.name) = (ofd.clone(), oid, oname.clone());
            }
        }
        Ok(())
    }

    /// An O_RDONLY fd of a regular file or directory node for the f*xattr calls
    /// (symlinks and special files: EOPNOTSUPP), after the staleness check.
    fn xattr_fd(&self, h: Handle) -> Result<OwnedFd, Errno> {
        let n = self.node(h)?;
        check_fresh(&n.parent, &n.name, n.id)?;
        open_node(n, libc::O_RDONLY, Errno::EOPNOTSUPP)
    }

    fn read_xattr(&self, req: Request) -> Result<Response, Errno> {
        // `size` 0 or beyond what a frame carries: up to MAX_XATTR_SIZE, else E2BIG.
        let cap = |size: u32| match size as usize {
            0 => (MAX_XATTR_SIZE, true),
            s if s > MAX_XATTR_SIZE => (MAX_XATTR_SIZE, true),
            s => (s, false),
        };
        match req {
            Request::GetXattr { handle, name, size } => {
                let f = self.xattr_fd(handle)?;
                let name = CString::new(name).map_err(|_| Errno::EINVAL)?;
                let (len, unbounded) = cap(size);
                let mut buf = vec![0u8; len];
                match sys::fgetxattr(f.as_fd(), &name, &mut buf) {
                    Ok(n) => {
                        buf.truncate(n.min(len));
                        Ok(Response::Xattr(buf))
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ERANGE) && unbounded => {
                        Err(Errno::E2BIG)
                    }
                    Err(e) => Err(errno(e)),
                }
            }
            Request::ListXattr { handle, size } => {
                let f = self.xattr_fd(handle)?;
                let mut buf = vec![0u8; MAX_XATTR_SIZE];
                let n = match sys::flistxattr(f.as_fd(), &mut buf) {
                    Ok(n) => n.min(buf.len()),
                    Err(e) if e.raw_os_error() == Some(libc::ERANGE) => return Err(Errno::E2BIG),
                    Err(e) => return Err(errno(e)),
                };
                let list = filter_xattr_list(&buf[..n]);
                if size != 0 && list.len() > size as usize {
                    return Err(Errno::ERANGE);
                }
                Ok(Response::Xattr(list))
            }
            _ => Err(Errno::EINVAL),
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
        let d = self.node(dir)?;
        let (mut cur, mut cur_id) = (d.fd.clone(), d.id);
        let mut nodes = Vec::with_capacity(names.len());
        let mut error = 0;
        for name in names {
            match self.walk_one(&cur, cur_id, name) {
                Ok((node, stat)) => {
                    let fd = node.fd.clone();
                    let id = node.id;
                    let h = self.insert(node)?;
                    nodes.push((h, stat));
                    (cur, cur_id) = (fd, id);
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

    fn walk_one(
        &mut self,
        parent: &Rc<OwnedFd>,
        parent_id: (u64, u64),
        name: &[u8],
    ) -> Result<(Node, Stat), Errno> {
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
        let st = host_stat(&fd)?;
        let stat = Stat::from_host(&st);
        Ok((
            Node {
                fd: Rc::new(fd),
                parent: parent.clone(),
                name: cname,
                id: id_of(&st),
                parent_id,
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

    // ---------- hostile request sequences (issue 6, fuzzing) ----------

    use proptest::prelude::*;

    const NAMES: &[&[u8]] = &[
        b".", b"..", b"", b"a", b"b", b"sub", b"link", b"abs", b"fifo", b"new", b"a/b", b"x\0y",
        b"/etc", b"../..",
    ];

    fn name() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            8 => prop::sample::select(NAMES).prop_map(|n| n.to_vec()),
            1 => prop::collection::vec(any::<u8>(), 0..300),
        ]
    }

    /// Small handles (the ones the server hands out) plus a few wild ones.
    fn handle() -> impl Strategy<Value = u64> {
        prop_oneof![8 => 0u64..12, 1 => any::<u64>()]
    }

    fn ts() -> impl Strategy<Value = abi::linux::Timespec> {
        (any::<i64>(), prop_oneof![0i64..1_000_000_000, any::<i64>()])
            .prop_map(|(sec, nsec)| abi::linux::Timespec { sec, nsec })
    }

    fn request() -> impl Strategy<Value = Request> {
        let flags = prop_oneof![
            Just(libc::O_RDONLY),
            Just(libc::O_RDWR),
            Just(libc::O_WRONLY | libc::O_TRUNC),
            Just(libc::O_RDWR | libc::O_CREAT | libc::O_EXCL),
            any::<i32>()
        ];
        let mode = prop_oneof![
            Just(0o644u32),
            Just(0o755),
            Just(libc::S_IFIFO | 0o600),
            any::<u32>()
        ];
        prop_oneof![
            Just(Request::Mount),
            (handle(), prop::collection::vec(name(), 0..4))
                .prop_map(|(dir, names)| Request::Walk { dir, names }),
            handle().prop_map(|handle| Request::Stat { handle }),
            (handle(), flags.clone()).prop_map(|(handle, flags)| Request::Open { handle, flags }),
            handle().prop_map(|handle| Request::Readlink { handle }),
            (handle(), any::<u64>(), any::<u32>()).prop_map(|(handle, offset, max_bytes)| {
                Request::Getdents {
                    handle,
                    offset: offset % 4,
                    max_bytes,
                }
            }),
            handle().prop_map(|handle| Request::StatFs { handle }),
            handle().prop_map(|handle| Request::Close { handle }),
            (handle(), name(), flags, mode.clone()).prop_map(|(dir, name, flags, mode)| {
                Request::Create {
                    dir,
                    name,
                    flags,
                    mode,
                    uid: u32::MAX,
                    gid: u32::MAX,
                }
            }),
            (handle(), name(), mode.clone()).prop_map(|(dir, name, mode)| Request::Mkdir {
                dir,
                name,
                mode,
                uid: u32::MAX,
                gid: u32::MAX
            }),
            (handle(), name(), mode, any::<u64>()).prop_map(|(dir, name, mode, rdev)| {
                Request::Mknod {
                    dir,
                    name,
                    mode,
                    rdev,
                    uid: u32::MAX,
                    gid: u32::MAX,
                }
            }),
            (
                handle(),
                name(),
                prop_oneof![
                    Just(b"/etc/passwd".to_vec()),
                    Just(b"../../../../etc".to_vec()),
                    name()
                ]
            )
                .prop_map(|(dir, name, target)| Request::Symlink {
                    dir,
                    name,
                    target,
                    uid: u32::MAX,
                    gid: u32::MAX
                }),
            (handle(), name(), handle()).prop_map(|(dir, name, target)| Request::Link {
                dir,
                name,
                target
            }),
            (
                handle(),
                name(),
                prop_oneof![Just(0), Just(libc::AT_REMOVEDIR), any::<i32>()]
            )
                .prop_map(|(dir, name, flags)| Request::Unlink { dir, name, flags }),
            (
                handle(),
                name(),
                handle(),
                name(),
                prop_oneof![Just(0u32), 0u32..8, any::<u32>()]
            )
                .prop_map(|(old_dir, old_name, new_dir, new_name, flags)| {
                    Request::Rename {
                        old_dir,
                        old_name,
                        new_dir,
                        new_name,
                        flags,
                    }
                }),
            (
                handle(),
                any::<u32>(),
                any::<u32>(),
                prop_oneof![0u64..1 << 20, any::<u64>()],
                ts(),
                ts()
            )
                .prop_map(|(handle, mask, mode, size, atime, mtime)| {
                    Request::SetStat {
                        handle,
                        mask,
                        mode,
                        uid: u32::MAX,
                        gid: u32::MAX,
                        size,
                        atime,
                        mtime,
                    }
                }),
            (
                handle(),
                prop_oneof![
                    Just(b"user.a".to_vec()),
                    Just(b"trusted.x".to_vec()),
                    name()
                ],
                any::<u32>()
            )
                .prop_map(|(handle, name, size)| Request::GetXattr {
                    handle,
                    name,
                    size: size % 70_000
                }),
            (handle(), any::<u32>()).prop_map(|(handle, size)| Request::ListXattr {
                handle,
                size: size % 70_000
            }),
            (
                handle(),
                prop_oneof![
                    Just(b"user.a".to_vec()),
                    Just(b"security.capability".to_vec()),
                    name()
                ],
                prop::collection::vec(any::<u8>(), 0..64),
                any::<i32>()
            )
                .prop_map(|(handle, name, value, flags)| Request::SetXattr {
                    handle,
                    name,
                    value,
                    flags
                }),
            (handle(), name()).prop_map(|(handle, name)| Request::RemoveXattr { handle, name }),
        ]
    }

    /// Everything under `dir` (paths and sizes), to see what changed.
    fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                let md = std::fs::symlink_metadata(&p).unwrap();
                if md.is_dir() {
                    todo.push(p.clone());
                }
                out.push((p, md.len()));
            }
        }
        out.sort();
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Random request sequences against a server over a small tree with
        /// symlinks pointing out of it: the server never panics, every fd it
        /// hands out is inside the root, nothing outside the root changes,
        /// and a read-only server changes nothing at all.
        #[test]
        fn hostile_request_sequences(reqs in prop::collection::vec(request(), 1..40), ro in any::<bool>()) {
            let base = std::env::temp_dir().join(format!(
                "gofer-fuzz-{}-{:?}", std::process::id(), std::thread::current().id()));
            let _ = std::fs::remove_dir_all(&base);
            let root = base.join("root");
            std::fs::create_dir_all(root.join("sub")).unwrap();
            std::fs::write(root.join("a"), b"hello").unwrap();
            std::fs::write(base.join("canary"), b"outside").unwrap();
            std::os::unix::fs::symlink("../canary", root.join("link")).unwrap();
            std::os::unix::fs::symlink("/etc/passwd", root.join("abs")).unwrap();
            std::os::unix::fs::symlink("../../canary", root.join("sub/up")).unwrap();
            let outside = snapshot(&base).into_iter()
                .filter(|(p, _)| !p.starts_with(&root)).collect::<Vec<_>>();
            let inside = snapshot(&root);
            let root_fd: OwnedFd = std::fs::File::open(&root).unwrap().into();
            let mut srv = Server { root: Rc::new(root_fd), file: None, read_only: ro, nodes: HashMap::new(), next: 1 };
            let canon_root = std::fs::canonicalize(&root).unwrap();
            let mut oks = 0;
            for req in std::iter::once(Request::Mount).chain(reqs) {
                // As the server sees it: encoded, then decoded (validated).
                let Ok(req) = Request::decode(&req.encode()) else { continue };
                if let Ok((resp, fd)) = srv.handle(req) {
                    oks += 1;
                    prop_assert!(resp.encode().len() <= MAX_FRAME);
                    if let Some(fd) = fd {
                        let p = std::fs::read_link(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd))).unwrap();
                        prop_assert!(p.starts_with(&canon_root), "fd outside the root: {}", p.display());
                    }
                }
            }
            prop_assert!(oks >= 1, "not even Mount worked");
            let outside_after = snapshot(&base).into_iter()
                .filter(|(p, _)| !p.starts_with(&root)).collect::<Vec<_>>();
            prop_assert_eq!(outside, outside_after);
            prop_assert_eq!(std::fs::read(base.join("canary")).unwrap(), b"outside".to_vec());
            if ro {
                prop_assert_eq!(inside, snapshot(&root));
            }
            drop(srv);
            let _ = std::fs::remove_dir_all(&base);
        }
    }
}
