//! Connected AF_UNIX socket pairs (socketpair(2)), entirely in the sentry
//! (Linux's net/unix/af_unix.c, the parts a connected pair uses).
//!
//! Both ends share one [`Pair`]: a receive queue per end, shutdown bits per end
//! (RCV_SHUTDOWN / SEND_SHUTDOWN, set on both ends by shutdown(2) and by the
//! peer's close for connection-oriented types), and a wait queue per end. A
//! sender's queued data counts against its SO_SNDBUF (Linux's sk_wmem_alloc);
//! SOCK_STREAM is a byte stream, SOCK_SEQPACKET and SOCK_DGRAM keep message
//! boundaries.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use abi::Errno;

use crate::file::OpenFile;
use crate::socket::{self, Control, SockAddr, SockCx, Socket};
pub use crate::socket::{PeerCred, Recv, Rights, SCM_MAX_FD};
use crate::waiter::{WaitQueue, EVENT_ALL, EVENT_ERR, EVENT_HUP, EVENT_IN, EVENT_OUT, EVENT_RDHUP};
use crate::UserIo;

pub const RCV_SHUTDOWN: u8 = 1;
pub const SEND_SHUTDOWN: u8 = 2;
const SHUTDOWN_MASK: u8 = 3;

/// Linux's default net.core.wmem_default / rmem_default.
pub const DEFAULT_BUF: usize = 212_992;
/// net.core.wmem_max / rmem_max: the largest value SO_SNDBUF/SO_RCVBUF take
/// (before doubling) from an unprivileged task.
pub const MAX_BUF: usize = 212_992;
pub const MIN_SNDBUF: usize = 4608;
pub const MIN_RCVBUF: usize = 2304;
/// What one queued message costs on top of its bytes (an skb's overhead).
const MSG_OVERHEAD: usize = 512;

/// FIONREAD (SIOCINQ): bytes available to read.
const FIONREAD: u32 = 0x541b;

const READABLE: u32 = EVENT_IN | libc::POLLRDNORM as u32;
const WRITABLE: u32 = EVENT_OUT | libc::POLLWRNORM as u32 | libc::POLLWRBAND as u32;

#[derive(Default)]
struct End {
    /// SOCK_STREAM: received bytes.
    bytes: VecDeque<u8>,
    /// SOCK_STREAM: files passed with the bytes `start..end` of the stream
    /// (positions counted by `read_pos`/`write_pos`).
    rights: VecDeque<(u64, u64, Rights)>,
    read_pos: u64,
    write_pos: u64,
    /// SOCK_DGRAM/SOCK_SEQPACKET: received messages and the files they carry.
    msgs: VecDeque<(Vec<u8>, Option<Rights>)>,
    /// What the peer's queued data costs against the peer's SO_SNDBUF.
    queued: usize,
    shutdown: u8,
    closed: bool,
    /// Pending SO_ERROR.
    err: Option<Errno>,
    sndbuf: usize,
    rcvbuf: usize,
    passcred: bool,
    /// SOCK_DGRAM: the peer was closed and a send already reported it
    /// (ECONNREFUSED once, then ENOTCONN).
    disconnected: bool,
}

struct Pair {
    ty: i32,
    ends: Mutex<[End; 2]>,
    queues: [WaitQueue; 2],
    cred: PeerCred,
}

impl Pair {
    fn lock(&self) -> MutexGuard<'_, [End; 2]> {
        self.ends.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn connection(&self) -> bool {
        self.ty != libc::SOCK_DGRAM
    }
}

/// One end of a pair.
pub struct UnixSocket {
    pair: Arc<Pair>,
    side: usize,
}

/// Creates a connected pair of type `ty` (SOCK_STREAM, SOCK_SEQPACKET or
/// SOCK_DGRAM), `flags` holding O_NONBLOCK for both descriptions.
pub fn new_pair(ty: i32, flags: i32, cred: PeerCred, uid: u32, gid: u32) -> [Arc<OpenFile>; 2] {
    let mk = || End {
        sndbuf: DEFAULT_BUF,
        rcvbuf: DEFAULT_BUF,
        ..Default::default()
    };
    let pair = Arc::new(Pair {
        ty,
        ends: Mutex::new([mk(), mk()]),
        queues: Default::default(),
        cred,
    });
    [0, 1].map(|side| {
        let s = Arc::new(UnixSocket {
            pair: pair.clone(),
            side,
        });
        socket::new_file(s, flags, cred, uid, gid)
    })
}

