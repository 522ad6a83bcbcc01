//! The kernel object: what every task shares (platform, VFS, syscall table, the
//! PID namespace, futexes, clocks), and signal sending.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use abi::Errno;
use platform::Platform;

use crate::signal::{self, sigbit, DefaultAction, SigInfo};
use crate::task::{ExitStatus, Task, TaskShared};
use crate::thread_group::ThreadGroup;

/// Where a signal comes from, for the protection of the sandbox's init
/// (Linux's `force` in send_signal_locked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigOrigin {
    /// A process of the sandbox, or the sentry on its behalf (kill, tkill,
    /// sigqueue, pidfds, terminals, timers, SIGPIPE): forced only when
    /// si_code is SI_KERNEL.
    Sandbox,
    /// Outside the sandbox's PID namespace (an ancestor namespace in Linux):
    /// the container engine through the control socket (`runsc kill`, the
    /// signals `runsc exec` forwards). Always forced; si_pid is 0.
    Outside,
}

impl SigOrigin {
    fn force(self, info: &SigInfo) -> bool {
        self == SigOrigin::Outside || info.code() == signal::SI_KERNEL
    }
}

/// Delivers the SIGIO of O_ASYNC files.
struct SigioSender(std::sync::Weak<Kernel>);

impl fs::fasync::SigioSender for SigioSender {
    fn send_sigio(&self, owner: fs::fasync::FOwner, sig: i32, fd: i32, code: i32, band: i64) {
        use fs::fasync::OwnerKind;
        let Some(k) = self.0.upgrade() else { return };
        let info = if sig == 0 {
            SigInfo::new(libc::SIGIO, signal::SI_KERNEL)
        } else {
            SigInfo::sigio(sig, code, band, fd)
        };
        match owner.kind {
            OwnerKind::Tid => {
                if let Some(t) = k.task(owner.id) {
                    k.send_to_task(&t, info);
                }
            }
            OwnerKind::Pid => {
                if let Some(g) = k.group(owner.id) {
                    k.send_to_group(&g, info);
                }
            }
            OwnerKind::Pgrp => {
                for g in k.process_group(owner.id) {
                    k.send_to_group(&g, info);
                }
            }
        }
    }
}

/// The syscall table, handed to the kernel by `runsc boot` (the `syscalls` crate
/// implements it; the kernel cannot depend on that crate without a cycle).
pub trait SyscallTable: Send + Sync {
    /// Runs syscall `nr` with `args` for `task` and returns the value for rax
    /// (a result, or a negated errno).
    fn dispatch(&self, task: &mut Task, nr: u64, args: [u64; 6]) -> u64;
}

/// Highest PID handed out before wrapping (Linux's default pid_max).
const PID_MAX: i32 = 4_194_304;

/// The sandbox's PID namespace.
#[derive(Default)]
pub struct Pids {
    next: i32,
    /// Live (and zombie leader) tasks by TID.
    pub tasks: HashMap<i32, Arc<TaskShared>>,
    /// Thread groups by TGID, until reaped.
    pub groups: HashMap<i32, Arc<ThreadGroup>>,
}

impl Pids {
    /// Allocates an unused ID (the first is 1, the container's init).
    pub fn alloc(&mut self) -> Result<i32, Errno> {
        for _ in 0..PID_MAX {
            self.next = if self.next >= PID_MAX {
                1
            } else {
                self.next + 1
            };
            let id = self.next;
            if !self.tasks.contains_key(&id) && !self.groups.contains_key(&id) {
                return Ok(id);
            }
        }
        Err(Errno::EAGAIN)
    }
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
    /// Reported by uname(2); sethostname(2) and setdomainname(2) change them.
    pub hostname: Mutex<String>,
    pub domainname: Mutex<String>,
    pub futexes: crate::futex::Futexes,
    pub pids: Mutex<Pids>,
    /// The init process's exit status, once it has exited.
    init_status: Mutex<Option<ExitStatus>>,
    init_exited: Condvar,
    /// `runsc pause`: no task returns to workload code while set.
    frozen: std::sync::atomic::AtomicBool,
    /// Frozen tasks sleep here until `thaw`.
    pub thaw_wait: fs::waiter::WaitQueue,
    /// Tasks in (or about to switch to) workload code.
    in_user: std::sync::atomic::AtomicUsize,
    /// The sandbox's memory and task bounds.
    pub limits: crate::limits::Limits,
    /// The user-space TCP/IP stack of AF_INET/AF_INET6 sockets.
    pub netstack: crate::net::Netstack,
    /// The network configuration sockets see (lo only until the
    /// integrator installs the netstack's view with `net.set_info`).
    pub net: Arc<crate::net::Net>,
    /// How sockets reach a network (`--network`), set once at boot; unset
    /// is [`NetworkMode::None`].
    pub network: std::sync::OnceLock<NetworkMode>,
}

