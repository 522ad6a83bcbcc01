//! Socket file descriptions: the protocol-independent part of every socket fd
//! (Linux's net/socket.c). Each address family implements [`Socket`]; a
//! [`SocketFile`] wraps it as the file a socket fd refers to, adds what all
//! families share (SO_RCVTIMEO/SO_SNDTIMEO, fstat as S_IFSOCK, read/write as
//! flagless recv/send) and lets the syscalls find the socket again
//! ([`as_socket`]).
//!
//! Every [`Socket`] operation is non-blocking: it returns EAGAIN (connect:
//! EINPROGRESS) when it would wait, and the syscall layer sleeps on the
//! socket's wait queue and retries, as for every other file.
//!
//! Addresses travel as [`SockAddr`], decoded from and encoded to Linux's
//! sockaddr layouts here. AF_UNIX path names are resolved in the VFS by the
//! caller's [`UnixPaths`] (bind creates the S_IFSOCK node, connect finds it),
//! so families never walk paths themselves.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use abi::linux::{Stat, S_IFSOCK};
use abi::Errno;

use crate::file::{FileOps, FileState, OpenFile};
use crate::waiter::WaitQueue;
use crate::UserIo;

/// Files passed with SCM_RIGHTS.
pub type Rights = Vec<Arc<OpenFile>>;
/// Linux's SCM_MAX_FD: the most files one message may carry.
pub const SCM_MAX_FD: usize = 253;
/// sizeof(struct sockaddr_un).
pub const SUN_LEN: usize = 110;

/// Process credentials as SO_PEERCRED and SCM_CREDENTIALS carry them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// The identity of a file-system node a path-bound AF_UNIX socket is bound
/// to: (device, inode) as stat reports them.
pub type NodeKey = (u64, u64);

/// Path resolution for AF_UNIX addresses, done by the caller in its own file
/// system context (root, cwd, credentials, umask).
pub trait UnixPaths {
    /// bind(2): creates the socket node at `path` (EADDRINUSE if anything is
    /// there) and returns its identity.
    fn create(&self, path: &[u8]) -> Result<NodeKey, Errno>;
    /// connect(2)/sendto(2): finds the socket node at `path`, checking write
    /// permission (ECONNREFUSED if it is not a socket).
    fn lookup(&self, path: &[u8]) -> Result<NodeKey, Errno>;
    /// Removes the node `create` made, when bind fails after creating it.
    fn remove(&self, _path: &[u8]) {}
}

/// A [`UnixPaths`] for callers that have no file system context (read(2)
/// and write(2) never carry an address).
pub struct NoPaths;

impl UnixPaths for NoPaths {
    fn create(&self, _path: &[u8]) -> Result<NodeKey, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    fn lookup(&self, _path: &[u8]) -> Result<NodeKey, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
}

/// What a socket operation knows about its caller.
pub struct SockCx<'a> {
    /// The caller's pid (in the sandbox), effective uid and gid.
    pub cred: PeerCred,
    /// The caller's fsuid/fsgid, owner of new socket files.
    pub fsuid: u32,
    pub fsgid: u32,
    pub paths: &'a dyn UnixPaths,
    /// The call will not wait (O_NONBLOCK or MSG_DONTWAIT): a connect that
    /// completes at once still reports EINPROGRESS, as Linux's does.
    pub nonblock: bool,
}

/// A socket address, decoded. AF_UNIX names are kept as given (the bytes of
/// sun_path that count), since getsockname returns them verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SockAddr {
    /// AF_UNSPEC (connect's "dissolve the association").
    Unspec,
    /// AF_UNIX: empty = unnamed (autobind is an abstract name), a leading
    /// NUL = abstract, else a path (without the terminating NUL).
    Unix(Vec<u8>),
    Inet(SocketAddr),
    Netlink {
        pid: u32,
        groups: u32,
    },
    /// A family this kernel has no address format for.
    Other(u16),
}

