//! TCP endpoints (AF_INET/AF_INET6 SOCK_STREAM).
//!
//! A listening endpoint keeps a pool of smoltcp sockets in LISTEN state on
//! each interface it listens on (smoltcp sockets accept one connection each);
//! established ones move to the accept queue and the pool is replenished, so
//! up to `backlog + 1` connections wait to be accepted (as Linux). Beyond that
//! one listening socket stays so further clients still connect (queued up to
//! `2 * backlog + 8`); past that limit SYNs get RST (Linux drops them).
//! Half-open connections are bounded per listener: a SYN flood recycles the
//! oldest (see `update_listener`).
//!
//! Deviations from Linux:
//! - smoltcp's listen on an unspecified address matches both families, so a
//!   v4 listener on `0.0.0.0` may complete the handshake of a v6 client (and
//!   a V6ONLY one of a v4 client). Such a connection is moved to the accept
//!   queue of another listener on the port that takes its family (the usual
//!   `0.0.0.0:p` + `[::]:p` V6ONLY pair works); with none it is reset after
//!   the handshake instead of being refused at SYN time.
//! - Failures are inferred from smoltcp state transitions: a connection that
//!   closes without a FIN exchange is ECONNRESET; a SYN_SENT one that closes
//!   before the connect timeout (127 s) is ECONNREFUSED, else ETIMEDOUT. ICMP
//!   errors and ARP/NDP failure do not fail connects early (they time out).
//! - Keepalive: smoltcp sends probes every TCP_KEEPIDLE seconds; the connection
//!   is dropped after idle + intvl * cnt seconds without hearing from the peer.
//! - Receive/send buffers are at least 256 KiB whatever SO_RCVBUF/SO_SNDBUF
//!   say (the reported values follow Linux: doubled, clamped).
//! - `send` on a never-connected socket is EPIPE, as Linux.
//! - TIME_WAIT: when a closed connection reaches TIME_WAIT its smoltcp socket
//!   is freed (a late retransmitted FIN is answered with RST) and only its port
//!   stays reserved for 60 s: binding it again needs SO_REUSEADDR, as Linux.
//! - A closed socket still finishing its FIN exchange is reset after 60 s
//!   (tcp_fin_timeout), or at once when data arrives for it (as Linux).
//! - SO_LINGER, TCP_CORK, urgent data and TCP_FASTOPEN are not implemented.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::Waker;

use abi::Errno;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::Duration;
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};

use crate::iface::{from_ip, to_ip, Iface};
use crate::stack::{
    check_addr, for_family, unspecified, Binding, EpKind, EpSlot, Inner, Orphan, Ports, Proto,
    Stack,
};
use crate::{
    Notify, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDHUP, POLLRDNORM, POLLWRNORM, SHUT_RD,
    SHUT_RDWR, SHUT_WR,
};

/// Linux reports these for a fresh socket.
pub const DEFAULT_SNDBUF: usize = 16384;
pub const DEFAULT_RCVBUF: usize = 131072;
/// Smallest ring buffers actually allocated.
const MIN_RING: usize = 256 * 1024;
const MAX_RING: usize = 4 * 1024 * 1024;
const CONNECT_TIMEOUT: u64 = 127;
const SYNACK_TIMEOUT: u64 = 63;
/// Linux gives up retransmitting after ~15 minutes (tcp_retries2).
const DATA_TIMEOUT: u64 = 900;
/// How long an orphaned (closed) connection may take to finish.
const ORPHAN_TIMEOUT: u64 = 60;
/// How long a closed connection's port stays reserved (Linux TCP_TIMEWAIT_LEN).
const TIME_WAIT_SECS: u64 = 60;

#[derive(Clone, Debug)]
pub(crate) struct Opts {
    pub nodelay: bool,
    pub keepalive: bool,
    pub keepidle: u32,
    pub keepintvl: u32,
    pub keepcnt: u32,
    pub reuseaddr: bool,
    pub reuseport: bool,
    pub v6only: bool,
    pub sndbuf: usize,
    pub rcvbuf: usize,
    /// SO_LINGER on with a zero timeout: close sends RST.
    pub abort_on_close: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            nodelay: false,
            keepalive: false,
            keepidle: 7200,
            keepintvl: 75,
            keepcnt: 9,
            reuseaddr: false,
            reuseport: false,
            abort_on_close: false,
            v6only: false,
            sndbuf: DEFAULT_SNDBUF,
            rcvbuf: DEFAULT_RCVBUF,
        }
    }
}

pub(crate) struct Listener {
    backlog: usize,
    addr: Option<IpAddr>,
    port: u16,
    ifaces: Vec<usize>,
    pool: Vec<(usize, SocketHandle)>,
    queue: VecDeque<(usize, SocketHandle)>,
    /// Pool sockets seen in SYN_RECEIVED, with the order they were seen in
    /// (the oldest are recycled first under a SYN flood).
    half_open: HashMap<(usize, SocketHandle), u64>,
    half_open_seq: u64,
}

pub(crate) struct Conn {
    ifc: usize,
    h: SocketHandle,
    /// connect() started and has not yet reported its outcome (SS_CONNECTING).
    connecting: bool,
    started: std::time::Instant,
    established: bool,
    peer_fin: bool,
    /// Closed abnormally (reset or timeout).
    dead: bool,
    /// Closed normally after the FIN exchange.
    done: bool,
}

pub(crate) enum Mode {
    Init,
    Listen(Listener),
    Conn(Conn),
}

pub(crate) struct TcpEp {
    v6: bool,
    pub(crate) o: Opts,
    /// Bound local address (normalized) and port, with the binding key.
    bound: Option<(SocketAddr, u64)>,
    mode: Mode,
    error: Option<Errno>,
    shut_rd: bool,
    shut_wr: bool,
}

/// A few TCP_INFO fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpInfo {
    /// Linux TCP state number (TCP_ESTABLISHED = 1 ... TCP_CLOSING = 11).
    pub state: u8,
    pub rto_us: u32,
    pub unacked: u32,
}

fn ring(v: usize) -> usize {
    (v * 2).clamp(MIN_RING, MAX_RING)
}

