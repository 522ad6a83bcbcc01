//! A task: one workload thread, run by one host thread. The run loop switches into
//! the workload, handles the event that brought it back (a syscall, a fault, an
//! interrupt), delivers pending signals, and repeats until the task exits.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use abi::errno::{ERESTARTNOHAND, ERESTARTNOINTR, ERESTARTSYS, ERESTART_RESTARTBLOCK};
use abi::{Errno, SysResult};
use fs::waiter::{WaitQueue, Waiter};
use platform::{Context, Event, Interrupter, Regs};

use crate::kernel::Kernel;
use crate::mm::MemoryManager;
use crate::signal::{
    self, sigbit, DefaultAction, SigAction, SigInfo, SigPending, SIG_DFL, SIG_IGN,
};
use crate::thread_group::{SigHandlers, ThreadGroup};

/// How a task (or its thread group) ended; the wait status is built from this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// exit(code): the low 8 bits are kept.
    Exited(i32),
    /// Killed by a signal.
    Signaled(i32),
    /// Killed by a signal whose default action dumps core (and core dumps are
    /// enabled by RLIMIT_CORE).
    Dumped(i32),
}

impl ExitStatus {
    /// The status a shell reports: the code, or 128+signal.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c & 0xff,
            ExitStatus::Signaled(s) | ExitStatus::Dumped(s) => 128 + s,
        }
    }

    /// The wait(2) status word.
    pub fn wait_status(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => (c & 0xff) << 8,
            ExitStatus::Signaled(s) => s & 0x7f,
            ExitStatus::Dumped(s) => (s & 0x7f) | 0x80,
        }
    }
}

/// User and group identity (credentials(7)).
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
    /// Capability sets (capabilities(7)): bit n is capability n. They only
    /// describe privilege inside the sandbox; the sentry's own host credentials
    /// never change.
    pub cap_effective: u64,
    pub cap_permitted: u64,
    pub cap_inheritable: u64,
    pub cap_bounding: u64,
    pub cap_ambient: u64,
    /// SECBIT_* flags (prctl PR_SET_SECUREBITS); SECBIT_KEEP_CAPS is PR_SET_KEEPCAPS.
    pub securebits: u32,
}

/// The highest capability number (CAP_CHECKPOINT_RESTORE).
pub const CAP_LAST_CAP: u32 = 40;
/// Every capability: what root holds.
pub const CAP_FULL_SET: u64 = (1 << (CAP_LAST_CAP + 1)) - 1;

impl Credentials {
    /// Whether capability `cap` is in the effective set (Linux's `capable()`;
    /// the sandbox has one user namespace).
    pub fn has_capability(&self, cap: u32) -> bool {
        cap <= CAP_LAST_CAP && self.cap_effective & (1 << cap) != 0
    }
}

/// Scheduling attributes of one thread (sched(7), setpriority(2), ioprio_set(2),
/// PR_SET_TIMERSLACK). They are recorded so the workload reads back what it set;
/// the host schedules the thread that runs the task as it sees fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedAttrs {
    /// -20..=19.
    pub nice: i32,
    /// SCHED_OTHER, SCHED_FIFO, ... (without SCHED_RESET_ON_FORK).
    pub policy: i32,
    /// 1..=99 for SCHED_FIFO and SCHED_RR, else 0.
    pub rt_priority: u32,
    pub reset_on_fork: bool,
    /// SCHED_DEADLINE (runtime, deadline, period) in nanoseconds.
    pub deadline: (u64, u64, u64),
    /// sched_setaffinity mask (bit n = CPU n), None for every CPU of the host.
    pub affinity: Option<Vec<u64>>,
    /// ioprio_set(2) value (class << 13 | data).
    pub ioprio: u32,
    pub timer_slack_ns: u64,
}

impl SchedAttrs {
    /// What a clone child inherits: everything, except that SCHED_RESET_ON_FORK
    /// resets real-time policies to SCHED_OTHER and negative nice values to 0.
    pub fn for_fork(&self) -> SchedAttrs {
        let mut s = self.clone();
        if s.reset_on_fork {
            if s.policy != 0 && s.policy != 3 && s.policy != 5 {
                s.policy = 0;
                s.rt_priority = 0;
                s.deadline = (0, 0, 0);
            }
            s.nice = s.nice.max(0);
            s.reset_on_fork = false;
        }
        s
    }
}

impl Default for SchedAttrs {
    fn default() -> SchedAttrs {
        SchedAttrs {
            nice: 0,
            policy: 0,
            rt_priority: 0,
            reset_on_fork: false,
            deadline: (0, 0, 0),
            affinity: None,
            ioprio: 0,
            // Linux's default timer slack: 50 us.
            timer_slack_ns: 50_000,
        }
    }
}

