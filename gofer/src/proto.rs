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

    pub const R_ERROR: u32 = 0x100;
    pub const R_MOUNT: u32 = 0x101;
    pub const R_WALK: u32 = 0x102;
    pub const R_STAT: u32 = 0x103;
    pub const R_OPEN: u32 = 0x104;
    pub const R_READLINK: u32 = 0x105;
    pub const R_GETDENTS: u32 = 0x106;
    pub const R_STATFS: u32 = 0x107;
    pub const R_CLOSED: u32 = 0x108;
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

    fn request() -> impl Strategy<Value = Request> {
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
        fn decode_tagged_garbage_never_panics(t in 0u32..12, hi in any::<bool>(), b in vec(any::<u8>(), 0..600)) {
            let tag = if hi { 0x100 + t } else { t };
            let mut f = tag.to_le_bytes().to_vec();
            f.extend_from_slice(&b);
            let _ = Request::decode(&f);
            let _ = Response::decode(&f);
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
