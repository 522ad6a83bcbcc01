//! Tiny safe wrappers over the host calls the gofer needs. All `unsafe` in the
//! crate lives here; each block is a single libc call on valid, owned buffers.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_ssize(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Retries `f` while it fails with EINTR.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// openat(2). `flags` should include O_CLOEXEC.
pub fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: i32) -> io::Result<OwnedFd> {
    retry(|| {
        // SAFETY: `name` is a valid NUL-terminated string; no mode needed without O_CREAT.
        let fd =
            cvt(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, 0 as libc::c_uint) })?;
        // SAFETY: openat returned a fresh fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    })
}

/// openat(2) with a creation `mode` (for O_CREAT). `flags` should include O_CLOEXEC.
pub fn openat_mode(dir: BorrowedFd<'_>, name: &CStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    retry(|| {
        // SAFETY: `name` is a valid NUL-terminated string; `mode` is passed by value.
        let fd = cvt(unsafe {
            libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode as libc::c_uint)
        })?;
        // SAFETY: openat returned a fresh fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    })
}

/// fstatat(dir, name, AT_SYMLINK_NOFOLLOW).
pub fn fstatat_nofollow(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<libc::stat> {
    retry(|| {
        // SAFETY: all-zero bytes are a valid `libc::stat` (plain integers).
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `name` is NUL-terminated and `st` is a valid out-pointer.
        cvt(unsafe {
            libc::fstatat(
                dir.as_raw_fd(),
                name.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })?;
        Ok(st)
    })
}

/// mkdirat(2).
pub fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: `name` is a valid NUL-terminated string.
    retry(|| cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) })).map(drop)
}

/// mknodat(2).
pub fn mknodat(dir: BorrowedFd<'_>, name: &CStr, mode: u32, rdev: u64) -> io::Result<()> {
    retry(|| {
        // SAFETY: `name` is a valid NUL-terminated string.
        cvt(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, rdev as libc::dev_t) })
    })
    .map(drop)
}

/// symlinkat(2): creates `name` in `dir` pointing at `target`.
pub fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    retry(|| {
        // SAFETY: both strings are valid and NUL-terminated.
        cvt(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })
    })
    .map(drop)
}

/// linkat(2) with flags 0 (never follows a symlink, never AT_EMPTY_PATH).
pub fn linkat(
    old_dir: BorrowedFd<'_>,
    old_name: &CStr,
    new_dir: BorrowedFd<'_>,
    new_name: &CStr,
) -> io::Result<()> {
    retry(|| {
        // SAFETY: both strings are valid and NUL-terminated.
        cvt(unsafe {
            libc::linkat(
                old_dir.as_raw_fd(),
                old_name.as_ptr(),
                new_dir.as_raw_fd(),
                new_name.as_ptr(),
                0,
            )
        })
    })
    .map(drop)
}

/// unlinkat(2); `flags` is 0 or AT_REMOVEDIR.
pub fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, flags: i32) -> io::Result<()> {
    // SAFETY: `name` is a valid NUL-terminated string.
    retry(|| cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })).map(drop)
}

/// renameat2(2) (raw syscall: RENAME_NOREPLACE / RENAME_EXCHANGE).
pub fn renameat2(
    old_dir: BorrowedFd<'_>,
    old_name: &CStr,
    new_dir: BorrowedFd<'_>,
    new_name: &CStr,
    flags: u32,
) -> io::Result<()> {
    retry(|| {
        // SAFETY: both strings are valid and NUL-terminated; the syscall takes plain ints.
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                old_dir.as_raw_fd(),
                old_name.as_ptr(),
                new_dir.as_raw_fd(),
                new_name.as_ptr(),
                flags,
            )
        };
        cvt(r as libc::c_int)
    })
    .map(drop)
}

