//! One vCPU: runs workload code in ring 3 of a page table and decodes the exit.
//!
//! Registers travel through `kvm_run`'s sync regs: after each exit KVM has filled
//! them (KVM_SYNC_X86_REGS is valid), and before each entry the runner writes the
//! kernel-mode registers it wants (marked dirty), so a syscall round trip is one
//! KVM_RUN ioctl. The user rip/cs/rflags/rsp/ss and rax go through the vCPU's
//! ring-0 stack (see [`super::kernel`]).

use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Once};

use kvm_bindings::{kvm_msr_entry, kvm_regs, kvm_segment, kvm_xcrs, kvm_xsave, Msrs};
use kvm_ioctls::{SyncReg, VcpuExit, VcpuFd};

use super::kernel::{self, KernelRegion};
use super::pagetable::{PageTables, USER_LIMIT};
use super::{KvmError, Vm};
use crate::Regs;

/// Why `run` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `syscall`: `regs.orig_rax` (and `regs.rax`) hold the number, rip points past
    /// the instruction, rcx/r11 hold rip/rflags as the instruction left them.
    Syscall,
    /// A CPU exception in ring 3; `regs` hold the state at the faulting instruction.
    Exception { vector: u8, error: u64, cr2: u64 },
    /// The interrupter fired (before or during the run).
    Interrupted,
}

/// The host signal that kicks a vCPU thread out of KVM_RUN (its handler does
/// nothing; the point is the EINTR).
pub const KICK_SIGNAL: i32 = libc::SIGUSR2;

extern "C" fn kick_handler(_: i32) {}

fn install_kick_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: a zeroed sigaction with a handler that does nothing (async-signal
        // safe) and no SA_RESTART, so KVM_RUN returns EINTR.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = kick_handler as extern "C" fn(i32) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(KICK_SIGNAL, &sa, std::ptr::null_mut());
        }
    });
}

/// Makes a vCPU's current or next `run` return [`Exit::Interrupted`].
pub struct VcpuInterrupter {
    pending: AtomicBool,
    /// The host thread running the vCPU (0 before the first run).
    tid: AtomicI32,
    /// `kvm_run.immediate_exit`, while the vCPU exists.
    immediate_exit: Mutex<Option<*const AtomicU8>>,
    /// The CR3 the vCPU is (about to be) in the guest with; 0 outside a run.
    /// Set before the run reads the table's generation, so that an unmap
    /// either is seen by the run or sees the run (see [`Vm::shoot_down`]).
    pub(crate) in_guest: std::sync::atomic::AtomicU64,
}

// SAFETY: the pointer is into the vCPU's kvm_run mapping, only used under the
// mutex, and cleared (under it) before the vCPU and its mapping go away.
unsafe impl Send for VcpuInterrupter {}
// SAFETY: as above.
unsafe impl Sync for VcpuInterrupter {}

impl Default for VcpuInterrupter {
    fn default() -> Self {
        Self::new()
    }
}

impl VcpuInterrupter {
    /// An interrupter attached to no vCPU yet: an interrupt stays pending.
    pub fn new() -> VcpuInterrupter {
        VcpuInterrupter {
            pending: AtomicBool::new(false),
            tid: AtomicI32::new(0),
            immediate_exit: Mutex::new(None),
            in_guest: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn interrupt(&self) {
        self.pending.store(true, Ordering::SeqCst);
        let g = self.immediate_exit.lock().unwrap();
        if let Some(p) = *g {
            // SAFETY: see the Send impl: the mapping is alive while the pointer is set.
            unsafe { (*p).store(1, Ordering::SeqCst) };
            let tid = self.tid.load(Ordering::SeqCst);
            if tid > 0 {
                // SAFETY: plain syscall; a thread that has exited makes it fail (ESRCH).
                unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, KICK_SIGNAL) };
            }
        }
    }
}

impl crate::Interrupter for VcpuInterrupter {
    fn interrupt(&self) {
        VcpuInterrupter::interrupt(self)
    }
}