/// `--network`: none (no Internet sockets yet), sandbox (the sentry's own
/// stack) or host (hostinet: host sockets, `crate::net::hostinet`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetworkMode {
    #[default]
    None,
    Sandbox,
    Host,
}

impl Kernel {
    pub fn new(
        platform: Arc<dyn Platform>,
        vfs: Arc<fs::Vfs>,
        syscalls: Arc<dyn SyscallTable>,
        strace: bool,
    ) -> Arc<Kernel> {
        Kernel::new_with_hostname(platform, vfs, syscalls, strace, "sandbox".to_string())
    }

    /// As [`Kernel::new`], with the host name uname(2) reports (an OCI
    /// bundle's `hostname`).
    pub fn new_with_hostname(
        platform: Arc<dyn Platform>,
        vfs: Arc<fs::Vfs>,
        syscalls: Arc<dyn SyscallTable>,
        strace: bool,
        hostname: String,
    ) -> Arc<Kernel> {
        let k = Arc::new(Kernel {
            platform,
            vfs,
            syscalls,
            strace,
            boot_time: Instant::now(),
            hostname: Mutex::new(hostname),
            domainname: Mutex::new("(none)".to_string()),
            futexes: Default::default(),
            pids: Mutex::new(Pids::default()),
            init_status: Mutex::new(None),
            init_exited: Condvar::new(),
            frozen: std::sync::atomic::AtomicBool::new(false),
            thaw_wait: fs::waiter::WaitQueue::default(),
            in_user: std::sync::atomic::AtomicUsize::new(0),
            limits: Default::default(),
            netstack: Default::default(),
            net: Default::default(),
            network: Default::default(),
        });
        crate::tty::KernelTtyHooks::install(&k);
        k
    }

    pub fn pids(&self) -> std::sync::MutexGuard<'_, Pids> {
        self.pids.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn task(&self, tid: i32) -> Option<Arc<TaskShared>> {
        self.pids().tasks.get(&tid).cloned()
    }

    pub fn group(&self, tgid: i32) -> Option<Arc<ThreadGroup>> {
        self.pids().groups.get(&tgid).cloned()
    }

    /// Records that init (PID 1) has exited: the sandbox is over.
    pub fn set_init_exited(&self, st: ExitStatus) {
        *self.init_status.lock().unwrap() = Some(st);
        self.init_exited.notify_all();
    }

    /// Whether init has exited (the sandbox is shutting down).
    pub fn init_exited(&self) -> bool {
        self.init_status.lock().unwrap().is_some()
    }

    /// SIGKILLs every process (the sandbox is being stopped from outside:
    /// a gofer died).
    pub fn kill_all(&self) {
        for g in self.all_groups() {
            self.kill_group(&g, ExitStatus::Signaled(libc::SIGKILL));
        }
    }

    /// SIGKILLs the processes whose address space died under them (a ptrace
    /// stub killed from the host), as Linux would a process whose memory
    /// vanished; the rest of the sandbox goes on. One pass; returns how many
    /// processes it killed. Address spaces shared by several processes (vfork)
    /// are looked at once.
    pub fn kill_lost_address_spaces(&self) -> usize {
        let mut seen: Vec<(*const (), bool)> = Vec::new();
        let mut killed = 0;
        for g in self.all_groups() {
            let task = {
                let st = g.lock();
                if st.group_exit.is_some() {
                    continue;
                }
                st.tasks.first().cloned()
            };
            let Some(t) = task else { continue };
            let mm = t.proc.lock().unwrap_or_else(|e| e.into_inner()).mm.clone();
            let Some(mm) = mm else { continue };
            let space = mm.address_space();
            let key = Arc::as_ptr(&space) as *const ();
            let alive = match seen.iter().find(|(k, _)| *k == key) {
                Some((_, a)) => *a,
                None => {
                    let a = space.alive();
                    seen.push((key, a));
                    a
                }
            };
            if !alive {
                tracing::warn!(
                    "the host process of pid {}'s address space died; killing it",
                    g.tgid
                );
                self.kill_group(&g, ExitStatus::Signaled(libc::SIGKILL));
                killed += 1;
            }
        }
        killed
    }

    /// Blocks until init exits and returns its status.
    pub fn wait_init(&self) -> ExitStatus {
        let mut g = self.init_status.lock().unwrap();
        loop {
            if let Some(st) = *g {
                return st;
            }
            g = self.init_exited.wait(g).unwrap();
        }
    }

