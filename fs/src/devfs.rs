//! devfs: the sentry's /dev: the memory devices (null, zero, full, random,
//! urandom), the pty multiplexer /dev/ptmx with /dev/pts mounted from
//! [`crate::devpts`], /dev/tty (the caller's controlling terminal), /dev/console
//! (the sandbox's initial stdout when it is a terminal), and the symlinks fd,
//! stdin, stdout and stderr into /proc/self/fd. /dev/shm is a tmpfs mounted by
//! the VFS. Nothing here touches a host device.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use abi::linux::{makedev, Stat, S_IFCHR, S_IFDIR, S_IFLNK};
use abi::Errno;

use crate::devpts::DevPts;
use crate::file::{DirEntry, FileOps, FileState};
use crate::inode::{Attr, Inode, StatFs};
use crate::synthetic::{now, TMPFS_MAGIC};

static NEXT_INO: AtomicU64 = AtomicU64::new(1);

/// The memory devices, with Linux's major/minor numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemDevice {
    Null,
    Zero,
    Full,
    Random,
    Urandom,
}

impl MemDevice {
    const ALL: [MemDevice; 5] = [
        MemDevice::Full,
        MemDevice::Null,
        MemDevice::Random,
        MemDevice::Urandom,
        MemDevice::Zero,
    ];

    fn name(self) -> &'static [u8] {
        match self {
            MemDevice::Null => b"null",
            MemDevice::Zero => b"zero",
            MemDevice::Full => b"full",
            MemDevice::Random => b"random",
            MemDevice::Urandom => b"urandom",
        }
    }

    fn minor(self) -> u32 {
        match self {
            MemDevice::Null => 3,
            MemDevice::Zero => 5,
            MemDevice::Full => 7,
            MemDevice::Random => 8,
            MemDevice::Urandom => 9,
        }
    }
}

/// The /dev directory.
pub struct DevDir {
    stat: Stat,
    devices: Vec<Arc<DevNode>>,
    pts: Arc<DevPts>,
    /// The fixed non-memory entries: (name, node).
    others: Vec<(&'static [u8], Arc<dyn Inode>)>,
}

/// A device node.
pub struct DevNode {
    dev: MemDevice,
    stat: Stat,
}

/// A symlink in /dev (fd, stdin, stdout, stderr).
struct DevLink {
    target: &'static [u8],
    stat: Stat,
}

impl Inode for DevLink {
    fn attr(&self) -> Attr {
        Attr {
            mode: self.stat.mode,
            uid: 0,
            gid: 0,
        }
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }
    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }
    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        Ok(self.target.to_vec())
    }
    fn open(self: Arc<Self>, _flags: i32) -> Result<Box<dyn FileOps>, Errno> {
        Err(Errno::ELOOP)
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(statfs())
    }
}

/// /dev/console: the sandbox's initial stdout when that is a terminal (see
/// [`DevPts::set_console`]); absent otherwise, as in a runc container started
/// without a terminal.
struct ConsoleNode {
    pts: Arc<DevPts>,
    stat: Stat,
}

impl Inode for ConsoleNode {
    fn attr(&self) -> Attr {
        let st = self.stat().unwrap_or(self.stat);
        Attr {
            mode: st.mode,
            uid: st.uid,
            gid: st.gid,
        }
    }
    /// The host terminal's own attributes, as a bind mount of it would show
    /// (ttyname(3) compares them with the fd's).
    fn stat(&self) -> Result<Stat, Errno> {
        match self.pts.console() {
            Some(f) => f.stat(),
            None => Ok(self.stat),
        }
    }
    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }
    fn open(self: Arc<Self>, _flags: i32) -> Result<Box<dyn FileOps>, Errno> {
        let f = self.pts.console().ok_or(Errno::ENXIO)?;
        Ok(Box::new(crate::file::SharedOps(f)))
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(statfs())
    }
    fn is_stale(&self) -> bool {
        self.pts.console().is_none()
    }
}

impl DevDir {
    pub fn new() -> Arc<DevDir> {
        DevDir::with_pts(DevPts::new())
    }

