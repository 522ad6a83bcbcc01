//! AF_NETLINK sockets of protocol NETLINK_ROUTE, read-only: the kernel side
//! answers RTM_GETLINK, RTM_GETADDR and RTM_GETROUTE from the kernel's
//! [`NetInfo`] (what glibc's getifaddrs/if_nameindex and `ip` ask), and
//! refuses changes with EPERM, as Linux does for a process without
//! CAP_NET_ADMIN over the namespace. No multicast notifications are ever
//! sent (the configuration does not change under the workload's feet).
//!
//! Requests are parsed as Linux's netlink_rcv_skb and rtnetlink_rcv_msg do;
//! replies are built at send time and queued as datagrams (a dump's messages
//! packed several to a datagram, NLMSG_DONE with the last ones).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use abi::Errno;
use fs::socket::{Control, PeerCred, Recv, SockAddr, SockCx, Socket};
use fs::waiter::{WaitQueue, EVENT_ERR, EVENT_IN, EVENT_OUT};
use fs::UserIo;

use super::{Interface, LinkKind, Net, NetInfo, Route, IFF_LOWER_UP, IFF_UP};

pub const NETLINK_ROUTE: i32 = 0;
/// Linux's MAX_LINKS: netlink protocols are 0..32.
const MAX_LINKS: i32 = 32;
pub const SOL_NETLINK: i32 = 270;

// nlmsghdr.
pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
/// Types below this are netlink control messages.
const NLMSG_MIN_TYPE: u16 = 0x10;
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_CAPPED: u16 = 0x100;

// rtnetlink message types.
pub const RTM_BASE: u16 = 16;
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_GETROUTE: u16 = 26;
/// Linux's RTM_MAX (6.x): larger types are EOPNOTSUPP.
const RTM_MAX: u16 = 123;

// Link attributes.
pub const IFLA_ADDRESS: u16 = 1;
pub const IFLA_BROADCAST: u16 = 2;
pub const IFLA_IFNAME: u16 = 3;
pub const IFLA_MTU: u16 = 4;
pub const IFLA_QDISC: u16 = 6;
pub const IFLA_STATS: u16 = 7;
pub const IFLA_TXQLEN: u16 = 13;
pub const IFLA_OPERSTATE: u16 = 16;
pub const IFLA_LINKMODE: u16 = 17;
pub const IFLA_STATS64: u16 = 23;
pub const IFLA_GROUP: u16 = 27;
pub const IFLA_PROMISCUITY: u16 = 30;
pub const IFLA_NUM_TX_QUEUES: u16 = 31;
pub const IFLA_NUM_RX_QUEUES: u16 = 32;
pub const IFLA_CARRIER: u16 = 33;
pub const IFLA_MIN_MTU: u16 = 50;
pub const IFLA_MAX_MTU: u16 = 51;
pub const IFLA_ALT_IFNAME: u16 = 53;
const IF_OPER_UNKNOWN: u8 = 0;
const IF_OPER_DOWN: u8 = 2;
const IF_OPER_UP: u8 = 6;

// Address attributes.
pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;
pub const IFA_LABEL: u16 = 3;
pub const IFA_BROADCAST: u16 = 4;
pub const IFA_CACHEINFO: u16 = 6;
pub const IFA_FLAGS: u16 = 8;
pub const IFA_PROTO: u16 = 11;
const IFA_F_PERMANENT: u32 = 0x80;

// Route attributes.
pub const RTA_DST: u16 = 1;
pub const RTA_OIF: u16 = 4;
pub const RTA_GATEWAY: u16 = 5;
pub const RTA_PRIORITY: u16 = 6;
pub const RTA_PREFSRC: u16 = 7;
pub const RTA_CACHEINFO: u16 = 12;
pub const RTA_TABLE: u16 = 15;
pub const RTA_PREF: u16 = 20;

// SOL_NETLINK options.
pub const NETLINK_ADD_MEMBERSHIP: i32 = 1;
pub const NETLINK_DROP_MEMBERSHIP: i32 = 2;
pub const NETLINK_PKTINFO: i32 = 3;
pub const NETLINK_BROADCAST_ERROR: i32 = 4;
pub const NETLINK_NO_ENOBUFS: i32 = 5;
pub const NETLINK_LISTEN_ALL_NSID: i32 = 8;
pub const NETLINK_LIST_MEMBERSHIPS: i32 = 9;
pub const NETLINK_CAP_ACK: i32 = 10;
pub const NETLINK_EXT_ACK: i32 = 11;
pub const NETLINK_GET_STRICT_CHK: i32 = 12;
/// RTNLGRP_MAX: the multicast groups NETLINK_ROUTE has.
const RTNL_GROUPS: u32 = 40;

