//! AF_INET / AF_INET6 sockets over the sandbox's user-space stack
//! (`netstack`): TCP (SOCK_STREAM), UDP (SOCK_DGRAM) and ICMP echo ("ping")
//! datagram sockets. Linux's net/ipv4/af_inet.c, tcp.c, udp.c, ping.c and
//! their option handlers, as far as the endpoint API models them.
//!
//! Options the stack does not act on but that software sets and reads back
//! (SO_LINGER, SO_OOBINLINE, IP_TOS, IP_TTL, TCP_CORK, ...) are kept per
//! socket and returned as set; options this kernel does not know are
//! ENOPROTOOPT.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::{Arc, Mutex, MutexGuard};

use abi::Errno;
use fs::socket::{self, Control, PeerCred, Recv, SockAddr, SockCx, Socket};
use fs::waiter::WaitQueue;
use fs::{OpenFile, UserIo};
use netstack::{IcmpEndpoint, Stack, TcpEndpoint, UdpEndpoint};

/// FIONREAD / SIOCINQ.
const FIONREAD: u32 = 0x541b;
/// TIOCOUTQ / SIOCOUTQ.
const SIOCOUTQ: u32 = 0x5411;
/// SIOCOUTQNSD.
const SIOCOUTQNSD: u32 = 0x894b;

const SOL_TCP: i32 = libc::IPPROTO_TCP;
const SOL_IP: i32 = libc::IPPROTO_IP;
const SOL_IPV6: i32 = libc::IPPROTO_IPV6;

enum Ep {
    Tcp(TcpEndpoint),
    Udp(UdpEndpoint),
    Icmp(IcmpEndpoint),
}

/// Options kept for getsockopt round trips.
struct Opts {
    linger: (i32, i32),
    oobinline: bool,
    rcvlowat: i32,
    priority: i32,
    passcred: bool,
    tos: i32,
    ttl: i32,
    tclass: i32,
    hoplimit: i32,
    recverr: bool,
    pktinfo: bool,
    recvtos: bool,
    recvttl: bool,
    mtu_discover: i32,
    mcast_ttl: i32,
    mcast_loop: bool,
    mcast_hops: i32,
    mcast_loop6: bool,
    cork: bool,
    quickack: bool,
    defer_accept: i32,
    user_timeout: i32,
    maxseg: i32,
    linger2: i32,
    notsent_lowat: i32,
    fastopen: i32,
    window_clamp: i32,
    recv_pktinfo6: bool,
    timestamp: bool,
    bindtodevice: Vec<u8>,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            linger: (0, 0),
            oobinline: false,
            rcvlowat: 1,
            priority: 0,
            passcred: false,
            tos: 0,
            ttl: -1,
            tclass: 0,
            hoplimit: -1,
            recverr: false,
            pktinfo: false,
            recvtos: false,
            recvttl: false,
            mtu_discover: 1,
            mcast_ttl: 1,
            mcast_loop: true,
            mcast_hops: 1,
            mcast_loop6: true,
            cork: false,
            quickack: true,
            defer_accept: 0,
            user_timeout: 0,
            maxseg: 0,
            linger2: 60,
            notsent_lowat: -1,
            fastopen: 0,
            window_clamp: 0,
            recv_pktinfo6: false,
            timestamp: false,
            bindtodevice: Vec::new(),
        }
    }
}

/// An AF_INET or AF_INET6 socket.
pub struct InetSocket {
    family: i32,
    ty: i32,
    protocol: i32,
    ep: Ep,
    queue: Arc<WaitQueue>,
    opts: Mutex<Opts>,
    stack: Arc<Stack>,
    /// A non-blocking TCP connect that finished inside connect(2): Linux
    /// still says EINPROGRESS, then reports the outcome (the next connect
    /// returns it; SO_ERROR and POLLERR show a failure).
    settled: Mutex<Option<Result<(), Errno>>>,
}

