//! The KVM platform (`--platform=kvm`; DESIGN 4.3, issue 8): the workload runs in
//! ring 3 of a KVM virtual machine whose guest-physical memory is the
//! [`MemoryFile`].
//!
//! Guest-physical layout:
//! - slot 0: the MemoryFile's sentry mapping at [`MEMFILE_GPA`] (guest-physical =
//!   memory-file offset + `MEMFILE_GPA`);
//! - slot 1: a small host-anonymous "kernel" region at [`KERNEL_GPA`], see [`kernel`]
//!   (GDT/TSS and stack per vCPU, IDT, entry stubs, the shared upper page tables).
//!
//! Every address space ([`pagetable::PageTables`]) maps the kernel region
//! supervisor-only at [`kernel::KERNEL_VA`] (PML4 slot 511) and the workload
//! user-accessible below. A vCPU ([`vcpu::Vcpu`]) enters ring 3 through an `iretq`
//! stub; `syscall` and exceptions end in a `hlt`, which exits to the host.
//!
//! [`KvmPlatform`] implements the platform traits; `runsc boot` opens /dev/kvm
//! before confinement ([`preopen`]) and its seccomp filter admits
//! [`RUNTIME_IOCTLS`]. The memory file is sized for the slot
//! ([`memory_file_size`]).
//!
//! ## This host: KVM is PVM (shadow paging, guest at hardware CPL 3)
//!
//! `/dev/kvm` here is served by `kvm_pvm` (Pagetable-based Virtual Machine: no
//! VMX, the guest runs at hardware CPL 3 on shadow page tables; the upstream
//! guest ABI is Linux's RFC `Documentation/virt/kvm/x86/pvm-spec.rst`, MSRs
//! 0x4b564dXX, PVM leaves at CPUID 0x40000200). The host kernel (6.18.44-fc) is
//! itself a PVM guest (its symbols include the guest side, `nested_pvm_setup`),
//! so our VM is nested.
//!
//! ### What the module offers a guest (probed, see `pvm_tests.rs`)
//!
//! No PVM guest ABI: KVM_GET_MSRS / KVM_SET_MSRS process none of the PVM MSRs
//! 0x4b564df0..=0x4b564df7 (with or without KVM_SET_CPUID2), a guest `rdmsr` of
//! MSR_PVM_LINEAR_ADDRESS_RANGE in ring 0 raises #GP, KVM_GET_SUPPORTED_CPUID
//! and the synthetic CPUID (`invlpg 0xffffffffff4d5650; cpuid`, ring 0) show
//! only the KVM signature leaf 0x40000000 (max leaf 0x40000001), no PVM leaves.
//! A ring-0 `vmcall` (KVM_HC_VAPIC_POLL_IRQ, or PVM's TLB-flush numbers
//! 0x17088203..=05) never completes: the vCPU stays at it inside KVM_RUN until
//! a signal interrupts the ioctl.
//! So no PVCS, no event entry, no EVENT_RETURN_USER, no PVM hypercalls: a
//! PVM-aware guest kernel cannot be set up ([`pvm::probe_abi`] checks it at VM
//! creation and logs the answer). Our plain x86 guest runs in the module's
//! emulated "non-PVM mode":
//! - ring 0 is emulated instruction by instruction (~0.3 us each); a bare
//!   ring-0 `hlt` exit costs ~9 us;
//! - ring 3 runs natively; any round trip through native execution costs
//!   ~65-70 us more, whatever the guest does: a ring-3 store to an address
//!   without a memslot (KVM_EXIT_MMIO, no ring change at all) costs ~68 us per
//!   round trip, 3000 native instructions add ~4 us;
//! - a ring-3 `syscall` is emulated without the privilege change: execution goes
//!   on at LSTAR in ring 3 (EFER.SCE and STAR's CS are ignored). With LSTAR at
//!   the supervisor-only stub the fetch faults (#PF, error "user") after the
//!   vCPU went native again (~100 us per round trip); with LSTAR non-canonical
//!   ([`pvm::SYSCALL_GP_LSTAR`], probed at VM creation) the emulation raises
//!   #GP at once (~75 us). Both are decoded as syscalls (see `vcpu.rs`);
//! - an exception from ring 3 is delivered through the IDT to ring 0 (~80 us);
//!   an interrupt gate with a DPL-3 code segment and an IST stack also works
//!   (delivery stays in ring 3) but is not cheaper;
//! - edits the host makes to guest page tables are invisible to the shadow MMU
//!   even across CR3 loads and `invlpg` (`Vm::probe_shadow_paging` detects it at
//!   VM creation), but a guest write to a table page is seen. So every
//!   unmap/protect (synchronously, which also covers vCPUs running at that
//!   moment) has a helper vCPU rewrite the edited entries in ring 0 (see
//!   [`pvm`]; ~13 us per call, and only the edited translations refault),
//!   and address spaces forget their table pages when dropped. The fallback,
//!   when the rewriter does not work or the list overflows, zaps all
//!   translations ([`Vm::zap_translations`], a dummy memslot delete + re-add,
//!   ~20-35 us plus every vCPU refaulting its working set: ~1 ms for 256 pages).
//!
//! The 1.3x-bare-exit goal for a syscall round trip is out of reach on this
//! host for any guest design that runs the workload natively: the native
//! round trip alone is ~7x the bare exit. On VMX/SVM hosts none of the above
//! applies (no shadow paging is detected) and the original design runs.

