//! Clocks, sleeps and timers: clock_*, nanosleep, alarm, itimers, POSIX timers,
//! times and getrusage. The semantics live in `sentry::timer`.

use abi::errno::{ERESTARTNOHAND, ERESTARTSYS, ERESTART_RESTARTBLOCK};
use abi::linux::{le_u32, le_u64, Encoder, Timespec};
use abi::sysno::*;
use abi::{Errno, SysResult};
use sentry::thread_group::Usage;
use sentry::timer::{self, Clock, SigEvent};
use sentry::Task;

use crate::{Arg, Args, Table};

pub(crate) fn register(t: &mut Table) {
    t.add(CLOCK_GETTIME, sys_clock_gettime, &[Arg::Dec, Arg::Hex]);
    t.add(CLOCK_GETRES, sys_clock_getres, &[Arg::Dec, Arg::Hex]);
    t.add(CLOCK_SETTIME, sys_clock_settime, &[Arg::Dec, Arg::Hex]);
    t.add(NANOSLEEP, sys_nanosleep, &[Arg::Hex, Arg::Hex]);
    t.add(
        CLOCK_NANOSLEEP,
        sys_clock_nanosleep,
        &[Arg::Dec, Arg::Dec, Arg::Hex, Arg::Hex],
    );
    t.add(ALARM, sys_alarm, &[Arg::UDec]);
    t.add(GETITIMER, sys_getitimer, &[Arg::Dec, Arg::Hex]);
    t.add(SETITIMER, sys_setitimer, &[Arg::Dec, Arg::Hex, Arg::Hex]);
    t.add(
        TIMER_CREATE,
        sys_timer_create,
        &[Arg::Dec, Arg::Hex, Arg::Hex],
    );
    t.add(
        TIMER_SETTIME,
        sys_timer_settime,
        &[Arg::Dec, Arg::Dec, Arg::Hex, Arg::Hex],
    );
    t.add(TIMER_GETTIME, sys_timer_gettime, &[Arg::Dec, Arg::Hex]);
    t.add(TIMER_GETOVERRUN, sys_timer_getoverrun, &[Arg::Dec]);
    t.add(TIMER_DELETE, sys_timer_delete, &[Arg::Dec]);
    t.add(TIMES, sys_times, &[Arg::Hex]);
    t.add(GETRUSAGE, sys_getrusage, &[Arg::Dec, Arg::Hex]);
}

const NSEC_PER_SEC: u64 = 1_000_000_000;
/// USER_HZ: the unit of times(2).
const CLOCK_TICK_NS: u64 = NSEC_PER_SEC / 100;

/// Decodes a workload clock id; CPU clocks first learn where the caller's CPU
/// time can be read.
fn clock(t: &Task, id: i32) -> Result<Clock, Errno> {
    let c = Clock::from_id(t, id)?;
    if c.is_cpu() {
        timer::note_task(t);
    }
    Ok(c)
}

fn read_timespec_ns(t: &Task, addr: u64) -> Result<u64, Errno> {
    let ts = Timespec::from_bytes(&t.copy_in_vec(addr, Timespec::SIZE)?);
    let ns = ts.to_nanos().ok_or(Errno::EINVAL)?;
    Ok(ns.min(u64::MAX as u128) as u64)
}

fn write_timespec_ns(t: &Task, addr: u64, ns: u64) -> Result<(), Errno> {
    t.copy_out(addr, &Timespec::from_nanos(ns as u128).to_bytes())
}

/// A `struct timeval` as nanoseconds; EINVAL for a negative or out-of-range one.
fn read_timeval_ns(t: &Task, addr: u64) -> Result<u64, Errno> {
    let b = t.copy_in_vec(addr, 16)?;
    let (sec, usec) = (le_u64(&b, 0) as i64, le_u64(&b, 8) as i64);
    if sec < 0 || !(0..1_000_000).contains(&usec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec as u64)
        .saturating_mul(NSEC_PER_SEC)
        .saturating_add(usec as u64 * 1000))
}

fn timeval(e: &mut Encoder, ns: u64) {
    e.u64(ns / NSEC_PER_SEC).u64(ns % NSEC_PER_SEC / 1000);
}

// ---- clocks ----

fn sys_clock_gettime(t: &mut Task, a: &Args) -> SysResult {
    let ns = clock(t, a.i32(0))?.now_ns().ok_or(Errno::EINVAL)?;
    write_timespec_ns(t, a.u64(1), ns)?;
    Ok(0)
}

fn sys_clock_getres(t: &mut Task, a: &Args) -> SysResult {
    let c = clock(t, a.i32(0))?;
    if a.u64(1) != 0 {
        write_timespec_ns(t, a.u64(1), c.resolution_ns())?;
    }
    Ok(0)
}