fn new_socket(o: &Opts) -> tcp::Socket<'static> {
    let rx = tcp::SocketBuffer::new(vec![0u8; ring(o.rcvbuf)]);
    let tx = tcp::SocketBuffer::new(vec![0u8; ring(o.sndbuf)]);
    let mut s = tcp::Socket::new(rx, tx);
    apply_opts(&mut s, o);
    s
}

fn apply_opts(s: &mut tcp::Socket<'static>, o: &Opts) {
    s.set_nagle_enabled(!o.nodelay);
    // Linux acks quickly on loopback and after the first segments; a 10 ms
    // delayed ACK with Nagle would stall request/response traffic.
    s.set_ack_delay(None);
    if o.keepalive {
        s.set_keep_alive(Some(Duration::from_secs(o.keepidle.max(1) as u64)));
    } else {
        s.set_keep_alive(None);
    }
    let timeout = match s.state() {
        State::SynSent | State::Closed => CONNECT_TIMEOUT,
        _ if o.keepalive => o.keepidle as u64 + o.keepintvl as u64 * o.keepcnt as u64,
        _ => DATA_TIMEOUT,
    };
    s.set_timeout(Some(Duration::from_secs(timeout.max(1))));
}

fn sock(ifaces: &mut [Iface], ifc: usize, h: SocketHandle) -> &mut tcp::Socket<'static> {
    ifaces[ifc].sockets.get_mut::<tcp::Socket<'static>>(h)
}

fn ep_addr(e: IpEndpoint) -> SocketAddr {
    SocketAddr::new(from_ip(e.addr), e.port)
}

/// Linux's TCP state numbers.
fn linux_state(s: State) -> u8 {
    match s {
        State::Established => 1,
        State::SynSent => 2,
        State::SynReceived => 3,
        State::FinWait1 => 4,
        State::FinWait2 => 5,
        State::TimeWait => 6,
        State::Closed => 7,
        State::CloseWait => 8,
        State::LastAck => 9,
        State::Listen => 10,
        State::Closing => 11,
    }
}

/// The /proc/net/tcp[6] line of `t`: listeners and connections (Linux
/// lists no unbound or merely bound socket).
pub(crate) fn entry(t: &TcpEp, ifaces: &mut [Iface]) -> Option<crate::stack::SockEntry> {
    let any = SocketAddr::new(unspecified(t.v6), 0);
    let (local, remote, state, tx, rx) = match &t.mode {
        Mode::Init => return None,
        Mode::Listen(l) => {
            let local = t.bound.map(|(a, _)| a)?;
            (local, any, 10, 0, l.queue.len() as u32)
        }
        Mode::Conn(c) if c.dead || c.done => return None,
        Mode::Conn(c) => {
            let s = sock(ifaces, c.ifc, c.h);
            let state = linux_state(s.state());
            if state == 7 {
                return None;
            }
            (
                s.local_endpoint().map(ep_addr)?,
                s.remote_endpoint().map(ep_addr).unwrap_or(any),
                state,
                s.send_queue() as u32,
                s.recv_queue() as u32,
            )
        }
    };
    Some(crate::stack::SockEntry {
        tcp: true,
        v6: t.v6,
        local: for_family(local, t.v6),
        remote: for_family(remote, t.v6),
        state,
        tx_queue: tx,
        rx_queue: rx,
        uid: 0,
        inode: 0,
    })
}

/// The /proc/net/tcp[6] lines of the connections queued on listener `t`
/// (not accepted yet: no socket file, uid and inode 0).
pub(crate) fn queued(t: &TcpEp, ifaces: &mut [Iface]) -> Vec<crate::stack::SockEntry> {
    let Mode::Listen(l) = &t.mode else {
        return Vec::new();
    };
    let any = SocketAddr::new(unspecified(t.v6), 0);
    l.queue
        .iter()
        .filter_map(|&(ifc, h)| {
            let s = sock(ifaces, ifc, h);
            let state = linux_state(s.state());
            (state != 7 && state != 10).then(|| crate::stack::SockEntry {
                tcp: true,
                v6: t.v6,
                local: for_family(s.local_endpoint().map(ep_addr).unwrap_or(any), t.v6),
                remote: for_family(s.remote_endpoint().map(ep_addr).unwrap_or(any), t.v6),
                state,
                tx_queue: s.send_queue() as u32,
                rx_queue: s.recv_queue() as u32,
                uid: 0,
                inode: 0,
            })
        })
        .collect()
}

/// Observes the smoltcp state: records establishment, peer FIN and failures.
fn observe(t: &mut TcpEp, ifaces: &mut [Iface]) {
    let Mode::Conn(c) = &mut t.mode else { return };
    if c.dead || c.done {
        return;
    }
    let s = sock(ifaces, c.ifc, c.h);
    let st = s.state();
    match st {
        State::SynSent | State::SynReceived | State::Listen => {}
        State::Established | State::FinWait1 | State::FinWait2 => {
            if !c.established {
                c.established = true;
                apply_opts(s, &t.o);
            }
        }
        State::CloseWait | State::LastAck | State::Closing | State::TimeWait => {
            c.established = true;
            c.peer_fin = true;
        }
        State::Closed => {
            if !c.established {
                let timed_out = c.started.elapsed().as_secs() + 1 >= CONNECT_TIMEOUT;
                t.error = Some(if timed_out {
                    Errno::ETIMEDOUT
                } else {
                    Errno::ECONNREFUSED
                });
                c.dead = true;
            } else if c.peer_fin && t.shut_wr {
                c.done = true;
            } else {
                t.error = Some(Errno::ECONNRESET);
                c.dead = true;
            }
        }
    }
}

/// Moves established connections of a listener to its accept queue and keeps
/// enough sockets listening.
/// An established connection that reached a listener of the wrong family
/// (smoltcp's unspecified-address listen matches v4 and v6): it goes to
/// another listener on the same port that takes its family, if any.
pub(crate) struct Stray {
    ifc: usize,
    h: SocketHandle,
    port: u16,
    local: IpAddr,
}

fn family_ok(v6: bool, o: &Opts, local: IpAddr) -> bool {
    if local.is_ipv4() {
        !v6 || !o.v6only
    } else {
        v6
    }
}

