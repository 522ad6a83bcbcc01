//! The sandbox's user-space TCP/IP stack: smoltcp behind an endpoint API shaped
//! like Linux sockets, so the sentry can implement AF_INET/AF_INET6 socket
//! file descriptions errno-for-errno.
//!
//! - [`Stack`] (one per sandbox) owns the interfaces (loopback, plus Ethernet
//!   links given as host fds) and a thread "netstack" that runs timers and
//!   reads link frames. Callers poll the stack in their own thread right after
//!   each operation, so loopback traffic never waits for the stack thread.
//! - [`TcpEndpoint`], [`UdpEndpoint`], [`IcmpEndpoint`]: non-blocking
//!   endpoints; an operation that would block returns `EAGAIN` (`EINPROGRESS`
//!   / `EALREADY` for connect). [`TcpEndpoint::set_notify`] & co. register a
//!   callback invoked (never under the stack lock) when readiness may have
//!   changed, with the current Linux poll bits.
//!
//! Known deviations from Linux are documented on the modules ([`tcp`],
//! [`udp`], [`icmp`], [`iface`]).

pub mod icmp;
pub mod iface;
pub mod link;
pub mod stack;
pub mod tcp;
pub mod udp;

pub use abi::Errno;
pub use icmp::IcmpEndpoint;
pub use iface::{IfaceInfo, LinkConfig, RouteConfig, RouteInfo, StackConfig};
pub use link::{Counters, FdLink, LinkDevice};
pub use stack::{Notify, SockEntry, Stack};
pub use tcp::{TcpEndpoint, TcpInfo};
pub use udp::UdpEndpoint;

/// Linux poll bits (`<asm-generic/poll.h>`).
pub const POLLIN: u32 = 0x001;
pub const POLLPRI: u32 = 0x002;
pub const POLLOUT: u32 = 0x004;
pub const POLLERR: u32 = 0x008;
pub const POLLHUP: u32 = 0x010;
pub const POLLRDNORM: u32 = 0x040;
pub const POLLWRNORM: u32 = 0x100;
pub const POLLRDHUP: u32 = 0x2000;

/// `shutdown(2)` `how` values.
pub const SHUT_RD: i32 = 0;
pub const SHUT_WR: i32 = 1;
pub const SHUT_RDWR: i32 = 2;

#[cfg(test)]
mod tests {
    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn endpoints_are_send_sync() {
        send_sync::<crate::Stack>();
        send_sync::<crate::TcpEndpoint>();
        send_sync::<crate::UdpEndpoint>();
        send_sync::<crate::IcmpEndpoint>();
    }
}
