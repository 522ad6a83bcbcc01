//! Process lifecycle: clone, fork, vfork, execve, exit, wait, process groups
//! and sessions, and per-thread setup calls.

use abi::sysno::*;
use abi::{Errno, SysResult};
use sentry::process::{self, CloneArgs, WaitTarget};
use sentry::task::{Exit, ExitStatus};
use sentry::thread_group::ChildEvent;
use sentry::Task;

use crate::{sys_cred, sys_sched, Arg, Args, Table};

pub(crate) fn register(t: &mut Table) {
    t.add(EXIT, sys_exit, &[Arg::Dec]);
    t.add(EXIT_GROUP, sys_exit_group, &[Arg::Dec]);
    t.add(
        EXECVE,
        sys_execve,
        &[Arg::Path, Arg::StrArray, Arg::StrArray],
    );
    t.add(
        EXECVEAT,
        sys_execveat,
        &[
            Arg::DirFd,
            Arg::Path,
            Arg::StrArray,
            Arg::StrArray,
            Arg::Hex,
        ],
    );
    t.add(
        CLONE,
        sys_clone,
        &[Arg::Hex, Arg::Hex, Arg::Hex, Arg::Hex, Arg::Hex],
    );
    t.add(CLONE3, sys_clone3, &[Arg::Hex, Arg::UDec]);
    t.add(FORK, sys_fork, &[]);
    t.add(VFORK, sys_vfork, &[]);
    t.add(WAIT4, sys_wait4, &[Arg::Dec, Arg::Hex, Arg::Hex, Arg::Hex]);
    t.add(
        WAITID,
        sys_waitid,
        &[Arg::Dec, Arg::Dec, Arg::Hex, Arg::Hex, Arg::Hex],
    );
    t.add(GETPID, |t, _| Ok(t.tgid as u64), &[]);
    t.add(GETTID, |t, _| Ok(t.tid as u64), &[]);
    t.add(GETPPID, |t, _| Ok(t.ppid() as u64), &[]);
    t.add(GETPGRP, |t, _| Ok(t.tg.lock().pgid as u64), &[]);
    t.add(GETPGID, sys_getpgid, &[Arg::Dec]);
    t.add(GETSID, sys_getsid, &[Arg::Dec]);
    t.add(SETPGID, sys_setpgid, &[Arg::Dec, Arg::Dec]);
    t.add(SETSID, |t, _| process::setsid(t).map(|s| s as u64), &[]);
    t.add(ARCH_PRCTL, sys_arch_prctl, &[Arg::Hex, Arg::Hex]);
    t.add(SET_TID_ADDRESS, sys_set_tid_address, &[Arg::Hex]);
    t.add(SET_ROBUST_LIST, sys_set_robust_list, &[Arg::Hex, Arg::UDec]);
    t.add(
        GET_ROBUST_LIST,
        sys_get_robust_list,
        &[Arg::Dec, Arg::Hex, Arg::Hex],
    );
    t.add(
        PRCTL,
        sys_prctl,
        &[Arg::Dec, Arg::Hex, Arg::Hex, Arg::Hex, Arg::Hex],
    );
}

/// exit(2): this thread only. The group ends when its last thread does.
fn sys_exit(t: &mut Task, a: &Args) -> SysResult {
    t.exiting = Some(Exit::Thread(a.i32(0) & 0xff));
    Ok(0)
}

/// exit_group(2): every thread of the group.
fn sys_exit_group(t: &mut Task, a: &Args) -> SysResult {
    let st = ExitStatus::Exited(a.i32(0) & 0xff);
    let k = t.kernel.clone();
    k.kill_group(&t.tg, st);
    t.exiting = Some(Exit::Group(t.tg.lock().group_exit.unwrap_or(st)));
    Ok(0)
}

fn sys_clone(t: &mut Task, a: &Args) -> SysResult {
    // x86-64 argument order: flags, stack, parent_tid, child_tid, tls.
    let flags = a.u64(0);
    let args = CloneArgs {
        flags: flags & !0xff,
        stack: a.u64(1),
        parent_tid: a.u64(2),
        child_tid: a.u64(3),
        tls: a.u64(4),
        exit_signal: (flags & 0xff) as i32,
    };
    process::clone(t, args).map(|tid| tid as u64)
}

