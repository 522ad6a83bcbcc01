//! The guest "kernel": a 2 MiB host-anonymous region (guest-physical
//! [`super::KERNEL_GPA`]), mapped supervisor-only at [`KERNEL_VA`] in every address
//! space. It is never executed beyond a few stubs:
//!
//! | page | contents |
//! | --- | --- |
//! | 0 | a PML4 with only slot 511 (the vCPUs' CR3 before any address space) |
//! | 1..=3 | PDPT, PD and PT of the kernel mapping, shared by every address space |
//! | 4 | the IDT (vectors 0-31) |
//! | 5 | the entry stubs (code) |
//! | 6 | the page-table rewriter's window table (see [`super::pvm`]), mapped at [`WINDOW_VA`] too |
//! | 7 | the page-table rewriter's code, written per batch |
//! | 8.. | one per vCPU: GDT at 0, TSS at 0x80, flush list at 0xf8, the ring-0 stack (RSP0) at the top |
//!
//! Segments follow Linux's layout so the selectors the workload sees match native:
//! kernel CS 0x10, kernel SS 0x18, user CS32 0x23, user SS 0x2b, user CS 0x33, and
//! the TSS at 0x40. STAR = 0x23 << 48 | 0x10 << 32, as Linux sets it.
//!
//! Entry and exit:
//! - to enter ring 3 the host writes `[rax, rip, cs, rflags, rsp, ss]` at the top of
//!   the vCPU's stack, points the vCPU's rsp at it and its rip at [`IRET_STUB`]
//!   (`pop rax; iretq`) or [`FLUSH_STUB`] (`mov cr3, rax`, rax holding the new
//!   CR3, then `invlpg` of each page on the vCPU page's flush list, then the same);
//! - `syscall` lands at [`SYSCALL_STUB`], a `hlt`: the host sees rip =
//!   `SYSCALL_STUB + 1` with every user register intact (rcx = user rip, r11 =
//!   user rflags, as the instruction leaves them);
//! - exception `v` pushes (error code or 0), `v`, then the common stub pushes rax and
//!   CR2 and `hlt`s at [`EXCEPTION_HLT`]: the host reads
//!   `[cr2, rax, vector, error, rip, cs, rflags, rsp, ss]` at the guest rsp.

use kvm_bindings::CpuId;

use super::KvmError;

/// Size of the region (one page table's worth).
pub const REGION_SIZE: u64 = 2 << 20;
/// Where the region appears in every address space (PML4 511, PDPT 511, PD 511).
pub const KERNEL_VA: u64 = 0xffff_ffff_ffe0_0000;

pub const PML4_PAGE: usize = 0;
pub const PDPT_PAGE: usize = 1;
pub const PD_PAGE: usize = 2;
pub const PT_PAGE: usize = 3;
pub const IDT_PAGE: usize = 4;
pub const CODE_PAGE: usize = 5;
pub const WINDOW_PT_PAGE: usize = 6;
pub const REWRITE_CODE_PAGE: usize = 7;
pub const FIRST_VCPU_PAGE: usize = 8;
/// The 2 MiB the window table maps (PD slot 510, just below the region).
pub const WINDOW_VA: u64 = KERNEL_VA - (2 << 20);
/// vCPU pages that fit in the region.
pub const MAX_VCPUS: usize = 512 - FIRST_VCPU_PAGE;

pub const KERNEL_CS: u16 = 0x10;
pub const KERNEL_SS: u16 = 0x18;
pub const USER_CS32: u16 = 0x23;
pub const USER_SS: u16 = 0x2b;
pub const USER_CS: u16 = 0x33;
pub const TSS_SEL: u16 = 0x40;
/// GDT entries (the TSS takes two).
pub const GDT_ENTRIES: usize = 10;
/// Offset of the TSS in a vCPU page.
pub const TSS_OFFSET: usize = 0x80;
/// Exceptions with an IDT entry.
pub const IDT_VECTORS: usize = 32;

