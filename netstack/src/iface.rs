//! Interfaces: loopback (index 1, "lo") and the configured Ethernet links.
//!
//! Each interface is a smoltcp `Interface` with its own socket set; an
//! endpoint's smoltcp sockets live in the set of the interface they use
//! (a listener or an unspecified-address UDP bind has one per interface).
//!
//! Loopback answers for all of 127.0.0.0/8 and ::1, and also for every address
//! of the links: as on Linux, traffic to the host's own addresses goes over lo.
//! Routes: each address gives a connected route; `LinkConfig::routes` adds
//! gateway routes (a default route is `0.0.0.0/0` or `::/0` via a gateway).
//! On-link routes without a gateway other than the connected ones are not
//! supported (smoltcp only routes via routers).
//!
//! Deviations from Linux:
//! - No IPv6 link-local address is configured automatically: pass one (e.g.
//!   `fe80::.../64`) in [`LinkConfig::addrs`] if the workload needs it.
//! - Neighbor discovery (ARP/NDP, done by smoltcp) sends at most one request
//!   per second per interface: the first packet to a second unknown neighbor
//!   within that second is retried after it (TCP SYNs are retransmitted).
//! - No IP fragmentation or reassembly: a UDP/ICMP datagram larger than the
//!   link MTU is dropped on the link (loopback carries 64 KiB datagrams), and
//!   fragments arriving on the link are dropped.
//! - At most 6 link addresses in all (smoltcp's per-interface limit is 8 and
//!   lo also answers for every link address); extra ones are ignored.
//! - Interface counters count frames seen by the device (lo counts each
//!   packet once as rx and once as tx, as Linux).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Address, Ipv6Address,
};

use crate::link::{Counters, LinkDev, LinkDevice, LoopDev};

/// Linux interface flags (`<linux/if.h>`).
pub const IFF_UP: u32 = 0x1;
pub const IFF_BROADCAST: u32 = 0x2;
pub const IFF_LOOPBACK: u32 = 0x8;
pub const IFF_RUNNING: u32 = 0x40;
pub const IFF_MULTICAST: u32 = 0x1000;
pub const IFF_LOWER_UP: u32 = 0x10000;

/// The stack's configuration: loopback is always present.
#[derive(Default)]
pub struct StackConfig {
    pub links: Vec<LinkConfig>,
}

/// A route of a link (`dst/prefix via gateway`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteConfig {
    pub dst: IpAddr,
    pub prefix: u8,
    pub gateway: IpAddr,
}

/// An Ethernet link of the sandbox.
pub struct LinkConfig {
    pub name: String,
    pub mac: [u8; 6],
    /// IP MTU (1500 for Ethernet).
    pub mtu: usize,
    pub addrs: Vec<(IpAddr, u8)>,
    pub routes: Vec<RouteConfig>,
    pub device: Box<dyn LinkDevice>,
}

/// What `SIOCGIFCONF`/`RTM_GETLINK`/`RTM_GETADDR` report about an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceInfo {
    pub index: u32,
    pub name: String,
    pub flags: u32,
    pub mtu: u32,
    /// All zeros for lo.
    pub mac: [u8; 6],
    pub addrs: Vec<(IpAddr, u8)>,
    pub counters: Counters,
}

/// A route, for `RTM_GETROUTE` dumps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    pub dst: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    pub ifindex: u32,
    /// Preferred source address.
    pub src: Option<IpAddr>,
}

pub(crate) enum Dev {
    Lo(LoopDev),
    Link(LinkDev),
}

pub(crate) struct Iface {
    pub index: u32,
    pub name: String,
    pub mac: [u8; 6],
    pub mtu: usize,
    pub addrs: Vec<(IpAddr, u8)>,
    pub routes: Vec<RouteConfig>,
    pub iface: Interface,
    pub dev: Dev,
    pub sockets: SocketSet<'static>,
}

pub(crate) fn to_ip(a: IpAddr) -> IpAddress {
    match a {
        IpAddr::V4(v) => IpAddress::Ipv4(v),
        IpAddr::V6(v) => IpAddress::Ipv6(v),
    }
}

pub(crate) fn from_ip(a: IpAddress) -> IpAddr {
    match a {
        IpAddress::Ipv4(v) => IpAddr::V4(v),
        IpAddress::Ipv6(v) => IpAddr::V6(v),
    }
}

