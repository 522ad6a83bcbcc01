//! The gofer-backed file system. Nodes are gofer handles; regular files are opened
//! by the gofer and read/written by the sentry through the host fd it returns;
//! directories are listed with the gofer's getdents.
//!
//! The file system talks to the gofer through [`RemoteFs`], implemented for
//! `gofer::Client` (tests run a real gofer server on a thread).
//!
//! Mutations (create, mkdir, mknod, symlink, link, unlink, rmdir, rename, setattr,
//! xattrs) are gofer messages; a mount made read-only answers them with EROFS
//! without asking. The I/O of an open file (read, write, fsync, fallocate) goes
//! to the host fd the gofer handed over, never through the gofer.

use std::any::Any;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, OnceLock};

use abi::linux::{Stat, Timespec, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFMT, S_IFREG, S_IFSOCK};
use abi::Errno;

use crate::file::{DirEntry, FileOps};
use crate::host::HostFdOps;
use crate::inode::{Attr, Inode, SetAttr, StatFs, TimeSet, ST_RDONLY};

/// A node of the remote tree.
pub type Handle = u64;

/// What the gofer fs needs from a file server (the `gofer::Client` API).
pub trait RemoteFs: Send + Sync {
    fn mount(&self) -> Result<(Handle, Stat), Errno>;
    /// One component, no symlink following.
    fn walk(&self, dir: Handle, name: &[u8]) -> Result<(Handle, Stat), Errno>;
    fn stat(&self, h: Handle) -> Result<Stat, Errno>;
    fn open(&self, h: Handle, flags: i32) -> Result<std::os::fd::OwnedFd, Errno>;
    fn readlink(&self, h: Handle) -> Result<Vec<u8>, Errno>;
    /// Entries from `offset` (0 = start, includes "." and ".."); empty = end.
    fn getdents(&self, h: Handle, offset: u64, max_bytes: u32) -> Result<Vec<DirEntry>, Errno>;
    fn statfs(&self, h: Handle) -> Result<StatFs, Errno>;
    fn close(&self, h: Handle);

    // ---- Writes. Names are single components (the server checks again); uid/gid
    // u32::MAX keep the server's own ids.

