//! The initial process stack, laid out as Linux's `create_elf_tables` (and the
//! string copying in fs/exec.c) does.
//!
//! From the top of the stack mapping downwards:
//! ```text
//!   8 zero bytes
//!   execfn string                       <- AT_EXECFN
//!   envp strings (last one highest)
//!   argv strings (argv[0] lowest)
//!   padding to 16 bytes
//!   "x86_64\0"                          <- AT_PLATFORM
//!   16 random bytes                     <- AT_RANDOM
//!   padding so that the final rsp is 16-byte aligned
//!   auxv pairs ... AT_NULL, 0
//!   envp[0..n], NULL
//!   argv[0..n], NULL
//!   argc                                <- rsp
//! ```

use abi::Errno;

pub const AT_NULL: u64 = 0;
pub const AT_IGNORE: u64 = 1;
pub const AT_EXECFD: u64 = 2;
pub const AT_PHDR: u64 = 3;
pub const AT_PHENT: u64 = 4;
pub const AT_PHNUM: u64 = 5;
pub const AT_PAGESZ: u64 = 6;
pub const AT_BASE: u64 = 7;
pub const AT_FLAGS: u64 = 8;
pub const AT_ENTRY: u64 = 9;
pub const AT_NOTELF: u64 = 10;
pub const AT_UID: u64 = 11;
pub const AT_EUID: u64 = 12;
pub const AT_GID: u64 = 13;
pub const AT_EGID: u64 = 14;
pub const AT_PLATFORM: u64 = 15;
pub const AT_HWCAP: u64 = 16;
pub const AT_CLKTCK: u64 = 17;
pub const AT_SECURE: u64 = 23;
pub const AT_BASE_PLATFORM: u64 = 24;
pub const AT_RANDOM: u64 = 25;
pub const AT_HWCAP2: u64 = 26;
pub const AT_EXECFN: u64 = 31;
pub const AT_SYSINFO_EHDR: u64 = 33;
pub const AT_MINSIGSTKSZ: u64 = 51;

/// AT_PLATFORM's string on x86-64.
pub const PLATFORM: &[u8] = b"x86_64";
/// Longest single argument or environment string, NUL included (MAX_ARG_STRLEN).
pub const MAX_ARG_STRLEN: usize = 32 * 4096;
/// Most argv or envp entries (MAX_ARG_STRINGS).
pub const MAX_ARG_STRINGS: usize = 0x7fff_ffff;
/// Lower bound of the argument space (ARG_MAX in Linux's bprm_stack_limits).
pub const ARG_MIN_LIMIT: u64 = 32 * 4096;
/// Upper bound of the argument space: 3/4 of _STK_LIM (8 MiB).
pub const ARG_MAX_LIMIT: u64 = 8 * 1024 * 1024 / 4 * 3;

/// Everything `create_elf_tables` needs besides the strings.
pub struct AuxInfo {
    pub hwcap: u64,
    pub hwcap2: u64,
    pub minsigstksz: u64,
    pub phdr: u64,
    pub phnum: u64,
    pub base: u64,
    pub entry: u64,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub secure: bool,
    pub random: [u8; 16],
}

/// Linux's argument-space check (fs/exec.c bprm_stack_limits + copy_strings):
/// E2BIG if a string is too long, there are too many, or all the strings and
/// pointers do not fit in a quarter of the stack rlimit (bounded to
/// [128 KiB, 6 MiB]). `argv` must already have its empty-argv fix-up applied.
pub fn check_arg_limits(
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    execfn: &[u8],
    rlim_stack: u64,
) -> Result<(), Errno> {
    if argv.len() > MAX_ARG_STRINGS || envp.len() > MAX_ARG_STRINGS {
        return Err(Errno::E2BIG);
    }
    let limit = ARG_MAX_LIMIT.min(rlim_stack / 4).max(ARG_MIN_LIMIT);
    let ptr_size = (argv.len().max(1) as u64 + envp.len() as u64) * 8;
    if limit <= ptr_size {
        return Err(Errno::E2BIG);
    }
    let limit = limit - ptr_size;
    let mut total: u64 = 0;
    for s in argv
        .iter()
        .chain(envp.iter())
        .map(|s| s.as_slice())
        .chain(std::iter::once(execfn))
    {
        let len = s.len() + 1;
        if len > MAX_ARG_STRLEN {
            return Err(Errno::E2BIG);
        }
        total += len as u64;
        if total > limit {
            return Err(Errno::E2BIG);
        }
    }
    Ok(())
}

