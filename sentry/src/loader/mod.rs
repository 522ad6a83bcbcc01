//! The ELF loader: maps an executable (and its PT_INTERP interpreter) into a fresh
//! memory manager and builds the initial stack, as Linux's fs/binfmt_elf.c does.
//! Also `#!` parsing for execve (fs/binfmt_script.c).
//!
//! Every header field is untrusted: arithmetic is checked and failures are errnos.

pub mod elf;
pub mod stack;

use std::sync::Arc;

use abi::{page_down, page_up, Errno, PAGE_SIZE};

use crate::mm::PROT_ALL;
use crate::mm::{MemoryManager, MmapOpts, MmapSource, MMAP_MIN_ADDR};
use elf::{Elf, ET_DYN, ET_EXEC};

/// Smallest stack mapping (the stack does not grow on fault, so map it whole).
pub const MIN_STACK_MAPPING: u64 = 8 << 20;
/// Largest stack mapping, whatever RLIMIT_STACK says.
pub const MAX_STACK_MAPPING: u64 = 128 << 20;
/// Linux's minimum gap between the stack top and mmap_base (mm/util.c MIN_GAP).
const MIN_MMAP_GAP: u64 = 128 << 20;
/// Linux's stack_guard_gap (256 pages), added to the mmap gap.
const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;
/// Floor of AT_MINSIGSTKSZ (the MINSIGSTKSZ constant of the x86-64 ABI).
pub const MINSIGSTKSZ: u64 = 2048;
/// Room in a signal frame besides the XSAVE area: siginfo, ucontext, return
/// address, red zone and alignment (Linux's rt_sigframe is ~1 KiB of that).
const SIGFRAME_OVERHEAD: u64 = 1024;
/// BINPRM_BUF_SIZE: how much of a file execve looks at for `#!`.
pub const BINPRM_BUF_SIZE: usize = 256;

/// Opens PT_INTERP's path through the VFS.
pub type OpenInterp<'a> = dyn Fn(&[u8]) -> Result<Arc<dyn fs::ReadAt>, Errno> + 'a;

/// What [`load`] needs.
pub struct LoadArgs<'a> {
    pub mm: &'a MemoryManager,
    /// The executable.
    pub file: Arc<dyn fs::ReadAt>,
    /// Name for its VMAs.
    pub file_name: Vec<u8>,
    /// AT_EXECFN string (the path given to execve).
    pub execfn: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// Opens PT_INTERP's path (e.g. /lib64/ld-linux-x86-64.so.2) through the VFS.
    pub open_interp: &'a OpenInterp<'a>,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    /// AT_SECURE: the exec changed the task's identity or privileges.
    pub secure: bool,
    /// AT_RANDOM bytes.
    pub random: [u8; 16],
    /// RLIMIT_STACK's soft limit.
    pub stack_size: u64,
}

/// Where the new program starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// Initial rip: the interpreter's entry if there is one, else the program's.
    pub entry: u64,
    /// Initial rsp (16-byte aligned, pointing at argc).
    pub stack_pointer: u64,
    /// Start of the program break.
    pub brk_start: u64,
    /// Load address of the interpreter (AT_BASE), 0 without one.
    pub interp_base: u64,
}

/// How an image is placed.
#[derive(Clone, Copy)]
enum Placement {
    /// ET_EXEC: at its p_vaddrs.
    Absolute,
    /// ET_DYN executable: its lowest page at this address.
    At(u64),
    /// The interpreter (ET_DYN): wherever top-down mmap puts its whole span.
    Anywhere,
}

/// A mapped image.
struct Mapped {
    /// Added to the file's virtual addresses (wrapping, as Linux's load_bias).
    bias: u64,
    /// page_up of the end of the highest segment, relocated.
    end: u64,
}

fn file_source(file: &Arc<dyn fs::ReadAt>, offset: u64, name: &[u8]) -> MmapSource {
    MmapSource::File {
        file: file.clone(),
        offset,
        name: name.to_vec(),
    }
}

