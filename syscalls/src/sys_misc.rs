//! Identity, time, limits, randomness and system information.

use std::time::Duration;

use abi::linux::{Encoder, Rlimit, Timespec};
use abi::sysno::*;
use abi::{Errno, SysResult};
use sentry::Task;

use crate::{Arg, Args, Table};

pub(crate) fn register(t: &mut Table) {
    t.add(GETUID, |t, _| Ok(t.creds.uid as u64), &[]);
    t.add(GETEUID, |t, _| Ok(t.creds.euid as u64), &[]);
    t.add(GETGID, |t, _| Ok(t.creds.gid as u64), &[]);
    t.add(GETEGID, |t, _| Ok(t.creds.egid as u64), &[]);
    t.add(GETRESUID, sys_getresuid, &[Arg::Hex, Arg::Hex, Arg::Hex]);
    t.add(GETRESGID, sys_getresgid, &[Arg::Hex, Arg::Hex, Arg::Hex]);
    t.add(GETGROUPS, sys_getgroups, &[Arg::Dec, Arg::Hex]);
    t.add(UNAME, sys_uname, &[Arg::Hex]);
    t.add(CLOCK_GETTIME, sys_clock_gettime, &[Arg::Dec, Arg::Hex]);
    t.add(CLOCK_GETRES, sys_clock_getres, &[Arg::Dec, Arg::Hex]);
    t.add(GETTIMEOFDAY, sys_gettimeofday, &[Arg::Hex, Arg::Hex]);
    t.add(TIME, sys_time, &[Arg::Hex]);
    t.add(NANOSLEEP, sys_nanosleep, &[Arg::Hex, Arg::Hex]);
    t.add(
        CLOCK_NANOSLEEP,
        sys_clock_nanosleep,
        &[Arg::Dec, Arg::Dec, Arg::Hex, Arg::Hex],
    );
    t.add(
        SCHED_GETAFFINITY,
        sys_sched_getaffinity,
        &[Arg::Dec, Arg::UDec, Arg::Hex],
    );
    t.add(
        SCHED_YIELD,
        |_, _| {
            std::thread::yield_now();
            Ok(0)
        },
        &[],
    );
    t.add(
        GETRANDOM,
        sys_getrandom,
        &[Arg::OutBuf, Arg::UDec, Arg::Hex],
    );
    t.add(
        PRLIMIT64,
        sys_prlimit64,
        &[Arg::Dec, Arg::Dec, Arg::Hex, Arg::Hex],
    );
    t.add(GETRLIMIT, sys_getrlimit, &[Arg::Dec, Arg::Hex]);
    t.add(SETRLIMIT, sys_setrlimit, &[Arg::Dec, Arg::Hex]);
    t.add(SYSINFO, sys_sysinfo, &[Arg::Hex]);
}

fn sys_getresuid(t: &mut Task, a: &Args) -> SysResult {
    let c = &t.creds;
    let (r, e, s) = (c.uid, c.euid, c.suid);
    t.copy_out_u32(a.u64(0), r)?;
    t.copy_out_u32(a.u64(1), e)?;
    t.copy_out_u32(a.u64(2), s)?;
    Ok(0)
}

fn sys_getresgid(t: &mut Task, a: &Args) -> SysResult {
    let c = &t.creds;
    let (r, e, s) = (c.gid, c.egid, c.sgid);
    t.copy_out_u32(a.u64(0), r)?;
    t.copy_out_u32(a.u64(1), e)?;
    t.copy_out_u32(a.u64(2), s)?;
    Ok(0)
}

fn sys_getgroups(t: &mut Task, a: &Args) -> SysResult {
    let size = a.i32(0);
    let n = t.creds.groups.len();
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    if size == 0 {
        return Ok(n as u64);
    }
    if (size as usize) < n {
        return Err(Errno::EINVAL);
    }
    let bytes: Vec<u8> = t
        .creds
        .groups
        .iter()
        .flat_map(|g| g.to_le_bytes())
        .collect();
    t.copy_out(a.u64(1), &bytes)?;
    Ok(n as u64)
}

