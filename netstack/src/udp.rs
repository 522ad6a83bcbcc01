//! UDP endpoints (AF_INET/AF_INET6 SOCK_DGRAM).
//!
//! A bound endpoint has one smoltcp UDP socket per interface it receives on.
//! The receive buffer holds SO_RCVBUF bytes of payload (212992 by default,
//! Linux's `rmem_default`), counted by datagram size (Linux counts skb
//! truesize, so it holds somewhat fewer small datagrams).
//!
//! Deviations from Linux:
//! - With several sockets on one port (SO_REUSEADDR/SO_REUSEPORT) a datagram
//!   goes to the first matching socket, not the most specific/last bound.
//! - ICMP port-unreachable errors are not reported (no ECONNREFUSED on
//!   connected sockets).
//! - IP fragmentation is not supported: datagrams larger than the link MTU
//!   cannot leave on a link (loopback carries up to 65507 bytes).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::task::Waker;

use abi::Errno;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp::{self, UdpMetadata};
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};

use crate::iface::{from_ip, to_ip, Iface};
use crate::stack::{check_addr, for_family, unspecified, Binding, EpKind, Inner, Proto, Stack};
use crate::{
    Notify, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDHUP, POLLRDNORM, POLLWRNORM, SHUT_RD,
    SHUT_RDWR, SHUT_WR,
};

/// Linux `rmem_default` / `wmem_default`.
pub const DEFAULT_BUF: usize = 212992;
/// Largest UDP payload over IPv4 / IPv6.
pub const MAX_PAYLOAD_V4: usize = 65507;
pub const MAX_PAYLOAD_V6: usize = 65527;

pub(crate) struct UdpEp {
    v6: bool,
    v6only: bool,
    reuseaddr: bool,
    reuseport: bool,
    broadcast: bool,
    sndbuf: usize,
    rcvbuf: usize,
    bound: Option<(SocketAddr, u64)>,
    socks: Vec<(usize, SocketHandle)>,
    peer: Option<SocketAddr>,
    /// Local address chosen by connect when bound to the unspecified address.
    conn_local: Option<IpAddr>,
    error: Option<Errno>,
    shut_rd: bool,
    shut_wr: bool,
}

/// The /proc/net/udp[6] line of `u`: bound sockets only, as Linux.
pub(crate) fn entry(u: &UdpEp, ifaces: &mut [Iface]) -> Option<crate::stack::SockEntry> {
    let (a, _) = u.bound?;
    let ip = if a.ip().is_unspecified() {
        u.conn_local.unwrap_or(a.ip())
    } else {
        a.ip()
    };
    let rx: usize = u
        .socks
        .iter()
        .map(|&(ifc, h)| sock(ifaces, ifc, h).recv_queue())
        .sum();
    Some(crate::stack::SockEntry {
        tcp: false,
        v6: u.v6,
        local: for_family(SocketAddr::new(ip, a.port()), u.v6),
        remote: u
            .peer
            .map(|p| for_family(p, u.v6))
            .unwrap_or(SocketAddr::new(unspecified(u.v6), 0)),
        state: if u.peer.is_some() { 1 } else { 7 },
        tx_queue: 0,
        rx_queue: rx as u32,
        uid: 0,
        inode: 0,
    })
}

fn sock(ifaces: &mut [Iface], ifc: usize, h: SocketHandle) -> &mut udp::Socket<'static> {
    ifaces[ifc].sockets.get_mut::<udp::Socket<'static>>(h)
}

/// Whether a datagram from `from` to `to` is for this endpoint.
fn wanted(u: &UdpEp, from: SocketAddr, to: Option<IpAddr>) -> bool {
    let v4 = from.is_ipv4();
    if v4 && u.v6 && u.v6only || !v4 && !u.v6 {
        return false;
    }
    if let Some(p) = u.peer {
        if p != from {
            return false;
        }
    }
    if let (Some((b, _)), Some(to)) = (u.bound, to) {
        if !b.ip().is_unspecified() && b.ip() != to {
            return false;
        }
    }
    true
}

/// Drops queued datagrams this endpoint must not see; returns whether one is
/// ready.
fn filter(u: &UdpEp, ifaces: &mut [Iface]) -> bool {
    let mut ready = false;
    for &(ifc, h) in &u.socks {
        let s = sock(ifaces, ifc, h);
        while let Ok((_, m)) = s.peek() {
            let from = SocketAddr::new(from_ip(m.endpoint.addr), m.endpoint.port);
            if wanted(u, from, m.local_address.map(from_ip)) {
                ready = true;
                break;
            }
            let _ = s.recv();
        }
    }
    ready
}