/// Linux's NLMSG_GOODSIZE on 4 KiB pages: a dump datagram's size (glibc's
/// netlink reader takes one page per recvmsg and fails on MSG_TRUNC).
const DUMP_DATAGRAM: usize = 3776;
/// net.core.rmem_default / wmem_default.
const DEFAULT_BUF: usize = 212_992;
/// Bounds for SO_RCVBUF/SO_SNDBUF (Linux doubles the value asked for).
const MAX_BUF: usize = 212_992;
const MAX_FORCE_BUF: usize = 1 << 20;
const MIN_RCVBUF: usize = 2304;
const MIN_SNDBUF: usize = 4608;

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn le16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// A checked view of one nlmsghdr and its payload.
#[derive(Clone, Copy, Debug)]
pub struct NlMsg<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub pid: u32,
    /// The whole message, header included (nlmsg_len bytes).
    pub bytes: &'a [u8],
}

impl<'a> NlMsg<'a> {
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[NLMSG_HDRLEN..]
    }
}

/// Splits a send buffer into messages as netlink_rcv_skb does: stops
/// silently at the first header that is short or claims more bytes than
/// remain.
pub fn messages(mut b: &[u8]) -> Vec<NlMsg<'_>> {
    let mut out = Vec::new();
    while b.len() >= NLMSG_HDRLEN {
        let len = le32(b, 0).unwrap_or(0) as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            break;
        }
        out.push(NlMsg {
            ty: le16(b, 4).unwrap_or(0),
            flags: le16(b, 6).unwrap_or(0),
            seq: le32(b, 8).unwrap_or(0),
            pid: le32(b, 12).unwrap_or(0),
            bytes: &b[..len],
        });
        b = &b[align4(len).min(b.len())..];
    }
    out
}

/// The attributes (type without the NLA_F_* bits, payload) after a fixed
/// header; stops at the first malformed one.
pub fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = le16(b, 0).unwrap_or(0) as usize;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((le16(b, 2).unwrap_or(0) & 0x3fff, &b[4..len]));
        b = &b[align4(len).min(b.len())..];
    }
    out
}

/// Builds one netlink message.
pub struct MsgBuilder {
    buf: Vec<u8>,
}

impl MsgBuilder {
    pub fn new(ty: u16, flags: u16, seq: u32, pid: u32) -> MsgBuilder {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_le_bytes());
        buf.extend_from_slice(&ty.to_le_bytes());
        buf.extend_from_slice(&flags.to_le_bytes());
        buf.extend_from_slice(&seq.to_le_bytes());
        buf.extend_from_slice(&pid.to_le_bytes());
        MsgBuilder { buf }
    }

    /// Appends a fixed header (padded to 4 bytes).
    pub fn fixed(mut self, b: &[u8]) -> Self {
        self.buf.extend_from_slice(b);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    pub fn attr(mut self, ty: u16, val: &[u8]) -> Self {
        self.buf
            .extend_from_slice(&((4 + val.len()) as u16).to_le_bytes());
        self.buf.extend_from_slice(&ty.to_le_bytes());
        self.buf.extend_from_slice(val);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    pub fn u32_attr(self, ty: u16, v: u32) -> Self {
        self.attr(ty, &v.to_le_bytes())
    }

    pub fn str_attr(self, ty: u16, s: &str) -> Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(ty, &v)
    }

    pub fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&len.to_le_bytes());
        self.buf
    }
}

