//! What this platform does about PVM hosts (see the module docs of [`super`]
//! for what was probed there): a probe for the PVM guest ABI ([`probe_abi`]:
//! absent on that host, so no PVM-aware guest kernel), the page-table rewriter
//! that makes host edits of guest page tables visible to a shadow MMU without
//! zapping every translation, and the non-canonical LSTAR that makes a
//! syscall exit sooner ([`SYSCALL_GP_LSTAR`]).
//!
//! ## The rewriter
//!
//! A shadow MMU learns of guest page-table edits by write-protecting the
//! guest's table pages; the sentry edits them through its own mapping of the
//! memory file, which nothing traps. KVM does notice a *guest* write to a
//! table page. So, after an unmap or a protect, a helper vCPU that never runs
//! workload code executes, in ring 0, one `lock or qword [entry], 0` per edited
//! entry: an atomic no-op on the value (so it cannot undo a concurrent host
//! edit) that KVM's write tracking sees, so it drops or refreshes the shadow
//! entries of that guest entry, for every vCPU. The helper reaches an entry
//! through a window: [`kernel::WINDOW_VA`], a 2 MiB range whose table (kernel
//! page [`kernel::WINDOW_PT_PAGE`]) the helper itself points at the table
//! pages of a batch (guest writes again, then `invlpg`), so no host-written
//! translation is ever relied on. The code is generated per batch into kernel
//! page [`kernel::REWRITE_CODE_PAGE`] and ends in `hlt`.
//!
//! Table pages about to be freed (unlinked by `unmap`, or all of a dropped
//! address space) get a 2-byte `lock or` across an entry boundary instead:
//! KVM takes such a "misaligned" write as a sign the page is no longer a page
//! table and zaps every shadow page of it; otherwise the next table to get the
//! page could inherit stale translations (seen for a dropped root).
//!
//! KVM sees the helper's writes because ring 0 is emulated on the PVM host
//! (emulated writes always go through write tracking, also to table pages KVM
//! left unprotected, "unsync"). Where ring 0 runs natively they would trap only
//! on protected pages, so `Vm::new` keeps the rewriter only where
//! `probe_syscall_gp` finds the emulation's mark (a ring-3 syscall staying in
//! ring 3); elsewhere shadow-paging hosts zap.
//!
//! On the PVM host this was written on a batch costs about one bare exit
//! (ring 0 is emulated there: ~0.3 us per instruction on top of ~9 us), where
//! the memslot toggle ([`Vm::zap_translations`]) drops all shadow pages, which
//! every vCPU then refaults. `Vm::new` checks that a rewrite takes effect before
//! relying on it; the zap stays the fallback (lists too long, helper errors).

use kvm_bindings::{kvm_msr_entry, kvm_segment, Msrs};
use kvm_ioctls::{Kvm, SyncReg, VcpuExit, VcpuFd};

use super::kernel::{self, KernelRegion, PTE_A, PTE_D, PTE_NX, PTE_P, PTE_W};
use super::pagetable::PageTables;
use super::vcpu::seg;
use super::{Exit, KvmError, Vcpu, Vm, MEMFILE_GPA};
use crate::Regs;

/// `MSR_PVM_LINEAR_ADDRESS_RANGE`, the first of PVM's MSRs (0x4b564df0..=0x4b564df7).
pub const MSR_PVM_LINEAR_ADDRESS_RANGE: u32 = 0x4b56_4df0;
/// `MSR_PVM_VCPU_STRUCT` (the PVCS's guest-physical address).
pub const MSR_PVM_VCPU_STRUCT: u32 = 0x4b56_4df1;
/// `MSR_PVM_EVENT_ENTRY`.
pub const MSR_PVM_EVENT_ENTRY: u32 = 0x4b56_4df4;
/// PVM's CPUID leaves start here (upstream RFC).
pub const PVM_CPUID_BASE: u32 = 0x4000_0200;

/// What the host's KVM offers of the PVM guest ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PvmAbi {
    /// KVM_SET_MSRS / KVM_GET_MSRS take the PVM MSRs.
    pub msrs: bool,
    /// KVM_GET_SUPPORTED_CPUID lists PVM's leaves.
    pub cpuid_leaves: bool,
}

impl PvmAbi {
    /// Whether a PVM-aware guest kernel could be set up (it needs both).
    pub fn usable(&self) -> bool {
        self.msrs && self.cpuid_leaves
    }
}