pub(crate) fn update(u: &mut UdpEp, ifaces: &mut [Iface], waker: &Waker) -> u64 {
    for &(ifc, h) in &u.socks {
        let s = sock(ifaces, ifc, h);
        s.register_recv_waker(waker);
        s.register_send_waker(waker);
    }
    let bits = readiness(u, ifaces) as u64;
    let q: usize = u
        .socks
        .iter()
        .map(|&(ifc, h)| sock(ifaces, ifc, h).recv_queue())
        .sum();
    bits | ((q as u64) << 32)
}

fn readiness(u: &UdpEp, ifaces: &mut [Iface]) -> u32 {
    let mut m = 0;
    if u.error.is_some() {
        m |= POLLERR;
    }
    if filter(u, ifaces) {
        m |= POLLIN | POLLRDNORM;
    }
    if u.shut_rd {
        m |= POLLIN | POLLRDNORM | POLLRDHUP;
    }
    if u.shut_rd && u.shut_wr {
        m |= POLLHUP;
    }
    if u.socks
        .iter()
        .all(|&(ifc, h)| sock(ifaces, ifc, h).can_send())
    {
        m |= POLLOUT | POLLWRNORM;
    }
    m
}

fn new_socket(u: &UdpEp) -> udp::Socket<'static> {
    let rx_meta = (u.rcvbuf / 512).max(64);
    let tx_meta = (u.sndbuf / 512).max(64);
    let rx = udp::PacketBuffer::new(
        vec![udp::PacketMetadata::EMPTY; rx_meta],
        vec![0u8; u.rcvbuf.max(MAX_PAYLOAD_V6 + 1)],
    );
    let tx = udp::PacketBuffer::new(
        vec![udp::PacketMetadata::EMPTY; tx_meta],
        vec![0u8; u.sndbuf.max(MAX_PAYLOAD_V6 + 1)],
    );
    udp::Socket::new(rx, tx)
}

fn bind_locked(i: &mut Inner, id: usize, a: SocketAddr) -> Result<(), Errno> {
    let key = i.ports.key();
    let u = i.udp(id);
    let b = Binding {
        key,
        addr: a.ip(),
        dual: u.v6 && !u.v6only && a.ip().is_unspecified(),
        reuseaddr: u.reuseaddr,
        reuseport: u.reuseport,
        listening: false,
    };
    let port = if a.port() == 0 {
        i.ports.ephemeral(Proto::Udp, &b).ok_or(Errno::EAGAIN)?
    } else {
        if i.ports.conflict(Proto::Udp, a.port(), &b) {
            return Err(Errno::EADDRINUSE);
        }
        a.port()
    };
    i.ports.add(Proto::Udp, port, b);
    let addr = if a.ip().is_unspecified() {
        None
    } else {
        Some(a.ip())
    };
    let ifcs = i.ifaces_for(addr);
    let mut socks = Vec::new();
    for ifc in ifcs {
        let mut s = new_socket(i.udp(id));
        let _ = s.bind(IpListenEndpoint {
            addr: addr.map(to_ip),
            port,
        });
        socks.push((ifc, i.ifaces[ifc].sockets.add(s)));
    }
    let u = i.udp(id);
    u.socks = socks;
    u.bound = Some((SocketAddr::new(a.ip(), port), key));
    Ok(())
}

/// The source address for packets to `dst` leaving by `ifc`.
fn source_for(i: &Inner, ifc: usize, dst: IpAddr) -> IpAddr {
    if ifc == 0 {
        if dst.is_loopback() {
            return match dst {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => dst,
            };
        }
        return dst;
    }
    i.ifaces[ifc]
        .addrs
        .iter()
        .map(|&(a, _)| a)
        .find(|a| a.is_ipv4() == dst.is_ipv4())
        .unwrap_or(unspecified(!dst.is_ipv4()))
}

fn is_broadcast(i: &Inner, a: IpAddr) -> bool {
    let IpAddr::V4(v) = a else { return false };
    if v == Ipv4Addr::BROADCAST {
        return true;
    }
    i.ifaces.iter().skip(1).any(|f| {
        f.addrs.iter().any(|&(x, p)| match x {
            IpAddr::V4(x) if p < 31 => {
                let host = u32::MAX >> p;
                u32::from(v) == (u32::from(x) | host)
            }
            _ => false,
        })
    })
}

