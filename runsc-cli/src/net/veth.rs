//! `runsc do --network=sandbox`: a new network namespace joined to the host's
//! by a veth pair on a free 10.a.b.0/30 (host side .1, sandbox side .2 with a
//! default route via .1), taken over for the sentry. The host side goes away
//! when [`SandboxNet`] is dropped (deleting one end of a veth deletes both),
//! and also when runsc is killed before that: the namespace goes with its
//! last user, the sentry, and takes the pair with it.
//!
//! No NAT or forwarding is set up: the sandbox reaches the host at .1, and
//! beyond only if the host routes 10.a.b.0/30 itself. Two runsc started at
//! the same moment could pick the same block (the check and the address are
//! not atomic); pids make that unlikely.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, OwnedFd};

use super::rtnetlink::{Netlink, Route};
use super::NetConfig;

/// The name of the interface in the sandbox.
pub const SANDBOX_IFNAME: &str = "eth0";

/// The /30 blocks tried: 10.a.b.0/30 with a in this range and b in 0..=255.
const FIRST_A: u32 = 200;
const LAST_A: u32 = 249;

/// The host side of a sandbox's network; deletes the veth pair when dropped.
pub struct SandboxNet {
    /// The sandbox's network namespace, for the sentry to join.
    pub netns: OwnedFd,
    /// The host-side interface (`rsc<pid>h`).
    pub host_ifname: String,
    pub host_addr: Ipv4Addr,
    pub sandbox_addr: Ipv4Addr,
    host_index: u32,
}

impl Drop for SandboxNet {
    fn drop(&mut self) {
        if let Ok(mut nl) = Netlink::open() {
            let _ = nl.del_link(self.host_index);
        }
    }
}

/// The host-side interface name for the sandbox started by process `pid`.
pub fn host_ifname(pid: u32) -> String {
    format!("rsc{pid}h")
}

/// A new, empty network namespace, as a descriptor (made on a thread that
/// ends after).
pub fn new_netns() -> io::Result<OwnedFd> {
    super::in_netns(None, || {
        // SAFETY: unshare of this thread's network namespace only.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(std::fs::File::open("/proc/thread-self/ns/net")?.into())
    })
}

/// Whether 10.a.b.0/30 overlaps any IPv4 address's subnet or any route of
/// the host (other than a default route).
fn conflicts(block: Ipv4Addr, nets: &[(Ipv4Addr, u8)]) -> bool {
    let b = u32::from(block);
    nets.iter().any(|&(n, p)| {
        let p = u32::from(p.min(32));
        // The shorter prefix decides whether the two blocks overlap.
        let common = p.min(30);
        let mask = if common == 0 {
            0
        } else {
            u32::MAX << (32 - common)
        };
        p != 0 && (u32::from(n) & mask) == (b & mask)
    })
}

/// The first free block from the one `pid` picks, in order.
pub fn pick_block(pid: u32, nets: &[(Ipv4Addr, u8)]) -> Option<Ipv4Addr> {
    let count = (LAST_A - FIRST_A + 1) * 256;
    (0..count)
        .map(|i| (pid.wrapping_add(i)) % count)
        .map(|slot| Ipv4Addr::new(10, (FIRST_A + slot / 256) as u8, (slot % 256) as u8, 0))
        .find(|b| !conflicts(*b, nets))
}

