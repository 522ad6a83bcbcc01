//! MM tests: unit cases and a proptest of random map/unmap/protect/mremap sequences
//! against a page-level model.

use std::collections::BTreeMap;
use std::sync::Arc;

use platform::MemoryFile;
use proptest::prelude::*;

use super::*;

fn new_mm() -> MemoryManager {
    let mf = Arc::new(MemoryFile::new(1 << 32).unwrap());
    MemoryManager::new(
        mf,
        Arc::new(platform::null::NullAddressSpace),
        0x7fff_0000_0000,
    )
}

const RW: i32 = libc::PROT_READ | libc::PROT_WRITE;
const BASE: u64 = 0x1000_0000;

#[test]
fn copy_in_out_and_efault() {
    let mm = new_mm();
    let a = mm.mmap(MmapOpts::anon(3 * PAGE_SIZE, RW)).unwrap();
    mm.copy_out(a + PAGE_SIZE - 2, b"hello").unwrap();
    let mut b = [0u8; 5];
    mm.copy_in(a + PAGE_SIZE - 2, &mut b).unwrap();
    assert_eq!(&b, b"hello");
    assert_eq!(mm.copy_in(0, &mut b), Err(Errno::EFAULT));
    assert_eq!(
        mm.copy_in(a + 3 * PAGE_SIZE - 2, &mut b),
        Err(Errno::EFAULT)
    );
    assert_eq!(mm.copy_in(u64::MAX - 2, &mut b), Err(Errno::EFAULT));
    mm.mprotect(a, PAGE_SIZE, libc::PROT_READ).unwrap();
    assert_eq!(mm.copy_out(a, b"x"), Err(Errno::EFAULT));
    mm.copy_out(a + 2 * PAGE_SIZE - 1, &[0]).unwrap();
    mm.copy_out(a + 2 * PAGE_SIZE, b"abc\0").unwrap();
    assert_eq!(mm.copy_in_string(a + 2 * PAGE_SIZE, 10).unwrap(), b"abc");
    assert_eq!(
        mm.copy_in_string(a + 2 * PAGE_SIZE, 2),
        Err(Errno::ENAMETOOLONG)
    );
}

#[test]
fn brk_grows_and_shrinks() {
    let mm = new_mm();
    mm.set_brk_start(BASE + 100);
    assert_eq!(mm.brk(0), BASE + 100);
    assert_eq!(mm.brk(BASE + 3 * PAGE_SIZE), BASE + 3 * PAGE_SIZE);
    mm.copy_out(BASE + PAGE_SIZE * 2, b"x").unwrap();
    assert_eq!(mm.brk(BASE + 200), BASE + 200);
    assert_eq!(mm.copy_out(BASE + PAGE_SIZE * 2, b"x"), Err(Errno::EFAULT));
    // Below the start: unchanged.
    assert_eq!(mm.brk(BASE), BASE + 200);
}

