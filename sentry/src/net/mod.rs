//! The sentry's view of the network configuration (interfaces, addresses,
//! routes), independent of whatever implements the network: [`NetInfo`]
//! describes it, [`LoopbackOnly`] is the configuration of a sandbox with no
//! network but `lo`. Read-only consumers: NETLINK_ROUTE sockets
//! ([`netlink`]) and the interface ioctls ([`ifreq`]).

pub mod hostinet;
pub mod ifreq;
pub mod inet;
pub mod netlink;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use abi::Errno;
use netstack::{Stack, StackConfig};

pub use ifreq::ifreq_ioctl;

/// Linux's IFF_* interface flags.
pub const IFF_UP: u32 = 0x1;
pub const IFF_BROADCAST: u32 = 0x2;
pub const IFF_LOOPBACK: u32 = 0x8;
pub const IFF_RUNNING: u32 = 0x40;
pub const IFF_MULTICAST: u32 = 0x1000;
pub const IFF_LOWER_UP: u32 = 0x10000;

/// Linux's link types (ARPHRD_*), ifinfomsg.ifi_type.
pub const ARPHRD_ETHER: u16 = 1;
pub const ARPHRD_LOOPBACK: u16 = 772;

/// Route tables, protocols, scopes and types as rtnetlink numbers them.
pub const RT_TABLE_MAIN: u8 = 254;
pub const RT_TABLE_LOCAL: u8 = 255;
pub const RTPROT_KERNEL: u8 = 2;
pub const RTPROT_BOOT: u8 = 3;
pub const RT_SCOPE_UNIVERSE: u8 = 0;
pub const RT_SCOPE_LINK: u8 = 253;
pub const RT_SCOPE_HOST: u8 = 254;
pub const RTN_UNICAST: u8 = 1;
pub const RTN_LOCAL: u8 = 2;
pub const RTN_BROADCAST: u8 = 3;

/// What kind of link an interface is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    Loopback,
    Ether,
}

impl LinkKind {
    /// ARPHRD_* for the link type.
    pub fn arphrd(self) -> u16 {
        match self {
            LinkKind::Loopback => ARPHRD_LOOPBACK,
            LinkKind::Ether => ARPHRD_ETHER,
        }
    }
}

/// Interface counters (the fields of rtnl_link_stats64 that a user-space
/// network stack can count; the rest report 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

/// An address assigned to an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IfAddr {
    /// The scope Linux gives the address: host for loopback addresses, link
    /// for IPv6 link-local ones, else universe.
    pub fn scope(&self) -> u8 {
        match self.addr {
            IpAddr::V4(a) if a.is_loopback() => RT_SCOPE_HOST,
            IpAddr::V6(a) if a.is_loopback() => RT_SCOPE_HOST,
            IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80 => RT_SCOPE_LINK,
            _ => RT_SCOPE_UNIVERSE,
        }
    }

    /// The IPv4 netmask for the prefix.
    pub fn netmask_v4(&self) -> Ipv4Addr {
        let p = self.prefix.min(32) as u32;
        Ipv4Addr::from(if p == 0 { 0 } else { u32::MAX << (32 - p) })
    }

    /// The IPv4 broadcast address Linux assigns (`ip addr add ... brd +`)
    /// on broadcast-capable links: None for /31 and /32 or IPv6.
    pub fn broadcast_v4(&self) -> Option<Ipv4Addr> {
        match self.addr {
            IpAddr::V4(a) if self.prefix < 31 => {
                Some(Ipv4Addr::from(u32::from(a) | !u32::from(self.netmask_v4())))
            }
            _ => None,
        }
    }
}

/// One network interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// ifindex, from 1.
    pub index: u32,
    /// At most 15 bytes (IFNAMSIZ - 1).
    pub name: String,
    /// IFF_* (Linux values), including IFF_RUNNING and IFF_LOWER_UP.
    pub flags: u32,
    pub mtu: u32,
    pub mac: [u8; 6],
    pub kind: LinkKind,
    /// Transmit queue length (IFLA_TXQLEN).
    pub txqlen: u32,
    pub addrs: Vec<IfAddr>,
    pub stats: Stats,
}

/// One route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub dst: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    /// Preferred source address (RTA_PREFSRC).
    pub prefsrc: Option<IpAddr>,
    pub ifindex: u32,
    /// RT_TABLE_*.
    pub table: u8,
    /// RTPROT_*.
    pub protocol: u8,
    /// RT_SCOPE_*.
    pub scope: u8,
    /// RTN_*.
    pub kind: u8,
    /// RTA_PRIORITY (the metric); IPv6 routes always carry it.
    pub priority: Option<u32>,
}

/// The network configuration as the kernel reports it.
pub trait NetInfo: Send + Sync {
    /// The interfaces, by increasing index.
    fn interfaces(&self) -> Vec<Interface>;
    /// The routes of every table.
    fn routes(&self) -> Vec<Route>;

