//! The connection of two SOCK_STREAM or SOCK_SEQPACKET AF_UNIX sockets
//! (from socketpair(2), or connect(2) + accept(2)).
//!
//! Both ends share one [`Pair`]: a receive queue per end, shutdown bits per end
//! (RCV_SHUTDOWN / SEND_SHUTDOWN, set on both ends by shutdown(2) and by the
//! peer's close), and the two sockets' wait queues. A sender's queued data
//! counts against its SO_SNDBUF (Linux's sk_wmem_alloc); SOCK_STREAM is a
//! byte stream, SOCK_SEQPACKET keeps message boundaries.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use abi::Errno;

use super::{READABLE, WRITABLE};
use crate::socket::{PeerCred, Recv, Rights};
use crate::waiter::{WaitQueue, EVENT_ALL, EVENT_ERR, EVENT_HUP, EVENT_RDHUP};

pub const RCV_SHUTDOWN: u8 = 1;
pub const SEND_SHUTDOWN: u8 = 2;
pub const SHUTDOWN_MASK: u8 = 3;

/// What one queued message costs on top of its bytes (an skb's overhead).
pub const MSG_OVERHEAD: usize = 512;

struct Msg {
    data: Vec<u8>,
    rights: Option<Rights>,
    creds: PeerCred,
}

#[derive(Default)]
struct End {
    /// SOCK_STREAM: received bytes.
    bytes: VecDeque<u8>,
    /// SOCK_STREAM: files passed with the bytes `start..end` of the stream
    /// (positions counted by `read_pos`/`write_pos`).
    rights: VecDeque<(u64, u64, Rights)>,
    /// SOCK_STREAM: the senders' credentials from each position on.
    creds: VecDeque<(u64, PeerCred)>,
    read_pos: u64,
    write_pos: u64,
    /// SOCK_SEQPACKET: received messages.
    msgs: VecDeque<Msg>,
    /// What the peer's queued data costs against the peer's SO_SNDBUF.
    queued: usize,
    shutdown: u8,
    closed: bool,
    /// Pending SO_ERROR.
    err: Option<Errno>,
}

pub struct Pair {
    ty: i32,
    ends: Mutex<[End; 2]>,
    queues: [Arc<WaitQueue>; 2],
    /// What each end's SO_PEERCRED reports.
    creds: [PeerCred; 2],
}

/// One end of a [`Pair`].
#[derive(Clone)]
pub struct Conn {
    pair: Arc<Pair>,
    side: usize,
}

/// Connects two sockets whose wait queues are `queues`; `creds[i]` is what
/// end `i` sees as its peer's credentials.
pub fn connect(ty: i32, queues: [Arc<WaitQueue>; 2], creds: [PeerCred; 2]) -> [Conn; 2] {
    let pair = Arc::new(Pair {
        ty,
        ends: Mutex::new([End::default(), End::default()]),
        queues,
        creds,
    });
    [0, 1].map(|side| Conn {
        pair: pair.clone(),
        side,
    })
}

impl Pair {
    fn lock(&self) -> MutexGuard<'_, [End; 2]> {
        self.ends.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Conn {
    pub fn peer_cred(&self) -> PeerCred {
        self.pair.creds[self.side]
    }
    fn peer(&self) -> usize {
        1 - self.side
    }

    /// The socket of this end is released: the peer sees EOF (ECONNRESET if
    /// data was left unread, or `embryo`: a connection never accepted).
    pub fn close(&self, embryo: bool) {
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
            e[peer].shutdown = SHUTDOWN_MASK;
            if (unread || embryo) && !e[peer].closed {
                e[peer].err = Some(Errno::ECONNRESET);
            }
            dropped
        };
        self.pair.queues[peer].notify(EVENT_ALL);
    }

    /// Sends `data` (one message for SEQPACKET, as much as fits for STREAM)
    /// with the files in `rights`, which it takes when it sends anything.
    /// EAGAIN when there is no room in `sndbuf`.
    pub fn send(
        &self,
        data: &[u8],
        rights: &mut Option<Rights>,
        creds: PeerCred,
        sndbuf: usize,
    ) -> Result<usize, Errno> {
        let (me, peer) = (self.side, self.peer());
        let n = {
            let mut e = self.pair.lock();
            if e[me].shutdown & SEND_SHUTDOWN != 0
                || e[peer].closed
                || e[peer].shutdown & RCV_SHUTDOWN != 0
            {
                return Err(Errno::EPIPE);
            }
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
                if end.creds.back().map(|c| c.1) != Some(creds) {
                    end.creds.push_back((start, creds));
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
                e[peer].msgs.push_back(Msg {
                    data: data.to_vec(),
                    rights: rights.take(),
                    creds,
                });
                e[peer].queued += cost;
                data.len()
            }
        };
        self.pair.queues[peer].notify(READABLE);
        Ok(n)
    }

