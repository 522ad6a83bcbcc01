//! Clocks and timers: the clocks a workload reads (the host's wall, monotonic
//! and boot clocks; CPU-time clocks of processes and threads), CPU-time
//! accounting of tasks, and one service thread that fires every armed timer
//! (alarm, setitimer, POSIX timers) from a deadline heap.
//!
//! CPU time on the ptrace platform: a task's user time is spent in its stub
//! thread. The stub process's CPU clock is exact (Linux lets any process read
//! another's process clock), so a process's user time is exact; a single
//! thread's user time is the wall time its stub thread spent running (Linux
//! does not let us read another process's thread clocks). System time is the
//! CPU time of the sentry host thread that serves the task. CPU timers
//! (ITIMER_VIRTUAL, ITIMER_PROF, POSIX timers on CPU clocks) are checked by
//! sampling, about as often as the CPU time left could possibly be used up.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use abi::Errno;
use platform::AddressSpace;

use crate::kernel::Kernel;
use crate::mm::MemoryManager;
use crate::signal::{SigInfo, SigPending, SI_KERNEL, SI_TIMER};
use crate::task::{Task, TaskShared};
use crate::thread_group::{ThreadGroup, Usage};

const NSEC_PER_SEC: u64 = 1_000_000_000;

/// Linux's CPU-clock kinds (the low two bits of a CPU clock id).
const CPUCLOCK_PROF: i32 = 0;
const CPUCLOCK_VIRT: i32 = 1;
const CPUCLOCK_SCHED: i32 = 2;
/// Bit of a CPU clock id that makes it a thread clock.
const CPUCLOCK_PERTHREAD: i32 = 4;

/// The `which` of setitimer(2).
pub const ITIMER_REAL: i32 = 0;
pub const ITIMER_VIRTUAL: i32 = 1;
pub const ITIMER_PROF: i32 = 2;

/// sigev_notify values.
pub const SIGEV_SIGNAL: i32 = 0;
pub const SIGEV_NONE: i32 = 1;
pub const SIGEV_THREAD: i32 = 2;
pub const SIGEV_THREAD_ID: i32 = 4;

// ---- CPU accounting ----

/// Where a task's CPU time can be read: the host thread serving it and the
/// address space its workload runs in.
#[derive(Clone)]
struct ThreadCpuSource {
    host_tid: i32,
    space: Arc<dyn AddressSpace>,
    task: Weak<TaskShared>,
}

impl ThreadCpuSource {
    fn alive(&self) -> bool {
        self.task
            .upgrade()
            .is_some_and(|t| !t.exited.load(AtomicOrdering::SeqCst))
    }

    fn usage(&self) -> Usage {
        Usage {
            user_ns: self
                .space
                .thread_cpu_time(self.host_tid)
                .map_or(0, |d| d.as_nanos() as u64),
            sys_ns: host_thread_cpu_ns(self.host_tid),
            maxrss_kb: 0,
        }
    }
}

/// CPU time of a sentry host thread (same host process, so readable).
fn host_thread_cpu_ns(host_tid: i32) -> u64 {
    let id = (!host_tid << 3) | CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED;
    let (s, ns) = platform::host::clock_gettime(id);
    s as u64 * NSEC_PER_SEC + ns as u64
}

/// The CPU-time sources of one thread group, learned from its tasks as they
/// make time-related calls.
#[derive(Default)]
struct GroupCpu {
    /// The address space the group's workload runs in.
    space: Option<Arc<dyn AddressSpace>>,
    /// User time spent in address spaces the group has left (exec).
    past_user_ns: u64,
    threads: HashMap<i32, ThreadCpuSource>,
}

