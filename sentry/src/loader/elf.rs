//! Checked ELF64 parsing: a view over untrusted bytes.
//!
//! Everything here treats the file as hostile: every offset, size and address is
//! bounds- and overflow-checked, and no input makes the parser panic. The checks
//! follow Linux's fs/binfmt_elf.c (and are a little stricter where noted).

use abi::{Errno, PAGE_SIZE};

/// Size of an ELF64 file header.
pub const EHDR_SIZE: usize = 64;
/// Size of an ELF64 program header (`e_phentsize` must equal it).
pub const PHDR_SIZE: usize = 56;
/// Linux refuses program header tables larger than this (load_elf_phdrs).
pub const MAX_PHDRS_BYTES: usize = 65536;
/// Longest PT_INTERP, NUL included (Linux: `p_filesz > PATH_MAX` is ENOEXEC).
pub const PATH_MAX: usize = 4096;

pub const ELFMAG: [u8; 4] = [0x7f, b'E', b'L', b'F'];
pub const ELFCLASS64: u8 = 2;
pub const ELFDATA2LSB: u8 = 1;
pub const EV_CURRENT: u8 = 1;

pub const ET_EXEC: u16 = 2;
pub const ET_DYN: u16 = 3;
pub const EM_X86_64: u16 = 62;

pub const PT_NULL: u32 = 0;
pub const PT_LOAD: u32 = 1;
pub const PT_DYNAMIC: u32 = 2;
pub const PT_INTERP: u32 = 3;
pub const PT_NOTE: u32 = 4;
pub const PT_PHDR: u32 = 6;
pub const PT_TLS: u32 = 7;
pub const PT_GNU_STACK: u32 = 0x6474_e551;

pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;

/// The fields of the ELF file header the loader uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub e_type: u16,
    pub e_machine: u16,
    pub e_entry: u64,
    pub e_phoff: u64,
    pub e_flags: u32,
    pub e_phentsize: u16,
    pub e_phnum: u16,
}

/// One program header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramHeader {
    pub p_type: u32,
    pub p_flags: u32,
    pub p_offset: u64,
    pub p_vaddr: u64,
    pub p_paddr: u64,
    pub p_filesz: u64,
    pub p_memsz: u64,
    pub p_align: u64,
}

impl ProgramHeader {
    /// Parses one 56-byte entry.
    pub fn from_bytes(b: &[u8; PHDR_SIZE]) -> ProgramHeader {
        ProgramHeader {
            p_type: u32_at(b, 0),
            p_flags: u32_at(b, 4),
            p_offset: u64_at(b, 8),
            p_vaddr: u64_at(b, 16),
            p_paddr: u64_at(b, 24),
            p_filesz: u64_at(b, 32),
            p_memsz: u64_at(b, 40),
            p_align: u64_at(b, 48),
        }
    }

    /// mmap protection from `p_flags`.
    pub fn prot(&self) -> i32 {
        let mut prot = 0;
        if self.p_flags & PF_R != 0 {
            prot |= libc::PROT_READ;
        }
        if self.p_flags & PF_W != 0 {
            prot |= libc::PROT_WRITE;
        }
        if self.p_flags & PF_X != 0 {
            prot |= libc::PROT_EXEC;
        }
        prot
    }

    /// `p_vaddr + p_memsz` (checked at parse time for PT_LOAD).
    pub fn vaddr_end(&self) -> Option<u64> {
        self.p_vaddr.checked_add(self.p_memsz)
    }
}

