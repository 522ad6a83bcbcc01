//! Taking a network namespace's interfaces over for the sentry, as gVisor's
//! runsc does for `--network=sandbox`: each usable interface's addresses and
//! routes are recorded, a packet socket is bound to it, and the addresses and
//! routes are removed from the namespace's (host) kernel, which then no
//! longer answers ARP, ICMP or TCP for them; the link stays up and every
//! frame reaches the sentry's stack through the socket.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::rtnetlink::{Netlink, Route};
use super::{LinkSpec, NetConfig, RouteSpec};

/// ETH_P_ALL in network byte order: every protocol.
const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();
/// `PACKET_IGNORE_OUTGOING` (Linux 4.20): frames we send are not delivered
/// back to us.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// Socket buffers of the packet sockets: room for bursts while the stack's
/// thread is busy (the kernel drops frames beyond).
const PACKET_BUFFER: libc::c_int = 4 << 20;

/// Takes over every interface of the namespace open at `netns` that is up,
/// not loopback, Ethernet and has addresses (see the module documentation).
/// Nothing in the namespace changes if an error is returned before the first
/// address is removed; after that the error names what is left.
pub fn takeover(netns: RawFd) -> io::Result<NetConfig> {
    // Stripping runsc's own namespace would cut the host off its network
    // (a spec naming the host's namespace with --network=sandbox).
    if same_file(netns, "/proc/thread-self/ns/net")? {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to take over the host's own network namespace (use --network=host)",
        ));
    }
    super::in_netns(Some(netns), take_here)
}

/// Whether `fd` and `path` are the same file (namespace files: the same namespace).
fn same_file(fd: RawFd, path: &str) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let theirs = std::fs::metadata(path)?;
    // SAFETY: fstat into a zeroed stat buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on a descriptor the caller holds, into `st`.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.st_dev == theirs.dev() && st.st_ino == theirs.ino())
}

fn take_here() -> io::Result<NetConfig> {
    let mut nl = Netlink::open()?;
    let links = nl.links()?;
    let addrs = nl.addrs()?;
    let routes = nl.routes()?;
    // Everything is recorded and every socket opened before anything changes.
    let mut taken: Vec<(u32, LinkSpec, Vec<Route>)> = Vec::new();
    for l in links.iter().filter(|l| l.is_up() && !l.is_loopback()) {
        let mine: Vec<(std::net::IpAddr, u8)> = addrs
            .iter()
            .filter(|a| a.index == l.index)
            .map(|a| (a.addr, a.prefix))
            .collect();
        // Without an Ethernet address (a tun, a wireguard link) frames
        // would carry no link header: not something the stack drives.
        let (Some(mac), false) = (l.mac, mine.is_empty()) else {
            continue;
        };
        let through: Vec<Route> = routes
            .iter()
            .filter(|r| r.oif == Some(l.index))
            .cloned()
            .collect();
        let fd = packet_socket(l.index)?;
        let spec = LinkSpec {
            name: l.name.clone(),
            mac,
            mtu: l.mtu,
            addrs: mine,
            routes: through
                .iter()
                .map(|r| RouteSpec {
                    dst: r.dst,
                    prefix: r.prefix,
                    gateway: r.gateway,
                })
                .collect(),
            fd,
        };
        taken.push((l.index, spec, through));
    }
    for (index, spec, through) in &taken {
        strip(&mut nl, *index, spec, through).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("removing the host's addresses of {}: {e}", spec.name),
            )
        })?;
    }
    Ok(NetConfig {
        links: taken.into_iter().map(|(_, s, _)| s).collect(),
    })
}