fn ip_bytes(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn ip_family(a: &IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

/// RTM_NEWLINK for `i` (rtnl_fill_ifinfo's attributes that user space reads).
pub fn link_msg(i: &Interface, flags: u16, seq: u32, pid: u32) -> Vec<u8> {
    let mut hdr = [0u8; 16];
    hdr[2..4].copy_from_slice(&i.kind.arphrd().to_le_bytes());
    hdr[4..8].copy_from_slice(&i.index.to_le_bytes());
    hdr[8..12].copy_from_slice(&i.flags.to_le_bytes());
    let up = i.flags & IFF_UP != 0;
    let operstate = match i.kind {
        LinkKind::Loopback => IF_OPER_UNKNOWN,
        _ if up && i.flags & IFF_LOWER_UP != 0 => IF_OPER_UP,
        _ => IF_OPER_DOWN,
    };
    let brd = match i.kind {
        LinkKind::Loopback => [0u8; 6],
        LinkKind::Ether => [0xff; 6],
    };
    let s = &i.stats;
    // rtnl_link_stats64: 25 u64 counters; rtnl_link_stats: 24 u32.
    let counters = [
        s.rx_packets,
        s.tx_packets,
        s.rx_bytes,
        s.tx_bytes,
        s.rx_errors,
        s.tx_errors,
        s.rx_dropped,
        s.tx_dropped,
    ];
    let mut st64 = vec![0u8; 25 * 8];
    let mut st32 = vec![0u8; 24 * 4];
    for (k, c) in counters.iter().enumerate() {
        st64[k * 8..k * 8 + 8].copy_from_slice(&c.to_le_bytes());
        st32[k * 4..k * 4 + 4].copy_from_slice(&(*c as u32).to_le_bytes());
    }
    let carrier = (i.flags & IFF_LOWER_UP != 0) as u8;
    MsgBuilder::new(RTM_NEWLINK, flags, seq, pid)
        .fixed(&hdr)
        .str_attr(IFLA_IFNAME, &i.name)
        .u32_attr(IFLA_TXQLEN, i.txqlen)
        .attr(IFLA_OPERSTATE, &[operstate])
        .attr(IFLA_LINKMODE, &[0])
        .u32_attr(IFLA_MTU, i.mtu)
        .u32_attr(IFLA_MIN_MTU, 0)
        .u32_attr(IFLA_MAX_MTU, 0)
        .u32_attr(IFLA_GROUP, 0)
        .u32_attr(IFLA_PROMISCUITY, 0)
        .u32_attr(IFLA_NUM_TX_QUEUES, 1)
        .u32_attr(IFLA_NUM_RX_QUEUES, 1)
        .attr(IFLA_CARRIER, &[carrier])
        .str_attr(IFLA_QDISC, "noqueue")
        .attr(IFLA_ADDRESS, &i.mac)
        .attr(IFLA_BROADCAST, &brd)
        .attr(IFLA_STATS64, &st64)
        .attr(IFLA_STATS, &st32)
        .finish()
}

/// RTM_NEWADDR messages for `i`'s addresses of `family` (AF_UNSPEC: all,
/// IPv4 first, as rtnl_dump_all visits the families).
pub fn addr_msgs(i: &Interface, family: u8, flags: u16, seq: u32, pid: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for fam in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        if family != libc::AF_UNSPEC as u8 && family != fam {
            continue;
        }
        for a in i.addrs.iter().filter(|a| ip_family(&a.addr) == fam) {
            let mut hdr = [0u8; 8];
            hdr[0] = fam;
            hdr[1] = a.prefix;
            hdr[2] = IFA_F_PERMANENT as u8;
            hdr[3] = a.scope();
            hdr[4..8].copy_from_slice(&i.index.to_le_bytes());
            // ifa_cacheinfo: preferred and valid forever, no timestamps.
            let mut cache = [0u8; 16];
            cache[..8].fill(0xff);
            let addr = ip_bytes(&a.addr);
            let mut m = MsgBuilder::new(RTM_NEWADDR, flags, seq, pid)
                .fixed(&hdr)
                .attr(IFA_ADDRESS, &addr);
            if fam == libc::AF_INET as u8 {
                m = m.attr(IFA_LOCAL, &addr);
                if i.kind != LinkKind::Loopback {
                    if let Some(b) = a.broadcast_v4() {
                        m = m.attr(IFA_BROADCAST, &b.octets());
                    }
                }
                m = m.str_attr(IFA_LABEL, &i.name);
                m = m.u32_attr(IFA_FLAGS, IFA_F_PERMANENT);
                m = m.attr(IFA_CACHEINFO, &cache);
            } else {
                m = m.attr(IFA_CACHEINFO, &cache);
                m = m.u32_attr(IFA_FLAGS, IFA_F_PERMANENT);
                if i.kind == LinkKind::Loopback {
                    // ::1 is added by the kernel for lo (IFAPROT_KERNEL_LO).
                    m = m.attr(IFA_PROTO, &[1]);
                }
            }
            out.push(m.finish());
        }
    }
    out
}

/// RTM_NEWROUTE for `r` (fib_dump_info / rt6_fill_node).
pub fn route_msg(r: &Route, flags: u16, seq: u32, pid: u32) -> Vec<u8> {
    let fam = ip_family(&r.dst);
    let hdr = [
        fam, r.prefix, 0, 0, r.table, r.protocol, r.scope, r.kind, 0, 0, 0, 0,
    ];
    let mut m = MsgBuilder::new(RTM_NEWROUTE, flags, seq, pid)
        .fixed(&hdr)
        .u32_attr(RTA_TABLE, r.table as u32);
    if r.prefix != 0 {
        m = m.attr(RTA_DST, &ip_bytes(&r.dst));
    }
    let priority = match (fam == libc::AF_INET6 as u8, r.priority) {
        (_, Some(p)) => Some(p),
        (true, None) => Some(0),
        (false, None) => None,
    };
    if let Some(p) = priority {
        m = m.u32_attr(RTA_PRIORITY, p);
    }
    if let Some(src) = r.prefsrc.filter(|s| ip_family(s) == fam) {
        m = m.attr(RTA_PREFSRC, &ip_bytes(&src));
    }
    if let Some(gw) = r.gateway.filter(|g| ip_family(g) == fam) {
        m = m.attr(RTA_GATEWAY, &ip_bytes(&gw));
    }
    m = m.u32_attr(RTA_OIF, r.ifindex);
    if fam == libc::AF_INET6 as u8 {
        // rta_cacheinfo: no users, no expiry.
        m = m.attr(RTA_CACHEINFO, &[0; 32]);
        m = m.attr(RTA_PREF, &[0]);
    }
    m.finish()
}

/// NLMSG_ERROR answering `req` with `err` (0: an ack). The request is
/// quoted whole for errors, only its header for acks or with NETLINK_CAP_ACK.
pub fn error_msg(req: &NlMsg, err: Errno, cap: bool, pid: u32) -> Vec<u8> {
    let code = -err.0;
    let capped = err.0 == 0 || cap;
    let quoted = if capped {
        &req.bytes[..NLMSG_HDRLEN]
    } else {
        req.bytes
    };
    let mut body = code.to_le_bytes().to_vec();
    body.extend_from_slice(quoted);
    let flags = if capped { NLM_F_CAPPED } else { 0 };
    MsgBuilder::new(NLMSG_ERROR, flags, req.seq, pid)
        .fixed(&body)
        .finish()
}

/// A dump's messages packed into datagrams, then NLMSG_DONE in one of its
/// own (as Linux's netlink_dump sends it: the callback that finds nothing
/// more to dump runs on a fresh buffer).
fn pack_dump(msgs: Vec<Vec<u8>>, seq: u32, pid: u32) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    for m in msgs {
        if !cur.is_empty() && cur.len() + m.len() > DUMP_DATAGRAM {
            out.push(std::mem::take(&mut cur));
        }
        cur.extend_from_slice(&m);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out.push(
        MsgBuilder::new(NLMSG_DONE, NLM_F_MULTI, seq, pid)
            .fixed(&0i32.to_le_bytes())
            .finish(),
    );
    out
}

/// Options of the requesting socket that change replies.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReqOpts {
    /// NETLINK_CAP_ACK.
    pub cap_ack: bool,
    /// NETLINK_GET_STRICT_CHK: dump headers filter (by interface).
    pub strict: bool,
}

