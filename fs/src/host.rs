//! Files backed by a host fd: the workload's inherited stdio ([`HostFile`]) and the
//! regular files the gofer opens for us. I/O goes straight to the host fd; the file
//! offset is the host description's own (each gofer open is a new host description,
//! so this matches Linux: dup'd fds share it, separate opens do not).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use abi::linux::{Stat, S_IFBLK, S_IFDIR, S_IFMT, S_IFREG};
use abi::Errno;

use crate::file::{FileOps, FileState, OpenFile, DEFAULT_POLLMASK};
use crate::inode::StatFs;
use crate::pipe::PIPE_BUF;
use crate::waiter::EVENT_ERR;
use crate::UserIo;

/// Size of the kernel's `struct termios` (not glibc's larger one).
const KTERMIOS_SIZE: usize = 36;

fn cvt(r: isize) -> Result<usize, Errno> {
    if r < 0 {
        Err(Errno::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Retries a host call on EINTR (the sentry's own threads may see signals).
fn retry<F: FnMut() -> isize>(mut f: F) -> Result<usize, Errno> {
    loop {
        match cvt(f()) {
            Err(Errno::EINTR) => continue,
            r => return r,
        }
    }
}

pub(crate) fn host_fstat(fd: BorrowedFd<'_>) -> Result<Stat, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: fstat writes at most one `struct stat` into the buffer we own.
    let r = unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) };
    if r < 0 {
        return Err(Errno::last_os_error());
    }
    // SAFETY: fstat succeeded, so the struct is initialised (it was zeroed anyway).
    Ok(Stat::from_host(unsafe { &st.assume_init() }))
}

/// Polls one host fd for `events` without blocking: its revents.
fn poll_now(fd: BorrowedFd<'_>, events: i16) -> Result<i16, Errno> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    retry(|| unsafe { libc::poll(&mut p, 1, 0) } as isize)?;
    Ok(p.revents)
}

/// Whether an I/O call for `events` on `fd` would not block now (ready, or an
/// error or hang-up the call itself will report).
fn ready_now(fd: BorrowedFd<'_>, events: i16) -> Result<bool, Errno> {
    Ok(poll_now(fd, events)? != 0)
}

/// File operations over a host fd.
pub struct HostFdOps {
    fd: OwnedFd,
    seekable: bool,
    dir: bool,
    /// Inherited stdio: tty ioctls pass through. Streams are never switched to
    /// O_NONBLOCK (the host description is shared with others): blocking is
    /// emulated with poll, see `read`.
    stdio: bool,
    /// The file system's statfs, for gofer files.
    statfs: Option<StatFs>,
    /// The host description may be shared with other open files (a dup of a
    /// cached fd): the offset is the sentry's and all I/O is positional.
    positional: bool,
}

impl HostFdOps {
    /// Wraps `fd`. Its type decides seekability.
    pub fn new(fd: OwnedFd, stdio: bool, statfs: Option<StatFs>) -> Result<HostFdOps, Errno> {
        let st = host_fstat(fd.as_fd())?;
        let seekable = matches!(st.mode & S_IFMT, S_IFREG | S_IFBLK | S_IFDIR);
        Ok(HostFdOps {
            fd,
            seekable,
            dir: st.mode & S_IFMT == S_IFDIR,
            stdio,
            statfs,
            positional: false,
        })
    }

    /// Wraps `fd`, a regular file's fd whose host description other open files
    /// may share: reads and writes use the sentry's offset (pread/pwrite), and
    /// status-flag changes are not passed to the host.
    pub fn new_positional(fd: OwnedFd) -> Result<HostFdOps, Errno> {
        let mut ops = HostFdOps::new(fd, false, None)?;
        if !ops.seekable || ops.dir {
            return Err(Errno::EINVAL);
        }
        ops.positional = true;
        Ok(ops)
    }

    fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    fn ioctl_out(&self, io: &dyn UserIo, cmd: u32, arg: u64, len: usize) -> Result<u64, Errno> {
        let mut buf = [0u8; 64];
        // SAFETY: the ioctls routed here write at most `len` <= 36 bytes into our 64-byte buffer.
        let r = retry(|| unsafe { libc::ioctl(self.raw(), cmd as _, buf.as_mut_ptr()) } as isize)?;
        io.copy_out(arg, &buf[..len])?;
        Ok(r as u64)
    }

    fn ioctl_in(&self, io: &dyn UserIo, cmd: u32, arg: u64, len: usize) -> Result<u64, Errno> {
        let mut buf = [0u8; 64];
        io.copy_in(arg, &mut buf[..len])?;
        // SAFETY: the ioctls routed here read at most `len` bytes from our 64-byte buffer.
        let r = retry(|| unsafe { libc::ioctl(self.raw(), cmd as _, buf.as_ptr()) } as isize)?;
        Ok(r as u64)
    }
}

impl FileOps for HostFdOps {
    fn read(&self, st: &FileState, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.positional {
            let mut off = st.offset();
            let n = self.pread(buf, *off)?;
            *off += n as u64;
            return Ok(n);
        }
        // A stream (tty, pipe, socket) is read only once poll says it will not
        // block, so the task waits in `OpenFile::block`, where signals reach it.
        if !self.seekable && !buf.is_empty() && !ready_now(self.fd.as_fd(), libc::POLLIN)? {
            return Err(Errno::EAGAIN);
        }
        // SAFETY: reads into a buffer we own, bounded by its length.
        retry(|| unsafe { libc::read(self.raw(), buf.as_mut_ptr().cast(), buf.len()) })
    }

    fn write(&self, st: &FileState, buf: &[u8]) -> Result<usize, Errno> {
        if self.positional {
            let mut off = st.offset();
            if st.append() {
                *off = self.stat()?.size as u64;
            }
            let n = self.pwrite(buf, *off)?;
            *off += n as u64;
            return Ok(n);
        }
        let mut len = buf.len();
        if !self.seekable && len > 0 {
            if !ready_now(self.fd.as_fd(), libc::POLLOUT)? {
                return Err(Errno::EAGAIN);
            }
            // POLLOUT on a pipe promises room for PIPE_BUF bytes, no more: larger
            // writes go in pieces (the syscall layer keeps writing while blocking
            // writes have more to write).
            len = len.min(PIPE_BUF);
        }
        // SAFETY: writes from a buffer we own, bounded by `len` <= its length.
        retry(|| unsafe { libc::write(self.raw(), buf.as_ptr().cast(), len) })
    }

    fn readiness(&self, mask: u32) -> u32 {
        if self.seekable {
            return DEFAULT_POLLMASK & mask;
        }
        poll_now(self.fd.as_fd(), mask as i16).map_or(EVENT_ERR, |r| r as u16 as u32) & mask
    }

    fn pread(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        // SAFETY: reads into a buffer we own, bounded by its length.
        retry(|| unsafe { libc::pread(self.raw(), buf.as_mut_ptr().cast(), buf.len(), off as i64) })
    }

    fn pwrite(&self, buf: &[u8], off: u64) -> Result<usize, Errno> {
        // SAFETY: writes from a buffer we own, bounded by its length.
        retry(|| unsafe { libc::pwrite(self.raw(), buf.as_ptr().cast(), buf.len(), off as i64) })
    }

    fn seekable(&self) -> bool {
        self.seekable
    }

    fn lseek(&self, st: &FileState, off: i64, whence: i32) -> Result<u64, Errno> {
        if self.positional {
            return crate::file::generic_lseek(st, off, whence, Some(self.stat()?.size as u64));
        }
        if !matches!(
            whence,
            libc::SEEK_SET | libc::SEEK_CUR | libc::SEEK_END | libc::SEEK_DATA | libc::SEEK_HOLE
        ) {
            return Err(Errno::EINVAL);
        }
        // SAFETY: plain lseek on our own fd.
        let r = unsafe { libc::lseek(self.raw(), off, whence) };
        if r < 0 {
            Err(Errno::last_os_error())
        } else {
            Ok(r as u64)
        }
    }

    fn stat(&self) -> Result<Stat, Errno> {
        host_fstat(self.fd.as_fd())
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        if let Some(s) = self.statfs {
            return Ok(s);
        }
        let mut s = std::mem::MaybeUninit::<libc::statfs>::zeroed();
        // SAFETY: fstatfs writes one struct statfs into our buffer.
        let r = unsafe { libc::fstatfs(self.raw(), s.as_mut_ptr()) };
        if r < 0 {
            return Err(Errno::last_os_error());
        }
        // SAFETY: initialised by the successful call (and zeroed before).
        let s = unsafe { s.assume_init() };
        Ok(StatFs {
            fs_type: s.f_type as u64,
            bsize: s.f_bsize as u64,
            blocks: s.f_blocks,
            bfree: s.f_bfree,
            bavail: s.f_bavail,
            files: s.f_files,
            ffree: s.f_ffree,
            fsid: 0,
            namelen: s.f_namelen as u64,
            frsize: s.f_frsize as u64,
            flags: 0,
        })
    }

    fn is_dir(&self) -> bool {
        self.dir
    }

    fn ioctl(&self, st: &FileState, io: &dyn UserIo, cmd: u32, arg: u64) -> Result<u64, Errno> {
        const TCGETS: u32 = 0x5401;
        const TCSETS: u32 = 0x5402;
        const TCSETSW: u32 = 0x5403;
        const TCSETSF: u32 = 0x5404;
        const TIOCGPGRP: u32 = 0x540f;
        const TIOCGWINSZ: u32 = 0x5413;
        const FIONREAD: u32 = 0x541b;
        match cmd {
            FIONREAD if self.positional => {
                // Bytes past the sentry's offset (Linux: i_size - f_pos, as an int).
                let size = self.stat()?.size.max(0) as u64;
                let n = size.saturating_sub(*st.offset()).min(i32::MAX as u64) as u32;
                io.copy_out(arg, &n.to_le_bytes())?;
                Ok(0)
            }
            FIONREAD => self.ioctl_out(io, cmd, arg, 4),
            TCGETS | TCSETS | TCSETSW | TCSETSF | TIOCGPGRP | TIOCGWINSZ if !self.stdio => {
                Err(Errno::ENOTTY)
            }
            TCGETS => self.ioctl_out(io, cmd, arg, KTERMIOS_SIZE),
            TCSETS | TCSETSW | TCSETSF => self.ioctl_in(io, cmd, arg, KTERMIOS_SIZE),
            TIOCGWINSZ => self.ioctl_out(io, cmd, arg, 8),
            TIOCGPGRP => self.ioctl_out(io, cmd, arg, 4),
            _ => Err(Errno::ENOTTY),
        }
    }

    fn flags_changed(&self, flags: i32) -> Result<(), Errno> {
        if self.stdio || self.positional {
            return Ok(());
        }
        // Our own description (a gofer open): keep the host's O_APPEND in step.
        // SAFETY: fcntl on our own fd.
        let cur = unsafe { libc::fcntl(self.raw(), libc::F_GETFL) };
        if cur < 0 {
            return Err(Errno::last_os_error());
        }
        let want = (cur & !libc::O_APPEND) | (flags & libc::O_APPEND);
        // SAFETY: as above.
        if want != cur && unsafe { libc::fcntl(self.raw(), libc::F_SETFL, want) } < 0 {
            return Err(Errno::last_os_error());
        }
        Ok(())
    }

    fn host_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.fd.as_fd())
    }

    /// Flushes the host file (the host says EINVAL for its pipes and ttys).
    fn fsync(&self, datasync: bool) -> Result<(), Errno> {
        // SAFETY: fsync/fdatasync on our own fd.
        retry(|| unsafe {
            if datasync {
                libc::fdatasync(self.raw())
            } else {
                libc::fsync(self.raw())
            }
        } as isize)
        .map(|_| ())
    }

    fn fallocate(&self, mode: i32, off: u64, len: u64) -> Option<Result<(), Errno>> {
        if self.stdio {
            return None;
        }
        let (off, len) = match (i64::try_from(off), i64::try_from(len)) {
            (Ok(o), Ok(l)) => (o, l),
            _ => return Some(Err(Errno::EFBIG)),
        };
        // SAFETY: fallocate on our own fd.
        let r = retry(|| unsafe { libc::fallocate(self.raw(), mode, off, len) as isize });
        Some(r.map(|_| ()))
    }
}