/// Removes the routes (first: they may depend on the addresses) and the
/// addresses; one the kernel already removed with another is no error.
fn strip(nl: &mut Netlink, index: u32, spec: &LinkSpec, through: &[Route]) -> io::Result<()> {
    let gone = |e: &io::Error| {
        matches!(
            e.raw_os_error(),
            Some(libc::ESRCH) | Some(libc::EADDRNOTAVAIL) | Some(libc::ENOENT)
        )
    };
    // Routes with a gateway first: the kernel may refuse to keep them once
    // the connected route to the gateway is gone, and the order matters not.
    let mut order: Vec<&Route> = through.iter().collect();
    order.sort_by_key(|r| r.gateway.is_none());
    for r in order {
        if let Err(e) = nl.del_route(r) {
            if !gone(&e) {
                return Err(e);
            }
        }
    }
    for (a, p) in &spec.addrs {
        if let Err(e) = nl.del_addr(index, *a, *p) {
            if !gone(&e) {
                return Err(e);
            }
        }
    }
    // Without IPv6 on the host's side the kernel neither autoconfigures an
    // address from a router advertisement nor answers neighbour discovery;
    // the packet socket still sees every frame. Best effort: the namespace
    // may have no IPv6 at all.
    set_sysctl(&format!("net/ipv6/conf/{}/disable_ipv6", spec.name), "1");
    Ok(())
}

/// Writes a sysctl of the calling thread's network namespace (/proc/sys/net
/// follows the thread's namespace); best effort.
pub(super) fn set_sysctl(path: &str, value: &str) {
    if path.contains("..") {
        return;
    }
    let _ = std::fs::write(format!("/proc/sys/{path}"), value);
}

/// Puts back what [`takeover`] removed (on a failed start, so that the
/// namespace is left as it was found); best effort, first error returned.
pub fn restore(netns: RawFd, cfg: &NetConfig) -> io::Result<()> {
    // What to put back, per link name (the sockets stay with the caller).
    type Saved = (String, Vec<(std::net::IpAddr, u8)>, Vec<RouteSpec>);
    let links: Vec<Saved> = cfg
        .links
        .iter()
        .map(|l| (l.name.clone(), l.addrs.clone(), l.routes.clone()))
        .collect();
    super::in_netns(Some(netns), move || {
        let mut nl = Netlink::open()?;
        let mut first = Ok(());
        for (name, addrs, routes) in links {
            let Some(l) = nl.link_by_name(&name)? else {
                continue;
            };
            set_sysctl(&format!("net/ipv6/conf/{name}/disable_ipv6"), "0");
            let mut note = |r: io::Result<()>| {
                if let Err(e) = r {
                    if e.raw_os_error() != Some(libc::EEXIST) && first.is_ok() {
                        first = Err(e);
                    }
                }
            };
            for (a, p) in addrs {
                note(nl.add_addr(l.index, a, p));
            }
            // Connected routes first, so that gateways are reachable.
            let mut routes = routes;
            routes.sort_by_key(|r| r.gateway.is_some());
            for r in routes {
                note(nl.add_route(&Route {
                    dst: r.dst,
                    prefix: r.prefix,
                    gateway: r.gateway,
                    oif: Some(l.index),
                    scope: 0,
                    protocol: 0,
                    priority: None,
                }));
            }
        }
        first
    })
}

/// An AF_PACKET raw socket bound to interface `index` (of the calling
/// thread's namespace), non-blocking, with large buffers.
fn packet_socket(index: u32) -> io::Result<OwnedFd> {
    // Protocol 0 until bound: no frame of another interface is queued in
    // between.
    // SAFETY: plain socket(2).
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: all-zero is a valid sockaddr_ll, filled in below.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = ETH_P_ALL_BE;
    sa.sll_ifindex = index as i32;
    // SAFETY: `sa` is a valid sockaddr_ll of the given size.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // Older kernels: our own frames come back too (the stack ignores frames
    // from its own MAC).
    let _ = setsockopt(&fd, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1);
    // Root may exceed rmem_max/wmem_max; otherwise the capped size.
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        if setsockopt(&fd, libc::SOL_SOCKET, force, PACKET_BUFFER).is_err() {
            let _ = setsockopt(&fd, libc::SOL_SOCKET, plain, PACKET_BUFFER);
        }
    }
    Ok(fd)
}

fn setsockopt(fd: &OwnedFd, level: i32, name: i32, v: libc::c_int) -> io::Result<()> {
    // SAFETY: setsockopt with an int of the given size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
