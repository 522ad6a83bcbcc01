use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use abi::{page_up, Errno, PAGE_SIZE};
use platform::MemoryFile;
use proptest::prelude::*;

use super::elf::{self, *};
use super::stack::*;
use super::*;
use crate::mm::MemoryManager;

const MAX_ADDR: u64 = 0x7fff_ffff_f000;

struct VecFile(Vec<u8>);

impl fs::ReadAt for VecFile {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let Ok(off) = usize::try_from(off) else {
            return Ok(0);
        };
        if off >= self.0.len() {
            return Ok(0);
        }
        let n = buf.len().min(self.0.len() - off);
        buf[..n].copy_from_slice(&self.0[off..off + n]);
        Ok(n)
    }
}

struct HostFile(std::fs::File);

impl fs::ReadAt for HostFile {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.0.read_at(buf, off).map_err(Errno::from)
    }
}

fn host_file(path: &Path) -> Result<Arc<dyn fs::ReadAt>, Errno> {
    Ok(Arc::new(HostFile(
        std::fs::File::open(path).map_err(Errno::from)?,
    )))
}

fn host_interp(p: &[u8]) -> Result<Arc<dyn fs::ReadAt>, Errno> {
    use std::os::unix::ffi::OsStrExt;
    host_file(Path::new(std::ffi::OsStr::from_bytes(p)))
}

fn new_mm() -> MemoryManager {
    let mf = Arc::new(MemoryFile::new(1 << 32).expect("memory file"));
    MemoryManager::new(mf, Arc::new(platform::null::NullAddressSpace), MAX_ADDR)
}

fn no_interp(_: &[u8]) -> Result<Arc<dyn fs::ReadAt>, Errno> {
    Err(Errno::ENOENT)
}

fn args<'a>(
    mm: &'a MemoryManager,
    file: Arc<dyn fs::ReadAt>,
    open_interp: &'a OpenInterp<'a>,
) -> LoadArgs<'a> {
    LoadArgs {
        mm,
        file,
        file_name: b"/bin/prog".to_vec(),
        execfn: b"/bin/prog".to_vec(),
        argv: vec![b"prog".to_vec(), b"-x".to_vec(), b"hello world".to_vec()],
        envp: vec![b"PATH=/bin".to_vec(), b"HOME=/".to_vec()],
        open_interp,
        uid: 1000,
        euid: 1001,
        gid: 2000,
        egid: 2001,
        secure: false,
        random: *b"0123456789abcdef",
        stack_size: 8 << 20,
    }
}

fn read_u64(mm: &MemoryManager, addr: u64) -> u64 {
    let mut b = [0u8; 8];
    mm.copy_in(addr, &mut b).unwrap();
    u64::from_le_bytes(b)
}

fn read_bytes(mm: &MemoryManager, addr: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    mm.copy_in(addr, &mut b).unwrap();
    b
}

struct InitialStack {
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    auxv: Vec<(u64, u64)>,
}

