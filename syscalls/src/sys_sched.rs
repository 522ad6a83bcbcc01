//! Scheduling and placement: nice values, scheduling policies, CPU affinity,
//! I/O priorities, NUMA memory policies, personality and membarrier
//! (kernel/sys.c, kernel/sched/core.c, block/ioprio.c, mm/mempolicy.c,
//! kernel/sched/membarrier.c).
//!
//! Every sandbox thread is an ordinary host thread scheduled by the host kernel,
//! so these calls validate as Linux does and record the result in the task
//! (`Task::sched`, `Task::mempolicy`, `Task::personality`), where the workload
//! reads it back; they never change host scheduling.
//!
//! Attributes of *other* tasks are not reachable from a handler (they live in
//! the other task's `Task`), so queries about another live task report the
//! defaults and changes to one are EPERM.

use std::sync::{Arc, Mutex, Weak};

use abi::linux::{le_u32, le_u64, Encoder, Timespec};
use abi::sysno::*;
use abi::{Errno, SysResult};
use sentry::mm::MemoryManager;
use sentry::task::SchedAttrs;
use sentry::thread_group::ThreadGroup;
use sentry::Task;

use crate::sys_cred::CAP_SYS_NICE;
use crate::{Arg, Args, Table};

pub(crate) fn register(t: &mut Table) {
    // Read the host's CPU count now, before task threads are pinned to one CPU
    // each (the ptrace platform does that), which would hide the others.
    host_cpus();
    t.add(GETPRIORITY, sys_getpriority, &[Arg::Dec, Arg::Dec]);
    t.add(
        SETPRIORITY,
        sys_setpriority,
        &[Arg::Dec, Arg::Dec, Arg::Dec],
    );
    t.add(
        SCHED_SETSCHEDULER,
        sys_sched_setscheduler,
        &[Arg::Dec, Arg::Dec, Arg::Hex],
    );
    t.add(SCHED_GETSCHEDULER, sys_sched_getscheduler, &[Arg::Dec]);
    t.add(SCHED_SETPARAM, sys_sched_setparam, &[Arg::Dec, Arg::Hex]);
    t.add(SCHED_GETPARAM, sys_sched_getparam, &[Arg::Dec, Arg::Hex]);
    t.add(
        SCHED_SETATTR,
        sys_sched_setattr,
        &[Arg::Dec, Arg::Hex, Arg::Hex],
    );
    t.add(
        SCHED_GETATTR,
        sys_sched_getattr,
        &[Arg::Dec, Arg::Hex, Arg::UDec, Arg::Hex],
    );
    t.add(
        SCHED_GET_PRIORITY_MAX,
        |_, a| priority_range(a.i32(0)).map(|r| r.1 as u64),
        &[Arg::Dec],
    );
    t.add(
        SCHED_GET_PRIORITY_MIN,
        |_, a| priority_range(a.i32(0)).map(|r| r.0 as u64),
        &[Arg::Dec],
    );
    t.add(
        SCHED_RR_GET_INTERVAL,
        sys_sched_rr_get_interval,
        &[Arg::Dec, Arg::Hex],
    );
    t.add(
        SCHED_SETAFFINITY,
        sys_sched_setaffinity,
        &[Arg::Dec, Arg::UDec, Arg::Hex],
    );
    t.add(
        SCHED_GETAFFINITY,
        sys_sched_getaffinity,
        &[Arg::Dec, Arg::UDec, Arg::Hex],
    );
    t.add(GETCPU, sys_getcpu, &[Arg::Hex, Arg::Hex, Arg::Hex]);
    t.add(PERSONALITY, sys_personality, &[Arg::Hex]);
    t.add(MEMBARRIER, sys_membarrier, &[Arg::Dec, Arg::Hex, Arg::Dec]);
    t.add(IOPRIO_SET, sys_ioprio_set, &[Arg::Dec, Arg::Dec, Arg::Hex]);
    t.add(IOPRIO_GET, sys_ioprio_get, &[Arg::Dec, Arg::Dec]);
    t.add(
        SET_MEMPOLICY,
        sys_set_mempolicy,
        &[Arg::Dec, Arg::Hex, Arg::UDec],
    );
    t.add(
        GET_MEMPOLICY,
        sys_get_mempolicy,
        &[Arg::Hex, Arg::Hex, Arg::UDec, Arg::Hex, Arg::Hex],
    );
    t.add(
        MBIND,
        sys_mbind,
        &[Arg::Hex, Arg::UDec, Arg::Dec, Arg::Hex, Arg::UDec, Arg::Hex],
    );
}

// ---- whose attributes ----

/// The task a pid argument names.
#[derive(Clone, Copy)]
enum Target {
    /// The caller.
    Own,
    /// Another live task of the sandbox.
    Other,
}