    /// Receives into `buf`; `peek` leaves the data queued; `passcred`: the
    /// reader wants credentials, so a stream read stops where the sender
    /// changes. EAGAIN when there is nothing yet; a zero-length result at EOF.
    pub fn recv(&self, buf: &mut [u8], peek: bool, passcred: bool) -> Result<Recv, Errno> {
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
                while end.creds.len() >= 2 && end.creds[1].0 <= end.read_pos {
                    end.creds.pop_front();
                }
                let creds = end.creds.front().map(|c| c.1);
                if passcred && end.creds.len() >= 2 {
                    n = n.min((end.creds[1].0 - end.read_pos) as usize);
                }
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
                for (d, s) in buf[..n].iter_mut().zip(end.bytes.iter()) {
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
                    creds,
                    ..Default::default()
                }
            } else {
                let Some(m) = end.msgs.front() else {
                    if let Some(err) = end.err.take() {
                        return Err(err);
                    }
                    if end.shutdown & RCV_SHUTDOWN != 0 {
                        return Ok(Recv::default());
                    }
                    return Err(Errno::EAGAIN);
                };
                let n = buf.len().min(m.data.len());
                buf[..n].copy_from_slice(&m.data[..n]);
                let full = m.data.len();
                let creds = Some(m.creds);
                let mut rights = m.rights.clone();
                if !peek {
                    rights = end.msgs.pop_front().and_then(|m| m.rights);
                    end.queued -= full + MSG_OVERHEAD;
                }
                Recv {
                    copied: n,
                    full,
                    rights,
                    creds,
                    ..Default::default()
                }
            }
        };
        if !peek {
            self.pair.queues[peer].notify(WRITABLE);
        }
        Ok(r)
    }

    /// shutdown(2): `mode` is RCV_SHUTDOWN and/or SEND_SHUTDOWN.
    pub fn shut(&self, mode: u8) {
        let (me, peer) = (self.side, self.peer());
        {
            let mut e = self.pair.lock();
            e[me].shutdown |= mode;
            if !e[peer].closed {
                let pm = ((mode & RCV_SHUTDOWN) << 1) | ((mode & SEND_SHUTDOWN) >> 1);
                e[peer].shutdown |= pm;
            }
        }
        self.pair.queues[me].notify(EVENT_ALL);
        self.pair.queues[peer].notify(EVENT_ALL);
    }

    pub fn take_error(&self) -> Option<Errno> {
        self.pair.lock()[self.side].err.take()
    }

    /// Wakes writers after SO_SNDBUF grew.
    pub fn notify_writable(&self) {
        self.pair.queues[self.side].notify(WRITABLE);
    }

    /// Bytes readable now (FIONREAD/SIOCINQ, Linux's unix_inq_len).
    pub fn inq(&self) -> usize {
        let e = self.pair.lock();
        let end = &e[self.side];
        match self.pair.ty {
            libc::SOCK_STREAM => end.bytes.len(),
            _ => end.msgs.iter().map(|m| m.data.len()).sum(),
        }
    }

    /// Linux's unix_poll for a connected socket whose SO_SNDBUF is `sndbuf`.
    pub fn poll(&self, sndbuf: usize) -> u32 {
        let e = self.pair.lock();
        let (me, peer) = (&e[self.side], &e[self.peer()]);
        let mut r = 0;
        if me.err.is_some() {
            r |= EVENT_ERR;
        }
        if me.shutdown == SHUTDOWN_MASK || peer.closed {
            r |= EVENT_HUP;
        }
        if me.shutdown & RCV_SHUTDOWN != 0 {
            r |= EVENT_RDHUP | READABLE;
        }
        if !me.bytes.is_empty() || !me.msgs.is_empty() {
            r |= READABLE;
        }
        // unix_writable: less than a quarter of the send buffer in flight.
        if peer.queued * 4 <= sndbuf {
            r |= WRITABLE;
        }
        r
    }
}
