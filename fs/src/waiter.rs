//! Interruptible blocking: a [`Waiter`] per task and [`WaitQueue`]s on the objects
//! tasks wait for (pipes, futexes, children, timers).
//!
//! A blocking call registers the task's waiter on the queues it cares about,
//! retries its operation, and sleeps in between; [`block`] is that loop, written
//! once for every blocking syscall. A waiter sleeps in `poll(2)` on its own eventfd
//! (plus any host fds the operation depends on, such as an inherited stdin), so
//! notification, interruption by a signal and host I/O readiness all wake it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use abi::errno::ERESTARTSYS;
use abi::Errno;

use crate::fasync::Fown;

/// Readiness events, as poll(2) numbers them.
pub const EVENT_IN: u32 = libc::POLLIN as u32;
pub const EVENT_PRI: u32 = libc::POLLPRI as u32;
pub const EVENT_OUT: u32 = libc::POLLOUT as u32;
pub const EVENT_ERR: u32 = libc::POLLERR as u32;
pub const EVENT_HUP: u32 = libc::POLLHUP as u32;
pub const EVENT_NVAL: u32 = libc::POLLNVAL as u32;
pub const EVENT_RDHUP: u32 = libc::POLLRDHUP as u32;
/// Every event.
pub const EVENT_ALL: u32 = u32::MAX;

/// A task's wake-up channel.
pub struct Waiter {
    efd: OwnedFd,
    /// A deliverable signal (or exit/stop) is pending: blocking calls return
    /// ERESTARTSYS instead of sleeping.
    interrupted: AtomicBool,
    id: u64,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Waiter {
    pub fn new() -> std::io::Result<Arc<Waiter>> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh fd we own.
        let efd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Arc::new(Waiter {
            efd,
            interrupted: AtomicBool::new(false),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }))
    }

    /// Wakes the waiter if it sleeps (or makes its next sleep return at once).
    pub fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd; EAGAIN (counter
        // saturated) still leaves it readable, which is all we need.
        unsafe {
            libc::write(
                self.efd.as_raw_fd(),
                &one as *const u64 as *const libc::c_void,
                8,
            )
        };
    }

    /// Marks the owner interrupted and wakes it.
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        self.notify();
    }

    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Clears the interrupted mark (the kernel does this once it has no more
    /// deliverable signals for the task).
    pub fn clear_interrupt(&self) {
        self.interrupted.store(false, Ordering::SeqCst);
    }

    fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from our nonblocking eventfd.
        unsafe {
            libc::read(
                self.efd.as_raw_fd(),
                &mut v as *mut u64 as *mut libc::c_void,
                8,
            )
        };
    }

    /// Sleeps until notified, a watched host fd is ready, interrupted
    /// (Err(ERESTARTSYS)) or `deadline` passes (Err(ETIMEDOUT)). Wake-ups may be
    /// spurious: callers re-check their condition.
    pub fn wait(&self, deadline: Option<Instant>, host: &[(RawFd, i16)]) -> Result<(), Errno> {
        if self.is_interrupted() {
            return Err(Errno(ERESTARTSYS));
        }
        let mut fds = Vec::with_capacity(1 + host.len());
        fds.push(libc::pollfd {
            fd: self.efd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        fds.extend(host.iter().map(|&(fd, events)| libc::pollfd {
            fd,
            events,
            revents: 0,
        }));
        let timeout = match deadline {
            None => -1,
            Some(d) => {
                let now = Instant::now();
                if d <= now {
                    return Err(Errno::ETIMEDOUT);
                }
                // Round up so we never wake early and spin.
                let ms = (d - now).as_micros().div_ceil(1000);
                ms.min(i32::MAX as u128) as i32
            }
        };
        // SAFETY: fds is a valid array of pollfd of the given length.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if fds[0].revents != 0 {
            self.drain();
        }
        if self.is_interrupted() {
            return Err(Errno(ERESTARTSYS));
        }
        if r == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Errno::ETIMEDOUT);
        }
        Ok(())
    }
}

/// Objects' lists of interested waiters.
#[derive(Default)]
pub struct WaitQueue {
    entries: Mutex<Vec<(u64, Weak<Waiter>, u32)>>,
    /// Bumped by every notify: edge-triggered epoll watches report a ready file
    /// again only after its queue was notified since the last report.
    generation: AtomicU64,
    /// Per class of events (input, output, the rest): bumped by notifies that
    /// carry events of the class, so that an EPOLLIN edge watch is not
    /// re-armed by an output event (Linux's ep_poll_callback filters by key).
    class_gen: [AtomicU64; 3],
    /// O_ASYNC descriptions of the object (see [`crate::fasync`]).
    fasync: Mutex<Vec<Weak<Fown>>>,
}

/// Removes its waiter from the queue when dropped.
pub struct Registration<'a> {
    queue: &'a WaitQueue,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.queue
            .entries
            .lock()
            .unwrap()
            .retain(|(id, _, _)| *id != self.id);
    }
}

