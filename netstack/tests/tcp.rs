mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{wait_until, Waiter};
use netstack::*;

fn stack() -> Arc<Stack> {
    Stack::new(StackConfig::default()).unwrap()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A listener on an ephemeral loopback port, and a connected pair.
fn pair(st: &Arc<Stack>, v6: bool) -> (TcpEndpoint, TcpEndpoint, TcpEndpoint) {
    let l = st.tcp(v6);
    l.bind(addr(if v6 { "[::1]:0" } else { "127.0.0.1:0" }))
        .unwrap();
    l.listen(8).unwrap();
    let port = l.local_addr().unwrap().port();
    let c = st.tcp(v6);
    let w = Waiter::default();
    c.set_notify(w.notify());
    let dst = SocketAddr::new(
        if v6 {
            "::1".parse().unwrap()
        } else {
            "127.0.0.1".parse().unwrap()
        },
        port,
    );
    let mut first = true;
    w.block(|| {
        let r = c.connect(dst);
        if first {
            first = false;
        } else if r == Err(Errno::EISCONN) {
            return Ok(());
        }
        r
    })
    .unwrap();
    let lw = Waiter::default();
    l.set_notify(lw.notify());
    let (s, peer) = lw.block(|| l.accept()).unwrap();
    assert_eq!(peer, c.local_addr().unwrap());
    assert_eq!(s.peer_addr().unwrap(), c.local_addr().unwrap());
    assert_eq!(c.peer_addr().unwrap(), s.local_addr().unwrap());
    (l, c, s)
}

fn recv_all(ep: &TcpEndpoint, n: usize) -> Vec<u8> {
    let w = Waiter::default();
    ep.set_notify(w.notify());
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    while out.len() < n {
        let k = w.block(|| ep.recv(&mut buf, false)).unwrap();
        if k == 0 {
            break;
        }
        out.extend_from_slice(&buf[..k]);
    }
    out
}

#[test]
fn connect_send_recv_v4() {
    let st = stack();
    let (_l, c, s) = pair(&st, false);
    assert_eq!(c.send(b"hello").unwrap(), 5);
    assert_eq!(recv_all(&s, 5), b"hello");
    assert_eq!(s.send(b"world!").unwrap(), 6);
    let mut b = [0u8; 3];
    assert_eq!(c.recv(&mut b, true).unwrap(), 3);
    assert_eq!(&b, b"wor");
    assert_eq!(c.inq(), 6);
    assert_eq!(recv_all(&c, 6), b"world!");
    assert_eq!(c.recv(&mut b, false), Err(Errno::EAGAIN));
    assert_eq!(c.info().state, 1);
}

#[test]
fn ipv6_loopback_and_dual_stack() {
    let st = stack();
    let (_l, c, s) = pair(&st, true);
    assert!(c.local_addr().unwrap().is_ipv6());
    c.send(b"v6").unwrap();
    assert_eq!(recv_all(&s, 2), b"v6");

    // A v6 listener on [::] accepts v4 clients (v4-mapped peer).
    let l = st.tcp(true);
    l.bind(addr("[::]:0")).unwrap();
    l.listen(4).unwrap();
    let port = l.local_addr().unwrap().port();
    let c4 = st.tcp(false);
    assert_eq!(
        c4.connect(SocketAddr::new("127.0.0.1".parse().unwrap(), port)),
        Ok(())
    );
    let (a, peer) = l.accept().unwrap();
    assert_eq!(
        peer,
        addr(&format!(
            "[::ffff:127.0.0.1]:{}",
            c4.local_addr().unwrap().port()
        ))
    );
    c4.send(b"x").unwrap();
    assert_eq!(recv_all(&a, 1), b"x");
}

#[test]
fn other_loopback_addresses_answer() {
    let st = stack();
    let l = st.tcp(false);
    l.bind(addr("127.0.0.5:0")).unwrap();
    l.listen(1).unwrap();
    let c = st.tcp(false);
    let a = l.local_addr().unwrap();
    assert_eq!(a.ip().to_string(), "127.0.0.5");
    assert_eq!(c.connect(a), Ok(()));
    let (_s, _) = l.accept().unwrap();
}

#[test]
fn connect_refused() {
    let st = stack();
    let c = st.tcp(false);
    let w = Waiter::default();
    c.set_notify(w.notify());
    let t = Instant::now();
    let r = c.connect(addr("127.0.0.1:9"));
    let r = match r {
        Err(Errno::EINPROGRESS) => {
            wait_until(|| c.readiness() & POLLERR != 0);
            assert_eq!(c.take_error(), Some(Errno::ECONNREFUSED));
            Err(Errno::ECONNREFUSED)
        }
        r => r,
    };
    assert_eq!(r, Err(Errno::ECONNREFUSED));
    assert!(t.elapsed() < Duration::from_secs(1));
    // The socket can connect again.
    let l = st.tcp(false);
    l.bind(addr("127.0.0.1:0")).unwrap();
    l.listen(1).unwrap();
    assert_eq!(c.connect(l.local_addr().unwrap()), Ok(()));
    assert_eq!(c.connect(l.local_addr().unwrap()), Err(Errno::EISCONN));
}

#[test]
fn connect_no_route() {
    let st = stack();
    let c = st.tcp(false);
    assert_eq!(c.connect(addr("10.1.2.3:80")), Err(Errno::ENETUNREACH));
    let c6 = st.tcp(true);
    assert_eq!(c6.connect(addr("127.0.0.1:80")), Err(Errno::EAFNOSUPPORT));
}

#[test]
fn addr_in_use_and_reuse() {
    let st = stack();
    let a = st.tcp(false);
    a.bind(addr("127.0.0.1:0")).unwrap();
    let port = a.local_addr().unwrap().port();
    assert!((32768..=60999).contains(&port));
    assert_eq!(a.bind(addr("127.0.0.1:0")), Err(Errno::EINVAL));
    let b = st.tcp(false);
    assert_eq!(
        b.bind(SocketAddr::new("127.0.0.1".parse().unwrap(), port)),
        Err(Errno::EADDRINUSE)
    );
    assert_eq!(
        b.bind(SocketAddr::new("0.0.0.0".parse().unwrap(), port)),
        Err(Errno::EADDRINUSE)
    );
    let b6 = st.tcp(true);
    assert_eq!(
        b6.bind(SocketAddr::new("::".parse().unwrap(), port)),
        Err(Errno::EADDRINUSE)
    );
    let b6only = st.tcp(true);
    b6only.set_v6only(true).unwrap();
    assert_eq!(
        b6only.bind(SocketAddr::new("::".parse().unwrap(), port)),
        Ok(())
    );
    assert_eq!(
        st.tcp(false).bind(addr("10.9.9.9:1")),
        Err(Errno::EADDRNOTAVAIL)
    );

    // SO_REUSEADDR on both, neither listening: allowed; then only one may listen.
    let r1 = st.tcp(false);
    r1.set_reuseaddr(true);
    r1.bind(addr("127.0.0.1:0")).unwrap();
    let p = r1.local_addr().unwrap();
    let r2 = st.tcp(false);
    r2.set_reuseaddr(true);
    r2.bind(p).unwrap();
    r1.listen(1).unwrap();
    assert_eq!(r2.listen(1), Err(Errno::EADDRINUSE));
    let r3 = st.tcp(false);
    r3.set_reuseaddr(true);
    assert_eq!(r3.bind(p), Err(Errno::EADDRINUSE));
    drop((r1, r2));
    let r4 = st.tcp(false);
    assert_eq!(r4.bind(p), Ok(()));

    // Ephemeral ports are distinct.
    let eps: Vec<TcpEndpoint> = (0..50).map(|_| st.tcp(false)).collect();
    let mut ports: Vec<u16> = eps
        .iter()
        .map(|e| {
            e.bind(addr("0.0.0.0:0")).unwrap();
            e.local_addr().unwrap().port()
        })
        .collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 50);
}

