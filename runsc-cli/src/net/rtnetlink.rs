//! A small rtnetlink (NETLINK_ROUTE) client for the calling thread's network
//! namespace: list links, addresses and routes; add and remove addresses and
//! routes; set a link up; create a veth pair (peer in another namespace);
//! delete a link. Messages are built and parsed by hand (rtnetlink(7)); every
//! answer is parsed through bounds-checked views, so a short or odd message
//! is skipped, never a panic.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

// Message types (linux/rtnetlink.h).
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

// Attributes.
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_NET_NS_FD: u16 = 28;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
const NLA_F_NESTED: u16 = 0x8000;

/// The main routing table (`ip route` without `table`).
pub const RT_TABLE_MAIN: u32 = 254;
const RTN_UNICAST: u8 = 1;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;

const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const RTMSG_LEN: usize = 12;

/// A network interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `IFF_*` flags (`IFF_UP`, `IFF_LOOPBACK`, ...).
    pub flags: u32,
    pub mtu: u32,
    /// The hardware address, if it is an Ethernet one.
    pub mac: Option<[u8; 6]>,
    /// `IFLA_INFO_KIND` ("veth", "bridge", ...), for virtual links.
    pub kind: Option<String>,
}

impl Link {
    pub fn is_up(&self) -> bool {
        self.flags & libc::IFF_UP as u32 != 0
    }

    pub fn is_loopback(&self) -> bool {
        self.flags & libc::IFF_LOOPBACK as u32 != 0
    }
}

/// An address of an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addr {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    pub scope: u8,
}

/// A unicast route of the main table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub dst: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub scope: u8,
    pub protocol: u8,
    pub priority: Option<u32>,
}

/// An rtnetlink socket of the namespace the opening thread is in (it stays
/// bound to that namespace whichever thread uses it later).
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

/// A netlink message under construction: header, fixed part, attributes.
struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    fn new(ty: u16, flags: u16, fixed: &[u8]) -> Msg {
        let mut buf = vec![0u8; NLMSG_HDRLEN];
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(fixed);
        let mut m = Msg {
            buf,
            nests: Vec::new(),
        };
        m.align();
        m
    }

    fn align(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.align();
        self
    }

    fn attr_str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(ty, &v)
    }

    fn begin(&mut self, ty: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        self
    }

    /// Appends a fixed-size structure inside the current nest (veth's peer
    /// carries an ifinfomsg before its attributes).
    fn raw(&mut self, data: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(data);
        self.align();
        self
    }

    fn end(&mut self) -> &mut Self {
        if let Some(at) = self.nests.pop() {
            let len = (self.buf.len() - at) as u16;
            self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The attributes in `b`, as (type without flags, payload); stops at the
/// first malformed one.
fn attrs(b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let len = u16_at(b, at)? as usize;
        let ty = u16_at(b, at + 2)? & 0x3fff;
        if len < 4 {
            return None;
        }
        let data = b.get(at + 4..at + len)?;
        at = at.checked_add((len + 3) & !3)?;
        Some((ty, data))
    })
}

/// The messages in one datagram: (type, payload after the header).
fn messages(b: &[u8]) -> impl Iterator<Item = (u16, u32, &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let len = u32_at(b, at)? as usize;
        let ty = u16_at(b, at + 4)?;
        let seq = u32_at(b, at + 8)?;
        if len < NLMSG_HDRLEN {
            return None;
        }
        let data = b.get(at + NLMSG_HDRLEN..at + len)?;
        at = at.checked_add((len + 3) & !3)?;
        Some((ty, seq, data))
    })
}

fn ip_from(family: u8, b: &[u8]) -> Option<IpAddr> {
    match (family as i32, b.len()) {
        (libc::AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(b).ok()?))),
        (libc::AF_INET6, 16) => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?))),
        _ => None,
    }
}

fn ip_bytes(a: &IpAddr) -> (u8, Vec<u8>) {
    match a {
        IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec()),
        IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec()),
    }
}

