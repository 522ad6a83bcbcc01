//! A task: one workload thread, run by one host thread. The run loop switches into
//! the workload, handles the event that brought it back, and repeats.

use std::sync::Arc;

use abi::Errno;
use platform::{Context, Event, Regs};

use crate::kernel::Kernel;
use crate::mm::MemoryManager;

/// How a task (or its thread group) ended; the wait status is built from this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// exit(code): the low 8 bits are kept.
    Exited(i32),
    /// Killed by a signal.
    Signaled(i32),
}

impl ExitStatus {
    /// The status a shell reports: the code, or 128+signal.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c & 0xff,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }
}

/// User and group identity (credentials(7)).
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub groups: Vec<u32>,
}

/// A recorded `struct sigaction` (delivery arrives with signals proper).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// Number of resource limits (RLIMIT_NLIMITS).
pub const RLIM_NLIMITS: usize = 16;

/// One workload thread.
pub struct Task {
    pub kernel: Arc<Kernel>,
    /// Thread ID and thread-group ID in the sandbox's PID namespace.
    pub tid: i32,
    pub tgid: i32,
    pub ppid: i32,
    pub mm: Arc<MemoryManager>,
    /// Root, working directory and umask.
    pub fs: Arc<fs::FsContext>,
    pub fds: Arc<fs::FdTable>,
    pub creds: Credentials,
    /// The workload's registers while the sentry handles an event.
    pub regs: Regs,
    ctx: Box<dyn Context>,
    /// Where this task sleeps in blocking calls; signals interrupt it.
    waiter: Arc<fs::waiter::Waiter>,
    /// Blocked signals (bit n-1 for signal n).
    pub signal_mask: u64,
    pub sigactions: [SigAction; 64],
    /// sigaltstack: (ss_sp, ss_flags, ss_size).
    pub altstack: (u64, i32, u64),
    pub clear_child_tid: u64,
    pub robust_list: (u64, u64),
    pub rlimits: [abi::linux::Rlimit; RLIM_NLIMITS],
    /// Path of the running executable (for AT_EXECFN and /proc/self/exe).
    pub exe_path: Vec<u8>,
    /// Thread name (prctl PR_SET_NAME, /proc/self/comm).
    pub comm: [u8; 16],
    /// prctl PR_SET_PDEATHSIG.
    pub pdeathsig: i32,
    /// prctl PR_SET_DUMPABLE.
    pub dumpable: bool,
    /// prctl PR_SET_NO_NEW_PRIVS (sticky).
    pub no_new_privs: bool,
    /// Set by exit/exit_group (or a fatal signal); the run loop returns it.
    pub exit_status: Option<ExitStatus>,
}

impl Task {
    /// Builds the first task of a sandbox. It must then be run on the host thread
    /// that called this (ptrace ties a stub thread to its tracer thread).
    pub fn new_init(
        kernel: Arc<Kernel>,
        mm: Arc<MemoryManager>,
        fs: Arc<fs::FsContext>,
        fds: Arc<fs::FdTable>,
        creds: Credentials,
    ) -> Result<Task, platform::PlatformError> {
        let ctx = kernel.platform.new_context()?;
        let waiter = fs::waiter::Waiter::new().map_err(|e| platform::PlatformError::Host {
            op: "eventfd",
            errno: e.raw_os_error().unwrap_or(0),
        })?;
        let tid = kernel.alloc_tid();
        Ok(Task {
            kernel,
            tid,
            tgid: tid,
            ppid: 0,
            mm,
            fs,
            fds,
            creds,
            regs: platform::zeroed_regs(),
            ctx,
            waiter,
            signal_mask: 0,
            sigactions: [SigAction::default(); 64],
            altstack: (0, libc::SS_DISABLE, 0),
            clear_child_tid: 0,
            robust_list: (0, 0),
            rlimits: default_rlimits(),
            exe_path: Vec::new(),
            comm: [0; 16],
            pdeathsig: 0,
            dumpable: true,
            no_new_privs: false,
            exit_status: None,
        })
    }

    /// Runs the workload until the task exits.
    pub fn run(&mut self) -> ExitStatus {
        let table = self.kernel.syscalls.clone();
        loop {
            let space = self.mm.address_space();
            match self.ctx.switch(space.as_ref(), &mut self.regs) {
                Ok(Event::Syscall) => {
                    let r = &self.regs;
                    let nr = r.orig_rax;
                    let args = [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9];
                    let ret = table.dispatch(self, nr, args);
                    if let Some(st) = self.exit_status {
                        return st;
                    }
                    self.regs.rax = ret;
                }
                Ok(Event::Fault { signo, code, addr }) => {
                    // Signal delivery arrives with the signals issue; until then a
                    // fault is fatal, as it is for a task with default handlers.
                    tracing::info!(
                        tid = self.tid,
                        signo,
                        code,
                        addr = format_args!("{addr:#x}"),
                        rip = format_args!("{:#x}", self.regs.rip),
                        "fatal fault"
                    );
                    return ExitStatus::Signaled(signo);
                }
                Ok(Event::Interrupted) => {}
                Err(e) => {
                    tracing::error!(tid = self.tid, "platform failure: {e}");
                    return ExitStatus::Signaled(libc::SIGKILL);
                }
            }
        }
    }

