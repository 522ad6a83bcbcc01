//! Anonymous-inode files (Linux's anon_inodefs): eventfd, epoll, inotify, and
//! the helpers the sentry's timerfd and signalfd share.

pub mod epoll;
pub mod eventfd;
pub mod inotify;
pub mod timerfd;
pub mod unix;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use abi::linux::{Stat, Timespec};

static NEXT_INO: AtomicU64 = AtomicU64::new(1);

/// What fstat reports for an anonymous-inode file: mode 0600 with no file type
/// bits, on the anon_inodefs device (0:15 on a typical Linux).
pub fn anon_stat(uid: u32, gid: u32) -> Stat {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let now = Timespec {
        sec: d.as_secs() as i64,
        nsec: d.subsec_nanos() as i64,
    };
    Stat {
        dev: abi::linux::makedev(0, 15),
        ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
        nlink: 1,
        mode: 0o600,
        uid,
        gid,
        blksize: 4096,
        atime: now,
        mtime: now,
        ctime: now,
        ..Default::default()
    }
}

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use crate::file::{FileOps, OpenFile};

type Registry = HashMap<usize, Weak<dyn Any + Send + Sync>>;

fn registry() -> MutexGuard<'static, Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn ops_addr(ops: &dyn FileOps) -> usize {
    ops as *const dyn FileOps as *const () as usize
}

/// Makes an anonymous file of a kind the syscalls must recognise: `obj` is
/// what [`lookup`] returns for the file. `ops` owns a strong reference to `obj`
/// and must call [`unregister`] with its own address when dropped.
pub fn new_registered<O: FileOps + 'static, T: Any + Send + Sync>(
    ops: Box<O>,
    obj: &Arc<T>,
    flags: i32,
) -> Arc<OpenFile> {
    let addr = &*ops as *const O as usize;
    let w: Weak<dyn Any + Send + Sync> = Arc::downgrade(obj) as Weak<dyn Any + Send + Sync>;
    registry().insert(addr, w);
    OpenFile::new(ops, flags, None)
}

/// Forgets the file ops at `addr` (from their Drop).
pub fn unregister(addr: usize) {
    registry().remove(&addr);
}

/// The object of type `T` behind an anonymous file made by [`new_registered`].
pub fn lookup<T: Any + Send + Sync>(f: &OpenFile) -> Option<Arc<T>> {
    let w = registry().get(&ops_addr(f.ops()))?.upgrade()?;
    w.downcast::<T>().ok()
}

#[cfg(test)]
mod tests {
    use super::epoll::{self, Epoll};
    use super::eventfd::EventFd;
    use super::timerfd::TimerFd;
    use crate::waiter::Waiter;
    use abi::Errno;
    use std::time::{Duration, Instant};

    #[test]
    fn eventfd_counter() {
        let f = EventFd::new_file(2, libc::O_NONBLOCK, 0, 0);
        let mut b = [0u8; 8];
        assert_eq!(f.read(&mut b[..4]), Err(Errno::EINVAL));
        assert_eq!(f.read(&mut b), Ok(8));
        assert_eq!(u64::from_ne_bytes(b), 2);
        assert_eq!(f.read(&mut b), Err(Errno::EAGAIN));
        assert_eq!(f.write(&(u64::MAX - 1).to_ne_bytes()), Ok(8));
        assert_eq!(f.write(&1u64.to_ne_bytes()), Err(Errno::EAGAIN));
        assert_eq!(f.write(&u64::MAX.to_ne_bytes()), Err(Errno::EINVAL));
    }

    #[test]
    fn epoll_level_oneshot_and_weak() {
        let ep_file = Epoll::new_file(0, 0);
        let ep = epoll::as_epoll(&ep_file).unwrap();
        let e = EventFd::new_file(0, 0, 0, 0);
        ep.ctl(epoll::EPOLL_CTL_ADD, 3, &e, epoll::EPOLLIN, 7)
            .unwrap();
        assert_eq!(
            ep.ctl(epoll::EPOLL_CTL_ADD, 3, &e, epoll::EPOLLIN, 7),
            Err(Errno::EEXIST)
        );
        let w = Waiter::new().unwrap();
        let soon = Some(Instant::now() + Duration::from_millis(10));
        assert_eq!(ep.wait(&w, 4, soon, false), Ok(vec![]));
        e.write(&1u64.to_ne_bytes()).unwrap();
        assert_eq!(ep.wait(&w, 4, None, false), Ok(vec![(epoll::EPOLLIN, 7)]));
        ep.ctl(
            epoll::EPOLL_CTL_MOD,
            3,
            &e,
            epoll::EPOLLIN | epoll::EPOLLONESHOT,
            8,
        )
        .unwrap();
        assert_eq!(ep.wait(&w, 4, None, true), Ok(vec![(epoll::EPOLLIN, 8)]));
        assert_eq!(ep.wait(&w, 4, None, true), Ok(vec![]));
        // The interest list does not keep files alive.
        drop(e);
        assert_eq!(ep.wait(&w, 4, None, true), Ok(vec![]));
        assert_eq!(
            ep.ctl(epoll::EPOLL_CTL_ADD, 4, &ep_file, epoll::EPOLLIN, 0),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn timerfd_counts_expirations() {
        let f = TimerFd::new_file(libc::CLOCK_MONOTONIC, 0, 0, 0);
        let t = TimerFd::of(&f).unwrap();
        t.set(5_000_000, 5_000_000, false);
        let w = Waiter::new().unwrap();
        let mut b = [0u8; 8];
        let n = f.block(&w, crate::waiter::EVENT_IN, || f.read(&mut b));
        assert_eq!(n, Ok(8));
        assert!(u64::from_ne_bytes(b) >= 1);
        t.set(0, 0, false);
        assert_eq!(t.get(), (0, 0));
    }
}
