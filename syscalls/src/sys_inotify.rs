//! inotify(7): inotify_init(2), inotify_init1(2), inotify_add_watch(2),
//! inotify_rm_watch(2). The instance and the events are fs::anon::inotify's.

use std::sync::Arc;

use abi::sysno as nr;
use abi::{Errno, SysResult};
use fs::anon::inotify::{
    Inotify, ALL_INOTIFY_BITS, IN_CLOEXEC, IN_DONT_FOLLOW, IN_MASK_ADD, IN_MASK_CREATE,
    IN_NONBLOCK, IN_ONLYDIR,
};
use fs::{OpenFile, WalkOpts, MAY_READ};
use sentry::Task;

use crate::{Arg, Args, Table};

pub(crate) fn register(t: &mut Table) {
    use Arg::*;
    t.add(nr::INOTIFY_INIT, sys_inotify_init, &[]);
    t.add(nr::INOTIFY_INIT1, sys_inotify_init1, &[Hex]);
    t.add(
        nr::INOTIFY_ADD_WATCH,
        sys_inotify_add_watch,
        &[Fd, Path, Hex],
    );
    t.add(nr::INOTIFY_RM_WATCH, sys_inotify_rm_watch, &[Fd, Dec]);
}

fn install(t: &Task, f: Arc<OpenFile>, cloexec: bool) -> SysResult {
    let limit = t.rlimits[libc::RLIMIT_NOFILE as usize].cur;
    Ok(t.fds.insert(f, cloexec, limit)? as u64)
}

fn sys_inotify_init(t: &mut Task, _a: &Args) -> SysResult {
    do_init(t, 0)
}

fn sys_inotify_init1(t: &mut Task, a: &Args) -> SysResult {
    do_init(t, a.i32(0))
}

fn do_init(t: &Task, flags: i32) -> SysResult {
    if flags & !(IN_CLOEXEC | IN_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let f = Inotify::new_file(flags, t.creds.euid, t.creds.egid)?;
    install(t, f, flags & IN_CLOEXEC != 0)
}

fn instance(t: &Task, fd: i32) -> Result<Arc<Inotify>, Errno> {
    let f = t.fds.get(fd)?;
    Inotify::of(&f).ok_or(Errno::EINVAL)
}

/// Linux's order: the mask, the fd, the path, then read permission on it.
fn sys_inotify_add_watch(t: &mut Task, a: &Args) -> SysResult {
    let (fd, addr, mask) = (a.fd(0), a.u64(1), a.u32(2));
    if mask & IN_MASK_ADD != 0 && mask & IN_MASK_CREATE != 0 {
        return Err(Errno::EINVAL);
    }
    if mask & !ALL_INOTIFY_BITS != 0 || mask & ALL_INOTIFY_BITS == 0 {
        return Err(Errno::EINVAL);
    }
    let ino = instance(t, fd)?;
    if addr == 0 {
        return Err(Errno::EFAULT);
    }
    let path = t.copy_in_path(addr)?;
    let creds = crate::sys_file::creds(t);
    let start = if path.first() == Some(&b'/') {
        t.fs.root()
    } else {
        t.fs.cwd()
    };
    let opts = WalkOpts {
        follow_final: mask & IN_DONT_FOLLOW == 0,
        must_dir: mask & IN_ONLYDIR != 0,
        ..Default::default()
    };
    let loc = t.kernel.vfs.walk(&t.fs, &creds, &start, &path, &opts)?;
    let at = loc.attr();
    fs::perm::check(&creds, at.mode, at.uid, at.gid, MAY_READ)?;
    let wd = ino.add_watch(loc.inode(), mask)?;
    Ok(wd as u64)
}

fn sys_inotify_rm_watch(t: &mut Task, a: &Args) -> SysResult {
    let ino = instance(t, a.fd(0))?;
    ino.rm_watch(a.i32(1))?;
    Ok(0)
}