fn ifinfomsg(family: u8, index: u32, flags: u32, change: u32) -> [u8; IFINFOMSG_LEN] {
    let mut b = [0u8; IFINFOMSG_LEN];
    b[0] = family;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

fn parse_link(b: &[u8]) -> Option<Link> {
    let index = u32_at(b, 4)?;
    let flags = u32_at(b, 8)?;
    let mut l = Link {
        index,
        name: String::new(),
        flags,
        mtu: 0,
        mac: None,
        kind: None,
    };
    for (ty, d) in attrs(b.get(IFINFOMSG_LEN..)?) {
        match ty {
            IFLA_IFNAME => {
                let s = d.split(|&c| c == 0).next().unwrap_or(&[]);
                l.name = String::from_utf8_lossy(s).into_owned();
            }
            IFLA_MTU => l.mtu = u32_at(d, 0).unwrap_or(0),
            IFLA_ADDRESS => l.mac = <[u8; 6]>::try_from(d).ok(),
            IFLA_LINKINFO => {
                for (t, k) in attrs(d) {
                    if t == IFLA_INFO_KIND {
                        let s = k.split(|&c| c == 0).next().unwrap_or(&[]);
                        l.kind = Some(String::from_utf8_lossy(s).into_owned());
                    }
                }
            }
            _ => {}
        }
    }
    Some(l)
}

fn parse_addr(b: &[u8]) -> Option<Addr> {
    let family = *b.first()?;
    let prefix = *b.get(1)?;
    let scope = *b.get(3)?;
    let index = u32_at(b, 4)?;
    let (mut local, mut address) = (None, None);
    for (ty, d) in attrs(b.get(IFADDRMSG_LEN..)?) {
        match ty {
            IFA_LOCAL => local = ip_from(family, d),
            IFA_ADDRESS => address = ip_from(family, d),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer's on
    // point-to-point links); IPv6 has only IFA_ADDRESS.
    Some(Addr {
        index,
        addr: local.or(address)?,
        prefix,
        scope,
    })
}

/// A route of the main table, unicast only (the local, broadcast and
/// multicast ones are the kernel's own).
fn parse_route(b: &[u8]) -> Option<Route> {
    let family = *b.first()?;
    let prefix = *b.get(1)?;
    let mut table = u32::from(*b.get(4)?);
    let protocol = *b.get(5)?;
    let scope = *b.get(6)?;
    let ty = *b.get(7)?;
    let mut r = Route {
        dst: match family as i32 {
            libc::AF_INET => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            libc::AF_INET6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            _ => return None,
        },
        prefix,
        gateway: None,
        oif: None,
        scope,
        protocol,
        priority: None,
    };
    for (t, d) in attrs(b.get(RTMSG_LEN..)?) {
        match t {
            RTA_DST => r.dst = ip_from(family, d)?,
            RTA_GATEWAY => r.gateway = ip_from(family, d),
            RTA_OIF => r.oif = u32_at(d, 0),
            RTA_TABLE => table = u32_at(d, 0).unwrap_or(table),
            RTA_PRIORITY => r.priority = u32_at(d, 0),
            _ => {}
        }
    }
    (table == RT_TABLE_MAIN && ty == RTN_UNICAST).then_some(r)
}

impl Netlink {
    /// Opens a NETLINK_ROUTE socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        // SAFETY: plain socket(2).
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: an all-zero sockaddr_nl (the kernel picks our port id).
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: `sa` is a valid sockaddr_nl of the given size.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Netlink { fd, seq: 0 })
    }

    /// Sends `m` and collects the payloads of the answers of type `want`
    /// until the dump ends or the kernel acknowledges (an error answer is
    /// returned as that errno).
    fn request(&mut self, m: Msg, want: Option<u16>) -> io::Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let buf = m.finish(seq);
        // SAFETY: sends our buffer; the socket's default destination is the kernel.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut out = Vec::new();
        let mut rbuf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: receives into our buffer of that length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), rbuf.as_mut_ptr().cast(), rbuf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for (ty, mseq, data) in messages(&rbuf[..n as usize]) {
                if mseq != seq {
                    continue;
                }
                match ty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let err = u32_at(data, 0).map(|e| e as i32).unwrap_or(-libc::EIO);
                        return if err == 0 {
                            Ok(out)
                        } else {
                            Err(io::Error::from_raw_os_error(-err))
                        };
                    }
                    t if Some(t) == want => out.push(data.to_vec()),
                    _ => {}
                }
            }
        }
    }

    /// Every interface of the namespace.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let m = Msg::new(RTM_GETLINK, NLM_F_DUMP, &ifinfomsg(0, 0, 0, 0));
        Ok(self
            .request(m, Some(RTM_NEWLINK))?
            .iter()
            .filter_map(|b| parse_link(b))
            .collect())
    }

    /// The interface named `name`, if any.
    pub fn link_by_name(&mut self, name: &str) -> io::Result<Option<Link>> {
        Ok(self.links()?.into_iter().find(|l| l.name == name))
    }

    /// Every address of every interface (IPv4 and IPv6).
    pub fn addrs(&mut self) -> io::Result<Vec<Addr>> {
        let m = Msg::new(RTM_GETADDR, NLM_F_DUMP, &[0u8; IFADDRMSG_LEN]);
        Ok(self
            .request(m, Some(RTM_NEWADDR))?
            .iter()
            .filter_map(|b| parse_addr(b))
            .collect())
    }

    /// The unicast routes of the main table (IPv4 and IPv6).
    pub fn routes(&mut self) -> io::Result<Vec<Route>> {
        let m = Msg::new(RTM_GETROUTE, NLM_F_DUMP, &[0u8; RTMSG_LEN]);
        Ok(self
            .request(m, Some(RTM_NEWROUTE))?
            .iter()
            .filter_map(|b| parse_route(b))
            .collect())
    }

    fn addr_msg(ty: u16, flags: u16, index: u32, addr: &IpAddr, prefix: u8) -> Msg {
        let (family, bytes) = ip_bytes(addr);
        let mut fixed = [0u8; IFADDRMSG_LEN];
        fixed[0] = family;
        fixed[1] = prefix;
        fixed[4..8].copy_from_slice(&index.to_ne_bytes());
        let mut m = Msg::new(ty, flags, &fixed);
        m.attr(IFA_LOCAL, &bytes).attr(IFA_ADDRESS, &bytes);
        m
    }

    /// `ip addr add ADDR/PREFIX dev INDEX`.
    pub fn add_addr(&mut self, index: u32, addr: IpAddr, prefix: u8) -> io::Result<()> {
        let m = Self::addr_msg(
            RTM_NEWADDR,
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            index,
            &addr,
            prefix,
        );
        self.request(m, None).map(drop)
    }

    /// `ip addr del ADDR/PREFIX dev INDEX`.
    pub fn del_addr(&mut self, index: u32, addr: IpAddr, prefix: u8) -> io::Result<()> {
        let m = Self::addr_msg(RTM_DELADDR, NLM_F_ACK, index, &addr, prefix);
        self.request(m, None).map(drop)
    }

    /// `ip link set INDEX up`.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let up = libc::IFF_UP as u32;
        let m = Msg::new(RTM_NEWLINK, NLM_F_ACK, &ifinfomsg(0, index, up, up));
        self.request(m, None).map(drop)
    }

    fn route_msg(ty: u16, flags: u16, r: &Route) -> Msg {
        let (family, dst) = ip_bytes(&r.dst);
        let mut fixed = [0u8; RTMSG_LEN];
        fixed[0] = family;
        fixed[1] = r.prefix;
        fixed[4] = RT_TABLE_MAIN as u8;
        fixed[5] = if r.protocol == 0 {
            RTPROT_BOOT
        } else {
            r.protocol
        };
        fixed[6] = r.scope;
        fixed[7] = RTN_UNICAST;
        let mut m = Msg::new(ty, flags, &fixed);
        if r.prefix > 0 {
            m.attr(RTA_DST, &dst);
        }
        if let Some(g) = &r.gateway {
            m.attr(RTA_GATEWAY, &ip_bytes(g).1);
        }
        if let Some(o) = r.oif {
            m.attr(RTA_OIF, &o.to_ne_bytes());
        }
        if let Some(p) = r.priority {
            m.attr(RTA_PRIORITY, &p.to_ne_bytes());
        }
        m
    }

    /// `ip route add` of `r` in the main table (scope: link without a
    /// gateway, universe with one, unless `r.scope` says otherwise).
    pub fn add_route(&mut self, r: &Route) -> io::Result<()> {
        let mut r = r.clone();
        if r.scope == RT_SCOPE_UNIVERSE && r.gateway.is_none() {
            r.scope = RT_SCOPE_LINK;
        }
        let m = Self::route_msg(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &r);
        self.request(m, None).map(drop)
    }

    /// `ip route del` of `r` (as listed by [`Netlink::routes`]).
    pub fn del_route(&mut self, r: &Route) -> io::Result<()> {
        let m = Self::route_msg(RTM_DELROUTE, NLM_F_ACK, r);
        self.request(m, None).map(drop)
    }

    /// `ip link add NAME type veth peer name PEER [netns FD]`: both ends are
    /// down; the peer is made directly in the namespace open at `peer_netns`.
    pub fn create_veth(
        &mut self,
        name: &str,
        peer: &str,
        peer_netns: Option<RawFd>,
    ) -> io::Result<()> {
        let mut m = Msg::new(
            RTM_NEWLINK,
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &ifinfomsg(0, 0, 0, 0),
        );
        m.attr_str(IFLA_IFNAME, name)
            .begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "veth")
            .begin(IFLA_INFO_DATA)
            .begin(VETH_INFO_PEER)
            .raw(&ifinfomsg(0, 0, 0, 0))
            .attr_str(IFLA_IFNAME, peer);
        if let Some(fd) = peer_netns {
            m.attr(IFLA_NET_NS_FD, &(fd as u32).to_ne_bytes());
        }
        m.end().end().end();
        self.request(m, None).map(drop)
    }

    /// `ip link del INDEX` (a veth's peer goes with it).
    pub fn del_link(&mut self, index: u32) -> io::Result<()> {
        let m = Msg::new(RTM_DELLINK, NLM_F_ACK, &ifinfomsg(0, index, 0, 0));
        self.request(m, None).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_odd_messages_do_not_panic() {
        assert!(parse_link(&[]).is_none());
        assert!(parse_link(&[0; 8]).is_none());
        assert!(parse_addr(&[2, 24]).is_none());
        assert!(parse_route(&[2, 0, 0]).is_none());
        // An attribute claiming more than there is, or less than its header.
        let mut b = ifinfomsg(0, 3, 0, 0).to_vec();
        b.extend_from_slice(&[200, 0, 3, 0, b'x']);
        assert_eq!(parse_link(&b).unwrap().name, "");
        let mut b = ifinfomsg(0, 3, 0, 0).to_vec();
        b.extend_from_slice(&[2, 0, 3, 0]);
        assert_eq!(parse_link(&b).unwrap().index, 3);
        assert_eq!(messages(&[40, 0, 0, 0, 2, 0]).count(), 0);
        assert_eq!(messages(&[8, 0, 0, 0, 2, 0, 0, 0]).count(), 0);
    }

    #[test]
    fn built_messages_parse_back() {
        let mut m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(0, 7, 1, 1));
        m.attr_str(IFLA_IFNAME, "eth0")
            .attr(IFLA_MTU, &1500u32.to_ne_bytes())
            .attr(IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1])
            .begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "veth")
            .end();
        let b = m.finish(9);
        let (ty, seq, data) = messages(&b).next().unwrap();
        assert_eq!((ty, seq), (RTM_NEWLINK, 9));
        let l = parse_link(data).unwrap();
        assert_eq!(l.name, "eth0");
        assert_eq!(l.mtu, 1500);
        assert_eq!(l.mac, Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(l.kind.as_deref(), Some("veth"));
        assert!(l.is_up());

        let r = Route {
            dst: "10.1.0.0".parse().unwrap(),
            prefix: 16,
            gateway: Some("10.0.0.1".parse().unwrap()),
            oif: Some(3),
            scope: 0,
            protocol: 0,
            priority: None,
        };
        let b = Netlink::route_msg(RTM_NEWROUTE, 0, &r).finish(1);
        let (_, _, data) = messages(&b).next().unwrap();
        let p = parse_route(data).unwrap();
        assert_eq!(
            (p.dst, p.prefix, p.gateway, p.oif),
            (r.dst, 16, r.gateway, Some(3))
        );
    }
}
