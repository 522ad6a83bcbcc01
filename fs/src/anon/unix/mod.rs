//! AF_UNIX sockets, entirely in the sentry (Linux's net/unix/af_unix.c).
//!
//! A [`UnixSocket`] is in one [`State`]: unconnected (perhaps bound),
//! listening (stream/seqpacket, with a queue of connections waiting for
//! accept(2)), connected (stream/seqpacket: one end of a [`stream::Pair`]) or,
//! for SOCK_DGRAM, with a default peer. Names live in the sandbox's
//! [`Namespace`]: abstract names (leading NUL; autobind picks five hex
//! digits) and path names, which bind(2) creates as S_IFSOCK nodes and which
//! are found again by the node's identity, so unlinking the file unbinds
//! the name as in Linux.
//!
//! Datagram sockets have their own receive queue ([`dgram`]); what a sender
//! has queued counts against its SO_SNDBUF, and a receiver holds at most
//! `MAX_DGRAM_QLEN` + 1 messages from senders other than its peer. Senders
//! waiting for room (and connectors waiting for a full backlog) register
//! their wait queue on the receiver's `peer_wait`, which a receive or accept
//! wakes.

mod dgram;
mod names;
mod stream;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use abi::Errno;

pub use self::names::{Key, Namespace};
use self::stream::Conn;
pub use self::stream::{RCV_SHUTDOWN, SEND_SHUTDOWN};
use crate::file::OpenFile;
use crate::socket::{self, Control, SockAddr, SockCx, Socket};
pub use crate::socket::{PeerCred, Recv, Rights, SCM_MAX_FD};
use crate::waiter::{WaitQueue, EVENT_HUP, EVENT_IN, EVENT_OUT, EVENT_RDHUP};
use crate::UserIo;

/// Linux's default net.core.wmem_default / rmem_default.
pub const DEFAULT_BUF: usize = 212_992;
/// net.core.wmem_max / rmem_max: the largest value SO_SNDBUF/SO_RCVBUF take
/// (before doubling) from an unprivileged task.
pub const MAX_BUF: usize = 212_992;
pub const MIN_SNDBUF: usize = 4608;
pub const MIN_RCVBUF: usize = 2304;
/// net.unix.max_dgram_qlen.
pub const MAX_DGRAM_QLEN: usize = 10;

/// FIONREAD (SIOCINQ): bytes available to read.
const FIONREAD: u32 = 0x541b;

const READABLE: u32 = EVENT_IN | libc::POLLRDNORM as u32;
const WRITABLE: u32 = EVENT_OUT | libc::POLLWRNORM as u32 | libc::POLLWRBAND as u32;

/// What SO_PEERCRED reports without a peer (Linux: pid 0, uid/gid -1).
const NO_CRED: PeerCred = PeerCred {
    pid: 0,
    uid: u32::MAX,
    gid: u32::MAX,
};

enum State {
    Unconnected,
    /// listen(2) was called (stream/seqpacket).
    Listening {
        /// At most `backlog` + 1 connections wait (Linux's unix_recvq_full).
        backlog: usize,
        /// Connected server ends, for accept(2).
        pending: VecDeque<Arc<UnixSocket>>,
    },
    /// Stream/seqpacket: connected (or accepted).
    Connected {
        conn: Conn,
        peer_name: Vec<u8>,
    },
    /// SOCK_DGRAM with a default destination (connect(2), socketpair(2)).
    Peer {
        sock: Weak<UnixSocket>,
        name: Vec<u8>,
    },
}

struct Inner {
    state: State,
    /// The bound name (sun_path's bytes; empty: unnamed).
    name: Vec<u8>,
    /// How the name is registered in the name space (the accepted socket
    /// shares its listener's name without owning it).
    key: Option<Key>,
    /// Shutdown bits of sockets without a connection.
    shutdown: u8,
    /// The credentials of the binding task, which a listening socket gives its
    /// clients as SO_PEERCRED.
    own_cred: PeerCred,
    /// SO_PEERCRED of a datagram socket (socketpair(2)).
    peer_cred: Option<PeerCred>,
}

