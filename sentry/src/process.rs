//! Process lifecycle: clone, exit, wait, reaping and reparenting, group stop,
//! exec's teardown of other threads, process groups and sessions.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use abi::Errno;
use fs::waiter::{block, EVENT_ALL};

use crate::kernel::Kernel;
use crate::signal::{self, SigInfo, SIG_IGN};
use crate::task::{Exit, ExitStatus, Task, TaskSetup};
use crate::thread_group::{ChildEvent, ThreadGroup, Usage};

const CLONE_NAMESPACES: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// The arguments of clone(2) / clone3(2).
#[derive(Clone, Copy, Debug, Default)]
pub struct CloneArgs {
    pub flags: u64,
    pub stack: u64,
    pub parent_tid: u64,
    pub child_tid: u64,
    pub tls: u64,
    pub exit_signal: i32,
}

fn has(flags: u64, f: i32) -> bool {
    flags & f as u64 != 0
}

enum MmPlan {
    Share(Arc<crate::mm::MemoryManager>, u64),
    Fork(Arc<crate::mm::MemoryManager>),
}

/// clone(2): creates a thread or process running on a new host thread. Returns
/// the child's TID.
pub fn clone(t: &mut Task, a: CloneArgs) -> Result<i32, Errno> {
    let f = a.flags;
    if has(f, libc::CLONE_SIGHAND) && !has(f, libc::CLONE_VM) {
        return Err(Errno::EINVAL);
    }
    if has(f, libc::CLONE_THREAD) && !has(f, libc::CLONE_SIGHAND) {
        return Err(Errno::EINVAL);
    }
    if f & CLONE_NAMESPACES != 0 || has(f, libc::CLONE_PIDFD) {
        tracing::warn!(
            tid = t.tid,
            flags = format_args!("{f:#x}"),
            "clone: namespaces and pidfds are not supported"
        );
        return Err(Errno::EINVAL);
    }
    if !(0..=64).contains(&a.exit_signal) {
        return Err(Errno::EINVAL);
    }
    if has(f, libc::CLONE_PARENT) && t.tgid == 1 {
        return Err(Errno::EINVAL);
    }
    let k = t.kernel.clone();
    let max_tasks = k.limits.max_tasks();
    let tid = {
        let mut pids = k.pids();
        // The sandbox's task limit (a pids cgroup's pids.max): EAGAIN.
        if max_tasks.is_some_and(|m| pids.tasks.len() >= m) {
            return Err(Errno::EAGAIN);
        }
        pids.alloc()?
    };
    let thread = has(f, libc::CLONE_THREAD);
    let tg = if thread {
        t.tg.clone()
    } else {
        let (parent, pgid, sid) = {
            let st = t.tg.lock();
            let parent = if has(f, libc::CLONE_PARENT) {
                st.parent.clone()
            } else {
                Some(t.tg.clone())
            };
            (parent, st.pgid, st.sid)
        };
        let handlers = if has(f, libc::CLONE_SIGHAND) {
            t.handlers.clone()
        } else {
            t.handlers.copy()
        };
        ThreadGroup::new(tid, handlers, parent, pgid, sid, a.exit_signal)
    };
    let (shared, ctx) = Task::new_shared(&k, &tg, tid, t.sigmask())?;
    let plan = if has(f, libc::CLONE_VM) {
        let token = t.mm.address_space().new_thread().map_err(|e| {
            tracing::warn!("clone: new stub thread: {e}");
            Errno::EAGAIN
        })?;
        MmPlan::Share(t.mm.clone(), token)
    } else {
        MmPlan::Fork(t.mm.clone())
    };
    let mut regs = t.regs;
    regs.rax = 0;
    if a.stack != 0 {
        regs.rsp = a.stack;
    }
    if has(f, libc::CLONE_SETTLS) {
        regs.fs_base = a.tls;
    }
    let fpu = t.fpu_state().ok();
    let setup = TaskSetup {
        tg: tg.clone(),
        tid,
        mm: t.mm.clone(),
        fs: if has(f, libc::CLONE_FS) {
            t.fs.clone()
        } else {
            t.fs.fork()
        },
        fds: if has(f, libc::CLONE_FILES) {
            t.fds.clone()
        } else {
            t.fds.fork()
        },
        creds: t.creds.clone(),
        mask: t.sigmask(),
        regs,
    };

    // Register the child before it runs, so that kill and wait see it at once.
    {
        let mut pids = k.pids();
        // Checked again under the lock that registers the child (the check
        // above keeps a fork bomb from making stubs first).
        if max_tasks.is_some_and(|m| pids.tasks.len() >= m) {
            return Err(Errno::EAGAIN);
        }
        let parent_tg = if thread {
            None
        } else {
            tg.lock().parent.clone()
        };
        if let Some(p) = &parent_tg {
            let mut ps = p.lock();
            if ps.group_exit.is_some() || ps.zombie.is_some() {
                return Err(Errno::EINTR);
            }
            ps.children.push(tg.clone());
        }
        {
            let mut st = tg.lock();
            if st.group_exit.is_some() {
                return Err(Errno::EINTR);
            }
            st.tasks.push(shared.clone());
        }
        pids.tasks.insert(tid, shared.clone());
        if !thread {
            pids.groups.insert(tid, tg.clone());
        }
    }

    let (tx, rx) = std::sync::mpsc::channel::<Result<(), Errno>>();
    {
        // procfs: the child shows the parent's argv, environment and auxv.
        let pv = t.shared.proc.lock().unwrap_or_else(|e| e.into_inner());
        let mut cv = shared.proc.lock().unwrap_or_else(|e| e.into_inner());
        cv.cmdline = pv.cmdline.clone();
        cv.environ = pv.environ.clone();
        cv.auxv = pv.auxv.clone();
        cv.exe = t.exe_path.clone();
        cv.comm = t.comm;
        cv.stack_sp = pv.stack_sp;
    }
    let inherit = (
        t.rlimits,
        t.exe_path.clone(),
        t.comm,
        if has(f, libc::CLONE_VM) && !has(f, libc::CLONE_VFORK) {
            (0, libc::SS_DISABLE, 0)
        } else {
            t.altstack
        },
        t.dumpable,
        t.no_new_privs,
    );
    let vfork_parent = has(f, libc::CLONE_VFORK).then(|| t.shared.clone());
    // Scheduling attributes are inherited (SCHED_RESET_ON_FORK is the sched
    // code's to apply).
    let inherit_sched = (t.sched.for_fork(), t.personality, t.mempolicy);
    let k2 = k.clone();
    let shared2 = shared.clone();
    // Before the child can run: a thread that exits at once clears this word
    // (CLONE_CHILD_CLEARTID), and a later write would resurrect it for
    // pthread_join forever. (On failure the child never ran; the word is stale,
    // as on Linux.)
    if has(f, libc::CLONE_PARENT_SETTID) {
        let _ = t.copy_out_u32(a.parent_tid, tid as u32);
    }
    let spawned = std::thread::Builder::new()
        .name(format!("task-{tid}"))
        .spawn(move || {
            let mm = match plan {
                MmPlan::Share(mm, token) => match mm.address_space().attach_thread(token) {
                    Ok(()) => mm,
                    Err(e) => {
                        tracing::warn!("clone: attach stub thread: {e}");
                        let _ = tx.send(Err(Errno::EAGAIN));
                        return;
                    }
                },
                MmPlan::Fork(parent) => {
                    let space = match k2.platform.new_address_space() {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!("fork: new address space: {e}");
                            let _ = tx.send(Err(Errno::EAGAIN));
                            return;
                        }
                    };
                    match parent.fork(space) {
                        Ok(mm) => Arc::new(mm),
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
            };
            let mut child = Task::from_setup(k2, shared2, ctx, TaskSetup { mm, ..setup });
            (
                child.rlimits,
                child.exe_path,
                child.comm,
                child.altstack,
                child.dumpable,
                child.no_new_privs,
            ) = inherit;
            (child.sched, child.personality, child.mempolicy) = inherit_sched;
            if let Some(state) = fpu {
                let _ = child.set_fpu_state(&state);
            }
            if has(f, libc::CLONE_CHILD_SETTID) {
                let _ = child.copy_out_u32(a.child_tid, tid as u32);
            }
            if has(f, libc::CLONE_CHILD_CLEARTID) {
                child.clear_child_tid = a.child_tid;
            }
            child.vfork_parent = vfork_parent;
            let _ = tx.send(Ok(()));
            child.run();
        });
    let started = match spawned {
        Ok(_) => rx.recv().unwrap_or(Err(Errno::EAGAIN)),
        Err(_) => Err(Errno::EAGAIN),
    };
    if let Err(e) = started {
        unregister_failed(&k, &tg, &shared, thread);
        return Err(e);
    }
    if has(f, libc::CLONE_VFORK) {
        // The parent sleeps until the child execs or exits (killably).
        loop {
            let r = block(
                t.waiter(),
                &[(&shared.vfork_done, EVENT_ALL)],
                &[],
                None,
                || {
                    if shared.vfork_released.load(Ordering::SeqCst) {
                        Ok(())
                    } else {
                        Err(Errno::EAGAIN)
                    }
                },
            );
            if r.is_ok() || t.tg.lock().group_exit.is_some() {
                break;
            }
            t.waiter().clear_interrupt();
        }
    }
    Ok(tid)
}

fn unregister_failed(
    k: &Kernel,
    tg: &Arc<ThreadGroup>,
    shared: &Arc<crate::task::TaskShared>,
    thread: bool,
) {
    let tid = shared.tid();
    let mut pids = k.pids();
    pids.tasks.remove(&tid);
    tg.lock().tasks.retain(|x| !Arc::ptr_eq(x, shared));
    if !thread {
        pids.groups.remove(&tid);
        if let Some(p) = tg.lock().parent.clone() {
            p.lock().children.retain(|c| !Arc::ptr_eq(c, tg));
        }
    }
}

/// Wakes a vfork parent waiting on this task (at exec or exit).
pub fn release_vfork_parent(t: &mut Task) {
    if t.vfork_parent.take().is_some() {
        t.shared.vfork_released.store(true, Ordering::SeqCst);
        t.shared.vfork_done.notify(EVENT_ALL);
    }
}

/// Tears a task down after its run loop ends.
pub fn exit_task(mut t: Task) {
    let exit = t
        .exiting
        .unwrap_or(Exit::Group(ExitStatus::Signaled(libc::SIGKILL)));
    let k = t.kernel.clone();
    // Gone for tgkill and friends before anyone is told (a joiner woken below may
    // signal the TID at once and must get ESRCH).
    t.shared.exited.store(true, Ordering::SeqCst);
    // CLONE_CHILD_CLEARTID: zero the TID word and wake one futex waiter (how
    // pthread_join learns a thread is gone).
    if t.clear_child_tid != 0 && t.copy_out_u32(t.clear_child_tid, 0).is_ok() {
        let _ = crate::futex::wake_addr(&t, t.clear_child_tid, 1);
    }
    crate::futex::exit_robust_list(&t);
    release_vfork_parent(&mut t);
    t.mm.address_space().release_thread();
    // Let go of the fd table before this thread stops counting as live: the
    // last thread out then closes it (releasing POSIX locks) before the
    // parent can learn of the exit.
    drop(std::mem::replace(&mut t.fds, fs::FdTable::new()));
    let tg = t.tg.clone();
    let (last, status) = {
        let mut st = tg.lock();
        st.tasks.retain(|x| !Arc::ptr_eq(x, &t.shared));
        let own = match exit {
            Exit::Thread(c) => ExitStatus::Exited(c),
            Exit::Group(s) => s,
            Exit::Exec => ExitStatus::Exited(0),
        };
        (st.tasks.is_empty(), st.group_exit.unwrap_or(own))
    };
    crate::timer::account_exit(&t, last);
    let rss = t.mm.resident_kb();
    {
        let mut st = tg.lock();
        st.usage.maxrss_kb = st.usage.maxrss_kb.max(rss);
    }
    // An exec'ing thread may be waiting for this one to go.
    tg.stop_wait.notify(EVENT_ALL);
    if t.tid != t.tgid {
        k.pids().tasks.remove(&t.tid);
    }
    let tgid = t.tgid;
    drop(t);
    if last {
        group_exited(&k, &tg, status);
    }
    tracing::debug!(tgid, "task exited");
}

/// The last thread of `tg` has exited: it becomes a zombie, its children go to a
/// reaper, and its parent is told.
fn group_exited(k: &Arc<Kernel>, tg: &Arc<ThreadGroup>, status: ExitStatus) {
    // Children go to their new parent before this group shows up as a zombie:
    // whoever reaps it must already find them reparented.
    let (parent, children, exit_signal, sid) = {
        let mut st = tg.lock();
        (
            st.parent.clone(),
            std::mem::take(&mut st.children),
            st.exit_signal,
            st.sid,
        )
    };
    // A session leader's exit hangs up its controlling terminal's foreground group.
    if sid == tg.tgid {
        k.vfs.devpts().session_leader_exited(sid);
    }
    if tg.tgid == 1 {
        tg.lock().zombie = Some(status);
        tg.exit_wait.notify(fs::waiter::EVENT_IN);
        // The container's init is gone: everything else dies with it.
        for g in k.all_groups() {
            if !Arc::ptr_eq(&g, tg) {
                k.kill_group(&g, ExitStatus::Signaled(libc::SIGKILL));
            }
        }
        k.set_init_exited(status);
        return;
    }
    let reaper = find_reaper(k, tg);
    for c in children {
        let tasks = {
            let mut cs = c.lock();
            cs.parent = reaper.clone();
            cs.tasks.clone()
        };
        for task in tasks {
            let sig = task.pdeathsig.load(Ordering::Relaxed);
            if sig != 0 {
                k.send_to_task(&task, SigInfo::from_sender(sig, signal::SI_USER, 0, 0));
            }
        }
        match &reaper {
            Some(r) => {
                let zombie = c.lock().zombie;
                r.lock().children.push(c.clone());
                if let Some(st) = zombie {
                    notify_parent_exit(k, r, &c, st, libc::SIGCHLD);
                }
            }
            None => reap(k, None, &c),
        }
    }
    tg.lock().zombie = Some(status);
    tg.exit_wait.notify(fs::waiter::EVENT_IN);
    match parent {
        Some(p) => notify_parent_exit(k, &p, tg, status, exit_signal),
        None => reap(k, None, tg),
    }
}

/// The nearest living subreaper ancestor, else init.
fn find_reaper(k: &Kernel, tg: &Arc<ThreadGroup>) -> Option<Arc<ThreadGroup>> {
    let mut cur = tg.lock().parent.clone();
    while let Some(p) = cur {
        let (sub, alive, next) = {
            let st = p.lock();
            (
                st.subreaper,
                st.zombie.is_none() && st.group_exit.is_none(),
                st.parent.clone(),
            )
        };
        if sub && alive {
            return Some(p);
        }
        cur = next;
    }
    k.group(1).filter(|g| g.lock().zombie.is_none())
}

fn child_code(st: ExitStatus) -> (i32, i32) {
    match st {
        ExitStatus::Exited(c) => (signal::CLD_EXITED, c & 0xff),
        ExitStatus::Signaled(s) => (signal::CLD_KILLED, s),
        ExitStatus::Dumped(s) => (signal::CLD_DUMPED, s),
    }
}

fn notify_parent_exit(
    k: &Arc<Kernel>,
    p: &Arc<ThreadGroup>,
    child: &Arc<ThreadGroup>,
    st: ExitStatus,
    exit_signal: i32,
) {
    let act = p.handlers.get(libc::SIGCHLD);
    let autoreap = exit_signal == libc::SIGCHLD
        && (act.handler == SIG_IGN || act.flags & signal::SA_NOCLDWAIT != 0);
    if autoreap {
        reap(k, Some(p), child);
    } else if exit_signal != 0 {
        let (code, status) = child_code(st);
        let mut info = SigInfo::child(code, child.tgid, 0, status, 0, 0);
        info.bytes[0..4].copy_from_slice(&exit_signal.to_le_bytes());
        k.send_to_group(p, info);
    }
    p.child_wait.notify(EVENT_ALL);
}

/// Removes a zombie for good.
fn reap(k: &Kernel, parent: Option<&Arc<ThreadGroup>>, child: &Arc<ThreadGroup>) {
    let usage = {
        let mut cs = child.lock();
        cs.reaped = true;
        let mut u = cs.usage;
        u.add(cs.children_usage);
        u
    };
    if let Some(p) = parent {
        let mut ps = p.lock();
        ps.children.retain(|c| !Arc::ptr_eq(c, child));
        ps.children_usage.add(usage);
    }
    let mut pids = k.pids();
    pids.groups.remove(&child.tgid);
    pids.tasks.remove(&child.tgid);
}

/// Stops the whole group for `sig` (SIGSTOP, SIGTSTP, ...).
pub fn group_stop(t: &mut Task, sig: i32) {
    let parent = {
        let mut st = t.tg.lock();
        if st.group_exit.is_some() {
            return;
        }
        st.stopped = true;
        st.stop_report = Some(sig);
        st.cont_report = false;
        st.parent.clone()
    };
    t.tg.interrupt_all();
    if let Some(p) = parent {
        let act = p.handlers.get(libc::SIGCHLD);
        if act.flags & signal::SA_NOCLDSTOP == 0 {
            t.kernel.send_to_group(
                &p,
                SigInfo::child(signal::CLD_STOPPED, t.tgid, t.creds.uid, sig, 0, 0),
            );
        }
        p.child_wait.notify(EVENT_ALL);
    }
}

/// Which children a wait call is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitTarget {
    Any,
    Pid(i32),
    Pgid(i32),
}

