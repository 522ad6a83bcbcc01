//! Anonymous-inode files: eventfd(2), eventfd2(2), epoll_create(2),
//! epoll_create1(2), epoll_ctl(2), epoll_wait(2), epoll_pwait(2), epoll_pwait2(2).

use std::time::{Duration, Instant};

use abi::errno::ERESTARTSYS;
use abi::linux::Timespec;
use abi::sysno as nr;
use abi::{Errno, SysResult};
use fs::anon::epoll::{self, Epoll};
use fs::anon::eventfd::{self, EventFd};
use fs::anon::timerfd::{self, TimerFd};
use fs::OpenFile;
use sentry::signalfd::{self, SignalFd};
use sentry::Task;
use std::sync::Arc;

use crate::{Arg, Args, Table};

pub(crate) fn register(t: &mut Table) {
    use Arg::*;
    t.add(nr::EVENTFD, sys_eventfd, &[UDec]);
    t.add(nr::EVENTFD2, sys_eventfd2, &[UDec, Hex]);
    t.add(nr::EPOLL_CREATE, sys_epoll_create, &[Dec]);
    t.add(nr::EPOLL_CREATE1, sys_epoll_create1, &[Hex]);
    t.add(nr::EPOLL_CTL, sys_epoll_ctl, &[Fd, Dec, Fd, Hex]);
    t.add(nr::EPOLL_WAIT, sys_epoll_wait, &[Fd, Hex, Dec, Dec]);
    t.add(
        nr::EPOLL_PWAIT,
        sys_epoll_pwait,
        &[Fd, Hex, Dec, Dec, Hex, UDec],
    );
    t.add(
        nr::EPOLL_PWAIT2,
        sys_epoll_pwait2,
        &[Fd, Hex, Dec, Hex, Hex, UDec],
    );
    t.add(nr::TIMERFD_CREATE, sys_timerfd_create, &[Dec, Hex]);
    t.add(
        nr::TIMERFD_SETTIME,
        sys_timerfd_settime,
        &[Fd, Hex, Hex, Hex],
    );
    t.add(nr::TIMERFD_GETTIME, sys_timerfd_gettime, &[Fd, Hex]);
    t.add(nr::SIGNALFD, sys_signalfd, &[Fd, Hex, UDec]);
    t.add(nr::SIGNALFD4, sys_signalfd4, &[Fd, Hex, UDec, Hex]);
    t.add(nr::MEMFD_CREATE, sys_memfd_create, &[Path, Hex]);
}

/// Installs a new anonymous file.
fn install(t: &Task, f: Arc<OpenFile>, cloexec: bool) -> SysResult {
    let limit = t.rlimits[libc::RLIMIT_NOFILE as usize].cur;
    Ok(t.fds.insert(f, cloexec, limit)? as u64)
}

// ---- eventfd ----

fn sys_eventfd(t: &mut Task, a: &Args) -> SysResult {
    do_eventfd(t, a.u32(0), 0)
}

fn sys_eventfd2(t: &mut Task, a: &Args) -> SysResult {
    do_eventfd(t, a.u32(0), a.i32(1))
}

fn do_eventfd(t: &Task, init: u32, flags: i32) -> SysResult {
    if flags & !(eventfd::EFD_CLOEXEC | eventfd::EFD_NONBLOCK | eventfd::EFD_SEMAPHORE) != 0 {
        return Err(Errno::EINVAL);
    }
    let f = EventFd::new_file(init, flags, t.creds.euid, t.creds.egid);
    install(t, f, flags & eventfd::EFD_CLOEXEC != 0)
}

// ---- epoll ----

fn sys_epoll_create(t: &mut Task, a: &Args) -> SysResult {
    if a.i32(0) <= 0 {
        return Err(Errno::EINVAL);
    }
    do_epoll_create(t, 0)
}

fn sys_epoll_create1(t: &mut Task, a: &Args) -> SysResult {
    do_epoll_create(t, a.i32(0))
}

