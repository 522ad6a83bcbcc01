//! The MemoryFile: one sparse memfd that holds all workload memory, mapped once
//! into the sentry. Address spaces map ranges of it; the sentry copies to and from
//! workload memory through its own mapping, never through a workload pointer.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use abi::{Errno, PAGE_SIZE};

/// Default size of the (sparse) file: the host backs only pages that are touched.
pub const DEFAULT_SIZE: u64 = 1 << 40;

/// One memfd holding workload memory, with a page-granular range allocator.
pub struct MemoryFile {
    fd: OwnedFd,
    base: *mut u8,
    size: u64,
    /// Free ranges: start -> length, coalesced, page aligned.
    free: Mutex<BTreeMap<u64, u64>>,
    /// Bytes of private writable mappings the sandbox's address spaces have
    /// committed (Linux's Committed_AS), and the most they may commit
    /// (u64::MAX: no limit). See [`MemoryFile::check_commit`].
    committed: AtomicU64,
    commit_limit: AtomicU64,
    /// The most one mapping may commit at once (Linux's heuristic overcommit:
    /// no single allocation larger than the machine's memory).
    single_limit: AtomicU64,
    /// Set while the sandbox's memory is near its limit: file data (tmpfs)
    /// stops growing, with ENOSPC, before anything has to be OOM-killed.
    pressure: AtomicBool,
}

// SAFETY: `base` points at a MAP_SHARED mapping that lives as long as `self`; all
// access goes through bounds-checked copies, and concurrent copies to the same
// bytes behave as racing user-space accesses do (no Rust references are formed).
unsafe impl Send for MemoryFile {}
// SAFETY: as above.
unsafe impl Sync for MemoryFile {}

