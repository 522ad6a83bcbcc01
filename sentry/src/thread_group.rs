//! Thread groups (processes): their threads, parent and children, process group
//! and session, shared pending signals, stop state and exit status.

use std::sync::{Arc, Mutex, MutexGuard};

use fs::waiter::WaitQueue;

use crate::signal::{SigAction, SigPending, NSIG};
use crate::task::{ExitStatus, TaskShared};

/// Signal actions, shared by the tasks cloned with CLONE_SIGHAND (every thread
/// of a group).
pub struct SigHandlers {
    pub actions: Mutex<[SigAction; NSIG]>,
}

impl SigHandlers {
    pub fn new() -> Arc<SigHandlers> {
        Arc::new(SigHandlers {
            actions: Mutex::new([SigAction::default(); NSIG]),
        })
    }

    /// A private copy (fork without CLONE_SIGHAND).
    pub fn copy(&self) -> Arc<SigHandlers> {
        Arc::new(SigHandlers {
            actions: Mutex::new(*self.actions.lock().unwrap()),
        })
    }

    pub fn get(&self, sig: i32) -> SigAction {
        self.actions.lock().unwrap()[sig as usize - 1]
    }
}

/// CPU time, in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub user_ns: u64,
    pub sys_ns: u64,
    /// Peak resident set, in KiB (a maximum, not a sum, when combined).
    pub maxrss_kb: u64,
}

impl Usage {
    pub fn add(&mut self, o: Usage) {
        self.user_ns += o.user_ns;
        self.sys_ns += o.sys_ns;
        self.maxrss_kb = self.maxrss_kb.max(o.maxrss_kb);
    }

    /// `struct rusage` (144 bytes): CPU times and the peak RSS; the other
    /// counters are not tracked and read as zero.
    pub fn to_rusage_bytes(&self) -> Vec<u8> {
        let mut e = abi::linux::Encoder::with_capacity(144);
        for ns in [self.user_ns, self.sys_ns] {
            e.u64(ns / 1_000_000_000).u64((ns % 1_000_000_000) / 1000);
        }
        e.u64(self.maxrss_kb);
        e.zeros(144 - 40);
        e.finish()
    }
}

/// A wait(2)-reportable state change of a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildEvent {
    Exited(ExitStatus),
    Stopped(i32),
    Continued,
}

/// Mutable state of a thread group, under its lock.
pub struct TgState {
    /// Live tasks.
    pub tasks: Vec<Arc<TaskShared>>,
    pub parent: Option<Arc<ThreadGroup>>,
    pub children: Vec<Arc<ThreadGroup>>,
    pub pgid: i32,
    pub sid: i32,
    /// Process-directed pending signals.
    pub pending: SigPending,
    /// Signal sent to the parent when the group exits (SIGCHLD, or another for
    /// clone children, or 0).
    pub exit_signal: i32,
    /// exit_group or a fatal signal: every thread is on its way out.
    pub group_exit: Option<ExitStatus>,
    /// Set when the last thread has exited: the group is a zombie until reaped.
    pub zombie: Option<ExitStatus>,
    pub reaped: bool,
    /// A group stop is in effect (SIGSTOP and friends).
    pub stopped: bool,
    /// Unreported stop (signal) / continue, for the parent's wait.
    pub stop_report: Option<i32>,
    pub cont_report: bool,
    /// PR_SET_CHILD_SUBREAPER.
    pub subreaper: bool,
    /// The sandbox's init (Linux's SIGNAL_UNKILLABLE): signals it has no
    /// handler for are dropped, except SIGKILL/SIGSTOP when forced (from
    /// outside the sandbox or the kernel). A fatal fault clears it.
    pub unkillable: bool,
    /// The group has exec'd (setpgid on it then fails with EACCES).
    pub did_exec: bool,
    /// A thread is exec'ing: the others exit silently.
    pub execing: Option<i32>,
    /// CPU time of exited threads, and of reaped children.
    pub usage: Usage,
    pub children_usage: Usage,
    /// alarm/itimers, POSIX timers and where to read the group's CPU time.
    pub timers: crate::timer::GroupTimers,
}

/// A process.
pub struct ThreadGroup {
    pub tgid: i32,
    pub handlers: Arc<SigHandlers>,
    state: Mutex<TgState>,
    /// The parent sleeps here in wait(2); notified on every child state change.
    pub child_wait: WaitQueue,
    /// Threads of a stopped group sleep here until SIGCONT (and exec waits here
    /// for the other threads to go).
    pub stop_wait: WaitQueue,
    /// pidfds of this process wait here for its exit.
    pub exit_wait: WaitQueue,
    /// signalfds wait here: notified whenever a signal is queued to the group
    /// or one of its threads.
    pub signal_wait: WaitQueue,
}

impl ThreadGroup {
    pub fn new(
        tgid: i32,
        handlers: Arc<SigHandlers>,
        parent: Option<Arc<ThreadGroup>>,
        pgid: i32,
        sid: i32,
        exit_signal: i32,
    ) -> Arc<ThreadGroup> {
        Arc::new(ThreadGroup {
            tgid,
            handlers,
            state: Mutex::new(TgState {
                tasks: Vec::new(),
                parent,
                children: Vec::new(),
                pgid,
                sid,
                pending: SigPending::default(),
                exit_signal,
                group_exit: None,
                zombie: None,
                reaped: false,
                stopped: false,
                stop_report: None,
                cont_report: false,
                subreaper: false,
                unkillable: false,
                did_exec: false,
                execing: None,
                usage: Usage::default(),
                children_usage: Usage::default(),
                timers: Default::default(),
            }),
            child_wait: WaitQueue::default(),
            stop_wait: WaitQueue::default(),
            exit_wait: WaitQueue::default(),
            signal_wait: WaitQueue::default(),
        })
    }

    /// Locks the group's state. Lock order: a parent before its children; the
    /// kernel's PID table before any group.
    pub fn lock(&self) -> MutexGuard<'_, TgState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The parent's tgid as getppid(2) reports it (0 for init).
    pub fn ppid(&self) -> i32 {
        self.lock().parent.as_ref().map_or(0, |p| p.tgid)
    }

    /// Interrupts every live thread (they re-check group state).
    pub fn interrupt_all(&self) {
        for t in self.lock().tasks.iter() {
            t.interrupt();
        }
    }
}
