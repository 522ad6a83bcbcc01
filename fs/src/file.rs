//! Open file descriptions: what an fd refers to. Shared (Arc) between dup'd fds
//! and across fork; holds the offset and the status flags.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use abi::linux::Stat;
use abi::Errno;

use crate::anon::inotify;
use crate::fasync::{Fown, SigioSender};
use crate::inode::StatFs;
use crate::lock::{self, FlockOp, LockType, OwnerId, PosixLock};
use crate::pagestore::PageStore;
use crate::pipe::Pipe;
use crate::vfs::Location;
use crate::waiter::{self, WaitQueue, Waiter, EVENT_IN, EVENT_OUT};
use crate::{ReadAt, UserIo};

/// One directory entry as a file system reports it. `next_off` is the directory
/// position just after this entry (what `d_off` carries).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: u64,
    pub next_off: u64,
    pub dtype: u8,
    pub name: Vec<u8>,
}

/// The mutable state of an open file description that implementations may use.
pub struct FileState {
    offset: Mutex<u64>,
    flags: AtomicI32,
}

impl FileState {
    /// The sentry-side file offset (file systems whose offset lives in a host fd
    /// do not use it).
    pub fn offset(&self) -> MutexGuard<'_, u64> {
        self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Status flags (O_APPEND, O_NONBLOCK, ...) and the access mode.
    pub fn flags(&self) -> i32 {
        self.flags.load(Ordering::Relaxed)
    }
    pub fn nonblocking(&self) -> bool {
        self.flags() & libc::O_NONBLOCK != 0
    }
    pub fn append(&self) -> bool {
        self.flags() & libc::O_APPEND != 0
    }
}

/// Linux's lseek on a file whose offset the sentry keeps. `size` gives SEEK_END's base;
/// None means SEEK_END is unsupported (EINVAL), as for directories.
pub fn generic_lseek(
    st: &FileState,
    off: i64,
    whence: i32,
    size: Option<u64>,
) -> Result<u64, Errno> {
    let mut cur = st.offset();
    let base: i64 = match whence {
        libc::SEEK_SET => 0,
        libc::SEEK_CUR => *cur as i64,
        libc::SEEK_END => size.ok_or(Errno::EINVAL)? as i64,
        libc::SEEK_DATA | libc::SEEK_HOLE => {
            let size = size.ok_or(Errno::EINVAL)? as i64;
            if off < 0 || off >= size {
                return Err(Errno::ENXIO);
            }
            let r = if whence == libc::SEEK_DATA { off } else { size };
            *cur = r as u64;
            return Ok(r as u64);
        }
        _ => return Err(Errno::EINVAL),
    };
    let new = base.checked_add(off).ok_or(Errno::EINVAL)?;
    if new < 0 {
        return Err(Errno::EINVAL);
    }
    *cur = new as u64;
    Ok(new as u64)
}

/// What poll reports for files that never block (Linux's DEFAULT_POLLMASK):
/// regular files and directories are always readable and writable.
pub const DEFAULT_POLLMASK: u32 =
    EVENT_IN | EVENT_OUT | libc::POLLRDNORM as u32 | libc::POLLWRNORM as u32;

