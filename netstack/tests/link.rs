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
            send_blocking(&host, &eth(MAC_A, MAC_H, 0x0800, &syn));
            // Paced by the answers (SYN-ACK or RST), so that half-open
            // connections pile up to the limit (a burst mostly gets RSTs).
            let mut wait = 50;
            while recv_frame(&host, wait).is_some() {
                n += 1;
                wait = 0;
            }
        }
        while recv_frame(&host, 200).is_some() {
            n += 1;
        }
        (n, host)
    });
    let (replies, host) = drain.join().unwrap();
    assert!(replies > 0);
    // The flood's half-open connections (never answered) do not lock out a
    // new client: its SYN gets a SYN-ACK, not a RST.
    let syn = tcp4(IP_H, IP_A, 4242, 80, 77, 0, 0x02, &[]);
    send_frame(&host, &eth(MAC_A, MAC_H, 0x0800, &syn));
    let mut flags = None;
    while let Some(f) = recv_frame(&host, 500) {
        // Ethernet 14 + IPv4 20: TCP dport at 36, flags at 47.
        if f.len() >= 54 && f[23] == 6 && f[36..38] == 4242u16.to_be_bytes() {
            flags = Some(f[47]);
            break;
        }
    }
    assert_eq!(flags, Some(0x12), "answer to a SYN after the flood");
    // The loopback path still works and nothing was queued for accept.
    assert_eq!(l.accept().err(), Some(Errno::EAGAIN));
    let c = st.tcp(false);
    assert_eq!(
        c.connect(addr("127.0.0.1:80")),
        Ok(()),
        "listener still serves (pool replenished or RST)"
    );
}

/// The "netstack" threads of this process.
fn stack_threads() -> Vec<u32> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|t| {
            std::fs::read_to_string(format!("/proc/self/task/{t}/comm"))
                .is_ok_and(|c| c.trim() == "netstack")
        })
        .collect()
}

/// CPU time (user + system, clock ticks) of thread `tid` of this process.
fn thread_ticks(tid: u32) -> u64 {
    // A thread of another test's stack that ended meanwhile counts nothing.
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
        return 0;
    };
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Empty frames and frames larger than any IP packet are dropped (counted),
/// not parsed truncated; the link keeps working. Frames bigger than the MTU
/// but holding a whole IP packet (a veth's TSO/GSO segments) are taken.
#[test]
fn empty_and_oversized_frames_are_dropped() {
    let (dev, host) = socketpair();
    let st = Stack::new(StackConfig {
        links: vec![link_cfg("eth0", MAC_A, IP_A, "fd00::1", dev)],
    })
    .unwrap();
    let u = st.udp(false);
    u.bind(addr("0.0.0.0:7")).unwrap();
    send_blocking(&host, &[]);
    let mut huge = eth(MAC_A, MAC_H, 0x0800, &udp4(IP_H, IP_A, 9, 7, &[7u8; 60000]));
    huge.resize(70000, 0);
    send_blocking(&host, &huge);
    wait_until(|| st.interfaces()[1].counters.rx_dropped == 2);
    assert_eq!(u.recv_from(&mut [0u8; 8], false).err(), Some(Errno::EAGAIN));
    // A 20000-byte datagram in one frame (MTU 1500).
    let data: Vec<u8> = (0..20000u32).map(|i| i as u8).collect();
    send_blocking(
        &host,
        &eth(MAC_A, MAC_H, 0x0800, &udp4(IP_H, IP_A, 9, 7, &data)),
    );
    let mut buf = vec![0u8; 30000];
    let mut got = None;
    wait_until(|| match u.recv_from(&mut buf, false) {
        Ok((n, from)) => {
            got = Some((n, from));
            true
        }
        Err(_) => false,
    });
    let (n, from) = got.unwrap();
    assert_eq!(&buf[..n], &data[..]);
    assert_eq!(from, addr("10.0.0.99:9"));
    assert_eq!(st.interfaces()[1].counters.rx_dropped, 2);
}

/// A link whose host side is gone (reads fail or find nothing, sends fail)
/// does not make the stack thread spin, and loopback still works.
#[test]
fn dead_link_does_not_spin() {
    let (dev, host) = socketpair();
    let before = stack_threads();
    let st = Stack::new(StackConfig {
        links: vec![link_cfg("eth0", MAC_A, IP_A, "fd00::1", dev)],
    })
    .unwrap();
    let mine: Vec<u32> = stack_threads()
        .into_iter()
        .filter(|t| !before.contains(t))
        .collect();
    drop(host);
    // Traffic to the link: ARP requests that cannot be sent.
    let u = st.udp(false);
    for _ in 0..10 {
        let _ = u.send_to(b"x", Some(addr("10.0.0.77:9")));
    }
    let ticks = || mine.iter().map(|&t| thread_ticks(t)).sum::<u64>();
    let t0 = ticks();
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let used = ticks() - t0;
    // SAFETY: sysconf cannot fail for _SC_CLK_TCK.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    assert!(
        used * 5 < hz,
        "the stack thread used {used} ticks ({hz}/s) in 1 s"
    );
    let a = st.udp(false);
    a.bind(addr("127.0.0.1:5000")).unwrap();
    u.send_to(b"hi", Some(addr("127.0.0.1:5000"))).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(a.recv_from(&mut buf, false).unwrap().0, 2);
}

/// A flood of junk frames on the link does not starve loopback traffic or
/// the stack's timers.
#[test]
fn link_flood_does_not_starve_loopback() {
    let (dev, host) = socketpair();
    let st = Stack::new(StackConfig {
        links: vec![link_cfg("eth0", MAC_A, IP_A, "fd00::1", dev)],
    })
    .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let flood = std::thread::spawn(move || {
        let mut n = 0u64;
        let mut i = 0u32;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            i = i.wrapping_add(1);
            // SYNs to a closed port (each answered by a RST) and junk.
            let f = if i.is_multiple_of(2) {
                eth(
                    MAC_A,
                    MAC_H,
                    0x0800,
                    &tcp4(IP_H, IP_A, 1000 + (i % 50000) as u16, 81, i, 0, 0x02, &[]),
                )
            } else {
                eth(MAC_A, MAC_H, 0x0800, &[0x45; 40])
            };
            send_blocking(&host, &f);
            while recv_frame(&host, 0).is_some() {}
            n += 1;
        }
        n
    });
    std::thread::sleep(std::time::Duration::from_millis(100));
    let a = st.udp(false);
    a.bind(addr("127.0.0.1:5001")).unwrap();
    let b = st.udp(false);
    let start = std::time::Instant::now();
    let mut buf = [0u8; 8];
    for _ in 0..200 {
        b.send_to(b"ping", Some(addr("127.0.0.1:5001"))).unwrap();
        assert_eq!(a.recv_from(&mut buf, false).unwrap().0, 4);
    }
    // A loopback TCP connection completes meanwhile.
    let l = st.tcp(false);
    l.bind(addr("127.0.0.1:5002")).unwrap();
    l.listen(8).unwrap();
    let c = st.tcp(false);
    assert_eq!(c.connect(addr("127.0.0.1:5002")), Ok(()));
    let took = start.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let frames = flood.join().unwrap();
    assert!(frames > 100, "flood sent {frames}");
    assert!(
        took < std::time::Duration::from_secs(5),
        "loopback took {took:?} under a flood"
    );
}
