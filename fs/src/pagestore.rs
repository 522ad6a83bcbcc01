//! File data kept in the [`MemoryFile`], a page at a time: the backing store of
//! tmpfs (and so memfd) regular files.
//!
//! A file is a map from page index to the memory-file offset of that page.
//! Holes allocate nothing (sparse files; `st_blocks` counts allocated pages) and
//! read as zeros. Read and write copy through the sentry's mapping of the memory
//! file; the memory manager maps the same pages into address spaces for
//! MAP_SHARED, so writes through a mapping and write(2) see each other.
//!
//! Space is charged to a [`Quota`] (the tmpfs mount's size limit) per allocated
//! page. A page removed from the file (truncate, or the file's last reference
//! going) is uncharged at once; while any mapping of the file exists its memory
//! is only returned to the memory file when the last mapping goes (see
//! [`MapRef`]), since address spaces may still map it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use abi::Errno;
use platform::MemoryFile;

/// Page size of the store.
pub const PAGE: u64 = 4096;
/// Largest file size (Linux's MAX_LFS_FILESIZE).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// memfd seals (fcntl F_ADD_SEALS / F_GET_SEALS).
pub const F_SEAL_SEAL: u32 = 0x1;
pub const F_SEAL_SHRINK: u32 = 0x2;
pub const F_SEAL_GROW: u32 = 0x4;
pub const F_SEAL_WRITE: u32 = 0x8;
pub const F_SEAL_FUTURE_WRITE: u32 = 0x10;
pub const F_SEAL_EXEC: u32 = 0x20;
const ALL_SEALS: u32 =
    F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE | F_SEAL_EXEC;

static DEFAULT_MF: OnceLock<Arc<MemoryFile>> = OnceLock::new();

/// Counts truncations that took pages away from mapped files: address spaces
/// that map such files compare it with what they last saw and re-map.
static TRUNCATIONS: AtomicU64 = AtomicU64::new(0);

/// See [`TRUNCATIONS`].
pub fn mapped_truncations() -> u64 {
    TRUNCATIONS.load(Ordering::Acquire)
}

/// Makes `mf` the memory file tmpfs data lives in (the platform's, so that the
/// memory manager can map file pages directly). Call once at boot, before any
/// tmpfs is mounted; returns false if a memory file was already chosen.
pub fn set_memory_file(mf: Arc<MemoryFile>) -> bool {
    DEFAULT_MF.set(mf).is_ok()
}

/// The memory file tmpfs data lives in: the one given to [`set_memory_file`], or
/// else (unit tests) one of our own.
pub fn memory_file() -> Arc<MemoryFile> {
    DEFAULT_MF
        .get_or_init(|| {
            Arc::new(
                MemoryFile::new(platform::memfile::DEFAULT_SIZE)
                    .expect("creating the tmpfs memory file"),
            )
        })
        .clone()
}

/// A size limit shared by the files of one file system.
pub struct Quota {
    used: AtomicU64,
    limit: u64,
}

impl Quota {
    pub fn new(limit: u64) -> Arc<Quota> {
        Arc::new(Quota {
            used: AtomicU64::new(0),
            limit,
        })
    }
    /// Bytes charged (whole pages).
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
    pub fn limit(&self) -> u64 {
        self.limit
    }
    fn charge(&self, pages: u64) -> Result<(), Errno> {
        let delta = pages * PAGE;
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            if cur.checked_add(delta).is_none_or(|n| n > self.limit) {
                return Err(Errno::ENOSPC);
            }
            match self.used.compare_exchange_weak(
                cur,
                cur + delta,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(c) => cur = c,
            }
        }
    }
    fn uncharge(&self, pages: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(pages * PAGE))
            });
    }
}

struct Inner {
    size: u64,
    /// Page index -> memory-file offset.
    pages: BTreeMap<u64, u64>,
}