#[test]
fn backlog_accepts_many() {
    let st = stack();
    let l = st.tcp(false);
    l.bind(addr("127.0.0.1:0")).unwrap();
    l.listen(16).unwrap();
    let a = l.local_addr().unwrap();
    assert_eq!(l.readiness() & POLLIN, 0);
    let cs: Vec<TcpEndpoint> = (0..16)
        .map(|_| {
            let c = st.tcp(false);
            assert_eq!(c.connect(a), Ok(()));
            c
        })
        .collect();
    assert_ne!(l.readiness() & POLLIN, 0);
    let mut peers = Vec::new();
    for (n, c) in cs.iter().enumerate() {
        let (s, peer) = l.accept().unwrap();
        peers.push(peer);
        c.send(&[n as u8]).unwrap();
        let mut b = [0u8; 1];
        let w = Waiter::default();
        s.set_notify(w.notify());
        w.block(|| s.recv(&mut b, false)).unwrap();
        assert_eq!(b[0], n as u8, "accepted in order");
    }
    assert_eq!(l.accept().err(), Some(Errno::EAGAIN));
    assert_eq!(l.readiness() & POLLIN, 0);
    peers.sort();
    peers.dedup();
    assert_eq!(peers.len(), 16);
}

#[test]
fn half_close() {
    let st = stack();
    let (_l, c, s) = pair(&st, false);
    c.send(b"req").unwrap();
    c.shutdown(SHUT_WR).unwrap();
    assert_eq!(c.send(b"x"), Err(Errno::EPIPE));
    assert_eq!(recv_all(&s, 100), b"req");
    let r = s.readiness();
    assert_ne!(r & POLLRDHUP, 0);
    assert_ne!(r & POLLIN, 0);
    assert_eq!(r & POLLHUP, 0);
    assert_ne!(r & POLLOUT, 0);
    let mut b = [0u8; 4];
    assert_eq!(s.recv(&mut b, false), Ok(0));
    // The other direction still works.
    s.send(b"resp").unwrap();
    assert_eq!(recv_all(&c, 4), b"resp");
    s.shutdown(SHUT_WR).unwrap();
    wait_until(|| c.readiness() & POLLHUP != 0);
    assert_eq!(c.recv(&mut b, false), Ok(0));
    assert_eq!(c.take_error(), None);
}

