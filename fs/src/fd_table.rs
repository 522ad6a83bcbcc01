//! Per-process file descriptor tables: fd -> (open file description, FD_CLOEXEC).
//! Shared by CLONE_FILES, copied by fork. The RLIMIT_NOFILE limit is passed into
//! each allocating call (it belongs to the process and setrlimit can change it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use abi::Errno;

use crate::file::OpenFile;
use crate::lock::{self, OwnerId};

#[derive(Clone)]
struct Entry {
    file: Arc<OpenFile>,
    cloexec: bool,
}

/// An fd table is also the owner of its process's POSIX record locks (as
/// Linux's files_struct): closing any fd of a file drops the table's locks on
/// that file, and so does dropping the table.
pub struct FdTable {
    slots: Mutex<Vec<Option<Entry>>>,
    lock_owner: OwnerId,
    /// POSIX locks may be held: closes must release them.
    has_posix_locks: AtomicBool,
}

impl Default for FdTable {
    fn default() -> FdTable {
        FdTable {
            slots: Mutex::default(),
            lock_owner: lock::new_owner_id(),
            has_posix_locks: AtomicBool::new(false),
        }
    }
}

impl Drop for FdTable {
    fn drop(&mut self) {
        if self.has_posix_locks.load(Ordering::SeqCst) {
            lock::release_owner(self.lock_owner);
        }
    }
}

/// Largest fd count ever allowed regardless of RLIMIT_NOFILE (Linux's nr_open default).
pub const NR_OPEN: u64 = 1 << 20;

fn cap(limit: u64) -> usize {
    limit.min(NR_OPEN) as usize
}

impl FdTable {
    pub fn new() -> Arc<FdTable> {
        Arc::new(FdTable::default())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Option<Entry>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy (fork without CLONE_FILES): same descriptions, same flags.
    pub fn fork(&self) -> Arc<FdTable> {
        Arc::new(FdTable {
            slots: Mutex::new(self.lock().clone()),
            lock_owner: lock::new_owner_id(),
            has_posix_locks: AtomicBool::new(false),
        })
    }

    /// The owner id of this table's POSIX locks, for a caller about to use
    /// them (from then on, closes release them).
    pub fn posix_lock_owner(&self) -> OwnerId {
        self.has_posix_locks.store(true, Ordering::SeqCst);
        self.lock_owner
    }

    /// An fd of `f` was closed: its file's POSIX locks of this table go.
    fn closed(&self, f: &OpenFile) {
        if self.has_posix_locks.load(Ordering::SeqCst) {
            f.release_posix_locks(self.lock_owner);
        }
    }

    /// The file at `fd`; EBADF if none.
    pub fn get(&self, fd: i32) -> Result<Arc<OpenFile>, Errno> {
        self.get_with_flags(fd).map(|(f, _)| f)
    }

    /// The file at `fd` and its close-on-exec flag.
    pub fn get_with_flags(&self, fd: i32) -> Result<(Arc<OpenFile>, bool), Errno> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        match self.lock().get(fd as usize) {
            Some(Some(e)) => Ok((e.file.clone(), e.cloexec)),
            _ => Err(Errno::EBADF),
        }
    }

    /// Installs `file` at the lowest free fd; EMFILE past `limit` (RLIMIT_NOFILE).
    pub fn insert(&self, file: Arc<OpenFile>, cloexec: bool, limit: u64) -> Result<i32, Errno> {
        self.insert_from(0, file, cloexec, limit)
    }

    /// Installs `file` at the lowest free fd >= `min` (F_DUPFD); EINVAL when `min`
    /// is past the limit, EMFILE when the table is full.
    pub fn insert_from(
        &self,
        min: i32,
        file: Arc<OpenFile>,
        cloexec: bool,
        limit: u64,
    ) -> Result<i32, Errno> {
        let cap = cap(limit);
        if min < 0 || min as usize >= cap {
            return Err(Errno::EINVAL);
        }
        let mut t = self.lock();
        let start = min as usize;
        let fd = (start..t.len())
            .find(|&i| t[i].is_none())
            .unwrap_or(t.len().max(start));
        if fd >= cap {
            return Err(Errno::EMFILE);
        }
        if fd >= t.len() {
            t.resize(fd + 1, None);
        }
        t[fd] = Some(Entry { file, cloexec });
        Ok(fd as i32)
    }

    /// Installs `file` at exactly `fd` (dup2/dup3), replacing what was there; the
    /// replaced file is returned so the caller drops (closes) it outside the lock.
    /// EBADF when `fd` is negative or not below the limit.
    pub fn insert_at(
        &self,
        fd: i32,
        file: Arc<OpenFile>,
        cloexec: bool,
        limit: u64,
    ) -> Result<Option<Arc<OpenFile>>, Errno> {
        if fd < 0 || fd as usize >= cap(limit) {
            return Err(Errno::EBADF);
        }
        let old = {
            let mut t = self.lock();
            let i = fd as usize;
            if i >= t.len() {
                t.resize(i + 1, None);
            }
            t[i].replace(Entry { file, cloexec }).map(|e| e.file)
        };
        if let Some(f) = &old {
            self.closed(f);
        }
        Ok(old)
    }

    /// Removes `fd` (close); EBADF if it was not open.
    pub fn remove(&self, fd: i32) -> Result<Arc<OpenFile>, Errno> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        let e = {
            let mut t = self.lock();
            let e = t
                .get_mut(fd as usize)
                .and_then(|s| s.take())
                .ok_or(Errno::EBADF)?;
            while matches!(t.last(), Some(None)) {
                t.pop();
            }
            e
        };
        self.closed(&e.file);
        Ok(e.file)
    }

    pub fn get_cloexec(&self, fd: i32) -> Result<bool, Errno> {
        self.get_with_flags(fd).map(|(_, c)| c)
    }

    pub fn set_cloexec(&self, fd: i32, on: bool) -> Result<(), Errno> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        match self.lock().get_mut(fd as usize) {
            Some(Some(e)) => {
                e.cloexec = on;
                Ok(())
            }
            _ => Err(Errno::EBADF),
        }
    }

    /// Closes every close-on-exec fd (execve).
    pub fn close_on_exec(&self) {
        let dropped: Vec<Entry> = {
            let mut t = self.lock();
            let v = t
                .iter_mut()
                .filter(|s| s.as_ref().is_some_and(|e| e.cloexec))
                .filter_map(|s| s.take())
                .collect();
            while matches!(t.last(), Some(None)) {
                t.pop();
            }
            v
        };
        for e in &dropped {
            self.closed(&e.file);
        }
        drop(dropped);
    }

    /// Closes everything (process exit).
    pub fn clear(&self) {
        let all = std::mem::take(&mut *self.lock());
        if self.has_posix_locks.load(Ordering::SeqCst) {
            lock::release_owner(self.lock_owner);
        }
        drop(all);
    }

    /// Open fds, ascending (for /proc/self/fd and the like).
    pub fn fds(&self) -> Vec<i32> {
        self.lock()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| i as i32)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.lock().iter().filter(|s| s.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