/// What wait reports.
#[derive(Clone, Copy, Debug)]
pub struct WaitResult {
    pub pid: i32,
    pub uid: u32,
    pub event: ChildEvent,
    pub usage: Usage,
}

pub const WNOHANG: i32 = 1;
pub const WUNTRACED: i32 = 2;
pub const WEXITED: i32 = 4;
pub const WCONTINUED: i32 = 8;
pub const WNOWAIT: i32 = 0x0100_0000;
pub const WNOTHREAD: i32 = 0x2000_0000;
pub const WALL: i32 = 0x4000_0000;
pub const WCLONE: i32 = 0x8000_0000u32 as i32;

/// wait4/waitid: the first child matching `target` with a reportable event in
/// `options`; None with WNOHANG when there is none yet; ECHILD when no child
/// matches at all.
pub fn wait(t: &mut Task, target: WaitTarget, options: i32) -> Result<Option<WaitResult>, Errno> {
    let tg = t.tg.clone();
    let k = t.kernel.clone();
    let r = block(
        t.waiter(),
        &[(&tg.child_wait, EVENT_ALL)],
        &[],
        None,
        || match try_wait(&k, &tg, target, options)? {
            Some(r) => Ok(Some(r)),
            None if options & WNOHANG != 0 => Ok(None),
            None => Err(Errno::EAGAIN),
        },
    );
    r
}

