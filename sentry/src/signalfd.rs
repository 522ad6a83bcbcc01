//! signalfd(2): a file whose reads dequeue pending signals in its mask, as
//! `struct signalfd_siginfo` records.
//!
//! The file reads the queues of the task that created it (and its thread
//! group); Linux reads the reading task's. Waiters sleep on the thread group's
//! `signal_wait` queue, notified whenever a signal is queued there.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use abi::linux::Stat;
use abi::Errno;
use fs::file::FileState;
use fs::waiter::EVENT_IN;
use fs::{FileOps, OpenFile};

use crate::signal::{SigInfo, SI_KERNEL, SI_TIMER};
use crate::task::TaskShared;

pub const SFD_CLOEXEC: i32 = libc::O_CLOEXEC;
pub const SFD_NONBLOCK: i32 = libc::O_NONBLOCK;
/// Size of `struct signalfd_siginfo`.
pub const SIGINFO_SIZE: usize = 128;

const READABLE: u32 = EVENT_IN | libc::POLLRDNORM as u32;
const SI_SIGIO: i32 = -5;
const UNBLOCKABLE: u64 = 1 << (libc::SIGKILL - 1) | 1 << (libc::SIGSTOP - 1);

pub struct SignalFd {
    mask: AtomicU64,
    task: Weak<TaskShared>,
    /// The creator's thread group, whose `signal_wait` wakes this file's waiters.
    tg: Arc<crate::thread_group::ThreadGroup>,
    stat: Stat,
}

struct SignalFdFile(Arc<SignalFd>);

impl Drop for SignalFdFile {
    fn drop(&mut self) {
        fs::anon::unregister(self as *const SignalFdFile as usize);
    }
}

impl SignalFd {
    /// signalfd4 with fd -1: a new file for `task`'s signals in `mask`.
    pub fn new_file(
        task: &Arc<TaskShared>,
        mask: u64,
        flags: i32,
        uid: u32,
        gid: u32,
    ) -> Arc<OpenFile> {
        let s = Arc::new(SignalFd {
            mask: AtomicU64::new(mask & !UNBLOCKABLE),
            task: Arc::downgrade(task),
            tg: task.tg.clone(),
            stat: fs::anon::anon_stat(uid, gid),
        });
        fs::anon::new_registered(
            Box::new(SignalFdFile(s.clone())),
            &s,
            libc::O_RDWR | (flags & libc::O_NONBLOCK),
        )
    }

    /// The signalfd behind `f`.
    pub fn of(f: &OpenFile) -> Option<Arc<SignalFd>> {
        fs::anon::lookup::<SignalFd>(f)
    }

    /// signalfd on an existing signalfd: replaces the mask.
    pub fn set_mask(&self, mask: u64) {
        self.mask.store(mask & !UNBLOCKABLE, Ordering::SeqCst);
    }

    fn pending(&self) -> u64 {
        let Some(t) = self.task.upgrade() else {
            return 0;
        };
        let own = t.sig.lock().unwrap().pending.set();
        let group = t.tg.lock().pending.set();
        (own | group) & self.mask.load(Ordering::SeqCst)
    }

    fn take(&self) -> Option<SigInfo> {
        let t = self.task.upgrade()?;
        let mask = self.mask.load(Ordering::SeqCst);
        let own = t.sig.lock().unwrap().pending.take(!mask);
        own.or_else(|| t.tg.lock().pending.take(!mask))
    }
}

fn le_i32(b: &[u8], off: usize) -> i32 {
    i32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}
fn le_u64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// Linux's signalfd_copyinfo: a siginfo as a `struct signalfd_siginfo`.
pub fn to_signalfd_siginfo(info: &SigInfo) -> [u8; SIGINFO_SIZE] {
    let b = &info.bytes;
    let mut o = [0u8; SIGINFO_SIZE];
    let (signo, code) = (info.signo(), info.code());
    let put32 = |o: &mut [u8; SIGINFO_SIZE], off: usize, v: i32| {
        o[off..off + 4].copy_from_slice(&v.to_le_bytes())
    };
    let put64 = |o: &mut [u8; SIGINFO_SIZE], off: usize, v: u64| {
        o[off..off + 8].copy_from_slice(&v.to_le_bytes())
    };
    put32(&mut o, 0, signo);
    put32(&mut o, 4, le_i32(b, 4));
    put32(&mut o, 8, code);
    let kernel_code = code > 0 && code < SI_KERNEL;
    if kernel_code {
        match signo {
            libc::SIGCHLD => {
                put32(&mut o, 12, le_i32(b, 16));
                put32(&mut o, 16, le_i32(b, 20));
                put32(&mut o, 40, le_i32(b, 24));
                put64(&mut o, 56, le_u64(b, 32));
                put64(&mut o, 64, le_u64(b, 40));
            }
            libc::SIGILL | libc::SIGFPE | libc::SIGSEGV | libc::SIGBUS | libc::SIGTRAP => {
                put64(&mut o, 72, le_u64(b, 16));
            }
            libc::SIGPOLL => {
                put32(&mut o, 28, le_u64(b, 16) as i32);
                put32(&mut o, 20, le_i32(b, 24));
            }
            libc::SIGSYS => {
                put64(&mut o, 72, le_u64(b, 16));
            }
            _ => {
                put32(&mut o, 12, le_i32(b, 16));
                put32(&mut o, 16, le_i32(b, 20));
            }
        }
    } else if code == SI_TIMER {
        put32(&mut o, 24, le_i32(b, 16));
        put32(&mut o, 32, le_i32(b, 20));
        put64(&mut o, 48, le_u64(b, 24));
        put32(&mut o, 44, le_i32(b, 24));
    } else if code == SI_SIGIO {
        put32(&mut o, 28, le_u64(b, 16) as i32);
        put32(&mut o, 20, le_i32(b, 24));
    } else {
        // SIL_KILL and SIL_RT: pid and uid; RT also the value.
        put32(&mut o, 12, le_i32(b, 16));
        put32(&mut o, 16, le_i32(b, 20));
        if code < 0 {
            put64(&mut o, 48, le_u64(b, 24));
            put32(&mut o, 44, le_i32(b, 24));
        }
    }
    o
}

impl FileOps for SignalFdFile {
    fn read(&self, _st: &FileState, buf: &mut [u8]) -> Result<usize, Errno> {
        if buf.len() < SIGINFO_SIZE {
            return Err(Errno::EINVAL);
        }
        let mut n = 0;
        while buf.len() - n >= SIGINFO_SIZE {
            let Some(info) = self.0.take() else { break };
            buf[n..n + SIGINFO_SIZE].copy_from_slice(&to_signalfd_siginfo(&info));
            n += SIGINFO_SIZE;
        }
        if n == 0 {
            return Err(Errno::EAGAIN);
        }
        Ok(n)
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
        if self.0.pending() != 0 {
            READABLE & mask
        } else {
            0
        }
    }
    fn wait_queue(&self) -> Option<&fs::waiter::WaitQueue> {
        Some(&self.0.tg.signal_wait)
    }
}