pub struct Vcpu {
    vm: Arc<Vm>,
    fd: ManuallyDrop<VcpuFd>,
    slot: usize,
    page: usize,
    /// The CR3 the vCPU last entered with.
    loaded_cr3: u64,
    /// For each table this vCPU ran: the generation its TLB is in sync with.
    seen: HashMap<u64, u64>,
    /// What `prepare_tlb` replaced in `seen`, for `forget_entry`.
    undo: Option<(u64, Option<u64>)>,
    /// An interrupt left the vCPU in ring 3: the next run first puts it back in
    /// ring 0 (the entry stubs are supervisor-only).
    in_user: bool,
    fs_base: u64,
    gs_base: u64,
    interrupter: Arc<VcpuInterrupter>,
}

const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_CSTAR: u32 = 0xc000_0083;
const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
/// TF | DF | IF | IOPL | NT | AC, as Linux masks on `syscall`.
const SYSCALL_MASK: u64 = 0x4_7700;
/// Flags a workload may set: CF PF AF ZF SF TF DF OF AC ID.
const USER_FLAGS: u64 = 0x24_4dd5;

pub(crate) fn seg(selector: u16, code: bool, dpl: u8) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: if code { 11 } else { 3 },
        present: 1,
        dpl,
        db: if code { 0 } else { 1 },
        s: 1,
        l: if code { 1 } else { 0 },
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

impl Vcpu {
    /// Creates a vCPU in long mode, ring 0, parked on the kernel-only page table.
    pub fn new(vm: &Arc<Vm>) -> Result<Vcpu, KvmError> {
        install_kick_handler();
        // KVM never destroys a vCPU before its VM: idle ones are pooled.
        let (slot, fd, fresh) = match vm.take_idle() {
            Some((slot, fd)) => (slot, fd, false),
            None => {
                let slot = vm.take_slot()?;
                let fd = vm
                    .fd
                    .create_vcpu(slot as u64)
                    .map_err(|e| KvmError::new("KVM_CREATE_VCPU", e))?;
                (slot, fd, true)
            }
        };
        let page = vm.kernel.init_vcpu_page(slot);
        let mut v = Vcpu {
            vm: vm.clone(),
            fd: ManuallyDrop::new(fd),
            slot,
            page,
            loaded_cr3: 0,
            seen: HashMap::new(),
            undo: None,
            in_user: false,
            fs_base: 0,
            gs_base: 0,
            interrupter: Arc::new(VcpuInterrupter::new()),
        };
        v.setup(fresh)?;
        if fresh {
            if vm.clean_fpu().is_none() {
                vm.set_clean_fpu(v.xsave()?);
            }
        } else if let Some(x) = vm.clean_fpu() {
            // A pooled vCPU still holds the registers of its last task.
            v.set_xsave(x)?;
        }
        let run = v.fd.get_kvm_run();
        let p = &mut run.immediate_exit as *mut u8 as *const AtomicU8;
        *v.interrupter.immediate_exit.lock().unwrap() = Some(p);
        Ok(v)
    }

    /// Makes `intr` (a context's) the one that interrupts this vCPU; the
    /// previous one no longer reaches it.
    pub(crate) fn attach(&mut self, intr: Arc<VcpuInterrupter>) {
        if Arc::ptr_eq(&intr, &self.interrupter) {
            return;
        }
        *self.interrupter.immediate_exit.lock().unwrap() = None;
        let run = self.fd.get_kvm_run();
        let p = &mut run.immediate_exit as *mut u8 as *const AtomicU8;
        *intr.immediate_exit.lock().unwrap() = Some(p);
        self.interrupter = intr;
    }