impl InitialStack {
    fn aux(&self, key: u64) -> Option<u64> {
        self.auxv.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

fn parse_stack(mm: &MemoryManager, sp: u64) -> InitialStack {
    assert_eq!(sp % 16, 0, "rsp must be 16-byte aligned at entry");
    let argc = read_u64(mm, sp);
    let mut p = sp + 8;
    let mut argv = Vec::new();
    for _ in 0..argc {
        argv.push(mm.copy_in_string(read_u64(mm, p), 1 << 20).unwrap());
        p += 8;
    }
    assert_eq!(read_u64(mm, p), 0, "argv NULL");
    p += 8;
    let mut envp = Vec::new();
    loop {
        let q = read_u64(mm, p);
        p += 8;
        if q == 0 {
            break;
        }
        envp.push(mm.copy_in_string(q, 1 << 20).unwrap());
    }
    let mut auxv = Vec::new();
    loop {
        let k = read_u64(mm, p);
        let v = read_u64(mm, p + 8);
        p += 16;
        if k == AT_NULL {
            break;
        }
        auxv.push((k, v));
    }
    InitialStack { argv, envp, auxv }
}

/// Checks the common stack contents of a load with `args()`.
fn check_stack(mm: &MemoryManager, l: &Loaded, exe: &Elf, bias: u64) -> InitialStack {
    let st = parse_stack(mm, l.stack_pointer);
    assert_eq!(
        st.argv,
        vec![b"prog".to_vec(), b"-x".to_vec(), b"hello world".to_vec()]
    );
    assert_eq!(st.envp, vec![b"PATH=/bin".to_vec(), b"HOME=/".to_vec()]);
    let keys: Vec<u64> = st.auxv.iter().map(|(k, _)| *k).collect();
    let mut dedup = keys.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), keys.len(), "duplicate auxv keys");
    assert_eq!(st.aux(AT_PAGESZ), Some(4096));
    assert_eq!(st.aux(AT_CLKTCK), Some(100));
    assert_eq!(st.aux(AT_PHENT), Some(56));
    assert_eq!(st.aux(AT_PHNUM), Some(exe.header.e_phnum as u64));
    assert_eq!(
        st.aux(AT_ENTRY),
        Some(exe.header.e_entry.wrapping_add(bias))
    );
    assert_eq!(st.aux(AT_BASE), Some(l.interp_base));
    assert_eq!(st.aux(AT_FLAGS), Some(0));
    assert_eq!(st.aux(AT_UID), Some(1000));
    assert_eq!(st.aux(AT_EUID), Some(1001));
    assert_eq!(st.aux(AT_GID), Some(2000));
    assert_eq!(st.aux(AT_EGID), Some(2001));
    assert_eq!(st.aux(AT_SECURE), Some(0));
    assert_eq!(
        st.aux(AT_HWCAP),
        Some(std::arch::x86_64::__cpuid(1).edx as u64)
    );
    assert!(st.aux(AT_SYSINFO_EHDR).is_none());
    assert!(st.aux(AT_MINSIGSTKSZ).unwrap() >= 2048);
    let phdr = st.aux(AT_PHDR).unwrap();
    assert_eq!(read_bytes(mm, phdr, exe.phdr_bytes.len()), exe.phdr_bytes);
    let random = st.aux(AT_RANDOM).unwrap();
    assert_eq!(read_bytes(mm, random, 16), b"0123456789abcdef");
    let execfn = st.aux(AT_EXECFN).unwrap();
    assert_eq!(mm.copy_in_string(execfn, 4096).unwrap(), b"/bin/prog");
    let platform = st.aux(AT_PLATFORM).unwrap();
    assert_eq!(mm.copy_in_string(platform, 4096).unwrap(), b"x86_64");
    // The stack is just below the top of the address space, one page gap.
    let top = MAX_ADDR - PAGE_SIZE;
    assert!(execfn < top && top - execfn < 64);
    assert_eq!(read_u64(mm, top - 8), 0);
    assert!(mm
        .vmas()
        .iter()
        .any(|v| v.end == top && v.prot & libc::PROT_WRITE != 0));
    st
}

/// Checks that every PT_LOAD's file bytes are in memory and its bss is zero.
fn check_segments(mm: &MemoryManager, e: &Elf, file: &[u8], bias: u64) {
    for ph in e.loads() {
        let addr = ph.p_vaddr.wrapping_add(bias);
        let off = ph.p_offset as usize;
        let want = &file[off..(off + ph.p_filesz as usize).min(file.len())];
        assert_eq!(
            read_bytes(mm, addr, want.len()),
            want,
            "segment at {:#x}",
            ph.p_vaddr
        );
        if ph.p_memsz > ph.p_filesz {
            let bss = addr + ph.p_filesz;
            let len = (page_up(bss).unwrap() - bss)
                .max(1)
                .min(ph.p_memsz - ph.p_filesz);
            assert!(
                read_bytes(mm, bss, len as usize).iter().all(|&b| b == 0),
                "bss at {bss:#x}"
            );
            let last = addr + ph.p_memsz - 1;
            assert_eq!(read_bytes(mm, last, 1), [0]);
        }
        let vma = mm
            .vmas()
            .into_iter()
            .find(|v| v.start <= addr && addr < v.end)
            .unwrap();
        assert_eq!(vma.prot, ph.prot());
    }
}

// ---------- synthetic ELF images ----------

fn ph(
    p_type: u32,
    p_flags: u32,
    p_offset: u64,
    p_vaddr: u64,
    p_filesz: u64,
    p_memsz: u64,
) -> ProgramHeader {
    ProgramHeader {
        p_type,
        p_flags,
        p_offset,
        p_vaddr,
        p_paddr: p_vaddr,
        p_filesz,
        p_memsz,
        p_align: 0x1000,
    }
}