/// Sets up the sandbox's network for `runsc do` started as process `pid`
/// (see the module documentation) and takes it over. Nothing is left behind
/// on error.
pub fn setup(pid: u32) -> io::Result<(SandboxNet, NetConfig)> {
    let netns = new_netns()?;
    // This thread is in the host's namespace (runsc does not change it).
    let mut nl = Netlink::open()?;
    let host_ifname = host_ifname(pid);
    // A stale pair of a previous runsc with our pid (killed before cleanup).
    if let Some(l) = nl.link_by_name(&host_ifname)? {
        nl.del_link(l.index)?;
    }
    let mut nets: Vec<(Ipv4Addr, u8)> = Vec::new();
    for a in nl.addrs()? {
        if let IpAddr::V4(v) = a.addr {
            nets.push((v, a.prefix));
        }
    }
    for r in nl.routes()? {
        if let IpAddr::V4(v) = r.dst {
            nets.push((v, r.prefix));
        }
    }
    let block = pick_block(pid, &nets)
        .ok_or_else(|| io::Error::other("no free 10.x.y.0/30 network for the sandbox"))?;
    let host_addr = Ipv4Addr::from(u32::from(block) + 1);
    let sandbox_addr = Ipv4Addr::from(u32::from(block) + 2);
    nl.create_veth(&host_ifname, SANDBOX_IFNAME, Some(netns.as_raw_fd()))
        .map_err(|e| io::Error::new(e.kind(), format!("creating veth {host_ifname}: {e}")))?;
    let link = nl
        .link_by_name(&host_ifname)?
        .ok_or_else(|| io::Error::other(format!("veth {host_ifname} vanished")))?;
    // From here on, dropping `net` deletes the pair.
    let net = SandboxNet {
        netns,
        host_ifname,
        host_addr,
        sandbox_addr,
        host_index: link.index,
    };
    nl.add_addr(link.index, IpAddr::V4(host_addr), 30)?;
    nl.set_up(link.index)?;
    let ns = net.netns.as_raw_fd();
    super::in_netns(Some(ns), move || {
        let mut nl = Netlink::open()?;
        let l = nl
            .link_by_name(SANDBOX_IFNAME)?
            .ok_or_else(|| io::Error::other("the sandbox's veth end is missing"))?;
        // IPv4 only: no address appears behind our back (link-local,
        // autoconfiguration) between here and the takeover.
        super::takeover::set_sysctl(&format!("net/ipv6/conf/{SANDBOX_IFNAME}/disable_ipv6"), "1");
        nl.add_addr(l.index, IpAddr::V4(sandbox_addr), 30)?;
        nl.set_up(l.index)?;
        nl.add_route(&Route {
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            prefix: 0,
            gateway: Some(IpAddr::V4(host_addr)),
            oif: Some(l.index),
            scope: 0,
            protocol: 0,
            priority: None,
        })
    })?;
    let cfg = super::takeover::takeover(ns)?;
    if cfg.links.len() != 1 {
        return Err(io::Error::other(format!(
            "the sandbox's network namespace has {} usable interfaces, not 1",
            cfg.links.len()
        )));
    }
    Ok((net, cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_avoid_host_networks() {
        let b = pick_block(0, &[]).unwrap();
        assert_eq!(b, Ipv4Addr::new(10, 200, 0, 0));
        assert_eq!(pick_block(257, &[]).unwrap(), Ipv4Addr::new(10, 201, 1, 0));
        // 10.0.0.0/8 on the host: nothing free.
        assert_eq!(pick_block(5, &[(Ipv4Addr::new(10, 1, 2, 3), 8)]), None);
        // A /24 in the way: the next block.
        let nets = [(Ipv4Addr::new(10, 200, 5, 77), 24)];
        assert_eq!(pick_block(5, &nets).unwrap(), Ipv4Addr::new(10, 200, 6, 0));
        // A /32 host route inside the block.
        let nets = [(Ipv4Addr::new(10, 200, 5, 2), 32)];
        assert_eq!(pick_block(5, &nets).unwrap(), Ipv4Addr::new(10, 200, 6, 0));
        // A default route does not count; the wrap-around does.
        let nets = [(Ipv4Addr::UNSPECIFIED, 0)];
        assert_eq!(pick_block(5, &nets).unwrap(), Ipv4Addr::new(10, 200, 5, 0));
        let last = (LAST_A - FIRST_A + 1) * 256 - 1;
        assert_eq!(
            pick_block(last + 1, &[]).unwrap(),
            Ipv4Addr::new(10, 200, 0, 0)
        );
        assert!(host_ifname(4194304).len() <= 15);
    }
}