fn try_wait(
    k: &Kernel,
    tg: &Arc<ThreadGroup>,
    target: WaitTarget,
    options: i32,
) -> Result<Option<WaitResult>, Errno> {
    let children: Vec<Arc<ThreadGroup>> = tg.lock().children.clone();
    let mut any = false;
    for c in children {
        let mut cs = c.lock();
        let matches = match target {
            WaitTarget::Any => true,
            WaitTarget::Pid(p) => c.tgid == p,
            WaitTarget::Pgid(g) => cs.pgid == g,
        };
        // __WCLONE selects children that report with a signal other than SIGCHLD.
        let clone_child = cs.exit_signal != libc::SIGCHLD;
        let kind_ok = options & WALL != 0 || (options & WCLONE != 0) == clone_child;
        if !matches || !kind_ok || cs.reaped {
            continue;
        }
        any = true;
        let usage = {
            let mut u = cs.usage;
            u.add(cs.children_usage);
            u
        };
        if let Some(st) = cs.zombie {
            if options & WEXITED != 0 {
                let res = WaitResult {
                    pid: c.tgid,
                    uid: 0,
                    event: ChildEvent::Exited(st),
                    usage,
                };
                if options & WNOWAIT == 0 {
                    drop(cs);
                    reap(k, Some(tg), &c);
                }
                return Ok(Some(res));
            }
            continue;
        }
        if let Some(sig) = cs.stop_report {
            if options & WUNTRACED != 0 {
                if options & WNOWAIT == 0 {
                    cs.stop_report = None;
                }
                return Ok(Some(WaitResult {
                    pid: c.tgid,
                    uid: 0,
                    event: ChildEvent::Stopped(sig),
                    usage,
                }));
            }
        }
        if cs.cont_report && options & WCONTINUED != 0 {
            if options & WNOWAIT == 0 {
                cs.cont_report = false;
            }
            return Ok(Some(WaitResult {
                pid: c.tgid,
                uid: 0,
                event: ChildEvent::Continued,
                usage,
            }));
        }
    }
    if !any {
        return Err(Errno::ECHILD);
    }
    Ok(None)
}

