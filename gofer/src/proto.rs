//! The gofer wire protocol: request/response messages and their binary codec.
//!
//! One message per SOCK_SEQPACKET record: `[u32 tag][payload]`, little-endian.
//! Byte strings are `u32 length + bytes` with per-field limits. Decoding is
//! length-checked everywhere and rejects trailing bytes; it never panics on any
//! input (property-tested). Host fds travel out of band (SCM_RIGHTS) with
//! [`Response::Open`].

use crate::Handle;
use abi::linux::{Stat, Timespec};

/// Largest record either side sends or accepts.
pub const MAX_FRAME: usize = 64 * 1024;
/// Longest single path component.
pub const NAME_MAX: usize = 255;
/// Longest symlink target.
pub const PATH_MAX: usize = 4096;
/// Most names in one `Walk` request (the client splits longer walks).
pub const MAX_WALK: usize = 64;
/// Upper bound the server applies to `Getdents::max_bytes` (encoded entry bytes).
pub const MAX_DIRENT_BYTES: u32 = (MAX_FRAME - 1024) as u32;
/// Encoded size of a [`Dirent`] apart from its name.
pub const DIRENT_OVERHEAD: usize = 8 + 8 + 1 + 4;
/// Longest extended attribute name (Linux XATTR_NAME_MAX).
pub const XATTR_NAME_MAX: usize = 255;
/// Largest extended attribute value or name list carried in one frame (Linux allows
/// 64 KiB; larger host values give E2BIG).
pub const MAX_XATTR_SIZE: usize = 60 * 1024;

/// `Create::flags` the peer may pass (anything else is EINVAL). `O_CREAT`, `O_EXCL` and
/// `O_CLOEXEC` are accepted but implied: Create always makes a new file (EEXIST if the
/// name exists) and host fds are always close-on-exec.
pub const CREATE_FLAGS: i32 = libc::O_ACCMODE
    | libc::O_CREAT
    | libc::O_EXCL
    | libc::O_TRUNC
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_DSYNC
    | libc::O_SYNC
    | libc::O_CLOEXEC
    | abi::linux::O_LARGEFILE;
/// Permission bits accepted in `mode` fields (file type bits are EINVAL, except in Mknod).
pub const MODE_PERM: u32 = 0o7777;
/// `Rename::flags`.
pub const RENAME_NOREPLACE: u32 = 1;
pub const RENAME_EXCHANGE: u32 = 2;
/// `SetXattr::flags`.
pub const XATTR_CREATE: i32 = 1;
pub const XATTR_REPLACE: i32 = 2;

/// `SetStat::mask` bits.
pub mod setstat {
    pub const MODE: u32 = 1 << 0;
    pub const UID: u32 = 1 << 1;
    pub const GID: u32 = 1 << 2;
    pub const SIZE: u32 = 1 << 3;
    /// Set atime to `atime`.
    pub const ATIME: u32 = 1 << 4;
    /// Set mtime to `mtime`.
    pub const MTIME: u32 = 1 << 5;
    /// Set atime to the current time (exclusive with ATIME).
    pub const ATIME_NOW: u32 = 1 << 6;
    /// Set mtime to the current time (exclusive with MTIME).
    pub const MTIME_NOW: u32 = 1 << 7;
    pub const ALL: u32 = (1 << 8) - 1;
}

/// One directory entry. `next_offset` is the `offset` to pass to get the entries after it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dirent {
    pub ino: u64,
    pub next_offset: u64,
    pub dtype: u8,
    pub name: Vec<u8>,
}

pub use abi::linux::StatFs;

/// Sentry -> gofer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A new handle for the root of the served tree.
    Mount,
    /// Walk `names` (at most [`MAX_WALK`]) one component at a time from `dir`.
    Walk {
        dir: Handle,
        names: Vec<Vec<u8>>,
    },
    Stat {
        handle: Handle,
    },
    /// Open the node; the reply carries the host fd.
    Open {
        handle: Handle,
        flags: i32,
    },
    Readlink {
        handle: Handle,
    },
    Getdents {
        handle: Handle,
        offset: u64,
        max_bytes: u32,
    },
    StatFs {
        handle: Handle,
    },
    Close {
        handle: Handle,
    },
    /// Create and open a new regular file `name` in `dir` (never an existing one: EEXIST).
    /// `flags`: see [`CREATE_FLAGS`]; `mode`: permission bits only; `uid`/`gid`: the owner
    /// (u32::MAX keeps the gofer's own id). The reply ([`Response::Create`]) carries the fd.
    Create {
        dir: Handle,
        name: Vec<u8>,
        flags: i32,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Mkdir {
        dir: Handle,
        name: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// `mode` = file type (S_IFREG or 0, S_IFIFO, S_IFSOCK; devices are EPERM) | permissions.
    Mknod {
        dir: Handle,
        name: Vec<u8>,
        mode: u32,
        rdev: u64,
        uid: u32,
        gid: u32,
    },
    /// `target` is opaque (never resolved by the gofer): non-empty, no NUL, < PATH_MAX.
    Symlink {
        dir: Handle,
        name: Vec<u8>,
        target: Vec<u8>,
        uid: u32,
        gid: u32,
    },
    /// A new hard link `name` in `dir` to the (non-directory) node `target`.
    Link {
        dir: Handle,
        name: Vec<u8>,
        target: Handle,
    },
    /// `flags`: 0 or AT_REMOVEDIR.
    Unlink {
        dir: Handle,
        name: Vec<u8>,
        flags: i32,
    },
    /// renameat2; `flags`: 0, [`RENAME_NOREPLACE`] or [`RENAME_EXCHANGE`].
    Rename {
        old_dir: Handle,
        old_name: Vec<u8>,
        new_dir: Handle,
        new_name: Vec<u8>,
        flags: u32,
    },
    /// Changes the attributes selected by `mask` ([`setstat`] bits), in the order
    /// size, owner, mode, times.
    SetStat {
        handle: Handle,
        mask: u32,
        mode: u32,
        uid: u32,
        gid: u32,
        size: u64,
        atime: Timespec,
        mtime: Timespec,
    },
    /// `size` 0 = any size up to [`MAX_XATTR_SIZE`]; else ERANGE if the value is longer.
    GetXattr {
        handle: Handle,
        name: Vec<u8>,
        size: u32,
    },
    /// Same `size` rule as GetXattr.
    ListXattr {
        handle: Handle,
        size: u32,
    },
    SetXattr {
        handle: Handle,
        name: Vec<u8>,
        value: Vec<u8>,
        flags: i32,
    },
    RemoveXattr {
        handle: Handle,
        name: Vec<u8>,
    },
}

/// Gofer -> sentry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// The request failed with this (positive) errno.
    Error(i32),
    Mount {
        handle: Handle,
        stat: Stat,
    },
    /// The nodes walked, in order. `error` is 0 when every name was walked,
    /// else the errno that stopped the walk at `nodes.len()`.
    Walk {
        nodes: Vec<(Handle, Stat)>,
        error: i32,
    },
    Stat(Stat),
    /// Success; exactly one fd accompanies this reply (SCM_RIGHTS).
    Open,
    Readlink(Vec<u8>),
    /// Empty means end of directory.
    Getdents(Vec<Dirent>),
    StatFs(StatFs),
    Closed,
    /// Reply to Create: the new node; exactly one fd (the opened file) accompanies it.
    Create {
        handle: Handle,
        stat: Stat,
    },
    /// Reply to Mkdir, Mknod and Symlink: the new node.
    Node {
        handle: Handle,
        stat: Stat,
    },
    /// Success without data (Unlink, Rename, SetXattr, RemoveXattr).
    Ok,
    /// An xattr value (GetXattr) or a NUL-separated name list (ListXattr).
    Xattr(Vec<u8>),
}

