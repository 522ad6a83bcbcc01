//! File syscalls: I/O, open/close, stat, directories, fd manipulation, and the
//! mutating calls (EROFS on the read-only root; real changes on tmpfs).

use std::sync::Arc;

use abi::linux::Stat;
use abi::sysno as nr;
use abi::{Errno, SysResult};
use fs::vfs::{Location, NewNode, OpenHow, WalkOpts, RESOLVE_ALL};
use fs::waiter::{EVENT_IN, EVENT_OUT};
use fs::{Creds, OpenFile, SetAttr, TimeSet};
use sentry::Task;

use crate::{Arg, Args, Table};

/// Largest single read/write (Linux's MAX_RW_COUNT).
const MAX_RW_COUNT: usize = 0x7fff_f000;
/// Most iovecs per call.
const IOV_MAX: usize = 1024;
/// I/O is staged through sentry buffers of at most this size.
const CHUNK: usize = 1 << 20;

const AT_FDCWD: i32 = libc::AT_FDCWD;
const AT_SYMLINK_NOFOLLOW: i32 = libc::AT_SYMLINK_NOFOLLOW;
const AT_EMPTY_PATH: i32 = libc::AT_EMPTY_PATH;
const AT_NO_AUTOMOUNT: i32 = libc::AT_NO_AUTOMOUNT;
const AT_EACCESS: i32 = libc::AT_EACCESS;
const AT_REMOVEDIR: i32 = libc::AT_REMOVEDIR;
const AT_SYMLINK_FOLLOW: i32 = libc::AT_SYMLINK_FOLLOW;
const AT_STATX_SYNC_TYPE: i32 = 0x6000;

pub(crate) fn register(t: &mut Table) {
    use Arg::*;
    t.add(nr::READ, sys_read, &[Fd, OutBuf, UDec]);
    t.add(nr::WRITE, sys_write, &[Fd, InBuf(2), UDec]);
    t.add(nr::READV, sys_readv, &[Fd, Hex, UDec]);
    t.add(nr::WRITEV, sys_writev, &[Fd, Hex, UDec]);
    t.add(nr::PREAD64, sys_pread64, &[Fd, OutBuf, UDec, Dec]);
    t.add(nr::PWRITE64, sys_pwrite64, &[Fd, InBuf(2), UDec, Dec]);
    t.add(nr::PREADV, sys_preadv, &[Fd, Hex, UDec, Dec]);
    t.add(nr::PWRITEV, sys_pwritev, &[Fd, Hex, UDec, Dec]);
    t.add(nr::PREADV2, sys_preadv2, &[Fd, Hex, UDec, Dec, Hex, Hex]);
    t.add(nr::PWRITEV2, sys_pwritev2, &[Fd, Hex, UDec, Dec, Hex, Hex]);
    t.add(nr::CLOSE_RANGE, sys_close_range, &[Fd, Fd, Hex]);
    t.add(nr::OPEN, sys_open, &[Path, OpenFlags, Oct]);
    t.add(nr::OPENAT, sys_openat, &[DirFd, Path, OpenFlags, Oct]);
    t.add(nr::OPENAT2, sys_openat2, &[DirFd, Path, Hex, UDec]);
    t.add(nr::CREAT, sys_creat, &[Path, Oct]);
    t.add(nr::CLOSE, sys_close, &[Fd]);
    t.add(nr::LSEEK, sys_lseek, &[Fd, Dec, Dec]);
    t.add(nr::FSTAT, sys_fstat, &[Fd, Hex]);
    t.add(nr::STAT, sys_stat, &[Path, Hex]);
    t.add(nr::LSTAT, sys_lstat, &[Path, Hex]);
    t.add(nr::NEWFSTATAT, sys_newfstatat, &[DirFd, Path, Hex, Hex]);
    t.add(nr::STATX, sys_statx, &[DirFd, Path, Hex, Hex, Hex]);
    t.add(nr::ACCESS, sys_access, &[Path, Oct]);
    t.add(nr::FACCESSAT, sys_faccessat, &[DirFd, Path, Oct]);
    t.add(nr::FACCESSAT2, sys_faccessat2, &[DirFd, Path, Oct, Hex]);
    t.add(nr::READLINK, sys_readlink, &[Path, OutBuf, UDec]);
    t.add(nr::READLINKAT, sys_readlinkat, &[DirFd, Path, OutBuf, UDec]);
    t.add(nr::GETDENTS64, sys_getdents64, &[Fd, Hex, UDec]);
    t.add(nr::GETDENTS, sys_getdents, &[Fd, Hex, UDec]);
    t.add(nr::GETCWD, sys_getcwd, &[OutBuf, UDec]);
    t.add(nr::CHDIR, sys_chdir, &[Path]);
    t.add(nr::FCHDIR, sys_fchdir, &[Fd]);
    t.add(nr::CHROOT, sys_chroot, &[Path]);
    t.add(nr::DUP, sys_dup, &[Fd]);
    t.add(nr::DUP2, sys_dup2, &[Fd, Fd]);
    t.add(nr::DUP3, sys_dup3, &[Fd, Fd, Hex]);
    t.add(nr::FCNTL, sys_fcntl, &[Fd, Dec, Hex]);
    t.add(nr::FLOCK, sys_flock, &[Fd, Hex]);
    t.add(nr::IOCTL, sys_ioctl, &[Fd, Hex, Hex]);
    t.add(nr::STATFS, sys_statfs, &[Path, Hex]);
    t.add(nr::FSTATFS, sys_fstatfs, &[Fd, Hex]);
    t.add(nr::UMASK, sys_umask, &[Oct]);
    t.add(nr::FADVISE64, sys_fadvise64, &[Fd, Dec, Dec, Dec]);
    t.add(nr::MKDIR, sys_mkdir, &[Path, Oct]);
    t.add(nr::MKDIRAT, sys_mkdirat, &[DirFd, Path, Oct]);
    t.add(nr::MKNOD, sys_mknod, &[Path, Oct, Hex]);
    t.add(nr::MKNODAT, sys_mknodat, &[DirFd, Path, Oct, Hex]);
    t.add(nr::UNLINK, sys_unlink, &[Path]);
    t.add(nr::UNLINKAT, sys_unlinkat, &[DirFd, Path, Hex]);
    t.add(nr::RMDIR, sys_rmdir, &[Path]);
    t.add(nr::RENAME, sys_rename, &[Path, Path]);
    t.add(nr::RENAMEAT, sys_renameat, &[DirFd, Path, DirFd, Path]);
    t.add(
        nr::RENAMEAT2,
        sys_renameat2,
        &[DirFd, Path, DirFd, Path, Hex],
    );
    t.add(nr::SYMLINK, sys_symlink, &[Path, Path]);
    t.add(nr::SYMLINKAT, sys_symlinkat, &[Path, DirFd, Path]);
    t.add(nr::LINK, sys_link, &[Path, Path]);
    t.add(nr::LINKAT, sys_linkat, &[DirFd, Path, DirFd, Path, Hex]);
    t.add(nr::CHMOD, sys_chmod, &[Path, Oct]);
    t.add(nr::FCHMOD, sys_fchmod, &[Fd, Oct]);
    t.add(nr::FCHMODAT, sys_fchmodat, &[DirFd, Path, Oct]);
    t.add(nr::CHOWN, sys_chown, &[Path, Dec, Dec]);
    t.add(nr::LCHOWN, sys_lchown, &[Path, Dec, Dec]);
    t.add(nr::FCHOWN, sys_fchown, &[Fd, Dec, Dec]);
    t.add(nr::FCHOWNAT, sys_fchownat, &[DirFd, Path, Dec, Dec, Hex]);
    t.add(nr::TRUNCATE, sys_truncate, &[Path, Dec]);
    t.add(nr::FTRUNCATE, sys_ftruncate, &[Fd, Dec]);
    t.add(nr::UTIMENSAT, sys_utimensat, &[DirFd, Path, Hex, Hex]);
    t.add(nr::UTIMES, sys_utimes, &[Path, Hex]);
    t.add(nr::FUTIMESAT, sys_futimesat, &[DirFd, Path, Hex]);
    t.add(nr::UTIME, sys_utime, &[Path, Hex]);
    t.add(nr::FALLOCATE, sys_fallocate, &[Fd, Hex, Dec, Dec]);
}