pub mod kernel;
pub mod pagetable;
pub mod platform;
pub mod pvm;
pub mod vcpu;

#[cfg(test)]
mod tests;

use std::fmt;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use kvm_bindings::{kvm_userspace_memory_region, CpuId, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Cap, Kvm, VcpuFd, VmFd};

use crate::{MemoryFile, PlatformError};

pub use pagetable::PageTables;
pub use platform::{KvmAddressSpace, KvmContext, KvmPlatform};
pub use vcpu::{Exit, Vcpu};

/// Guest-physical address of the kernel region (slot 1).
pub const KERNEL_GPA: u64 = 0;
/// Guest-physical address of memory-file offset 0 (slot 0).
pub const MEMFILE_GPA: u64 = kernel::REGION_SIZE;

/// Guest-physical address of the dummy slot `zap_translations` toggles (never
/// mapped by any page table).
const DUMMY_GPA: u64 = 1 << 46;

/// The memory-file size to use with this platform for a sandbox that may use
/// `limit` bytes: KVM's cost of a memory slot grows with its size (on this
/// PVM host, ~0.6 s at VM creation for the default 1 TiB file, ~10 ms for
/// 64 GiB), so the file is twice the limit, at least 64 GiB, at most `max`.
pub fn memory_file_size(limit: Option<u64>, max: u64) -> u64 {
    let want = limit.map_or(max, |l| l.saturating_mul(2)).max(64 << 30);
    want.min(max) & !0xfff
}

/// Table pages [`Vm::forget_tables`] hands the rewriter; a zap is cheaper beyond.
const FORGET_MAX: usize = 2048;

/// The path opened.
pub const DEV_KVM: &str = "/dev/kvm";

/// A KVM failure: what was being done and the host error.
#[derive(Debug)]
pub struct KvmError {
    pub op: &'static str,
    pub errno: i32,
}

impl KvmError {
    fn new(op: &'static str, e: kvm_ioctls::Error) -> KvmError {
        KvmError {
            op,
            errno: e.errno(),
        }
    }

    fn last(op: &'static str) -> KvmError {
        KvmError {
            op,
            errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        }
    }

    fn from_io(op: &'static str, e: std::io::Error) -> KvmError {
        KvmError {
            op,
            errno: e.raw_os_error().unwrap_or(0),
        }
    }

    fn msg(op: &'static str) -> KvmError {
        KvmError { op, errno: 0 }
    }
}

impl fmt::Display for KvmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.errno == 0 {
            write!(f, "{}", self.op)
        } else {
            write!(
                f,
                "{}: {}",
                self.op,
                std::io::Error::from_raw_os_error(self.errno)
            )
        }
    }
}

impl std::error::Error for KvmError {}

impl From<KvmError> for PlatformError {
    fn from(e: KvmError) -> PlatformError {
        PlatformError::Host {
            op: e.op,
            errno: e.errno,
        }
    }
}

