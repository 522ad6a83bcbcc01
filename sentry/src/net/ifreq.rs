//! The interface ioctls every socket answers (Linux's sock_ioctl, dev_ioctl
//! and, for AF_INET sockets, devinet_ioctl): SIOCGIFCONF, SIOCGIFNAME,
//! SIOCGIFINDEX, SIOCGIFFLAGS, SIOCGIFMTU, SIOCGIFHWADDR, ... from the
//! kernel's [`NetInfo`]. The configuration is read-only: the SIOCS*
//! requests are EPERM, as for a process without CAP_NET_ADMIN.

use std::net::{IpAddr, Ipv4Addr};

use abi::Errno;
use fs::UserIo;

use super::{Interface, NetInfo};

pub const SIOCADDRT: u32 = 0x890b;
pub const SIOCDELRT: u32 = 0x890c;
pub const SIOCGIFNAME: u32 = 0x8910;
pub const SIOCSIFLINK: u32 = 0x8911;
pub const SIOCGIFCONF: u32 = 0x8912;
pub const SIOCGIFFLAGS: u32 = 0x8913;
pub const SIOCSIFFLAGS: u32 = 0x8914;
pub const SIOCGIFADDR: u32 = 0x8915;
pub const SIOCSIFADDR: u32 = 0x8916;
pub const SIOCGIFDSTADDR: u32 = 0x8917;
pub const SIOCSIFDSTADDR: u32 = 0x8918;
pub const SIOCGIFBRDADDR: u32 = 0x8919;
pub const SIOCSIFBRDADDR: u32 = 0x891a;
pub const SIOCGIFNETMASK: u32 = 0x891b;
pub const SIOCSIFNETMASK: u32 = 0x891c;
pub const SIOCGIFMETRIC: u32 = 0x891d;
pub const SIOCSIFMETRIC: u32 = 0x891e;
pub const SIOCGIFMTU: u32 = 0x8921;
pub const SIOCSIFMTU: u32 = 0x8922;
pub const SIOCSIFNAME: u32 = 0x8923;
pub const SIOCSIFHWADDR: u32 = 0x8924;
pub const SIOCGIFHWADDR: u32 = 0x8927;
pub const SIOCGIFSLAVE: u32 = 0x8929;
pub const SIOCSIFSLAVE: u32 = 0x8930;
pub const SIOCADDMULTI: u32 = 0x8931;
pub const SIOCDELMULTI: u32 = 0x8932;
pub const SIOCGIFINDEX: u32 = 0x8933;
pub const SIOCSIFPFLAGS: u32 = 0x8934;
pub const SIOCDIFADDR: u32 = 0x8936;
pub const SIOCSIFHWBROADCAST: u32 = 0x8937;
pub const SIOCGIFTXQLEN: u32 = 0x8942;
pub const SIOCSIFTXQLEN: u32 = 0x8943;
pub const SIOCGIFMAP: u32 = 0x8970;
pub const SIOCSIFMAP: u32 = 0x8971;

/// sizeof(struct ifreq), sizeof(struct ifconf) on x86-64.
pub const IFREQ_LEN: usize = 40;
const IFCONF_LEN: usize = 16;
pub const IFNAMSIZ: usize = 16;

/// The interface ioctl `cmd` on a socket of `family`, or None if `cmd` is
/// not one (the socket's own ioctls, then ENOTTY, apply).
pub fn ifreq_ioctl(
    info: &dyn NetInfo,
    family: i32,
    io: &dyn UserIo,
    cmd: u32,
    arg: u64,
) -> Option<Result<u64, Errno>> {
    let inet = family == libc::AF_INET;
    match cmd {
        SIOCGIFCONF => Some(ifconf(info, io, arg)),
        SIOCGIFNAME | SIOCGIFFLAGS | SIOCGIFMETRIC | SIOCGIFMTU | SIOCGIFHWADDR | SIOCGIFINDEX
        | SIOCGIFTXQLEN | SIOCGIFMAP | SIOCGIFSLAVE => Some(get(info, io, cmd, arg)),
        SIOCGIFADDR | SIOCGIFDSTADDR | SIOCGIFBRDADDR | SIOCGIFNETMASK if inet => {
            Some(get(info, io, cmd, arg))
        }
        SIOCSIFFLAGS | SIOCSIFMETRIC | SIOCSIFMTU | SIOCSIFNAME | SIOCSIFHWADDR | SIOCSIFSLAVE
        | SIOCADDMULTI | SIOCDELMULTI | SIOCSIFHWBROADCAST | SIOCSIFTXQLEN | SIOCSIFMAP
        | SIOCSIFPFLAGS | SIOCSIFLINK => Some(set(io, arg)),
        SIOCSIFADDR | SIOCSIFDSTADDR | SIOCSIFBRDADDR | SIOCSIFNETMASK | SIOCDIFADDR
        | SIOCADDRT | SIOCDELRT
            if inet =>
        {
            Some(set(io, arg))
        }
        _ => None,
    }
}