// ---- helpers ----

/// The file-system credentials: fsuid/fsgid, groups, effective capabilities.
pub(crate) fn creds(t: &Task) -> Creds {
    sentry::exec::fs_creds(&t.creds)
}

/// The real credentials (access(2) without AT_EACCESS; `access_override_creds`):
/// the real uid/gid, and unless SECBIT_NO_SETUID_FIXUP, no capabilities for a
/// non-root real uid and the permitted set for root.
fn real_creds(t: &Task) -> Creds {
    let c = &t.creds;
    let caps = if c.securebits & crate::sys_cred::SECBIT_NO_SETUID_FIXUP != 0 {
        c.cap_effective
    } else if c.uid == 0 {
        c.cap_permitted
    } else {
        0
    };
    Creds {
        uid: c.uid,
        gid: c.gid,
        groups: c.groups.clone(),
        caps,
    }
}

fn nofile(t: &Task) -> u64 {
    t.rlimits[libc::RLIMIT_NOFILE as usize].cur
}

/// Copies in a path argument (NULL is EFAULT).
pub(crate) fn path_arg(t: &Task, addr: u64) -> Result<Vec<u8>, Errno> {
    if addr == 0 {
        return Err(Errno::EFAULT);
    }
    t.copy_in_path(addr)
}

/// Where a relative path starts: the cwd or `dirfd`'s directory. Absolute paths
/// ignore `dirfd` (as Linux does, even an invalid one).
fn start_of(t: &Task, dirfd: i32, path: &[u8]) -> Result<Location, Errno> {
    if path.first() == Some(&b'/') {
        return Ok(t.fs.root());
    }
    if dirfd == AT_FDCWD {
        return Ok(t.fs.cwd());
    }
    let f = t.fds.get(dirfd)?;
    let loc = f.location().cloned().ok_or(Errno::ENOTDIR)?;
    if !path.is_empty() && !loc.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok(loc)
}

/// Walks `path` from `dirfd`.
pub(crate) fn resolve(
    t: &Task,
    c: &Creds,
    dirfd: i32,
    path: &[u8],
    opts: &WalkOpts,
) -> Result<Location, Errno> {
    let start = start_of(t, dirfd, path)?;
    t.kernel.vfs.walk(&t.fs, c, &start, path, opts)
}

/// An empty path with AT_EMPTY_PATH names `dirfd` itself (which may be a file
/// with no location, like inherited stdio).
fn empty_path_file(t: &Task, dirfd: i32) -> Result<Option<Arc<OpenFile>>, Errno> {
    if dirfd == AT_FDCWD {
        return Ok(None);
    }
    Ok(Some(t.fds.get(dirfd)?))
}

fn install(t: &Task, f: Arc<OpenFile>, cloexec: bool) -> SysResult {
    Ok(t.fds.insert(f, cloexec, nofile(t))? as u64)
}

// ---- read / write ----

/// Reads `iov` in `(addr, len)` pieces (lengths already validated and capped).
pub(crate) fn copy_out_iov(
    t: &Task,
    iov: &[(u64, usize)],
    mut pos: usize,
    mut data: &[u8],
) -> Result<(), Errno> {
    for &(base, len) in iov {
        if data.is_empty() {
            break;
        }
        if pos >= len {
            pos -= len;
            continue;
        }
        let n = (len - pos).min(data.len());
        t.copy_out(base + pos as u64, &data[..n])?;
        data = &data[n..];
        pos = 0;
    }
    Ok(())
}

pub(crate) fn copy_in_iov(
    t: &Task,
    iov: &[(u64, usize)],
    mut pos: usize,
    mut data: &mut [u8],
) -> Result<(), Errno> {
    for &(base, len) in iov {
        if data.is_empty() {
            break;
        }
        if pos >= len {
            pos -= len;
            continue;
        }
        let n = (len - pos).min(data.len());
        let (head, rest) = data.split_at_mut(n);
        t.copy_in(base + pos as u64, head)?;
        data = rest;
        pos = 0;
    }
    Ok(())
}

/// Reads the iovec array at `addr`; lengths are capped so the total stays within
/// MAX_RW_COUNT.
pub(crate) fn read_iovecs(t: &Task, addr: u64, cnt: u64) -> Result<Vec<(u64, usize)>, Errno> {
    if cnt as usize > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let raw = t.copy_in_vec(addr, cnt as usize * 16)?;
    let mut out = Vec::with_capacity(cnt as usize);
    let mut total = 0usize;
    for i in 0..cnt as usize {
        let base = abi::linux::le_u64(&raw, i * 16);
        let len = abi::linux::le_u64(&raw, i * 16 + 8);
        if len as i64 <= -1 {
            return Err(Errno::EINVAL);
        }
        let len = (len as usize).min(MAX_RW_COUNT - total);
        total += len;
        out.push((base, len));
    }
    Ok(out)
}

fn do_read(t: &Task, f: &OpenFile, iov: &[(u64, usize)], off: Option<i64>) -> SysResult {
    let read = |buf: &mut [u8], pos: usize| match off {
        Some(o) => f.pread(buf, o + pos as i64),
        None => f.read(buf),
    };
    let total: usize = iov.iter().map(|v| v.1).sum();
    if total == 0 {
        return read(&mut [], 0).map(|_| 0);
    }
    let stream = !f.ops().seekable();
    let mut done = 0usize;
    let mut buf = vec![0u8; total.min(CHUNK)];
    loop {
        let want = (total - done).min(CHUNK);
        // Only the first transfer waits: once some data has moved, read returns it.
        let r = if done == 0 {
            f.block(t.waiter(), EVENT_IN, || read(&mut buf[..want], done))
        } else {
            read(&mut buf[..want], done)
        };
        let n = match r {
            Ok(n) => n,
            Err(_) if done > 0 => break,
            // A terminal's VTIME ran out with no data.
            // A socket's SO_RCVTIMEO ran out: EAGAIN.
            Err(Errno::ETIMEDOUT) if f.ops().socket().is_some() => return Err(Errno::EAGAIN),
            Err(Errno::ETIMEDOUT) if f.ops().read_timeout().is_some() => 0,
            Err(e) => return Err(e),
        };
        if let Err(e) = copy_out_iov(t, iov, done, &buf[..n]) {
            // Bytes that never reached the workload are not consumed: Linux copies
            // straight to the user buffer and stops advancing at the fault.
            if off.is_none() && !stream {
                let _ = f.lseek(-(n as i64), libc::SEEK_CUR);
            }
            if done > 0 {
                break;
            }
            return Err(e);
        }
        done += n;
        if n < want || done == total || stream {
            break;
        }
    }
    Ok(done as u64)
}