/// The data of one file. See the module documentation.
pub struct PageStore {
    mf: Arc<MemoryFile>,
    quota: Arc<Quota>,
    inner: RwLock<Inner>,
    seals: AtomicU32,
    /// Mappings of the file (all, and those that may write).
    maps: AtomicUsize,
    writable_maps: AtomicUsize,
    /// Pages removed from the file while mapped: freed when the last mapping goes.
    deferred: Mutex<Vec<u64>>,
}

fn page_of(off: u64) -> u64 {
    off / PAGE
}

impl PageStore {
    /// An empty file charging `quota`, in the tmpfs memory file.
    pub fn new(quota: Arc<Quota>) -> Arc<PageStore> {
        PageStore::new_in(memory_file(), quota)
    }

    /// An empty file charging `quota`, in `mf`.
    pub fn new_in(mf: Arc<MemoryFile>, quota: Arc<Quota>) -> Arc<PageStore> {
        Arc::new(PageStore {
            mf,
            quota,
            inner: RwLock::new(Inner {
                size: 0,
                pages: BTreeMap::new(),
            }),
            seals: AtomicU32::new(F_SEAL_SEAL),
            maps: AtomicUsize::new(0),
            writable_maps: AtomicUsize::new(0),
            deferred: Mutex::new(Vec::new()),
        })
    }

    /// The memory file the pages are in.
    pub fn memory_file(&self) -> &Arc<MemoryFile> {
        &self.mf
    }