/// A UDP socket of the sandbox.
pub struct UdpEndpoint {
    stack: Arc<Stack>,
    id: usize,
}

impl UdpEndpoint {
    pub(crate) fn new(stack: Arc<Stack>, v6: bool) -> UdpEndpoint {
        let id = stack.with(|i| {
            i.insert(EpKind::Udp(UdpEp {
                v6,
                v6only: false,
                reuseaddr: false,
                reuseport: false,
                broadcast: false,
                sndbuf: DEFAULT_BUF,
                rcvbuf: DEFAULT_BUF,
                bound: None,
                socks: Vec::new(),
                peer: None,
                conn_local: None,
                error: None,
                shut_rd: false,
                shut_wr: false,
            }))
        });
        UdpEndpoint { stack, id }
    }

    /// Whether this is an AF_INET6 socket.
    pub fn is_v6(&self) -> bool {
        self.stack.with(|i| i.udp(self.id).v6)
    }

    /// Registers the readiness callback.
    pub fn set_notify(&self, f: Notify) {
        self.stack.set_notify(self.id, f)
    }

    /// Names the socket file (its uid and inode) for /proc/net.
    pub fn set_owner(&self, uid: u32, ino: u64) {
        self.stack.set_owner(self.id, uid, ino)
    }

    pub fn readiness(&self) -> u32 {
        self.stack.with(|i| {
            let Inner { eps, ifaces, .. } = i;
            match eps[self.id].as_mut().map(|s| &mut s.kind) {
                Some(EpKind::Udp(u)) => readiness(u, ifaces),
                _ => 0,
            }
        })
    }

    /// `bind(2)`.
    pub fn bind(&self, addr: SocketAddr) -> Result<(), Errno> {
        self.stack.op(self.id, |i| {
            let u = i.udp(self.id);
            let a = check_addr(addr, u.v6, false)?;
            if u.bound.is_some() {
                return Err(Errno::EINVAL);
            }
            if !i.is_local(a.ip()) && !is_broadcast(i, a.ip()) {
                return Err(Errno::EADDRNOTAVAIL);
            }
            bind_locked(i, self.id, a)
        })
    }

    /// `connect(2)`; `None` (AF_UNSPEC) dissolves the association.
    pub fn connect(&self, addr: Option<SocketAddr>) -> Result<(), Errno> {
        self.stack.op(self.id, |i| {
            let u = i.udp(self.id);
            let Some(addr) = addr else {
                u.peer = None;
                u.conn_local = None;
                return Ok(());
            };
            let mut dst = check_addr(addr, u.v6, u.v6only)?;
            if dst.ip().is_unspecified() {
                dst.set_ip(if dst.is_ipv4() {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                } else {
                    IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
                });
            }
            let Some(ifc) = i.route(dst.ip()) else {
                return Err(Errno::ENETUNREACH);
            };
            if i.udp(self.id).bound.is_none() {
                let v6 = i.udp(self.id).v6;
                bind_locked(i, self.id, SocketAddr::new(unspecified(v6), 0))?;
            }
            let src = source_for(i, ifc, dst.ip());
            let u = i.udp(self.id);
            u.peer = Some(dst);
            u.conn_local = Some(src);
            Ok(())
        })
    }