fn do_write(t: &mut Task, f: &OpenFile, iov: &[(u64, usize)], off: Option<i64>) -> SysResult {
    let write = |buf: &[u8], pos: usize| match off {
        Some(o) => f.pwrite(buf, o + pos as i64),
        None => f.write(buf),
    };
    let total: usize = iov.iter().map(|v| v.1).sum();
    if total == 0 {
        return write(&[], 0).map(|_| 0);
    }
    // A write drops set-user-ID/set-group-ID (file_remove_privs).
    if let Some(loc) = f.location() {
        if f.writable() && loc.attr().mode & 0o6000 != 0 {
            t.kernel.vfs.remove_privs(&creds(t), loc)?;
        }
    }
    // A blocking write to a stream (pipe, tty) returns once all of it is written,
    // or a signal or an error stops it part way; a file write ends at a short count.
    let stream = !f.ops().seekable();
    let mut done = 0usize;
    let mut buf = vec![0u8; total.min(CHUNK)];
    let err = loop {
        let want = (total - done).min(CHUNK);
        if let Err(e) = copy_in_iov(t, iov, done, &mut buf[..want]) {
            break e;
        }
        let mut pos = 0;
        let r = loop {
            match f.block(t.waiter(), EVENT_OUT, || write(&buf[pos..want], done + pos)) {
                Ok(n) => pos += n,
                Err(e) => break Err(e),
            }
            if pos == want || !stream {
                break Ok(());
            }
        };
        done += pos;
        if let Err(e) = r {
            break e;
        }
        if pos < want || done == total {
            return Ok(done as u64);
        }
    };
    // Datagram and seqpacket sockets fail with EPIPE but raise no signal.
    let quiet = fs::socket::as_socket(f).is_some_and(|s| s.sock_type() != libc::SOCK_STREAM);
    if err == Errno::EPIPE && !quiet {
        // Linux sends SIGPIPE to the writing thread, even after a partial write.
        t.send_signal_to_self(libc::SIGPIPE);
    }
    if done > 0 {
        Ok(done as u64)
    } else {
        Err(err)
    }
}

fn count_arg(a: &Args, i: usize) -> Result<usize, Errno> {
    Ok(a.len(i)?.min(MAX_RW_COUNT))
}

fn sys_read(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.get(a.fd(0))?;
    do_read(t, &f, &[(a.u64(1), count_arg(a, 2)?)], None)
}

fn sys_write(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.get(a.fd(0))?;
    do_write(t, &f, &[(a.u64(1), count_arg(a, 2)?)], None)
}

fn sys_pread64(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.get(a.fd(0))?;
    do_read(t, &f, &[(a.u64(1), count_arg(a, 2)?)], Some(a.i64(3)))
}

fn sys_pwrite64(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.get(a.fd(0))?;
    do_write(t, &f, &[(a.u64(1), count_arg(a, 2)?)], Some(a.i64(3)))
}

fn sys_readv(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.get(a.fd(0))?;
    let iov = read_iovecs(t, a.u64(1), a.u64(2) as u32 as u64)?;
    do_read(t, &f, &iov, None)
}

fn sys_writev(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.get(a.fd(0))?;
    let iov = read_iovecs(t, a.u64(1), a.u64(2) as u32 as u64)?;
    do_write(t, &f, &iov, None)
}

fn sys_preadv(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.get(a.fd(0))?;
    let iov = read_iovecs(t, a.u64(1), a.u64(2) as u32 as u64)?;
    do_read(t, &f, &iov, Some(a.i64(3)))
}

fn sys_pwritev(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.get(a.fd(0))?;
    let iov = read_iovecs(t, a.u64(1), a.u64(2) as u32 as u64)?;
    do_write(t, &f, &iov, Some(a.i64(3)))
}

/// RWF_* flags of preadv2/pwritev2: HIPRI, DSYNC, SYNC (hints, or already
/// satisfied: writes complete in the call), NOWAIT (file data never waits on
/// I/O here) and APPEND (handled by pwritev2).
const RWF_SUPPORTED: u32 = 0x1 | 0x2 | 0x4 | 0x8 | 0x10;
const RWF_APPEND: u32 = 0x10;

/// preadv2/pwritev2: offset -1 means the file position (like readv/writev).
fn v2_offset(a: &Args) -> Result<Option<i64>, Errno> {
    if a.u32(5) & !RWF_SUPPORTED != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    Ok(match a.i64(3) {
        -1 => None,
        o => Some(o),
    })
}

fn sys_preadv2(t: &mut Task, a: &Args) -> SysResult {
    let off = v2_offset(a)?;
    let f = t.fds.get(a.fd(0))?;
    let iov = read_iovecs(t, a.u64(1), a.u64(2) as u32 as u64)?;
    do_read(t, &f, &iov, off)
}

fn sys_pwritev2(t: &mut Task, a: &Args) -> SysResult {
    let mut off = v2_offset(a)?;
    let f = t.fds.get(a.fd(0))?;
    if a.u32(5) & RWF_APPEND != 0 && f.ops().seekable() {
        off = Some(f.stat()?.size);
    }
    let iov = read_iovecs(t, a.u64(1), a.u64(2) as u32 as u64)?;
    do_write(t, &f, &iov, off)
}

/// close_range(2): CLOSE_RANGE_CLOEXEC marks instead of closing;
/// CLOSE_RANGE_UNSHARE first gives the task a private copy of a shared table.
fn sys_close_range(t: &mut Task, a: &Args) -> SysResult {
    const CLOSE_RANGE_UNSHARE: u32 = 1 << 1;
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    let (first, last, flags) = (a.u32(0), a.u32(1), a.u32(2));
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    if flags & CLOSE_RANGE_UNSHARE != 0 {
        t.fds = t.fds.fork();
    }
    for fd in t.fds.fds() {
        let u = fd as u32;
        if u < first || u > last {
            continue;
        }
        if flags & CLOSE_RANGE_CLOEXEC != 0 {
            let _ = t.fds.set_cloexec(fd, true);
        } else {
            let _ = t.fds.remove(fd);
        }
    }
    Ok(0)
}

// ---- open / close ----

fn do_open(t: &Task, dirfd: i32, path_addr: u64, how: OpenHow) -> SysResult {
    let path = path_arg(t, path_addr)?;
    let c = creds(t);
    // RESOLVE_BENEATH / RESOLVE_IN_ROOT scope even absolute paths to dirfd.
    let scoped = how.resolve & (fs::vfs::RESOLVE_BENEATH | fs::vfs::RESOLVE_IN_ROOT) != 0;
    let start = if scoped && path.first() == Some(&b'/') {
        start_of(t, dirfd, b".")?
    } else {
        start_of(t, dirfd, &path)?
    };
    let mut how = how;
    how.mode &= !t.fs.umask() & 0o7777;
    let f = t.kernel.vfs.open(&t.fs, &c, &start, &path, &how)?;
    fifo_wait_partner(t, &f, how.flags)?;
    if how.flags & libc::O_TRUNC != 0 && f.ops().page_store().is_some() {
        // Mapped pages of a truncated tmpfs file fault (SIGBUS) from now on.
        t.mm.unmap_past_eof();
    }
    install(t, f, how.flags & libc::O_CLOEXEC != 0)
}

/// A blocking open of one end of a named pipe waits until the other end is
/// opened (Linux's fifo_open); ERESTARTSYS when a signal comes first.
fn fifo_wait_partner(t: &Task, f: &Arc<OpenFile>, flags: i32) -> Result<(), Errno> {
    let acc = flags & libc::O_ACCMODE;
    if flags & libc::O_NONBLOCK != 0 || acc == libc::O_RDWR || f.location().is_none() {
        return Ok(());
    }
    let Some(p) = f.ops().pipe() else {
        return Ok(());
    };
    let reader = acc == libc::O_RDONLY;
    let seen = p.fifo_partner_opens(reader);
    if p.fifo_partner(reader, seen).is_ok() {
        return Ok(());
    }
    f.block(t.waiter(), u32::MAX, || p.fifo_partner(reader, seen))
}

fn sys_open(t: &mut Task, a: &Args) -> SysResult {
    do_open(
        t,
        AT_FDCWD,
        a.u64(0),
        OpenHow {
            flags: a.i32(1),
            mode: a.u32(2),
            resolve: 0,
        },
    )
}

fn sys_openat(t: &mut Task, a: &Args) -> SysResult {
    do_open(
        t,
        a.fd(0),
        a.u64(1),
        OpenHow {
            flags: a.i32(2),
            mode: a.u32(3),
            resolve: 0,
        },
    )
}

fn sys_creat(t: &mut Task, a: &Args) -> SysResult {
    let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
    do_open(
        t,
        AT_FDCWD,
        a.u64(0),
        OpenHow {
            flags,
            mode: a.u32(1),
            resolve: 0,
        },
    )
}