/// The wait status word of an event.
pub fn wait_status(e: ChildEvent) -> i32 {
    match e {
        ChildEvent::Exited(st) => st.wait_status(),
        ChildEvent::Stopped(sig) => (sig << 8) | 0x7f,
        ChildEvent::Continued => 0xffff,
    }
}

/// exec's point of no return for a multi-threaded group: every other thread
/// exits, and the exec'ing thread takes over the group leader's TID.
pub fn de_thread(t: &mut Task) -> Result<(), Errno> {
    {
        let mut st = t.tg.lock();
        if st.group_exit.is_some() || st.execing.is_some() {
            return Err(Errno::EAGAIN);
        }
        if st.tasks.len() == 1 {
            return Ok(());
        }
        st.execing = Some(t.tid);
    }
    t.tg.interrupt_all();
    let tg = t.tg.clone();
    loop {
        let r = block(t.waiter(), &[(&tg.stop_wait, EVENT_ALL)], &[], None, || {
            let st = tg.lock();
            if st.tasks.len() <= 1 || st.group_exit.is_some() {
                Ok(())
            } else {
                Err(Errno::EAGAIN)
            }
        });
        if r.is_ok() {
            break;
        }
        t.waiter().clear_interrupt();
    }
    tg.lock().execing = None;
    if t.tid != t.tgid {
        let mut pids = t.kernel.pids();
        pids.tasks.remove(&t.tid);
        pids.tasks.insert(t.tgid, t.shared.clone());
        t.shared.set_tid(t.tgid);
        t.tid = t.tgid;
    }
    Ok(())
}

