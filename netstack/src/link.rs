//! Link devices: the host side of an Ethernet interface, and the smoltcp
//! `Device` adapters the stack polls (loopback and Ethernet links).
//!
//! A [`LinkDevice`] carries one Ethernet frame per `recv`/`send` and exposes a
//! host fd that the stack thread `poll(2)`s for readability. [`FdLink`] is the
//! implementation over an AF_PACKET `SOCK_RAW` socket bound to an interface, a
//! TAP fd, or (in tests) one end of a `socketpair(AF_UNIX, SOCK_DGRAM)`.
//!
//! Frames read from the link are untrusted: they are only handed to smoltcp's
//! parsers, which validate every header.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// An Ethernet link driven by the stack thread.
pub trait LinkDevice: Send {
    /// A host fd that becomes readable when a frame can be received.
    fn fd(&self) -> RawFd;
    /// Receives one frame into `buf` without blocking; `ErrorKind::WouldBlock`
    /// when none is queued. Returns the frame's full length, which exceeds
    /// `buf.len()` when the frame did not fit (it was truncated, as
    /// `recv(2)` with `MSG_TRUNC`).
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Sends one frame without blocking (a full queue drops the frame: TCP
    /// retransmits, as with a full NIC ring).
    fn send(&mut self, frame: &[u8]) -> io::Result<()>;
}

/// A [`LinkDevice`] over a host fd carrying one Ethernet frame per read/write.
pub struct FdLink {
    fd: OwnedFd,
    /// The fd is not a socket (a TAP device): `read(2)`, which cannot
    /// report truncation, instead of `recv(2)` with `MSG_TRUNC`.
    not_sock: bool,
}

impl FdLink {
    /// Takes ownership of `fd` and makes it non-blocking.
    pub fn new(fd: OwnedFd) -> io::Result<FdLink> {
        let raw = fd.as_raw_fd();
        // SAFETY: fcntl on an fd we own; no memory is passed.
        let fl = unsafe { libc::fcntl(raw, libc::F_GETFL) };
        if fl < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above.
        if unsafe { libc::fcntl(raw, libc::F_SETFL, fl | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(FdLink {
            fd,
            not_sock: false,
        })
    }
}

impl LinkDevice for FdLink {
    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let fd = self.fd.as_raw_fd();
            // SAFETY: `buf` is a valid writable buffer of `buf.len()` bytes for the
            // duration of the call.
            let n = unsafe {
                if self.not_sock {
                    libc::read(fd, buf.as_mut_ptr().cast(), buf.len())
                } else {
                    libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_TRUNC)
                }
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::ENOTSOCK) if !self.not_sock => self.not_sock = true,
                _ => return Err(e),
            }
        }
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        loop {
            // SAFETY: `frame` is a valid readable buffer of `frame.len()` bytes.
            let n = unsafe { libc::write(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
            if n >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// Packet/byte counters of an interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
    /// Receive errors reported by the host fd (the link went down or away).
    pub rx_errors: u64,
    /// Frames dropped on receipt: empty, or larger than any IP packet.
    pub rx_dropped: u64,
}

/// The loopback device: transmitted IP packets are queued and received back.
pub(crate) struct LoopDev {
    pub q: VecDeque<Vec<u8>>,
    pub counters: Counters,
}

/// Largest IP packet on loopback (the IP total-length field is 16 bits; Linux
/// reports MTU 65536 for lo).
pub(crate) const LO_IP_MTU: usize = 65535;

impl LoopDev {
    pub fn new() -> LoopDev {
        LoopDev {
            q: VecDeque::new(),
            counters: Counters::default(),
        }
    }
}

pub(crate) struct OwnedRx(Vec<u8>);

impl phy::RxToken for OwnedRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

pub(crate) struct LoopTx<'a>(&'a mut LoopDev);

impl phy::TxToken for LoopTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        self.0.counters.tx_packets += 1;
        self.0.counters.tx_bytes += len as u64;
        self.0.counters.rx_packets += 1;
        self.0.counters.rx_bytes += len as u64;
        self.0.q.push_back(buf);
        r
    }
}

impl phy::Device for LoopDev {
    type RxToken<'a> = OwnedRx;
    type TxToken<'a> = LoopTx<'a>;

    fn receive(&mut self, _t: Instant) -> Option<(OwnedRx, LoopTx<'_>)> {
        let p = self.q.pop_front()?;
        Some((OwnedRx(p), LoopTx(self)))
    }