/// A malformed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed gofer frame: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

type DResult<T> = Result<T, DecodeError>;

mod tag {
    pub const T_MOUNT: u32 = 1;
    pub const T_WALK: u32 = 2;
    pub const T_STAT: u32 = 3;
    pub const T_OPEN: u32 = 4;
    pub const T_READLINK: u32 = 5;
    pub const T_GETDENTS: u32 = 6;
    pub const T_STATFS: u32 = 7;
    pub const T_CLOSE: u32 = 8;
    pub const T_CREATE: u32 = 9;
    pub const T_MKDIR: u32 = 10;
    pub const T_MKNOD: u32 = 11;
    pub const T_SYMLINK: u32 = 12;
    pub const T_LINK: u32 = 13;
    pub const T_UNLINK: u32 = 14;
    pub const T_RENAME: u32 = 15;
    pub const T_SETSTAT: u32 = 16;
    pub const T_GETXATTR: u32 = 17;
    pub const T_LISTXATTR: u32 = 18;
    pub const T_SETXATTR: u32 = 19;
    pub const T_REMOVEXATTR: u32 = 20;

    pub const R_ERROR: u32 = 0x100;
    pub const R_MOUNT: u32 = 0x101;
    pub const R_WALK: u32 = 0x102;
    pub const R_STAT: u32 = 0x103;
    pub const R_OPEN: u32 = 0x104;
    pub const R_READLINK: u32 = 0x105;
    pub const R_GETDENTS: u32 = 0x106;
    pub const R_STATFS: u32 = 0x107;
    pub const R_CLOSED: u32 = 0x108;
    pub const R_CREATE: u32 = 0x109;
    pub const R_NODE: u32 = 0x10a;
    pub const R_OK: u32 = 0x10b;
    pub const R_XATTR: u32 = 0x10c;
}
use tag::*;

/// Encoded size of a [`Stat`].
pub const STAT_SIZE: usize = 3 * 8 + 3 * 4 + 4 * 8 + 6 * 8;

/// Little-endian writer.
struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }
    fn stat(&mut self, s: &Stat) {
        self.u64(s.dev);
        self.u64(s.ino);
        self.u64(s.nlink);
        self.u32(s.mode);
        self.u32(s.uid);
        self.u32(s.gid);
        self.u64(s.rdev);
        self.i64(s.size);
        self.i64(s.blksize);
        self.i64(s.blocks);
        for t in [s.atime, s.mtime, s.ctime] {
            self.i64(t.sec);
            self.i64(t.nsec);
        }
    }
}

/// Length-checked little-endian reader.
struct R<'a> {
    b: &'a [u8],
}