/// Number of resource limits (RLIMIT_NLIMITS).
pub const RLIM_NLIMITS: usize = 16;

/// The part of a task other threads touch: identity, signal mask and pending
/// signals, and the means to wake it.
pub struct TaskShared {
    tid: AtomicI32,
    pub tg: Arc<ThreadGroup>,
    pub waiter: Arc<Waiter>,
    kick: Arc<dyn Interrupter>,
    /// Blocked signals (bit n-1 for signal n).
    mask: AtomicU64,
    /// The mask in force before rt_sigtimedwait temporarily unblocked the signals
    /// it waits for (Linux's real_blocked): ignored signals in it are still
    /// queued, not dropped.
    pub real_blocked: AtomicU64,
    /// Thread-directed pending signals.
    pub sig: Mutex<TaskSig>,
    /// Real, effective and saved user IDs, as other tasks see them (kill(2)
    /// permission checks); published by the owner after each syscall.
    pub ids: [AtomicU32; 3],
    /// prctl(PR_SET_PDEATHSIG): sent to this task when its parent exits.
    pub pdeathsig: AtomicI32,
    /// Set once the task has exited.
    pub exited: AtomicBool,
    /// vfork: the parent sleeps here until this task execs or exits.
    pub vfork_done: WaitQueue,
    pub vfork_released: AtomicBool,
    /// What /proc shows of this task (other tasks read it); published by the
    /// owner when it changes (setup, exec, after syscalls that change it) and
    /// cleared when the task exits.
    pub proc: Mutex<ProcView>,
    /// When the task started (for /proc/[pid]/stat's starttime).
    pub start_time: std::time::Instant,
}

/// A task's state as procfs shows it.
#[derive(Default)]
pub struct ProcView {
    pub mm: Option<Arc<MemoryManager>>,
    pub fs: Option<Arc<fs::FsContext>>,
    pub fds: Option<Arc<fs::FdTable>>,
    pub exe: Vec<u8>,
    pub comm: [u8; 16],
    pub creds: Credentials,
    pub rlimits: Vec<abi::linux::Rlimit>,
    /// argv and envp strings, each NUL-terminated, as exec laid them out.
    pub cmdline: Vec<u8>,
    pub environ: Vec<u8>,
    /// The auxiliary vector (u64 pairs, through AT_NULL).
    pub auxv: Vec<u8>,
    pub nice: i32,
    /// PR_SET_NO_NEW_PRIVS (status's NoNewPrivs).
    pub no_new_privs: bool,
    /// The initial stack pointer of the image (names the [stack] mapping).
    pub stack_sp: u64,
}

thread_local! {
    static CURRENT: std::cell::RefCell<Option<Arc<TaskShared>>> = const { std::cell::RefCell::new(None) };
}

/// The task the calling host thread runs (procfs's /proc/self), if any.
pub fn current_task() -> Option<Arc<TaskShared>> {
    CURRENT.with(|c| c.borrow().clone())
}

fn set_current_task(t: Option<Arc<TaskShared>>) {
    CURRENT.with(|c| *c.borrow_mut() = t);
}

/// Pending signal state of one task.
#[derive(Default)]
pub struct TaskSig {
    pub pending: SigPending,
}

impl TaskShared {
    pub fn tid(&self) -> i32 {
        self.tid.load(Ordering::Relaxed)
    }

    pub fn set_tid(&self, tid: i32) {
        self.tid.store(tid, Ordering::Relaxed);
    }

    pub fn sigmask(&self) -> u64 {
        self.mask.load(Ordering::SeqCst)
    }

    /// Makes the task notice new state: wakes it if blocked, stops it if it runs
    /// workload code.
    pub fn interrupt(&self) {
        self.waiter.interrupt();
        self.kick.interrupt();
    }

    /// Makes the task leave workload code (if it runs it) without disturbing a
    /// blocking call (see `Kernel::freeze`).
    pub fn kick(&self) {
        self.kick.interrupt();
    }

    /// Signals pending for this task, thread- or process-directed.
    pub fn pending_set(&self) -> u64 {
        let own = self.sig.lock().unwrap().pending.set();
        own | self.tg.lock().pending.set()
    }
}

/// Why the task is leaving its run loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// exit(2): this thread only.
    Thread(i32),
    /// exit_group(2) or a fatal signal: the whole group.
    Group(ExitStatus),
    /// Another thread exec'd: leave without a trace.
    Exec,
}

/// A syscall to re-run through restart_syscall(2) after a signal without handler.
pub type RestartFn = Box<dyn FnMut(&mut Task) -> SysResult + Send>;

