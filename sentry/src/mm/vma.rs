//! Virtual memory areas.

use std::sync::Arc;

/// Where a mapping's initial contents come from.
#[derive(Clone)]
pub enum MmapSource {
    /// Zero-filled memory.
    Anonymous,
    /// A file's bytes from `offset` (copied in at map time; zeros past EOF).
    File {
        file: Arc<dyn fs::ReadAt>,
        offset: u64,
        name: Vec<u8>,
    },
}

/// Arguments of one mmap.
#[derive(Clone)]
pub struct MmapOpts {
    /// Requested address (a hint unless `fixed`).
    pub addr: u64,
    pub len: u64,
    pub prot: i32,
    /// MAP_FIXED: replace whatever is at `addr`.
    pub fixed: bool,
    /// MAP_FIXED_NOREPLACE: like fixed, but EEXIST if anything is there.
    pub noreplace: bool,
    /// MAP_SHARED (vs MAP_PRIVATE).
    pub shared: bool,
    /// The most mprotect may grant later (Linux's VM_MAY*): a shared mapping of a
    /// file not open for writing can never become writable.
    pub max_prot: i32,
    pub source: MmapSource,
}

impl MmapOpts {
    /// Anonymous private read-write memory at a kernel-chosen address.
    pub fn anon(len: u64, prot: i32) -> MmapOpts {
        MmapOpts {
            addr: 0,
            len,
            prot,
            fixed: false,
            noreplace: false,
            shared: false,
            max_prot: super::PROT_ALL,
            source: MmapSource::Anonymous,
        }
    }
}

/// One contiguous mapping, backed by one contiguous memory-file range.
#[derive(Clone)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: i32,
    /// See [`MmapOpts::max_prot`].
    pub max_prot: i32,
    pub shared: bool,
    /// Memory-file offset backing `start`.
    pub mf_offset: u64,
    /// The file and file offset backing `start`, for file mappings.
    pub file: Option<(Arc<dyn fs::ReadAt>, u64)>,
    /// Name shown in /proc/self/maps ("[stack]", "[heap]" or the file path).
    pub name: Vec<u8>,
    /// For shared mappings: the memory-file range, shared with other address
    /// spaces after fork and released when the last mapping of it goes. Private
    /// mappings own their range outright (None).
    pub backing: Option<Arc<Backing>>,
    /// For file mappings longer than the file: the address of the first page
    /// wholly past end of file. Those pages are left out of the address space, and
    /// touching them is SIGBUS, as on Linux. u64::MAX when there are none.
    pub eof: u64,
    /// For shared mappings of files whose data lives in the memory file (tmpfs,
    /// memfd): the file's pages, mapped directly (`mf_offset` and `backing` are
    /// unused). The address space maps some of the file's pages inside the VMA;
    /// the others fault in (see `MemoryManager::handle_fault`).
    pub pages: Option<Arc<fs::pagestore::MapRef>>,
    /// MAP_NORESERVE (Linux's VM_NORESERVE): commits nothing, even writable.
    pub noreserve: bool,
}

/// A memory-file range shared by several mappings.
pub struct Backing {
    pub mf: Arc<platform::MemoryFile>,
    pub off: u64,
    pub len: u64,
    /// For writable shared mappings of files whose data is elsewhere (gofer and
    /// host files): a copy of the bytes as last read from or written back to
    /// the file, `len` long. Pages that differ from it are dirty.
    pub clean: Option<u64>,
}

impl Drop for Backing {
    fn drop(&mut self) {
        self.mf.release(self.off, self.len);
        if let Some(c) = self.clean {
            self.mf.release(c, self.len);
        }
    }
}

impl Vma {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the mapping commits memory (Linux's VM_ACCOUNT): private and
    /// writable. PROT_NONE and read-only reservations commit nothing until
    /// mprotect makes them writable; shared mappings are charged to their
    /// file (tmpfs) or share one backing.
    pub fn accountable(&self) -> bool {
        !self.shared && !self.noreserve && self.pages.is_none() && self.prot & libc::PROT_WRITE != 0
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// The file page store, for shared mappings of memory-file-backed files.
    pub fn store(&self) -> Option<&Arc<fs::pagestore::PageStore>> {
        self.pages.as_ref().map(|p| p.store())
    }

    /// The file offset of `addr` (file mappings).
    pub fn file_offset(&self, addr: u64) -> u64 {
        self.file
            .as_ref()
            .map_or(0, |(_, o)| o + (addr - self.start))
    }

    /// Splits at `at` (strictly inside), returning the upper part and keeping the lower.
    pub fn split_off(&mut self, at: u64) -> Vma {
        debug_assert!(at > self.start && at < self.end);
        let delta = at - self.start;
        let upper = Vma {
            start: at,
            end: self.end,
            prot: self.prot,
            max_prot: self.max_prot,
            shared: self.shared,
            mf_offset: self.mf_offset + delta,
            file: self.file.as_ref().map(|(f, o)| (f.clone(), o + delta)),
            name: self.name.clone(),
            backing: self.backing.clone(),
            eof: self.eof,
            pages: self.pages.clone(),
            noreserve: self.noreserve,
        };
        self.end = at;
        upper
    }
}