    /// Puts the vCPU in the entry state. CPUID can only be set before the first
    /// KVM_RUN, so a pooled vCPU keeps what it had.
    fn setup(&mut self, fresh: bool) -> Result<(), KvmError> {
        let k = &self.vm.kernel;
        if fresh {
            self.fd
                .set_cpuid2(&self.vm.cpuid)
                .map_err(|e| KvmError::new("KVM_SET_CPUID2", e))?;
        }
        let mut s = self
            .fd
            .get_sregs()
            .map_err(|e| KvmError::new("KVM_GET_SREGS", e))?;
        s.cs = seg(kernel::KERNEL_CS, true, 0);
        s.ss = seg(kernel::KERNEL_SS, false, 0);
        // Data segments: null selectors, DPL 3 so `iretq` to ring 3 keeps them.
        let mut data = seg(0, false, 3);
        s.ds = data;
        s.es = data;
        data.base = self.fs_base;
        s.fs = data;
        data.base = self.gs_base;
        s.gs = data;
        let vcpu_va = KernelRegion::page_va(self.page);
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
            dpl: 0,
            db: 0,
            s: 0,
            l: 0,
            g: 0,
            avl: 0,
            unusable: 0,
            padding: 0,
        };
        // PE MP ET NE WP AM PG
        s.cr0 = 0x8005_0033;
        // PAE OSFXSR OSXMMEXCPT (+ OSXSAVE)
        s.cr4 = 0x20 | 0x200 | 0x400 | k.cr4_extra;
        s.cr3 = KernelRegion::page_gpa(kernel::PML4_PAGE);
        // SCE LME LMA NXE
        s.efer = 0x1 | 0x100 | 0x400 | 0x800;
        self.fd
            .set_sregs(&s)
            .map_err(|e| KvmError::new("KVM_SET_SREGS", e))?;
        if k.cr4_extra != 0 {
            let mut x = kvm_xcrs {
                nr_xcrs: 1,
                ..Default::default()
            };
            x.xcrs[0].xcr = 0;
            x.xcrs[0].value = k.xcr0;
            self.fd
                .set_xcrs(&x)
                .map_err(|e| KvmError::new("KVM_SET_XCRS", e))?;
        }
        let msr = |index, data| kvm_msr_entry {
            index,
            data,
            ..Default::default()
        };
        let msrs = Msrs::from_entries(&[
            msr(
                MSR_STAR,
                (kernel::USER_CS32 as u64) << 48 | (kernel::KERNEL_CS as u64) << 32,
            ),
            msr(MSR_LSTAR, self.vm.lstar()),
            msr(MSR_CSTAR, kernel::CSTAR_STUB),
            msr(MSR_SYSCALL_MASK, SYSCALL_MASK),
        ])
        .map_err(|_| KvmError::msg("MSR list"))?;
        let n = self
            .fd
            .set_msrs(&msrs)
            .map_err(|e| KvmError::new("KVM_SET_MSRS", e))?;
        if n != 4 {
            return Err(KvmError::msg("KVM_SET_MSRS: not all syscall MSRs taken"));
        }
        // A fresh vCPU's FPU: x87 control word and MXCSR as Linux starts a process.
        let mut fpu = self
            .fd
            .get_fpu()
            .map_err(|e| KvmError::new("KVM_GET_FPU", e))?;
        fpu.fcw = 0x37f;
        fpu.mxcsr = 0x1f80;
        self.fd
            .set_fpu(&fpu)
            .map_err(|e| KvmError::new("KVM_SET_FPU", e))?;
        self.fd.set_sync_valid_reg(SyncReg::Register);
        Ok(())
    }

    /// The FPU/vector state (the XSAVE area's first 4 KiB: every component this
    /// VM enables fits, see `KernelRegion::xcr0`).
    pub fn xsave(&self) -> Result<kvm_xsave, KvmError> {
        self.fd
            .get_xsave()
            .map_err(|e| KvmError::new("KVM_GET_XSAVE", e))
    }

    pub fn set_xsave(&self, x: &kvm_xsave) -> Result<(), KvmError> {
        // SAFETY: XCR0 is limited to x87/SSE/AVX/AVX-512 (no dynamically enabled
        // component such as AMX), so the 4 KiB `kvm_xsave` covers the whole area
        // KVM reads.
        unsafe { self.fd.set_xsave(x) }.map_err(|e| KvmError::new("KVM_SET_XSAVE", e))
    }

    pub fn interrupter(&self) -> Arc<VcpuInterrupter> {
        self.interrupter.clone()
    }

    /// Sets FS/GS bases when they differ from what the vCPU has (an ioctl pair,
    /// only when the task changed them).
    fn sync_bases(&mut self, regs: &Regs) -> Result<(), KvmError> {
        if regs.fs_base == self.fs_base && regs.gs_base == self.gs_base {
            return Ok(());
        }
        let mut s = self
            .fd
            .get_sregs()
            .map_err(|e| KvmError::new("KVM_GET_SREGS", e))?;
        s.fs.base = regs.fs_base;
        s.gs.base = regs.gs_base;
        self.fd
            .set_sregs(&s)
            .map_err(|e| KvmError::new("KVM_SET_SREGS", e))?;
        self.fs_base = regs.fs_base;
        self.gs_base = regs.gs_base;
        Ok(())
    }

    fn stack_top(&self) -> usize {
        self.page * 4096 + 4096
    }

    /// Runs `regs` in ring 3 of `space` until a syscall, an exception or an
    /// interrupt; `regs` hold the workload's registers on return.
    pub fn run(&mut self, space: &PageTables, regs: &mut Regs) -> Result<Exit, KvmError> {
        let tid = gettid();
        if self.interrupter.tid.load(Ordering::Relaxed) != tid {
            self.interrupter.tid.store(tid, Ordering::SeqCst);
        }
        // Clear a stale immediate_exit before looking at `pending` (see interrupt()).
        self.fd.set_kvm_immediate_exit(0);
        if self.interrupter.pending.swap(false, Ordering::SeqCst) {
            return Ok(Exit::Interrupted);
        }
        // A non-canonical rip (from sigreturn, or a tracer's SETREGS) is the
        // #GP of the return to user mode on Linux: SIGSEGV, SI_KERNEL, with
        // that rip in the signal frame. It must not reach the VM: where LSTAR
        // is non-canonical (`pvm::SYSCALL_GP_LSTAR`), the #GP at that very
        // address would pass for a `syscall` (tests/hostile/cpu_hostile.c,
        // "sigreturn to noncanonical rip (low)").
        if (USER_LIMIT..0xffff_8000_0000_0000).contains(&regs.rip) {
            return Ok(Exit::Exception {
                vector: 13,
                error: 0,
                cr2: 0,
            });
        }
        // The entry stub is fetched through the CR3 the vCPU still holds,
        // which may be a table freed since (the address space this vCPU ran
        // last exec'd or exited): switching tables loads the new CR3 first.
        if self.in_user || self.loaded_cr3 != space.cr3() {
            let mut s = self
                .fd
                .get_sregs()
                .map_err(|e| KvmError::new("KVM_GET_SREGS", e))?;
            s.cs = seg(kernel::KERNEL_CS, true, 0);
            s.ss = seg(kernel::KERNEL_SS, false, 0);
            s.cr3 = space.cr3();
            self.fd
                .set_sregs(&s)
                .map_err(|e| KvmError::new("KVM_SET_SREGS", e))?;
            self.in_user = false;
        }
        self.sync_bases(regs)?;
        let k = &self.vm.kernel;
        let top = self.stack_top();
        let frame = top - 48;
        let rflags = (regs.eflags & USER_FLAGS) | 0x202;
        for (i, v) in [
            regs.rax,
            regs.rip,
            kernel::USER_CS as u64,
            rflags,
            regs.rsp,
            kernel::USER_SS as u64,
        ]
        .into_iter()
        .enumerate()
        {
            k.write_u64(frame + i * 8, v);
        }
        self.interrupter
            .in_guest
            .store(space.cr3(), Ordering::SeqCst);
        let r = self.vm.sync_translations(space);
        if r.is_err() {
            self.interrupter.in_guest.store(0, Ordering::SeqCst);
        }
        r?;
        let entry = self.prepare_tlb(space);
        {
            let r = &mut self.fd.sync_regs_mut().regs;
            *r = kvm_regs {
                rax: space.cr3(),
                rbx: regs.rbx,
                rcx: regs.rcx,
                rdx: regs.rdx,
                rsi: regs.rsi,
                rdi: regs.rdi,
                rsp: KernelRegion::page_va(self.page) + 4096 - 48,
                rbp: regs.rbp,
                r8: regs.r8,
                r9: regs.r9,
                r10: regs.r10,
                r11: regs.r11,
                r12: regs.r12,
                r13: regs.r13,
                r14: regs.r14,
                r15: regs.r15,
                rip: entry,
                rflags: 0x2,
            };
        }
        self.fd.set_sync_dirty_reg(SyncReg::Register);
        self.enter(space, regs)
    }

    /// Chooses the entry stub: plain `iretq` when this vCPU last ran `space` and
    /// nothing was unmapped or narrowed since; otherwise a CR3 load plus `invlpg`
    /// of the pages changed since this vCPU last ran it (written to its flush
    /// list). Records what the stub will have flushed, undone by `forget_entry`
    /// if the guest never ran it.
    fn prepare_tlb(&mut self, space: &PageTables) -> u64 {
        let cr3 = space.cr3();
        let gen = space.generation();
        let known = self.seen.get(&cr3).copied();
        self.undo = Some((cr3, known));
        // On shadow-paging hosts the `sync_translations` before this made KVM
        // drop and flush the edited translations on every vCPU.
        if self.loaded_cr3 == cr3 && (known == Some(gen) || self.vm.shadow_paging()) {
            self.seen.insert(cr3, gen);
            return kernel::IRET_STUB;
        }
        let list = if known == Some(gen) {
            Some(Vec::new())
        } else {
            space.changes_since(known.unwrap_or(0), kernel::FLUSH_MAX)
        };
        let list = list.unwrap_or_else(|| {
            // Too many pages: rely on the CR3 load alone (a full flush on
            // hardware paging; shadow-paging hosts may keep stale entries).
            static WARNED: AtomicBool = AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!("kvm: TLB flush list overflow; relying on a CR3 load");
            }
            Vec::new()
        });
        let k = &self.vm.kernel;
        let base = self.page * 4096;
        for (i, va) in list.iter().enumerate() {
            k.write_u64(base + kernel::FLUSH_LIST_OFFSET + i * 8, *va);
        }
        k.write_u64(base + kernel::FLUSH_COUNT_OFFSET, list.len() as u64);
        self.seen.insert(cr3, gen);
        self.loaded_cr3 = cr3;
        kernel::FLUSH_STUB
    }

    /// The guest did not run the entry stub `prepare_tlb` chose.
    fn forget_entry(&mut self) {
        if let Some((cr3, known)) = self.undo.take() {
            match known {
                Some(g) => self.seen.insert(cr3, g),
                None => self.seen.remove(&cr3),
            };
        }
        self.loaded_cr3 = 0;
    }

    /// KVM_RUN with the prepared state; decodes the exit into `regs`.
    fn enter(&mut self, space: &PageTables, regs: &mut Regs) -> Result<Exit, KvmError> {
        let ran = self.fd.run();
        self.interrupter.in_guest.store(0, Ordering::SeqCst);
        let exit = match ran {
            Ok(VcpuExit::Hlt) => None,
            Ok(other) => Some(format!("{other:?}")),
            Err(e) if e.errno() == libc::EINTR => {
                self.fd.set_kvm_immediate_exit(0);
                self.interrupter.pending.store(false, Ordering::SeqCst);
                return self.after_interrupt(space, regs);
            }
            Err(e) => return Err(KvmError::new("KVM_RUN", e)),
        };
        if let Some(what) = exit {
            let r = self.fd.get_regs().ok();
            let s = self.fd.get_sregs().ok();
            tracing::warn!(
                "kvm: unexpected exit {what}: rip {:#x} rsp {:#x} cs {:#x} cr3 {:#x} cr2 {:#x} (loaded cr3 {:#x})",
                r.map_or(0, |r| r.rip),
                r.map_or(0, |r| r.rsp),
                s.map_or(0, |s| s.cs.selector),
                s.map_or(0, |s| s.cr3),
                s.map_or(0, |s| s.cr2),
                self.loaded_cr3
            );
            self.loaded_cr3 = 0;
            return Err(KvmError::msg("KVM_RUN: unexpected exit"));
        }
        let k = &self.vm.kernel;
        let r = self.fd.sync_regs().regs;
        copy_gprs(&r, regs);
        if r.rip == kernel::SYSCALL_STUB + 1 {
            regs.rip = r.rcx;
            regs.eflags = r.r11;
            regs.rsp = r.rsp;
            regs.orig_rax = r.rax;
            regs.rax = r.rax;
            regs.cs = kernel::USER_CS as u64;
            regs.ss = kernel::USER_SS as u64;
            return Ok(Exit::Syscall);
        }
        if r.rip == kernel::EXCEPTION_HLT + 1 {
            // [cr2, rax, vector, error, rip, cs, rflags, rsp, ss] at the guest rsp.
            let off = r.rsp.wrapping_sub(KernelRegion::page_va(self.page)) as usize;
            if off != 4096 - 72 {
                self.loaded_cr3 = 0;
                return Err(KvmError::msg("kvm: exception in the guest kernel"));
            }
            let at = |i: usize| k.read_u64(self.page * 4096 + off + i * 8);
            let (cr2, rax, vector, error) = (at(0), at(1), at(2), at(3));
            regs.rax = rax;
            regs.rip = at(4);
            regs.cs = at(5);
            regs.eflags = at(6);
            regs.rsp = at(7);
            regs.ss = at(8);
            regs.orig_rax = u64::MAX;
            let lstar = self.vm.lstar();
            let via_gp = vector == 13
                && lstar == super::pvm::SYSCALL_GP_LSTAR
                && regs.rip == lstar
                && regs.cs == kernel::USER_CS as u64;
            let mut insn = [0u8; 2];
            let via_pf = vector == 14
                && lstar == kernel::SYSCALL_STUB
                && cr2 == kernel::SYSCALL_STUB
                && regs.rip == cr2
                && error & 4 != 0
                && space.fetch_user(regs.rcx.wrapping_sub(2), &mut insn)
                && insn == [0x0f, 0x05];
            if via_gp || via_pf {
                // With LSTAR non-canonical there, it is the #GP of that address
                // instead (cheaper, see `pvm::probe_syscall_gp`; a jump there
                // faults at the jump, so only `syscall` gets this frame).
                // `syscall` that reached LSTAR still in ring 3: seen on PVM hosts,
                // which emulate it for a non-PVM guest without loading CS from
                // STAR (and apply FMASK only sometimes). rcx/r11 are as the
                // instruction set them, so the two bytes before rcx are a
                // `syscall` the workload can execute. A jump or call to LSTAR
                // (the stub's address, whichever LSTAR the VM uses) is a page
                // fault as on Linux (SIGSEGV there), unless LSTAR is that stub
                // and the workload also points rcx just past a real `syscall`
                // instruction: then it is indistinguishable from having jumped
                // to that instruction, and is served as that syscall
                // (tests/hostile/cpu_hostile.c, "jump lstar (syscall-like rcx)").
                regs.rip = regs.rcx;
                regs.eflags = regs.r11;
                regs.orig_rax = regs.rax;
                return Ok(Exit::Syscall);
            }
            return Ok(Exit::Exception {
                vector: vector as u8,
                error,
                // CR2 is only the fault address for #PF.
                cr2: if vector == 14 { cr2 } else { 0 },
            });
        }
        self.loaded_cr3 = 0;
        Err(KvmError::msg("kvm: hlt at an unexpected guest address"))
    }

    /// Measures `n` bare exits: ring-0 `hlt` with nothing else (no ring change,
    /// no exception); returns microseconds per exit.
    #[cfg(test)]
    pub(crate) fn bench_bare_exit(&mut self, n: u32) -> f64 {
        let start = std::time::Instant::now();
        for _ in 0..n {
            let r = &mut self.fd.sync_regs_mut().regs;
            r.rip = kernel::SYSCALL_STUB;
            r.rflags = 2;
            self.fd.set_sync_dirty_reg(SyncReg::Register);
            assert!(matches!(self.fd.run(), Ok(VcpuExit::Hlt)));
        }
        self.loaded_cr3 = 0;
        start.elapsed().as_secs_f64() * 1e6 / n as f64
    }

    /// After an EINTR from KVM_RUN: if the guest got into ring 3, take its
    /// registers; if it never left the host's last exit point or the entry stub,
    /// `regs` are still right; if it stopped inside a stub, finish the trip to the
    /// next exit and leave the interrupt pending for the next run.
    fn after_interrupt(&mut self, space: &PageTables, regs: &mut Regs) -> Result<Exit, KvmError> {
        let r = self.fd.sync_regs().regs;
        let parked = [
            kernel::IRET_STUB,
            kernel::FLUSH_STUB,
            kernel::SYSCALL_STUB + 1,
            kernel::EXCEPTION_HLT + 1,
        ];
        if parked.contains(&r.rip) {
            // Nothing ran (or only got back to where the last exit was); the next
            // run rewrites the entry state. KVM applied our registers only if it
            // ran, so treat the flush as not done.
            self.forget_entry();
            return Ok(Exit::Interrupted);
        }
        let s = self
            .fd
            .get_sregs()
            .map_err(|e| KvmError::new("KVM_GET_SREGS", e))?;
        // Also finish the trip when stopped in ring 3 with an exception queued
        // (it would hit the entry stub), or between a `syscall` emulated in ring
        // 3 and its fault at LSTAR (PVM hosts, see `pvm::probe_syscall_gp`).
        let queued = s.cs.dpl == 3
            && (r.rip == self.vm.lstar()
                || self
                    .fd
                    .get_vcpu_events()
                    .map(|e| e.exception.injected != 0 || e.exception.pending != 0)
                    .unwrap_or(false));
        if s.cs.dpl != 3 || queued {
            self.interrupter.pending.store(true, Ordering::SeqCst);
            return self.enter(space, regs);
        }
        copy_gprs(&r, regs);
        regs.rax = r.rax;
        regs.rip = r.rip;
        regs.eflags = r.rflags;
        regs.rsp = r.rsp;
        self.in_user = true;
        Ok(Exit::Interrupted)
    }
}

fn copy_gprs(r: &kvm_regs, regs: &mut Regs) {
    regs.rbx = r.rbx;
    regs.rcx = r.rcx;
    regs.rdx = r.rdx;
    regs.rsi = r.rsi;
    regs.rdi = r.rdi;
    regs.rbp = r.rbp;
    regs.r8 = r.r8;
    regs.r9 = r.r9;
    regs.r10 = r.r10;
    regs.r11 = r.r11;
    regs.r12 = r.r12;
    regs.r13 = r.r13;
    regs.r14 = r.r14;
    regs.r15 = r.r15;
}

fn gettid() -> i32 {
    // SAFETY: plain syscall.
    unsafe { libc::gettid() }
}

impl Drop for Vcpu {
    fn drop(&mut self) {
        *self.interrupter.immediate_exit.lock().unwrap() = None;
        // SAFETY: `fd` is not used after this (we are being dropped).
        let fd = unsafe { ManuallyDrop::take(&mut self.fd) };
        self.vm.put_idle(self.slot, fd);
    }
}