/// setpgid(2).
pub fn setpgid(t: &Task, pid: i32, pgid: i32) -> Result<(), Errno> {
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let target = if pid == 0 || pid == t.tgid {
        t.tg.clone()
    } else {
        let g = t.kernel.group(pid).ok_or(Errno::ESRCH)?;
        // Only the caller or its children.
        let is_child = g
            .lock()
            .parent
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(p, &t.tg));
        if !is_child {
            return Err(Errno::ESRCH);
        }
        g
    };
    let pgid = if pgid == 0 { target.tgid } else { pgid };
    let my_sid = t.tg.lock().sid;
    {
        let ts = target.lock();
        if !Arc::ptr_eq(&target, &t.tg) {
            if ts.sid != my_sid {
                return Err(Errno::EPERM);
            }
            if ts.did_exec {
                return Err(Errno::EACCES);
            }
        }
        // A session leader cannot change its group.
        if ts.sid == target.tgid {
            return Err(Errno::EPERM);
        }
    }
    if pgid != target.tgid {
        // The group must exist in the caller's session.
        let exists = t.kernel.all_groups().iter().any(|g| {
            let s = g.lock();
            s.pgid == pgid && s.sid == my_sid
        });
        if !exists {
            return Err(Errno::EPERM);
        }
    }
    target.lock().pgid = pgid;
    Ok(())
}

/// setsid(2).
pub fn setsid(t: &Task) -> Result<i32, Errno> {
    let me = t.tgid;
    let leader = t.kernel.all_groups().iter().any(|g| g.lock().pgid == me);
    if leader {
        return Err(Errno::EPERM);
    }
    let mut st = t.tg.lock();
    st.sid = me;
    st.pgid = me;
    Ok(me)
}