/// An AF_UNIX socket.
pub struct UnixSocket {
    ty: i32,
    ns: Arc<Namespace>,
    me: Weak<UnixSocket>,
    wq: Arc<WaitQueue>,
    inner: Mutex<Inner>,
    /// SOCK_DGRAM: the receive queue.
    dq: Mutex<dgram::Queue>,
    /// Wait queues of senders/connectors waiting for room here.
    peer_wait: Mutex<Vec<Weak<WaitQueue>>>,
    /// SOCK_DGRAM: bytes this socket has queued at receivers.
    wmem: AtomicUsize,
    sndbuf: AtomicUsize,
    rcvbuf: AtomicUsize,
    passcred: AtomicBool,
    /// Generic SOL_SOCKET flags sock_setsockopt keeps for every family
    /// (SO_REUSEADDR, SO_KEEPALIVE, ...), as bits `1 << optname`: read back,
    /// not acted on (as on Linux for AF_UNIX).
    sockflags: std::sync::atomic::AtomicU64,
    closed: AtomicBool,
}

/// The SOL_SOCKET boolean options Linux's sock_setsockopt accepts on any
/// socket and that AF_UNIX only stores.
const GENERIC_FLAGS: [i32; 5] = [
    libc::SO_REUSEADDR,
    libc::SO_KEEPALIVE,
    libc::SO_BROADCAST,
    libc::SO_OOBINLINE,
    libc::SO_DONTROUTE,
];

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The base type socket(2) makes for AF_UNIX type `ty` and protocol:
/// EPROTONOSUPPORT / ESOCKTNOSUPPORT as Linux's unix_create.
pub fn socket_type(ty: i32, protocol: i32) -> Result<i32, Errno> {
    if protocol != 0 && protocol != libc::PF_UNIX {
        return Err(Errno::EPROTONOSUPPORT);
    }
    match ty {
        libc::SOCK_STREAM | libc::SOCK_SEQPACKET | libc::SOCK_DGRAM => Ok(ty),
        // BSD's AF_UNIX SOCK_RAW: Linux makes it a datagram socket.
        libc::SOCK_RAW => Ok(libc::SOCK_DGRAM),
        _ => Err(Errno::ESOCKTNOSUPPORT),
    }
}

/// socket(2): a new unconnected socket of type `ty` (from [`socket_type`]) in
/// the sandbox's name space.
pub fn new_socket(ty: i32, flags: i32, cred: PeerCred, uid: u32, gid: u32) -> Arc<OpenFile> {
    new_socket_in(&Namespace::sandbox(), ty, flags, cred, uid, gid)
}

/// [`new_socket`] in the name space `ns`.
pub fn new_socket_in(
    ns: &Arc<Namespace>,
    ty: i32,
    flags: i32,
    cred: PeerCred,
    uid: u32,
    gid: u32,
) -> Arc<OpenFile> {
    socket::new_file(UnixSocket::new(ty, ns, cred), flags, cred, uid, gid)
}

/// socketpair(2): a connected pair of type `ty` (SOCK_STREAM, SOCK_SEQPACKET
/// or SOCK_DGRAM), `flags` holding O_NONBLOCK for both descriptions.
pub fn new_pair(ty: i32, flags: i32, cred: PeerCred, uid: u32, gid: u32) -> [Arc<OpenFile>; 2] {
    let ns = Namespace::sandbox();
    let a = UnixSocket::new(ty, &ns, cred);
    let b = UnixSocket::new(ty, &ns, cred);
    if ty == libc::SOCK_DGRAM {
        for (x, y) in [(&a, &b), (&b, &a)] {
            let mut i = x.lock();
            i.state = State::Peer {
                sock: Arc::downgrade(y),
                name: Vec::new(),
            };
            i.peer_cred = Some(cred);
        }
    } else {
        let [ca, cb] = stream::connect(ty, [a.wq.clone(), b.wq.clone()], [cred, cred]);
        for (x, c) in [(&a, ca), (&b, cb)] {
            x.lock().state = State::Connected {
                conn: c,
                peer_name: Vec::new(),
            };
        }
    }
    [a, b].map(|s| socket::new_file(s, flags, cred, uid, gid))
}

