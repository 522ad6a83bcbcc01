//! The socket calls: socket(2), socketpair(2), bind(2), listen(2),
//! accept(2)/accept4(2), connect(2), sendto(2), recvfrom(2), sendmsg(2),
//! recvmsg(2), sendmmsg(2), recvmmsg(2), shutdown(2), getsockopt(2),
//! setsockopt(2), getsockname(2), getpeername(2). The handlers decode the
//! workload's arguments and drive the family's [`Socket`]; blocking, the
//! timeouts (SO_RCVTIMEO/SO_SNDTIMEO), control messages (SCM_RIGHTS,
//! SCM_CREDENTIALS) and SIGPIPE are handled here for every family.

use std::sync::Arc;
use std::time::Instant;

use abi::sysno as nr;
use abi::{Errno, SysResult};
use fs::anon::unix;
use fs::socket::{
    self as sock, Control, NodeKey, PeerCred, Rights, SockAddr, SockCx, Socket, UnixPaths,
};
use fs::vfs::{NewNode, WalkOpts};
use fs::OpenFile;
use sentry::Task;

use crate::sys_cred::{CAP_SETGID, CAP_SETUID};
use crate::sys_file::{copy_in_iov, copy_out_iov, creds, read_iovecs};
use crate::{Arg, Args, Table};

/// Largest piece a stream send or receive moves at once.
const CHUNK: usize = 1 << 20;
/// Largest single read/write (Linux's MAX_RW_COUNT).
const MAX_RW_COUNT: usize = 0x7fff_f000;
/// Largest datagram any family here accepts (bigger sends are EMSGSIZE).
const MAX_DGRAM: usize = 4 << 20;
const UIO_MAXIOV: u64 = 1024;
/// sizeof(struct cmsghdr) on x86-64.
const CMSGHDR_LEN: u64 = 16;
const SOCK_TYPE_MASK: i32 = 0xf;
const CAP_SYS_ADMIN: u32 = 21;
/// Linux's AF_MAX: families at or above it are EAFNOSUPPORT.
const AF_MAX: i32 = 46;
/// sizeof(struct sockaddr_storage).
const SOCKADDR_MAX: usize = 128;
/// Linux's UIO_MAXIOV bound on sendmmsg/recvmmsg vectors.
const MMSG_MAX: u64 = 1024;
/// sizeof(struct mmsghdr).
const MMSGHDR_LEN: u64 = 64;

pub(crate) fn register(t: &mut Table) {
    use Arg::*;
    t.add(nr::SOCKET, sys_socket, &[Dec, Hex, Dec]);
    t.add(nr::SOCKETPAIR, sys_socketpair, &[Dec, Hex, Dec, Hex]);
    t.add(nr::BIND, sys_bind, &[Fd, Hex, UDec]);
    t.add(nr::LISTEN, sys_listen, &[Fd, Dec]);
    t.add(nr::ACCEPT, sys_accept, &[Fd, Hex, Hex]);
    t.add(nr::ACCEPT4, sys_accept4, &[Fd, Hex, Hex, Hex]);
    t.add(nr::CONNECT, sys_connect, &[Fd, Hex, UDec]);
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
    t.add(nr::SENDMMSG, sys_sendmmsg, &[Fd, Hex, UDec, Hex]);
    t.add(nr::RECVMMSG, sys_recvmmsg, &[Fd, Hex, UDec, Hex, Hex]);
    t.add(nr::SHUTDOWN, sys_shutdown, &[Fd, Dec]);
    t.add(nr::GETSOCKOPT, sys_getsockopt, &[Fd, Dec, Dec, Hex, Hex]);
    t.add(nr::SETSOCKOPT, sys_setsockopt, &[Fd, Dec, Dec, Hex, UDec]);
    t.add(nr::GETSOCKNAME, sys_getsockname, &[Fd, Hex, Hex]);
    t.add(nr::GETPEERNAME, sys_getpeername, &[Fd, Hex, Hex]);
}

/// The caller as SO_PEERCRED and SCM_CREDENTIALS describe it.
fn peer_cred(t: &Task) -> PeerCred {
    PeerCred {
        pid: t.tgid,
        uid: t.creds.euid,
        gid: t.creds.egid,
    }
}

/// AF_UNIX path names resolved in the caller's file system context.
struct TaskPaths<'a>(&'a Task);