fn same_space(a: &Arc<dyn AddressSpace>, b: &Arc<dyn AddressSpace>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

fn space_cpu_ns(s: &Arc<dyn AddressSpace>) -> u64 {
    s.cpu_time().map_or(0, |d| d.as_nanos() as u64)
}

/// Records where the calling task's CPU time can be read (its host thread and
/// address space; both change only at exec).
pub fn note_task(t: &Task) {
    let space = t.mm.address_space();
    let src = ThreadCpuSource {
        host_tid: platform::host::gettid(),
        space: space.clone(),
        task: Arc::downgrade(&t.shared),
    };
    let mut st = t.tg.lock();
    let cpu = &mut st.timers.cpu;
    match &cpu.space {
        Some(s) if same_space(s, &space) => {}
        Some(old) => {
            cpu.past_user_ns += space_cpu_ns(old);
            cpu.space = Some(space);
        }
        None => cpu.space = Some(space),
    }
    cpu.threads.insert(t.tid, src);
}

/// Adds an exiting task's CPU time to its group's `usage` (which wait(2) and
/// RUSAGE_CHILDREN report once the group is reaped). `last` is true for the
/// group's last task: the workload's user time is then final.
pub fn account_exit(t: &Task, last: bool) {
    note_task(t);
    let sys = host_thread_cpu_ns(platform::host::gettid());
    let mut st = t.tg.lock();
    st.usage.sys_ns += sys;
    st.timers.cpu.threads.remove(&t.tid);
    if last {
        let cpu = &mut st.timers.cpu;
        let user = cpu.past_user_ns + cpu.space.take().as_ref().map_or(0, space_cpu_ns);
        cpu.past_user_ns = 0;
        st.usage.user_ns += user;
    }
}

/// CPU time of a thread group: exited threads' (`usage`) and live ones'.
pub fn group_usage(tg: &ThreadGroup) -> Usage {
    let (mut u, space, past, threads) = {
        let st = tg.lock();
        let cpu = &st.timers.cpu;
        let threads: Vec<ThreadCpuSource> = cpu.threads.values().cloned().collect();
        (st.usage, cpu.space.clone(), cpu.past_user_ns, threads)
    };
    u.user_ns += past + space.as_ref().map_or(0, space_cpu_ns);
    for src in threads.iter().filter(|s| s.alive()) {
        u.sys_ns += host_thread_cpu_ns(src.host_tid);
    }
    u
}

/// CPU time of one task (zero if it never told us where to look).
///
/// The only thread of a process gets the exact process clock for its user
/// time (the per-thread estimate also counts ptrace round trips, which the
/// sentry thread's CPU time already partly holds).
pub fn thread_usage(task: &TaskShared) -> Usage {
    let (src, alone) = {
        let st = task.tg.lock();
        (
            st.timers.cpu.threads.get(&task.tid()).cloned(),
            st.tasks.len() == 1,
        )
    };
    match src {
        Some(s) if s.alive() => {
            let mut u = s.usage();
            if alone {
                if let Some(user) = s.space.cpu_time() {
                    u.user_ns = user.as_nanos() as u64;
                }
            }
            u
        }
        _ => Usage::default(),
    }
}

// ---- clocks ----

/// What a CPU clock counts (Linux's CPUCLOCK_PROF / VIRT / SCHED).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuKind {
    /// User plus system time.
    Prof,
    /// User time only.
    Virt,
    /// Scheduler run time (here the same as Prof).
    Sched,
}

impl CpuKind {
    fn of(u: Usage) -> impl Fn(CpuKind) -> u64 {
        move |k| match k {
            CpuKind::Virt => u.user_ns,
            CpuKind::Prof | CpuKind::Sched => u.user_ns + u.sys_ns,
        }
    }
}

/// A clock a workload can read or arm a timer on.
#[derive(Clone)]
pub enum Clock {
    /// A host clock, read as is (the sandbox's clocks are the host's).
    Host(libc::clockid_t),
    /// A process's CPU time.
    ProcessCpu(Weak<ThreadGroup>, CpuKind),
    /// A thread's CPU time.
    ThreadCpu(Weak<TaskShared>, CpuKind),
}

