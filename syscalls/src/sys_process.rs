//! Process lifecycle: exit, exit_group, execve, and per-thread setup calls.

use abi::sysno::*;
use abi::{Errno, SysResult};
use sentry::task::ExitStatus;
use sentry::Task;

use crate::{Arg, Args, Table};

pub(crate) fn register(t: &mut Table) {
    t.add(EXIT, sys_exit, &[Arg::Dec]);
    t.add(EXIT_GROUP, sys_exit, &[Arg::Dec]);
    t.add(
        EXECVE,
        sys_execve,
        &[Arg::Path, Arg::StrArray, Arg::StrArray],
    );
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
            t.pdeathsig = arg2 as i32;
            Ok(0)
        }
        libc::PR_GET_PDEATHSIG => {
            t.copy_out_u32(arg2, t.pdeathsig as u32)?;
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
        libc::PR_GET_SECUREBITS => Ok(0),
        libc::PR_CAPBSET_READ => {
            if arg2 > 40 {
                return Err(Errno::EINVAL);
            }
            Ok((t.creds.euid == 0) as u64)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// exit and exit_group: with one thread per process (threads arrive with the
/// next issue) both end the process.
fn sys_exit(t: &mut Task, a: &Args) -> SysResult {
    t.exit_status = Some(ExitStatus::Exited(a.i32(0) & 0xff));
    Ok(0)
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

fn sys_execve(t: &mut Task, a: &Args) -> SysResult {
    let path = t.copy_in_path(a.u64(0))?;
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    // Linux allows a quarter of the stack limit for arguments and environment.
    let stack = t.rlimits[libc::RLIMIT_STACK as usize].cur;
    let mut budget = (stack / 4).clamp(128 * 1024, 6 << 20) as usize;
    let argv = copy_in_strings(t, a.u64(1), &mut budget)?;
    let envp = copy_in_strings(t, a.u64(2), &mut budget)?;
    let image =
        sentry::exec::load_image(&t.kernel.clone(), &t.fs, &t.creds, &path, argv, envp, stack)?;
    t.exec(image);
    Ok(0)
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
