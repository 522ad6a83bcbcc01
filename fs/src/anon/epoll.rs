//! epoll(7): an interest list of (fd, file) pairs, each with an event mask and a
//! user data word, and a wait that reports the ready ones.
//!
//! The interest list holds weak references, as Linux's holds no file
//! reference: a file whose last descriptor is closed drops out. Readiness is
//! computed by asking each watched file (`FileOps::readiness`); a wait registers
//! the caller's waiter on every watched file's wait queue (and polls their host
//! fds), recursing into nested epoll instances, so no state persists in the
//! watched files.
//!
//! poll/select on an epoll fd (which only asks for one wait queue or host fd)
//! are woken by a 10 ms host timer made on first such use, then re-check.
//!
//! Edge-triggered watches (EPOLLET) remember the generation of the file's wait
//! queue at their last report and report a ready file again only once the queue
//! was notified since (new data, new space, a state change). Like Linux, a
//! notification that leaves the file ready (more data on a readable pipe)
//! reports again. Files without a wait queue (host fds) and nested epolls are
//! reported level-triggered: never missed, but reported while they stay ready.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Instant;

use abi::linux::Stat;
use abi::Errno;

use crate::file::{FileOps, FileState, OpenFile};
use crate::waiter::{self, WaitQueue, Waiter, EVENT_IN};

pub const EPOLL_CTL_ADD: i32 = 1;
pub const EPOLL_CTL_DEL: i32 = 2;
pub const EPOLL_CTL_MOD: i32 = 3;

pub const EPOLLIN: u32 = 0x1;
pub const EPOLLOUT: u32 = 0x4;
pub const EPOLLERR: u32 = 0x8;
pub const EPOLLHUP: u32 = 0x10;
pub const EPOLLRDNORM: u32 = 0x40;
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLWAKEUP: u32 = 1 << 29;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;
/// The flag bits that are not events.
const EP_PRIVATE_BITS: u32 = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;
/// What EPOLLEXCLUSIVE may be combined with.
const EXCLUSIVE_OK_BITS: u32 =
    EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;
/// Linux's EP_MAX_NESTS.
const MAX_NESTS: usize = 4;
/// Size of one `struct epoll_event` on x86-64 (packed).
pub const EVENT_SIZE: usize = 12;

type Key = (i32, usize);

struct Watch {
    file: Weak<OpenFile>,
    events: u32,
    data: u64,
    /// EPOLLET: the file's wait-queue generation when last reported.
    reported_gen: Option<u64>,
}

/// One epoll instance.
pub struct Epoll {
    interest: Mutex<BTreeMap<Key, Watch>>,
    /// Where the next harvest starts, so a small maxevents does not starve the
    /// later entries (Linux moves reported level-triggered items to the tail).
    cursor: Mutex<Option<Key>>,
    /// Notified when the interest list changes (a newly added ready file must
    /// wake a concurrent epoll_wait) and for pollers of the epoll fd.
    queue: WaitQueue,
    /// A periodic host timer (made when something other than an epoll_wait on
    /// us asks how to wait for this file: poll, select) that makes such
    /// waiters re-check: nothing else would wake them when a watched file
    /// becomes ready.
    tick: OnceLock<Option<OwnedFd>>,
    stat: Stat,
}

/// The epoll file's operations.
struct EpollFile(Arc<Epoll>);

/// Epoll instances by the address of their FileOps, to recognise epoll files.
fn registry() -> MutexGuard<'static, HashMap<usize, Weak<Epoll>>> {
    static R: OnceLock<Mutex<HashMap<usize, Weak<Epoll>>>> = OnceLock::new();
    R.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn ops_addr(ops: &dyn FileOps) -> usize {
    ops as *const dyn FileOps as *const () as usize
}

/// The epoll instance behind `f`, if it is an epoll file.
pub fn as_epoll(f: &OpenFile) -> Option<Arc<Epoll>> {
    registry().get(&ops_addr(f.ops())).and_then(|w| w.upgrade())
}

impl Drop for EpollFile {
    fn drop(&mut self) {
        registry().remove(&(self as *const EpollFile as usize));
    }
}

fn key(fd: i32, f: &Arc<OpenFile>) -> Key {
    (fd, Arc::as_ptr(f) as usize)
}

