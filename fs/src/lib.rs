//! The VFS: mounts, dentries, path walk, file descriptions and fd tables, and the
//! file systems that need no kernel state (gofer-backed, host fds, synthetic dirs).
//!
//! Layout:
//! - [`vfs`]: the mount tree, dentries, path walk and the path-based operations
//!   (`open`, `stat`, `access`, `readlink`, the mutating calls).
//! - [`file`]: open file descriptions ([`OpenFile`]) and the [`FileOps`] trait.
//! - [`fd_table`]: per-process descriptor tables.
//! - [`context`]: a task's root, cwd and umask.
//! - [`inode`]: the [`Inode`] trait every file system implements.
//! - [`pagestore`]: file data in the MemoryFile (tmpfs, memfd).
//! - [`remote`]: the gofer-backed file system, over the [`RemoteFs`] trait
//!   (implemented for `gofer::Client`).
//! - [`host`]: files wrapping host fds (the workload's inherited stdio).
//! - [`overlay`]: a writable tmpfs over a read-only lower tree (the `runsc do`
//!   root).
//! - [`pipe`]: pipes (pipe(2), pipe2(2)).
//! - [`devfs`]: /dev; [`devpts`]: pseudo-terminals (/dev/ptmx, /dev/pts), the
//!   line discipline and controlling-terminal job control.
//! - [`waiter`]: interruptible blocking (waiters, wait queues, the block loop).
//! - [`synthetic`]: the sentry-owned empty directories (/proc, /sys, /dev for now).

pub mod anon;
pub mod context;
pub mod devfs;
pub mod devpts;
pub mod fasync;
pub mod fd_table;
pub mod file;
pub mod host;
pub mod inode;
pub mod lock;
pub mod overlay;
pub mod pagestore;
pub mod perm;
pub mod pipe;
pub mod remote;
pub mod socket;
pub mod synthetic;
pub mod tmpfs;
pub mod vfs;
pub mod waiter;

#[cfg(test)]
mod overlay_tests;
#[cfg(test)]
mod remote_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

pub use context::FsContext;
pub use fd_table::FdTable;
pub use file::{DirEntry, FileOps, OpenFile, DEFAULT_POLLMASK};
pub use inode::{Inode, SetAttr, StatFs, TimeSet};
pub use perm::{Creds, MAY_EXEC, MAY_READ, MAY_WRITE};
pub use pipe::Pipe;
pub use remote::RemoteFs;
pub use vfs::{Location, Mount, OpenHow, Vfs, WalkOpts};

/// Longest path accepted (including the NUL), as Linux's PATH_MAX.
pub const PATH_MAX: usize = 4096;
/// Longest path component.
pub const NAME_MAX: usize = 255;
/// Most symlinks followed in one walk.
pub const MAX_SYMLINKS: u32 = 40;

/// Access to the calling task's memory, for ioctls and the like.
pub trait UserIo {
    fn copy_in(&self, addr: u64, buf: &mut [u8]) -> Result<(), abi::Errno>;
    fn copy_out(&self, addr: u64, buf: &[u8]) -> Result<(), abi::Errno>;
}

/// Positional reads, for memory-mapping and loading files.
pub trait ReadAt: Send + Sync {
    /// Reads up to `buf.len()` bytes at `off`; 0 at end of file.
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, abi::Errno>;
    /// The memory-file pages holding the file's data, for files whose data lives
    /// there (tmpfs, memfd): shared mappings map those pages.
    fn page_store(&self) -> Option<std::sync::Arc<pagestore::PageStore>> {
        None
    }
    /// Writes the bytes of a shared mapping back to the file at `off` (msync,
    /// munmap, exit), for files whose data does not live in the memory file.
    fn write_back(&self, _off: u64, _buf: &[u8]) -> Result<usize, abi::Errno> {
        Err(abi::Errno::EINVAL)
    }
    /// The file's current size, if known (write-back never extends a file).
    fn size(&self) -> Option<u64> {
        None
    }
}