/// One workload thread, owned by the host thread that runs it.
pub struct Task {
    pub kernel: Arc<Kernel>,
    pub shared: Arc<TaskShared>,
    /// Thread ID and thread-group ID in the sandbox's PID namespace.
    pub tid: i32,
    pub tgid: i32,
    pub tg: Arc<ThreadGroup>,
    pub mm: Arc<MemoryManager>,
    /// Root, working directory and umask.
    pub fs: Arc<fs::FsContext>,
    pub fds: Arc<fs::FdTable>,
    pub creds: Credentials,
    pub handlers: Arc<SigHandlers>,
    /// The workload's registers while the sentry handles an event.
    pub regs: Regs,
    ctx: Box<dyn Context>,
    /// sigaltstack: (ss_sp, ss_flags, ss_size).
    pub altstack: (u64, i32, u64),
    pub clear_child_tid: u64,
    pub robust_list: (u64, u64),
    pub rlimits: [abi::linux::Rlimit; RLIM_NLIMITS],
    /// Path of the running executable (for AT_EXECFN and /proc/self/exe).
    pub exe_path: Vec<u8>,
    /// Thread name (prctl PR_SET_NAME, /proc/self/comm).
    pub comm: [u8; 16],
    /// prctl PR_SET_DUMPABLE.
    pub dumpable: bool,
    /// prctl PR_SET_NO_NEW_PRIVS (sticky).
    pub no_new_privs: bool,
    /// Scheduling attributes (nice, policy, affinity, I/O priority, timer slack).
    pub sched: SchedAttrs,
    /// personality(2) persona.
    pub personality: u32,
    /// set_mempolicy(2): (mode | mode flags, node mask).
    pub mempolicy: (i32, u64),
    /// Set by exit, exit_group or a fatal signal; the run loop then exits.
    pub exiting: Option<Exit>,
    /// (trapno, error code, cr2) of the fault being delivered, for the sigcontext.
    pub fault_context: Option<(u64, u64, u64)>,
    /// The mask to restore after a signal handler runs (sigsuspend, ppoll,
    /// pselect): set by the call, consumed by delivery or on return.
    pub saved_mask: Option<u64>,
    /// What restart_syscall(2) runs (nanosleep and friends set it).
    pub restart: Option<RestartFn>,
    /// The restart code of the syscall that just returned, if any.
    pending_restart: Option<i32>,
    /// Parent to wake when this vfork child execs or exits.
    pub vfork_parent: Option<Arc<TaskShared>>,
    /// What was last published to `shared.proc`.
    proc_published: ProcStamp,
}

/// The cheaply compared part of what procfs shows (checked after each syscall).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct ProcStamp {
    comm: [u8; 16],
    ids: [u32; 8],
    ngroups: usize,
    /// Capability sets (capset, PR_CAPBSET_DROP, ...) and no_new_privs.
    caps: [u64; 5],
    no_new_privs: bool,
    fs: usize,
    fds: usize,
    mm: usize,
    nice: i32,
    rl_nofile: u64,
    rl_stack: u64,
}

/// What a new task starts with (init, or a clone child).
pub struct TaskSetup {
    pub tg: Arc<ThreadGroup>,
    pub tid: i32,
    pub mm: Arc<MemoryManager>,
    pub fs: Arc<fs::FsContext>,
    pub fds: Arc<fs::FdTable>,
    pub creds: Credentials,
    pub mask: u64,
    pub regs: Regs,
}

