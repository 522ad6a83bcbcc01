//! AF_UNIX socket pairs: socketpair(2) and the socket calls that work on a
//! connected pair: sendto(2), recvfrom(2), sendmsg(2), recvmsg(2),
//! shutdown(2), getsockopt(2), setsockopt(2), getsockname(2), getpeername(2).
//! socket(2) itself is not implemented yet (ENOSYS). Control messages:
//! SCM_RIGHTS passes files; SCM_CREDENTIALS is not supported yet (sendmsg
//! fails with EINVAL, recvmsg never returns one).

use std::sync::Arc;

use abi::sysno as nr;
use abi::{Errno, SysResult};
use fs::anon::unix::{self, PeerCred, Rights, UnixSocket};
use fs::OpenFile;
use sentry::Task;

use crate::sys_file::{copy_in_iov, copy_out_iov, read_iovecs};
use crate::{Arg, Args, Table};

/// Largest piece a stream send or receive moves at once.
const CHUNK: usize = 1 << 20;
/// Largest single read/write (Linux's MAX_RW_COUNT).
const MAX_RW_COUNT: usize = 0x7fff_f000;
const UIO_MAXIOV: u64 = 1024;
/// sizeof(struct cmsghdr) on x86-64.
const CMSGHDR_LEN: u64 = 16;
const SOCK_TYPE_MASK: i32 = 0xf;
/// Linux's AF_MAX: families at or above it are EAFNOSUPPORT.
const AF_MAX: i32 = 46;

pub(crate) fn register(t: &mut Table) {
    use Arg::*;
    t.add(nr::SOCKETPAIR, sys_socketpair, &[Dec, Hex, Dec, Hex]);
    t.add(
        nr::SENDTO,
        sys_sendto,
        &[Fd, InBuf(2), UDec, Hex, Hex, UDec],
    );
    t.add(
        nr::RECVFROM,
        sys_recvfrom,
        &[Fd, OutBuf, UDec, Hex, Hex, Hex],
    );
    t.add(nr::SENDMSG, sys_sendmsg, &[Fd, Hex, Hex]);
    t.add(nr::RECVMSG, sys_recvmsg, &[Fd, Hex, Hex]);
    t.add(nr::SHUTDOWN, sys_shutdown, &[Fd, Dec]);
    t.add(nr::GETSOCKOPT, sys_getsockopt, &[Fd, Dec, Dec, Hex, Hex]);
    t.add(nr::SETSOCKOPT, sys_setsockopt, &[Fd, Dec, Dec, Hex, UDec]);
    t.add(nr::GETSOCKNAME, sys_getsockname, &[Fd, Hex, Hex]);
    t.add(nr::GETPEERNAME, sys_getpeername, &[Fd, Hex, Hex]);
}

fn sys_socketpair(t: &mut Task, a: &Args) -> SysResult {
    let (domain, ty, protocol, sv) = (a.i32(0), a.i32(1), a.i32(2), a.u64(3));
    let flags = ty & !SOCK_TYPE_MASK;
    if flags & !(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    if !(0..AF_MAX).contains(&domain) {
        return Err(Errno::EAFNOSUPPORT);
    }
    let base = ty & SOCK_TYPE_MASK;
    // SOCK_MAX: SOCK_PACKET (10) is the last type.
    if base > 10 {
        return Err(Errno::EINVAL);
    }
    if domain != libc::AF_UNIX {
        // Other families have no socketpair (or are not in this kernel).
        return Err(match domain {
            libc::AF_INET | libc::AF_INET6 | libc::AF_NETLINK | libc::AF_PACKET => {
                Errno::EOPNOTSUPP
            }
            _ => Errno::EAFNOSUPPORT,
        });
    }
    if protocol != 0 && protocol != libc::PF_UNIX {
        return Err(Errno::EPROTONOSUPPORT);
    }
    let base = match base {
        libc::SOCK_STREAM | libc::SOCK_SEQPACKET | libc::SOCK_DGRAM => base,
        // BSD's AF_UNIX SOCK_RAW: Linux makes it a datagram socket.
        libc::SOCK_RAW => libc::SOCK_DGRAM,
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    };
    let cred = PeerCred {
        pid: t.tgid,
        uid: t.creds.euid,
        gid: t.creds.egid,
    };
    let nonblock = if flags & libc::SOCK_NONBLOCK != 0 {
        libc::O_NONBLOCK
    } else {
        0
    };
    let [s0, s1] = unix::new_pair(base, nonblock, cred, t.creds.fsuid, t.creds.fsgid);
    let cloexec = flags & libc::SOCK_CLOEXEC != 0;
    let limit = t.rlimits[libc::RLIMIT_NOFILE as usize].cur;
    let fd0 = t.fds.insert(s0, cloexec, limit)?;
    let fd1 = match t.fds.insert(s1, cloexec, limit) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = t.fds.remove(fd0);
            return Err(e);
        }
    };
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&fd0.to_le_bytes());
    out[4..].copy_from_slice(&fd1.to_le_bytes());
    if let Err(e) = t.copy_out(sv, &out) {
        let _ = t.fds.remove(fd0);
        let _ = t.fds.remove(fd1);
        return Err(e);
    }
    Ok(0)
}

