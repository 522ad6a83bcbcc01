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
    /// when none is queued.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Sends one frame without blocking (a full queue drops the frame: TCP
    /// retransmits, as with a full NIC ring).
    fn send(&mut self, frame: &[u8]) -> io::Result<()>;
}

/// A [`LinkDevice`] over a host fd carrying one Ethernet frame per read/write.
pub struct FdLink {
    fd: OwnedFd,
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
        Ok(FdLink { fd })
    }
}

impl LinkDevice for FdLink {
    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: `buf` is a valid writable buffer of `buf.len()` bytes for the
            // duration of the call.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
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
}

/// Most frames queued from the fd before the stack processes them.
pub(crate) const LINK_RXQ_MAX: usize = 256;
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
        }
    }

    /// Sends queued frames; returns whether the queue is empty.
    pub fn flush(&mut self) -> bool {
        while let Some(f) = self.txq.front() {
            match self.dev.send(f) {
                Ok(()) => {
                    self.counters.tx_packets += 1;
                    self.counters.tx_bytes += f.len() as u64;
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(libc::ENOBUFS) =>
                {
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
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(libc::ENOBUFS) => {}
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

    /// Reads every queued frame (up to the queue limit). Returns whether any
    /// was read.
    pub fn read_frames(&mut self) -> bool {
        let mut any = false;
        while self.rxq.len() < LINK_RXQ_MAX {
            let mut buf = vec![0u8; self.mtu + 14 + 4];
            match self.dev.recv(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    self.counters.rx_packets += 1;
                    self.counters.rx_bytes += n as u64;
                    self.rxq.push_back(buf);
                    any = true;
                }
                Err(_) => break,
            }
        }
        any
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