impl<'a> R<'a> {
    fn take(&mut self, n: usize) -> DResult<&'a [u8]> {
        if self.b.len() < n {
            return Err(DecodeError("short frame"));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn arr<const N: usize>(&mut self) -> DResult<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> DResult<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> DResult<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn i32(&mut self) -> DResult<i32> {
        Ok(i32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> DResult<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    fn i64(&mut self) -> DResult<i64> {
        Ok(i64::from_le_bytes(self.arr()?))
    }
    fn bytes(&mut self, max: usize) -> DResult<Vec<u8>> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(DecodeError("string too long"));
        }
        Ok(self.take(n)?.to_vec())
    }
    /// A count of items each at least `min_size` bytes, bounded by `max` and by what is left.
    fn count(&mut self, max: usize, min_size: usize) -> DResult<usize> {
        let n = self.u32()? as usize;
        if n > max || n.saturating_mul(min_size) > self.b.len() {
            return Err(DecodeError("bad count"));
        }
        Ok(n)
    }
    fn stat(&mut self) -> DResult<Stat> {
        let mut s = Stat {
            dev: self.u64()?,
            ino: self.u64()?,
            nlink: self.u64()?,
            mode: self.u32()?,
            uid: self.u32()?,
            gid: self.u32()?,
            rdev: self.u64()?,
            size: self.i64()?,
            blksize: self.i64()?,
            blocks: self.i64()?,
            ..Stat::default()
        };
        let mut ts = [Timespec::default(); 3];
        for t in ts.iter_mut() {
            t.sec = self.i64()?;
            t.nsec = self.i64()?;
        }
        [s.atime, s.mtime, s.ctime] = ts;
        Ok(s)
    }
    fn finish(self) -> DResult<()> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(DecodeError("trailing bytes"))
        }
    }
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = W(Vec::with_capacity(32));
        match self {
            Request::Mount => w.u32(T_MOUNT),
            Request::Walk { dir, names } => {
                w.u32(T_WALK);
                w.u64(*dir);
                w.u32(names.len() as u32);
                for n in names {
                    w.bytes(n);
                }
            }
            Request::Stat { handle } => {
                w.u32(T_STAT);
                w.u64(*handle);
            }
            Request::Open { handle, flags } => {
                w.u32(T_OPEN);
                w.u64(*handle);
                w.i32(*flags);
            }
            Request::Readlink { handle } => {
                w.u32(T_READLINK);
                w.u64(*handle);
            }
            Request::Getdents {
                handle,
                offset,
                max_bytes,
            } => {
                w.u32(T_GETDENTS);
                w.u64(*handle);
                w.u64(*offset);
                w.u32(*max_bytes);
            }
            Request::StatFs { handle } => {
                w.u32(T_STATFS);
                w.u64(*handle);
            }
            Request::Close { handle } => {
                w.u32(T_CLOSE);
                w.u64(*handle);
            }
            Request::Create {
                dir,
                name,
                flags,
                mode,
                uid,
                gid,
            } => {
                w.u32(T_CREATE);
                w.u64(*dir);
                w.bytes(name);
                w.i32(*flags);
                w.u32(*mode);
                w.u32(*uid);
                w.u32(*gid);
            }
            Request::Mkdir {
                dir,
                name,
                mode,
                uid,
                gid,
            } => {
                w.u32(T_MKDIR);
                w.u64(*dir);
                w.bytes(name);
                w.u32(*mode);
                w.u32(*uid);
                w.u32(*gid);
            }
            Request::Mknod {
                dir,
                name,
                mode,
                rdev,
                uid,
                gid,
            } => {
                w.u32(T_MKNOD);
                w.u64(*dir);
                w.bytes(name);
                w.u32(*mode);
                w.u64(*rdev);
                w.u32(*uid);
                w.u32(*gid);
            }
            Request::Symlink {
                dir,
                name,
                target,
                uid,
                gid,
            } => {
                w.u32(T_SYMLINK);
                w.u64(*dir);
                w.bytes(name);
                w.bytes(target);
                w.u32(*uid);
                w.u32(*gid);
            }
            Request::Link { dir, name, target } => {
                w.u32(T_LINK);
                w.u64(*dir);
                w.bytes(name);
                w.u64(*target);
            }
            Request::Unlink { dir, name, flags } => {
                w.u32(T_UNLINK);
                w.u64(*dir);
                w.bytes(name);
                w.i32(*flags);
            }
            Request::Rename {
                old_dir,
                old_name,
                new_dir,
                new_name,
                flags,
            } => {
                w.u32(T_RENAME);
                w.u64(*old_dir);
                w.bytes(old_name);
                w.u64(*new_dir);
                w.bytes(new_name);
                w.u32(*flags);
            }
            Request::SetStat {
                handle,
                mask,
                mode,
                uid,
                gid,
                size,
                atime,
                mtime,
            } => {
                w.u32(T_SETSTAT);
                w.u64(*handle);
                w.u32(*mask);
                w.u32(*mode);
                w.u32(*uid);
                w.u32(*gid);
                w.u64(*size);
                for t in [atime, mtime] {
                    w.i64(t.sec);
                    w.i64(t.nsec);
                }
            }
            Request::GetXattr { handle, name, size } => {
                w.u32(T_GETXATTR);
                w.u64(*handle);
                w.bytes(name);
                w.u32(*size);
            }
            Request::ListXattr { handle, size } => {
                w.u32(T_LISTXATTR);
                w.u64(*handle);
                w.u32(*size);
            }
            Request::SetXattr {
                handle,
                name,
                value,
                flags,
            } => {
                w.u32(T_SETXATTR);
                w.u64(*handle);
                w.bytes(name);
                w.bytes(value);
                w.i32(*flags);
            }
            Request::RemoveXattr { handle, name } => {
                w.u32(T_REMOVEXATTR);
                w.u64(*handle);
                w.bytes(name);
            }
        }
        w.0
    }

    /// Decodes one frame. Structural checks only (lengths, counts, limits);
    /// name validity is checked by the server.
    pub fn decode(b: &[u8]) -> Result<Request, DecodeError> {
        if b.len() > MAX_FRAME {
            return Err(DecodeError("frame too large"));
        }
        let mut r = R { b };
        let req = match r.u32()? {
            T_MOUNT => Request::Mount,
            T_WALK => {
                let dir = r.u64()?;
                let n = r.count(MAX_WALK, 4)?;
                let mut names = Vec::with_capacity(n);
                for _ in 0..n {
                    names.push(r.bytes(NAME_MAX)?);
                }
                Request::Walk { dir, names }
            }
            T_STAT => Request::Stat { handle: r.u64()? },
            T_OPEN => Request::Open {
                handle: r.u64()?,
                flags: r.i32()?,
            },
            T_READLINK => Request::Readlink { handle: r.u64()? },
            T_GETDENTS => Request::Getdents {
                handle: r.u64()?,
                offset: r.u64()?,
                max_bytes: r.u32()?,
            },
            T_STATFS => Request::StatFs { handle: r.u64()? },
            T_CLOSE => Request::Close { handle: r.u64()? },
            T_CREATE => Request::Create {
                dir: r.u64()?,
                name: r.bytes(NAME_MAX)?,
                flags: r.i32()?,
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
            },
            T_MKDIR => Request::Mkdir {
                dir: r.u64()?,
                name: r.bytes(NAME_MAX)?,
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
            },
            T_MKNOD => Request::Mknod {
                dir: r.u64()?,
                name: r.bytes(NAME_MAX)?,
                mode: r.u32()?,
                rdev: r.u64()?,
                uid: r.u32()?,
                gid: r.u32()?,
            },
            T_SYMLINK => Request::Symlink {
                dir: r.u64()?,
                name: r.bytes(NAME_MAX)?,
                target: r.bytes(PATH_MAX)?,
                uid: r.u32()?,
                gid: r.u32()?,
            },
            T_LINK => Request::Link {
                dir: r.u64()?,
                name: r.bytes(NAME_MAX)?,
                target: r.u64()?,
            },
            T_UNLINK => Request::Unlink {
                dir: r.u64()?,
                name: r.bytes(NAME_MAX)?,
                flags: r.i32()?,
            },
            T_RENAME => Request::Rename {
                old_dir: r.u64()?,
                old_name: r.bytes(NAME_MAX)?,
                new_dir: r.u64()?,
                new_name: r.bytes(NAME_MAX)?,
                flags: r.u32()?,
            },
            T_SETSTAT => Request::SetStat {
                handle: r.u64()?,
                mask: r.u32()?,
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
                size: r.u64()?,
                atime: Timespec {
                    sec: r.i64()?,
                    nsec: r.i64()?,
                },
                mtime: Timespec {
                    sec: r.i64()?,
                    nsec: r.i64()?,
                },
            },
            T_GETXATTR => Request::GetXattr {
                handle: r.u64()?,
                name: r.bytes(XATTR_NAME_MAX)?,
                size: r.u32()?,
            },
            T_LISTXATTR => Request::ListXattr {
                handle: r.u64()?,
                size: r.u32()?,
            },
            T_SETXATTR => Request::SetXattr {
                handle: r.u64()?,
                name: r.bytes(XATTR_NAME_MAX)?,
                value: r.bytes(MAX_XATTR_SIZE)?,
                flags: r.i32()?,
            },
            T_REMOVEXATTR => Request::RemoveXattr {
                handle: r.u64()?,
                name: r.bytes(XATTR_NAME_MAX)?,
            },
            _ => return Err(DecodeError("unknown request tag")),
        };
        r.finish()?;
        Ok(req)
    }
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = W(Vec::with_capacity(64));
        match self {
            Response::Error(e) => {
                w.u32(R_ERROR);
                w.i32(*e);
            }
            Response::Mount { handle, stat } => {
                w.u32(R_MOUNT);
                w.u64(*handle);
                w.stat(stat);
            }
            Response::Walk { nodes, error } => {
                w.u32(R_WALK);
                w.i32(*error);
                w.u32(nodes.len() as u32);
                for (h, s) in nodes {
                    w.u64(*h);
                    w.stat(s);
                }
            }
            Response::Stat(s) => {
                w.u32(R_STAT);
                w.stat(s);
            }
            Response::Open => w.u32(R_OPEN),
            Response::Readlink(t) => {
                w.u32(R_READLINK);
                w.bytes(t);
            }
            Response::Getdents(ents) => {
                w.u32(R_GETDENTS);
                w.u32(ents.len() as u32);
                for d in ents {
                    w.u64(d.ino);
                    w.u64(d.next_offset);
                    w.u8(d.dtype);
                    w.bytes(&d.name);
                }
            }
            Response::StatFs(s) => {
                w.u32(R_STATFS);
                for v in [
                    s.fs_type, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.fsid,
                    s.namelen, s.frsize, s.flags,
                ] {
                    w.u64(v);
                }
            }
            Response::Closed => w.u32(R_CLOSED),
            Response::Create { handle, stat } => {
                w.u32(R_CREATE);
                w.u64(*handle);
                w.stat(stat);
            }
            Response::Node { handle, stat } => {
                w.u32(R_NODE);
                w.u64(*handle);
                w.stat(stat);
            }
            Response::Ok => w.u32(R_OK),
            Response::Xattr(v) => {
                w.u32(R_XATTR);
                w.bytes(v);
            }
        }
        w.0
    }

    pub fn decode(b: &[u8]) -> Result<Response, DecodeError> {
        if b.len() > MAX_FRAME {
            return Err(DecodeError("frame too large"));
        }
        let mut r = R { b };
        let resp = match r.u32()? {
            R_ERROR => Response::Error(r.i32()?),
            R_MOUNT => Response::Mount {
                handle: r.u64()?,
                stat: r.stat()?,
            },
            R_WALK => {
                let error = r.i32()?;
                let n = r.count(MAX_WALK, 8 + STAT_SIZE)?;
                let mut nodes = Vec::with_capacity(n);
                for _ in 0..n {
                    nodes.push((r.u64()?, r.stat()?));
                }
                Response::Walk { nodes, error }
            }
            R_STAT => Response::Stat(r.stat()?),
            R_OPEN => Response::Open,
            R_READLINK => Response::Readlink(r.bytes(PATH_MAX)?),
            R_GETDENTS => {
                let n = r.count(MAX_FRAME, DIRENT_OVERHEAD)?;
                let mut ents = Vec::with_capacity(n);
                for _ in 0..n {
                    ents.push(Dirent {
                        ino: r.u64()?,
                        next_offset: r.u64()?,
                        dtype: r.u8()?,
                        name: r.bytes(NAME_MAX)?,
                    });
                }
                Response::Getdents(ents)
            }
            R_STATFS => Response::StatFs(StatFs {
                fs_type: r.u64()?,
                bsize: r.u64()?,
                blocks: r.u64()?,
                bfree: r.u64()?,
                bavail: r.u64()?,
                files: r.u64()?,
                ffree: r.u64()?,
                fsid: r.u64()?,
                namelen: r.u64()?,
                frsize: r.u64()?,
                flags: r.u64()?,
            }),
            R_CLOSED => Response::Closed,
            R_CREATE => Response::Create {
                handle: r.u64()?,
                stat: r.stat()?,
            },
            R_NODE => Response::Node {
                handle: r.u64()?,
                stat: r.stat()?,
            },
            R_OK => Response::Ok,
            R_XATTR => Response::Xattr(r.bytes(MAX_XATTR_SIZE)?),
            _ => return Err(DecodeError("unknown response tag")),
        };
        r.finish()?;
        Ok(resp)
    }
}