/// Maps every PT_LOAD of `elf` (elf_load() in binfmt_elf.c): the file pages
/// private, the tail of the last file page zeroed, anonymous pages for the rest
/// of p_memsz.
fn map_image(
    mm: &MemoryManager,
    elf: &Elf,
    file: &Arc<dyn fs::ReadAt>,
    name: &[u8],
    placement: Placement,
) -> Result<Mapped, Errno> {
    let (lo, hi) = elf.span().ok_or(Errno::ENOEXEC)?;
    let total = hi - lo;
    if total == 0 {
        return Err(Errno::EINVAL);
    }
    let reserve = |addr: u64, fixed: bool| {
        mm.mmap(MmapOpts {
            addr,
            len: total,
            prot: libc::PROT_NONE,
            fixed: false,
            noreplace: fixed,
            shared: false,
            max_prot: PROT_ALL,
            source: MmapSource::Anonymous,
        })
    };
    // `start` is where page `lo` goes.
    let (start, reserved) = match placement {
        Placement::Absolute => (lo, false),
        Placement::At(base) => (reserve(base, true)?, true),
        Placement::Anywhere => (reserve(0, false)?, true),
    };
    let end = start.checked_add(total).ok_or(Errno::ENOMEM)?;
    let reloc = |v: u64| start.checked_add(v - lo).ok_or(Errno::ENOMEM);

    let mut first = true;
    let mut covered: Vec<(u64, u64)> = Vec::new();
    for ph in elf.loads() {
        if ph.p_memsz == 0 {
            continue;
        }
        let prot = ph.prot();
        let addr = reloc(ph.p_vaddr)?;
        let mem_end = addr.checked_add(ph.p_memsz).ok_or(Errno::ENOMEM)?;
        let seg_start = page_down(addr);
        // Like Linux, the first segment of an ET_EXEC must not clobber anything
        // (MAP_FIXED_NOREPLACE); later ones may overlap earlier ones' pages.
        let noreplace = first && !reserved;
        first = false;
        let zero_start = if ph.p_filesz > 0 {
            let len = page_up((addr - seg_start) + ph.p_filesz).ok_or(Errno::ENOMEM)?;
            mm.mmap(MmapOpts {
                addr: seg_start,
                len,
                prot,
                fixed: !noreplace,
                noreplace,
                shared: false,
                max_prot: PROT_ALL,
                source: file_source(file, page_down(ph.p_offset), name),
            })?;
            let file_end = addr.checked_add(ph.p_filesz).ok_or(Errno::ENOMEM)?;
            let page_end = page_up(file_end).ok_or(Errno::ENOMEM)?;
            if ph.p_memsz > ph.p_filesz && page_end > file_end {
                // The rest of the last file page is the start of .bss.
                mm.zero_force(file_end, page_end - file_end)?;
            }
            page_end
        } else {
            seg_start
        };
        let zero_end = page_up(mem_end).ok_or(Errno::ENOMEM)?;
        if zero_end > zero_start {
            mm.mmap(MmapOpts {
                addr: zero_start,
                len: zero_end - zero_start,
                prot,
                fixed: !(noreplace && ph.p_filesz == 0),
                noreplace: noreplace && ph.p_filesz == 0,
                shared: false,
                max_prot: PROT_ALL,
                source: MmapSource::Anonymous,
            })?;
        }
        covered.push((seg_start, zero_end));
    }

    // Linux keeps only the segments: the gaps of the reservation go away.
    if reserved {
        covered.sort_unstable();
        let mut cur = start;
        for (s, e) in covered {
            if s > cur {
                mm.munmap(cur, s.min(end) - cur)?;
            }
            cur = cur.max(e);
            if cur >= end {
                break;
            }
        }
        if cur < end {
            mm.munmap(cur, end - cur)?;
        }
    }
    Ok(Mapped {
        bias: start.wrapping_sub(lo),
        end,
    })
}

/// The host CPU's CPUID.1:EDX, which is what Linux reports as AT_HWCAP on x86-64.
fn hwcap() -> u64 {
    std::arch::x86_64::__cpuid(1).edx as u64
}