fn build_elf(e_type: u16, entry: u64, phdrs: &[ProgramHeader], len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[0..4].copy_from_slice(&ELFMAG);
    f[4] = ELFCLASS64;
    f[5] = ELFDATA2LSB;
    f[6] = EV_CURRENT;
    f[16..18].copy_from_slice(&e_type.to_le_bytes());
    f[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[24..32].copy_from_slice(&entry.to_le_bytes());
    f[32..40].copy_from_slice(&64u64.to_le_bytes());
    f[52..54].copy_from_slice(&64u16.to_le_bytes());
    f[54..56].copy_from_slice(&56u16.to_le_bytes());
    f[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
    for (i, p) in phdrs.iter().enumerate() {
        let o = 64 + i * 56;
        f[o..o + 4].copy_from_slice(&p.p_type.to_le_bytes());
        f[o + 4..o + 8].copy_from_slice(&p.p_flags.to_le_bytes());
        f[o + 8..o + 16].copy_from_slice(&p.p_offset.to_le_bytes());
        f[o + 16..o + 24].copy_from_slice(&p.p_vaddr.to_le_bytes());
        f[o + 24..o + 32].copy_from_slice(&p.p_paddr.to_le_bytes());
        f[o + 32..o + 40].copy_from_slice(&p.p_filesz.to_le_bytes());
        f[o + 40..o + 48].copy_from_slice(&p.p_memsz.to_le_bytes());
        f[o + 48..o + 56].copy_from_slice(&p.p_align.to_le_bytes());
    }
    f
}

/// An executable with a text segment, a data+bss segment whose last file page has
/// junk past p_filesz, a gap, and an executable PT_GNU_STACK.
fn synthetic(e_type: u16, base: u64, interp: Option<&[u8]>) -> Vec<u8> {
    let mut phdrs = vec![ph(PT_PHDR, PF_R, 64, base + 64, 0, 0)];
    if interp.is_some() {
        phdrs.push(ph(PT_INTERP, PF_R, 0x800, base + 0x800, 0, 0));
    }
    phdrs.extend([
        ph(PT_LOAD, PF_R | PF_X, 0, base, 0x1100, 0x1100),
        ph(PT_LOAD, PF_R | PF_W, 0x2010, base + 0x5010, 0x100, 0x3000),
        ph(PT_GNU_STACK, PF_R | PF_W | PF_X, 0, 0, 0, 0),
    ]);
    let n = phdrs.len() as u64;
    phdrs[0].p_filesz = n * 56;
    phdrs[0].p_memsz = n * 56;
    if let Some(i) = interp {
        phdrs[1].p_filesz = i.len() as u64 + 1;
        phdrs[1].p_memsz = i.len() as u64 + 1;
    }
    let mut f = build_elf(e_type, base + 0x1000, &phdrs, 0x3000);
    if let Some(i) = interp {
        f[0x800..0x800 + i.len()].copy_from_slice(i);
    }
    for (i, b) in f[0x1000..0x1100].iter_mut().enumerate() {
        *b = i as u8 | 1;
    }
    for (i, b) in f[0x2010..0x2110].iter_mut().enumerate() {
        *b = i as u8 | 0x80;
    }
    // Junk after p_filesz in the last file page: must read as zero (bss).
    f[0x2110..0x3000].fill(0xaa);
    f
}

fn loaded_vma_at(mm: &MemoryManager, addr: u64) -> Option<crate::mm::Vma> {
    mm.vmas()
        .into_iter()
        .find(|v| v.start <= addr && addr < v.end)
}

#[test]
fn synthetic_et_exec() {
    let img = synthetic(ET_EXEC, 0x400000, None);
    let e = elf::parse(&img).unwrap();
    assert!(e.exec_stack);
    assert_eq!(e.phdr_vaddr(), Some(0x400040));
    let mm = new_mm();
    let l = load(args(&mm, Arc::new(VecFile(img.clone())), &no_interp)).unwrap();
    assert_eq!(l.entry, 0x401000);
    assert_eq!(l.interp_base, 0);
    assert_eq!(l.brk_start, 0x409000);
    check_segments(&mm, &e, &img, 0);
    let st = check_stack(&mm, &l, &e, 0);
    assert_eq!(st.aux(AT_PHDR), Some(0x400040));
    // PT_GNU_STACK PF_X: executable stack.
    let stack = loaded_vma_at(&mm, l.stack_pointer).unwrap();
    assert_ne!(stack.prot & libc::PROT_EXEC, 0);
    // Data page 0x405000 holds file bytes 0x2000.. then zeros.
    assert_eq!(read_bytes(&mm, 0x405000, 0x10), &img[0x2000..0x2010]);
    assert!(read_bytes(&mm, 0x405110, 0x2ef0).iter().all(|&b| b == 0));
    assert_eq!(loaded_vma_at(&mm, 0x405000).unwrap().name, b"/bin/prog");
}

#[test]
fn synthetic_et_dyn_static_pie() {
    let img = synthetic(ET_DYN, 0, None);
    let e = elf::parse(&img).unwrap();
    let mm = new_mm();
    let l = load(args(&mm, Arc::new(VecFile(img.clone())), &no_interp)).unwrap();
    let base = 0x5555_5555_4000;
    assert_eq!(l.entry, base + 0x1000);
    assert_eq!(l.brk_start, base + 0x9000);
    assert_eq!(l.interp_base, 0);
    check_segments(&mm, &e, &img, base);
    let st = check_stack(&mm, &l, &e, base);
    assert_eq!(st.aux(AT_PHDR), Some(base + 64));
    // The reservation's gap between the segments is unmapped, as in Linux.
    assert!(loaded_vma_at(&mm, base + 0x2000).is_none());
    assert!(loaded_vma_at(&mm, base + 0x4fff).is_none());
}

#[test]
fn synthetic_with_interp() {
    let img = synthetic(ET_DYN, 0, Some(b"/lib/ld.so"));
    let ld = synthetic(ET_DYN, 0, None);
    let ld2 = ld.clone();
    let seen = std::sync::Mutex::new(Vec::new());
    let open = |p: &[u8]| -> Result<Arc<dyn fs::ReadAt>, Errno> {
        seen.lock().unwrap().push(p.to_vec());
        Ok(Arc::new(VecFile(ld2.clone())))
    };
    let e = elf::parse(&img).unwrap();
    assert_eq!(e.interp.as_deref(), Some(&b"/lib/ld.so"[..]));
    let mm = new_mm();
    let l = load(args(&mm, Arc::new(VecFile(img.clone())), &open)).unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![b"/lib/ld.so".to_vec()]);
    let base = 0x5555_5555_4000;
    assert_ne!(l.interp_base, 0);
    assert_eq!(l.interp_base % PAGE_SIZE, 0);
    assert_eq!(l.entry, l.interp_base + 0x1000);
    assert_eq!(l.brk_start, base + 0x9000);
    // The interpreter lands below the stack, at least 128 MiB below its top.
    assert!(l.interp_base + 0x9000 <= MAX_ADDR - (128 << 20));
    assert!(l.interp_base > base + 0x9000);
    check_segments(&mm, &e, &img, base);
    check_segments(&mm, &elf::parse(&ld).unwrap(), &ld, l.interp_base);
    let st = check_stack(&mm, &l, &e, base);
    assert_eq!(st.aux(AT_BASE), Some(l.interp_base));
    assert_eq!(
        loaded_vma_at(&mm, l.interp_base).unwrap().name,
        b"/lib/ld.so"
    );
}

// ---------- host binaries ----------

#[test]
fn parse_host_true() {
    let data = std::fs::read("/bin/true").unwrap();
    let e = elf::parse(&data).unwrap();
    let f = host_file(Path::new("/bin/true")).unwrap();
    assert_eq!(elf::read(f.as_ref()).unwrap(), e);
    assert!(e.header.e_type == ET_DYN || e.header.e_type == ET_EXEC);
    let interp = e.interp.clone().expect("dynamic /bin/true has PT_INTERP");
    assert!(interp.starts_with(b"/"));
    assert!(e.loads().count() >= 2);
    assert_eq!(e.phdr_bytes.len(), e.header.e_phnum as usize * 56);
    assert_eq!(
        &data[e.header.e_phoff as usize..][..e.phdr_bytes.len()],
        &e.phdr_bytes[..]
    );
    assert!(!e.exec_stack);
}

fn load_host(path: &Path) -> (MemoryManager, Loaded, Elf, Vec<u8>) {
    let data = std::fs::read(path).unwrap();
    let e = elf::parse(&data).unwrap();
    let mm = new_mm();
    let l = load(args(&mm, host_file(path).unwrap(), &host_interp)).unwrap();
    (mm, l, e, data)
}

#[test]
fn load_host_true() {
    let (mm, l, e, data) = load_host(Path::new("/bin/true"));
    let bias = if e.header.e_type == ET_DYN {
        0x5555_5555_4000 - e.span().unwrap().0
    } else {
        0
    };
    check_segments(&mm, &e, &data, bias);
    let st = check_stack(&mm, &l, &e, bias);
    let interp_path = e.interp.clone().unwrap();
    let idata = std::fs::read(std::str::from_utf8(&interp_path).unwrap()).unwrap();
    let ie = elf::parse(&idata).unwrap();
    assert_eq!(ie.header.e_type, ET_DYN);
    assert_ne!(l.interp_base, 0);
    assert_eq!(l.entry, ie.header.e_entry + l.interp_base);
    assert_eq!(st.aux(AT_BASE), Some(l.interp_base));
    check_segments(&mm, &ie, &idata, l.interp_base);
    assert_eq!(
        l.brk_start,
        page_up(e.loads().map(|p| p.p_vaddr + p.p_memsz).max().unwrap() + bias).unwrap()
    );
    if let Some(p) = e.phdrs.iter().find(|p| p.p_type == PT_PHDR) {
        assert_eq!(st.aux(AT_PHDR), Some(p.p_vaddr + bias));
    }
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles a trivial C program with `flags`; None if there is no working gcc.
fn compile(flags: &[&str]) -> Option<(TempDir, PathBuf)> {
    let tag = flags.join("").replace('-', "_");
    let dir =
        TempDir(std::env::temp_dir().join(format!("loader-test-{}-{tag}", std::process::id())));
    std::fs::create_dir_all(&dir.0).ok()?;
    let src = dir.0.join("t.c");
    std::fs::write(
        &src,
        "int x[1000]; int y = 5; int main(void) { return x[3] + y; }\n",
    )
    .ok()?;
    let out = dir.0.join("t");
    let st = std::process::Command::new("gcc")
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    st.success().then_some((dir, out))
}

#[test]
fn load_host_static() {
    let Some((_dir, path)) = compile(&["-static"]) else {
        eprintln!("gcc -static unavailable; skipping");
        return;
    };
    let (mm, l, e, data) = load_host(&path);
    assert_eq!(e.header.e_type, ET_EXEC);
    assert!(e.interp.is_none());
    assert_eq!(l.entry, e.header.e_entry);
    assert_eq!(l.interp_base, 0);
    check_segments(&mm, &e, &data, 0);
    let st = check_stack(&mm, &l, &e, 0);
    assert_eq!(st.aux(AT_BASE), Some(0));
    let end = e.loads().map(|p| p.p_vaddr + p.p_memsz).max().unwrap();
    assert_eq!(l.brk_start, page_up(end).unwrap());
}

#[test]
fn load_host_static_pie() {
    let Some((_dir, path)) = compile(&["-static-pie", "-fPIE"]) else {
        eprintln!("gcc -static-pie unavailable; skipping");
        return;
    };
    let (mm, l, e, data) = load_host(&path);
    assert_eq!(e.header.e_type, ET_DYN);
    assert!(e.interp.is_none());
    let bias = 0x5555_5555_4000 - e.span().unwrap().0;
    assert_eq!(l.entry, e.header.e_entry + bias);
    assert_eq!(l.interp_base, 0);
    check_segments(&mm, &e, &data, bias);
    check_stack(&mm, &l, &e, bias);
}

// ---------- errors ----------

fn load_err(img: Vec<u8>) -> Errno {
    let mm = new_mm();
    load(args(&mm, Arc::new(VecFile(img)), &no_interp)).unwrap_err()
}

#[test]
fn rejects_non_elf() {
    assert_eq!(load_err(b"#!/bin/sh\necho hi\n".to_vec()), Errno::ENOEXEC);
    assert_eq!(load_err(Vec::new()), Errno::ENOEXEC);
    assert_eq!(load_err(b"\x7fELF".to_vec()), Errno::ENOEXEC);
    let good = synthetic(ET_EXEC, 0x400000, None);
    for (off, val) in [(4, 1u8), (5, 2), (6, 0), (16, 1), (18, 3), (54, 32)] {
        let mut b = good.clone();
        b[off] = val;
        assert_eq!(load_err(b), Errno::ENOEXEC, "byte {off} = {val}");
    }
    // e_phnum = 0 and too many.
    let mut b = good.clone();
    b[56..58].copy_from_slice(&0u16.to_le_bytes());
    assert_eq!(elf::parse(&b).unwrap_err(), Errno::ENOEXEC);
    b[56..58].copy_from_slice(&1171u16.to_le_bytes());
    assert_eq!(elf::parse(&b).unwrap_err(), Errno::ENOEXEC);
    // Program headers past the end of the file.
    let mut b = good.clone();
    b[32..40].copy_from_slice(&0x2ff0u64.to_le_bytes());
    assert_eq!(elf::parse(&b).unwrap_err(), Errno::ENOEXEC);
    b[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(elf::parse(&b).unwrap_err(), Errno::ENOEXEC);
    // Only a header.
    assert_eq!(elf::parse(&good[..64]).unwrap_err(), Errno::ENOEXEC);
}

#[test]
fn rejects_bad_segments() {
    let text =
        |filesz, memsz, off, vaddr| vec![ph(PT_LOAD, PF_R | PF_X, off, vaddr, filesz, memsz)];
    let e = |phdrs: Vec<ProgramHeader>| {
        elf::parse(&build_elf(ET_EXEC, 0x401000, &phdrs, 0x2000)).map(|_| ())
    };
    assert_eq!(e(text(0x200, 0x100, 0, 0x400000)), Err(Errno::EINVAL));
    assert_eq!(e(text(0x100, 0x100, 0x10, 0x400000)), Err(Errno::EINVAL));
    assert_eq!(e(text(0x100, u64::MAX, 0, 0x400000)), Err(Errno::EINVAL));
    assert_eq!(
        e(text(0x100, 0x100, 0, u64::MAX - 0x10)),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        e(text(u64::MAX, u64::MAX, 0x1000, 0x1000)),
        Err(Errno::EINVAL)
    );
    assert_eq!(e(text(0x100, 0x100, 0, 0x400000)), Ok(()));
    // Parsed fine but not loadable: no PT_LOAD at all; below mmap_min_addr; beyond the top.
    assert_eq!(
        load_err(build_elf(ET_EXEC, 0, &[ph(PT_NOTE, 0, 0, 0, 0, 0)], 0x1000)),
        Errno::ENOEXEC
    );
    assert_eq!(
        load_err(build_elf(ET_EXEC, 0, &text(0x100, 0x100, 0, 0), 0x1000)),
        Errno::EPERM
    );
    assert!(load(args(
        &new_mm(),
        Arc::new(VecFile(build_elf(
            ET_EXEC,
            0,
            &text(0x100, 0x100, 0, 0x7fff_ffff_0000),
            0x1000
        ))),
        &no_interp
    ))
    .is_err());
}

#[test]
fn rejects_bad_interp() {
    let interp = |path: &[u8], filesz: u64| {
        let phdrs = [
            ph(PT_INTERP, PF_R, 0x800, 0x400800, filesz, filesz),
            ph(PT_LOAD, PF_R | PF_X, 0, 0x400000, 0x1000, 0x1000),
        ];
        let mut f = build_elf(ET_EXEC, 0x400100, &phdrs, 0x1000);
        f[0x800..0x800 + path.len()].copy_from_slice(path);
        f
    };
    // Not NUL terminated, too short, too long, past EOF, empty.
    assert_eq!(
        elf::parse(&interp(b"/ld.so", 6)).unwrap_err(),
        Errno::ENOEXEC
    );
    assert_eq!(elf::parse(&interp(b"/", 1)).unwrap_err(), Errno::ENOEXEC);
    assert_eq!(
        elf::parse(&interp(b"/ld", 4097)).unwrap_err(),
        Errno::ENOEXEC
    );
    assert_eq!(elf::parse(&interp(b"/ld", 0x900)).unwrap_err(), Errno::EIO);
    assert_eq!(elf::parse(&interp(b"\0\0", 2)).unwrap_err(), Errno::ENOEXEC);
    assert_eq!(
        elf::parse(&interp(b"/ld.so\0", 7)).unwrap().interp.unwrap(),
        b"/ld.so"
    );
    // Two PT_INTERPs.
    let mut two = interp(b"/ld.so\0", 7);
    let phdrs = [
        ph(PT_INTERP, PF_R, 0x800, 0x400800, 7, 7),
        ph(PT_INTERP, PF_R, 0x800, 0x400800, 7, 7),
        ph(PT_LOAD, PF_R | PF_X, 0, 0x400000, 0x1000, 0x1000),
    ];
    let hdr = build_elf(ET_EXEC, 0x400100, &phdrs, 0x800);
    two[..0x800].copy_from_slice(&hdr);
    assert_eq!(elf::parse(&two).unwrap_err(), Errno::ENOEXEC);

    // The interpreter cannot be opened / is not ELF.
    let exe = interp(b"/ld.so\0", 7);
    let mm = new_mm();
    assert_eq!(
        load(args(&mm, Arc::new(VecFile(exe.clone())), &no_interp)).unwrap_err(),
        Errno::ENOENT
    );
    let garbage = |_: &[u8]| -> Result<Arc<dyn fs::ReadAt>, Errno> {
        Ok(Arc::new(VecFile(b"#!/bin/sh\n".to_vec())))
    };
    let mm = new_mm();
    assert_eq!(
        load(args(&mm, Arc::new(VecFile(exe)), &garbage)).unwrap_err(),
        Errno::ELIBBAD
    );
}

#[test]
fn argument_limits() {
    let img = synthetic(ET_EXEC, 0x400000, None);
    let mm = new_mm();
    let mut a = args(&mm, Arc::new(VecFile(img.clone())), &no_interp);
    a.argv = vec![vec![b'a'; MAX_ARG_STRLEN]];
    assert_eq!(load(a).unwrap_err(), Errno::E2BIG);
    let mut a = args(&mm, Arc::new(VecFile(img.clone())), &no_interp);
    // 8 MiB rlimit: 2 MiB for strings and pointers.
    a.envp = (0..40).map(|_| vec![b'e'; 60_000]).collect();
    assert_eq!(load(a).unwrap_err(), Errno::E2BIG);
    // Close to the limit still works, and the strings are all there.
    let mm = new_mm();
    let mut a = args(&mm, Arc::new(VecFile(img.clone())), &no_interp);
    a.envp = (0..30).map(|i| vec![b'a' + i as u8 % 26; 60_000]).collect();
    let l = load(a).unwrap();
    let st = parse_stack(&mm, l.stack_pointer);
    assert_eq!(st.envp.len(), 30);
    assert_eq!(st.envp[29], vec![b'a' + 3; 60_000]);
    // A huge rlimit is capped (6 MiB of arguments, 128 MiB stack mapping).
    let mm = new_mm();
    let mut a = args(&mm, Arc::new(VecFile(img)), &no_interp);
    a.stack_size = u64::MAX;
    a.envp = (0..90).map(|_| vec![b'e'; 60_000]).collect();
    let l = load(a).unwrap();
    assert_eq!(parse_stack(&mm, l.stack_pointer).envp.len(), 90);
    let stack = loaded_vma_at(&mm, l.stack_pointer).unwrap();
    assert_eq!(stack.len(), MAX_STACK_MAPPING);
}

#[test]
fn empty_argv_gets_empty_string() {
    let img = synthetic(ET_EXEC, 0x400000, None);
    let mm = new_mm();
    let mut a = args(&mm, Arc::new(VecFile(img)), &no_interp);
    a.argv.clear();
    a.envp.clear();
    let l = load(a).unwrap();
    let st = parse_stack(&mm, l.stack_pointer);
    assert_eq!(st.argv, vec![Vec::<u8>::new()]);
    assert!(st.envp.is_empty());
}

#[test]
fn stack_alignment_all_parities() {
    // Every combination of argc/envc parity and string lengths keeps rsp 16-aligned.
    for argc in 1..4 {
        for envc in 0..3 {
            for extra in 0..17 {
                let argv: Vec<Vec<u8>> = (0..argc).map(|i| vec![b'a'; i + extra]).collect();
                let envp: Vec<Vec<u8>> = (0..envc).map(|i| vec![b'e'; i * 3 + 1]).collect();
                let aux = AuxInfo {
                    hwcap: 0,
                    hwcap2: 0,
                    minsigstksz: 0,
                    phdr: 0,
                    phnum: 0,
                    base: 0,
                    entry: 0,
                    uid: 0,
                    euid: 0,
                    gid: 0,
                    egid: 0,
                    secure: false,
                    random: [7; 16],
                };
                let img =
                    stack::build(0x7fff_0000, 0x7ff0_0000, &argv, &envp, b"/x", &aux).unwrap();
                assert_eq!(img.sp % 16, 0);
                assert_eq!(img.sp + img.bytes.len() as u64, 0x7fff_0000);
                assert_eq!(
                    u64::from_le_bytes(img.bytes[..8].try_into().unwrap()),
                    argc as u64
                );
            }
        }
    }
}

// ---------- #! ----------

fn sb(s: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    parse_shebang(s)
}

fn some(i: &str, a: Option<&str>) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    Some((i.as_bytes().to_vec(), a.map(|a| a.as_bytes().to_vec())))
}

#[test]
fn shebang() {
    assert_eq!(sb(b"#!/bin/sh\n"), some("/bin/sh", None));
    assert_eq!(sb(b"#!/bin/sh\necho hi\n"), some("/bin/sh", None));
    assert_eq!(
        sb(b"#! /usr/bin/env  python3 -u \n"),
        some("/usr/bin/env", Some("python3 -u"))
    );
    assert_eq!(sb(b"#!\t/bin/bash\t-e\t\n"), some("/bin/bash", Some("-e")));
    assert_eq!(sb(b"#!/bin/sh \n"), some("/bin/sh", None));
    assert_eq!(sb(b"#!/bin/sh -x -y\r\n"), some("/bin/sh", Some("-x -y\r")));
    // No newline: the rest of the (short) file.
    assert_eq!(sb(b"#!/bin/sh"), some("/bin/sh", None));
    assert_eq!(sb(b"#!/bin/sh -e"), some("/bin/sh", Some("-e")));
    // Not a script / no interpreter.
    assert_eq!(sb(b""), None);
    assert_eq!(sb(b"#"), None);
    assert_eq!(sb(b"\x7fELF"), None);
    assert_eq!(sb(b"#!\n"), None);
    assert_eq!(sb(b"#!   \t \n"), None);
    // "#!" then NULs: Linux takes an empty interpreter name (the open then fails).
    assert_eq!(sb(b"#!"), some("", None));
    assert_eq!(sb(b"#! \0/bin/true\n"), some("", None));
    // A newline after a NUL is not seen (strnchr stops at NUL).
    assert_eq!(sb(b"#!/bin/sh\0 -x\n"), some("/bin/sh", None));
    // A 300-byte interpreter path with no terminator within 256 bytes: truncated -> ENOEXEC.
    let mut long = b"#!/".to_vec();
    long.extend(vec![b'a'; 300]);
    assert_eq!(sb(&long), None);
    // But a long line whose interpreter ends early is cut at 255 bytes.
    let mut long = b"#!/bin/sh ".to_vec();
    long.extend(vec![b'b'; 300]);
    let (i, a) = sb(&long).unwrap();
    assert_eq!(i, b"/bin/sh");
    assert_eq!(a.unwrap(), vec![b'b'; 255 - 10]);
    // Only the first 256 bytes matter.
    let mut late = b"#!/bin/sh".to_vec();
    late.extend(vec![b' '; 300]);
    late.push(b'\n');
    assert_eq!(sb(&late), some("/bin/sh", None));
}

// ---------- hostile input ----------

fn mutate(mut img: Vec<u8>, muts: &[(usize, u8)]) -> Vec<u8> {
    let len = img.len();
    for &(i, v) in muts {
        // Bias mutations towards the headers.
        let i = if i % 4 == 0 {
            i % len
        } else {
            i % (64 + 6 * 56)
        };
        img[i] = v;
    }
    img
}

fn interesting_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        Just(0x1000),
        Just(0x400000),
        Just(0x7fff_ffff_f000),
        Just(1u64 << 63),
        any::<u64>(),
        0u64..0x10000,
    ]
}

