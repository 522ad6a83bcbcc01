//! pidfd_open(2): a file referring to a process. It polls readable (EPOLLIN)
//! once the process has exited; pidfd_send_signal(2) signals it and
//! waitid(P_PIDFD) waits for it. Reads are EINVAL, as in Linux.

use std::sync::Arc;

use abi::linux::Stat;
use abi::Errno;
use fs::file::FileState;
use fs::waiter::{WaitQueue, EVENT_IN};
use fs::{FileOps, OpenFile};

use crate::thread_group::ThreadGroup;

/// PIDFD_NONBLOCK (= O_NONBLOCK).
pub const PIDFD_NONBLOCK: i32 = libc::O_NONBLOCK;

const READABLE: u32 = EVENT_IN | libc::POLLRDNORM as u32;

pub struct PidFd {
    /// The process (kept as a zombie record after it exits, as Linux's struct pid).
    pub tg: Arc<ThreadGroup>,
    stat: Stat,
}

struct PidFdFile(Arc<PidFd>);

impl Drop for PidFdFile {
    fn drop(&mut self) {
        fs::anon::unregister(self as *const PidFdFile as usize);
    }
}

impl PidFd {
    pub fn new_file(tg: Arc<ThreadGroup>, flags: i32, uid: u32, gid: u32) -> Arc<OpenFile> {
        let p = Arc::new(PidFd {
            tg,
            stat: fs::anon::anon_stat(uid, gid),
        });
        fs::anon::new_registered(
            Box::new(PidFdFile(p.clone())),
            &p,
            libc::O_RDWR | (flags & libc::O_NONBLOCK),
        )
    }

    /// The pidfd behind `f`.
    pub fn of(f: &OpenFile) -> Option<Arc<PidFd>> {
        fs::anon::lookup::<PidFd>(f)
    }

    /// Whether the process has exited (zombie or reaped).
    pub fn exited(&self) -> bool {
        let st = self.tg.lock();
        st.zombie.is_some() || st.reaped
    }
}

impl FileOps for PidFdFile {
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
        if self.0.exited() {
            READABLE & mask
        } else {
            0
        }
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.0.tg.exit_wait)
    }
}
