//! The memory manager: one per process. It owns the VMAs, brk, and which
//! memory-file range backs each page, and mirrors every change into the
//! platform's address space. Copy-in/copy-out go through the memory file, never
//! through a workload pointer; a bad pointer is EFAULT.
//!
//! Mappings:
//! - anonymous and private file mappings own a memory-file range (private file
//!   mappings are filled from the file at mmap time: a snapshot);
//! - shared anonymous mappings share one range ([`Backing`]) across fork;
//! - shared mappings of tmpfs/memfd files map the file's own pages
//!   ([`fs::pagestore::PageStore`]): pages the file has are mapped at mmap time,
//!   the others come in on a fault ([`MemoryManager::handle_fault`]), past end of
//!   file is SIGBUS;
//! - shared mappings of other (gofer, host) files are a copy in a shared range
//!   plus a clean copy: msync, munmap, exec and exit write the bytes that differ
//!   back to the file with pwrite (never past its end). Between those points
//!   read(2) of the file does not see writes through the mapping, nor the mapping
//!   later writes to the file (msync with MS_INVALIDATE re-reads it).

mod vma;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use abi::{page_down, page_up, Errno, PAGE_SIZE};
use platform::{AddressSpace, MemoryFile};

pub use vma::{Backing, MmapOpts, MmapSource, Vma};

/// Lowest address mmap hands out or accepts for MAP_FIXED (vm.mmap_min_addr).
pub const MMAP_MIN_ADDR: u64 = 0x10000;

/// Every protection bit.
pub const PROT_ALL: i32 = libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC;

/// Pages a fault on a shared tmpfs mapping brings in (the faulting one and
/// those after it).
const FAULT_AROUND: u64 = 64;

/// Chunk size for filling file-backed mappings.
const FILL_CHUNK: usize = 1 << 20;

struct Inner {
    /// VMAs by start address; non-overlapping.
    vmas: BTreeMap<u64, Vma>,
    brk_start: u64,
    brk: u64,
    /// Top of the region mmap allocates downwards from.
    mmap_base: u64,
    /// Bytes of accountable mappings (see [`Vma::accountable`]) last added to
    /// the memory file's committed total.
    committed: u64,
}

/// One process's memory.
pub struct MemoryManager {
    mf: Arc<MemoryFile>,
    space: Arc<dyn AddressSpace>,
    /// One past the highest mappable address.
    max_addr: u64,
    inner: Mutex<Inner>,
    /// `fs::pagestore::mapped_truncations()` when this address space last
    /// re-mapped its shared tmpfs mappings.
    truncations_seen: std::sync::atomic::AtomicU64,
}

fn platform_err(e: platform::PlatformError) -> Errno {
    tracing::warn!("address space update failed: {e}");
    Errno::ENOMEM
}

impl MemoryManager {
    pub fn new(mf: Arc<MemoryFile>, space: Arc<dyn AddressSpace>, max_addr: u64) -> MemoryManager {
        MemoryManager {
            mf,
            space,
            max_addr,
            inner: Mutex::new(Inner {
                vmas: BTreeMap::new(),
                brk_start: 0,
                brk: 0,
                mmap_base: max_addr,
                committed: 0,
            }),
            truncations_seen: std::sync::atomic::AtomicU64::new(fs::pagestore::mapped_truncations()),
        }
    }

    pub fn address_space(&self) -> Arc<dyn AddressSpace> {
        self.space.clone()
    }

    pub fn max_addr(&self) -> u64 {
        self.max_addr
    }

    /// Sets where top-down mmap allocation starts (below the stack).
    pub fn set_mmap_base(&self, base: u64) {
        self.inner.lock().unwrap().mmap_base = page_down(base.min(self.max_addr));
    }

    /// Sets the program break's start (end of the loaded executable's data).
    pub fn set_brk_start(&self, addr: u64) {
        let mut i = self.inner.lock().unwrap();
        i.brk_start = addr;
        i.brk = addr;
    }

    /// Records this address space's accountable bytes in the memory file's
    /// committed total (after every change to the VMAs).
    /// Without a commit limit (no memory limit) nothing is counted: the walk
    /// over the VMAs costs O(VMAs) per call. (A limit set later is caught up
    /// with at each address space's next change.)
    fn settle_commit(&self) {
        if self.mf.commit_limit() == u64::MAX {
            return;
        }
        let mut inner = self.inner.lock().unwrap();
        let now: u64 = inner
            .vmas
            .values()
            .filter(|v| v.accountable())
            .map(|v| v.len())
            .sum();
        let delta = now as i64 - inner.committed as i64;
        inner.committed = now;
        drop(inner);
        if delta != 0 {
            self.mf.adjust_commit(delta);
        }
    }

    /// Bytes this address space has committed.
    pub fn committed(&self) -> u64 {
        self.inner.lock().unwrap().committed
    }

    /// Maps memory as mmap(2) does; returns the address. ENOMEM when the new
    /// private writable memory would pass the sandbox's commit limit.
    pub fn mmap(&self, opts: MmapOpts) -> Result<u64, Errno> {
        self.mmap_with(opts, false)
    }

    /// [`MemoryManager::mmap`], with MAP_NORESERVE: the mapping commits
    /// nothing (sparse address-sanitizer shadows, huge arrays touched
    /// sparsely); its pages still count once touched (OOM killer).
    pub fn mmap_with(&self, opts: MmapOpts, noreserve: bool) -> Result<u64, Errno> {
        if !opts.shared && !noreserve && opts.prot & libc::PROT_WRITE != 0 {
            self.mf
                .check_commit(page_up(opts.len).unwrap_or(u64::MAX))?;
        }
        let r = self.do_mmap(opts, noreserve);
        self.settle_commit();
        r
    }

