use std::collections::HashMap;
use std::sync::Mutex;

use super::*;
use crate::socket::{as_socket, NodeKey, UnixPaths};
use crate::waiter::{EVENT_HUP, EVENT_IN};

/// A file system of socket nodes only.
#[derive(Default)]
struct FakePaths {
    nodes: Mutex<HashMap<Vec<u8>, NodeKey>>,
    next: Mutex<u64>,
}

impl UnixPaths for FakePaths {
    fn create(&self, path: &[u8]) -> Result<NodeKey, Errno> {
        let mut n = self.nodes.lock().unwrap();
        if n.contains_key(path) {
            return Err(Errno::EADDRINUSE);
        }
        let mut next = self.next.lock().unwrap();
        *next += 1;
        n.insert(path.to_vec(), (1, *next));
        Ok((1, *next))
    }
    fn lookup(&self, path: &[u8]) -> Result<NodeKey, Errno> {
        self.nodes
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .ok_or(Errno::ENOENT)
    }
    fn remove(&self, path: &[u8]) {
        self.nodes.lock().unwrap().remove(path);
    }
}

fn cred(pid: i32) -> PeerCred {
    PeerCred {
        pid,
        uid: 1000,
        gid: 1000,
    }
}

fn cx<'a>(paths: &'a dyn UnixPaths, pid: i32) -> SockCx<'a> {
    SockCx {
        cred: cred(pid),
        fsuid: 0,
        fsgid: 0,
        paths,
        nonblock: true,
    }
}

fn pair(ty: i32) -> [Arc<OpenFile>; 2] {
    new_pair(ty, libc::O_NONBLOCK, PeerCred::default(), 0, 0)
}

fn sock(ns: &Arc<Namespace>, ty: i32) -> (Arc<OpenFile>, Arc<UnixSocket>) {
    let s = UnixSocket::new(ty, ns, cred(1));
    let f = socket::new_file(s.clone(), libc::O_NONBLOCK, cred(1), 0, 0);
    (f, s)
}

fn unix(n: &[u8]) -> SockAddr {
    SockAddr::Unix(n.to_vec())
}

#[test]
fn stream_round_trip_eof_and_epipe() {
    let [a, b] = pair(libc::SOCK_STREAM);
    let (sa, sb) = (as_socket(&a).unwrap(), as_socket(&b).unwrap());
    assert_eq!(a.write(b"hello"), Ok(5));
    assert_eq!(a.write(b" world"), Ok(6));
    let mut buf = [0u8; 32];
    assert_eq!(
        sb.recv(&mut buf[..3], libc::MSG_PEEK | libc::MSG_DONTWAIT)
            .unwrap()
            .copied,
        3
    );
    assert_eq!(b.read(&mut buf), Ok(11));
    assert_eq!(&buf[..11], b"hello world");
    assert_eq!(b.read(&mut buf), Err(Errno::EAGAIN));
    assert_eq!(sb.readiness() & EVENT_IN, 0);
    sa.shutdown(libc::SHUT_WR).unwrap();
    assert_eq!(b.read(&mut buf), Ok(0));
    assert_eq!(a.write(b"x"), Err(Errno::EPIPE));
    assert_eq!(b.write(b"y"), Ok(1));
    drop(sa);
    drop(a);
    assert_eq!(b.write(b"z"), Err(Errno::EPIPE));
    assert_ne!(sb.readiness() & EVENT_HUP, 0);
}