/// Answers one rtnetlink request: the reply datagrams, or the errno for
/// an NLMSG_ERROR (Linux's rtnetlink_rcv_msg).
/// What a request is answered with (besides an NLMSG_ERROR).
enum Reply {
    /// Datagrams ending with NLMSG_DONE.
    Dump(Vec<Vec<u8>>),
    /// Datagrams (maybe none) followed by an ack if asked for.
    Single(Vec<Vec<u8>>),
}

fn rtnl_request(info: &dyn NetInfo, m: &NlMsg, opts: ReqOpts, pid: u32) -> Result<Reply, Errno> {
    if m.ty > RTM_MAX {
        return Err(Errno::EOPNOTSUPP);
    }
    let body = m.payload();
    // Every rtnetlink message has at least the family byte.
    let Some(&family) = body.first() else {
        return Ok(Reply::Single(Vec::new()));
    };
    let kind = (m.ty - RTM_BASE) & 3;
    if kind != 2 {
        // NEW/DEL/SET: the configuration is not the workload's to change.
        return Err(Errno::EPERM);
    }
    let dump = m.flags & NLM_F_DUMP == NLM_F_DUMP;
    let seq = m.seq;
    match (m.ty, dump) {
        (RTM_GETLINK, true) => {
            let msgs = info
                .interfaces()
                .iter()
                .map(|i| link_msg(i, NLM_F_MULTI, seq, pid))
                .collect();
            Ok(Reply::Dump(pack_dump(msgs, seq, pid)))
        }
        (RTM_GETLINK, false) => {
            // rtnl_getlink: an ifinfomsg, then by index or by name.
            if body.len() < 16 {
                return Err(Errno::EINVAL);
            }
            let index = le32(body, 4).unwrap_or(0) as i32;
            let i = if index > 0 {
                info.by_index(index as u32)
            } else {
                let name = attrs(&body[16..])
                    .into_iter()
                    .find(|(t, _)| *t == IFLA_IFNAME || *t == IFLA_ALT_IFNAME)
                    .map(|(_, v)| v)
                    .ok_or(Errno::EINVAL)?;
                let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
                // NLA_STRING with .len = IFNAMSIZ - 1.
                if end >= 16 {
                    return Err(Errno::ERANGE);
                }
                info.by_name(&name[..end])
            };
            let i = i.ok_or(Errno::ENODEV)?;
            Ok(Reply::Single(vec![link_msg(&i, 0, seq, pid)]))
        }
        (RTM_GETADDR, true) => {
            // With strict checking, ifaddrmsg.ifa_index filters.
            let index = if opts.strict && body.len() >= 8 {
                le32(body, 4).unwrap_or(0)
            } else {
                0
            };
            let fam = match family as i32 {
                libc::AF_INET | libc::AF_INET6 => family,
                _ => libc::AF_UNSPEC as u8,
            };
            let ifaces = info.interfaces();
            let mut msgs = Vec::new();
            for f in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
                if fam != libc::AF_UNSPEC as u8 && fam != f {
                    continue;
                }
                for i in ifaces.iter().filter(|i| index == 0 || i.index == index) {
                    msgs.extend(addr_msgs(i, f, NLM_F_MULTI, seq, pid));
                }
            }
            Ok(Reply::Dump(pack_dump(msgs, seq, pid)))
        }
        (RTM_GETROUTE, true) => {
            let fam = match family as i32 {
                libc::AF_INET | libc::AF_INET6 => family,
                _ => libc::AF_UNSPEC as u8,
            };
            let routes = info.routes();
            let mut msgs = Vec::new();
            for f in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
                if fam != libc::AF_UNSPEC as u8 && fam != f {
                    continue;
                }
                msgs.extend(
                    routes
                        .iter()
                        .filter(|r| ip_family(&r.dst) == f)
                        .map(|r| route_msg(r, NLM_F_MULTI, seq, pid)),
                );
            }
            Ok(Reply::Dump(pack_dump(msgs, seq, pid)))
        }
        // Route lookups (`ip route get`), single addresses and every other
        // object (neighbours, rules, qdiscs, ...) are not implemented.
        _ => Err(Errno::EOPNOTSUPP),
    }
}