impl UnixSocket {
    pub fn peer_cred(&self) -> PeerCred {
        self.pair.cred
    }
    /// The wait queue poll/epoll and blocking calls of this end use.
    pub fn queue(&self) -> &WaitQueue {
        &self.pair.queues[self.side]
    }
    fn peer(&self) -> usize {
        1 - self.side
    }

    fn close(&self) {
        let (me, peer) = (self.side, self.peer());
        // Queued files are dropped after the lock is released: closing one may
        // close a socket (even this pair's other end).
        let _dropped = {
            let mut e = self.pair.lock();
            let unread = !e[me].bytes.is_empty() || !e[me].msgs.is_empty();
            e[me].closed = true;
            e[me].shutdown = SHUTDOWN_MASK;
            e[me].bytes.clear();
            e[me].queued = 0;
            let dropped = (
                std::mem::take(&mut e[me].msgs),
                std::mem::take(&mut e[me].rights),
            );
            if self.pair.connection() {
                e[peer].shutdown = SHUTDOWN_MASK;
                if unread {
                    e[peer].err = Some(Errno::ECONNRESET);
                }
            }
            dropped
        };
        self.pair.queues[peer].notify(EVENT_ALL);
    }

    /// Sends `data` (one message for DGRAM/SEQPACKET, as much as fits for
    /// STREAM) with the files in `rights`, which it takes when it sends
    /// anything. EAGAIN when there is no room.
    pub fn send_data(&self, data: &[u8], rights: &mut Option<Rights>) -> Result<usize, Errno> {
        let (me, peer) = (self.side, self.peer());
        let n = {
            let mut e = self.pair.lock();
            if self.pair.ty == libc::SOCK_DGRAM {
                if e[me].shutdown & SEND_SHUTDOWN != 0 {
                    return Err(Errno::EPIPE);
                }
                if e[peer].closed {
                    if e[me].disconnected {
                        return Err(Errno::ENOTCONN);
                    }
                    e[me].disconnected = true;
                    return Err(Errno::ECONNREFUSED);
                }
                if e[peer].shutdown & RCV_SHUTDOWN != 0 {
                    return Err(Errno::EPIPE);
                }
            } else if e[me].shutdown & SEND_SHUTDOWN != 0
                || e[peer].closed
                || e[peer].shutdown & RCV_SHUTDOWN != 0
            {
                return Err(Errno::EPIPE);
            }
            let sndbuf = e[me].sndbuf;
            let used = e[peer].queued;
            if self.pair.ty == libc::SOCK_STREAM {
                if data.is_empty() {
                    return Ok(0);
                }
                let room = sndbuf.saturating_sub(used);
                if room == 0 {
                    return Err(Errno::EAGAIN);
                }
                let n = room.min(data.len());
                let end = &mut e[peer];
                end.bytes.extend(&data[..n]);
                end.queued += n;
                let start = end.write_pos;
                end.write_pos += n as u64;
                if let Some(r) = rights.take() {
                    end.rights.push_back((start, end.write_pos, r));
                }
                n
            } else {
                if data.len() > sndbuf.saturating_sub(32) {
                    return Err(Errno::EMSGSIZE);
                }
                let cost = data.len() + MSG_OVERHEAD;
                if used > 0 && used + cost > sndbuf {
                    return Err(Errno::EAGAIN);
                }
                e[peer].msgs.push_back((data.to_vec(), rights.take()));
                e[peer].queued += cost;
                data.len()
            }
        };
        self.pair.queues[peer].notify(READABLE);
        Ok(n)
    }

