//! The 4-level page table of one address space. Table pages are taken from the
//! MemoryFile (so they are guest-physical memory the MMU can walk) and edited
//! through the sentry's mapping of it. Leaves map 4 KiB workload pages to
//! memory-file offsets; PML4 slot 511 points at the shared, supervisor-only kernel
//! tables.
//!
//! After `unmap`/`protect` the table's generation changes; a vCPU that last ran this
//! table at an older generation reloads CR3 (a full non-global TLB flush) before it
//! runs it again. (A vCPU of the same table *running* on another thread at that
//! moment is not yet shot down: see the module's next steps.)
//!
//! For shadow-paging hosts the table also lists the entries it narrowed
//! (`PageTables::take_dirty`) and holds back the table pages `unmap` unlinks
//! until `Vm::sync_translations` told KVM (see [`super::pvm`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::kernel::{KernelRegion, PDPT_PAGE, PTE_A, PTE_ADDR, PTE_D, PTE_NX, PTE_P, PTE_U, PTE_W};
use super::{KvmError, MEMFILE_GPA};
use crate::{MemoryFile, Prot};

/// A software bit (ignored by the MMU) marking a leaf that is mapped with PROT_NONE:
/// not present, but it keeps its frame so `protect` can restore it.
const PTE_NONE_MAPPED: u64 = 1 << 9;
/// Bits of an interior entry for user tables.
const TABLE: u64 = PTE_P | PTE_W | PTE_U | PTE_A;
/// One past the highest user address (the lower canonical half).
pub const USER_LIMIT: u64 = 1 << 47;

/// Source of generations: unique across all tables, so (root, generation) names
/// one state even if a root page is reused.
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// The latest generation handed out; the edits it stands for are complete.
pub fn current_generation() -> u64 {
    GENERATION.load(Ordering::Acquire) - 1
}

fn next_generation() -> u64 {
    GENERATION.fetch_add(1, Ordering::AcqRel)
}

pub struct PageTables {
    mf: Arc<MemoryFile>,
    /// Memory-file offset of the PML4.
    root: u64,
    /// Serialises edits (entries are still written atomically for the MMU).
    lock: Mutex<()>,
    generation: AtomicU64,
    /// Table pages in use (including the root).
    tables: AtomicU64,
    /// Pages whose translation was removed or narrowed, with the generation that
    /// did it, oldest first; bounded (see [`PageTables::changes_since`]).
    log: Mutex<FlushLog>,
    /// The generation up to which shadow-paging hosts were told of the edits
    /// (see [`super::Vm::sync_translations`]).
    synced: AtomicU64,
}

#[derive(Default)]
struct FlushLog {
    entries: std::collections::VecDeque<(u64, u64)>,
    /// Generations up to this one may have entries dropped from the log.
    trimmed: u64,
    /// Memory-file offsets of the entries (leaf or table) whose translation was
    /// removed or narrowed since the last [`PageTables::take_dirty`].
    dirty: Vec<u64>,
    /// More than [`DIRTY_MAX`] were: the list is incomplete.
    dirty_overflow: bool,
    /// Table pages unlinked by `unmap` and not yet released to the memory file:
    /// a shadow MMU may still hold translations derived from them, so they go
    /// back only after [`super::Vm::sync_translations`] dealt with them (or
    /// when the table is dropped).
    freed: Vec<u64>,
}

/// Entries [`FlushLog::dirty`] holds before it gives up.
const DIRTY_MAX: usize = 4096;

/// Entries kept in the flush log.
const LOG_MAX: usize = 4096;

impl PageTables {
    pub fn new(mf: Arc<MemoryFile>) -> Result<PageTables, KvmError> {
        let root = alloc_table(&mf)?;
        let pt = PageTables {
            mf,
            root,
            lock: Mutex::new(()),
            generation: AtomicU64::new(next_generation()),
            tables: AtomicU64::new(1),
            log: Mutex::new(FlushLog::default()),
            synced: AtomicU64::new(0),
        };
        pt.entry(root, 511).store(
            KernelRegion::page_gpa(PDPT_PAGE) | PTE_P | PTE_W | PTE_A,
            Ordering::Release,
        );
        Ok(pt)
    }

    /// The value for CR3.
    pub fn cr3(&self) -> u64 {
        MEMFILE_GPA + self.root
    }

    /// Changes whenever a mapping is removed or narrowed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Table pages held (root included).
    pub fn table_pages(&self) -> u64 {
        self.tables.load(Ordering::Relaxed)
    }

