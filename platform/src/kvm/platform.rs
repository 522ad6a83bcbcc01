//! [`KvmPlatform`]: the [`Platform`] / [`AddressSpace`] / [`Context`] traits over a
//! [`Vm`], in the same shape as the ptrace platform (`--platform=kvm`).
//!
//! One VM per platform (sandbox); an address space is a [`PageTables`]; a context
//! (one per task, on its host thread) owns a [`Vcpu`], created lazily on the first
//! `switch` and returned to the VM's pool when the context is dropped.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kvm_bindings::kvm_xsave;

use super::pagetable::USER_LIMIT;
use super::vcpu::VcpuInterrupter;
use super::{Exit, PageTables, Vcpu, Vm};
use crate::{
    AddressSpace, Context, Event, Interrupter, MemoryFile, Platform, PlatformError, Prot, Regs,
};

/// `--platform=kvm`.
pub struct KvmPlatform {
    vm: Arc<Vm>,
}

impl KvmPlatform {
    /// Opens /dev/kvm and creates the VM; the error reads well on one line
    /// (e.g. "open /dev/kvm: No such file or directory").
    pub fn new(mf: Arc<MemoryFile>) -> Result<KvmPlatform, PlatformError> {
        Ok(KvmPlatform { vm: Vm::new(mf)? })
    }

    pub fn vm(&self) -> &Arc<Vm> {
        &self.vm
    }
}

impl Platform for KvmPlatform {
    fn name(&self) -> &'static str {
        "kvm"
    }

    fn memory_file(&self) -> &Arc<MemoryFile> {
        self.vm.memory_file()
    }

    fn max_user_address(&self) -> u64 {
        // Linux's TASK_SIZE: the lower half less its last page.
        USER_LIMIT - 4096
    }

    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError> {
        Ok(Arc::new(KvmAddressSpace {
            pt: PageTables::new(self.vm.memory_file().clone())?,
            vm: self.vm.clone(),
            cpu_ns: AtomicU64::new(0),
            thread_ns: Mutex::new(HashMap::new()),
        }))
    }

    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError> {
        Ok(Box::new(KvmContext::new(self.vm.clone())))
    }
}

/// One workload address space: its page tables. Threads need nothing per thread
/// (their vCPUs belong to their contexts).
pub struct KvmAddressSpace {
    pt: PageTables,
    vm: Arc<Vm>,
    /// Time the workload ran here (in KVM_RUN), all threads together, and per
    /// host thread (the ptrace platform counts the same way: time between
    /// resume and stop).
    cpu_ns: AtomicU64,
    thread_ns: Mutex<HashMap<i32, u64>>,
}

impl KvmAddressSpace {
    fn account(&self, ns: u64) {
        self.cpu_ns.fetch_add(ns, Ordering::Relaxed);
        *self.thread_ns.lock().unwrap().entry(gettid()).or_default() += ns;
    }
}

fn gettid() -> i32 {
    // SAFETY: gettid cannot fail.
    unsafe { libc::gettid() }
}

impl KvmAddressSpace {
    pub fn page_tables(&self) -> &PageTables {
        &self.pt
    }
}

impl Drop for KvmAddressSpace {
    fn drop(&mut self) {
        // Before the table pages go back to the memory file (see forget_tables).
        if let Err(e) = self.vm.forget_tables(&self.pt) {
            tracing::warn!("kvm: dropping an address space: {e}");
        }
    }
}

impl AddressSpace for KvmAddressSpace {
    // After a change that removes or narrows translations, a shadow-paging host
    // makes KVM drop them at once (the rewriter, or a zap: see `pvm`), and every
    // vCPU in the guest with this table is kicked out before this returns
    // (`Vm::shoot_down`; it re-enters with a TLB flush), so no thread keeps
    // using them (the memory may be reused as soon as this returns).
    fn map(&self, va: u64, len: u64, offset: u64, prot: Prot) -> Result<(), PlatformError> {
        self.pt.map(va, len, offset, prot)?;
        Ok(self.vm.sync_translations(&self.pt)?)
    }

    fn unmap(&self, va: u64, len: u64) -> Result<(), PlatformError> {
        self.pt.unmap(va, len)?;
        self.vm.sync_translations(&self.pt)?;
        self.vm.shoot_down(&self.pt);
        Ok(())
    }

    fn protect(&self, va: u64, len: u64, prot: Prot) -> Result<(), PlatformError> {
        self.pt.protect(va, len, prot)?;
        self.vm.sync_translations(&self.pt)?;
        self.vm.shoot_down(&self.pt);
        Ok(())
    }

    fn new_thread(&self) -> Result<u64, PlatformError> {
        Ok(0)
    }

    fn attach_thread(&self, _token: u64) -> Result<(), PlatformError> {
        Ok(())
    }