/// What a file system implements for its open files. Defaults describe a file that
/// supports nothing; the offset handling defaults to the sentry-side offset with
/// `pread`/`pwrite` doing the I/O.
pub trait FileOps: Send + Sync {
    /// Reads at the current offset (or from the stream) and advances it.
    fn read(&self, st: &FileState, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut off = st.offset();
        let n = self.pread(buf, *off)?;
        *off += n as u64;
        Ok(n)
    }
    /// Writes at the current offset (at the end with O_APPEND) and advances it.
    fn write(&self, st: &FileState, buf: &[u8]) -> Result<usize, Errno> {
        let mut off = st.offset();
        if st.append() {
            *off = self.stat()?.size as u64;
        }
        let n = self.pwrite(buf, *off)?;
        *off += n as u64;
        Ok(n)
    }
    /// Positional read; ESPIPE for streams.
    fn pread(&self, _buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }
    fn pwrite(&self, _buf: &[u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }
    /// Whether pread/pwrite/lseek make sense (false for pipes, ttys, sockets).
    fn seekable(&self) -> bool {
        true
    }
    fn lseek(&self, st: &FileState, off: i64, whence: i32) -> Result<u64, Errno> {
        if !self.seekable() {
            return Err(Errno::ESPIPE);
        }
        let size = if self.is_dir() {
            None
        } else {
            Some(self.stat()?.size as u64)
        };
        generic_lseek(st, off, whence, size)
    }
    fn stat(&self) -> Result<Stat, Errno>;
    fn statfs(&self) -> Result<StatFs, Errno> {
        Err(Errno::ENOSYS)
    }
    fn is_dir(&self) -> bool {
        false
    }
    /// Directory entries from position `off`, roughly `max_bytes` worth (more or
    /// fewer is fine: the caller packs what fits). Empty at the end.
    fn readdir(&self, _off: u64, _max_bytes: usize) -> Result<Vec<DirEntry>, Errno> {
        Err(Errno::ENOTDIR)
    }
    fn ioctl(&self, _st: &FileState, _io: &dyn UserIo, _cmd: u32, _arg: u64) -> Result<u64, Errno> {
        Err(Errno::ENOTTY)
    }
    /// Called after F_SETFL changed the status flags to `flags`.
    fn flags_changed(&self, _flags: i32) -> Result<(), Errno> {
        Ok(())
    }
    /// The host fd behind this file, if any (for mmap and the like). A blocked
    /// caller also polls it, so a file whose readiness is the host fd's needs no
    /// wait queue.
    fn host_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    /// The poll(2) events among `mask` that are ready now (POLLERR and POLLHUP are
    /// reported only when asked for: callers add them to `mask`). A file that can
    /// make read or write return EAGAIN must also provide a wait queue or a host fd
    /// that signals the change.
    fn readiness(&self, mask: u32) -> u32 {
        DEFAULT_POLLMASK & mask
    }
    /// Where waiters for this file's readiness register; notified with the
    /// events that became ready.
    fn wait_queue(&self) -> Option<&WaitQueue> {
        None
    }
    /// Whether O_ASYNC works (Linux's files with a `fasync` method: pipes,
    /// sockets, ttys): the wait queue's notifications then send SIGIO to the
    /// description's owner. On others (regular files, eventfd, timerfd,
    /// epoll) F_SETFL leaves O_ASYNC as it is and nothing is ever sent.
    fn supports_fasync(&self) -> bool {
        false
    }
    /// The pipe behind this file, for the pipe fcntls (Linux's get_pipe_info).
    fn pipe(&self) -> Option<&Pipe> {
        None
    }
    /// fsync(2) (`datasync`: fdatasync(2)). Linux gives EINVAL for files whose
    /// file system has no fsync (pipes, sockets, anonymous files, character
    /// devices); seekable files default to success (their data is in memory).
    fn fsync(&self, _datasync: bool) -> Result<(), Errno> {
        if self.seekable() {
            Ok(())
        } else {
            Err(Errno::EINVAL)
        }
    }
    /// fallocate(2) (`mode` already validated) done on a host fd; None when the
    /// file has none and the inode's `allocate` applies.
    fn fallocate(&self, _mode: i32, _off: u64, _len: u64) -> Option<Result<(), Errno>> {
        None
    }
    /// The memory-file pages holding this file's data (tmpfs and memfd files):
    /// shared mappings map them directly; the memfd seals live there.
    fn page_store(&self) -> Option<Arc<PageStore>> {
        None
    }
    /// How long a blocking read waits for data before returning 0 (a terminal
    /// in non-canonical mode with VMIN 0 and VTIME > 0); the blocked read then
    /// ends with ETIMEDOUT, which the read path turns into 0.
    fn read_timeout(&self) -> Option<std::time::Duration> {
        None
    }
    /// The pseudo-terminal behind this file and whether this is its master end.
    fn terminal(&self) -> Option<(&Arc<crate::devpts::Terminal>, bool)> {
        None
    }
    /// The socket behind this file, if it is a socket.
    fn socket(&self) -> Option<&crate::socket::SocketFile> {
        None
    }
}

/// The operations of an existing open file description, for a second
/// description of the same file: /dev/console over the host terminal, and
/// opens of /proc/[pid]/fd/N for files without a path (pipes, host files,
/// anonymous files), which Linux reopens from the file's inode.
pub struct SharedOps(pub Arc<OpenFile>);

impl FileOps for SharedOps {
    fn read(&self, _st: &FileState, buf: &mut [u8]) -> Result<usize, Errno> {
        self.0.ops().read(&self.0.state, buf)
    }
    fn write(&self, _st: &FileState, buf: &[u8]) -> Result<usize, Errno> {
        self.0.ops().write(&self.0.state, buf)
    }
    fn pread(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        self.0.ops().pread(buf, off)
    }
    fn pwrite(&self, buf: &[u8], off: u64) -> Result<usize, Errno> {
        self.0.ops().pwrite(buf, off)
    }
    fn seekable(&self) -> bool {
        self.0.ops().seekable()
    }
    fn lseek(&self, _st: &FileState, off: i64, whence: i32) -> Result<u64, Errno> {
        self.0.ops().lseek(&self.0.state, off, whence)
    }
    fn stat(&self) -> Result<Stat, Errno> {
        self.0.stat()
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        self.0.statfs()
    }
    fn is_dir(&self) -> bool {
        self.0.is_dir()
    }
    fn readdir(&self, off: u64, max_bytes: usize) -> Result<Vec<DirEntry>, Errno> {
        self.0.ops().readdir(off, max_bytes)
    }
    fn ioctl(&self, _st: &FileState, io: &dyn UserIo, cmd: u32, arg: u64) -> Result<u64, Errno> {
        self.0.ops().ioctl(&self.0.state, io, cmd, arg)
    }
    fn host_fd(&self) -> Option<BorrowedFd<'_>> {
        self.0.ops().host_fd()
    }
    fn readiness(&self, mask: u32) -> u32 {
        self.0.readiness(mask)
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        self.0.ops().wait_queue()
    }
    fn pipe(&self) -> Option<&Pipe> {
        self.0.ops().pipe()
    }
    fn terminal(&self) -> Option<(&Arc<crate::devpts::Terminal>, bool)> {
        self.0.ops().terminal()
    }
    fn read_timeout(&self) -> Option<std::time::Duration> {
        self.0.ops().read_timeout()
    }
    fn socket(&self) -> Option<&crate::socket::SocketFile> {
        self.0.ops().socket()
    }
    fn supports_fasync(&self) -> bool {
        self.0.ops().supports_fasync()
    }
    fn fsync(&self, datasync: bool) -> Result<(), Errno> {
        self.0.ops().fsync(datasync)
    }
    fn fallocate(&self, mode: i32, off: u64, len: u64) -> Option<Result<(), Errno>> {
        self.0.ops().fallocate(mode, off, len)
    }
    fn page_store(&self) -> Option<Arc<PageStore>> {
        self.0.ops().page_store()
    }
}

