//! ICMP echo ("ping") datagram endpoints: SOCK_DGRAM with IPPROTO_ICMP or
//! IPPROTO_ICMPV6, as Linux's ping sockets.
//!
//! The application writes an echo request (8-byte ICMP header + payload); the
//! stack replaces the identifier with the endpoint's bound "port" (an
//! ephemeral one if unbound) and computes the checksum. Reads return echo
//! replies carrying that identifier (header + payload), with the sender.
//!
//! Deviations from Linux: no ICMP error delivery (IP_RECVERR), only echo
//! replies are received; the sequence number is passed through unchanged.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::task::Waker;

use abi::Errno;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::icmp;

use crate::iface::{from_ip, to_ip, Iface};
use crate::stack::{check_addr, for_family, unspecified, Binding, EpKind, Inner, Proto, Stack};
use crate::{Notify, POLLERR, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};

const BUF: usize = 212992;

pub(crate) struct IcmpEp {
    v6: bool,
    /// Bound address and identifier, with the binding key.
    bound: Option<(SocketAddr, u64)>,
    socks: Vec<(usize, SocketHandle)>,
    peer: Option<SocketAddr>,
    error: Option<Errno>,
    /// Echo replies taken from the smoltcp sockets (it cannot peek).
    pending: std::collections::VecDeque<(Vec<u8>, IpAddr)>,
}

fn sock(ifaces: &mut [Iface], ifc: usize, h: SocketHandle) -> &mut icmp::Socket<'static> {
    ifaces[ifc].sockets.get_mut::<icmp::Socket<'static>>(h)
}

fn proto(v6: bool) -> Proto {
    if v6 {
        Proto::Icmp6
    } else {
        Proto::Icmp4
    }
}

fn reply_type(v6: bool) -> u8 {
    if v6 {
        129
    } else {
        0
    }
}

pub(crate) fn update(c: &mut IcmpEp, ifaces: &mut [Iface], waker: &Waker) -> u64 {
    for &(ifc, h) in &c.socks {
        let s = sock(ifaces, ifc, h);
        s.register_recv_waker(waker);
        s.register_send_waker(waker);
    }
    let bits = readiness(c, ifaces) as u64;
    let q: usize = c
        .socks
        .iter()
        .map(|&(ifc, h)| sock(ifaces, ifc, h).recv_queue())
        .sum();
    bits | ((q as u64) << 32)
}

fn readiness(c: &mut IcmpEp, ifaces: &mut [Iface]) -> u32 {
    let mut m = POLLOUT | POLLWRNORM;
    if c.error.is_some() {
        m |= POLLERR;
    }
    if !c.socks.is_empty() && fill(c, ifaces) {
        m |= POLLIN | POLLRDNORM;
    }
    m
}

/// Moves wanted replies from the smoltcp sockets to `pending`; returns
/// whether one is ready.
fn fill(c: &mut IcmpEp, ifaces: &mut [Iface]) -> bool {
    let v6 = c.v6;
    for &(ifc, h) in &c.socks {
        let s = sock(ifaces, ifc, h);
        while c.pending.len() < 256 {
            let Ok((d, from)) = s.recv() else { break };
            let from = from_ip(from);
            if d.is_empty() || d[0] != reply_type(v6) || c.peer.is_some_and(|p| p.ip() != from) {
                continue;
            }
            c.pending.push_back((d.to_vec(), from));
        }
    }
    !c.pending.is_empty()
}

fn bind_locked(i: &mut Inner, id: usize, a: SocketAddr) -> Result<(), Errno> {
    let key = i.ports.key();
    let c = i.icmp(id);
    let p = proto(c.v6);
    let b = Binding {
        key,
        addr: a.ip(),
        dual: false,
        reuseaddr: false,
        reuseport: false,
        listening: false,
    };
    let port = if a.port() == 0 {
        i.ports.ephemeral(p, &b).ok_or(Errno::EAGAIN)?
    } else {
        if i.ports.conflict(p, a.port(), &b) {
            return Err(Errno::EADDRINUSE);
        }
        a.port()
    };
    i.ports.add(p, port, b);
    let addr = if a.ip().is_unspecified() {
        None
    } else {
        Some(a.ip())
    };
    let mut socks = Vec::new();
    for ifc in i.ifaces_for(addr) {
        let rx = icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 256], vec![0u8; BUF]);
        let tx = icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 256], vec![0u8; BUF]);
        let mut s = icmp::Socket::new(rx, tx);
        let _ = s.bind(icmp::Endpoint::Ident(port));
        socks.push((ifc, i.ifaces[ifc].sockets.add(s)));
    }
    let c = i.icmp(id);
    c.socks = socks;
    c.bound = Some((SocketAddr::new(a.ip(), port), key));
    Ok(())
}

/// A ping socket.
pub struct IcmpEndpoint {
    stack: Arc<Stack>,
    id: usize,
}

impl IcmpEndpoint {
    pub(crate) fn new(stack: Arc<Stack>, v6: bool) -> IcmpEndpoint {
        let id = stack.with(|i| {
            i.insert(EpKind::Icmp(IcmpEp {
                v6,
                bound: None,
                socks: Vec::new(),
                peer: None,
                error: None,
                pending: Default::default(),
            }))
        });
        IcmpEndpoint { stack, id }
    }