    /// /dev with the ptys of `pts` (/dev/ptmx, /dev/tty; the caller mounts
    /// `pts.root()` on /dev/pts).
    pub fn with_pts(pts: Arc<DevPts>) -> Arc<DevDir> {
        let t = now();
        let fsdev = makedev(0, 5);
        let stat = Stat {
            dev: fsdev,
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            nlink: 2,
            mode: S_IFDIR | 0o755,
            blksize: 4096,
            atime: t,
            mtime: t,
            ctime: t,
            ..Default::default()
        };
        let devices = MemDevice::ALL
            .iter()
            .map(|&d| {
                Arc::new(DevNode {
                    dev: d,
                    stat: Stat {
                        dev: fsdev,
                        ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
                        nlink: 1,
                        mode: S_IFCHR | 0o666,
                        rdev: makedev(1, d.minor()),
                        blksize: 4096,
                        atime: t,
                        mtime: t,
                        ctime: t,
                        ..Default::default()
                    },
                })
            })
            .collect();
        let link = |target: &'static [u8]| -> Arc<dyn Inode> {
            Arc::new(DevLink {
                target,
                stat: Stat {
                    dev: fsdev,
                    ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
                    nlink: 1,
                    mode: S_IFLNK | 0o777,
                    size: target.len() as i64,
                    blksize: 4096,
                    atime: t,
                    mtime: t,
                    ctime: t,
                    ..Default::default()
                },
            })
        };
        let console: Arc<dyn Inode> = Arc::new(ConsoleNode {
            pts: pts.clone(),
            stat: Stat {
                dev: fsdev,
                ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
                nlink: 1,
                mode: S_IFCHR | 0o600,
                rdev: makedev(5, 1),
                blksize: 4096,
                atime: t,
                mtime: t,
                ctime: t,
                ..Default::default()
            },
        });
        let others: Vec<(&'static [u8], Arc<dyn Inode>)> = vec![
            (b"console", console),
            (b"fd", link(b"/proc/self/fd")),
            (b"ptmx", pts.ptmx_node()),
            (b"pts", pts.root()),
            (b"stderr", link(b"/proc/self/fd/2")),
            (b"stdin", link(b"/proc/self/fd/0")),
            (b"stdout", link(b"/proc/self/fd/1")),
            (b"tty", pts.tty_node()),
        ];
        Arc::new(DevDir {
            stat,
            devices,
            pts,
            others,
        })
    }

    /// The ptys behind /dev/ptmx and /dev/pts.
    pub fn pts(&self) -> &Arc<DevPts> {
        &self.pts
    }
}

/// statfs of devfs.
pub(crate) fn devfs_statfs() -> StatFs {
    statfs()
}

fn statfs() -> StatFs {
    StatFs {
        fs_type: TMPFS_MAGIC,
        bsize: 4096,
        namelen: 255,
        frsize: 4096,
        ..Default::default()
    }
}

impl Inode for DevDir {
    fn attr(&self) -> Attr {
        Attr {
            mode: self.stat.mode,
            uid: 0,
            gid: 0,
        }
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }
    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        if name == b"console" && self.pts.console().is_none() {
            return Err(Errno::ENOENT);
        }
        if let Some((_, n)) = self.others.iter().find(|(n, _)| *n == name) {
            return Ok(n.clone());
        }
        self.devices
            .iter()
            .find(|d| d.dev.name() == name)
            .map(|d| d.clone() as Arc<dyn Inode>)
            .ok_or(Errno::ENOENT)
    }
    fn open(self: Arc<Self>, _flags: i32) -> Result<Box<dyn FileOps>, Errno> {
        Ok(Box::new(DevDirFile { dir: self }))
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(statfs())
    }
}

struct DevDirFile {
    dir: Arc<DevDir>,
}