    fn read_inner(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_inner(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The file size.
    pub fn size(&self) -> u64 {
        self.read_inner().size
    }

    /// Pages allocated.
    pub fn allocated_pages(&self) -> u64 {
        self.read_inner().pages.len() as u64
    }

    /// st_blocks: 512-byte blocks allocated.
    pub fn blocks(&self) -> u64 {
        self.allocated_pages() * (PAGE / 512)
    }

    /// Reads at `off`; 0 at or past end of file.
    pub fn read(&self, buf: &mut [u8], off: u64) -> usize {
        let inner = self.read_inner();
        if off >= inner.size {
            return 0;
        }
        let n = buf.len().min((inner.size - off) as usize);
        let mut done = 0usize;
        while done < n {
            let pos = off + done as u64;
            let in_page = (pos % PAGE) as usize;
            let chunk = (PAGE as usize - in_page).min(n - done);
            match inner.pages.get(&page_of(pos)) {
                Some(&p) => self
                    .mf
                    .read_at(p + in_page as u64, &mut buf[done..done + chunk]),
                None => buf[done..done + chunk].fill(0),
            }
            done += chunk;
        }
        n
    }

    /// The memory-file offset of page `idx`, allocating (and charging) it if it
    /// is a hole.
    fn get_or_alloc(&self, inner: &mut Inner, idx: u64) -> Result<u64, Errno> {
        if let Some(&p) = inner.pages.get(&idx) {
            return Ok(p);
        }
        // The sandbox's memory is nearly used up: file data is what gives way.
        if self.mf.under_pressure() {
            return Err(Errno::ENOSPC);
        }
        self.quota.charge(1)?;
        match self.mf.allocate(PAGE) {
            Ok(p) => {
                inner.pages.insert(idx, p);
                Ok(p)
            }
            Err(_) => {
                self.quota.uncharge(1);
                Err(Errno::ENOSPC)
            }
        }
    }

    /// Writes `buf` at `off` (at end of file if `append`); returns the bytes
    /// written and the offset after them. A short write happens when space runs
    /// out after some bytes were written.
    pub fn write(&self, buf: &[u8], off: u64, append: bool) -> Result<(usize, u64), Errno> {
        let seals = self.seals();
        if seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            return Err(Errno::EPERM);
        }
        let mut inner = self.write_inner();
        let off = if append { inner.size } else { off };
        if buf.is_empty() {
            return Ok((0, off));
        }
        let end = off.checked_add(buf.len() as u64).ok_or(Errno::EFBIG)?;
        if off >= MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let mut end = end.min(MAX_FILE_SIZE);
        if end > inner.size && seals & F_SEAL_GROW != 0 {
            // Linux writes up to the end of a file that may not grow.
            if off >= inner.size {
                return Err(Errno::EPERM);
            }
            end = inner.size;
        }
        let want = (end - off) as usize;
        let mut done = 0usize;
        while done < want {
            let pos = off + done as u64;
            let in_page = (pos % PAGE) as usize;
            let chunk = (PAGE as usize - in_page).min(want - done);
            let p = match self.get_or_alloc(&mut inner, page_of(pos)) {
                Ok(p) => p,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            self.mf
                .write_at(p + in_page as u64, &buf[done..done + chunk]);
            done += chunk;
        }
        let new_end = off + done as u64;
        if new_end > inner.size {
            inner.size = new_end;
        }
        Ok((done, new_end))
    }

    /// Removes the pages in `[first, last)` from the file, uncharging them and
    /// freeing (or, while mapped, deferring) their memory.
    fn remove_pages(&self, inner: &mut Inner, first: u64, last: u64) {
        let gone: Vec<(u64, u64)> = inner
            .pages
            .range(first..last)
            .map(|(k, v)| (*k, *v))
            .collect();
        if gone.is_empty() {
            return;
        }
        for (k, _) in &gone {
            inner.pages.remove(k);
        }
        self.quota.uncharge(gone.len() as u64);
        let offs: Vec<u64> = gone.into_iter().map(|(_, v)| v).collect();
        self.free(offs);
    }

    fn free(&self, offs: Vec<u64>) {
        let mut deferred = self.deferred.lock().unwrap_or_else(|e| e.into_inner());
        if self.maps.load(Ordering::SeqCst) > 0 {
            deferred.extend(offs);
            TRUNCATIONS.fetch_add(1, Ordering::AcqRel);
        } else {
            drop(deferred);
            self.release_offsets(offs);
        }
    }

    fn release_offsets(&self, mut offs: Vec<u64>) {
        offs.sort_unstable();
        // Release contiguous runs at once.
        let mut i = 0;
        while i < offs.len() {
            let start = offs[i];
            let mut j = i + 1;
            while j < offs.len() && offs[j] == start + (j - i) as u64 * PAGE {
                j += 1;
            }
            self.mf.release(start, (j - i) as u64 * PAGE);
            i = j;
        }
    }

    /// truncate/ftruncate: pages past the new size are freed and the tail of the
    /// last page zeroed; growing allocates nothing.
    pub fn truncate(&self, size: u64) -> Result<(), Errno> {
        if size > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let seals = self.seals();
        let mut inner = self.write_inner();
        if size < inner.size && seals & F_SEAL_SHRINK != 0 {
            return Err(Errno::EPERM);
        }
        if size > inner.size && seals & F_SEAL_GROW != 0 {
            return Err(Errno::EPERM);
        }
        if size < inner.size {
            let keep = size.div_ceil(PAGE);
            self.remove_pages(&mut inner, keep, u64::MAX);
            let tail = size % PAGE;
            if tail != 0 {
                if let Some(&p) = inner.pages.get(&page_of(size)) {
                    let zeros = vec![0u8; (PAGE - tail) as usize];
                    self.mf.write_at(p + tail, &zeros);
                }
            }
        }
        inner.size = size;
        Ok(())
    }

    /// fallocate(2) mode 0 / KEEP_SIZE: allocates the pages of `[off, off+len)`.
    /// Pages allocated before an ENOSPC are kept (Linux undoes them; harmless).
    pub fn allocate(&self, off: u64, len: u64, keep_size: bool) -> Result<(), Errno> {
        let end = off.checked_add(len).ok_or(Errno::EFBIG)?;
        if end > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let seals = self.seals();
        let mut inner = self.write_inner();
        if !keep_size && end > inner.size && seals & F_SEAL_GROW != 0 {
            return Err(Errno::EPERM);
        }
        let (first, last) = (page_of(off), end.div_ceil(PAGE));
        let missing = (last - first) - inner.pages.range(first..last).count() as u64;
        if self
            .quota
            .used()
            .checked_add(missing * PAGE)
            .is_none_or(|u| u > self.quota.limit())
        {
            return Err(Errno::ENOSPC);
        }
        for i in first..last {
            self.get_or_alloc(&mut inner, i)?;
        }
        if !keep_size && end > inner.size {
            inner.size = end;
        }
        Ok(())
    }

    /// fallocate(2) FALLOC_FL_PUNCH_HOLE: zeroes `[off, off+len)`, freeing the
    /// whole pages in it; the size stays.
    pub fn punch_hole(&self, off: u64, len: u64) -> Result<(), Errno> {
        if self.seals() & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            return Err(Errno::EPERM);
        }
        let mut inner = self.write_inner();
        let end = off
            .saturating_add(len)
            .min(inner.size.div_ceil(PAGE) * PAGE);
        if off >= end {
            return Ok(());
        }
        let (first_whole, last_whole) = (off.div_ceil(PAGE), end / PAGE);
        // The partial pages at either edge are zeroed in place.
        for (s, e) in [
            (off, end.min(first_whole * PAGE)),
            ((last_whole * PAGE).max(off), end),
        ] {
            if s < e && !(first_whole..last_whole).contains(&page_of(s)) {
                if let Some(&p) = inner.pages.get(&page_of(s)) {
                    self.mf.write_at(p + s % PAGE, &vec![0u8; (e - s) as usize]);
                }
            }
        }
        if first_whole < last_whole {
            self.remove_pages(&mut inner, first_whole, last_whole);
        }
        Ok(())
    }

    /// lseek SEEK_DATA: the first offset >= `off` inside an allocated page.
    pub fn seek_data(&self, off: u64) -> Result<u64, Errno> {
        let inner = self.read_inner();
        if off >= inner.size {
            return Err(Errno::ENXIO);
        }
        match inner.pages.range(page_of(off)..).next() {
            Some((&i, _)) => {
                let at = (i * PAGE).max(off);
                if at >= inner.size {
                    Err(Errno::ENXIO)
                } else {
                    Ok(at)
                }
            }
            None => Err(Errno::ENXIO),
        }
    }

    /// lseek SEEK_HOLE: the first offset >= `off` in a hole (end of file counts
    /// as a hole).
    pub fn seek_hole(&self, off: u64) -> Result<u64, Errno> {
        let inner = self.read_inner();
        if off >= inner.size {
            return Err(Errno::ENXIO);
        }
        let mut idx = page_of(off);
        for (&i, _) in inner.pages.range(idx..) {
            if i != idx {
                break;
            }
            idx += 1;
        }
        Ok((idx * PAGE).max(off).min(inner.size))
    }

    /// The current seals.
    pub fn seals(&self) -> u32 {
        self.seals.load(Ordering::SeqCst)
    }

    /// Makes the file sealable (memfd_create with MFD_ALLOW_SEALING): clears
    /// F_SEAL_SEAL.
    pub fn allow_sealing(&self) {
        self.seals.fetch_and(!F_SEAL_SEAL, Ordering::SeqCst);
    }

    /// F_ADD_SEALS. EPERM once F_SEAL_SEAL is set; EBUSY for F_SEAL_WRITE while a
    /// writable shared mapping exists.
    pub fn add_seals(&self, seals: u32) -> Result<(), Errno> {
        if seals & !ALL_SEALS != 0 {
            return Err(Errno::EINVAL);
        }
        // The write lock orders this against writers and new mappings.
        let _inner = self.write_inner();
        let cur = self.seals();
        if cur & F_SEAL_SEAL != 0 {
            return Err(Errno::EPERM);
        }
        if seals & F_SEAL_WRITE != 0
            && cur & F_SEAL_WRITE == 0
            && self.writable_maps.load(Ordering::SeqCst) > 0
        {
            return Err(Errno::EBUSY);
        }
        self.seals.fetch_or(seals, Ordering::SeqCst);
        Ok(())
    }

    /// A reference held by each mapping of the file (`writable`: a shared
    /// mapping that may be made writable). Pages the file drops stay allocated
    /// until the last one goes. EPERM for a writable mapping of a file sealed
    /// against writes.
    pub fn map_ref(self: &Arc<Self>, writable: bool) -> Result<MapRef, Errno> {
        let _inner = self.write_inner();
        if writable && self.seals() & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            return Err(Errno::EPERM);
        }
        self.maps.fetch_add(1, Ordering::SeqCst);
        if writable {
            self.writable_maps.fetch_add(1, Ordering::SeqCst);
        }
        Ok(MapRef {
            store: self.clone(),
            writable,
        })
    }

