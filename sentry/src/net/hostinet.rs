//! `--network=host` (DESIGN.md 4.7): AF_INET and AF_INET6 sockets passed to
//! host sockets, as gVisor's hostinet. Less isolation (the workload reaches
//! the host's network stack and network namespace), full speed.
//!
//! Each sandbox socket owns one host socket that the sentry makes itself,
//! always non-blocking and close-on-exec (SOCK_STREAM, SOCK_DGRAM, and ICMP
//! "ping" datagram sockets when the host's ping_group_range allows them; no
//! raw sockets). Every [`Socket`] operation is one host call on it:
//! addresses are decoded by the syscall layer and re-encoded here, so the
//! host sees only well-formed sockaddrs of the socket's own families;
//! socket options pass only through an allow-list ([`OPTIONS`]: each known
//! (level, name) with a bounded length, everything else ENOPROTOOPT), and so
//! do ioctls (FIONREAD/SIOCINQ, SIOCOUTQ). No control message reaches the
//! host: SCM_RIGHTS and SCM_CREDENTIALS on an Internet socket are EINVAL,
//! as on Linux, and none is received (no option that would produce one is
//! allowed).
//!
//! Readiness: a notifier thread (gVisor's fdnotifier) watches every host
//! socket in one host epoll, edge-triggered, and notifies the socket's wait
//! queue on each edge. So the syscall layer's blocking calls, poll/select,
//! and epoll (including EPOLLET, which needs a queue notification per new
//! event) treat hostinet sockets like every other file; readiness itself is
//! asked from the host with poll(2).
//!
//! The sentry's seccomp filter allows the host calls used here only in host
//! mode (runsc-cli's seccomp_sentry: `socket` restricted to these families
//! and types, the socket calls, and [`OPTIONS`] for get/setsockopt).

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use abi::Errno;
use fs::socket::{self as sock, Control, PeerCred, Recv, SockAddr, SockCx, Socket};
use fs::waiter::{WaitQueue, EVENT_ERR, EVENT_HUP, EVENT_IN, EVENT_OUT, EVENT_PRI, EVENT_RDHUP};
use fs::{OpenFile, UserIo};

/// sizeof(struct sockaddr_storage).
const ADDR_MAX: usize = 128;

/// One socket option the sandbox may get or set on a host socket, with the
/// largest value passed (longer values are cut to it, as the host would
/// ignore the rest; shorter ones are the host's to judge).
#[derive(Clone, Copy, Debug)]
pub struct SockOpt {
    pub level: i32,
    pub name: i32,
    pub get: bool,
    pub set: bool,
    pub size: usize,
}

const fn opt(level: i32, name: i32, get: bool, set: bool, size: usize) -> SockOpt {
    SockOpt {
        level,
        name,
        get,
        set,
        size,
    }
}

const INT: usize = 4;
/// sizeof(struct tcp_info), rounded up past Linux's current 248.
const TCP_INFO_LEN: usize = 256;
/// TCP_CA_NAME_MAX.
const TCP_CA_NAME_MAX: usize = 16;

