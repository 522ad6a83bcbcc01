//! Linux structs that cross the syscall boundary, with their x86-64 byte encodings.

/// Little-endian byte writer for building structs field by field.
#[derive(Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    pub fn with_capacity(n: usize) -> Self {
        Encoder {
            buf: Vec::with_capacity(n),
        }
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    pub fn zeros(&mut self, n: usize) -> &mut Self {
        self.buf.resize(self.buf.len() + n, 0);
        self
    }
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads little-endian integers out of a byte slice; short input reads as zero
/// rather than panicking (callers copy in exactly the struct size first).
pub fn le_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// See [`le_u64`].
pub fn le_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

/// `struct timespec`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}

impl Timespec {
    pub const SIZE: usize = 16;
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::with_capacity(16);
        e.i64(self.sec).i64(self.nsec);
        e.finish()
    }
    pub fn from_bytes(b: &[u8]) -> Timespec {
        Timespec {
            sec: le_u64(b, 0) as i64,
            nsec: le_u64(b, 8) as i64,
        }
    }
    pub fn from_nanos(ns: u128) -> Timespec {
        Timespec {
            sec: (ns / 1_000_000_000) as i64,
            nsec: (ns % 1_000_000_000) as i64,
        }
    }
    /// Nanoseconds, or None when nsec is out of range or the value is negative.
    pub fn to_nanos(&self) -> Option<u128> {
        if self.sec < 0 || !(0..1_000_000_000).contains(&self.nsec) {
            return None;
        }
        Some(self.sec as u128 * 1_000_000_000 + self.nsec as u128)
    }
}

/// `struct stat` (x86-64 layout, 144 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: i64,
    pub blksize: i64,
    pub blocks: i64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

impl Stat {
    pub const SIZE: usize = 144;
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::with_capacity(Self::SIZE);
        e.u64(self.dev)
            .u64(self.ino)
            .u64(self.nlink)
            .u32(self.mode)
            .u32(self.uid)
            .u32(self.gid)
            .u32(0);
        e.u64(self.rdev)
            .i64(self.size)
            .i64(self.blksize)
            .i64(self.blocks);
        e.i64(self.atime.sec).i64(self.atime.nsec);
        e.i64(self.mtime.sec).i64(self.mtime.nsec);
        e.i64(self.ctime.sec).i64(self.ctime.nsec);
        e.zeros(24);
        e.finish()
    }

    /// Converts a host `libc::stat`.
    pub fn from_host(s: &libc::stat) -> Stat {
        Stat {
            dev: s.st_dev,
            ino: s.st_ino,
            nlink: s.st_nlink,
            mode: s.st_mode,
            uid: s.st_uid,
            gid: s.st_gid,
            rdev: s.st_rdev,
            size: s.st_size,
            blksize: s.st_blksize,
            blocks: s.st_blocks,
            atime: Timespec {
                sec: s.st_atime,
                nsec: s.st_atime_nsec,
            },
            mtime: Timespec {
                sec: s.st_mtime,
                nsec: s.st_mtime_nsec,
            },
            ctime: Timespec {
                sec: s.st_ctime,
                nsec: s.st_ctime_nsec,
            },
        }
    }

    /// `struct statx` (256 bytes) holding this stat; `mask` is what was asked.
    pub fn to_statx_bytes(&self, mask: u32) -> Vec<u8> {
        // STATX_BASIC_STATS: everything struct stat carries.
        let got = mask & 0x7ff | 0x7ff;
        let mut e = Encoder::with_capacity(256);
        e.u32(got).u32(self.blksize as u32).u64(0); // mask, blksize, attributes
        e.u32(self.nlink as u32)
            .u32(self.uid)
            .u32(self.gid)
            .u16(self.mode as u16)
            .u16(0);
        e.u64(self.ino)
            .u64(self.size as u64)
            .u64(self.blocks as u64)
            .u64(0); // attributes_mask
        for t in [self.atime, Timespec::default(), self.ctime, self.mtime] {
            e.i64(t.sec).u32(t.nsec as u32).u32(0);
        }
        let (rmaj, rmin) = (dev_major(self.rdev), dev_minor(self.rdev));
        let (maj, min) = (dev_major(self.dev), dev_minor(self.dev));
        e.u32(rmaj).u32(rmin).u32(maj).u32(min);
        e.zeros(256 - 0x90);
        e.finish()
    }
}

/// Major number of a Linux `dev_t`.
pub fn dev_major(d: u64) -> u32 {
    (((d >> 32) & 0xffff_f000) | ((d >> 8) & 0xfff)) as u32
}