fn sys_uname(t: &mut Task, a: &Args) -> SysResult {
    let host = t.kernel.hostname.clone();
    let b =
        abi::linux::utsname_bytes(["Linux", &host, "5.15.0", "#1 SMP runsc", "x86_64", "(none)"]);
    t.copy_out(a.u64(0), &b)?;
    Ok(0)
}

/// Reads a host clock. The sentry's clocks are the host's: the vDSO answers these
/// without a host syscall.
fn host_clock(id: libc::clockid_t) -> Timespec {
    let (sec, nsec) = platform::host::clock_gettime(id);
    Timespec { sec, nsec }
}

/// Maps a workload clock id to the host clock that implements it.
fn clock_for(t: &Task, id: i32) -> Result<libc::clockid_t, Errno> {
    match id {
        libc::CLOCK_REALTIME | libc::CLOCK_REALTIME_COARSE => Ok(id),
        libc::CLOCK_MONOTONIC
        | libc::CLOCK_MONOTONIC_COARSE
        | libc::CLOCK_MONOTONIC_RAW
        | libc::CLOCK_BOOTTIME => Ok(id),
        libc::CLOCK_PROCESS_CPUTIME_ID | libc::CLOCK_THREAD_CPUTIME_ID => {
            Ok(libc::CLOCK_THREAD_CPUTIME_ID)
        }
        // Dynamic CPU-clock ids of this process/thread (glibc's pthread_getcpuclockid).
        id if id < 0 => {
            let pid = !(id >> 3);
            if pid == 0 || pid == t.tid || pid == t.tgid {
                Ok(libc::CLOCK_THREAD_CPUTIME_ID)
            } else {
                Err(Errno::EINVAL)
            }
        }
        _ => Err(Errno::EINVAL),
    }
}

fn sys_clock_gettime(t: &mut Task, a: &Args) -> SysResult {
    let id = clock_for(t, a.i32(0))?;
    t.copy_out(a.u64(1), &host_clock(id).to_bytes())?;
    Ok(0)
}

fn sys_clock_getres(t: &mut Task, a: &Args) -> SysResult {
    let id = clock_for(t, a.i32(0))?;
    if a.u64(1) != 0 {
        let (sec, nsec) = platform::host::clock_getres(id);
        t.copy_out(a.u64(1), &Timespec { sec, nsec }.to_bytes())?;
    }
    Ok(0)
}

fn sys_gettimeofday(t: &mut Task, a: &Args) -> SysResult {
    if a.u64(0) != 0 {
        let now = host_clock(libc::CLOCK_REALTIME);
        let mut e = Encoder::with_capacity(16);
        e.i64(now.sec).i64(now.nsec / 1000);
        t.copy_out(a.u64(0), &e.finish())?;
    }
    if a.u64(1) != 0 {
        t.copy_out(a.u64(1), &[0u8; 8])?;
    }
    Ok(0)
}

fn sys_time(t: &mut Task, a: &Args) -> SysResult {
    let now = host_clock(libc::CLOCK_REALTIME).sec;
    if a.u64(0) != 0 {
        t.copy_out_u64(a.u64(0), now as u64)?;
    }
    Ok(now as u64)
}

fn read_timespec(t: &Task, addr: u64) -> Result<Duration, Errno> {
    let b = t.copy_in_vec(addr, Timespec::SIZE)?;
    let ts = Timespec::from_bytes(&b);
    let ns = ts.to_nanos().ok_or(Errno::EINVAL)?;
    Ok(Duration::from_nanos(ns.min(u64::MAX as u128) as u64))
}

fn sys_nanosleep(t: &mut Task, a: &Args) -> SysResult {
    let d = read_timespec(t, a.u64(0))?;
    std::thread::sleep(d);
    Ok(0)
}

fn sys_clock_nanosleep(t: &mut Task, a: &Args) -> SysResult {
    let id = a.i32(0);
    let flags = a.i32(1);
    let host = match id {
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME => id,
        libc::CLOCK_PROCESS_CPUTIME_ID => return Err(Errno::EINVAL),
        libc::CLOCK_THREAD_CPUTIME_ID => return Err(Errno::EINVAL),
        _ => return Err(Errno::EINVAL),
    };
    let d = read_timespec(t, a.u64(2))?;
    if flags & libc::TIMER_ABSTIME != 0 {
        let now = host_clock(host).to_nanos().unwrap_or(0);
        let target = d.as_nanos();
        if target > now {
            std::thread::sleep(Duration::from_nanos((target - now) as u64));
        }
    } else {
        std::thread::sleep(d);
    }
    Ok(0)
}