#[test]
fn mremap_grow_move_shrink() {
    let mm = new_mm();
    let a = mm
        .mmap(MmapOpts {
            addr: BASE,
            fixed: true,
            ..MmapOpts::anon(PAGE_SIZE, RW)
        })
        .unwrap();
    mm.copy_out(a, b"keep").unwrap();
    // Grows in place when free.
    assert_eq!(mm.mremap(a, PAGE_SIZE, 2 * PAGE_SIZE, 0, 0).unwrap(), a);
    // Blocked by a neighbour: ENOMEM without MAYMOVE, moves with it.
    mm.mmap(MmapOpts {
        addr: a + 2 * PAGE_SIZE,
        fixed: true,
        ..MmapOpts::anon(PAGE_SIZE, RW)
    })
    .unwrap();
    assert_eq!(
        mm.mremap(a, 2 * PAGE_SIZE, 4 * PAGE_SIZE, 0, 0),
        Err(Errno::ENOMEM)
    );
    let b = mm
        .mremap(a, 2 * PAGE_SIZE, 4 * PAGE_SIZE, libc::MREMAP_MAYMOVE, 0)
        .unwrap();
    assert_ne!(a, b);
    let mut k = [0u8; 4];
    mm.copy_in(b, &mut k).unwrap();
    assert_eq!(&k, b"keep");
    assert_eq!(mm.copy_in(a, &mut k), Err(Errno::EFAULT));
    assert_eq!(mm.mremap(b, 4 * PAGE_SIZE, PAGE_SIZE, 0, 0).unwrap(), b);
    assert_eq!(mm.copy_in(b + PAGE_SIZE, &mut k), Err(Errno::EFAULT));
    assert_eq!(
        mm.mremap(b + 1, PAGE_SIZE, PAGE_SIZE, 0, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        mm.mremap(0x5000_0000, PAGE_SIZE, 2 * PAGE_SIZE, 0, 0),
        Err(Errno::EFAULT)
    );
}

#[test]
fn madvise_dontneed_zeroes() {
    let mm = new_mm();
    let a = mm.mmap(MmapOpts::anon(2 * PAGE_SIZE, RW)).unwrap();
    mm.copy_out(a, b"data").unwrap();
    mm.madvise(a, 2 * PAGE_SIZE, libc::MADV_DONTNEED).unwrap();
    let mut k = [1u8; 4];
    mm.copy_in(a, &mut k).unwrap();
    assert_eq!(k, [0; 4]);
    assert_eq!(
        mm.madvise(a + 1, PAGE_SIZE, libc::MADV_DONTNEED),
        Err(Errno::EINVAL)
    );
}

#[test]
fn mmap_argument_errors() {
    let mm = new_mm();
    assert_eq!(mm.mmap(MmapOpts::anon(0, RW)), Err(Errno::EINVAL));
    assert_eq!(
        mm.mmap(MmapOpts {
            addr: BASE + 1,
            fixed: true,
            ..MmapOpts::anon(1, RW)
        }),
        Err(Errno::EINVAL)
    );
    assert_eq!(mm.mmap(MmapOpts::anon(u64::MAX, RW)), Err(Errno::ENOMEM));
    mm.mmap(MmapOpts {
        addr: BASE,
        fixed: true,
        ..MmapOpts::anon(1, RW)
    })
    .unwrap();
    assert_eq!(
        mm.mmap(MmapOpts {
            addr: BASE,
            noreplace: true,
            ..MmapOpts::anon(1, RW)
        }),
        Err(Errno::EEXIST)
    );
    assert_eq!(mm.munmap(BASE + 1, 1), Err(Errno::EINVAL));
    assert_eq!(mm.munmap(BASE, 0), Err(Errno::EINVAL));
}

#[derive(Clone, Debug)]
enum Op {
    Map {
        page: u64,
        pages: u64,
        prot: i32,
    },
    Unmap {
        page: u64,
        pages: u64,
    },
    Protect {
        page: u64,
        pages: u64,
        prot: i32,
    },
    Remap {
        page: u64,
        pages: u64,
        new_pages: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let prot = prop_oneof![Just(0), Just(libc::PROT_READ), Just(RW)];
    prop_oneof![
        (0..48u64, 1..8u64, prot.clone()).prop_map(|(page, pages, prot)| Op::Map {
            page,
            pages,
            prot
        }),
        (0..48u64, 1..8u64).prop_map(|(page, pages)| Op::Unmap { page, pages }),
        (0..48u64, 1..8u64, prot).prop_map(|(page, pages, prot)| Op::Protect { page, pages, prot }),
        (0..48u64, 1..4u64, 1..8u64).prop_map(|(page, pages, new_pages)| Op::Remap {
            page,
            pages,
            new_pages
        }),
    ]
}

/// Model: page index -> (prot, marker byte at the page's start).
type Model = BTreeMap<u64, (i32, u8)>;

fn addr(page: u64) -> u64 {
    BASE + page * PAGE_SIZE
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn mm_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
        let mm = new_mm();
        let mut model = Model::new();
        let mut marker = 1u8;
        for op in ops {
            match op {
                Op::Map { page, pages, prot } => {
                    mm.mmap(MmapOpts { addr: addr(page), fixed: true, ..MmapOpts::anon(pages * PAGE_SIZE, prot) }).unwrap();
                    for p in page..page + pages {
                        marker = marker.wrapping_add(1).max(1);
                        mm.copy_out_force(addr(p), &[marker]).unwrap();
                        model.insert(p, (prot, marker));
                    }
                }
                Op::Unmap { page, pages } => {
                    mm.munmap(addr(page), pages * PAGE_SIZE).unwrap();
                    for p in page..page + pages {
                        model.remove(&p);
                    }
                }
                Op::Protect { page, pages, prot } => {
                    let all = (page..page + pages).all(|p| model.contains_key(&p));
                    let r = mm.mprotect(addr(page), pages * PAGE_SIZE, prot);
                    if all {
                        prop_assert_eq!(r, Ok(()));
                        for p in page..page + pages {
                            model.get_mut(&p).unwrap().0 = prot;
                        }
                    } else {
                        prop_assert_eq!(r, Err(Errno::ENOMEM));
                    }
                }
                Op::Remap { page, pages, new_pages } => {
                    // Only within one VMA; the model checks the outcome instead of
                    // predicting the placement.
                    let before: Vec<_> = (page..page + pages).map(|p| model.get(&p).copied()).collect();
                    match mm.mremap(addr(page), pages * PAGE_SIZE, new_pages * PAGE_SIZE, libc::MREMAP_MAYMOVE, 0) {
                        Ok(dest) => {
                            prop_assert!(before.iter().all(|b| b.is_some()));
                            for p in page..page + pages {
                                model.remove(&p);
                            }
                            let prot = before[0].unwrap().0;
                            for i in 0..new_pages {
                                let a = dest + i * PAGE_SIZE;
                                if a >= BASE && a < addr(64) {
                                    let m = if (i as usize) < before.len() { before[i as usize].unwrap().1 } else { 0 };
                                    model.insert((a - BASE) / PAGE_SIZE, (prot, m));
                                } else {
                                    // Moved outside the window: drop it to keep the model small.
                                    mm.munmap(a, PAGE_SIZE).unwrap();
                                }
                            }
                        }
                        Err(e) => prop_assert!(matches!(e, Errno::EFAULT | Errno::ENOMEM), "{:?}", e),
                    }
                }
            }
            // Compare every page of the window.
            let vmas = mm.vmas();
            for p in 0..64u64 {
                let a = addr(p);
                let v = vmas.iter().find(|v| v.start <= a && a < v.end);
                match (model.get(&p), v) {
                    (None, None) => {}
                    (Some((prot, m)), Some(v)) => {
                        prop_assert_eq!(v.prot, *prot, "page {}", p);
                        if prot & libc::PROT_READ != 0 {
                            let mut b = [0u8];
                            mm.copy_in(a, &mut b).unwrap();
                            prop_assert_eq!(b[0], *m, "marker of page {}", p);
                        } else {
                            prop_assert_eq!(mm.copy_in(a, &mut [0u8]), Err(Errno::EFAULT));
                        }
                    }
                    (m, v) => prop_assert!(false, "page {} model {:?} mm {:?}", p, m, v.map(|v| (v.start, v.end))),
                }
            }
        }
    }
}

/// A host file: bytes in memory, recording write-backs.
struct FakeHostFile {
    data: std::sync::Mutex<Vec<u8>>,
    writes: std::sync::Mutex<Vec<(u64, usize)>>,
}

impl fs::ReadAt for FakeHostFile {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let d = self.data.lock().unwrap();
        let s = (off as usize).min(d.len());
        let n = buf.len().min(d.len() - s);
        buf[..n].copy_from_slice(&d[s..s + n]);
        Ok(n)
    }
    fn write_back(&self, off: u64, buf: &[u8]) -> Result<usize, Errno> {
        let mut d = self.data.lock().unwrap();
        let end = off as usize + buf.len();
        if end > d.len() {
            d.resize(end, 0);
        }
        d[off as usize..end].copy_from_slice(buf);
        self.writes.lock().unwrap().push((off, buf.len()));
        Ok(buf.len())
    }
    fn size(&self) -> Option<u64> {
        Some(self.data.lock().unwrap().len() as u64)
    }
}