/// Resolves a thread id (0 = the caller); ESRCH when no such task.
fn target(t: &Task, pid: i32) -> Result<Target, Errno> {
    if pid == 0 || pid == t.tid {
        Ok(Target::Own)
    } else if t.kernel.task(pid).is_some() {
        Ok(Target::Other)
    } else {
        Err(Errno::ESRCH)
    }
}

/// The attributes of a target, for reading.
fn attrs_of(t: &Task, who: Target) -> SchedAttrs {
    match who {
        Target::Own => t.sched.clone(),
        Target::Other => SchedAttrs::default(),
    }
}

/// The caller's attributes, for changing; another task's cannot be reached.
fn attrs_mut(t: &mut Task, who: Target) -> Result<&mut SchedAttrs, Errno> {
    match who {
        Target::Own => Ok(&mut t.sched),
        Target::Other => {
            tracing::info!(
                tid = t.tid,
                "changing another task's scheduling attributes is not supported"
            );
            Err(Errno::EPERM)
        }
    }
}

/// Whether a task may lower its nice value to `nice` (can_nice): within
/// RLIMIT_NICE (which counts 20 - nice) or with CAP_SYS_NICE.
fn can_nice(t: &Task, nice: i32) -> bool {
    (20 - nice) as u64 <= t.rlimits[libc::RLIMIT_NICE as usize].cur
        || t.creds.has_capability(CAP_SYS_NICE)
}

// ---- getpriority / setpriority ----

const PRIO_PROCESS: i32 = 0;
const PRIO_PGRP: i32 = 1;
const PRIO_USER: i32 = 2;
const MIN_NICE: i32 = -20;
const MAX_NICE: i32 = 19;

/// Resolves a (which, who) pair of getpriority(2) / ioprio_get(2) to the caller
/// (when it is among the tasks named) or to other tasks only.
fn prio_target(t: &Task, which: i32, who: i32) -> Result<Target, Errno> {
    match which {
        PRIO_PROCESS => target(t, who),
        PRIO_PGRP => {
            let own = t.tg.lock().pgid;
            if who == 0 || who == own {
                Ok(Target::Own)
            } else if !t.kernel.process_group(who).is_empty() {
                Ok(Target::Other)
            } else {
                Err(Errno::ESRCH)
            }
        }
        // Other tasks' uids are not visible here: a uid other than the caller's
        // names no task.
        PRIO_USER if who == 0 || who as u32 == t.creds.uid => Ok(Target::Own),
        PRIO_USER => Err(Errno::ESRCH),
        _ => Err(Errno::EINVAL),
    }
}

/// getpriority(2): the raw syscall returns 20 - nice (1..40), never negative.
fn sys_getpriority(t: &mut Task, a: &Args) -> SysResult {
    let who = prio_target(t, a.i32(0), a.i32(1))?;
    Ok((20 - attrs_of(t, who).nice) as u64)
}

fn sys_setpriority(t: &mut Task, a: &Args) -> SysResult {
    let who = prio_target(t, a.i32(0), a.i32(1))?;
    let nice = a.i32(2).clamp(MIN_NICE, MAX_NICE);
    if matches!(who, Target::Own) && nice < t.sched.nice && !can_nice(t, nice) {
        return Err(Errno::EACCES);
    }
    attrs_mut(t, who)?.nice = nice;
    Ok(0)
}

// ---- scheduling policies ----

const SCHED_NORMAL: i32 = 0;
const SCHED_FIFO: i32 = 1;
const SCHED_RR: i32 = 2;
const SCHED_BATCH: i32 = 3;
const SCHED_IDLE: i32 = 5;
const SCHED_DEADLINE: i32 = 6;
/// sched_setscheduler's policy flag for SCHED_FLAG_RESET_ON_FORK.
const SCHED_RESET_ON_FORK: i32 = 0x4000_0000;
/// sched_setparam: keep the current policy.
const SETPARAM_POLICY: i32 = -1;

const SCHED_FLAG_RESET_ON_FORK: u64 = 0x01;
const SCHED_FLAG_KEEP_POLICY: u64 = 0x08;
const SCHED_FLAG_KEEP_PARAMS: u64 = 0x10;
const SCHED_FLAG_UTIL_CLAMP: u64 = 0x20 | 0x40;
const SCHED_FLAG_ALL: u64 = 0x7f;

const MAX_RT_PRIO: u32 = 100;
/// Smallest SCHED_DEADLINE runtime (1 << DL_SCALE ns).
const DL_MIN_RUNTIME: u64 = 1 << 10;

/// Whether a policy has no timer slack (PR_SET_TIMERSLACK is ignored).
pub(crate) fn is_rt_or_deadline(policy: i32) -> bool {
    is_rt(policy) || policy == SCHED_DEADLINE
}

fn is_rt(policy: i32) -> bool {
    policy == SCHED_FIFO || policy == SCHED_RR
}

fn is_fair(policy: i32) -> bool {
    policy == SCHED_NORMAL || policy == SCHED_BATCH
}