/// The options passed to host sockets. SO_TYPE, SO_DOMAIN, SO_PROTOCOL,
/// SO_RCVTIMEO and SO_SNDTIMEO are the syscall layer's; SO_ERROR reads the
/// host's pending error. Options whose effect the sentry could not deliver
/// (ancillary data: IP_PKTINFO, IP_RECVERR, SO_TIMESTAMP...) or that need
/// privileges the sentry lacks are left out.
pub const OPTIONS: &[SockOpt] = &[
    opt(libc::SOL_SOCKET, libc::SO_ERROR, true, false, INT),
    opt(libc::SOL_SOCKET, libc::SO_REUSEADDR, true, true, INT),
    opt(libc::SOL_SOCKET, libc::SO_REUSEPORT, true, true, INT),
    opt(libc::SOL_SOCKET, libc::SO_KEEPALIVE, true, true, INT),
    opt(libc::SOL_SOCKET, libc::SO_BROADCAST, true, true, INT),
    opt(libc::SOL_SOCKET, libc::SO_SNDBUF, true, true, INT),
    opt(libc::SOL_SOCKET, libc::SO_RCVBUF, true, true, INT),
    // struct linger.
    opt(libc::SOL_SOCKET, libc::SO_LINGER, true, true, 8),
    opt(libc::SOL_SOCKET, libc::SO_ACCEPTCONN, true, false, INT),
    opt(libc::SOL_SOCKET, libc::SO_RCVLOWAT, true, true, INT),
    opt(libc::SOL_SOCKET, libc::SO_OOBINLINE, true, true, INT),
    opt(libc::IPPROTO_TCP, libc::TCP_NODELAY, true, true, INT),
    opt(libc::IPPROTO_TCP, libc::TCP_MAXSEG, true, true, INT),
    opt(libc::IPPROTO_TCP, libc::TCP_CORK, true, true, INT),
    opt(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, true, true, INT),
    opt(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, true, true, INT),
    opt(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, true, true, INT),
    opt(libc::IPPROTO_TCP, libc::TCP_SYNCNT, true, true, INT),
    opt(libc::IPPROTO_TCP, libc::TCP_LINGER2, true, true, INT),
    opt(libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT, true, true, INT),
    opt(libc::IPPROTO_TCP, libc::TCP_WINDOW_CLAMP, true, true, INT),
    opt(libc::IPPROTO_TCP, libc::TCP_INFO, true, false, TCP_INFO_LEN),
    opt(libc::IPPROTO_TCP, libc::TCP_QUICKACK, true, true, INT),
    opt(
        libc::IPPROTO_TCP,
        libc::TCP_CONGESTION,
        true,
        false,
        TCP_CA_NAME_MAX,
    ),
    opt(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, true, true, INT),
    opt(libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT, true, true, INT),
    opt(libc::IPPROTO_IP, libc::IP_TOS, true, true, INT),
    opt(libc::IPPROTO_IP, libc::IP_TTL, true, true, INT),
    opt(libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, true, true, INT),
    opt(libc::IPPROTO_IP, libc::IP_MTU, true, false, INT),
    // struct in_addr, ip_mreq or ip_mreqn.
    opt(libc::IPPROTO_IP, libc::IP_MULTICAST_IF, true, true, 12),
    opt(libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, true, true, INT),
    opt(libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, true, true, INT),
    opt(libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, false, true, 12),
    opt(libc::IPPROTO_IP, libc::IP_DROP_MEMBERSHIP, false, true, 12),
    opt(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, true, true, INT),
    opt(libc::IPPROTO_IPV6, libc::IPV6_TCLASS, true, true, INT),
    opt(libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, true, true, INT),
    opt(libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, true, true, INT),
    opt(libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, true, true, INT),
    opt(
        libc::IPPROTO_IPV6,
        libc::IPV6_MULTICAST_HOPS,
        true,
        true,
        INT,
    ),
    opt(
        libc::IPPROTO_IPV6,
        libc::IPV6_MULTICAST_LOOP,
        true,
        true,
        INT,
    ),
    // struct ipv6_mreq.
    opt(
        libc::IPPROTO_IPV6,
        libc::IPV6_ADD_MEMBERSHIP,
        false,
        true,
        20,
    ),
    opt(
        libc::IPPROTO_IPV6,
        libc::IPV6_DROP_MEMBERSHIP,
        false,
        true,
        20,
    ),
];

/// The ioctls passed to host sockets (SIOCINQ is FIONREAD, SIOCOUTQ is
/// TIOCOUTQ): each writes one int.
pub const IOCTLS: &[u64] = &[libc::FIONREAD, libc::TIOCOUTQ];

/// The host socket types made (always with these flags).
pub const SOCK_FLAGS: i32 = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;

fn find_opt(level: i32, name: i32) -> Option<&'static SockOpt> {
    OPTIONS.iter().find(|o| o.level == level && o.name == name)
}