/// AT_MINSIGSTKSZ: like Linux's get_sigframe_size(), the XSAVE area for the
/// host's enabled features (CPUID.(EAX=0DH,ECX=0):EBX) plus the rest of a signal
/// frame. Erring large is harmless: it only makes programs allocate bigger
/// alternate signal stacks.
pub fn minsigstksz() -> u64 {
    use std::arch::x86_64::{__cpuid_count, __get_cpuid_max};
    let xsave = if __get_cpuid_max(0).0 >= 0xd {
        __cpuid_count(0xd, 0).ebx as u64
    } else {
        512
    };
    (xsave + SIGFRAME_OVERHEAD)
        .next_multiple_of(16)
        .max(MINSIGSTKSZ)
}

/// Where an ET_DYN executable goes: Linux's ELF_ET_DYN_BASE (2/3 of the address
/// space, 0x555555554000 for a 47-bit one), aligned to the largest p_align.
fn dyn_base(mm: &MemoryManager, elf: &Elf) -> u64 {
    let base = page_down(mm.max_addr() / 3 * 2);
    let aligned = base & !(elf.max_align() - 1);
    if aligned >= MMAP_MIN_ADDR {
        aligned
    } else {
        base
    }
}

/// Loads the executable in `args.file` into `args.mm` (which should be empty) and
/// builds its initial stack.
pub fn load(args: LoadArgs<'_>) -> Result<Loaded, Errno> {
    let mm = args.mm;
    let exe = elf::read(args.file.as_ref())?;
    if exe.loads().next().is_none() {
        return Err(Errno::ENOEXEC);
    }

    let interp = match &exe.interp {
        Some(path) => {
            let f = (args.open_interp)(path)?;
            let ielf = match elf::read(f.as_ref()) {
                Ok(e) => e,
                Err(e) if e == Errno::EIO => return Err(e),
                Err(e) if e == Errno::EINVAL => return Err(e),
                Err(_) => return Err(Errno::ELIBBAD),
            };
            if ielf.loads().next().is_none() {
                return Err(Errno::EINVAL);
            }
            Some((f, path.clone(), ielf))
        }
        None => None,
    };

    // fs/exec.c: an empty argv gets one empty string so argv[0] exists.
    let mut argv = args.argv;
    if argv.is_empty() {
        argv.push(Vec::new());
    }
    stack::check_arg_limits(&argv, &args.envp, &args.execfn, args.stack_size)?;

    // The stack, one guard page below the top of the address space, and the mmap
    // area below it (mm/util.c mmap_base without randomisation).
    let max = page_down(mm.max_addr());
    let stack_top = max.checked_sub(PAGE_SIZE).ok_or(Errno::ENOMEM)?;
    let stack_len = page_up(args.stack_size.clamp(MIN_STACK_MAPPING, MAX_STACK_MAPPING))
        .ok_or(Errno::ENOMEM)?;
    let stack_bottom = stack_top
        .checked_sub(stack_len)
        .filter(|b| *b >= MMAP_MIN_ADDR)
        .ok_or(Errno::ENOMEM)?;
    let gap = args
        .stack_size
        .saturating_add(STACK_GUARD_GAP)
        .clamp(MIN_MMAP_GAP, (max / 6 * 5).max(MIN_MMAP_GAP));
    let mmap_base = max
        .saturating_sub(gap)
        .min(stack_bottom.saturating_sub(PAGE_SIZE));
    mm.set_mmap_base(mmap_base);
    let stack_prot =
        libc::PROT_READ | libc::PROT_WRITE | if exe.exec_stack { libc::PROT_EXEC } else { 0 };
    mm.mmap(MmapOpts {
        addr: stack_bottom,
        len: stack_len,
        prot: stack_prot,
        fixed: true,
        noreplace: false,
        shared: false,
        max_prot: PROT_ALL,
        source: MmapSource::Anonymous,
    })?;

    let placement = match exe.header.e_type {
        ET_EXEC => Placement::Absolute,
        ET_DYN => Placement::At(dyn_base(mm, &exe)),
        _ => return Err(Errno::ENOEXEC),
    };
    let exe_map = map_image(mm, &exe, &args.file, &args.file_name, placement)?;
    let entry = exe.header.e_entry.wrapping_add(exe_map.bias);
    let phdr = exe.phdr_vaddr().unwrap_or(0).wrapping_add(exe_map.bias);

    let (start, interp_base) = match &interp {
        Some((f, path, ielf)) => {
            let placement = match ielf.header.e_type {
                ET_EXEC => Placement::Absolute,
                _ => Placement::Anywhere,
            };
            let m = map_image(mm, ielf, f, path, placement)?;
            (ielf.header.e_entry.wrapping_add(m.bias), m.bias)
        }
        None => (entry, 0),
    };

    mm.set_brk_start(exe_map.end);

    let aux = stack::AuxInfo {
        hwcap: hwcap(),
        hwcap2: 0,
        minsigstksz: minsigstksz(),
        phdr,
        phnum: exe.header.e_phnum as u64,
        base: interp_base,
        entry,
        uid: args.uid,
        euid: args.euid,
        gid: args.gid,
        egid: args.egid,
        secure: args.secure,
        random: args.random,
    };
    let img = stack::build(
        stack_top,
        stack_bottom,
        &argv,
        &args.envp,
        &args.execfn,
        &aux,
    )?;
    mm.copy_out_force(img.sp, &img.bytes)?;

    Ok(Loaded {
        entry: start,
        stack_pointer: img.sp,
        brk_start: exe_map.end,
        interp_base,
    })
}