/// The sandbox cannot set the host's clocks: CLOCK_REALTIME and the CPU clocks
/// say EPERM, as Linux does for a caller without CAP_SYS_TIME (Linux's root
/// could set CLOCK_REALTIME); clocks Linux never sets say EINVAL.
fn sys_clock_settime(t: &mut Task, a: &Args) -> SysResult {
    let id = a.i32(0);
    let c = Clock::from_id(t, id)?;
    read_timespec_ns(t, a.u64(1))?;
    if id == libc::CLOCK_REALTIME || c.is_cpu() {
        Err(Errno::EPERM)
    } else {
        Err(Errno::EINVAL)
    }
}

// ---- sleeps ----

fn sys_nanosleep(t: &mut Task, a: &Args) -> SysResult {
    let d = read_timespec_ns(t, a.u64(0))?;
    let c = Clock::Host(libc::CLOCK_MONOTONIC);
    let deadline = c.now_ns().unwrap_or(0).saturating_add(d);
    sleep_relative(t, c, deadline, a.u64(1))
}

/// A relative sleep until `deadline` on `c`. Interrupted, it stores the time
/// left at `rem` (if given) and returns ERESTART_RESTARTBLOCK: EINTR after a
/// handler, otherwise restart_syscall sleeps on to the same deadline.
fn sleep_relative(t: &mut Task, c: Clock, deadline: u64, rem: u64) -> SysResult {
    match timer::sleep_until(t, &c, deadline) {
        Ok(()) => Ok(0),
        Err(e) if e.0 == ERESTARTSYS => {
            if rem != 0 {
                let left = deadline.saturating_sub(c.now_ns().unwrap_or(deadline));
                write_timespec_ns(t, rem, left)?;
            }
            t.restart = Some(Box::new(move |t| {
                sleep_relative(t, c.clone(), deadline, rem)
            }));
            Err(Errno(ERESTART_RESTARTBLOCK))
        }
        Err(e) => Err(e),
    }
}

fn sys_clock_nanosleep(t: &mut Task, a: &Args) -> SysResult {
    let id = a.i32(0);
    let c = match id {
        libc::CLOCK_REALTIME
        | libc::CLOCK_MONOTONIC
        | libc::CLOCK_BOOTTIME
        | libc::CLOCK_TAI
        | libc::CLOCK_REALTIME_ALARM
        | libc::CLOCK_BOOTTIME_ALARM => clock(t, id)?,
        // Clocks without a sleep (Linux: no nsleep).
        libc::CLOCK_MONOTONIC_RAW | libc::CLOCK_REALTIME_COARSE | libc::CLOCK_MONOTONIC_COARSE => {
            return Err(Errno::EOPNOTSUPP)
        }
        // A thread cannot sleep on its own CPU clock.
        libc::CLOCK_THREAD_CPUTIME_ID => return Err(Errno::EINVAL),
        id => match clock(t, id)? {
            c @ Clock::ProcessCpu(..) => c,
            _ => return Err(Errno::EINVAL),
        },
    };
    let v = read_timespec_ns(t, a.u64(2))?;
    if a.i32(1) & libc::TIMER_ABSTIME != 0 {
        // An absolute sleep restarts unchanged (ERESTARTNOHAND), rem untouched.
        return match timer::sleep_until(t, &c, v) {
            Err(e) if e.0 == ERESTARTSYS => Err(Errno(ERESTARTNOHAND)),
            r => r.map(|()| 0),
        };
    }
    let deadline = c.now_ns().ok_or(Errno::EINVAL)?.saturating_add(v);
    sleep_relative(t, c, deadline, a.u64(3))
}

// ---- alarm and itimers ----

fn sys_alarm(t: &mut Task, a: &Args) -> SysResult {
    Ok(timer::alarm(t, a.u32(0)))
}

/// `struct itimerval`: interval, then value. ITIMER_REAL reads at least 1us
/// while armed (Linux's itimer_get_remtime).
fn itimerval_bytes(which: i32, s: timer::Setting) -> Vec<u8> {
    let mut value = s.value;
    if which == timer::ITIMER_REAL && value > 0 {
        value = value.max(1000);
    }
    let mut e = Encoder::with_capacity(32);
    timeval(&mut e, s.interval);
    timeval(&mut e, value);
    e.finish()
}

fn sys_getitimer(t: &mut Task, a: &Args) -> SysResult {
    let which = a.i32(0);
    let s = timer::itimer(t, which)?.get();
    t.copy_out(a.u64(1), &itimerval_bytes(which, s))?;
    Ok(0)
}

fn sys_setitimer(t: &mut Task, a: &Args) -> SysResult {
    let which = a.i32(0);
    let tm = timer::itimer(t, which)?;
    // A NULL new value disarms, as Linux allows.
    let (interval, value) = if a.u64(1) != 0 {
        (
            read_timeval_ns(t, a.u64(1))?,
            read_timeval_ns(t, a.u64(1) + 16)?,
        )
    } else {
        (0, 0)
    };
    let interval = if value == 0 { 0 } else { interval };
    let old = tm.set(value, false, interval);
    if a.u64(2) != 0 {
        t.copy_out(a.u64(2), &itimerval_bytes(which, old))?;
    }
    Ok(0)
}