    /// `sendto(2)`: the whole datagram or an error.
    pub fn send_to(&self, data: &[u8], to: Option<SocketAddr>) -> Result<usize, Errno> {
        self.stack.op(self.id, |i| {
            let u = i.udp(self.id);
            if u.shut_wr {
                return Err(Errno::EPIPE);
            }
            let mut dst = match to {
                Some(a) => check_addr(a, u.v6, u.v6only)?,
                None => u.peer.ok_or(Errno::EDESTADDRREQ)?,
            };
            let max = if dst.is_ipv4() {
                MAX_PAYLOAD_V4
            } else {
                MAX_PAYLOAD_V6
            };
            if data.len() > max {
                return Err(Errno::EMSGSIZE);
            }
            if dst.port() == 0 {
                return Err(Errno::EINVAL);
            }
            if dst.ip().is_unspecified() {
                dst.set_ip(if dst.is_ipv4() {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                } else {
                    IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
                });
            }
            let bcast = is_broadcast(i, dst.ip());
            if bcast && !i.udp(self.id).broadcast {
                return Err(Errno::EACCES);
            }
            let ifc = if dst.ip() == IpAddr::V4(Ipv4Addr::BROADCAST) {
                if i.ifaces.len() > 1 {
                    1
                } else {
                    return Err(Errno::ENETUNREACH);
                }
            } else {
                i.route(dst.ip()).ok_or(Errno::ENETUNREACH)?
            };
            if i.udp(self.id).bound.is_none() {
                let v6 = i.udp(self.id).v6;
                bind_locked(i, self.id, SocketAddr::new(unspecified(v6), 0))?;
            }
            let u = i.udp(self.id);
            let Some(&(_, h)) = u.socks.iter().find(|&&(f, _)| f == ifc) else {
                return Err(Errno::EINVAL);
            };
            let bound_ip = u.bound.map(|b| b.0.ip()).filter(|a| !a.is_unspecified());
            if bound_ip.is_some_and(|b| b.is_ipv4() != dst.is_ipv4()) {
                return Err(Errno::ENETUNREACH);
            }
            let local = match bound_ip {
                Some(b) => b,
                None => source_for(i, ifc, dst.ip()),
            };
            if local.is_unspecified() {
                return Err(Errno::ENETUNREACH);
            }
            let mut meta = UdpMetadata::from(IpEndpoint::new(to_ip(dst.ip()), dst.port()));
            meta.local_address = Some(to_ip(local));
            // A local destination with no socket on the port: the ICMP port
            // unreachable Linux would send back reaches a connected sender
            // as ECONNREFUSED (its next receive, SO_ERROR, POLLERR).
            let refused = i.udp(self.id).peer.is_some()
                && i.is_local(dst.ip())
                && !i.ports.receiver(Proto::Udp, dst.port(), dst.ip());
            match sock(&mut i.ifaces, ifc, h).send_slice(data, meta) {
                Ok(()) => {
                    if refused {
                        i.udp(self.id).error = Some(Errno::ECONNREFUSED);
                    }
                    Ok(data.len())
                }
                Err(udp::SendError::BufferFull) => Err(Errno::EAGAIN),
                Err(udp::SendError::Unaddressable) => Err(Errno::ENETUNREACH),
            }
        })
    }

    /// `send(2)` on a connected socket.
    pub fn send(&self, data: &[u8]) -> Result<usize, Errno> {
        self.send_to(data, None)
    }