#[test]
fn rights_travel_and_queued_sockets_close() {
    let p = FakePaths::default();
    let [a, b] = pair(libc::SOCK_SEQPACKET);
    let (sa, sb) = (as_socket(&a).unwrap(), as_socket(&b).unwrap());
    // Send a's own file to b: closing b later drops it from b's queue,
    // which closes a (same pair) without deadlocking.
    let mut ctl = Control {
        rights: Some(vec![a.clone()]),
        creds: None,
    };
    assert_eq!(sa.send(&cx(&p, 1), b"m", None, &mut ctl, 0), Ok(1));
    let mut buf = [0u8; 4];
    let r = sb
        .recv(&mut buf, libc::MSG_PEEK | libc::MSG_DONTWAIT)
        .unwrap();
    assert_eq!(r.rights.as_ref().map(|v| v.len()), Some(1));
    drop(r);
    drop(sa);
    drop(a);
    drop(sb);
    drop(b);
    let [c, d] = pair(libc::SOCK_STREAM);
    let (sc, sd) = (as_socket(&c).unwrap(), as_socket(&d).unwrap());
    let none = || Control::default();
    assert_eq!(sc.send(&cx(&p, 1), b"ab", None, &mut none(), 0), Ok(2));
    let mut ctl = Control {
        rights: Some(vec![c.clone()]),
        creds: None,
    };
    assert_eq!(sc.send(&cx(&p, 1), b"cd", None, &mut ctl, 0), Ok(2));
    assert_eq!(sc.send(&cx(&p, 1), b"ef", None, &mut none(), 0), Ok(2));
    // A read stops after the bytes that carry files.
    let mut buf = [0u8; 8];
    let r = sd.recv(&mut buf, libc::MSG_DONTWAIT).unwrap();
    assert_eq!((r.copied, r.rights.is_some()), (4, true));
    let r = sd.recv(&mut buf, libc::MSG_DONTWAIT).unwrap();
    assert_eq!((r.copied, r.rights.is_some()), (2, false));
    drop(d);
}

#[test]
fn stream_fills_to_sndbuf() {
    let [a, _b] = pair(libc::SOCK_STREAM);
    let big = vec![0u8; 1 << 20];
    assert_eq!(a.write(&big), Ok(DEFAULT_BUF));
    assert_eq!(a.write(&big), Err(Errno::EAGAIN));
    assert_eq!(a.readiness(EVENT_OUT), 0);
}

#[test]
fn dgram_pair_boundaries_and_disconnect() {
    let [a, b] = pair(libc::SOCK_DGRAM);
    let sb = as_socket(&b).unwrap();
    assert_eq!(a.write(b"one"), Ok(3));
    assert_eq!(a.write(b"three"), Ok(5));
    let mut buf = [0u8; 2];
    let r = sb.recv(&mut buf, libc::MSG_DONTWAIT).unwrap();
    assert_eq!((r.copied, r.full), (2, 3));
    let mut buf = [0u8; 16];
    assert_eq!(b.read(&mut buf), Ok(5));
    drop(sb);
    drop(b);
    assert_eq!(a.write(b"x"), Err(Errno::ECONNREFUSED));
    assert_eq!(a.write(b"x"), Err(Errno::ENOTCONN));
}