/// Opens /dev/kvm and checks what this platform needs; the error displays as one
/// line fit for `--platform=kvm` to print (e.g. "open /dev/kvm: No such file or
/// directory").
pub fn open_kvm() -> Result<Kvm, KvmError> {
    let kvm = match PREOPENED.lock().unwrap().as_ref() {
        Some(fd) => {
            let dup = fd
                .try_clone()
                .map_err(|e| KvmError::from_io("dup /dev/kvm", e))?;
            // SAFETY: `dup` is a descriptor of /dev/kvm that we own; Kvm takes it.
            unsafe { Kvm::from_raw_fd(dup.into_raw_fd()) }
        }
        None => Kvm::new().map_err(|e| KvmError::new("open /dev/kvm", e))?,
    };
    if kvm.get_api_version() != 12 {
        return Err(KvmError::msg("/dev/kvm: unexpected KVM API version"));
    }
    for (cap, what) in [
        (Cap::ImmediateExit, "/dev/kvm: no KVM_CAP_IMMEDIATE_EXIT"),
        (Cap::SyncRegs, "/dev/kvm: no KVM_CAP_SYNC_REGS"),
        (Cap::UserMemory, "/dev/kvm: no KVM_CAP_USER_MEMORY"),
        (Cap::ExtCpuid, "/dev/kvm: no KVM_CAP_EXT_CPUID"),
    ] {
        if !kvm.check_extension(cap) {
            return Err(KvmError::msg(what));
        }
    }
    Ok(kvm)
}

/// /dev/kvm opened by [`preopen`], for a process that cannot name host paths
/// later (the confined sentry).
static PREOPENED: Mutex<Option<std::os::fd::OwnedFd>> = Mutex::new(None);

/// Opens /dev/kvm now and checks it as [`open_kvm`] does; later [`open_kvm`]
/// calls (and so [`Vm::new`]) use this descriptor instead of the path.
pub fn preopen() -> Result<(), KvmError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(DEV_KVM)
        .map_err(|e| KvmError::from_io("open /dev/kvm", e))?;
    *PREOPENED.lock().unwrap() = Some(f.into());
    open_kvm().map(drop).inspect_err(|_| {
        PREOPENED.lock().unwrap().take();
    })
}

/// Whether this host's /dev/kvm is PVM's (`kvm_pvm` loaded and neither
/// `kvm_intel` nor `kvm_amd`): the guest then runs without hardware
/// virtualisation and every ring change of our guest is emulated in software
/// (a workload syscall costs ~90 us, against ~4 us on the ptrace platform).
/// Read from /sys/module, so call it before the process loses the host's /sys.
pub fn host_is_pvm() -> bool {
    let loaded = |m: &str| std::path::Path::new("/sys/module").join(m).exists();
    loaded("kvm_pvm") && !loaded("kvm_intel") && !loaded("kvm_amd")
}

/// `_IOC(dir, 0xAE, nr, size)`.
const fn kvm_ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (0xAE << 8) | nr
}
const IOC_W: u64 = 1;
const IOC_R: u64 = 2;

/// Every ioctl request the platform makes once the VM exists (vCPU creation,
/// runs, register and state exchange, memory-slot changes): the sentry's
/// seccomp filter admits these with `--platform=kvm`.
pub const RUNTIME_IOCTLS: &[u64] = {
    use kvm_bindings::*;
    use std::mem::size_of;
    &[
        kvm_ioc(0, 0x04, 0), // KVM_GET_VCPU_MMAP_SIZE
        kvm_ioc(0, 0x41, 0), // KVM_CREATE_VCPU
        kvm_ioc(0, 0x80, 0), // KVM_RUN
        kvm_ioc(IOC_W, 0x46, size_of::<kvm_userspace_memory_region>()),
        kvm_ioc(IOC_R, 0x81, size_of::<kvm_regs>()), // KVM_GET_REGS
        kvm_ioc(IOC_W, 0x82, size_of::<kvm_regs>()), // KVM_SET_REGS
        kvm_ioc(IOC_R, 0x83, size_of::<kvm_sregs>()), // KVM_GET_SREGS
        kvm_ioc(IOC_W, 0x84, size_of::<kvm_sregs>()), // KVM_SET_SREGS
        kvm_ioc(IOC_R | IOC_W, 0x88, size_of::<kvm_msrs>()), // KVM_GET_MSRS
        kvm_ioc(IOC_W, 0x89, size_of::<kvm_msrs>()), // KVM_SET_MSRS
        kvm_ioc(IOC_R, 0x8c, size_of::<kvm_fpu>()),  // KVM_GET_FPU
        kvm_ioc(IOC_W, 0x8d, size_of::<kvm_fpu>()),  // KVM_SET_FPU
        kvm_ioc(IOC_W, 0x90, size_of::<kvm_cpuid2>()), // KVM_SET_CPUID2
        kvm_ioc(IOC_R, 0xa4, size_of::<kvm_xsave>()), // KVM_GET_XSAVE
        kvm_ioc(IOC_W, 0xa5, size_of::<kvm_xsave>()), // KVM_SET_XSAVE
        kvm_ioc(IOC_R, 0xa6, size_of::<kvm_xcrs>()), // KVM_GET_XCRS
        kvm_ioc(IOC_W, 0xa7, size_of::<kvm_xcrs>()), // KVM_SET_XCRS
        kvm_ioc(IOC_R, 0xcf, size_of::<kvm_xsave>()), // KVM_GET_XSAVE2
        // KVM_GET_VCPU_EVENTS: `Vcpu::after_interrupt` looks for an exception
        // queued in ring 3 (without it the filter kills the sentry the first
        // time a kick stops a vCPU in ring 3: sysfuzz on kvm, SIGSYS).
        kvm_ioc(IOC_R, 0x9f, size_of::<kvm_vcpu_events>()),
    ]
};