    /// `recvfrom(2)`: copies `min(len, buf.len())` bytes and returns the full
    /// datagram length (for MSG_TRUNC) and the sender.
    pub fn recv_from(&self, buf: &mut [u8], peek: bool) -> Result<(usize, SocketAddr), Errno> {
        self.stack.op(self.id, |i| {
            let Inner { eps, ifaces, .. } = i;
            let Some(EpKind::Udp(u)) = eps[self.id].as_mut().map(|s| &mut s.kind) else {
                return Err(Errno::EBADF);
            };
            if let Some(e) = u.error.take() {
                return Err(e);
            }
            if u.shut_rd {
                return Err(Errno::EAGAIN);
            }
            filter(u, ifaces);
            for &(ifc, h) in &u.socks {
                let s = sock(ifaces, ifc, h);
                let from = match s.peek() {
                    Ok((d, m)) => {
                        let n = d.len().min(buf.len());
                        buf[..n].copy_from_slice(&d[..n]);
                        (
                            d.len(),
                            SocketAddr::new(from_ip(m.endpoint.addr), m.endpoint.port),
                        )
                    }
                    Err(_) => continue,
                };
                if !peek {
                    let _ = s.recv();
                }
                return Ok((from.0, for_family(from.1, u.v6)));
            }
            Err(Errno::EAGAIN)
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, Errno> {
        self.stack.with(|i| {
            let u = i.udp(self.id);
            Ok(match u.bound {
                Some((a, _)) => {
                    let ip = if a.ip().is_unspecified() {
                        u.conn_local.unwrap_or(a.ip())
                    } else {
                        a.ip()
                    };
                    for_family(SocketAddr::new(ip, a.port()), u.v6)
                }
                None => SocketAddr::new(unspecified(u.v6), 0),
            })
        })
    }

    pub fn peer_addr(&self) -> Result<SocketAddr, Errno> {
        self.stack.with(|i| {
            let u = i.udp(self.id);
            u.peer.map(|p| for_family(p, u.v6)).ok_or(Errno::ENOTCONN)
        })
    }

    pub fn take_error(&self) -> Option<Errno> {
        self.stack.with(|i| i.udp(self.id).error.take())
    }

    /// `shutdown(2)`: ENOTCONN unless connected, as Linux.
    pub fn shutdown(&self, how: i32) -> Result<(), Errno> {
        if !(SHUT_RD..=SHUT_RDWR).contains(&how) {
            return Err(Errno::EINVAL);
        }
        self.stack.op(self.id, |i| {
            // Linux (__udp_disconnect-less shutdown): an unconnected socket
            // says ENOTCONN but is shut down all the same.
            let u = i.udp(self.id);
            if how != SHUT_WR {
                u.shut_rd = true;
            }
            if how != SHUT_RD {
                u.shut_wr = true;
            }
            if u.peer.is_none() {
                return Err(Errno::ENOTCONN);
            }
            Ok(())
        })
    }

    /// FIONREAD: size of the next datagram (0 if none).
    pub fn inq(&self) -> usize {
        self.stack.with(|i| {
            let Inner { eps, ifaces, .. } = i;
            let Some(EpKind::Udp(u)) = eps[self.id].as_mut().map(|s| &mut s.kind) else {
                return 0;
            };
            filter(u, ifaces);
            u.socks
                .iter()
                .find_map(|&(ifc, h)| sock(ifaces, ifc, h).peek().ok().map(|(d, _)| d.len()))
                .unwrap_or(0)
        })
    }

    /// SIOCOUTQ: bytes queued to send.
    pub fn outq(&self) -> usize {
        self.stack.with(|i| {
            let Inner { eps, ifaces, .. } = i;
            let Some(EpKind::Udp(u)) = eps[self.id].as_mut().map(|s| &mut s.kind) else {
                return 0;
            };
            u.socks
                .iter()
                .map(|&(ifc, h)| sock(ifaces, ifc, h).send_queue())
                .sum()
        })
    }

    pub fn set_broadcast(&self, v: bool) {
        self.stack.with(|i| i.udp(self.id).broadcast = v)
    }
    pub fn broadcast(&self) -> bool {
        self.stack.with(|i| i.udp(self.id).broadcast)
    }
    pub fn set_reuseaddr(&self, v: bool) {
        self.stack.with(|i| i.udp(self.id).reuseaddr = v)
    }
    pub fn reuseaddr(&self) -> bool {
        self.stack.with(|i| i.udp(self.id).reuseaddr)
    }
    pub fn set_reuseport(&self, v: bool) {
        self.stack.with(|i| i.udp(self.id).reuseport = v)
    }
    pub fn reuseport(&self) -> bool {
        self.stack.with(|i| i.udp(self.id).reuseport)
    }
    /// IPV6_V6ONLY (EINVAL once bound).
    pub fn set_v6only(&self, v: bool) -> Result<(), Errno> {
        self.stack.with(|i| {
            let u = i.udp(self.id);
            if u.bound.is_some() {
                return Err(Errno::EINVAL);
            }
            u.v6only = v;
            Ok(())
        })
    }
    pub fn v6only(&self) -> bool {
        self.stack.with(|i| i.udp(self.id).v6only)
    }
    /// SO_RCVBUF: `2 * v` clamped to [2304, 425984]; applies to sockets created
    /// by a later bind.
    pub fn set_rcvbuf(&self, v: usize) {
        self.stack
            .with(|i| i.udp(self.id).rcvbuf = v.saturating_mul(2).clamp(2304, 425984))
    }
    pub fn rcvbuf(&self) -> usize {
        self.stack.with(|i| i.udp(self.id).rcvbuf)
    }
    /// SO_SNDBUF: `2 * v` clamped to [4608, 425984].
    pub fn set_sndbuf(&self, v: usize) {
        self.stack
            .with(|i| i.udp(self.id).sndbuf = v.saturating_mul(2).clamp(4608, 425984))
    }
    pub fn sndbuf(&self) -> usize {
        self.stack.with(|i| i.udp(self.id).sndbuf)
    }
}

impl Drop for UdpEndpoint {
    fn drop(&mut self) {
        self.stack.with(|i| {
            let Some(slot) = i.remove(self.id) else {
                return;
            };
            let EpKind::Udp(u) = slot.kind else { return };
            for (ifc, h) in u.socks {
                i.ifaces[ifc].sockets.remove(h);
            }
            if let Some((a, key)) = u.bound {
                i.ports.remove(Proto::Udp, a.port(), key);
            }
        })
    }
}