impl Clock {
    /// Decodes a workload clock id for the calling task: the fixed clocks and
    /// the dynamic CPU-clock ids of clock_getcpuclockid / pthread_getcpuclockid
    /// (`(~pid << 3) | kind`, bit 2 for a thread).
    pub fn from_id(t: &Task, id: i32) -> Result<Clock, Errno> {
        let own_process = || Clock::ProcessCpu(Arc::downgrade(&t.tg), CpuKind::Sched);
        Ok(match id {
            libc::CLOCK_REALTIME
            | libc::CLOCK_MONOTONIC
            | libc::CLOCK_MONOTONIC_RAW
            | libc::CLOCK_REALTIME_COARSE
            | libc::CLOCK_MONOTONIC_COARSE
            | libc::CLOCK_BOOTTIME
            | libc::CLOCK_TAI => Clock::Host(id),
            // The alarm clocks read as their base clocks (waking a suspended host
            // is not the sandbox's business).
            libc::CLOCK_REALTIME_ALARM => Clock::Host(libc::CLOCK_REALTIME),
            libc::CLOCK_BOOTTIME_ALARM => Clock::Host(libc::CLOCK_BOOTTIME),
            libc::CLOCK_PROCESS_CPUTIME_ID => own_process(),
            libc::CLOCK_THREAD_CPUTIME_ID => {
                Clock::ThreadCpu(Arc::downgrade(&t.shared), CpuKind::Sched)
            }
            id if id < 0 => {
                let kind = match id & 3 {
                    CPUCLOCK_PROF => CpuKind::Prof,
                    CPUCLOCK_VIRT => CpuKind::Virt,
                    CPUCLOCK_SCHED => CpuKind::Sched,
                    _ => return Err(Errno::EINVAL),
                };
                let pid = !(id >> 3);
                if id & CPUCLOCK_PERTHREAD != 0 {
                    let task = if pid == 0 {
                        Some(t.shared.clone())
                    } else {
                        t.kernel.task(pid)
                    };
                    match task {
                        Some(ts) if Arc::ptr_eq(&ts.tg, &t.tg) => {
                            Clock::ThreadCpu(Arc::downgrade(&ts), kind)
                        }
                        _ => return Err(Errno::EINVAL),
                    }
                } else if pid == 0 || pid == t.tid {
                    Clock::ProcessCpu(Arc::downgrade(&t.tg), kind)
                } else {
                    let g = t.kernel.group(pid).ok_or(Errno::EINVAL)?;
                    Clock::ProcessCpu(Arc::downgrade(&g), kind)
                }
            }
            _ => return Err(Errno::EINVAL),
        })
    }

    pub fn is_cpu(&self) -> bool {
        !matches!(self, Clock::Host(_))
    }

    /// The clock's value in nanoseconds; None when the process or thread it
    /// measures is gone.
    pub fn now_ns(&self) -> Option<u64> {
        match self {
            Clock::Host(id) => {
                let (s, ns) = platform::host::clock_gettime(*id);
                Some(s as u64 * NSEC_PER_SEC + ns as u64)
            }
            Clock::ProcessCpu(tg, kind) => {
                let tg = tg.upgrade()?;
                Some(CpuKind::of(group_usage(&tg))(*kind))
            }
            Clock::ThreadCpu(task, kind) => {
                let task = task.upgrade()?;
                if task.exited.load(AtomicOrdering::SeqCst) {
                    return None;
                }
                Some(CpuKind::of(thread_usage(&task))(*kind))
            }
        }
    }

    /// The clock's resolution in nanoseconds.
    pub fn resolution_ns(&self) -> u64 {
        match self {
            Clock::Host(id) => {
                let (s, ns) = platform::host::clock_getres(*id);
                s as u64 * NSEC_PER_SEC + ns as u64
            }
            _ => 1,
        }
    }

    /// How long to wait (on the host's monotonic clock) before checking again
    /// for `left` nanoseconds to pass on this clock. A CPU clock advances at most
    /// as fast as the host's CPUs together.
    fn wall_wait(&self, left: u64) -> Duration {
        if !self.is_cpu() {
            return Duration::from_nanos(left);
        }
        // Read once before the sentry confines itself (std's
        // available_parallelism opens cgroup files).
        let ncpu = crate::procfs::cpu_count() as u64;
        Duration::from_nanos(left / ncpu).max(Duration::from_millis(1))
    }
}