/// True when `name` is a valid single path component to walk: non-empty, at
/// most [`NAME_MAX`] bytes, no '/', no NUL, not "." or "..".
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX
        && name != b"."
        && name != b".."
        && !name.iter().any(|&c| c == b'/' || c == 0)
}

/// True when `t` is an acceptable symlink target: non-empty, no NUL, shorter than
/// [`PATH_MAX`] (the gofer never interprets it).
pub fn valid_symlink_target(t: &[u8]) -> bool {
    !t.is_empty() && t.len() < PATH_MAX && !t.contains(&0)
}

/// Extended attribute namespaces passed through to the host.
/// Only `user.` attributes pass: `trusted.` and `security.` ones (file
/// capabilities, SELinux labels) set by a root gofer would grant host privileges
/// to files on the host rootfs.
pub const XATTR_NAMESPACES: [&[u8]; 1] = [b"user."];

/// Checks an xattr name: EINVAL when empty or containing NUL, ERANGE when longer than
/// [`XATTR_NAME_MAX`], EOPNOTSUPP outside [`XATTR_NAMESPACES`] (or a bare prefix).
pub fn check_xattr_name(name: &[u8]) -> Result<(), abi::Errno> {
    if name.is_empty() || name.contains(&0) {
        return Err(abi::Errno::EINVAL);
    }
    if name.len() > XATTR_NAME_MAX {
        return Err(abi::Errno::ERANGE);
    }
    if XATTR_NAMESPACES
        .iter()
        .any(|p| name.len() > p.len() && name.starts_with(p))
    {
        Ok(())
    } else {
        Err(abi::Errno::EOPNOTSUPP)
    }
}