fn file_opts(file: Arc<dyn fs::ReadAt>, len: u64, shared: bool) -> MmapOpts {
    MmapOpts {
        shared,
        source: MmapSource::File {
            file,
            offset: 0,
            name: b"/f".to_vec(),
        },
        ..MmapOpts::anon(len, RW)
    }
}

#[test]
fn shared_host_file_msync_writes_back_dirty_pages() {
    let mm = new_mm();
    let f = Arc::new(FakeHostFile {
        data: std::sync::Mutex::new(vec![b'a'; 5000]),
        writes: Default::default(),
    });
    let a = mm.mmap(file_opts(f.clone(), 2 * PAGE_SIZE, true)).unwrap();
    mm.copy_out(a + 10, b"XY").unwrap();
    // Past end of file inside the last page: never written back.
    mm.copy_out(a + 6000, b"zz").unwrap();
    assert_eq!(f.data.lock().unwrap()[10], b'a', "not before msync");
    assert_eq!(
        mm.msync(a + 1, PAGE_SIZE, libc::MS_SYNC),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        mm.msync(a, PAGE_SIZE, libc::MS_SYNC | libc::MS_ASYNC),
        Err(Errno::EINVAL)
    );
    mm.msync(a, 2 * PAGE_SIZE, libc::MS_SYNC).unwrap();
    {
        let d = f.data.lock().unwrap();
        assert_eq!(&d[10..12], b"XY");
        assert_eq!(d.len(), 5000, "a mapping never extends its file");
    }
    // Only the changed bytes went back; page 1 changed only past EOF.
    assert_eq!(*f.writes.lock().unwrap(), vec![(10, 2)]);
    // Nothing dirty: nothing written.
    f.writes.lock().unwrap().clear();
    mm.msync(a, 2 * PAGE_SIZE, libc::MS_ASYNC).unwrap();
    assert!(f.writes.lock().unwrap().is_empty());
    // MS_INVALIDATE re-reads what others wrote to the file.
    f.data.lock().unwrap()[20] = b'R';
    mm.copy_out(a + 21, b"S").unwrap();
    mm.msync(a, PAGE_SIZE, libc::MS_SYNC | libc::MS_INVALIDATE)
        .unwrap();
    let mut r = [0u8; 2];
    mm.copy_in(a + 20, &mut r).unwrap();
    assert_eq!(&r, b"RS");
    // munmap writes back what changed since.
    mm.copy_out(a + 4000, b"Q").unwrap();
    mm.munmap(a, 2 * PAGE_SIZE).unwrap();
    assert_eq!(f.data.lock().unwrap()[4000], b'Q');
    assert_eq!(mm.msync(a, PAGE_SIZE, libc::MS_SYNC), Err(Errno::ENOMEM));
}