fn last_errno() -> Errno {
    Errno(
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}

fn check(r: libc::c_int) -> Result<libc::c_int, Errno> {
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r)
    }
}

fn check_size(r: isize) -> Result<usize, Errno> {
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r as usize)
    }
}

/// Wakes sockets' wait queues when their host sockets have news: one host
/// epoll (edge-triggered) and a thread waiting on it.
struct Notifier {
    epfd: OwnedFd,
    sockets: Mutex<HashMap<u64, Weak<HostSocket>>>,
    next: AtomicU64,
}

fn notifier() -> Result<&'static Notifier, Errno> {
    static N: OnceLock<Result<&'static Notifier, Errno>> = OnceLock::new();
    *N.get_or_init(|| {
        // SAFETY: plain syscall; the result is checked.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        let n: &'static Notifier = Box::leak(Box::new(Notifier {
            // SAFETY: a fresh fd we own.
            epfd: unsafe { OwnedFd::from_raw_fd(fd) },
            sockets: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        }));
        std::thread::Builder::new()
            .name("hostinet-notify".into())
            .spawn(move || n.run())
            .map_err(|_| Errno::ENOMEM)?;
        Ok(n)
    })
}

impl Notifier {
    fn run(&self) {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
        loop {
            // SAFETY: `evs` is a valid array of 64 epoll_events.
            let n = unsafe { libc::epoll_wait(self.epfd.as_raw_fd(), evs.as_mut_ptr(), 64, -1) };
            if n < 0 {
                if last_errno() == Errno::EINTR {
                    continue;
                }
                tracing::warn!("hostinet: epoll_wait: {}", last_errno());
                return;
            }
            let ready: Vec<(Arc<HostSocket>, u32)> = {
                let m = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
                evs[..n as usize]
                    .iter()
                    .filter_map(|e| {
                        let (id, ev) = (e.u64, e.events);
                        m.get(&id).and_then(|w| w.upgrade()).map(|s| (s, ev))
                    })
                    .collect()
            };
            // Outside the lock: the last reference may drop here, and a
            // socket's drop takes it.
            for (s, ev) in ready {
                s.queue.notify(s.edge_events(ev));
            }
        }
    }

    fn add(&self, s: &Arc<HostSocket>) -> Result<u64, Errno> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Arc::downgrade(s));
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN
                | libc::EPOLLOUT
                | libc::EPOLLPRI
                | libc::EPOLLRDHUP
                | libc::EPOLLET) as u32,
            u64: id,
        };
        // SAFETY: a valid epoll fd, socket fd and event.
        let r = unsafe {
            libc::epoll_ctl(
                self.epfd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                s.fd.as_raw_fd(),
                &mut ev,
            )
        };
        if r < 0 {
            let e = last_errno();
            self.remove(id, -1);
            return Err(e);
        }
        Ok(id)
    }

    fn remove(&self, id: u64, fd: RawFd) {
        self.sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if fd >= 0 {
            // SAFETY: a valid epoll fd; a stale `fd` only fails.
            unsafe {
                libc::epoll_ctl(
                    self.epfd.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    fd,
                    std::ptr::null_mut(),
                )
            };
        }
    }
}

/// The events to notify for a host event set: errors and hang-ups wake
/// every waiter (a failed connect reports only POLLERR|POLLHUP), a read
/// hang-up wakes readers.
fn wake_events(ev: u32) -> u32 {
    let mut ev = ev;
    if ev & (EVENT_ERR | EVENT_HUP) != 0 {
        ev |= EVENT_IN | EVENT_OUT | EVENT_PRI | EVENT_RDHUP;
    }
    if ev & EVENT_RDHUP != 0 {
        ev |= EVENT_IN;
    }
    ev
}