/// Whether `a` is in `net/prefix`.
pub(crate) fn in_subnet(a: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let p = prefix.min(32) as u32;
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let p = prefix.min(128) as u32;
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

pub(crate) fn now_instant(base: std::time::Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(base.elapsed().as_micros() as i64)
}

impl Iface {
    pub fn loopback(link_addrs: &[(IpAddr, u8)], now: smoltcp::time::Instant) -> Iface {
        let mut dev = LoopDev::new();
        let mut cfg = Config::new(HardwareAddress::Ip);
        cfg.random_seed = random_seed();
        let mut iface = Interface::new(cfg, &mut dev, now);
        let lo4 = Ipv4Address::new(127, 0, 0, 1);
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(lo4), 8));
            let _ = a.push(IpCidr::new(IpAddress::Ipv6(Ipv6Address::LOCALHOST), 128));
            for &(addr, _) in link_addrs {
                let len = if addr.is_ipv4() { 32 } else { 128 };
                let _ = a.push(IpCidr::new(to_ip(addr), len));
            }
        });
        // 127.0.0.0/8 answers entirely (any_ip with a route whose gateway is
        // one of our addresses).
        iface.set_any_ip(true);
        iface.routes_mut().update(|rs| {
            let _ = rs.push(smoltcp::iface::Route {
                cidr: IpCidr::new(IpAddress::Ipv4(Ipv4Address::new(127, 0, 0, 0)), 8),
                via_router: IpAddress::Ipv4(lo4),
                preferred_until: None,
                expires_at: None,
            });
        });
        Iface {
            index: 1,
            name: "lo".into(),
            mac: [0; 6],
            mtu: 65536,
            addrs: vec![
                (IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 8),
                (IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
            ],
            routes: Vec::new(),
            iface,
            dev: Dev::Lo(dev),
            sockets: SocketSet::new(Vec::new()),
        }
    }

    pub fn link(index: u32, cfg: LinkConfig, now: smoltcp::time::Instant) -> Iface {
        let mut dev = LinkDev::new(cfg.device, cfg.mtu);
        let mut icfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(cfg.mac)));
        icfg.random_seed = random_seed();
        let mut iface = Interface::new(icfg, &mut dev, now);
        iface.update_ip_addrs(|a| {
            for &(addr, prefix) in &cfg.addrs {
                let _ = a.push(IpCidr::new(to_ip(addr), prefix));
            }
        });
        for r in &cfg.routes {
            let cidr = IpCidr::new(to_ip(r.dst), r.prefix);
            iface.routes_mut().update(|rs| {
                let _ = rs.push(smoltcp::iface::Route {
                    cidr,
                    via_router: to_ip(r.gateway),
                    preferred_until: None,
                    expires_at: None,
                });
            });
        }
        Iface {
            index,
            name: cfg.name,
            mac: cfg.mac,
            mtu: cfg.mtu,
            addrs: cfg.addrs,
            routes: cfg.routes,
            iface,
            dev: Dev::Link(dev),
            sockets: SocketSet::new(Vec::new()),
        }
    }

    pub fn is_lo(&self) -> bool {
        matches!(self.dev, Dev::Lo(_))
    }

    /// Whether this interface accepts packets for `a`.
    pub fn has_addr(&self, a: IpAddr) -> bool {
        if self.is_lo() {
            return a.is_loopback()
                || self
                    .iface
                    .ip_addrs()
                    .iter()
                    .any(|c| from_ip(c.address()) == a);
        }
        self.addrs.iter().any(|&(x, _)| x == a)
    }

    pub fn info(&self) -> IfaceInfo {
        let (flags, counters) = match &self.dev {
            Dev::Lo(d) => (
                IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP,
                d.counters,
            ),
            Dev::Link(d) => (
                IFF_UP | IFF_BROADCAST | IFF_RUNNING | IFF_MULTICAST | IFF_LOWER_UP,
                d.counters,
            ),
        };
        IfaceInfo {
            index: self.index,
            name: self.name.clone(),
            flags,
            mtu: self.mtu as u32,
            mac: self.mac,
            addrs: self.addrs.clone(),
            counters,
        }
    }

    pub fn route_infos(&self, out: &mut Vec<RouteInfo>) {
        for &(a, p) in &self.addrs {
            let net = mask_addr(a, p);
            out.push(RouteInfo {
                dst: net,
                prefix: p,
                gateway: None,
                ifindex: self.index,
                src: Some(a),
            });
        }
        for r in &self.routes {
            out.push(RouteInfo {
                dst: r.dst,
                prefix: r.prefix,
                gateway: Some(r.gateway),
                ifindex: self.index,
                src: None,
            });
        }
    }

    /// The longest prefix this link has towards `dst` (connected or gateway
    /// route), if any.
    pub fn route_prefix(&self, dst: IpAddr) -> Option<u8> {
        let connected = self
            .addrs
            .iter()
            .filter(|&&(a, p)| in_subnet(dst, a, p))
            .map(|&(_, p)| p);
        let gw = self
            .routes
            .iter()
            .filter(|r| in_subnet(dst, r.dst, r.prefix))
            .map(|r| r.prefix);
        connected.chain(gw).max()
    }
}

fn mask_addr(a: IpAddr, p: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let p = p.min(32) as u32;
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            IpAddr::V4(Ipv4Addr::from(u32::from(v) & mask))
        }
        IpAddr::V6(v) => {
            let p = p.min(128) as u32;
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            IpAddr::V6(Ipv6Addr::from(u128::from(v) & mask))
        }
    }
}

/// A seed for ISNs and ephemeral choices; not cryptographic (smoltcp's ISNs
/// are from its own PRNG seeded here).
pub(crate) fn random_seed() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish()
}
