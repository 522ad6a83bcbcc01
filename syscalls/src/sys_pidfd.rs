//! pidfds: pidfd_open, pidfd_send_signal (waitid's P_PIDFD is in sys_process).
//! pidfd_getfd is not implemented (ENOSYS): it needs ptrace-style access checks.

use std::sync::Arc;

use abi::sysno::*;
use abi::{Errno, SysResult};
use fs::OpenFile;
use sentry::pidfd::{PidFd, PIDFD_NONBLOCK};
use sentry::signal;
use sentry::Task;

use crate::sys_signal::{may_signal, queued_info, sender_info};
use crate::{Arg, Args, Table};

pub(crate) fn register(t: &mut Table) {
    use Arg::*;
    t.add(PIDFD_OPEN, sys_pidfd_open, &[Dec, Hex]);
    t.add(
        PIDFD_SEND_SIGNAL,
        sys_pidfd_send_signal,
        &[Fd, Dec, Hex, Hex],
    );
}

fn sys_pidfd_open(t: &mut Task, a: &Args) -> SysResult {
    let (pid, flags) = (a.i32(0), a.u32(1));
    if flags & !(PIDFD_NONBLOCK as u32) != 0 || pid <= 0 {
        return Err(Errno::EINVAL);
    }
    let k = t.kernel.clone();
    let tg = match k.group(pid) {
        Some(g) => g,
        // A thread that is not a group leader: EINVAL (Linux before PIDFD_THREAD).
        None if k.task(pid).is_some() => return Err(Errno::EINVAL),
        None => return Err(Errno::ESRCH),
    };
    let f = PidFd::new_file(tg, flags as i32, t.creds.euid, t.creds.egid);
    let limit = t.rlimits[libc::RLIMIT_NOFILE as usize].cur;
    // pidfds are always close-on-exec.
    Ok(t.fds.insert(f, true, limit)? as u64)
}

/// The pidfd behind `fd`: EBADF for a bad fd or a file that is not a pidfd.
pub(crate) fn pidfd_of(t: &Task, fd: i32) -> Result<Arc<PidFd>, Errno> {
    let f: Arc<OpenFile> = t.fds.get(fd)?;
    PidFd::of(&f).ok_or(Errno::EBADF)
}

fn sys_pidfd_send_signal(t: &mut Task, a: &Args) -> SysResult {
    let (sig, info_addr, flags) = (a.i32(1), a.u64(2), a.u32(3));
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let p = pidfd_of(t, a.fd(0))?;
    if !(0..=64).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    let g = p.tg.clone();
    // Reaped: gone. A zombie still exists (the signal is then dropped).
    if g.lock().reaped {
        return Err(Errno::ESRCH);
    }
    let leader = g.lock().tasks.first().cloned();
    let info = if info_addr != 0 {
        // The siginfo must name the signal being sent.
        let mut signo = [0u8; 4];
        t.copy_in(info_addr, &mut signo)?;
        if i32::from_le_bytes(signo) != sig {
            return Err(Errno::EINVAL);
        }
        queued_info(t, sig, info_addr, g.tgid != t.tgid)?
    } else {
        sender_info(t, sig, signal::SI_USER)
    };
    if leader.as_ref().is_some_and(|l| !may_signal(t, l)) {
        return Err(Errno::EPERM);
    }
    if sig == 0 || p.exited() {
        return Ok(0);
    }
    t.kernel.send_to_group(&g, info);
    Ok(0)
}