impl UnixSocket {
    fn new(ty: i32, ns: &Arc<Namespace>, cred: PeerCred) -> Arc<UnixSocket> {
        Arc::new_cyclic(|me| UnixSocket {
            ty,
            ns: ns.clone(),
            me: me.clone(),
            wq: Arc::new(WaitQueue::default()),
            inner: Mutex::new(Inner {
                state: State::Unconnected,
                name: Vec::new(),
                key: None,
                shutdown: 0,
                own_cred: cred,
                peer_cred: None,
            }),
            dq: Mutex::new(dgram::Queue::default()),
            peer_wait: Mutex::new(Vec::new()),
            wmem: AtomicUsize::new(0),
            sndbuf: AtomicUsize::new(DEFAULT_BUF),
            rcvbuf: AtomicUsize::new(DEFAULT_BUF),
            passcred: AtomicBool::new(false),
            sockflags: std::sync::atomic::AtomicU64::new(0),
            closed: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    fn arc(&self) -> Arc<UnixSocket> {
        // Every operation runs on a socket some Arc holds.
        self.me.upgrade().expect("unix socket used after drop")
    }

    fn conn(&self) -> Option<Conn> {
        match &self.lock().state {
            State::Connected { conn, .. } => Some(conn.clone()),
            _ => None,
        }
    }

    fn sndbuf(&self) -> usize {
        self.sndbuf.load(Ordering::Relaxed)
    }

    fn passcred(&self) -> bool {
        self.passcred.load(Ordering::Relaxed)
    }

    /// Wakes the senders and connectors waiting for room here.
    fn wake_peer_waiters(&self) {
        let waiters = std::mem::take(&mut *lock(&self.peer_wait));
        for q in waiters.iter().filter_map(Weak::upgrade) {
            q.notify(WRITABLE);
        }
    }

    /// Registers `q` to be woken when there is room here.
    fn add_peer_waiter(&self, q: &Arc<WaitQueue>) {
        let mut w = lock(&self.peer_wait);
        w.retain(|x| x.strong_count() > 0);
        if !w.iter().any(|x| std::ptr::eq(x.as_ptr(), Arc::as_ptr(q))) {
            w.push(Arc::downgrade(q));
        }
    }

    /// Binds an abstract name of five hex digits unless bound (Linux's
    /// unix_autobind).
    fn autobind(&self) -> Result<(), Errno> {
        let mut i = self.lock();
        if !i.name.is_empty() {
            return Ok(());
        }
        let name = self.ns.autobind(&self.arc())?;
        i.key = Some(Key::Abstract(name[1..].to_vec()));
        i.name = name;
        Ok(())
    }

    /// Autobinds a socket with SO_PASSCRED that sends or connects unnamed
    /// (so its peer can tell who wrote).
    fn autobind_for_passcred(&self) -> Result<(), Errno> {
        if self.passcred() {
            self.autobind()?;
        }
        Ok(())
    }

    /// The socket bound to `name`: ENOENT/EACCES from the path walk,
    /// ECONNREFUSED when nothing is bound there.
    fn find(&self, cx: &SockCx, name: &[u8]) -> Result<Arc<UnixSocket>, Errno> {
        let key = match name.first() {
            None => return Err(Errno::EINVAL),
            Some(0) => Key::Abstract(name[1..].to_vec()),
            Some(_) => Key::Path(cx.paths.lookup(name)?),
        };
        match self.ns.find(&key) {
            Some(s) if !s.closed.load(Ordering::Acquire) => Ok(s),
            _ => Err(Errno::ECONNREFUSED),
        }
    }

    /// The name a sockaddr for connect/sendto gives: EINVAL unless AF_UNIX
    /// with at least one byte of sun_path.
    fn dest_name(addr: &SockAddr) -> Result<&[u8], Errno> {
        match addr {
            SockAddr::Unix(n) if !n.is_empty() => Ok(n),
            _ => Err(Errno::EINVAL),
        }
    }

    fn stream_connect(&self, cx: &SockCx, addr: &SockAddr) -> Result<(), Errno> {
        let name = Self::dest_name(addr)?;
        self.autobind_for_passcred()?;
        let target = self.find(cx, name)?;
        if target.ty != self.ty {
            return Err(Errno::EPROTOTYPE);
        }
        if std::ptr::eq(Arc::as_ptr(&target), self) {
            // Not listening, or it would not be connecting.
            return Err(match self.lock().state {
                State::Connected { .. } => Errno::EISCONN,
                State::Unconnected => Errno::ECONNREFUSED,
                _ => Errno::EINVAL,
            });
        }
        // Both sockets are locked, in address order: two sockets may be
        // connecting to each other.
        let (mut me, mut t) = if std::ptr::from_ref(self) < Arc::as_ptr(&target) {
            let me = self.lock();
            (me, target.lock())
        } else {
            let t = target.lock();
            (self.lock(), t)
        };
        match me.state {
            State::Unconnected => {}
            State::Connected { .. } => return Err(Errno::EISCONN),
            _ => return Err(Errno::EINVAL),
        }
        let my_name = me.name.clone();
        {
            let listen_cred = t.own_cred;
            let target_name = t.name.clone();
            let shut = t.shutdown & RCV_SHUTDOWN != 0;
            let State::Listening { backlog, pending } = &mut t.state else {
                return Err(Errno::ECONNREFUSED);
            };
            if target.closed.load(Ordering::Acquire) || shut {
                return Err(Errno::ECONNREFUSED);
            }
            if pending.len() > *backlog {
                target.add_peer_waiter(&self.wq);
                return Err(Errno::EAGAIN);
            }
            let server = UnixSocket::new(self.ty, &self.ns, listen_cred);
            // The new socket inherits the listener's options (Linux copies
            // them when the connection is made).
            server.sndbuf.store(target.sndbuf(), Ordering::Relaxed);
            server.passcred.store(target.passcred(), Ordering::Relaxed);
            let [client_end, server_end] = stream::connect(
                self.ty,
                [self.wq.clone(), server.wq.clone()],
                [listen_cred, cx.cred],
            );
            {
                let mut s = server.lock();
                s.name = target_name.clone();
                s.state = State::Connected {
                    conn: server_end,
                    peer_name: my_name,
                };
            }
            pending.push_back(server);
            me.state = State::Connected {
                conn: client_end,
                peer_name: target_name,
            };
        }
        drop(t);
        drop(me);
        target.wq.notify(READABLE);
        Ok(())
    }

    fn dgram_connect(&self, cx: &SockCx, addr: &SockAddr) -> Result<(), Errno> {
        if *addr == SockAddr::Unspec {
            let mut me = self.lock();
            if let State::Peer { .. } = me.state {
                me.state = State::Unconnected;
                me.peer_cred = None;
            }
            return Ok(());
        }
        let name = Self::dest_name(addr)?;
        self.autobind_for_passcred()?;
        let target = self.find(cx, name)?;
        if target.ty != self.ty {
            return Err(Errno::EPROTOTYPE);
        }
        if !target.may_receive_from(self) {
            return Err(Errno::EPERM);
        }
        let tname = target.lock().name.clone();
        let mut me = self.lock();
        me.state = State::Peer {
            sock: Arc::downgrade(&target),
            name: tname,
        };
        me.peer_cred = None;
        drop(me);
        self.wq.notify(WRITABLE);
        Ok(())
    }

    /// Linux's unix_may_send: a datagram socket connected elsewhere takes
    /// nothing from `from`.
    fn may_receive_from(&self, from: &UnixSocket) -> bool {
        match &self.lock().state {
            State::Peer { sock, .. } => std::ptr::eq(sock.as_ptr(), from),
            _ => true,
        }
    }

    /// The last file of the socket closed, or (`embryo`) its listener closed
    /// before it was accepted.
    fn close(&self, embryo: bool) {
        self.closed.store(true, Ordering::Release);
        let (key, state) = {
            let mut i = self.lock();
            i.shutdown = stream::SHUTDOWN_MASK;
            (
                i.key.take(),
                std::mem::replace(&mut i.state, State::Unconnected),
            )
        };
        if let Some(k) = key {
            self.ns.remove(&k, self);
        }
        match state {
            State::Listening { pending, .. } => {
                for s in pending {
                    s.close(true);
                }
            }
            State::Connected { conn, .. } => conn.close(embryo),
            State::Peer { sock, .. } => {
                if let Some(p) = sock.upgrade() {
                    p.wq.notify(WRITABLE);
                }
            }
            State::Unconnected => {}
        }
        // Queued messages (and the files they carry) go after the locks; their
        // senders get their buffer space back.
        let dropped = std::mem::take(&mut lock(&self.dq).msgs);
        dgram::release(dropped);
        self.wake_peer_waiters();
        self.wq.notify(crate::waiter::EVENT_ALL);
    }
}

impl Socket for UnixSocket {
    fn family(&self) -> i32 {
        libc::AF_UNIX
    }
    fn sock_type(&self) -> i32 {
        self.ty
    }
    fn wait_queue(&self) -> &WaitQueue {
        &self.wq
    }
    fn readiness(&self) -> u32 {
        if self.ty == libc::SOCK_DGRAM {
            return self.dgram_poll();
        }
        let i = self.lock();
        match &i.state {
            State::Connected { conn, .. } => conn.poll(self.sndbuf()),
            State::Listening { pending, .. } => {
                if pending.is_empty() {
                    0
                } else {
                    READABLE
                }
            }
            _ => {
                // unix_poll: an unconnected stream socket is hung up and
                // writable.
                let mut r = EVENT_HUP | WRITABLE;
                if i.shutdown & RCV_SHUTDOWN != 0 {
                    r |= EVENT_RDHUP | READABLE;
                }
                r
            }
        }
    }

    fn bind(&self, cx: &SockCx, addr: &SockAddr) -> Result<(), Errno> {
        let SockAddr::Unix(name) = addr else {
            return Err(Errno::EINVAL);
        };
        if name.is_empty() {
            self.autobind()?;
            self.lock().own_cred = cx.cred;
            return Ok(());
        }
        if name[0] == 0 {
            let mut i = self.lock();
            if !i.name.is_empty() {
                return Err(Errno::EINVAL);
            }
            let key = Key::Abstract(name[1..].to_vec());
            self.ns.insert(key.clone(), &self.arc())?;
            i.key = Some(key);
            i.name = name.clone();
            i.own_cred = cx.cred;
            return Ok(());
        }
        // Linux creates the node first: an existing file is EADDRINUSE even
        // for a bound socket.
        let node = cx.paths.create(name)?;
        let mut i = self.lock();
        if !i.name.is_empty() {
            drop(i);
            cx.paths.remove(name);
            return Err(Errno::EINVAL);
        }
        let key = Key::Path(node);
        if let Err(e) = self.ns.insert(key.clone(), &self.arc()) {
            drop(i);
            cx.paths.remove(name);
            return Err(e);
        }
        i.key = Some(key);
        i.name = name.clone();
        i.own_cred = cx.cred;
        Ok(())
    }

    fn listen(&self, backlog: i32) -> Result<(), Errno> {
        if self.ty == libc::SOCK_DGRAM {
            return Err(Errno::EOPNOTSUPP);
        }
        let backlog = backlog.max(0) as usize;
        {
            let mut i = self.lock();
            if i.name.is_empty() {
                return Err(Errno::EINVAL);
            }
            match &mut i.state {
                State::Unconnected => {
                    i.state = State::Listening {
                        backlog,
                        pending: VecDeque::new(),
                    }
                }
                State::Listening { backlog: b, .. } => *b = backlog,
                _ => return Err(Errno::EINVAL),
            }
        }
        self.wake_peer_waiters();
        Ok(())
    }

    fn accept(&self, cx: &SockCx, flags: i32) -> Result<(Arc<OpenFile>, SockAddr), Errno> {
        if self.ty == libc::SOCK_DGRAM {
            return Err(Errno::EOPNOTSUPP);
        }
        let s = {
            let mut i = self.lock();
            let State::Listening { pending, .. } = &mut i.state else {
                return Err(Errno::EINVAL);
            };
            pending.pop_front().ok_or(Errno::EAGAIN)?
        };
        self.wake_peer_waiters();
        let peer = match &s.lock().state {
            State::Connected { peer_name, .. } => peer_name.clone(),
            _ => Vec::new(),
        };
        let f = socket::new_file(s, flags, cx.cred, cx.fsuid, cx.fsgid);
        Ok((f, SockAddr::Unix(peer)))
    }

    fn connect(&self, cx: &SockCx, addr: &SockAddr) -> Result<(), Errno> {
        if self.ty == libc::SOCK_DGRAM {
            self.dgram_connect(cx, addr)
        } else {
            self.stream_connect(cx, addr)
        }
    }

    fn send(
        &self,
        cx: &SockCx,
        data: &[u8],
        to: Option<&SockAddr>,
        ctl: &mut Control,
        _flags: i32,
    ) -> Result<usize, Errno> {
        if self.ty == libc::SOCK_DGRAM {
            return self.dgram_send(cx, data, to, ctl);
        }
        let conn = self.conn();
        if to.is_some() && self.ty == libc::SOCK_STREAM {
            // unix_stream_sendmsg takes no address.
            return Err(if conn.is_some() {
                Errno::EISCONN
            } else {
                Errno::EOPNOTSUPP
            });
        }
        let conn = conn.ok_or(Errno::ENOTCONN)?;
        let creds = ctl.creds.unwrap_or(cx.cred);
        conn.send(data, &mut ctl.rights, creds, self.sndbuf())
    }

    fn recv(&self, buf: &mut [u8], flags: i32) -> Result<Recv, Errno> {
        let peek = flags & libc::MSG_PEEK != 0;
        if self.ty == libc::SOCK_DGRAM {
            return self.dgram_recv(buf, peek, flags & libc::MSG_DONTWAIT != 0);
        }
        let (conn, peer_name) = match &self.lock().state {
            State::Connected { conn, peer_name } => (Some(conn.clone()), peer_name.clone()),
            _ => (None, Vec::new()),
        };
        let Some(conn) = conn else {
            // unix_stream_read_generic: EINVAL; unix_seqpacket_recvmsg: ENOTCONN.
            return Err(if self.ty == libc::SOCK_STREAM {
                Errno::EINVAL
            } else {
                Errno::ENOTCONN
            });
        };
        let passcred = self.passcred();
        let mut r = conn.recv(buf, peek, passcred)?;
        if !passcred {
            r.creds = None;
        }
        // The sender's name, as unix_copy_addr gives it (none if unnamed).
        if r.copied > 0 && !peer_name.is_empty() {
            r.from = Some(SockAddr::Unix(peer_name));
        }
        Ok(r)
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        if !(libc::SHUT_RD..=libc::SHUT_RDWR).contains(&how) {
            return Err(Errno::EINVAL);
        }
        let mode = (how + 1) as u8;
        if self.ty == libc::SOCK_DGRAM {
            lock(&self.dq).shutdown |= mode;
            self.wq.notify(crate::waiter::EVENT_ALL);
            return Ok(());
        }
        match self.conn() {
            Some(c) => c.shut(mode),
            None => {
                self.lock().shutdown |= mode;
                self.wq.notify(crate::waiter::EVENT_ALL);
            }
        }
        Ok(())
    }

    fn sockname(&self) -> SockAddr {
        SockAddr::Unix(self.lock().name.clone())
    }

    fn peername(&self) -> Result<SockAddr, Errno> {
        match &self.lock().state {
            State::Connected { peer_name, .. } => Ok(SockAddr::Unix(peer_name.clone())),
            State::Peer { name, .. } => Ok(SockAddr::Unix(name.clone())),
            _ => Err(Errno::ENOTCONN),
        }
    }

    fn take_error(&self) -> Option<Errno> {
        self.conn().and_then(|c| c.take_error())
    }

    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        if level != libc::SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        let int = |v: i32| v.to_le_bytes().to_vec();
        Ok(match name {
            libc::SO_SNDBUF => int(self.sndbuf() as i32),
            libc::SO_RCVBUF => int(self.rcvbuf.load(Ordering::Relaxed) as i32),
            libc::SO_PASSCRED => int(self.passcred() as i32),
            n if GENERIC_FLAGS.contains(&n) => {
                int((self.sockflags.load(Ordering::Relaxed) >> n) as i32 & 1)
            }
            libc::SO_ACCEPTCONN => int(matches!(self.lock().state, State::Listening { .. }) as i32),
            libc::SO_PEERCRED => {
                let c = {
                    let i = self.lock();
                    match &i.state {
                        State::Connected { conn, .. } => conn.peer_cred(),
                        // unix_listen: a listener reports its own.
                        State::Listening { .. } => i.own_cred,
                        _ => i.peer_cred.unwrap_or(NO_CRED),
                    }
                };
                let mut v = Vec::with_capacity(12);
                v.extend_from_slice(&c.pid.to_le_bytes());
                v.extend_from_slice(&c.uid.to_le_bytes());
                v.extend_from_slice(&c.gid.to_le_bytes());
                v
            }
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        if level != libc::SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        if val.len() < 4 {
            return Err(Errno::EINVAL);
        }
        let v = i32::from_le_bytes(val[..4].try_into().unwrap());
        // SO_SNDBUF/SO_RCVBUF: Linux doubles the value (bookkeeping overhead).
        let doubled = (v.max(0) as usize).min(MAX_BUF) * 2;
        match name {
            libc::SO_SNDBUF => {
                self.sndbuf
                    .store(doubled.max(MIN_SNDBUF), Ordering::Relaxed);
                if let Some(c) = self.conn() {
                    c.notify_writable();
                }
                self.wq.notify(WRITABLE);
            }
            libc::SO_RCVBUF => self
                .rcvbuf
                .store(doubled.max(MIN_RCVBUF), Ordering::Relaxed),
            libc::SO_PASSCRED => self.passcred.store(v != 0, Ordering::Relaxed),
            n if GENERIC_FLAGS.contains(&n) => {
                if v != 0 {
                    self.sockflags.fetch_or(1 << n, Ordering::Relaxed);
                } else {
                    self.sockflags.fetch_and(!(1 << n), Ordering::Relaxed);
                }
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    fn ioctl(&self, io: &dyn UserIo, cmd: u32, arg: u64) -> Result<u64, Errno> {
        match cmd {
            FIONREAD => {
                let n = if self.ty == libc::SOCK_DGRAM {
                    self.dgram_inq()
                } else {
                    match &self.lock().state {
                        State::Connected { conn, .. } => conn.inq(),
                        State::Listening { .. } => return Err(Errno::EINVAL),
                        _ => 0,
                    }
                };
                let n = n.min(i32::MAX as usize) as i32;
                io.copy_out(arg, &n.to_le_bytes())?;
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }

    fn release(&self) {
        self.close(false);
    }
}
