//! Sentry-owned synthetic directories: read-only, in memory. For now they are the
//! empty /proc, /sys and /dev mounts (their real file systems come later); they
//! also stand in as the mount-point dentries of those mounts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use abi::linux::{Stat, Timespec, S_IFDIR};
use abi::Errno;

use crate::file::{DirEntry, FileOps};
use crate::inode::{Attr, Inode, StatFs, ST_RDONLY};

pub const PROC_SUPER_MAGIC: u64 = 0x9fa0;
pub const SYSFS_MAGIC: u64 = 0x6265_6572;
pub const TMPFS_MAGIC: u64 = 0x0102_1994;

static NEXT_INO: AtomicU64 = AtomicU64::new(1);
static NEXT_DEV_MINOR: AtomicU64 = AtomicU64::new(200);

/// The current wall-clock time, for the timestamps of sentry-owned nodes.
pub fn now() -> Timespec {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timespec {
        sec: d.as_secs() as i64,
        nsec: d.subsec_nanos() as i64,
    }
}

/// An empty, read-only directory owned by root, mode 0555.
pub struct SynthDir {
    stat: Stat,
    fs_type: u64,
}

impl SynthDir {
    /// A new empty directory on its own (anonymous) device, reporting `fs_type`
    /// from statfs.
    pub fn new(fs_type: u64) -> Arc<SynthDir> {
        let t = now();
        let stat = Stat {
            dev: abi::linux::makedev(0, NEXT_DEV_MINOR.fetch_add(1, Ordering::Relaxed) as u32),
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            nlink: 2,
            mode: S_IFDIR | 0o555,
            blksize: 4096,
            atime: t,
            mtime: t,
            ctime: t,
            ..Default::default()
        };
        Arc::new(SynthDir { stat, fs_type })
    }
}

impl Inode for SynthDir {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn attr(&self) -> Attr {
        Attr {
            mode: self.stat.mode,
            uid: self.stat.uid,
            gid: self.stat.gid,
        }
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }
    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOENT)
    }
    fn open(self: Arc<Self>, _flags: i32) -> Result<Box<dyn FileOps>, Errno> {
        Ok(Box::new(SynthDirFile { dir: self }))
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(StatFs {
            fs_type: self.fs_type,
            bsize: 4096,
            namelen: 255,
            frsize: 4096,
            flags: ST_RDONLY,
            ..Default::default()
        })
    }
}

struct SynthDirFile {
    dir: Arc<SynthDir>,
}

impl FileOps for SynthDirFile {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.dir.stat)
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        self.dir.statfs()
    }
    fn is_dir(&self) -> bool {
        true
    }
    fn readdir(&self, off: u64, _max: usize) -> Result<Vec<DirEntry>, Errno> {
        let dt = abi::linux::dtype_of_mode(S_IFDIR);
        let all = [
            DirEntry {
                ino: self.dir.stat.ino,
                next_off: 1,
                dtype: dt,
                name: b".".to_vec(),
            },
            DirEntry {
                ino: 1,
                next_off: 2,
                dtype: dt,
                name: b"..".to_vec(),
            },
        ];
        Ok(all.into_iter().skip(off.min(2) as usize).collect())
    }
}