    /// The waiter blocking calls sleep on (see `fs::waiter::block`).
    pub fn waiter(&self) -> &Arc<fs::waiter::Waiter> {
        &self.waiter
    }

    /// Sends `sig` to this task (as Linux's send_sig to current, e.g. SIGPIPE on
    /// EPIPE).
    pub fn send_signal_to_self(&mut self, sig: i32) {
        crate::signal::send_to_self(self, sig);
    }

    /// Copies `buf.len()` bytes from workload address `addr`.
    pub fn copy_in(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.mm.copy_in(addr, buf)
    }

    /// Copies `buf` to workload address `addr`.
    pub fn copy_out(&self, addr: u64, buf: &[u8]) -> Result<(), Errno> {
        self.mm.copy_out(addr, buf)
    }

    /// Copies in `len` bytes (callers bound `len` first).
    pub fn copy_in_vec(&self, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let mut v = vec![0u8; len];
        self.mm.copy_in(addr, &mut v)?;
        Ok(v)
    }

    /// Copies in a NUL-terminated string of at most `max` bytes (excluding the NUL);
    /// ENAMETOOLONG when longer, EFAULT when unreadable.
    pub fn copy_in_string(&self, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
        self.mm.copy_in_string(addr, max)
    }

    /// Copies in a path (PATH_MAX bound; empty paths are the caller's to reject).
    pub fn copy_in_path(&self, addr: u64) -> Result<Vec<u8>, Errno> {
        self.mm.copy_in_string(addr, libc::PATH_MAX as usize - 1)
    }

    pub fn copy_in_u64(&self, addr: u64) -> Result<u64, Errno> {
        let mut b = [0u8; 8];
        self.copy_in(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn copy_out_u64(&self, addr: u64, v: u64) -> Result<(), Errno> {
        self.copy_out(addr, &v.to_le_bytes())
    }

    pub fn copy_out_u32(&self, addr: u64, v: u32) -> Result<(), Errno> {
        self.copy_out(addr, &v.to_le_bytes())
    }
}

impl fs::UserIo for Task {
    fn copy_in(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.mm.copy_in(addr, buf)
    }
    fn copy_out(&self, addr: u64, buf: &[u8]) -> Result<(), Errno> {
        self.mm.copy_out(addr, buf)
    }
}

/// Linux's defaults for a new init process, with the stack at 8 MiB.
fn default_rlimits() -> [abi::linux::Rlimit; RLIM_NLIMITS] {
    use abi::linux::Rlimit;
    let inf = Rlimit {
        cur: Rlimit::INFINITY,
        max: Rlimit::INFINITY,
    };
    let mut r = [inf; RLIM_NLIMITS];
    r[libc::RLIMIT_STACK as usize] = Rlimit {
        cur: 8 << 20,
        max: Rlimit::INFINITY,
    };
    r[libc::RLIMIT_CORE as usize] = Rlimit {
        cur: 0,
        max: Rlimit::INFINITY,
    };
    r[libc::RLIMIT_NOFILE as usize] = Rlimit {
        cur: 1024,
        max: 1 << 20,
    };
    r[libc::RLIMIT_NPROC as usize] = Rlimit {
        cur: 63_000,
        max: 63_000,
    };
    r[libc::RLIMIT_MEMLOCK as usize] = Rlimit {
        cur: 8 << 20,
        max: 8 << 20,
    };
    r[libc::RLIMIT_SIGPENDING as usize] = Rlimit {
        cur: 63_000,
        max: 63_000,
    };
    r[libc::RLIMIT_MSGQUEUE as usize] = Rlimit {
        cur: 819_200,
        max: 819_200,
    };
    r[libc::RLIMIT_NICE as usize] = Rlimit { cur: 0, max: 0 };
    r[libc::RLIMIT_RTPRIO as usize] = Rlimit { cur: 0, max: 0 };
    r
}

impl Task {
    /// Replaces this task's image with `image` (execve after the point of no
    /// return): new memory and registers, close-on-exec fds closed, caught signals
    /// reset to their default action, the alternate stack forgotten.
    pub fn exec(&mut self, image: crate::exec::Image) {
        self.mm = image.mm;
        self.regs = image.regs;
        // comm is the executable's base name, truncated to 15 bytes.
        let base = image
            .exe_path
            .rsplit(|&c| c == b'/')
            .next()
            .unwrap_or(&[])
            .to_vec();
        self.comm = [0; 16];
        let n = base.len().min(15);
        self.comm[..n].copy_from_slice(&base[..n]);
        self.exe_path = image.exe_path;
        self.fds.close_on_exec();
        for a in self.sigactions.iter_mut() {
            // SIG_IGN (1) survives exec; handlers do not.
            if a.handler != 1 {
                *a = SigAction::default();
            }
        }
        self.altstack = (0, libc::SS_DISABLE, 0);
        self.clear_child_tid = 0;
        self.robust_list = (0, 0);
    }
}