#[test]
fn shared_host_file_written_back_at_exit_and_after_fork() {
    let mm = new_mm();
    let f = Arc::new(FakeHostFile {
        data: std::sync::Mutex::new(vec![0; 100]),
        writes: Default::default(),
    });
    let a = mm.mmap(file_opts(f.clone(), PAGE_SIZE, true)).unwrap();
    let child = mm.fork(Arc::new(platform::null::NullAddressSpace)).unwrap();
    child.copy_out(a + 1, b"c").unwrap();
    // The child sees the parent's memory (one shared backing) ...
    let mut b = [0u8; 1];
    mm.copy_in(a + 1, &mut b).unwrap();
    assert_eq!(&b, b"c");
    // ... and its exit writes it back.
    drop(child);
    assert_eq!(f.data.lock().unwrap()[1], b'c');
    mm.copy_out(a + 2, b"p").unwrap();
    mm.release_all();
    assert_eq!(f.data.lock().unwrap()[2], b'p');
    // A private mapping never writes back.
    let p = mm.mmap(file_opts(f.clone(), PAGE_SIZE, false)).unwrap();
    mm.copy_out(p + 3, b"x").unwrap();
    mm.munmap(p, PAGE_SIZE).unwrap();
    assert_eq!(f.data.lock().unwrap()[3], 0);
}

/// A tmpfs-like file: its data in a page store in the MM's memory file.
struct StoreFile(Arc<fs::pagestore::PageStore>);

impl fs::ReadAt for StoreFile {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        Ok(self.0.read(buf, off))
    }
    fn page_store(&self) -> Option<Arc<fs::pagestore::PageStore>> {
        Some(self.0.clone())
    }
}