impl SockAddr {
    /// Decodes the `len` bytes a workload passed (Linux's move_addr_to_kernel
    /// plus each family's length checks). Short addresses are EINVAL.
    pub fn decode(b: &[u8]) -> Result<SockAddr, Errno> {
        if b.len() < 2 {
            return Err(Errno::EINVAL);
        }
        let family = u16::from_le_bytes([b[0], b[1]]);
        match family as i32 {
            libc::AF_UNSPEC => Ok(SockAddr::Unspec),
            libc::AF_UNIX => {
                if b.len() > SUN_LEN {
                    return Err(Errno::EINVAL);
                }
                let path = &b[2..];
                if path.first() == Some(&0) {
                    Ok(SockAddr::Unix(path.to_vec()))
                } else {
                    let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
                    Ok(SockAddr::Unix(path[..end].to_vec()))
                }
            }
            libc::AF_INET => {
                if b.len() < 16 {
                    return Err(Errno::EINVAL);
                }
                let port = u16::from_be_bytes([b[2], b[3]]);
                let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
                Ok(SockAddr::Inet(SocketAddr::V4(SocketAddrV4::new(ip, port))))
            }
            libc::AF_INET6 => {
                if b.len() < 24 {
                    return Err(Errno::EINVAL);
                }
                let port = u16::from_be_bytes([b[2], b[3]]);
                let flow = u32::from_be_bytes(b[4..8].try_into().unwrap());
                let ip: [u8; 16] = b[8..24].try_into().unwrap();
                let scope = if b.len() >= 28 {
                    u32::from_le_bytes(b[24..28].try_into().unwrap())
                } else {
                    0
                };
                Ok(SockAddr::Inet(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(ip),
                    port,
                    flow,
                    scope,
                ))))
            }
            libc::AF_NETLINK => {
                if b.len() < 12 {
                    return Err(Errno::EINVAL);
                }
                Ok(SockAddr::Netlink {
                    pid: u32::from_le_bytes(b[4..8].try_into().unwrap()),
                    groups: u32::from_le_bytes(b[8..12].try_into().unwrap()),
                })
            }
            _ => Ok(SockAddr::Other(family)),
        }
    }

    /// The address family number.
    pub fn family(&self) -> i32 {
        match self {
            SockAddr::Unspec => libc::AF_UNSPEC,
            SockAddr::Unix(_) => libc::AF_UNIX,
            SockAddr::Inet(SocketAddr::V4(_)) => libc::AF_INET,
            SockAddr::Inet(SocketAddr::V6(_)) => libc::AF_INET6,
            SockAddr::Netlink { .. } => libc::AF_NETLINK,
            SockAddr::Other(f) => *f as i32,
        }
    }

    /// Linux's sockaddr bytes for this address (their length is what
    /// getsockname & co. report).
    pub fn encode(&self) -> Vec<u8> {
        let mut v = (self.family() as u16).to_le_bytes().to_vec();
        match self {
            SockAddr::Unspec | SockAddr::Other(_) => {}
            SockAddr::Unix(name) => {
                v.extend_from_slice(name);
                // Path names are reported with their terminating NUL.
                if !name.is_empty() && name[0] != 0 {
                    v.push(0);
                }
            }
            SockAddr::Inet(SocketAddr::V4(a)) => {
                v.extend_from_slice(&a.port().to_be_bytes());
                v.extend_from_slice(&a.ip().octets());
                v.extend_from_slice(&[0; 8]);
            }
            SockAddr::Inet(SocketAddr::V6(a)) => {
                v.extend_from_slice(&a.port().to_be_bytes());
                v.extend_from_slice(&a.flowinfo().to_be_bytes());
                v.extend_from_slice(&a.ip().octets());
                v.extend_from_slice(&a.scope_id().to_le_bytes());
            }
            SockAddr::Netlink { pid, groups } => {
                v.extend_from_slice(&[0, 0]);
                v.extend_from_slice(&pid.to_le_bytes());
                v.extend_from_slice(&groups.to_le_bytes());
            }
        }
        v
    }
}

/// Control data a send carries (SCM_RIGHTS, SCM_CREDENTIALS) and the sender's
/// credentials (attached when either end has SO_PASSCRED).
#[derive(Default)]
pub struct Control {
    pub rights: Option<Rights>,
    /// SCM_CREDENTIALS as sent (already checked against the sender).
    pub creds: Option<PeerCred>,
}

/// What a receive got.
#[derive(Debug, Default)]
pub struct Recv {
    /// Bytes copied into the buffer.
    pub copied: usize,
    /// The message's full length (datagrams; MSG_TRUNC).
    pub full: usize,
    /// The sender's address (datagram sockets), for recvfrom/recvmsg.
    pub from: Option<SockAddr>,
    pub rights: Option<Rights>,
    /// SCM_CREDENTIALS to deliver (the receiver has SO_PASSCRED).
    pub creds: Option<PeerCred>,
    /// msg_flags bits the protocol sets (MSG_EOR, MSG_TRUNC is set by the caller).
    pub flags: i32,
}

