//! netlink message encoding and request handling.

use super::*;
use crate::net::LoopbackOnly;
use proptest::prelude::*;

fn req(ty: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    MsgBuilder::new(ty, flags, seq, 0).fixed(body).finish()
}

fn run(buf: &[u8], opts: ReqOpts) -> Vec<Vec<u8>> {
    process(&LoopbackOnly, buf, opts, 77, &mut |_| true)
}

/// All messages of all datagrams.
fn all(dgrams: &[Vec<u8>]) -> Vec<(u16, u16, u32, u32, Vec<u8>)> {
    dgrams
        .iter()
        .flat_map(|d| {
            messages(d)
                .into_iter()
                .map(|m| (m.ty, m.flags, m.seq, m.pid, m.payload().to_vec()))
        })
        .collect()
}

#[test]
fn link_dump() {
    let d = run(
        &req(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 5, &[0; 16]),
        ReqOpts::default(),
    );
    assert_eq!(d.len(), 2);
    let ms = all(&d);
    assert_eq!(ms.len(), 2);
    let (ty, flags, seq, pid, body) = &ms[0];
    assert_eq!((*ty, *flags, *seq, *pid), (RTM_NEWLINK, NLM_F_MULTI, 5, 77));
    assert_eq!(le16(body, 2), Some(772));
    assert_eq!(le32(body, 4), Some(1));
    let a = attrs(&body[16..]);
    let get = |t| a.iter().find(|(x, _)| *x == t).map(|(_, v)| v.to_vec());
    assert_eq!(get(IFLA_IFNAME), Some(b"lo\0".to_vec()));
    assert_eq!(get(IFLA_MTU), Some(65536u32.to_le_bytes().to_vec()));
    assert_eq!(get(IFLA_ADDRESS), Some(vec![0; 6]));
    assert_eq!(get(IFLA_STATS).map(|v| v.len()), Some(96));
    assert_eq!(get(IFLA_STATS64).map(|v| v.len()), Some(200));
    assert_eq!(ms[1].0, NLMSG_DONE);
    assert_eq!(ms[1].4, vec![0; 4]);
}

#[test]
fn link_by_index_and_name() {
    let mut hdr = [0u8; 16];
    hdr[4] = 1;
    let d = run(
        &req(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 9, &hdr),
        ReqOpts::default(),
    );
    let ms = all(&d);
    assert_eq!(ms.len(), 2);
    assert_eq!(ms[0].0, RTM_NEWLINK);
    assert_eq!((ms[1].0, le32(&ms[1].4, 0)), (NLMSG_ERROR, Some(0)));
    // By name.
    let m = MsgBuilder::new(RTM_GETLINK, NLM_F_REQUEST, 1, 0)
        .fixed(&[0; 16])
        .str_attr(IFLA_IFNAME, "lo")
        .finish();
    assert_eq!(all(&run(&m, ReqOpts::default()))[0].0, RTM_NEWLINK);
    let m = MsgBuilder::new(RTM_GETLINK, NLM_F_REQUEST, 1, 0)
        .fixed(&[0; 16])
        .str_attr(IFLA_IFNAME, "eth7")
        .finish();
    let ms = all(&run(&m, ReqOpts::default()));
    assert_eq!(
        (ms[0].0, le32(&ms[0].4, 0)),
        (NLMSG_ERROR, Some((-19i32) as u32))
    );
    // The error quotes the request.
    assert_eq!(&ms[0].4[4..], &m[..]);
    // Short header: EINVAL.
    let ms = all(&run(
        &req(RTM_GETLINK, NLM_F_REQUEST, 1, &[0; 4]),
        ReqOpts::default(),
    ));
    assert_eq!(le32(&ms[0].4, 0), Some((-22i32) as u32));
}