impl HostSocket {
    /// The wakeup a host event means for the sandbox's waiters. The host's
    /// edge-triggered epoll reports the whole ready mask on any wakeup of
    /// the socket; Linux's own waiters are woken with the event that
    /// happened (ep_poll_callback's key). For a connected stream, input is
    /// announced only when the receive queue grew (or EOF, an error, came),
    /// so that sandbox EPOLLET watches see no phantom input edges.
    fn edge_events(&self, ev: u32) -> u32 {
        let mut ev = ev;
        let input = EVENT_IN | libc::POLLRDNORM as u32 | EVENT_RDHUP;
        if self.stype == libc::SOCK_STREAM && ev & input != 0 && ev & (EVENT_ERR | EVENT_HUP) == 0 {
            let mut q: libc::c_int = 0;
            // SAFETY: FIONREAD writes one int to `q`.
            let r = unsafe { libc::ioctl(self.raw(), libc::FIONREAD, &mut q) };
            // Listening sockets have no queue length (EINVAL): every event
            // may be a new connection.
            if r == 0 {
                let prev = self.inq_seen.swap(q as i64, Ordering::SeqCst);
                let eof_new =
                    ev & EVENT_RDHUP != 0 && !self.rdhup_seen.swap(true, Ordering::SeqCst);
                if (q as i64) <= prev && !eof_new {
                    ev &= !input;
                }
            }
        }
        wake_events(ev)
    }
}

/// A sandbox socket backed by a host socket.
pub struct HostSocket {
    fd: OwnedFd,
    family: i32,
    stype: i32,
    protocol: i32,
    queue: WaitQueue,
    /// The notifier's key, once registered.
    id: OnceLock<u64>,
    /// Stream sockets: the receive-queue length the workload has been told
    /// about (see [`HostSocket::edge_events`]).
    inq_seen: AtomicI64,
    /// Stream sockets: the peer's EOF was announced.
    rdhup_seen: AtomicBool,
}

impl Drop for HostSocket {
    fn drop(&mut self) {
        if let (Some(id), Ok(n)) = (self.id.get(), notifier()) {
            n.remove(*id, self.fd.as_raw_fd());
        }
    }
}

/// Checks socket(2)'s family, type and protocol for a host socket and
/// returns the protocol it will report (SO_PROTOCOL).
pub fn check_type(family: i32, stype: i32, protocol: i32) -> Result<i32, Errno> {
    if family != libc::AF_INET && family != libc::AF_INET6 {
        return Err(Errno::EAFNOSUPPORT);
    }
    let icmp = if family == libc::AF_INET {
        libc::IPPROTO_ICMP
    } else {
        libc::IPPROTO_ICMPV6
    };
    match stype {
        libc::SOCK_STREAM => match protocol {
            0 | libc::IPPROTO_TCP => Ok(libc::IPPROTO_TCP),
            _ => Err(Errno::EPROTONOSUPPORT),
        },
        libc::SOCK_DGRAM => match protocol {
            0 | libc::IPPROTO_UDP => Ok(libc::IPPROTO_UDP),
            p if p == icmp => Ok(p),
            _ => Err(Errno::EPROTONOSUPPORT),
        },
        // Raw sockets need CAP_NET_RAW on the host, which the sentry never has.
        libc::SOCK_RAW => Err(Errno::EPERM),
        _ => Err(Errno::ESOCKTNOSUPPORT),
    }
}

/// socket(2) in host mode: a new host socket of `family`, `stype` and
/// `protocol`, as a socket file with status flags `flags` (O_NONBLOCK),
/// created by `cred` and owned by `uid`/`gid`.
pub fn new_file(
    family: i32,
    stype: i32,
    protocol: i32,
    flags: i32,
    cred: PeerCred,
    uid: u32,
    gid: u32,
) -> Result<Arc<OpenFile>, Errno> {
    let proto = check_type(family, stype, protocol)?;
    // SAFETY: plain syscall with checked arguments; the result is checked.
    let fd = check(unsafe { libc::socket(family, stype | SOCK_FLAGS, protocol) })?;
    // SAFETY: a fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let s = HostSocket::wrap(fd, family, stype, proto)?;
    Ok(sock::new_file(s, flags, cred, uid, gid))
}