const CODE_VA: u64 = KERNEL_VA + (CODE_PAGE as u64) * 4096;
/// LSTAR: `hlt`.
pub const SYSCALL_STUB: u64 = CODE_VA;
/// CSTAR (32-bit `syscall`, unsupported): `hlt`.
pub const CSTAR_STUB: u64 = CODE_VA + 0x10;
/// `pop rax; iretq`.
pub const IRET_STUB: u64 = CODE_VA + 0x20;
/// `mov cr3, rax`, then `invlpg` each address of the vCPU page's flush list, then
/// `pop rax; iretq`. Shadow-paging hosts (PVM) keep translations of host-edited
/// page tables across a CR3 load; `invlpg` resyncs them.
pub const FLUSH_STUB: u64 = CODE_VA + 0x60;
/// Offset in a vCPU page of the flush count (u64) and list (u64 addresses).
pub const FLUSH_COUNT_OFFSET: usize = 0xf8;
pub const FLUSH_LIST_OFFSET: usize = 0x100;
/// Addresses the list holds.
pub const FLUSH_MAX: usize = 256;
/// Common exception tail: `push rax; mov rax, cr2; push rax; hlt`.
const EXCEPTION_COMMON: u64 = CODE_VA + 0x40;
/// Address of the `hlt` in the exception tail.
pub const EXCEPTION_HLT: u64 = EXCEPTION_COMMON + 5;
/// Per-vector stubs, 16 bytes apart.
const VECTOR_STUBS: u64 = CODE_VA + 0x100;

/// Page-table entry bits.
pub const PTE_P: u64 = 1;
pub const PTE_W: u64 = 1 << 1;
pub const PTE_U: u64 = 1 << 2;
pub const PTE_A: u64 = 1 << 5;
pub const PTE_D: u64 = 1 << 6;
pub const PTE_NX: u64 = 1 << 63;
pub const PTE_ADDR: u64 = 0x000f_ffff_ffff_f000;

/// Vectors for which the CPU pushes an error code.
fn has_error_code(v: usize) -> bool {
    matches!(v, 8 | 10 | 11 | 12 | 13 | 14 | 17 | 21 | 29 | 30)
}

/// The kernel region: a host mapping, filled once.
pub struct KernelRegion {
    base: *mut u8,
    /// CR4 bits beyond the fixed ones (OSXSAVE when the CPU has XSAVE).
    pub cr4_extra: u64,
    /// XCR0 to set when OSXSAVE is on.
    pub xcr0: u64,
}

// SAFETY: `base` is a private mapping owned by this value; the host writes only
// vCPU-page frames of vCPUs it runs (one thread per vCPU) and the read-only
// tables it builds before any vCPU exists.
unsafe impl Send for KernelRegion {}
// SAFETY: as above.
unsafe impl Sync for KernelRegion {}

impl Drop for KernelRegion {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `new` made; nothing refers to it (the
        // VM, whose slot pointed here, is dropped before: see `Vm`'s field order).
        unsafe { libc::munmap(self.base as *mut libc::c_void, REGION_SIZE as usize) };
    }
}

