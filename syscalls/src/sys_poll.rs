//! poll(2), ppoll(2), select(2), pselect6(2): wait until one of a set of fds is
//! ready. Readiness comes from each file's `readiness`; the wait registers on every
//! file's wait queue and polls every host fd, through `fs::waiter::block`.
//!
//! Linux never restarts these calls after a signal handler ran, so an interrupted
//! wait returns ERESTARTNOHAND (EINTR after a handler, a restart otherwise).

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use abi::errno::{ERESTARTNOHAND, ERESTARTSYS};
use abi::linux::Timespec;
use abi::sysno as nr;
use abi::{Errno, SysResult};
use fs::waiter::{
    self, WaitQueue, EVENT_ERR, EVENT_HUP, EVENT_IN, EVENT_NVAL, EVENT_OUT, EVENT_PRI,
};
use fs::OpenFile;
use sentry::Task;

use crate::{Arg, Args, Table};

pub(crate) fn register(t: &mut Table) {
    use Arg::*;
    t.add(nr::POLL, sys_poll, &[Hex, UDec, Dec]);
    t.add(nr::PPOLL, sys_ppoll, &[Hex, UDec, Hex, Hex, UDec]);
    t.add(nr::SELECT, sys_select, &[Dec, Hex, Hex, Hex, Hex]);
    t.add(nr::PSELECT6, sys_pselect6, &[Dec, Hex, Hex, Hex, Hex, Hex]);
}

const POLLRDNORM: u32 = libc::POLLRDNORM as u32;
const POLLRDBAND: u32 = libc::POLLRDBAND as u32;
const POLLWRNORM: u32 = libc::POLLWRNORM as u32;
const POLLWRBAND: u32 = libc::POLLWRBAND as u32;
/// The events that make an fd readable, writable or exceptional for select
/// (Linux's POLLIN_SET, POLLOUT_SET, POLLEX_SET).
const SELECT_IN: u32 = POLLRDNORM | POLLRDBAND | EVENT_IN | EVENT_HUP | EVENT_ERR;
const SELECT_OUT: u32 = POLLWRBAND | POLLWRNORM | EVENT_OUT | EVENT_ERR;
const SELECT_EX: u32 = EVENT_PRI;

/// When a wait ends.
#[derive(Clone, Copy)]
enum Timeout {
    /// Check once, do not wait.
    Zero,
    At(Instant),
    Never,
}

impl Timeout {
    /// A relative timeout; absent means forever.
    fn after(d: Option<Duration>) -> Timeout {
        match d {
            None => Timeout::Never,
            Some(d) if d.is_zero() => Timeout::Zero,
            // Too far to represent is as good as forever.
            Some(d) => Instant::now()
                .checked_add(d)
                .map_or(Timeout::Never, Timeout::At),
        }
    }

    /// What is left of it, for the calls that report it back (None: nothing to
    /// report, as Linux does not update a zero or absent timeout).
    fn remaining(self) -> Option<Duration> {
        match self {
            Timeout::At(d) => Some(d.saturating_duration_since(Instant::now())),
            _ => None,
        }
    }
}

/// The file behind `fd` for polling: None for closed fds and O_PATH descriptions
/// (which Linux's poll does not see either).
fn poll_file(t: &Task, fd: i32) -> Option<Arc<OpenFile>> {
    t.fds.get(fd).ok().filter(|f| !f.is_path_only())
}

/// Polls `files`, each for its event mask, until `ready` accepts the readiness
/// (one entry per file), `timeout` passes (the readiness then, none ready) or a
/// signal arrives (ERESTARTNOHAND).
fn wait_ready(
    t: &Task,
    files: &[(Arc<OpenFile>, u32)],
    timeout: Timeout,
    ready: impl Fn(&[u32]) -> bool,
) -> Result<Vec<u32>, Errno> {
    let scan = || {
        files
            .iter()
            .map(|(f, m)| f.readiness(*m))
            .collect::<Vec<u32>>()
    };
    let deadline = match timeout {
        Timeout::Zero => return Ok(scan()),
        Timeout::At(d) => Some(d),
        Timeout::Never => None,
    };
    // One registration per queue (both ends of a pipe share one).
    let mut queues: Vec<(&WaitQueue, u32)> = Vec::new();
    let mut host: Vec<(RawFd, i16)> = Vec::new();
    for (f, mask) in files {
        if let Some(q) = f.ops().wait_queue() {
            match queues.iter_mut().find(|(o, _)| std::ptr::eq(*o, q)) {
                Some((_, m)) => *m |= mask,
                None => queues.push((q, *mask)),
            }
        }
        if let Some(fd) = f.ops().host_fd() {
            host.push((fd.as_raw_fd(), *mask as i16));
        }
    }
    let r = waiter::block(t.waiter(), &queues, &host, deadline, || {
        let r = scan();
        if ready(&r) {
            Ok(r)
        } else {
            Err(Errno::EAGAIN)
        }
    });
    match r {
        Err(Errno::ETIMEDOUT) => Ok(scan()),
        Err(Errno(ERESTARTSYS)) => Err(Errno(ERESTARTNOHAND)),
        r => r,
    }
}