/// One virtual machine per sandbox: guest memory, the kernel region, vCPU ids.
pub struct Vm {
    pub(crate) kvm: Kvm,
    pub(crate) fd: VmFd,
    /// Idle vCPUs (slot, fd) and the next slot never used. A slot is a vCPU id
    /// and a kernel-region page. Dropped
    /// before the memory the VM's slots point at.
    idle: Mutex<(Vec<(usize, VcpuFd)>, usize)>,
    pub(crate) mf: Arc<MemoryFile>,
    pub(crate) kernel: kernel::KernelRegion,
    pub(crate) cpuid: CpuId,
    /// Whether KVM shadows guest page tables here, so host edits need
    /// [`Vm::zap_translations`] (found by [`Vm::probe_shadow_paging`]).
    shadow_paging: AtomicBool,
    /// The most vCPUs this VM creates; contexts beyond share them
    /// (`platform::KvmContext`).
    max_vcpus: std::sync::atomic::AtomicUsize,
    clean_fpu: std::sync::OnceLock<kvm_bindings::kvm_xsave>,
    /// Every context that may hold a vCPU, for taking one from a context not
    /// running at the moment when the VM has no more.
    pub(crate) holders: Mutex<Vec<std::sync::Weak<Mutex<platform::Holder>>>>,
    /// The contexts' interrupters, for [`Vm::shoot_down`].
    running: Mutex<Vec<std::sync::Weak<vcpu::VcpuInterrupter>>>,
    /// MSR_LSTAR of every vCPU (see [`pvm::probe_syscall_gp`]).
    lstar: std::sync::atomic::AtomicU64,
    /// On shadow-paging hosts where it works: the helper that makes host edits of
    /// page tables visible entry by entry (see [`pvm`]); otherwise they zap.
    rewriter: Mutex<Option<pvm::Rewriter>>,
}

/// The error a vCPU's creation gives when the VM has made all it may.
pub(crate) const TOO_MANY_VCPUS: &str = "too many vCPUs";