impl UnixPaths for TaskPaths<'_> {
    fn create(&self, path: &[u8]) -> Result<NodeKey, Errno> {
        let t = self.0;
        let start = if path.first() == Some(&b'/') {
            t.fs.root()
        } else {
            t.fs.cwd()
        };
        let mode = libc::S_IFSOCK | (0o777 & !t.fs.umask());
        t.kernel
            .vfs
            .make_node_at(
                &t.fs,
                &creds(t),
                &start,
                path,
                NewNode::Node { mode, rdev: 0 },
            )
            .map_err(|e| {
                if e == Errno::EEXIST {
                    Errno::EADDRINUSE
                } else {
                    e
                }
            })?;
        let loc = t
            .kernel
            .vfs
            .walk(&t.fs, &creds(t), &start, path, &WalkOpts::nofollow())?;
        let st = loc.stat()?;
        Ok((st.dev, st.ino))
    }
    fn lookup(&self, path: &[u8]) -> Result<NodeKey, Errno> {
        let t = self.0;
        let start = if path.first() == Some(&b'/') {
            t.fs.root()
        } else {
            t.fs.cwd()
        };
        let c = creds(t);
        let loc = t
            .kernel
            .vfs
            .walk(&t.fs, &c, &start, path, &WalkOpts::follow())?;
        t.kernel.vfs.access(&c, &loc, fs::MAY_WRITE)?;
        let st = loc.stat()?;
        if st.mode & libc::S_IFMT != libc::S_IFSOCK {
            return Err(Errno::ECONNREFUSED);
        }
        Ok((st.dev, st.ino))
    }
    fn remove(&self, path: &[u8]) {
        let t = self.0;
        let start = if path.first() == Some(&b'/') {
            t.fs.root()
        } else {
            t.fs.cwd()
        };
        let _ = t
            .kernel
            .vfs
            .remove_at(&t.fs, &creds(t), &start, path, false);
    }
}

fn with_cx<R>(t: &Task, f: impl FnOnce(&SockCx) -> R) -> R {
    with_cx_nb(t, false, f)
}

fn with_cx_nb<R>(t: &Task, nonblock: bool, f: impl FnOnce(&SockCx) -> R) -> R {
    let paths = TaskPaths(t);
    let cx = SockCx {
        cred: peer_cred(t),
        fsuid: t.creds.fsuid,
        fsgid: t.creds.fsgid,
        paths: &paths,
        nonblock,
    };
    f(&cx)
}

fn install(t: &Task, f: Arc<OpenFile>, cloexec: bool) -> Result<i32, Errno> {
    let limit = t.rlimits[libc::RLIMIT_NOFILE as usize].cur;
    t.fds.insert(f, cloexec, limit)
}