fn socket_of(t: &Task, fd: i32) -> Result<(Arc<OpenFile>, Arc<UnixSocket>), Errno> {
    let f = t.fds.get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    let s = unix::as_socket(&f).ok_or(Errno::ENOTSOCK)?;
    Ok((f, s))
}

/// Runs `op` once (MSG_DONTWAIT) or until it stops returning EAGAIN.
fn wait_for<T>(
    t: &Task,
    f: &OpenFile,
    dontwait: bool,
    events: u32,
    op: impl FnMut() -> Result<T, Errno>,
) -> Result<T, Errno> {
    let mut op = op;
    if dontwait {
        op()
    } else {
        f.block(t.waiter(), events, op)
    }
}

fn do_send(
    t: &mut Task,
    fd: i32,
    iov: &[(u64, usize)],
    flags: i32,
    named: bool,
    rights: Option<Rights>,
) -> SysResult {
    let mut rights = rights;
    let (f, s) = socket_of(t, fd)?;
    if flags & libc::MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    if named {
        // A connected pair has its destination; Linux's unix_stream_sendmsg
        // says EISCONN. Datagram sends to a named address need bound sockets,
        // which do not exist yet.
        return Err(if s.sock_type() == libc::SOCK_DGRAM {
            Errno::ECONNREFUSED
        } else {
            Errno::EISCONN
        });
    }
    let dontwait = flags & libc::MSG_DONTWAIT != 0;
    let ev = fs::waiter::EVENT_OUT;
    let total: usize = iov.iter().map(|v| v.1).sum();
    let res = if s.sock_type() == libc::SOCK_STREAM {
        if total == 0 {
            s.send(&[], &mut None)
        } else {
            let mut done = 0usize;
            let err = loop {
                let want = (total - done).min(CHUNK);
                let mut buf = vec![0u8; want];
                if let Err(e) = copy_in_iov(t, iov, done, &mut buf) {
                    break e;
                }
                let mut pos = 0;
                let r = loop {
                    match wait_for(t, &f, dontwait, ev, || s.send(&buf[pos..], &mut rights)) {
                        Ok(n) => pos += n,
                        Err(e) => break Err(e),
                    }
                    if pos == want {
                        break Ok(());
                    }
                };
                done += pos;
                if let Err(e) = r {
                    break e;
                }
                if done == total {
                    break Errno(0);
                }
            };
            if err == Errno(0) || (done > 0 && err != Errno::EPIPE) {
                Ok(done)
            } else if done > 0 {
                // Linux signals the writer even after a partial write.
                if flags & libc::MSG_NOSIGNAL == 0 {
                    t.send_signal_to_self(libc::SIGPIPE);
                }
                return Ok(done as u64);
            } else {
                Err(err)
            }
        }
    } else {
        if total > 2 * unix::MAX_BUF {
            return Err(Errno::EMSGSIZE);
        }
        let mut buf = vec![0u8; total];
        copy_in_iov(t, iov, 0, &mut buf)?;
        wait_for(t, &f, dontwait, ev, || s.send(&buf, &mut rights))
    };
    match res {
        Ok(n) => Ok(n as u64),
        Err(e) => {
            // Only stream sockets raise SIGPIPE (unix_stream_sendmsg).
            if e == Errno::EPIPE
                && flags & libc::MSG_NOSIGNAL == 0
                && s.sock_type() == libc::SOCK_STREAM
            {
                t.send_signal_to_self(libc::SIGPIPE);
            }
            Err(e)
        }
    }
}