/// A bare file state, for unit tests of file operations.
#[cfg(test)]
pub(crate) fn test_state(flags: i32) -> FileState {
    FileState {
        offset: Mutex::new(0),
        flags: AtomicI32::new(flags),
    }
}

/// Access-mode bits for an O_PATH description (neither read nor write).
const PATH_ONLY: i32 = libc::O_PATH;

/// Flags F_SETFL may change.
const SETFL_MASK: i32 =
    libc::O_APPEND | libc::O_NONBLOCK | libc::O_ASYNC | libc::O_DIRECT | libc::O_NOATIME;

/// A `struct flock` as fcntl's lock commands pass it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flock {
    pub l_type: i16,
    pub l_whence: i16,
    pub l_start: i64,
    pub l_len: i64,
    pub l_pid: i32,
}

impl Flock {
    /// Size of `struct flock` on x86-64.
    pub const SIZE: usize = 32;

    pub fn from_bytes(b: &[u8]) -> Flock {
        let i16_at = |o: usize| i16::from_le_bytes([b[o], b[o + 1]]);
        Flock {
            l_type: i16_at(0),
            l_whence: i16_at(2),
            l_start: abi::linux::le_u64(b, 8) as i64,
            l_len: abi::linux::le_u64(b, 16) as i64,
            l_pid: abi::linux::le_u32(b, 24) as i32,
        }
    }

