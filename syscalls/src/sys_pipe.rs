//! pipe(2) and pipe2(2).

use abi::sysno as nr;
use abi::{Errno, SysResult};
use fs::Pipe;
use sentry::Task;

use crate::{Arg, Args, Table};

pub(crate) fn register(t: &mut Table) {
    t.add(nr::PIPE, sys_pipe, &[Arg::Hex]);
    t.add(nr::PIPE2, sys_pipe2, &[Arg::Hex, Arg::OpenFlags]);
}

fn sys_pipe(t: &mut Task, a: &Args) -> SysResult {
    do_pipe2(t, a.u64(0), 0)
}

fn sys_pipe2(t: &mut Task, a: &Args) -> SysResult {
    do_pipe2(t, a.u64(0), a.i32(1))
}

/// Creates a pipe and stores its read and write fds as two ints at `addr`. If
/// they cannot be stored, neither fd stays installed (EFAULT), as in Linux.
fn do_pipe2(t: &mut Task, addr: u64, flags: i32) -> SysResult {
    // O_DIRECT is packet mode (Linux 3.4+); O_NOTIFICATION_PIPE is not supported.
    if flags & !(libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_DIRECT) != 0 {
        return Err(Errno::EINVAL);
    }
    let (r, w) = Pipe::new_pair(t.creds.fsuid, t.creds.fsgid, flags);
    let cloexec = flags & libc::O_CLOEXEC != 0;
    let limit = t.rlimits[libc::RLIMIT_NOFILE as usize].cur;
    let rfd = t.fds.insert(r, cloexec, limit)?;
    let wfd = match t.fds.insert(w, cloexec, limit) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = t.fds.remove(rfd);
            return Err(e);
        }
    };
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&rfd.to_le_bytes());
    out[4..].copy_from_slice(&wfd.to_le_bytes());
    if let Err(e) = t.copy_out(addr, &out) {
        let _ = t.fds.remove(rfd);
        let _ = t.fds.remove(wfd);
        return Err(e);
    }
    Ok(0)
}