    /// For a mapping: the memory-file offset of page `idx` of the file,
    /// allocating it if it is a hole. EFAULT for a page wholly past end of file,
    /// ENOSPC/ENOMEM when no space is left.
    pub fn page_for_map(&self, idx: u64) -> Result<u64, Errno> {
        {
            let inner = self.read_inner();
            if idx >= inner.size.div_ceil(PAGE) {
                return Err(Errno::EFAULT);
            }
            if let Some(&p) = inner.pages.get(&idx) {
                return Ok(p);
            }
        }
        let mut inner = self.write_inner();
        if idx >= inner.size.div_ceil(PAGE) {
            return Err(Errno::EFAULT);
        }
        self.get_or_alloc(&mut inner, idx)
    }

    /// For a fault of a mapping at page `idx`: allocates it if it is a hole
    /// (errors as [`PageStore::page_for_map`]), and also up to `ahead` more
    /// holes after it inside the file, as long as space allows (a mapping that
    /// is being filled page by page then faults once per window, not per page).
    pub fn fault_in(&self, idx: u64, ahead: u64) -> Result<(), Errno> {
        self.page_for_map(idx)?;
        if ahead == 0 {
            return Ok(());
        }
        let mut inner = self.write_inner();
        let last = idx.saturating_add(1 + ahead).min(inner.size.div_ceil(PAGE));
        for i in idx + 1..last {
            if self.get_or_alloc(&mut inner, i).is_err() {
                break;
            }
        }
        Ok(())
    }