#[test]
fn addr_dump_families() {
    let count = |fam: u8| {
        let ms = all(&run(
            &req(
                RTM_GETADDR,
                NLM_F_REQUEST | NLM_F_DUMP,
                1,
                &[fam, 0, 0, 0, 0, 0, 0, 0],
            ),
            ReqOpts::default(),
        ));
        assert_eq!(ms.last().unwrap().0, NLMSG_DONE);
        ms[..ms.len() - 1]
            .iter()
            .map(|m| (m.4[0], m.4[1], m.4[3]))
            .collect::<Vec<_>>()
    };
    assert_eq!(count(0), vec![(2, 8, 254), (10, 128, 254)]);
    assert_eq!(count(2), vec![(2, 8, 254)]);
    assert_eq!(count(10), vec![(10, 128, 254)]);
    let ms = all(&run(
        &req(
            RTM_GETADDR,
            NLM_F_REQUEST | NLM_F_DUMP,
            1,
            &[2, 0, 0, 0, 0, 0, 0, 0],
        ),
        ReqOpts::default(),
    ));
    let a = attrs(&ms[0].4[8..]);
    assert!(a.contains(&(IFA_LOCAL, &[127, 0, 0, 1][..])));
    assert!(a.contains(&(IFA_LABEL, &b"lo\0"[..])));
}

#[test]
fn route_dump() {
    let ms = all(&run(
        &req(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0; 12]),
        ReqOpts::default(),
    ));
    assert_eq!(ms.len(), 5);
    assert_eq!(ms[0].4[..8], [2, 8, 0, 0, 255, 2, 254, 2]);
    assert_eq!(ms[3].4[0], 10);
    let ms = all(&run(
        &req(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, 1, &[10; 12]),
        ReqOpts::default(),
    ));
    assert_eq!(ms.len(), 2);
}

#[test]
fn changes_and_unknown_types() {
    for ty in [RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE, 17, 21, 25] {
        let ms = all(&run(
            &req(ty, NLM_F_REQUEST, 3, &[0; 16]),
            ReqOpts::default(),
        ));
        assert_eq!(le32(&ms[0].4, 0), Some((-1i32) as u32), "type {ty}");
    }
    let ms = all(&run(
        &req(30, NLM_F_REQUEST | NLM_F_DUMP, 3, &[0; 16]),
        ReqOpts::default(),
    ));
    assert_eq!(le32(&ms[0].4, 0), Some((-95i32) as u32));
    let ms = all(&run(
        &req(1000, NLM_F_REQUEST, 3, &[0; 16]),
        ReqOpts::default(),
    ));
    assert_eq!(le32(&ms[0].4, 0), Some((-95i32) as u32));
    // Capped errors quote only the header.
    let ms = all(&run(
        &req(1000, NLM_F_REQUEST, 3, &[0; 16]),
        ReqOpts {
            cap_ack: true,
            strict: false,
        },
    ));
    assert_eq!(ms[0].4.len(), 4 + NLMSG_HDRLEN);
    assert_eq!(ms[0].1, NLM_F_CAPPED);
    // No-ops: acked only when asked.
    assert!(run(&req(NLMSG_NOOP, NLM_F_REQUEST, 3, &[]), ReqOpts::default()).is_empty());
    assert_eq!(
        run(
            &req(NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, 3, &[]),
            ReqOpts::default()
        )
        .len(),
        1
    );
    assert!(run(
        &req(RTM_GETLINK, NLM_F_DUMP, 3, &[0; 16]),
        ReqOpts::default()
    )
    .is_empty());
}

#[test]
fn several_requests_in_one_buffer() {
    let mut b = req(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0; 16]);
    b.extend(req(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 2, &[0; 8]));
    // A truncated third one is ignored.
    b.extend_from_slice(&[100, 0, 0, 0, 18, 0, 1, 0]);
    let d = run(&b, ReqOpts::default());
    assert_eq!(d.len(), 4);
    assert_eq!(all(&d).iter().filter(|m| m.0 == NLMSG_DONE).count(), 2);
}

#[test]
fn big_dumps_are_split() {
    struct Many;
    impl NetInfo for Many {
        fn interfaces(&self) -> Vec<Interface> {
            (1..=50)
                .map(|i| Interface {
                    index: i,
                    name: format!("eth{i}"),
                    ..LoopbackOnly::lo()
                })
                .collect()
        }
        fn routes(&self) -> Vec<Route> {
            Vec::new()
        }
    }
    let d = process(
        &Many,
        &req(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0; 16]),
        ReqOpts::default(),
        1,
        &mut |_| true,
    );
    assert!(d.len() > 1);
    assert!(d.iter().all(|x| x.len() <= DUMP_DATAGRAM));
    assert_eq!(all(&d).len(), 51);
}