impl HostSocket {
    fn wrap(fd: OwnedFd, family: i32, stype: i32, protocol: i32) -> Result<Arc<HostSocket>, Errno> {
        let s = Arc::new(HostSocket {
            fd,
            family,
            stype,
            protocol,
            queue: WaitQueue::default(),
            id: OnceLock::new(),
            inq_seen: AtomicI64::new(0),
            rdhup_seen: AtomicBool::new(false),
        });
        let id = notifier()?.add(&s)?;
        let _ = s.id.set(id);
        Ok(s)
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The host sockaddr bytes for `a`: only the socket's own families.
    fn host_addr(&self, a: &SockAddr) -> Result<Vec<u8>, Errno> {
        match a {
            SockAddr::Inet(_) => Ok(a.encode()),
            // AF_UNSPEC (connect: dissolve the association; bind: the any
            // address of AF_INET).
            SockAddr::Unspec => Ok(vec![0; 16]),
            _ => Err(Errno::EAFNOSUPPORT),
        }
    }

    fn name(&self, peer: bool) -> Result<SockAddr, Errno> {
        let mut b = [0u8; ADDR_MAX];
        let mut len = ADDR_MAX as libc::socklen_t;
        let f = if peer {
            libc::getpeername
        } else {
            libc::getsockname
        };
        // SAFETY: `b` has `len` writable bytes.
        check(unsafe { f(self.raw(), b.as_mut_ptr().cast(), &mut len) })?;
        SockAddr::decode(&b[..(len as usize).min(ADDR_MAX)])
    }

    fn host_getsockopt(&self, level: i32, name: i32, size: usize) -> Result<Vec<u8>, Errno> {
        let mut b = vec![0u8; size];
        let mut len = size as libc::socklen_t;
        // SAFETY: `b` has `len` writable bytes; (level, name) is allow-listed.
        check(unsafe {
            libc::getsockopt(self.raw(), level, name, b.as_mut_ptr().cast(), &mut len)
        })?;
        b.truncate((len as usize).min(size));
        Ok(b)
    }
}

/// Send flags passed to the host (others are the syscall layer's or
/// meaningless here); the host socket never blocks nor raises SIGPIPE.
const SEND_FLAGS: i32 =
    libc::MSG_OOB | libc::MSG_DONTROUTE | libc::MSG_EOR | libc::MSG_MORE | libc::MSG_CONFIRM;
const RECV_FLAGS: i32 = libc::MSG_OOB | libc::MSG_PEEK;

impl Socket for HostSocket {
    fn family(&self) -> i32 {
        self.family
    }
    fn sock_type(&self) -> i32 {
        self.stype
    }
    fn protocol(&self) -> i32 {
        self.protocol
    }
    fn wait_queue(&self) -> &WaitQueue {
        &self.queue
    }
    fn readiness(&self) -> u32 {
        let mut p = libc::pollfd {
            fd: self.raw(),
            events: libc::POLLIN | libc::POLLOUT | libc::POLLPRI | libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: one valid pollfd; no wait.
        let r = unsafe { libc::poll(&mut p, 1, 0) };
        if r <= 0 {
            0
        } else {
            p.revents as u16 as u32
        }
    }

    fn bind(&self, _cx: &SockCx, addr: &SockAddr) -> Result<(), Errno> {
        let a = self.host_addr(addr)?;
        // SAFETY: `a` is a sockaddr of its length.
        check(unsafe { libc::bind(self.raw(), a.as_ptr().cast(), a.len() as libc::socklen_t) })?;
        Ok(())
    }

    fn listen(&self, backlog: i32) -> Result<(), Errno> {
        // SAFETY: plain syscall.
        check(unsafe { libc::listen(self.raw(), backlog) })?;
        Ok(())
    }

    fn accept(&self, cx: &SockCx, flags: i32) -> Result<(Arc<OpenFile>, SockAddr), Errno> {
        let mut b = [0u8; ADDR_MAX];
        let mut len = ADDR_MAX as libc::socklen_t;
        // SAFETY: `b` has `len` writable bytes.
        let fd = check(unsafe {
            libc::accept4(self.raw(), b.as_mut_ptr().cast(), &mut len, SOCK_FLAGS)
        })?;
        // SAFETY: a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let peer = SockAddr::decode(&b[..(len as usize).min(ADDR_MAX)])?;
        let s = HostSocket::wrap(fd, self.family, self.stype, self.protocol)?;
        let f = sock::new_file(s, flags, cx.cred, cx.fsuid, cx.fsgid);
        Ok((f, peer))
    }

    fn connect(&self, _cx: &SockCx, addr: &SockAddr) -> Result<(), Errno> {
        let a = self.host_addr(addr)?;
        // SAFETY: `a` is a sockaddr of its length.
        check(unsafe { libc::connect(self.raw(), a.as_ptr().cast(), a.len() as libc::socklen_t) })?;
        Ok(())
    }

    fn send(
        &self,
        _cx: &SockCx,
        data: &[u8],
        to: Option<&SockAddr>,
        ctl: &mut Control,
        flags: i32,
    ) -> Result<usize, Errno> {
        // Linux's __sock_cmsg_send: no SOL_SOCKET message but SO_MARK,
        // timestamping and SCM_TXTIME on an Internet socket.
        if ctl.rights.is_some() || ctl.creds.is_some() {
            return Err(Errno::EINVAL);
        }
        let mut name = match to {
            Some(a) => self.host_addr(a)?,
            None => Vec::new(),
        };
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        // SAFETY: zeroed msghdr is valid (no name, no control).
        let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
        if !name.is_empty() {
            m.msg_name = name.as_mut_ptr().cast();
            m.msg_namelen = name.len() as libc::socklen_t;
        }
        m.msg_iov = &mut iov;
        m.msg_iovlen = 1;
        let f = (flags & SEND_FLAGS) | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        // SAFETY: `m` points at live buffers (data, name) of the given lengths.
        check_size(unsafe { libc::sendmsg(self.raw(), &m, f) })
    }

    fn recv(&self, buf: &mut [u8], flags: i32) -> Result<Recv, Errno> {
        let mut name = [0u8; ADDR_MAX];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: zeroed msghdr is valid.
        let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
        m.msg_name = name.as_mut_ptr().cast();
        m.msg_namelen = ADDR_MAX as libc::socklen_t;
        m.msg_iov = &mut iov;
        m.msg_iovlen = 1;
        let dgram = self.stype != libc::SOCK_STREAM;
        // Datagrams: MSG_TRUNC makes the host report the full length.
        let f = (flags & RECV_FLAGS) | libc::MSG_DONTWAIT | if dgram { libc::MSG_TRUNC } else { 0 };
        // SAFETY: `m` points at live buffers of the given lengths.
        let n = check_size(unsafe { libc::recvmsg(self.raw(), &mut m, f) })?;
        let copied = n.min(buf.len());
        if !dgram && flags & libc::MSG_PEEK == 0 {
            // What left the queue (MSG_TRUNC discards without copying).
            self.inq_seen.fetch_sub(n as i64, Ordering::SeqCst);
        }
        let from = if dgram && m.msg_namelen > 0 {
            SockAddr::decode(&name[..(m.msg_namelen as usize).min(ADDR_MAX)]).ok()
        } else {
            None
        };
        Ok(Recv {
            copied,
            full: n,
            from,
            rights: None,
            creds: None,
            flags: m.msg_flags & (libc::MSG_EOR | libc::MSG_OOB | libc::MSG_TRUNC),
        })
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        // SAFETY: plain syscall (the host checks `how`).
        check(unsafe { libc::shutdown(self.raw(), how) })?;
        Ok(())
    }

    fn sockname(&self) -> SockAddr {
        self.name(false).unwrap_or_else(|_| {
            SockAddr::Inet(if self.family == libc::AF_INET {
                (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            })
        })
    }

    fn peername(&self) -> Result<SockAddr, Errno> {
        self.name(true)
    }

    fn take_error(&self) -> Option<Errno> {
        let b = self
            .host_getsockopt(libc::SOL_SOCKET, libc::SO_ERROR, INT)
            .ok()?;
        let e = i32::from_le_bytes(b.get(..4)?.try_into().ok()?);
        (e != 0).then_some(Errno(e))
    }

    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        let o = find_opt(level, name)
            .filter(|o| o.get)
            .ok_or(Errno::ENOPROTOOPT)?;
        self.host_getsockopt(level, name, o.size)
    }

    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        let o = find_opt(level, name)
            .filter(|o| o.set)
            .ok_or(Errno::ENOPROTOOPT)?;
        let v = &val[..val.len().min(o.size)];
        // SAFETY: `v` is readable for its length; (level, name) is allow-listed.
        check(unsafe {
            libc::setsockopt(
                self.raw(),
                level,
                name,
                v.as_ptr().cast(),
                v.len() as libc::socklen_t,
            )
        })?;
        Ok(())
    }