/// Semantic checks of a request's arguments, applied by the client before sending and by
/// the server after decoding (handles are checked by the server). Names must pass
/// [`valid_name`] (EINVAL); flags and masks with unknown bits are EINVAL; Mknod of a
/// device is EPERM; xattr names per [`check_xattr_name`].
pub fn validate(req: &Request) -> Result<(), abi::Errno> {
    use abi::Errno;
    let name_ok = |n: &[u8]| {
        if valid_name(n) {
            Ok(())
        } else {
            Err(Errno::EINVAL)
        }
    };
    let perm_ok = |m: u32| {
        if m & !MODE_PERM == 0 {
            Ok(())
        } else {
            Err(Errno::EINVAL)
        }
    };
    match req {
        Request::Create {
            name, flags, mode, ..
        } => {
            name_ok(name)?;
            perm_ok(*mode)?;
            if flags & !CREATE_FLAGS != 0 || flags & libc::O_ACCMODE == libc::O_ACCMODE {
                return Err(Errno::EINVAL);
            }
        }
        Request::Mkdir { name, mode, .. } => {
            name_ok(name)?;
            perm_ok(*mode)?;
        }
        Request::Mknod { name, mode, .. } => {
            name_ok(name)?;
            match mode & abi::linux::S_IFMT {
                0 | abi::linux::S_IFREG | abi::linux::S_IFIFO | abi::linux::S_IFSOCK => {}
                abi::linux::S_IFCHR | abi::linux::S_IFBLK => return Err(Errno::EPERM),
                _ => return Err(Errno::EINVAL),
            }
            perm_ok(mode & !abi::linux::S_IFMT)?;
        }
        Request::Symlink { name, target, .. } => {
            name_ok(name)?;
            if !valid_symlink_target(target) {
                return Err(if target.len() >= PATH_MAX {
                    Errno::ENAMETOOLONG
                } else {
                    Errno::EINVAL
                });
            }
        }
        Request::Link { name, .. } => name_ok(name)?,
        Request::Unlink { name, flags, .. } => {
            name_ok(name)?;
            if *flags != 0 && *flags != libc::AT_REMOVEDIR {
                return Err(Errno::EINVAL);
            }
        }
        Request::Rename {
            old_name,
            new_name,
            flags,
            ..
        } => {
            name_ok(old_name)?;
            name_ok(new_name)?;
            if !matches!(*flags, 0 | RENAME_NOREPLACE | RENAME_EXCHANGE) {
                return Err(Errno::EINVAL);
            }
        }
        Request::SetStat {
            mask,
            mode,
            size,
            atime,
            mtime,
            ..
        } => {
            if mask & !setstat::ALL != 0
                || (mask & setstat::ATIME != 0 && mask & setstat::ATIME_NOW != 0)
                || (mask & setstat::MTIME != 0 && mask & setstat::MTIME_NOW != 0)
            {
                return Err(Errno::EINVAL);
            }
            if mask & setstat::MODE != 0 {
                perm_ok(*mode)?;
            }
            if mask & setstat::SIZE != 0 && *size > i64::MAX as u64 {
                return Err(Errno::EINVAL);
            }
            let ts_ok = |t: &Timespec| (0..1_000_000_000).contains(&t.nsec);
            if (mask & setstat::ATIME != 0 && !ts_ok(atime))
                || (mask & setstat::MTIME != 0 && !ts_ok(mtime))
            {
                return Err(Errno::EINVAL);
            }
        }
        Request::GetXattr { name, .. } | Request::RemoveXattr { name, .. } => {
            check_xattr_name(name)?;
        }
        Request::SetXattr {
            name, value, flags, ..
        } => {
            check_xattr_name(name)?;
            if !matches!(*flags, 0 | XATTR_CREATE | XATTR_REPLACE) {
                return Err(Errno::EINVAL);
            }
            if value.len() > MAX_XATTR_SIZE {
                return Err(Errno::E2BIG);
            }
        }
        Request::Mount
        | Request::Walk { .. }
        | Request::Stat { .. }
        | Request::Open { .. }
        | Request::Readlink { .. }
        | Request::Getdents { .. }
        | Request::StatFs { .. }
        | Request::Close { .. }
        | Request::ListXattr { .. } => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn stat() -> impl Strategy<Value = Stat> {
        (
            (
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                any::<u64>(),
            ),
            (any::<i64>(), any::<i64>(), any::<i64>()),
            vec(any::<i64>(), 6),
        )
            .prop_map(
                |((dev, ino, nlink, mode, uid, gid, rdev), (size, blksize, blocks), t)| Stat {
                    dev,
                    ino,
                    nlink,
                    mode,
                    uid,
                    gid,
                    rdev,
                    size,
                    blksize,
                    blocks,
                    atime: Timespec {
                        sec: t[0],
                        nsec: t[1],
                    },
                    mtime: Timespec {
                        sec: t[2],
                        nsec: t[3],
                    },
                    ctime: Timespec {
                        sec: t[4],
                        nsec: t[5],
                    },
                },
            )
    }

    fn name() -> impl Strategy<Value = Vec<u8>> {
        vec(any::<u8>(), 0..=NAME_MAX)
    }

    fn ts() -> impl Strategy<Value = Timespec> {
        (any::<i64>(), any::<i64>()).prop_map(|(sec, nsec)| Timespec { sec, nsec })
    }

    /// Write requests that create or remove names.
    fn request_names() -> impl Strategy<Value = Request> {
        let ids = || {
            (
                any::<u64>(),
                name(),
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
            )
        };
        prop_oneof![
            (ids(), any::<i32>()).prop_map(|((dir, name, mode, uid, gid), flags)| {
                Request::Create {
                    dir,
                    name,
                    flags,
                    mode,
                    uid,
                    gid,
                }
            }),
            ids().prop_map(|(dir, name, mode, uid, gid)| Request::Mkdir {
                dir,
                name,
                mode,
                uid,
                gid
            }),
            (ids(), any::<u64>()).prop_map(|((dir, name, mode, uid, gid), rdev)| {
                Request::Mknod {
                    dir,
                    name,
                    mode,
                    rdev,
                    uid,
                    gid,
                }
            }),
            (ids(), vec(any::<u8>(), 0..=PATH_MAX)).prop_map(
                |((dir, name, _, uid, gid), target)| Request::Symlink {
                    dir,
                    name,
                    target,
                    uid,
                    gid,
                }
            ),
            (any::<u64>(), name(), any::<u64>()).prop_map(|(dir, name, target)| Request::Link {
                dir,
                name,
                target
            }),
            (any::<u64>(), name(), any::<i32>()).prop_map(|(dir, name, flags)| Request::Unlink {
                dir,
                name,
                flags
            }),
            (any::<u64>(), name(), any::<u64>(), name(), any::<u32>()).prop_map(
                |(old_dir, old_name, new_dir, new_name, flags)| Request::Rename {
                    old_dir,
                    old_name,
                    new_dir,
                    new_name,
                    flags,
                }
            ),
        ]
    }

    /// Write requests on one node: attributes and xattrs.
    fn request_attrs() -> impl Strategy<Value = Request> {
        let xname = || vec(any::<u8>(), 0..=XATTR_NAME_MAX);
        prop_oneof![
            (
                (any::<u64>(), any::<u32>(), any::<u32>(), any::<u32>()),
                (any::<u32>(), any::<u64>(), ts(), ts())
            )
                .prop_map(|((handle, mask, mode, uid), (gid, size, atime, mtime))| {
                    Request::SetStat {
                        handle,
                        mask,
                        mode,
                        uid,
                        gid,
                        size,
                        atime,
                        mtime,
                    }
                }),
            (any::<u64>(), xname(), any::<u32>())
                .prop_map(|(handle, name, size)| Request::GetXattr { handle, name, size }),
            (any::<u64>(), any::<u32>())
                .prop_map(|(handle, size)| Request::ListXattr { handle, size }),
            // Values up to 1 KiB here (prefix checks are quadratic); the maximum is
            // covered by `largest_frames_roundtrip`.
            (
                any::<u64>(),
                xname(),
                vec(any::<u8>(), 0..1024),
                any::<i32>()
            )
                .prop_map(|(handle, name, value, flags)| Request::SetXattr {
                    handle,
                    name,
                    value,
                    flags,
                }),
            (any::<u64>(), xname())
                .prop_map(|(handle, name)| Request::RemoveXattr { handle, name }),
        ]
    }

    fn request() -> impl Strategy<Value = Request> {
        prop_oneof![request_read(), request_names(), request_attrs()]
    }

    fn request_read() -> impl Strategy<Value = Request> {
        prop_oneof![
            Just(Request::Mount),
            (any::<u64>(), vec(name(), 0..=MAX_WALK))
                .prop_map(|(dir, names)| Request::Walk { dir, names }),
            any::<u64>().prop_map(|handle| Request::Stat { handle }),
            (any::<u64>(), any::<i32>())
                .prop_map(|(handle, flags)| Request::Open { handle, flags }),
            any::<u64>().prop_map(|handle| Request::Readlink { handle }),
            (any::<u64>(), any::<u64>(), any::<u32>()).prop_map(|(handle, offset, max_bytes)| {
                Request::Getdents {
                    handle,
                    offset,
                    max_bytes,
                }
            }),
            any::<u64>().prop_map(|handle| Request::StatFs { handle }),
            any::<u64>().prop_map(|handle| Request::Close { handle }),
        ]
    }

    fn response() -> impl Strategy<Value = Response> {
        let dirent = (any::<u64>(), any::<u64>(), any::<u8>(), name()).prop_map(
            |(ino, next_offset, dtype, name)| Dirent {
                ino,
                next_offset,
                dtype,
                name,
            },
        );
        let statfs = vec(any::<u64>(), 11).prop_map(|v| StatFs {
            fs_type: v[0],
            bsize: v[1],
            blocks: v[2],
            bfree: v[3],
            bavail: v[4],
            files: v[5],
            ffree: v[6],
            fsid: v[7],
            namelen: v[8],
            frsize: v[9],
            flags: v[10],
        });
        prop_oneof![
            any::<i32>().prop_map(Response::Error),
            (any::<u64>(), stat()).prop_map(|(handle, stat)| Response::Mount { handle, stat }),
            (vec((any::<u64>(), stat()), 0..=MAX_WALK), any::<i32>())
                .prop_map(|(nodes, error)| Response::Walk { nodes, error }),
            stat().prop_map(Response::Stat),
            Just(Response::Open),
            vec(any::<u8>(), 0..=PATH_MAX).prop_map(Response::Readlink),
            vec(dirent, 0..100).prop_map(Response::Getdents),
            statfs.prop_map(Response::StatFs),
            Just(Response::Closed),
            (any::<u64>(), stat()).prop_map(|(handle, stat)| Response::Create { handle, stat }),
            (any::<u64>(), stat()).prop_map(|(handle, stat)| Response::Node { handle, stat }),
            Just(Response::Ok),
            vec(any::<u8>(), 0..2048).prop_map(Response::Xattr),
        ]
    }

    proptest! {
        #[test]
        fn request_roundtrip(req in request()) {
            let b = req.encode();
            prop_assert!(b.len() <= MAX_FRAME);
            prop_assert_eq!(Request::decode(&b), Ok(req));
        }

        #[test]
        fn response_roundtrip(resp in response()) {
            let b = resp.encode();
            prop_assert!(b.len() <= MAX_FRAME);
            prop_assert_eq!(Response::decode(&b), Ok(resp));
        }

        #[test]
        fn decode_arbitrary_bytes_never_panics(b in vec(any::<u8>(), 0..512)) {
            let _ = Request::decode(&b);
            let _ = Response::decode(&b);
        }

        /// Valid tags followed by garbage: exercises the per-message paths.
        #[test]
        fn decode_tagged_garbage_never_panics(t in 0u32..24, hi in any::<bool>(), b in vec(any::<u8>(), 0..600)) {
            let tag = if hi { 0x100 + t } else { t };
            let mut f = tag.to_le_bytes().to_vec();
            f.extend_from_slice(&b);
            let _ = Request::decode(&f);
            let _ = Response::decode(&f);
        }

        /// Valid frames with bytes overwritten (and 32-bit words, such as
        /// counts and lengths, set to huge values): decoding never panics nor
        /// allocates by a hostile count, and whatever decodes re-encodes to a
        /// frame that decodes to the same value (and validates without panic).
        #[test]
        fn decode_mutated_frames(
            req in request(),
            resp in response(),
            muts in vec((any::<usize>(), any::<u8>()), 0..8),
            words in vec((any::<usize>(), prop_oneof![
                Just(u32::MAX), Just(0x7fff_ffffu32), Just(0x8000_0000u32), Just(MAX_FRAME as u32), any::<u32>()
            ]), 0..3),
        ) {
            for mut b in [req.encode(), resp.encode()] {
                let len = b.len();
                for &(i, v) in &muts {
                    b[i % len] = v;
                }
                for &(i, w) in &words {
                    if len >= 4 {
                        let i = i % (len - 3);
                        b[i..i + 4].copy_from_slice(&w.to_le_bytes());
                    }
                }
                if let Ok(r) = Request::decode(&b) {
                    let _ = validate(&r);
                    prop_assert_eq!(Request::decode(&r.encode()), Ok(r));
                }
                if let Ok(r) = Response::decode(&b) {
                    prop_assert_eq!(Response::decode(&r.encode()), Ok(r));
                }
            }
        }

        /// Every strict prefix and every one-byte extension of a valid frame is rejected.
        #[test]
        fn truncation_and_trailing_rejected(req in request(), resp in response(), extra in any::<u8>()) {
            let b = req.encode();
            for i in 0..b.len() {
                prop_assert!(Request::decode(&b[..i]).is_err());
            }
            let mut long = b.clone();
            long.push(extra);
            prop_assert!(Request::decode(&long).is_err());
            let b = resp.encode();
            for i in (0..b.len()).step_by(7) {
                prop_assert!(Response::decode(&b[..i]).is_err());
            }
            let mut long = b;
            long.push(extra);
            prop_assert!(Response::decode(&long).is_err());
        }
    }

    #[test]
    fn largest_frames_roundtrip() {
        let reqs = [
            Request::SetXattr {
                handle: u64::MAX,
                name: vec![b'n'; XATTR_NAME_MAX],
                value: vec![7; MAX_XATTR_SIZE],
                flags: -1,
            },
            Request::Symlink {
                dir: 1,
                name: vec![b'x'; NAME_MAX],
                target: vec![b'y'; PATH_MAX],
                uid: 0,
                gid: 0,
            },
            Request::Rename {
                old_dir: 1,
                old_name: vec![b'a'; NAME_MAX],
                new_dir: 2,
                new_name: vec![b'b'; NAME_MAX],
                flags: 0,
            },
        ];
        for r in reqs {
            let b = r.encode();
            assert!(b.len() <= MAX_FRAME);
            assert_eq!(Request::decode(&b), Ok(r));
        }
        let x = Response::Xattr(vec![1; MAX_XATTR_SIZE]);
        let b = x.encode();
        assert!(b.len() <= MAX_FRAME);
        assert_eq!(Response::decode(&b), Ok(x));
        // One byte over each limit is rejected.
        let big = Request::SetXattr {
            handle: 1,
            name: b"user.a".to_vec(),
            value: vec![0; MAX_XATTR_SIZE + 1],
            flags: 0,
        };
        assert!(Request::decode(&big.encode()).is_err());
        let long = Request::Unlink {
            dir: 1,
            name: vec![b'a'; NAME_MAX + 1],
            flags: 0,
        };
        assert!(Request::decode(&long.encode()).is_err());
        assert!(Response::decode(&Response::Xattr(vec![0; MAX_XATTR_SIZE + 1]).encode()).is_err());
    }

    #[test]
    fn validate_rules() {
        use abi::Errno;
        let create = |name: &[u8], flags: i32, mode: u32| Request::Create {
            dir: 1,
            name: name.to_vec(),
            flags,
            mode,
            uid: 0,
            gid: 0,
        };
        assert_eq!(
            validate(&create(b"f", libc::O_RDWR | libc::O_EXCL, 0o644)),
            Ok(())
        );
        assert_eq!(validate(&create(b"a/b", 0, 0o644)), Err(Errno::EINVAL));
        assert_eq!(validate(&create(b"..", 0, 0o644)), Err(Errno::EINVAL));
        assert_eq!(
            validate(&create(b"f", libc::O_PATH, 0o644)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            validate(&create(b"f", libc::O_DIRECTORY, 0)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            validate(&create(b"f", libc::O_ACCMODE, 0)),
            Err(Errno::EINVAL)
        );
        assert_eq!(validate(&create(b"f", 0, 0o100644)), Err(Errno::EINVAL));
        let mknod = |mode: u32| Request::Mknod {
            dir: 1,
            name: b"n".to_vec(),
            mode,
            rdev: 0,
            uid: 0,
            gid: 0,
        };
        for ok in [
            0o644,
            abi::linux::S_IFIFO | 0o644,
            abi::linux::S_IFSOCK,
            abi::linux::S_IFREG,
        ] {
            assert_eq!(validate(&mknod(ok)), Ok(()), "{ok:o}");
        }
        assert_eq!(
            validate(&mknod(abi::linux::S_IFCHR | 0o600)),
            Err(Errno::EPERM)
        );
        assert_eq!(validate(&mknod(abi::linux::S_IFBLK)), Err(Errno::EPERM));
        assert_eq!(validate(&mknod(abi::linux::S_IFDIR)), Err(Errno::EINVAL));
        assert_eq!(validate(&mknod(abi::linux::S_IFLNK)), Err(Errno::EINVAL));
        let sym = |t: &[u8]| Request::Symlink {
            dir: 1,
            name: b"s".to_vec(),
            target: t.to_vec(),
            uid: 0,
            gid: 0,
        };
        assert_eq!(validate(&sym(b"/etc/passwd")), Ok(()));
        assert_eq!(validate(&sym(b"")), Err(Errno::EINVAL));
        assert_eq!(validate(&sym(b"a\0b")), Err(Errno::EINVAL));
        assert_eq!(validate(&sym(&[b'a'; PATH_MAX])), Err(Errno::ENAMETOOLONG));
        let unlink = |flags| Request::Unlink {
            dir: 1,
            name: b"x".to_vec(),
            flags,
        };
        assert_eq!(validate(&unlink(0)), Ok(()));
        assert_eq!(validate(&unlink(libc::AT_REMOVEDIR)), Ok(()));
        assert_eq!(
            validate(&unlink(libc::AT_SYMLINK_FOLLOW)),
            Err(Errno::EINVAL)
        );
        let rename = |flags| Request::Rename {
            old_dir: 1,
            old_name: b"x".to_vec(),
            new_dir: 1,
            new_name: b"y".to_vec(),
            flags,
        };
        assert_eq!(validate(&rename(RENAME_EXCHANGE)), Ok(()));
        assert_eq!(
            validate(&rename(RENAME_EXCHANGE | RENAME_NOREPLACE)),
            Err(Errno::EINVAL)
        );
        assert_eq!(validate(&rename(4)), Err(Errno::EINVAL)); // RENAME_WHITEOUT
        let ss = |mask, mode, size, nsec| Request::SetStat {
            handle: 1,
            mask,
            mode,
            uid: 0,
            gid: 0,
            size,
            atime: Timespec { sec: 0, nsec },
            mtime: Timespec::default(),
        };
        assert_eq!(
            validate(&ss(
                setstat::ALL & !(setstat::ATIME_NOW | setstat::MTIME_NOW),
                0o755,
                0,
                0
            )),
            Ok(())
        );
        assert_eq!(validate(&ss(1 << 8, 0, 0, 0)), Err(Errno::EINVAL));
        assert_eq!(
            validate(&ss(setstat::ATIME | setstat::ATIME_NOW, 0, 0, 0)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            validate(&ss(setstat::MODE, 0o10000, 0, 0)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            validate(&ss(setstat::SIZE, 0, u64::MAX, 0)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            validate(&ss(setstat::ATIME, 0, 0, 1_000_000_000)),
            Err(Errno::EINVAL)
        );
        assert_eq!(validate(&ss(setstat::MTIME, 0, 0, -1)), Ok(())); // atime nsec unused
        assert_eq!(check_xattr_name(b"user.x"), Ok(()));
        assert_eq!(
            check_xattr_name(b"security.capability"),
            Err(Errno::EOPNOTSUPP)
        );
        assert_eq!(
            check_xattr_name(b"trusted.overlay.opaque"),
            Err(Errno::EOPNOTSUPP)
        );
        assert_eq!(
            check_xattr_name(b"system.posix_acl_access"),
            Err(Errno::EOPNOTSUPP)
        );
        assert_eq!(check_xattr_name(b"user."), Err(Errno::EOPNOTSUPP));
        assert_eq!(check_xattr_name(b"foo"), Err(Errno::EOPNOTSUPP));
        assert_eq!(check_xattr_name(b""), Err(Errno::EINVAL));
        assert_eq!(check_xattr_name(b"user.a\0b"), Err(Errno::EINVAL));
        let mut long = b"user.".to_vec();
        long.resize(XATTR_NAME_MAX + 1, b'a');
        assert_eq!(check_xattr_name(&long), Err(Errno::ERANGE));
        let sx = |flags| Request::SetXattr {
            handle: 1,
            name: b"user.a".to_vec(),
            value: vec![],
            flags,
        };
        assert_eq!(validate(&sx(XATTR_CREATE)), Ok(()));
        assert_eq!(validate(&sx(3)), Err(Errno::EINVAL));
    }

    #[test]
    fn names() {
        assert!(valid_name(b"a"));
        assert!(valid_name(b"..."));
        assert!(valid_name(&[b'x'; 255]));
        for bad in [&b""[..], b".", b"..", b"a/b", b"/", b"a\0b", &[b'x'; 256]] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn huge_counts_rejected_without_allocating() {
        let mut f = T_WALK.to_le_bytes().to_vec();
        f.extend_from_slice(&1u64.to_le_bytes());
        f.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(Request::decode(&f).is_err());
        let mut f = R_GETDENTS.to_le_bytes().to_vec();
        f.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(Response::decode(&f).is_err());
    }
}