impl Vm {
    /// Creates the VM over `mf`. Fails with a readable error when /dev/kvm cannot be
    /// used.
    pub fn new(mf: Arc<MemoryFile>) -> Result<Arc<Vm>, KvmError> {
        let kvm = open_kvm()?;
        let fd = kvm
            .create_vm()
            .map_err(|e| KvmError::new("KVM_CREATE_VM", e))?;
        let cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(|e| KvmError::new("KVM_GET_SUPPORTED_CPUID", e))?;
        let kernel = kernel::KernelRegion::new(&cpuid)?;
        // The memory file must fit under the guest's physical address width.
        let phys_bits = cpuid
            .as_slice()
            .iter()
            .find(|e| e.function == 0x8000_0008)
            .map(|e| e.eax & 0xff)
            .unwrap_or(36);
        let limit = (1u64 << phys_bits).saturating_sub(MEMFILE_GPA);
        let mem_size = mf.size().min(limit) & !0xfff;
        let slot0 = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: MEMFILE_GPA,
            memory_size: mem_size,
            userspace_addr: mf.base_ptr() as u64,
        };
        // SAFETY: the mapping covers `mem_size` bytes and lives as long as `mf`,
        // which the VM keeps (the field is dropped after `fd`, whose close removes
        // the slot). Guest writes race with sentry copies exactly as a workload's
        // threads do; no Rust references into the mapping exist.
        unsafe { fd.set_user_memory_region(slot0) }
            .map_err(|e| KvmError::new("KVM_SET_USER_MEMORY_REGION (memory file)", e))?;
        let slot1 = kvm_userspace_memory_region {
            slot: 1,
            flags: 0,
            guest_phys_addr: KERNEL_GPA,
            memory_size: kernel::REGION_SIZE,
            userspace_addr: kernel.host_addr() as u64,
        };
        // SAFETY: as above: the kernel region's mapping lives as long as `self`.
        unsafe { fd.set_user_memory_region(slot1) }
            .map_err(|e| KvmError::new("KVM_SET_USER_MEMORY_REGION (kernel)", e))?;
        let vm = Arc::new(Vm {
            kvm,
            fd,
            idle: Mutex::new((Vec::new(), 0)),
            mf,
            kernel,
            cpuid,
            shadow_paging: AtomicBool::new(false),
            max_vcpus: std::sync::atomic::AtomicUsize::new(kernel::MAX_VCPUS),
            clean_fpu: std::sync::OnceLock::new(),
            holders: Mutex::new(Vec::new()),
            running: Mutex::new(Vec::new()),
            rewriter: Mutex::new(None),
            lstar: std::sync::atomic::AtomicU64::new(kernel::SYSCALL_STUB),
        });
        vm.dummy_slot(4096)?;
        let (shadow, rewriter) = vm.probe_shadow_paging()?;
        if shadow {
            // Once per process: it creates a throwaway VM.
            static ABI: std::sync::Once = std::sync::Once::new();
            ABI.call_once(|| match pvm::probe_abi(&vm.kvm) {
                Ok(abi) => tracing::info!("kvm: PVM guest ABI: {abi:?}"),
                Err(e) => tracing::info!("kvm: PVM guest ABI probe: {e}"),
            });
        }
        *vm.rewriter.lock().unwrap() = rewriter;
        vm.shadow_paging.store(shadow, Ordering::Relaxed);
        if shadow {
            if pvm::probe_syscall_gp(&vm) {
                tracing::info!("kvm: syscalls exit through the #GP of a non-canonical LSTAR");
            } else if vm.rewriter.lock().unwrap().take().is_some() {
                // The rewriter relies on ring 0 being emulated (every guest
                // write tracked, see `pvm`); a ring-3 syscall that stays in
                // ring 3 is that emulation's mark. Without it: zaps.
                tracing::info!("kvm: ring 0 not emulated; unmaps zap translations");
            }
        }
        Ok(vm)
    }

    /// The memory file that backs guest memory.
    pub fn memory_file(&self) -> &Arc<MemoryFile> {
        &self.mf
    }

    /// The KVM system handle.
    pub fn kvm(&self) -> &Kvm {
        &self.kvm
    }

    /// Drops every translation KVM derived from guest page tables (all vCPUs):
    /// deleting a memory slot makes KVM zap its shadow / EPT pages. Slot 2 is a
    /// one-page dummy kept for this. Needed where KVM shadows guest page tables
    /// (no EPT, e.g. a PVM host): edits the host makes to guest page tables
    /// are invisible to it otherwise, even across CR3 loads and `invlpg`.
    /// True when host edits of guest page tables need a zap to take effect.
    pub fn shadow_paging(&self) -> bool {
        self.shadow_paging.load(Ordering::Relaxed)
    }

    /// The vCPUs' MSR_LSTAR.
    pub(crate) fn lstar(&self) -> u64 {
        self.lstar.load(Ordering::Relaxed)
    }

    pub(crate) fn set_lstar(&self, v: u64) {
        self.lstar.store(v, Ordering::Relaxed)
    }

    /// True when host edits of guest page tables reach the shadow MMU through the
    /// rewriter (see [`pvm`]) rather than zaps.
    pub fn rewrites_page_tables(&self) -> bool {
        self.rewriter.lock().unwrap().is_some()
    }

    /// Makes unmaps zap from now on (to compare, and to test the fallback).
    #[cfg(test)]
    pub(crate) fn disable_rewriter(&self) {
        *self.rewriter.lock().unwrap() = None;
    }

    /// After edits of `pt` and before running it: on shadow-paging hosts, makes
    /// the edits visible to KVM, by the rewriter when there is one and the list
    /// of edited entries is complete, otherwise by a zap covering every table.
    /// Returns once that is done (also when another thread did it). Table pages
    /// the edits unlinked go back to the memory file here.
    pub(crate) fn sync_translations(&self, pt: &PageTables) -> Result<(), KvmError> {
        if !self.shadow_paging() {
            if pt.generation() > pt.synced() {
                let (_, freed, gen) = pt.take_dirty();
                pt.release_tables(&freed);
                pt.set_synced(gen);
            }
            return Ok(());
        }
        let covered = |pt: &PageTables| pt.generation() <= pt.synced();
        if covered(pt) {
            return Ok(());
        }
        // Entries are taken and rewritten under this lock, so an empty list here
        // means whoever took them is done.
        let mut rw = self.rewriter.lock().unwrap();
        let (dirty, freed, gen) = pt.take_dirty();
        // Nothing narrowed or unlinked (a fresh table, or another thread did it):
        // nothing to tell KVM. (Pages of dropped tables were forgotten then.)
        let nothing = matches!(&dirty, Some(l) if l.is_empty()) && freed.is_empty();
        let rewritten = nothing
            || match (rw.as_mut(), dirty) {
                (Some(r), Some(list)) => match r.rewrite(&self.kernel, &list, &freed) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(
                            "kvm: page-table rewriter failed ({e}); zapping from now on"
                        );
                        *rw = None;
                        false
                    }
                },
                _ => false,
            };
        if !rewritten {
            self.zap_translations()?;
        }
        pt.release_tables(&freed);
        pt.set_synced(gen);
        Ok(())
    }

    /// After `pt` lost or narrowed translations: every other vCPU in the guest
    /// with `pt` loaded is kicked out, and this returns once none is (as
    /// Linux's TLB shootdown before munmap/mprotect return). A kicked vCPU
    /// re-enters through the flush stub, since `pt`'s generation moved.
    pub(crate) fn shoot_down(&self, pt: &PageTables) {
        let cr3 = pt.cr3();
        let running: Vec<_> = {
            let mut rs = self.running.lock().unwrap();
            rs.retain(|w| w.strong_count() > 0);
            rs.iter().filter_map(|w| w.upgrade()).collect()
        };
        for r in running {
            if r.in_guest.load(Ordering::SeqCst) != cr3 {
                continue;
            }
            r.interrupt();
            let start = std::time::Instant::now();
            while r.in_guest.load(Ordering::SeqCst) == cr3 {
                if start.elapsed() > std::time::Duration::from_secs(1) {
                    tracing::warn!("kvm: a vCPU did not leave the guest for a shootdown");
                    break;
                }
                std::thread::yield_now();
            }
        }
    }

    /// Registers a context's interrupter for [`Vm::shoot_down`].
    pub(crate) fn register_running(&self, intr: &Arc<vcpu::VcpuInterrupter>) {
        self.running.lock().unwrap().push(Arc::downgrade(intr));
    }

    /// Before `pt`'s table pages go back to the memory file (the table is being
    /// dropped): on shadow-paging hosts, makes KVM drop what it derived from
    /// them, which it would otherwise reuse for whatever table gets the pages.
    pub(crate) fn forget_tables(&self, pt: &PageTables) -> Result<(), KvmError> {
        if !self.shadow_paging() {
            return Ok(());
        }
        let pages = pt.all_table_pages();
        let mut rw = self.rewriter.lock().unwrap();
        let forgotten = match rw.as_mut() {
            Some(r) if pages.len() <= FORGET_MAX => match r.rewrite(&self.kernel, &[], &pages) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!("kvm: page-table rewriter failed ({e}); zapping from now on");
                    *rw = None;
                    false
                }
            },
            _ => false,
        };
        if !forgotten {
            self.zap_translations()?;
        }
        Ok(())
    }

    /// Runs a few instructions to see whether a page the host unmapped (with
    /// the CR3 load + `invlpg` every entry does) stays visible to the guest; if
    /// it does, whether the rewriter ([`pvm`]) makes the unmap take effect.
    fn probe_shadow_paging(self: &Arc<Vm>) -> Result<(bool, Option<pvm::Rewriter>), KvmError> {
        let pt = PageTables::new(self.mf.clone())?;
        let page = |e| KvmError {
            op: "kvm probe page",
            errno: e,
        };
        let code = self.mf.allocate(4096).map_err(|_| page(libc::ENOMEM))?;
        let data = self.mf.allocate(4096).map_err(|_| page(libc::ENOMEM))?;
        // mov rax, [0x2000]; syscall; mov rax, [0x2000]; syscall
        let insn = [0x48, 0x8b, 0x04, 0x25, 0x00, 0x20, 0x00, 0x00, 0x0f, 0x05];
        let mut bytes = insn.to_vec();
        bytes.extend_from_slice(&insn);
        self.mf.write_at(code, &bytes);
        self.mf.write_at(data, &0x5a5a_u64.to_le_bytes());
        let result = (|| {
            pt.map(0x1000, 4096, code, libc::PROT_READ | libc::PROT_EXEC)?;
            pt.map(0x2000, 4096, data, libc::PROT_READ)?;
            let mut cpu = Vcpu::new(self)?;
            let mut regs = crate::zeroed_regs();
            regs.rip = 0x1000;
            regs.eflags = 0x202;
            let first = cpu.run(&pt, &mut regs)?;
            if first != Exit::Syscall || regs.rax != 0x5a5a {
                return Err(KvmError::msg(
                    "kvm probe: the guest did not run as expected",
                ));
            }
            pt.unmap(0x2000, 4096)?;
            Ok(match cpu.run(&pt, &mut regs)? {
                Exit::Syscall => (
                    true,
                    pvm::probe_rewriter(self, &pt, &mut cpu, &mut regs, 0x100a, 0x2000),
                ),
                Exit::Exception { vector: 14, .. } => (false, None),
                _ => return Err(KvmError::msg("kvm probe: unexpected exit")),
            })
        })();
        drop(pt);
        self.mf.release(code, 4096);
        self.mf.release(data, 4096);
        let (shadow, rewriter) = result?;
        if shadow {
            // The probe's table pages are free again: drop what KVM derived.
            self.zap_translations()?;
            tracing::info!(
                "kvm: guest page tables are shadowed; unmaps {}",
                if rewriter.is_some() {
                    "rewrite the edited entries from a helper vCPU"
                } else {
                    "zap translations"
                }
            );
        }
        Ok((shadow, rewriter))
    }

    pub fn zap_translations(&self) -> Result<(), KvmError> {
        self.dummy_slot(0)?;
        self.dummy_slot(4096)
    }

    /// Creates (size 4096) or deletes (size 0) the dummy slot.
    fn dummy_slot(&self, size: u64) -> Result<(), KvmError> {
        let r = kvm_userspace_memory_region {
            slot: 2,
            flags: 0,
            guest_phys_addr: DUMMY_GPA,
            memory_size: size,
            userspace_addr: self.kernel.host_addr() as u64,
        };
        // SAFETY: slot 2 covers the kernel region's first page, which lives as
        // long as `self`; no page table maps the dummy address.
        unsafe { self.fd.set_user_memory_region(r) }
            .map_err(|e| KvmError::new("KVM_SET_USER_MEMORY_REGION (dummy slot)", e))
    }

    pub(crate) fn take_slot(&self) -> Result<usize, KvmError> {
        let mut s = self.idle.lock().unwrap();
        if s.1 >= self.max_vcpus.load(Ordering::Relaxed) {
            return Err(KvmError::msg(TOO_MANY_VCPUS));
        }
        s.1 += 1;
        Ok(s.1 - 1)
    }

    /// Whether a vCPU can be had without taking one from another context.
    pub(crate) fn has_room(&self) -> bool {
        let s = self.idle.lock().unwrap();
        !s.0.is_empty() || s.1 < self.max_vcpus.load(Ordering::Relaxed)
    }

    /// Lowers the number of vCPUs this VM makes (tests of the multiplexing).
    pub fn set_max_vcpus(&self, n: usize) {
        self.max_vcpus
            .store(n.clamp(1, kernel::MAX_VCPUS), Ordering::Relaxed);
    }

    /// The FPU state of a vCPU nobody ran yet (what a new context starts with).
    pub(crate) fn clean_fpu(&self) -> Option<&kvm_bindings::kvm_xsave> {
        self.clean_fpu.get()
    }

    pub(crate) fn set_clean_fpu(&self, x: kvm_bindings::kvm_xsave) {
        let _ = self.clean_fpu.set(x);
    }

    pub(crate) fn take_idle(&self) -> Option<(usize, VcpuFd)> {
        self.idle.lock().unwrap().0.pop()
    }

    pub(crate) fn put_idle(&self, slot: usize, fd: VcpuFd) {
        self.idle.lock().unwrap().0.push((slot, fd));
    }
}
