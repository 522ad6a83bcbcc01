//! The stack: interfaces, endpoints, the port table, and the thread that
//! drives timers and links.
//!
//! All state is behind one mutex. An endpoint operation locks it, acts, polls
//! every interface (loopback until its queue drains, so a loopback exchange
//! completes inside the caller's call), scans endpoints for readiness changes,
//! unlocks, wakes the stack thread only if the next timer moved earlier than
//! the one it sleeps on, and finally runs the notify callbacks.
//!
//! After a poll only the endpoints whose smoltcp sockets woke (smoltcp's
//! one-shot wakers, re-armed at each check) or that were operated on are
//! re-checked (readiness signature: poll bits and queue sizes); the stack
//! thread and every 256th poll re-check all of them as a safety net. smoltcp
//! itself still walks every socket of an interface on each poll, so an
//! operation costs O(sockets) there (1-byte loopback round trip: a few µs
//! alone, ~170 µs with 800 idle connections on a loaded 2-core machine).
//!
//! The stack thread sleeps in `ppoll(2)` on an eventfd and the link fds, with
//! smoltcp's next deadline as timeout. It holds only a `Weak` to the stack and
//! exits when the stack is dropped.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Wake, Waker};

use abi::Errno;
use smoltcp::iface::PollResult;

use crate::icmp::{IcmpEndpoint, IcmpEp};
use crate::iface::{now_instant, Dev, Iface, IfaceInfo, RouteInfo, StackConfig};
use crate::tcp::{TcpEndpoint, TcpEp};
use crate::udp::{UdpEndpoint, UdpEp};

/// A readiness callback: called with the endpoint's current poll bits.
pub type Notify = Arc<dyn Fn(u32) + Send + Sync>;

pub(crate) enum EpKind {
    Tcp(TcpEp),
    Udp(UdpEp),
    Icmp(IcmpEp),
}

pub(crate) struct EpSlot {
    pub kind: EpKind,
    pub notify: Option<Notify>,
    pub last_sig: u64,
    /// Registered on the endpoint's smoltcp sockets: marks it dirty.
    pub waker: Waker,
    /// The uid and inode number of the socket file (/proc/net tables).
    pub owner: (u32, u64),
}

/// Endpoints whose smoltcp sockets woke (state, data or space changed) since
/// the last scan. Its own lock, taken inside the stack lock.
#[derive(Default)]
pub(crate) struct Dirty(Mutex<Vec<usize>>);

struct EpWake {
    id: usize,
    dirty: Arc<Dirty>,
}

impl Wake for EpWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.dirty
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.id);
    }
}

/// Which port space a binding is in.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Proto {
    Tcp,
    Udp,
    Icmp4,
    Icmp6,
}

/// A bound local address. `addr` is normalized (a v4-mapped address is v4);
/// `dual` is a v6 socket bound to `::` without IPV6_V6ONLY.
#[derive(Clone, Debug)]
pub(crate) struct Binding {
    pub key: u64,
    pub addr: IpAddr,
    pub dual: bool,
    pub reuseaddr: bool,
    pub reuseport: bool,
    pub listening: bool,
}

impl Binding {
    fn fams(&self) -> u8 {
        match self.addr {
            IpAddr::V4(_) => 1,
            IpAddr::V6(_) if self.dual => 3,
            IpAddr::V6(_) => 2,
        }
    }
    fn covers(&self, a: IpAddr) -> bool {
        if self.addr.is_unspecified() {
            self.fams() & if a.is_ipv4() { 1 } else { 2 } != 0
        } else {
            self.addr == a
        }
    }
    fn overlaps(&self, o: &Binding) -> bool {
        match (self.addr.is_unspecified(), o.addr.is_unspecified()) {
            (false, false) => self.addr == o.addr,
            (true, false) => self.covers(o.addr),
            (false, true) => o.covers(self.addr),
            (true, true) => self.fams() & o.fams() != 0,
        }
    }
}

