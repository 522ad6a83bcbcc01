//! The kernel object: what every task shares (platform, VFS, syscall table, clocks).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use platform::Platform;

use crate::task::Task;

/// The syscall table, handed to the kernel by `runsc boot` (the `syscalls` crate
/// implements it; the kernel cannot depend on that crate without a cycle).
pub trait SyscallTable: Send + Sync {
    /// Runs syscall `nr` with `args` for `task` and returns the value for rax
    /// (a result, or a negated errno).
    fn dispatch(&self, task: &mut Task, nr: u64, args: [u64; 6]) -> u64;
}

/// State shared by every task of one sandbox.
pub struct Kernel {
    pub platform: Arc<dyn Platform>,
    pub vfs: Arc<fs::Vfs>,
    pub syscalls: Arc<dyn SyscallTable>,
    /// Print every syscall to stderr, as strace does (`--strace`).
    pub strace: bool,
    /// Monotonic origin of CLOCK_BOOTTIME / uptime.
    pub boot_time: Instant,
    /// Reported by uname(2).
    pub hostname: String,
    pub futexes: crate::futex::Futexes,
    next_tid: AtomicI32,
}

impl Kernel {
    pub fn new(
        platform: Arc<dyn Platform>,
        vfs: Arc<fs::Vfs>,
        syscalls: Arc<dyn SyscallTable>,
        strace: bool,
    ) -> Arc<Kernel> {
        Arc::new(Kernel {
            platform,
            vfs,
            syscalls,
            strace,
            boot_time: Instant::now(),
            hostname: "sandbox".to_string(),
            futexes: Default::default(),
            next_tid: AtomicI32::new(1),
        })
    }

    /// Allocates a thread ID in the sandbox's PID namespace (the first is 1).
    pub fn alloc_tid(&self) -> i32 {
        self.next_tid.fetch_add(1, Ordering::Relaxed)
    }
}