    /// The allocated pages among `[first, first+n)` that are inside the file, as
    /// (page index, memory-file offset), in order.
    pub fn existing_pages(&self, first: u64, n: u64) -> Vec<(u64, u64)> {
        let inner = self.read_inner();
        let last = first.saturating_add(n).min(inner.size.div_ceil(PAGE));
        if first >= last {
            return Vec::new();
        }
        inner
            .pages
            .range(first..last)
            .map(|(k, v)| (*k, *v))
            .collect()
    }

    /// Number of pages the file covers (its size rounded up).
    pub fn size_pages(&self) -> u64 {
        self.size().div_ceil(PAGE)
    }
}

impl Drop for PageStore {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        let offs: Vec<u64> = std::mem::take(&mut inner.pages).into_values().collect();
        self.quota.uncharge(offs.len() as u64);
        let mut all = offs;
        all.extend(std::mem::take(
            self.deferred.get_mut().unwrap_or_else(|e| e.into_inner()),
        ));
        self.release_offsets(all);
    }
}

/// One mapping's hold on a file's pages (see [`PageStore::map_ref`]).
pub struct MapRef {
    store: Arc<PageStore>,
    writable: bool,
}

impl MapRef {
    pub fn store(&self) -> &Arc<PageStore> {
        &self.store
    }
}

