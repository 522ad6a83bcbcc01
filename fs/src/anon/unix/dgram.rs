//! SOCK_DGRAM AF_UNIX sockets (Linux's unix_dgram_sendmsg/recvmsg/poll):
//! each socket has its own receive queue; a message carries its sender's
//! name and credentials.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use abi::Errno;

use super::stream::{MSG_OVERHEAD, RCV_SHUTDOWN, SEND_SHUTDOWN, SHUTDOWN_MASK};
use super::{lock, State, UnixSocket, MAX_DGRAM_QLEN, READABLE, WRITABLE};
use crate::socket::{Control, PeerCred, Recv, Rights, SockAddr, SockCx};
use crate::waiter::{EVENT_HUP, EVENT_RDHUP};

pub(super) struct Msg {
    data: Vec<u8>,
    rights: Option<Rights>,
    /// The sender's name when it sent.
    from: Vec<u8>,
    creds: PeerCred,
    /// Whose SO_SNDBUF the message counts against.
    sender: Weak<UnixSocket>,
    cost: usize,
}

#[derive(Default)]
pub(super) struct Queue {
    pub(super) msgs: VecDeque<Msg>,
    pub(super) shutdown: u8,
}

/// Drops messages a closed socket never read, returning their senders'
/// buffer space.
pub(super) fn release(msgs: VecDeque<Msg>) {
    for m in msgs {
        if let Some(s) = m.sender.upgrade() {
            s.wmem.fetch_sub(m.cost, Ordering::AcqRel);
            s.wq.notify(WRITABLE);
        }
    }
}

impl UnixSocket {
    /// Where a datagram goes: `to`, else the peer. The bool says it is the
    /// connected peer.
    fn dgram_dest(
        &self,
        cx: &SockCx,
        to: Option<&SockAddr>,
    ) -> Result<(Arc<UnixSocket>, bool), Errno> {
        if let Some(to) = to {
            let name = Self::dest_name(to)?;
            let t = self.find(cx, name)?;
            if t.ty != self.ty {
                return Err(Errno::EPROTOTYPE);
            }
            return Ok((t, false));
        }
        let mut me = self.lock();
        let State::Peer { sock, .. } = &me.state else {
            return Err(Errno::ENOTCONN);
        };
        match sock.upgrade() {
            Some(t) if !t.closed.load(Ordering::Acquire) => Ok((t, true)),
            _ => {
                // The peer is gone: this send says so, later ones find no
                // peer (Linux's unix_dgram_disconnected).
                me.state = State::Unconnected;
                me.peer_cred = None;
                Err(Errno::ECONNREFUSED)
            }
        }
    }

    pub(super) fn dgram_send(
        &self,
        cx: &SockCx,
        data: &[u8],
        to: Option<&SockAddr>,
        ctl: &mut Control,
    ) -> Result<usize, Errno> {
        if lock(&self.dq).shutdown & SEND_SHUTDOWN != 0 {
            return Err(Errno::EPIPE);
        }
        let sndbuf = self.sndbuf();
        if data.len() > sndbuf.saturating_sub(32) {
            return Err(Errno::EMSGSIZE);
        }
        self.autobind_for_passcred()?;
        let (target, _) = self.dgram_dest(cx, to)?;
        // unix_may_send, and whether the receiver's queue limit applies (not
        // between two sockets connected to each other).
        let (allowed, mutual) = match &target.lock().state {
            State::Peer { sock, .. } => {
                let mine = std::ptr::eq(sock.as_ptr(), self);
                (mine, mine)
            }
            _ => (true, false),
        };
        if !allowed {
            return Err(Errno::EPERM);
        }
        let from = self.lock().name.clone();
        let cost = data.len() + MSG_OVERHEAD;
        {
            let mut q = lock(&target.dq);
            if q.shutdown & RCV_SHUTDOWN != 0 {
                return Err(Errno::EPIPE);
            }
            if !mutual && q.msgs.len() > MAX_DGRAM_QLEN {
                target.add_peer_waiter(&self.wq);
                return Err(Errno::EAGAIN);
            }
            let wmem = self.wmem.load(Ordering::Acquire);
            if wmem > 0 && wmem + cost > sndbuf {
                return Err(Errno::EAGAIN);
            }
            self.wmem.fetch_add(cost, Ordering::AcqRel);
            q.msgs.push_back(Msg {
                data: data.to_vec(),
                rights: ctl.rights.take(),
                from,
                creds: ctl.creds.unwrap_or(cx.cred),
                sender: self.me.clone(),
                cost,
            });
        }
        target.wq.notify(READABLE);
        Ok(data.len())
    }

    pub(super) fn dgram_recv(
        &self,
        buf: &mut [u8],
        peek: bool,
        nonblock: bool,
    ) -> Result<Recv, Errno> {
        let (r, sender) = {
            let mut q = lock(&self.dq);
            let Some(m) = q.msgs.front() else {
                if q.shutdown & RCV_SHUTDOWN != 0 && !nonblock {
                    return Ok(Recv::default());
                }
                return Err(Errno::EAGAIN);
            };
            let n = buf.len().min(m.data.len());
            buf[..n].copy_from_slice(&m.data[..n]);
            let mut r = Recv {
                copied: n,
                full: m.data.len(),
                // An unnamed sender has no address (unix_copy_addr).
                from: (!m.from.is_empty()).then(|| SockAddr::Unix(m.from.clone())),
                creds: self.passcred().then_some(m.creds),
                ..Default::default()
            };
            if peek {
                r.rights = m.rights.clone();
                (r, None)
            } else {
                let m = q.msgs.pop_front().unwrap();
                r.rights = m.rights;
                (r, Some((m.sender, m.cost)))
            }
        };
        if let Some((sender, cost)) = sender {
            if let Some(s) = sender.upgrade() {
                s.wmem.fetch_sub(cost, Ordering::AcqRel);
                s.wq.notify(WRITABLE);
            }
            self.wake_peer_waiters();
        }
        Ok(r)
    }

    /// The next datagram's length (FIONREAD).
    pub(super) fn dgram_inq(&self) -> usize {
        lock(&self.dq).msgs.front().map_or(0, |m| m.data.len())
    }

    /// Linux's unix_dgram_poll.
    pub(super) fn dgram_poll(&self) -> u32 {
        let mut r = 0;
        {
            let q = lock(&self.dq);
            if q.shutdown == SHUTDOWN_MASK {
                r |= EVENT_HUP;
            }
            if q.shutdown & RCV_SHUTDOWN != 0 {
                r |= EVENT_RDHUP | READABLE;
            }
            if !q.msgs.is_empty() {
                r |= READABLE;
            }
        }
        if self.wmem.load(Ordering::Acquire) * 4 > self.sndbuf() {
            return r;
        }
        // Not writable while the peer's queue is full (unless it is
        // connected back to this socket).
        let peer = match &self.lock().state {
            State::Peer { sock, .. } => sock.upgrade(),
            _ => None,
        };
        if let Some(p) = peer {
            let mutual = matches!(&p.lock().state,
                State::Peer { sock, .. } if std::ptr::eq(sock.as_ptr(), self));
            if !mutual && lock(&p.dq).msgs.len() > MAX_DGRAM_QLEN {
                p.add_peer_waiter(&self.wq);
                return r;
            }
        }
        r | WRITABLE
    }
}