    fn do_mmap(&self, opts: MmapOpts, noreserve: bool) -> Result<u64, Errno> {
        if opts.len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_up(opts.len).ok_or(Errno::ENOMEM)?;
        if len > self.max_addr {
            return Err(Errno::ENOMEM);
        }
        if let MmapSource::File { offset, .. } = &opts.source {
            if offset % PAGE_SIZE != 0 {
                return Err(Errno::EINVAL);
            }
            if offset.checked_add(len).is_none() {
                return Err(Errno::EOVERFLOW);
            }
        }
        // Shared mappings of files whose data is in our memory file map the
        // file's own pages.
        let map_ref = match (&opts.source, opts.shared) {
            (MmapSource::File { file, .. }, true) => match file.page_store() {
                Some(store) if Arc::ptr_eq(store.memory_file(), &self.mf) => Some(Arc::new(
                    store.map_ref(opts.max_prot & libc::PROT_WRITE != 0)?,
                )),
                _ => None,
            },
            _ => None,
        };
        let mut inner = self.inner.lock().unwrap();
        let addr = if opts.fixed || opts.noreplace {
            if !opts.addr.is_multiple_of(PAGE_SIZE) {
                return Err(Errno::EINVAL);
            }
            let end = opts.addr.checked_add(len).ok_or(Errno::ENOMEM)?;
            if end > self.max_addr || opts.addr < MMAP_MIN_ADDR {
                return Err(if opts.addr < MMAP_MIN_ADDR {
                    Errno::EPERM
                } else {
                    Errno::ENOMEM
                });
            }
            if opts.noreplace && Self::overlaps(&inner, opts.addr, end) {
                return Err(Errno::EEXIST);
            }
            opts.addr
        } else {
            self.find_free(&inner, page_down(opts.addr), len)?
        };
        self.unmap_locked(&mut inner, addr, len)?;
        if let (Some(map_ref), MmapSource::File { file, offset, name }) = (map_ref, &opts.source) {
            let vma = Vma {
                start: addr,
                end: addr + len,
                prot: opts.prot,
                max_prot: opts.max_prot,
                shared: true,
                mf_offset: 0,
                file: Some((file.clone(), *offset)),
                name: name.clone(),
                backing: None,
                eof: u64::MAX,
                pages: Some(map_ref),
                noreserve,
            };
            if let Err(e) = self.map_existing(&vma, addr, addr + len) {
                let _ = self.space.unmap(addr, len);
                return Err(platform_err(e));
            }
            inner.vmas.insert(addr, vma);
            return Ok(addr);
        }
        let off = self.mf.allocate(len)?;
        let (file, name, eof) = match &opts.source {
            MmapSource::Anonymous => (None, Vec::new(), u64::MAX),
            MmapSource::File { file, offset, name } => {
                let n = match self.fill_from_file(off, len, file.as_ref(), *offset) {
                    Ok(n) => n,
                    Err(e) => {
                        self.mf.release(off, len);
                        return Err(e);
                    }
                };
                let mapped = page_up(n).unwrap_or(len).min(len);
                let eof = if mapped < len {
                    addr + mapped
                } else {
                    u64::MAX
                };
                (Some((file.clone(), *offset)), name.clone(), eof)
            }
        };
        if let Err(e) = self.map_upto(addr, len, off, opts.prot, eof) {
            self.mf.release(off, len);
            return Err(platform_err(e));
        }
        // A writable shared mapping of a file whose data lives elsewhere keeps a
        // clean copy, to find the pages to write back.
        let clean = if opts.shared && file.is_some() && opts.max_prot & libc::PROT_WRITE != 0 {
            match self.mf.allocate(len) {
                Ok(c) => {
                    self.mf.copy_sparse(off, c, len);
                    Some(c)
                }
                Err(e) => {
                    let _ = self.space.unmap(addr, len);
                    self.mf.release(off, len);
                    return Err(e);
                }
            }
        } else {
            None
        };
        let backing = opts.shared.then(|| {
            Arc::new(Backing {
                mf: self.mf.clone(),
                off,
                len,
                clean,
            })
        });
        let vma = Vma {
            start: addr,
            end: addr + len,
            prot: opts.prot,
            max_prot: opts.max_prot,
            shared: opts.shared,
            mf_offset: off,
            file,
            name,
            backing,
            eof,
            pages: None,
            noreserve,
        };
        inner.vmas.insert(addr, vma);
        Ok(addr)
    }

    /// Maps the pages of `[s, e)` of a file-page VMA that the file has now, runs
    /// of pages contiguous in the memory file at once.
    fn map_existing(&self, v: &Vma, s: u64, e: u64) -> Result<(), platform::PlatformError> {
        let Some(store) = v.store() else {
            return Ok(());
        };
        let first = v.file_offset(s) / PAGE_SIZE;
        let pages = store.existing_pages(first, (e - s) / PAGE_SIZE);
        let mut i = 0;
        while i < pages.len() {
            let (idx0, off0) = pages[i];
            let mut j = i + 1;
            while j < pages.len()
                && pages[j].0 == idx0 + (j - i) as u64
                && pages[j].1 == off0 + (j - i) as u64 * PAGE_SIZE
            {
                j += 1;
            }
            let va = s + (idx0 - first) * PAGE_SIZE;
            self.space
                .map(va, (j - i) as u64 * PAGE_SIZE, off0, v.prot)?;
            i = j;
        }
        Ok(())
    }

    /// A fault at an unmapped address (SEGV_MAPERR): for a shared mapping of a
    /// memory-file-backed file, brings in the file's page (allocating a hole)
    /// and returns Some(true) to retry, or Some(false) when the page is past end
    /// of file or cannot be allocated (SIGBUS). None: not such a mapping.
    pub fn handle_fault(&self, addr: u64) -> Option<bool> {
        let inner = self.inner.lock().unwrap();
        let v = match inner.vmas.range(..=addr).next_back() {
            Some((_, v)) if v.end > addr => v,
            _ => return None,
        };
        let store = v.store()?;
        if v.prot == libc::PROT_NONE {
            return None;
        }
        let page = page_down(addr);
        // Fault-around: the pages after it in the mapping come in too (holes
        // allocated), as a fault costs a round trip to the sentry.
        let e = page.saturating_add(FAULT_AROUND * PAGE_SIZE).min(v.end);
        let ahead = (e - page) / PAGE_SIZE - 1;
        if store
            .fault_in(v.file_offset(page) / PAGE_SIZE, ahead)
            .is_err()
        {
            return Some(false);
        }
        Some(self.map_existing(v, page, e).is_ok())
    }