impl Task {
    /// Creates the shared half of a task: its waiter and interrupt handle, and the
    /// execution context the owning host thread will use.
    pub fn new_shared(
        kernel: &Arc<Kernel>,
        tg: &Arc<ThreadGroup>,
        tid: i32,
        mask: u64,
    ) -> Result<(Arc<TaskShared>, Box<dyn Context>), Errno> {
        let ctx = kernel.platform.new_context().map_err(|e| {
            tracing::warn!("new context: {e}");
            Errno::EAGAIN
        })?;
        let waiter = Waiter::new().map_err(|_| Errno::EAGAIN)?;
        let shared = Arc::new(TaskShared {
            tid: AtomicI32::new(tid),
            tg: tg.clone(),
            waiter,
            kick: ctx.interrupter(),
            mask: AtomicU64::new(mask),
            real_blocked: AtomicU64::new(0),
            ids: [AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0)],
            sig: Mutex::new(TaskSig::default()),
            pdeathsig: AtomicI32::new(0),
            exited: AtomicBool::new(false),
            vfork_done: WaitQueue::default(),
            vfork_released: AtomicBool::new(false),
            proc: Mutex::new(ProcView::default()),
            start_time: std::time::Instant::now(),
        });
        Ok((shared, ctx))
    }

    /// Builds a task around its shared half (already registered in the PID table
    /// and its thread group).
    pub fn from_setup(
        kernel: Arc<Kernel>,
        shared: Arc<TaskShared>,
        ctx: Box<dyn Context>,
        s: TaskSetup,
    ) -> Task {
        for (slot, v) in shared
            .ids
            .iter()
            .zip([s.creds.uid, s.creds.euid, s.creds.suid])
        {
            slot.store(v, Ordering::Relaxed);
        }
        Task {
            tgid: s.tg.tgid,
            handlers: s.tg.handlers.clone(),
            tg: s.tg,
            kernel,
            shared,
            tid: s.tid,
            mm: s.mm,
            fs: s.fs,
            fds: s.fds,
            creds: s.creds,
            regs: s.regs,
            ctx,
            altstack: (0, libc::SS_DISABLE, 0),
            clear_child_tid: 0,
            robust_list: (0, 0),
            rlimits: default_rlimits(),
            exe_path: Vec::new(),
            comm: [0; 16],
            dumpable: true,
            no_new_privs: false,
            sched: SchedAttrs::default(),
            personality: 0,
            mempolicy: (0, 0),
            exiting: None,
            fault_context: None,
            saved_mask: None,
            restart: None,
            pending_restart: None,
            vfork_parent: None,
            proc_published: ProcStamp::default(),
        }
    }

    fn proc_stamp(&self) -> ProcStamp {
        ProcStamp {
            comm: self.comm,
            ids: [
                self.creds.uid,
                self.creds.euid,
                self.creds.suid,
                self.creds.fsuid,
                self.creds.gid,
                self.creds.egid,
                self.creds.sgid,
                self.creds.fsgid,
            ],
            ngroups: self.creds.groups.len(),
            caps: [
                self.creds.cap_effective,
                self.creds.cap_permitted,
                self.creds.cap_inheritable,
                self.creds.cap_bounding,
                self.creds.cap_ambient,
            ],
            no_new_privs: self.no_new_privs,
            fs: Arc::as_ptr(&self.fs) as usize,
            fds: Arc::as_ptr(&self.fds) as usize,
            mm: Arc::as_ptr(&self.mm) as usize,
            nice: self.sched.nice,
            rl_nofile: self.rlimits[libc::RLIMIT_NOFILE as usize].cur,
            rl_stack: self.rlimits[libc::RLIMIT_STACK as usize].cur,
        }
    }

    /// Publishes what procfs shows of this task if it changed.
    pub fn publish_proc(&mut self) {
        let stamp = self.proc_stamp();
        if stamp == self.proc_published {
            return;
        }
        self.proc_published = stamp;
        let mut v = self.shared.proc.lock().unwrap_or_else(|e| e.into_inner());
        v.mm = Some(self.mm.clone());
        v.fs = Some(self.fs.clone());
        // A replaced fd table may be the last reference to its files: they are
        // closed after the lock is released (closing a pty consults procfs state).
        let old_fds = v.fds.replace(self.fds.clone());
        if v.exe != self.exe_path {
            v.exe = self.exe_path.clone();
        }
        v.comm = self.comm;
        v.creds = self.creds.clone();
        v.rlimits = self.rlimits.to_vec();
        v.nice = self.sched.nice;
        v.no_new_privs = self.no_new_privs;
        drop(v);
        drop(old_fds);
    }

    /// Records argv, envp and auxv from the fresh image's initial stack.
    fn publish_exec_args(&mut self) {
        let mm = self.mm.clone();
        let sp = self.regs.rsp;
        let rd = |a: u64| -> Option<u64> {
            let mut b = [0u8; 8];
            mm.copy_in(a, &mut b).ok()?;
            Some(u64::from_le_bytes(b))
        };
        let strs = |mut p: u64, n: &mut u64| -> Vec<u8> {
            let mut out = Vec::new();
            while let Some(s) = rd(p) {
                if s == 0 || *n > 100_000 {
                    break;
                }
                if let Ok(v) = mm.copy_in_string(s, 131_072) {
                    out.extend_from_slice(&v);
                    out.push(0);
                }
                p += 8;
                *n += 1;
            }
            out
        };
        let mut n = 0u64;
        let argc = rd(sp).unwrap_or(0);
        let cmdline = strs(sp + 8, &mut n);
        let envp_at = sp + 8 + (argc + 1) * 8;
        let mut m = 0u64;
        let environ = strs(envp_at, &mut m);
        let mut p = envp_at + (m + 1) * 8;
        let mut auxv = Vec::new();
        for _ in 0..64 {
            let (Some(k), Some(v)) = (rd(p), rd(p + 8)) else {
                break;
            };
            auxv.extend_from_slice(&k.to_le_bytes());
            auxv.extend_from_slice(&v.to_le_bytes());
            p += 16;
            if k == 0 {
                break;
            }
        }
        let mut v = self.shared.proc.lock().unwrap_or_else(|e| e.into_inner());
        v.cmdline = cmdline;
        v.environ = environ;
        v.auxv = auxv;
        v.stack_sp = sp;
    }

    /// Builds the first task of a sandbox (PID 1, its own process group and
    /// session). It must run on the calling host thread (ptrace ties a stub thread
    /// to its tracer thread).
    pub fn new_init(
        kernel: Arc<Kernel>,
        mm: Arc<MemoryManager>,
        fs: Arc<fs::FsContext>,
        fds: Arc<fs::FdTable>,
        creds: Credentials,
    ) -> Result<Task, Errno> {
        let tid = kernel.pids().alloc()?;
        let tg = ThreadGroup::new(tid, SigHandlers::new(), None, tid, tid, libc::SIGCHLD);
        let (shared, ctx) = Task::new_shared(&kernel, &tg, tid, 0)?;
        {
            let mut st = tg.lock();
            st.tasks.push(shared.clone());
            // The init of the sandbox's PID namespace (not a process `runsc
            // exec` starts the same way).
            st.unkillable = tid == 1;
        }
        {
            let mut pids = kernel.pids();
            pids.tasks.insert(tid, shared.clone());
            pids.groups.insert(tid, tg.clone());
        }
        let setup = TaskSetup {
            tg,
            tid,
            mm,
            fs,
            fds,
            creds,
            mask: 0,
            regs: platform::zeroed_regs(),
        };
        Ok(Task::from_setup(kernel, shared, ctx, setup))
    }

    // ---- signal state accessors ----

    pub fn sigmask(&self) -> u64 {
        self.shared.sigmask()
    }

    /// Sets the blocked mask (SIGKILL and SIGSTOP are never blocked). Unblocking a
    /// pending signal makes the run loop deliver it.
    pub fn set_sigmask(&mut self, m: u64) {
        let m = m & !signal::UNBLOCKABLE;
        let old = self.shared.mask.swap(m, Ordering::SeqCst);
        if old & !m & self.shared.pending_set() != 0 {
            self.shared.waiter.interrupt();
        }
    }

    pub fn sigaction(&self, sig: i32) -> SigAction {
        self.handlers.get(sig)
    }

    pub fn set_sigaction(&mut self, sig: i32, act: SigAction) {
        self.handlers.actions.lock().unwrap()[sig as usize - 1] = act;
        // Setting a pending signal to be ignored discards it (Linux does this in
        // do_sigaction).
        if signal::is_ignored(&act, sig) {
            let tg = self.tg.clone();
            let st = &mut *tg.lock();
            st.pending.discard(sigbit(sig));
            for t in st.tasks.iter() {
                t.sig.lock().unwrap().pending.discard(sigbit(sig));
            }
        }
    }

    pub fn ppid(&self) -> i32 {
        self.tg.ppid()
    }

    /// Whether the task is on its way out (exit, exit_group, fatal signal).
    pub fn is_exiting(&self) -> bool {
        self.exiting.is_some()
    }

    /// The waiter blocking calls sleep on (see `fs::waiter::block`).
    pub fn waiter(&self) -> &Arc<Waiter> {
        &self.shared.waiter
    }

    /// Sends `sig` to this task (Linux's send_sig to current, e.g. SIGPIPE on EPIPE).
    pub fn send_signal_to_self(&mut self, sig: i32) {
        let info = SigInfo::from_sender(sig, signal::SI_USER, self.tgid, self.creds.uid);
        self.kernel.clone().send_to_task(&self.shared, info);
    }

    /// The FPU/vector state (XSAVE area).
    pub fn fpu_state(&mut self) -> Result<Vec<u8>, platform::PlatformError> {
        let space = self.mm.address_space();
        self.ctx.fpu_state(space.as_ref())
    }

    pub fn set_fpu_state(&mut self, state: &[u8]) -> Result<(), platform::PlatformError> {
        let space = self.mm.address_space();
        self.ctx.set_fpu_state(space.as_ref(), state)
    }

    // ---- the run loop ----

    /// Runs the workload until the task exits, then exits it.
    pub fn run(mut self) {
        let table = self.kernel.syscalls.clone();
        crate::timer::note_task(&self);
        set_current_task(Some(self.shared.clone()));
        self.publish_proc();
        loop {
            self.handle_pending();
            if self.exiting.is_some() {
                break;
            }
            self.mm.refresh_after_truncations();
            let space = self.mm.address_space();
            // Counted as in workload code before the last look at the freeze
            // flag, so that `Kernel::freeze` can wait for everyone to leave.
            if !self.kernel.enter_user() {
                continue;
            }
            let ev = self.ctx.switch(space.as_ref(), &mut self.regs);
            self.kernel.leave_user();
            match ev {
                Ok(Event::Syscall) => {
                    let r = &self.regs;
                    let nr = r.orig_rax;
                    let args = [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9];
                    let ret = table.dispatch(&mut self, nr, args);
                    self.publish_ids();
                    self.publish_proc();
                    if self.exiting.is_some() {
                        break;
                    }
                    self.regs.rax = ret;
                    let err = -(ret as i64);
                    if matches!(
                        err as i32,
                        ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND | ERESTART_RESTARTBLOCK
                    ) && err < 4096
                    {
                        self.pending_restart = Some(err as i32);
                    }
                }
                Ok(Event::Fault { signo, code, addr }) => self.fault(signo, code, addr),
                Ok(Event::Interrupted) => {}
                Err(e @ platform::PlatformError::StubDied(_)) => {
                    // Killed from the host: the process dies of SIGKILL.
                    tracing::warn!(tid = self.tid, "platform failure: {e}");
                    self.exiting = Some(Exit::Group(ExitStatus::Signaled(libc::SIGKILL)));
                }
                Err(e) => {
                    tracing::error!(tid = self.tid, "platform failure: {e}");
                    self.exiting = Some(Exit::Group(ExitStatus::Signaled(libc::SIGKILL)));
                }
            }
        }
        {
            // Drop procfs's references (an fd table kept alive would keep pipes
            // open), outside the lock.
            let held = {
                let mut v = self.shared.proc.lock().unwrap_or_else(|e| e.into_inner());
                (v.mm.take(), v.fs.take(), v.fds.take())
            };
            drop(held);
        }
        set_current_task(None);
        crate::process::exit_task(self);
    }

    /// Makes credential changes visible to other tasks.
    fn publish_ids(&self) {
        let c = &self.creds;
        for (slot, v) in self.shared.ids.iter().zip([c.uid, c.euid, c.suid]) {
            if slot.load(Ordering::Relaxed) != v {
                slot.store(v, Ordering::Relaxed);
            }
        }
    }

    /// A synchronous fault becomes a signal that cannot be blocked or ignored
    /// (Linux's force_sig_fault).
    fn fault(&mut self, signo: i32, code: i32, addr: u64) {
        // Shared mappings of tmpfs files map the file's pages as they come: a
        // page not mapped yet faults in here (SEGV_MAPERR), or is SIGBUS past
        // end of file.
        if signo == libc::SIGSEGV && code == 1 {
            match self.mm.handle_fault(addr) {
                Some(true) => return,
                Some(false) => {
                    return self.fault(libc::SIGBUS, 2 /* BUS_ADRERR */, addr);
                }
                None => {}
            }
        }
        // The pages of a file mapping past end of file are left unmapped; the
        // host reports SIGSEGV there, Linux reports SIGBUS.
        let (signo, code) = if signo == libc::SIGSEGV && self.mm.is_past_eof(addr) {
            (libc::SIGBUS, 2 /* BUS_ADRERR */)
        } else if signo == libc::SIGSEGV && code == 1 && self.mm.is_mapped(addr) {
            // As Linux's bad_area_access_error: a fault inside a mapping is
            // SEGV_ACCERR even where the page tables hold nothing (PROT_NONE
            // on a platform whose tables cannot say "present, no access").
            (signo, 2 /* SEGV_ACCERR */)
        } else {
            (signo, code)
        };
        let trapno = match signo {
            libc::SIGSEGV | libc::SIGBUS => 14,
            libc::SIGFPE => 0,
            libc::SIGILL => 6,
            libc::SIGTRAP => 3,
            _ => 0,
        };
        self.fault_context = Some((trapno, 0, addr));
        let act = self.sigaction(signo);
        if self.sigmask() & sigbit(signo) != 0 || act.handler == SIG_IGN {
            self.handlers.actions.lock().unwrap()[signo as usize - 1] = SigAction::default();
            let m = self.sigmask() & !sigbit(signo);
            self.shared.mask.store(m, Ordering::SeqCst);
        }
        if self.sigaction(signo).handler == SIG_DFL {
            // Linux's force_sig_info_to_task: init dies of its own faults.
            self.tg.lock().unkillable = false;
        }
        let info = SigInfo::fault(signo, code, addr);
        self.shared.sig.lock().unwrap().pending.push(info);
    }

    /// Handles everything pending before returning to the workload: a group exit
    /// or exec, a group stop, and signals; then restarts an interrupted syscall if
    /// no handler ran.
    fn handle_pending(&mut self) {
        loop {
            if self.check_group_state() {
                return;
            }
            // Cleared before looking, so a signal arriving after the scan still
            // interrupts the next blocking call.
            self.shared.waiter.clear_interrupt();
            let Some(info) = self.dequeue() else { break };
            self.handle_signal(info);
            if self.exiting.is_some() {
                return;
            }
        }
        if let Some(code) = self.pending_restart.take() {
            self.restart_syscall(code);
        }
        if let Some(m) = self.saved_mask.take() {
            self.set_sigmask(m);
        }
        self.fault_context = None;
    }

    /// Group exit, exec teardown and group stop. True when the task must exit.
    fn check_group_state(&mut self) -> bool {
        loop {
            if self.exiting.is_some() {
                return true;
            }
            let (exit, execing, stopped) = {
                let st = self.tg.lock();
                (st.group_exit, st.execing, st.stopped)
            };
            if let Some(s) = exit {
                self.exiting = Some(Exit::Group(s));
                return true;
            }
            if execing.is_some_and(|t| t != self.tid) {
                self.exiting = Some(Exit::Exec);
                return true;
            }
            if self.kernel.is_frozen() {
                // Paused (`runsc pause`): sleep until thawed or killed.
                let _reg = self
                    .kernel
                    .thaw_wait
                    .register(&self.shared.waiter, fs::waiter::EVENT_ALL);
                let still = self.kernel.is_frozen() && self.tg.lock().group_exit.is_none();
                if still {
                    // As for a group stop: pending signals are looked at again
                    // once thawed (handle_pending clears the mark anyway).
                    self.shared.waiter.clear_interrupt();
                    let _ = self.shared.waiter.wait(None, &[]);
                }
                continue;
            }
            if !stopped {
                return false;
            }
            // Stopped: sleep until SIGCONT or SIGKILL; other signals wait.
            let _reg = self
                .tg
                .stop_wait
                .register(&self.shared.waiter, fs::waiter::EVENT_ALL);
            let still = {
                let st = self.tg.lock();
                st.stopped && st.group_exit.is_none()
            };
            if still {
                self.shared.waiter.clear_interrupt();
                let _ = self.shared.waiter.wait(None, &[]);
            }
        }
    }

    /// Takes the next deliverable signal: thread-directed first, then the group's.
    fn dequeue(&mut self) -> Option<SigInfo> {
        let blocked = self.sigmask();
        if let Some(i) = self.shared.sig.lock().unwrap().pending.take(blocked) {
            return Some(i);
        }
        self.tg.lock().pending.take(blocked)
    }

    fn handle_signal(&mut self, info: SigInfo) {
        let sig = info.signo();
        let act = self.sigaction(sig);
        if act.handler == SIG_IGN && sig != libc::SIGKILL {
            return;
        }
        if act.handler == SIG_DFL || sig == libc::SIGKILL || sig == libc::SIGSTOP {
            let action = signal::default_action(sig);
            // Init gets no default action but a forced SIGKILL/SIGSTOP (Linux's
            // get_signal; it was queued while blocked, or forced from outside).
            if !matches!(action, DefaultAction::Ignore | DefaultAction::Continue)
                && sig != libc::SIGKILL
                && sig != libc::SIGSTOP
                && self.tg.lock().unkillable
            {
                return;
            }
            match action {
                DefaultAction::Ignore | DefaultAction::Continue => {}
                DefaultAction::Stop => crate::process::group_stop(self, sig),
                DefaultAction::Terminate => self.die(ExitStatus::Signaled(sig)),
                DefaultAction::Core => {
                    let core = self.rlimits[libc::RLIMIT_CORE as usize].cur > 0;
                    self.die(if core {
                        ExitStatus::Dumped(sig)
                    } else {
                        ExitStatus::Signaled(sig)
                    })
                }
            }
            return;
        }
        // A handler: finish the interrupted syscall as SA_RESTART says.
        if let Some(code) = self.pending_restart.take() {
            let restart = match code {
                ERESTARTSYS => act.flags & signal::SA_RESTART != 0,
                ERESTARTNOINTR => true,
                _ => false,
            };
            if restart {
                self.restart_syscall(code);
            } else {
                self.regs.rax = Errno::EINTR.as_ret();
            }
        }
        let old_mask = self.saved_mask.take().unwrap_or_else(|| self.sigmask());
        if signal::setup_frame(self, &info, &act, old_mask).is_err() {
            // An unusable stack: Linux forces SIGSEGV, which then kills.
            tracing::info!(
                tid = self.tid,
                sig,
                "cannot build a signal frame; killing with SIGSEGV"
            );
            self.die(ExitStatus::Signaled(libc::SIGSEGV));
            return;
        }
        let mut m = self.sigmask() | act.mask;
        if act.flags & signal::SA_NODEFER == 0 {
            m |= sigbit(sig);
        }
        self.set_sigmask(m);
        if act.flags & signal::SA_RESETHAND != 0 {
            self.handlers.actions.lock().unwrap()[sig as usize - 1] = SigAction::default();
        }
        self.fault_context = None;
    }

    /// Rewinds to re-execute the interrupted syscall.
    fn restart_syscall(&mut self, code: i32) {
        self.regs.rip -= 2;
        self.regs.rax = if code == ERESTART_RESTARTBLOCK {
            abi::sysno::RESTART_SYSCALL
        } else {
            self.regs.orig_rax
        };
    }

    /// A fatal signal: the whole group exits with `st`.
    fn die(&mut self, st: ExitStatus) {
        let k = self.kernel.clone();
        k.kill_group(&self.tg, st);
        self.exiting = Some(Exit::Group(st));
    }

    /// Replaces this task's image with `image` (execve after the point of no
    /// return): new memory and registers, close-on-exec fds closed, caught signals
    /// reset to their default action, the alternate stack forgotten, and the
    /// credentials exec computed (set-id files, capabilities) installed.
    pub fn exec(&mut self, image: crate::exec::Image) {
        let nc = image.creds;
        self.creds = nc.creds;
        // Linux: SUID_DUMP_USER, or suid_dumpable (0) after a privilege change.
        self.dumpable = nc.dumpable;
        if nc.secure || nc.privileged {
            // The parent may no longer signal the privileged process.
            self.shared.pdeathsig.store(0, Ordering::Relaxed);
        }
        if nc.secure {
            // A privileged image gets no more than the default stack limit
            // (_STK_LIM) as its RLIMIT_STACK.
            let rl = &mut self.rlimits[libc::RLIMIT_STACK as usize];
            rl.cur = rl.cur.min(8 << 20);
        }
        self.publish_ids();
        let old = std::mem::replace(&mut self.mm, image.mm);
        if !Arc::ptr_eq(&old.address_space(), &self.mm.address_space()) {
            old.address_space().release_thread();
        }
        drop(old);
        self.regs = image.regs;
        let base = image.comm;
        self.comm = [0; 16];
        let n = base.len().min(15);
        self.comm[..n].copy_from_slice(&base[..n]);
        self.exe_path = image.exe_path;
        self.fds.close_on_exec();
        // A private copy of the actions; handlers reset, SIG_IGN survives.
        let mut acts = *self.handlers.actions.lock().unwrap();
        for a in acts.iter_mut() {
            if a.handler != SIG_IGN {
                *a = SigAction::default();
            }
        }
        *self.handlers.actions.lock().unwrap() = acts;
        self.altstack = (0, libc::SS_DISABLE, 0);
        self.clear_child_tid = 0;
        self.robust_list = (0, 0);
        self.restart = None;
        self.tg.lock().did_exec = true;
        crate::process::release_vfork_parent(self);
        self.publish_exec_args();
        self.proc_published = ProcStamp::default();
        self.publish_proc();
        let exe = self.exe_path.clone();
        self.shared
            .proc
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .exe = exe;
    }

    // ---- workload memory ----

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

    pub fn copy_in_u32(&self, addr: u64) -> Result<u32, Errno> {
        let mut b = [0u8; 4];
        self.copy_in(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
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
pub fn default_rlimits() -> [abi::linux::Rlimit; RLIM_NLIMITS] {
    use abi::linux::Rlimit;
    let lim = |cur, max| Rlimit { cur, max };
    let inf = Rlimit::INFINITY;
    let mut r = [lim(inf, inf); RLIM_NLIMITS];
    r[libc::RLIMIT_STACK as usize] = lim(8 << 20, inf);
    r[libc::RLIMIT_CORE as usize] = lim(0, inf);
    r[libc::RLIMIT_NOFILE as usize] = lim(1024, 1 << 20);
    r[libc::RLIMIT_NPROC as usize] = lim(63_000, 63_000);
    r[libc::RLIMIT_MEMLOCK as usize] = lim(8 << 20, 8 << 20);
    r[libc::RLIMIT_SIGPENDING as usize] = lim(63_000, 63_000);
    r[libc::RLIMIT_MSGQUEUE as usize] = lim(819_200, 819_200);
    r[libc::RLIMIT_NICE as usize] = lim(0, 0);
    r[libc::RLIMIT_RTPRIO as usize] = lim(0, 0);
    r
}
