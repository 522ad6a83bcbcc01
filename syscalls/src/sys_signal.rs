//! Signal syscalls: actions, masks, sending, waiting, the alternate stack and
//! rt_sigreturn.

use std::time::{Duration, Instant};

use abi::errno::ERESTARTNOHAND;
use abi::linux::{le_u32, le_u64, Encoder, Timespec};
use abi::sysno::*;
use abi::{Errno, SysResult};
use sentry::signal::{self, SigAction, SigInfo, SS_AUTODISARM, UNBLOCKABLE};
use sentry::Task;

use crate::{Arg, Args, Table};

pub(crate) fn register(t: &mut Table) {
    t.add(
        RT_SIGACTION,
        sys_rt_sigaction,
        &[Arg::Dec, Arg::Hex, Arg::Hex, Arg::UDec],
    );
    t.add(
        RT_SIGPROCMASK,
        sys_rt_sigprocmask,
        &[Arg::Dec, Arg::Hex, Arg::Hex, Arg::UDec],
    );
    t.add(RT_SIGPENDING, sys_rt_sigpending, &[Arg::Hex, Arg::UDec]);
    t.add(RT_SIGSUSPEND, sys_rt_sigsuspend, &[Arg::Hex, Arg::UDec]);
    t.add(
        RT_SIGTIMEDWAIT,
        sys_rt_sigtimedwait,
        &[Arg::Hex, Arg::Hex, Arg::Hex, Arg::UDec],
    );
    t.add(
        RT_SIGQUEUEINFO,
        sys_rt_sigqueueinfo,
        &[Arg::Dec, Arg::Dec, Arg::Hex],
    );
    t.add(
        RT_TGSIGQUEUEINFO,
        sys_rt_tgsigqueueinfo,
        &[Arg::Dec, Arg::Dec, Arg::Dec, Arg::Hex],
    );
    t.add(RT_SIGRETURN, sys_rt_sigreturn, &[]);
    t.add(SIGALTSTACK, sys_sigaltstack, &[Arg::Hex, Arg::Hex]);
    t.add(KILL, sys_kill, &[Arg::Dec, Arg::Dec]);
    t.add(TKILL, sys_tkill, &[Arg::Dec, Arg::Dec]);
    t.add(TGKILL, sys_tgkill, &[Arg::Dec, Arg::Dec, Arg::Dec]);
    t.add(PAUSE, sys_pause, &[]);
    t.add(RESTART_SYSCALL, sys_restart_syscall, &[]);
}

const SIGSET_SIZE: u64 = 8;
/// MINSIGSTKSZ on x86-64.
const MINSIGSTKSZ: u64 = 2048;

fn check_sig(sig: i32) -> Result<(), Errno> {
    if (1..=64).contains(&sig) {
        Ok(())
    } else {
        Err(Errno::EINVAL)
    }
}

fn sys_rt_sigaction(t: &mut Task, a: &Args) -> SysResult {
    let sig = a.i32(0);
    if a.u64(3) != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    check_sig(sig)?;
    let new = if a.u64(1) != 0 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            return Err(Errno::EINVAL);
        }
        let b = t.copy_in_vec(a.u64(1), 32)?;
        Some(SigAction {
            handler: le_u64(&b, 0),
            flags: le_u64(&b, 8),
            restorer: le_u64(&b, 16),
            mask: le_u64(&b, 24) & !UNBLOCKABLE,
        })
    } else {
        None
    };
    let old = t.sigaction(sig);
    if a.u64(2) != 0 {
        let mut e = Encoder::with_capacity(32);
        e.u64(old.handler)
            .u64(old.flags)
            .u64(old.restorer)
            .u64(old.mask);
        t.copy_out(a.u64(2), &e.finish())?;
    }
    if let Some(n) = new {
        t.set_sigaction(sig, n);
    }
    Ok(0)
}

fn sys_rt_sigprocmask(t: &mut Task, a: &Args) -> SysResult {
    if a.u64(3) != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let how = a.i32(0);
    let set = if a.u64(1) != 0 {
        if !matches!(how, libc::SIG_BLOCK | libc::SIG_UNBLOCK | libc::SIG_SETMASK) {
            return Err(Errno::EINVAL);
        }
        Some(t.copy_in_u64(a.u64(1))?)
    } else {
        None
    };
    let old = t.sigmask();
    if a.u64(2) != 0 {
        t.copy_out_u64(a.u64(2), old)?;
    }
    if let Some(s) = set {
        let m = match how {
            libc::SIG_BLOCK => old | s,
            libc::SIG_UNBLOCK => old & !s,
            _ => s,
        };
        t.set_sigmask(m);
    }
    Ok(0)
}

fn sys_rt_sigpending(t: &mut Task, a: &Args) -> SysResult {
    if a.u64(1) > SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let set = t.shared.pending_set() & t.sigmask();
    let b = set.to_le_bytes();
    t.copy_out(a.u64(0), &b[..a.u64(1) as usize])?;
    Ok(0)
}