    /// Sends `info` to one thread (tkill, tgkill, SIGPIPE) from inside the
    /// sandbox.
    pub fn send_to_task(&self, target: &Arc<TaskShared>, info: SigInfo) {
        self.send_to_task_from(target, info, SigOrigin::Sandbox);
    }

    /// [`Kernel::send_to_task`] from `origin`.
    pub fn send_to_task_from(&self, target: &Arc<TaskShared>, info: SigInfo, origin: SigOrigin) {
        let sig = info.signo();
        let tg = target.tg.clone();
        if self.prepare(&tg, sig, origin.force(&info)) {
            return;
        }
        if sig == libc::SIGKILL {
            self.kill_group(&tg, ExitStatus::Signaled(libc::SIGKILL));
            return;
        }
        {
            let mut st = target.sig.lock().unwrap();
            st.pending.push(info);
        }
        if target.sigmask() & sigbit(sig) == 0 {
            target.interrupt();
        }
        tg.signal_wait.notify(fs::waiter::EVENT_IN);
    }

    /// Sends `info` to a process (kill, SIGCHLD, timers) from inside the
    /// sandbox: queued on the group and one thread that does not block it is
    /// woken.
    pub fn send_to_group(&self, tg: &Arc<ThreadGroup>, info: SigInfo) {
        self.send_to_group_from(tg, info, SigOrigin::Sandbox);
    }

    /// [`Kernel::send_to_group`] from `origin`.
    pub fn send_to_group_from(&self, tg: &Arc<ThreadGroup>, info: SigInfo, origin: SigOrigin) {
        let sig = info.signo();
        if self.prepare(tg, sig, origin.force(&info)) {
            return;
        }
        if sig == libc::SIGKILL {
            self.kill_group(tg, ExitStatus::Signaled(libc::SIGKILL));
            return;
        }
        {
            let st = &mut *tg.lock();
            if st.zombie.is_some() {
                return;
            }
            st.pending.push(info);
            if let Some(t) = st.tasks.iter().find(|t| t.sigmask() & sigbit(sig) == 0) {
                t.interrupt();
            }
        }
        tg.signal_wait.notify(fs::waiter::EVENT_IN);
    }

    /// The generation-time side effects of a signal (Linux's prepare_signal):
    /// SIGCONT resumes a stopped group and discards pending stop signals; stop
    /// signals discard a pending SIGCONT. Returns true when the signal is to be
    /// dropped (ignored, or unwanted by init, and blocked by no thread).
    ///
    /// `force` is Linux's: the signal comes from the kernel or from outside
    /// the sandbox's PID namespace, so that SIGKILL and SIGSTOP reach init.
    fn prepare(&self, tg: &Arc<ThreadGroup>, sig: i32, force: bool) -> bool {
        let stop_mask = sigbit(libc::SIGSTOP)
            | sigbit(libc::SIGTSTP)
            | sigbit(libc::SIGTTIN)
            | sigbit(libc::SIGTTOU);
        let mut notify_parent = None;
        let unkillable;
        {
            let st = &mut *tg.lock();
            if st.zombie.is_some() || st.group_exit.is_some() {
                return true;
            }
            unkillable = st.unkillable;
            if sig == libc::SIGCONT {
                st.pending.discard(stop_mask);
                for t in st.tasks.iter() {
                    t.sig.lock().unwrap().pending.discard(stop_mask);
                }
                if st.stopped {
                    st.stopped = false;
                    st.stop_report = None;
                    st.cont_report = true;
                    notify_parent = st.parent.clone();
                }
            } else if stop_mask & sigbit(sig) != 0 {
                st.pending.discard(sigbit(libc::SIGCONT));
                for t in st.tasks.iter() {
                    t.sig.lock().unwrap().pending.discard(sigbit(libc::SIGCONT));
                }
            }
        }
        if sig == libc::SIGCONT {
            tg.stop_wait.notify(fs::waiter::EVENT_ALL);
            for t in tg.lock().tasks.iter() {
                t.waiter.notify();
            }
        }
        if let Some(p) = notify_parent {
            let act = p.handlers.get(libc::SIGCHLD);
            if act.flags & signal::SA_NOCLDSTOP == 0 {
                self.send_to_group(
                    &p,
                    SigInfo::child(signal::CLD_CONTINUED, tg.tgid, 0, libc::SIGCONT, 0, 0),
                );
            }
            p.child_wait.notify(fs::waiter::EVENT_ALL);
        }
        let kernel_only = sig == libc::SIGKILL || sig == libc::SIGSTOP;
        let act = tg.handlers.get(sig);
        // Linux's sig_task_ignored: init (SIGNAL_UNKILLABLE) drops what it has
        // no handler for, unless forced SIGKILL/SIGSTOP.
        let init_drops = unkillable && act.handler == signal::SIG_DFL && !(force && kernel_only);
        if !init_drops && (kernel_only || !signal::is_ignored(&act, sig)) {
            return false;
        }
        // Dropped unless some thread blocks it (then it stays pending: the
        // action may change before it is unblocked).
        !tg.lock().tasks.iter().any(|t| {
            (t.sigmask() | t.real_blocked.load(std::sync::atomic::Ordering::SeqCst)) & sigbit(sig)
                != 0
        })
    }