/// Processes a buffer of requests from port `pid` (netlink_rcv_skb):
/// the reply datagrams, in order. `room` is called before each reply with
/// its size and says whether it still fits in the receive queue.
pub fn process(
    info: &dyn NetInfo,
    buf: &[u8],
    opts: ReqOpts,
    pid: u32,
    room: &mut dyn FnMut(usize) -> bool,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for m in messages(buf) {
        // Once the receive queue is full replies are dropped: do not even
        // build them (requests have no side effects here).
        if !room(0) {
            continue;
        }
        // Replies to user space are not requests: ignored, as are the
        // control types (NOOP, ERROR, DONE), which only get an ack.
        let res = if m.flags & NLM_F_REQUEST == 0 || m.ty < NLMSG_MIN_TYPE {
            Ok(Reply::Single(Vec::new()))
        } else {
            rtnl_request(info, &m, opts, pid)
        };
        // A dump ends with NLMSG_DONE, which stands for the ack.
        let (mut dgrams, ack) = match res {
            Ok(Reply::Dump(d)) => (d, false),
            Ok(Reply::Single(d)) => (d, m.flags & NLM_F_ACK != 0),
            Err(e) => (vec![error_msg(&m, e, opts.cap_ack, pid)], false),
        };
        if ack {
            dgrams.push(error_msg(&m, Errno(0), opts.cap_ack, pid));
        }
        for d in dgrams {
            if room(d.len()) {
                out.push(d);
            }
        }
    }
    out
}