/// rt_sigsuspend: waits with a temporary mask until a signal is delivered; the
/// old mask comes back when the handler returns. Always "fails" with EINTR.
fn sys_rt_sigsuspend(t: &mut Task, a: &Args) -> SysResult {
    if a.u64(1) != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let m = t.copy_in_u64(a.u64(0))?;
    t.saved_mask = Some(t.sigmask());
    t.set_sigmask(m);
    loop {
        if let Err(e) = t.waiter().wait(None, &[]) {
            if e.0 == abi::errno::ERESTARTSYS {
                return Err(Errno(ERESTARTNOHAND));
            }
        }
    }
}

fn sys_pause(t: &mut Task, _a: &Args) -> SysResult {
    loop {
        if let Err(e) = t.waiter().wait(None, &[]) {
            if e.0 == abi::errno::ERESTARTSYS {
                return Err(Errno(ERESTARTNOHAND));
            }
        }
    }
}

fn sys_restart_syscall(t: &mut Task, _a: &Args) -> SysResult {
    match t.restart.take() {
        Some(mut f) => f(t),
        None => Err(Errno::EINTR),
    }
}

fn sys_rt_sigtimedwait(t: &mut Task, a: &Args) -> SysResult {
    if a.u64(3) != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let set = t.copy_in_u64(a.u64(0))? & !UNBLOCKABLE;
    let deadline = if a.u64(2) != 0 {
        let ts = Timespec::from_bytes(&t.copy_in_vec(a.u64(2), 16)?);
        let ns = ts.to_nanos().ok_or(Errno::EINVAL)?;
        Some(Instant::now() + Duration::from_nanos(ns.min(u64::MAX as u128) as u64))
    } else {
        None
    };
    // While waiting, the waited-for signals count as unblocked so that their
    // arrival wakes us (Linux's real_blocked); they are then taken from the
    // queues here instead of being delivered.
    let shared = t.shared.clone();
    let take = || -> Option<SigInfo> {
        let own = shared.sig.lock().unwrap().pending.take(!set);
        own.or_else(|| shared.tg.lock().pending.take(!set))
    };
    let old = t.sigmask();
    t.shared
        .real_blocked
        .store(old, std::sync::atomic::Ordering::SeqCst);
    t.set_sigmask(old & !set);
    let r = loop {
        if let Some(info) = take() {
            break Ok(info);
        }
        match t.waiter().wait(deadline, &[]) {
            Ok(()) => {}
            Err(Errno::ETIMEDOUT) => break take().ok_or(Errno::EAGAIN),
            Err(_) => break take().ok_or(Errno(ERESTARTNOHAND)),
        }
    };
    t.set_sigmask(old);
    t.shared
        .real_blocked
        .store(0, std::sync::atomic::Ordering::SeqCst);
    let info = r?;
    if a.u64(1) != 0 {
        t.copy_out(a.u64(1), &info.bytes)?;
    }
    Ok(info.signo() as u64)
}

/// Permission to signal (Linux's kill_ok_by_cred): CAP_KILL, or the sender's
/// real or effective uid matching the target's real or saved uid.
pub(crate) fn may_signal(t: &Task, target: &sentry::task::TaskShared) -> bool {
    use std::sync::atomic::Ordering::Relaxed;
    if t.creds.has_capability(CAP_KILL) {
        return true;
    }
    let (ruid, suid) = (target.ids[0].load(Relaxed), target.ids[2].load(Relaxed));
    [t.creds.uid, t.creds.euid]
        .iter()
        .any(|u| *u == ruid || *u == suid)
}

/// CAP_KILL.
const CAP_KILL: u32 = 5;

pub(crate) fn sender_info(t: &Task, sig: i32, code: i32) -> SigInfo {
    SigInfo::from_sender(sig, code, t.tgid, t.creds.uid)
}

fn sys_kill(t: &mut Task, a: &Args) -> SysResult {
    let (pid, sig) = (a.i32(0), a.i32(1));
    if !(0..=64).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    let k = t.kernel.clone();
    let groups = match pid {
        // A zombie still exists until reaped: kill(2) on it succeeds (and does nothing).
        p if p > 0 => vec![k.group(p).ok_or(Errno::ESRCH)?],
        0 => {
            let pgid = t.tg.lock().pgid;
            k.process_group(pgid)
        }
        -1 => k
            .all_groups()
            .into_iter()
            .filter(|g| g.tgid != 1 && g.tgid != t.tgid)
            .collect(),
        p => k.process_group(-p),
    };
    if groups.is_empty() {
        return Err(Errno::ESRCH);
    }
    // Signal the groups we may; EPERM only if that is none of them.
    let allowed: Vec<_> = groups
        .into_iter()
        .filter(|g| {
            g.lock()
                .tasks
                .first()
                .is_none_or(|leader| may_signal(t, leader))
        })
        .collect();
    if allowed.is_empty() {
        return Err(Errno::EPERM);
    }
    if sig == 0 {
        return Ok(0);
    }
    for g in allowed {
        // Zombies get nothing. (Init only gets signals it has handlers for:
        // Kernel::send_to_group drops the others.)
        if g.lock().zombie.is_some() {
            continue;
        }
        k.send_to_group(&g, sender_info(t, sig, signal::SI_USER));
    }
    Ok(0)
}

