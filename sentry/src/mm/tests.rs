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