fn update_listener(
    l: &mut Listener,
    v6: bool,
    o: &Opts,
    ifaces: &mut [Iface],
    strays: &mut Vec<Stray>,
) {
    let per_addr = l.addr.is_none() && v6 && o.v6only;
    let mut i = 0;
    let mut synrecv = 0;
    while i < l.pool.len() {
        let (ifc, h) = l.pool[i];
        let s = sock(ifaces, ifc, h);
        if s.state() != State::SynReceived {
            l.half_open.remove(&(ifc, h));
        }
        match s.state() {
            State::Listen => i += 1,
            State::SynReceived => {
                if let std::collections::hash_map::Entry::Vacant(e) = l.half_open.entry((ifc, h)) {
                    e.insert(l.half_open_seq);
                    l.half_open_seq += 1;
                }
                synrecv += 1;
                i += 1;
            }
            State::Closed if per_addr => {
                // Reset during the handshake: drop it, the refill below
                // listens again on its address.
                l.pool.swap_remove(i);
                strays.push(Stray {
                    ifc,
                    h,
                    port: 0,
                    local: unspecified(false),
                });
            }
            State::Closed => {
                // Reset during the handshake: listen again.
                let _ = s.listen(IpListenEndpoint {
                    addr: l.addr.map(to_ip),
                    port: l.port,
                });
                i += 1;
            }
            _ => {
                l.pool.swap_remove(i);
                match s.local_endpoint().map(|e| from_ip(e.addr)) {
                    Some(local) if family_ok(v6, o, local) => l.queue.push_back((ifc, h)),
                    Some(local) => strays.push(Stray {
                        ifc,
                        h,
                        port: l.port,
                        local,
                    }),
                    None => strays.push(Stray {
                        ifc,
                        h,
                        port: 0,
                        local: unspecified(false),
                    }),
                }
            }
        }
    }
    // Bounded against SYN floods: at the limit of half-open connections the
    // oldest are dropped silently (as Linux prunes its SYN queue; with SYN
    // cookies it answers every SYN), so that new clients still connect
    // rather than being reset, or refused until the flood's half-open
    // connections time out (63 s).
    let synrecv_max = 2 * l.backlog.max(64);
    if synrecv >= synrecv_max && l.queue.len() < 2 * l.backlog + 8 {
        l.half_open.retain(|k, _| l.pool.contains(k));
        let mut old: Vec<(u64, (usize, SocketHandle))> =
            l.half_open.iter().map(|(&k, &seq)| (seq, k)).collect();
        old.sort_unstable_by_key(|&(seq, _)| seq);
        old.truncate(synrecv + 8 - synrecv_max);
        for (_, (ifc, h)) in old {
            l.half_open.remove(&(ifc, h));
            let s = sock(ifaces, ifc, h);
            let ep = s.listen_endpoint();
            s.abort();
            let _ = s.listen(ep);
            synrecv -= 1;
        }
    }
    let room = (l.backlog + 1).saturating_sub(l.queue.len() + synrecv);
    let want = if l.queue.len() >= 2 * l.backlog + 8 || synrecv >= synrecv_max {
        0
    } else {
        room.clamp(1, 8)
    };
    // An IPV6_V6ONLY listener on `::` listens on each IPv6 address, so that
    // IPv4 SYNs find no listener and are refused at once (RST), as Linux.
    let targets: Vec<Option<IpAddr>> = if per_addr {
        let mut v: Vec<IpAddr> = vec![IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)];
        for ifc in ifaces.iter() {
            for (a, _) in ifc.info().addrs {
                if a.is_ipv6() && !v.contains(&a) {
                    v.push(a);
                }
            }
        }
        v.into_iter().map(Some).collect()
    } else {
        vec![l.addr]
    };
    for &ifc in &l.ifaces {
        for &target in &targets {
            let have = l
                .pool
                .iter()
                .filter(|&&(f, h)| {
                    let s = sock(ifaces, f, h);
                    f == ifc
                        && s.state() == State::Listen
                        && (!per_addr || s.listen_endpoint().addr == target.map(to_ip))
                })
                .count();
            for _ in have..want {
                let mut s = new_socket(o);
                // Linux gives up on a half-open connection after
                // tcp_synack_retries (5 retransmissions, ~63 s).
                s.set_timeout(Some(Duration::from_secs(SYNACK_TIMEOUT)));
                if s.listen(IpListenEndpoint {
                    addr: target.map(to_ip),
                    port: l.port,
                })
                .is_err()
                {
                    break;
                }
                let h = ifaces[ifc].sockets.add(s);
                l.pool.push((ifc, h));
            }
        }
    }
}

/// Per-poll listener pass: fills accept queues, replenishes the listening
/// pools and hands wrong-family connections to the right listener.
pub(crate) fn listeners(
    eps: &mut [Option<EpSlot>],
    ifaces: &mut [Iface],
    orphans: &mut Vec<Orphan>,
    ids: &mut Vec<usize>,
) {
    let mut strays = Vec::new();
    for &id in ids.iter() {
        if let Some(EpKind::Tcp(t)) = eps
            .get_mut(id)
            .and_then(|s| s.as_mut())
            .map(|s| &mut s.kind)
        {
            if let Mode::Listen(l) = &mut t.mode {
                update_listener(l, t.v6, &t.o, ifaces, &mut strays);
            }
        }
    }
    'next: for st in strays {
        for (id, slot) in eps.iter_mut().enumerate() {
            if let Some(EpKind::Tcp(t)) = slot.as_mut().map(|s| &mut s.kind) {
                if let Mode::Listen(l) = &mut t.mode {
                    if st.port != 0
                        && l.port == st.port
                        && l.addr.is_none_or(|a| a == st.local)
                        && family_ok(t.v6, &t.o, st.local)
                    {
                        l.queue.push_back((st.ifc, st.h));
                        ids.push(id);
                        continue 'next;
                    }
                }
            }
        }
        sock(ifaces, st.ifc, st.h).abort();
        orphans.push(Orphan {
            ifc: st.ifc,
            h: st.h,
            port: None,
            deadline: None,
        });
    }
}