fn sys_openat2(t: &mut Task, a: &Args) -> SysResult {
    const OPEN_HOW_SIZE: usize = 24;
    let size = a.len(3)?;
    if size < OPEN_HOW_SIZE {
        return Err(Errno::EINVAL);
    }
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    let raw = t.copy_in_vec(a.u64(2), size)?;
    if raw[OPEN_HOW_SIZE..].iter().any(|&b| b != 0) {
        return Err(Errno::E2BIG);
    }
    let flags = abi::linux::le_u64(&raw, 0);
    let mode = abi::linux::le_u64(&raw, 8);
    let resolve = abi::linux::le_u64(&raw, 16);
    // Every flag open(2) knows; openat2 rejects the rest.
    let valid = (libc::O_ACCMODE
        | libc::O_CREAT
        | libc::O_EXCL
        | libc::O_NOCTTY
        | libc::O_TRUNC
        | libc::O_APPEND
        | libc::O_NONBLOCK
        | libc::O_DSYNC
        | libc::O_SYNC
        | libc::O_ASYNC
        | libc::O_DIRECT
        | abi::linux::O_LARGEFILE
        | libc::O_DIRECTORY
        | libc::O_NOFOLLOW
        | libc::O_NOATIME
        | libc::O_CLOEXEC
        | libc::O_PATH
        | libc::O_TMPFILE) as u32 as u64;
    if flags & !valid != 0 || resolve & !RESOLVE_ALL != 0 || mode & !0o7777 != 0 {
        return Err(Errno::EINVAL);
    }
    let flags = flags as i32;
    let creating = flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE;
    if mode != 0 && !creating {
        return Err(Errno::EINVAL);
    }
    if flags & libc::O_PATH != 0
        && flags & !(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC) != 0
    {
        return Err(Errno::EINVAL);
    }
    let (rb, ri) = (fs::vfs::RESOLVE_BENEATH, fs::vfs::RESOLVE_IN_ROOT);
    if resolve & rb != 0 && resolve & ri != 0 {
        return Err(Errno::EINVAL);
    }
    do_open(
        t,
        a.fd(0),
        a.u64(1),
        OpenHow {
            flags,
            mode: mode as u32,
            resolve,
        },
    )
}

fn sys_close(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.remove(a.fd(0))?;
    drop(f);
    Ok(0)
}

fn sys_lseek(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.get(a.fd(0))?;
    f.lseek(a.i64(1), a.i32(2))
}

// ---- stat ----

fn stat_at(t: &Task, dirfd: i32, path: &[u8], flags: i32) -> Result<Stat, Errno> {
    if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        if let Some(f) = empty_path_file(t, dirfd)? {
            return f.stat();
        }
    }
    let opts = WalkOpts {
        follow_final: flags & AT_SYMLINK_NOFOLLOW == 0,
        allow_empty: flags & AT_EMPTY_PATH != 0,
        ..Default::default()
    };
    resolve(t, &creds(t), dirfd, path, &opts)?.stat()
}

fn sys_fstat(t: &mut Task, a: &Args) -> SysResult {
    let st = t.fds.get(a.fd(0))?.stat()?;
    t.copy_out(a.u64(1), &st.to_bytes())?;
    Ok(0)
}

fn sys_stat(t: &mut Task, a: &Args) -> SysResult {
    let p = path_arg(t, a.u64(0))?;
    let st = stat_at(t, AT_FDCWD, &p, 0)?;
    t.copy_out(a.u64(1), &st.to_bytes())?;
    Ok(0)
}

fn sys_lstat(t: &mut Task, a: &Args) -> SysResult {
    let p = path_arg(t, a.u64(0))?;
    let st = stat_at(t, AT_FDCWD, &p, AT_SYMLINK_NOFOLLOW)?;
    t.copy_out(a.u64(1), &st.to_bytes())?;
    Ok(0)
}

fn sys_newfstatat(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.i32(3);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT) != 0 {
        return Err(Errno::EINVAL);
    }
    let p = path_arg(t, a.u64(1))?;
    let st = stat_at(t, a.fd(0), &p, flags)?;
    t.copy_out(a.u64(2), &st.to_bytes())?;
    Ok(0)
}

fn sys_statx(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.i32(2);
    let mask = a.u32(3);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE) != 0
        || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
        || mask & 0x8000_0000 != 0
    {
        return Err(Errno::EINVAL);
    }
    // A NULL path with AT_EMPTY_PATH is allowed (Linux 6.11).
    let p = if a.u64(1) == 0 && flags & AT_EMPTY_PATH != 0 {
        Vec::new()
    } else {
        path_arg(t, a.u64(1))?
    };
    let st = stat_at(t, a.fd(0), &p, flags)?;
    t.copy_out(a.u64(4), &st.to_statx_bytes(mask))?;
    Ok(0)
}

fn do_access(t: &Task, dirfd: i32, path_addr: u64, mode: i32, flags: i32) -> SysResult {
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let c = if flags & AT_EACCESS != 0 {
        creds(t)
    } else {
        real_creds(t)
    };
    let p = path_arg(t, path_addr)?;
    if p.is_empty() && flags & AT_EMPTY_PATH != 0 {
        if let Some(f) = empty_path_file(t, dirfd)? {
            let Some(loc) = f.location() else {
                // No location (host stdio): judge by its mode.
                let st = f.stat()?;
                fs::perm::check(&c, st.mode, st.uid, st.gid, mode as u32)?;
                return Ok(0);
            };
            t.kernel.vfs.access(&c, loc, mode as u32)?;
            return Ok(0);
        }
    }
    let opts = WalkOpts {
        follow_final: flags & AT_SYMLINK_NOFOLLOW == 0,
        allow_empty: flags & AT_EMPTY_PATH != 0,
        ..Default::default()
    };
    let loc = resolve(t, &c, dirfd, &p, &opts)?;
    t.kernel.vfs.access(&c, &loc, mode as u32)?;
    Ok(0)
}

fn sys_access(t: &mut Task, a: &Args) -> SysResult {
    do_access(t, AT_FDCWD, a.u64(0), a.i32(1), 0)
}

fn sys_faccessat(t: &mut Task, a: &Args) -> SysResult {
    do_access(t, a.fd(0), a.u64(1), a.i32(2), 0)
}

fn sys_faccessat2(t: &mut Task, a: &Args) -> SysResult {
    do_access(t, a.fd(0), a.u64(1), a.i32(2), a.i32(3))
}

// ---- links, directories, cwd ----

fn do_readlink(t: &Task, dirfd: i32, path_addr: u64, buf: u64, size: i32) -> SysResult {
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    let p = path_arg(t, path_addr)?;
    let loc = if p.is_empty() {
        // readlinkat(fd, "") reads an O_PATH|O_NOFOLLOW fd's link.
        let f = empty_path_file(t, dirfd)?.ok_or(Errno::ENOENT)?;
        f.location().cloned().ok_or(Errno::ENOENT)?
    } else {
        resolve(t, &creds(t), dirfd, &p, &WalkOpts::nofollow())?
    };
    let target = t.kernel.vfs.readlink(&loc)?;
    let n = target.len().min(size as usize);
    t.copy_out(buf, &target[..n])?;
    Ok(n as u64)
}

fn sys_readlink(t: &mut Task, a: &Args) -> SysResult {
    do_readlink(t, AT_FDCWD, a.u64(0), a.u64(1), a.i32(2))
}

fn sys_readlinkat(t: &mut Task, a: &Args) -> SysResult {
    do_readlink(t, a.fd(0), a.u64(1), a.u64(2), a.i32(3))
}

fn sys_getdents64(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.get(a.fd(0))?;
    let b = f.getdents64(a.u32(2) as usize)?;
    t.copy_out(a.u64(1), &b)?;
    Ok(b.len() as u64)
}

fn sys_getdents(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.get(a.fd(0))?;
    let b = f.getdents(a.u32(2) as usize)?;
    t.copy_out(a.u64(1), &b)?;
    Ok(b.len() as u64)
}