/// Linux's default `ip_local_port_range`.
pub(crate) const EPHEMERAL: std::ops::RangeInclusive<u16> = 32768..=60999;

#[derive(Default)]
pub(crate) struct Ports {
    map: HashMap<(Proto, u16), Vec<Binding>>,
    next_key: u64,
    rng: u64,
}

impl Ports {
    pub fn key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    /// Whether `b` may be bound on `port` next to the existing bindings
    /// (Linux `inet_csk_bind_conflict` / `udp_lib_lport_inuse`, simplified).
    pub fn conflict(&self, proto: Proto, port: u16, b: &Binding) -> bool {
        let Some(v) = self.map.get(&(proto, port)) else {
            return false;
        };
        v.iter().any(|o| {
            if o.key == b.key || !o.overlaps(b) {
                return false;
            }
            if b.reuseport && o.reuseport {
                return false;
            }
            if b.reuseaddr && o.reuseaddr {
                if proto != Proto::Tcp {
                    return false;
                }
                if !o.listening {
                    return false;
                }
            }
            true
        })
    }

    /// Whether some socket is bound where a packet to `addr`:`port` lands.
    pub fn receiver(&self, proto: Proto, port: u16, addr: IpAddr) -> bool {
        self.map
            .get(&(proto, port))
            .is_some_and(|v| v.iter().any(|b| b.covers(addr)))
    }

    pub fn add(&mut self, proto: Proto, port: u16, b: Binding) {
        self.map.entry((proto, port)).or_default().push(b);
    }

    pub fn remove(&mut self, proto: Proto, port: u16, key: u64) {
        if let Some(v) = self.map.get_mut(&(proto, port)) {
            v.retain(|b| b.key != key);
            if v.is_empty() {
                self.map.remove(&(proto, port));
            }
        }
    }

    pub fn get_mut(&mut self, proto: Proto, port: u16, key: u64) -> Option<&mut Binding> {
        self.map
            .get_mut(&(proto, port))?
            .iter_mut()
            .find(|b| b.key == key)
    }

    /// A free ephemeral port (no binding at all) for `b`.
    pub fn ephemeral(&mut self, proto: Proto, b: &Binding) -> Option<u16> {
        if self.rng == 0 {
            self.rng = crate::iface::random_seed() | 1;
        }
        // xorshift
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let n = (*EPHEMERAL.end() - *EPHEMERAL.start()) as u64 + 1;
        let start = self.rng % n;
        for i in 0..n {
            let port = *EPHEMERAL.start() + ((start + i) % n) as u16;
            if !self.map.contains_key(&(proto, port)) {
                return Some(port);
            }
        }
        // All ports have bindings: share one where allowed.
        (0..n)
            .map(|i| *EPHEMERAL.start() + ((start + i) % n) as u16)
            .find(|&p| !self.conflict(proto, p, b))
    }
}

/// A closed TCP socket still finishing its connection (FIN handshake, RST,
/// TIME_WAIT).
pub(crate) struct Orphan {
    pub ifc: usize,
    pub h: smoltcp::iface::SocketHandle,
    pub port: Option<(u16, u64)>,
    /// When to give up on it.
    pub deadline: Option<std::time::Instant>,
}

/// One TCP or UDP socket as Linux's /proc/net tables show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SockEntry {
    pub tcp: bool,
    /// An AF_INET6 socket (listed in tcp6/udp6).
    pub v6: bool,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Linux's TCP state number (TCP_ESTABLISHED = 1, TCP_CLOSE = 7,
    /// TCP_LISTEN = 10).
    pub state: u8,
    pub tx_queue: u32,
    /// Bytes queued to read; for a listener, connections waiting in accept.
    pub rx_queue: u32,
    /// The socket file's owner and inode ([`Stack::set_owner`]).
    pub uid: u32,
    pub inode: u64,
}