    /// Receives into `buf`; `peek` leaves the data queued. EAGAIN when there is
    /// nothing yet; a zero-length result at EOF.
    pub fn recv_data(&self, buf: &mut [u8], peek: bool, nonblock: bool) -> Result<Recv, Errno> {
        let (me, peer) = (self.side, self.peer());
        let r = {
            let mut e = self.pair.lock();
            let end = &mut e[me];
            if self.pair.ty == libc::SOCK_STREAM {
                if end.bytes.is_empty() {
                    if let Some(err) = end.err.take() {
                        return Err(err);
                    }
                    if end.shutdown & RCV_SHUTDOWN != 0 {
                        return Ok(Recv::default());
                    }
                    return Err(Errno::EAGAIN);
                }
                if buf.is_empty() {
                    return Ok(Recv::default());
                }
                let mut n = buf.len().min(end.bytes.len());
                // A read stops after the first bytes that carry files.
                let mut rights = None;
                if let Some((start, stop, r)) = end.rights.front() {
                    if *start < end.read_pos + n as u64 {
                        n = n.min((*stop - end.read_pos) as usize);
                        rights = Some(r.clone());
                        if !peek {
                            end.rights.pop_front();
                        }
                    }
                }
                for (d, s) in buf.iter_mut().zip(end.bytes.iter()) {
                    *d = *s;
                }
                if !peek {
                    end.bytes.drain(..n);
                    end.queued -= n;
                    end.read_pos += n as u64;
                }
                Recv {
                    copied: n,
                    full: n,
                    rights,
                    ..Default::default()
                }
            } else {
                let Some(m) = end.msgs.front() else {
                    if self.pair.ty == libc::SOCK_SEQPACKET {
                        if let Some(err) = end.err.take() {
                            return Err(err);
                        }
                    }
                    let eof = end.shutdown & RCV_SHUTDOWN != 0
                        && (self.pair.ty == libc::SOCK_SEQPACKET || !nonblock);
                    if eof {
                        return Ok(Recv::default());
                    }
                    return Err(Errno::EAGAIN);
                };
                let (m, r) = m;
                let n = buf.len().min(m.len());
                buf[..n].copy_from_slice(&m[..n]);
                let full = m.len();
                let mut rights = r.clone();
                if !peek {
                    rights = end.msgs.pop_front().and_then(|(_, r)| r);
                    end.queued -= full + MSG_OVERHEAD;
                }
                Recv {
                    copied: n,
                    full,
                    rights,
                    ..Default::default()
                }
            }
        };
        if !peek {
            self.pair.queues[peer].notify(WRITABLE);
        }
        Ok(r)
    }

    /// shutdown(2) with `how` SHUT_RD, SHUT_WR or SHUT_RDWR.
    pub fn shut(&self, how: i32) -> Result<(), Errno> {
        if !(libc::SHUT_RD..=libc::SHUT_RDWR).contains(&how) {
            return Err(Errno::EINVAL);
        }
        let mode = (how + 1) as u8;
        let (me, peer) = (self.side, self.peer());
        {
            let mut e = self.pair.lock();
            e[me].shutdown |= mode;
            if self.pair.connection() && !e[peer].closed {
                let pm = ((mode & RCV_SHUTDOWN) << 1) | ((mode & SEND_SHUTDOWN) >> 1);
                e[peer].shutdown |= pm;
            }
        }
        self.pair.queues[me].notify(EVENT_ALL);
        self.pair.queues[peer].notify(EVENT_ALL);
        Ok(())
    }

    pub fn sndbuf(&self) -> usize {
        self.pair.lock()[self.side].sndbuf
    }
    pub fn rcvbuf(&self) -> usize {
        self.pair.lock()[self.side].rcvbuf
    }
    /// SO_SNDBUF: Linux doubles the value (for bookkeeping overhead).
    pub fn set_sndbuf(&self, v: i32) {
        let v = (v.max(0) as usize).min(MAX_BUF) * 2;
        self.pair.lock()[self.side].sndbuf = v.max(MIN_SNDBUF);
        self.pair.queues[self.side].notify(WRITABLE);
    }
    pub fn set_rcvbuf(&self, v: i32) {
        let v = (v.max(0) as usize).min(MAX_BUF) * 2;
        self.pair.lock()[self.side].rcvbuf = v.max(MIN_RCVBUF);
    }
    pub fn passcred(&self) -> bool {
        self.pair.lock()[self.side].passcred
    }
    pub fn set_passcred(&self, on: bool) {
        self.pair.lock()[self.side].passcred = on;
    }

    /// Bytes readable now (FIONREAD/SIOCINQ, Linux's unix_inq_len): all
    /// queued bytes for STREAM and SEQPACKET, the next datagram's length for
    /// DGRAM.
    pub fn inq(&self) -> usize {
        let e = self.pair.lock();
        let end = &e[self.side];
        match self.pair.ty {
            libc::SOCK_STREAM => end.bytes.len(),
            libc::SOCK_SEQPACKET => end.msgs.iter().map(|m| m.0.len()).sum(),
            _ => end.msgs.front().map_or(0, |m| m.0.len()),
        }
    }

    /// Linux's unix_poll / unix_dgram_poll.
    pub fn poll(&self) -> u32 {
        let e = self.pair.lock();
        let (me, peer) = (&e[self.side], &e[self.peer()]);
        let mut r = 0;
        if me.err.is_some() {
            r |= EVENT_ERR;
        }
        if me.shutdown == SHUTDOWN_MASK {
            r |= EVENT_HUP;
        }
        if me.shutdown & RCV_SHUTDOWN != 0 {
            r |= EVENT_RDHUP | READABLE;
        }
        if !me.bytes.is_empty() || !me.msgs.is_empty() {
            r |= READABLE;
        }
        if self.pair.connection() && peer.closed {
            r |= EVENT_HUP;
        }
        // unix_writable: less than a quarter of the send buffer in flight.
        if peer.queued * 4 <= me.sndbuf {
            r |= WRITABLE;
        }
        r
    }
}