/// A parsed, validated ELF executable or interpreter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Elf {
    pub header: Header,
    pub phdrs: Vec<ProgramHeader>,
    /// The program header table as it is in the file (`e_phnum * 56` bytes at `e_phoff`).
    pub phdr_bytes: Vec<u8>,
    /// PT_INTERP's path, without its terminating NUL.
    pub interp: Option<Vec<u8>>,
    /// PT_GNU_STACK asked for an executable stack (no PT_GNU_STACK: not executable,
    /// as for 64-bit binaries since Linux 5.8).
    pub exec_stack: bool,
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// Parses and validates the file header: magic, class, data encoding, version,
/// machine, type and program header table shape. Any failure is ENOEXEC.
pub fn parse_header(b: &[u8]) -> Result<Header, Errno> {
    if b.len() < EHDR_SIZE || b[0..4] != ELFMAG {
        return Err(Errno::ENOEXEC);
    }
    if b[4] != ELFCLASS64 || b[5] != ELFDATA2LSB || b[6] != EV_CURRENT {
        return Err(Errno::ENOEXEC);
    }
    let h = Header {
        e_type: u16_at(b, 16),
        e_machine: u16_at(b, 18),
        e_entry: u64_at(b, 24),
        e_phoff: u64_at(b, 32),
        e_flags: u32_at(b, 48),
        e_phentsize: u16_at(b, 54),
        e_phnum: u16_at(b, 56),
    };
    if h.e_type != ET_EXEC && h.e_type != ET_DYN {
        return Err(Errno::ENOEXEC);
    }
    if h.e_machine != EM_X86_64 {
        return Err(Errno::ENOEXEC);
    }
    if h.e_phentsize as usize != PHDR_SIZE {
        return Err(Errno::ENOEXEC);
    }
    let size = h.e_phnum as usize * PHDR_SIZE;
    if size == 0 || size > MAX_PHDRS_BYTES {
        return Err(Errno::ENOEXEC);
    }
    if h.e_phoff.checked_add(size as u64).is_none() {
        return Err(Errno::ENOEXEC);
    }
    Ok(h)
}

/// Validates one PT_LOAD (Linux reports these as EINVAL, from its own checks or mmap's).
fn check_load(ph: &ProgramHeader) -> Result<(), Errno> {
    if ph.p_filesz > ph.p_memsz {
        return Err(Errno::EINVAL);
    }
    if ph.p_offset % PAGE_SIZE != ph.p_vaddr % PAGE_SIZE {
        return Err(Errno::EINVAL);
    }
    let end = ph.p_vaddr.checked_add(ph.p_memsz).ok_or(Errno::EINVAL)?;
    abi::page_up(end).ok_or(Errno::EINVAL)?;
    let fend = ph.p_offset.checked_add(ph.p_filesz).ok_or(Errno::EINVAL)?;
    abi::page_up(fend).ok_or(Errno::EINVAL)?;
    Ok(())
}

/// A positional reader: fills `buf` from `off`, returning how much it read.
type Reader<'r> = dyn FnMut(u64, &mut [u8]) -> Result<usize, Errno> + 'r;

/// Parses an ELF file given a positional reader that fills the whole buffer or
/// reports how much it read (`Ok(n)`, `n < buf.len()` meaning end of file).
fn parse_with(read: &mut Reader<'_>) -> Result<Elf, Errno> {
    let mut hb = [0u8; EHDR_SIZE];
    let n = read(0, &mut hb)?;
    if n < EHDR_SIZE {
        return Err(Errno::ENOEXEC);
    }
    let header = parse_header(&hb)?;

    let size = header.e_phnum as usize * PHDR_SIZE;
    let mut phdr_bytes = vec![0u8; size];
    if read(header.e_phoff, &mut phdr_bytes)? < size {
        return Err(Errno::ENOEXEC);
    }
    let phdrs: Vec<ProgramHeader> = phdr_bytes
        .chunks_exact(PHDR_SIZE)
        .map(|c| {
            let mut a = [0u8; PHDR_SIZE];
            a.copy_from_slice(c);
            ProgramHeader::from_bytes(&a)
        })
        .collect();

    let mut interp = None;
    let mut exec_stack = false;
    for ph in &phdrs {
        match ph.p_type {
            PT_LOAD => check_load(ph)?,
            PT_INTERP => {
                // Linux uses the first PT_INTERP; a second one is malformed here.
                if interp.is_some() {
                    return Err(Errno::ENOEXEC);
                }
                if ph.p_filesz < 2 || ph.p_filesz > PATH_MAX as u64 {
                    return Err(Errno::ENOEXEC);
                }
                let len = ph.p_filesz as usize;
                let mut path = vec![0u8; len];
                if ph.p_offset.checked_add(len as u64).is_none() {
                    return Err(Errno::ENOEXEC);
                }
                if read(ph.p_offset, &mut path)? < len {
                    // elf_read() in Linux: a short read is EIO.
                    return Err(Errno::EIO);
                }
                if path[len - 1] != 0 {
                    return Err(Errno::ENOEXEC);
                }
                path.truncate(len - 1);
                // An embedded NUL ends the C string Linux would open.
                if let Some(p) = path.iter().position(|&c| c == 0) {
                    path.truncate(p);
                }
                if path.is_empty() {
                    return Err(Errno::ENOEXEC);
                }
                interp = Some(path);
            }
            PT_GNU_STACK => exec_stack = ph.p_flags & PF_X != 0,
            _ => {}
        }
    }
    Ok(Elf {
        header,
        phdrs,
        phdr_bytes,
        interp,
        exec_stack,
    })
}