/// Probes the PVM guest ABI on a throwaway VM (a vCPU id is not reusable).
pub fn probe_abi(kvm: &Kvm) -> Result<PvmAbi, KvmError> {
    let cpuid = kvm
        .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
        .map_err(|e| KvmError::new("KVM_GET_SUPPORTED_CPUID", e))?;
    let cpuid_leaves = cpuid
        .as_slice()
        .iter()
        .any(|e| e.function >= PVM_CPUID_BASE && e.function < PVM_CPUID_BASE + 0x100);
    let vm = kvm
        .create_vm()
        .map_err(|e| KvmError::new("KVM_CREATE_VM (pvm probe)", e))?;
    let cpu = vm
        .create_vcpu(0)
        .map_err(|e| KvmError::new("KVM_CREATE_VCPU (pvm probe)", e))?;
    let entry = |index, data| kvm_msr_entry {
        index,
        data,
        ..Default::default()
    };
    let mut get = Msrs::from_entries(&[entry(MSR_PVM_LINEAR_ADDRESS_RANGE, 0)])
        .map_err(|_| KvmError::msg("MSR list"))?;
    let got = cpu.get_msrs(&mut get).unwrap_or(0);
    let set = Msrs::from_entries(&[entry(MSR_PVM_VCPU_STRUCT, 0), entry(MSR_PVM_EVENT_ENTRY, 0)])
        .map_err(|_| KvmError::msg("MSR list"))?;
    let put = cpu.set_msrs(&set).unwrap_or(0);
    Ok(PvmAbi {
        msrs: got == 1 && put == 2,
        cpuid_leaves,
    })
}

/// Entries per helper run (the generated code must fit its page).
const BATCH: usize = 100;
/// Where in a table page the write that makes KVM forget it goes (an entry's
/// last byte and the next entry's first).
const FORGET_OFFSET: u64 = 7;

/// The helper vCPU of [`Vm`] that rewrites page-table entries (see the module
/// docs). Used under `Vm`'s lock, one batch at a time.
pub(crate) struct Rewriter {
    fd: VcpuFd,
    page: usize,
}

impl Rewriter {
    pub(crate) fn new(vm: &Vm) -> Result<Rewriter, KvmError> {
        let slot = vm.take_slot()?;
        let mut fd = vm
            .fd
            .create_vcpu(slot as u64)
            .map_err(|e| KvmError::new("KVM_CREATE_VCPU (rewriter)", e))?;
        let page = vm.kernel.init_vcpu_page(slot);
        fd.set_cpuid2(&vm.cpuid)
            .map_err(|e| KvmError::new("KVM_SET_CPUID2", e))?;
        let mut s = fd
            .get_sregs()
            .map_err(|e| KvmError::new("KVM_GET_SREGS", e))?;
        s.cs = seg(kernel::KERNEL_CS, true, 0);
        s.ss = seg(kernel::KERNEL_SS, false, 0);
        let data = seg(0, false, 0);
        s.ds = data;
        s.es = data;
        s.fs = data;
        s.gs = data;
        let vcpu_va = KernelRegion::page_va(page);
        s.gdt.base = vcpu_va;
        s.gdt.limit = (kernel::GDT_ENTRIES * 8 - 1) as u16;
        s.idt.base = KernelRegion::page_va(kernel::IDT_PAGE);
        s.idt.limit = (kernel::IDT_VECTORS * 16 - 1) as u16;
        s.tr = kvm_segment {
            base: vcpu_va + kernel::TSS_OFFSET as u64,
            limit: 103,
            selector: kernel::TSS_SEL,
            type_: 11,
            present: 1,
            ..Default::default()
        };
        s.cr0 = 0x8005_0033;
        s.cr4 = 0x20 | 0x200 | 0x400;
        s.cr3 = KernelRegion::page_gpa(kernel::PML4_PAGE);
        s.efer = 0x1 | 0x100 | 0x400 | 0x800;
        fd.set_sregs(&s)
            .map_err(|e| KvmError::new("KVM_SET_SREGS", e))?;
        fd.set_sync_valid_reg(SyncReg::Register);
        Ok(Rewriter { fd, page })
    }