fn spacetab(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// Parses a `#!` line as Linux's binfmt_script does: `Some((interpreter, arg))` for
/// a script, None if `head` (the file's first bytes; only the first 256 count)
/// is not one or is malformed (execve's ENOEXEC).
pub fn parse_shebang(head: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    // bprm->buf: the first BINPRM_BUF_SIZE bytes, zero padded.
    let mut buf = [0u8; BINPRM_BUF_SIZE];
    let n = head.len().min(BINPRM_BUF_SIZE);
    buf[..n].copy_from_slice(&head[..n]);
    if buf[0] != b'#' || buf[1] != b'!' {
        return None;
    }
    let buf_end = BINPRM_BUF_SIZE - 1;
    // Both searches are inclusive of `last`, as in the kernel.
    let next_non_spacetab = |first: usize, last: usize| (first..=last).find(|&i| !spacetab(buf[i]));
    let next_terminator =
        |first: usize, last: usize| (first..=last).find(|&i| spacetab(buf[i]) || buf[i] == 0);

    // strnchr() stops at the first NUL.
    let nul = buf.iter().position(|&c| c == 0).unwrap_or(BINPRM_BUF_SIZE);
    let mut i_end = match buf[..nul].iter().position(|&c| c == b'\n') {
        Some(p) => p,
        None => {
            // No newline: the line must visibly end (space/tab/NUL) within the
            // buffer, else the interpreter path may have been truncated.
            let first = next_non_spacetab(2, buf_end)?;
            next_terminator(first, buf_end)?;
            buf_end
        }
    };
    while i_end > 2 && spacetab(buf[i_end - 1]) {
        i_end -= 1;
    }
    let i_name = next_non_spacetab(2, i_end)?;
    if i_name == i_end {
        return None;
    }
    let i_sep = next_terminator(i_name, i_end);
    let i_arg = match i_sep {
        Some(s) if buf[s] != 0 => next_non_spacetab(s, i_end),
        _ => None,
    };
    // The kernel writes NULs at i_end and i_sep and uses C strings.
    let cstr = |from: usize, to: usize| {
        let s = &buf[from..to];
        s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())].to_vec()
    };
    let name_end = i_sep.unwrap_or(i_end).min(i_end);
    let name = cstr(i_name, name_end);
    let arg = i_arg.map(|a| cstr(a.min(i_end), i_end));
    Some((name, arg))
}

#[cfg(test)]
mod tests;