/// Per-poll update; returns the readiness signature (poll bits in the low
/// 32 bits, queue sizes above).
pub(crate) fn update(
    t: &mut TcpEp,
    ifaces: &mut [Iface],
    _ports: &mut Ports,
    waker: &Waker,
) -> u64 {
    observe(t, ifaces);
    // Wakers are one-shot: re-arm them on every socket of the endpoint.
    match &t.mode {
        Mode::Init => {}
        Mode::Listen(l) => {
            for &(ifc, h) in &l.pool {
                let s = sock(ifaces, ifc, h);
                s.register_recv_waker(waker);
                s.register_send_waker(waker);
            }
        }
        Mode::Conn(c) => {
            let s = sock(ifaces, c.ifc, c.h);
            s.register_recv_waker(waker);
            s.register_send_waker(waker);
        }
    }
    let bits = readiness(t, ifaces) as u64;
    let extra = match &t.mode {
        Mode::Init => 0,
        Mode::Listen(l) => l.queue.len() as u64,
        Mode::Conn(c) => {
            let s = sock(ifaces, c.ifc, c.h);
            (s.recv_queue() as u64)
                .wrapping_mul(31)
                .wrapping_add(s.send_queue() as u64)
        }
    };
    bits | (extra << 32)
}

fn readiness(t: &TcpEp, ifaces: &mut [Iface]) -> u32 {
    let mut m = 0;
    if t.error.is_some() {
        m |= POLLERR;
    }
    match &t.mode {
        Mode::Init => m | POLLOUT | POLLWRNORM | POLLHUP,
        Mode::Listen(l) => {
            if !l.queue.is_empty() {
                m |= POLLIN | POLLRDNORM;
            }
            m
        }
        Mode::Conn(c) => {
            if !c.established && !c.dead {
                return m;
            }
            let s = sock(ifaces, c.ifc, c.h);
            let closed = c.dead || c.done;
            let rcv_shut = t.shut_rd || c.peer_fin || closed;
            let snd_shut = t.shut_wr || closed;
            if (rcv_shut && snd_shut) || closed {
                m |= POLLHUP;
            }
            if rcv_shut {
                m |= POLLIN | POLLRDNORM | POLLRDHUP;
            }
            if s.recv_queue() > 0 {
                m |= POLLIN | POLLRDNORM;
            }
            if snd_shut {
                m |= POLLOUT | POLLWRNORM;
            } else {
                let free = s.send_capacity() - s.send_queue();
                if free > 0 && free >= s.send_queue() / 2 {
                    m |= POLLOUT | POLLWRNORM;
                }
            }
            m
        }
    }
}

/// Removes orphaned connections that have finished.
pub(crate) fn reap_orphans(inner: &mut Inner) {
    let Inner {
        ifaces,
        orphans,
        ports,
        time_wait,
        ..
    } = inner;
    let now = std::time::Instant::now();
    time_wait.retain(|&(port, key, until)| {
        if until <= now {
            ports.remove(Proto::Tcp, port, key);
            false
        } else {
            true
        }
    });
    orphans.retain(|o| {
        let s = sock(ifaces, o.ifc, o.h);
        let st = s.state();
        if s.recv_queue() > 0 && st != State::Closed {
            // Data for a closed socket: Linux answers with RST.
            s.abort();
            return true;
        }
        if o.deadline.is_some_and(|d| d <= now) && st != State::Closed {
            // Linux tcp_fin_timeout: give up on the orphan with a RST.
            s.abort();
            return true;
        }
        let time_wait_done = st == State::TimeWait;
        if time_wait_done || (st == State::Closed && s.local_endpoint().is_none()) {
            ifaces[o.ifc].sockets.remove(o.h);
            if let Some((port, key)) = o.port {
                if time_wait_done {
                    // TIME_WAIT keeps only the port reservation: smoltcp would
                    // ignore a new SYN for the same 4-tuple until it expires,
                    // where Linux accepts it (tcp_timewait_state_process).
                    time_wait.push((
                        port,
                        key,
                        now + std::time::Duration::from_secs(TIME_WAIT_SECS),
                    ));
                } else {
                    ports.remove(Proto::Tcp, port, key);
                }
            }
            false
        } else {
            true
        }
    });
}

/// A TCP socket of the sandbox. Dropping it closes it (FIN, or RST when
/// received data was left unread).
pub struct TcpEndpoint {
    stack: Arc<Stack>,
    id: usize,
}

impl TcpEndpoint {
    pub(crate) fn new(stack: Arc<Stack>, v6: bool) -> TcpEndpoint {
        let id = stack.with(|i| {
            i.insert(crate::stack::EpKind::Tcp(TcpEp {
                v6,
                o: Opts::default(),
                bound: None,
                mode: Mode::Init,
                error: None,
                shut_rd: false,
                shut_wr: false,
            }))
        });
        TcpEndpoint { stack, id }
    }

    fn from_accepted(stack: Arc<Stack>, id: usize) -> TcpEndpoint {
        TcpEndpoint { stack, id }
    }

    /// Whether this is an AF_INET6 socket.
    pub fn is_v6(&self) -> bool {
        self.stack.with(|i| i.tcp(self.id).v6)
    }

    /// Registers the readiness callback.
    pub fn set_notify(&self, f: Notify) {
        self.stack.set_notify(self.id, f)
    }

    /// Names the socket file (its uid and inode) for /proc/net.
    pub fn set_owner(&self, uid: u32, ino: u64) {
        self.stack.set_owner(self.id, uid, ino)
    }

    /// Linux poll bits.
    pub fn readiness(&self) -> u32 {
        self.stack.with(|i| {
            let Inner { eps, ifaces, .. } = i;
            match eps[self.id].as_mut().map(|s| &mut s.kind) {
                Some(crate::stack::EpKind::Tcp(t)) => {
                    observe(t, ifaces);
                    readiness(t, ifaces)
                }
                _ => 0,
            }
        })
    }

    /// `bind(2)`.
    pub fn bind(&self, addr: SocketAddr) -> Result<(), Errno> {
        self.stack.with(|i| {
            let t = i.tcp(self.id);
            let a = check_addr(addr, t.v6, false)?;
            if t.bound.is_some() || !matches!(t.mode, Mode::Init) {
                return Err(Errno::EINVAL);
            }
            if !i.is_local(a.ip()) {
                return Err(Errno::EADDRNOTAVAIL);
            }
            bind_locked(i, self.id, a)
        })
    }