    /// Makes the edits of the entries at memory-file offsets `entries` visible
    /// to the shadow MMU, and makes it drop whatever it derived from the table
    /// pages at offsets `forget` (about to be freed).
    pub(crate) fn rewrite(
        &mut self,
        k: &KernelRegion,
        entries: &[u64],
        forget: &[u64],
    ) -> Result<(), KvmError> {
        // A 2-byte write across an entry boundary (offset 7) is "misaligned" to
        // KVM's write tracking, which then zaps every shadow page of the frame.
        let mut gpas: Vec<u64> = entries
            .iter()
            .map(|o| o + MEMFILE_GPA)
            .chain(forget.iter().map(|o| o + MEMFILE_GPA + FORGET_OFFSET))
            .collect();
        gpas.sort_unstable();
        gpas.dedup();
        for batch in gpas.chunks(BATCH) {
            let code = batch_code(batch);
            k.write_bytes(kernel::REWRITE_CODE_PAGE * 4096, &code);
            let rip = KernelRegion::page_va(kernel::REWRITE_CODE_PAGE);
            {
                let r = &mut self.fd.sync_regs_mut().regs;
                r.rip = rip;
                r.rsp = KernelRegion::page_va(self.page) + 4096;
                r.rflags = 2;
            }
            self.fd.set_sync_dirty_reg(SyncReg::Register);
            let exit = loop {
                match self.fd.run() {
                    Ok(VcpuExit::Hlt) => break None,
                    Ok(other) => break Some(format!("{other:?}")),
                    // A stray signal (the helper has no interrupter): go on.
                    Err(e) if e.errno() == libc::EINTR => {
                        self.fd.set_kvm_immediate_exit(0);
                        continue;
                    }
                    Err(e) => return Err(KvmError::new("KVM_RUN (rewriter)", e)),
                }
            };
            if let Some(what) = exit {
                tracing::warn!("kvm: page-table rewriter: unexpected exit {what}");
                return Err(KvmError::msg("kvm: page-table rewriter: unexpected exit"));
            }
            let end = self.fd.sync_regs().regs.rip;
            if end != rip + code.len() as u64 {
                return Err(KvmError::msg("kvm: page-table rewriter stopped early"));
            }
        }
        Ok(())
    }
}

/// `disp32` for an address in the top 2 GiB (sign-extended by the CPU).
fn disp32(va: u64) -> [u8; 4] {
    let d = va as i64;
    assert!(
        d >= i32::MIN as i64 && d < 0,
        "{va:#x} not in the top 2 GiB"
    );
    (d as i32).to_le_bytes()
}

/// The helper code for one batch of sorted entry addresses (guest-physical): per
/// table page, point a window slot at it (`mov rax, pte; mov [slot], rax;
/// invlpg [window]`); per entry `lock or qword [window + offset], 0`; `hlt`.
fn batch_code(batch: &[u64]) -> Vec<u8> {
    let mut code = Vec::with_capacity(4096);
    let window_pt = KernelRegion::page_va(kernel::WINDOW_PT_PAGE);
    let mut last = None;
    let mut slot = 0u64;
    for &gpa in batch {
        let page = gpa & !0xfff;
        if last != Some(page) {
            if last.is_some() {
                slot += 1;
            }
            last = Some(page);
            let pte = page | PTE_P | PTE_W | PTE_A | PTE_D | PTE_NX;
            code.extend_from_slice(&[0x48, 0xb8]); // mov rax, imm64
            code.extend_from_slice(&pte.to_le_bytes());
            code.extend_from_slice(&[0x48, 0x89, 0x04, 0x25]); // mov [disp32], rax
            code.extend_from_slice(&disp32(window_pt + slot * 8));
            code.extend_from_slice(&[0x0f, 0x01, 0x3c, 0x25]); // invlpg [disp32]
            code.extend_from_slice(&disp32(kernel::WINDOW_VA + slot * 4096));
        }
        let at = disp32(kernel::WINDOW_VA + slot * 4096 + (gpa & 0xfff));
        if gpa & 0xfff == FORGET_OFFSET {
            code.extend_from_slice(&[0x66, 0xf0, 0x83, 0x0c, 0x25]); // lock or word [disp32], imm8
        } else {
            code.extend_from_slice(&[0xf0, 0x48, 0x83, 0x0c, 0x25]); // lock or qword [disp32], imm8
        }
        code.extend_from_slice(&at);
        code.push(0);
    }
    code.push(0xf4);
    assert!(code.len() <= 4096 && slot < 512);
    code
}