#[test]
fn rst_on_close_with_unread_data() {
    let st = stack();
    let (_l, c, s) = pair(&st, false);
    c.send(b"unread").unwrap();
    wait_until(|| s.inq() == 6);
    let w = Waiter::default();
    c.set_notify(w.notify());
    drop(s);
    wait_until(|| c.readiness() & POLLERR != 0);
    let r = c.readiness();
    assert_ne!(r & POLLHUP, 0);
    let mut b = [0u8; 4];
    assert_eq!(c.recv(&mut b, false), Err(Errno::ECONNRESET));
    assert_eq!(c.recv(&mut b, false), Ok(0));
    assert_eq!(c.send(b"x"), Err(Errno::EPIPE));
    assert!(w.count() > 0);
}

#[test]
fn close_sends_fin() {
    let st = stack();
    let (_l, c, s) = pair(&st, false);
    s.send(b"bye").unwrap();
    drop(s);
    assert_eq!(recv_all(&c, 10), b"bye");
    assert_eq!(c.take_error(), None);
}

#[test]
fn readiness_bits_and_notify() {
    let st = stack();
    let fresh = st.tcp(false);
    assert_eq!(fresh.readiness(), POLLOUT | POLLWRNORM | POLLHUP);
    assert_eq!(fresh.recv(&mut [0u8; 1], false), Err(Errno::ENOTCONN));
    assert_eq!(fresh.send(b"x"), Err(Errno::EPIPE));
    assert_eq!(fresh.shutdown(SHUT_RDWR), Err(Errno::ENOTCONN));
    assert_eq!(fresh.peer_addr(), Err(Errno::ENOTCONN));
    let (_l, c, s) = pair(&st, false);
    assert_eq!(s.readiness(), POLLOUT | POLLWRNORM);
    let w = Waiter::default();
    s.set_notify(w.notify());
    let g = w.gen();
    c.send(b"ping").unwrap();
    assert!(w.gen() > g, "notify fired on data arrival");
    assert_eq!(s.readiness(), POLLOUT | POLLWRNORM | POLLIN | POLLRDNORM);
}

#[test]
fn options() {
    let st = stack();
    let t = st.tcp(false);
    assert_eq!(t.sndbuf(), 16384);
    assert_eq!(t.rcvbuf(), 131072);
    t.set_rcvbuf(100000);
    assert_eq!(t.rcvbuf(), 200000);
    t.set_sndbuf(1);
    assert_eq!(t.sndbuf(), 4608);
    t.set_nodelay(true);
    assert!(t.nodelay());
    t.set_keepalive(true);
    t.set_keepalive_params(Some(10), Some(5), Some(3)).unwrap();
    assert_eq!(t.keepalive_params(), (10, 5, 3));
    assert_eq!(
        t.set_keepalive_params(Some(0), None, None),
        Err(Errno::EINVAL)
    );
}

#[test]
fn listener_close_resets_pending() {
    let st = stack();
    let l = st.tcp(false);
    l.bind(addr("127.0.0.1:0")).unwrap();
    l.listen(4).unwrap();
    let c = st.tcp(false);
    c.connect(l.local_addr().unwrap()).unwrap();
    drop(l);
    wait_until(|| c.readiness() & POLLERR != 0);
    assert_eq!(c.take_error(), Some(Errno::ECONNRESET));
}

