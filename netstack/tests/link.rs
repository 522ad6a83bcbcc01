mod common;

use std::net::SocketAddr;

use common::link::*;
use common::{wait_until, Waiter};
use netstack::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn arp_request_gets_reply() {
    let (dev, host) = socketpair();
    let st = Stack::new(StackConfig {
        links: vec![link_cfg("eth0", MAC_A, IP_A, "fd00::1", dev)],
    })
    .unwrap();
    send_frame(&host, &arp_request(MAC_H, IP_H, IP_A));
    let mut reply = None;
    for _ in 0..50 {
        match recv_frame(&host, 100) {
            Some(f) if f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 2] => {
                reply = Some(f);
                break;
            }
            _ => {}
        }
    }
    let f = reply.expect("ARP reply");
    assert_eq!(&f[0..6], &MAC_H);
    assert_eq!(&f[22..28], &MAC_A);
    assert_eq!(&f[28..32], &IP_A);
    assert_eq!(&f[32..38], &MAC_H);
    assert!(st.interfaces()[1].counters.rx_packets >= 1);
    // An ARP request for another address is not answered.
    send_frame(&host, &arp_request(MAC_H, IP_H, [10, 0, 0, 77]));
    assert!(recv_frame(&host, 100).is_none());
}

#[test]
fn interfaces_and_routes() {
    let (dev, _host) = socketpair();
    let st = Stack::new(StackConfig {
        links: vec![link_cfg("eth0", MAC_A, IP_A, "fd00::1", dev)],
    })
    .unwrap();
    let ifs = st.interfaces();
    assert_eq!(ifs.len(), 2);
    assert_eq!(
        (ifs[0].index, ifs[0].name.as_str(), ifs[0].mtu),
        (1, "lo", 65536)
    );
    assert_eq!(
        ifs[0].flags & (iface::IFF_UP | iface::IFF_LOOPBACK | iface::IFF_RUNNING),
        0x49
    );
    assert_eq!(
        (ifs[1].index, ifs[1].name.as_str(), ifs[1].mtu, ifs[1].mac),
        (2, "eth0", 1500, MAC_A)
    );
    assert_eq!(ifs[1].flags & iface::IFF_LOOPBACK, 0);
    assert!(ifs[1].addrs.contains(&("10.0.0.1".parse().unwrap(), 24)));
    let rs = st.routes();
    assert!(rs
        .iter()
        .any(|r| r.dst == "10.0.0.0".parse::<std::net::IpAddr>().unwrap()
            && r.prefix == 24
            && r.ifindex == 2));
    assert!(rs
        .iter()
        .any(|r| r.prefix == 0 && r.gateway == Some("10.0.0.254".parse().unwrap())));
    assert!(rs.iter().any(
        |r| r.dst == "127.0.0.0".parse::<std::net::IpAddr>().unwrap()
            && r.prefix == 8
            && r.ifindex == 1
    ));
}

fn tcp_over_link(t: &TwoStacks, v6: bool) {
    let l = t.a.tcp(v6);
    l.bind(addr(if v6 { "[::]:8080" } else { "0.0.0.0:8080" }))
        .unwrap();
    l.listen(4).unwrap();
    let c = t.b.tcp(v6);
    let w = Waiter::default();
    c.set_notify(w.notify());
    let dst = addr(if v6 {
        "[fd00::1]:8080"
    } else {
        "10.0.0.1:8080"
    });
    let first = c.connect(dst);
    assert!(
        matches!(first, Ok(()) | Err(Errno::EINPROGRESS)),
        "{first:?}"
    );
    if first.is_err() {
        // The peer is another stack: the handshake cannot have completed yet
        // unless its thread was quick.
        let again = c.connect(dst);
        assert!(matches!(again, Ok(()) | Err(Errno::EALREADY)), "{again:?}");
        wait_until(|| c.readiness() & POLLOUT != 0);
        if again.is_err() {
            assert_eq!(c.connect(dst), Ok(()));
        }
    }
    assert_eq!(c.connect(dst), Err(Errno::EISCONN));
    let lw = Waiter::default();
    l.set_notify(lw.notify());
    let (s, peer) = lw.block(|| l.accept()).unwrap();
    assert_eq!(peer, c.local_addr().unwrap());
    assert_eq!(s.local_addr().unwrap(), dst);
    // 1 MiB each way.
    let data: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let d2 = data.clone();
    let h = std::thread::spawn(move || {
        let w = Waiter::default();
        s.set_notify(w.notify());
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while got.len() < d2.len() {
            let n = w.block(|| s.recv(&mut buf, false)).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got == d2);
        s
    });
    let mut off = 0;
    while off < data.len() {
        off += w.block(|| c.send(&data[off..])).unwrap();
    }
    let s = h.join().unwrap();
    s.send(b"done").unwrap();
    let mut b = [0u8; 4];
    assert_eq!(w.block(|| c.recv(&mut b, false)).unwrap(), 4);
    drop(s);
    assert_eq!(w.block(|| c.recv(&mut b, false)).unwrap(), 0);
}

#[test]
fn tcp_between_two_stacks() {
    let t = TwoStacks::new();
    let t0 = std::time::Instant::now();
    tcp_over_link(&t, false);
    eprintln!("link: 1 MiB each way in {:?}", t0.elapsed());
    let t0 = std::time::Instant::now();
    tcp_over_link_v6_port(&t);
    eprintln!("link: v6 in {:?}", t0.elapsed());
    let t0 = std::time::Instant::now();
    // Refused over the link (RST from the peer stack).
    let c = t.b.tcp(false);
    match c.connect(addr("10.0.0.1:9")) {
        Err(Errno::EINPROGRESS) => {
            wait_until(|| c.readiness() & POLLERR != 0);
            assert_eq!(c.take_error(), Some(Errno::ECONNREFUSED));
        }
        r => panic!("{r:?}"),
    }
    eprintln!("link: refused in {:?}", t0.elapsed());
}