/// Sleeps until `clock` reads at least `deadline` ns. Err(ERESTARTSYS) when a
/// signal (or any other interrupt) wakes the task first.
pub fn sleep_until(t: &Task, clock: &Clock, deadline: u64) -> Result<(), Errno> {
    loop {
        let now = clock.now_ns().ok_or(Errno::EINVAL)?;
        if now >= deadline {
            return Ok(());
        }
        let until = Instant::now() + clock.wall_wait(deadline - now);
        match t.waiter().wait(Some(until), &[]) {
            Ok(()) | Err(Errno::ETIMEDOUT) => continue,
            Err(e) => return Err(e),
        }
    }
}

// ---- timers ----

/// How a timer tells the workload it expired.
enum Notify {
    /// SIGEV_NONE: only timer_gettime shows it.
    None,
    /// A process-directed signal.
    Group(Weak<ThreadGroup>, SigInfo),
    /// SIGEV_THREAD_ID: a signal to one thread.
    Thread(Weak<TaskShared>, SigInfo),
}

/// One timer: alarm / an itimer, or a POSIX timer.
pub struct Timer {
    kernel: Weak<Kernel>,
    /// POSIX timers die at exec and exit; this memory is gone then.
    owner_mm: Option<Weak<MemoryManager>>,
    state: Mutex<TimerState>,
}

struct TimerState {
    clock: Clock,
    /// Next expiry on `clock` (ns); None when disarmed.
    next: Option<u64>,
    interval: u64,
    notify: Notify,
    /// Bumped on every (re)arm: older heap entries are stale.
    gen: u64,
    /// Overrun carried by our signal while we believe it is still queued.
    queued_overrun: Option<i32>,
    /// Overrun of the last delivered signal (timer_getoverrun).
    last_overrun: i32,
}

/// A timer's setting, in nanoseconds: time to the next expiry (0 = disarmed)
/// and the period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Setting {
    pub value: u64,
    pub interval: u64,
}