fn do_epoll_create(t: &Task, flags: i32) -> SysResult {
    if flags & !libc::EPOLL_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    let f = Epoll::new_file(t.creds.euid, t.creds.egid);
    install(t, f, flags & libc::EPOLL_CLOEXEC != 0)
}

fn epoll_of(t: &Task, epfd: i32) -> Result<Arc<Epoll>, Errno> {
    let f = t.fds.get(epfd)?;
    epoll::as_epoll(&f).ok_or(Errno::EINVAL)
}

fn sys_epoll_ctl(t: &mut Task, a: &Args) -> SysResult {
    let (epfd, op, fd, ev) = (a.fd(0), a.i32(1), a.fd(2), a.u64(3));
    let (events, data) = if op == epoll::EPOLL_CTL_DEL {
        (0, 0)
    } else {
        let b = t.copy_in_vec(ev, epoll::EVENT_SIZE)?;
        (
            u32::from_le_bytes(b[..4].try_into().unwrap()),
            u64::from_le_bytes(b[4..12].try_into().unwrap()),
        )
    };
    let epf = t.fds.get(epfd)?;
    let target = t.fds.get(fd)?;
    if target.is_path_only() {
        return Err(Errno::EBADF);
    }
    // Linux's order: EPERM for an unpollable target before EINVAL for a bad epfd.
    if !epoll::can_poll(&target) {
        return Err(Errno::EPERM);
    }
    if epfd == fd {
        return Err(Errno::EINVAL);
    }
    let ep = epoll::as_epoll(&epf).ok_or(Errno::EINVAL)?;
    ep.ctl(op, fd, &target, events, data)?;
    Ok(0)
}

fn sys_epoll_wait(t: &mut Task, a: &Args) -> SysResult {
    let ms = a.i32(3);
    let timeout = (ms >= 0).then(|| Duration::from_millis(ms as u64));
    do_epoll_wait(t, a.fd(0), a.u64(1), a.i32(2), timeout, None)
}

fn sys_epoll_pwait(t: &mut Task, a: &Args) -> SysResult {
    let ms = a.i32(3);
    let timeout = (ms >= 0).then(|| Duration::from_millis(ms as u64));
    let mask = read_sigmask(t, a.u64(4), a.u64(5))?;
    do_epoll_wait(t, a.fd(0), a.u64(1), a.i32(2), timeout, mask)
}

fn sys_epoll_pwait2(t: &mut Task, a: &Args) -> SysResult {
    let timeout = match a.u64(3) {
        0 => None,
        p => {
            let ts = Timespec::from_bytes(&t.copy_in_vec(p, 16)?);
            let ns = ts.to_nanos().ok_or(Errno::EINVAL)?;
            Some(Duration::from_nanos(ns.min(u64::MAX as u128) as u64))
        }
    };
    let mask = read_sigmask(t, a.u64(4), a.u64(5))?;
    do_epoll_wait(t, a.fd(0), a.u64(1), a.i32(2), timeout, mask)
}

fn read_sigmask(t: &Task, addr: u64, size: u64) -> Result<Option<u64>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let unblockable = 1u64 << (libc::SIGKILL - 1) | 1u64 << (libc::SIGSTOP - 1);
    Ok(Some(t.copy_in_u64(addr)? & !unblockable))
}

/// Linux's EP_MAX_EVENTS.
const MAX_EVENTS: i32 = (i32::MAX as usize / epoll::EVENT_SIZE) as i32;