    /// The entry `i` of the table at memory-file offset `table`.
    fn entry(&self, table: u64, i: usize) -> &AtomicU64 {
        let off = table + (i as u64) * 8;
        assert!(i < 512 && off + 8 <= self.mf.size());
        // SAFETY: `off` is an 8-aligned offset inside the memory file's mapping,
        // which outlives `self` (we hold the Arc); the page is one of our tables,
        // which only this table and the guest MMU touch, both atomically.
        unsafe { &*(self.mf.base_ptr().add(off as usize) as *const AtomicU64) }
    }

    /// The memory-file offset of the leaf entry for `va`, if its table exists.
    pub(crate) fn leaf_entry_offset(&self, va: u64) -> Option<u64> {
        let e = self.leaf(va & !0xfff, false).ok()??;
        Some(self.offset_of(e))
    }

    /// The memory-file offset of an entry `entry` returned.
    fn offset_of(&self, e: &AtomicU64) -> u64 {
        (e as *const AtomicU64 as usize - self.mf.base_ptr() as usize) as u64
    }

    fn indices(va: u64) -> [usize; 4] {
        [
            ((va >> 39) & 511) as usize,
            ((va >> 30) & 511) as usize,
            ((va >> 21) & 511) as usize,
            ((va >> 12) & 511) as usize,
        ]
    }

    /// The leaf entry for `va`, creating tables on the way when `create`.
    fn leaf(&self, va: u64, create: bool) -> Result<Option<&AtomicU64>, KvmError> {
        let idx = Self::indices(va);
        let mut table = self.root;
        for &i in &idx[..3] {
            let e = self.entry(table, i);
            let v = e.load(Ordering::Acquire);
            if v & PTE_P != 0 {
                table = (v & PTE_ADDR) - MEMFILE_GPA;
                continue;
            }
            if !create {
                return Ok(None);
            }
            let t = alloc_table(&self.mf)?;
            self.tables.fetch_add(1, Ordering::Relaxed);
            e.store((MEMFILE_GPA + t) | TABLE, Ordering::Release);
            table = t;
        }
        Ok(Some(self.entry(table, idx[3])))
    }

    fn check(va: u64, len: u64) -> Result<(), KvmError> {
        if va & 0xfff != 0 || len & 0xfff != 0 || va.checked_add(len).is_none_or(|e| e > USER_LIMIT)
        {
            return Err(KvmError {
                op: "page table range",
                errno: libc::EINVAL,
            });
        }
        Ok(())
    }

    fn leaf_bits(prot: Prot) -> u64 {
        if prot & (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) == 0 {
            return PTE_NONE_MAPPED;
        }
        let mut b = PTE_P | PTE_U | PTE_A;
        if prot & libc::PROT_WRITE != 0 {
            b |= PTE_W | PTE_D;
        }
        if prot & libc::PROT_EXEC == 0 {
            b |= PTE_NX;
        }
        b
    }

    /// Maps `[va, va+len)` to memory-file `[offset, offset+len)` with `prot`.
    pub fn map(&self, va: u64, len: u64, offset: u64, prot: Prot) -> Result<(), KvmError> {
        Self::check(va, len)?;
        if offset & 0xfff != 0 || offset.checked_add(len).is_none_or(|e| e > self.mf.size()) {
            return Err(KvmError {
                op: "page table offset",
                errno: libc::EINVAL,
            });
        }
        let _g = self.lock.lock().unwrap();
        let bits = Self::leaf_bits(prot);
        let mut replaced = Vec::new();
        let mut entries = Vec::new();
        for p in 0..len / 4096 {
            let e = self.leaf(va + p * 4096, true)?.expect("created");
            let old = e.swap((MEMFILE_GPA + offset + p * 4096) | bits, Ordering::Release);
            if old & PTE_P != 0 {
                replaced.push(va + p * 4096);
                entries.push(self.offset_of(e));
            }
        }
        if !replaced.is_empty() {
            self.changed(replaced, entries);
        }
        Ok(())
    }