/// One address family's socket (Linux's struct proto_ops).
pub trait Socket: Send + Sync + 'static {
    fn family(&self) -> i32;
    /// SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_RAW.
    fn sock_type(&self) -> i32;
    fn protocol(&self) -> i32 {
        0
    }
    /// The queue woken when readiness may have changed.
    fn wait_queue(&self) -> &WaitQueue;
    /// poll(2) bits ready now.
    fn readiness(&self) -> u32;

    fn bind(&self, _cx: &SockCx, _addr: &SockAddr) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    fn listen(&self, _backlog: i32) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// A pending connection as a new socket file (status flags `flags`, i.e.
    /// O_NONBLOCK or 0) and the peer's address; EAGAIN when none is pending.
    fn accept(&self, _cx: &SockCx, _flags: i32) -> Result<(Arc<OpenFile>, SockAddr), Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Connects, or starts to: EINPROGRESS means the caller waits for
    /// writability (unless non-blocking) and reads the outcome with
    /// [`Socket::take_error`]; EAGAIN means wait and call again.
    fn connect(&self, _cx: &SockCx, _addr: &SockAddr) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Sends `data` (one message for datagram types; as much as fits for
    /// streams) to `to` or the connected peer; takes the files in `ctl` when
    /// it sends anything. EAGAIN when there is no room. `flags` are the send
    /// flags (MSG_DONTWAIT, MSG_NOSIGNAL, MSG_EOR, ...), informational.
    fn send(
        &self,
        cx: &SockCx,
        data: &[u8],
        to: Option<&SockAddr>,
        ctl: &mut Control,
        flags: i32,
    ) -> Result<usize, Errno>;
    /// Receives into `buf`. `flags`: MSG_PEEK, MSG_TRUNC, and MSG_DONTWAIT
    /// when the caller will not block. Ok with `copied == 0` at end of file.
    fn recv(&self, buf: &mut [u8], flags: i32) -> Result<Recv, Errno>;
    fn shutdown(&self, how: i32) -> Result<(), Errno>;
    /// getsockname(2).
    fn sockname(&self) -> SockAddr;
    /// getpeername(2): ENOTCONN when not connected.
    fn peername(&self) -> Result<SockAddr, Errno>;
    /// The pending error (SO_ERROR), cleared.
    fn take_error(&self) -> Option<Errno> {
        None
    }
    /// getsockopt(2) beyond what every socket answers (SO_TYPE, SO_DOMAIN,
    /// SO_PROTOCOL, SO_ERROR, SO_RCVTIMEO, SO_SNDTIMEO): the value's bytes
    /// (the caller truncates to the user's length), ENOPROTOOPT if unknown.
    fn getsockopt(&self, _level: i32, _name: i32) -> Result<Vec<u8>, Errno> {
        Err(Errno::ENOPROTOOPT)
    }
    fn setsockopt(&self, _level: i32, _name: i32, _val: &[u8]) -> Result<(), Errno> {
        Err(Errno::ENOPROTOOPT)
    }
    /// Socket ioctls (FIONREAD, SIOCOUTQ, SIOCGIF*, ...).
    fn ioctl(&self, _io: &dyn UserIo, _cmd: u32, _arg: u64) -> Result<u64, Errno> {
        Err(Errno::ENOTTY)
    }
    /// The last description of the socket closed.
    fn release(&self) {}
}

/// SO_RCVTIMEO / SO_SNDTIMEO.
#[derive(Clone, Copy, Default)]
pub struct Timeouts {
    pub rcv: Option<Duration>,
    pub snd: Option<Duration>,
}

/// The file a socket fd refers to.
pub struct SocketFile {
    sock: Arc<dyn Socket>,
    stat: Stat,
    timeouts: Mutex<Timeouts>,
    cred: PeerCred,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        self.sock.release();
    }
}