fn throughput(total: usize) -> f64 {
    let st = stack();
    let (_l, c, s) = pair(&st, false);
    let t = Instant::now();
    let writer = std::thread::spawn(move || {
        let w = Waiter::default();
        c.set_notify(w.notify());
        let buf = vec![7u8; 256 * 1024];
        let mut sent = 0;
        while sent < total {
            let n = (total - sent).min(buf.len());
            sent += w.block(|| c.send(&buf[..n])).unwrap();
        }
        c.shutdown(SHUT_WR).unwrap();
        c
    });
    let w = Waiter::default();
    s.set_notify(w.notify());
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    loop {
        let n = w.block(|| s.recv(&mut buf, false)).unwrap();
        if n == 0 {
            break;
        }
        got += n;
    }
    let _c = writer.join().unwrap();
    assert_eq!(got, total);
    total as f64 / t.elapsed().as_secs_f64() / 1e6
}

#[test]
fn throughput_smoke() {
    let total = if cfg!(debug_assertions) {
        16 << 20
    } else {
        256 << 20
    };
    let mbs = throughput(total);
    eprintln!(
        "loopback TCP throughput: {mbs:.0} MB/s ({} MiB)",
        total >> 20
    );
}

#[test]
fn round_trip_latency() {
    let st = stack();
    let (_l, c, s) = pair(&st, false);
    c.set_nodelay(true);
    s.set_nodelay(true);
    let iters = if cfg!(debug_assertions) { 1000 } else { 20000 };
    let echo = std::thread::spawn(move || {
        let w = Waiter::default();
        s.set_notify(w.notify());
        let mut b = [0u8; 1];
        for _ in 0..iters {
            w.block(|| s.recv(&mut b, false)).unwrap();
            w.block(|| s.send(&b)).unwrap();
        }
        s
    });
    let w = Waiter::default();
    c.set_notify(w.notify());
    let mut b = [0u8; 1];
    let t = Instant::now();
    for _ in 0..iters {
        c.send(b"x").unwrap();
        assert_eq!(w.block(|| c.recv(&mut b, false)).unwrap(), 1);
    }
    let per = t.elapsed() / iters;
    let _s = echo.join().unwrap();
    eprintln!("loopback TCP 1-byte round trip: {per:?}");
}

#[test]
fn time_wait_holds_port_unless_reuseaddr() {
    let st = stack();
    let l = st.tcp(false);
    l.bind(addr("127.0.0.1:0")).unwrap();
    let a = l.local_addr().unwrap();
    l.listen(1).unwrap();
    let c = st.tcp(false);
    c.connect(a).unwrap();
    let (s, _) = l.accept().unwrap();
    // The server closes first: its side goes to TIME_WAIT.
    drop(s);
    wait_until(|| c.readiness() & POLLRDHUP != 0);
    drop(c);
    drop(l);
    let n = st.tcp(false);
    assert_eq!(n.bind(a), Err(Errno::EADDRINUSE));
    let r = st.tcp(false);
    r.set_reuseaddr(true);
    assert_eq!(r.bind(a), Ok(()));
    r.listen(1).unwrap();
}

#[test]
fn shutdown_read_and_both() {
    let st = stack();
    let (_l, c, s) = pair(&st, false);
    c.send(b"abc").unwrap();
    wait_until(|| s.inq() == 3);
    s.shutdown(SHUT_RD).unwrap();
    assert_ne!(s.readiness() & POLLRDHUP, 0);
    let mut b = [0u8; 8];
    assert_eq!(
        s.recv(&mut b, false),
        Ok(3),
        "queued data is still readable"
    );
    assert_eq!(s.recv(&mut b, false), Ok(0));
    s.shutdown(SHUT_WR).unwrap();
    assert_ne!(s.readiness() & POLLHUP, 0);
    assert_eq!(s.shutdown(7), Err(Errno::EINVAL));
}