/// sched_get_priority_min/max.
fn priority_range(policy: i32) -> Result<(i32, i32), Errno> {
    match policy {
        SCHED_FIFO | SCHED_RR => Ok((1, MAX_RT_PRIO as i32 - 1)),
        SCHED_NORMAL | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE => Ok((0, 0)),
        _ => Err(Errno::EINVAL),
    }
}

/// `struct sched_attr` as the kernel sees it.
#[derive(Clone, Copy, Debug, Default)]
struct SchedAttr {
    policy: i32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// sizeof(struct sched_attr) in its first version and now (with util clamps).
const SCHED_ATTR_SIZE_VER0: usize = 48;
const SCHED_ATTR_SIZE: usize = 56;

impl SchedAttr {
    /// The current attributes of `s` (get_params plus policy and flags).
    fn of(s: &SchedAttrs) -> SchedAttr {
        SchedAttr {
            policy: s.policy,
            flags: if s.reset_on_fork {
                SCHED_FLAG_RESET_ON_FORK
            } else {
                0
            },
            nice: s.nice,
            priority: s.rt_priority,
            runtime: s.deadline.0,
            deadline: s.deadline.1,
            period: s.deadline.2,
        }
    }

    fn to_bytes(self) -> Vec<u8> {
        let mut e = Encoder::with_capacity(SCHED_ATTR_SIZE);
        e.u32(SCHED_ATTR_SIZE as u32)
            .u32(self.policy as u32)
            .u64(self.flags);
        e.u32(self.nice as u32).u32(self.priority);
        e.u64(self.runtime).u64(self.deadline).u64(self.period);
        // No utilization clamping (a kernel without CONFIG_UCLAMP_TASK).
        e.u32(0).u32(0);
        e.finish()
    }