/// fchmodat2(fd, "", mode, AT_EMPTY_PATH): chmod of the inode `fd` (may be O_PATH) refers
/// to, with no name lookup. ENOSYS on kernels before 6.6.
pub fn fchmod_empty(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    retry(|| {
        // SAFETY: static empty C string; the syscall takes plain ints.
        let r = unsafe {
            libc::syscall(
                452, // SYS_fchmodat2
                fd.as_raw_fd(),
                c"".as_ptr(),
                mode,
                libc::AT_EMPTY_PATH,
            )
        };
        cvt(r as libc::c_int)
    })
    .map(drop)
}

/// fchmod(2) on an open (non-O_PATH) fd.
pub fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: plain integer arguments.
    retry(|| cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode) })).map(drop)
}

/// fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW): chown of the inode
/// `fd` (may be O_PATH, may be a symlink) refers to. u32::MAX leaves an id unchanged.
pub fn fchown_empty(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    retry(|| {
        // SAFETY: static empty C string; plain integer arguments.
        cvt(unsafe {
            libc::fchownat(
                fd.as_raw_fd(),
                c"".as_ptr(),
                uid,
                gid,
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            )
        })
    })
    .map(drop)
}

/// ftruncate(2).
pub fn ftruncate(fd: BorrowedFd<'_>, size: i64) -> io::Result<()> {
    // SAFETY: plain integer arguments.
    retry(|| cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), size) })).map(drop)
}

/// utimensat(fd, "", times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW): sets the times of the
/// inode `fd` (may be O_PATH, may be a symlink) refers to.
pub fn utimens_empty(fd: BorrowedFd<'_>, times: &[libc::timespec; 2]) -> io::Result<()> {
    retry(|| {
        // SAFETY: static empty C string; `times` points at two valid timespecs.
        cvt(unsafe {
            libc::utimensat(
                fd.as_raw_fd(),
                c"".as_ptr(),
                times.as_ptr(),
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            )
        })
    })
    .map(drop)
}

/// fgetxattr(2) into `buf` (len 0 = query the size); returns the value length.
pub fn fgetxattr(fd: BorrowedFd<'_>, name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    retry(|| {
        // SAFETY: `name` is NUL-terminated; `buf` is valid for writes of `buf.len()` bytes.
        cvt_ssize(unsafe {
            libc::fgetxattr(
                fd.as_raw_fd(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        })
    })
}

/// flistxattr(2) into `buf`; returns the list length.
pub fn flistxattr(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    retry(|| {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        cvt_ssize(unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
    })
}

/// fsetxattr(2).
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &CStr, value: &[u8], flags: i32) -> io::Result<()> {
    retry(|| {
        // SAFETY: `name` is NUL-terminated; `value` is valid for reads of its length.
        cvt(unsafe {
            libc::fsetxattr(
                fd.as_raw_fd(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                flags,
            )
        })
    })
    .map(drop)
}

/// fremovexattr(2).
pub fn fremovexattr(fd: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: `name` is a valid NUL-terminated string.
    retry(|| cvt(unsafe { libc::fremovexattr(fd.as_raw_fd(), name.as_ptr()) })).map(drop)
}

/// fstatat(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW): works on O_PATH fds, including symlinks.
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    retry(|| {
        // SAFETY: all-zero bytes are a valid `libc::stat` (plain integers).
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: the path is a static empty C string and `st` is a valid out-pointer.
        cvt(unsafe {
            libc::fstatat(
                fd.as_raw_fd(),
                c"".as_ptr(),
                &mut st,
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            )
        })?;
        Ok(st)
    })
}

/// readlinkat(fd, ""): the target of the symlink `fd` (an O_PATH|O_NOFOLLOW fd).
/// ENAMETOOLONG when it does not fit in `max` bytes.
pub fn readlink(fd: BorrowedFd<'_>, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; max + 1];
    let n = retry(|| {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        cvt_ssize(unsafe {
            libc::readlinkat(
                fd.as_raw_fd(),
                c"".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        })
    })?;
    if n > max {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    buf.truncate(n);
    Ok(buf)
}

/// getdents64(2) into `buf`; returns the bytes filled (0 at end).
pub fn getdents64(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    retry(|| {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let r = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                fd.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        cvt_ssize(r as libc::ssize_t)
    })
}

pub fn fstatfs(fd: BorrowedFd<'_>) -> io::Result<libc::statfs> {
    retry(|| {
        // SAFETY: all-zero bytes are a valid `libc::statfs`.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is a valid out-pointer.
        cvt(unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) })?;
        Ok(st)
    })
}