// ---- POSIX timers ----

fn sys_timer_create(t: &mut Task, a: &Args) -> SysResult {
    let id = a.i32(0);
    let c = match id {
        libc::CLOCK_MONOTONIC_RAW | libc::CLOCK_REALTIME_COARSE | libc::CLOCK_MONOTONIC_COARSE => {
            return Err(Errno::EOPNOTSUPP)
        }
        id => Clock::from_id(t, id)?,
    };
    let ev = if a.u64(1) != 0 {
        // struct sigevent: sigev_value, sigev_signo, sigev_notify, then the
        // union whose first int is the thread id of SIGEV_THREAD_ID.
        let b = t.copy_in_vec(a.u64(1), 20)?;
        Some(SigEvent {
            value: le_u64(&b, 0),
            signo: le_u32(&b, 8) as i32,
            notify: le_u32(&b, 12) as i32,
            tid: le_u32(&b, 16) as i32,
        })
    } else {
        None
    };
    // Check the id pointer before making the timer.
    t.copy_in_u32(a.u64(2))?;
    let tid = timer::create_posix_timer(t, c, ev)?;
    if let Err(e) = t.copy_out_u32(a.u64(2), tid as u32) {
        let _ = timer::delete_posix_timer(t, tid);
        return Err(e);
    }
    Ok(0)
}

/// `struct itimerspec`: interval, then value.
fn itimerspec_bytes(s: timer::Setting) -> Vec<u8> {
    let mut b = Timespec::from_nanos(s.interval as u128).to_bytes();
    b.extend(Timespec::from_nanos(s.value as u128).to_bytes());
    b
}

fn sys_timer_settime(t: &mut Task, a: &Args) -> SysResult {
    let tm = timer::posix_timer(t, a.i32(0))?;
    let flags = a.i32(1);
    if a.u64(2) == 0 {
        return Err(Errno::EINVAL);
    }
    let interval = read_timespec_ns(t, a.u64(2))?;
    let value = read_timespec_ns(t, a.u64(2) + 16)?;
    let old = tm.set(value, flags & libc::TIMER_ABSTIME != 0, interval);
    if a.u64(3) != 0 {
        t.copy_out(a.u64(3), &itimerspec_bytes(old))?;
    }
    Ok(0)
}

fn sys_timer_gettime(t: &mut Task, a: &Args) -> SysResult {
    let s = timer::posix_timer(t, a.i32(0))?.get();
    t.copy_out(a.u64(1), &itimerspec_bytes(s))?;
    Ok(0)
}

fn sys_timer_getoverrun(t: &mut Task, a: &Args) -> SysResult {
    Ok(timer::posix_timer(t, a.i32(0))?.overrun() as u64)
}

fn sys_timer_delete(t: &mut Task, a: &Args) -> SysResult {
    timer::delete_posix_timer(t, a.i32(0))?;
    Ok(0)
}

// ---- CPU usage ----

fn sys_times(t: &mut Task, a: &Args) -> SysResult {
    timer::note_task(t);
    if a.u64(0) != 0 {
        let own = timer::group_usage(&t.tg);
        let children = t.tg.lock().children_usage;
        let mut e = Encoder::with_capacity(32);
        for ns in [own.user_ns, own.sys_ns, children.user_ns, children.sys_ns] {
            e.u64(ns / CLOCK_TICK_NS);
        }
        t.copy_out(a.u64(0), &e.finish())?;
    }
    // Clock ticks since boot (Linux counts jiffies from an arbitrary origin).
    let (s, ns) = platform::host::clock_gettime(libc::CLOCK_BOOTTIME);
    Ok((s as u64 * NSEC_PER_SEC + ns as u64) / CLOCK_TICK_NS)
}

/// The current resident set counts toward the peak.
fn with_rss(t: &Task, mut u: Usage) -> Usage {
    u.maxrss_kb = u.maxrss_kb.max(t.mm.resident_kb());
    u
}

fn sys_getrusage(t: &mut Task, a: &Args) -> SysResult {
    timer::note_task(t);
    let u = match a.i32(0) {
        libc::RUSAGE_SELF => with_rss(t, timer::group_usage(&t.tg)),
        libc::RUSAGE_CHILDREN => t.tg.lock().children_usage,
        libc::RUSAGE_THREAD => with_rss(t, timer::thread_usage(&t.shared)),
        _ => return Err(Errno::EINVAL),
    };
    t.copy_out(a.u64(1), &u.to_rusage_bytes())?;
    Ok(0)
}