    /// Whether this is an AF_INET6 socket.
    pub fn is_v6(&self) -> bool {
        self.stack.with(|i| i.icmp(self.id).v6)
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
                Some(EpKind::Icmp(c)) => readiness(c, ifaces),
                _ => 0,
            }
        })
    }

    /// `bind(2)`: the port is the echo identifier.
    pub fn bind(&self, addr: SocketAddr) -> Result<(), Errno> {
        self.stack.op(self.id, |i| {
            let c = i.icmp(self.id);
            let a = check_addr(addr, c.v6, false)?;
            if c.bound.is_some() {
                return Err(Errno::EINVAL);
            }
            if !i.is_local(a.ip()) {
                return Err(Errno::EADDRNOTAVAIL);
            }
            bind_locked(i, self.id, a)
        })
    }

    /// `connect(2)`; `None` disconnects.
    pub fn connect(&self, addr: Option<SocketAddr>) -> Result<(), Errno> {
        self.stack.op(self.id, |i| {
            let c = i.icmp(self.id);
            let Some(a) = addr else {
                c.peer = None;
                return Ok(());
            };
            let a = check_addr(a, c.v6, true)?;
            i.route(a.ip()).ok_or(Errno::ENETUNREACH)?;
            if i.icmp(self.id).bound.is_none() {
                let v6 = i.icmp(self.id).v6;
                bind_locked(i, self.id, SocketAddr::new(unspecified(v6), 0))?;
            }
            i.icmp(self.id).peer = Some(a);
            Ok(())
        })
    }

    /// Sends an echo request (`data` = ICMP header + payload).
    pub fn send_to(&self, data: &[u8], to: Option<SocketAddr>) -> Result<usize, Errno> {
        self.stack.op(self.id, |i| {
            let c = i.icmp(self.id);
            let dst = match to {
                Some(a) => check_addr(a, c.v6, true)?,
                None => c.peer.ok_or(Errno::EDESTADDRREQ)?,
            };
            let want_type = if c.v6 { 128 } else { 8 };
            if data.len() < 8 || data[0] != want_type || data[1] != 0 {
                return Err(Errno::EINVAL);
            }
            if data.len() > 65507 {
                return Err(Errno::EMSGSIZE);
            }
            let mut dip = dst.ip();
            if dip.is_unspecified() {
                dip = if c.v6 {
                    IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
                } else {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                };
            }
            let ifc = i.route(dip).ok_or(Errno::ENETUNREACH)?;
            if i.icmp(self.id).bound.is_none() {
                let v6 = i.icmp(self.id).v6;
                bind_locked(i, self.id, SocketAddr::new(unspecified(v6), 0))?;
            }
            let c = i.icmp(self.id);
            let ident = c.bound.unwrap().0.port();
            let Some(&(_, h)) = c.socks.iter().find(|&&(f, _)| f == ifc) else {
                return Err(Errno::EINVAL);
            };
            let mut pkt = data.to_vec();
            pkt[4..6].copy_from_slice(&ident.to_be_bytes());
            match sock(&mut i.ifaces, ifc, h).send_slice(&pkt, to_ip(dip)) {
                Ok(()) => Ok(data.len()),
                Err(icmp::SendError::BufferFull) => Err(Errno::EAGAIN),
                Err(icmp::SendError::Unaddressable) => Err(Errno::ENETUNREACH),
            }
        })
    }

    /// Receives an echo reply (header + payload): the full length and sender.
    pub fn recv_from(&self, buf: &mut [u8], peek: bool) -> Result<(usize, SocketAddr), Errno> {
        self.stack.op(self.id, |i| {
            let Inner { eps, ifaces, .. } = i;
            let Some(EpKind::Icmp(c)) = eps[self.id].as_mut().map(|s| &mut s.kind) else {
                return Err(Errno::EBADF);
            };
            if let Some(e) = c.error.take() {
                return Err(e);
            }
            fill(c, ifaces);
            let v6 = c.v6;
            let Some((d, from)) = (if peek {
                c.pending.front().cloned()
            } else {
                c.pending.pop_front()
            }) else {
                return Err(Errno::EAGAIN);
            };
            let n = d.len().min(buf.len());
            buf[..n].copy_from_slice(&d[..n]);
            Ok((d.len(), for_family(SocketAddr::new(from, 0), v6)))
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, Errno> {
        self.stack.with(|i| {
            let c = i.icmp(self.id);
            Ok(c.bound
                .map(|b| b.0)
                .unwrap_or(SocketAddr::new(unspecified(c.v6), 0)))
        })
    }

    pub fn peer_addr(&self) -> Result<SocketAddr, Errno> {
        self.stack
            .with(|i| i.icmp(self.id).peer.ok_or(Errno::ENOTCONN))
    }

    pub fn take_error(&self) -> Option<Errno> {
        self.stack.with(|i| i.icmp(self.id).error.take())
    }
}

impl Drop for IcmpEndpoint {
    fn drop(&mut self) {
        self.stack.with(|i| {
            let Some(slot) = i.remove(self.id) else {
                return;
            };
            let EpKind::Icmp(c) = slot.kind else { return };
            for (ifc, h) in c.socks {
                i.ifaces[ifc].sockets.remove(h);
            }
            if let Some((a, key)) = c.bound {
                i.ports.remove(proto(c.v6), a.port(), key);
            }
        })
    }
}