#[test]
fn listen_connect_accept() {
    let ns = Arc::new(Namespace::default());
    let p = FakePaths::default();
    let (_lf, l) = sock(&ns, libc::SOCK_STREAM);
    // Unbound: no listening.
    assert_eq!(l.listen(0), Err(Errno::EINVAL));
    l.bind(&cx(&p, 10), &unix(b"/tmp/s")).unwrap();
    assert_eq!(l.bind(&cx(&p, 10), &unix(b"/tmp/t")), Err(Errno::EINVAL));
    let (_cf, c) = sock(&ns, libc::SOCK_STREAM);
    // Bound but not listening.
    assert_eq!(
        c.connect(&cx(&p, 20), &unix(b"/tmp/s")),
        Err(Errno::ECONNREFUSED)
    );
    assert_eq!(
        c.connect(&cx(&p, 20), &unix(b"/tmp/none")),
        Err(Errno::ENOENT)
    );
    l.listen(0).unwrap();
    assert_eq!(l.readiness() & EVENT_IN, 0);
    c.connect(&cx(&p, 20), &unix(b"/tmp/s")).unwrap();
    assert_eq!(
        c.connect(&cx(&p, 20), &unix(b"/tmp/s")),
        Err(Errno::EISCONN)
    );
    assert_ne!(l.readiness() & EVENT_IN, 0);
    // Backlog 0 holds one connection.
    let (_c2f, c2) = sock(&ns, libc::SOCK_STREAM);
    assert_eq!(
        c2.connect(&cx(&p, 30), &unix(b"/tmp/s")),
        Err(Errno::EAGAIN)
    );
    let (_d, dg) = sock(&ns, libc::SOCK_DGRAM);
    assert_eq!(
        dg.connect(&cx(&p, 30), &unix(b"/tmp/s")),
        Err(Errno::EPROTOTYPE)
    );
    let (af, peer) = l.accept(&cx(&p, 10), 0).unwrap();
    assert_eq!(peer, unix(b""));
    assert_eq!(l.accept(&cx(&p, 10), 0).err(), Some(Errno::EAGAIN));
    let a = as_socket(&af).unwrap();
    assert_eq!(a.sockname(), unix(b"/tmp/s"));
    assert_eq!(c.peername(), Ok(unix(b"/tmp/s")));
    // SO_PEERCRED: the listener's binder for the client, the connector for
    // the accepted end.
    let pid = |s: &dyn Socket| {
        let v = s.getsockopt(libc::SOL_SOCKET, libc::SO_PEERCRED).unwrap();
        i32::from_le_bytes(v[..4].try_into().unwrap())
    };
    assert_eq!((pid(&*c), pid(&*a)), (10, 20));
    let none = &mut Control::default();
    assert_eq!(c.send(&cx(&p, 20), b"hi", None, none, 0), Ok(2));
    let mut buf = [0u8; 8];
    assert_eq!(a.recv(&mut buf, libc::MSG_DONTWAIT).unwrap().copied, 2);
    // Room again: the second client gets in.
    c2.connect(&cx(&p, 30), &unix(b"/tmp/s")).unwrap();
    // Closing the listener resets the pending connection.
    drop(l);
    drop(_lf);
    assert_eq!(
        c2.recv(&mut buf, libc::MSG_DONTWAIT).err(),
        Some(Errno::ECONNRESET)
    );
    // ...and unbinds the name.
    let (_c3f, c3) = sock(&ns, libc::SOCK_STREAM);
    assert_eq!(
        c3.connect(&cx(&p, 30), &unix(b"/tmp/s")),
        Err(Errno::ECONNREFUSED)
    );
    // The established connection lives on.
    assert_eq!(a.send(&cx(&p, 10), b"yo", None, none, 0), Ok(2));
    assert_eq!(c.recv(&mut buf, libc::MSG_DONTWAIT).unwrap().copied, 2);
}

#[test]
fn abstract_names_and_autobind() {
    let ns = Arc::new(Namespace::default());
    let p = FakePaths::default();
    let (_af, a) = sock(&ns, libc::SOCK_DGRAM);
    let (bf, b) = sock(&ns, libc::SOCK_DGRAM);
    a.bind(&cx(&p, 1), &unix(b"\0name")).unwrap();
    assert_eq!(b.bind(&cx(&p, 1), &unix(b"\0name")), Err(Errno::EADDRINUSE));
    assert_eq!(b.bind(&cx(&p, 1), &SockAddr::Unspec), Err(Errno::EINVAL));
    b.bind(&cx(&p, 1), &unix(b"")).unwrap();
    let SockAddr::Unix(name) = b.sockname() else {
        panic!()
    };
    assert_eq!(name.len(), 6);
    assert_eq!(name[0], 0);
    // Autobind of a bound socket is a no-op.
    b.bind(&cx(&p, 1), &unix(b"")).unwrap();
    assert_eq!(b.sockname(), SockAddr::Unix(name.clone()));
    // Datagrams carry the sender's name and (with SO_PASSCRED) creds.
    a.setsockopt(libc::SOL_SOCKET, libc::SO_PASSCRED, &1i32.to_le_bytes())
        .unwrap();
    let none = &mut Control::default();
    assert_eq!(
        b.send(&cx(&p, 7), b"d", Some(&unix(b"\0name")), none, 0),
        Ok(1)
    );
    let mut buf = [0u8; 4];
    let r = a.recv(&mut buf, libc::MSG_DONTWAIT).unwrap();
    assert_eq!(r.from, Some(SockAddr::Unix(name.clone())));
    assert_eq!(r.creds, Some(cred(7)));
    // The name is free again once its socket is closed.
    drop(b);
    drop(bf);
    assert_eq!(
        a.send(
            &cx(&p, 1),
            b"x",
            Some(&SockAddr::Unix(name.clone())),
            none,
            0
        ),
        Err(Errno::ECONNREFUSED)
    );
    let (_cf, c) = sock(&ns, libc::SOCK_DGRAM);
    c.bind(&cx(&p, 1), &SockAddr::Unix(name)).unwrap();
}