fn sys_getcwd(t: &mut Task, a: &Args) -> SysResult {
    let mut p = t.kernel.vfs.path_of(&t.fs, &t.fs.cwd());
    p.push(0);
    if (a.u64(1) as usize) < p.len() {
        return Err(Errno::ERANGE);
    }
    t.copy_out(a.u64(0), &p)?;
    Ok(p.len() as u64)
}

fn sys_chdir(t: &mut Task, a: &Args) -> SysResult {
    let p = path_arg(t, a.u64(0))?;
    let c = creds(t);
    let loc = resolve(t, &c, AT_FDCWD, &p, &WalkOpts::follow())?;
    t.kernel.vfs.check_chdir(&c, &loc)?;
    t.fs.set_cwd(loc);
    Ok(0)
}

fn sys_fchdir(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.get(a.fd(0))?;
    let loc = f.location().cloned().ok_or(Errno::ENOTDIR)?;
    t.kernel.vfs.check_chdir(&creds(t), &loc)?;
    t.fs.set_cwd(loc);
    Ok(0)
}

/// CAP_SYS_CHROOT.
const CAP_SYS_CHROOT: u32 = 18;

/// chroot(2): the directory must be searchable (as chdir), then CAP_SYS_CHROOT.
/// The cwd stays where it is (it may be outside the new root, as in Linux).
fn sys_chroot(t: &mut Task, a: &Args) -> SysResult {
    let p = path_arg(t, a.u64(0))?;
    let c = creds(t);
    let loc = resolve(t, &c, AT_FDCWD, &p, &WalkOpts::follow())?;
    t.kernel.vfs.check_chdir(&c, &loc)?;
    if !t.creds.has_capability(CAP_SYS_CHROOT) {
        return Err(Errno::EPERM);
    }
    t.fs.set_root(loc);
    Ok(0)
}

// ---- fd manipulation ----

fn sys_dup(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.get(a.fd(0))?;
    install(t, f, false)
}

fn do_dup3(t: &Task, old: i32, new: i32, cloexec: bool) -> SysResult {
    let f = t.fds.get(old)?;
    let replaced = t.fds.insert_at(new, f, cloexec, nofile(t))?;
    drop(replaced);
    Ok(new as u64)
}

fn sys_dup2(t: &mut Task, a: &Args) -> SysResult {
    let (old, new) = (a.fd(0), a.fd(1));
    if old == new {
        t.fds.get(old)?;
        return Ok(new as u64);
    }
    do_dup3(t, old, new, false)
}

fn sys_dup3(t: &mut Task, a: &Args) -> SysResult {
    let (old, new, flags) = (a.fd(0), a.fd(1), a.i32(2));
    if flags & !libc::O_CLOEXEC != 0 || old == new {
        return Err(Errno::EINVAL);
    }
    do_dup3(t, old, new, flags & libc::O_CLOEXEC != 0)
}

fn sys_fcntl(t: &mut Task, a: &Args) -> SysResult {
    let fd = a.fd(0);
    let (f, cloexec) = t.fds.get_with_flags(fd)?;
    match a.i32(1) {
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            let min = a.i32(2);
            Ok(t.fds
                .insert_from(min, f, a.i32(1) == libc::F_DUPFD_CLOEXEC, nofile(t))?
                as u64)
        }
        libc::F_GETFD => Ok(if cloexec { libc::FD_CLOEXEC as u64 } else { 0 }),
        libc::F_SETFD => {
            t.fds.set_cloexec(fd, a.i32(2) & libc::FD_CLOEXEC != 0)?;
            Ok(0)
        }
        libc::F_GETFL => Ok(f.status_flags() as u32 as u64),
        libc::F_SETFL => {
            if f.is_path_only() {
                return Err(Errno::EBADF);
            }
            // O_NOATIME can only be set by the owner or with CAP_FOWNER.
            if a.i32(2) & libc::O_NOATIME != 0 && f.status_flags() & libc::O_NOATIME == 0 {
                let uid = match f.location() {
                    Some(loc) => loc.attr().uid,
                    None => f.stat()?.uid,
                };
                if !creds(t).owner_or_capable(uid) {
                    return Err(Errno::EPERM);
                }
            }
            f.set_status_flags_async(a.i32(2), fd, t.kernel.sigio_sender())?;
            Ok(0)
        }
        F_GETLK | F_SETLK | F_SETLKW | F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW => {
            fcntl_lock(t, &f, a.i32(1), a.u64(2))
        }
        F_SETOWN | F_GETOWN | F_SETOWN_EX | F_GETOWN_EX | F_SETSIG | F_GETSIG => {
            fcntl_owner(t, &f, a.i32(1), a.u64(2))
        }
        libc::F_ADD_SEALS => {
            // Only tmpfs (memfd) files have seals; the fd must be writable.
            let store = f.ops().page_store().ok_or(Errno::EINVAL)?;
            if !f.writable() {
                return Err(Errno::EPERM);
            }
            store.add_seals(a.u32(2))?;
            Ok(0)
        }
        libc::F_GET_SEALS => Ok(f.ops().page_store().ok_or(Errno::EINVAL)?.seals() as u64),
        libc::F_GETPIPE_SZ => Ok(f.ops().pipe().ok_or(Errno::EBADF)?.capacity() as u64),
        libc::F_SETPIPE_SZ => {
            let pipe = f.ops().pipe().ok_or(Errno::EBADF)?;
            // CAP_SYS_RESOURCE may exceed pipe-max-size.
            let privileged = t.creds.has_capability(fs::perm::CAP_SYS_RESOURCE);
            Ok(pipe.set_capacity(a.u32(2) as u64, privileged)? as u64)
        }
        _ => Err(Errno::EINVAL),
    }
}

const F_GETLK: i32 = 5;
const F_SETLK: i32 = 6;
const F_SETLKW: i32 = 7;
const F_SETOWN: i32 = 8;
const F_GETOWN: i32 = 9;
const F_SETSIG: i32 = 10;
const F_GETSIG: i32 = 11;
const F_SETOWN_EX: i32 = 15;
const F_GETOWN_EX: i32 = 16;
const F_OFD_GETLK: i32 = 36;
const F_OFD_SETLK: i32 = 37;
const F_OFD_SETLKW: i32 = 38;

/// Record locks: F_GETLK/F_SETLK/F_SETLKW (owned by the process's fd table)
/// and their F_OFD_* forms (owned by the open file description).
fn fcntl_lock(t: &Task, f: &OpenFile, cmd: i32, addr: u64) -> SysResult {
    use fs::file::{Flock, LockCmd};
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    let mut raw = [0u8; Flock::SIZE];
    t.copy_in(addr, &mut raw)?;
    let mut fl = Flock::from_bytes(&raw);
    let lcmd = match cmd {
        F_GETLK | F_OFD_GETLK => LockCmd::Get,
        F_SETLK | F_OFD_SETLK => LockCmd::Set,
        _ => LockCmd::SetWait,
    };
    let ofd = matches!(cmd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW);
    let owner = t.fds.posix_lock_owner();
    f.record_lock(lcmd, ofd, owner, t.tgid, &mut fl, t.waiter())?;
    if lcmd == LockCmd::Get {
        t.copy_out(addr, &fl.to_bytes())?;
    }
    Ok(0)
}