impl KernelRegion {
    pub fn new(cpuid: &CpuId) -> Result<KernelRegion, KvmError> {
        // SAFETY: a fresh anonymous mapping; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                REGION_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(KvmError::last("mmap kernel region"));
        }
        let leaf1 = cpuid.as_slice().iter().find(|e| e.function == 1);
        let xsave = leaf1.is_some_and(|e| e.ecx & (1 << 26) != 0);
        let xcr0 = cpuid
            .as_slice()
            .iter()
            .find(|e| e.function == 0xd && e.index == 0)
            .map(|e| (e.eax as u64 | (e.edx as u64) << 32) & 0xe7)
            .unwrap_or(3)
            | 1;
        let mut k = KernelRegion {
            base: base as *mut u8,
            cr4_extra: if xsave { 1 << 18 } else { 0 },
            xcr0: if xsave { xcr0 } else { 1 },
        };
        k.build();
        Ok(k)
    }

    pub fn host_addr(&self) -> *mut u8 {
        self.base
    }

    /// Guest-physical address of page `i`.
    pub fn page_gpa(i: usize) -> u64 {
        super::KERNEL_GPA + (i as u64) * 4096
    }

    /// Guest-virtual address of page `i`.
    pub fn page_va(i: usize) -> u64 {
        KERNEL_VA + (i as u64) * 4096
    }

    /// Writes `v` at byte `off` of the region.
    pub(crate) fn write_u64(&self, off: usize, v: u64) {
        assert!(off + 8 <= REGION_SIZE as usize && off.is_multiple_of(8));
        // SAFETY: in bounds and aligned (checked); a raw write, no reference formed.
        unsafe { (self.base.add(off) as *mut u64).write_volatile(v) }
    }

    pub(crate) fn read_u64(&self, off: usize) -> u64 {
        assert!(off + 8 <= REGION_SIZE as usize && off.is_multiple_of(8));
        // SAFETY: as write_u64.
        unsafe { (self.base.add(off) as *const u64).read_volatile() }
    }

    pub(crate) fn write_bytes(&self, off: usize, b: &[u8]) {
        assert!(off + b.len() <= REGION_SIZE as usize);
        // SAFETY: in bounds (checked); `b` is a distinct buffer; a raw copy, no
        // reference into the region formed.
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), self.base.add(off), b.len()) }
    }

    fn build(&mut self) {
        let pg = |i: usize| i * 4096;
        // Upper tables: PML4[511] -> PDPT[511] -> PD[511] -> PT.
        let table = PTE_P | PTE_W | PTE_A;
        self.write_u64(pg(PML4_PAGE) + 511 * 8, Self::page_gpa(PDPT_PAGE) | table);
        self.write_u64(pg(PDPT_PAGE) + 511 * 8, Self::page_gpa(PD_PAGE) | table);
        self.write_u64(pg(PD_PAGE) + 511 * 8, Self::page_gpa(PT_PAGE) | table);
        self.write_u64(
            pg(PD_PAGE) + 510 * 8,
            Self::page_gpa(WINDOW_PT_PAGE) | table,
        );
        // Leaves: IDT read-only, code read-only executable, vCPU pages writable.
        let leaf = |i: usize, flags: u64| Self::page_gpa(i) | PTE_P | PTE_A | PTE_D | flags;
        self.write_u64(pg(PT_PAGE) + IDT_PAGE * 8, leaf(IDT_PAGE, PTE_NX));
        self.write_u64(pg(PT_PAGE) + CODE_PAGE * 8, leaf(CODE_PAGE, 0));
        self.write_u64(
            pg(PT_PAGE) + WINDOW_PT_PAGE * 8,
            leaf(WINDOW_PT_PAGE, PTE_W | PTE_NX),
        );
        self.write_u64(
            pg(PT_PAGE) + REWRITE_CODE_PAGE * 8,
            leaf(REWRITE_CODE_PAGE, 0),
        );
        for i in FIRST_VCPU_PAGE..512 {
            self.write_u64(pg(PT_PAGE) + i * 8, leaf(i, PTE_W | PTE_NX));
        }

        // Code.
        let code = pg(CODE_PAGE);
        let off = |va: u64| code + (va - CODE_VA) as usize;
        self.write_bytes(off(SYSCALL_STUB), &[0xf4, 0x0f, 0x0b]); // hlt; ud2
        self.write_bytes(off(CSTAR_STUB), &[0xf4, 0x0f, 0x0b]);
        self.write_bytes(off(IRET_STUB), &[0x58, 0x48, 0xcf]); // pop rax; iretq
                                                               // At FLUSH_STUB rsp = top - 48; after `push rcx` top - 56.
        let at_rcx = |o: usize| (o as i64 - (4096 - 56)) as i32;
        let mut f = vec![0x0f, 0x22, 0xd8, 0x51]; // mov cr3, rax; push rcx
        f.extend_from_slice(&[0x48, 0x8b, 0x8c, 0x24]); // mov rcx, [rsp+d32]
        f.extend_from_slice(&at_rcx(FLUSH_COUNT_OFFSET).to_le_bytes());
        f.extend_from_slice(&[0x48, 0x85, 0xc9, 0x74, 16]); // test rcx, rcx; jz done
        f.extend_from_slice(&[0x48, 0x8b, 0x84, 0xcc]); // mov rax, [rsp+rcx*8+d32]
        f.extend_from_slice(&at_rcx(FLUSH_LIST_OFFSET - 8).to_le_bytes());
        f.extend_from_slice(&[0x0f, 0x01, 0x38]); // invlpg [rax]
        f.extend_from_slice(&[0x48, 0xff, 0xc9, 0xeb, 0xeb]); // dec rcx; jmp loop
        f.extend_from_slice(&[0x59, 0x58, 0x48, 0xcf]); // pop rcx; pop rax; iretq
        debug_assert_eq!(f.len(), 37);
        self.write_bytes(off(FLUSH_STUB), &f);
        // push rax; mov rax, cr2; push rax; hlt; ud2
        self.write_bytes(
            off(EXCEPTION_COMMON),
            &[0x50, 0x0f, 0x20, 0xd0, 0x50, 0xf4, 0x0f, 0x0b],
        );
        debug_assert_eq!(EXCEPTION_HLT, EXCEPTION_COMMON + 5);
        for v in 0..IDT_VECTORS {
            let at = VECTOR_STUBS + (v as u64) * 16;
            let mut b = Vec::with_capacity(16);
            if !has_error_code(v) {
                b.extend_from_slice(&[0x6a, 0x00]); // push 0
            }
            b.extend_from_slice(&[0x6a, v as u8]); // push v
            let next = at + b.len() as u64 + 5;
            let rel = (EXCEPTION_COMMON as i64 - next as i64) as i32;
            b.push(0xe9); // jmp rel32
            b.extend_from_slice(&rel.to_le_bytes());
            self.write_bytes(off(at), &b);

            // IDT entry: 64-bit interrupt gate; int3/into callable from ring 3.
            let dpl: u64 = if v == 3 || v == 4 { 3 } else { 0 };
            let lo = (at & 0xffff)
                | (KERNEL_CS as u64) << 16
                | (0x8e | dpl << 5) << 40
                | ((at >> 16) & 0xffff) << 48;
            let hi = at >> 32;
            self.write_u64(pg(IDT_PAGE) + v * 16, lo);
            self.write_u64(pg(IDT_PAGE) + v * 16 + 8, hi);
        }
    }

    /// Fills vCPU page `slot` (GDT, TSS); returns its page index.
    pub fn init_vcpu_page(&self, slot: usize) -> usize {
        let page = FIRST_VCPU_PAGE + slot;
        let base = page * 4096;
        let gdt: [u64; 8] = [
            0,
            0,
            0x00af_9b00_0000_ffff, // 0x10 kernel code, 64-bit
            0x00cf_9300_0000_ffff, // 0x18 kernel data
            0x00cf_fb00_0000_ffff, // 0x23 user code, 32-bit
            0x00cf_f300_0000_ffff, // 0x2b user data
            0x00af_fb00_0000_ffff, // 0x33 user code, 64-bit
            0,
        ];
        for (i, d) in gdt.iter().enumerate() {
            self.write_u64(base + i * 8, *d);
        }
        let tss = KernelRegion::page_va(page) + TSS_OFFSET as u64;
        let limit: u64 = 103;
        let lo = (limit & 0xffff)
            | (tss & 0xff_ffff) << 16
            | 0x89 << 40 // present, 64-bit TSS (available)
            | ((limit >> 16) & 0xf) << 48
            | ((tss >> 24) & 0xff) << 56;
        self.write_u64(base + 8 * 8, lo);
        self.write_u64(base + 9 * 8, tss >> 32);
        // TSS: zero it, RSP0 = page top, no I/O bitmap (offset past the limit).
        for i in (0..104).step_by(8) {
            self.write_u64(base + TSS_OFFSET + i, 0);
        }
        let rsp0 = KernelRegion::page_va(page) + 4096;
        // RSP0 sits at TSS offset 4 (unaligned): write bytes.
        let t = base + TSS_OFFSET;
        // SAFETY: in bounds of the vCPU page; byte-wise unaligned write.
        unsafe {
            std::ptr::copy_nonoverlapping(rsp0.to_le_bytes().as_ptr(), self.base.add(t + 4), 8);
            std::ptr::copy_nonoverlapping(104u16.to_le_bytes().as_ptr(), self.base.add(t + 102), 2);
        }
        page
    }
}