/// A change: the request is read (EFAULT) and refused.
fn set(io: &dyn UserIo, arg: u64) -> Result<u64, Errno> {
    let mut req = [0u8; IFREQ_LEN];
    io.copy_in(arg, &mut req)?;
    Err(Errno::EPERM)
}

/// sockaddr_in bytes (16) for an IPv4 address.
fn sockaddr_in(a: Ipv4Addr) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..2].copy_from_slice(&(libc::AF_INET as u16).to_le_bytes());
    b[4..8].copy_from_slice(&a.octets());
    b
}

/// The interface named by ifr_name (an alias label "eth0:1" names eth0).
fn by_name(info: &dyn NetInfo, req: &[u8; IFREQ_LEN]) -> Result<Interface, Errno> {
    let name = &req[..IFNAMSIZ];
    let end = name
        .iter()
        .position(|&c| c == 0 || c == b':')
        .unwrap_or(IFNAMSIZ - 1);
    info.by_name(&name[..end]).ok_or(Errno::ENODEV)
}

fn get(info: &dyn NetInfo, io: &dyn UserIo, cmd: u32, arg: u64) -> Result<u64, Errno> {
    let mut req = [0u8; IFREQ_LEN];
    io.copy_in(arg, &mut req)?;
    // Linux terminates the name whatever the caller passed.
    req[IFNAMSIZ - 1] = 0;
    let put_i32 = |req: &mut [u8; IFREQ_LEN], v: i32| {
        req[IFNAMSIZ..IFNAMSIZ + 4].copy_from_slice(&v.to_le_bytes())
    };
    if cmd == SIOCGIFNAME {
        let index = i32::from_le_bytes(req[IFNAMSIZ..IFNAMSIZ + 4].try_into().unwrap());
        let i = u32::try_from(index)
            .ok()
            .and_then(|ix| info.by_index(ix))
            .ok_or(Errno::ENODEV)?;
        req[..IFNAMSIZ].fill(0);
        let n = i.name.len().min(IFNAMSIZ - 1);
        req[..n].copy_from_slice(&i.name.as_bytes()[..n]);
        io.copy_out(arg, &req)?;
        return Ok(0);
    }
    let i = by_name(info, &req)?;
    match cmd {
        SIOCGIFFLAGS => {
            // ifr_flags is a short: IFF_LOWER_UP and above do not fit.
            req[IFNAMSIZ..IFNAMSIZ + 2].copy_from_slice(&(i.flags as u16).to_le_bytes());
        }
        SIOCGIFMETRIC => put_i32(&mut req, 0),
        SIOCGIFMTU => put_i32(&mut req, i.mtu as i32),
        SIOCGIFINDEX => put_i32(&mut req, i.index as i32),
        SIOCGIFTXQLEN => put_i32(&mut req, i.txqlen as i32),
        SIOCGIFMAP => req[IFNAMSIZ..].fill(0),
        SIOCGIFSLAVE => return Err(Errno::EINVAL),
        SIOCGIFHWADDR => {
            req[IFNAMSIZ..].fill(0);
            req[IFNAMSIZ..IFNAMSIZ + 2].copy_from_slice(&i.kind.arphrd().to_le_bytes());
            req[IFNAMSIZ + 2..IFNAMSIZ + 8].copy_from_slice(&i.mac);
        }
        _ => {
            // devinet_ioctl: the first IPv4 address (labels are the
            // interface's name: aliases are not modelled).
            let label_end = req[..IFNAMSIZ].iter().position(|&c| c == 0).unwrap_or(0);
            if &req[..label_end] != i.name.as_bytes() {
                return Err(Errno::EADDRNOTAVAIL);
            }
            let a = i
                .addrs
                .iter()
                .find(|a| matches!(a.addr, IpAddr::V4(_)))
                .ok_or(Errno::EADDRNOTAVAIL)?;
            let IpAddr::V4(local) = a.addr else {
                return Err(Errno::EADDRNOTAVAIL);
            };
            let v = match cmd {
                SIOCGIFADDR | SIOCGIFDSTADDR => local,
                SIOCGIFNETMASK => a.netmask_v4(),
                _ => {
                    if i.kind == super::LinkKind::Loopback {
                        Ipv4Addr::UNSPECIFIED
                    } else {
                        a.broadcast_v4().unwrap_or(Ipv4Addr::UNSPECIFIED)
                    }
                }
            };
            req[IFNAMSIZ..IFNAMSIZ + 16].copy_from_slice(&sockaddr_in(v));
        }
    }
    io.copy_out(arg, &req)?;
    Ok(0)
}