impl Socket for UnixSocket {
    fn family(&self) -> i32 {
        libc::AF_UNIX
    }
    fn sock_type(&self) -> i32 {
        self.pair.ty
    }
    fn wait_queue(&self) -> &WaitQueue {
        self.queue()
    }
    fn readiness(&self) -> u32 {
        self.poll()
    }
    fn send(
        &self,
        _cx: &SockCx,
        data: &[u8],
        to: Option<&SockAddr>,
        ctl: &mut Control,
        _flags: i32,
    ) -> Result<usize, Errno> {
        if to.is_some() {
            // A connected pair has its destination; Linux's unix_stream_sendmsg
            // says EISCONN. Datagram sends to a named address need bound
            // sockets, which do not exist yet.
            return Err(if self.pair.ty == libc::SOCK_DGRAM {
                Errno::ECONNREFUSED
            } else {
                Errno::EISCONN
            });
        }
        self.send_data(data, &mut ctl.rights)
    }
    fn recv(&self, buf: &mut [u8], flags: i32) -> Result<Recv, Errno> {
        self.recv_data(
            buf,
            flags & libc::MSG_PEEK != 0,
            flags & libc::MSG_DONTWAIT != 0,
        )
    }
    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        self.shut(how)
    }
    fn sockname(&self) -> SockAddr {
        SockAddr::Unix(Vec::new())
    }
    fn peername(&self) -> Result<SockAddr, Errno> {
        Ok(SockAddr::Unix(Vec::new()))
    }
    fn take_error(&self) -> Option<Errno> {
        self.pair.lock()[self.side].err.take()
    }
    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        if level != libc::SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        let int = |v: i32| v.to_le_bytes().to_vec();
        Ok(match name {
            libc::SO_SNDBUF => int(self.sndbuf() as i32),
            libc::SO_RCVBUF => int(self.rcvbuf() as i32),
            libc::SO_PASSCRED => int(self.passcred() as i32),
            libc::SO_ACCEPTCONN => int(0),
            libc::SO_PEERCRED => {
                let c = self.peer_cred();
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
        match name {
            libc::SO_SNDBUF => self.set_sndbuf(v),
            libc::SO_RCVBUF => self.set_rcvbuf(v),
            libc::SO_PASSCRED => self.set_passcred(v != 0),
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }
    fn ioctl(&self, io: &dyn UserIo, cmd: u32, arg: u64) -> Result<u64, Errno> {
        match cmd {
            FIONREAD => {
                let n = self.inq().min(i32::MAX as usize) as i32;
                io.copy_out(arg, &n.to_le_bytes())?;
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }
    fn release(&self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::{as_socket, NoPaths};

    fn cx() -> SockCx<'static> {
        SockCx {
            cred: PeerCred::default(),
            fsuid: 0,
            fsgid: 0,
            paths: &NoPaths,
            nonblock: true,
        }
    }

    fn pair(ty: i32) -> [Arc<OpenFile>; 2] {
        new_pair(ty, libc::O_NONBLOCK, PeerCred::default(), 0, 0)
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
        let [a, b] = pair(libc::SOCK_SEQPACKET);
        let (sa, sb) = (as_socket(&a).unwrap(), as_socket(&b).unwrap());
        // Send a's own file to b: closing b later drops it from b's queue,
        // which closes a (same pair) without deadlocking.
        assert_eq!(
            sa.send(
                &cx(),
                b"m",
                None,
                &mut Control {
                    rights: Some(vec![a.clone()]),
                    creds: None
                },
                0
            ),
            Ok(1)
        );
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
        assert_eq!(
            sc.send(&cx(), b"ab", None, &mut Control::default(), 0),
            Ok(2)
        );
        assert_eq!(
            sc.send(
                &cx(),
                b"cd",
                None,
                &mut Control {
                    rights: Some(vec![c.clone()]),
                    creds: None
                },
                0
            ),
            Ok(2)
        );
        assert_eq!(
            sc.send(&cx(), b"ef", None, &mut Control::default(), 0),
            Ok(2)
        );
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
    fn dgram_boundaries_and_disconnect() {
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
}