    /// Starts a group exit (SIGKILL, fatal signals, exit_group): every thread exits.
    pub fn kill_group(&self, tg: &Arc<ThreadGroup>, status: ExitStatus) {
        {
            let st = &mut *tg.lock();
            if st.zombie.is_some() {
                return;
            }
            if st.group_exit.is_none() {
                st.group_exit = Some(status);
            }
            st.stopped = false;
        }
        tg.stop_wait.notify(fs::waiter::EVENT_ALL);
        tg.interrupt_all();
    }

    /// The default action of an unhandled signal that reached a thread.
    pub fn default_action(sig: i32) -> DefaultAction {
        signal::default_action(sig)
    }

    /// Every thread group in a process group.
    pub fn process_group(&self, pgid: i32) -> Vec<Arc<ThreadGroup>> {
        let groups: Vec<Arc<ThreadGroup>> = self.pids().groups.values().cloned().collect();
        groups
            .into_iter()
            .filter(|g| {
                let st = g.lock();
                st.pgid == pgid && st.zombie.is_none()
            })
            .collect()
    }

    /// What O_ASYNC files use to send SIGIO (see fs::fasync).
    pub fn sigio_sender(self: &Arc<Self>) -> Arc<dyn fs::fasync::SigioSender> {
        Arc::new(SigioSender(Arc::downgrade(self)))
    }

    /// Whether `owner` names a live thread, process or process group (F_GETOWN
    /// reports 0 for an owner that is gone).
    pub fn fown_alive(&self, owner: fs::fasync::FOwner) -> bool {
        use fs::fasync::OwnerKind;
        match owner.kind {
            OwnerKind::Tid => self
                .task(owner.id)
                .is_some_and(|t| !t.exited.load(std::sync::atomic::Ordering::SeqCst)),
            OwnerKind::Pid => self.group(owner.id).is_some(),
            OwnerKind::Pgrp => !self.process_group(owner.id).is_empty(),
        }
    }

    /// Whether any thread, process or process group has ID `id` (F_SETOWN's
    /// ESRCH check, Linux's find_vpid).
    pub fn pid_exists(&self, id: i32) -> bool {
        {
            let p = self.pids();
            if p.tasks.contains_key(&id) || p.groups.contains_key(&id) {
                return true;
            }
        }
        !self.process_group(id).is_empty()
    }

    /// Every live thread group.
    pub fn all_groups(&self) -> Vec<Arc<ThreadGroup>> {
        let groups: Vec<Arc<ThreadGroup>> = self.pids().groups.values().cloned().collect();
        groups
            .into_iter()
            .filter(|g| g.lock().zombie.is_none())
            .collect()
    }

    /// Freezes the sandbox (`runsc pause`): every task stops before its next
    /// return to workload code; tasks running workload code are kicked out of
    /// it. Blocked syscalls are not interrupted (the workload sees nothing), and
    /// a group exit (SIGKILL) still proceeds.
    ///
    /// Returns once no task runs workload code (or after `timeout`; false
    /// then).
    pub fn freeze(&self, timeout: std::time::Duration) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        self.frozen.store(true, SeqCst);
        let tasks: Vec<Arc<TaskShared>> = self.pids().tasks.values().cloned().collect();
        for t in tasks {
            t.kick();
        }
        let end = Instant::now() + timeout;
        while self.in_user.load(SeqCst) != 0 {
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        true
    }

    /// A task is about to switch to workload code: false (and not counted)
    /// when the sandbox is frozen.
    pub fn enter_user(&self) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        self.in_user.fetch_add(1, SeqCst);
        if self.is_frozen() {
            self.in_user.fetch_sub(1, SeqCst);
            return false;
        }
        true
    }

    /// The task is back from workload code.
    pub fn leave_user(&self) {
        self.in_user
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Undoes [`Kernel::freeze`].
    pub fn thaw(&self) {
        self.frozen
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.thaw_wait.notify(fs::waiter::EVENT_ALL);
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen.load(std::sync::atomic::Ordering::SeqCst)
    }
}