/// Socket state, under the socket's lock.
struct State {
    /// The bound port id (nl_pid), once bound.
    port: Option<u32>,
    /// Multicast groups joined (bit g-1 for group g).
    groups: u64,
    /// connect(2)'s destination (pid, groups).
    dst: (u32, u32),
    rx: VecDeque<Vec<u8>>,
    rx_bytes: usize,
    rcvbuf: usize,
    sndbuf: usize,
    /// The pending error (ENOBUFS after replies were dropped).
    err: Option<Errno>,
    passcred: bool,
    pktinfo: bool,
    broadcast_error: bool,
    no_enobufs: bool,
    listen_all_nsid: bool,
    cap_ack: bool,
    ext_ack: bool,
    strict: bool,
}

/// An AF_NETLINK socket of protocol NETLINK_ROUTE.
pub struct NetlinkSocket {
    net: Arc<Net>,
    sock_type: i32,
    queue: WaitQueue,
    st: Mutex<State>,
}

/// socket(AF_NETLINK, `sock_type`, `protocol`) (Linux's netlink_create).
pub fn new_socket(
    net: Arc<Net>,
    sock_type: i32,
    protocol: i32,
) -> Result<Arc<NetlinkSocket>, Errno> {
    if sock_type != libc::SOCK_RAW && sock_type != libc::SOCK_DGRAM {
        return Err(Errno::ESOCKTNOSUPPORT);
    }
    if !(0..MAX_LINKS).contains(&protocol) || protocol != NETLINK_ROUTE {
        // Only the routing protocol is in this kernel.
        return Err(Errno::EPROTONOSUPPORT);
    }
    Ok(Arc::new(NetlinkSocket {
        net,
        sock_type,
        queue: WaitQueue::default(),
        st: Mutex::new(State {
            port: None,
            groups: 0,
            dst: (0, 0),
            rx: VecDeque::new(),
            rx_bytes: 0,
            rcvbuf: DEFAULT_BUF,
            sndbuf: DEFAULT_BUF,
            err: None,
            passcred: false,
            pktinfo: false,
            broadcast_error: false,
            no_enobufs: false,
            listen_all_nsid: false,
            cap_ack: false,
            ext_ack: false,
            strict: false,
        }),
    }))
}

impl NetlinkSocket {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The port id, binding one first if unbound (netlink_autobind).
    fn autobind(&self, st: &mut State, tgid: i32) -> Result<u32, Errno> {
        if let Some(p) = st.port {
            return Ok(p);
        }
        let p = self.net.autobind_port(tgid).ok_or(Errno::EADDRINUSE)?;
        st.port = Some(p);
        Ok(p)
    }
}

fn netlink_addr(addr: &SockAddr) -> Result<(u32, u32), Errno> {
    match addr {
        SockAddr::Netlink { pid, groups } => Ok((*pid, *groups)),
        _ => Err(Errno::EINVAL),
    }
}

fn int_opt(val: &[u8]) -> u32 {
    // Shorter values read as 0 (netlink_setsockopt).
    le32(val, 0).unwrap_or(0)
}

impl Socket for NetlinkSocket {
    fn family(&self) -> i32 {
        libc::AF_NETLINK
    }
    fn sock_type(&self) -> i32 {
        self.sock_type
    }
    fn protocol(&self) -> i32 {
        NETLINK_ROUTE
    }
    fn wait_queue(&self) -> &WaitQueue {
        &self.queue
    }
    fn readiness(&self) -> u32 {
        let st = self.lock();
        let mut r = EVENT_OUT | libc::POLLWRNORM as u32;
        if !st.rx.is_empty() {
            r |= EVENT_IN | libc::POLLRDNORM as u32;
        }
        if st.err.is_some() {
            r |= EVENT_ERR;
        }
        r
    }

