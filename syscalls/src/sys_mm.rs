//! Memory syscalls: mmap, munmap, mprotect, mremap, brk, madvise, msync.

use abi::sysno::*;
use abi::{Errno, SysResult};
use sentry::mm::{MmapOpts, MmapSource};
use sentry::Task;

use crate::{Arg, Args, Table};

pub(crate) fn register(t: &mut Table) {
    t.add(
        MMAP,
        sys_mmap,
        &[Arg::Hex, Arg::UDec, Arg::Prot, Arg::Hex, Arg::Fd, Arg::Hex],
    );
    t.add(MUNMAP, sys_munmap, &[Arg::Hex, Arg::UDec]);
    t.add(MPROTECT, sys_mprotect, &[Arg::Hex, Arg::UDec, Arg::Prot]);
    t.add(
        MREMAP,
        sys_mremap,
        &[Arg::Hex, Arg::UDec, Arg::UDec, Arg::Hex, Arg::Hex],
    );
    t.add(BRK, sys_brk, &[Arg::Hex]);
    t.add(MADVISE, sys_madvise, &[Arg::Hex, Arg::UDec, Arg::Dec]);
    t.add(MLOCK, sys_mlock, &[Arg::Hex, Arg::UDec]);
    t.add(MSYNC, sys_msync, &[Arg::Hex, Arg::UDec, Arg::Hex]);
    t.add(MUNLOCK, sys_mlock, &[Arg::Hex, Arg::UDec]);
}

const KNOWN_MAP_FLAGS: i32 = libc::MAP_SHARED
    | libc::MAP_PRIVATE
    | libc::MAP_SHARED_VALIDATE
    | libc::MAP_FIXED
    | libc::MAP_ANONYMOUS
    | libc::MAP_GROWSDOWN
    | libc::MAP_DENYWRITE
    | libc::MAP_EXECUTABLE
    | libc::MAP_LOCKED
    | libc::MAP_NORESERVE
    | libc::MAP_POPULATE
    | libc::MAP_NONBLOCK
    | libc::MAP_STACK
    | libc::MAP_HUGETLB
    | libc::MAP_FIXED_NOREPLACE
    | libc::MAP_32BIT;

fn sys_mmap(t: &mut Task, a: &Args) -> SysResult {
    let (addr, len, prot, flags, fd, off) =
        (a.u64(0), a.u64(1), a.i32(2), a.i32(3), a.fd(4), a.u64(5));
    let kind = flags & libc::MAP_SHARED_VALIDATE;
    let shared = match kind {
        libc::MAP_PRIVATE => false,
        libc::MAP_SHARED => true,
        libc::MAP_SHARED_VALIDATE => {
            if flags & !KNOWN_MAP_FLAGS != 0 {
                return Err(Errno::EOPNOTSUPP);
            }
            true
        }
        _ => return Err(Errno::EINVAL),
    };
    if prot & !(libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & libc::MAP_HUGETLB != 0 {
        return Err(Errno::EINVAL);
    }
    let mut max_prot = sentry::mm::PROT_ALL;
    let source = if flags & libc::MAP_ANONYMOUS != 0 {
        MmapSource::Anonymous
    } else {
        if off % abi::PAGE_SIZE != 0 {
            return Err(Errno::EINVAL);
        }
        let file = t.fds.get(fd)?;
        check_mappable(&file, prot, shared)?;
        if shared && !file.writable() {
            max_prot &= !libc::PROT_WRITE;
        }
        if let Some(store) = file.ops().page_store() {
            // A memfd sealed against writes: no writable shared mapping, now or
            // by a later mprotect.
            let sealed = fs::pagestore::F_SEAL_WRITE | fs::pagestore::F_SEAL_FUTURE_WRITE;
            if shared && store.seals() & sealed != 0 {
                if prot & libc::PROT_WRITE != 0 {
                    return Err(Errno::EPERM);
                }
                max_prot &= !libc::PROT_WRITE;
            }
        }
        let name = match file.location() {
            Some(loc) => t.kernel.vfs.path_of(&t.fs, loc),
            None => Vec::new(),
        };
        MmapSource::File {
            file,
            offset: off,
            name,
        }
    };
    let opts = MmapOpts {
        addr,
        len,
        prot,
        fixed: flags & libc::MAP_FIXED != 0,
        noreplace: flags & libc::MAP_FIXED_NOREPLACE != 0,
        shared,
        max_prot,
        source,
    };
    t.mm.mmap_with(opts, flags & libc::MAP_NORESERVE != 0)
}

/// Linux's checks on the file of a file mapping: it must be open for reading,
/// and for writing too when a shared mapping may write; directories and other
/// non-regular files cannot be mapped.
fn check_mappable(file: &fs::OpenFile, prot: i32, shared: bool) -> Result<(), Errno> {
    if file.is_path_only() {
        return Err(Errno::EBADF);
    }
    if file.is_dir() || file.location().is_none() {
        return Err(Errno::ENODEV);
    }
    if !file.readable() {
        return Err(Errno::EACCES);
    }
    if shared && prot & libc::PROT_WRITE != 0 && !file.writable() {
        return Err(Errno::EACCES);
    }
    Ok(())
}

fn sys_msync(t: &mut Task, a: &Args) -> SysResult {
    t.mm.msync(a.u64(0), a.u64(1), a.i32(2)).map(|_| 0)
}

fn sys_munmap(t: &mut Task, a: &Args) -> SysResult {
    t.mm.munmap(a.u64(0), a.u64(1)).map(|_| 0)
}

fn sys_mprotect(t: &mut Task, a: &Args) -> SysResult {
    t.mm.mprotect(a.u64(0), a.u64(1), a.i32(2)).map(|_| 0)
}

fn sys_mremap(t: &mut Task, a: &Args) -> SysResult {
    t.mm.mremap(a.u64(0), a.u64(1), a.u64(2), a.i32(3), a.u64(4))
}

fn sys_brk(t: &mut Task, a: &Args) -> SysResult {
    Ok(t.mm.brk(a.u64(0)))
}

fn sys_madvise(t: &mut Task, a: &Args) -> SysResult {
    t.mm.madvise(a.u64(0), a.u64(1), a.i32(2)).map(|_| 0)
}

/// mlock/munlock: all sandbox memory is already resident as far as the workload
/// can tell; validate the range like Linux does.
fn sys_mlock(t: &mut Task, a: &Args) -> SysResult {
    let start = abi::page_down(a.u64(0));
    let end =
        abi::page_up(a.u64(0).checked_add(a.u64(1)).ok_or(Errno::EINVAL)?).ok_or(Errno::EINVAL)?;
    if end == start {
        return Ok(0);
    }
    t.mm.madvise(start, end - start, libc::MADV_NORMAL)
        .map(|_| 0)
}