pub(crate) struct Inner {
    pub ifaces: Vec<Iface>,
    pub eps: Vec<Option<EpSlot>>,
    free: Vec<usize>,
    pub ports: Ports,
    pub orphans: Vec<Orphan>,
    /// Port reservations of connections in TIME_WAIT: (port, key, until).
    pub time_wait: Vec<(u16, u64, std::time::Instant)>,
    pub base: std::time::Instant,
    pub notes: Vec<(Notify, u32)>,
    pub dirty: Arc<Dirty>,
    /// Endpoints operated on since the last scan.
    pub touched: Vec<usize>,
    /// Listening TCP endpoints: scanned on every poll, so that a connection
    /// reaching a pool socket is queued and announced even if no waker of
    /// that socket fired.
    pub listening: Vec<usize>,
    /// Polls since the last full scan.
    polls: u32,
}

impl Inner {
    pub fn now(&self) -> smoltcp::time::Instant {
        now_instant(self.base)
    }

    pub fn insert(&mut self, kind: EpKind) -> usize {
        let id = self.free.pop().unwrap_or(self.eps.len());
        let waker = Waker::from(Arc::new(EpWake {
            id,
            dirty: self.dirty.clone(),
        }));
        let slot = EpSlot {
            kind,
            notify: None,
            last_sig: u64::MAX,
            waker,
            owner: (0, 0),
        };
        self.touched.push(id);
        if id < self.eps.len() {
            self.eps[id] = Some(slot);
        } else {
            self.eps.push(Some(slot));
        }
        id
    }

    pub fn remove(&mut self, id: usize) -> Option<EpSlot> {
        let s = self.eps.get_mut(id)?.take();
        if s.is_some() {
            self.free.push(id);
        }
        s
    }

    pub fn tcp(&mut self, id: usize) -> &mut TcpEp {
        match self.eps[id].as_mut().map(|s| &mut s.kind) {
            Some(EpKind::Tcp(t)) => t,
            _ => unreachable!("endpoint kind"),
        }
    }

    pub fn udp(&mut self, id: usize) -> &mut UdpEp {
        match self.eps[id].as_mut().map(|s| &mut s.kind) {
            Some(EpKind::Udp(t)) => t,
            _ => unreachable!("endpoint kind"),
        }
    }

    pub fn icmp(&mut self, id: usize) -> &mut IcmpEp {
        match self.eps[id].as_mut().map(|s| &mut s.kind) {
            Some(EpKind::Icmp(t)) => t,
            _ => unreachable!("endpoint kind"),
        }
    }

    /// The interface packets to `dst` leave by: lo for loopback and local
    /// addresses, else the link with the longest matching route.
    pub fn route(&self, dst: IpAddr) -> Option<usize> {
        if dst.is_loopback() || self.ifaces.iter().any(|i| !i.is_lo() && i.has_addr(dst)) {
            return Some(0);
        }
        self.ifaces
            .iter()
            .enumerate()
            .skip(1)
            .filter_map(|(n, i)| i.route_prefix(dst).map(|p| (p, n)))
            .max_by_key(|&(p, n)| (p, usize::MAX - n))
            .map(|(_, n)| n)
    }

    /// Whether `a` is an address of this stack (for bind).
    pub fn is_local(&self, a: IpAddr) -> bool {
        a.is_unspecified() || self.ifaces.iter().any(|i| i.has_addr(a))
    }

    /// The interfaces a socket bound to `a` receives on.
    pub fn ifaces_for(&self, a: Option<IpAddr>) -> Vec<usize> {
        match a {
            None => (0..self.ifaces.len()).collect(),
            Some(a) if a.is_unspecified() => (0..self.ifaces.len()).collect(),
            Some(a) => (0..self.ifaces.len())
                .filter(|&i| self.ifaces[i].has_addr(a))
                .collect(),
        }
    }