#[test]
fn accept_notifies_listener() {
    let st = stack();
    let l = st.tcp(false);
    l.bind(addr("127.0.0.1:0")).unwrap();
    l.listen(4).unwrap();
    let w = Waiter::default();
    l.set_notify(w.notify());
    let g = w.gen();
    let c = st.tcp(false);
    c.connect(l.local_addr().unwrap()).unwrap();
    assert!(w.gen() > g);
    assert_eq!(l.readiness() & (POLLIN | POLLRDNORM), POLLIN | POLLRDNORM);
    assert_eq!(l.recv(&mut [0u8; 4], false), Err(Errno::ENOTCONN));
    assert_eq!(l.connect(l.local_addr().unwrap()), Err(Errno::EISCONN));
    let (s, _) = l.accept().unwrap();
    assert_eq!(s.info().state, 1);
    assert_eq!(l.info().state, 10);
    assert!(l.is_listening() && !s.is_listening());
}

#[test]
fn peer_close_then_write_gets_epipe_or_reset() {
    let st = stack();
    let (_l, c, s) = pair(&st, false);
    drop(s);
    wait_until(|| c.readiness() & POLLRDHUP != 0);
    // Writing to a closed peer: the data is answered with RST.
    let _ = c.send(b"x");
    wait_until(|| c.readiness() & POLLERR != 0 || c.readiness() & POLLHUP != 0);
    let mut saw = Vec::new();
    for _ in 0..3 {
        saw.push(c.send(b"y"));
    }
    assert!(saw.contains(&Err(Errno::EPIPE)), "{saw:?}");
}

#[test]
fn v4_and_v6only_listeners_share_a_port() {
    let st = stack();
    let l4 = st.tcp(false);
    l4.bind(addr("0.0.0.0:0")).unwrap();
    let port = l4.local_addr().unwrap().port();
    l4.listen(4).unwrap();
    let l6 = st.tcp(true);
    l6.set_v6only(true).unwrap();
    l6.bind(SocketAddr::new("::".parse().unwrap(), port))
        .unwrap();
    l6.listen(4).unwrap();
    for _ in 0..3 {
        let c6 = st.tcp(true);
        assert_eq!(
            c6.connect(SocketAddr::new("::1".parse().unwrap(), port)),
            Ok(())
        );
        let c4 = st.tcp(false);
        assert_eq!(
            c4.connect(SocketAddr::new("127.0.0.1".parse().unwrap(), port)),
            Ok(())
        );
        let (_s6, p6) = l6.accept().unwrap();
        let (_s4, p4) = l4.accept().unwrap();
        assert!(p6.is_ipv6() && p4.is_ipv4());
        assert_eq!(l6.accept().err(), Some(Errno::EAGAIN));
        assert_eq!(l4.accept().err(), Some(Errno::EAGAIN));
        c6.send(b"x").unwrap();
        assert_eq!(c6.take_error(), None);
    }
}

#[test]
fn bulk_transfer_integrity() {
    let st = stack();
    let (_l, c, s) = pair(&st, true);
    let total = 8 << 20;
    let writer = std::thread::spawn(move || {
        let w = Waiter::default();
        c.set_notify(w.notify());
        let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        let mut off = 0;
        while off < total {
            let end = (off + 100_000).min(total);
            off += w.block(|| c.send(&data[off..end])).unwrap();
        }
        drop(c);
    });
    let got = recv_all(&s, total + 1);
    writer.join().unwrap();
    assert_eq!(got.len(), total);
    assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
}

#[test]
fn round_trip_with_many_idle_connections() {
    let st = stack();
    let l = st.tcp(false);
    l.bind(addr("127.0.0.1:0")).unwrap();
    l.listen(512).unwrap();
    let n = if cfg!(debug_assertions) { 50 } else { 400 };
    let mut idle = Vec::new();
    for _ in 0..n {
        let c = st.tcp(false);
        c.set_notify(Waiter::default().notify());
        c.connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        s.set_notify(Waiter::default().notify());
        idle.push((c, s));
    }
    let (_l2, c, s) = pair(&st, false);
    let iters = if cfg!(debug_assertions) { 200 } else { 5000 };
    let echo = std::thread::spawn(move || {
        let w = Waiter::default();
        s.set_notify(w.notify());
        let mut b = [0u8; 1];
        for _ in 0..iters {
            w.block(|| s.recv(&mut b, false)).unwrap();
            w.block(|| s.send(&b)).unwrap();
        }
        s
    });
    let w = Waiter::default();
    c.set_notify(w.notify());
    let mut b = [0u8; 1];
    let t = Instant::now();
    for _ in 0..iters {
        c.send(b"x").unwrap();
        w.block(|| c.recv(&mut b, false)).unwrap();
    }
    eprintln!(
        "1-byte round trip with {} idle connections: {:?}",
        2 * n,
        t.elapsed() / iters
    );
    echo.join().unwrap();
}
