//! The host side of `--network=sandbox` (DESIGN.md 4.7): the sandbox's
//! network namespace hands its interfaces over to the sentry, which drives
//! each through an AF_PACKET socket with its own TCP/IP stack.
//!
//! - [`rtnetlink`]: a small NETLINK_ROUTE client (links, addresses, routes, veth).
//! - [`takeover`]: in a network namespace, records each usable interface's
//!   configuration, opens its packet socket and strips the addresses and
//!   routes from the host kernel's side, giving a [`NetConfig`].
//! - [`veth`]: `runsc do --network=sandbox`'s own namespace and veth pair.
//!
//! runsc (root, before spawning the sentry) does all of it; `runsc boot`
//! gets the sockets as inherited descriptors and the rest as `--net=JSON`
//! ([`NetConfig::to_arg`], [`NetConfig::from_arg`]).

pub mod rtnetlink;
pub mod takeover;
pub mod veth;

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

/// The interfaces the sentry's stack drives (none: loopback only).
#[derive(Debug, Default)]
pub struct NetConfig {
    pub links: Vec<LinkSpec>,
}

/// One interface taken over from the host kernel.
#[derive(Debug)]
pub struct LinkSpec {
    /// Its name in the namespace (what the sandbox shows).
    pub name: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// Addresses with their prefix lengths.
    pub addrs: Vec<(IpAddr, u8)>,
    /// Routes through this interface (the default route too).
    pub routes: Vec<RouteSpec>,
    /// An AF_PACKET SOCK_RAW socket (ETH_P_ALL) bound to the interface:
    /// whole Ethernet frames in both directions; non-blocking, our own sent
    /// frames are not looped back (PACKET_IGNORE_OUTGOING where the kernel
    /// has it).
    pub fd: OwnedFd,
}

/// A route: `dst/prefix` directly on the link, or via `gateway`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSpec {
    pub dst: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
}

/// A [`LinkSpec`] as passed on `runsc boot`'s command line: the socket by number.
#[derive(Debug, Serialize, Deserialize)]
struct LinkArg {
    fd: RawFd,
    name: String,
    mac: [u8; 6],
    mtu: u32,
    addrs: Vec<(IpAddr, u8)>,
    routes: Vec<RouteSpec>,
}

/// A parsed `--net=JSON` whose descriptors are not yet owned (see
/// [`NetArg::into_config`]).
#[derive(Debug)]
pub struct NetArg(Vec<LinkArg>);