    fn bind(&self, cx: &SockCx, addr: &SockAddr) -> Result<(), Errno> {
        let (pid, groups) = netlink_addr(addr)?;
        let mut st = self.lock();
        match st.port {
            Some(p) if p != pid => return Err(Errno::EINVAL),
            Some(_) => {}
            None if pid != 0 => {
                if !self.net.claim_port(pid) {
                    return Err(Errno::EADDRINUSE);
                }
                st.port = Some(pid);
            }
            None => {
                self.autobind(&mut st, cx.cred.pid)?;
            }
        }
        // bind(2) replaces the first 32 groups.
        st.groups = (st.groups & !0xffff_ffff) | groups as u64;
        Ok(())
    }

    fn connect(&self, cx: &SockCx, addr: &SockAddr) -> Result<(), Errno> {
        let mut st = self.lock();
        if *addr == SockAddr::Unspec {
            st.dst = (0, 0);
            return Ok(());
        }
        let (pid, groups) = netlink_addr(addr)?;
        self.autobind(&mut st, cx.cred.pid)?;
        st.dst = (pid, groups);
        Ok(())
    }

    fn send(
        &self,
        cx: &SockCx,
        data: &[u8],
        to: Option<&SockAddr>,
        _ctl: &mut Control,
        flags: i32,
    ) -> Result<usize, Errno> {
        if flags & libc::MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut st = self.lock();
        let (dst_pid, dst_groups) = match to {
            Some(a) => netlink_addr(a)?,
            None => st.dst,
        };
        if dst_groups != 0 {
            // Sending to route multicast groups needs CAP_NET_ADMIN.
            return Err(Errno::EPERM);
        }
        let port = self.autobind(&mut st, cx.cred.pid)?;
        if data.len() + 32 > st.sndbuf {
            return Err(Errno::EMSGSIZE);
        }
        if dst_pid != 0 {
            // Unicast between user sockets is not implemented.
            return Err(Errno::ECONNREFUSED);
        }
        let opts = ReqOpts {
            cap_ack: st.cap_ack,
            strict: st.strict,
        };
        let info = self.net.info();
        let (mut queued, rcvbuf) = (st.rx_bytes, st.rcvbuf);
        let mut dropped = false;
        let replies = process(&*info, data, opts, port, &mut |n| {
            // netlink_attachskb: the queue may overshoot by one datagram.
            if queued > rcvbuf {
                dropped = true;
                false
            } else {
                queued += n;
                true
            }
        });
        let any = !replies.is_empty();
        for d in replies {
            st.rx_bytes += d.len();
            st.rx.push_back(d);
        }
        if dropped && !st.no_enobufs {
            st.err = Some(Errno::ENOBUFS);
        }
        let wake = any || dropped;
        drop(st);
        if wake {
            self.queue
                .notify(EVENT_IN | libc::POLLRDNORM as u32 | EVENT_ERR);
        }
        Ok(data.len())
    }

    fn recv(&self, buf: &mut [u8], flags: i32) -> Result<Recv, Errno> {
        if flags & libc::MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut st = self.lock();
        if let Some(e) = st.err.take() {
            return Err(e);
        }
        let d = if flags & libc::MSG_PEEK != 0 {
            st.rx.front().cloned()
        } else {
            st.rx.pop_front()
        };
        let Some(d) = d else {
            return Err(Errno::EAGAIN);
        };
        if flags & libc::MSG_PEEK == 0 {
            st.rx_bytes -= d.len();
        }
        let n = d.len().min(buf.len());
        buf[..n].copy_from_slice(&d[..n]);
        Ok(Recv {
            copied: n,
            full: d.len(),
            from: Some(SockAddr::Netlink { pid: 0, groups: 0 }),
            rights: None,
            creds: st.passcred.then_some(PeerCred::default()),
            flags: 0,
        })
    }

    fn shutdown(&self, _how: i32) -> Result<(), Errno> {
        // netlink has no shutdown (sock_no_shutdown).
        Err(Errno::EOPNOTSUPP)
    }

    fn sockname(&self) -> SockAddr {
        let st = self.lock();
        SockAddr::Netlink {
            pid: st.port.unwrap_or(0),
            groups: st.groups as u32,
        }
    }

    fn peername(&self) -> Result<SockAddr, Errno> {
        let st = self.lock();
        Ok(SockAddr::Netlink {
            pid: st.dst.0,
            groups: st.dst.1,
        })
    }