    pub fn to_bytes(&self) -> [u8; Flock::SIZE] {
        let mut b = [0u8; Flock::SIZE];
        b[0..2].copy_from_slice(&self.l_type.to_le_bytes());
        b[2..4].copy_from_slice(&self.l_whence.to_le_bytes());
        b[8..16].copy_from_slice(&self.l_start.to_le_bytes());
        b[16..24].copy_from_slice(&self.l_len.to_le_bytes());
        b[24..28].copy_from_slice(&self.l_pid.to_le_bytes());
        b
    }
}

/// fcntl's record-lock commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockCmd {
    /// F_GETLK / F_OFD_GETLK.
    Get,
    /// F_SETLK / F_OFD_SETLK.
    Set,
    /// F_SETLKW / F_OFD_SETLKW.
    SetWait,
}

/// An open file description.
pub struct OpenFile {
    ops: Box<dyn FileOps>,
    state: FileState,
    location: Option<Location>,
    /// IN_CLOSE_* when the description goes.
    close_hook: inotify::CloseHook,
    /// Owner id of this description's flock and OFD locks.
    id: OwnerId,
    /// The file's lock-table key, once looked up.
    lock_key: OnceLock<lock::Key>,
    /// flock or OFD locks may be held (released when the description goes).
    has_locks: AtomicBool,
    /// F_SETOWN / F_SETSIG / O_ASYNC state, once used.
    fown: OnceLock<Arc<Fown>>,
}

impl OpenFile {
    /// A new description. `flags` are the open flags; the creation flags
    /// (O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC, O_CLOEXEC) are dropped and O_LARGEFILE
    /// added, so F_GETFL reports what Linux reports.
    pub fn new(ops: Box<dyn FileOps>, flags: i32, location: Option<Location>) -> Arc<OpenFile> {
        let drop = libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_TRUNC | libc::O_CLOEXEC;
        let flags = (flags & !drop) | abi::linux::O_LARGEFILE;
        Arc::new(OpenFile {
            ops,
            state: FileState {
                offset: Mutex::new(0),
                flags: AtomicI32::new(flags),
            },
            location,
            close_hook: Default::default(),
            id: lock::new_owner_id(),
            lock_key: OnceLock::new(),
            has_locks: AtomicBool::new(false),
            fown: OnceLock::new(),
        })
    }

    pub fn ops(&self) -> &dyn FileOps {
        self.ops.as_ref()
    }