    fn ioctl(&self, io: &dyn UserIo, cmd: u32, arg: u64) -> Result<u64, Errno> {
        if !IOCTLS.contains(&(cmd as u64)) {
            return Err(Errno::ENOTTY);
        }
        let mut v: libc::c_int = 0;
        // SAFETY: allow-listed requests that write one int to `v`.
        check(unsafe { libc::ioctl(self.raw(), cmd as _, &mut v) })?;
        io.copy_out(arg, &v.to_le_bytes())?;
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    fn cx() -> (fs::socket::NoPaths, PeerCred) {
        (fs::socket::NoPaths, PeerCred::default())
    }

    fn sock_of(f: &OpenFile) -> Arc<dyn Socket> {
        sock::as_socket(f).unwrap()
    }

    /// Retries `op` while it returns EAGAIN (for up to 5 s).
    fn retry<T>(mut op: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            match op() {
                Err(Errno::EAGAIN) if Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                r => return r,
            }
        }
    }

    #[test]
    fn types_and_protocols() {
        assert_eq!(check_type(libc::AF_INET, libc::SOCK_STREAM, 0), Ok(6));
        assert_eq!(check_type(libc::AF_INET6, libc::SOCK_DGRAM, 0), Ok(17));
        assert_eq!(
            check_type(libc::AF_INET, libc::SOCK_STREAM, libc::IPPROTO_UDP),
            Err(Errno::EPROTONOSUPPORT)
        );
        assert_eq!(
            check_type(libc::AF_INET, libc::SOCK_DGRAM, libc::IPPROTO_ICMPV6),
            Err(Errno::EPROTONOSUPPORT)
        );
        assert_eq!(
            check_type(libc::AF_INET, libc::SOCK_RAW, 1),
            Err(Errno::EPERM)
        );
        assert_eq!(
            check_type(libc::AF_INET, libc::SOCK_SEQPACKET, 0),
            Err(Errno::ESOCKTNOSUPPORT)
        );
        assert_eq!(
            check_type(libc::AF_UNIX, libc::SOCK_STREAM, 0),
            Err(Errno::EAFNOSUPPORT)
        );
    }