    /// `listen(2)`.
    pub fn listen(&self, backlog: i32) -> Result<(), Errno> {
        let backlog = backlog.clamp(0, 4096) as usize;
        self.stack.op(self.id, |i| {
            let t = i.tcp(self.id);
            match &mut t.mode {
                Mode::Listen(l) => {
                    l.backlog = backlog;
                    return Ok(());
                }
                Mode::Conn(_) => return Err(Errno::EINVAL),
                Mode::Init => {}
            }
            if t.bound.is_none() {
                let any = SocketAddr::new(unspecified(t.v6), 0);
                bind_locked(i, self.id, any)?;
            }
            let t = i.tcp(self.id);
            let (local, key) = t.bound.unwrap();
            // Listening needs the port to itself (modulo SO_REUSEPORT).
            let mut b = binding_of(t, local.ip(), key);
            b.listening = true;
            if i.ports.conflict(Proto::Tcp, local.port(), &b) {
                return Err(Errno::EADDRINUSE);
            }
            if let Some(e) = i.ports.get_mut(Proto::Tcp, local.port(), key) {
                e.listening = true;
            }
            let addr = if local.ip().is_unspecified() {
                None
            } else {
                Some(local.ip())
            };
            let ifaces = i.ifaces_for(addr);
            let t = i.tcp(self.id);
            t.mode = Mode::Listen(Listener {
                backlog,
                addr,
                port: local.port(),
                ifaces,
                pool: Vec::new(),
                queue: VecDeque::new(),
                half_open: HashMap::new(),
                half_open_seq: 0,
            });
            let Inner {
                eps,
                ifaces,
                orphans,
                ..
            } = i;
            if let Some(crate::stack::EpKind::Tcp(t)) = eps[self.id].as_mut().map(|s| &mut s.kind) {
                let v6 = t.v6;
                if let Mode::Listen(l) = &mut t.mode {
                    let mut strays = Vec::new();
                    update_listener(l, v6, &t.o, ifaces, &mut strays);
                    for st in strays {
                        sock(ifaces, st.ifc, st.h).abort();
                        orphans.push(Orphan {
                            ifc: st.ifc,
                            h: st.h,
                            port: None,
                            deadline: None,
                        });
                    }
                }
            }
            if !i.listening.contains(&self.id) {
                i.listening.push(self.id);
            }
            Ok(())
        })
    }

    /// Whether `listen` succeeded on this socket.
    pub fn is_listening(&self) -> bool {
        self.stack
            .with(|i| matches!(i.tcp(self.id).mode, Mode::Listen(_)))
    }

    /// `accept(2)`: the new connection and its peer address.
    pub fn accept(&self) -> Result<(TcpEndpoint, SocketAddr), Errno> {
        let r = self.stack.op(self.id, |i| {
            let t = i.tcp(self.id);
            let v6 = t.v6;
            let o = t.o.clone();
            let (port, reuseaddr) = (t.bound.map(|b| b.0.port()).unwrap_or(0), t.o.reuseaddr);
            let (ifc, h, local, peer, st) = loop {
                let Mode::Listen(l) = &mut i.tcp(self.id).mode else {
                    return Err(Errno::EINVAL);
                };
                let Some((ifc, h)) = l.queue.pop_front() else {
                    return Err(Errno::EAGAIN);
                };
                let s = sock(&mut i.ifaces, ifc, h);
                match (s.local_endpoint(), s.remote_endpoint()) {
                    (Some(a), Some(b)) => break (ifc, h, ep_addr(a), ep_addr(b), s.state()),
                    _ => {
                        // Reset while queued (smoltcp forgot the peer): skip it.
                        s.abort();
                        i.orphans.push(Orphan {
                            ifc,
                            h,
                            port: None,
                            deadline: None,
                        });
                    }
                }
            };
            let key = i.ports.key();
            i.ports.add(
                Proto::Tcp,
                port,
                Binding {
                    key,
                    addr: local.ip(),
                    dual: false,
                    reuseaddr,
                    reuseport: o.reuseport,
                    listening: false,
                },
            );
            let mut o2 = o.clone();
            o2.reuseaddr = reuseaddr;
            let peer_fin = matches!(
                st,
                State::CloseWait | State::LastAck | State::Closing | State::TimeWait
            );
            let id = i.insert(crate::stack::EpKind::Tcp(TcpEp {
                v6,
                o: o2,
                bound: Some((local, key)),
                mode: Mode::Conn(Conn {
                    ifc,
                    h,
                    connecting: false,
                    started: std::time::Instant::now(),
                    established: true,
                    peer_fin,
                    dead: false,
                    done: false,
                }),
                error: None,
                shut_rd: false,
                shut_wr: false,
            }));
            apply_opts(sock(&mut i.ifaces, ifc, h), &o);
            Ok((id, for_family(peer, v6)))
        });
        r.map(|(id, peer)| (TcpEndpoint::from_accepted(self.stack.clone(), id), peer))
    }