/// Minor number of a Linux `dev_t`.
pub fn dev_minor(d: u64) -> u32 {
    (((d >> 12) & 0xffff_ff00) | (d & 0xff)) as u32
}

/// Builds a Linux `dev_t`.
pub fn makedev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (major as u64, minor as u64);
    ((ma & 0xffff_f000) << 32) | ((ma & 0xfff) << 8) | ((mi & 0xffff_ff00) << 12) | (mi & 0xff)
}

/// File type bits of `st_mode`.
pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;

/// `d_type` of a directory entry for file mode `mode`.
pub fn dtype_of_mode(mode: u32) -> u8 {
    ((mode & S_IFMT) >> 12) as u8
}

/// Appends one `struct linux_dirent64` to `out` if it fits in `cap` bytes.
/// Returns false (appending nothing) when it does not fit.
pub fn push_dirent64(
    out: &mut Vec<u8>,
    cap: usize,
    ino: u64,
    off: i64,
    dtype: u8,
    name: &[u8],
) -> bool {
    let reclen = (19 + name.len() + 1 + 7) & !7;
    if out.len() + reclen > cap {
        return false;
    }
    let start = out.len();
    out.extend_from_slice(&ino.to_le_bytes());
    out.extend_from_slice(&off.to_le_bytes());
    out.extend_from_slice(&(reclen as u16).to_le_bytes());
    out.push(dtype);
    out.extend_from_slice(name);
    out.resize(start + reclen, 0);
    true
}

/// `struct utsname`: six 65-byte NUL-padded fields.
pub fn utsname_bytes(fields: [&str; 6]) -> Vec<u8> {
    let mut out = Vec::with_capacity(390);
    for f in fields {
        let mut b = [0u8; 65];
        let n = f.len().min(64);
        b[..n].copy_from_slice(&f.as_bytes()[..n]);
        out.extend_from_slice(&b);
    }
    out
}

/// `struct rlimit` / `struct rlimit64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rlimit {
    pub cur: u64,
    pub max: u64,
}

impl Rlimit {
    pub const SIZE: usize = 16;
    pub const INFINITY: u64 = u64::MAX;
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::with_capacity(16);
        e.u64(self.cur).u64(self.max);
        e.finish()
    }
    pub fn from_bytes(b: &[u8]) -> Rlimit {
        Rlimit {
            cur: le_u64(b, 0),
            max: le_u64(b, 8),
        }
    }
}

/// `struct statfs` (x86-64, 120 bytes); also what the gofer reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatFs {
    pub fs_type: u64,
    pub bsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub fsid: u64,
    pub namelen: u64,
    pub frsize: u64,
    pub flags: u64,
}

/// `ST_RDONLY` in `f_flags`.
pub const ST_RDONLY: u64 = 1;

impl StatFs {
    pub const SIZE: usize = 120;
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::with_capacity(Self::SIZE);
        for v in [
            self.fs_type,
            self.bsize,
            self.blocks,
            self.bfree,
            self.bavail,
            self.files,
            self.ffree,
            self.fsid,
            self.namelen,
            self.frsize,
            self.flags,
        ] {
            e.u64(v);
        }
        e.zeros(32);
        e.finish()
    }
}

/// The kernel's O_LARGEFILE (the libc crate defines it as 0 on x86-64, where
/// user space never needs to pass it, but the kernel reports it in F_GETFL).
pub const O_LARGEFILE: i32 = 0o100000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_layout() {
        let s = Stat {
            ino: 7,
            mode: S_IFREG | 0o644,
            size: 42,
            ..Default::default()
        };
        let b = s.to_bytes();
        assert_eq!(b.len(), Stat::SIZE);
        assert_eq!(le_u64(&b, 8), 7);
        assert_eq!(le_u32(&b, 24), S_IFREG | 0o644);
        assert_eq!(le_u64(&b, 48), 42);
        assert_eq!(s.to_statx_bytes(0x7ff).len(), 256);
    }

    #[test]
    fn dirent_alignment() {
        let mut v = Vec::new();
        assert!(push_dirent64(&mut v, 100, 1, 1, 4, b"a"));
        assert_eq!(v.len(), 24);
        assert!(!push_dirent64(&mut v, 30, 1, 2, 4, b"bb"));
    }

    #[test]
    fn devnums() {
        let d = makedev(259, 70000);
        assert_eq!((dev_major(d), dev_minor(d)), (259, 70000));
    }
}
