//! Test links: socketpair(AF_UNIX, SOCK_DGRAM) ends standing in for packet
//! sockets, frame builders, and a relay joining two stacks.
#![allow(dead_code)]

use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use netstack::*;

pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
pub const MAC_H: [u8; 6] = [0x02, 0, 0, 0, 0, 0x99];
pub const IP_A: [u8; 4] = [10, 0, 0, 1];
pub const IP_B: [u8; 4] = [10, 0, 0, 2];
pub const IP_H: [u8; 4] = [10, 0, 0, 99];

pub fn socketpair() -> (OwnedFd, OwnedFd) {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid array of two ints.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(r, 0);
    // SAFETY: fresh fds owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

pub fn send_frame(fd: &OwnedFd, f: &[u8]) {
    // SAFETY: valid buffer.
    unsafe {
        libc::send(
            fd.as_raw_fd(),
            f.as_ptr().cast(),
            f.len(),
            libc::MSG_DONTWAIT,
        )
    };
}

pub fn send_blocking(fd: &OwnedFd, f: &[u8]) {
    // SAFETY: valid buffer.
    unsafe { libc::send(fd.as_raw_fd(), f.as_ptr().cast(), f.len(), 0) };
}

/// Receives one frame, waiting up to `ms` milliseconds.
pub fn recv_frame(fd: &OwnedFd, ms: i32) -> Option<Vec<u8>> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    if unsafe { libc::poll(&mut p, 1, ms) } <= 0 {
        return None;
    }
    let mut buf = vec![0u8; 70000];
    // SAFETY: valid buffer.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

pub fn link_cfg(name: &str, mac: [u8; 6], ip4: [u8; 4], ip6: &str, fd: OwnedFd) -> LinkConfig {
    LinkConfig {
        name: name.into(),
        mac,
        mtu: 1500,
        addrs: vec![(IpAddr::from(ip4), 24), (ip6.parse().unwrap(), 64)],
        routes: vec![RouteConfig {
            dst: "0.0.0.0".parse().unwrap(),
            prefix: 0,
            gateway: "10.0.0.254".parse().unwrap(),
        }],
        device: Box::new(FdLink::new(fd).unwrap()),
    }
}

/// Two stacks A (10.0.0.1, fd00::1) and B (10.0.0.2, fd00::2) joined by a
/// relay thread; `inject` writes frames to A's link as if from the wire.
pub struct TwoStacks {
    pub a: Arc<Stack>,
    pub b: Arc<Stack>,
    pub inject: Arc<OwnedFd>,
    stop: Arc<AtomicBool>,
}

impl TwoStacks {
    pub fn new() -> TwoStacks {
        let (a_dev, a_host) = socketpair();
        let (b_dev, b_host) = socketpair();
        let a = Stack::new(StackConfig {
            links: vec![link_cfg("eth0", MAC_A, IP_A, "fd00::1", a_dev)],
        })
        .unwrap();
        let b = Stack::new(StackConfig {
            links: vec![link_cfg("eth0", MAC_B, IP_B, "fd00::2", b_dev)],
        })
        .unwrap();
        let a_host = Arc::new(a_host);
        let stop = Arc::new(AtomicBool::new(false));
        let (ah, st) = (a_host.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let mut p = [
                    libc::pollfd {
                        fd: ah.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    },
                    libc::pollfd {
                        fd: b_host.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    },
                ];
                // SAFETY: two valid pollfds.
                unsafe { libc::poll(p.as_mut_ptr(), 2, 50) };
                if p[0].revents != 0 {
                    while let Some(f) = recv_frame(&ah, 0) {
                        send_blocking(&b_host, &f);
                    }
                }
                if p[1].revents != 0 {
                    while let Some(f) = recv_frame(&b_host, 0) {
                        send_blocking(&ah, &f);
                    }
                }
            }
        });
        TwoStacks {
            a,
            b,
            inject: a_host,
            stop,
        }
    }
}

impl Drop for TwoStacks {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub fn csum(data: &[u8], init: u32) -> u16 {
    let mut s = init;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        s += w as u32;
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub fn arp_request(sender_mac: [u8; 6], sender_ip: [u8; 4], target_ip: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0, 1, 8, 0, 6, 4, 0, 1];
    p.extend_from_slice(&sender_mac);
    p.extend_from_slice(&sender_ip);
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&target_ip);
    eth([0xff; 6], sender_mac, 0x0806, &p)
}

pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    let len = 20 + payload.len();
    let mut h = vec![
        0x45,
        0,
        (len >> 8) as u8,
        len as u8,
        0,
        1,
        0x40,
        0,
        64,
        proto,
        0,
        0,
    ];
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = csum(&h, 0);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn pseudo4(src: [u8; 4], dst: [u8; 4], proto: u8, len: usize) -> u32 {
    let mut s = 0u32;
    for c in src.chunks(2).chain(dst.chunks(2)) {
        s += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    s + proto as u32 + len as u32
}

#[allow(clippy::too_many_arguments)]
pub fn tcp4(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    data: &[u8],
) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&[0x60, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(&[2, 4, 0x05, 0xb4]); // MSS option
    t.extend_from_slice(data);
    let c = csum(&t, pseudo4(src, dst, 6, t.len()));
    t[16..18].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, 6, &t)
}

pub fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let len = 8 + data.len();
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(len as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    let c = csum(&u, pseudo4(src, dst, 17, len));
    u[6..8].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, 17, &u)
}

pub fn icmp4_echo(src: [u8; 4], dst: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
    m.extend_from_slice(data);
    let c = csum(&m, 0);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, 1, &m)
}

pub fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.push(next);
    h.push(255);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

pub fn icmp6(src: [u8; 16], dst: [u8; 16], msg: &[u8]) -> Vec<u8> {
    let mut m = msg.to_vec();
    let mut s = 0u32;
    for c in src.chunks(2).chain(dst.chunks(2)) {
        s += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    s += m.len() as u32 + 58;
    m[2] = 0;
    m[3] = 0;
    let c = csum(&m, s);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ipv6(src, dst, 58, &m)
}

pub fn v6(s: &str) -> [u8; 16] {
    s.parse::<std::net::Ipv6Addr>().unwrap().octets()
}