/// The signal mask at `addr` (a sigset of `size` bytes), if `addr` is not NULL.
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

/// Runs `f` with `mask` (if any) in place of the task's signal mask.
/// As Linux, when the call is interrupted the old mask comes back only after the
/// signal is delivered (through `saved_mask`), so a signal the temporary mask
/// unblocks is handled.
fn with_sigmask(
    t: &mut Task,
    mask: Option<u64>,
    f: impl FnOnce(&mut Task) -> SysResult,
) -> SysResult {
    let Some(mask) = mask else {
        return f(t);
    };
    let old = t.sigmask();
    t.set_sigmask(mask);
    let r = f(t);
    match r {
        Err(e) if e.0 == abi::errno::ERESTARTNOHAND || e.0 == abi::errno::ERESTARTSYS => {
            t.saved_mask = Some(old)
        }
        _ => t.set_sigmask(old),
    }
    r
}

/// A `struct timespec` timeout at `addr` (NULL: none); EINVAL when invalid.
fn read_timespec(t: &Task, addr: u64) -> Result<Option<Duration>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let ts = Timespec::from_bytes(&t.copy_in_vec(addr, 16)?);
    let ns = ts.to_nanos().ok_or(Errno::EINVAL)?;
    Ok(Some(Duration::from_nanos(ns.min(u64::MAX as u128) as u64)))
}

fn write_timespec(t: &Task, addr: u64, d: Duration) -> Result<(), Errno> {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(d.as_secs() as i64).to_le_bytes());
    b[8..].copy_from_slice(&(d.subsec_nanos() as i64).to_le_bytes());
    t.copy_out(addr, &b)
}

// ---- poll ----

fn sys_poll(t: &mut Task, a: &Args) -> SysResult {
    // A negative timeout waits forever.
    let ms = a.i32(2);
    let timeout = (ms >= 0).then(|| Duration::from_millis(ms as u64));
    do_poll(t, a.u64(0), a.u32(1), Timeout::after(timeout))
}

fn sys_ppoll(t: &mut Task, a: &Args) -> SysResult {
    let tsp = a.u64(2);
    let timeout = Timeout::after(read_timespec(t, tsp)?);
    let mask = read_sigmask(t, a.u64(3), a.u64(4))?;
    let r = with_sigmask(t, mask, |t| do_poll(t, a.u64(0), a.u32(1), timeout));
    report_remaining(t, tsp, timeout, PollTime::Timespec);
    r
}

/// poll over the `nfds` `struct pollfd`s at `addr`.
fn do_poll(t: &mut Task, addr: u64, nfds: u32, timeout: Timeout) -> SysResult {
    if nfds as u64 > t.rlimits[libc::RLIMIT_NOFILE as usize].cur {
        return Err(Errno::EINVAL);
    }
    let n = nfds as usize;
    let mut raw = t.copy_in_vec(addr, n * 8)?;
    let mut files = Vec::new();
    // (entry, index into `files`) for the entries that name an open file.
    let mut polled = Vec::new();
    let mut revents = vec![0u32; n];
    for (i, e) in raw.chunks_exact(8).enumerate() {
        let fd = i32::from_le_bytes(e[..4].try_into().unwrap());
        let events = u16::from_le_bytes(e[4..6].try_into().unwrap()) as u32;
        // Negative fds are skipped (their revents are 0); closed ones are POLLNVAL.
        if fd < 0 {
            continue;
        }
        match poll_file(t, fd) {
            Some(f) => {
                polled.push((i, files.len()));
                files.push((f, events | EVENT_ERR | EVENT_HUP));
            }
            None => revents[i] = EVENT_NVAL,
        }
    }
    // A POLLNVAL entry is a ready one: no waiting.
    let timeout = if revents.iter().any(|&r| r != 0) {
        Timeout::Zero
    } else {
        timeout
    };
    let r = wait_ready(t, &files, timeout, |r| r.iter().any(|&x| x != 0));
    if let Ok(ready) = &r {
        for &(i, k) in &polled {
            revents[i] = ready[k];
        }
    }
    // Linux stores revents back even when interrupted (as zeros).
    for (e, r) in raw.chunks_exact_mut(8).zip(&revents) {
        e[6..8].copy_from_slice(&(*r as u16).to_le_bytes());
    }
    t.copy_out(addr, &raw)?;
    r?;
    Ok(revents.iter().filter(|&&r| r != 0).count() as u64)
}

// ---- select ----

/// How a call reports its remaining timeout.
#[derive(Clone, Copy)]
enum PollTime {
    Timeval,
    Timespec,
}

