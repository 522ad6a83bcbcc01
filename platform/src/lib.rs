//! Everything that touches host memory and CPU state: the [`MemoryFile`] that holds
//! all workload memory, the [`Platform`] / [`AddressSpace`] / [`Context`] traits the
//! sentry runs workloads through, and their implementations (`ptrace`, `kvm`).
//!
//! This is the one crate where `unsafe` is routine; every block says why it is sound.

pub mod host;
pub mod kvm;
pub mod memfile;
pub mod null;
pub mod ptrace;

pub use ptrace::initial_regs;

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use host::fill_random;
pub use memfile::MemoryFile;

/// General-purpose register state of one task (the kernel's `user_regs_struct`).
pub type Regs = libc::user_regs_struct;

/// Returns all-zero registers.
pub fn zeroed_regs() -> Regs {
    // SAFETY: user_regs_struct is plain integers; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Memory protection of a mapping: `PROT_READ | PROT_WRITE | PROT_EXEC` bits.
pub type Prot = i32;

/// Why the workload stopped running and control came back to the sentry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// It executed `syscall`; the number is in `orig_rax`, rip points past the instruction.
    Syscall,
    /// A synchronous fault (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP) with its siginfo
    /// `si_code` and `si_addr`.
    Fault { signo: i32, code: i32, addr: u64 },
    /// The host thread was interrupted (a sentry signal kicked it out) before or
    /// while the workload ran.
    Interrupted,
}

/// Platform failures. These are sandbox-internal: the task that sees one dies.
#[derive(Debug)]
pub enum PlatformError {
    /// A host call failed.
    Host { op: &'static str, errno: i32 },
    /// The stub process backing an address space died.
    StubDied(String),
    /// Out of memory-file space or address-space resources.
    NoMemory,
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlatformError::Host { op, errno } => {
                write!(f, "{op}: {}", std::io::Error::from_raw_os_error(*errno))
            }
            PlatformError::StubDied(why) => write!(f, "stub process died: {why}"),
            PlatformError::NoMemory => write!(f, "out of memory"),
        }
    }
}

impl std::error::Error for PlatformError {}

impl PlatformError {
    /// The last host error, attributed to `op`.
    pub fn last(op: &'static str) -> PlatformError {
        PlatformError::Host {
            op,
            errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        }
    }
}

/// A way to run workload code and catch its syscalls and faults.
pub trait Platform: Send + Sync {
    /// Short name, as given to `--platform`.
    fn name(&self) -> &'static str;
    /// The memory file whose ranges address spaces map.
    fn memory_file(&self) -> &Arc<MemoryFile>;
    /// One past the highest address the workload may map.
    fn max_user_address(&self) -> u64;
    /// A new, empty address space.
    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError>;
    /// A new execution context for the calling host thread (one per task).
    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError>;
}

/// The host-side page tables of one workload address space. It mirrors the
/// memory manager: every VMA is mapped here from its memory-file range.
pub trait AddressSpace: Send + Sync {
    /// Maps `[va, va+len)` to memory-file bytes `[offset, offset+len)` with `prot`,
    /// replacing whatever was mapped there.
    fn map(&self, va: u64, len: u64, offset: u64, prot: Prot) -> Result<(), PlatformError>;
    /// Removes any mapping in `[va, va+len)`.
    fn unmap(&self, va: u64, len: u64) -> Result<(), PlatformError>;
    /// Changes the protection of `[va, va+len)`.
    fn protect(&self, va: u64, len: u64, prot: Prot) -> Result<(), PlatformError>;
    /// Prepares execution resources for another task that will share this address
    /// space (a thread, or a vfork child). Called on the creating task's host
    /// thread; the new task's host thread passes the token to `attach_thread`.
    fn new_thread(&self) -> Result<u64, PlatformError>;
    /// Makes the calling host thread able to run in (and update) this address
    /// space, with the resources `new_thread` prepared.
    fn attach_thread(&self, token: u64) -> Result<(), PlatformError>;
    /// The calling host thread's task stops using this address space (it exits or
    /// execs); its execution resources are freed.
    fn release_thread(&self);
    /// For platform implementations to recover their concrete type.
    fn as_any(&self) -> &dyn Any;
    /// CPU time the workload has used in this address space, all its threads
    /// (including exited ones) together; None when the platform cannot tell.
    fn cpu_time(&self) -> Option<Duration> {
        None
    }
    /// CPU time of the workload thread that host thread `host_tid` runs here.
    fn thread_cpu_time(&self, _host_tid: i32) -> Option<Duration> {
        None
    }
    /// False when the host side of this address space died unexpectedly (a
    /// ptrace stub killed from the host): its tasks cannot run any more. May
    /// be called from any sentry thread; cheap (one host syscall at most).
    fn alive(&self) -> bool {
        true
    }
}

/// Runs one task's workload code on the calling host thread.
pub trait Context: Send {
    /// Runs the workload in `space` with `regs` until the next event; `regs` holds the
    /// workload's registers on return.
    fn switch(&mut self, space: &dyn AddressSpace, regs: &mut Regs)
        -> Result<Event, PlatformError>;
    /// A handle other threads use to make a running `switch` return `Interrupted`
    /// (or the next one return it at once).
    fn interrupter(&self) -> Arc<dyn Interrupter>;
    /// The task's FPU/vector state as an XSAVE area (for signal frames, fork).
    fn fpu_state(&mut self, space: &dyn AddressSpace) -> Result<Vec<u8>, PlatformError>;
    /// Replaces the task's FPU/vector state with an XSAVE area from `fpu_state`.
    fn set_fpu_state(
        &mut self,
        space: &dyn AddressSpace,
        state: &[u8],
    ) -> Result<(), PlatformError>;
}

/// Interrupts a task's execution context from another thread.
pub trait Interrupter: Send + Sync {
    fn interrupt(&self);
}