impl Timer {
    fn new(t: &Task, clock: Clock, notify: Notify, posix: bool) -> Arc<Timer> {
        Arc::new(Timer {
            kernel: Arc::downgrade(&t.kernel),
            owner_mm: posix.then(|| Arc::downgrade(&t.mm)),
            state: Mutex::new(TimerState {
                clock,
                next: None,
                interval: 0,
                notify,
                gen: 0,
                queued_overrun: None,
                last_overrun: 0,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, TimerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current setting (timer_gettime, getitimer).
    pub fn get(&self) -> Setting {
        let st = self.lock();
        let now = st.clock.now_ns().unwrap_or(0);
        st.setting(now)
    }

    /// Arms (`value` > 0) or disarms the timer and returns the old setting.
    /// `abs`: `value` is a time on the timer's clock, not an interval.
    pub fn set(self: &Arc<Timer>, value: u64, abs: bool, interval: u64) -> Setting {
        let mut st = self.lock();
        let now = st.clock.now_ns().unwrap_or(0);
        let old = st.setting(now);
        st.gen += 1;
        st.interval = interval;
        st.next = match value {
            0 => None,
            v if abs => Some(v),
            v => Some(now.saturating_add(v)),
        };
        if let Some(next) = st.next {
            let at = Instant::now() + st.clock.wall_wait(next.saturating_sub(now));
            service().schedule(at, Arc::downgrade(self), st.gen);
        }
        old
    }

    /// timer_getoverrun: the overrun count of the last delivered signal.
    pub fn overrun(&self) -> i32 {
        let mut st = self.lock();
        st.refresh_queued();
        st.last_overrun
    }

    /// Handles a heap entry: fires if due, and reschedules.
    fn expire(self: &Arc<Timer>, gen: u64) {
        let mut st = self.lock();
        if st.gen != gen {
            return;
        }
        let Some(next) = st.next else { return };
        let dead = self
            .owner_mm
            .as_ref()
            .is_some_and(|m| m.strong_count() == 0);
        let Some(now) = st.clock.now_ns().filter(|_| !dead) else {
            st.next = None;
            return;
        };
        if now >= next {
            // Expiries since `next`: one, plus the periods missed.
            let count = match (now - next).checked_div(st.interval) {
                Some(missed) => {
                    let count = missed + 1;
                    st.next = Some(next.saturating_add(count.saturating_mul(st.interval)));
                    count
                }
                None => {
                    st.next = None;
                    1
                }
            };
            if !self.deliver(&mut st, count) {
                st.next = None;
            }
        }
        if let Some(next) = st.next {
            let at = Instant::now() + st.clock.wall_wait(next.saturating_sub(now));
            service().schedule(at, Arc::downgrade(self), st.gen);
        }
    }

    /// Sends the expiry signal for `count` expiries. False when the target is
    /// gone (the timer then stops).
    fn deliver(&self, st: &mut TimerState, count: u64) -> bool {
        let Some(kernel) = self.kernel.upgrade() else {
            return false;
        };
        let extra = count.saturating_sub(1).min(i32::MAX as u64) as i32;
        match &st.notify {
            Notify::None => true,
            Notify::Group(tg, info) => {
                let Some(tg) = tg.upgrade() else { return false };
                if tg.lock().zombie.is_some() {
                    return false;
                }
                let info = *info;
                if info.code() == SI_TIMER {
                    let bumped = bump_queued(&mut tg.lock().pending, &info, extra + 1);
                    if st.track_send(bumped, extra) {
                        return true;
                    }
                }
                kernel.send_to_group(&tg, with_overrun(info, extra));
                true
            }
            Notify::Thread(task, info) => {
                let Some(task) = task.upgrade() else {
                    return false;
                };
                if task.exited.load(AtomicOrdering::SeqCst) {
                    return false;
                }
                let info = *info;
                let bumped = bump_queued(&mut task.sig.lock().unwrap().pending, &info, extra + 1);
                if st.track_send(bumped, extra) {
                    return true;
                }
                kernel.send_to_task(&task, with_overrun(info, extra));
                true
            }
        }
    }
}

impl TimerState {
    fn setting(&self, now: u64) -> Setting {
        let value = match self.next {
            None => 0,
            Some(n) if n > now => n - now,
            // Due but not yet handled: a periodic timer has moved on; a
            // one-shot one reads as about to fire (SIGEV_NONE ones as done).
            Some(n) if self.interval > 0 => self.interval - (now - n) % self.interval,
            Some(_) if matches!(self.notify, Notify::None) => 0,
            Some(_) => 1,
        };
        Setting {
            value,
            interval: self.interval,
        }
    }

    /// Bookkeeping for timer_getoverrun: `bumped` is the overrun of our signal
    /// if it was still queued (and has been bumped). Returns true when no new
    /// signal is needed.
    fn track_send(&mut self, bumped: Option<i32>, extra: i32) -> bool {
        if let Some(o) = bumped {
            self.queued_overrun = Some(o);
            return true;
        }
        if let Some(o) = self.queued_overrun.take() {
            self.last_overrun = o;
        }
        self.queued_overrun = Some(extra);
        false
    }

    /// Notices that our queued signal has been delivered.
    fn refresh_queued(&mut self) {
        if self.queued_overrun.is_none() {
            return;
        }
        let still = match &self.notify {
            Notify::None => None,
            Notify::Group(tg, info) => tg
                .upgrade()
                .and_then(|tg| bump_queued(&mut tg.lock().pending, info, 0)),
            Notify::Thread(task, info) => task
                .upgrade()
                .and_then(|task| bump_queued(&mut task.sig.lock().unwrap().pending, info, 0)),
        };
        if still.is_none() {
            if let Some(o) = self.queued_overrun.take() {
                self.last_overrun = o;
            }
        }
    }
}

const SI_TIMERID: usize = 16;
const SI_OVERRUN: usize = 20;

fn le_i32(info: &SigInfo, off: usize) -> i32 {
    i32::from_le_bytes(info.bytes[off..off + 4].try_into().unwrap())
}

fn with_overrun(mut info: SigInfo, overrun: i32) -> SigInfo {
    info.bytes[SI_OVERRUN..SI_OVERRUN + 4].copy_from_slice(&overrun.to_le_bytes());
    info
}

/// If the first queued instance of `info`'s signal in `pending` is this
/// timer's, adds `add` to its si_overrun (as Linux does instead of queueing a
/// second one) and returns the new count.
///
/// The queue only lets us take and re-append: with several instances of the
/// same real-time signal queued, ours moves behind the others.
fn bump_queued(pending: &mut SigPending, info: &SigInfo, add: i32) -> Option<i32> {
    let sig = info.signo();
    let mut q = pending.take_signal(sig)?;
    let ours = q.code() == SI_TIMER && le_i32(&q, SI_TIMERID) == le_i32(info, SI_TIMERID);
    let overrun = le_i32(&q, SI_OVERRUN).saturating_add(add);
    if ours {
        q = with_overrun(q, overrun);
    }
    pending.push(q);
    ours.then_some(overrun)
}

// ---- the service thread ----

struct Entry {
    at: Instant,
    seq: u64,
    timer: Weak<Timer>,
    gen: u64,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Entry) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Entry) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Entry) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// The deadline heap and the thread that serves it (one per sentry).
struct Service {
    /// Pending expiry checks, earliest first, and a sequence for ties.
    queue: Mutex<(BinaryHeap<Reverse<Entry>>, u64)>,
    wake: Condvar,
}

fn service() -> &'static Service {
    static SERVICE: OnceLock<&'static Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let s: &'static Service = Box::leak(Box::new(Service {
            queue: Mutex::new((BinaryHeap::new(), 0)),
            wake: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("timers".into())
            .spawn(move || s.run())
            .expect("spawning the timer thread");
        s
    })
}

impl Service {
    fn schedule(&self, at: Instant, timer: Weak<Timer>, gen: u64) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.1 += 1;
        let seq = q.1;
        let earliest = q.0.peek().is_none_or(|Reverse(e)| at < e.at);
        q.0.push(Reverse(Entry {
            at,
            seq,
            timer,
            gen,
        }));
        if earliest {
            self.wake.notify_one();
        }
    }

    fn run(&self) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            let at = q.0.peek().map(|Reverse(e)| e.at);
            match at {
                None => q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner()),
                Some(at) if at > now => {
                    q = self
                        .wake
                        .wait_timeout(q, at - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                Some(_) => {
                    let Reverse(e) = q.0.pop().expect("peeked");
                    drop(q);
                    if let Some(t) = e.timer.upgrade() {
                        t.expire(e.gen);
                    }
                    q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }
}

// ---- per-process timers ----

/// A process's timers and CPU-time sources (part of its `TgState`). Not
/// inherited by fork; exec keeps the itimers and deletes the POSIX timers.
#[derive(Default)]
pub struct GroupTimers {
    /// ITIMER_REAL (also alarm), ITIMER_VIRTUAL, ITIMER_PROF; made on first use.
    itimers: [Option<Arc<Timer>>; 3],
    posix: BTreeMap<i32, Arc<Timer>>,
    next_id: i32,
    cpu: GroupCpu,
}

/// The process's itimer `which` (created disarmed on first use).
pub fn itimer(t: &Task, which: i32) -> Result<Arc<Timer>, Errno> {
    let (clock, sig) = match which {
        ITIMER_REAL => (Clock::Host(libc::CLOCK_MONOTONIC), libc::SIGALRM),
        ITIMER_VIRTUAL => (
            Clock::ProcessCpu(Arc::downgrade(&t.tg), CpuKind::Virt),
            libc::SIGVTALRM,
        ),
        ITIMER_PROF => (
            Clock::ProcessCpu(Arc::downgrade(&t.tg), CpuKind::Prof),
            libc::SIGPROF,
        ),
        _ => return Err(Errno::EINVAL),
    };
    if which != ITIMER_REAL {
        note_task(t);
    }
    let mut st = t.tg.lock();
    let slot = &mut st.timers.itimers[which as usize];
    Ok(slot
        .get_or_insert_with(|| {
            // Linux sends these as the kernel (SEND_SIG_PRIV).
            let notify = Notify::Group(Arc::downgrade(&t.tg), SigInfo::new(sig, SI_KERNEL));
            Timer::new(t, clock, notify, false)
        })
        .clone())
}

/// alarm(2): arms ITIMER_REAL for `secs` seconds (0 cancels) and returns the
/// seconds left on the previous alarm, rounded as Linux's alarm_setitimer does
/// (up from half a second, and never 0 while one was pending).
pub fn alarm(t: &Task, secs: u32) -> u64 {
    let Ok(timer) = itimer(t, ITIMER_REAL) else {
        return 0;
    };
    let old = timer.set(secs as u64 * NSEC_PER_SEC, false, 0);
    let (s, ns) = (old.value / NSEC_PER_SEC, old.value % NSEC_PER_SEC);
    if (s == 0 && ns != 0) || ns >= NSEC_PER_SEC / 2 {
        s + 1
    } else {
        s
    }
}

/// A decoded `struct sigevent`.
#[derive(Clone, Copy, Debug)]
pub struct SigEvent {
    pub value: u64,
    pub signo: i32,
    pub notify: i32,
    pub tid: i32,
}

/// timer_create(2): a new POSIX timer on `clock`; returns its id. Without a
/// sigevent the timer sends SIGALRM with the timer id as its value.
pub fn create_posix_timer(t: &Task, clock: Clock, ev: Option<SigEvent>) -> Result<i32, Errno> {
    if clock.is_cpu() {
        note_task(t);
    }
    purge_exec_timers(t);
    let valid_sig = |s: i32| (1..=crate::signal::NSIG as i32).contains(&s);
    let mut st = t.tg.lock();
    let timers = &mut st.timers;
    let mut id = timers.next_id;
    while timers.posix.contains_key(&id) {
        id = id.checked_add(1).unwrap_or(0);
        if id == timers.next_id {
            return Err(Errno::EAGAIN);
        }
    }
    // Linux allocates the id before checking the sigevent: a refused one is used up.
    timers.next_id = id.checked_add(1).unwrap_or(0);
    let ev = ev.unwrap_or(SigEvent {
        value: id as u64,
        signo: libc::SIGALRM,
        notify: SIGEV_SIGNAL,
        tid: 0,
    });
    let info = SigInfo::timer(ev.signo, id, 0, ev.value);
    let notify = match ev.notify {
        SIGEV_NONE => Notify::None,
        SIGEV_SIGNAL | SIGEV_THREAD if valid_sig(ev.signo) => {
            Notify::Group(Arc::downgrade(&t.tg), info)
        }
        SIGEV_THREAD_ID if valid_sig(ev.signo) => {
            let task = if ev.tid == t.tid {
                Some(t.shared.clone())
            } else {
                t.kernel.task(ev.tid)
            };
            match task {
                Some(ts) if Arc::ptr_eq(&ts.tg, &t.tg) => Notify::Thread(Arc::downgrade(&ts), info),
                _ => return Err(Errno::EINVAL),
            }
        }
        _ => return Err(Errno::EINVAL),
    };
    timers.posix.insert(id, Timer::new(t, clock, notify, true));
    Ok(id)
}

/// The calling process's POSIX timer `id`.
pub fn posix_timer(t: &Task, id: i32) -> Result<Arc<Timer>, Errno> {
    purge_exec_timers(t);
    t.tg.lock()
        .timers
        .posix
        .get(&id)
        .cloned()
        .ok_or(Errno::EINVAL)
}

/// timer_delete(2).
pub fn delete_posix_timer(t: &Task, id: i32) -> Result<(), Errno> {
    purge_exec_timers(t);
    let timer = t.tg.lock().timers.posix.remove(&id).ok_or(Errno::EINVAL)?;
    timer.set(0, false, 0);
    Ok(())
}

/// Drops POSIX timers made before an exec (their memory manager is not the
/// caller's): Linux deletes them at exec.
fn purge_exec_timers(t: &Task) {
    let stale: Vec<Arc<Timer>> = {
        let mut st = t.tg.lock();
        let posix = &mut st.timers.posix;
        let ids: Vec<i32> = posix
            .iter()
            .filter(|(_, tm)| {
                tm.owner_mm
                    .as_ref()
                    .is_some_and(|m| !std::ptr::eq(m.as_ptr(), Arc::as_ptr(&t.mm)))
            })
            .map(|(id, _)| *id)
            .collect();
        ids.iter().filter_map(|id| posix.remove(id)).collect()
    };
    for tm in stale {
        tm.set(0, false, 0);
    }
}