fn thread_kill(t: &mut Task, tgid: Option<i32>, tid: i32, sig: i32) -> SysResult {
    if tid <= 0 || tgid.is_some_and(|g| g <= 0) || !(0..=64).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    let k = t.kernel.clone();
    let target = k
        .task(tid)
        .filter(|x| !x.exited.load(std::sync::atomic::Ordering::SeqCst))
        .ok_or(Errno::ESRCH)?;
    if tgid.is_some_and(|g| target.tg.tgid != g) {
        return Err(Errno::ESRCH);
    }
    if !may_signal(t, &target) {
        return Err(Errno::EPERM);
    }
    if sig == 0 {
        return Ok(0);
    }
    k.send_to_task(&target, sender_info(t, sig, signal::SI_TKILL));
    Ok(0)
}

fn sys_tkill(t: &mut Task, a: &Args) -> SysResult {
    thread_kill(t, None, a.i32(0), a.i32(1))
}

fn sys_tgkill(t: &mut Task, a: &Args) -> SysResult {
    thread_kill(t, Some(a.i32(0)), a.i32(1), a.i32(2))
}

/// The siginfo a workload queues itself: it may not pretend to be the kernel
/// (si_code >= 0) or tkill when signalling another process.
pub(crate) fn queued_info(t: &Task, sig: i32, addr: u64, other: bool) -> Result<SigInfo, Errno> {
    let b = t.copy_in_vec(addr, 128)?;
    let info = SigInfo::from_bytes(sig, &b);
    if (info.code() >= 0 || info.code() == signal::SI_TKILL) && other {
        return Err(Errno::EPERM);
    }
    Ok(info)
}

fn sys_rt_sigqueueinfo(t: &mut Task, a: &Args) -> SysResult {
    let (pid, sig) = (a.i32(0), a.i32(1));
    check_sig(sig)?;
    let k = t.kernel.clone();
    let g = k.group(pid).ok_or(Errno::ESRCH)?;
    let info = queued_info(t, sig, a.u64(2), pid != t.tgid)?;
    if g.lock().zombie.is_none() {
        k.send_to_group(&g, info);
    }
    Ok(0)
}

fn sys_rt_tgsigqueueinfo(t: &mut Task, a: &Args) -> SysResult {
    let (tgid, tid, sig) = (a.i32(0), a.i32(1), a.i32(2));
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    check_sig(sig)?;
    let k = t.kernel.clone();
    let target = k
        .task(tid)
        .filter(|x| x.tg.tgid == tgid)
        .ok_or(Errno::ESRCH)?;
    let info = queued_info(t, sig, a.u64(3), tgid != t.tgid)?;
    k.send_to_task(&target, info);
    Ok(0)
}

fn sys_rt_sigreturn(t: &mut Task, _a: &Args) -> SysResult {
    match signal::restore_frame(t) {
        Ok(rax) => Ok(rax),
        Err(_) => {
            // A corrupt frame: Linux forces SIGSEGV.
            let k = t.kernel.clone();
            t.set_sigaction(libc::SIGSEGV, SigAction::default());
            // Even init dies of it (Linux's force_sig_info_to_task).
            t.tg.lock().unkillable = false;
            t.set_sigmask(t.sigmask() & !signal::sigbit(libc::SIGSEGV));
            k.send_to_task(&t.shared, SigInfo::new(libc::SIGSEGV, signal::SI_KERNEL));
            Ok(t.regs.rax)
        }
    }
}

fn sys_sigaltstack(t: &mut Task, a: &Args) -> SysResult {
    let on = signal::altstack_flags(t, t.regs.rsp) == libc::SS_ONSTACK;
    let new = if a.u64(0) != 0 {
        let b = t.copy_in_vec(a.u64(0), 24)?;
        let (sp, flags, size) = (le_u64(&b, 0), le_u32(&b, 8) as i32, le_u64(&b, 16));
        if on {
            return Err(Errno::EPERM);
        }
        let mode = flags & !SS_AUTODISARM;
        if mode != 0 && mode != libc::SS_DISABLE && mode != libc::SS_ONSTACK {
            return Err(Errno::EINVAL);
        }
        if mode == libc::SS_DISABLE {
            Some((0, libc::SS_DISABLE, 0))
        } else {
            if size < MINSIGSTKSZ {
                return Err(Errno::ENOMEM);
            }
            Some((sp, flags & SS_AUTODISARM, size))
        }
    } else {
        None
    };
    if a.u64(1) != 0 {
        let (sp, flags, size) = t.altstack;
        let flags = if on { libc::SS_ONSTACK } else { flags };
        let mut e = Encoder::with_capacity(24);
        e.u64(sp).u32(flags as u32).u32(0).u64(size);
        t.copy_out(a.u64(1), &e.finish())?;
    }
    if let Some(n) = new {
        t.altstack = n;
    }
    Ok(0)
}