/// Makes the file of a new socket: `flags` holds the status flags
/// (O_NONBLOCK), `cred` is the creator's (used by write(2) for
/// SCM_CREDENTIALS), `uid`/`gid` own the inode fstat shows.
pub fn new_file(
    sock: Arc<dyn Socket>,
    flags: i32,
    cred: PeerCred,
    uid: u32,
    gid: u32,
) -> Arc<OpenFile> {
    let mut stat = crate::anon::anon_stat(uid, gid);
    stat.mode = S_IFSOCK | 0o777;
    // sockfs.
    stat.dev = abi::linux::makedev(0, 8);
    OpenFile::new(
        Box::new(SocketFile {
            sock,
            stat,
            timeouts: Mutex::new(Timeouts::default()),
            cred,
        }),
        libc::O_RDWR | (flags & libc::O_NONBLOCK),
        None,
    )
}

/// The socket behind `f`, if it is one.
pub fn as_socket(f: &OpenFile) -> Option<Arc<dyn Socket>> {
    f.ops().socket().map(|s| s.sock.clone())
}

/// The socket file behind `f` (for its timeouts), if it is one.
pub fn socket_file(f: &OpenFile) -> Option<&SocketFile> {
    f.ops().socket()
}

impl SocketFile {
    pub fn socket(&self) -> &Arc<dyn Socket> {
        &self.sock
    }
    pub fn timeouts(&self) -> Timeouts {
        *self.timeouts.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn set_timeouts(&self, t: Timeouts) {
        *self.timeouts.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }
}

impl FileOps for SocketFile {
    fn read(&self, st: &FileState, buf: &mut [u8]) -> Result<usize, Errno> {
        let flags = if st.nonblocking() {
            libc::MSG_DONTWAIT
        } else {
            0
        };
        // Files that came with the data are closed (no control buffer).
        self.sock.recv(buf, flags).map(|r| r.copied)
    }
    fn write(&self, _st: &FileState, buf: &[u8]) -> Result<usize, Errno> {
        let cx = SockCx {
            cred: self.cred,
            fsuid: self.stat.uid,
            fsgid: self.stat.gid,
            paths: &NoPaths,
            nonblock: _st.nonblocking(),
        };
        self.sock.send(&cx, buf, None, &mut Control::default(), 0)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn lseek(&self, _st: &FileState, _off: i64, _whence: i32) -> Result<u64, Errno> {
        Err(Errno::ESPIPE)
    }
    fn pread(&self, _buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::ESPIPE)
    }
    fn pwrite(&self, _buf: &[u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::ESPIPE)
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }
    fn ioctl(&self, _st: &FileState, io: &dyn UserIo, cmd: u32, arg: u64) -> Result<u64, Errno> {
        self.sock.ioctl(io, cmd, arg)
    }
    fn readiness(&self, mask: u32) -> u32 {
        self.sock.readiness() & mask
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(self.sock.wait_queue())
    }
    fn read_timeout(&self) -> Option<Duration> {
        self.timeouts().rcv
    }
    fn supports_fasync(&self) -> bool {
        true
    }
    fn socket(&self) -> Option<&SocketFile> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        let v4: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let v6: SocketAddr = "[::1]:443".parse().unwrap();
        for a in [
            SockAddr::Inet(v4),
            SockAddr::Inet(v6),
            SockAddr::Unix(b"/tmp/s".to_vec()),
            SockAddr::Unix(b"\0abstract".to_vec()),
            SockAddr::Netlink { pid: 7, groups: 1 },
        ] {
            assert_eq!(SockAddr::decode(&a.encode()), Ok(a.clone()));
        }
        assert_eq!(SockAddr::Inet(v4).encode().len(), 16);
        assert_eq!(SockAddr::Inet(v6).encode().len(), 28);
        assert_eq!(SockAddr::Unix(b"/a".to_vec()).encode().len(), 5);
        assert_eq!(SockAddr::Unix(vec![]).encode().len(), 2);
        assert_eq!(SockAddr::decode(&[1]), Err(Errno::EINVAL));
        assert_eq!(SockAddr::decode(&[2, 0, 0, 80]), Err(Errno::EINVAL));
        assert_eq!(
            SockAddr::decode(&[10, 0, 0, 80, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        // A path stops at its first NUL.
        let mut b = vec![1, 0];
        b.extend_from_slice(b"/x\0junk");
        assert_eq!(SockAddr::decode(&b), Ok(SockAddr::Unix(b"/x".to_vec())));
        let mut long = vec![1u8, 0];
        long.resize(111, b'a');
        assert_eq!(SockAddr::decode(&long), Err(Errno::EINVAL));
    }
}