/// Parses an in-memory ELF image (the whole file, or at least its headers and
/// PT_INTERP string).
pub fn parse(bytes: &[u8]) -> Result<Elf, Errno> {
    parse_with(&mut |off, buf| {
        let Ok(off) = usize::try_from(off) else {
            return Ok(0);
        };
        if off >= bytes.len() {
            return Ok(0);
        }
        let n = buf.len().min(bytes.len() - off);
        buf[..n].copy_from_slice(&bytes[off..off + n]);
        Ok(n)
    })
}

/// Reads and parses an ELF file through `file`.
pub fn read(file: &dyn fs::ReadAt) -> Result<Elf, Errno> {
    parse_with(&mut |off, buf| read_full(file, off, buf))
}

/// Reads until `buf` is full or end of file; returns the bytes read.
pub fn read_full(file: &dyn fs::ReadAt, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut done = 0usize;
    while done < buf.len() {
        let Some(pos) = off.checked_add(done as u64) else {
            break;
        };
        match file.read_at(pos, &mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n.min(buf.len() - done),
            Err(e) if e == Errno::EINTR => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

impl Elf {
    /// The PT_LOAD headers, in file order.
    pub fn loads(&self) -> impl Iterator<Item = &ProgramHeader> {
        self.phdrs.iter().filter(|p| p.p_type == PT_LOAD)
    }

    /// `(page_down(lowest p_vaddr), page_up(highest p_vaddr + p_memsz))` over the
    /// PT_LOADs, or None if there are none. (Overflow was ruled out at parse time.)
    pub fn span(&self) -> Option<(u64, u64)> {
        let lo = self.loads().map(|p| p.p_vaddr).min()?;
        let hi = self.loads().filter_map(|p| p.vaddr_end()).max()?;
        Some((abi::page_down(lo), abi::page_up(hi)?))
    }

    /// Where the program headers are in memory, before relocation: PT_PHDR's
    /// p_vaddr if present, else found through the PT_LOAD whose file bytes hold
    /// `e_phoff` (as Linux computes AT_PHDR).
    pub fn phdr_vaddr(&self) -> Option<u64> {
        if let Some(p) = self.phdrs.iter().find(|p| p.p_type == PT_PHDR) {
            return Some(p.p_vaddr);
        }
        let off = self.header.e_phoff;
        self.loads()
            .find(|p| p.p_offset <= off && off - p.p_offset < p.p_filesz)
            .and_then(|p| p.p_vaddr.checked_add(off - p.p_offset))
    }

    /// The largest power-of-two `p_align` of the PT_LOADs (at least a page).
    pub fn max_align(&self) -> u64 {
        self.loads()
            .map(|p| p.p_align)
            .filter(|a| a.is_power_of_two())
            .fold(PAGE_SIZE, u64::max)
    }
}