impl FileOps for DevDirFile {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.dir.stat)
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(statfs())
    }
    fn is_dir(&self) -> bool {
        true
    }
    fn readdir(&self, off: u64, _max: usize) -> Result<Vec<DirEntry>, Errno> {
        let dt_dir = abi::linux::dtype_of_mode(S_IFDIR);
        let dt_chr = abi::linux::dtype_of_mode(S_IFCHR);
        let mut all = vec![
            DirEntry {
                ino: self.dir.stat.ino,
                next_off: 1,
                dtype: dt_dir,
                name: b".".to_vec(),
            },
            DirEntry {
                ino: 1,
                next_off: 2,
                dtype: dt_dir,
                name: b"..".to_vec(),
            },
        ];
        let mut ents: Vec<(Vec<u8>, u64, u8)> = self
            .dir
            .devices
            .iter()
            .map(|d| (d.dev.name().to_vec(), d.stat.ino, dt_chr))
            .collect();
        for (name, node) in &self.dir.others {
            if *name == b"console" && self.dir.pts.console().is_none() {
                continue;
            }
            let a = node.attr();
            let ino = node.stat().map_or(0, |s| s.ino);
            ents.push((name.to_vec(), ino, abi::linux::dtype_of_mode(a.mode)));
        }
        ents.push((b"shm".to_vec(), 2, dt_dir));
        ents.sort();
        for (i, (name, ino, dtype)) in ents.into_iter().enumerate() {
            all.push(DirEntry {
                ino,
                next_off: i as u64 + 3,
                dtype,
                name,
            });
        }
        Ok(all.into_iter().skip(off as usize).collect())
    }
}

impl Inode for DevNode {
    fn attr(&self) -> Attr {
        Attr {
            mode: self.stat.mode,
            uid: 0,
            gid: 0,
        }
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }
    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }
    fn open(self: Arc<Self>, _flags: i32) -> Result<Box<dyn FileOps>, Errno> {
        Ok(Box::new(MemDeviceFile { node: self }))
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(statfs())
    }
}

/// An open memory device: reads and writes never block.
struct MemDeviceFile {
    node: Arc<DevNode>,
}

impl FileOps for MemDeviceFile {
    fn read(&self, _st: &FileState, buf: &mut [u8]) -> Result<usize, Errno> {
        self.pread(buf, 0)
    }
    fn write(&self, _st: &FileState, buf: &[u8]) -> Result<usize, Errno> {
        self.pwrite(buf, 0)
    }
    fn pread(&self, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        match self.node.dev {
            MemDevice::Null => Ok(0),
            MemDevice::Zero | MemDevice::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            MemDevice::Random | MemDevice::Urandom => {
                platform::fill_random(buf);
                Ok(buf.len())
            }
        }
    }
    fn pwrite(&self, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        match self.node.dev {
            MemDevice::Full => Err(Errno::ENOSPC),
            // Writes to null, zero and the random devices are accepted and dropped
            // (the host's entropy pool is not the workload's to stir).
            _ => Ok(buf.len()),
        }
    }
    /// Memory devices have no fsync: EINVAL, as Linux.
    fn fsync(&self, _datasync: bool) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
    /// Seeking a memory device always succeeds and reports offset 0.
    fn lseek(&self, _st: &FileState, _off: i64, _whence: i32) -> Result<u64, Errno> {
        Ok(0)
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.node.stat)
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(statfs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_behave() {
        let d = DevDir::new();
        let null = d.lookup(b"null").unwrap().open(libc::O_RDWR).unwrap();
        let mut b = [1u8; 4];
        assert_eq!(null.pread(&mut b, 0), Ok(0));
        assert_eq!(null.pwrite(&b, 0), Ok(4));
        let full = d.lookup(b"full").unwrap().open(libc::O_RDWR).unwrap();
        assert_eq!(full.pwrite(&b, 0), Err(Errno::ENOSPC));
        assert_eq!(full.pread(&mut b, 0), Ok(4));
        assert_eq!(b, [0; 4]);
        assert_eq!(d.lookup(b"nope").err(), Some(Errno::ENOENT));
        assert_eq!(
            d.lookup(b"zero").unwrap().stat().unwrap().rdev,
            makedev(1, 5)
        );
    }
}