impl MemoryFile {
    /// Creates a memfd of `size` bytes (sparse) and maps it.
    pub fn new(size: u64) -> std::io::Result<MemoryFile> {
        let size = abi::page_down(size);
        // SAFETY: plain syscall with a valid NUL-terminated name.
        let fd = unsafe { libc::memfd_create(c"runsc-memory".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: plain syscall on our fd.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size as i64) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: maps our own memfd; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let mut free = BTreeMap::new();
        free.insert(0, size);
        Ok(MemoryFile {
            fd,
            base: base as *mut u8,
            size,
            free: Mutex::new(free),
            committed: AtomicU64::new(0),
            commit_limit: AtomicU64::new(u64::MAX),
            single_limit: AtomicU64::new(u64::MAX),
            pressure: AtomicBool::new(false),
        })
    }

    /// The memfd (address spaces map it).
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The sentry's mapping of the whole file (`size()` bytes). The KVM platform
    /// registers it as guest memory and edits page tables through it.
    pub(crate) fn base_ptr(&self) -> *mut u8 {
        self.base
    }

    /// Total size of the file.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Sets the commit limit: `total` for everything committed, `single`
    /// for one request (bytes; u64::MAX for none).
    pub fn set_commit_limit(&self, total: u64, single: u64) {
        self.single_limit.store(single, Ordering::Relaxed);
        self.commit_limit.store(total, Ordering::Relaxed);
    }

    pub fn commit_limit(&self) -> u64 {
        self.commit_limit.load(Ordering::Relaxed)
    }

    /// See the `pressure` field (set by the sandbox's memory limit's poller).
    pub fn set_pressure(&self, on: bool) {
        if self.pressure.load(Ordering::Relaxed) != on {
            self.pressure.store(on, Ordering::Relaxed);
        }
    }

    pub fn under_pressure(&self) -> bool {
        self.pressure.load(Ordering::Relaxed)
    }

    /// Bytes committed now.
    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::Relaxed)
    }

    /// ENOMEM if committing `more` bytes would pass the commit limit, or
    /// `more` alone the single-request limit (Linux's __vm_enough_memory). A check, not a reservation: callers record what
    /// they hold with [`MemoryFile::adjust_commit`] once the change is made.
    pub fn check_commit(&self, more: u64) -> Result<(), Errno> {
        let limit = self.commit_limit();
        if more == 0 || limit == u64::MAX {
            return Ok(());
        }
        if more > self.single_limit.load(Ordering::Relaxed) {
            return Err(Errno::ENOMEM);
        }
        match self.committed().checked_add(more) {
            Some(t) if t <= limit => Ok(()),
            _ => Err(Errno::ENOMEM),
        }
    }

    /// [`MemoryFile::check_commit`] without the single-request limit (fork
    /// commits many mappings at once, each of which passed it).
    pub fn check_commit_total(&self, more: u64) -> Result<(), Errno> {
        let limit = self.commit_limit();
        if more == 0 || limit == u64::MAX {
            return Ok(());
        }
        match self.committed().checked_add(more) {
            Some(t) if t <= limit => Ok(()),
            _ => Err(Errno::ENOMEM),
        }
    }

    /// Changes the committed total by `delta` bytes.
    pub fn adjust_commit(&self, delta: i64) {
        if delta >= 0 {
            self.committed.fetch_add(delta as u64, Ordering::Relaxed);
        } else {
            self.committed
                .fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// Bytes of the file the host backs with memory now (fstat's st_blocks):
    /// all workload memory and tmpfs data the sandbox uses.
    pub fn backed_bytes(&self) -> u64 {
        // SAFETY: fstat on our fd into a zeroed stat buffer.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::fstat(self.fd.as_raw_fd(), &mut st) } < 0 {
            return 0;
        }
        (st.st_blocks as u64).saturating_mul(512)
    }

    /// Allocates `len` bytes (rounded up to pages) of zeroed memory; returns the offset.
    pub fn allocate(&self, len: u64) -> Result<u64, Errno> {
        let len = abi::page_up(len).ok_or(Errno::ENOMEM)?.max(PAGE_SIZE);
        let mut free = self.free.lock().unwrap();
        let (start, flen) = free
            .iter()
            .find(|(_, l)| **l >= len)
            .map(|(s, l)| (*s, *l))
            .ok_or(Errno::ENOMEM)?;
        free.remove(&start);
        if flen > len {
            free.insert(start + len, flen - len);
        }
        Ok(start)
    }

    /// Like [`MemoryFile::allocate`], but from the top of the file down: for
    /// the platform's own pages (KVM page tables), which then never sit
    /// between workload allocations (mremap grows those in place only when
    /// the file bytes after them are free).
    pub fn allocate_high(&self, len: u64) -> Result<u64, Errno> {
        let len = abi::page_up(len).ok_or(Errno::ENOMEM)?.max(PAGE_SIZE);
        let mut free = self.free.lock().unwrap();
        let (start, flen) = free
            .iter()
            .rev()
            .find(|(_, l)| **l >= len)
            .map(|(s, l)| (*s, *l))
            .ok_or(Errno::ENOMEM)?;
        if flen > len {
            free.insert(start, flen - len);
        } else {
            free.remove(&start);
        }
        Ok(start + flen - len)
    }

    /// Grows the allocation `[off, off+len)` in place to `new_len` if the bytes after
    /// it are free. Returns whether it did.
    pub fn try_extend(&self, off: u64, len: u64, new_len: u64) -> bool {
        let (Some(len), Some(new_len)) = (abi::page_up(len), abi::page_up(new_len)) else {
            return false;
        };
        if new_len <= len {
            return true;
        }
        let need = new_len - len;
        let at = off + len;
        let mut free = self.free.lock().unwrap();
        match free.get(&at).copied() {
            Some(flen) if flen >= need => {
                free.remove(&at);
                if flen > need {
                    free.insert(at + need, flen - need);
                }
                true
            }
            _ => false,
        }
    }

    /// Returns `[off, off+len)` to the allocator and to the host (PUNCH_HOLE), so it
    /// reads as zeros when allocated again.
    pub fn release(&self, off: u64, len: u64) {
        let Some(len) = abi::page_up(len) else { return };
        if len == 0 || off.checked_add(len).is_none_or(|e| e > self.size) {
            return;
        }
        self.punch(off, len);
        let mut free = self.free.lock().unwrap();
        let mut start = off;
        let mut end = off + len;
        if let Some((&ps, &pl)) = free.range(..start).next_back() {
            if ps + pl == start {
                free.remove(&ps);
                start = ps;
            }
        }
        if let Some(nl) = free.remove(&end) {
            end += nl;
        }
        free.insert(start, end - start);
    }

    /// Zeroes `[off, off+len)` (page aligned) by punching a hole.
    pub fn punch(&self, off: u64, len: u64) {
        // SAFETY: plain syscall on our fd; failure only leaves stale bytes, which
        // callers never rely on for isolation (ranges are per sandbox).
        let r = unsafe {
            libc::fallocate(
                self.fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off as i64,
                len as i64,
            )
        };
        if r < 0 {
            tracing::warn!(
                "memory file punch hole failed: {}",
                std::io::Error::last_os_error()
            );
        }
    }

    fn check(&self, off: u64, len: usize) {
        assert!(
            off.checked_add(len as u64).is_some_and(|e| e <= self.size),
            "memory file access out of range: {off:#x}+{len:#x}"
        );
    }

    /// Copies bytes out of the file at `off`.
    pub fn read_at(&self, off: u64, buf: &mut [u8]) {
        self.check(off, buf.len());
        // SAFETY: the range is inside our mapping (checked above) and `buf` is a
        // distinct Rust buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.add(off as usize), buf.as_mut_ptr(), buf.len())
        }
    }

    /// Copies bytes into the file at `off`.
    pub fn write_at(&self, off: u64, buf: &[u8]) {
        self.check(off, buf.len());
        // SAFETY: as read_at.
        unsafe {
            std::ptr::copy_nonoverlapping(buf.as_ptr(), self.base.add(off as usize), buf.len())
        }
    }

    /// Copies `len` bytes within the file (ranges must not overlap).
    pub fn copy_within(&self, src: u64, dst: u64, len: u64) {
        self.check(src, len as usize);
        self.check(dst, len as usize);
        assert!(
            src + len <= dst || dst + len <= src,
            "overlapping memory file copy"
        );
        // SAFETY: both ranges are inside our mapping and do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.add(src as usize),
                self.base.add(dst as usize),
                len as usize,
            )
        }
    }

    /// Bytes of `[off, off+len)` the host has backed (not holes): the resident
    /// part of a mapping.
    pub fn data_bytes(&self, off: u64, len: u64) -> u64 {
        let end = off + len;
        let mut cur = off;
        let mut total = 0;
        while cur < end {
            // SAFETY: plain lseek on our fd.
            let data = unsafe { libc::lseek(self.fd.as_raw_fd(), cur as i64, libc::SEEK_DATA) };
            if data < 0 || data as u64 >= end {
                break;
            }
            // SAFETY: as above.
            let hole = unsafe { libc::lseek(self.fd.as_raw_fd(), data, libc::SEEK_HOLE) };
            let hole = if hole < 0 {
                end
            } else {
                (hole as u64).min(end)
            };
            total += hole - data as u64;
            cur = hole;
        }
        total
    }

    /// Copies `len` bytes from `src` to `dst` (non-overlapping), skipping holes so
    /// that untouched pages stay unallocated in the copy (fork of a mostly empty
    /// 64 MiB reservation costs nothing).
    pub fn copy_sparse(&self, src: u64, dst: u64, len: u64) {
        let end = src + len;
        let mut cur = src;
        while cur < end {
            // SAFETY: plain lseek on our fd.
            let data = unsafe { libc::lseek(self.fd.as_raw_fd(), cur as i64, libc::SEEK_DATA) };
            if data < 0 || data as u64 >= end {
                break;
            }
            let data = data as u64;
            // SAFETY: as above.
            let hole = unsafe { libc::lseek(self.fd.as_raw_fd(), data as i64, libc::SEEK_HOLE) };
            let hole = if hole < 0 {
                end
            } else {
                (hole as u64).min(end)
            };
            self.copy_within(data, dst + (data - src), hole - data);
            cur = hole;
        }
    }

    /// Atomically applies `f` to the aligned u32 at `off` (compare-and-swap loop),
    /// returning the old value: futex operations on memory that workload threads
    /// access concurrently.
    pub fn update_u32(&self, off: u64, f: impl Fn(u32) -> u32) -> u32 {
        assert!(off.is_multiple_of(4), "unaligned atomic");
        self.check(off, 4);
        // SAFETY: the word is inside our mapping (checked), 4-byte aligned, and
        // only ever accessed atomically or by plain copies, as in the kernel.
        let a = unsafe {
            std::sync::atomic::AtomicU32::from_ptr(self.base.add(off as usize) as *mut u32)
        };
        let mut cur = a.load(std::sync::atomic::Ordering::SeqCst);
        loop {
            match a.compare_exchange(
                cur,
                f(cur),
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
            ) {
                Ok(old) => return old,
                Err(now) => cur = now,
            }
        }
    }

    /// Finds the first NUL in `[off, off+len)`.
    pub fn find_nul(&self, off: u64, len: usize) -> Option<usize> {
        let mut buf = vec![0u8; len];
        self.read_at(off, &mut buf);
        buf.iter().position(|&b| b == 0)
    }
}

impl Drop for MemoryFile {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping, which no one references any more.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.size as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocate_release_coalesce() {
        let mf = MemoryFile::new(1 << 24).unwrap();
        let a = mf.allocate(4096).unwrap();
        let b = mf.allocate(8192).unwrap();
        assert_ne!(a, b);
        mf.write_at(a, b"hello");
        let mut buf = [0u8; 5];
        mf.read_at(a, &mut buf);
        assert_eq!(&buf, b"hello");
        mf.release(a, 4096);
        mf.release(b, 8192);
        assert_eq!(mf.free.lock().unwrap().len(), 1);
        let c = mf.allocate(4096).unwrap();
        mf.read_at(c, &mut buf);
        assert_eq!(buf, [0; 5], "released memory reads as zeros");
        assert!(mf.try_extend(c, 4096, 3 * 4096));
    }
}