    /// Where the file was opened (None for host stdio and anonymous files).
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }

    /// F_GETFL: access mode and status flags.
    pub fn status_flags(&self) -> i32 {
        self.state.flags()
    }

    /// F_SETFL: only O_APPEND, O_NONBLOCK, O_ASYNC, O_DIRECT and O_NOATIME change.
    pub fn set_status_flags(&self, flags: i32) -> Result<(), Errno> {
        let old = self.state.flags();
        let new = (old & !SETFL_MASK) | (flags & SETFL_MASK);
        self.ops.flags_changed(new)?;
        self.state.flags.store(new, Ordering::Relaxed);
        Ok(())
    }

    /// Sets or clears O_NONBLOCK (FIONBIO).
    pub fn set_nonblocking(&self, on: bool) -> Result<(), Errno> {
        let f = self.state.flags();
        self.set_status_flags(if on {
            f | libc::O_NONBLOCK
        } else {
            f & !libc::O_NONBLOCK
        })
    }

    /// F_SETFL with the O_ASYNC bookkeeping: turning O_ASYNC on makes `fd`
    /// the fd SIGIO reports and starts notification through `sender`, for
    /// files that [support it](FileOps::supports_fasync); on others F_SETFL
    /// does not change the flag, as on Linux 6.x.
    pub fn set_status_flags_async(
        &self,
        flags: i32,
        fd: i32,
        sender: Arc<dyn SigioSender>,
    ) -> Result<(), Errno> {
        // Linux (6.x) leaves O_ASYNC alone on files that cannot signal (it
        // still shows when open(2) set it).
        let old = self.state.flags();
        let flags = if self.ops.supports_fasync() {
            flags
        } else {
            (flags & !libc::O_ASYNC) | (old & libc::O_ASYNC)
        };
        let was = old & libc::O_ASYNC != 0;
        self.set_status_flags(flags)?;
        let now = self.state.flags() & libc::O_ASYNC != 0;
        if was == now {
            return Ok(());
        }
        let Some(q) = self.ops.wait_queue().filter(|_| self.ops.supports_fasync()) else {
            return Ok(());
        };
        let fown = self.fown();
        if now {
            fown.enable(fd, sender, self.readable(), self.writable());
            q.add_fasync(fown);
        } else {
            q.remove_fasync(fown);
            fown.disable();
        }
        Ok(())
    }

    /// The description's F_SETOWN / F_SETSIG state.
    pub fn fown(&self) -> &Arc<Fown> {
        self.fown.get_or_init(Default::default)
    }

    /// The file's identity in the lock table: (st_dev, st_ino).
    fn lock_key(&self) -> Result<lock::Key, Errno> {
        if let Some(k) = self.lock_key.get() {
            return Ok(*k);
        }
        let st = self.ops.stat()?;
        let k = (st.dev, st.ino);
        let _ = self.lock_key.set(k);
        Ok(k)
    }

    /// flock(2) with a decoded `op` ([`FlockOp::decode`]); `w` sleeps while
    /// the lock is taken unless `nb` (LOCK_NB). ERESTARTSYS when interrupted.
    pub fn flock(&self, op: FlockOp, nb: bool, w: &Arc<Waiter>) -> Result<(), Errno> {
        if self.is_path_only() {
            return Err(Errno::EBADF);
        }
        let key = self.lock_key()?;
        if op != FlockOp::Unlock {
            self.has_locks.store(true, Ordering::SeqCst);
        }
        lock::flock(key, self.id, op, (!nb).then_some(w))
    }

    /// fcntl's record locks. `ofd`: the F_OFD_* commands (owned by this
    /// description); otherwise POSIX locks owned by `owner` (the caller's fd
    /// table) on behalf of process `pid`. `fl` is updated for F_GETLK.
    pub fn record_lock(
        &self,
        cmd: LockCmd,
        ofd: bool,
        owner: OwnerId,
        pid: i32,
        fl: &mut Flock,
        w: &Arc<Waiter>,
    ) -> Result<(), Errno> {
        if self.is_path_only() {
            return Err(Errno::EBADF);
        }
        if cmd == LockCmd::Get && LockType::from_fcntl(fl.l_type)?.is_none() {
            return Err(Errno::EINVAL);
        }
        let base = match fl.l_whence as i32 {
            libc::SEEK_SET => 0,
            libc::SEEK_CUR => {
                if self.ops.seekable() {
                    self.ops.lseek(&self.state, 0, libc::SEEK_CUR).unwrap_or(0) as i64
                } else {
                    0
                }
            }
            libc::SEEK_END => self.ops.stat()?.size,
            _ => return Err(Errno::EINVAL),
        };
        let (start, end) = lock::flock_range(base, fl.l_start, fl.l_len)?;
        let ty = LockType::from_fcntl(fl.l_type)?;
        if cmd != LockCmd::Get {
            match ty {
                Some(LockType::Read) if !self.readable() => return Err(Errno::EBADF),
                Some(LockType::Write) if !self.writable() => return Err(Errno::EBADF),
                _ => {}
            }
        }
        if ofd && fl.l_pid != 0 {
            return Err(Errno::EINVAL);
        }
        let owner = if ofd { self.id } else { owner };
        let key = self.lock_key()?;
        if cmd == LockCmd::Get {
            let ty = ty.unwrap_or(LockType::Read);
            match lock::posix_test(key, owner, ty, start, end) {
                Some(l) => {
                    let (s, len, pid) = l.report();
                    *fl = Flock {
                        l_type: l.ty.to_fcntl(),
                        l_whence: libc::SEEK_SET as i16,
                        l_start: s,
                        l_len: len,
                        l_pid: pid,
                    };
                }
                None => fl.l_type = libc::F_UNLCK as i16,
            }
            return Ok(());
        }
        if ofd && ty.is_some() {
            self.has_locks.store(true, Ordering::SeqCst);
        }
        let req = PosixLock {
            owner,
            ofd,
            pid,
            ty: ty.unwrap_or(LockType::Read),
            start,
            end,
        };
        let wait = (cmd == LockCmd::SetWait).then_some(w);
        lock::posix_set(key, req, ty, wait)
    }

    /// Drops the POSIX locks `owner` holds on this file (the owner closed an
    /// fd of it).
    pub fn release_posix_locks(&self, owner: OwnerId) {
        if let Ok(key) = self.lock_key() {
            lock::release_posix(key, owner);
        }
    }

    pub fn is_path_only(&self) -> bool {
        self.state.flags() & PATH_ONLY != 0
    }

    pub fn readable(&self) -> bool {
        let f = self.state.flags();
        f & PATH_ONLY == 0 && matches!(f & libc::O_ACCMODE, libc::O_RDONLY | libc::O_RDWR)
    }

    pub fn writable(&self) -> bool {
        let f = self.state.flags();
        f & PATH_ONLY == 0 && matches!(f & libc::O_ACCMODE, libc::O_WRONLY | libc::O_RDWR)
    }

    pub fn is_dir(&self) -> bool {
        self.ops.is_dir()
    }

    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        if !self.readable() {
            return Err(Errno::EBADF);
        }
        if self.ops.is_dir() {
            return Err(Errno::EISDIR);
        }
        let r = self.ops.read(&self.state, buf);
        self.io_event(r, inotify::IN_ACCESS)
    }

    pub fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        let r = self.ops.write(&self.state, buf);
        self.io_event(r, inotify::IN_MODIFY)
    }

    pub fn pread(&self, buf: &mut [u8], off: i64) -> Result<usize, Errno> {
        if off < 0 {
            return Err(Errno::EINVAL);
        }
        if !self.readable() {
            return Err(Errno::EBADF);
        }
        if !self.ops.seekable() {
            return Err(Errno::ESPIPE);
        }
        if self.ops.is_dir() {
            return Err(Errno::EISDIR);
        }
        let r = self.ops.pread(buf, off as u64);
        self.io_event(r, inotify::IN_ACCESS)
    }

    pub fn pwrite(&self, buf: &[u8], off: i64) -> Result<usize, Errno> {
        if off < 0 {
            return Err(Errno::EINVAL);
        }
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        if !self.ops.seekable() {
            return Err(Errno::ESPIPE);
        }
        let r = self.ops.pwrite(buf, off as u64);
        self.io_event(r, inotify::IN_MODIFY)
    }

    /// The poll(2) events among `mask` that are ready now.
    pub fn readiness(&self, mask: u32) -> u32 {
        self.ops.readiness(mask)
    }

    /// Runs `op` (an I/O call on this file) until it stops returning EAGAIN,
    /// sleeping on `w` until one of `events` may have become ready: the one wait
    /// loop of read, write and their vectored and positional forms. O_NONBLOCK
    /// descriptions run `op` once. Returns ERESTARTSYS when a signal interrupts.
    pub fn block<T>(
        &self,
        w: &Arc<Waiter>,
        events: u32,
        mut op: impl FnMut() -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let queue = self.ops.wait_queue().map(|q| (q, events));
        let host = self.ops.host_fd().map(|fd| (fd.as_raw_fd(), events as i16));
        // Without a queue or a host fd nothing would wake the sleeper: such a
        // file's EAGAIN is final.
        if self.state.nonblocking() || (queue.is_none() && host.is_none()) {
            return op();
        }
        let deadline = if events & EVENT_IN != 0 {
            self.ops
                .read_timeout()
                .map(|d| std::time::Instant::now() + d)
        } else {
            None
        };
        waiter::block(w, queue.as_slice(), host.as_slice(), deadline, op)
    }

    pub fn lseek(&self, off: i64, whence: i32) -> Result<u64, Errno> {
        if self.is_path_only() {
            return Err(Errno::EBADF);
        }
        self.ops.lseek(&self.state, off, whence)
    }

    pub fn stat(&self) -> Result<Stat, Errno> {
        // A FIFO's ends report the FIFO inode, not the pipe behind it.
        if self.ops.pipe().is_some() {
            if let Some(l) = &self.location {
                return l.stat();
            }
        }
        self.ops.stat()
    }

    pub fn statfs(&self) -> Result<StatFs, Errno> {
        match &self.location {
            Some(l) => l.statfs(),
            None => self.ops.statfs(),
        }
    }

    /// getdents64(2): `linux_dirent64` records filling at most `cap` bytes.
    /// EINVAL when not even the next entry fits; empty at the end.
    pub fn getdents64(&self, cap: usize) -> Result<Vec<u8>, Errno> {
        let r = self.getdents_impl(cap, abi::linux::push_dirent64);
        self.dir_read_event(r)
    }

    /// getdents(2): the old `linux_dirent` layout (d_type in the record's last byte).
    pub fn getdents(&self, cap: usize) -> Result<Vec<u8>, Errno> {
        let r = self.getdents_impl(cap, push_dirent_old);
        self.dir_read_event(r)
    }

    fn getdents_impl(&self, cap: usize, push: PushDirent) -> Result<Vec<u8>, Errno> {
        if self.is_path_only() {
            return Err(Errno::EBADF);
        }
        if !self.ops.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let mut off = self.state.offset();
        let mut out = Vec::new();
        loop {
            let ents = self
                .ops
                .readdir(*off, cap.saturating_sub(out.len()).max(64))?;
            if ents.is_empty() {
                return Ok(out);
            }
            for e in ents {
                if !push(&mut out, cap, e.ino, e.next_off as i64, e.dtype, &e.name) {
                    if out.is_empty() {
                        return Err(Errno::EINVAL);
                    }
                    return Ok(out);
                }
                *off = e.next_off;
            }
        }
    }

    /// The file's own ioctls (FIOCLEX/FIONCLEX/FIONBIO are the caller's).
    pub fn ioctl(&self, io: &dyn UserIo, cmd: u32, arg: u64) -> Result<u64, Errno> {
        if self.is_path_only() {
            return Err(Errno::EBADF);
        }
        self.ops.ioctl(&self.state, io, cmd, arg)
    }
}