    /// Removes any mapping in `[va, va+len)`, freeing leaf tables left empty.
    pub fn unmap(&self, va: u64, len: u64) -> Result<(), KvmError> {
        Self::check(va, len)?;
        let _g = self.lock.lock().unwrap();
        let mut p = va;
        let end = va + len;
        let mut changed = Vec::new();
        let mut entries = Vec::new();
        let mut freed = Vec::new();
        while p < end {
            // Skip whole absent subtrees quickly.
            match self.leaf(p, false)? {
                Some(e) => {
                    if e.swap(0, Ordering::Release) & PTE_P != 0 {
                        changed.push(p);
                        entries.push(self.offset_of(e));
                    }
                    p += 4096;
                    if p & ((1 << 21) - 1) == 0 || p >= end {
                        self.prune(p - 4096, &mut entries, &mut freed);
                    }
                }
                None => p = (p | ((1 << 21) - 1)) + 1,
            }
        }
        if !freed.is_empty() {
            self.log.lock().unwrap().freed.extend(freed);
        }
        self.changed(changed, entries);
        Ok(())
    }

    /// Records that the translations of `pages` were removed or narrowed, by
    /// edits of the entries at memory-file offsets `entries`.
    fn changed(&self, pages: Vec<u64>, entries: Vec<u64>) {
        if pages.is_empty() && entries.is_empty() {
            return;
        }
        let mut log = self.log.lock().unwrap();
        if log.dirty.len() + entries.len() > DIRTY_MAX {
            log.dirty_overflow = true;
            log.dirty = Vec::new();
        } else if !log.dirty_overflow {
            log.dirty.extend(entries);
        }
        let g = next_generation();
        for p in pages {
            if log.entries.len() == LOG_MAX {
                let (old, _) = log.entries.pop_front().unwrap();
                log.trimmed = log.trimmed.max(old);
            }
            log.entries.push_back((g, p));
        }
        self.generation.store(g, Ordering::Release);
    }

    /// Takes the entries edited since the last call (None: too many to list),
    /// the table pages unlinked since (see [`PageTables::release_tables`]) and
    /// the generation they bring the table to.
    pub(crate) fn take_dirty(&self) -> (Option<Vec<u64>>, Vec<u64>, u64) {
        let mut log = self.log.lock().unwrap();
        let list = std::mem::take(&mut log.dirty);
        let freed = std::mem::take(&mut log.freed);
        let overflow = std::mem::replace(&mut log.dirty_overflow, false);
        (
            (!overflow).then_some(list),
            freed,
            self.generation.load(Ordering::Acquire),
        )
    }

    /// Returns table pages [`PageTables::take_dirty`] handed out to the memory file.
    pub(crate) fn release_tables(&self, pages: &[u64]) {
        for p in pages {
            self.mf.release(*p, 4096);
        }
    }

    /// The memory-file offsets of every table page (root included) and of the
    /// unlinked ones not yet released.
    pub(crate) fn all_table_pages(&self) -> Vec<u64> {
        let _g = self.lock.lock().unwrap();
        let mut v = self.log.lock().unwrap().freed.clone();
        self.walk_tables(self.root, 0, &mut v);
        v
    }

    fn walk_tables(&self, table: u64, level: usize, out: &mut Vec<u64>) {
        if level < 3 {
            let n = if level == 0 { 511 } else { 512 };
            for i in 0..n {
                let v = self.entry(table, i).load(Ordering::Relaxed);
                if v & PTE_P != 0 {
                    self.walk_tables((v & PTE_ADDR) - MEMFILE_GPA, level + 1, out);
                }
            }
        }
        out.push(table);
    }

    /// The generation whose edits shadow-paging hosts were told of.
    pub(crate) fn synced(&self) -> u64 {
        self.synced.load(Ordering::Acquire)
    }

    pub(crate) fn set_synced(&self, gen: u64) {
        self.synced.fetch_max(gen, Ordering::AcqRel);
    }

    /// The pages changed after generation `since` (at most `max`), or None when
    /// there are more or the log no longer reaches back that far.
    pub fn changes_since(&self, since: u64, max: usize) -> Option<Vec<u64>> {
        let log = self.log.lock().unwrap();
        if since < log.trimmed {
            return None;
        }
        let mut v: Vec<u64> = log
            .entries
            .iter()
            .rev()
            .take_while(|(g, _)| *g > since)
            .map(|(_, p)| *p)
            .collect();
        v.sort_unstable();
        v.dedup();
        (v.len() <= max).then_some(v)
    }