fn sys_fork(t: &mut Task, _a: &Args) -> SysResult {
    process::clone(
        t,
        CloneArgs {
            exit_signal: libc::SIGCHLD,
            ..Default::default()
        },
    )
    .map(|tid| tid as u64)
}

fn sys_vfork(t: &mut Task, _a: &Args) -> SysResult {
    let flags = (libc::CLONE_VM | libc::CLONE_VFORK) as u64;
    process::clone(
        t,
        CloneArgs {
            flags,
            exit_signal: libc::SIGCHLD,
            ..Default::default()
        },
    )
    .map(|tid| tid as u64)
}

/// sizeof(struct clone_args) in its first published version (CLONE_ARGS_SIZE_VER0).
const CLONE_ARGS_SIZE_VER0: u64 = 64;

fn sys_clone3(t: &mut Task, a: &Args) -> SysResult {
    let size = a.u64(1);
    if !(CLONE_ARGS_SIZE_VER0..=4096).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let b = t.copy_in_vec(a.u64(0), size as usize)?;
    let g = |i: usize| abi::linux::le_u64(&b, i * 8);
    // Fields past the ones we know (set_tid, cgroup) must be zero.
    if b.len() > 88 && b[88..].iter().any(|&x| x != 0) {
        return Err(Errno::E2BIG);
    }
    if size > 64 && (g(8) != 0 || g(9) != 0) {
        // set_tid / set_tid_size: choosing PIDs needs CAP_SYS_ADMIN over the namespace.
        return Err(Errno::EINVAL);
    }
    let (flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls) =
        (g(0), g(1), g(2), g(3), g(4), g(5), g(6), g(7));
    if exit_signal > 64 || (flags & libc::CLONE_THREAD as u64 != 0 && exit_signal != 0) {
        return Err(Errno::EINVAL);
    }
    if (stack == 0) != (stack_size == 0) {
        return Err(Errno::EINVAL);
    }
    let _ = pidfd;
    let args = CloneArgs {
        flags,
        // clone3 passes the lowest address and size; the stack grows down from its end.
        stack: if stack != 0 { stack + stack_size } else { 0 },
        parent_tid,
        child_tid,
        tls,
        exit_signal: exit_signal as i32,
    };
    process::clone(t, args).map(|tid| tid as u64)
}

/// Largest single argument or environment string (MAX_ARG_STRLEN).
const MAX_ARG_STRLEN: usize = 32 * 4096;
/// Most strings in argv or envp (MAX_ARG_STRINGS).
const MAX_ARG_STRINGS: usize = 0x7fff_ffff;

/// Copies in a NULL-terminated array of strings, bounding the total at `budget`.
fn copy_in_strings(t: &Task, mut addr: u64, budget: &mut usize) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    if addr == 0 {
        return Ok(out);
    }
    loop {
        let p = t.copy_in_u64(addr)?;
        if p == 0 {
            return Ok(out);
        }
        if out.len() >= MAX_ARG_STRINGS {
            return Err(Errno::E2BIG);
        }
        let s = t.copy_in_string(p, MAX_ARG_STRLEN - 1).map_err(|e| {
            if e == Errno::ENAMETOOLONG {
                Errno::E2BIG
            } else {
                e
            }
        })?;
        let cost = s.len() + 1 + 8;
        if cost > *budget {
            return Err(Errno::E2BIG);
        }
        *budget -= cost;
        out.push(s);
        addr = addr.checked_add(8).ok_or(Errno::EFAULT)?;
    }
}

fn do_execve(t: &mut Task, path: Vec<u8>, argv_addr: u64, envp_addr: u64) -> SysResult {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    // Linux allows a quarter of the stack limit for arguments and environment.
    let stack = t.rlimits[libc::RLIMIT_STACK as usize].cur;
    let mut budget = (stack / 4).clamp(128 * 1024, 6 << 20) as usize;
    let argv = copy_in_strings(t, argv_addr, &mut budget)?;
    let envp = copy_in_strings(t, envp_addr, &mut budget)?;
    let image = sentry::exec::load_image(
        &t.kernel.clone(),
        &t.fs,
        &t.creds,
        t.no_new_privs,
        &path,
        argv,
        envp,
        stack,
    )?;
    process::de_thread(t)?;
    t.exec(image);
    Ok(0)
}