fn max_prefix(a: &IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

impl NetConfig {
    /// The `runsc boot` argument (`--net=` followed by this).
    pub fn to_arg(&self) -> String {
        let v: Vec<LinkArg> = self
            .links
            .iter()
            .map(|l| LinkArg {
                fd: l.fd.as_raw_fd(),
                name: l.name.clone(),
                mac: l.mac,
                mtu: l.mtu,
                addrs: l.addrs.clone(),
                routes: l.routes.clone(),
            })
            .collect();
        serde_json::to_string(&v).unwrap_or_else(|_| "[]".into())
    }

    /// Makes every socket survive exec into the sentry about to be spawned.
    pub fn inheritable(&self) -> io::Result<()> {
        for l in &self.links {
            // SAFETY: plain fcntl on a descriptor we own.
            if unsafe { libc::fcntl(l.fd.as_raw_fd(), libc::F_SETFD, 0) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// A one-line summary for logs: `eth0 10.0.0.2/24 via 10.0.0.1; ...`.
    pub fn summary(&self) -> String {
        if self.links.is_empty() {
            return "loopback only".into();
        }
        self.links
            .iter()
            .map(|l| {
                let mut s = l.name.clone();
                for (a, p) in &l.addrs {
                    s.push_str(&format!(" {a}/{p}"));
                }
                for r in l.routes.iter().filter(|r| r.prefix == 0) {
                    if let Some(g) = r.gateway {
                        s.push_str(&format!(" via {g}"));
                    }
                }
                s
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl NetArg {
    /// Parses and checks `--net=JSON`: descriptors above 2 and distinct,
    /// prefixes within their family's length, an MTU Ethernet can carry.
    pub fn parse(v: &str) -> Result<NetArg, String> {
        let links: Vec<LinkArg> = serde_json::from_str(v).map_err(|e| format!("bad --net: {e}"))?;
        let mut fds = Vec::new();
        for l in &links {
            if l.fd <= 2 || fds.contains(&l.fd) {
                return Err(format!("bad --net: descriptor {} of {}", l.fd, l.name));
            }
            fds.push(l.fd);
            if !(68..=65535).contains(&l.mtu) {
                return Err(format!("bad --net: mtu {} of {}", l.mtu, l.name));
            }
            let bad_prefix = l.addrs.iter().any(|(a, p)| *p > max_prefix(a))
                || l.routes.iter().any(|r| {
                    r.prefix > max_prefix(&r.dst)
                        || r.gateway.is_some_and(|g| g.is_ipv4() != r.dst.is_ipv4())
                });
            if bad_prefix {
                return Err(format!("bad --net: address or route of {}", l.name));
            }
        }
        Ok(NetArg(links))
    }

    /// The descriptors it names (to keep open in `runsc boot`).
    pub fn fds(&self) -> Vec<RawFd> {
        self.0.iter().map(|l| l.fd).collect()
    }

    /// Takes ownership of the descriptors, checking that each is an AF_PACKET
    /// socket.
    ///
    /// # Safety
    /// The descriptors must have been handed to this process for its
    /// exclusive use and not be owned by anything else (call once).
    pub unsafe fn into_config(self) -> Result<NetConfig, String> {
        let mut links = Vec::new();
        for l in self.0 {
            // SAFETY: guaranteed by the caller.
            let fd = unsafe { OwnedFd::from_raw_fd(l.fd) };
            if socket_domain(&fd) != Some(libc::AF_PACKET) {
                return Err(format!(
                    "--net: descriptor {} of {} is not a packet socket",
                    l.fd, l.name
                ));
            }
            links.push(LinkSpec {
                name: l.name,
                mac: l.mac,
                mtu: l.mtu,
                addrs: l.addrs,
                routes: l.routes,
                fd,
            });
        }
        Ok(NetConfig { links })
    }
}

fn socket_domain(fd: &OwnedFd) -> Option<i32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt into an int of the given size.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(v)
}

/// Runs `f` on a new thread that has joined the network namespace open at
/// `netns` (setns(2) is per thread; the thread ends with `f`), or the
/// caller's own namespace with `None`.
pub fn in_netns<T: Send + 'static>(
    netns: Option<RawFd>,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let h = std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || {
            if let Some(fd) = netns {
                // SAFETY: setns on a descriptor the caller keeps open; it
                // changes only this thread's namespace.
                if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            f()
        })?;
    h.join()
        .unwrap_or_else(|_| Err(io::Error::other("network setup thread panicked")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_arg_checks() {
        let ok = r#"[{"fd":5,"name":"eth0","mac":[2,0,0,0,0,1],"mtu":1500,
            "addrs":[["10.0.0.2",24],["fd00::2",64]],
            "routes":[{"dst":"0.0.0.0","prefix":0,"gateway":"10.0.0.1"}]}]"#;
        let a = NetArg::parse(ok).unwrap();
        assert_eq!(a.fds(), vec![5]);
        assert!(NetArg::parse("[]").unwrap().fds().is_empty());
        for bad in [
            ok.replace("\"fd\":5", "\"fd\":2"),
            ok.replace("1500", "20"),
            ok.replace("24]", "33]"),
            ok.replace("\"10.0.0.1\"", "\"fd00::1\""),
            ok.replace("[2,0,0,0,0,1]", "[2,0,0]"),
            "{".into(),
            "[1]".into(),
        ] {
            assert!(NetArg::parse(&bad).is_err(), "{bad}");
        }
        let two = format!("[{},{}]", &ok[1..ok.len() - 1], &ok[1..ok.len() - 1]);
        assert!(NetArg::parse(&two).unwrap_err().contains("descriptor"));
    }
}