/// F_SETOWN/F_GETOWN, their _EX forms, and F_SETSIG/F_GETSIG.
fn fcntl_owner(t: &Task, f: &OpenFile, cmd: i32, arg: u64) -> SysResult {
    use fs::fasync::{FOwner, OwnerKind};
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    let fown = f.fown();
    match cmd {
        F_SETOWN => {
            let who = arg as i32;
            if who == i32::MIN {
                return Err(Errno::EINVAL);
            }
            let kind = if who < 0 {
                OwnerKind::Pgrp
            } else {
                OwnerKind::Pid
            };
            let id = who.abs();
            if id != 0 && !t.kernel.pid_exists(id) {
                return Err(Errno::ESRCH);
            }
            fown.set_owner(FOwner { kind, id });
            Ok(0)
        }
        F_GETOWN => {
            let o = fown.owner();
            if o.id == 0 || !t.kernel.fown_alive(o) {
                return Ok(0);
            }
            let v = if o.kind == OwnerKind::Pgrp {
                -o.id
            } else {
                o.id
            };
            Ok(v as i64 as u64)
        }
        F_SETOWN_EX => {
            let mut raw = [0u8; 8];
            t.copy_in(arg, &mut raw)?;
            let ty = abi::linux::le_u32(&raw, 0) as i32;
            let id = abi::linux::le_u32(&raw, 4) as i32;
            let kind = OwnerKind::from_ex(ty).ok_or(Errno::EINVAL)?;
            if id != 0 && (id < 0 || !t.kernel.pid_exists(id)) {
                return Err(Errno::ESRCH);
            }
            fown.set_owner(FOwner { kind, id });
            Ok(0)
        }
        F_GETOWN_EX => {
            let o = fown.owner();
            let id = if o.id != 0 && t.kernel.fown_alive(o) {
                o.id
            } else {
                0
            };
            let mut raw = [0u8; 8];
            raw[..4].copy_from_slice(&o.kind.to_ex().to_le_bytes());
            raw[4..].copy_from_slice(&id.to_le_bytes());
            t.copy_out(arg, &raw)?;
            Ok(0)
        }
        F_SETSIG => {
            if arg > 64 {
                return Err(Errno::EINVAL);
            }
            fown.set_sig(arg as i32);
            Ok(0)
        }
        _ => Ok(fown.sig() as u64),
    }
}

/// flock(2). The operation is checked before the fd, as Linux does.
fn sys_flock(t: &mut Task, a: &Args) -> SysResult {
    let Some((op, nb)) = fs::lock::FlockOp::decode(a.i32(1))? else {
        return Ok(0);
    };
    let f = t.fds.get(a.fd(0))?;
    f.flock(op, nb, t.waiter())?;
    Ok(0)
}

fn sys_ioctl(t: &mut Task, a: &Args) -> SysResult {
    const FIONCLEX: u32 = 0x5450;
    const FIOCLEX: u32 = 0x5451;
    const FIONBIO: u32 = 0x5421;
    const FIOASYNC: u32 = 0x5452;
    let fd = a.fd(0);
    let f = t.fds.get(fd)?;
    match a.u32(1) {
        FIOCLEX => t.fds.set_cloexec(fd, true).map(|_| 0),
        FIONCLEX => t.fds.set_cloexec(fd, false).map(|_| 0),
        FIONBIO => {
            let mut b = [0u8; 4];
            t.copy_in(a.u64(2), &mut b)?;
            f.set_nonblocking(i32::from_le_bytes(b) != 0)?;
            Ok(0)
        }
        FIOASYNC => {
            // Linux's ioctl_fioasync: O_ASYNC through the file's fasync;
            // ENOTTY for files without one.
            let mut b = [0u8; 4];
            t.copy_in(a.u64(2), &mut b)?;
            let on = i32::from_le_bytes(b) != 0;
            let old = f.status_flags();
            if (old & libc::O_ASYNC != 0) == on {
                return Ok(0);
            }
            if !f.ops().supports_fasync() {
                return Err(Errno::ENOTTY);
            }
            let flags = if on {
                old | libc::O_ASYNC
            } else {
                old & !libc::O_ASYNC
            };
            f.set_status_flags_async(flags, fd, t.kernel.sigio_sender())?;
            Ok(0)
        }
        fs::devpts::TIOCGPTPEER => {
            let term = match f.ops().terminal() {
                Some((term, true)) => term,
                Some((_, false)) => return Err(Errno::EIO),
                None => return Err(Errno::ENOTTY),
            };
            let flags = a.i32(2);
            let allowed = libc::O_ACCMODE | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
            if flags & !allowed != 0 {
                return Err(Errno::EINVAL);
            }
            let ops = term.open_replica(flags)?;
            // The peer's path is /dev/pts/N, as if opened by name (ttyname).
            let path = format!("/dev/pts/{}", term.index()).into_bytes();
            let root = t.fs.root();
            let loc = t
                .kernel
                .vfs
                .walk(&t.fs, &creds(t), &root, &path, &WalkOpts::nofollow())
                .ok();
            let file = OpenFile::new(ops, flags & !libc::O_CLOEXEC, loc);
            install(t, file, flags & libc::O_CLOEXEC != 0)
        }
        cmd if f.ops().terminal().is_none()
            && f.ops().host_fd().is_some()
            && is_host_tty(&f.stat()?) =>
        {
            // A host terminal: job control is the sandbox's own.
            match t.kernel.vfs.devpts().host_tty_ioctl(&*t, cmd, a.u64(2)) {
                Some(r) => r,
                None => f.ioctl(&*t, cmd, a.u64(2)),
            }
        }
        cmd => match f.ioctl(&*t, cmd, a.u64(2)) {
            Err(Errno::ENOTTY) => crate::sys_socket::socket_ioctl_fallback(t, &f, cmd, a.u64(2))
                .unwrap_or(Err(Errno::ENOTTY)),
            r => r,
        },
    }
}

/// Whether a host file is a terminal (by its device: ttys, the console, ptys).
fn is_host_tty(st: &Stat) -> bool {
    let major = ((st.rdev >> 8) & 0xfff) as u32;
    st.mode & libc::S_IFMT == libc::S_IFCHR && matches!(major, 4 | 5 | 136..=143)
}

fn sys_statfs(t: &mut Task, a: &Args) -> SysResult {
    let p = path_arg(t, a.u64(0))?;
    let s = resolve(t, &creds(t), AT_FDCWD, &p, &WalkOpts::follow())?.statfs()?;
    t.copy_out(a.u64(1), &s.to_bytes())?;
    Ok(0)
}

fn sys_fstatfs(t: &mut Task, a: &Args) -> SysResult {
    let s = t.fds.get(a.fd(0))?.statfs()?;
    t.copy_out(a.u64(1), &s.to_bytes())?;
    Ok(0)
}

fn sys_umask(t: &mut Task, a: &Args) -> SysResult {
    Ok(t.fs.set_umask(a.u32(0) & 0o777) as u64)
}