fn sys_sched_getaffinity(t: &mut Task, a: &Args) -> SysResult {
    let pid = a.i32(0);
    let len = a.u64(1);
    if pid != 0 && pid != t.tid && pid != t.tgid {
        return Err(Errno::ESRCH);
    }
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(1024);
    let size = ncpu.div_ceil(64) * 8;
    if (len as usize) < size || len % 8 != 0 {
        return Err(Errno::EINVAL);
    }
    let mut mask = vec![0u8; size];
    for c in 0..ncpu {
        mask[c / 8] |= 1 << (c % 8);
    }
    t.copy_out(a.u64(2), &mask)?;
    Ok(size as u64)
}

fn sys_getrandom(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.u32(2);
    if flags & !(libc::GRND_NONBLOCK | libc::GRND_RANDOM | libc::GRND_INSECURE) != 0
        || flags & (libc::GRND_RANDOM | libc::GRND_INSECURE)
            == (libc::GRND_RANDOM | libc::GRND_INSECURE)
    {
        return Err(Errno::EINVAL);
    }
    let len = a.len(1)?.min(0x7fff_f000).min(1 << 20);
    let mut buf = vec![0u8; len];
    platform::fill_random(&mut buf);
    t.copy_out(a.u64(0), &buf)?;
    Ok(len as u64)
}

fn check_resource(r: i32) -> Result<usize, Errno> {
    if r < 0 || r as usize >= sentry::task::RLIM_NLIMITS {
        return Err(Errno::EINVAL);
    }
    Ok(r as usize)
}

fn sys_prlimit64(t: &mut Task, a: &Args) -> SysResult {
    let pid = a.i32(0);
    if pid != 0 && pid != t.tid && pid != t.tgid {
        return Err(Errno::ESRCH);
    }
    let r = check_resource(a.i32(1))?;
    let new = if a.u64(2) != 0 {
        let l = Rlimit::from_bytes(&t.copy_in_vec(a.u64(2), Rlimit::SIZE)?);
        if l.cur > l.max {
            return Err(Errno::EINVAL);
        }
        Some(l)
    } else {
        None
    };
    let old = t.rlimits[r];
    if a.u64(3) != 0 {
        t.copy_out(a.u64(3), &old.to_bytes())?;
    }
    if let Some(l) = new {
        if r == libc::RLIMIT_NOFILE as usize && l.max > 1 << 20 {
            return Err(Errno::EPERM);
        }
        t.rlimits[r] = l;
    }
    Ok(0)
}

fn sys_getrlimit(t: &mut Task, a: &Args) -> SysResult {
    let r = check_resource(a.i32(0))?;
    let l = t.rlimits[r];
    t.copy_out(a.u64(1), &l.to_bytes())?;
    Ok(0)
}

fn sys_setrlimit(t: &mut Task, a: &Args) -> SysResult {
    let r = check_resource(a.i32(0))?;
    let l = Rlimit::from_bytes(&t.copy_in_vec(a.u64(1), Rlimit::SIZE)?);
    if l.cur > l.max {
        return Err(Errno::EINVAL);
    }
    if r == libc::RLIMIT_NOFILE as usize && l.max > 1 << 20 {
        return Err(Errno::EPERM);
    }
    t.rlimits[r] = l;
    Ok(0)
}

fn sys_sysinfo(t: &mut Task, a: &Args) -> SysResult {
    let uptime = t.kernel.boot_time.elapsed().as_secs();
    let (total, free) = platform::host::memory();
    let mut e = Encoder::with_capacity(112);
    e.i64(uptime as i64).u64(0).u64(0).u64(0);
    e.u64(total).u64(free).u64(0).u64(0).u64(0).u64(0);
    e.u16(1).u16(0).u32(0).u64(0).u64(0).u32(1);
    e.zeros(112 - 108);
    t.copy_out(a.u64(0), &e.finish())?;
    Ok(0)
}