    #[test]
    fn tcp_with_a_host_peer() {
        let (paths, cred) = cx();
        let c = SockCx {
            cred,
            fsuid: 0,
            fsgid: 0,
            paths: &paths,
            nonblock: true,
        };
        let f = new_file(libc::AF_INET, libc::SOCK_STREAM, 0, 0, cred, 0, 0).unwrap();
        let s = sock_of(&f);
        assert_eq!(s.protocol(), libc::IPPROTO_TCP);
        let any: SockAddr = SockAddr::Inet("127.0.0.1:0".parse().unwrap());
        s.bind(&c, &any).unwrap();
        s.listen(4).unwrap();
        let SockAddr::Inet(addr) = s.sockname() else {
            panic!("not inet")
        };
        assert_ne!(addr.port(), 0);
        assert_eq!(s.accept(&c, 0).err(), Some(Errno::EAGAIN));
        // An unknown option never reaches the host.
        assert_eq!(
            s.getsockopt(libc::SOL_SOCKET, 9999).err(),
            Some(Errno::ENOPROTOOPT)
        );
        assert_eq!(
            s.setsockopt(libc::SOL_SOCKET, libc::SO_BINDTODEVICE, b"lo\0"),
            Err(Errno::ENOPROTOOPT)
        );
        assert_eq!(
            s.getsockopt(libc::SOL_SOCKET, libc::SO_ACCEPTCONN).unwrap(),
            1i32.to_le_bytes()
        );
        let mut host = std::net::TcpStream::connect(addr).unwrap();
        let (conn, peer) = retry(|| s.accept(&c, 0)).unwrap();
        assert_eq!(peer, SockAddr::Inet(host.local_addr().unwrap()));
        let cs = sock_of(&conn);
        cs.setsockopt(libc::IPPROTO_TCP, libc::TCP_NODELAY, &1i32.to_le_bytes())
            .unwrap();
        assert_eq!(
            cs.getsockopt(libc::IPPROTO_TCP, libc::TCP_NODELAY).unwrap(),
            1i32.to_le_bytes()
        );
        host.write_all(b"ping").unwrap();
        let mut buf = [0u8; 16];
        let r = retry(|| cs.recv(&mut buf, 0)).unwrap();
        assert_eq!(&buf[..r.copied], b"ping");
        assert_eq!(r.from, None);
        let n = cs
            .send(&c, b"pong", None, &mut Control::default(), 0)
            .unwrap();
        assert_eq!(n, 4);
        let mut got = [0u8; 4];
        host.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"pong");
        // Files cannot travel on an Internet socket.
        let mut ctl = Control {
            rights: Some(vec![f.clone()]),
            creds: None,
        };
        assert_eq!(cs.send(&c, b"x", None, &mut ctl, 0), Err(Errno::EINVAL));
        drop(host);
        let r = retry(|| cs.recv(&mut buf, 0)).unwrap();
        assert_eq!(r.copied, 0);
    }