    /// The interface named `name`.
    fn by_name(&self, name: &[u8]) -> Option<Interface> {
        self.interfaces()
            .into_iter()
            .find(|i| i.name.as_bytes() == name)
    }
    /// The interface with index `index`.
    fn by_index(&self, index: u32) -> Option<Interface> {
        self.interfaces().into_iter().find(|i| i.index == index)
    }
}

/// A network namespace with only the loopback interface, up (as Linux's
/// after `ip link set lo up`).
pub struct LoopbackOnly;

impl LoopbackOnly {
    pub fn lo() -> Interface {
        Interface {
            index: 1,
            name: "lo".to_string(),
            flags: IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP,
            mtu: 65536,
            mac: [0; 6],
            kind: LinkKind::Loopback,
            txqlen: 1000,
            addrs: vec![
                IfAddr {
                    addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    prefix: 8,
                },
                IfAddr {
                    addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
                    prefix: 128,
                },
            ],
            stats: Stats::default(),
        }
    }

    /// The routes Linux adds for lo's addresses (all in the local table).
    pub fn lo_routes() -> Vec<Route> {
        let lo4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let local = |dst: IpAddr, prefix, scope, kind| Route {
            dst,
            prefix,
            gateway: None,
            prefsrc: Some(lo4),
            ifindex: 1,
            table: RT_TABLE_LOCAL,
            protocol: RTPROT_KERNEL,
            scope,
            kind,
            priority: None,
        };
        vec![
            local(
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
                8,
                RT_SCOPE_HOST,
                RTN_LOCAL,
            ),
            local(lo4, 32, RT_SCOPE_HOST, RTN_LOCAL),
            local(
                IpAddr::V4(Ipv4Addr::new(127, 255, 255, 255)),
                32,
                RT_SCOPE_LINK,
                RTN_BROADCAST,
            ),
            Route {
                prefsrc: None,
                scope: RT_SCOPE_UNIVERSE,
                priority: Some(0),
                ..local(IpAddr::V6(Ipv6Addr::LOCALHOST), 128, 0, RTN_LOCAL)
            },
        ]
    }
}

impl NetInfo for LoopbackOnly {
    fn interfaces(&self) -> Vec<Interface> {
        vec![LoopbackOnly::lo()]
    }
    fn routes(&self) -> Vec<Route> {
        LoopbackOnly::lo_routes()
    }
}

/// The kernel's network state seen by sockets: the configuration and the
/// netlink port ids in use (one network namespace).
pub struct Net {
    info: RwLock<Arc<dyn NetInfo>>,
    /// Bound netlink port ids (nl_pid), unique per namespace.
    ports: Mutex<BTreeSet<u32>>,
    /// net.ipv4.ping_group_range: the gids that may make ICMP "ping"
    /// sockets (inclusive; low > high allows none, a new namespace's "1 0").
    ping_group: Mutex<(u32, u32)>,
}

/// The largest gid net.ipv4.ping_group_range accepts (Linux's GID_T_MAX,
/// `(gid_t)~0U - 1`).
pub const PING_GROUP_MAX: u32 = u32::MAX - 1;

impl Default for Net {
    fn default() -> Self {
        Net::new(Arc::new(LoopbackOnly))
    }
}

impl Net {
    pub fn new(info: Arc<dyn NetInfo>) -> Net {
        Net {
            info: RwLock::new(info),
            ports: Mutex::new(BTreeSet::new()),
            ping_group: Mutex::new((1, 0)),
        }
    }