    fn transmit(&mut self, _t: Instant) -> Option<LoopTx<'_>> {
        Some(LoopTx(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = LO_IP_MTU;
        // Both ends are this stack: checksums are neither computed nor checked
        // (Linux skips them on lo too, CHECKSUM_UNNECESSARY).
        caps.checksum = ChecksumCapabilities::ignored();
        caps
    }
}

/// An Ethernet link as a smoltcp device: frames read by the stack thread are
/// queued in `rxq`; transmitted frames go straight to the host fd, or wait in
/// `txq` while the fd is not writable (then smoltcp is told the device is busy
/// once `txq` is full, so TCP data stays in socket buffers instead of being
/// dropped).
pub(crate) struct LinkDev {
    pub dev: Box<dyn LinkDevice>,
    pub rxq: VecDeque<Vec<u8>>,
    pub txq: VecDeque<Vec<u8>>,
    /// IP MTU; the Ethernet frame is 14 bytes more.
    pub mtu: usize,
    pub counters: Counters,
    /// Where frames are received before being copied out at their size.
    scratch: Vec<u8>,
    /// The last send failed with ENOBUFS (the host device's queue is full):
    /// the fd may well poll writable meanwhile, so the stack thread retries
    /// after a short sleep instead of waiting for POLLOUT.
    pub tx_nobufs: bool,
}

/// Most frames queued from the fd before the stack processes them; also the
/// most frames read per wakeup of the stack thread, so a flood cannot keep
/// it from timers and loopback.
pub(crate) const LINK_RXQ_MAX: usize = 256;
/// The largest frame received: an Ethernet header with two VLAN tags and
/// the largest IP packet. A host NIC with TSO/GSO (a veth) hands packet
/// sockets TCP segments of up to 64 KiB whatever the MTU; they are
/// accepted as the larger segments they are (as gVisor's GRO). Bigger
/// frames are dropped whole rather than parsed truncated.
pub(crate) const LINK_RX_MAX: usize = 14 + 8 + 65535;
/// Most frames waiting for the fd to become writable.
pub(crate) const LINK_TXQ_MAX: usize = 256;

impl LinkDev {
    pub fn new(dev: Box<dyn LinkDevice>, mtu: usize) -> LinkDev {
        LinkDev {
            dev,
            rxq: VecDeque::new(),
            txq: VecDeque::new(),
            mtu,
            counters: Counters::default(),
            scratch: Vec::new(),
            tx_nobufs: false,
        }
    }

    /// Sends queued frames; returns whether the queue is empty.
    pub fn flush(&mut self) -> bool {
        self.tx_nobufs = false;
        while let Some(f) = self.txq.front() {
            match self.dev.send(f) {
                Ok(()) => {
                    self.counters.tx_packets += 1;
                    self.counters.tx_bytes += f.len() as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.tx_nobufs = true;
                    return false;
                }
                Err(_) => self.counters.tx_errors += 1,
            }
            self.txq.pop_front();
        }
        true
    }

    fn send_frame(&mut self, buf: Vec<u8>) {
        if self.txq.is_empty() {
            match self.dev.send(&buf) {
                Ok(()) => {
                    self.counters.tx_packets += 1;
                    self.counters.tx_bytes += buf.len() as u64;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => self.tx_nobufs = true,
                Err(_) => {
                    self.counters.tx_errors += 1;
                    return;
                }
            }
        }
        if self.txq.len() < LINK_TXQ_MAX + 8 {
            self.txq.push_back(buf);
        } else {
            self.counters.tx_errors += 1;
        }
    }

    /// Reads queued frames: at most [`LINK_RXQ_MAX`] reads, and no more than
    /// the queue has room for. Empty and oversized frames are dropped. Returns
    /// whether any frame was queued.
    pub fn read_frames(&mut self) -> bool {
        if self.scratch.len() < LINK_RX_MAX {
            self.scratch = vec![0u8; LINK_RX_MAX];
        }
        let mut any = false;
        for _ in 0..LINK_RXQ_MAX {
            if self.rxq.len() >= LINK_RXQ_MAX {
                break;
            }
            match self.dev.recv(&mut self.scratch) {
                Ok(n) if n == 0 || n > self.scratch.len() => self.counters.rx_dropped += 1,
                Ok(n) => {
                    self.counters.rx_packets += 1;
                    self.counters.rx_bytes += n as u64;
                    self.rxq.push_back(self.scratch[..n].to_vec());
                    any = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // ENETDOWN/ENXIO (the link went down or was deleted), or any
                // other error: counted; the fd is polled again later.
                Err(_) => {
                    self.counters.rx_errors += 1;
                    break;
                }
            }
        }
        any
    }

    /// The `poll(2)` events the stack thread waits for on the link fd:
    /// input while the receive queue has room, output while frames wait.
    pub fn poll_events(&self) -> libc::c_short {
        let mut ev = 0;
        if self.rxq.len() < LINK_RXQ_MAX {
            ev |= libc::POLLIN;
        }
        if !self.txq.is_empty() && !self.tx_nobufs {
            ev |= libc::POLLOUT;
        }
        ev
    }
}

pub(crate) struct LinkTx<'a>(&'a mut LinkDev);

impl phy::TxToken for LinkTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        self.0.send_frame(buf);
        r
    }
}

impl phy::Device for LinkDev {
    type RxToken<'a> = OwnedRx;
    type TxToken<'a> = LinkTx<'a>;

    fn receive(&mut self, _t: Instant) -> Option<(OwnedRx, LinkTx<'_>)> {
        if self.txq.len() >= LINK_TXQ_MAX {
            return None;
        }
        let p = self.rxq.pop_front()?;
        Some((OwnedRx(p), LinkTx(self)))
    }

    fn transmit(&mut self, _t: Instant) -> Option<LinkTx<'_>> {
        if self.txq.len() >= LINK_TXQ_MAX {
            return None;
        }
        Some(LinkTx(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + 14;
        // Received checksums are not verified (gVisor's default
        // rx-checksum-offload): the host kernel hands packet sockets on a
        // veth its own packets with checksums left to offload
        // (CHECKSUM_PARTIAL), which would all look corrupt. Sent packets
        // carry full checksums.
        let mut ck = ChecksumCapabilities::default();
        ck.ipv4 = phy::Checksum::Tx;
        ck.udp = phy::Checksum::Tx;
        ck.tcp = phy::Checksum::Tx;
        ck.icmpv4 = phy::Checksum::Tx;
        ck.icmpv6 = phy::Checksum::Tx;
        caps.checksum = ck;
        caps
    }
}
