//! [`KvmPlatform`]: the [`Platform`] / [`AddressSpace`] / [`Context`] traits over a
//! [`Vm`], in the same shape as the ptrace platform. Not selectable from `runsc` yet.
//!
//! One VM per platform (sandbox); an address space is a [`PageTables`]; a context
//! (one per task, on its host thread) owns a [`Vcpu`], created lazily on the first
//! `switch` and returned to the VM's pool when the context is dropped.

use std::any::Any;
use std::sync::Arc;

use kvm_bindings::kvm_xsave;

use super::pagetable::USER_LIMIT;
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
        }))
    }

    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError> {
        Ok(Box::new(KvmContext {
            vm: self.vm.clone(),
            vcpu: None,
            pending: Arc::new(LazyInterrupter::default()),
        }))
    }
}

/// One workload address space: its page tables. Threads need nothing per thread
/// (their vCPUs belong to their contexts).
pub struct KvmAddressSpace {
    pt: PageTables,
    vm: Arc<Vm>,
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
    // makes KVM drop them at once (the rewriter, or a zap: see `pvm`), so no vCPU
    // running right now keeps using them (the memory may be reused as soon as
    // this returns). Hardware-paging hosts flush on each
    // vCPU's next entry; running vCPUs of the same table are not yet shot down.
    fn map(&self, va: u64, len: u64, offset: u64, prot: Prot) -> Result<(), PlatformError> {
        self.pt.map(va, len, offset, prot)?;
        Ok(self.vm.sync_translations(&self.pt)?)
    }

    fn unmap(&self, va: u64, len: u64) -> Result<(), PlatformError> {
        self.pt.unmap(va, len)?;
        Ok(self.vm.sync_translations(&self.pt)?)
    }

    fn protect(&self, va: u64, len: u64, prot: Prot) -> Result<(), PlatformError> {
        self.pt.protect(va, len, prot)?;
        Ok(self.vm.sync_translations(&self.pt)?)
    }

    fn new_thread(&self) -> Result<u64, PlatformError> {
        Ok(0)
    }

    fn attach_thread(&self, _token: u64) -> Result<(), PlatformError> {
        Ok(())
    }

    fn release_thread(&self) {}

    fn as_any(&self) -> &dyn Any {
        self
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

/// The context's interrupter: valid before the vCPU exists (an interrupt then
/// stays pending and is handed to the vCPU when it is created).
#[derive(Default)]
struct LazyInterrupter {
    pending: std::sync::atomic::AtomicBool,
    vcpu: std::sync::OnceLock<Arc<super::vcpu::VcpuInterrupter>>,
}

impl Interrupter for LazyInterrupter {
    fn interrupt(&self) {
        match self.vcpu.get() {
            Some(v) => v.interrupt(),
            None => {
                self.pending
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                // Raced with the vCPU's creation: forward.
                if let Some(v) = self.vcpu.get() {
                    v.interrupt();
                }
            }
        }
    }
}

/// One task's execution context: its vCPU.
pub struct KvmContext {
    vm: Arc<Vm>,
    vcpu: Option<Vcpu>,
    pending: Arc<LazyInterrupter>,
}

impl KvmContext {
    fn vcpu(&mut self) -> Result<&mut Vcpu, PlatformError> {
        if self.vcpu.is_none() {
            let v = Vcpu::new(&self.vm)?;
            let intr = v.interrupter();
            let _ = self.pending.vcpu.set(intr.clone());
            if self
                .pending
                .pending
                .swap(false, std::sync::atomic::Ordering::SeqCst)
            {
                intr.interrupt();
            }
            self.vcpu = Some(v);
        }
        Ok(self.vcpu.as_mut().expect("created"))
    }
}

/// The signal Linux sends for CPU exception `vector`: (signo, si_code, si_addr).
pub fn exception_signal(vector: u8, error: u64, cr2: u64, rip: u64) -> (i32, i32, u64) {
    const SI_KERNEL: i32 = 0x80;
    match vector {
        0 => (libc::SIGFPE, 1 /* FPE_INTDIV */, rip),
        1 => (libc::SIGTRAP, 2 /* TRAP_TRACE */, rip),
        3 | 4 => (libc::SIGTRAP, SI_KERNEL, 0),
        5 => (libc::SIGSEGV, SI_KERNEL, 0),
        6 => (libc::SIGILL, 2 /* ILL_ILLOPN */, rip),
        14 => {
            // Present bit set: a protection violation.
            let code = if error & 1 != 0 {
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

impl Context for KvmContext {
    fn switch(
        &mut self,
        space: &dyn AddressSpace,
        regs: &mut Regs,
    ) -> Result<Event, PlatformError> {
        let space = downcast(space)?;
        let vcpu = self.vcpu()?;
        match vcpu.run(&space.pt, regs)? {
            Exit::Syscall => Ok(Event::Syscall),
            Exit::Interrupted => Ok(Event::Interrupted),
            Exit::Exception { vector, error, cr2 } => {
                let (signo, code, addr) = exception_signal(vector, error, cr2, regs.rip);
                Ok(Event::Fault { signo, code, addr })
            }
        }
    }

    fn interrupter(&self) -> Arc<dyn Interrupter> {
        self.pending.clone()
    }

    fn fpu_state(&mut self, _space: &dyn AddressSpace) -> Result<Vec<u8>, PlatformError> {
        let x = self.vcpu()?.xsave()?;
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
        Ok(self.vcpu()?.set_xsave(&x)?)
    }
}