#[test]
fn shared_tmpfs_mapping_is_the_files_pages() {
    let mm = new_mm();
    let quota = fs::pagestore::Quota::new(1 << 20);
    let store = fs::pagestore::PageStore::new_in(mm.mf.clone(), quota.clone());
    store.truncate(PAGE_SIZE + 10).unwrap();
    let f: Arc<dyn fs::ReadAt> = Arc::new(StoreFile(store.clone()));
    let a = mm.mmap(file_opts(f.clone(), 3 * PAGE_SIZE, true)).unwrap();
    assert_eq!(store.allocated_pages(), 0, "mapping allocates nothing");
    // Writes through the mapping are the file's; write(2) shows through.
    mm.copy_out(a + PAGE_SIZE + 1, b"map").unwrap();
    let mut b = [0u8; 3];
    assert_eq!(store.read(&mut b, PAGE_SIZE + 1), 3);
    assert_eq!(&b, b"map");
    store.write(b"wr", 5, false).unwrap();
    mm.copy_in(a + 5, &mut b[..2]).unwrap();
    assert_eq!(&b[..2], b"wr");
    assert_eq!(store.allocated_pages(), 2);
    // A second mapping (another process) shares the pages; futex keys agree.
    let child = mm.fork(Arc::new(platform::null::NullAddressSpace)).unwrap();
    child.copy_out(a + 7, b"c").unwrap();
    mm.copy_in(a + 7, &mut b[..1]).unwrap();
    assert_eq!(b[0], b'c');
    assert_eq!(
        mm.shared_offset(a + 8).unwrap(),
        child.shared_offset(a + 8).unwrap()
    );
    // Past end of file: EFAULT for the kernel, SIGBUS for the workload.
    assert_eq!(mm.copy_out(a + 2 * PAGE_SIZE, b"x"), Err(Errno::EFAULT));
    assert!(mm.is_past_eof(a + 2 * PAGE_SIZE));
    assert!(!mm.is_past_eof(a + PAGE_SIZE + 100));
    assert_eq!(mm.handle_fault(a + 2 * PAGE_SIZE), Some(false));
    assert_eq!(mm.handle_fault(a + 5), Some(true));
    // Growing the file makes the page available.
    store.truncate(3 * PAGE_SIZE).unwrap();
    assert!(!mm.is_past_eof(a + 2 * PAGE_SIZE));
    assert_eq!(mm.handle_fault(a + 2 * PAGE_SIZE), Some(true));
    assert_eq!(store.allocated_pages(), 3);
    // An anonymous mapping is not the fault handler's.
    let anon = mm.mmap(MmapOpts::anon(PAGE_SIZE, RW)).unwrap();
    assert_eq!(mm.handle_fault(anon), None);
    // mremap keeps mapping the same pages.
    let n = mm
        .mremap(a, 3 * PAGE_SIZE, 4 * PAGE_SIZE, libc::MREMAP_MAYMOVE, 0)
        .unwrap();
    mm.copy_in(n + 5, &mut b[..2]).unwrap();
    assert_eq!(&b[..2], b"wr");
    // Unlinked and unmapped everywhere: the pages go back.
    drop(f);
    drop(child);
    mm.release_all();
    drop(store);
    assert_eq!(quota.used(), 0);
}

#[test]
fn shared_tmpfs_fault_without_space_is_sigbus() {
    let mm = new_mm();
    let quota = fs::pagestore::Quota::new(2 * PAGE_SIZE);
    let store = fs::pagestore::PageStore::new_in(mm.mf.clone(), quota.clone());
    store.truncate(8 * PAGE_SIZE).unwrap();
    let f: Arc<dyn fs::ReadAt> = Arc::new(StoreFile(store.clone()));
    let a = mm.mmap(file_opts(f, 8 * PAGE_SIZE, true)).unwrap();
    // Fault-around takes what space there is; the faulting page comes first.
    assert_eq!(mm.handle_fault(a + 5 * PAGE_SIZE), Some(true));
    assert_eq!(store.allocated_pages(), 2);
    assert_eq!(mm.handle_fault(a), Some(false));
    assert_eq!(mm.copy_out(a, b"x"), Err(Errno::EFAULT));
    mm.copy_out(a + 6 * PAGE_SIZE, b"ok").unwrap();
}

#[test]
fn shared_host_file_write_back_joins_close_changes() {
    let mm = new_mm();
    let f = Arc::new(FakeHostFile {
        data: std::sync::Mutex::new(vec![0; 1000]),
        writes: Default::default(),
    });
    let a = mm.mmap(file_opts(f.clone(), PAGE_SIZE, true)).unwrap();
    mm.copy_out(a + 100, b"A").unwrap();
    mm.copy_out(a + 110, b"B").unwrap();
    mm.copy_out(a + 300, b"C").unwrap();
    // Someone else writes between our changes: it survives.
    f.data.lock().unwrap()[200] = 9;
    mm.msync(a, PAGE_SIZE, libc::MS_ASYNC).unwrap();
    assert_eq!(*f.writes.lock().unwrap(), vec![(100, 11), (300, 1)]);
    let d = f.data.lock().unwrap();
    assert_eq!((d[100], d[110], d[200], d[300]), (b'A', b'B', 9, b'C'));
}