#[test]
fn dgram_connect_filters_and_queue_limit() {
    let ns = Arc::new(Namespace::default());
    let p = FakePaths::default();
    let (_rf, r) = sock(&ns, libc::SOCK_DGRAM);
    let (_sf, s) = sock(&ns, libc::SOCK_DGRAM);
    let (_of, o) = sock(&ns, libc::SOCK_DGRAM);
    r.bind(&cx(&p, 1), &unix(b"/r")).unwrap();
    s.bind(&cx(&p, 1), &unix(b"/s")).unwrap();
    let none = &mut Control::default();
    assert_eq!(
        s.send(&cx(&p, 1), b"x", None, none, 0),
        Err(Errno::ENOTCONN)
    );
    s.connect(&cx(&p, 1), &unix(b"/r")).unwrap();
    assert_eq!(s.peername(), Ok(unix(b"/r")));
    // Eleven messages fit in the receiver's queue, then EAGAIN.
    for _ in 0..=MAX_DGRAM_QLEN {
        assert_eq!(s.send(&cx(&p, 1), b"m", None, none, 0), Ok(1));
    }
    assert_eq!(s.send(&cx(&p, 1), b"m", None, none, 0), Err(Errno::EAGAIN));
    assert_eq!(s.readiness() & EVENT_OUT, 0);
    let mut buf = [0u8; 4];
    let got = r.recv(&mut buf, libc::MSG_DONTWAIT).unwrap();
    assert_eq!(got.from, Some(unix(b"/s")));
    assert_ne!(s.readiness() & EVENT_OUT, 0);
    // r connected to s takes nothing from o.
    r.connect(&cx(&p, 1), &unix(b"/s")).unwrap();
    assert_eq!(
        o.send(&cx(&p, 1), b"x", Some(&unix(b"/r")), none, 0),
        Err(Errno::EPERM)
    );
    r.connect(&cx(&p, 1), &SockAddr::Unspec).unwrap();
    assert_eq!(r.peername(), Err(Errno::ENOTCONN));
    assert_eq!(o.send(&cx(&p, 1), b"x", Some(&unix(b"/r")), none, 0), Ok(1));
    assert_eq!(r.listen(1), Err(Errno::EOPNOTSUPP));
    // Messages a receiver never read give the sender its buffer back.
    let sender = |x: &Arc<UnixSocket>| x.wmem.load(Ordering::Relaxed);
    assert!(sender(&s) > 0);
    drop(r);
    drop(_rf);
    assert_eq!(sender(&s), 0);
}

#[test]
fn crossed_connects_do_not_deadlock() {
    let ns = Arc::new(Namespace::default());
    let p = FakePaths::default();
    let (_af, a) = sock(&ns, libc::SOCK_STREAM);
    let (_bf, b) = sock(&ns, libc::SOCK_STREAM);
    a.bind(&cx(&p, 1), &unix(b"\0a")).unwrap();
    b.bind(&cx(&p, 1), &unix(b"\0b")).unwrap();
    std::thread::scope(|s| {
        for (x, to) in [(&a, b"\0b"), (&b, b"\0a")] {
            s.spawn(move || {
                let p = FakePaths::default();
                for _ in 0..10_000 {
                    assert_eq!(x.connect(&cx(&p, 1), &unix(to)), Err(Errno::ECONNREFUSED));
                }
            });
        }
    });
    // Connecting to itself.
    assert_eq!(
        a.connect(&cx(&p, 1), &unix(b"\0a")),
        Err(Errno::ECONNREFUSED)
    );
}