    /// Polls every interface, then updates endpoints and queues notifications.
    pub fn poll_all(&mut self, full: bool) {
        let now = self.now();
        for ifc in &mut self.ifaces {
            match &mut ifc.dev {
                Dev::Lo(d) => {
                    for _ in 0..4096 {
                        let r = ifc.iface.poll(now, d, &mut ifc.sockets);
                        if d.q.is_empty() && r == PollResult::None {
                            break;
                        }
                    }
                }
                Dev::Link(d) => {
                    d.flush();
                    for _ in 0..64 {
                        if ifc.iface.poll(now, d, &mut ifc.sockets) == PollResult::None {
                            break;
                        }
                    }
                }
            }
        }
        crate::tcp::reap_orphans(self);
        // Every 256th poll re-checks everything: a safety net should a wake
        // ever be missed.
        self.polls += 1;
        let full = full || self.polls >= 256;
        if full {
            self.polls = 0;
        }
        self.scan(full);
    }

    /// Updates every endpoint (accept queues, errors) and queues a
    /// notification for each whose readiness signature changed.
    fn scan(&mut self, full: bool) {
        let mut ids = std::mem::take(&mut *self.dirty.0.lock().unwrap_or_else(|e| e.into_inner()));
        ids.append(&mut self.touched);
        ids.extend_from_slice(&self.listening);
        if full {
            ids.clear();
            ids.extend((0..self.eps.len()).filter(|&i| self.eps[i].is_some()));
        }
        ids.sort_unstable();
        ids.dedup();
        let Inner {
            ifaces,
            eps,
            ports,
            orphans,
            notes,
            ..
        } = self;
        crate::tcp::listeners(eps, ifaces, orphans, &mut ids);
        for id in ids {
            let Some(slot) = eps.get_mut(id).and_then(|s| s.as_mut()) else {
                continue;
            };
            let sig = match &mut slot.kind {
                EpKind::Tcp(t) => crate::tcp::update(t, ifaces, ports, &slot.waker),
                EpKind::Udp(u) => crate::udp::update(u, ifaces, &slot.waker),
                EpKind::Icmp(c) => crate::icmp::update(c, ifaces, &slot.waker),
            };
            if sig != slot.last_sig {
                slot.last_sig = sig;
                if let Some(n) = &slot.notify {
                    notes.push((n.clone(), sig as u32));
                }
            }
        }
    }

    /// The earliest smoltcp deadline, in microseconds since `base`.
    fn next_deadline(&mut self) -> i64 {
        let now = self.now();
        let mut next = i64::MAX;
        for ifc in &mut self.ifaces {
            if let Some(t) = ifc.iface.poll_at(now, &ifc.sockets) {
                next = next.min(t.total_micros());
            }
        }
        for o in &self.orphans {
            if let Some(d) = o.deadline {
                next = next.min(d.saturating_duration_since(self.base).as_micros() as i64);
            }
        }
        next
    }
}

/// One sandbox's network stack.
pub struct Stack {
    inner: Mutex<Inner>,
    wake: Arc<OwnedFd>,
    /// When the stack thread will next wake (µs since `base`).
    deadline: AtomicI64,
}