    fn take_error(&self) -> Option<Errno> {
        self.lock().err.take()
    }

    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        let st = self.lock();
        let int = |v: u32| v.to_le_bytes().to_vec();
        match (level, name) {
            (libc::SOL_SOCKET, libc::SO_RCVBUF) => Ok(int(st.rcvbuf as u32)),
            (libc::SOL_SOCKET, libc::SO_SNDBUF) => Ok(int(st.sndbuf as u32)),
            (libc::SOL_SOCKET, libc::SO_PASSCRED) => Ok(int(st.passcred as u32)),
            (libc::SOL_SOCKET, libc::SO_ACCEPTCONN) => Ok(int(0)),
            (libc::SOL_SOCKET, _) => Err(Errno::ENOPROTOOPT),
            (SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS) => {
                Ok(st.groups.to_le_bytes()[..align4(RTNL_GROUPS as usize / 8)].to_vec())
            }
            (SOL_NETLINK, n) => {
                let v = match n {
                    NETLINK_PKTINFO => st.pktinfo,
                    NETLINK_BROADCAST_ERROR => st.broadcast_error,
                    NETLINK_NO_ENOBUFS => st.no_enobufs,
                    NETLINK_LISTEN_ALL_NSID => st.listen_all_nsid,
                    NETLINK_CAP_ACK => st.cap_ack,
                    NETLINK_EXT_ACK => st.ext_ack,
                    NETLINK_GET_STRICT_CHK => st.strict,
                    _ => return Err(Errno::ENOPROTOOPT),
                };
                Ok(int(v as u32))
            }
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        let mut st = self.lock();
        if level == libc::SOL_SOCKET {
            if val.len() < 4 {
                return Err(Errno::EINVAL);
            }
            let v = i32::from_le_bytes(val[..4].try_into().unwrap()).max(0) as usize;
            match name {
                libc::SO_RCVBUF => st.rcvbuf = (v.min(MAX_BUF) * 2).max(MIN_RCVBUF),
                libc::SO_SNDBUF => st.sndbuf = (v.min(MAX_BUF) * 2).max(MIN_SNDBUF),
                // Privileged variants without net.core.*mem_max (bounded
                // here all the same: replies are queued in sentry memory).
                libc::SO_RCVBUFFORCE => st.rcvbuf = (v.min(MAX_FORCE_BUF) * 2).max(MIN_RCVBUF),
                libc::SO_SNDBUFFORCE => st.sndbuf = (v.min(MAX_FORCE_BUF) * 2).max(MIN_SNDBUF),
                libc::SO_PASSCRED => st.passcred = v != 0,
                _ => return Err(Errno::ENOPROTOOPT),
            }
            return Ok(());
        }
        if level != SOL_NETLINK {
            return Err(Errno::ENOPROTOOPT);
        }
        let v = int_opt(val);
        let flag = match name {
            NETLINK_ADD_MEMBERSHIP | NETLINK_DROP_MEMBERSHIP => {
                if v == 0 || v > RTNL_GROUPS {
                    return Err(Errno::EINVAL);
                }
                let bit = 1u64 << (v - 1);
                if name == NETLINK_ADD_MEMBERSHIP {
                    st.groups |= bit;
                } else {
                    st.groups &= !bit;
                }
                return Ok(());
            }
            NETLINK_PKTINFO => &mut st.pktinfo,
            NETLINK_BROADCAST_ERROR => &mut st.broadcast_error,
            NETLINK_NO_ENOBUFS => &mut st.no_enobufs,
            NETLINK_LISTEN_ALL_NSID => &mut st.listen_all_nsid,
            NETLINK_CAP_ACK => &mut st.cap_ack,
            NETLINK_EXT_ACK => &mut st.ext_ack,
            NETLINK_GET_STRICT_CHK => &mut st.strict,
            _ => return Err(Errno::ENOPROTOOPT),
        };
        *flag = v != 0;
        Ok(())
    }

    fn ioctl(&self, io: &dyn UserIo, cmd: u32, arg: u64) -> Result<u64, Errno> {
        // netlink has no ioctls of its own; the device ioctls answer.
        super::ifreq_ioctl(&*self.net.info(), libc::AF_NETLINK, io, cmd, arg)
            .unwrap_or(Err(Errno::ENOTTY))
    }

    fn release(&self) {
        if let Some(p) = self.lock().port.take() {
            self.net.release_port(p);
        }
    }
}

#[cfg(test)]
mod tests;