fn int(v: i32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn read_int(val: &[u8]) -> Result<i32, Errno> {
    // Linux accepts a one-byte value for some IP options; ints need 4.
    if val.len() >= 4 {
        Ok(i32::from_le_bytes(val[..4].try_into().unwrap()))
    } else if !val.is_empty() {
        Ok(val[0] as i32)
    } else {
        Err(Errno::EINVAL)
    }
}

fn read_int4(val: &[u8]) -> Result<i32, Errno> {
    if val.len() < 4 {
        return Err(Errno::EINVAL);
    }
    Ok(i32::from_le_bytes(val[..4].try_into().unwrap()))
}

/// Makes a socket of `family` (AF_INET or AF_INET6), base type `ty` and
/// `protocol` on `stack`, as socket(2) does; `flags` holds O_NONBLOCK.
/// `ping_allowed`: the caller's groups meet net.ipv4.ping_group_range
/// ([`super::Net::ping_allowed`]), else ping sockets fail with EACCES as in
/// Linux's ping_init_sock.
#[allow(clippy::too_many_arguments)]
pub fn new_file(
    stack: &Arc<Stack>,
    family: i32,
    ty: i32,
    protocol: i32,
    flags: i32,
    cred: PeerCred,
    uid: u32,
    gid: u32,
    ping_allowed: bool,
) -> Result<Arc<OpenFile>, Errno> {
    // inet_create: IPPROTO_MAX is 263 (IPPROTO_MPTCP is 262).
    if !(0..263).contains(&protocol) {
        return Err(Errno::EINVAL);
    }
    let v6 = family == libc::AF_INET6;
    let icmp_proto = if v6 {
        libc::IPPROTO_ICMPV6
    } else {
        libc::IPPROTO_ICMP
    };
    let (ep, protocol) = match ty {
        libc::SOCK_STREAM => match protocol {
            0 | libc::IPPROTO_TCP => (Ep::Tcp(stack.tcp(v6)), libc::IPPROTO_TCP),
            _ => return Err(Errno::EPROTONOSUPPORT),
        },
        libc::SOCK_DGRAM => match protocol {
            0 | libc::IPPROTO_UDP => (Ep::Udp(stack.udp(v6)), libc::IPPROTO_UDP),
            p if p == icmp_proto && !ping_allowed => return Err(Errno::EACCES),
            p if p == icmp_proto => (Ep::Icmp(stack.icmp(v6)), p),
            _ => return Err(Errno::EPROTONOSUPPORT),
        },
        // Raw IP sockets need CAP_NET_RAW and a raw endpoint the stack does
        // not have.
        libc::SOCK_RAW => return Err(Errno::EPERM),
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    };
    Ok(wrap(stack, family, ty, protocol, ep, flags, cred, uid, gid))
}

#[allow(clippy::too_many_arguments)]
fn wrap(
    stack: &Arc<Stack>,
    family: i32,
    ty: i32,
    protocol: i32,
    ep: Ep,
    flags: i32,
    cred: PeerCred,
    uid: u32,
    gid: u32,
) -> Arc<OpenFile> {
    let queue = Arc::new(WaitQueue::default());
    let q = queue.clone();
    let notify: netstack::Notify = Arc::new(move |ev| q.notify(ev));
    match &ep {
        Ep::Tcp(e) => e.set_notify(notify),
        Ep::Udp(e) => e.set_notify(notify),
        Ep::Icmp(e) => e.set_notify(notify),
    }
    let s = Arc::new(InetSocket {
        family,
        ty,
        protocol,
        ep,
        queue,
        opts: Mutex::new(Opts::default()),
        stack: stack.clone(),
        settled: Mutex::new(None),
    });
    let f = socket::new_file(s.clone(), flags, cred, uid, gid);
    let ino = f.stat().map_or(0, |st| st.ino);
    match &s.ep {
        Ep::Tcp(e) => e.set_owner(uid, ino),
        Ep::Udp(e) => e.set_owner(uid, ino),
        Ep::Icmp(e) => e.set_owner(uid, ino),
    }
    f
}

impl InetSocket {
    fn opts(&self) -> MutexGuard<'_, Opts> {
        self.opts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn settled(&self) -> MutexGuard<'_, Option<Result<(), Errno>>> {
        self.settled.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn v6(&self) -> bool {
        self.family == libc::AF_INET6
    }

    /// The unspecified address of this socket's family, port 0.
    fn any(&self) -> SocketAddr {
        if self.v6() {
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0))
        } else {
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        }
    }

    /// An address given to bind/connect/sendto, checked against the family
    /// (Linux's inet_bind / inet6_bind / inet_dgram_connect checks).
    fn inet_addr(&self, a: &SockAddr) -> Result<SocketAddr, Errno> {
        match a {
            SockAddr::Inet(sa @ SocketAddr::V4(_)) if !self.v6() => Ok(*sa),
            SockAddr::Inet(sa @ SocketAddr::V6(_)) if self.v6() => Ok(*sa),
            SockAddr::Inet(_) if self.v6() => Err(Errno::EINVAL),
            _ => Err(Errno::EAFNOSUPPORT),
        }
    }

    fn sockname_addr(&self) -> SocketAddr {
        let r = match &self.ep {
            Ep::Tcp(e) => e.local_addr(),
            Ep::Udp(e) => e.local_addr(),
            Ep::Icmp(e) => e.local_addr(),
        };
        r.unwrap_or_else(|_| self.any())
    }

    fn sol_socket_get(&self, name: i32) -> Result<Vec<u8>, Errno> {
        let o = self.opts();
        Ok(match name {
            libc::SO_REUSEADDR => int(match &self.ep {
                Ep::Tcp(e) => e.reuseaddr(),
                Ep::Udp(e) => e.reuseaddr(),
                Ep::Icmp(_) => false,
            } as i32),
            libc::SO_REUSEPORT => int(match &self.ep {
                Ep::Tcp(e) => e.reuseport(),
                Ep::Udp(e) => e.reuseport(),
                Ep::Icmp(_) => false,
            } as i32),
            libc::SO_KEEPALIVE => int(match &self.ep {
                Ep::Tcp(e) => e.keepalive(),
                _ => false,
            } as i32),
            libc::SO_BROADCAST => int(match &self.ep {
                Ep::Udp(e) => e.broadcast(),
                _ => false,
            } as i32),
            libc::SO_SNDBUF => int(match &self.ep {
                Ep::Tcp(e) => e.sndbuf(),
                Ep::Udp(e) => e.sndbuf(),
                Ep::Icmp(_) => netstack::udp::DEFAULT_BUF,
            } as i32),
            libc::SO_RCVBUF => int(match &self.ep {
                Ep::Tcp(e) => e.rcvbuf(),
                Ep::Udp(e) => e.rcvbuf(),
                Ep::Icmp(_) => netstack::udp::DEFAULT_BUF,
            } as i32),
            libc::SO_ACCEPTCONN => int(match &self.ep {
                Ep::Tcp(e) => e.is_listening(),
                _ => false,
            } as i32),
            libc::SO_LINGER => {
                let mut v = int(o.linger.0);
                v.extend_from_slice(&o.linger.1.to_le_bytes());
                v
            }
            libc::SO_OOBINLINE => int(o.oobinline as i32),
            libc::SO_RCVLOWAT => int(o.rcvlowat),
            libc::SO_SNDLOWAT => int(1),
            libc::SO_PRIORITY => int(o.priority),
            libc::SO_PASSCRED => int(o.passcred as i32),
            libc::SO_TIMESTAMP => int(o.timestamp as i32),
            libc::SO_BINDTODEVICE => {
                let mut v = o.bindtodevice.clone();
                if !v.is_empty() {
                    v.push(0);
                }
                v
            }
            libc::SO_PEERCRED => {
                // Linux reports no credentials for inet peers.
                let mut v = int(0);
                v.extend_from_slice(&(-1i32).to_le_bytes());
                v.extend_from_slice(&(-1i32).to_le_bytes());
                v
            }
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    fn sol_socket_set(&self, name: i32, val: &[u8]) -> Result<(), Errno> {
        if name == libc::SO_BINDTODEVICE {
            let end = val.iter().position(|&c| c == 0).unwrap_or(val.len());
            let dev = &val[..end.min(16)];
            if !dev.is_empty()
                && !self
                    .stack
                    .interfaces()
                    .iter()
                    .any(|i| i.name.as_bytes() == dev)
            {
                return Err(Errno::ENODEV);
            }
            self.opts().bindtodevice = dev.to_vec();
            return Ok(());
        }
        if name == libc::SO_LINGER {
            if val.len() < 8 {
                return Err(Errno::EINVAL);
            }
            let on = read_int4(val)?;
            let secs = read_int4(&val[4..])?;
            self.opts().linger = ((on != 0) as i32, secs);
            if let Ep::Tcp(e) = &self.ep {
                e.set_abort_on_close(on != 0 && secs == 0);
            }
            return Ok(());
        }
        let v = read_int4(val)?;
        match name {
            libc::SO_REUSEADDR => match &self.ep {
                Ep::Tcp(e) => e.set_reuseaddr(v != 0),
                Ep::Udp(e) => e.set_reuseaddr(v != 0),
                Ep::Icmp(_) => {}
            },
            libc::SO_REUSEPORT => match &self.ep {
                Ep::Tcp(e) => e.set_reuseport(v != 0),
                Ep::Udp(e) => e.set_reuseport(v != 0),
                Ep::Icmp(_) => {}
            },
            libc::SO_KEEPALIVE => {
                if let Ep::Tcp(e) = &self.ep {
                    e.set_keepalive(v != 0)
                }
            }
            libc::SO_BROADCAST => {
                if let Ep::Udp(e) = &self.ep {
                    e.set_broadcast(v != 0)
                }
            }
            libc::SO_SNDBUF => match &self.ep {
                Ep::Tcp(e) => e.set_sndbuf(v.max(0) as usize),
                Ep::Udp(e) => e.set_sndbuf(v.max(0) as usize),
                Ep::Icmp(_) => {}
            },
            libc::SO_RCVBUF => match &self.ep {
                Ep::Tcp(e) => e.set_rcvbuf(v.max(0) as usize),
                Ep::Udp(e) => e.set_rcvbuf(v.max(0) as usize),
                Ep::Icmp(_) => {}
            },
            libc::SO_OOBINLINE => self.opts().oobinline = v != 0,
            libc::SO_RCVLOWAT => self.opts().rcvlowat = v.max(1),
            libc::SO_PRIORITY => {
                if !(0..=6).contains(&v) {
                    return Err(Errno::EPERM);
                }
                self.opts().priority = v
            }
            libc::SO_PASSCRED => self.opts().passcred = v != 0,
            libc::SO_TIMESTAMP => {
                // Receive timestamps are not delivered as control messages.
                return Err(Errno::ENOPROTOOPT);
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    fn tcp_get(&self, e: &TcpEndpoint, name: i32) -> Result<Vec<u8>, Errno> {
        let o = self.opts();
        Ok(match name {
            libc::TCP_NODELAY => int(e.nodelay() as i32),
            libc::TCP_KEEPIDLE => int(e.keepalive_params().0 as i32),
            libc::TCP_KEEPINTVL => int(e.keepalive_params().1 as i32),
            libc::TCP_KEEPCNT => int(e.keepalive_params().2 as i32),
            libc::TCP_CORK => int(o.cork as i32),
            libc::TCP_QUICKACK => int(o.quickack as i32),
            libc::TCP_DEFER_ACCEPT => int(o.defer_accept),
            libc::TCP_USER_TIMEOUT => int(o.user_timeout),
            libc::TCP_MAXSEG => int(if o.maxseg > 0 { o.maxseg } else { 536 }),
            libc::TCP_LINGER2 => int(o.linger2),
            libc::TCP_NOTSENT_LOWAT => int(o.notsent_lowat.max(0)),
            libc::TCP_FASTOPEN => int(o.fastopen),
            libc::TCP_WINDOW_CLAMP => int(o.window_clamp),
            libc::TCP_SYNCNT => int(6),
            libc::TCP_CONGESTION => b"cubic\0\0\0\0\0\0\0\0\0\0\0".to_vec(),
            libc::TCP_INFO => tcp_info(e),
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    fn tcp_set(&self, e: &TcpEndpoint, name: i32, val: &[u8]) -> Result<(), Errno> {
        if name == libc::TCP_CONGESTION {
            let end = val.iter().position(|&c| c == 0).unwrap_or(val.len());
            return match &val[..end] {
                b"cubic" | b"reno" => Ok(()),
                _ => Err(Errno::ENOENT),
            };
        }
        let v = read_int4(val)?;
        let mut o = self.opts();
        match name {
            libc::TCP_NODELAY => e.set_nodelay(v != 0),
            libc::TCP_KEEPIDLE | libc::TCP_KEEPINTVL | libc::TCP_KEEPCNT => {
                let lim = if name == libc::TCP_KEEPCNT {
                    127
                } else {
                    32767
                };
                if !(1..=lim).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                let v = Some(v as u32);
                match name {
                    libc::TCP_KEEPIDLE => e.set_keepalive_params(v, None, None)?,
                    libc::TCP_KEEPINTVL => e.set_keepalive_params(None, v, None)?,
                    _ => e.set_keepalive_params(None, None, v)?,
                }
            }
            libc::TCP_CORK => o.cork = v != 0,
            libc::TCP_QUICKACK => o.quickack = v != 0,
            libc::TCP_DEFER_ACCEPT => o.defer_accept = v.max(0),
            libc::TCP_USER_TIMEOUT => {
                if v < 0 {
                    return Err(Errno::EINVAL);
                }
                o.user_timeout = v
            }
            libc::TCP_MAXSEG => {
                if v != 0 && !(88..=65535).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                o.maxseg = v
            }
            libc::TCP_LINGER2 => o.linger2 = v,
            libc::TCP_NOTSENT_LOWAT => o.notsent_lowat = v,
            libc::TCP_FASTOPEN => o.fastopen = v,
            libc::TCP_WINDOW_CLAMP => o.window_clamp = v.max(0),
            libc::TCP_SYNCNT => {
                if !(1..=127).contains(&v) {
                    return Err(Errno::EINVAL);
                }
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    fn ip_get(&self, name: i32) -> Result<Vec<u8>, Errno> {
        let o = self.opts();
        Ok(match name {
            libc::IP_TOS => int(o.tos),
            libc::IP_TTL => int(if o.ttl < 0 { 64 } else { o.ttl }),
            libc::IP_RECVERR => int(o.recverr as i32),
            libc::IP_PKTINFO => int(o.pktinfo as i32),
            libc::IP_RECVTOS => int(o.recvtos as i32),
            libc::IP_RECVTTL => int(o.recvttl as i32),
            libc::IP_MTU_DISCOVER => int(o.mtu_discover),
            libc::IP_MULTICAST_TTL => int(o.mcast_ttl),
            libc::IP_MULTICAST_LOOP => int(o.mcast_loop as i32),
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    fn ip_set(&self, name: i32, val: &[u8]) -> Result<(), Errno> {
        let v = read_int(val)?;
        let mut o = self.opts();
        match name {
            libc::IP_TOS => o.tos = v & 0xff,
            libc::IP_TTL => {
                if v != -1 && !(1..=255).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                o.ttl = v
            }
            libc::IP_RECVERR => o.recverr = v != 0,
            libc::IP_PKTINFO => o.pktinfo = v != 0,
            libc::IP_RECVTOS => o.recvtos = v != 0,
            libc::IP_RECVTTL => o.recvttl = v != 0,
            libc::IP_MTU_DISCOVER => {
                if !(0..=5).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                o.mtu_discover = v
            }
            libc::IP_MULTICAST_TTL => {
                if !(-1..=255).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                o.mcast_ttl = if v == -1 { 1 } else { v }
            }
            libc::IP_MULTICAST_LOOP => o.mcast_loop = v != 0,
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    fn ipv6_get(&self, name: i32) -> Result<Vec<u8>, Errno> {
        let v6only = match &self.ep {
            Ep::Tcp(e) => e.v6only(),
            Ep::Udp(e) => e.v6only(),
            Ep::Icmp(_) => false,
        };
        let o = self.opts();
        Ok(match name {
            libc::IPV6_V6ONLY => int(v6only as i32),
            libc::IPV6_TCLASS => int(o.tclass),
            libc::IPV6_UNICAST_HOPS => int(if o.hoplimit < 0 { 64 } else { o.hoplimit }),
            libc::IPV6_MULTICAST_HOPS => int(o.mcast_hops),
            libc::IPV6_MULTICAST_LOOP => int(o.mcast_loop6 as i32),
            libc::IPV6_RECVPKTINFO => int(o.recv_pktinfo6 as i32),
            libc::IPV6_RECVERR => int(o.recverr as i32),
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    fn ipv6_set(&self, name: i32, val: &[u8]) -> Result<(), Errno> {
        let v = read_int4(val)?;
        if name == libc::IPV6_V6ONLY {
            return match &self.ep {
                Ep::Tcp(e) => e.set_v6only(v != 0),
                Ep::Udp(e) => e.set_v6only(v != 0),
                Ep::Icmp(_) => Ok(()),
            };
        }
        let mut o = self.opts();
        match name {
            libc::IPV6_TCLASS => {
                if !(-1..=255).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                o.tclass = v.max(0)
            }
            libc::IPV6_UNICAST_HOPS => {
                if !(-1..=255).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                o.hoplimit = v
            }
            libc::IPV6_MULTICAST_HOPS => {
                if !(-1..=255).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                o.mcast_hops = if v == -1 { 1 } else { v }
            }
            libc::IPV6_MULTICAST_LOOP => o.mcast_loop6 = v != 0,
            libc::IPV6_RECVPKTINFO => o.recv_pktinfo6 = v != 0,
            libc::IPV6_RECVERR => o.recverr = v != 0,
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }
}

/// struct tcp_info as far as the endpoint knows it (state, and zeros).
fn tcp_info(e: &TcpEndpoint) -> Vec<u8> {
    let i = e.info();
    let mut v = vec![0u8; 232];
    v[0] = i.state;
    v
}

impl Socket for InetSocket {
    fn family(&self) -> i32 {
        self.family
    }
    fn sock_type(&self) -> i32 {
        self.ty
    }
    fn protocol(&self) -> i32 {
        self.protocol
    }
    fn wait_queue(&self) -> &WaitQueue {
        &self.queue
    }
    fn readiness(&self) -> u32 {
        match &self.ep {
            Ep::Tcp(e) => {
                let r = e.readiness();
                if matches!(*self.settled(), Some(Err(_))) {
                    r | netstack::POLLERR
                } else {
                    r
                }
            }
            Ep::Udp(e) => e.readiness(),
            Ep::Icmp(e) => e.readiness(),
        }
    }

    fn bind(&self, _cx: &SockCx, addr: &SockAddr) -> Result<(), Errno> {
        let a = self.inet_addr(addr)?;
        // inet6_bind: a specific IPv6 (not v4-mapped) address makes the
        // socket IPv6-only.
        let only = match a {
            SocketAddr::V6(v) => !v.ip().is_unspecified() && v.ip().to_ipv4_mapped().is_none(),
            SocketAddr::V4(_) => false,
        };
        match &self.ep {
            Ep::Tcp(e) => {
                let was = e.v6only();
                if only {
                    let _ = e.set_v6only(true);
                }
                e.bind(a).inspect_err(|_| {
                    let _ = e.set_v6only(was);
                })
            }
            Ep::Udp(e) => {
                let was = e.v6only();
                if only {
                    let _ = e.set_v6only(true);
                }
                e.bind(a).inspect_err(|_| {
                    let _ = e.set_v6only(was);
                })
            }
            Ep::Icmp(e) => e.bind(a),
        }
    }

    fn listen(&self, backlog: i32) -> Result<(), Errno> {
        match &self.ep {
            Ep::Tcp(e) => e.listen(backlog),
            _ => Err(Errno::EOPNOTSUPP),
        }
    }

    fn accept(&self, cx: &SockCx, flags: i32) -> Result<(Arc<OpenFile>, SockAddr), Errno> {
        let Ep::Tcp(e) = &self.ep else {
            return Err(Errno::EOPNOTSUPP);
        };
        let (ne, peer) = e.accept()?;
        let f = wrap(
            &self.stack,
            self.family,
            self.ty,
            self.protocol,
            Ep::Tcp(ne),
            flags,
            cx.cred,
            cx.fsuid,
            cx.fsgid,
        );
        Ok((f, SockAddr::Inet(peer)))
    }

    fn connect(&self, cx: &SockCx, addr: &SockAddr) -> Result<(), Errno> {
        match &self.ep {
            Ep::Tcp(e) => {
                let mut settled = self.settled();
                if let Some(r) = settled.take() {
                    return r;
                }
                let a = self.inet_addr(addr)?;
                let fresh = e.peer_addr().is_err();
                match e.connect(a) {
                    r @ (Ok(()) | Err(Errno::ECONNREFUSED)) if cx.nonblock && fresh => {
                        *settled = Some(r);
                        self.queue.notify(fs::waiter::EVENT_ALL);
                        Err(Errno::EINPROGRESS)
                    }
                    r => r,
                }
            }
            Ep::Udp(e) => match addr {
                SockAddr::Unspec => e.connect(None),
                _ => e.connect(Some(self.inet_addr(addr)?)),
            },
            Ep::Icmp(e) => match addr {
                SockAddr::Unspec => e.connect(None),
                _ => e.connect(Some(self.inet_addr(addr)?)),
            },
        }
    }

    fn send(
        &self,
        _cx: &SockCx,
        data: &[u8],
        to: Option<&SockAddr>,
        _ctl: &mut Control,
        _flags: i32,
    ) -> Result<usize, Errno> {
        match &self.ep {
            // TCP ignores a destination (tcp_sendmsg).
            Ep::Tcp(e) => e.send(data),
            Ep::Udp(e) => {
                let to = to.map(|a| self.inet_addr(a)).transpose()?;
                e.send_to(data, to)
            }
            Ep::Icmp(e) => {
                let to = to.map(|a| self.inet_addr(a)).transpose()?;
                e.send_to(data, to)
            }
        }
    }

    fn recv(&self, buf: &mut [u8], flags: i32) -> Result<Recv, Errno> {
        let peek = flags & libc::MSG_PEEK != 0;
        match &self.ep {
            Ep::Tcp(e) => {
                let n = e.recv(buf, peek)?;
                Ok(Recv {
                    copied: n,
                    full: n,
                    ..Default::default()
                })
            }
            Ep::Udp(e) => {
                let (full, from) = e.recv_from(buf, peek)?;
                Ok(Recv {
                    copied: full.min(buf.len()),
                    full,
                    from: Some(SockAddr::Inet(from)),
                    ..Default::default()
                })
            }
            Ep::Icmp(e) => {
                let (full, from) = e.recv_from(buf, peek)?;
                Ok(Recv {
                    copied: full.min(buf.len()),
                    full,
                    from: Some(SockAddr::Inet(from)),
                    ..Default::default()
                })
            }
        }
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        if !(libc::SHUT_RD..=libc::SHUT_RDWR).contains(&how) {
            return Err(Errno::EINVAL);
        }
        match &self.ep {
            Ep::Tcp(e) => e.shutdown(how),
            Ep::Udp(e) => e.shutdown(how),
            // Ping sockets keep no shutdown state: Linux's ping has none either
            // beyond the generic socket bits, which nothing here reads.
            Ep::Icmp(e) => e.peer_addr().map(|_| ()),
        }
    }

    fn sockname(&self) -> SockAddr {
        SockAddr::Inet(self.sockname_addr())
    }

    fn peername(&self) -> Result<SockAddr, Errno> {
        let r = match &self.ep {
            Ep::Tcp(e) => e.peer_addr(),
            Ep::Udp(e) => e.peer_addr(),
            Ep::Icmp(e) => e.peer_addr(),
        };
        r.map(SockAddr::Inet)
    }

    fn take_error(&self) -> Option<Errno> {
        match &self.ep {
            Ep::Tcp(e) => {
                let mut settled = self.settled();
                if let Some(Err(err)) = *settled {
                    *settled = None;
                    return Some(err);
                }
                e.take_error()
            }
            Ep::Udp(e) => e.take_error(),
            Ep::Icmp(e) => e.take_error(),
        }
    }

    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        match level {
            libc::SOL_SOCKET => self.sol_socket_get(name),
            SOL_TCP => match &self.ep {
                Ep::Tcp(e) => self.tcp_get(e, name),
                _ => Err(Errno::ENOPROTOOPT),
            },
            SOL_IP => self.ip_get(name),
            SOL_IPV6 if self.v6() => self.ipv6_get(name),
            SOL_IPV6 => Err(Errno::ENOPROTOOPT),
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        match level {
            libc::SOL_SOCKET => self.sol_socket_set(name, val),
            SOL_TCP => match &self.ep {
                Ep::Tcp(e) => self.tcp_set(e, name, val),
                _ => Err(Errno::ENOPROTOOPT),
            },
            SOL_IP => self.ip_set(name, val),
            SOL_IPV6 if self.v6() => self.ipv6_set(name, val),
            SOL_IPV6 => Err(Errno::ENOPROTOOPT),
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn ioctl(&self, io: &dyn UserIo, cmd: u32, arg: u64) -> Result<u64, Errno> {
        let n = match cmd {
            FIONREAD => match &self.ep {
                Ep::Tcp(e) if e.is_listening() => return Err(Errno::EINVAL),
                Ep::Tcp(e) => e.inq(),
                Ep::Udp(e) => e.inq(),
                Ep::Icmp(_) => 0,
            },
            SIOCOUTQ | SIOCOUTQNSD => match &self.ep {
                Ep::Tcp(e) if e.is_listening() => return Err(Errno::EINVAL),
                Ep::Tcp(e) => e.outq(),
                Ep::Udp(e) => e.outq(),
                Ep::Icmp(_) => 0,
            },
            _ => return Err(Errno::ENOTTY),
        };
        io.copy_out(arg, &(n.min(i32::MAX as usize) as i32).to_le_bytes())?;
        Ok(0)
    }
}