    /// `connect(2)`: `Err(EINPROGRESS)` when the handshake has started,
    /// `Ok(())` once connected (loopback handshakes complete within the call).
    pub fn connect(&self, addr: SocketAddr) -> Result<(), Errno> {
        self.stack
            .op(self.id, |i| {
                {
                    let Inner { eps, ifaces, .. } = &mut *i;
                    if let Some(crate::stack::EpKind::Tcp(t)) =
                        eps[self.id].as_mut().map(|s| &mut s.kind)
                    {
                        observe(t, ifaces);
                    }
                }
                let t = i.tcp(self.id);
                match &mut t.mode {
                    Mode::Listen(_) => return Err(Errno::EISCONN),
                    Mode::Conn(c) => {
                        if !c.connecting {
                            return Err(Errno::EISCONN);
                        }
                        if c.dead {
                            let (ifc, h) = (c.ifc, c.h);
                            let e = t.error.take().unwrap_or(Errno::ECONNABORTED);
                            t.mode = Mode::Init;
                            i.ifaces[ifc].sockets.remove(h);
                            return Err(e);
                        }
                        if c.established {
                            c.connecting = false;
                            return Ok(());
                        }
                        return Err(Errno::EALREADY);
                    }
                    Mode::Init => {}
                }
                let v6 = t.v6;
                let mut dst = check_addr(addr, v6, t.o.v6only)?;
                if dst.ip().is_unspecified() {
                    dst.set_ip(if dst.is_ipv4() {
                        IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
                    } else {
                        IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
                    });
                }
                if dst.port() == 0 {
                    return Err(Errno::ECONNREFUSED);
                }
                let Some(ifc) = i.route(dst.ip()) else {
                    return Err(Errno::ENETUNREACH);
                };
                let t = i.tcp(self.id);
                let local = match t.bound {
                    Some((l, _)) => {
                        if !l.ip().is_unspecified() && l.ip().is_ipv4() != dst.ip().is_ipv4() {
                            return Err(Errno::ENETUNREACH);
                        }
                        l
                    }
                    None => {
                        let any = SocketAddr::new(unspecified(v6), 0);
                        bind_locked(i, self.id, any)?;
                        i.tcp(self.id).bound.unwrap().0
                    }
                };
                let local_ip = if !local.ip().is_unspecified() {
                    Some(to_ip(local.ip()))
                } else if ifc == 0 && !dst.ip().is_loopback() {
                    // Own link address: the source is that address, as Linux.
                    Some(to_ip(dst.ip()))
                } else {
                    None
                };
                let o = i.tcp(self.id).o.clone();
                let mut s = new_socket(&o);
                let cx = i.ifaces[ifc].iface.context();
                let remote = IpEndpoint::new(to_ip(dst.ip()), dst.port());
                if s.connect(
                    cx,
                    remote,
                    IpListenEndpoint {
                        addr: local_ip,
                        port: local.port(),
                    },
                )
                .is_err()
                {
                    return Err(Errno::ENETUNREACH);
                }
                let h = i.ifaces[ifc].sockets.add(s);
                // Record the actual local address in the binding.
                let t = i.tcp(self.id);
                t.mode = Mode::Conn(Conn {
                    ifc,
                    h,
                    connecting: true,
                    started: std::time::Instant::now(),
                    established: false,
                    peer_fin: false,
                    dead: false,
                    done: false,
                });
                Err(Errno::EINPROGRESS)
            })
            .or_else(|e| {
                if e == Errno::EINPROGRESS {
                    // The loopback handshake may already be complete (or refused).
                    self.stack.with(|i| {
                        let Inner { eps, ifaces, .. } = i;
                        let Some(crate::stack::EpKind::Tcp(t)) =
                            eps[self.id].as_mut().map(|s| &mut s.kind)
                        else {
                            return Err(e);
                        };
                        observe(t, ifaces);
                        let Mode::Conn(c) = &mut t.mode else {
                            return Err(e);
                        };
                        if c.established {
                            c.connecting = false;
                            Ok(())
                        } else if c.dead && c.ifc == 0 {
                            let (ifc, h) = (c.ifc, c.h);
                            let err = t.error.take().unwrap_or(Errno::ECONNABORTED);
                            t.mode = Mode::Init;
                            ifaces[ifc].sockets.remove(h);
                            Err(err)
                        } else {
                            Err(e)
                        }
                    })
                } else {
                    Err(e)
                }
            })
    }

    /// `getsockname(2)`.
    pub fn local_addr(&self) -> Result<SocketAddr, Errno> {
        self.stack.with(|i| {
            let t = i.tcp(self.id);
            let v6 = t.v6;
            if let Mode::Conn(c) = &t.mode {
                let (ifc, h) = (c.ifc, c.h);
                if let Some(e) = sock(&mut i.ifaces, ifc, h).local_endpoint() {
                    return Ok(for_family(ep_addr(e), v6));
                }
            }
            let t = i.tcp(self.id);
            Ok(match t.bound {
                Some((a, _)) => for_family(a, v6),
                None => SocketAddr::new(unspecified(v6), 0),
            })
        })
    }

    /// `getpeername(2)`.
    pub fn peer_addr(&self) -> Result<SocketAddr, Errno> {
        self.stack.with(|i| {
            let t = i.tcp(self.id);
            let v6 = t.v6;
            match &t.mode {
                Mode::Conn(c) if c.established && !c.dead => {
                    let (ifc, h) = (c.ifc, c.h);
                    sock(&mut i.ifaces, ifc, h)
                        .remote_endpoint()
                        .map(|e| for_family(ep_addr(e), v6))
                        .ok_or(Errno::ENOTCONN)
                }
                _ => Err(Errno::ENOTCONN),
            }
        })
    }

    /// `SO_ERROR`: the pending error, cleared.
    pub fn take_error(&self) -> Option<Errno> {
        self.stack.with(|i| {
            let Inner { eps, ifaces, .. } = i;
            let Some(crate::stack::EpKind::Tcp(t)) = eps[self.id].as_mut().map(|s| &mut s.kind)
            else {
                return None;
            };
            observe(t, ifaces);
            t.error.take()
        })
    }

    /// `send(2)`.
    pub fn send(&self, data: &[u8]) -> Result<usize, Errno> {
        self.stack.op(self.id, |i| {
            let Inner { eps, ifaces, .. } = i;
            let Some(crate::stack::EpKind::Tcp(t)) = eps[self.id].as_mut().map(|s| &mut s.kind)
            else {
                return Err(Errno::EBADF);
            };
            observe(t, ifaces);
            let Mode::Conn(c) = &t.mode else {
                return Err(Errno::EPIPE);
            };
            if let Some(e) = t.error.take() {
                return Err(e);
            }
            if c.dead || c.done || t.shut_wr {
                return Err(Errno::EPIPE);
            }
            if !c.established {
                return Err(Errno::EAGAIN);
            }
            let s = sock(ifaces, c.ifc, c.h);
            if data.is_empty() {
                return Ok(0);
            }
            match s.send_slice(data) {
                Ok(0) => Err(Errno::EAGAIN),
                Ok(n) => Ok(n),
                Err(_) => Err(Errno::EPIPE),
            }
        })
    }