    /// net.ipv4.ping_group_range as (low, high).
    pub fn ping_group_range(&self) -> (u32, u32) {
        *self.ping_group.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets net.ipv4.ping_group_range; an empty range (high < low) becomes
    /// Linux's "1 0".
    pub fn set_ping_group_range(&self, low: u32, high: u32) {
        let r = if high < low { (1, 0) } else { (low, high) };
        *self.ping_group.lock().unwrap_or_else(|e| e.into_inner()) = r;
    }

    /// Whether a caller with effective gid `egid` and supplementary `groups`
    /// may make a ping socket (Linux's ping_init_sock).
    pub fn ping_allowed(&self, egid: u32, groups: &[u32]) -> bool {
        let (lo, hi) = self.ping_group_range();
        let ok = |g: u32| lo <= g && g <= hi;
        ok(egid) || groups.iter().any(|&g| ok(g))
    }

    /// The current configuration.
    pub fn info(&self) -> Arc<dyn NetInfo> {
        self.info.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the configuration (the integrator backs it by the netstack).
    pub fn set_info(&self, info: Arc<dyn NetInfo>) {
        *self.info.write().unwrap_or_else(|e| e.into_inner()) = info;
    }

    fn ports(&self) -> std::sync::MutexGuard<'_, BTreeSet<u32>> {
        self.ports.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims port id `pid`: false if it is taken.
    pub(crate) fn claim_port(&self, pid: u32) -> bool {
        self.ports().insert(pid)
    }

    /// Claims a port id for an unbound socket as Linux's netlink_autobind
    /// does: the caller's tgid if free, else -4097, -4098, ... (Linux picks a random negative id)
    pub(crate) fn autobind_port(&self, tgid: i32) -> Option<u32> {
        let mut ports = self.ports();
        if tgid > 0 && ports.insert(tgid as u32) {
            return Some(tgid as u32);
        }
        let mut id: i32 = -4097;
        while id < 0 {
            if ports.insert(id as u32) {
                return Some(id as u32);
            }
            id -= 1;
        }
        None
    }

    pub(crate) fn release_port(&self, pid: u32) {
        self.ports().remove(&pid);
    }
}

// ---- the netstack

/// The sandbox's own TCP/IP stack (`--network=none` and `sandbox`): made at
/// boot when it has links to drive, else on the first AF_INET/AF_INET6
/// socket (loopback only), so sandboxes that never use the network pay
/// nothing for it.
#[derive(Default)]
pub struct Netstack {
    stack: OnceLock<Arc<Stack>>,
    config: Mutex<Option<StackConfig>>,
}

impl Netstack {
    /// Starts the stack now with `cfg` (the links boot took over).
    pub fn start(&self, cfg: StackConfig) -> std::io::Result<()> {
        let s = Stack::new(cfg)?;
        let _ = self.stack.set(s);
        Ok(())
    }

    /// The stack, started (loopback only) if it is not running yet; a stack
    /// started here becomes `net`'s view (so lo's counters are its own).
    pub fn get(&self, net: &Net) -> Result<Arc<Stack>, Errno> {
        if let Some(s) = self.stack.get() {
            return Ok(s.clone());
        }
        let mut cfg = self.config.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = self.stack.get() {
            return Ok(s.clone());
        }
        let s = Stack::new(cfg.take().unwrap_or_default()).map_err(|e| {
            tracing::warn!("netstack: cannot start: {e}");
            Errno::ENOBUFS
        })?;
        let _ = self.stack.set(s.clone());
        net.set_info(Arc::new(StackInfo(s.clone())));
        Ok(s)
    }

    /// The stack if it is running.
    pub fn running(&self) -> Option<Arc<Stack>> {
        self.stack.get().cloned()
    }
}

/// The network configuration of a running netstack: its interfaces and
/// routes as Linux would list them (lo's local-table routes, then each
/// link's local, connected and gateway routes).
pub struct StackInfo(pub Arc<Stack>);

impl NetInfo for StackInfo {
    fn interfaces(&self) -> Vec<Interface> {
        self.0
            .interfaces()
            .into_iter()
            .map(|i| {
                let lo = i.index == 1;
                Interface {
                    index: i.index,
                    name: i.name,
                    flags: i.flags,
                    mtu: i.mtu,
                    mac: i.mac,
                    kind: if lo {
                        LinkKind::Loopback
                    } else {
                        LinkKind::Ether
                    },
                    txqlen: 1000,
                    addrs: i
                        .addrs
                        .into_iter()
                        .map(|(addr, prefix)| IfAddr { addr, prefix })
                        .collect(),
                    stats: Stats {
                        rx_packets: i.counters.rx_packets,
                        tx_packets: i.counters.tx_packets,
                        rx_bytes: i.counters.rx_bytes,
                        tx_bytes: i.counters.tx_bytes,
                        tx_errors: i.counters.tx_errors,
                        rx_errors: i.counters.rx_errors,
                        rx_dropped: i.counters.rx_dropped,
                        ..Default::default()
                    },
                }
            })
            .collect()
    }

    fn routes(&self) -> Vec<Route> {
        let mut v = LoopbackOnly::lo_routes();
        for i in self.0.interfaces().into_iter().filter(|i| i.index != 1) {
            for (addr, _) in &i.addrs {
                // The local-table entry of each address.
                v.push(Route {
                    dst: *addr,
                    prefix: if addr.is_ipv4() { 32 } else { 128 },
                    gateway: None,
                    prefsrc: Some(*addr).filter(|a| a.is_ipv4()),
                    ifindex: i.index,
                    table: RT_TABLE_LOCAL,
                    protocol: RTPROT_KERNEL,
                    scope: if addr.is_ipv4() {
                        RT_SCOPE_HOST
                    } else {
                        RT_SCOPE_UNIVERSE
                    },
                    kind: RTN_LOCAL,
                    priority: if addr.is_ipv4() { None } else { Some(0) },
                });
            }
        }
        for r in self.0.routes() {
            if r.ifindex == 1 {
                continue;
            }
            let v6 = r.dst.is_ipv6();
            v.push(Route {
                dst: r.dst,
                prefix: r.prefix,
                gateway: r.gateway,
                prefsrc: r.src.filter(|_| r.gateway.is_none() && !v6),
                ifindex: r.ifindex,
                table: RT_TABLE_MAIN,
                protocol: if r.gateway.is_some() {
                    RTPROT_BOOT
                } else {
                    RTPROT_KERNEL
                },
                scope: if r.gateway.is_some() {
                    RT_SCOPE_UNIVERSE
                } else {
                    RT_SCOPE_LINK
                },
                kind: RTN_UNICAST,
                priority: if v6 { Some(1024) } else { None },
            });
        }
        v
    }
}