    fn release_thread(&self) {
        self.thread_ns.lock().unwrap().remove(&gettid());
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn cpu_time(&self) -> Option<Duration> {
        Some(Duration::from_nanos(self.cpu_ns.load(Ordering::Relaxed)))
    }

    fn thread_cpu_time(&self, host_tid: i32) -> Option<Duration> {
        let ns = *self.thread_ns.lock().unwrap().get(&host_tid)?;
        Some(Duration::from_nanos(ns))
    }
}

fn downcast(space: &dyn AddressSpace) -> Result<&KvmAddressSpace, PlatformError> {
    space
        .as_any()
        .downcast_ref::<KvmAddressSpace>()
        .ok_or(PlatformError::Host {
            op: "not a kvm address space",
            errno: libc::EINVAL,
        })
}

/// What a context holds between runs: its vCPU, or (after another context
/// took the vCPU) the FPU state to give the next one.
pub(crate) struct Holder {
    vcpu: Option<Vcpu>,
    saved_fpu: Option<Box<kvm_xsave>>,
}

/// One task's execution context. It keeps a vCPU from its first run to its
/// end, while the VM has vCPUs to spare; past `Vm::set_max_vcpus` (the
/// kernel region's [`super::kernel::MAX_VCPUS`] by default), a context
/// without one takes the vCPU of a context that is not running, whose FPU
/// state is saved for it (its next run takes a vCPU back the same way).
pub struct KvmContext {
    vm: Arc<Vm>,
    holder: Arc<Mutex<Holder>>,
    intr: Arc<VcpuInterrupter>,
}

impl KvmContext {
    fn new(vm: Arc<Vm>) -> KvmContext {
        let holder = Arc::new(Mutex::new(Holder {
            vcpu: None,
            saved_fpu: None,
        }));
        {
            let mut hs = vm.holders.lock().unwrap();
            hs.retain(|w| w.strong_count() > 0);
            hs.push(Arc::downgrade(&holder));
        }
        let intr = Arc::new(VcpuInterrupter::new());
        vm.register_running(&intr);
        KvmContext { vm, holder, intr }
    }

    /// Gives `h` a vCPU (attached to this context's interrupter, holding its
    /// FPU state) if it has none.
    fn ensure_vcpu(&self, h: &mut Holder) -> Result<(), PlatformError> {
        if h.vcpu.is_some() {
            return Ok(());
        }
        let mut v = self.acquire()?;
        v.attach(self.intr.clone());
        match h.saved_fpu.take() {
            Some(x) => v.set_xsave(&x)?,
            None => {
                if let Some(x) = self.vm.clean_fpu() {
                    v.set_xsave(x)?;
                }
            }
        }
        h.vcpu = Some(v);
        Ok(())
    }