/// Splits socket(2)'s type argument into the base type and SOCK_* flags.
fn split_type(ty: i32) -> Result<(i32, i32), Errno> {
    let flags = ty & !SOCK_TYPE_MASK;
    if flags & !(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let base = ty & SOCK_TYPE_MASK;
    // SOCK_MAX: SOCK_PACKET (10) is the last type.
    if base > 10 {
        return Err(Errno::EINVAL);
    }
    Ok((base, flags))
}

fn sys_socket(t: &mut Task, a: &Args) -> SysResult {
    let (domain, ty, protocol) = (a.i32(0), a.i32(1), a.i32(2));
    let (base, flags) = split_type(ty)?;
    if !(0..AF_MAX).contains(&domain) {
        return Err(Errno::EAFNOSUPPORT);
    }
    let nonblock = if flags & libc::SOCK_NONBLOCK != 0 {
        libc::O_NONBLOCK
    } else {
        0
    };
    let file = new_socket(t, domain, base, protocol, nonblock)?;
    Ok(install(t, file, flags & libc::SOCK_CLOEXEC != 0)? as u64)
}

/// A new socket of family `domain`, type `base`, with status flags `flags`.
fn new_socket(
    t: &Task,
    domain: i32,
    base: i32,
    protocol: i32,
    flags: i32,
) -> Result<Arc<OpenFile>, Errno> {
    // Each family's constructor is dispatched on `domain` here.
    let (c, uid, gid) = (peer_cred(t), t.creds.fsuid, t.creds.fsgid);
    let sock: Arc<dyn Socket> = match domain {
        libc::AF_INET | libc::AF_INET6
            if t.kernel.network.get() == Some(&sentry::kernel::NetworkMode::Host) =>
        {
            return sentry::net::hostinet::new_file(domain, base, protocol, flags, c, uid, gid);
        }
        libc::AF_INET | libc::AF_INET6 => {
            let stack = t.kernel.netstack.get(&t.kernel.net)?;
            let ping = t.kernel.net.ping_allowed(t.creds.egid, &t.creds.groups);
            return sentry::net::inet::new_file(
                &stack, domain, base, protocol, flags, c, uid, gid, ping,
            );
        }
        libc::AF_UNIX => {
            let ty = unix::socket_type(base, protocol)?;
            return Ok(unix::new_socket(ty, flags, c, uid, gid));
        }
        libc::AF_NETLINK => sentry::net::netlink::new_socket(t.kernel.net.clone(), base, protocol)?,
        _ => return Err(Errno::EAFNOSUPPORT),
    };
    Ok(sock::new_file(sock, flags, c, uid, gid))
}

/// ioctl(2) on a socket whose family has no answer for `cmd` (ENOTTY): the
/// interface ioctls (SIOCGIF*) every socket answers in Linux's sock_ioctl.
/// Netlink sockets answer them themselves.
pub(crate) fn socket_ioctl_fallback(
    t: &Task,
    f: &OpenFile,
    cmd: u32,
    arg: u64,
) -> Option<SysResult> {
    let s = sock::as_socket(f)?;
    if s.family() == libc::AF_NETLINK {
        return None;
    }
    sentry::net::ifreq_ioctl(&*t.kernel.net.info(), s.family(), t, cmd, arg)
}

fn sys_socketpair(t: &mut Task, a: &Args) -> SysResult {
    let (domain, ty, protocol, sv) = (a.i32(0), a.i32(1), a.i32(2), a.u64(3));
    let (base, flags) = split_type(ty)?;
    if !(0..AF_MAX).contains(&domain) {
        return Err(Errno::EAFNOSUPPORT);
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
    let nonblock = if flags & libc::SOCK_NONBLOCK != 0 {
        libc::O_NONBLOCK
    } else {
        0
    };
    let [s0, s1] = unix::new_pair(base, nonblock, peer_cred(t), t.creds.fsuid, t.creds.fsgid);
    let cloexec = flags & libc::SOCK_CLOEXEC != 0;
    let fd0 = install(t, s0, cloexec)?;
    let fd1 = match install(t, s1, cloexec) {
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

/// Reads a sockaddr of `len` bytes from the workload.
fn read_addr(t: &Task, addr: u64, len: u64) -> Result<SockAddr, Errno> {
    if len as i32 as i64 != len as i64 || len as i32 <= 0 && len != 0 || len as usize > SOCKADDR_MAX
    {
        return Err(Errno::EINVAL);
    }
    let b = t.copy_in_vec(addr, len as usize)?;
    SockAddr::decode(&b)
}

/// Writes `addr` to a (sockaddr, socklen_t) pair: as many bytes as fit, and
/// the full length (Linux's move_addr_to_user).
fn write_addr(t: &Task, addr: u64, lenp: u64, a: &SockAddr) -> Result<(), Errno> {
    if lenp == 0 {
        return Ok(());
    }
    let mut b = [0u8; 4];
    t.copy_in(lenp, &mut b)?;
    let len = i32::from_le_bytes(b);
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let bytes = a.encode();
    let n = (len as usize).min(bytes.len());
    if n > 0 {
        t.copy_out(addr, &bytes[..n])?;
    }
    t.copy_out(lenp, &(bytes.len() as i32).to_le_bytes())
}

fn sys_bind(t: &mut Task, a: &Args) -> SysResult {
    let (_, s) = socket_of(t, a.fd(0))?;
    let mut addr = read_addr(t, a.u64(1), a.u64(2))?;
    if addr == SockAddr::Unspec && s.family() == libc::AF_INET && a.u64(2) >= 16 {
        // inet_bind takes AF_UNSPEC for INADDR_ANY (old BSD programs).
        let b = t.copy_in_vec(a.u64(1), 16)?;
        if b[4..8] != [0; 4] {
            return Err(Errno::EAFNOSUPPORT);
        }
        let port = u16::from_be_bytes([b[2], b[3]]);
        addr = SockAddr::Inet(std::net::SocketAddr::from(([0, 0, 0, 0], port)));
    }
    with_cx(t, |cx| s.bind(cx, &addr))?;
    Ok(0)
}

fn sys_listen(t: &mut Task, a: &Args) -> SysResult {
    let (_, s) = socket_of(t, a.fd(0))?;
    // Linux clamps the backlog to net.core.somaxconn (4096).
    let backlog = a.i32(1).clamp(-1, 4096);
    s.listen(if backlog < 0 { 4096 } else { backlog })?;
    Ok(0)
}

fn do_accept(t: &mut Task, fd: i32, addr: u64, lenp: u64, flags: i32) -> SysResult {
    if flags & !(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let (f, s) = socket_of(t, fd)?;
    if lenp != 0 {
        let mut b = [0u8; 4];
        t.copy_in(lenp, &mut b)?;
        if i32::from_le_bytes(b) < 0 {
            return Err(Errno::EINVAL);
        }
    }
    let nb = if flags & libc::SOCK_NONBLOCK != 0 {
        libc::O_NONBLOCK
    } else {
        0
    };
    let deadline = timeout_deadline(&f, true);
    let (nf, peer) = wait_until(t, &f, false, fs::waiter::EVENT_IN, deadline, || {
        with_cx(t, |cx| s.accept(cx, nb))
    })?;
    if addr != 0 {
        write_addr(t, addr, lenp, &peer)?;
    }
    Ok(install(t, nf, flags & libc::SOCK_CLOEXEC != 0)? as u64)
}

fn sys_accept(t: &mut Task, a: &Args) -> SysResult {
    do_accept(t, a.fd(0), a.u64(1), a.u64(2), 0)
}

fn sys_accept4(t: &mut Task, a: &Args) -> SysResult {
    do_accept(t, a.fd(0), a.u64(1), a.u64(2), a.i32(3))
}

fn sys_connect(t: &mut Task, a: &Args) -> SysResult {
    let (f, s) = socket_of(t, a.fd(0))?;
    let addr = read_addr(t, a.u64(1), a.u64(2))?;
    let nonblock = f.status_flags() & libc::O_NONBLOCK != 0;
    let r = with_cx_nb(t, nonblock, |cx| s.connect(cx, &addr));
    match r {
        Err(Errno::EINPROGRESS) if f.status_flags() & libc::O_NONBLOCK == 0 => {
            // Wait for the handshake to finish (SO_SNDTIMEO bounds it), then
            // report how it went.
            let deadline = timeout_deadline(&f, false);
            let r = wait_until(t, &f, false, fs::waiter::EVENT_OUT, deadline, || {
                if s.readiness()
                    & (fs::waiter::EVENT_OUT | fs::waiter::EVENT_ERR | fs::waiter::EVENT_HUP)
                    != 0
                {
                    Ok(())
                } else {
                    Err(Errno::EAGAIN)
                }
            });
            match r {
                Ok(()) => match s.take_error() {
                    Some(e) => Err(e),
                    None => Ok(0),
                },
                Err(Errno::EAGAIN) => Err(Errno::EINPROGRESS),
                Err(e) => Err(e),
            }
        }
        Err(Errno::EAGAIN) if f.status_flags() & libc::O_NONBLOCK == 0 => {
            with_cx(t, |cx| {
                wait_until(t, &f, false, fs::waiter::EVENT_OUT, None, || {
                    s.connect(cx, &addr)
                })
            })?;
            Ok(0)
        }
        r => r.map(|_| 0),
    }
}

fn socket_of(t: &Task, fd: i32) -> Result<(Arc<OpenFile>, Arc<dyn Socket>), Errno> {
    let f = t.fds.get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    let s = sock::as_socket(&f).ok_or(Errno::ENOTSOCK)?;
    Ok((f, s))
}

/// When a blocking receive (`rcv`) or send on `f` gives up (SO_RCVTIMEO,
/// SO_SNDTIMEO).
fn timeout_deadline(f: &OpenFile, rcv: bool) -> Option<Instant> {
    let to = sock::socket_file(f)?.timeouts();
    let d = if rcv { to.rcv } else { to.snd }?;
    Some(Instant::now() + d)
}

/// Runs `op` once (MSG_DONTWAIT or O_NONBLOCK) or until it stops returning
/// EAGAIN, or `deadline` passes (EAGAIN, as Linux's socket timeouts).
fn wait_until<T>(
    t: &Task,
    f: &OpenFile,
    dontwait: bool,
    events: u32,
    deadline: Option<Instant>,
    op: impl FnMut() -> Result<T, Errno>,
) -> Result<T, Errno> {
    let mut op = op;
    if dontwait || f.status_flags() & libc::O_NONBLOCK != 0 {
        return op();
    }
    let Some(q) = f.ops().wait_queue() else {
        return op();
    };
    match fs::waiter::block(t.waiter(), &[(q, events)], &[], deadline, op) {
        Err(Errno::ETIMEDOUT) if deadline.is_some() => Err(Errno::EAGAIN),
        r => r,
    }
}

fn do_send(
    t: &mut Task,
    fd: i32,
    iov: &[(u64, usize)],
    flags: i32,
    to: Option<SockAddr>,
    ctl: Control,
) -> SysResult {
    let mut ctl = ctl;
    let (f, s) = socket_of(t, fd)?;
    if flags & libc::MSG_OOB != 0 && matches!(s.family(), libc::AF_UNIX | libc::AF_NETLINK) {
        return Err(Errno::EOPNOTSUPP);
    }
    let dontwait = flags & libc::MSG_DONTWAIT != 0;
    let deadline = timeout_deadline(&f, false);
    let ev = fs::waiter::EVENT_OUT;
    let total: usize = iov.iter().map(|v| v.1).sum();
    let stream = s.sock_type() == libc::SOCK_STREAM;
    let to = to.as_ref();
    let res = with_cx(t, |cx| {
        if stream && total > 0 {
            let mut done = 0usize;
            let err = loop {
                let want = (total - done).min(CHUNK);
                let mut buf = vec![0u8; want];
                if let Err(e) = copy_in_iov(t, iov, done, &mut buf) {
                    break e;
                }
                let mut pos = 0;
                let r = loop {
                    match wait_until(t, &f, dontwait, ev, deadline, || {
                        s.send(cx, &buf[pos..], to, &mut ctl, flags)
                    }) {
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
            if err == Errno(0) {
                Ok((done, false))
            } else if done > 0 {
                // A partial send returns its count; Linux still signals EPIPE.
                Ok((done, err == Errno::EPIPE))
            } else {
                Err(err)
            }
        } else {
            if total > MAX_DGRAM {
                return Err(Errno::EMSGSIZE);
            }
            let mut buf = vec![0u8; total];
            copy_in_iov(t, iov, 0, &mut buf)?;
            wait_until(t, &f, dontwait, ev, deadline, || {
                s.send(cx, &buf, to, &mut ctl, flags)
            })
            .map(|n| (n, false))
        }
    });
    match res {
        Ok((n, epipe)) => {
            if epipe && flags & libc::MSG_NOSIGNAL == 0 {
                t.send_signal_to_self(libc::SIGPIPE);
            }
            Ok(n as u64)
        }
        Err(e) => {
            // Only stream sockets raise SIGPIPE.
            if e == Errno::EPIPE && flags & libc::MSG_NOSIGNAL == 0 && stream {
                t.send_signal_to_self(libc::SIGPIPE);
            }
            Err(e)
        }
    }
}

/// What a receive call got.
struct Received {
    n: u64,
    flags: i32,
    from: Option<SockAddr>,
    rights: Option<Rights>,
    creds: Option<PeerCred>,
}

/// Receives into `iov`.
fn do_recv(t: &Task, fd: i32, iov: &[(u64, usize)], flags: i32) -> Result<Received, Errno> {
    let (f, s) = socket_of(t, fd)?;
    let stream = s.sock_type() == libc::SOCK_STREAM;
    if flags & libc::MSG_OOB != 0 && matches!(s.family(), libc::AF_UNIX | libc::AF_NETLINK) {
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
    let pflags = (flags & (libc::MSG_PEEK | libc::MSG_TRUNC | libc::MSG_OOB))
        | if nonblock { libc::MSG_DONTWAIT } else { 0 };
    let deadline = timeout_deadline(&f, true);
    let ev = fs::waiter::EVENT_IN;
    let total: usize = iov.iter().map(|v| v.1).sum::<usize>().min(MAX_RW_COUNT);
    if stream {
        let waitall = flags & libc::MSG_WAITALL != 0 && !peek;
        let mut done = 0usize;
        let mut buf = vec![0u8; total.min(CHUNK)];
        let mut got = Received {
            n: 0,
            flags: 0,
            from: None,
            rights: None,
            creds: None,
        };
        loop {
            let want = (total - done).min(CHUNK);
            let r = if done == 0 || waitall {
                wait_until(t, &f, dontwait, ev, deadline, || {
                    s.recv(&mut buf[..want], pflags)
                })
            } else {
                s.recv(&mut buf[..want], pflags | libc::MSG_DONTWAIT)
            };
            let n = match r {
                Ok(r) => {
                    got.rights = r.rights;
                    if got.from.is_none() {
                        got.from = r.from;
                    }
                    if r.creds.is_some() {
                        got.creds = r.creds;
                    }
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
            // Data that carries files or credentials ends the read.
            if !waitall || done == total || got.rights.is_some() {
                break;
            }
        }
        got.n = done as u64;
        Ok(got)
    } else {
        let mut buf = vec![0u8; total.min(MAX_DGRAM)];
        let r = wait_until(t, &f, dontwait, ev, deadline, || s.recv(&mut buf, pflags))?;
        copy_out_iov(t, iov, 0, &buf[..r.copied])?;
        let mut mflags = r.flags;
        if r.full > r.copied {
            mflags |= libc::MSG_TRUNC;
        }
        let n = if flags & libc::MSG_TRUNC != 0 {
            r.full
        } else {
            r.copied
        };
        Ok(Received {
            n: n as u64,
            flags: mflags,
            from: r.from,
            rights: r.rights,
            creds: r.creds,
        })
    }
}

fn sys_sendto(t: &mut Task, a: &Args) -> SysResult {
    let len = a.len(2)?.min(MAX_RW_COUNT);
    socket_of(t, a.fd(0))?;
    let to = if a.u64(4) != 0 {
        Some(read_addr(t, a.u64(4), a.u64(5))?)
    } else {
        None
    };
    do_send(
        t,
        a.fd(0),
        &[(a.u64(1), len)],
        a.i32(3),
        to,
        Control::default(),
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
    let r = do_recv(t, a.fd(0), &[(a.u64(1), len)], a.i32(3))?;
    if addr != 0 && lenp != 0 {
        match &r.from {
            Some(from) => write_addr(t, addr, lenp, from)?,
            None => t.copy_out(lenp, &0i32.to_le_bytes())?,
        }
    }
    Ok(r.n)
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

/// One sendmsg of the msghdr at `addr`.
fn send_one(t: &mut Task, fd: i32, addr: u64, flags: i32) -> SysResult {
    let m = read_msghdr(t, addr)?;
    if m[5] > i32::MAX as u64 {
        return Err(Errno::ENOBUFS);
    }
    let iov = msg_iovecs(t, &m)?;
    socket_of(t, fd)?;
    let to = if m[0] != 0 && m[1] != 0 {
        Some(read_addr(t, m[0], m[1])?)
    } else {
        None
    };
    let ctl = control(t, m[4], m[5])?;
    do_send(t, fd, &iov, flags, to, ctl)
}

fn sys_sendmsg(t: &mut Task, a: &Args) -> SysResult {
    send_one(t, a.fd(0), a.u64(1), a.i32(2))
}

/// The control messages of a sendmsg (Linux's __scm_send): SCM_RIGHTS files
/// and SCM_CREDENTIALS (which must be the sender's own, unless it has the
/// capabilities to claim others). Unknown SOL_SOCKET types are EINVAL; other
/// levels are skipped.
fn control(t: &Task, ctl: u64, len: u64) -> Result<Control, Errno> {
    let mut out = Control::default();
    if len < CMSGHDR_LEN {
        return Ok(out);
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
        let data = &b[off + CMSGHDR_LEN as usize..off + clen];
        if level == libc::SOL_SOCKET {
            match ty {
                libc::SCM_RIGHTS => {
                    let n = data.len() / 4;
                    if files.len() + n > sock::SCM_MAX_FD {
                        return Err(Errno::EINVAL);
                    }
                    for i in 0..n {
                        let fd = i32::from_le_bytes(data[4 * i..4 * i + 4].try_into().unwrap());
                        files.push(t.fds.get(fd)?);
                    }
                }
                libc::SCM_CREDENTIALS => {
                    if data.len() != 12 {
                        return Err(Errno::EINVAL);
                    }
                    let c = PeerCred {
                        pid: i32::from_le_bytes(data[0..4].try_into().unwrap()),
                        uid: u32::from_le_bytes(data[4..8].try_into().unwrap()),
                        gid: u32::from_le_bytes(data[8..12].try_into().unwrap()),
                    };
                    check_creds(t, &c)?;
                    out.creds = Some(c);
                }
                _ => return Err(Errno::EINVAL),
            }
        }
        off += (clen + 7) & !7;
    }
    out.rights = (!files.is_empty()).then_some(files);
    Ok(out)
}

/// Linux's scm_check_creds: a task may only claim its own pid (or any with
/// CAP_SYS_ADMIN) and its real, effective or saved ids (or any with
/// CAP_SETUID/CAP_SETGID).
fn check_creds(t: &Task, c: &PeerCred) -> Result<(), Errno> {
    let cr = &t.creds;
    let pid_ok = c.pid == t.tgid || cr.has_capability(CAP_SYS_ADMIN);
    let uid_ok = [cr.uid, cr.euid, cr.suid].contains(&c.uid) || cr.has_capability(CAP_SETUID);
    let gid_ok = [cr.gid, cr.egid, cr.sgid].contains(&c.gid) || cr.has_capability(CAP_SETGID);
    if pid_ok && uid_ok && gid_ok {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// Fills a recvmsg control buffer (Linux's put_cmsg / scm_detach_fds): the
/// credentials first, then the files, installed as new fds. Returns the
/// control bytes used and whether something did not fit (MSG_CTRUNC).
fn deliver_control(
    t: &Task,
    ctl: u64,
    space: u64,
    creds: Option<PeerCred>,
    files: Option<Rights>,
    cloexec: bool,
) -> Result<(u64, bool), Errno> {
    let mut used = 0u64;
    let mut trunc = false;
    if let Some(c) = creds {
        let clen = CMSGHDR_LEN + 12;
        if space < clen {
            trunc = true;
        } else {
            let mut out = Vec::with_capacity(clen as usize);
            out.extend_from_slice(&clen.to_le_bytes());
            out.extend_from_slice(&libc::SOL_SOCKET.to_le_bytes());
            out.extend_from_slice(&libc::SCM_CREDENTIALS.to_le_bytes());
            out.extend_from_slice(&c.pid.to_le_bytes());
            out.extend_from_slice(&c.uid.to_le_bytes());
            out.extend_from_slice(&c.gid.to_le_bytes());
            t.copy_out(ctl, &out)?;
            used = ((clen + 7) & !7).min(space);
        }
    }
    let Some(files) = files else {
        return Ok((used, trunc));
    };
    let want = files.len();
    let space = space - used;
    if space < CMSGHDR_LEN {
        return Ok((used, true));
    }
    let fdmax = ((space - CMSGHDR_LEN) / 4) as usize;
    let mut fds: Vec<i32> = Vec::new();
    for f in files.into_iter().take(fdmax) {
        match install(t, f, cloexec) {
            Ok(fd) => fds.push(fd),
            Err(_) => break,
        }
    }
    if fds.is_empty() {
        return Ok((used, true));
    }
    let clen = CMSGHDR_LEN + 4 * fds.len() as u64;
    let mut out = Vec::with_capacity(clen as usize);
    out.extend_from_slice(&clen.to_le_bytes());
    out.extend_from_slice(&libc::SOL_SOCKET.to_le_bytes());
    out.extend_from_slice(&libc::SCM_RIGHTS.to_le_bytes());
    for fd in &fds {
        out.extend_from_slice(&fd.to_le_bytes());
    }
    if let Err(e) = t.copy_out(ctl + used, &out) {
        for fd in fds {
            let _ = t.fds.remove(fd);
        }
        return Err(e);
    }
    used += ((clen + 7) & !7).min(space);
    Ok((used, trunc || fds.len() < want))
}

/// One recvmsg into the msghdr at `addr`.
fn recv_one(t: &mut Task, fd: i32, addr: u64, flags: i32) -> SysResult {
    let m = read_msghdr(t, addr)?;
    let iov = msg_iovecs(t, &m)?;
    if m[0] != 0 && (m[1] as u32 as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let r = do_recv(t, fd, &iov, flags)?;
    // Linux starts msg_flags from the caller's MSG_CMSG_CLOEXEC.
    let mut mflags = r.flags | (flags & libc::MSG_CMSG_CLOEXEC);
    let cloexec = flags & libc::MSG_CMSG_CLOEXEC != 0;
    let (used, trunc) = if r.rights.is_some() || r.creds.is_some() {
        if m[4] == 0 {
            (0, true)
        } else {
            deliver_control(t, m[4], m[5], r.creds, r.rights, cloexec)?
        }
    } else {
        (0, false)
    };
    if trunc {
        mflags |= libc::MSG_CTRUNC;
    }
    let namelen = match (&r.from, m[0]) {
        (Some(from), name) if name != 0 => {
            let bytes = from.encode();
            let n = (m[1] as usize).min(bytes.len());
            t.copy_out(name, &bytes[..n])?;
            bytes.len() as u32
        }
        _ => 0,
    };
    t.copy_out(addr + 8, &namelen.to_le_bytes())?;
    t.copy_out(addr + 40, &used.to_le_bytes())?;
    t.copy_out(addr + 48, &mflags.to_le_bytes())?;
    Ok(r.n)
}

fn sys_recvmsg(t: &mut Task, a: &Args) -> SysResult {
    recv_one(t, a.fd(0), a.u64(1), a.i32(2))
}

/// sendmmsg(2): sends each message, storing its count in msg_len; stops at
/// the first error (returned only when nothing was sent).
fn sys_sendmmsg(t: &mut Task, a: &Args) -> SysResult {
    let (fd, vec, vlen, flags) = (a.fd(0), a.u64(1), a.u64(2) as u32 as u64, a.i32(3));
    socket_of(t, fd)?;
    let vlen = vlen.min(MMSG_MAX);
    let mut sent = 0u64;
    while sent < vlen {
        let h = vec + sent * MMSGHDR_LEN;
        match send_one(t, fd, h, flags) {
            Ok(n) => {
                t.copy_out(h + 56, &(n as u32).to_le_bytes())?;
                sent += 1;
            }
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(sent)
}

/// recvmmsg(2): receives up to `vlen` messages; MSG_WAITFORONE makes every
/// receive after the first non-blocking; the timeout is checked between
/// messages, as Linux does.
fn sys_recvmmsg(t: &mut Task, a: &Args) -> SysResult {
    let (fd, vec, vlen, flags, tsp) = (
        a.fd(0),
        a.u64(1),
        a.u64(2) as u32 as u64,
        a.i32(3),
        a.u64(4),
    );
    socket_of(t, fd)?;
    let deadline = if tsp != 0 {
        let b = t.copy_in_vec(tsp, 16)?;
        let sec = abi::linux::le_u64(&b, 0) as i64;
        let nsec = abi::linux::le_u64(&b, 8) as i64;
        if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
            return Err(Errno::EINVAL);
        }
        Some(Instant::now() + std::time::Duration::new(sec as u64, nsec as u32))
    } else {
        None
    };
    let vlen = vlen.min(MMSG_MAX);
    let mut got = 0u64;
    let mut fl = flags;
    while got < vlen {
        let h = vec + got * MMSGHDR_LEN;
        match recv_one(t, fd, h, fl) {
            Ok(n) => {
                t.copy_out(h + 56, &(n as u32).to_le_bytes())?;
                got += 1;
            }
            Err(e) if got == 0 => return Err(e),
            Err(_) => break,
        }
        if flags & libc::MSG_WAITFORONE != 0 {
            fl |= libc::MSG_DONTWAIT;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    Ok(got)
}

fn sys_shutdown(t: &mut Task, a: &Args) -> SysResult {
    let (_, s) = socket_of(t, a.fd(0))?;
    s.shutdown(a.i32(1))?;
    Ok(0)
}

/// struct timeval bytes for a socket timeout (zero = none).
fn timeval(d: Option<std::time::Duration>) -> Vec<u8> {
    let d = d.unwrap_or_default();
    let mut v = (d.as_secs() as i64).to_le_bytes().to_vec();
    v.extend_from_slice(&(d.subsec_micros() as i64).to_le_bytes());
    v
}

fn sys_getsockopt(t: &mut Task, a: &Args) -> SysResult {
    let (f, s) = socket_of(t, a.fd(0))?;
    let (level, name, val, lenp) = (a.i32(1), a.i32(2), a.u64(3), a.u64(4));
    let mut b = [0u8; 4];
    t.copy_in(lenp, &mut b)?;
    let len = i32::from_le_bytes(b);
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let int = |v: i32| v.to_le_bytes().to_vec();
    let out = match (level, name) {
        (libc::SOL_SOCKET, libc::SO_TYPE) => int(s.sock_type()),
        (libc::SOL_SOCKET, libc::SO_DOMAIN) => int(s.family()),
        (libc::SOL_SOCKET, libc::SO_PROTOCOL) => int(s.protocol()),
        (libc::SOL_SOCKET, libc::SO_ERROR) => int(s.take_error().map_or(0, |e| e.0)),
        (libc::SOL_SOCKET, libc::SO_RCVTIMEO) | (libc::SOL_SOCKET, libc::SO_SNDTIMEO) => {
            let to = sock::socket_file(&f)
                .map(|sf| sf.timeouts())
                .unwrap_or_default();
            timeval(if name == libc::SO_RCVTIMEO {
                to.rcv
            } else {
                to.snd
            })
        }
        _ => s.getsockopt(level, name)?,
    };
    let n = (len as usize).min(out.len());
    t.copy_out(val, &out[..n])?;
    t.copy_out(lenp, &(n as i32).to_le_bytes())?;
    Ok(0)
}

fn sys_setsockopt(t: &mut Task, a: &Args) -> SysResult {
    let (f, s) = socket_of(t, a.fd(0))?;
    let (level, name, val, len) = (a.i32(1), a.i32(2), a.u64(3), a.i32(4));
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    // No option takes more than a page; Linux's bounds are per option.
    let b = t.copy_in_vec(val, (len as usize).min(4096))?;
    if level == libc::SOL_SOCKET && (name == libc::SO_RCVTIMEO || name == libc::SO_SNDTIMEO) {
        // sock_set_timeout.
        if b.len() < 16 {
            return Err(Errno::EINVAL);
        }
        let sec = abi::linux::le_u64(&b, 0) as i64;
        let usec = abi::linux::le_u64(&b, 8) as i64;
        if !(0..1_000_000).contains(&usec) {
            return Err(Errno::EDOM);
        }
        let d = if sec < 0 || (sec == 0 && usec == 0) {
            None
        } else {
            Some(std::time::Duration::new(sec as u64, usec as u32 * 1000))
        };
        let sf = sock::socket_file(&f).ok_or(Errno::ENOTSOCK)?;
        let mut to = sf.timeouts();
        if name == libc::SO_RCVTIMEO {
            to.rcv = d;
        } else {
            to.snd = d;
        }
        sf.set_timeouts(to);
        return Ok(0);
    }
    s.setsockopt(level, name, &b)?;
    Ok(0)
}

fn sys_getsockname(t: &mut Task, a: &Args) -> SysResult {
    let (_, s) = socket_of(t, a.fd(0))?;
    let (addr, lenp) = (a.u64(1), a.u64(2));
    let mut b = [0u8; 4];
    t.copy_in(lenp, &mut b)?;
    if i32::from_le_bytes(b) < 0 {
        return Err(Errno::EINVAL);
    }
    write_addr(t, addr, lenp, &s.sockname())?;
    Ok(0)
}

fn sys_getpeername(t: &mut Task, a: &Args) -> SysResult {
    let (_, s) = socket_of(t, a.fd(0))?;
    let (addr, lenp) = (a.u64(1), a.u64(2));
    let mut b = [0u8; 4];
    t.copy_in(lenp, &mut b)?;
    if i32::from_le_bytes(b) < 0 {
        return Err(Errno::EINVAL);
    }
    write_addr(t, addr, lenp, &s.peername()?)?;
    Ok(0)
}