/// SIOCGIFCONF: one ifreq (name, sockaddr_in) per IPv4 address; with a NULL
/// buffer, the length all of them need.
fn ifconf(info: &dyn NetInfo, io: &dyn UserIo, arg: u64) -> Result<u64, Errno> {
    let mut ifc = [0u8; IFCONF_LEN];
    io.copy_in(arg, &mut ifc)?;
    let len = i32::from_le_bytes(ifc[..4].try_into().unwrap());
    let buf = u64::from_le_bytes(ifc[8..16].try_into().unwrap());
    let mut total: usize = 0;
    'out: for i in info.interfaces() {
        for a in &i.addrs {
            let IpAddr::V4(v4) = a.addr else { continue };
            if buf == 0 {
                total += IFREQ_LEN;
                continue;
            }
            if (len as i64) - (total as i64) < IFREQ_LEN as i64 {
                break 'out;
            }
            let mut r = [0u8; IFREQ_LEN];
            let n = i.name.len().min(IFNAMSIZ - 1);
            r[..n].copy_from_slice(&i.name.as_bytes()[..n]);
            r[IFNAMSIZ..IFNAMSIZ + 16].copy_from_slice(&sockaddr_in(v4));
            io.copy_out(buf.wrapping_add(total as u64), &r)?;
            total += IFREQ_LEN;
        }
    }
    ifc[..4].copy_from_slice(&(total as i32).to_le_bytes());
    io.copy_out(arg, &ifc)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{IfAddr, LinkKind, LoopbackOnly, Route, IFF_UP};
    use std::cell::RefCell;

    /// Workload memory: `mem` at address 0x1000; anything else faults.
    struct Mem(RefCell<Vec<u8>>);

    const BASE: u64 = 0x1000;

    impl UserIo for Mem {
        fn copy_in(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
            let m = self.0.borrow();
            let off = addr.checked_sub(BASE).ok_or(Errno::EFAULT)? as usize;
            let src = m.get(off..off + buf.len()).ok_or(Errno::EFAULT)?;
            buf.copy_from_slice(src);
            Ok(())
        }
        fn copy_out(&self, addr: u64, buf: &[u8]) -> Result<(), Errno> {
            let mut m = self.0.borrow_mut();
            let off = addr.checked_sub(BASE).ok_or(Errno::EFAULT)? as usize;
            let dst = m.get_mut(off..off + buf.len()).ok_or(Errno::EFAULT)?;
            dst.copy_from_slice(buf);
            Ok(())
        }
    }

    fn ifreq(name: &str) -> Mem {
        let mut v = vec![0u8; 256];
        v[..name.len()].copy_from_slice(name.as_bytes());
        Mem(RefCell::new(v))
    }

    struct Eth;
    impl NetInfo for Eth {
        fn interfaces(&self) -> Vec<Interface> {
            let mut eth = LoopbackOnly::lo();
            eth.index = 2;
            eth.name = "eth0".into();
            eth.kind = LinkKind::Ether;
            eth.flags = IFF_UP;
            eth.mac = [2, 0, 0, 0, 0, 1];
            eth.addrs = vec![IfAddr {
                addr: "10.0.2.15".parse().unwrap(),
                prefix: 24,
            }];
            vec![LoopbackOnly::lo(), eth]
        }
        fn routes(&self) -> Vec<Route> {
            Vec::new()
        }
    }

    fn call(info: &dyn NetInfo, fam: i32, m: &Mem, cmd: u32) -> Option<Result<u64, Errno>> {
        ifreq_ioctl(info, fam, m, cmd, BASE)
    }

    #[test]
    fn by_name_and_index() {
        let m = ifreq("lo");
        assert_eq!(
            call(&LoopbackOnly, libc::AF_UNIX, &m, SIOCGIFINDEX),
            Some(Ok(0))
        );
        assert_eq!(m.0.borrow()[16..20], 1i32.to_le_bytes());
        assert_eq!(
            call(&LoopbackOnly, libc::AF_UNIX, &m, SIOCGIFNAME),
            Some(Ok(0))
        );
        assert_eq!(&m.0.borrow()[..3], b"lo\0");
        let m = ifreq("eth0:1");
        assert_eq!(call(&Eth, libc::AF_INET, &m, SIOCGIFHWADDR), Some(Ok(0)));
        assert_eq!(m.0.borrow()[16..24], [1, 0, 2, 0, 0, 0, 0, 1]);
        let m = ifreq("nope");
        assert_eq!(
            call(&Eth, libc::AF_INET, &m, SIOCGIFMTU),
            Some(Err(Errno::ENODEV))
        );
        // Unterminated names are cut at 15 bytes.
        let m = Mem(RefCell::new(vec![b'l'; 64]));
        assert_eq!(
            call(&Eth, libc::AF_INET, &m, SIOCGIFFLAGS),
            Some(Err(Errno::ENODEV))
        );
        // Faults.
        assert_eq!(
            ifreq_ioctl(&Eth, libc::AF_INET, &m, SIOCGIFFLAGS, 8),
            Some(Err(Errno::EFAULT))
        );
        assert_eq!(
            ifreq_ioctl(&Eth, libc::AF_INET, &m, SIOCGIFCONF, u64::MAX),
            Some(Err(Errno::EFAULT))
        );
    }

    #[test]
    fn inet_addresses() {
        let m = ifreq("eth0");
        assert_eq!(call(&Eth, libc::AF_UNIX, &m, SIOCGIFADDR), None);
        assert_eq!(call(&Eth, libc::AF_INET, &m, SIOCGIFADDR), Some(Ok(0)));
        assert_eq!(m.0.borrow()[16..24], [2, 0, 0, 0, 10, 0, 2, 15]);
        assert_eq!(call(&Eth, libc::AF_INET, &m, SIOCGIFNETMASK), Some(Ok(0)));
        assert_eq!(m.0.borrow()[20..24], [255, 255, 255, 0]);
        assert_eq!(call(&Eth, libc::AF_INET, &m, SIOCGIFBRDADDR), Some(Ok(0)));
        assert_eq!(m.0.borrow()[20..24], [10, 0, 2, 255]);
        assert_eq!(
            call(&Eth, libc::AF_INET, &m, SIOCSIFADDR),
            Some(Err(Errno::EPERM))
        );
        assert_eq!(
            call(&Eth, libc::AF_INET, &m, SIOCSIFMTU),
            Some(Err(Errno::EPERM))
        );
        assert_eq!(call(&Eth, libc::AF_UNIX, &m, SIOCSIFADDR), None);
    }

    #[test]
    fn ifconf_sizes() {
        // ifconf at BASE: len, pad, buf pointer.
        let m = Mem(RefCell::new(vec![0u8; 512]));
        assert_eq!(call(&Eth, libc::AF_UNIX, &m, SIOCGIFCONF), Some(Ok(0)));
        assert_eq!(m.0.borrow()[..4], 80i32.to_le_bytes());
        let set = |len: i32| {
            let mut b = m.0.borrow_mut();
            b[..4].copy_from_slice(&len.to_le_bytes());
            b[8..16].copy_from_slice(&(BASE + 64).to_le_bytes());
        };
        set(79);
        assert_eq!(call(&Eth, libc::AF_UNIX, &m, SIOCGIFCONF), Some(Ok(0)));
        assert_eq!(m.0.borrow()[..4], 40i32.to_le_bytes());
        assert_eq!(&m.0.borrow()[64..67], b"lo\0");
        set(-5);
        assert_eq!(call(&Eth, libc::AF_UNIX, &m, SIOCGIFCONF), Some(Ok(0)));
        assert_eq!(m.0.borrow()[..4], 0i32.to_le_bytes());
        set(400);
        assert_eq!(call(&Eth, libc::AF_UNIX, &m, SIOCGIFCONF), Some(Ok(0)));
        assert_eq!(m.0.borrow()[..4], 80i32.to_le_bytes());
        assert_eq!(&m.0.borrow()[104..109], b"eth0\0");
        assert_eq!(m.0.borrow()[124..128], [10, 0, 2, 15]);
    }
}