fn do_epoll_wait(
    t: &mut Task,
    epfd: i32,
    events: u64,
    max: i32,
    timeout: Option<Duration>,
    mask: Option<u64>,
) -> SysResult {
    if max <= 0 || max > MAX_EVENTS {
        return Err(Errno::EINVAL);
    }
    let ep = epoll_of(t, epfd)?;
    let no_wait = timeout.is_some_and(|d| d.is_zero());
    let deadline = timeout.and_then(|d| Instant::now().checked_add(d));
    let old = t.sigmask();
    if let Some(m) = mask {
        t.set_sigmask(m);
    }
    let r = ep.wait(t.waiter(), max as usize, deadline, no_wait);
    // Linux never restarts epoll_wait: EINTR, with the caller's mask restored
    // after the handler runs.
    let r = match r {
        Err(Errno(ERESTARTSYS)) => Err(Errno::EINTR),
        r => r,
    };
    if mask.is_some() {
        match r {
            Err(Errno::EINTR) => t.saved_mask = Some(old),
            _ => t.set_sigmask(old),
        }
    }
    let evs = r?;
    let mut out = Vec::with_capacity(evs.len() * epoll::EVENT_SIZE);
    for (e, d) in &evs {
        out.extend_from_slice(&e.to_le_bytes());
        out.extend_from_slice(&d.to_le_bytes());
    }
    t.copy_out(events, &out)?;
    Ok(evs.len() as u64)
}

// ---- timerfd ----

/// CAP_WAKE_ALARM.
const CAP_WAKE_ALARM: u32 = 35;

fn sys_timerfd_create(t: &mut Task, a: &Args) -> SysResult {
    let (clock, flags) = (a.i32(0), a.i32(1));
    if flags & !(timerfd::TFD_CLOEXEC | timerfd::TFD_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let base = match clock {
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME => clock,
        libc::CLOCK_REALTIME_ALARM | libc::CLOCK_BOOTTIME_ALARM => {
            if !t.creds.has_capability(CAP_WAKE_ALARM) {
                return Err(Errno::EPERM);
            }
            if clock == libc::CLOCK_REALTIME_ALARM {
                libc::CLOCK_REALTIME
            } else {
                libc::CLOCK_BOOTTIME
            }
        }
        _ => return Err(Errno::EINVAL),
    };
    let f = TimerFd::new_file(base, flags, t.creds.euid, t.creds.egid);
    install(t, f, flags & timerfd::TFD_CLOEXEC != 0)
}

fn timerfd_of(t: &Task, fd: i32) -> Result<Arc<TimerFd>, Errno> {
    let f = t.fds.get(fd)?;
    TimerFd::of(&f).ok_or(Errno::EINVAL)
}

/// A `struct timespec` in ns; EINVAL when invalid.
fn ts_nanos(b: &[u8]) -> Result<u64, Errno> {
    let ts = Timespec::from_bytes(b);
    let ns = ts.to_nanos().ok_or(Errno::EINVAL)?;
    Ok(ns.min(u64::MAX as u128) as u64)
}

fn itimerspec(value: u64, interval: u64) -> [u8; 32] {
    let mut b = [0u8; 32];
    let put = |b: &mut [u8], ns: u64| {
        b[..8].copy_from_slice(&((ns / 1_000_000_000) as i64).to_le_bytes());
        b[8..16].copy_from_slice(&((ns % 1_000_000_000) as i64).to_le_bytes());
    };
    put(&mut b[..16], interval);
    put(&mut b[16..], value);
    b
}

fn sys_timerfd_settime(t: &mut Task, a: &Args) -> SysResult {
    let (fd, flags, new, old) = (a.fd(0), a.i32(1), a.u64(2), a.u64(3));
    if flags & !(timerfd::TFD_TIMER_ABSTIME | timerfd::TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL);
    }
    let b = t.copy_in_vec(new, 32)?;
    let interval = ts_nanos(&b[..16])?;
    let value = ts_nanos(&b[16..])?;
    let tf = timerfd_of(t, fd)?;
    let (ov, oi) = tf.set(value, interval, flags & timerfd::TFD_TIMER_ABSTIME != 0);
    if old != 0 {
        t.copy_out(old, &itimerspec(ov, oi))?;
    }
    Ok(0)
}

fn sys_timerfd_gettime(t: &mut Task, a: &Args) -> SysResult {
    let tf = timerfd_of(t, a.fd(0))?;
    let (v, i) = tf.get();
    t.copy_out(a.u64(1), &itimerspec(v, i))?;
    Ok(0)
}