/// Stores what is left of `timeout` at `addr` (select, pselect6 and ppoll do);
/// a failure to store it is ignored, as Linux ignores it.
fn report_remaining(t: &Task, addr: u64, timeout: Timeout, kind: PollTime) {
    let Some(left) = timeout.remaining() else {
        return;
    };
    if addr == 0 {
        return;
    }
    let _ = match kind {
        PollTime::Timespec => write_timespec(t, addr, left),
        PollTime::Timeval => {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&(left.as_secs() as i64).to_le_bytes());
            b[8..].copy_from_slice(&(left.subsec_micros() as i64).to_le_bytes());
            t.copy_out(addr, &b)
        }
    };
}

fn sys_select(t: &mut Task, a: &Args) -> SysResult {
    let tvp = a.u64(4);
    let timeout = if tvp == 0 {
        None
    } else {
        let b = t.copy_in_vec(tvp, 16)?;
        let (sec, usec) = (
            abi::linux::le_u64(&b, 0) as i64,
            abi::linux::le_u64(&b, 8) as i64,
        );
        // Linux carries whole seconds out of tv_usec before checking the result.
        let ts = Timespec {
            sec: sec.saturating_add(usec / 1_000_000),
            nsec: (usec % 1_000_000) * 1000,
        };
        let ns = ts.to_nanos().ok_or(Errno::EINVAL)?;
        Some(Duration::from_nanos(ns.min(u64::MAX as u128) as u64))
    };
    let timeout = Timeout::after(timeout);
    let r = do_select(t, a.i32(0), [a.u64(1), a.u64(2), a.u64(3)], timeout);
    report_remaining(t, tvp, timeout, PollTime::Timeval);
    r
}

fn sys_pselect6(t: &mut Task, a: &Args) -> SysResult {
    // The sixth argument points at { const sigset_t *ss; size_t ss_len; }.
    let (mask, mask_size) = match a.u64(5) {
        0 => (0, 0),
        p => {
            let b = t.copy_in_vec(p, 16)?;
            (abi::linux::le_u64(&b, 0), abi::linux::le_u64(&b, 8))
        }
    };
    let tsp = a.u64(4);
    let timeout = Timeout::after(read_timespec(t, tsp)?);
    let mask = read_sigmask(t, mask, mask_size)?;
    let r = with_sigmask(t, mask, |t| {
        do_select(t, a.i32(0), [a.u64(1), a.u64(2), a.u64(3)], timeout)
    });
    report_remaining(t, tsp, timeout, PollTime::Timespec);
    r
}

/// select over the fd sets at `sets` (read, write, except; NULL for none).
fn do_select(t: &mut Task, nfds: i32, sets: [u64; 3], timeout: Timeout) -> SysResult {
    if nfds < 0 {
        return Err(Errno::EINVAL);
    }
    // Linux looks no further than its fd table's size; ours is bounded by the limit.
    let limit = t.rlimits[libc::RLIMIT_NOFILE as usize]
        .cur
        .min(fs::fd_table::NR_OPEN);
    let n = (nfds as u64).min(limit) as usize;
    // fd_sets are arrays of longs: whole 8-byte words are read and written.
    let bytes = n.div_ceil(64) * 8;
    let mut input: [Option<Vec<u8>>; 3] = [None, None, None];
    for (set, &addr) in input.iter_mut().zip(&sets) {
        if addr != 0 {
            *set = Some(t.copy_in_vec(addr, bytes)?);
        }
    }
    let bit = |set: &Option<Vec<u8>>, fd: usize| {
        set.as_ref()
            .is_some_and(|s| s[fd / 8] & (1 << (fd % 8)) != 0)
    };
    // (fd, which sets) of every fd named, with its file and the events wanted.
    let mut wanted: Vec<(usize, [bool; 3])> = Vec::new();
    let mut files = Vec::new();
    for fd in 0..n {
        let which = [bit(&input[0], fd), bit(&input[1], fd), bit(&input[2], fd)];
        if which == [false; 3] {
            continue;
        }
        let f = poll_file(t, fd as i32).ok_or(Errno::EBADF)?;
        let mut mask = SELECT_EX;
        if which[0] {
            mask |= SELECT_IN;
        }
        if which[1] {
            mask |= SELECT_OUT;
        }
        wanted.push((fd, which));
        files.push((f, mask));
    }
    let results = |ready: &[u32]| {
        let mut out = [vec![0u8; bytes], vec![0u8; bytes], vec![0u8; bytes]];
        let mut count = 0;
        for (&(fd, which), &r) in wanted.iter().zip(ready) {
            for (k, set) in [SELECT_IN, SELECT_OUT, SELECT_EX].into_iter().enumerate() {
                if which[k] && r & set != 0 {
                    out[k][fd / 8] |= 1 << (fd % 8);
                    count += 1;
                }
            }
        }
        (out, count)
    };
    let ready = wait_ready(t, &files, timeout, |r| results(r).1 > 0)?;
    let (out, count) = results(&ready);
    for (k, &addr) in sets.iter().enumerate() {
        if addr != 0 {
            t.copy_out(addr, &out[k])?;
        }
    }
    Ok(count as u64)
}
