//! A task's file-system context: root, working directory and umask (shared by
//! CLONE_FS, copied otherwise).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::vfs::Location;

pub struct FsContext {
    root: Mutex<Location>,
    cwd: Mutex<Location>,
    umask: AtomicU32,
}

impl FsContext {
    /// A context rooted (and with its cwd) at `root`, umask 022.
    pub fn new(root: Location) -> Arc<FsContext> {
        Arc::new(FsContext {
            cwd: Mutex::new(root.clone()),
            root: Mutex::new(root),
            umask: AtomicU32::new(0o022),
        })
    }

    /// A copy for a child that does not share it (fork without CLONE_FS).
    pub fn fork(&self) -> Arc<FsContext> {
        Arc::new(FsContext {
            root: Mutex::new(self.root()),
            cwd: Mutex::new(self.cwd()),
            umask: AtomicU32::new(self.umask()),
        })
    }

    pub fn root(&self) -> Location {
        self.root.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// chroot(2) (the caller checks permissions).
    pub fn set_root(&self, loc: Location) {
        *self.root.lock().unwrap_or_else(|e| e.into_inner()) = loc;
    }

    pub fn cwd(&self) -> Location {
        self.cwd.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_cwd(&self, loc: Location) {
        *self.cwd.lock().unwrap_or_else(|e| e.into_inner()) = loc;
    }

    pub fn umask(&self) -> u32 {
        self.umask.load(Ordering::Relaxed)
    }

    /// Sets the umask (masked to 0777) and returns the old one.
    pub fn set_umask(&self, m: u32) -> u32 {
        self.umask.swap(m & 0o777, Ordering::Relaxed)
    }
}
