//! timerfd(2): a timer on a host clock (realtime, monotonic, boottime) whose
//! expirations are read as a count. Expirations are computed from the clock
//! when looked at; a small service thread only wakes the timer's waiters at
//! each expiry.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use abi::linux::Stat;
use abi::Errno;

use crate::file::{FileOps, FileState, OpenFile};
use crate::waiter::{WaitQueue, EVENT_IN};

pub const TFD_TIMER_ABSTIME: i32 = 1;
pub const TFD_TIMER_CANCEL_ON_SET: i32 = 2;
pub const TFD_CLOEXEC: i32 = libc::O_CLOEXEC;
pub const TFD_NONBLOCK: i32 = libc::O_NONBLOCK;

const READABLE: u32 = EVENT_IN | libc::POLLRDNORM as u32;
const NSEC: u64 = 1_000_000_000;

struct State {
    /// Next expiry on the clock (ns); None when disarmed.
    next: Option<u64>,
    interval: u64,
    /// Expirations not yet read.
    ticks: u64,
    /// Bumped on every settime: older service entries are stale.
    gen: u64,
}

pub struct TimerFd {
    clock: libc::clockid_t,
    state: Mutex<State>,
    queue: WaitQueue,
    stat: Stat,
}

struct TimerFdFile(Arc<TimerFd>);

impl Drop for TimerFdFile {
    fn drop(&mut self) {
        super::unregister(self as *const TimerFdFile as usize);
    }
}

/// The clock's reading in ns.
fn now_ns(clock: libc::clockid_t) -> u64 {
    let (s, ns) = platform::host::clock_gettime(clock);
    s as u64 * NSEC + ns as u64
}

impl State {
    /// Counts the expirations up to `now`.
    fn update(&mut self, now: u64) {
        let Some(n) = self.next else { return };
        if now < n {
            return;
        }
        if let Some(k) = (now - n).checked_div(self.interval) {
            let k = k + 1;
            self.ticks = self.ticks.saturating_add(k);
            self.next = Some(n.saturating_add(k.saturating_mul(self.interval)));
        } else {
            self.ticks = self.ticks.saturating_add(1);
            self.next = None;
        }
    }

    /// (time to next expiry, interval) in ns.
    fn setting(&self, now: u64) -> (u64, u64) {
        match self.next {
            None => (0, self.interval),
            Some(n) => (n.saturating_sub(now).max(1), self.interval),
        }
    }
}

impl TimerFd {
    /// timerfd_create; `clock` is the base clock (alarm clocks mapped by the caller).
    pub fn new_file(clock: libc::clockid_t, flags: i32, uid: u32, gid: u32) -> Arc<OpenFile> {
        let t = Arc::new(TimerFd {
            clock,
            state: Mutex::new(State {
                next: None,
                interval: 0,
                ticks: 0,
                gen: 0,
            }),
            queue: WaitQueue::default(),
            stat: super::anon_stat(uid, gid),
        });
        super::new_registered(
            Box::new(TimerFdFile(t.clone())),
            &t,
            libc::O_RDWR | (flags & libc::O_NONBLOCK),
        )
    }

    /// The timerfd behind `f`.
    pub fn of(f: &OpenFile) -> Option<Arc<TimerFd>> {
        super::lookup::<TimerFd>(f)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// timerfd_gettime: (value, interval) in ns.
    pub fn get(&self) -> (u64, u64) {
        let now = now_ns(self.clock);
        let mut st = self.lock();
        st.update(now);
        st.setting(now)
    }

    /// timerfd_settime: arms (`value` > 0) or disarms; returns the old setting.
    pub fn set(self: &Arc<Self>, value: u64, interval: u64, abs: bool) -> (u64, u64) {
        let now = now_ns(self.clock);
        let mut st = self.lock();
        st.update(now);
        let old = st.setting(now);
        st.gen += 1;
        st.ticks = 0;
        st.interval = interval;
        st.next = match value {
            0 => None,
            v if abs => Some(v),
            v => Some(now.saturating_add(v)),
        };
        if let Some(n) = st.next {
            schedule(n.saturating_sub(now), Arc::downgrade(self), st.gen);
        }
        drop(st);
        // Waiters re-check (an absolute time in the past is ready at once).
        self.queue.notify(READABLE);
        old
    }

    /// The service's expiry check.
    fn expire(self: &Arc<Self>, gen: u64) {
        let now = now_ns(self.clock);
        let mut st = self.lock();
        if st.gen != gen {
            return;
        }
        st.update(now);
        let ready = st.ticks > 0;
        if let Some(n) = st.next {
            schedule(n.saturating_sub(now), Arc::downgrade(self), gen);
        }
        drop(st);
        if ready {
            self.queue.notify(READABLE);
        }
    }
}

impl FileOps for TimerFdFile {
    fn read(&self, _st: &FileState, buf: &mut [u8]) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let now = now_ns(self.0.clock);
        let mut st = self.0.lock();
        st.update(now);
        if st.ticks == 0 {
            return Err(Errno::EAGAIN);
        }
        buf[..8].copy_from_slice(&st.ticks.to_ne_bytes());
        st.ticks = 0;
        Ok(8)
    }
    fn write(&self, _st: &FileState, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn lseek(&self, _st: &FileState, _off: i64, _whence: i32) -> Result<u64, Errno> {
        Ok(0)
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.0.stat)
    }
    fn readiness(&self, mask: u32) -> u32 {
        let now = now_ns(self.0.clock);
        let mut st = self.0.lock();
        st.update(now);
        if st.ticks > 0 {
            READABLE & mask
        } else {
            0
        }
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.0.queue)
    }
}

// ---- the wake-up service ----

struct Entry(Instant, u64, Weak<TimerFd>, u64);

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.0, self.1) == (o.0, o.1)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(o.0, o.1))
    }
}

struct Service {
    heap: Mutex<(BinaryHeap<Reverse<Entry>>, u64)>,
    wake: Condvar,
}

fn service() -> &'static Service {
    static S: OnceLock<&'static Service> = OnceLock::new();
    S.get_or_init(|| {
        let s: &'static Service = Box::leak(Box::new(Service {
            heap: Mutex::new((BinaryHeap::new(), 0)),
            wake: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("timerfd".into())
            .spawn(move || s.run())
            .expect("spawning the timerfd thread");
        s
    })
}

fn schedule(after_ns: u64, t: Weak<TimerFd>, gen: u64) {
    let s = service();
    let at = Instant::now()
        .checked_add(Duration::from_nanos(after_ns))
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(1 << 32));
    let mut h = s.heap.lock().unwrap_or_else(|e| e.into_inner());
    h.1 += 1;
    let seq = h.1;
    let earliest = h.0.peek().is_none_or(|Reverse(e)| at < e.0);
    h.0.push(Reverse(Entry(at, seq, t, gen)));
    if earliest {
        s.wake.notify_one();
    }
}

impl Service {
    fn run(&self) {
        let mut h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            match h.0.peek().map(|Reverse(e)| e.0) {
                None => h = self.wake.wait(h).unwrap_or_else(|e| e.into_inner()),
                Some(at) if at > now => {
                    h = self
                        .wake
                        .wait_timeout(h, at - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                Some(_) => {
                    let Reverse(e) = h.0.pop().expect("peeked");
                    drop(h);
                    if let Some(t) = e.2.upgrade() {
                        t.expire(e.3);
                    }
                    h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }
}