impl WaitQueue {
    /// Registers `w` for `mask` events until the registration is dropped.
    pub fn register<'a>(&'a self, w: &Arc<Waiter>, mask: u32) -> Registration<'a> {
        self.entries
            .lock()
            .unwrap()
            .push((w.id, Arc::downgrade(w), mask));
        Registration {
            queue: self,
            id: w.id,
        }
    }

    /// Wakes every waiter interested in any of `events`, and signals the
    /// O_ASYNC descriptions that care.
    pub fn notify(&self, events: u32) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        for (i, c) in CLASSES.iter().enumerate() {
            if events & c != 0 {
                self.class_gen[i].fetch_add(1, Ordering::SeqCst);
            }
        }
        for (_, w, mask) in self.entries.lock().unwrap().iter() {
            if mask & events != 0 {
                if let Some(w) = w.upgrade() {
                    w.notify();
                }
            }
        }
        let targets: Vec<Arc<Fown>> = {
            let mut f = self.fasync.lock().unwrap_or_else(|e| e.into_inner());
            if f.is_empty() {
                return;
            }
            f.retain(|x| x.strong_count() > 0);
            f.iter().filter_map(|x| x.upgrade()).collect()
        };
        // Signals are sent outside the queue's lock.
        for t in targets {
            t.notify(events);
        }
    }

    /// Adds an O_ASYNC description (once).
    pub(crate) fn add_fasync(&self, f: &Arc<Fown>) {
        let mut v = self.fasync.lock().unwrap_or_else(|e| e.into_inner());
        let w = Arc::downgrade(f);
        if !v.iter().any(|x| x.ptr_eq(&w)) {
            v.push(w);
        }
    }

    pub(crate) fn remove_fasync(&self, f: &Arc<Fown>) {
        let w = Arc::downgrade(f);
        self.fasync
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|x| !x.ptr_eq(&w) && x.strong_count() > 0);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.lock().unwrap().is_empty()
    }

    /// How many times the queue was notified (see `generation`).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// A count that changes whenever the queue is notified with events of a
    /// class in `mask` (input, output, errors and the rest).
    pub fn generation_for(&self, mask: u32) -> u64 {
        CLASSES
            .iter()
            .enumerate()
            .filter(|(_, c)| mask & **c != 0)
            .map(|(i, _)| self.class_gen[i].load(Ordering::SeqCst))
            .fold(0u64, u64::wrapping_add)
    }
}

/// The event classes of [`WaitQueue::generation_for`]: input, output, and
/// everything else (errors, hang-ups, priority data).
const CLASSES: [u32; 3] = [
    EVENT_IN | libc::POLLRDNORM as u32 | libc::POLLRDBAND as u32 | EVENT_RDHUP,
    EVENT_OUT | libc::POLLWRNORM as u32 | libc::POLLWRBAND as u32,
    !(EVENT_IN
        | libc::POLLRDNORM as u32
        | libc::POLLRDBAND as u32
        | EVENT_RDHUP
        | EVENT_OUT
        | libc::POLLWRNORM as u32
        | libc::POLLWRBAND as u32),
];

/// Runs `op` until it returns anything but EAGAIN, sleeping on `queues` (and the
/// host fds in `host`) in between. Returns ERESTARTSYS when interrupted and
/// ETIMEDOUT at `deadline`: the one "retry until ready or interrupted" loop of
/// every blocking call.
pub fn block<T>(
    w: &Arc<Waiter>,
    queues: &[(&WaitQueue, u32)],
    host: &[(RawFd, i16)],
    deadline: Option<Instant>,
    mut op: impl FnMut() -> Result<T, Errno>,
) -> Result<T, Errno> {
    match op() {
        Err(Errno::EAGAIN) => {}
        r => return r,
    }
    let _regs: Vec<Registration<'_>> = queues.iter().map(|(q, m)| q.register(w, *m)).collect();
    loop {
        match op() {
            Err(Errno::EAGAIN) => {}
            r => return r,
        }
        w.wait(deadline, host)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn notify_wakes_and_interrupt_aborts() {
        let w = Waiter::new().unwrap();
        let q = Arc::new(WaitQueue::default());
        let flag = Arc::new(AtomicBool::new(false));
        let (q2, f2) = (q.clone(), flag.clone());
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            f2.store(true, Ordering::SeqCst);
            q2.notify(EVENT_IN);
        });
        let r = block(&w, &[(&q, EVENT_IN)], &[], None, || {
            if flag.load(Ordering::SeqCst) {
                Ok(7)
            } else {
                Err(Errno::EAGAIN)
            }
        });
        assert_eq!(r, Ok(7));
        t.join().unwrap();
        assert!(q.is_empty(), "registration dropped");

        let deadline = Instant::now() + Duration::from_millis(10);
        let r: Result<(), Errno> = block(&w, &[(&q, EVENT_IN)], &[], Some(deadline), || {
            Err(Errno::EAGAIN)
        });
        assert_eq!(r, Err(Errno::ETIMEDOUT));
        assert!(Instant::now() >= deadline);

        w.interrupt();
        let r: Result<(), Errno> = block(&w, &[(&q, EVENT_IN)], &[], None, || Err(Errno::EAGAIN));
        assert_eq!(r, Err(Errno(ERESTARTSYS)));
        w.clear_interrupt();
    }
}
