//! Per-process file descriptor tables: fd -> (open file description, FD_CLOEXEC).
//! Shared by CLONE_FILES, copied by fork. The RLIMIT_NOFILE limit is passed into
//! each allocating call (it belongs to the process and setrlimit can change it).

use std::sync::{Arc, Mutex, MutexGuard};

use abi::Errno;

use crate::file::OpenFile;

#[derive(Clone)]
struct Entry {
    file: Arc<OpenFile>,
    cloexec: bool,
}

#[derive(Default)]
pub struct FdTable {
    slots: Mutex<Vec<Option<Entry>>>,
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
        })
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
        let mut t = self.lock();
        let i = fd as usize;
        if i >= t.len() {
            t.resize(i + 1, None);
        }
        Ok(t[i].replace(Entry { file, cloexec }).map(|e| e.file))
    }

    /// Removes `fd` (close); EBADF if it was not open.
    pub fn remove(&self, fd: i32) -> Result<Arc<OpenFile>, Errno> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        let mut t = self.lock();
        let e = t
            .get_mut(fd as usize)
            .and_then(|s| s.take())
            .ok_or(Errno::EBADF)?;
        while matches!(t.last(), Some(None)) {
            t.pop();
        }
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
        drop(dropped);
    }

    /// Closes everything (process exit).
    pub fn clear(&self) {
        let all = std::mem::take(&mut *self.lock());
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