// ---- signalfd ----

fn sys_signalfd(t: &mut Task, a: &Args) -> SysResult {
    do_signalfd(t, a.fd(0), a.u64(1), a.u64(2), 0)
}

fn sys_signalfd4(t: &mut Task, a: &Args) -> SysResult {
    do_signalfd(t, a.fd(0), a.u64(1), a.u64(2), a.i32(3))
}

fn do_signalfd(t: &Task, fd: i32, mask_addr: u64, size: u64, flags: i32) -> SysResult {
    if flags & !(signalfd::SFD_CLOEXEC | signalfd::SFD_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let mask = t.copy_in_u64(mask_addr)?;
    if fd == -1 {
        let f = SignalFd::new_file(&t.shared, mask, flags, t.creds.euid, t.creds.egid);
        return install(t, f, flags & signalfd::SFD_CLOEXEC != 0);
    }
    let f = t.fds.get(fd)?;
    let s = SignalFd::of(&f).ok_or(Errno::EINVAL)?;
    s.set_mask(mask);
    Ok(fd as u64)
}

// ---- memfd ----

const MFD_CLOEXEC: u32 = 1;
const MFD_ALLOW_SEALING: u32 = 2;
const MFD_HUGETLB: u32 = 4;
const MFD_NOEXEC_SEAL: u32 = 8;
const MFD_EXEC: u32 = 0x10;
/// Longest name (without the NUL), Linux's MFD_NAME_MAX_LEN.
const MFD_NAME_MAX_LEN: usize = 249;

/// memfd_create(2): an unnamed file in the sandbox's /dev/shm tmpfs (an
/// O_TMPFILE there), so read/write/ftruncate/mmap (shared mappings included)
/// behave as on any tmpfs file.
fn sys_memfd_create(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.u32(1);
    if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC) != 0 {
        // MFD_HUGETLB (and its size bits): no hugetlbfs here.
        let _ = MFD_HUGETLB;
        return Err(Errno::EINVAL);
    }
    if flags & MFD_NOEXEC_SEAL != 0 && flags & MFD_EXEC != 0 {
        return Err(Errno::EINVAL);
    }
    let name = match t.copy_in_string(a.u64(0), MFD_NAME_MAX_LEN + 1) {
        Ok(n) => n,
        Err(Errno::EFAULT) => return Err(Errno::EFAULT),
        Err(_) => return Err(Errno::EINVAL),
    };
    if name.len() > MFD_NAME_MAX_LEN {
        return Err(Errno::EINVAL);
    }
    let creds = crate::sys_file::creds(t);
    let how = fs::OpenHow {
        flags: libc::O_TMPFILE | libc::O_RDWR | libc::O_LARGEFILE,
        mode: 0o777,
        resolve: 0,
    };
    let vfs = &t.kernel.vfs;
    let f = vfs
        .open(&t.fs, &creds, &vfs.root(), b"/dev/shm", &how)
        .map_err(|e| match e {
            Errno::ENOSPC => Errno::ENOMEM,
            e => e,
        })?;
    if let Some(store) = f.ops().page_store() {
        if flags & MFD_ALLOW_SEALING != 0 {
            store.allow_sealing();
        }
        if flags & MFD_NOEXEC_SEAL != 0 {
            // MFD_NOEXEC_SEAL: not executable, and sealed so (it implies
            // MFD_ALLOW_SEALING).
            if let Some(loc) = f.location() {
                let mode = loc.attr().mode & 0o7777 & !0o111;
                loc.inode().setattr(&fs::SetAttr {
                    mode: Some(mode),
                    ..Default::default()
                })?;
            }
            store.allow_sealing();
            store.add_seals(fs::pagestore::F_SEAL_EXEC)?;
        }
    }
    install(t, f, flags & MFD_CLOEXEC != 0)
}