    /// After a truncate by this process: unmaps the pages of its shared tmpfs
    /// mappings that are now past end of file, so touching them faults (SIGBUS).
    /// Other processes catch up in [`MemoryManager::refresh_after_truncations`].
    pub fn unmap_past_eof(&self) {
        let inner = self.inner.lock().unwrap();
        for v in inner.vmas.values() {
            let Some(store) = v.store() else { continue };
            let eof = store.size_pages() * PAGE_SIZE;
            let fstart = v.file_offset(v.start);
            let from = if eof <= fstart {
                v.start
            } else {
                v.start.saturating_add(eof - fstart)
            };
            if from < v.end {
                if let Err(e) = self.space.unmap(from, v.end - from) {
                    tracing::warn!("unmapping truncated file pages failed: {e}");
                }
            }
        }
    }

    /// Called before the workload runs: if some process truncated a mapped
    /// tmpfs file since we last looked, re-maps our shared tmpfs mappings from
    /// the files' current pages, so that pages taken away fault (SIGBUS past
    /// end of file) and new ones show. One atomic load when nothing happened.
    /// Until a thread of this process next enters the sentry it still sees the
    /// old pages (the platform updates an address space only from its own
    /// threads).
    pub fn refresh_after_truncations(&self) {
        use std::sync::atomic::Ordering;
        let now = fs::pagestore::mapped_truncations();
        if self.truncations_seen.load(Ordering::Acquire) == now {
            return;
        }
        self.truncations_seen.store(now, Ordering::Release);
        let inner = self.inner.lock().unwrap();
        for v in inner.vmas.values().filter(|v| v.pages.is_some()) {
            let res = self
                .space
                .unmap(v.start, v.len())
                .and_then(|_| self.map_existing(v, v.start, v.end));
            if let Err(e) = res {
                tracing::warn!("re-mapping a truncated file failed: {e}");
            }
        }
    }

    /// The memory-file offset of `addr` in `v`, and the end of the range that is
    /// contiguous with it there (at most `end`). EFAULT past end of file.
    fn translate(v: &Vma, addr: u64, end: u64) -> Result<(u64, u64), Errno> {
        match v.store() {
            Some(store) => {
                let page = page_down(addr);
                let off = store
                    .page_for_map(v.file_offset(page) / PAGE_SIZE)
                    .map_err(|_| Errno::EFAULT)?;
                Ok((off + (addr - page), (page + PAGE_SIZE).min(v.end).min(end)))
            }
            None => Ok((v.mf_offset + (addr - v.start), v.end.min(end))),
        }
    }

    /// Writes what changed in `[s, e)` of a shared mapping of a file whose data
    /// lives outside the memory file back to the file (msync, munmap, exit):
    /// the bytes that differ from the clean copy, never past end of file (a
    /// mapping never extends its file).
    fn writeback(mf: &MemoryFile, v: &Vma, s: u64, e: u64) -> Result<(), Errno> {
        let (Some(b), Some((file, foff))) = (&v.backing, &v.file) else {
            return Ok(());
        };
        let Some(clean) = b.clean else {
            return Ok(());
        };
        let size = match file.size() {
            Some(n) => n,
            None => return Ok(()),
        };
        let mut res = Ok(());
        let mut page = vec![0u8; PAGE_SIZE as usize];
        let mut old = vec![0u8; PAGE_SIZE as usize];
        let mut cur = s;
        while cur < e.min(v.eof) {
            let moff = v.mf_offset + (cur - v.start);
            let coff = clean + (moff - b.off);
            mf.read_at(moff, &mut page);
            mf.read_at(coff, &mut old);
            if page != old {
                let fo = foff + (cur - v.start);
                // Only the bytes that changed go back, so that writes others
                // made to the rest of the page survive.
                let n = size.saturating_sub(fo).min(PAGE_SIZE) as usize;
                let mut ok = true;
                let mut i = 0;
                while i < n && ok {
                    if page[i] == old[i] {
                        i += 1;
                        continue;
                    }
                    // A run of changes, joined across gaps of fewer than 32
                    // unchanged bytes (one pwrite rather than many tiny ones).
                    let mut j = i + 1;
                    let mut k = j;
                    while k < n && k - j < 32 {
                        if page[k] != old[k] {
                            j = k + 1;
                        }
                        k += 1;
                    }
                    while i < j {
                        match file.write_back(fo + i as u64, &page[i..j]) {
                            Ok(0) => {
                                res = Err(Errno::EIO);
                                ok = false;
                                break;
                            }
                            Ok(k) => i += k,
                            Err(err) => {
                                res = Err(err);
                                ok = false;
                                break;
                            }
                        }
                    }
                }
                if ok {
                    mf.write_at(coff, &page);
                }
            }
            cur += PAGE_SIZE;
        }
        res
    }

    /// msync(MS_INVALIDATE) of a shared mapping of a gofer/host file, after its
    /// dirty pages went back: reads `[s, e)` from the file again, so the mapping
    /// sees writes made to the file since it was mapped.
    fn reload(&self, v: &Vma, s: u64, e: u64) -> Result<(), Errno> {
        let (Some(b), Some((file, _))) = (&v.backing, &v.file) else {
            return Ok(());
        };
        let e = e.min(v.eof);
        if s >= e {
            return Ok(());
        }
        let off = v.mf_offset + (s - v.start);
        self.mf.punch(off, e - s);
        self.fill_from_file(off, e - s, file.as_ref(), v.file_offset(s))?;
        if let Some(clean) = b.clean {
            let coff = clean + (off - b.off);
            self.mf.punch(coff, e - s);
            self.mf.copy_sparse(off, coff, e - s);
        }
        Ok(())
    }