/// Receives into `iov`: the count the call returns, the msg_flags and the
/// files that came with the data.
fn do_recv(
    t: &Task,
    fd: i32,
    iov: &[(u64, usize)],
    flags: i32,
) -> Result<(u64, i32, Option<Rights>), Errno> {
    let (f, s) = socket_of(t, fd)?;
    let stream = s.sock_type() == libc::SOCK_STREAM;
    if flags & libc::MSG_OOB != 0 {
        return Err(if stream {
            Errno::EINVAL
        } else {
            Errno::EOPNOTSUPP
        });
    }
    if flags & libc::MSG_ERRQUEUE != 0 {
        return Err(Errno::EAGAIN);
    }
    let peek = flags & libc::MSG_PEEK != 0;
    let dontwait = flags & libc::MSG_DONTWAIT != 0;
    let nonblock = dontwait || f.status_flags() & libc::O_NONBLOCK != 0;
    let ev = fs::waiter::EVENT_IN;
    let total: usize = iov.iter().map(|v| v.1).sum::<usize>().min(MAX_RW_COUNT);
    if stream {
        let waitall = flags & libc::MSG_WAITALL != 0 && !peek;
        let mut done = 0usize;
        let mut buf = vec![0u8; total.min(CHUNK)];
        let mut rights = None;
        loop {
            let want = (total - done).min(CHUNK);
            let r = if done == 0 || waitall {
                wait_for(t, &f, dontwait, ev, || {
                    s.recv(&mut buf[..want], peek, nonblock)
                })
            } else {
                s.recv(&mut buf[..want], peek, nonblock)
            };
            let n = match r {
                Ok(r) => {
                    rights = r.rights;
                    r.copied
                }
                Err(_) if done > 0 => break,
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            if let Err(e) = copy_out_iov(t, iov, done, &buf[..n]) {
                if done == 0 {
                    return Err(e);
                }
                break;
            }
            done += n;
            // Data that carries files ends the read.
            if !waitall || done == total || rights.is_some() {
                break;
            }
        }
        Ok((done as u64, 0, rights))
    } else {
        let mut buf = vec![0u8; total.min(2 * unix::MAX_BUF)];
        let r = wait_for(t, &f, dontwait, ev, || s.recv(&mut buf, peek, nonblock))?;
        copy_out_iov(t, iov, 0, &buf[..r.copied])?;
        let mflags = if r.full > r.copied {
            libc::MSG_TRUNC
        } else {
            0
        };
        let ret = if flags & libc::MSG_TRUNC != 0 {
            r.full
        } else {
            r.copied
        };
        Ok((ret as u64, mflags, r.rights))
    }
}

fn sys_sendto(t: &mut Task, a: &Args) -> SysResult {
    let len = a.len(2)?.min(MAX_RW_COUNT);
    do_send(
        t,
        a.fd(0),
        &[(a.u64(1), len)],
        a.i32(3),
        a.u64(4) != 0,
        None,
    )
}

fn sys_recvfrom(t: &mut Task, a: &Args) -> SysResult {
    let len = a.len(2)?.min(MAX_RW_COUNT);
    let (addr, lenp) = (a.u64(4), a.u64(5));
    if addr != 0 && lenp != 0 {
        let mut b = [0u8; 4];
        t.copy_in(lenp, &mut b)?;
        if i32::from_le_bytes(b) < 0 {
            return Err(Errno::EINVAL);
        }
    }
    let (n, _, _) = do_recv(t, a.fd(0), &[(a.u64(1), len)], a.i32(3))?;
    // The peer of a pair is unnamed: the address is empty.
    if addr != 0 && lenp != 0 {
        t.copy_out(lenp, &0i32.to_le_bytes())?;
    }
    Ok(n)
}

/// struct msghdr: (name, namelen, iov, iovlen, control, controllen).
fn read_msghdr(t: &Task, addr: u64) -> Result<[u64; 6], Errno> {
    let b = t.copy_in_vec(addr, 56)?;
    let q = |o: usize| abi::linux::le_u64(&b, o);
    Ok([q(0), q(8) & 0xffff_ffff, q(16), q(24), q(32), q(40)])
}

fn msg_iovecs(t: &Task, m: &[u64; 6]) -> Result<Vec<(u64, usize)>, Errno> {
    if m[3] > UIO_MAXIOV {
        return Err(Errno::EMSGSIZE);
    }
    read_iovecs(t, m[2], m[3])
}

fn sys_sendmsg(t: &mut Task, a: &Args) -> SysResult {
    let m = read_msghdr(t, a.u64(1))?;
    if m[5] > i32::MAX as u64 {
        return Err(Errno::ENOBUFS);
    }
    let iov = msg_iovecs(t, &m)?;
    socket_of(t, a.fd(0))?;
    let rights = control_rights(t, m[4], m[5])?;
    do_send(t, a.fd(0), &iov, a.i32(2), m[0] != 0 && m[1] != 0, rights)
}

/// The files of the SCM_RIGHTS messages in a sendmsg control buffer (Linux's
/// __scm_send). SCM_CREDENTIALS and unknown SOL_SOCKET types are EINVAL;
/// other levels are skipped.
fn control_rights(t: &Task, ctl: u64, len: u64) -> Result<Option<Rights>, Errno> {
    if len < CMSGHDR_LEN {
        return Ok(None);
    }
    // Linux's optmem_max bounds the control buffer.
    if len > 1 << 17 {
        return Err(Errno::ENOBUFS);
    }
    let b = t.copy_in_vec(ctl, len as usize)?;
    let mut files: Rights = Vec::new();
    let mut off = 0usize;
    while off + CMSGHDR_LEN as usize <= b.len() {
        let clen = abi::linux::le_u64(&b, off) as usize;
        let level = i32::from_le_bytes(b[off + 8..off + 12].try_into().unwrap());
        let ty = i32::from_le_bytes(b[off + 12..off + 16].try_into().unwrap());
        if clen < CMSGHDR_LEN as usize || clen > b.len() - off {
            return Err(Errno::EINVAL);
        }
        if level == libc::SOL_SOCKET {
            match ty {
                libc::SCM_RIGHTS => {
                    let n = (clen - CMSGHDR_LEN as usize) / 4;
                    if files.len() + n > unix::SCM_MAX_FD {
                        return Err(Errno::EINVAL);
                    }
                    for i in 0..n {
                        let p = off + CMSGHDR_LEN as usize + 4 * i;
                        let fd = i32::from_le_bytes(b[p..p + 4].try_into().unwrap());
                        files.push(t.fds.get(fd)?);
                    }
                }
                _ => return Err(Errno::EINVAL),
            }
        }
        off += (clen + 7) & !7;
    }
    Ok((!files.is_empty()).then_some(files))
}

/// Installs received files and writes their SCM_RIGHTS message into the
/// recvmsg control buffer (Linux's scm_detach_fds): returns the control
/// bytes used and whether some files did not fit (MSG_CTRUNC).
fn deliver_rights(
    t: &Task,
    ctl: u64,
    space: u64,
    files: Rights,
    cloexec: bool,
) -> Result<(u64, bool), Errno> {
    let want = files.len();
    if space < CMSGHDR_LEN {
        return Ok((0, true));
    }
    let fdmax = ((space - CMSGHDR_LEN) / 4) as usize;
    let limit = t.rlimits[libc::RLIMIT_NOFILE as usize].cur;
    let mut fds: Vec<i32> = Vec::new();
    for f in files.into_iter().take(fdmax) {
        match t.fds.insert(f, cloexec, limit) {
            Ok(fd) => fds.push(fd),
            Err(_) => break,
        }
    }
    if fds.is_empty() {
        return Ok((0, true));
    }
    let clen = CMSGHDR_LEN + 4 * fds.len() as u64;
    let mut out = Vec::with_capacity(clen as usize);
    out.extend_from_slice(&clen.to_le_bytes());
    out.extend_from_slice(&libc::SOL_SOCKET.to_le_bytes());
    out.extend_from_slice(&libc::SCM_RIGHTS.to_le_bytes());
    for fd in &fds {
        out.extend_from_slice(&fd.to_le_bytes());
    }
    if let Err(e) = t.copy_out(ctl, &out) {
        for fd in fds {
            let _ = t.fds.remove(fd);
        }
        return Err(e);
    }
    let used = ((clen + 7) & !7).min(space);
    Ok((used, fds.len() < want))
}

fn sys_recvmsg(t: &mut Task, a: &Args) -> SysResult {
    let addr = a.u64(1);
    let m = read_msghdr(t, addr)?;
    let iov = msg_iovecs(t, &m)?;
    let flags = a.i32(2);
    let (n, mut mflags, rights) = do_recv(t, a.fd(0), &iov, flags)?;
    // Linux starts msg_flags from the caller's MSG_CMSG_CLOEXEC.
    mflags |= flags & libc::MSG_CMSG_CLOEXEC;
    let mut used = 0;
    if let Some(files) = rights {
        let cloexec = flags & libc::MSG_CMSG_CLOEXEC != 0;
        let (u, trunc) = deliver_rights(t, m[4], m[5], files, cloexec)?;
        used = u;
        if trunc {
            mflags |= libc::MSG_CTRUNC;
        }
    }
    t.copy_out(addr + 8, &0u32.to_le_bytes())?;
    t.copy_out(addr + 40, &used.to_le_bytes())?;
    t.copy_out(addr + 48, &mflags.to_le_bytes())?;
    Ok(n)
}

fn sys_shutdown(t: &mut Task, a: &Args) -> SysResult {
    let (_, s) = socket_of(t, a.fd(0))?;
    s.shutdown(a.i32(1))?;
    Ok(0)
}

fn sys_getsockopt(t: &mut Task, a: &Args) -> SysResult {
    let (_, s) = socket_of(t, a.fd(0))?;
    let (level, name, val, lenp) = (a.i32(1), a.i32(2), a.u64(3), a.u64(4));
    let mut b = [0u8; 4];
    t.copy_in(lenp, &mut b)?;
    let len = i32::from_le_bytes(b);
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    if level != libc::SOL_SOCKET {
        return Err(Errno::EOPNOTSUPP);
    }
    let int = |v: i32| v.to_le_bytes().to_vec();
    let out = match name {
        libc::SO_TYPE => int(s.sock_type()),
        libc::SO_DOMAIN => int(libc::AF_UNIX),
        libc::SO_PROTOCOL => int(0),
        libc::SO_ERROR => int(s.take_error().map_or(0, |e| e.0)),
        libc::SO_SNDBUF => int(s.sndbuf() as i32),
        libc::SO_RCVBUF => int(s.rcvbuf() as i32),
        libc::SO_PASSCRED => int(s.passcred() as i32),
        libc::SO_ACCEPTCONN => int(0),
        libc::SO_PEERCRED => {
            let c = s.peer_cred();
            let mut v = Vec::with_capacity(12);
            v.extend_from_slice(&c.pid.to_le_bytes());
            v.extend_from_slice(&c.uid.to_le_bytes());
            v.extend_from_slice(&c.gid.to_le_bytes());
            v
        }
        _ => return Err(Errno::ENOPROTOOPT),
    };
    let n = (len as usize).min(out.len());
    t.copy_out(val, &out[..n])?;
    t.copy_out(lenp, &(n as i32).to_le_bytes())?;
    Ok(0)
}

fn sys_setsockopt(t: &mut Task, a: &Args) -> SysResult {
    let (_, s) = socket_of(t, a.fd(0))?;
    let (level, name, val, len) = (a.i32(1), a.i32(2), a.u64(3), a.i32(4));
    if level != libc::SOL_SOCKET {
        return Err(Errno::EOPNOTSUPP);
    }
    if len < 4 {
        return Err(Errno::EINVAL);
    }
    let mut b = [0u8; 4];
    t.copy_in(val, &mut b)?;
    let v = i32::from_le_bytes(b);
    match name {
        libc::SO_SNDBUF => s.set_sndbuf(v),
        libc::SO_RCVBUF => s.set_rcvbuf(v),
        libc::SO_PASSCRED => s.set_passcred(v != 0),
        _ => return Err(Errno::ENOPROTOOPT),
    }
    Ok(0)
}

/// An unnamed AF_UNIX address: the family alone (addrlen 2).
fn unnamed_addr(t: &mut Task, a: &Args) -> SysResult {
    socket_of(t, a.fd(0))?;
    let (addr, lenp) = (a.u64(1), a.u64(2));
    let mut b = [0u8; 4];
    t.copy_in(lenp, &mut b)?;
    let len = i32::from_le_bytes(b);
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let fam = (libc::AF_UNIX as u16).to_le_bytes();
    let n = (len as usize).min(2);
    t.copy_out(addr, &fam[..n])?;
    t.copy_out(lenp, &2i32.to_le_bytes())?;
    Ok(0)
}

fn sys_getsockname(t: &mut Task, a: &Args) -> SysResult {
    unnamed_addr(t, a)
}

fn sys_getpeername(t: &mut Task, a: &Args) -> SysResult {
    unnamed_addr(t, a)
}