    #[test]
    fn readiness_wakes_the_queue() {
        let (_paths, cred) = cx();
        let f = new_file(libc::AF_INET, libc::SOCK_DGRAM, 0, 0, cred, 0, 0).unwrap();
        let s = sock_of(&f);
        let (paths, _) = cx();
        let c = SockCx {
            cred,
            fsuid: 0,
            fsgid: 0,
            paths: &paths,
            nonblock: true,
        };
        s.bind(&c, &SockAddr::Inet("127.0.0.1:0".parse().unwrap()))
            .unwrap();
        let SockAddr::Inet(addr) = s.sockname() else {
            panic!()
        };
        assert_eq!(s.readiness() & EVENT_IN, 0);
        let gen = s.wait_queue().generation();
        let w = fs::waiter::Waiter::new().unwrap();
        let host = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let h2 = host.try_clone().unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            h2.send_to(b"hello", addr).unwrap();
        });
        let mut buf = [0u8; 3];
        let r = fs::waiter::block(
            &w,
            &[(s.wait_queue(), EVENT_IN)],
            &[],
            Some(Instant::now() + Duration::from_secs(5)),
            || s.recv(&mut buf, 0),
        )
        .unwrap();
        t.join().unwrap();
        assert!(s.wait_queue().generation() > gen);
        assert_eq!((r.copied, r.full), (3, 5));
        assert_eq!(r.from, Some(SockAddr::Inet(host.local_addr().unwrap())));
        assert_eq!(&buf, b"hel");
        // A reply to the sender's address.
        let to = SockAddr::Inet(host.local_addr().unwrap());
        s.send(&c, b"back", Some(&to), &mut Control::default(), 0)
            .unwrap();
        let mut b = [0u8; 8];
        let (n, from) = host.recv_from(&mut b).unwrap();
        assert_eq!((&b[..n], from), (&b"back"[..], addr));
        // A Unix address is not for this family.
        assert_eq!(
            s.send(
                &c,
                b"x",
                Some(&SockAddr::Unix(b"/x".to_vec())),
                &mut Control::default(),
                0
            ),
            Err(Errno::EAFNOSUPPORT)
        );
    }
}
