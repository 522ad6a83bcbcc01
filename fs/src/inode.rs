//! The node interface each file system implements. The VFS caches the results of
//! `lookup` in dentries; everything path-related (walks, symlinks, mounts,
//! permissions) is done by the VFS, not by the file systems.

use std::sync::Arc;

use abi::linux::{Stat, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
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

/// A file-system node.
///
/// Mutating operations (create, mkdir, unlink, ...) arrive with the writable file
/// systems; they will be added here with default implementations returning EROFS.
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
}

pub use abi::linux::{StatFs, ST_RDONLY};