/// The stack image: `bytes` go at `sp` and end exactly at the stack top.
pub struct StackImage {
    pub sp: u64,
    pub bytes: Vec<u8>,
}

/// Lays out the initial stack ending at `top` (16-byte aligned). Strings must not
/// contain NULs (they would be cut there by the workload anyway). Fails with
/// E2BIG if the image would go below `bottom`.
pub fn build(
    top: u64,
    bottom: u64,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    execfn: &[u8],
    aux: &AuxInfo,
) -> Result<StackImage, Errno> {
    let e2big = Errno::E2BIG;
    let sub = |a: u64, b: u64| a.checked_sub(b).filter(|v| *v >= bottom).ok_or(e2big);
    let slen = |s: &[u8]| s.len() as u64 + 1;

    // fs/exec.c: bprm->p starts one pointer below the top.
    let mut p = sub(top, 8)?;
    p = sub(p, slen(execfn))?;
    let execfn_addr = p;
    let env_total: u64 = envp.iter().map(|s| slen(s)).sum();
    let arg_total: u64 = argv.iter().map(|s| slen(s)).sum();
    p = sub(p, env_total)?;
    let env_start = p;
    p = sub(p, arg_total)?;
    let arg_start = p;

    // create_elf_tables: arch_align_stack (no randomisation), platform, random bytes.
    p &= !15;
    p = sub(p, slen(PLATFORM))?;
    let platform_addr = p;
    p = sub(p, 16)?;
    let random_addr = p;

    let auxv: Vec<(u64, u64)> = vec![
        // ARCH_DLINFO (no vDSO, so no AT_SYSINFO_EHDR).
        (AT_MINSIGSTKSZ, aux.minsigstksz),
        (AT_HWCAP, aux.hwcap),
        (AT_PAGESZ, abi::PAGE_SIZE),
        (AT_CLKTCK, 100),
        (AT_PHDR, aux.phdr),
        (AT_PHENT, super::elf::PHDR_SIZE as u64),
        (AT_PHNUM, aux.phnum),
        (AT_BASE, aux.base),
        (AT_FLAGS, 0),
        (AT_ENTRY, aux.entry),
        (AT_UID, aux.uid as u64),
        (AT_EUID, aux.euid as u64),
        (AT_GID, aux.gid as u64),
        (AT_EGID, aux.egid as u64),
        (AT_SECURE, aux.secure as u64),
        (AT_RANDOM, random_addr),
        (AT_HWCAP2, aux.hwcap2),
        (AT_EXECFN, execfn_addr),
        (AT_PLATFORM, platform_addr),
        (AT_NULL, 0),
    ];
    let aux_words = auxv.len() as u64 * 2;
    let items = (argv.len() as u64 + 1) + (envp.len() as u64 + 1) + 1;
    let words = aux_words.checked_add(items).ok_or(e2big)?;
    let sp = sub(p, words.checked_mul(8).ok_or(e2big)?)? & !15;
    if sp < bottom {
        return Err(e2big);
    }

    let len = usize::try_from(top - sp).map_err(|_| e2big)?;
    let mut img = vec![0u8; len];
    let mut put = |addr: u64, b: &[u8]| {
        let o = (addr - sp) as usize;
        img[o..o + b.len()].copy_from_slice(b);
    };

    // Strings (NUL terminators are the zeroed image bytes).
    let mut argv_ptrs = Vec::with_capacity(argv.len());
    let mut a = arg_start;
    for s in argv {
        put(a, s);
        argv_ptrs.push(a);
        a += slen(s);
    }
    let mut envp_ptrs = Vec::with_capacity(envp.len());
    let mut a = env_start;
    for s in envp {
        put(a, s);
        envp_ptrs.push(a);
        a += slen(s);
    }
    put(execfn_addr, execfn);
    put(platform_addr, PLATFORM);
    put(random_addr, &aux.random);

    // Pointer block.
    let mut w = sp;
    let mut word = |v: u64| {
        put(w, &v.to_le_bytes());
        w += 8;
    };
    word(argv.len() as u64);
    for p in argv_ptrs {
        word(p);
    }
    word(0);
    for p in envp_ptrs {
        word(p);
    }
    word(0);
    for (k, v) in auxv {
        word(k);
        word(v);
    }
    Ok(StackImage { sp, bytes: img })
}
