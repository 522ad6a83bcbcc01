//! The node interface each file system implements. The VFS caches the results of
//! `lookup` in dentries; everything path-related (walks, symlinks, mounts,
//! permissions) is done by the VFS, not by the file systems.

use std::any::Any;
use std::sync::Arc;

use abi::linux::{Stat, Timespec, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use abi::Errno;

use crate::file::FileOps;

/// What permission checks and the walk need, cheaply (cached by the file system).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attr {
    /// Type and permission bits (`st_mode`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Attr {
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
    pub fn is_regular(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }
}

/// How setattr sets a timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSet {
    Now,
    At(Timespec),
}

/// The changes of one setattr call (None: unchanged). The VFS has checked
/// permissions; ctime is updated by the file system.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// Permission bits (the type bits are ignored).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// New size (truncate/extend a regular file).
    pub size: Option<u64>,
    pub atime: Option<TimeSet>,
    pub mtime: Option<TimeSet>,
}

/// Where a magic link leads.
pub enum MagicTarget {
    /// A place in the mount tree (a file opened by path, a directory).
    Location(crate::vfs::Location),
    /// An open file without a path (pipe, socket, anonymous or host file):
    /// opening the link makes a new description of the same file.
    File(Arc<crate::file::OpenFile>),
}

/// A file-system node.
///
/// The mutating operations default to EROFS (read-only file systems implement
/// none of them). Names given to them are single components, never "." or "..";
/// the VFS has done the permission checks, the existence checks it can, and the
/// read-only-mount check.
pub trait Inode: Send + Sync {
    /// Cached type, mode and owner.
    fn attr(&self) -> Attr;
    /// Fresh attributes.
    fn stat(&self) -> Result<Stat, Errno>;
    /// The child called `name` (never "." or ".."; the VFS handles those). ENOENT if none.
    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno>;
    /// A symlink's target; EINVAL for anything else.
    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        Err(Errno::EINVAL)
    }
    /// Opens the node. `flags` are the open(2) flags after the VFS's checks
    /// (permissions, O_DIRECTORY, O_NOFOLLOW, EISDIR, EROFS are already done).
    fn open(self: Arc<Self>, flags: i32) -> Result<Box<dyn FileOps>, Errno>;
    /// statfs(2) of the file system holding this node.
    fn statfs(&self) -> Result<StatFs, Errno>;

    /// A "magic link" (/proc/[pid]/fd/N, /proc/[pid]/cwd, ...): what following
    /// it reaches, instead of walking its readlink text. None for ordinary nodes.
    fn follow_magic(&self) -> Option<Result<MagicTarget, Errno>> {
        None
    }
    /// Whether a cached dentry for this node no longer names it (the node went
    /// away behind the VFS's back, as a devpts replica does): the next walk
    /// looks the name up again.
    fn is_stale(&self) -> bool {
        false
    }
    /// For file systems that need to recognise their own nodes (rename, link).
    fn as_any(&self) -> Option<&dyn Any> {
        None
    }
    /// Creates regular file `name` in this directory (`mode`: permission bits).
    fn create(
        &self,
        _name: &[u8],
        _mode: u32,
        _uid: u32,
        _gid: u32,
    ) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::EROFS)
    }
    fn mkdir(
        &self,
        _name: &[u8],
        _mode: u32,
        _uid: u32,
        _gid: u32,
    ) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::EROFS)
    }
    /// A node of the type in `mode` (FIFO, socket, char/block device with `rdev`,
    /// or a regular file).
    fn mknod(
        &self,
        _name: &[u8],
        _mode: u32,
        _rdev: u64,
        _uid: u32,
        _gid: u32,
    ) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::EROFS)
    }
    /// An unnamed regular file in this directory's file system (O_TMPFILE);
    /// `linkable`: linkat(2) may give it a name later (no O_EXCL).
    fn tmpfile(
        &self,
        _mode: u32,
        _uid: u32,
        _gid: u32,
        _linkable: bool,
    ) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    fn symlink(
        &self,
        _name: &[u8],
        _target: &[u8],
        _uid: u32,
        _gid: u32,
    ) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::EROFS)
    }
    /// Adds `name` as a hard link to `target` (EXDEV if not of this file system).
    fn link(&self, _name: &[u8], _target: &Arc<dyn Inode>) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }
    /// Removes non-directory `name` (EISDIR for a directory).
    fn unlink(&self, _name: &[u8]) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }
    /// Removes empty directory `name` (ENOTDIR, ENOTEMPTY).
    fn rmdir(&self, _name: &[u8]) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }
    /// Renames `old_name` here to `new_name` in `new_dir` (renameat2 `flags`:
    /// RENAME_NOREPLACE, RENAME_EXCHANGE).
    fn rename(
        &self,
        _old_name: &[u8],
        _new_dir: &Arc<dyn Inode>,
        _new_name: &[u8],
        _flags: u32,
    ) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }
    fn setattr(&self, _attr: &SetAttr) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }
    /// fallocate(2) mode 0 / FALLOC_FL_KEEP_SIZE.
    fn allocate(&self, _off: u64, _len: u64, _keep_size: bool) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    // ---- Extended attributes. The VFS has done Linux's `xattr_permission` checks
    // (namespace rules, file permissions, read-only mount); a file system without
    // xattrs keeps the defaults (EOPNOTSUPP), as Linux's do.

    /// The whole value of xattr `name` (ENODATA if absent).
    fn getxattr(&self, _name: &[u8]) -> Result<Vec<u8>, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Sets xattr `name`; `flags`: 0, XATTR_CREATE (EEXIST if present) or
    /// XATTR_REPLACE (ENODATA if absent).
    fn setxattr(&self, _name: &[u8], _value: &[u8], _flags: i32) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// All xattr names, each NUL-terminated (the VFS hides trusted.* from the
    /// unprivileged).
    fn listxattr(&self) -> Result<Vec<u8>, Errno> {
        Ok(Vec::new())
    }
    /// Removes xattr `name` (ENODATA if absent).
    fn removexattr(&self, _name: &[u8]) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// fallocate(2) FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE.
    fn punch_hole(&self, _off: u64, _len: u64) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }
}

/// `setxattr` flags.
pub const XATTR_CREATE: i32 = 1;
pub const XATTR_REPLACE: i32 = 2;

/// Linux's handler lookup (`xattr_resolve_name`) for a file system supporting the
/// namespaces `prefixes` (each ending in '.'): a name in one of them with something
/// after the prefix is fine, a bare prefix is EINVAL, anything else EOPNOTSUPP.
pub fn xattr_resolve(name: &[u8], prefixes: &[&[u8]]) -> Result<(), Errno> {
    for p in prefixes {
        if let Some(rest) = name.strip_prefix(*p) {
            return if rest.is_empty() {
                Err(Errno::EINVAL)
            } else {
                Ok(())
            };
        }
    }
    Err(Errno::EOPNOTSUPP)
}

pub use abi::linux::{StatFs, ST_RDONLY};
