//! Signal state syscalls. Actions and masks are recorded exactly; delivery arrives
//! with the signals issue.

use abi::linux::{le_u32, le_u64, Encoder};
use abi::sysno::*;
use abi::{Errno, SysResult};
use sentry::task::SigAction;
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
    t.add(SIGALTSTACK, sys_sigaltstack, &[Arg::Hex, Arg::Hex]);
    t.add(KILL, sys_kill, &[Arg::Dec, Arg::Dec]);
    t.add(TKILL, sys_tkill, &[Arg::Dec, Arg::Dec]);
    t.add(TGKILL, sys_tgkill, &[Arg::Dec, Arg::Dec, Arg::Dec]);
}

/// Signals whose default action is to do nothing.
fn default_ignored(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGCHLD | libc::SIGCONT | libc::SIGURG | libc::SIGWINCH
    )
}

/// Sends `sig` to the calling task itself. Only the actions that need no
/// delivery machinery are carried out here (ignore, or the default terminate);
/// queuing for handlers, stops and other targets arrive with the signals issue
/// and answer ENOSYS (logged) until then.
fn signal_self(t: &mut Task, sig: i32) -> SysResult {
    if !(0..=64).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    if sig == 0 {
        return Ok(0);
    }
    let act = t.sigactions[sig as usize - 1];
    let blocked = t.signal_mask & (1 << (sig - 1)) != 0;
    if sig != libc::SIGKILL && (act.handler == 1 || (act.handler == 0 && default_ignored(sig))) {
        return Ok(0);
    }
    let stop = matches!(
        sig,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    );
    if sig == libc::SIGKILL || (act.handler == 0 && !blocked && !stop) {
        t.exit_status = Some(sentry::task::ExitStatus::Signaled(sig));
        return Ok(0);
    }
    tracing::warn!(
        tid = t.tid,
        sig,
        "signal delivery to handlers, blocked signals and stops is not implemented yet"
    );
    Err(Errno::ENOSYS)
}

fn sys_kill(t: &mut Task, a: &Args) -> SysResult {
    let pid = a.i32(0);
    if pid != t.tgid && pid != 0 && pid != -1 && pid != -t.tgid {
        return Err(Errno::ESRCH);
    }
    signal_self(t, a.i32(1))
}

fn sys_tkill(t: &mut Task, a: &Args) -> SysResult {
    if a.i32(0) <= 0 {
        return Err(Errno::EINVAL);
    }
    if a.i32(0) != t.tid {
        return Err(Errno::ESRCH);
    }
    signal_self(t, a.i32(1))
}

fn sys_tgkill(t: &mut Task, a: &Args) -> SysResult {
    if a.i32(0) <= 0 || a.i32(1) <= 0 {
        return Err(Errno::EINVAL);
    }
    if a.i32(0) != t.tgid || a.i32(1) != t.tid {
        return Err(Errno::ESRCH);
    }
    signal_self(t, a.i32(2))
}

const SIGSET_SIZE: u64 = 8;
/// SIGKILL and SIGSTOP can be neither caught nor blocked.
const UNBLOCKABLE: u64 = (1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1));
/// MINSIGSTKSZ on x86-64.
const MINSIGSTKSZ: u64 = 2048;
/// SS_AUTODISARM (not in the libc crate).
const SS_AUTODISARM: i32 = 1 << 31;

fn sys_rt_sigaction(t: &mut Task, a: &Args) -> SysResult {
    let sig = a.i32(0);
    if a.u64(3) != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    if !(1..=64).contains(&sig) {
        return Err(Errno::EINVAL);
    }
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
    let old = t.sigactions[sig as usize - 1];
    if a.u64(2) != 0 {
        let mut e = Encoder::with_capacity(32);
        e.u64(old.handler)
            .u64(old.flags)
            .u64(old.restorer)
            .u64(old.mask);
        t.copy_out(a.u64(2), &e.finish())?;
    }
    if let Some(n) = new {
        t.sigactions[sig as usize - 1] = n;
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
    let old = t.signal_mask;
    if a.u64(2) != 0 {
        t.copy_out_u64(a.u64(2), old)?;
    }
    if let Some(s) = set {
        let m = match how {
            libc::SIG_BLOCK => old | s,
            libc::SIG_UNBLOCK => old & !s,
            _ => s,
        };
        t.signal_mask = m & !UNBLOCKABLE;
    }
    Ok(0)
}

fn sys_sigaltstack(t: &mut Task, a: &Args) -> SysResult {
    let new = if a.u64(0) != 0 {
        let b = t.copy_in_vec(a.u64(0), 24)?;
        let (sp, flags, size) = (le_u64(&b, 0), le_u32(&b, 8) as i32, le_u64(&b, 16));
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
        let mut e = Encoder::with_capacity(24);
        e.u64(sp).u32(flags as u32).u32(0).u64(size);
        t.copy_out(a.u64(1), &e.finish())?;
    }
    if let Some(n) = new {
        t.altstack = n;
    }
    Ok(0)
}