    /// Creates and opens (O_RDWR) a new regular file; EEXIST if `name` exists.
    fn create(
        &self,
        dir: Handle,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(Handle, Stat, OwnedFd), Errno>;
    fn mkdir(
        &self,
        dir: Handle,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(Handle, Stat), Errno>;
    /// Regular files, FIFOs and sockets only (devices: EPERM).
    fn mknod(
        &self,
        dir: Handle,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(Handle, Stat), Errno>;
    fn symlink(
        &self,
        dir: Handle,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<(Handle, Stat), Errno>;
    /// Hard-links node `target` as `name` in `dir`; returns the node's fresh stat.
    fn link(&self, dir: Handle, name: &[u8], target: Handle) -> Result<Stat, Errno>;
    /// `rmdir`: remove a directory (else a non-directory).
    fn unlink(&self, dir: Handle, name: &[u8], rmdir: bool) -> Result<(), Errno>;
    /// renameat2 flags: 0, RENAME_NOREPLACE (1), RENAME_EXCHANGE (2).
    fn rename(
        &self,
        old_dir: Handle,
        old_name: &[u8],
        new_dir: Handle,
        new_name: &[u8],
        flags: u32,
    ) -> Result<(), Errno>;
    /// Applies `attr` (UTIME_NOW-style times as [`TimeSet::Now`]); returns the fresh stat.
    fn setattr(&self, h: Handle, attr: &SetAttr) -> Result<Stat, Errno>;
    /// The whole value of xattr `name` ("user." names only).
    fn getxattr(&self, h: Handle, name: &[u8]) -> Result<Vec<u8>, Errno>;
    /// The NUL-terminated names of the node's "user." xattrs.
    fn listxattr(&self, h: Handle) -> Result<Vec<u8>, Errno>;
    fn setxattr(&self, h: Handle, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno>;
    fn removexattr(&self, h: Handle, name: &[u8]) -> Result<(), Errno>;
}

impl RemoteFs for gofer::Client {
    fn mount(&self) -> Result<(Handle, Stat), Errno> {
        gofer::Client::mount(self)
    }
    fn walk(&self, dir: Handle, name: &[u8]) -> Result<(Handle, Stat), Errno> {
        gofer::Client::walk(self, dir, name)
    }
    fn stat(&self, h: Handle) -> Result<Stat, Errno> {
        gofer::Client::stat(self, h)
    }
    fn open(&self, h: Handle, flags: i32) -> Result<std::os::fd::OwnedFd, Errno> {
        gofer::Client::open(self, h, flags)
    }
    fn readlink(&self, h: Handle) -> Result<Vec<u8>, Errno> {
        gofer::Client::readlink(self, h)
    }
    fn getdents(&self, h: Handle, offset: u64, max_bytes: u32) -> Result<Vec<DirEntry>, Errno> {
        Ok(gofer::Client::getdents(self, h, offset, max_bytes)?
            .into_iter()
            .map(|d| DirEntry {
                ino: d.ino,
                next_off: d.next_offset,
                dtype: d.dtype,
                name: d.name,
            })
            .collect())
    }
    fn statfs(&self, h: Handle) -> Result<StatFs, Errno> {
        gofer::Client::statfs(self, h)
    }
    fn close(&self, h: Handle) {
        gofer::Client::close(self, h)
    }
    fn create(
        &self,
        dir: Handle,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(Handle, Stat, OwnedFd), Errno> {
        gofer::Client::create(self, dir, name, libc::O_RDWR, mode, uid, gid)
    }
    fn mkdir(
        &self,
        dir: Handle,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(Handle, Stat), Errno> {
        gofer::Client::mkdir(self, dir, name, mode, uid, gid)
    }
    fn mknod(
        &self,
        dir: Handle,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(Handle, Stat), Errno> {
        gofer::Client::mknod(self, dir, name, mode, 0, uid, gid)
    }
    fn symlink(
        &self,
        dir: Handle,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<(Handle, Stat), Errno> {
        gofer::Client::symlink(self, dir, name, target, uid, gid)
    }
    fn link(&self, dir: Handle, name: &[u8], target: Handle) -> Result<Stat, Errno> {
        gofer::Client::link(self, dir, name, target)
    }
    fn unlink(&self, dir: Handle, name: &[u8], rmdir: bool) -> Result<(), Errno> {
        let flags = if rmdir { libc::AT_REMOVEDIR } else { 0 };
        gofer::Client::unlink(self, dir, name, flags)
    }
    fn rename(
        &self,
        old_dir: Handle,
        old_name: &[u8],
        new_dir: Handle,
        new_name: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        gofer::Client::rename(self, old_dir, old_name, new_dir, new_name, flags)
    }
    fn setattr(&self, h: Handle, a: &SetAttr) -> Result<Stat, Errno> {
        use gofer::proto::setstat as m;
        let mut mask = 0;
        let mut set = |on: bool, bit: u32| {
            if on {
                mask |= bit
            }
        };
        set(a.mode.is_some(), m::MODE);
        set(a.uid.is_some(), m::UID);
        set(a.gid.is_some(), m::GID);
        set(a.size.is_some(), m::SIZE);
        let time = |t: Option<TimeSet>, at: u32, now: u32| match t {
            Some(TimeSet::At(ts)) => (at, ts),
            Some(TimeSet::Now) => (now, Timespec::default()),
            None => (0, Timespec::default()),
        };
        let (ab, atime) = time(a.atime, m::ATIME, m::ATIME_NOW);
        let (mb, mtime) = time(a.mtime, m::MTIME, m::MTIME_NOW);
        mask |= ab | mb;
        gofer::Client::setstat(
            self,
            h,
            mask,
            a.mode.unwrap_or(0) & 0o7777,
            a.uid.unwrap_or(u32::MAX),
            a.gid.unwrap_or(u32::MAX),
            a.size.unwrap_or(0),
            atime,
            mtime,
        )
    }
    fn getxattr(&self, h: Handle, name: &[u8]) -> Result<Vec<u8>, Errno> {
        gofer::Client::getxattr(self, h, name, 0)
    }
    fn listxattr(&self, h: Handle) -> Result<Vec<u8>, Errno> {
        gofer::Client::listxattr(self, h, 0)
    }
    fn setxattr(&self, h: Handle, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno> {
        gofer::Client::setxattr(self, h, name, value, flags)
    }
    fn removexattr(&self, h: Handle, name: &[u8]) -> Result<(), Errno> {
        gofer::Client::removexattr(self, h, name)
    }
}

/// Shared by every node of one gofer mount.
pub struct RemoteMount {
    client: Arc<dyn RemoteFs>,
    read_only: bool,
}

/// One remote node. The handle is closed when the node is dropped.
pub struct RemoteInode {
    mnt: Arc<RemoteMount>,
    handle: Handle,
    /// The last stat seen. Only its type, mode and owner are used from the cache
    /// (`attr`); `stat()` always asks the gofer. Changes of those through this
    /// mount (setattr, link's target) store the stat the gofer returns; namespace
    /// changes alter a directory's nlink and times only, so they need no refresh.
    stat: Mutex<Stat>,
    /// Symlink targets, cached (targets do not change without a rename/unlink).
    link: OnceLock<Vec<u8>>,
    /// The O_RDWR fd `create` returned, for the open that follows it (so a file
    /// created with mode 0444 can be written through the description that created
    /// it even by an unprivileged gofer).
    created_fd: Mutex<Option<OwnedFd>>,
    /// A read-only host fd of this regular file, kept after the first read-only
    /// open: later read-only opens dup it instead of asking the gofer (the
    /// copies do positional I/O, so sharing the host description is harmless).
    ro_fd: Mutex<Option<OwnedFd>>,
}

/// How many read-only host fds the gofer file systems keep cached at most
/// (they hold host descriptors of the sentry; beyond this, opens ask the gofer).
const MAX_CACHED_RO_FDS: usize = 1024;
static CACHED_RO_FDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl RemoteInode {
    /// The root node of a new mount of `client`'s tree.
    pub fn mount_root(
        client: Arc<dyn RemoteFs>,
        read_only: bool,
    ) -> Result<Arc<RemoteInode>, Errno> {
        let (handle, stat) = client.mount()?;
        let mnt = Arc::new(RemoteMount { client, read_only });
        Ok(RemoteInode::node(&mnt, handle, stat))
    }

    fn node(mnt: &Arc<RemoteMount>, handle: Handle, stat: Stat) -> Arc<RemoteInode> {
        Arc::new(RemoteInode {
            mnt: mnt.clone(),
            handle,
            stat: Mutex::new(stat),
            link: OnceLock::new(),
            created_fd: Mutex::new(None),
            ro_fd: Mutex::new(None),
        })
    }

    /// A read-only open served from the cached host fd (see `ro_fd`), or by the
    /// gofer (then cached if there is room).
    fn open_read_only(&self, flags: i32) -> Result<Option<Box<dyn FileOps>>, Errno> {
        use std::sync::atomic::Ordering;
        let plain = flags & libc::O_ACCMODE == libc::O_RDONLY
            && flags & (libc::O_TRUNC | libc::O_DSYNC | libc::O_SYNC | libc::O_APPEND) == 0;
        if !plain || !self.attr().is_regular() {
            return Ok(None);
        }
        let mut cache = self.ro_fd.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fd) = cache.as_ref() {
            let dup = fd.try_clone().map_err(|e| Errno::from_io(&e))?;
            return Ok(Some(Box::new(HostFdOps::new_positional(dup)?)));
        }
        if CACHED_RO_FDS.fetch_add(1, Ordering::Relaxed) >= MAX_CACHED_RO_FDS {
            CACHED_RO_FDS.fetch_sub(1, Ordering::Relaxed);
            return Ok(None);
        }
        let fd = match self.mnt.client.open(self.handle, libc::O_RDONLY) {
            Ok(fd) => fd,
            Err(e) => {
                CACHED_RO_FDS.fetch_sub(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        let dup = match fd.try_clone() {
            Ok(d) => d,
            Err(_) => {
                CACHED_RO_FDS.fetch_sub(1, Ordering::Relaxed);
                return Ok(Some(Box::new(HostFdOps::new(fd, false, None)?)));
            }
        };
        *cache = Some(fd);
        Ok(Some(Box::new(HostFdOps::new_positional(dup)?)))
    }

    fn cached(&self) -> Stat {
        *self.stat.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_cached(&self, s: Stat) {
        *self.stat.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }

    /// EROFS on a read-only mount.
    fn want_write(&self) -> Result<(), Errno> {
        if self.mnt.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// Checks a name given to a directory operation (the gofer checks it again).
    fn check_name(name: &[u8]) -> Result<(), Errno> {
        if name.len() > crate::NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        if name.is_empty()
            || name == b"."
            || name == b".."
            || name.contains(&b'/')
            || name.contains(&0)
        {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    /// Prepares a namespace change in this directory: writable mount, valid name.
    fn dir_op(&self, name: &[u8]) -> Result<(), Errno> {
        self.want_write()?;
        if !self.attr().is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Self::check_name(name)
    }

    /// The group and permission bits of a new node in this directory: a
    /// set-group-ID directory gives new nodes its group, and new directories the
    /// bit too (Linux's inode_init_owner; the host would do the same, but the
    /// owner is passed explicitly).
    fn new_owner(&self, gid: u32, mode: u32, is_dir: bool) -> (u32, u32) {
        let p = self.attr();
        if p.mode & 0o2000 == 0 {
            return (gid, mode);
        }
        (p.gid, if is_dir { mode | 0o2000 } else { mode })
    }

    /// Another node of the same mount (EXDEV otherwise).
    fn same_mount<'a>(&self, other: &'a Arc<dyn Inode>) -> Result<&'a RemoteInode, Errno> {
        match other.as_any().and_then(|a| a.downcast_ref::<RemoteInode>()) {
            Some(r) if Arc::ptr_eq(&r.mnt, &self.mnt) => Ok(r),
            _ => Err(Errno::EXDEV),
        }
    }

    /// Checks an xattr name against the namespaces the gofer passes through
    /// ("user."): other known namespaces EOPNOTSUPP, a bare prefix EINVAL.
    fn xattr_name(name: &[u8]) -> Result<(), Errno> {
        crate::inode::xattr_resolve(name, &[b"user."])
    }
}

impl Drop for RemoteInode {
    fn drop(&mut self) {
        let cached = self.ro_fd.get_mut().map(|c| c.take()).unwrap_or(None);
        if cached.is_some() {
            CACHED_RO_FDS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.mnt.client.close(self.handle);
    }
}

impl Inode for RemoteInode {
    fn attr(&self) -> Attr {
        let s = self.cached();
        Attr {
            mode: s.mode,
            uid: s.uid,
            gid: s.gid,
        }
    }

    fn stat(&self) -> Result<Stat, Errno> {
        let s = self.mnt.client.stat(self.handle)?;
        *self.stat.lock().unwrap_or_else(|e| e.into_inner()) = s;
        Ok(s)
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        let (handle, stat) = self.mnt.client.walk(self.handle, name)?;
        Ok(RemoteInode::node(&self.mnt, handle, stat))
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        if !self.attr().is_symlink() {
            return Err(Errno::EINVAL);
        }
        if let Some(l) = self.link.get() {
            return Ok(l.clone());
        }
        let l = self.mnt.client.readlink(self.handle)?;
        Ok(self.link.get_or_init(|| l).clone())
    }

    fn open(self: Arc<Self>, flags: i32) -> Result<Box<dyn FileOps>, Errno> {
        if self.attr().is_dir() {
            return Ok(Box::new(RemoteDirFile { node: self }));
        }
        let keep = libc::O_ACCMODE
            | libc::O_APPEND
            | libc::O_TRUNC
            | libc::O_NONBLOCK
            | libc::O_DSYNC
            | libc::O_SYNC;
        let created = self
            .created_fd
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(fd) = created {
            // The O_RDWR fd of the create: good for any access mode (the description
            // checks its own); O_APPEND is synced to the host fd.
            if flags & (libc::O_DSYNC | libc::O_SYNC) == 0 {
                let ops = HostFdOps::new(fd, false, None)?;
                ops.flags_changed(flags)?;
                return Ok(Box::new(ops));
            }
        }
        if let Some(ops) = self.open_read_only(flags)? {
            return Ok(ops);
        }
        let fd = self.mnt.client.open(self.handle, flags & keep)?;
        // fstatfs goes through the file's location (OpenFile::statfs), not the fd.
        Ok(Box::new(HostFdOps::new(fd, false, None)?))
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        let mut s = self.mnt.client.statfs(self.handle)?;
        if self.mnt.read_only {
            s.flags |= ST_RDONLY;
        }
        Ok(s)
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }

    fn create(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        self.dir_op(name)?;
        let (gid, mode) = self.new_owner(gid, mode & 0o7777, false);
        let (h, st, fd) = self.mnt.client.create(self.handle, name, mode, uid, gid)?;
        let n = RemoteInode::node(&self.mnt, h, st);
        *n.created_fd.lock().unwrap_or_else(|e| e.into_inner()) = Some(fd);
        Ok(n)
    }

    fn mkdir(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        self.dir_op(name)?;
        let (gid, mode) = self.new_owner(gid, mode & 0o7777, true);
        let (h, st) = self.mnt.client.mkdir(self.handle, name, mode, uid, gid)?;
        Ok(RemoteInode::node(&self.mnt, h, st))
    }

    fn mknod(
        &self,
        name: &[u8],
        mode: u32,
        _rdev: u64,
        uid: u32,
        gid: u32,
    ) -> Result<Arc<dyn Inode>, Errno> {
        self.dir_op(name)?;
        let ty = match mode & S_IFMT {
            0 => S_IFREG,
            t => t,
        };
        match ty {
            S_IFREG | S_IFIFO | S_IFSOCK => {}
            // Device nodes are never made on the host.
            S_IFCHR | S_IFBLK => return Err(Errno::EPERM),
            S_IFDIR => return Err(Errno::EPERM),
            _ => return Err(Errno::EINVAL),
        }
        let (gid, mode) = self.new_owner(gid, mode & 0o7777, false);
        let (h, st) = self
            .mnt
            .client
            .mknod(self.handle, name, ty | mode, uid, gid)?;
        Ok(RemoteInode::node(&self.mnt, h, st))
    }

    fn symlink(
        &self,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<Arc<dyn Inode>, Errno> {
        self.dir_op(name)?;
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() >= crate::PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let (gid, _) = self.new_owner(gid, 0, false);
        let (h, st) = self
            .mnt
            .client
            .symlink(self.handle, name, target, uid, gid)?;
        let n = RemoteInode::node(&self.mnt, h, st);
        let _ = n.link.set(target.to_vec());
        Ok(n)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> Result<(), Errno> {
        self.dir_op(name)?;
        let t = self.same_mount(target)?;
        if t.attr().is_dir() {
            return Err(Errno::EPERM);
        }
        let st = self.mnt.client.link(self.handle, name, t.handle)?;
        t.set_cached(st);
        Ok(())
    }

    fn unlink(&self, name: &[u8]) -> Result<(), Errno> {
        self.dir_op(name)?;
        self.mnt.client.unlink(self.handle, name, false)?;
        Ok(())
    }

    fn rmdir(&self, name: &[u8]) -> Result<(), Errno> {
        self.dir_op(name)?;
        self.mnt.client.unlink(self.handle, name, true)?;
        Ok(())
    }

    fn rename(
        &self,
        old_name: &[u8],
        new_dir: &Arc<dyn Inode>,
        new_name: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        self.dir_op(old_name)?;
        let nd = self.same_mount(new_dir)?;
        nd.dir_op(new_name)?;
        if flags & !3 != 0 || flags == 3 {
            return Err(Errno::EINVAL);
        }
        self.mnt
            .client
            .rename(self.handle, old_name, nd.handle, new_name, flags)?;
        Ok(())
    }

    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        self.want_write()?;
        if a.size.is_some_and(|s| s > i64::MAX as u64) {
            return Err(Errno::EFBIG);
        }
        let st = self.mnt.client.setattr(self.handle, a)?;
        self.set_cached(st);
        Ok(())
    }

    fn allocate(&self, off: u64, len: u64, keep_size: bool) -> Result<(), Errno> {
        // Only reached without an open host fd (open files fallocate their fd):
        // extend through setattr, as mode 0 / KEEP_SIZE would.
        self.want_write()?;
        if self.cached().mode & S_IFMT != S_IFREG {
            return Err(Errno::ENODEV);
        }
        let end = off.checked_add(len).ok_or(Errno::EFBIG)?;
        if !keep_size && end > self.stat()?.size as u64 {
            self.setattr(&SetAttr {
                size: Some(end),
                ..Default::default()
            })?;
        }
        Ok(())
    }

    fn getxattr(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        Self::xattr_name(name)?;
        self.mnt.client.getxattr(self.handle, name)
    }

    fn setxattr(&self, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno> {
        use crate::inode::{XATTR_CREATE, XATTR_REPLACE};
        Self::xattr_name(name)?;
        self.want_write()?;
        if flags == XATTR_CREATE | XATTR_REPLACE {
            // Linux: EEXIST if present, ENODATA if absent (the gofer takes one flag).
            return match self.mnt.client.getxattr(self.handle, name) {
                Ok(_) => Err(Errno::EEXIST),
                Err(Errno::ENODATA) => Err(Errno::ENODATA),
                Err(e) => Err(e),
            };
        }
        self.mnt.client.setxattr(self.handle, name, value, flags)
    }

    fn listxattr(&self) -> Result<Vec<u8>, Errno> {
        match self.cached().mode & S_IFMT {
            // The gofer only opens regular files and directories for xattrs.
            S_IFREG | S_IFDIR => self.mnt.client.listxattr(self.handle),
            _ => Ok(Vec::new()),
        }
    }

    fn removexattr(&self, name: &[u8]) -> Result<(), Errno> {
        Self::xattr_name(name)?;
        self.want_write()?;
        self.mnt.client.removexattr(self.handle, name)
    }
}

/// An open remote directory: listed through the gofer.
struct RemoteDirFile {
    node: Arc<RemoteInode>,
}

impl FileOps for RemoteDirFile {
    fn stat(&self) -> Result<Stat, Errno> {
        self.node.stat()
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        self.node.statfs()
    }
    fn is_dir(&self) -> bool {
        true
    }
    fn readdir(&self, off: u64, max_bytes: usize) -> Result<Vec<DirEntry>, Errno> {
        let max = max_bytes.clamp(256, 60 * 1024) as u32;
        self.node.mnt.client.getdents(self.node.handle, off, max)
    }
}