/// fadvise64(fd, offset, len, advice): advice only (no page cache to tune),
/// with Linux's checks: EBADF, ESPIPE for pipes and FIFOs, EINVAL for an
/// unknown advice or a negative length.
fn sys_fadvise64(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.get(a.fd(0))?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    if f.stat()?.mode & libc::S_IFMT == libc::S_IFIFO {
        return Err(Errno::ESPIPE);
    }
    // POSIX_FADV_NORMAL ..= POSIX_FADV_NOREUSE.
    if a.i64(2) < 0 || !(0..=5).contains(&a.i32(3)) {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

// ---- mutating calls (path resolution first, then the VFS's checks) ----

fn do_create(t: &Task, dirfd: i32, path_addr: u64, what: NewNode) -> SysResult {
    let p = path_arg(t, path_addr)?;
    let start = start_of(t, dirfd, &p)?;
    t.kernel
        .vfs
        .make_node_at(&t.fs, &creds(t), &start, &p, what)?;
    Ok(0)
}

fn umasked(t: &Task, mode: u32) -> u32 {
    mode & 0o7777 & !t.fs.umask()
}

fn sys_mkdir(t: &mut Task, a: &Args) -> SysResult {
    let mode = umasked(t, a.u32(1) & 0o1777);
    do_create(t, AT_FDCWD, a.u64(0), NewNode::Dir { mode })
}

fn sys_mkdirat(t: &mut Task, a: &Args) -> SysResult {
    let mode = umasked(t, a.u32(2) & 0o1777);
    do_create(t, a.fd(0), a.u64(1), NewNode::Dir { mode })
}

fn check_mknod_mode(mode: u32) -> Result<(), Errno> {
    match mode & libc::S_IFMT {
        0 | libc::S_IFREG | libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO | libc::S_IFSOCK => {
            Ok(())
        }
        libc::S_IFDIR => Err(Errno::EPERM),
        _ => Err(Errno::EINVAL),
    }
}

fn mknod_node(t: &Task, mode: u32, dev: u64) -> NewNode {
    let ty = match mode & libc::S_IFMT {
        0 => libc::S_IFREG,
        x => x,
    };
    let rdev = if matches!(ty, libc::S_IFCHR | libc::S_IFBLK) {
        // The 32-bit dev_t of the syscall ABI (old encoding) as Linux's new one.
        let d = dev as u32;
        abi::linux::makedev((d >> 8) & 0xfff, (d & 0xff) | ((d >> 12) & 0xfff00))
    } else {
        0
    };
    NewNode::Node {
        mode: ty | umasked(t, mode),
        rdev,
    }
}

fn sys_mknod(t: &mut Task, a: &Args) -> SysResult {
    check_mknod_mode(a.u32(1))?;
    let what = mknod_node(t, a.u32(1), a.u64(2));
    do_create(t, AT_FDCWD, a.u64(0), what)
}

fn sys_mknodat(t: &mut Task, a: &Args) -> SysResult {
    check_mknod_mode(a.u32(2))?;
    let what = mknod_node(t, a.u32(2), a.u64(3));
    do_create(t, a.fd(0), a.u64(1), what)
}

fn do_remove(t: &Task, dirfd: i32, path_addr: u64, is_dir: bool) -> SysResult {
    let p = path_arg(t, path_addr)?;
    let start = start_of(t, dirfd, &p)?;
    t.kernel
        .vfs
        .remove_at(&t.fs, &creds(t), &start, &p, is_dir)?;
    Ok(0)
}

fn sys_unlink(t: &mut Task, a: &Args) -> SysResult {
    do_remove(t, AT_FDCWD, a.u64(0), false)
}

fn sys_unlinkat(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.i32(2);
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    do_remove(t, a.fd(0), a.u64(1), flags & AT_REMOVEDIR != 0)
}

fn sys_rmdir(t: &mut Task, a: &Args) -> SysResult {
    do_remove(t, AT_FDCWD, a.u64(0), true)
}

fn do_rename(t: &Task, olddir: i32, old: u64, newdir: i32, new: u64, flags: u32) -> SysResult {
    let op = path_arg(t, old)?;
    let np = path_arg(t, new)?;
    let os = start_of(t, olddir, &op)?;
    let ns = start_of(t, newdir, &np)?;
    t.kernel
        .vfs
        .rename_at2(&t.fs, &creds(t), &os, &op, &ns, &np, flags)?;
    Ok(0)
}

fn sys_rename(t: &mut Task, a: &Args) -> SysResult {
    do_rename(t, AT_FDCWD, a.u64(0), AT_FDCWD, a.u64(1), 0)
}

fn sys_renameat(t: &mut Task, a: &Args) -> SysResult {
    do_rename(t, a.fd(0), a.u64(1), a.fd(2), a.u64(3), 0)
}

fn sys_renameat2(t: &mut Task, a: &Args) -> SysResult {
    const RENAME_NOREPLACE: u32 = 1;
    const RENAME_EXCHANGE: u32 = 2;
    const RENAME_WHITEOUT: u32 = 4;
    let flags = a.u32(4);
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0
        || (flags & RENAME_NOREPLACE != 0 && flags & RENAME_EXCHANGE != 0)
        || (flags & RENAME_WHITEOUT != 0 && flags & RENAME_EXCHANGE != 0)
    {
        return Err(Errno::EINVAL);
    }
    if flags & RENAME_WHITEOUT != 0 {
        // Whiteouts are for overlay file systems; tmpfs supports them, we don't yet.
        return Err(Errno::EINVAL);
    }
    do_rename(t, a.fd(0), a.u64(1), a.fd(2), a.u64(3), flags)
}

fn do_symlink(t: &Task, target: u64, newdir: i32, new: u64) -> SysResult {
    let target = path_arg(t, target)?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    do_create(t, newdir, new, NewNode::Symlink { target })
}

fn sys_symlink(t: &mut Task, a: &Args) -> SysResult {
    do_symlink(t, a.u64(0), AT_FDCWD, a.u64(1))
}

fn sys_symlinkat(t: &mut Task, a: &Args) -> SysResult {
    do_symlink(t, a.u64(0), a.fd(1), a.u64(2))
}

fn do_link(t: &Task, olddir: i32, old: u64, newdir: i32, new: u64, flags: i32) -> SysResult {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let op = path_arg(t, old)?;
    let c = creds(t);
    let opts = WalkOpts {
        follow_final: flags & AT_SYMLINK_FOLLOW != 0,
        allow_empty: flags & AT_EMPTY_PATH != 0,
        ..Default::default()
    };
    let src = resolve(t, &c, olddir, &op, &opts)?;
    if src.is_dir() {
        return Err(Errno::EPERM);
    }
    do_create(t, newdir, new, NewNode::Link { target: src })
}

fn sys_link(t: &mut Task, a: &Args) -> SysResult {
    do_link(t, AT_FDCWD, a.u64(0), AT_FDCWD, a.u64(1), 0)
}

fn sys_linkat(t: &mut Task, a: &Args) -> SysResult {
    do_link(t, a.fd(0), a.u64(1), a.fd(2), a.u64(3), a.i32(4))
}

/// chmod/chown/utimes/truncate on a path: resolve, then the VFS's checks and
/// the file system's setattr.
fn setattr_path(t: &Task, dirfd: i32, path: &[u8], flags: i32, attr: &SetAttr) -> SysResult {
    if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        if let Some(f) = empty_path_file(t, dirfd)? {
            return setattr_file(t, &f, attr);
        }
    }
    let opts = WalkOpts {
        follow_final: flags & AT_SYMLINK_NOFOLLOW == 0,
        allow_empty: flags & AT_EMPTY_PATH != 0,
        ..Default::default()
    };
    let loc = resolve(t, &creds(t), dirfd, path, &opts)?;
    t.kernel.vfs.setattr(&creds(t), &loc, attr, false)?;
    Ok(0)
}

fn setattr_file(t: &Task, f: &OpenFile, attr: &SetAttr) -> SysResult {
    match f.location() {
        Some(loc) => t.kernel.vfs.setattr(&creds(t), loc, attr, true).map(|_| 0),
        // Host stdio: not ours to change.
        None => Err(Errno::EPERM),
    }
}

fn mode_attr(mode: u32) -> SetAttr {
    SetAttr {
        mode: Some(mode & 0o7777),
        ..Default::default()
    }
}

/// chown's ids: -1 leaves one unchanged.
fn owner_attr(uid: u32, gid: u32) -> SetAttr {
    SetAttr {
        uid: (uid != u32::MAX).then_some(uid),
        gid: (gid != u32::MAX).then_some(gid),
        ..Default::default()
    }
}

fn sys_chmod(t: &mut Task, a: &Args) -> SysResult {
    let p = path_arg(t, a.u64(0))?;
    setattr_path(t, AT_FDCWD, &p, 0, &mode_attr(a.u32(1)))
}

fn sys_fchmod(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.get(a.fd(0))?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    setattr_file(t, &f, &mode_attr(a.u32(1)))
}

fn sys_fchmodat(t: &mut Task, a: &Args) -> SysResult {
    let p = path_arg(t, a.u64(1))?;
    setattr_path(t, a.fd(0), &p, 0, &mode_attr(a.u32(2)))
}

fn sys_chown(t: &mut Task, a: &Args) -> SysResult {
    let p = path_arg(t, a.u64(0))?;
    setattr_path(t, AT_FDCWD, &p, 0, &owner_attr(a.u32(1), a.u32(2)))
}

fn sys_lchown(t: &mut Task, a: &Args) -> SysResult {
    let p = path_arg(t, a.u64(0))?;
    setattr_path(
        t,
        AT_FDCWD,
        &p,
        AT_SYMLINK_NOFOLLOW,
        &owner_attr(a.u32(1), a.u32(2)),
    )
}

fn sys_fchown(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.get(a.fd(0))?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    setattr_file(t, &f, &owner_attr(a.u32(1), a.u32(2)))
}

fn sys_fchownat(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.i32(4);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let p = path_arg(t, a.u64(1))?;
    setattr_path(t, a.fd(0), &p, flags, &owner_attr(a.u32(2), a.u32(3)))
}

fn size_attr(size: u64) -> SetAttr {
    SetAttr {
        size: Some(size),
        ..Default::default()
    }
}

fn sys_truncate(t: &mut Task, a: &Args) -> SysResult {
    if a.i64(1) < 0 {
        return Err(Errno::EINVAL);
    }
    let p = path_arg(t, a.u64(0))?;
    let loc = resolve(t, &creds(t), AT_FDCWD, &p, &WalkOpts::follow())?;
    let at = loc.attr();
    if at.is_dir() {
        return Err(Errno::EISDIR);
    }
    if !at.is_regular() {
        return Err(Errno::EINVAL);
    }
    t.kernel
        .vfs
        .setattr(&creds(t), &loc, &size_attr(a.u64(1)), false)?;
    t.mm.unmap_past_eof();
    Ok(0)
}

fn sys_ftruncate(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.get(a.fd(0))?;
    if a.i64(1) < 0 || !f.writable() {
        return Err(Errno::EINVAL);
    }
    match f.location() {
        Some(loc) if loc.attr().is_regular() => t
            .kernel
            .vfs
            .setattr(&creds(t), loc, &size_attr(a.u64(1)), true)
            .map(|_| {
                t.mm.unmap_past_eof();
                0
            }),
        _ => Err(Errno::EINVAL),
    }
}

const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

/// The SetAttr of utimensat's `times` (NULL: both now).
fn times_attr(times: Option<[(i64, i64); 2]>) -> SetAttr {
    let conv = |(sec, nsec): (i64, i64)| match nsec {
        UTIME_NOW => Some(TimeSet::Now),
        UTIME_OMIT => None,
        _ => Some(TimeSet::At(abi::linux::Timespec { sec, nsec })),
    };
    match times {
        None => SetAttr {
            atime: Some(TimeSet::Now),
            mtime: Some(TimeSet::Now),
            ..Default::default()
        },
        Some([at, mt]) => SetAttr {
            atime: conv(at),
            mtime: conv(mt),
            ..Default::default()
        },
    }
}

fn sys_utimensat(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.i32(3);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let mut times = None;
    if a.u64(2) != 0 {
        // Validate the times as Linux does (EINVAL on a bad tv_nsec).
        let b = t.copy_in_vec(a.u64(2), 32)?;
        let mut ts = [(0i64, 0i64); 2];
        for (i, slot) in ts.iter_mut().enumerate() {
            let sec = abi::linux::le_u64(&b, i * 16) as i64;
            let nsec = abi::linux::le_u64(&b, i * 16 + 8) as i64;
            let special = nsec == UTIME_NOW || nsec == UTIME_OMIT;
            if !special && !(0..1_000_000_000).contains(&nsec) {
                return Err(Errno::EINVAL);
            }
            *slot = (sec, nsec);
        }
        times = Some(ts);
    }
    let attr = times_attr(times);
    if attr.atime.is_none() && attr.mtime.is_none() {
        // Both UTIME_OMIT: nothing to do (Linux still resolves the path).
        if a.u64(1) != 0 {
            let p = path_arg(t, a.u64(1))?;
            if !(p.is_empty() && flags & AT_EMPTY_PATH != 0) {
                let opts = WalkOpts {
                    follow_final: flags & AT_SYMLINK_NOFOLLOW == 0,
                    allow_empty: flags & AT_EMPTY_PATH != 0,
                    ..Default::default()
                };
                resolve(t, &creds(t), a.fd(0), &p, &opts)?;
            }
        }
        return Ok(0);
    }
    if a.u64(1) == 0 {
        // futimens(fd): dirfd is the file.
        let dirfd = a.fd(0);
        if dirfd == AT_FDCWD {
            return Err(Errno::EFAULT);
        }
        let f = t.fds.get(dirfd)?;
        return setattr_file(t, &f, &attr);
    }
    let p = path_arg(t, a.u64(1))?;
    setattr_path(t, a.fd(0), &p, flags, &attr)
}

/// utimes/futimesat: `struct timeval[2]` (NULL: now).
fn do_utimes(t: &Task, dirfd: i32, path: u64, tv: u64) -> SysResult {
    let times = if tv != 0 {
        let b = t.copy_in_vec(tv, 32)?;
        let mut ts = [(0i64, 0i64); 2];
        for (i, slot) in ts.iter_mut().enumerate() {
            let sec = abi::linux::le_u64(&b, i * 16) as i64;
            let usec = abi::linux::le_u64(&b, i * 16 + 8) as i64;
            if !(0..1_000_000).contains(&usec) {
                return Err(Errno::EINVAL);
            }
            *slot = (sec, usec * 1000);
        }
        Some(ts)
    } else {
        None
    };
    let p = path_arg(t, path)?;
    setattr_path(t, dirfd, &p, 0, &times_attr(times))
}

fn sys_utimes(t: &mut Task, a: &Args) -> SysResult {
    do_utimes(t, AT_FDCWD, a.u64(0), a.u64(1))
}

fn sys_futimesat(t: &mut Task, a: &Args) -> SysResult {
    do_utimes(t, a.fd(0), a.u64(1), a.u64(2))
}

/// utime(2): `struct utimbuf { time_t actime, modtime; }` (NULL: now).
fn sys_utime(t: &mut Task, a: &Args) -> SysResult {
    let times = if a.u64(1) != 0 {
        let b = t.copy_in_vec(a.u64(1), 16)?;
        Some([
            (abi::linux::le_u64(&b, 0) as i64, 0),
            (abi::linux::le_u64(&b, 8) as i64, 0),
        ])
    } else {
        None
    };
    let p = path_arg(t, a.u64(0))?;
    setattr_path(t, AT_FDCWD, &p, 0, &times_attr(times))
}

fn sys_fallocate(t: &mut Task, a: &Args) -> SysResult {
    const FALLOC_FL_KEEP_SIZE: i32 = 1;
    let f = t.fds.get(a.fd(0))?;
    let mode = a.i32(1);
    let (off, len) = (a.i64(2), a.i64(3));
    if off < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    const FALLOC_FL_PUNCH_HOLE: i32 = 2;
    let punch = mode == FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    if mode & !FALLOC_FL_KEEP_SIZE != 0 && !punch {
        // Range collapse/insert, zeroing: not yet (nor punching without
        // KEEP_SIZE, which Linux rejects too).
        return Err(Errno::EOPNOTSUPP);
    }
    let loc = match f.location() {
        Some(l) => l,
        None => return Err(Errno::ENODEV),
    };
    let at = loc.attr();
    if at.is_dir() {
        return Err(Errno::EISDIR);
    }
    if !at.is_regular() {
        return Err(Errno::ENODEV);
    }
    if off.checked_add(len).is_none() {
        return Err(Errno::EFBIG);
    }
    if loc.mount.read_only() {
        return Err(Errno::EROFS);
    }
    // A file backed by a host fd (gofer) allocates (or punches) on it; others
    // in the inode.
    if let Some(r) = f.ops().fallocate(mode, off as u64, len as u64) {
        r?;
        return Ok(0);
    }
    if punch {
        t.kernel.vfs.punch_hole(loc, off as u64, len as u64)?;
        return Ok(0);
    }
    t.kernel
        .vfs
        .allocate(loc, off as u64, len as u64, mode & FALLOC_FL_KEEP_SIZE != 0)?;
    Ok(0)
}