    fn from_bytes(b: &[u8]) -> SchedAttr {
        SchedAttr {
            policy: le_u32(b, 4) as i32,
            flags: le_u64(b, 8),
            nice: le_u32(b, 16) as i32,
            priority: le_u32(b, 20),
            runtime: le_u64(b, 24),
            deadline: le_u64(b, 32),
            period: le_u64(b, 40),
        }
    }
}

/// __checkparam_dl: 1 us <= runtime <= deadline <= period (0 = deadline).
fn deadline_params_valid(a: &SchedAttr) -> bool {
    if a.deadline == 0 || a.runtime < DL_MIN_RUNTIME {
        return false;
    }
    if a.deadline & (1 << 63) != 0 || a.period & (1 << 63) != 0 {
        return false;
    }
    let period = if a.period == 0 { a.deadline } else { a.period };
    a.runtime <= a.deadline && a.deadline <= period
}

/// __sched_setscheduler: validates `a` against the task's attributes and the
/// caller's permissions, then records it.
fn set_scheduler(t: &mut Task, who: Target, mut a: SchedAttr) -> Result<(), Errno> {
    let cur = attrs_of(t, who);
    let reset_on_fork;
    if a.policy == SETPARAM_POLICY {
        a.policy = cur.policy;
        reset_on_fork = cur.reset_on_fork;
    } else {
        reset_on_fork = a.flags & SCHED_FLAG_RESET_ON_FORK != 0;
        if !matches!(
            a.policy,
            SCHED_NORMAL | SCHED_FIFO | SCHED_RR | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE
        ) {
            return Err(Errno::EINVAL);
        }
    }
    if a.flags & !SCHED_FLAG_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    if a.flags & SCHED_FLAG_UTIL_CLAMP != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    if a.priority > MAX_RT_PRIO - 1 {
        return Err(Errno::EINVAL);
    }
    if (a.policy == SCHED_DEADLINE && !deadline_params_valid(&a))
        || is_rt(a.policy) != (a.priority != 0)
    {
        return Err(Errno::EINVAL);
    }
    if !t.creds.has_capability(CAP_SYS_NICE) {
        let rlim_rtprio = t.rlimits[libc::RLIMIT_RTPRIO as usize].cur;
        let denied = (is_fair(a.policy) && a.nice < cur.nice && !can_nice(t, a.nice))
            || (is_rt(a.policy) && a.policy != cur.policy && rlim_rtprio == 0)
            || (is_rt(a.policy) && a.priority > cur.rt_priority && a.priority as u64 > rlim_rtprio)
            || a.policy == SCHED_DEADLINE
            || (cur.policy == SCHED_IDLE && a.policy != SCHED_IDLE && !can_nice(t, cur.nice))
            || (cur.reset_on_fork && !reset_on_fork);
        if denied {
            return Err(Errno::EPERM);
        }
    }
    let s = attrs_mut(t, who)?;
    s.policy = a.policy;
    s.reset_on_fork = reset_on_fork;
    s.rt_priority = if is_rt(a.policy) { a.priority } else { 0 };
    if is_fair(a.policy) {
        s.nice = a.nice;
    }
    // Real-time and deadline tasks have no timer slack; it returns to the
    // default with a fair policy (Linux 6.7+, __setscheduler_params).
    if is_rt_or_deadline(a.policy) {
        s.timer_slack_ns = 0;
    } else if s.timer_slack_ns == 0 {
        s.timer_slack_ns = SchedAttrs::default().timer_slack_ns;
    }
    s.deadline = if a.policy == SCHED_DEADLINE {
        (
            a.runtime,
            a.deadline,
            if a.period == 0 { a.deadline } else { a.period },
        )
    } else {
        (0, 0, 0)
    };
    Ok(())
}

/// do_sched_setscheduler: `struct sched_param` (one int) from `param`.
fn setscheduler_param(t: &mut Task, pid: i32, policy: i32, param: u64) -> SysResult {
    if param == 0 || pid < 0 {
        return Err(Errno::EINVAL);
    }
    let priority = t.copy_in_u32(param)?;
    let who = target(t, pid)?;
    let mut a = SchedAttr {
        policy,
        priority,
        nice: attrs_of(t, who).nice,
        ..Default::default()
    };
    // The legacy way to ask for SCHED_FLAG_RESET_ON_FORK.
    if policy != SETPARAM_POLICY && policy & SCHED_RESET_ON_FORK != 0 {
        a.flags |= SCHED_FLAG_RESET_ON_FORK;
        a.policy = policy & !SCHED_RESET_ON_FORK;
    }
    set_scheduler(t, who, a)?;
    Ok(0)
}

fn sys_sched_setscheduler(t: &mut Task, a: &Args) -> SysResult {
    if a.i32(1) < 0 {
        return Err(Errno::EINVAL);
    }
    setscheduler_param(t, a.i32(0), a.i32(1), a.u64(2))
}

fn sys_sched_setparam(t: &mut Task, a: &Args) -> SysResult {
    setscheduler_param(t, a.i32(0), SETPARAM_POLICY, a.u64(1))
}

fn sys_sched_getscheduler(t: &mut Task, a: &Args) -> SysResult {
    if a.i32(0) < 0 {
        return Err(Errno::EINVAL);
    }
    let s = attrs_of(t, target(t, a.i32(0))?);
    let flag = if s.reset_on_fork {
        SCHED_RESET_ON_FORK
    } else {
        0
    };
    Ok((s.policy | flag) as u64)
}

fn sys_sched_getparam(t: &mut Task, a: &Args) -> SysResult {
    if a.u64(1) == 0 || a.i32(0) < 0 {
        return Err(Errno::EINVAL);
    }
    let s = attrs_of(t, target(t, a.i32(0))?);
    t.copy_out_u32(a.u64(1), s.rt_priority)?;
    Ok(0)
}

fn sys_sched_setattr(t: &mut Task, a: &Args) -> SysResult {
    let (pid, uattr, flags) = (a.i32(0), a.u64(1), a.u32(2));
    if uattr == 0 || pid < 0 || flags != 0 {
        return Err(Errno::EINVAL);
    }
    // sched_copy_attr: size 0 means the first version; a larger struct than
    // ours is fine if the part we do not know is zero, else E2BIG with our
    // size written back.
    let mut size = t.copy_in_u32(uattr)? as usize;
    if size == 0 {
        size = SCHED_ATTR_SIZE_VER0;
    }
    let too_big = |t: &Task| {
        t.copy_out_u32(uattr, SCHED_ATTR_SIZE as u32)?;
        Err(Errno::E2BIG)
    };
    if !(SCHED_ATTR_SIZE_VER0..=4096).contains(&size) {
        return too_big(t);
    }
    let mut b = t.copy_in_vec(uattr, size)?;
    if b.len() > SCHED_ATTR_SIZE && b[SCHED_ATTR_SIZE..].iter().any(|&x| x != 0) {
        return too_big(t);
    }
    b.resize(SCHED_ATTR_SIZE, 0);
    let mut attr = SchedAttr::from_bytes(&b);
    if attr.flags & SCHED_FLAG_UTIL_CLAMP != 0 && size < SCHED_ATTR_SIZE {
        return Err(Errno::EINVAL);
    }
    attr.nice = attr.nice.clamp(MIN_NICE, MAX_NICE);
    if attr.policy < 0 {
        return Err(Errno::EINVAL);
    }
    if attr.flags & SCHED_FLAG_KEEP_POLICY != 0 {
        attr.policy = SETPARAM_POLICY;
    }
    let who = target(t, pid)?;
    if attr.flags & SCHED_FLAG_KEEP_PARAMS != 0 {
        let cur = SchedAttr::of(&attrs_of(t, who));
        (
            attr.nice,
            attr.priority,
            attr.runtime,
            attr.deadline,
            attr.period,
        ) = (
            cur.nice,
            cur.priority,
            cur.runtime,
            cur.deadline,
            cur.period,
        );
    }
    set_scheduler(t, who, attr)?;
    Ok(0)
}

fn sys_sched_getattr(t: &mut Task, a: &Args) -> SysResult {
    let (pid, uattr, usize_, flags) = (a.i32(0), a.u64(1), a.u32(2) as usize, a.u32(3));
    if uattr == 0 || pid < 0 || !(SCHED_ATTR_SIZE_VER0..=4096).contains(&usize_) || flags != 0 {
        return Err(Errno::EINVAL);
    }
    let s = attrs_of(t, target(t, pid)?);
    let mut b = SchedAttr::of(&s).to_bytes();
    // The size field says how much was written: the smaller of the two structs.
    let n = usize_.min(SCHED_ATTR_SIZE);
    b[..4].copy_from_slice(&(n as u32).to_le_bytes());
    t.copy_out(uattr, &b[..n])?;
    Ok(0)
}

/// Linux's default SCHED_RR time slice (sched_rr_timeslice_ms).
const RR_TIMESLICE_NS: i64 = 100_000_000;
/// What a fair-class task reports: its slice, here the EEVDF base slice
/// (sysctl_sched_base_slice, 0.75 ms) rounded up to a 4 ms jiffy as Linux does.
const FAIR_TIMESLICE_NS: i64 = 4_000_000;

fn sys_sched_rr_get_interval(t: &mut Task, a: &Args) -> SysResult {
    if a.i32(0) < 0 {
        return Err(Errno::EINVAL);
    }
    let s = attrs_of(t, target(t, a.i32(0))?);
    let ns = match s.policy {
        SCHED_RR => RR_TIMESLICE_NS,
        SCHED_FIFO | SCHED_DEADLINE => 0,
        _ => FAIR_TIMESLICE_NS,
    };
    let ts = Timespec {
        sec: ns / 1_000_000_000,
        nsec: ns % 1_000_000_000,
    };
    t.copy_out(a.u64(1), &ts.to_bytes())?;
    Ok(0)
}

// ---- CPU affinity ----

/// The number of host CPUs the sandbox may use, read once at startup. The
/// allowed set is taken to be CPUs 0..n (std reports a count, not a mask).
fn host_cpus() -> usize {
    // Read by procfs before the sentry confines itself (std's
    // available_parallelism opens cgroup files, which the seccomp filter forbids).
    sentry::procfs::cpu_count()
}

/// Bytes in a CPU mask (cpumask_size(): whole longs covering nr_cpu_ids).
fn cpumask_size() -> usize {
    host_cpus().div_ceil(64) * 8
}

/// The host CPUs as a mask.
fn host_mask() -> Vec<u64> {
    let n = host_cpus();
    (0..n.div_ceil(64))
        .map(|w| {
            if n >= (w + 1) * 64 {
                u64::MAX
            } else {
                (1u64 << (n % 64)) - 1
            }
        })
        .collect()
}

/// The CPUs a task may run on.
fn affinity(s: &SchedAttrs) -> Vec<u64> {
    s.affinity.clone().unwrap_or_else(host_mask)
}

fn sys_sched_setaffinity(t: &mut Task, a: &Args) -> SysResult {
    let (pid, len, addr) = (a.i32(0), a.u32(1) as usize, a.u64(2));
    // A short mask is zero-extended, a long one truncated (get_user_cpu_mask).
    let mut b = t.copy_in_vec(addr, len.min(cpumask_size()))?;
    b.resize(cpumask_size(), 0);
    let who = target(t, pid)?;
    let host = host_mask();
    let mask: Vec<u64> = host
        .iter()
        .enumerate()
        .map(|(i, h)| le_u64(&b, i * 8) & h)
        .collect();
    if mask.iter().all(|&w| w == 0) {
        return Err(Errno::EINVAL);
    }
    attrs_mut(t, who)?.affinity = if mask == host { None } else { Some(mask) };
    Ok(0)
}

fn sys_sched_getaffinity(t: &mut Task, a: &Args) -> SysResult {
    let (pid, len, addr) = (a.i32(0), a.u32(1) as usize, a.u64(2));
    if len * 8 < host_cpus() || len % 8 != 0 {
        return Err(Errno::EINVAL);
    }
    let s = attrs_of(t, target(t, pid)?);
    let bytes: Vec<u8> = affinity(&s).iter().flat_map(|w| w.to_le_bytes()).collect();
    let n = len.min(bytes.len());
    t.copy_out(addr, &bytes[..n])?;
    Ok(n as u64)
}

/// getcpu(2). The host CPU of the calling thread is not visible without a
/// host call, so this reports the lowest CPU the task may run on (always a CPU
/// of its affinity mask, which is what callers rely on); one NUMA node.
fn sys_getcpu(t: &mut Task, a: &Args) -> SysResult {
    let cpu = affinity(&t.sched)
        .iter()
        .enumerate()
        .find(|(_, &w)| w != 0)
        .map(|(i, &w)| i as u32 * 64 + w.trailing_zeros())
        .unwrap_or(0);
    if a.u64(0) != 0 {
        t.copy_out_u32(a.u64(0), cpu)?;
    }
    if a.u64(1) != 0 {
        t.copy_out_u32(a.u64(1), 0)?;
    }
    Ok(0)
}

// ---- personality ----

fn sys_personality(t: &mut Task, a: &Args) -> SysResult {
    let old = t.personality;
    // 0xffffffff only queries.
    if a.u32(0) != u32::MAX {
        t.personality = a.u32(0);
    }
    Ok(old as u64)
}

// ---- membarrier ----

const MEMBARRIER_CMD_QUERY: i32 = 0;
const MEMBARRIER_CMD_GLOBAL: i32 = 1 << 0;
const MEMBARRIER_CMD_GLOBAL_EXPEDITED: i32 = 1 << 1;
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: i32 = 1 << 2;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: i32 = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: i32 = 1 << 4;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE: i32 = 1 << 5;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: i32 = 1 << 6;
/// The commands answered (the RSEQ ones need rseq(2), which is absent).
const MEMBARRIER_SUPPORTED: i32 = (1 << 7) - 1;

/// One address space's membarrier registrations.
struct Registration {
    mm: Weak<MemoryManager>,
    /// The process that registered, so a fork child (a new mm that has not
    /// exec'd) inherits them as Linux's dup_mm copies them.
    tg: Weak<ThreadGroup>,
    cmds: i32,
}

/// Per-address-space membarrier registrations (Linux keeps them in mm_struct:
/// shared by CLONE_VM threads, copied by fork, cleared by exec). Kept here,
/// keyed by the MemoryManager, until it has a slot for them; a Weak key cannot
/// be confused with a later allocation at the same address.
static MEMBARRIER_REGISTERED: Mutex<Vec<Registration>> = Mutex::new(Vec::new());

fn membarrier_registrations(t: &Task, add: i32) -> i32 {
    let mut regs = MEMBARRIER_REGISTERED
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    regs.retain(|r| r.mm.strong_count() > 0);
    let me = Arc::downgrade(&t.mm);
    if let Some(r) = regs.iter_mut().find(|r| r.mm.ptr_eq(&me)) {
        r.cmds |= add;
        return r.cmds;
    }
    let (did_exec, parent) = {
        let st = t.tg.lock();
        (st.did_exec, st.parent.clone())
    };
    let inherited = match parent {
        Some(p) if !did_exec => {
            let p = Arc::downgrade(&p);
            regs.iter()
                .filter(|r| r.tg.ptr_eq(&p))
                .fold(0, |acc, r| acc | r.cmds)
        }
        _ => 0,
    };
    let cmds = inherited | add;
    if cmds != 0 {
        regs.push(Registration {
            mm: me,
            tg: Arc::downgrade(&t.tg),
            cmds,
        });
    }
    cmds
}

/// membarrier(2): commands are validated and registrations kept as Linux does.
/// The barrier itself is not issued: other threads run on host CPUs the
/// sentry cannot interrupt without a host membarrier (see the report).
fn sys_membarrier(t: &mut Task, a: &Args) -> SysResult {
    let (cmd, flags) = (a.i32(0), a.u32(1));
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let require = |t: &Task, reg: i32| {
        if membarrier_registrations(t, 0) & reg == 0 {
            Err(Errno::EPERM)
        } else {
            Ok(0)
        }
    };
    match cmd {
        MEMBARRIER_CMD_QUERY => Ok(MEMBARRIER_SUPPORTED as u64),
        MEMBARRIER_CMD_GLOBAL | MEMBARRIER_CMD_GLOBAL_EXPEDITED => Ok(0),
        MEMBARRIER_CMD_PRIVATE_EXPEDITED => require(t, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED),
        MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE => {
            require(t, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE)
        }
        MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED
        | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED
        | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE => {
            membarrier_registrations(t, cmd);
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

// ---- I/O priorities ----

const IOPRIO_CLASS_SHIFT: u32 = 13;
const IOPRIO_CLASS_NONE: u32 = 0;
const IOPRIO_CLASS_RT: u32 = 1;
const IOPRIO_CLASS_BE: u32 = 2;
const IOPRIO_CLASS_IDLE: u32 = 3;
const IOPRIO_NR_LEVELS: u32 = 8;
const IOPRIO_WHO_PROCESS: i32 = 1;
const IOPRIO_WHO_PGRP: i32 = 2;
const IOPRIO_WHO_USER: i32 = 3;

/// ioprio_check_cap: a known class, a level in range, CAP_SYS_NICE for RT.
fn ioprio_check(t: &Task, ioprio: u32) -> Result<(), Errno> {
    let class = (ioprio >> IOPRIO_CLASS_SHIFT) & 7;
    let data = ioprio & ((1 << IOPRIO_CLASS_SHIFT) - 1);
    match class {
        IOPRIO_CLASS_RT | IOPRIO_CLASS_BE => {
            if class == IOPRIO_CLASS_RT && !t.creds.has_capability(CAP_SYS_NICE) {
                return Err(Errno::EPERM);
            }
            if data >= IOPRIO_NR_LEVELS {
                return Err(Errno::EINVAL);
            }
        }
        IOPRIO_CLASS_IDLE => {}
        IOPRIO_CLASS_NONE if data == 0 => {}
        _ => return Err(Errno::EINVAL),
    }
    Ok(())
}

/// ioprio_get's (which, who) are getpriority's shifted by one.
fn ioprio_target(t: &Task, which: i32, who: i32) -> Result<Target, Errno> {
    match which {
        IOPRIO_WHO_PROCESS | IOPRIO_WHO_PGRP | IOPRIO_WHO_USER => prio_target(t, which - 1, who),
        _ => Err(Errno::EINVAL),
    }
}

fn sys_ioprio_set(t: &mut Task, a: &Args) -> SysResult {
    let ioprio = a.u32(2) & 0xffff;
    ioprio_check(t, ioprio)?;
    let who = ioprio_target(t, a.i32(0), a.i32(1))?;
    attrs_mut(t, who)?.ioprio = ioprio;
    Ok(0)
}

fn sys_ioprio_get(t: &mut Task, a: &Args) -> SysResult {
    let s = attrs_of(t, ioprio_target(t, a.i32(0), a.i32(1))?);
    Ok(s.ioprio as u64)
}

// ---- NUMA memory policy: one node ----

const MPOL_DEFAULT: i32 = 0;
const MPOL_PREFERRED: i32 = 1;
const MPOL_BIND: i32 = 2;
const MPOL_INTERLEAVE: i32 = 3;
const MPOL_LOCAL: i32 = 4;
const MPOL_MAX: i32 = 6;
const MPOL_F_NUMA_BALANCING: i32 = 1 << 13;
const MPOL_F_RELATIVE_NODES: i32 = 1 << 14;
const MPOL_F_STATIC_NODES: i32 = 1 << 15;
const MPOL_MODE_FLAGS: i32 = MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES | MPOL_F_NUMA_BALANCING;
const MPOL_F_NODE: u64 = 1;
const MPOL_F_ADDR: u64 = 2;
const MPOL_F_MEMS_ALLOWED: u64 = 4;
const MPOL_MF_MOVE_ALL: u32 = 1 << 2;
const MPOL_MF_VALID: u32 = 7;
/// Nodes a mask may name (MAX_NUMNODES); the sandbox has node 0 only.
const MAX_NUMNODES: u64 = 1024;

/// sanitize_mpol_flags: splits the mode from its flags.
fn mpol_mode(mode: i32) -> Result<(i32, i32), Errno> {
    let flags = mode & MPOL_MODE_FLAGS;
    let mode = mode & !MPOL_MODE_FLAGS;
    if !(0..MPOL_MAX).contains(&mode) {
        return Err(Errno::EINVAL);
    }
    if flags & MPOL_F_STATIC_NODES != 0 && flags & MPOL_F_RELATIVE_NODES != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MPOL_F_NUMA_BALANCING != 0 && mode != MPOL_BIND {
        return Err(Errno::EINVAL);
    }
    Ok((mode, flags))
}

/// get_nodes: the first 64 nodes of a user node mask of `maxnode` bits (bits
/// past MAX_NUMNODES must be clear).
fn get_nodes(t: &Task, addr: u64, maxnode: u64) -> Result<u64, Errno> {
    let bits = maxnode.wrapping_sub(1);
    if bits == 0 || addr == 0 {
        return Ok(0);
    }
    if bits > 4096 * 8 {
        return Err(Errno::EINVAL);
    }
    let words = bits.div_ceil(64) as usize;
    let b = t.copy_in_vec(addr, words * 8)?;
    let mut first = 0;
    for w in 0..words {
        let lo = w as u64 * 64;
        let valid = if bits >= lo + 64 {
            u64::MAX
        } else {
            (1u64 << (bits - lo)) - 1
        };
        let v = le_u64(&b, w * 8) & valid;
        if w == 0 {
            first = v;
        } else if lo >= MAX_NUMNODES && v != 0 {
            return Err(Errno::EINVAL);
        }
    }
    Ok(first)
}

/// mpol_new: validates a mode against its nodes and returns the (mode | flags,
/// nodes) to record. Only node 0 exists.
fn mpol_new(mode: i32, flags: i32, nodes: u64) -> Result<(i32, u64), Errno> {
    let relative_or_static = flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES) != 0;
    match mode {
        MPOL_DEFAULT if nodes != 0 => Err(Errno::EINVAL),
        MPOL_DEFAULT => Ok((MPOL_DEFAULT, 0)),
        MPOL_PREFERRED if nodes == 0 && relative_or_static => Err(Errno::EINVAL),
        MPOL_PREFERRED if nodes == 0 => Ok((MPOL_LOCAL | flags, 0)),
        MPOL_LOCAL if nodes != 0 || relative_or_static => Err(Errno::EINVAL),
        MPOL_LOCAL => Ok((MPOL_LOCAL | flags, 0)),
        _ if nodes == 0 => Err(Errno::EINVAL),
        _ => {
            // Relative nodes wrap onto the allowed ones; the others must name node 0.
            let effective = if flags & MPOL_F_RELATIVE_NODES != 0 {
                1
            } else {
                nodes & 1
            };
            if effective == 0 {
                return Err(Errno::EINVAL);
            }
            // get_mempolicy reports what was asked for with STATIC/RELATIVE.
            Ok((
                mode | flags,
                if relative_or_static { nodes } else { effective },
            ))
        }
    }
}

fn sys_set_mempolicy(t: &mut Task, a: &Args) -> SysResult {
    let (mode, flags) = mpol_mode(a.i32(0))?;
    let nodes = get_nodes(t, a.u64(1), a.u64(2))?;
    t.mempolicy = mpol_new(mode, flags, nodes)?;
    Ok(0)
}

/// Whether [start, end) is covered by mappings without holes.
fn range_mapped(t: &Task, start: u64, end: u64) -> bool {
    let mut vmas = t.mm.vmas();
    vmas.sort_by_key(|v| v.start);
    let mut at = start;
    for v in vmas.iter().filter(|v| v.end > start && v.start < end) {
        if v.start > at {
            return false;
        }
        at = at.max(v.end);
    }
    at >= end
}

fn sys_get_mempolicy(t: &mut Task, a: &Args) -> SysResult {
    let (policy_addr, nmask, maxnode, addr, flags) =
        (a.u64(0), a.u64(1), a.u64(2), a.u64(3), a.u64(4));
    // nr_node_ids is 1.
    if nmask != 0 && maxnode < 1 {
        return Err(Errno::EINVAL);
    }
    if flags & !(MPOL_F_NODE | MPOL_F_ADDR | MPOL_F_MEMS_ALLOWED) != 0 {
        return Err(Errno::EINVAL);
    }
    let (policy, nodes) = if flags & MPOL_F_MEMS_ALLOWED != 0 {
        if flags & (MPOL_F_NODE | MPOL_F_ADDR) != 0 {
            return Err(Errno::EINVAL);
        }
        (0, 1)
    } else {
        // mbind policies are not recorded: every mapping has the default one.
        let (mode, nodes) = if flags & MPOL_F_ADDR != 0 {
            if !range_mapped(t, addr, addr + 1) {
                return Err(Errno::EFAULT);
            }
            (MPOL_DEFAULT, 0)
        } else if addr != 0 {
            return Err(Errno::EINVAL);
        } else {
            t.mempolicy
        };
        if flags & MPOL_F_NODE != 0 {
            // The node of the page at addr, or the next interleave node: node 0.
            if flags & MPOL_F_ADDR == 0 && mode & !MPOL_MODE_FLAGS != MPOL_INTERLEAVE {
                return Err(Errno::EINVAL);
            }
            (0, nodes)
        } else {
            (mode, nodes)
        }
    };
    if policy_addr != 0 {
        t.copy_out_u32(policy_addr, policy as u32)?;
    }
    if nmask != 0 {
        // copy_nodes_to_user: whole longs covering maxnode - 1 bits; past our
        // one long, zeros.
        let copy = (maxnode - 1).div_ceil(64) as usize * 8;
        if copy > 4096 {
            return Err(Errno::EINVAL);
        }
        let mut b = vec![0u8; copy];
        let n = copy.min(8);
        b[..n].copy_from_slice(&nodes.to_le_bytes()[..n]);
        t.copy_out(nmask, &b)?;
    }
    Ok(0)
}

/// mbind(2): validated like set_mempolicy over a mapped range; with one node
/// every policy places memory the same way, so nothing is recorded.
fn sys_mbind(t: &mut Task, a: &Args) -> SysResult {
    let (start, len, flags) = (a.u64(0), a.u64(1), a.u32(5));
    let (mode, mflags) = mpol_mode(a.u64(2) as i32)?;
    let nodes = get_nodes(t, a.u64(3), a.u64(4))?;
    if flags & !MPOL_MF_VALID != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MPOL_MF_MOVE_ALL != 0 && !t.creds.has_capability(CAP_SYS_NICE) {
        return Err(Errno::EPERM);
    }
    if start & 4095 != 0 {
        return Err(Errno::EINVAL);
    }
    let len = len.wrapping_add(4095) & !4095;
    let end = start.wrapping_add(len);
    if end < start {
        return Err(Errno::EINVAL);
    }
    if end == start {
        return Ok(0);
    }
    mpol_new(mode, mflags, nodes)?;
    if !range_mapped(t, start, end) {
        return Err(Errno::EFAULT);
    }
    Ok(0)
}