    /// `recv(2)`; `Ok(0)` at end of stream.
    pub fn recv(&self, buf: &mut [u8], peek: bool) -> Result<usize, Errno> {
        self.stack.op(self.id, |i| {
            let Inner { eps, ifaces, .. } = i;
            let Some(crate::stack::EpKind::Tcp(t)) = eps[self.id].as_mut().map(|s| &mut s.kind)
            else {
                return Err(Errno::EBADF);
            };
            observe(t, ifaces);
            let c = match &t.mode {
                Mode::Conn(c) => c,
                _ => return Err(Errno::ENOTCONN),
            };
            if !c.established && !c.dead {
                return Err(Errno::EAGAIN);
            }
            let s = sock(ifaces, c.ifc, c.h);
            if s.recv_queue() > 0 {
                let n = if peek {
                    s.peek_slice(buf).unwrap_or(0)
                } else {
                    s.recv_slice(buf).unwrap_or(0)
                };
                return Ok(n);
            }
            if let Some(e) = t.error.take() {
                return Err(e);
            }
            if c.peer_fin || c.dead || c.done || t.shut_rd || buf.is_empty() {
                return Ok(0);
            }
            Err(Errno::EAGAIN)
        })
    }

    /// `shutdown(2)`.
    pub fn shutdown(&self, how: i32) -> Result<(), Errno> {
        if !(SHUT_RD..=SHUT_RDWR).contains(&how) {
            return Err(Errno::EINVAL);
        }
        self.stack.op(self.id, |i| {
            let Inner {
                eps,
                ifaces,
                orphans,
                ..
            } = i;
            let Some(crate::stack::EpKind::Tcp(t)) = eps[self.id].as_mut().map(|s| &mut s.kind)
            else {
                return Err(Errno::EBADF);
            };
            observe(t, ifaces);
            match &mut t.mode {
                Mode::Init => Err(Errno::ENOTCONN),
                Mode::Listen(l) => {
                    if how == SHUT_WR {
                        return Err(Errno::ENOTCONN);
                    }
                    for (ifc, h) in l.pool.drain(..).chain(l.queue.drain(..)) {
                        sock(ifaces, ifc, h).abort();
                        orphans.push(Orphan {
                            ifc,
                            h,
                            port: None,
                            deadline: None,
                        });
                    }
                    t.mode = Mode::Init;
                    Ok(())
                }
                Mode::Conn(c) => {
                    if c.dead || (!c.established && !c.connecting) {
                        return Err(Errno::ENOTCONN);
                    }
                    if how != SHUT_WR {
                        t.shut_rd = true;
                    }
                    if how != SHUT_RD {
                        t.shut_wr = true;
                        let s = sock(ifaces, c.ifc, c.h);
                        s.close();
                    }
                    Ok(())
                }
            }
        })
    }

    /// FIONREAD: bytes ready to read (0 for a listener).
    pub fn inq(&self) -> usize {
        self.stack.with(|i| match &i.tcp(self.id).mode {
            Mode::Conn(c) => {
                let (ifc, h) = (c.ifc, c.h);
                sock(&mut i.ifaces, ifc, h).recv_queue()
            }
            _ => 0,
        })
    }

    /// SIOCOUTQ: bytes not yet acknowledged by the peer.
    pub fn outq(&self) -> usize {
        self.stack.with(|i| match &i.tcp(self.id).mode {
            Mode::Conn(c) => {
                let (ifc, h) = (c.ifc, c.h);
                sock(&mut i.ifaces, ifc, h).send_queue()
            }
            _ => 0,
        })
    }

    /// A few TCP_INFO fields.
    pub fn info(&self) -> TcpInfo {
        self.stack.with(|i| {
            let state = match &i.tcp(self.id).mode {
                Mode::Init => 7,
                Mode::Listen(_) => 10,
                Mode::Conn(c) if c.dead || c.done => 7,
                Mode::Conn(c) => {
                    let (ifc, h) = (c.ifc, c.h);
                    linux_state(sock(&mut i.ifaces, ifc, h).state())
                }
            };
            let unacked = match &i.tcp(self.id).mode {
                Mode::Conn(c) => {
                    let (ifc, h) = (c.ifc, c.h);
                    sock(&mut i.ifaces, ifc, h).send_queue() as u32
                }
                _ => 0,
            };
            TcpInfo {
                state,
                rto_us: 1_000_000,
                unacked,
            }
        })
    }

    fn set_opt(&self, f: impl FnOnce(&mut Opts)) {
        self.stack.op(self.id, |i| {
            let t = i.tcp(self.id);
            f(&mut t.o);
            let o = t.o.clone();
            let handles: Vec<(usize, SocketHandle)> = match &t.mode {
                Mode::Conn(c) if !c.dead => vec![(c.ifc, c.h)],
                _ => vec![],
            };
            for (ifc, h) in handles {
                apply_opts(sock(&mut i.ifaces, ifc, h), &o);
            }
        })
    }

    fn get_opt<R>(&self, f: impl FnOnce(&Opts) -> R) -> R {
        self.stack.with(|i| f(&i.tcp(self.id).o))
    }