/// `n` cases, or `$PROPTEST_CASES` (to fuzz longer:
/// `PROPTEST_CASES=100000 cargo test --release -p sentry loader::`).
fn cases(n: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn parse_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = elf::parse(&bytes);
        let _ = elf::parse_header(&bytes);
        let _ = parse_shebang(&bytes);
    }

    #[test]
    fn parse_arbitrary_with_magic(mut bytes in proptest::collection::vec(any::<u8>(), 64..1024)) {
        bytes[0..4].copy_from_slice(&ELFMAG);
        bytes[4] = ELFCLASS64;
        bytes[5] = ELFDATA2LSB;
        bytes[6] = EV_CURRENT;
        if let Ok(e) = elf::parse(&bytes) {
            let _ = e.span();
            let _ = e.phdr_vaddr();
            let _ = e.max_align();
        }
    }

    #[test]
    fn shebang_arbitrary(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut b = b"#!".to_vec();
        b.extend(tail);
        if let Some((i, a)) = parse_shebang(&b) {
            prop_assert!(!i.contains(&0) && !i.contains(&b' ') && !i.contains(&b'\t') && !i.contains(&b'\n'));
            if let Some(a) = a {
                prop_assert!(!a.contains(&0));
            }
        }
    }

    #[test]
    fn parse_mutated_header(muts in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..16)) {
        let img = mutate(synthetic(ET_DYN, 0, Some(b"/lib/ld.so")), &muts);
        let _ = elf::parse(&img);
    }

    #[test]
    fn parse_hostile_fields(
        vaddr in interesting_u64(), offset in interesting_u64(), filesz in interesting_u64(),
        memsz in interesting_u64(), phoff in interesting_u64(), entry in interesting_u64(),
        align in interesting_u64(), e_type in prop_oneof![Just(ET_EXEC), Just(ET_DYN)],
    ) {
        let mut p = ph(PT_LOAD, PF_R | PF_W, offset, vaddr, filesz, memsz);
        p.p_align = align;
        let mut img = build_elf(e_type, entry, &[p, ph(PT_PHDR, PF_R, phoff, vaddr, 112, 112)], 0x2000);
        img[32..40].copy_from_slice(&(phoff % 0x3000).to_le_bytes());
        if let Ok(e) = elf::parse(&img) {
            let _ = e.span();
            let _ = e.phdr_vaddr();
            let _ = e.max_align();
        }
        // And the whole loader on top of it.
        let mm = new_mm();
        let _ = load(args(&mm, Arc::new(VecFile(img)), &no_interp));
    }
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn load_mutated(muts in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..12), dyn_ in any::<bool>()) {
        let ld = synthetic(ET_DYN, 0, None);
        let img = if dyn_ { synthetic(ET_DYN, 0, Some(b"/lib/ld.so")) } else { synthetic(ET_EXEC, 0x400000, None) };
        let img = mutate(img, &muts);
        let ld2 = mutate(ld, &muts[..muts.len() / 2]);
        let open = move |_: &[u8]| -> Result<Arc<dyn fs::ReadAt>, Errno> { Ok(Arc::new(VecFile(ld2.clone()))) };
        let mm = new_mm();
        if let Ok(l) = load(args(&mm, Arc::new(VecFile(img)), &open)) {
            prop_assert_eq!(l.stack_pointer % 16, 0);
            let _ = parse_stack(&mm, l.stack_pointer);
        }
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// A real dynamic executable (/bin/true) with its ELF header and program
    /// headers mutated, loaded with its real interpreter: an error or a
    /// consistent image, never a panic or a huge allocation.
    #[test]
    fn load_mutated_host_binary(
        muts in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        words in proptest::collection::vec((any::<usize>(), interesting_u64()), 0..3),
    ) {
        let mut img = std::fs::read("/bin/true").unwrap();
        let e = elf::parse(&img).unwrap();
        let headers = (e.header.e_phoff as usize + e.phdrs.len() * 56).min(img.len());
        for &(i, v) in &muts {
            img[i % headers] = v;
        }
        for &(i, w) in &words {
            // 8-byte fields of the headers: offsets, addresses, sizes, alignments.
            let i = (i % (headers / 8)) * 8;
            img[i..i + 8].copy_from_slice(&w.to_le_bytes());
        }
        if let Ok(e) = elf::parse(&img) {
            let _ = e.span();
            let _ = e.phdr_vaddr();
            let _ = e.max_align();
        }
        let mm = new_mm();
        if let Ok(l) = load(args(&mm, Arc::new(VecFile(img)), &host_interp)) {
            prop_assert_eq!(l.stack_pointer % 16, 0);
            let _ = parse_stack(&mm, l.stack_pointer);
        }
    }
}

#[test]
fn phnum_limit_exact() {
    // 1170 * 56 <= 65536 < 1171 * 56.
    let phdrs: Vec<ProgramHeader> = (0..1170).map(|_| ph(PT_NULL, 0, 0, 0, 0, 0)).collect();
    let img = build_elf(ET_EXEC, 0, &phdrs, 64 + 1170 * 56);
    assert!(elf::parse(&img).is_ok());
}
