mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::{wait_until, Waiter};
use netstack::*;

fn stack() -> Arc<Stack> {
    Stack::new(StackConfig::default()).unwrap()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn send_recv_truncation() {
    let st = stack();
    let a = st.udp(false);
    a.bind(addr("127.0.0.1:0")).unwrap();
    let b = st.udp(false);
    let w = Waiter::default();
    a.set_notify(w.notify());
    assert_eq!(a.readiness() & POLLIN, 0);
    let g = w.gen();
    assert_eq!(
        b.send_to(b"hello world", Some(a.local_addr().unwrap())),
        Ok(11)
    );
    assert!(w.gen() > g);
    assert_ne!(a.readiness() & POLLIN, 0);
    let bl = b.local_addr().unwrap();
    assert!((32768..=60999).contains(&bl.port()), "autobound on send");
    assert_eq!(a.inq(), 11);
    let mut buf = [0u8; 5];
    assert_eq!(
        a.recv_from(&mut buf, true).unwrap(),
        (11, SocketAddr::new("127.0.0.1".parse().unwrap(), bl.port()))
    );
    assert_eq!(&buf, b"hello");
    let (n, from) = a.recv_from(&mut buf, false).unwrap();
    assert_eq!(n, 11);
    assert_eq!(from.port(), bl.port());
    assert_eq!(a.recv_from(&mut buf, false), Err(Errno::EAGAIN));
    // Empty datagram.
    b.send_to(b"", Some(a.local_addr().unwrap())).unwrap();
    assert_eq!(a.recv_from(&mut buf, false).unwrap().0, 0);
    // Big datagram on loopback.
    let big = vec![1u8; 65507];
    assert_eq!(b.send_to(&big, Some(a.local_addr().unwrap())), Ok(65507));
    let mut rb = vec![0u8; 70000];
    assert_eq!(a.recv_from(&mut rb, false).unwrap().0, 65507);
    assert_eq!(
        b.send_to(&[0u8; 65508], Some(a.local_addr().unwrap())),
        Err(Errno::EMSGSIZE)
    );
}

#[test]
fn errors() {
    let st = stack();
    let u = st.udp(false);
    assert_eq!(u.send_to(b"x", None), Err(Errno::EDESTADDRREQ));
    assert_eq!(
        u.send_to(b"x", Some(addr("255.255.255.255:9"))),
        Err(Errno::EACCES)
    );
    assert_eq!(
        u.send_to(b"x", Some(addr("10.0.0.1:9"))),
        Err(Errno::ENETUNREACH)
    );
    assert_eq!(u.peer_addr(), Err(Errno::ENOTCONN));
    assert_eq!(u.shutdown(SHUT_RD), Err(Errno::ENOTCONN));
    let a = st.udp(false);
    a.bind(addr("127.0.0.1:0")).unwrap();
    let b = st.udp(false);
    assert_eq!(b.bind(a.local_addr().unwrap()), Err(Errno::EADDRINUSE));
    let c = st.udp(false);
    c.set_reuseaddr(true);
    c.bind(addr("127.0.0.1:0")).unwrap();
    let d = st.udp(false);
    d.set_reuseaddr(true);
    assert_eq!(d.bind(c.local_addr().unwrap()), Ok(()));
    assert_eq!(
        st.udp(false).bind(addr("192.0.2.1:0")),
        Err(Errno::EADDRNOTAVAIL)
    );
}

#[test]
fn connected_filters_peer() {
    let st = stack();
    let a = st.udp(false);
    a.bind(addr("127.0.0.1:0")).unwrap();
    let p1 = st.udp(false);
    p1.bind(addr("127.0.0.1:0")).unwrap();
    let p2 = st.udp(false);
    a.connect(Some(p1.local_addr().unwrap())).unwrap();
    assert_eq!(a.peer_addr().unwrap(), p1.local_addr().unwrap());
    p2.send_to(b"nope", Some(a.local_addr().unwrap())).unwrap();
    p1.send_to(b"yes", Some(a.local_addr().unwrap())).unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = a.recv_from(&mut buf, false).unwrap();
    assert_eq!((&buf[..n], from), (&b"yes"[..], p1.local_addr().unwrap()));
    assert_eq!(a.recv_from(&mut buf, false), Err(Errno::EAGAIN));
    // send() goes to the peer.
    a.send(b"back").unwrap();
    assert_eq!(p1.recv_from(&mut buf, false).unwrap().0, 4);
    // AF_UNSPEC disconnect.
    a.connect(None).unwrap();
    assert_eq!(a.send(b"x"), Err(Errno::EDESTADDRREQ));
    p2.send_to(b"now", Some(a.local_addr().unwrap())).unwrap();
    assert_eq!(a.recv_from(&mut buf, false).unwrap().0, 3);
}

#[test]
fn ipv6_and_dual_stack() {
    let st = stack();
    let a = st.udp(true);
    a.bind(addr("[::]:0")).unwrap();
    let port = a.local_addr().unwrap().port();
    let b6 = st.udp(true);
    b6.send_to(b"six", Some(SocketAddr::new("::1".parse().unwrap(), port)))
        .unwrap();
    let b4 = st.udp(false);
    b4.send_to(
        b"four",
        Some(SocketAddr::new("127.0.0.1".parse().unwrap(), port)),
    )
    .unwrap();
    let mut buf = [0u8; 16];
    let mut got = vec![];
    for _ in 0..2 {
        let (n, from) = a.recv_from(&mut buf, false).unwrap();
        got.push((buf[..n].to_vec(), from.is_ipv6()));
    }
    got.sort();
    assert_eq!(got, vec![(b"four".to_vec(), true), (b"six".to_vec(), true)]);
    // v4 socket sends to a v6-only peer fail with EAFNOSUPPORT.
    assert_eq!(
        b4.send_to(b"x", Some(addr("[::1]:1"))),
        Err(Errno::EAFNOSUPPORT)
    );
}

#[test]
fn receive_buffer_limit() {
    let st = stack();
    let a = st.udp(false);
    assert_eq!(a.rcvbuf(), 212992);
    a.bind(addr("127.0.0.1:0")).unwrap();
    let b = st.udp(false);
    let dgram = vec![0u8; 1000];
    for _ in 0..1000 {
        b.send_to(&dgram, Some(a.local_addr().unwrap())).unwrap();
    }
    let mut n = 0;
    let mut buf = [0u8; 2000];
    while a.recv_from(&mut buf, false).is_ok() {
        n += 1;
    }
    assert!(n > 100 && n < 1000, "{n} datagrams buffered");
}

#[test]
fn icmp_echo_loopback() {
    let st = stack();
    let p = st.icmp(false);
    let w = Waiter::default();
    p.set_notify(w.notify());
    let mut req = vec![8u8, 0, 0, 0, 0, 0, 0, 1];
    req.extend_from_slice(b"payload");
    assert_eq!(p.send_to(&req, Some(addr("127.0.0.1:0"))), Ok(15));
    wait_until(|| p.readiness() & POLLIN != 0);
    let mut buf = [0u8; 64];
    let (n, from) = p.recv_from(&mut buf, false).unwrap();
    assert_eq!(n, 15);
    assert_eq!(buf[0], 0, "echo reply");
    assert_eq!(&buf[4..6], &p.local_addr().unwrap().port().to_be_bytes());
    assert_eq!(&buf[8..15], b"payload");
    assert_eq!(from.ip().to_string(), "127.0.0.1");
    assert_eq!(
        p.send_to(&[0u8; 8], Some(addr("127.0.0.1:0"))),
        Err(Errno::EINVAL)
    );

    let p6 = st.icmp(true);
    let req6 = vec![128u8, 0, 0, 0, 0, 0, 0, 1, 42];
    p6.send_to(&req6, Some(addr("[::1]:0"))).unwrap();
    wait_until(|| p6.readiness() & POLLIN != 0);
    let (n, _) = p6.recv_from(&mut buf, true).unwrap();
    assert_eq!((n, buf[0], buf[8]), (9, 129, 42));
    assert_eq!(p6.recv_from(&mut buf, false).unwrap().0, 9);
}