/// After `Vm::probe_shadow_paging` saw the unmap of the page `va` stay visible to
/// `cpu` (the guest program at `retry` reads it and then makes a syscall): checks
/// that a rewrite of `pt`'s dirty entries makes the read fault. Returns the
/// rewriter when it does.
pub(crate) fn probe_rewriter(
    vm: &Vm,
    pt: &PageTables,
    cpu: &mut Vcpu,
    regs: &mut Regs,
    retry: u64,
    va: u64,
) -> Option<Rewriter> {
    let entry = pt.leaf_entry_offset(va)?;
    let mut attempt = || -> Result<Option<Rewriter>, KvmError> {
        let mut rw = Rewriter::new(vm)?;
        rw.rewrite(&vm.kernel, &[entry], &[])?;
        regs.rip = retry;
        Ok(match cpu.run(pt, regs)? {
            Exit::Exception {
                vector: 14, cr2, ..
            } if cr2 == va => Some(rw),
            other => {
                tracing::warn!("kvm: page-table rewrite did not take effect ({other:?})");
                None
            }
        })
    };
    attempt().unwrap_or_else(|e| {
        tracing::warn!("kvm: page-table rewriter unusable: {e}");
        None
    })
}

/// MSR_LSTAR on hosts where `syscall` from ring 3 stays in ring 3 (see
/// `probe_syscall_gp`): the first address past the 4-level canonical range,
/// which KVM takes when the guest CPUID has LA57.
pub const SYSCALL_GP_LSTAR: u64 = 0x8000_0000_0000;

/// On the PVM host this was written on, a ring-3 `syscall` of this (non-PVM)
/// guest is emulated without the privilege change: the guest continues at LSTAR
/// in ring 3. With LSTAR at the supervisor-only stub, the fetch there faults
/// (#PF) after the vCPU went back to native execution; with LSTAR non-canonical
/// the emulation raises #GP at once (frame: rip = LSTAR, cs = user, rcx/r11 as
/// `syscall` sets them), one trip between native and emulated execution less:
/// ~75 us per syscall round trip instead of ~100. Switches LSTAR to
/// [`SYSCALL_GP_LSTAR`] when a test syscall exits that way; elsewhere (KVM
/// refuses the value, or a real ring change makes the fetch fault in ring 0)
/// keeps the stub.
pub(crate) fn probe_syscall_gp(vm: &std::sync::Arc<Vm>) -> bool {
    let attempt = || -> Result<bool, KvmError> {
        let pt = PageTables::new(vm.mf.clone())?;
        let page = |e| KvmError {
            op: "kvm probe page",
            errno: e,
        };
        let code = vm.mf.allocate(4096).map_err(|_| page(libc::ENOMEM))?;
        let stack = vm.mf.allocate(4096).map_err(|_| page(libc::ENOMEM))?;
        // mov eax, 39; syscall
        vm.mf.write_at(code, &[0xb8, 39, 0, 0, 0, 0x0f, 0x05]);
        let result = (|| {
            pt.map(0x1000, 4096, code, libc::PROT_READ | libc::PROT_EXEC)?;
            pt.map(0x2000, 4096, stack, libc::PROT_READ | libc::PROT_WRITE)?;
            let mut cpu = Vcpu::new(vm)?;
            let mut regs = crate::zeroed_regs();
            regs.rip = 0x1000;
            regs.rsp = 0x3000;
            regs.eflags = 0x202;
            let exit = cpu.run(&pt, &mut regs)?;
            Ok::<_, KvmError>(
                exit == Exit::Syscall
                    && regs.rip == 0x1007
                    && regs.rcx == 0x1007
                    && regs.orig_rax == 39
                    && regs.rsp == 0x3000,
            )
        })();
        vm.forget_tables(&pt)?;
        drop(pt);
        vm.mf.release(code, 4096);
        vm.mf.release(stack, 4096);
        result
    };
    vm.set_lstar(SYSCALL_GP_LSTAR);
    let ok = attempt().unwrap_or(false);
    if !ok {
        vm.set_lstar(kernel::SYSCALL_STUB);
    }
    ok
}

#[cfg(test)]
#[path = "pvm_tests.rs"]
mod tests;