impl Stack {
    /// Creates the stack (loopback plus `cfg.links`) and starts its thread.
    pub fn new(cfg: StackConfig) -> io::Result<Arc<Stack>> {
        let base = std::time::Instant::now();
        let now = now_instant(base);
        let link_addrs: Vec<(IpAddr, u8)> = cfg
            .links
            .iter()
            .flat_map(|l| l.addrs.iter().copied())
            .collect();
        let mut ifaces = vec![Iface::loopback(&link_addrs, now)];
        for (n, l) in cfg.links.into_iter().enumerate() {
            ifaces.push(Iface::link(n as u32 + 2, l, now));
        }
        // SAFETY: eventfd takes no pointers; the returned fd is checked and owned.
        let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `efd` is a fresh fd that nothing else owns.
        let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(efd) });
        let st = Arc::new(Stack {
            inner: Mutex::new(Inner {
                ifaces,
                eps: Vec::new(),
                free: Vec::new(),
                ports: Ports::default(),
                orphans: Vec::new(),
                time_wait: Vec::new(),
                base,
                notes: Vec::new(),
                dirty: Arc::default(),
                touched: Vec::new(),
                listening: Vec::new(),
                polls: 0,
            }),
            wake: wake.clone(),
            deadline: AtomicI64::new(0),
        });
        let weak = Arc::downgrade(&st);
        std::thread::Builder::new()
            .name("netstack".into())
            .spawn(move || run(weak, wake))?;
        Ok(st)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` under the lock, polls, then wakes the thread if needed and runs
    /// notifications outside the lock.
    pub(crate) fn op<R>(&self, id: usize, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut g = self.lock();
        g.touched.push(id);
        let r = f(&mut g);
        g.poll_all(false);
        let next = g.next_deadline();
        let notes = std::mem::take(&mut g.notes);
        drop(g);
        if next < self.deadline.load(Ordering::Acquire).saturating_sub(500) {
            self.kick();
        }
        for (n, bits) in notes {
            n(bits);
        }
        r
    }

    /// Runs `f` under the lock without polling.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.lock())
    }

    fn kick(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd.
        unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Interfaces: lo (index 1) then the links.
    pub fn interfaces(&self) -> Vec<IfaceInfo> {
        self.with(|i| i.ifaces.iter().map(|f| f.info()).collect())
    }

    /// Routes: lo's 127.0.0.0/8 and ::1, each link's connected and gateway
    /// routes.
    pub fn routes(&self) -> Vec<RouteInfo> {
        self.with(|i| {
            let mut v = Vec::new();
            for f in &i.ifaces {
                f.route_infos(&mut v);
            }
            v
        })
    }

    /// The TCP and UDP sockets as /proc/net/{tcp,udp}[6] list them: TCP
    /// listeners and connections, bound UDP sockets, by endpoint number.
    pub fn sockets(&self) -> Vec<SockEntry> {
        self.with(|i| {
            let Inner { eps, ifaces, .. } = i;
            let mut v = Vec::new();
            for s in eps.iter().flatten() {
                let e = match &s.kind {
                    EpKind::Tcp(t) => crate::tcp::entry(t, ifaces),
                    EpKind::Udp(u) => crate::udp::entry(u, ifaces),
                    _ => None,
                };
                v.extend(e.map(|e| SockEntry {
                    uid: s.owner.0,
                    inode: s.owner.1,
                    ..e
                }));
                if let EpKind::Tcp(t) = &s.kind {
                    v.extend(crate::tcp::queued(t, ifaces));
                }
            }
            v
        })
    }

    /// An AF_INET (`v6 = false`) or AF_INET6 SOCK_STREAM endpoint.
    pub fn tcp(self: &Arc<Self>, v6: bool) -> TcpEndpoint {
        TcpEndpoint::new(self.clone(), v6)
    }

    /// An AF_INET/AF_INET6 SOCK_DGRAM endpoint.
    pub fn udp(self: &Arc<Self>, v6: bool) -> UdpEndpoint {
        UdpEndpoint::new(self.clone(), v6)
    }

    /// A ping socket (SOCK_DGRAM, IPPROTO_ICMP / IPPROTO_ICMPV6).
    pub fn icmp(self: &Arc<Self>, v6: bool) -> IcmpEndpoint {
        IcmpEndpoint::new(self.clone(), v6)
    }

    /// Records the uid and inode number of endpoint `id`'s socket file.
    pub(crate) fn set_owner(&self, id: usize, uid: u32, ino: u64) {
        self.with(|i| {
            if let Some(s) = i.eps[id].as_mut() {
                s.owner = (uid, ino);
            }
        })
    }

    pub(crate) fn set_notify(&self, id: usize, f: Notify) {
        self.with(|i| {
            if let Some(s) = i.eps[id].as_mut() {
                s.notify = Some(f);
            }
        })
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.kick();
    }
}

fn run(weak: Weak<Stack>, wake: Arc<OwnedFd>) {
    let mut fds: Vec<libc::pollfd> = Vec::new();
    loop {
        let mut timeout_us;
        {
            let Some(st) = weak.upgrade() else { return };
            let mut g = st.lock();
            for f in &mut g.ifaces {
                if let Dev::Link(d) = &mut f.dev {
                    d.read_frames();
                }
            }
            // The thread runs rarely (timers, link input): check everything.
            g.poll_all(true);
            let next = g.next_deadline();
            let now = g.now().total_micros();
            st.deadline.store(next, Ordering::Release);
            fds.clear();
            fds.push(libc::pollfd {
                fd: wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            // A link with frames stuck behind ENOBUFS is retried soon.
            let mut retry = false;
            for f in &g.ifaces {
                if let Dev::Link(d) = &f.dev {
                    retry |= d.tx_nobufs && !d.txq.is_empty();
                    fds.push(libc::pollfd {
                        fd: d.dev.fd(),
                        events: d.poll_events(),
                        revents: 0,
                    });
                }
            }
            let notes = std::mem::take(&mut g.notes);
            drop(g);
            for (n, bits) in notes {
                n(bits);
            }
            timeout_us = if next == i64::MAX {
                -1
            } else {
                (next - now).max(0)
            };
            if retry && !(0..=1000).contains(&timeout_us) {
                timeout_us = 1000;
            }
        }
        let ts = libc::timespec {
            tv_sec: (timeout_us / 1_000_000) as libc::time_t,
            tv_nsec: ((timeout_us % 1_000_000) * 1000) as libc::c_long,
        };
        let tsp = if timeout_us < 0 {
            std::ptr::null()
        } else {
            &ts as *const libc::timespec
        };
        // SAFETY: `fds` is a valid array of `fds.len()` pollfds; `tsp` is null or
        // points at `ts`, alive for the call.
        let n = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                tsp,
                std::ptr::null(),
            )
        };
        if n > 0 && fds[0].revents != 0 {
            let mut v: u64 = 0;
            // SAFETY: reads 8 bytes into a valid u64 from our eventfd.
            unsafe { libc::read(wake.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
        }
        if n > 0
            && fds[1..]
                .iter()
                .any(|p| p.revents & (libc::POLLNVAL | libc::POLLERR | libc::POLLHUP) != 0)
        {
            // A link fd is broken: avoid spinning on it.
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Maps a v4-mapped IPv6 address to IPv4; other addresses unchanged.
pub(crate) fn unmap(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => a,
        },
        a => a,
    }
}

/// An address as seen by a socket of family `v6` (v4 addresses v4-mapped).
pub(crate) fn for_family(a: SocketAddr, v6: bool) -> SocketAddr {
    match (a, v6) {
        (SocketAddr::V4(s), true) => SocketAddr::new(IpAddr::V6(s.ip().to_ipv6_mapped()), s.port()),
        _ => a,
    }
}

/// The unspecified address of a family.
pub(crate) fn unspecified(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// Checks a user-supplied address against the socket family and normalizes
/// it (v4-mapped -> v4). `v6only` rejects v4-mapped addresses.
pub(crate) fn check_addr(a: SocketAddr, v6: bool, v6only: bool) -> Result<SocketAddr, Errno> {
    match (a, v6) {
        (SocketAddr::V4(_), false) => Ok(a),
        (SocketAddr::V6(_), false) | (SocketAddr::V4(_), true) => Err(Errno::EAFNOSUPPORT),
        (SocketAddr::V6(s), true) => {
            let ip = unmap(IpAddr::V6(*s.ip()));
            if ip.is_ipv4() && v6only {
                return Err(Errno::ENETUNREACH);
            }
            Ok(SocketAddr::new(ip, s.port()))
        }
    }
}
