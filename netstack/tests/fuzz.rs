//! Hostile link input: random frames and mutations of valid ones are injected
//! into a stack's link; the stack must not panic and must still serve TCP.

mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::link::*;
use common::Waiter;
use netstack::*;
use proptest::prelude::*;

struct Harness {
    t: TwoStacks,
    listener: TcpEndpoint,
    _udp: UdpEndpoint,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let t = TwoStacks::new();
        let listener = t.a.tcp(true);
        listener.bind("[::]:7777".parse().unwrap()).unwrap();
        listener.listen(64).unwrap();
        let udp = t.a.udp(false);
        udp.bind("0.0.0.0:5353".parse().unwrap()).unwrap();
        Harness {
            t,
            listener,
            _udp: udp,
        }
    })
}

fn valid_frames() -> Vec<Vec<u8>> {
    let a6 = v6("fd00::1");
    let h6 = v6("fd00::99");
    let mut ns = vec![135u8, 0, 0, 0, 0, 0, 0, 0];
    ns.extend_from_slice(&a6);
    ns.extend_from_slice(&[1, 1]);
    ns.extend_from_slice(&MAC_H);
    let mut echo6 = vec![128u8, 0, 0, 0, 0, 9, 0, 1];
    echo6.extend_from_slice(b"ping6");
    let ip4 = |p: Vec<u8>| eth(MAC_A, MAC_H, 0x0800, &p);
    let ip6 = |p: Vec<u8>| eth(MAC_A, MAC_H, 0x86dd, &p);
    let mut frag = udp4(IP_H, IP_A, 1, 5353, &[0u8; 64]);
    frag[6] = 0x20; // more fragments
    vec![
        arp_request(MAC_H, IP_H, IP_A),
        ip4(tcp4(IP_H, IP_A, 40000, 7777, 1000, 0, 0x02, &[])),
        ip4(tcp4(IP_H, IP_A, 40001, 7777, 1000, 5000, 0x10, b"data")),
        ip4(tcp4(IP_H, IP_A, 40002, 7777, 1000, 5000, 0x04, &[])),
        ip4(tcp4(IP_H, IP_A, 40003, 7777, 1000, 5000, 0x11, &[])),
        ip4(tcp4(IP_H, IP_A, 40004, 1, 1000, 0, 0x02, &[])),
        ip4(udp4(IP_H, IP_A, 53, 5353, b"datagram")),
        ip4(udp4(IP_H, IP_A, 53, 9, b"closed port")),
        ip4(icmp4_echo(IP_H, IP_A, b"ping")),
        ip4(frag),
        ip6(icmp6(h6, a6, &ns)),
        ip6(icmp6(h6, a6, &echo6)),
        eth(
            [0xff; 6],
            MAC_H,
            0x86dd,
            &icmp6(h6, v6("ff02::1:ff00:1"), &ns),
        ),
    ]
}

fn frame() -> impl Strategy<Value = Vec<u8>> {
    let n = valid_frames().len();
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..1600),
        (
            0..n,
            proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            proptest::option::of(any::<usize>())
        )
            .prop_map(|(i, muts, trunc)| {
                let mut f = valid_frames()[i].clone();
                for (pos, v) in muts {
                    if !f.is_empty() {
                        let p = pos % f.len();
                        f[p] = v;
                    }
                }
                if let Some(t) = trunc {
                    f.truncate(t % (f.len() + 1));
                }
                f
            }),
        (
            0..n,
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(i, at, extra)| {
                // Garbage appended to (or inserted into) a valid frame.
                let mut f = valid_frames()[i].clone();
                let at = at % (f.len() + 1);
                f.splice(at..at, extra);
                f
            }),
    ]
}

/// B connects to A's fuzzed listener and exchanges data.
fn serves_tcp(h: &Harness) {
    let c = h.t.b.tcp(false);
    let w = Waiter::default();
    c.set_notify(w.notify());
    let dst: SocketAddr = "10.0.0.1:7777".parse().unwrap();
    match c.connect(dst) {
        Ok(()) | Err(Errno::EINPROGRESS) => {}
        Err(e) => panic!("connect: {e:?}"),
    }
    let start = Instant::now();
    while c.readiness() & POLLOUT == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "connect did not complete"
        );
        let g = w.gen();
        w.wait_past(g, Duration::from_millis(20));
    }
    assert_eq!(c.take_error(), None);
    let me = c.local_addr().unwrap();
    let lw = Waiter::default();
    h.listener.set_notify(lw.notify());
    let s = loop {
        let (s, peer) = lw.block(|| h.listener.accept()).unwrap();
        if peer.port() == me.port() {
            break s;
        }
    };
    c.send(b"still alive").unwrap();
    let sw = Waiter::default();
    s.set_notify(sw.notify());
    let mut buf = [0u8; 32];
    let n = sw.block(|| s.recv(&mut buf, false)).unwrap();
    assert_eq!(&buf[..n], b"still alive");
}

proptest! {
    // NETSTACK_FUZZ_CASES=N runs a longer campaign.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("NETSTACK_FUZZ_CASES").ok().and_then(|v| v.parse().ok())
            .unwrap_or(if cfg!(debug_assertions) { 24 } else { 96 }),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn hostile_frames(frames in proptest::collection::vec(frame(), 1..24)) {
        let h = harness();
        let before = h.t.a.interfaces()[1].counters.rx_packets;
        for f in &frames {
            send_frame(&h.t.inject, f);
        }
        // Mutated ARP packets may have poisoned A's entry for B (ARP has no
        // authentication, on Linux either): B announces itself again.
        send_frame(&h.t.inject, &arp_request(MAC_B, IP_B, IP_A));
        let t0 = Instant::now();
        serves_tcp(h);
        if t0.elapsed() > Duration::from_secs(2) {
            eprintln!("slow case ({:?}):", t0.elapsed());
            for f in &frames {
                eprintln!("  {:02x?}", &f[..f.len().min(64)]);
            }
        }
        let after = h.t.a.interfaces()[1].counters.rx_packets;
        // Every injected frame (but empty ones) reached the stack.
        prop_assert!(after >= before + frames.iter().filter(|f| !f.is_empty()).count() as u64);
    }
}

#[test]
fn valid_frames_are_answered() {
    // Sanity check of the builders: the echo request gets a reply (after ARP).
    let (dev, host) = socketpair();
    let _st = Stack::new(StackConfig {
        links: vec![link_cfg("eth0", MAC_A, IP_A, "fd00::1", dev)],
    })
    .unwrap();
    send_frame(&host, &arp_request(MAC_H, IP_H, IP_A));
    send_frame(
        &host,
        &eth(MAC_A, MAC_H, 0x0800, &icmp4_echo(IP_H, IP_A, b"ping")),
    );
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(5), "no echo reply");
        let Some(f) = recv_frame(&host, 100) else {
            continue;
        };
        if f.len() > 34 && f[12..14] == [8, 0] && f[23] == 1 && f[34] == 0 {
            break;
        }
    }
}
