//! The gofer-backed file system. Nodes are gofer handles; regular files are opened
//! by the gofer and read/written by the sentry through the host fd it returns;
//! directories are listed with the gofer's getdents.
//!
//! The file system talks to the gofer through [`RemoteFs`], implemented for
//! `gofer::Client` (and by a fake in tests).

use std::sync::{Arc, Mutex, OnceLock};

use abi::linux::Stat;
use abi::Errno;

use crate::file::{DirEntry, FileOps};
use crate::host::HostFdOps;
use crate::inode::{Attr, Inode, StatFs, ST_RDONLY};

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
    stat: Mutex<Stat>,
    /// Symlink targets, cached (targets do not change without a rename/unlink).
    link: OnceLock<Vec<u8>>,
}

impl RemoteInode {
    /// The root node of a new mount of `client`'s tree.
    pub fn mount_root(
        client: Arc<dyn RemoteFs>,
        read_only: bool,
    ) -> Result<Arc<RemoteInode>, Errno> {
        let (handle, stat) = client.mount()?;
        let mnt = Arc::new(RemoteMount { client, read_only });
        Ok(Arc::new(RemoteInode {
            mnt,
            handle,
            stat: Mutex::new(stat),
            link: OnceLock::new(),
        }))
    }

    fn cached(&self) -> Stat {
        *self.stat.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for RemoteInode {
    fn drop(&mut self) {
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
        Ok(Arc::new(RemoteInode {
            mnt: self.mnt.clone(),
            handle,
            stat: Mutex::new(stat),
            link: OnceLock::new(),
        }))
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