    /// Unlinks the tables above `va`'s leaf that have become empty, adding the
    /// offsets of the entries it clears to `cleared` and the tables to `freed`.
    fn prune(&self, va: u64, cleared: &mut Vec<u64>, freed: &mut Vec<u64>) {
        let idx = Self::indices(va);
        let mut path = [(self.root, idx[0]); 3];
        let mut table = self.root;
        for l in 0..3 {
            path[l] = (table, idx[l]);
            let v = self.entry(table, idx[l]).load(Ordering::Acquire);
            if v & PTE_P == 0 {
                return;
            }
            table = (v & PTE_ADDR) - MEMFILE_GPA;
        }
        // `table` is the leaf table; walk back up while tables are empty.
        let mut child = table;
        for l in (0..3).rev() {
            if (0..512).any(|i| self.entry(child, i).load(Ordering::Relaxed) != 0) {
                return;
            }
            let (parent, i) = path[l];
            self.entry(parent, i).store(0, Ordering::Release);
            cleared.push(parent + i as u64 * 8);
            freed.push(child);
            self.tables.fetch_sub(1, Ordering::Relaxed);
            child = parent;
        }
    }

    /// Changes the protection of the mapped pages in `[va, va+len)`.
    pub fn protect(&self, va: u64, len: u64, prot: Prot) -> Result<(), KvmError> {
        Self::check(va, len)?;
        let _g = self.lock.lock().unwrap();
        let bits = Self::leaf_bits(prot);
        let mut p = va;
        let mut changed = Vec::new();
        let mut entries = Vec::new();
        while p < va + len {
            match self.leaf(p, false)? {
                Some(e) => {
                    let old = e.load(Ordering::Acquire);
                    if old & (PTE_P | PTE_NONE_MAPPED) != 0 {
                        e.store((old & PTE_ADDR) | bits, Ordering::Release);
                        if old & PTE_P != 0 {
                            changed.push(p);
                            entries.push(self.offset_of(e));
                        }
                    }
                    p += 4096;
                }
                None => p = (p | ((1 << 21) - 1)) + 1,
            }
        }
        self.changed(changed, entries);
        Ok(())
    }

    /// The memory-file offset and protection bits `va` maps, if any (for tests
    /// and fault decoding): (offset, writable, executable, present).
    pub fn lookup(&self, va: u64) -> Option<(u64, bool, bool, bool)> {
        let e = self.leaf(va & !0xfff, false).ok()??.load(Ordering::Acquire);
        if e & (PTE_P | PTE_NONE_MAPPED) == 0 {
            return None;
        }
        Some((
            (e & PTE_ADDR) - MEMFILE_GPA,
            e & PTE_W != 0,
            e & (PTE_NX | PTE_P) == PTE_P,
            e & PTE_P != 0,
        ))
    }

    /// Reads `buf.len()` bytes of workload code at `va` as an instruction
    /// fetch from ring 3 would see them: every byte in the lower half, mapped
    /// present and executable. False (buf unspecified) otherwise. Used to
    /// decode what a fault stands for (an `int` instruction, the `syscall`
    /// before a LSTAR fetch fault).
    pub fn fetch_user(&self, va: u64, buf: &mut [u8]) -> bool {
        for (i, b) in buf.iter_mut().enumerate() {
            let Some(a) = va.checked_add(i as u64).filter(|a| *a < USER_LIMIT) else {
                return false;
            };
            match self.lookup(a) {
                Some((off, _, true, true)) => {
                    let mut one = [0u8];
                    self.mf.read_at(off + (a & 0xfff), &mut one);
                    *b = one[0];
                }
                _ => return false,
            }
        }
        true
    }

    /// Frees every table page (leaves the mapped memory alone).
    fn free_all(&self, table: u64, level: usize) {
        if level < 3 {
            let n = if level == 0 { 511 } else { 512 };
            for i in 0..n {
                let v = self.entry(table, i).load(Ordering::Relaxed);
                if v & PTE_P != 0 {
                    self.free_all((v & PTE_ADDR) - MEMFILE_GPA, level + 1);
                }
            }
        }
        release_table(&self.mf, table);
    }
}

impl Drop for PageTables {
    fn drop(&mut self) {
        self.free_all(self.root, 0);
        let freed = std::mem::take(&mut self.log.lock().unwrap().freed);
        self.release_tables(&freed);
    }
}

fn release_table(mf: &MemoryFile, off: u64) {
    // Shadow-paging hosts forgot what they derived from it first
    // (`Vm::forget_tables`, or the freed list of `take_dirty`).
    mf.release(off, 4096);
}

fn alloc_table(mf: &MemoryFile) -> Result<u64, KvmError> {
    let off = mf.allocate_high(4096).map_err(|_| KvmError {
        op: "page table page",
        errno: libc::ENOMEM,
    })?;
    // Fresh allocations read as zeros (released ranges are punched); make sure.
    mf.write_at(off, &[0u8; 4096]);
    Ok(off)
}