pub fn fstatvfs(fd: BorrowedFd<'_>) -> io::Result<libc::statvfs> {
    retry(|| {
        // SAFETY: all-zero bytes are a valid `libc::statvfs`.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is a valid out-pointer.
        cvt(unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) })?;
        Ok(st)
    })
}

/// Clears O_NONBLOCK on `fd`.
pub fn clear_nonblock(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument.
    let fl = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: F_SETFL takes an int argument.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK) })?;
    Ok(())
}

/// A connected AF_UNIX SOCK_SEQPACKET pair (close-on-exec).
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a valid out-array of two ints.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: socketpair returned two fresh fds that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Most fds accepted in one message (more are closed and reported as truncation).
const MAX_FDS: usize = 4;
const CMSG_BUF: usize = 64; // >= CMSG_SPACE(MAX_FDS * 4) on x86-64 (16 + 16)

#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_BUF]);

/// Sends one record, with `fd` attached via SCM_RIGHTS when given. Never raises SIGPIPE.
pub fn send(sock: BorrowedFd<'_>, data: &[u8], fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut cbuf = CmsgBuf([0; CMSG_BUF]);
    // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(fd) = fd {
        let raw = fd.as_raw_fd();
        // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic.
        let (space, len) = unsafe {
            (
                libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32),
                libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32),
            )
        };
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        msg.msg_controllen = space as usize;
        // SAFETY: msg_control points at an aligned buffer of at least `space` bytes, so the
        // first header and its data fit; we write only within it.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = len as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), raw);
        }
    }
    let n = retry(|| {
        // SAFETY: msg points at live iovec/control buffers for the duration of the call.
        cvt_ssize(unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) })
    })?;
    if n != data.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short sendmsg"));
    }
    Ok(())
}

/// One received record.
pub struct Received {
    /// Bytes of the record copied into the buffer (0 also means hangup on SEQPACKET).
    pub len: usize,
    /// Fds that came with it (already owned: dropped = closed).
    pub fds: Vec<OwnedFd>,
    /// The record or its control data did not fit (MSG_TRUNC / MSG_CTRUNC).
    pub truncated: bool,
}

/// Receives one record into `buf` with MSG_CMSG_CLOEXEC, taking ownership of any fds sent.
pub fn recv(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Received> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = CmsgBuf([0; CMSG_BUF]);
    // SAFETY: all-zero is a valid msghdr.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    msg.msg_controllen = CMSG_BUF;
    let len = retry(|| {
        msg.msg_controllen = CMSG_BUF;
        // SAFETY: msg points at live, writable iovec/control buffers of the stated sizes.
        cvt_ssize(unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) })
    })?;
    let mut fds = Vec::new();
    // SAFETY: the CMSG_* macros walk the control buffer the kernel just filled, bounded by
    // msg_controllen; each SCM_RIGHTS payload holds (cmsg_len - CMSG_LEN(0)) / 4 fds which
    // the kernel installed for us, so we take ownership of each exactly once.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c).cast::<RawFd>();
                let n = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<RawFd>();
                for i in 0..n {
                    let fd = std::ptr::read_unaligned(data.add(i));
                    if fd >= 0 {
                        fds.push(OwnedFd::from_raw_fd(fd));
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let truncated = msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0;
    Ok(Received {
        len,
        fds,
        truncated,
    })
}

const _: () = assert!(CMSG_BUF >= 16 + 4 * MAX_FDS);
