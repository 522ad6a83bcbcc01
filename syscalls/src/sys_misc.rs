//! Time, limits, randomness and system information.

use abi::linux::{Encoder, Rlimit, Timespec};
use abi::sysno::*;
use abi::{Errno, SysResult};
use sentry::Task;

use crate::{Arg, Args, Table};

pub(crate) fn register(t: &mut Table) {
    t.add(UNAME, sys_uname, &[Arg::Hex]);
    t.add(SETHOSTNAME, sys_sethostname, &[Arg::Hex, Arg::UDec]);
    t.add(SETDOMAINNAME, sys_setdomainname, &[Arg::Hex, Arg::UDec]);
    t.add(GETTIMEOFDAY, sys_gettimeofday, &[Arg::Hex, Arg::Hex]);
    t.add(TIME, sys_time, &[Arg::Hex]);
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

fn sys_uname(t: &mut Task, a: &Args) -> SysResult {
    let host = t.kernel.hostname.lock().unwrap().clone();
    let domain = t.kernel.domainname.lock().unwrap().clone();
    let b =
        abi::linux::utsname_bytes(["Linux", &host, "5.15.0", "#1 SMP runsc", "x86_64", &domain]);
    t.copy_out(a.u64(0), &b)?;
    Ok(0)
}

/// CAP_SYS_ADMIN (over the sandbox's UTS namespace).
const CAP_SYS_ADMIN: u32 = 21;
/// __NEW_UTS_LEN.
const UTS_LEN: u64 = 64;

/// sethostname(2) / setdomainname(2): the name (not NUL-terminated) at
/// a[0], a[1] bytes long.
fn set_uts_name(t: &mut Task, a: &Args, which: &std::sync::Mutex<String>) -> SysResult {
    if !t.creds.has_capability(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let len = a.u64(1);
    if len > UTS_LEN {
        return Err(Errno::EINVAL);
    }
    let mut buf = vec![0u8; len as usize];
    t.copy_in(a.u64(0), &mut buf)?;
    // uname(2) fields are NUL-terminated: the name ends at a NUL.
    if let Some(i) = buf.iter().position(|&b| b == 0) {
        buf.truncate(i);
    }
    *which.lock().unwrap() = String::from_utf8_lossy(&buf).into_owned();
    Ok(0)
}

fn sys_sethostname(t: &mut Task, a: &Args) -> SysResult {
    let k = t.kernel.clone();
    set_uts_name(t, a, &k.hostname)
}

fn sys_setdomainname(t: &mut Task, a: &Args) -> SysResult {
    let k = t.kernel.clone();
    set_uts_name(t, a, &k.domainname)
}

/// Reads a host clock. The sentry's clocks are the host's: the vDSO answers these
/// without a host syscall.
fn host_clock(id: libc::clockid_t) -> Timespec {
    let (sec, nsec) = platform::host::clock_gettime(id);
    Timespec { sec, nsec }
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
    let (total, free) = t
        .kernel
        .limits
        .memory_totals()
        .unwrap_or_else(platform::host::memory);
    let mut e = Encoder::with_capacity(112);
    e.i64(uptime as i64).u64(0).u64(0).u64(0);
    e.u64(total).u64(free).u64(0).u64(0).u64(0).u64(0);
    e.u16(1).u16(0).u32(0).u64(0).u64(0).u32(1);
    e.zeros(112 - 108);
    t.copy_out(a.u64(0), &e.finish())?;
    Ok(0)
}