#[test]
fn commit_accounting() {
    let mf = Arc::new(MemoryFile::new(1 << 32).unwrap());
    let space = || -> Arc<dyn AddressSpace> { Arc::new(platform::null::NullAddressSpace) };
    let mm = MemoryManager::new(mf.clone(), space(), 0x7fff_0000_0000);
    mf.set_commit_limit(16 * PAGE_SIZE, u64::MAX);
    // PROT_NONE and read-only reservations commit nothing.
    let r = mm
        .mmap(MmapOpts::anon(64 * PAGE_SIZE, libc::PROT_NONE))
        .unwrap();
    mm.mmap(MmapOpts::anon(64 * PAGE_SIZE, libc::PROT_READ))
        .unwrap();
    assert_eq!(mf.committed(), 0);
    assert_eq!(
        mm.mmap(MmapOpts::anon(17 * PAGE_SIZE, RW)),
        Err(Errno::ENOMEM)
    );
    let a = mm.mmap(MmapOpts::anon(8 * PAGE_SIZE, RW)).unwrap();
    assert_eq!(mf.committed(), 8 * PAGE_SIZE);
    // mprotect to writable commits; past the limit it is ENOMEM.
    mm.mprotect(r, 4 * PAGE_SIZE, RW).unwrap();
    assert_eq!(mf.committed(), 12 * PAGE_SIZE);
    assert_eq!(mm.mprotect(r, 64 * PAGE_SIZE, RW), Err(Errno::ENOMEM));
    mm.mprotect(r, 2 * PAGE_SIZE, libc::PROT_READ).unwrap();
    assert_eq!(mf.committed(), 10 * PAGE_SIZE);
    // mremap growth commits the growth.
    assert_eq!(
        mm.mremap(a, 8 * PAGE_SIZE, 16 * PAGE_SIZE, libc::MREMAP_MAYMOVE, 0),
        Err(Errno::ENOMEM)
    );
    let a = mm
        .mremap(a, 8 * PAGE_SIZE, 12 * PAGE_SIZE, libc::MREMAP_MAYMOVE, 0)
        .unwrap();
    assert_eq!(mf.committed(), 14 * PAGE_SIZE);
    // fork commits the parent's total again: over the limit here.
    assert!(mm.fork(space()).is_err());
    assert_eq!(mf.committed(), 14 * PAGE_SIZE);
    mm.munmap(a, 12 * PAGE_SIZE).unwrap();
    assert_eq!(mf.committed(), 2 * PAGE_SIZE);
    let child = mm.fork(space()).unwrap();
    assert_eq!(mf.committed(), 4 * PAGE_SIZE);
    drop(child);
    mm.release_all();
    assert_eq!(mf.committed(), 0);
    // One request may not commit more than `single`; MAP_NORESERVE commits
    // nothing.
    mf.set_commit_limit(16 * PAGE_SIZE, 4 * PAGE_SIZE);
    assert_eq!(
        mm.mmap(MmapOpts::anon(5 * PAGE_SIZE, RW)),
        Err(Errno::ENOMEM)
    );
    let a = mm.mmap(MmapOpts::anon(4 * PAGE_SIZE, RW)).unwrap();
    mm.mmap_with(MmapOpts::anon(64 * PAGE_SIZE, RW), true)
        .unwrap();
    assert_eq!(mf.committed(), 4 * PAGE_SIZE);
    let b = mm.mmap(MmapOpts::anon(4 * PAGE_SIZE, RW)).unwrap();
    // fork checks only the total (8 of 16 pages).
    let child = mm.fork(space()).unwrap();
    assert_eq!(mf.committed(), 16 * PAGE_SIZE);
    drop(child);
    mm.munmap(a, 4 * PAGE_SIZE).unwrap();
    mm.munmap(b, 4 * PAGE_SIZE).unwrap();
    assert_eq!(mf.committed(), 0);
}