fn sys_execve(t: &mut Task, a: &Args) -> SysResult {
    if a.u64(0) == 0 {
        return Err(Errno::EFAULT);
    }
    let path = t.copy_in_path(a.u64(0))?;
    do_execve(t, path, a.u64(1), a.u64(2))
}

/// execveat(2): a path relative to a directory fd, or the fd itself with
/// AT_EMPTY_PATH (through its /proc/self/fd-style path).
fn sys_execveat(t: &mut Task, a: &Args) -> SysResult {
    let (dirfd, flags) = (a.fd(0), a.i32(4));
    if flags & !(libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = if a.u64(1) == 0 {
        Vec::new()
    } else {
        t.copy_in_path(a.u64(1))?
    };
    let full = if path.first() == Some(&b'/') {
        path
    } else if path.is_empty() {
        if flags & libc::AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        let f = t.fds.get(dirfd)?;
        let loc = f.location().cloned().ok_or(Errno::EACCES)?;
        t.kernel.vfs.path_of(&t.fs, &loc)
    } else if dirfd == libc::AT_FDCWD {
        path
    } else {
        let f = t.fds.get(dirfd)?;
        let loc = f.location().cloned().ok_or(Errno::ENOTDIR)?;
        if !loc.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let mut p = t.kernel.vfs.path_of(&t.fs, &loc);
        p.push(b'/');
        p.extend_from_slice(&path);
        p
    };
    do_execve(t, full, a.u64(2), a.u64(3))
}

fn wait_target(t: &Task, pid: i32) -> WaitTarget {
    match pid {
        -1 => WaitTarget::Any,
        0 => WaitTarget::Pgid(t.tg.lock().pgid),
        p if p < -1 => WaitTarget::Pgid(-p),
        p => WaitTarget::Pid(p),
    }
}

fn sys_wait4(t: &mut Task, a: &Args) -> SysResult {
    let options = a.i32(2);
    let allowed = process::WNOHANG
        | process::WUNTRACED
        | process::WCONTINUED
        | process::WNOTHREAD
        | process::WALL
        | process::WCLONE;
    if options & !allowed != 0 {
        return Err(Errno::EINVAL);
    }
    let target = wait_target(t, a.i32(0));
    match process::wait(t, target, options | process::WEXITED)? {
        None => Ok(0),
        Some(r) => {
            if a.u64(1) != 0 {
                t.copy_out_u32(a.u64(1), process::wait_status(r.event) as u32)?;
            }
            if a.u64(3) != 0 {
                t.copy_out(a.u64(3), &r.usage.to_rusage_bytes())?;
            }
            Ok(r.pid as u64)
        }
    }
}

fn sys_waitid(t: &mut Task, a: &Args) -> SysResult {
    let (idtype, id, options) = (a.i32(0), a.i32(1), a.i32(3));
    let allowed = process::WNOHANG
        | process::WEXITED
        | process::WUNTRACED
        | process::WCONTINUED
        | process::WNOWAIT
        | process::WNOTHREAD
        | process::WALL
        | process::WCLONE;
    if options & !allowed != 0
        || options & (process::WEXITED | process::WUNTRACED | process::WCONTINUED) == 0
    {
        return Err(Errno::EINVAL);
    }
    let mut pidfd_nonblock = false;
    let target = match idtype {
        0 => WaitTarget::Any,
        1 if id > 0 => WaitTarget::Pid(id),
        2 if id >= 0 => WaitTarget::Pgid(if id == 0 { t.tg.lock().pgid } else { id }),
        // P_PIDFD: the process must be our child (ECHILD from wait otherwise).
        3 => {
            let p = crate::sys_pidfd::pidfd_of(t, id)?;
            pidfd_nonblock = t.fds.get(id)?.status_flags() & libc::O_NONBLOCK != 0;
            WaitTarget::Pid(p.tg.tgid)
        }
        _ => return Err(Errno::EINVAL),
    };
    // A nonblocking pidfd makes the wait WNOHANG, and "nothing yet" EAGAIN
    // unless the caller asked for WNOHANG itself.
    let extra = if pidfd_nonblock { process::WNOHANG } else { 0 };
    let r = process::wait(t, target, options | extra)?;
    if r.is_none() && pidfd_nonblock && options & process::WNOHANG == 0 {
        return Err(Errno::EAGAIN);
    }
    if a.u64(2) != 0 {
        let info = match r {
            None => [0u8; 128],
            Some(r) => {
                let (code, status) = match r.event {
                    ChildEvent::Exited(ExitStatus::Exited(c)) => (sentry::signal::CLD_EXITED, c),
                    ChildEvent::Exited(ExitStatus::Signaled(s)) => (sentry::signal::CLD_KILLED, s),
                    ChildEvent::Exited(ExitStatus::Dumped(s)) => (sentry::signal::CLD_DUMPED, s),
                    ChildEvent::Stopped(s) => (sentry::signal::CLD_STOPPED, s),
                    ChildEvent::Continued => (sentry::signal::CLD_CONTINUED, libc::SIGCONT),
                };
                sentry::signal::SigInfo::child(code, r.pid, r.uid, status, 0, 0).bytes
            }
        };
        t.copy_out(a.u64(2), &info)?;
    }
    if a.u64(4) != 0 {
        let u = r.map(|r| r.usage).unwrap_or_default();
        t.copy_out(a.u64(4), &u.to_rusage_bytes())?;
    }
    Ok(0)
}

fn sys_getpgid(t: &mut Task, a: &Args) -> SysResult {
    let pid = a.i32(0);
    if pid == 0 || pid == t.tgid {
        return Ok(t.tg.lock().pgid as u64);
    }
    let g = t.kernel.group(pid).ok_or(Errno::ESRCH)?;
    let pgid = g.lock().pgid;
    Ok(pgid as u64)
}

fn sys_getsid(t: &mut Task, a: &Args) -> SysResult {
    let pid = a.i32(0);
    if pid == 0 || pid == t.tgid {
        return Ok(t.tg.lock().sid as u64);
    }
    let g = t.kernel.group(pid).ok_or(Errno::ESRCH)?;
    let sid = g.lock().sid;
    Ok(sid as u64)
}

fn sys_setpgid(t: &mut Task, a: &Args) -> SysResult {
    process::setpgid(t, a.i32(0), a.i32(1)).map(|_| 0)
}

/// prctl(2): the per-process knobs programs commonly touch.
fn sys_prctl(t: &mut Task, a: &Args) -> SysResult {
    let (op, arg2) = (a.i32(0), a.u64(1));
    match op {
        libc::PR_SET_NAME => {
            let mut b = [0u8; 16];
            // The name is at most 15 bytes; a longer string is truncated, not an error.
            let name = t.copy_in_string(arg2, 4096).or_else(|e| {
                if e == Errno::ENAMETOOLONG {
                    t.copy_in_vec(arg2, 15)
                } else {
                    Err(e)
                }
            })?;
            let n = name.len().min(15);
            b[..n].copy_from_slice(&name[..n]);
            t.comm = b;
            Ok(0)
        }
        libc::PR_GET_NAME => {
            let c = t.comm;
            t.copy_out(arg2, &c)?;
            Ok(0)
        }
        libc::PR_SET_PDEATHSIG => {
            if arg2 > 64 {
                return Err(Errno::EINVAL);
            }
            t.shared
                .pdeathsig
                .store(arg2 as i32, std::sync::atomic::Ordering::Relaxed);
            Ok(0)
        }
        libc::PR_GET_PDEATHSIG => {
            let v = t
                .shared
                .pdeathsig
                .load(std::sync::atomic::Ordering::Relaxed);
            t.copy_out_u32(arg2, v as u32)?;
            Ok(0)
        }
        libc::PR_GET_DUMPABLE => Ok(t.dumpable as u64),
        libc::PR_SET_DUMPABLE => {
            if arg2 > 1 {
                return Err(Errno::EINVAL);
            }
            t.dumpable = arg2 == 1;
            Ok(0)
        }
        libc::PR_SET_NO_NEW_PRIVS => {
            if arg2 != 1 || a.u64(2) != 0 || a.u64(3) != 0 || a.u64(4) != 0 {
                return Err(Errno::EINVAL);
            }
            t.no_new_privs = true;
            Ok(0)
        }
        libc::PR_GET_NO_NEW_PRIVS => Ok(t.no_new_privs as u64),
        // Capabilities and securebits (security/commoncap.c cap_task_prctl).
        libc::PR_GET_SECUREBITS => Ok(t.creds.securebits as u64),
        libc::PR_SET_SECUREBITS => sys_cred::prctl_set_securebits(&mut t.creds, arg2),
        libc::PR_GET_KEEPCAPS => Ok((t.creds.securebits & sys_cred::SECBIT_KEEP_CAPS != 0) as u64),
        libc::PR_SET_KEEPCAPS => sys_cred::prctl_set_keepcaps(&mut t.creds, arg2),
        libc::PR_CAPBSET_READ => {
            if !sys_cred::cap_valid(arg2) {
                return Err(Errno::EINVAL);
            }
            Ok((t.creds.cap_bounding >> arg2) & 1)
        }
        libc::PR_CAPBSET_DROP => sys_cred::prctl_capbset_drop(&mut t.creds, arg2),
        libc::PR_CAP_AMBIENT => {
            sys_cred::prctl_cap_ambient(&mut t.creds, arg2, a.u64(2), [a.u64(3), a.u64(4)])
        }
        // No seccomp filters: the answer of a kernel built without CONFIG_SECCOMP.
        libc::PR_GET_SECCOMP | libc::PR_SET_SECCOMP => Err(Errno::EINVAL),
        // Rewriting the mm's layout (checkpoint/restore) is not supported: EPERM
        // without CAP_SYS_RESOURCE, as Linux checks first, else EINVAL.
        libc::PR_SET_MM => {
            const PR_SET_MM_MAP: u64 = 14;
            const PR_SET_MM_MAP_SIZE: u64 = 15;
            if arg2 != PR_SET_MM_MAP
                && arg2 != PR_SET_MM_MAP_SIZE
                && !t.creds.has_capability(sys_cred::CAP_SYS_RESOURCE)
            {
                return Err(Errno::EPERM);
            }
            Err(Errno::EINVAL)
        }
        libc::PR_GET_TIMERSLACK => Ok(t.sched.timer_slack_ns),
        libc::PR_SET_TIMERSLACK => {
            // Real-time tasks have no slack; Linux ignores the request for them.
            if !sys_sched::is_rt_or_deadline(t.sched.policy) {
                t.sched.timer_slack_ns = if arg2 == 0 {
                    sentry::task::SchedAttrs::default().timer_slack_ns
                } else {
                    arg2
                };
            }
            Ok(0)
        }
        libc::PR_SET_CHILD_SUBREAPER => {
            t.tg.lock().subreaper = arg2 != 0;
            Ok(0)
        }
        libc::PR_GET_CHILD_SUBREAPER => {
            let v = t.tg.lock().subreaper as u32;
            t.copy_out_u32(arg2, v)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

fn sys_arch_prctl(t: &mut Task, a: &Args) -> SysResult {
    let (code, addr) = (a.i32(0), a.u64(1));
    const ARCH_SET_GS: i32 = 0x1001;
    const ARCH_SET_FS: i32 = 0x1002;
    const ARCH_GET_FS: i32 = 0x1003;
    const ARCH_GET_GS: i32 = 0x1004;
    let canonical = |v: u64| v < 0x0000_8000_0000_0000;
    match code {
        ARCH_SET_FS => {
            if !canonical(addr) {
                return Err(Errno::EPERM);
            }
            t.regs.fs_base = addr;
        }
        ARCH_SET_GS => {
            if !canonical(addr) {
                return Err(Errno::EPERM);
            }
            t.regs.gs_base = addr;
        }
        ARCH_GET_FS => t.copy_out_u64(addr, t.regs.fs_base)?,
        ARCH_GET_GS => t.copy_out_u64(addr, t.regs.gs_base)?,
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}

fn sys_set_tid_address(t: &mut Task, a: &Args) -> SysResult {
    t.clear_child_tid = a.u64(0);
    Ok(t.tid as u64)
}

/// sizeof(struct robust_list_head).
const ROBUST_LIST_HEAD_SIZE: u64 = 24;

fn sys_set_robust_list(t: &mut Task, a: &Args) -> SysResult {
    if a.u64(1) != ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    t.robust_list = (a.u64(0), a.u64(1));
    Ok(0)
}

fn sys_get_robust_list(t: &mut Task, a: &Args) -> SysResult {
    let pid = a.i32(0);
    if pid != 0 && pid != t.tid {
        return Err(Errno::ESRCH);
    }
    t.copy_out_u64(a.u64(1), t.robust_list.0)?;
    t.copy_out_u64(a.u64(2), ROBUST_LIST_HEAD_SIZE)?;
    Ok(0)
}
