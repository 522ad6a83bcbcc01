//! eventfd(2): a 64-bit counter. Reads take the counter (or 1 in semaphore
//! mode), writes add to it; reads block at 0, writes block when the sum would
//! pass 0xffff_ffff_ffff_fffe.

use std::sync::{Arc, Mutex};

use abi::linux::Stat;
use abi::Errno;

use crate::file::{FileOps, FileState, OpenFile};
use crate::waiter::{WaitQueue, EVENT_IN, EVENT_OUT};

pub const EFD_SEMAPHORE: i32 = 1;
pub const EFD_CLOEXEC: i32 = libc::O_CLOEXEC;
pub const EFD_NONBLOCK: i32 = libc::O_NONBLOCK;

const READABLE: u32 = EVENT_IN | libc::POLLRDNORM as u32;
const WRITABLE: u32 = EVENT_OUT | libc::POLLWRNORM as u32;
const MAX: u64 = u64::MAX - 1;

pub struct EventFd {
    count: Mutex<u64>,
    semaphore: bool,
    queue: WaitQueue,
    stat: Stat,
}

impl EventFd {
    /// eventfd2(initval, flags) minus the flag checks and the fd install.
    pub fn new_file(init: u32, flags: i32, uid: u32, gid: u32) -> Arc<OpenFile> {
        let efd = EventFd {
            count: Mutex::new(init as u64),
            semaphore: flags & EFD_SEMAPHORE != 0,
            queue: WaitQueue::default(),
            stat: super::anon_stat(uid, gid),
        };
        OpenFile::new(
            Box::new(efd),
            libc::O_RDWR | (flags & libc::O_NONBLOCK),
            None,
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        self.count.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FileOps for EventFd {
    fn read(&self, _st: &FileState, buf: &mut [u8]) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let v = {
            let mut c = self.lock();
            if *c == 0 {
                return Err(Errno::EAGAIN);
            }
            let v = if self.semaphore { 1 } else { *c };
            *c -= v;
            v
        };
        buf[..8].copy_from_slice(&v.to_ne_bytes());
        self.queue.notify(WRITABLE);
        Ok(8)
    }
    fn write(&self, _st: &FileState, buf: &[u8]) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let v = u64::from_ne_bytes(buf[..8].try_into().unwrap());
        if v == u64::MAX {
            return Err(Errno::EINVAL);
        }
        {
            let mut c = self.lock();
            if MAX - *c < v {
                return Err(Errno::EAGAIN);
            }
            *c += v;
        }
        if v != 0 {
            self.queue.notify(READABLE);
        }
        Ok(8)
    }
    fn seekable(&self) -> bool {
        false
    }
    /// Linux's noop_llseek: the position stays 0.
    fn lseek(&self, _st: &FileState, _off: i64, _whence: i32) -> Result<u64, Errno> {
        Ok(0)
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }
    fn readiness(&self, mask: u32) -> u32 {
        let c = *self.lock();
        let mut r = 0;
        if c > 0 {
            r |= READABLE;
        }
        if c < MAX {
            r |= WRITABLE;
        }
        r & mask
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }
}