    /// A vCPU: a new or pooled one while the VM has room, else one taken from
    /// a context that is not running.
    fn acquire(&self) -> Result<Vcpu, PlatformError> {
        let mut spins = 0u32;
        loop {
            if self.vm.has_room() {
                match Vcpu::new(&self.vm) {
                    Ok(v) => return Ok(v),
                    Err(e) if e.op == super::TOO_MANY_VCPUS => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if let Some(v) = self.steal()? {
                return Ok(v);
            }
            // Every vCPU is in a run right now: one ends soon.
            spins += 1;
            if spins.is_multiple_of(64) {
                tracing::debug!("kvm: waiting for a vCPU ({spins} tries)");
            }
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }

    fn steal(&self) -> Result<Option<Vcpu>, PlatformError> {
        let holders: Vec<_> = self.vm.holders.lock().unwrap().clone();
        for w in holders {
            let Some(other) = w.upgrade() else { continue };
            if Arc::ptr_eq(&other, &self.holder) {
                continue;
            }
            // A running context holds its lock: never wait for one.
            let Ok(mut o) = other.try_lock() else {
                continue;
            };
            let Some(v) = o.vcpu.take() else { continue };
            match v.xsave() {
                Ok(x) => o.saved_fpu = Some(Box::new(x)),
                Err(e) => {
                    o.vcpu = Some(v);
                    return Err(e.into());
                }
            }
            return Ok(Some(v));
        }
        Ok(None)
    }
}

/// The signal Linux sends for CPU exception `vector`: (signo, si_code, si_addr).
pub fn exception_signal(vector: u8, error: u64, cr2: u64, rip: u64) -> (i32, i32, u64) {
    const SI_KERNEL: i32 = 0x80;
    match vector {
        0 => (libc::SIGFPE, 1 /* FPE_INTDIV */, rip),
        1 => (libc::SIGTRAP, 2 /* TRAP_TRACE */, rip),
        3 => (libc::SIGTRAP, SI_KERNEL, 0),
        // 4 (#OF, `int $4`): SIGSEGV as Linux (do_error_trap), below.
        5 => (libc::SIGSEGV, SI_KERNEL, 0),
        6 => (libc::SIGILL, 2 /* ILL_ILLOPN */, rip),
        14 => {
            // Present bit set: a protection violation. Upper-half addresses
            // (the guest kernel's region included) are SEGV_MAPERR, as Linux
            // reports every user fault on a kernel address.
            let code = if error & 1 != 0 && cr2 < USER_LIMIT {
                2 /* SEGV_ACCERR */
            } else {
                1 /* SEGV_MAPERR */
            };
            (libc::SIGSEGV, code, cr2)
        }
        16 | 19 => (libc::SIGFPE, 0, rip),
        17 => (libc::SIGBUS, 1 /* BUS_ADRALN */, cr2),
        // #GP, #SS, #NP, #TS and anything else: SI_KERNEL, no address.
        _ => (libc::SIGSEGV, SI_KERNEL, 0),
    }
}

/// The event for CPU exception `vector` in ring 3, as Linux would report it,
/// where the vector alone does not say (the instruction or flags decide):
/// - `int $n` for a vector without a ring-3 gate is #GP on Linux (SIGSEGV,
///   SI_KERNEL); this guest's IDT has 32 entries and PVM hosts deliver #UD
///   for some: decoded from the instruction bytes;
/// - `int $0x80` is served as the ptrace platform serves it: a syscall stop
///   with the number in rax (rip past the instruction), answered from the
///   x86-64 table (the sentry has no i386 ABI);
/// - #DB without TF set is `int1`/icebp: TRAP_BRKPT, as Linux; with TF a
///   single step (TRAP_TRACE).
fn exception_event(pt: &PageTables, regs: &mut Regs, vector: u8, error: u64, cr2: u64) -> Event {
    const SI_KERNEL: i32 = 0x80;
    const TF: u64 = 0x100;
    let mut insn = [0u8; 2];
    if matches!(vector, 6 | 13) && pt.fetch_user(regs.rip, &mut insn) && insn[0] == 0xcd {
        if insn[1] == 0x80 {
            regs.rip += 2;
            regs.orig_rax = regs.rax;
            return Event::Syscall;
        }
        return Event::Fault {
            signo: libc::SIGSEGV,
            code: SI_KERNEL,
            addr: 0,
        };
    }
    let (signo, mut code, addr) = exception_signal(vector, error, cr2, regs.rip);
    if vector == 1 && regs.eflags & TF == 0 {
        code = 1; // TRAP_BRKPT
    }
    Event::Fault { signo, code, addr }
}

impl Context for KvmContext {
    fn switch(
        &mut self,
        space: &dyn AddressSpace,
        regs: &mut Regs,
    ) -> Result<Event, PlatformError> {
        let space = downcast(space)?;
        let holder = self.holder.clone();
        let mut h = holder.lock().unwrap();
        self.ensure_vcpu(&mut h)?;
        let vcpu = h.vcpu.as_mut().expect("ensured");
        let start = Instant::now();
        let exit = vcpu.run(&space.pt, regs);
        space.account(start.elapsed().as_nanos() as u64);
        match exit? {
            Exit::Syscall => Ok(Event::Syscall),
            Exit::Interrupted => Ok(Event::Interrupted),
            Exit::Exception { vector, error, cr2 } => {
                Ok(exception_event(&space.pt, regs, vector, error, cr2))
            }
        }
    }

    fn interrupter(&self) -> Arc<dyn Interrupter> {
        self.intr.clone()
    }

    fn fpu_state(&mut self, _space: &dyn AddressSpace) -> Result<Vec<u8>, PlatformError> {
        let h = self.holder.lock().unwrap();
        let live;
        let x: &kvm_xsave = match (&h.vcpu, &h.saved_fpu) {
            (Some(v), _) => {
                live = v.xsave()?;
                &live
            }
            (None, Some(x)) => x,
            // Never run: the state every vCPU starts with (recorded when the
            // VM made its first vCPU, which `Vm::new` does).
            (None, None) => match self.vm.clean_fpu() {
                Some(x) => x,
                None => return Err(PlatformError::NoMemory),
            },
        };
        let mut out = Vec::with_capacity(x.region.len() * 4);
        for w in x.region.iter() {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.truncate(crate::ptrace::xsave_size().min(out.len()));
        Ok(out)
    }

    fn set_fpu_state(
        &mut self,
        _space: &dyn AddressSpace,
        state: &[u8],
    ) -> Result<(), PlatformError> {
        let mut x = kvm_xsave::default();
        for (i, c) in state.chunks(4).take(x.region.len()).enumerate() {
            let mut b = [0u8; 4];
            b[..c.len()].copy_from_slice(c);
            x.region[i] = u32::from_le_bytes(b);
        }
        let mut h = self.holder.lock().unwrap();
        match &h.vcpu {
            Some(v) => Ok(v.set_xsave(&x)?),
            None => {
                h.saved_fpu = Some(Box::new(x));
                Ok(())
            }
        }
    }
}