fn tcp_over_link_v6_port(t: &TwoStacks) {
    let l = t.a.tcp(true);
    l.bind(addr("[fd00::1]:9090")).unwrap();
    l.listen(4).unwrap();
    let c = t.b.tcp(true);
    let r = c.connect(addr("[fd00::1]:9090"));
    assert!(matches!(r, Ok(()) | Err(Errno::EINPROGRESS)), "{r:?}");
    wait_until(|| c.readiness() & POLLOUT != 0);
    let lw = Waiter::default();
    l.set_notify(lw.notify());
    let (s, _) = lw.block(|| l.accept()).unwrap();
    c.send(b"six").unwrap();
    let w = Waiter::default();
    s.set_notify(w.notify());
    let mut b = [0u8; 8];
    assert_eq!(w.block(|| s.recv(&mut b, false)).unwrap(), 3);
}

#[test]
fn udp_between_two_stacks() {
    let t = TwoStacks::new();
    let a = t.a.udp(false);
    a.bind(addr("0.0.0.0:5353")).unwrap();
    let b = t.b.udp(false);
    let w = Waiter::default();
    a.set_notify(w.notify());
    // The first datagram may wait for ARP; smoltcp queues one.
    b.send_to(b"over the wire", Some(addr("10.0.0.1:5353")))
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = w.block(|| a.recv_from(&mut buf, false)).unwrap();
    assert_eq!(&buf[..n], b"over the wire");
    assert_eq!(from.ip().to_string(), "10.0.0.2");
    // Own link address goes over lo.
    let c = t.a.udp(false);
    c.send_to(b"self", Some(addr("10.0.0.1:5353"))).unwrap();
    let (n, from) = w.block(|| a.recv_from(&mut buf, false)).unwrap();
    assert_eq!(
        (&buf[..n], from.ip().to_string()),
        (&b"self"[..], "10.0.0.1".to_string())
    );
}

#[test]
fn off_link_traffic_goes_to_the_gateway() {
    let (dev, host) = socketpair();
    let st = Stack::new(StackConfig {
        links: vec![link_cfg("eth0", MAC_A, IP_A, "fd00::1", dev)],
    })
    .unwrap();
    let u = st.udp(false);
    u.send_to(b"dns?", Some(addr("192.0.2.1:53"))).unwrap();
    // A resolves the gateway 10.0.0.254, not the destination.
    let mut arp = None;
    for _ in 0..50 {
        match recv_frame(&host, 100) {
            Some(f) if f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 1] => {
                arp = Some(f);
                break;
            }
            _ => {}
        }
    }
    let f = arp.expect("ARP request");
    assert_eq!(&f[38..42], &[10, 0, 0, 254]);
    assert_eq!(u.local_addr().unwrap().ip().to_string(), "0.0.0.0");
    // Answer it: the datagram follows, addressed to the gateway's MAC.
    let mut reply = vec![0, 1, 8, 0, 6, 4, 0, 2];
    reply.extend_from_slice(&MAC_H);
    reply.extend_from_slice(&[10, 0, 0, 254]);
    reply.extend_from_slice(&MAC_A);
    reply.extend_from_slice(&IP_A);
    send_frame(&host, &eth(MAC_A, MAC_H, 0x0806, &reply));
    let mut got = None;
    for _ in 0..50 {
        match recv_frame(&host, 100) {
            Some(f) if f.len() > 42 && f[12..14] == [0x08, 0x00] && f[23] == 17 => {
                got = Some(f);
                break;
            }
            _ => {}
        }
    }
    let f = got.expect("UDP datagram to the gateway");
    assert_eq!(&f[0..6], &MAC_H);
    assert_eq!(&f[26..30], &IP_A);
    assert_eq!(&f[30..34], &[192, 0, 2, 1]);
    assert_eq!(&f[42..46], b"dns?");
    // No IPv6 default route.
    assert_eq!(
        st.udp(true).send_to(b"x", Some(addr("[2001:db8::1]:53"))),
        Err(Errno::ENETUNREACH)
    );
}

#[test]
fn syn_flood_is_bounded() {
    let (dev, host) = socketpair();
    let st = Stack::new(StackConfig {
        links: vec![link_cfg("eth0", MAC_A, IP_A, "fd00::1", dev)],
    })
    .unwrap();
    let l = st.tcp(false);
    l.bind(addr("0.0.0.0:80")).unwrap();
    l.listen(4).unwrap();
    send_frame(&host, &arp_request(MAC_H, IP_H, IP_A));
    let drain = std::thread::spawn(move || {
        let mut n = 0;
        for i in 0..2000u32 {
            let syn = tcp4(
                IP_H,
                IP_A,
                1024 + (i % 60000) as u16,
                80,
                i * 1000,
                0,
                0x02,
                &[],
            );
            send_frame(&host, &eth(MAC_A, MAC_H, 0x0800, &syn));
            while recv_frame(&host, 0).is_some() {
                n += 1;
            }
        }
        while recv_frame(&host, 200).is_some() {
            n += 1;
        }
        n
    });
    let replies = drain.join().unwrap();
    assert!(replies > 0);
    // The loopback path still works and nothing was queued for accept.
    assert_eq!(l.accept().err(), Some(Errno::EAGAIN));
    let c = st.tcp(false);
    assert_eq!(
        c.connect(addr("127.0.0.1:80")),
        Ok(()),
        "listener still serves (pool replenished or RST)"
    );
}