    /// TCP_NODELAY.
    /// SO_LINGER with l_onoff set and l_linger 0: close resets the
    /// connection instead of a graceful FIN. (Other linger times are not
    /// waited for: close never blocks.)
    pub fn set_abort_on_close(&self, v: bool) {
        self.set_opt(|o| o.abort_on_close = v)
    }
    pub fn set_nodelay(&self, v: bool) {
        self.set_opt(|o| o.nodelay = v)
    }
    pub fn nodelay(&self) -> bool {
        self.get_opt(|o| o.nodelay)
    }
    /// SO_KEEPALIVE.
    pub fn set_keepalive(&self, v: bool) {
        self.set_opt(|o| o.keepalive = v)
    }
    pub fn keepalive(&self) -> bool {
        self.get_opt(|o| o.keepalive)
    }
    /// TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT (seconds, seconds, count;
    /// Linux ranges: 1..=32767, 1..=32767, 1..=127, else EINVAL).
    pub fn set_keepalive_params(
        &self,
        idle: Option<u32>,
        intvl: Option<u32>,
        cnt: Option<u32>,
    ) -> Result<(), Errno> {
        if idle.is_some_and(|v| !(1..=32767).contains(&v))
            || intvl.is_some_and(|v| !(1..=32767).contains(&v))
            || cnt.is_some_and(|v| !(1..=127).contains(&v))
        {
            return Err(Errno::EINVAL);
        }
        self.set_opt(|o| {
            if let Some(v) = idle {
                o.keepidle = v;
            }
            if let Some(v) = intvl {
                o.keepintvl = v;
            }
            if let Some(v) = cnt {
                o.keepcnt = v;
            }
        });
        Ok(())
    }
    /// (TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT).
    pub fn keepalive_params(&self) -> (u32, u32, u32) {
        self.get_opt(|o| (o.keepidle, o.keepintvl, o.keepcnt))
    }
    /// SO_REUSEADDR.
    pub fn set_reuseaddr(&self, v: bool) {
        self.set_opt(|o| o.reuseaddr = v);
        self.sync_binding();
    }
    pub fn reuseaddr(&self) -> bool {
        self.get_opt(|o| o.reuseaddr)
    }
    /// SO_REUSEPORT.
    pub fn set_reuseport(&self, v: bool) {
        self.set_opt(|o| o.reuseport = v);
        self.sync_binding();
    }
    pub fn reuseport(&self) -> bool {
        self.get_opt(|o| o.reuseport)
    }
    /// IPV6_V6ONLY (EINVAL once bound, as Linux).
    pub fn set_v6only(&self, v: bool) -> Result<(), Errno> {
        self.stack.with(|i| {
            let t = i.tcp(self.id);
            if t.bound.is_some() {
                return Err(Errno::EINVAL);
            }
            t.o.v6only = v;
            Ok(())
        })
    }
    pub fn v6only(&self) -> bool {
        self.get_opt(|o| o.v6only)
    }
    /// SO_SNDBUF: stores `2 * v` clamped to Linux's [4608, 425984] (the
    /// value getsockopt reports); takes effect for connections made later.
    pub fn set_sndbuf(&self, v: usize) {
        self.set_opt(|o| o.sndbuf = v.saturating_mul(2).clamp(4608, 425984))
    }
    pub fn sndbuf(&self) -> usize {
        self.get_opt(|o| o.sndbuf)
    }
    /// SO_RCVBUF: stores `2 * v` clamped to Linux's [2304, 425984].
    pub fn set_rcvbuf(&self, v: usize) {
        self.set_opt(|o| o.rcvbuf = v.saturating_mul(2).clamp(2304, 425984))
    }
    pub fn rcvbuf(&self) -> usize {
        self.get_opt(|o| o.rcvbuf)
    }

    fn sync_binding(&self) {
        self.stack.with(|i| {
            let t = i.tcp(self.id);
            let (ra, rp) = (t.o.reuseaddr, t.o.reuseport);
            if let Some((a, key)) = t.bound {
                if let Some(b) = i.ports.get_mut(Proto::Tcp, a.port(), key) {
                    b.reuseaddr = ra;
                    b.reuseport = rp;
                }
            }
        })
    }
}

fn binding_of(t: &TcpEp, ip: IpAddr, key: u64) -> Binding {
    Binding {
        key,
        addr: ip,
        dual: t.v6 && !t.o.v6only && ip.is_unspecified(),
        reuseaddr: t.o.reuseaddr,
        reuseport: t.o.reuseport,
        listening: false,
    }
}

/// Binds endpoint `id` to `a` (normalized); port 0 picks an ephemeral port.
fn bind_locked(i: &mut Inner, id: usize, a: SocketAddr) -> Result<(), Errno> {
    let key = i.ports.key();
    let t = i.tcp(id);
    let b = binding_of(t, a.ip(), key);
    let port = if a.port() == 0 {
        i.ports.ephemeral(Proto::Tcp, &b).ok_or(Errno::EADDRINUSE)?
    } else {
        if i.ports.conflict(Proto::Tcp, a.port(), &b) {
            return Err(Errno::EADDRINUSE);
        }
        a.port()
    };
    i.ports.add(Proto::Tcp, port, b);
    i.tcp(id).bound = Some((SocketAddr::new(a.ip(), port), key));
    Ok(())
}

impl Drop for TcpEndpoint {
    fn drop(&mut self) {
        self.stack.op(self.id, |i| {
            i.listening.retain(|&l| l != self.id);
            let Some(slot) = i.remove(self.id) else {
                return;
            };
            let crate::stack::EpKind::Tcp(t) = slot.kind else {
                return;
            };
            let port = t.bound.map(|(a, key)| (a.port(), key));
            match t.mode {
                Mode::Init => {
                    if let Some((p, k)) = port {
                        i.ports.remove(Proto::Tcp, p, k);
                    }
                }
                Mode::Listen(l) => {
                    for (ifc, h) in l.pool.into_iter().chain(l.queue) {
                        sock(&mut i.ifaces, ifc, h).abort();
                        i.orphans.push(Orphan {
                            ifc,
                            h,
                            port: None,
                            deadline: None,
                        });
                    }
                    if let Some((p, k)) = port {
                        i.ports.remove(Proto::Tcp, p, k);
                    }
                }
                Mode::Conn(c) => {
                    let s = sock(&mut i.ifaces, c.ifc, c.h);
                    if s.recv_queue() > 0 || !c.established || t.o.abort_on_close {
                        // Linux: close with unread data sends RST.
                        s.abort();
                    } else {
                        s.close();
                    }
                    if let Some(b) = port.and_then(|(p, k)| i.ports.get_mut(Proto::Tcp, p, k)) {
                        // TIME_WAIT etc. conflict with binds unless SO_REUSEADDR.
                        b.reuseaddr = true;
                        b.listening = false;
                    }
                    let deadline = Some(
                        std::time::Instant::now() + std::time::Duration::from_secs(ORPHAN_TIMEOUT),
                    );
                    i.orphans.push(Orphan {
                        ifc: c.ifc,
                        h: c.h,
                        port,
                        deadline,
                    });
                }
            }
        })
    }
}