/// The workload's inherited stdio (or any host fd handed to it).
pub struct HostFile;

impl HostFile {
    /// Wraps a host fd as an open file. The access mode and O_APPEND/O_NONBLOCK come
    /// from the host description.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(fd: OwnedFd) -> Result<Arc<OpenFile>, Errno> {
        // SAFETY: F_GETFL on an fd we own.
        let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
        if fl < 0 {
            return Err(Errno::last_os_error());
        }
        let flags = fl & (libc::O_ACCMODE | libc::O_APPEND | libc::O_NONBLOCK);
        let ops = HostFdOps::new(fd, true, None)?;
        Ok(OpenFile::new(Box::new(ops), flags, None))
    }

    /// Dups host fds 0, 1, 2 (those that are open) into files for the workload's
    /// fds 0, 1, 2.
    pub fn stdio() -> Vec<(i32, Arc<OpenFile>)> {
        let mut v = Vec::new();
        for i in 0..3 {
            // SAFETY: F_DUPFD_CLOEXEC on a possibly-closed fd just fails.
            let d = unsafe { libc::fcntl(i, libc::F_DUPFD_CLOEXEC, 3) };
            if d >= 0 {
                // SAFETY: `d` is a fresh fd we own.
                let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(d) };
                if let Ok(f) = HostFile::new(owned) {
                    v.push((i, f));
                }
            }
        }
        v
    }
}