    /// msync(2): writes shared mappings of gofer/host files back (MS_SYNC and
    /// MS_ASYNC alike, synchronously); with MS_INVALIDATE they then re-read the
    /// file. tmpfs mappings are the file's pages: nothing to do.
    pub fn msync(&self, addr: u64, len: u64, flags: i32) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE)
            || flags & !(libc::MS_ASYNC | libc::MS_INVALIDATE | libc::MS_SYNC) != 0
            || (flags & libc::MS_ASYNC != 0 && flags & libc::MS_SYNC != 0)
        {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Ok(());
        }
        let inner = self.inner.lock().unwrap();
        let mut cur = addr;
        let mut unmapped = false;
        let mut res = Ok(());
        for (_, v) in inner.vmas.range(..end) {
            if v.end <= cur {
                continue;
            }
            if v.start > cur {
                unmapped = true;
            }
            let s = v.start.max(cur);
            let e = v.end.min(end);
            if let Err(err) = Self::writeback(&self.mf, v, s, e) {
                res = Err(err);
            } else if flags & libc::MS_INVALIDATE != 0 {
                if let Err(err) = self.reload(v, s, e) {
                    res = Err(err);
                }
            }
            cur = e;
        }
        if cur < end || unmapped {
            return Err(Errno::ENOMEM);
        }
        res
    }

    /// Copies the file's bytes from `file_off` into `[off, off+len)`; returns how
    /// many there were (fewer than `len` at end of file).
    fn fill_from_file(
        &self,
        off: u64,
        len: u64,
        file: &dyn fs::ReadAt,
        file_off: u64,
    ) -> Result<u64, Errno> {
        let mut buf = vec![0u8; FILL_CHUNK.min(len as usize)];
        let mut done = 0u64;
        while done < len {
            let want = buf.len().min((len - done) as usize);
            let n = file.read_at(file_off + done, &mut buf[..want])?;
            if n == 0 {
                break;
            }
            self.mf.write_at(off + done, &buf[..n]);
            done += n as u64;
        }
        Ok(done)
    }

    fn overlaps(inner: &Inner, start: u64, end: u64) -> bool {
        inner
            .vmas
            .range(..end)
            .next_back()
            .is_some_and(|(_, v)| v.end > start)
    }

    /// Top-down first fit below mmap_base, honouring a free hint.
    fn find_free(&self, inner: &Inner, hint: u64, len: u64) -> Result<u64, Errno> {
        if hint >= MMAP_MIN_ADDR
            && hint.checked_add(len).is_some_and(|e| e <= self.max_addr)
            && !Self::overlaps(inner, hint, hint + len)
        {
            return Ok(hint);
        }
        let mut top = inner.mmap_base;
        for (_, v) in inner.vmas.range(..inner.mmap_base).rev() {
            if v.end <= top && top - v.end >= len {
                return Ok(top - len);
            }
            top = top.min(v.start);
        }
        if top >= MMAP_MIN_ADDR + len {
            return Ok(top - len);
        }
        // Nothing below the base: try above it (up to max_addr).
        let mut bottom = inner.mmap_base;
        for (_, v) in inner.vmas.range(inner.mmap_base..) {
            if v.start >= bottom && v.start - bottom >= len {
                return Ok(bottom);
            }
            bottom = bottom.max(v.end);
        }
        if self.max_addr.saturating_sub(bottom) >= len {
            return Ok(bottom);
        }
        Err(Errno::ENOMEM)
    }

    /// Splits VMAs so that `at` is a boundary.
    fn split_at(inner: &mut Inner, at: u64) {
        let Some((&s, v)) = inner.vmas.range_mut(..at).next_back() else {
            return;
        };
        if v.end > at && s < at {
            let upper = v.split_off(at);
            inner.vmas.insert(at, upper);
        }
    }

    fn unmap_locked(&self, inner: &mut Inner, start: u64, len: u64) -> Result<(), Errno> {
        let end = start + len;
        Self::split_at(inner, start);
        Self::split_at(inner, end);
        let keys: Vec<u64> = inner.vmas.range(start..end).map(|(k, _)| *k).collect();
        if keys.is_empty() {
            return Ok(());
        }
        for k in &keys {
            if let Some(v) = inner.vmas.get(k) {
                if let Err(e) = Self::writeback(&self.mf, v, v.start, v.end) {
                    tracing::warn!("write-back of a shared mapping failed: {e}");
                }
            }
        }
        self.space.unmap(start, len).map_err(platform_err)?;
        for k in keys {
            let v = inner.vmas.remove(&k).unwrap();
            Self::release_vma(&self.mf, &v);
        }
        Ok(())
    }

    /// munmap(2).
    pub fn munmap(&self, addr: u64, len: u64) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::EINVAL)?;
        let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
        if end > self.max_addr {
            return Err(Errno::EINVAL);
        }
        let r = self.unmap_locked(&mut self.inner.lock().unwrap(), addr, len);
        self.settle_commit();
        r
    }

    /// mprotect(2). Making private memory writable commits it (ENOMEM past
    /// the commit limit), as Linux's VM_ACCOUNT does.
    pub fn mprotect(&self, addr: u64, len: u64, prot: i32) -> Result<(), Errno> {
        if prot & libc::PROT_WRITE != 0 {
            let more = {
                let inner = self.inner.lock().unwrap();
                let end = addr.saturating_add(len);
                inner
                    .vmas
                    .range(..end)
                    .rev()
                    .take_while(|(_, v)| v.end > addr)
                    .filter(|(_, v)| {
                        !v.shared
                            && !v.noreserve
                            && v.pages.is_none()
                            && v.prot & libc::PROT_WRITE == 0
                    })
                    .map(|(_, v)| v.end.min(end) - v.start.max(addr))
                    .sum::<u64>()
            };
            self.mf.check_commit(more)?;
        }
        let r = self.do_mprotect(addr, len, prot);
        self.settle_commit();
        r
    }

    fn do_mprotect(&self, addr: u64, len: u64, prot: i32) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        if prot
            & !(libc::PROT_READ
                | libc::PROT_WRITE
                | libc::PROT_EXEC
                | libc::PROT_GROWSDOWN
                | libc::PROT_GROWSUP)
            != 0
        {
            return Err(Errno::EINVAL);
        }
        let prot = prot & (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC);
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        let mut inner = self.inner.lock().unwrap();
        // Every page of the range must be mapped, and may take `prot`.
        for v in Self::covering(&inner, addr, end)? {
            if prot & !v.max_prot != 0 {
                return Err(Errno::EACCES);
            }
        }
        Self::split_at(&mut inner, addr);
        Self::split_at(&mut inner, end);
        for (_, v) in inner.vmas.range_mut(addr..end) {
            if v.pages.is_some() {
                // Only some of the file's pages may be mapped: map those anew.
                v.prot = prot;
                self.space.unmap(v.start, v.len()).map_err(platform_err)?;
                self.map_existing(v, v.start, v.end).map_err(platform_err)?;
                continue;
            }
            let top = v.end.min(v.eof);
            if top > v.start {
                self.space
                    .protect(v.start, top - v.start, prot)
                    .map_err(platform_err)?;
            }
            v.prot = prot;
        }
        Ok(())
    }

    /// mremap(2). `new_addr` is used with MREMAP_FIXED. Growing private
    /// writable memory commits the growth.
    pub fn mremap(
        &self,
        old: u64,
        old_len: u64,
        new_len: u64,
        flags: i32,
        new_addr: u64,
    ) -> Result<u64, Errno> {
        if new_len > old_len {
            let accountable = {
                let inner = self.inner.lock().unwrap();
                matches!(inner.vmas.range(..=old).next_back(), Some((_, v)) if v.end > old && v.accountable())
            };
            if accountable {
                self.mf
                    .check_commit(page_up(new_len - old_len).unwrap_or(u64::MAX))?;
            }
        }
        let r = self.do_mremap(old, old_len, new_len, flags, new_addr);
        self.settle_commit();
        r
    }

    fn do_mremap(
        &self,
        old: u64,
        old_len: u64,
        new_len: u64,
        flags: i32,
        new_addr: u64,
    ) -> Result<u64, Errno> {
        let may_move = flags & libc::MREMAP_MAYMOVE != 0;
        let fixed = flags & libc::MREMAP_FIXED != 0;
        if !old.is_multiple_of(PAGE_SIZE)
            || flags & !(libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED | libc::MREMAP_DONTUNMAP) != 0
            || (fixed && !may_move)
            || flags & libc::MREMAP_DONTUNMAP != 0
        {
            return Err(Errno::EINVAL);
        }
        let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
        if new_len == 0 || old_len == 0 {
            // old_len == 0 duplicates shared mappings; not supported for private ones.
            return Err(Errno::EINVAL);
        }
        let mut inner = self.inner.lock().unwrap();
        let (vstart, vma) = match inner.vmas.range(..=old).next_back() {
            Some((s, v)) if v.end > old => (*s, v.clone()),
            _ => return Err(Errno::EFAULT),
        };
        let old_end = old.checked_add(old_len).ok_or(Errno::EFAULT)?;
        if old_end > vma.end {
            return Err(Errno::EFAULT);
        }
        if fixed {
            if !new_addr.is_multiple_of(PAGE_SIZE) {
                return Err(Errno::EINVAL);
            }
            let ne = new_addr.checked_add(new_len).ok_or(Errno::EINVAL)?;
            if ne > self.max_addr || new_addr < MMAP_MIN_ADDR {
                return Err(Errno::EINVAL);
            }
            if new_addr < old_end && old < ne {
                return Err(Errno::EINVAL);
            }
        }
        if !fixed && new_len <= old_len {
            if new_len < old_len {
                self.unmap_locked(&mut inner, old + new_len, old_len - new_len)?;
            }
            return Ok(old);
        }
        if vma.pages.is_some() {
            return self.mremap_file_pages(
                &mut inner, &vma, vstart, old, old_len, new_len, fixed, may_move, new_addr,
            );
        }
        let mf_off = vma.mf_offset + (old - vstart);
        // Grow in place when the VMA ends here and the following range is free.
        let grow_end = old.checked_add(new_len).filter(|e| *e <= self.max_addr);
        if !fixed && old_end == vma.end && vma.backing.is_none() {
            if let Some(ge) = grow_end {
                if !Self::overlaps(&inner, old_end, ge)
                    && self.mf.try_extend(mf_off, old_len, new_len)
                {
                    // A grown file mapping shows the file's bytes in its new part.
                    let mut eof = vma.eof;
                    if let Some((f, fo)) = &vma.file {
                        let foff = fo + (old - vstart) + old_len;
                        let grown = new_len - old_len;
                        match self.fill_from_file(mf_off + old_len, grown, f.as_ref(), foff) {
                            Ok(n) => {
                                let mapped = page_up(n).unwrap_or(grown);
                                if eof == u64::MAX && mapped < grown {
                                    eof = old_end + mapped;
                                }
                            }
                            Err(e) => {
                                self.mf.release(mf_off + old_len, grown);
                                return Err(e);
                            }
                        }
                    }
                    if let Err(e) =
                        self.map_upto(old_end, ge - old_end, mf_off + old_len, vma.prot, eof)
                    {
                        self.mf.release(mf_off + old_len, new_len - old_len);
                        return Err(platform_err(e));
                    }
                    Self::split_at(&mut inner, old);
                    let v = inner.vmas.get_mut(&old).unwrap();
                    v.end = ge;
                    v.eof = eof;
                    return Ok(old);
                }
            }
        }
        if !may_move {
            return Err(Errno::ENOMEM);
        }
        let dest = if fixed {
            self.unmap_locked(&mut inner, new_addr, new_len)?;
            new_addr
        } else {
            self.find_free(&inner, 0, new_len)?
        };
        // Move: new backing, copy the kept bytes, map, then drop the old range.
        // A shared mapping writes its dirty pages back first and gets a backing
        // of its own (processes it was shared with by fork keep the old one).
        let old_piece = Vma {
            start: old,
            end: old_end,
            mf_offset: mf_off,
            file: vma
                .file
                .as_ref()
                .map(|(f, o)| (f.clone(), o + (old - vstart))),
            ..vma.clone()
        };
        if let Err(e) = Self::writeback(&self.mf, &old_piece, old, old_end) {
            tracing::warn!("write-back of a shared mapping failed: {e}");
        }
        let off = self.mf.allocate(new_len)?;
        self.mf.copy_within(mf_off, off, old_len.min(new_len));
        let file = vma
            .file
            .as_ref()
            .map(|(f, o)| (f.clone(), o + (old - vstart)));
        let mut eof = if vma.eof == u64::MAX {
            u64::MAX
        } else {
            dest + vma.eof.saturating_sub(old)
        };
        // A grown file mapping shows the file's bytes in its new part too.
        if let (Some((f, fo)), true) = (&file, new_len > old_len) {
            let n = match self.fill_from_file(
                off + old_len,
                new_len - old_len,
                f.as_ref(),
                fo + old_len,
            ) {
                Ok(n) => n,
                Err(e) => {
                    self.mf.release(off, new_len);
                    return Err(e);
                }
            };
            let mapped = old_len + page_up(n).unwrap_or(new_len);
            if eof == u64::MAX && mapped < new_len {
                eof = dest + mapped;
            }
        }
        let backing = match &vma.backing {
            None => None,
            Some(b) => {
                let clean = match b.clean {
                    None => None,
                    Some(_) => match self.mf.allocate(new_len) {
                        Ok(c) => {
                            self.mf.copy_sparse(off, c, new_len);
                            Some(c)
                        }
                        Err(e) => {
                            self.mf.release(off, new_len);
                            return Err(e);
                        }
                    },
                };
                Some(Arc::new(Backing {
                    mf: self.mf.clone(),
                    off,
                    len: new_len,
                    clean,
                }))
            }
        };
        if let Err(e) = self.map_upto(dest, new_len, off, vma.prot, eof) {
            match backing {
                // Its drop releases the range (and the clean copy).
                Some(b) => drop(b),
                None => self.mf.release(off, new_len),
            }
            return Err(platform_err(e));
        }
        self.unmap_locked(&mut inner, old, old_len)?;
        inner.vmas.insert(
            dest,
            Vma {
                start: dest,
                end: dest + new_len,
                mf_offset: off,
                file,
                eof,
                backing,
                ..vma
            },
        );
        Ok(dest)
    }

    /// mremap of a shared mapping of memory-file-backed file pages: the new
    /// range maps the same file pages.
    #[allow(clippy::too_many_arguments)]
    fn mremap_file_pages(
        &self,
        inner: &mut Inner,
        vma: &Vma,
        vstart: u64,
        old: u64,
        old_len: u64,
        new_len: u64,
        fixed: bool,
        may_move: bool,
        new_addr: u64,
    ) -> Result<u64, Errno> {
        let old_end = old + old_len;
        let grow_end = old.checked_add(new_len).filter(|e| *e <= self.max_addr);
        if !fixed && old_end == vma.end {
            if let Some(ge) = grow_end {
                if !Self::overlaps(inner, old_end, ge) {
                    Self::split_at(inner, old);
                    let v = inner.vmas.get_mut(&old).unwrap();
                    v.end = ge;
                    let v = v.clone();
                    self.map_existing(&v, old_end, ge).map_err(platform_err)?;
                    return Ok(old);
                }
            }
        }
        if !may_move {
            return Err(Errno::ENOMEM);
        }
        let dest = if fixed {
            self.unmap_locked(inner, new_addr, new_len)?;
            new_addr
        } else {
            self.find_free(inner, 0, new_len)?
        };
        let nv = Vma {
            start: dest,
            end: dest + new_len,
            file: vma
                .file
                .as_ref()
                .map(|(f, o)| (f.clone(), o + (old - vstart))),
            ..vma.clone()
        };
        self.unmap_locked(inner, old, old_len)?;
        inner.vmas.insert(dest, nv.clone());
        self.map_existing(&nv, dest, dest + new_len)
            .map_err(platform_err)?;
        Ok(dest)
    }

    /// brk(2): returns the new (or unchanged) break (unchanged when growing it
    /// would pass the commit limit).
    pub fn brk(&self, addr: u64) -> u64 {
        let r = self.do_brk(addr);
        self.settle_commit();
        r
    }

    fn do_brk(&self, addr: u64) -> u64 {
        let mut inner = self.inner.lock().unwrap();
        let cur = inner.brk;
        if addr < inner.brk_start || addr >= self.max_addr {
            return cur;
        }
        let (old_top, new_top) = match (page_up(cur), page_up(addr)) {
            (Some(a), Some(b)) => (a, b),
            _ => return cur,
        };
        if new_top > old_top {
            if Self::overlaps(&inner, old_top, new_top) {
                return cur;
            }
            let len = new_top - old_top;
            if self.mf.check_commit(len).is_err() {
                return cur;
            }
            let Ok(off) = self.mf.allocate(len) else {
                return cur;
            };
            let prot = libc::PROT_READ | libc::PROT_WRITE;
            if self.space.map(old_top, len, off, prot).is_err() {
                self.mf.release(off, len);
                return cur;
            }
            inner.vmas.insert(
                old_top,
                Vma {
                    start: old_top,
                    end: new_top,
                    prot,
                    max_prot: PROT_ALL,
                    shared: false,
                    mf_offset: off,
                    file: None,
                    name: b"[heap]".to_vec(),
                    backing: None,
                    eof: u64::MAX,
                    pages: None,
                    noreserve: false,
                },
            );
        } else if new_top < old_top
            && self
                .unmap_locked(&mut inner, new_top, old_top - new_top)
                .is_err()
        {
            return cur;
        }
        inner.brk = addr;
        addr
    }

    /// madvise(2). DONTNEED drops private pages: anonymous memory reads as zeros
    /// again, private file mappings re-read the file.
    pub fn madvise(&self, addr: u64, len: u64, advice: i32) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::EINVAL)?;
        let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
        match advice {
            libc::MADV_DONTNEED | libc::MADV_FREE => {}
            libc::MADV_NORMAL
            | libc::MADV_RANDOM
            | libc::MADV_SEQUENTIAL
            | libc::MADV_WILLNEED
            | libc::MADV_DONTFORK
            | libc::MADV_DOFORK
            | libc::MADV_HUGEPAGE
            | libc::MADV_NOHUGEPAGE
            | libc::MADV_DONTDUMP
            | libc::MADV_DODUMP
            | libc::MADV_MERGEABLE
            | libc::MADV_UNMERGEABLE
            | libc::MADV_COLD
            | libc::MADV_PAGEOUT => return self.check_mapped(addr, end),
            libc::MADV_REMOVE => return self.madvise_remove(addr, end),
            _ => return Err(Errno::EINVAL),
        }
        let inner = self.inner.lock().unwrap();
        for v in Self::covering(&inner, addr, end)? {
            if v.shared {
                continue;
            }
            let s = v.start.max(addr);
            let e = v.end.min(end);
            let off = v.mf_offset + (s - v.start);
            self.mf.punch(off, e - s);
            if let Some((f, fo)) = &v.file {
                self.fill_from_file(off, e - s, f.as_ref(), fo + (s - v.start))?;
            }
        }
        Ok(())
    }

    /// MADV_REMOVE: frees the file pages behind a shared writable mapping (a
    /// hole punched in a tmpfs file; zeros in shared anonymous memory). EACCES
    /// for other mappings; EOPNOTSUPP for shared mappings of gofer/host files.
    fn madvise_remove(&self, addr: u64, end: u64) -> Result<(), Errno> {
        let inner = self.inner.lock().unwrap();
        let vmas = Self::covering(&inner, addr, end)?;
        for v in &vmas {
            if !v.shared || v.prot & libc::PROT_WRITE == 0 {
                return Err(Errno::EACCES);
            }
            if v.pages.is_none() && v.file.is_some() {
                return Err(Errno::EOPNOTSUPP);
            }
        }
        for v in vmas {
            let s = v.start.max(addr);
            let e = v.end.min(end);
            match v.store() {
                Some(store) => store.punch_hole(v.file_offset(s), e - s)?,
                None => self.mf.punch(v.mf_offset + (s - v.start), e - s),
            }
        }
        Ok(())
    }

    fn check_mapped(&self, addr: u64, end: u64) -> Result<(), Errno> {
        Self::covering(&self.inner.lock().unwrap(), addr, end).map(|_| ())
    }

    /// The VMAs overlapping `[addr, end)`, or ENOMEM if any page of it is unmapped.
    fn covering(inner: &Inner, addr: u64, end: u64) -> Result<Vec<&Vma>, Errno> {
        let mut out = Vec::new();
        let mut cur = addr;
        for (_, v) in inner.vmas.range(..end) {
            if v.end <= cur {
                continue;
            }
            if v.start > cur {
                return Err(Errno::ENOMEM);
            }
            cur = v.end;
            out.push(v);
        }
        if cur < end {
            return Err(Errno::ENOMEM);
        }
        Ok(out)
    }

    /// Calls `f(mf_offset, buf_range)` for each VMA piece of `[addr, addr+len)`,
    /// requiring `need` permission bits; EFAULT on any hole or missing permission.
    fn for_each_piece(
        &self,
        addr: u64,
        len: usize,
        need: i32,
        mut f: impl FnMut(u64, std::ops::Range<usize>),
    ) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        let inner = self.inner.lock().unwrap();
        let mut cur = addr;
        while cur < end {
            let v = match inner.vmas.range(..=cur).next_back() {
                Some((_, v)) if v.end > cur => v,
                _ => return Err(Errno::EFAULT),
            };
            if v.prot & need != need || cur >= v.eof {
                return Err(Errno::EFAULT);
            }
            let (off, e) = Self::translate(v, cur, end)?;
            f(off, (cur - addr) as usize..(e - addr) as usize);
            cur = e;
        }
        Ok(())
    }

    /// Copies workload memory at `addr` into `buf`.
    pub fn copy_in(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let len = buf.len();
        self.for_each_piece(addr, len, libc::PROT_READ, |off, r| {
            self.mf.read_at(off, &mut buf[r])
        })
    }

    /// Copies `buf` to workload memory at `addr`.
    pub fn copy_out(&self, addr: u64, buf: &[u8]) -> Result<(), Errno> {
        self.for_each_piece(addr, buf.len(), libc::PROT_WRITE, |off, r| {
            self.mf.write_at(off, &buf[r])
        })
    }

    /// Writes `buf` even into read-only mappings (the loader fills its own pages).
    pub fn copy_out_force(&self, addr: u64, buf: &[u8]) -> Result<(), Errno> {
        self.for_each_piece(addr, buf.len(), 0, |off, r| self.mf.write_at(off, &buf[r]))
    }

    /// Zeroes `[addr, addr+len)` even in read-only mappings (the loader's bss).
    pub fn zero_force(&self, addr: u64, len: u64) -> Result<(), Errno> {
        let zeros = vec![0u8; len as usize];
        self.copy_out_force(addr, &zeros)
    }

    /// Copies in a NUL-terminated string of at most `max` bytes before the NUL.
    pub fn copy_in_string(&self, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut cur = addr;
        loop {
            // Read up to the end of the page so an unmapped next page is not touched.
            let chunk = (PAGE_SIZE - cur % PAGE_SIZE) as usize;
            let mut buf = vec![0u8; chunk];
            self.copy_in(cur, &mut buf)?;
            if let Some(p) = buf.iter().position(|&b| b == 0) {
                out.extend_from_slice(&buf[..p]);
                if out.len() > max {
                    return Err(Errno::ENAMETOOLONG);
                }
                return Ok(out);
            }
            out.extend_from_slice(&buf);
            if out.len() > max {
                return Err(Errno::ENAMETOOLONG);
            }
            cur = cur.checked_add(chunk as u64).ok_or(Errno::EFAULT)?;
        }
    }

    /// Maps `[va, va+len)` into the address space, leaving out the pages from
    /// `eof` on (past end of file: a fault there becomes SIGBUS).
    fn map_upto(
        &self,
        va: u64,
        len: u64,
        off: u64,
        prot: i32,
        eof: u64,
    ) -> Result<(), platform::PlatformError> {
        let n = len.min(eof.saturating_sub(va));
        if n == 0 {
            return Ok(());
        }
        self.space.map(va, n, off, prot)
    }

    /// Whether a fault at `addr` is an access past end of file of a file mapping
    /// (SIGBUS rather than SIGSEGV).
    /// Whether a VMA covers `addr`.
    pub fn is_mapped(&self, addr: u64) -> bool {
        let inner = self.inner.lock().unwrap();
        matches!(inner.vmas.range(..=addr).next_back(), Some((_, v)) if v.end > addr)
    }

    pub fn is_past_eof(&self, addr: u64) -> bool {
        let inner = self.inner.lock().unwrap();
        match inner.vmas.range(..=addr).next_back() {
            Some((_, v)) if v.end > addr => match v.store() {
                // PROT_NONE faults are SIGSEGV wherever they are.
                Some(_) if v.prot == libc::PROT_NONE => false,
                Some(store) => v.file_offset(page_down(addr)) >= store.size_pages() * PAGE_SIZE,
                None => addr >= v.eof,
            },
            _ => false,
        }
    }

    /// Frees a removed VMA's memory: private ranges at once, shared ones when the
    /// last mapping of their backing goes.
    fn release_vma(mf: &MemoryFile, v: &Vma) {
        if v.backing.is_none() && v.pages.is_none() {
            mf.release(v.mf_offset, v.len());
        }
    }

    /// fork(2): a copy of this address space in `space`. Private mappings are
    /// copied (sparsely: untouched pages stay unallocated); shared mappings share
    /// their backing.
    pub fn fork(&self, space: Arc<dyn AddressSpace>) -> Result<MemoryManager, Errno> {
        let inner = self.inner.lock().unwrap();
        // The child commits what the parent has (Linux's dup_mmap accounting).
        self.mf.check_commit_total(inner.committed)?;
        let child = MemoryManager::new(self.mf.clone(), space, self.max_addr);
        {
            let mut ci = child.inner.lock().unwrap();
            ci.brk_start = inner.brk_start;
            ci.brk = inner.brk;
            ci.mmap_base = inner.mmap_base;
            for v in inner.vmas.values() {
                let mut nv = v.clone();
                if v.backing.is_none() && v.pages.is_none() {
                    let off = self.mf.allocate(v.len())?;
                    self.mf.copy_sparse(v.mf_offset, off, v.len());
                    nv.mf_offset = off;
                }
                // Insert first so that a failure below releases it with the child.
                ci.vmas.insert(nv.start, nv.clone());
                if nv.pages.is_some() {
                    child
                        .map_existing(&nv, nv.start, nv.end)
                        .map_err(platform_err)?;
                } else {
                    child
                        .map_upto(nv.start, nv.len(), nv.mf_offset, nv.prot, nv.eof)
                        .map_err(platform_err)?;
                }
            }
        }
        child.settle_commit();
        Ok(child)
    }

    /// The futex key of `addr`: memory-file offset for shared mappings (so that
    /// processes sharing memory agree), None for private ones.
    pub fn shared_offset(&self, addr: u64) -> Result<Option<u64>, Errno> {
        let inner = self.inner.lock().unwrap();
        match inner.vmas.range(..=addr).next_back() {
            Some((_, v)) if v.end > addr => {
                if v.pages.is_some() {
                    return Self::translate(v, addr, addr + 1).map(|(o, _)| Some(o));
                }
                Ok(v.backing.as_ref().map(|_| v.mf_offset + (addr - v.start)))
            }
            _ => Err(Errno::EFAULT),
        }
    }

    /// Atomically updates the writable, aligned u32 at `addr` with `f`; returns the
    /// old value (futex operations).
    pub fn update_u32(&self, addr: u64, f: impl Fn(u32) -> u32) -> Result<u32, Errno> {
        if !addr.is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        let inner = self.inner.lock().unwrap();
        match inner.vmas.range(..=addr).next_back() {
            Some((_, v)) if v.end > addr && v.prot & libc::PROT_WRITE != 0 => {
                let (off, _) = Self::translate(v, addr, addr + 4)?;
                Ok(self.mf.update_u32(off, f))
            }
            _ => Err(Errno::EFAULT),
        }
    }

    /// Resident memory in KiB: the pages of its mappings the host has backed.
    pub fn resident_kb(&self) -> u64 {
        let inner = self.inner.lock().unwrap();
        inner
            .vmas
            .values()
            .map(|v| match v.store() {
                Some(store) => {
                    store
                        .existing_pages(v.file_offset(v.start) / PAGE_SIZE, v.len() / PAGE_SIZE)
                        .len() as u64
                        * PAGE_SIZE
                }
                None => self.mf.data_bytes(v.mf_offset, v.len()),
            })
            .sum::<u64>()
            / 1024
    }

    /// A snapshot of the VMAs (for /proc/self/maps and tests).
    pub fn vmas(&self) -> Vec<Vma> {
        self.inner.lock().unwrap().vmas.values().cloned().collect()
    }

    /// Releases every mapping (exec and exit).
    pub fn release_all(&self) {
        let mut inner = self.inner.lock().unwrap();
        for (_, v) in std::mem::take(&mut inner.vmas) {
            if let Err(e) = Self::writeback(&self.mf, &v, v.start, v.end) {
                tracing::warn!("write-back of a shared mapping failed: {e}");
            }
            Self::release_vma(&self.mf, &v);
        }
        drop(inner);
        self.settle_commit();
    }
}

impl Drop for MemoryManager {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        self.mf
            .adjust_commit(-(std::mem::take(&mut inner.committed) as i64));
        for (_, v) in std::mem::take(&mut inner.vmas) {
            if let Err(e) = Self::writeback(&self.mf, &v, v.start, v.end) {
                tracing::warn!("write-back of a shared mapping failed: {e}");
            }
            Self::release_vma(&self.mf, &v);
        }
    }
}

#[cfg(test)]
mod tests;