impl Epoll {
    /// epoll_create1: a new instance's file (O_RDWR, as Linux).
    pub fn new_file(uid: u32, gid: u32) -> Arc<OpenFile> {
        let ep = Arc::new(Epoll {
            interest: Mutex::new(BTreeMap::new()),
            cursor: Mutex::new(None),
            queue: WaitQueue::default(),
            tick: OnceLock::new(),
            stat: super::anon_stat(uid, gid),
        });
        let ops = Box::new(EpollFile(ep.clone()));
        let addr = &*ops as *const EpollFile as usize;
        registry().insert(addr, Arc::downgrade(&ep));
        OpenFile::new(ops, libc::O_RDWR, None)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Key, Watch>> {
        self.interest.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live files watched, dropping entries whose file is gone.
    fn files(&self) -> Vec<Arc<OpenFile>> {
        self.watched().into_iter().map(|(f, _)| f).collect()
    }

    /// The live files watched with their event masks, dropping dead entries.
    fn watched(&self) -> Vec<(Arc<OpenFile>, u32)> {
        let mut m = self.lock();
        let mut out = Vec::new();
        m.retain(|_, w| match w.file.upgrade() {
            Some(f) => {
                out.push((f, w.events & !EP_PRIVATE_BITS));
                true
            }
            None => false,
        });
        out
    }

    /// Whether `target` is `self` or reaches it through nested epolls, or the
    /// nesting would be deeper than Linux allows.
    fn reaches(target: &Arc<Epoll>, me: &Epoll, depth: usize) -> bool {
        if std::ptr::eq(Arc::as_ptr(target), me) || depth > MAX_NESTS {
            return true;
        }
        target
            .files()
            .iter()
            .filter_map(|f| as_epoll(f))
            .any(|e| Epoll::reaches(&e, me, depth + 1))
    }

    /// epoll_ctl on the file `f` open at `fd` (the caller checked both fds).
    pub fn ctl(
        &self,
        op: i32,
        fd: i32,
        f: &Arc<OpenFile>,
        events: u32,
        data: u64,
    ) -> Result<(), Errno> {
        let target_ep = as_epoll(f);
        if target_ep.is_none() && !pollable(f) {
            return Err(Errno::EPERM);
        }
        if let Some(t) = &target_ep {
            if std::ptr::eq(Arc::as_ptr(t), self) {
                return Err(Errno::EINVAL);
            }
        }
        if op != EPOLL_CTL_DEL && events & EPOLLEXCLUSIVE != 0 {
            if op == EPOLL_CTL_MOD {
                return Err(Errno::EINVAL);
            }
            if events & !EXCLUSIVE_OK_BITS != 0 || target_ep.is_some() {
                return Err(Errno::EINVAL);
            }
        }
        let k = key(fd, f);
        // Nested epolls: refuse loops (checked before taking our lock). One
        // nesting change at a time (Linux's epnested_mutex), so two racing adds
        // cannot build a loop between them.
        static NESTING: Mutex<()> = Mutex::new(());
        let _nesting = (op == EPOLL_CTL_ADD && target_ep.is_some())
            .then(|| NESTING.lock().unwrap_or_else(|e| e.into_inner()));
        if op == EPOLL_CTL_ADD {
            if let Some(t) = &target_ep {
                if Epoll::reaches(t, self, 1) {
                    return Err(Errno::ELOOP);
                }
            }
        }
        let mut m = self.lock();
        // A dead entry with the same key (a reused address) is no entry.
        if m.get(&k).is_some_and(|w| w.file.upgrade().is_none()) {
            m.remove(&k);
        }
        let events = (events & !EPOLLWAKEUP) | EPOLLERR | EPOLLHUP;
        match op {
            EPOLL_CTL_ADD => {
                if m.contains_key(&k) {
                    return Err(Errno::EEXIST);
                }
                m.insert(
                    k,
                    Watch {
                        file: Arc::downgrade(f),
                        events,
                        data,
                        reported_gen: None,
                    },
                );
            }
            EPOLL_CTL_MOD => {
                let w = m.get_mut(&k).ok_or(Errno::ENOENT)?;
                if w.events & EPOLLEXCLUSIVE != 0 {
                    return Err(Errno::EINVAL);
                }
                w.events = events;
                w.data = data;
                // Re-armed: a ready file is reported again (Linux re-polls on MOD).
                w.reported_gen = None;
            }
            EPOLL_CTL_DEL => {
                m.remove(&k).ok_or(Errno::ENOENT)?;
            }
            _ => return Err(Errno::EINVAL),
        }
        drop(m);
        self.queue.notify(u32::MAX);
        Ok(())
    }

    /// The ready events, at most `max` of them, as (events, data). With
    /// `consume`, one-shot watches that fire are disarmed and the cursor moves.
    fn harvest(&self, max: usize, consume: bool) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        let mut m = self.lock();
        let mut cursor = self.cursor.lock().unwrap_or_else(|e| e.into_inner());
        // The entries after the cursor, then the rest. The cursor's entry may
        // be gone (closed without EPOLL_CTL_DEL): exclude the cursor's key
        // itself, never "the first key from it", which would skip its
        // successor on every wait until something else is reported.
        let keys: Vec<Key> = match *cursor {
            Some(c) => m
                .range((Bound::Excluded(c), Bound::Unbounded))
                .chain(m.range(..=c))
                .map(|(k, _)| *k)
                .collect(),
            None => m.keys().copied().collect(),
        };
        let mut last = None;
        let mut dead = Vec::new();
        for k in keys {
            if out.len() >= max {
                break;
            }
            let w = m.get_mut(&k).unwrap();
            let Some(f) = w.file.upgrade() else {
                dead.push(k);
                continue;
            };
            let mask = w.events & !EP_PRIVATE_BITS;
            if mask == 0 {
                continue;
            }
            // Read the generation before the readiness, so that a change in
            // between is reported (again) rather than missed.
            let edge_gen = if w.events & EPOLLET != 0 && as_epoll(&f).is_none() {
                f.ops().wait_queue().map(|q| q.generation_for(mask))
            } else {
                None
            };
            let r = f.readiness(mask) & mask;
            if r == 0 {
                continue;
            }
            if let Some(g) = edge_gen {
                if w.reported_gen == Some(g) {
                    continue;
                }
                if consume {
                    w.reported_gen = Some(g);
                }
            }
            out.push((r, w.data));
            last = Some(k);
            if consume && w.events & EPOLLONESHOT != 0 {
                // Disarmed until EPOLL_CTL_MOD.
                w.events &= EP_PRIVATE_BITS;
            }
        }
        for k in dead {
            m.remove(&k);
        }
        if consume && last.is_some() {
            *cursor = last;
        }
        out
    }

    /// Collects the files to wait on: ours and, recursively, nested epolls'.
    fn wait_files(&self, out: &mut Vec<(Arc<OpenFile>, u32)>, depth: usize) {
        for (f, mask) in self.watched() {
            if depth < MAX_NESTS + 1 {
                if let Some(e) = as_epoll(&f) {
                    e.wait_files(out, depth + 1);
                }
            }
            out.push((f, mask));
        }
    }

    /// epoll_wait: up to `max` ready events, waiting until `deadline` (None:
    /// forever; a past deadline: no wait). Empty at the deadline; ERESTARTSYS
    /// when interrupted.
    pub fn wait(
        self: &Arc<Self>,
        w: &Arc<Waiter>,
        max: usize,
        deadline: Option<Instant>,
        no_wait: bool,
    ) -> Result<Vec<(u32, u64)>, Errno> {
        let first = self.harvest(max, true);
        if !first.is_empty() || no_wait {
            return Ok(first);
        }
        let mut files = Vec::new();
        self.wait_files(&mut files, 1);
        let mut queues: Vec<(&WaitQueue, u32)> = vec![(&self.queue, u32::MAX)];
        let mut host: Vec<(RawFd, i16)> = Vec::new();
        for (f, mask) in &files {
            if let Some(q) = f.ops().wait_queue() {
                if !queues.iter().any(|(o, _)| std::ptr::eq(*o, q)) {
                    queues.push((q, u32::MAX));
                }
            }
            // Nested epolls were recursed into: their tickers are not needed.
            if as_epoll(f).is_some() {
                continue;
            }
            if let Some(fd) = f.ops().host_fd() {
                host.push((fd.as_raw_fd(), *mask as i16));
            }
        }
        let r = waiter::block(w, &queues, &host, deadline, || {
            let r = self.harvest(max, true);
            if r.is_empty() {
                Err(Errno::EAGAIN)
            } else {
                Ok(r)
            }
        });
        match r {
            Err(Errno::ETIMEDOUT) => Ok(Vec::new()),
            r => r,
        }
    }
}

/// Whether `f` may be added to an epoll (Linux's file_can_poll).
pub fn can_poll(f: &OpenFile) -> bool {
    as_epoll(f).is_some() || pollable(f)
}

/// Whether Linux's file_can_poll holds: regular files and directories (and
/// files with nothing to wake a waiter) cannot be watched.
fn pollable(f: &OpenFile) -> bool {
    if f.is_dir() {
        return false;
    }
    if let Ok(st) = f.stat() {
        if st.mode & libc::S_IFMT == libc::S_IFREG && f.ops().wait_queue().is_none() {
            return false;
        }
    }
    f.ops().wait_queue().is_some() || f.ops().host_fd().is_some()
}

impl FileOps for EpollFile {
    fn read(&self, _st: &FileState, _buf: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }
    fn write(&self, _st: &FileState, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.0.stat)
    }
    fn readiness(&self, mask: u32) -> u32 {
        if self.0.harvest(1, false).is_empty() {
            if let Some(Some(fd)) = self.0.tick.get() {
                let mut v = [0u8; 8];
                // SAFETY: reads 8 bytes into a valid buffer from our nonblocking timerfd.
                unsafe { libc::read(fd.as_raw_fd(), v.as_mut_ptr().cast(), 8) };
            }
            0
        } else {
            (EVENT_IN | libc::POLLRDNORM as u32) & mask
        }
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.0.queue)
    }
    fn host_fd(&self) -> Option<BorrowedFd<'_>> {
        self.0
            .tick
            .get_or_init(host_ticker)
            .as_ref()
            .map(|f| f.as_fd())
    }
}

/// A nonblocking host timerfd expiring every 10 ms.
fn host_ticker() -> Option<OwnedFd> {
    // SAFETY: plain syscalls on a fresh fd we own; results are checked.
    unsafe {
        let fd = libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
        );
        if fd < 0 {
            return None;
        }
        let owned = OwnedFd::from_raw_fd(fd);
        let period = libc::timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        };
        let its = libc::itimerspec {
            it_interval: period,
            it_value: period,
        };
        if libc::timerfd_settime(fd, 0, &its, std::ptr::null_mut()) < 0 {
            return None;
        }
        Some(owned)
    }
}