#[test]
fn socket_round_trip() {
    let net = Arc::new(Net::default());
    let s = new_socket(net.clone(), libc::SOCK_RAW, 0).unwrap();
    assert_eq!(
        new_socket(net.clone(), libc::SOCK_STREAM, 0).err(),
        Some(Errno::ESOCKTNOSUPPORT)
    );
    assert_eq!(
        new_socket(net.clone(), libc::SOCK_RAW, 9).err(),
        Some(Errno::EPROTONOSUPPORT)
    );
    let paths = fs::socket::NoPaths;
    let cx = SockCx {
        cred: PeerCred {
            pid: 42,
            uid: 0,
            gid: 0,
        },
        fsuid: 0,
        fsgid: 0,
        paths: &paths,
        nonblock: true,
    };
    s.bind(&cx, &SockAddr::Netlink { pid: 0, groups: 0 })
        .unwrap();
    assert_eq!(s.sockname(), SockAddr::Netlink { pid: 42, groups: 0 });
    let s2 = new_socket(net.clone(), libc::SOCK_DGRAM, 0).unwrap();
    assert_eq!(
        s2.bind(&cx, &SockAddr::Netlink { pid: 42, groups: 0 }),
        Err(Errno::EADDRINUSE)
    );
    s2.bind(&cx, &SockAddr::Netlink { pid: 0, groups: 0 })
        .unwrap();
    assert_eq!(
        s2.sockname(),
        SockAddr::Netlink {
            pid: (-4097i32) as u32,
            groups: 0
        }
    );
    let mut buf = [0u8; 8192];
    assert_eq!(s.recv(&mut buf, 0).err(), Some(Errno::EAGAIN));
    let r = req(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0; 8]);
    assert_eq!(
        s.send(&cx, &r, None, &mut Control::default(), 0),
        Ok(r.len())
    );
    assert_ne!(s.readiness() & EVENT_IN, 0);
    let p = s.recv(&mut buf[..10], libc::MSG_PEEK).unwrap();
    assert_eq!(p.copied, 10);
    let got = s.recv(&mut buf, 0).unwrap();
    assert_eq!(got.full, p.full);
    assert_eq!(got.from, Some(SockAddr::Netlink { pid: 0, groups: 0 }));
    assert_eq!(all(&[buf[..got.copied].to_vec()]).len(), 2);
    s.release();
    s2.release();
    assert!(net.claim_port(42));
}

#[test]
fn receive_queue_is_bounded() {
    let net = Arc::new(Net::default());
    let s = new_socket(net, libc::SOCK_RAW, 0).unwrap();
    let paths = fs::socket::NoPaths;
    let cx = SockCx {
        cred: PeerCred::default(),
        fsuid: 0,
        fsgid: 0,
        paths: &paths,
        nonblock: true,
    };
    let one = req(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0; 16]);
    let many: Vec<u8> = one.iter().cycle().take(one.len() * 5000).copied().collect();
    s.send(&cx, &many, None, &mut Control::default(), 0)
        .unwrap();
    assert!(s.lock().rx_bytes <= DEFAULT_BUF + 4096);
    let mut buf = [0u8; 4096];
    assert_eq!(s.recv(&mut buf, 0).err(), Some(Errno::ENOBUFS));
    assert!(s.recv(&mut buf, 0).is_ok());
}

proptest! {
    #[test]
    fn random_requests_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300), ty in 0u16..130, flags in any::<u16>(), lenfix in any::<bool>()) {
        let mut m = req(ty, flags, 1, &body);
        if !lenfix {
            let l = (body.len() as u32).wrapping_mul(7);
            m[..4].copy_from_slice(&l.to_le_bytes());
        }
        let _ = run(&m, ReqOpts { cap_ack: flags & 1 != 0, strict: flags & 2 != 0 });
    }

    #[test]
    fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = run(&b, ReqOpts::default());
        let _ = attrs(&b);
    }
}