// ---- inotify (anon/inotify.rs) ----

impl OpenFile {
    /// IN_ACCESS / IN_MODIFY after a read or write that moved data.
    fn io_event(&self, r: Result<usize, Errno>, mask: u32) -> Result<usize, Errno> {
        if let (Ok(1..), Some(loc)) = (&r, &self.location) {
            if inotify::active() {
                inotify::notify_dentry(&loc.dentry, mask);
            }
        }
        r
    }

    /// IN_ACCESS after getdents.
    fn dir_read_event(&self, r: Result<Vec<u8>, Errno>) -> Result<Vec<u8>, Errno> {
        if let (Ok(_), Some(loc)) = (&r, &self.location) {
            if inotify::active() {
                inotify::notify_dentry(&loc.dentry, inotify::IN_ACCESS);
            }
        }
        r
    }

    pub(crate) fn close_hook(&self) -> &inotify::CloseHook {
        &self.close_hook
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        if self.has_locks.load(Ordering::SeqCst) {
            if let Some(k) = self.lock_key.get() {
                lock::release_on(*k, self.id);
            }
        }
        if let (Some(f), Some(q)) = (self.fown.get(), self.ops.wait_queue()) {
            q.remove_fasync(f);
        }
    }
}

impl ReadAt for OpenFile {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.is_path_only() {
            return Err(Errno::EBADF);
        }
        self.ops.pread(buf, off)
    }
    fn page_store(&self) -> Option<Arc<PageStore>> {
        self.ops.page_store()
    }
    fn write_back(&self, off: u64, buf: &[u8]) -> Result<usize, Errno> {
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        self.ops.pwrite(buf, off)
    }
    fn size(&self) -> Option<u64> {
        self.ops.stat().ok().map(|s| s.size.max(0) as u64)
    }
}

impl std::fmt::Debug for OpenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenFile")
            .field("flags", &format_args!("{:#o}", self.state.flags()))
            .finish()
    }
}

/// Appends one directory record: (out, cap, ino, off, type, name) -> fitted.
type PushDirent = fn(&mut Vec<u8>, usize, u64, i64, u8, &[u8]) -> bool;

/// Appends one old-style `struct linux_dirent` (d_type in the last byte).
pub fn push_dirent_old(
    out: &mut Vec<u8>,
    cap: usize,
    ino: u64,
    off: i64,
    dtype: u8,
    name: &[u8],
) -> bool {
    let reclen = (18 + name.len() + 2 + 7) & !7;
    if out.len() + reclen > cap {
        return false;
    }
    let start = out.len();
    out.extend_from_slice(&ino.to_le_bytes());
    out.extend_from_slice(&off.to_le_bytes());
    out.extend_from_slice(&(reclen as u16).to_le_bytes());
    out.extend_from_slice(name);
    out.resize(start + reclen, 0);
    out[start + reclen - 1] = dtype;
    true
}