impl Drop for MapRef {
    fn drop(&mut self) {
        if self.writable {
            self.store.writable_maps.fetch_sub(1, Ordering::SeqCst);
        }
        let mut deferred = self
            .store
            .deferred
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if self.store.maps.fetch_sub(1, Ordering::SeqCst) == 1 {
            let offs = std::mem::take(&mut *deferred);
            drop(deferred);
            self.store.release_offsets(offs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(limit: u64) -> Arc<PageStore> {
        PageStore::new(Quota::new(limit))
    }

    #[test]
    fn sparse_read_write() {
        let s = store(1 << 20);
        assert_eq!(
            s.write(b"abc", 3 * PAGE + 10, false).unwrap(),
            (3, 3 * PAGE + 13)
        );
        assert_eq!(s.size(), 3 * PAGE + 13);
        assert_eq!(s.allocated_pages(), 1);
        assert_eq!(s.blocks(), 8);
        let mut b = vec![7u8; 4 * PAGE as usize];
        assert_eq!(s.read(&mut b, 0), 3 * PAGE as usize + 13);
        assert!(b[..3 * PAGE as usize + 10].iter().all(|&x| x == 0));
        assert_eq!(&b[3 * PAGE as usize + 10..3 * PAGE as usize + 13], b"abc");
        // A write across a page boundary allocates both pages.
        s.write(&[1u8; 10], PAGE - 5, false).unwrap();
        assert_eq!(s.allocated_pages(), 3);
        assert_eq!(s.read(&mut b[..1], s.size()), 0);
    }

    #[test]
    fn punch_hole_frees_whole_pages() {
        let s = store(1 << 20);
        s.write(&[5u8; 4 * PAGE as usize], 0, false).unwrap();
        s.punch_hole(PAGE - 10, 2 * PAGE + 20).unwrap();
        assert_eq!(s.allocated_pages(), 2);
        assert_eq!(s.size(), 4 * PAGE);
        let mut b = vec![1u8; 4 * PAGE as usize];
        s.read(&mut b, 0);
        assert!(b[..PAGE as usize - 10].iter().all(|&x| x == 5));
        assert!(b[PAGE as usize - 10..3 * PAGE as usize + 10]
            .iter()
            .all(|&x| x == 0));
        assert!(b[3 * PAGE as usize + 10..].iter().all(|&x| x == 5));
        // Within one page.
        s.punch_hole(3 * PAGE + 20, 5).unwrap();
        s.read(&mut b[..30], 3 * PAGE);
        assert_eq!(&b[19..26], &[5, 0, 0, 0, 0, 0, 5]);
        s.punch_hole(0, u64::MAX).unwrap();
        assert_eq!(s.allocated_pages(), 0);
        assert_eq!(s.size(), 4 * PAGE);
    }

    #[test]
    fn seek_data_hole() {
        let s = store(1 << 20);
        s.truncate(10 * PAGE).unwrap();
        assert_eq!(s.allocated_pages(), 0);
        assert_eq!(s.seek_data(0), Err(Errno::ENXIO));
        assert_eq!(s.seek_hole(0), Ok(0));
        s.write(b"x", 4 * PAGE + 1, false).unwrap();
        s.write(b"y", 5 * PAGE, false).unwrap();
        assert_eq!(s.seek_data(0), Ok(4 * PAGE));
        assert_eq!(s.seek_data(4 * PAGE + 7), Ok(4 * PAGE + 7));
        assert_eq!(s.seek_hole(4 * PAGE), Ok(6 * PAGE));
        assert_eq!(s.seek_data(6 * PAGE), Err(Errno::ENXIO));
        assert_eq!(s.seek_hole(9 * PAGE), Ok(9 * PAGE));
        assert_eq!(s.seek_hole(10 * PAGE), Err(Errno::ENXIO));
        // End of file is a hole even inside an allocated page.
        s.truncate(5 * PAGE + 100).unwrap();
        assert_eq!(s.seek_hole(5 * PAGE), Ok(5 * PAGE + 100));
    }

    #[test]
    fn truncate_frees_and_zeroes_tail() {
        let q = Quota::new(1 << 20);
        let s = PageStore::new(q.clone());
        s.write(&[9u8; 3 * PAGE as usize], 0, false).unwrap();
        assert_eq!(q.used(), 3 * PAGE);
        s.truncate(PAGE + 10).unwrap();
        assert_eq!(s.allocated_pages(), 2);
        assert_eq!(q.used(), 2 * PAGE);
        s.truncate(3 * PAGE).unwrap();
        assert_eq!(s.allocated_pages(), 2, "growing allocates nothing");
        let mut b = vec![1u8; 3 * PAGE as usize];
        assert_eq!(s.read(&mut b, 0), 3 * PAGE as usize);
        assert!(b[..PAGE as usize + 10].iter().all(|&x| x == 9));
        assert!(b[PAGE as usize + 10..].iter().all(|&x| x == 0));
        s.truncate(0).unwrap();
        assert_eq!(q.used(), 0);
        drop(s);
        assert_eq!(q.used(), 0);
    }

    #[test]
    fn enospc_counts_pages() {
        let q = Quota::new(4 * PAGE);
        let s = PageStore::new(q.clone());
        // A sparse file far larger than the limit is fine.
        s.truncate(1 << 30).unwrap();
        s.write(b"a", 0, false).unwrap();
        s.write(b"b", 100 * PAGE, false).unwrap();
        s.write(&[1u8; 2 * PAGE as usize], 200 * PAGE, false)
            .unwrap();
        assert_eq!(q.used(), 4 * PAGE);
        assert_eq!(s.write(b"c", 300 * PAGE, false), Err(Errno::ENOSPC));
        // A write that runs out part way is short.
        s.truncate(0).unwrap();
        assert_eq!(
            s.write(&[2u8; 5 * PAGE as usize], 0, false),
            Ok((4 * PAGE as usize, 4 * PAGE))
        );
        assert_eq!(s.allocate(0, 8 * PAGE, true), Err(Errno::ENOSPC));
        // Huge requests fail at once, without walking their pages.
        assert_eq!(
            s.allocate(0, MAX_FILE_SIZE - PAGE, false),
            Err(Errno::ENOSPC)
        );
        assert_eq!(s.allocate(PAGE, 3 * PAGE, true), Ok(()));
        drop(s);
        assert_eq!(q.used(), 0);
    }

    #[test]
    fn seals_and_mappings() {
        let s = store(1 << 20);
        assert_eq!(s.add_seals(F_SEAL_WRITE), Err(Errno::EPERM));
        s.allow_sealing();
        let m = s.map_ref(true).unwrap();
        assert_eq!(s.add_seals(F_SEAL_WRITE), Err(Errno::EBUSY));
        s.add_seals(F_SEAL_SHRINK).unwrap();
        s.write(b"data", 0, false).unwrap();
        assert_eq!(s.truncate(1), Err(Errno::EPERM));
        drop(m);
        s.add_seals(F_SEAL_WRITE | F_SEAL_GROW).unwrap();
        assert_eq!(s.write(b"x", 0, false), Err(Errno::EPERM));
        assert_eq!(s.truncate(100), Err(Errno::EPERM));
        assert!(s.map_ref(true).is_err());
        assert!(s.map_ref(false).is_ok());
        s.add_seals(F_SEAL_SEAL).unwrap();
        assert_eq!(s.add_seals(F_SEAL_SHRINK), Err(Errno::EPERM));
        assert_eq!(
            s.seals(),
            F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE
        );
    }

    #[test]
    fn mapped_pages_outlive_truncate() {
        let q = Quota::new(1 << 20);
        let s = PageStore::new(q.clone());
        s.truncate(2 * PAGE).unwrap();
        let m = s.map_ref(true).unwrap();
        let p = s.page_for_map(1).unwrap();
        assert_eq!(s.page_for_map(2), Err(Errno::EFAULT));
        assert_eq!(s.existing_pages(0, 10), vec![(1, p)]);
        s.mf.write_at(p, b"through the mapping");
        let mut b = [0u8; 7];
        s.read(&mut b, PAGE);
        assert_eq!(&b, b"through");
        s.truncate(0).unwrap();
        assert_eq!(q.used(), 0);
        // Still held for the mapping.
        assert_eq!(s.deferred.lock().unwrap().len(), 1);
        drop(m);
        assert!(s.deferred.lock().unwrap().is_empty());
    }
}
