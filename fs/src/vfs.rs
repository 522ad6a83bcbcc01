//! The mount tree, dentries and path walk, and the path-based operations.
//!
//! A [`Location`] is (mount, dentry). Dentries cache the children looked up in
//! them (forever, for now: the root is read-only and nothing else can change
//! them). Mounts are keyed by (parent mount, mount-point dentry); the walk crosses
//! into a mount after every step down, and ".." at a mount's root first climbs to
//! the mount point.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use abi::linux::{Stat, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK};
use abi::Errno;

use crate::context::FsContext;
use crate::file::{FileOps, OpenFile};
use crate::inode::{Attr, Inode, StatFs, ST_RDONLY};
use crate::perm::{self, Creds, MAY_EXEC, MAY_READ, MAY_WRITE};
use crate::remote::{RemoteFs, RemoteInode};
use crate::synthetic::{SynthDir, PROC_SUPER_MAGIC, SYSFS_MAGIC, TMPFS_MAGIC};
use crate::{MAX_SYMLINKS, NAME_MAX, PATH_MAX};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// A name in a directory, with the node it names.
pub struct Dentry {
    id: u64,
    name: Vec<u8>,
    /// Weak: parents own their children (through the cache), not the reverse.
    /// Dangling for a file system's root.
    parent: Weak<Dentry>,
    inode: Arc<dyn Inode>,
    children: Mutex<HashMap<Vec<u8>, Arc<Dentry>>>,
    /// Hint: some mount may sit on this dentry.
    mounted_on: AtomicBool,
}

impl Dentry {
    fn new(name: &[u8], parent: Weak<Dentry>, inode: Arc<dyn Inode>) -> Arc<Dentry> {
        Arc::new(Dentry {
            id: next_id(),
            name: name.to_vec(),
            parent,
            inode,
            children: Mutex::new(HashMap::new()),
            mounted_on: AtomicBool::new(false),
        })
    }

    pub fn inode(&self) -> &Arc<dyn Inode> {
        &self.inode
    }

    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// The cached child `name`, or a fresh lookup (cached on success).
    fn child(self: &Arc<Self>, name: &[u8]) -> Result<Arc<Dentry>, Errno> {
        if let Some(c) = self
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(c.clone());
        }
        let inode = self.inode.lookup(name)?;
        let mut m = self.children.lock().unwrap_or_else(|e| e.into_inner());
        Ok(m.entry(name.to_vec())
            .or_insert_with(|| Dentry::new(name, Arc::downgrade(self), inode))
            .clone())
    }

    /// Inserts `inode` as child `name` unless one is cached already (mount points).
    fn ensure_child(
        self: &Arc<Self>,
        name: &[u8],
        inode: impl FnOnce() -> Arc<dyn Inode>,
    ) -> Arc<Dentry> {
        let mut m = self.children.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(name.to_vec())
            .or_insert_with(|| Dentry::new(name, Arc::downgrade(self), inode()))
            .clone()
    }
}

/// A mounted file system.
pub struct Mount {
    id: u64,
    root: Arc<Dentry>,
    /// The mount and dentry this one covers (None for the root mount).
    parent: Option<(Arc<Mount>, Arc<Dentry>)>,
    read_only: bool,
}

impl Mount {
    pub fn read_only(&self) -> bool {
        self.read_only
    }
}

/// A point in the mount tree.
#[derive(Clone)]
pub struct Location {
    pub mount: Arc<Mount>,
    pub dentry: Arc<Dentry>,
}

impl Location {
    pub fn same(&self, o: &Location) -> bool {
        Arc::ptr_eq(&self.mount, &o.mount) && Arc::ptr_eq(&self.dentry, &o.dentry)
    }
    pub fn inode(&self) -> &Arc<dyn Inode> {
        &self.dentry.inode
    }
    pub fn attr(&self) -> Attr {
        self.dentry.inode.attr()
    }
    pub fn is_dir(&self) -> bool {
        self.attr().is_dir()
    }
    fn is_mount_root(&self) -> bool {
        Arc::ptr_eq(&self.dentry, &self.mount.root)
    }
    pub fn stat(&self) -> Result<Stat, Errno> {
        self.dentry.inode.stat()
    }
    pub fn statfs(&self) -> Result<StatFs, Errno> {
        let mut s = self.dentry.inode.statfs()?;
        if self.mount.read_only {
            s.flags |= ST_RDONLY;
        }
        Ok(s)
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Location(mnt {}, {:?})",
            self.mount.id,
            String::from_utf8_lossy(&self.dentry.name)
        )
    }
}

/// How a walk treats the path (open flags and openat2's RESOLVE_* map onto it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkOpts {
    /// Follow a symlink in the final component (not lstat / O_NOFOLLOW).
    pub follow_final: bool,
    /// The result must be a directory (O_DIRECTORY): ENOTDIR otherwise. Unlike a
    /// trailing slash, does not make the walk follow a final symlink.
    pub must_dir: bool,
    /// An empty path names the start (AT_EMPTY_PATH); ENOENT otherwise.
    pub allow_empty: bool,
    /// RESOLVE_NO_SYMLINKS: any symlink is ELOOP.
    pub no_symlinks: bool,
    /// RESOLVE_NO_XDEV: crossing a mount is EXDEV.
    pub no_xdev: bool,
    /// RESOLVE_BENEATH: escaping the start (absolute paths, "..") is EXDEV.
    pub beneath: bool,
    /// RESOLVE_IN_ROOT: the start acts as the root.
    pub in_root: bool,
}

pub const RESOLVE_NO_XDEV: u64 = 0x01;
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;
pub const RESOLVE_IN_ROOT: u64 = 0x10;
pub const RESOLVE_CACHED: u64 = 0x20;
pub const RESOLVE_ALL: u64 = 0x3f;

impl WalkOpts {
    pub fn follow() -> WalkOpts {
        WalkOpts {
            follow_final: true,
            ..Default::default()
        }
    }
    pub fn nofollow() -> WalkOpts {
        WalkOpts::default()
    }
    /// Applies openat2 RESOLVE_* bits (unknown bits are the caller's EINVAL).
    pub fn with_resolve(mut self, resolve: u64) -> WalkOpts {
        self.no_xdev |= resolve & RESOLVE_NO_XDEV != 0;
        self.no_symlinks |= resolve & RESOLVE_NO_SYMLINKS != 0;
        self.beneath |= resolve & RESOLVE_BENEATH != 0;
        self.in_root |= resolve & RESOLVE_IN_ROOT != 0;
        self
    }
}

/// openat2's `struct open_how`, also used for open/openat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenHow {
    pub flags: i32,
    pub mode: u32,
    pub resolve: u64,
}

/// The last component of a path whose parent was walked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Last {
    Normal(Vec<u8>),
    Dot,
    DotDot,
    /// The path was "/" (or only slashes).
    Root,
}

/// `O_TMPFILE` without its O_DIRECTORY part.
const O_TMPFILE_BIT: i32 = 0o20000000;

/// The mount tree.
pub struct Vfs {
    root: Location,
    mounts: RwLock<HashMap<(u64, u64), Arc<Mount>>>,
}

impl Vfs {
    /// A VFS with `root` mounted at /.
    pub fn new(root: Arc<dyn Inode>, read_only: bool) -> Arc<Vfs> {
        let d = Dentry::new(b"/", Weak::new(), root);
        let m = Arc::new(Mount {
            id: next_id(),
            root: d.clone(),
            parent: None,
            read_only,
        });
        Arc::new(Vfs {
            root: Location {
                mount: m,
                dentry: d,
            },
            mounts: RwLock::new(HashMap::new()),
        })
    }

    /// The sandbox's VFS: the gofer's tree at / (read-only for now), and the
    /// sentry's own empty directories mounted over /proc, /sys and /dev (the
    /// gofer's are never walked).
    pub fn new_with_gofer_root(client: Arc<gofer::Client>) -> Result<Arc<Vfs>, Errno> {
        Vfs::new_with_remote_root(client, true)
    }

    /// As [`Vfs::new_with_gofer_root`], over any [`RemoteFs`].
    pub fn new_with_remote_root(
        remote: Arc<dyn RemoteFs>,
        read_only: bool,
    ) -> Result<Arc<Vfs>, Errno> {
        let root = RemoteInode::mount_root(remote, read_only)?;
        let vfs = Vfs::new(root, read_only);
        for (name, magic) in [(&b"proc"[..], PROC_SUPER_MAGIC), (b"sys", SYSFS_MAGIC)] {
            vfs.mount_under_root(name, SynthDir::new(magic), true);
        }
        vfs.mount_under_root(b"dev", crate::devfs::DevDir::new(), false);
        Ok(vfs)
    }

    /// The root of the mount tree.
    pub fn root(&self) -> Location {
        self.root.clone()
    }

    /// Mounts `fs_root` on `/<name>`. The mount point is made in the dentry cache
    /// without asking the root file system (which need not have it).
    pub fn mount_under_root(
        &self,
        name: &[u8],
        fs_root: Arc<dyn Inode>,
        read_only: bool,
    ) -> Arc<Mount> {
        let d = self
            .root
            .dentry
            .ensure_child(name, || SynthDir::new(TMPFS_MAGIC));
        self.mount_at(
            &Location {
                mount: self.root.mount.clone(),
                dentry: d,
            },
            fs_root,
            read_only,
        )
    }

    /// Mounts `fs_root` over `at` (a later mount on the same point covers an earlier one).
    pub fn mount_at(&self, at: &Location, fs_root: Arc<dyn Inode>, read_only: bool) -> Arc<Mount> {
        let at = self.follow_mounts(at.clone());
        let d = Dentry::new(&at.dentry.name, Weak::new(), fs_root);
        let m = Arc::new(Mount {
            id: next_id(),
            root: d,
            parent: Some((at.mount.clone(), at.dentry.clone())),
            read_only,
        });
        at.dentry.mounted_on.store(true, Ordering::Release);
        self.mounts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((at.mount.id, at.dentry.id), m.clone());
        m
    }

    fn mount_on(&self, loc: &Location) -> Option<Arc<Mount>> {
        if !loc.dentry.mounted_on.load(Ordering::Acquire) {
            return None;
        }
        self.mounts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(loc.mount.id, loc.dentry.id))
            .cloned()
    }

    fn follow_mounts(&self, mut loc: Location) -> Location {
        while let Some(m) = self.mount_on(&loc) {
            loc = Location {
                dentry: m.root.clone(),
                mount: m,
            };
        }
        loc
    }

    /// `name` in directory `dir`, crossing into mounts.
    fn lookup_child(&self, dir: &Location, name: &[u8], no_xdev: bool) -> Result<Location, Errno> {
        let d = dir.dentry.child(name)?;
        let loc = Location {
            mount: dir.mount.clone(),
            dentry: d,
        };
        let out = self.follow_mounts(loc);
        if no_xdev && !Arc::ptr_eq(&out.mount, &dir.mount) {
            return Err(Errno::EXDEV);
        }
        Ok(out)
    }

    /// "..": stays at `root`, climbs out of mounts at their roots.
    fn parent_of(&self, loc: &Location, root: &Location, no_xdev: bool) -> Result<Location, Errno> {
        let mut cur = loc.clone();
        loop {
            if cur.same(root) {
                return Ok(cur);
            }
            if !cur.is_mount_root() {
                break;
            }
            match &cur.mount.parent {
                Some((pm, pd)) => {
                    if no_xdev {
                        return Err(Errno::EXDEV);
                    }
                    cur = Location {
                        mount: pm.clone(),
                        dentry: pd.clone(),
                    };
                }
                // The global root, outside the task's root: stay.
                None => return Ok(cur),
            }
        }
        let p = cur
            .dentry
            .parent
            .upgrade()
            .unwrap_or_else(|| cur.dentry.clone());
        Ok(Location {
            mount: cur.mount,
            dentry: p,
        })
    }

    /// Walks `path` from `start` (relative paths) or the task's root (absolute).
    pub fn walk(
        &self,
        ctx: &FsContext,
        creds: &Creds,
        start: &Location,
        path: &[u8],
        opts: &WalkOpts,
    ) -> Result<Location, Errno> {
        if path.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        if path.is_empty() {
            if !opts.allow_empty {
                return Err(Errno::ENOENT);
            }
            if opts.must_dir && !start.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            return Ok(start.clone());
        }
        let root = if opts.beneath || opts.in_root {
            start.clone()
        } else {
            ctx.root()
        };
        let mut cur = if path[0] == b'/' {
            if opts.beneath {
                return Err(Errno::EXDEV);
            }
            root.clone()
        } else {
            start.clone()
        };
        let mut stack: Vec<Vec<u8>> = Vec::new();
        push_components(&mut stack, path);
        let trailing = path.ends_with(b"/");
        let mut follow_last = opts.follow_final || trailing;
        let mut must_dir = opts.must_dir || trailing;
        let mut links = 0u32;
        while let Some(name) = stack.pop() {
            let last = stack.is_empty();
            let a = cur.attr();
            if !a.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            perm::check(creds, a.mode, a.uid, a.gid, MAY_EXEC)?;
            if name.len() > NAME_MAX {
                return Err(Errno::ENAMETOOLONG);
            }
            if name == b"." {
                continue;
            }
            if name == b".." {
                if opts.beneath && cur.same(&root) {
                    return Err(Errno::EXDEV);
                }
                cur = self.parent_of(&cur, &root, opts.no_xdev)?;
                continue;
            }
            let next = self.lookup_child(&cur, &name, opts.no_xdev)?;
            if next.attr().is_symlink() && (!last || follow_last) {
                if opts.no_symlinks {
                    return Err(Errno::ELOOP);
                }
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Errno::ELOOP);
                }
                let target = next.inode().readlink()?;
                if target.is_empty() {
                    return Err(Errno::ENOENT);
                }
                if last && target.ends_with(b"/") {
                    follow_last = true;
                    must_dir = true;
                }
                push_components(&mut stack, &target);
                if target[0] == b'/' {
                    if opts.beneath {
                        return Err(Errno::EXDEV);
                    }
                    cur = root.clone();
                }
                continue;
            }
            cur = next;
        }
        if must_dir && !cur.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(cur)
    }

    /// Walks all but the last component of `path` (following symlinks), for the
    /// calls that create or remove names. Returns the parent directory, the last
    /// component and whether the path had trailing slashes.
    pub fn walk_parent(
        &self,
        ctx: &FsContext,
        creds: &Creds,
        start: &Location,
        path: &[u8],
        opts: &WalkOpts,
    ) -> Result<(Location, Last, bool), Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        if path.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let end = path
            .iter()
            .rposition(|&c| c != b'/')
            .map(|i| i + 1)
            .unwrap_or(0);
        let trailing = end < path.len();
        let mut o = *opts;
        o.follow_final = true;
        o.must_dir = true;
        o.allow_empty = true;
        if end == 0 {
            let root = if opts.beneath || opts.in_root {
                start.clone()
            } else {
                ctx.root()
            };
            if opts.beneath {
                return Err(Errno::EXDEV);
            }
            return Ok((root, Last::Root, trailing));
        }
        let trimmed = &path[..end];
        let (dir, name) = match trimmed.iter().rposition(|&c| c == b'/') {
            Some(i) => (
                if i == 0 { &trimmed[..1] } else { &trimmed[..i] },
                &trimmed[i + 1..],
            ),
            None => (&b""[..], trimmed),
        };
        let parent = self.walk(ctx, creds, start, dir, &o)?;
        let last = match name {
            b"." => Last::Dot,
            b".." => Last::DotDot,
            n if n.len() > NAME_MAX => return Err(Errno::ENAMETOOLONG),
            n => Last::Normal(n.to_vec()),
        };
        Ok((parent, last, trailing))
    }

    /// Looks up a final component in a directory returned by [`Vfs::walk_parent`]
    /// (search permission checked; no symlink following).
    pub fn lookup_last(
        &self,
        creds: &Creds,
        dir: &Location,
        name: &[u8],
        no_xdev: bool,
    ) -> Result<Location, Errno> {
        let a = dir.attr();
        if !a.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        perm::check(creds, a.mode, a.uid, a.gid, MAY_EXEC)?;
        self.lookup_child(dir, name, no_xdev)
    }

    /// open(2)/openat(2)/openat2(2) of `path` relative to `start`.
    pub fn open(
        &self,
        ctx: &FsContext,
        creds: &Creds,
        start: &Location,
        path: &[u8],
        how: &OpenHow,
    ) -> Result<Arc<OpenFile>, Errno> {
        let flags = how.flags;
        let path_only = flags & libc::O_PATH != 0;
        let base = WalkOpts::default().with_resolve(how.resolve);
        if flags & O_TMPFILE_BIT != 0 && !path_only {
            // An unnamed file in the given directory: needs a writable file system.
            let dir = self.walk(
                ctx,
                creds,
                start,
                path,
                &WalkOpts {
                    follow_final: true,
                    must_dir: true,
                    ..base
                },
            )?;
            return Err(if dir.mount.read_only {
                Errno::EROFS
            } else {
                Errno::EOPNOTSUPP
            });
        }
        if flags & libc::O_CREAT != 0 && !path_only {
            if flags & libc::O_DIRECTORY != 0 {
                return Err(Errno::EINVAL);
            }
            let (parent, last, trailing) = self.walk_parent(ctx, creds, start, path, &base)?;
            let name = match last {
                Last::Normal(n) if !trailing => n,
                _ => return Err(Errno::EISDIR),
            };
            let loc = match self.lookup_last(creds, &parent, &name, base.no_xdev) {
                Ok(child) => {
                    if flags & libc::O_EXCL != 0 {
                        return Err(Errno::EEXIST);
                    }
                    if child.attr().is_symlink() {
                        if flags & libc::O_NOFOLLOW != 0 {
                            return Err(Errno::ELOOP);
                        }
                        match self.walk(
                            ctx,
                            creds,
                            &parent,
                            &name,
                            &WalkOpts {
                                follow_final: true,
                                ..base
                            },
                        ) {
                            Ok(l) => l,
                            // A dangling link: creating its target.
                            Err(Errno::ENOENT) => return Err(self.create_error(&parent)),
                            Err(e) => return Err(e),
                        }
                    } else {
                        child
                    }
                }
                Err(Errno::ENOENT) => return Err(self.create_error(&parent)),
                Err(e) => return Err(e),
            };
            if loc.is_dir() {
                return Err(Errno::EISDIR);
            }
            return self.open_location(creds, loc, flags);
        }
        let opts = WalkOpts {
            follow_final: flags & libc::O_NOFOLLOW == 0,
            ..base
        };
        let loc = self.walk(ctx, creds, start, path, &opts)?;
        self.open_location(creds, loc, flags)
    }

    /// Why a new file cannot be created in `parent` (no writable file systems yet).
    fn create_error(&self, parent: &Location) -> Errno {
        if parent.mount.read_only {
            Errno::EROFS
        } else {
            Errno::EOPNOTSUPP
        }
    }

    /// Opens a walked location with open(2) `flags`: type, permission and
    /// read-only checks, then the file system's open.
    pub fn open_location(
        &self,
        creds: &Creds,
        loc: Location,
        flags: i32,
    ) -> Result<Arc<OpenFile>, Errno> {
        let a = loc.attr();
        if flags & libc::O_PATH != 0 {
            if flags & libc::O_DIRECTORY != 0 && !a.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            let keep = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW;
            let ops = PathOps { loc: loc.clone() };
            return Ok(OpenFile::new(Box::new(ops), flags & keep, Some(loc)));
        }
        if flags & libc::O_DIRECTORY != 0 && !a.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if a.is_symlink() {
            return Err(Errno::ELOOP);
        }
        let acc = flags & libc::O_ACCMODE;
        let mut mask = 0;
        if acc != libc::O_WRONLY {
            mask |= MAY_READ;
        }
        if acc != libc::O_RDONLY || flags & libc::O_TRUNC != 0 {
            mask |= MAY_WRITE;
        }
        if a.is_dir() && mask & MAY_WRITE != 0 {
            return Err(Errno::EISDIR);
        }
        if a.mode & S_IFMT == S_IFSOCK {
            return Err(Errno::ENXIO);
        }
        if mask & MAY_WRITE != 0
            && loc.mount.read_only
            && matches!(a.mode & S_IFMT, S_IFREG | S_IFDIR | S_IFLNK)
        {
            return Err(Errno::EROFS);
        }
        perm::check(creds, a.mode, a.uid, a.gid, mask)?;
        let ops = loc.inode().clone().open(flags)?;
        Ok(OpenFile::new(ops, flags, Some(loc)))
    }

    /// Opens `path` (relative to the cwd) for execve: it must be a regular file the
    /// caller may execute (EACCES otherwise). Returns the file and its resolved
    /// absolute path.
    pub fn open_exec(
        &self,
        ctx: &FsContext,
        creds: &Creds,
        path: &[u8],
    ) -> Result<(Arc<OpenFile>, Vec<u8>), Errno> {
        let loc = self.walk(ctx, creds, &ctx.cwd(), path, &WalkOpts::follow())?;
        let a = loc.attr();
        if !a.is_regular() {
            return Err(Errno::EACCES);
        }
        perm::check(creds, a.mode, a.uid, a.gid, MAY_EXEC)?;
        let ops = loc.inode().clone().open(libc::O_RDONLY)?;
        let p = self.path_of(ctx, &loc);
        Ok((OpenFile::new(ops, libc::O_RDONLY, Some(loc)), p))
    }

    /// The absolute path of `loc` as seen from the task's root.
    pub fn path_of(&self, ctx: &FsContext, loc: &Location) -> Vec<u8> {
        let root = ctx.root();
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut cur = loc.clone();
        loop {
            if cur.same(&root) {
                break;
            }
            if cur.is_mount_root() {
                match &cur.mount.parent {
                    Some((pm, pd)) => {
                        cur = Location {
                            mount: pm.clone(),
                            dentry: pd.clone(),
                        };
                        continue;
                    }
                    None => break,
                }
            }
            parts.push(cur.dentry.name.clone());
            match cur.dentry.parent.upgrade() {
                Some(p) => cur.dentry = p,
                None => break,
            }
        }
        if parts.is_empty() {
            return b"/".to_vec();
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        out
    }

    /// access(2): `mode` is F_OK or a mask of R_OK/W_OK/X_OK (validated by the caller).
    pub fn access(&self, creds: &Creds, loc: &Location, mode: u32) -> Result<(), Errno> {
        let a = loc.attr();
        if mode & MAY_WRITE != 0
            && loc.mount.read_only
            && matches!(a.mode & S_IFMT, S_IFREG | S_IFDIR | S_IFLNK)
        {
            return Err(Errno::EROFS);
        }
        if mode & 7 == 0 {
            return Ok(());
        }
        perm::check(creds, a.mode, a.uid, a.gid, mode)
    }

    /// readlink(2) of a walked (not followed) location: EINVAL if not a symlink.
    pub fn readlink(&self, loc: &Location) -> Result<Vec<u8>, Errno> {
        if !loc.attr().is_symlink() {
            return Err(Errno::EINVAL);
        }
        loc.inode().readlink()
    }

    /// chdir(2) target check: a searchable directory.
    pub fn check_chdir(&self, creds: &Creds, loc: &Location) -> Result<(), Errno> {
        let a = loc.attr();
        if !a.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        perm::check(creds, a.mode, a.uid, a.gid, MAY_EXEC)
    }

    // ---- The mutating calls. No file system is writable yet: each resolves its
    // paths (so ENOENT/ENOTDIR/EEXIST come out as Linux orders them) and then fails
    // with EROFS.

    fn want_write(loc: &Location) -> Result<(), Errno> {
        if loc.mount.read_only {
            Err(Errno::EROFS)
        } else {
            Err(Errno::EOPNOTSUPP)
        }
    }

    /// mkdir(2), mknod(2), symlink(2) and link(2)'s new name: EEXIST if it exists,
    /// then EROFS.
    pub fn create_at(
        &self,
        ctx: &FsContext,
        creds: &Creds,
        start: &Location,
        path: &[u8],
        is_dir: bool,
    ) -> Result<(), Errno> {
        let (parent, last, trailing) =
            self.walk_parent(ctx, creds, start, path, &WalkOpts::default())?;
        match last {
            Last::Normal(n) => {
                match self.lookup_last(creds, &parent, &n, false) {
                    Ok(_) => return Err(Errno::EEXIST),
                    Err(Errno::ENOENT) => {}
                    Err(e) => return Err(e),
                }
                if trailing && !is_dir {
                    return Err(Errno::ENOENT);
                }
                Self::want_write(&parent)
            }
            _ => Err(Errno::EEXIST),
        }
    }

    /// unlink(2) / rmdir(2).
    pub fn remove_at(
        &self,
        ctx: &FsContext,
        creds: &Creds,
        start: &Location,
        path: &[u8],
        is_dir: bool,
    ) -> Result<(), Errno> {
        let (parent, last, _) = self.walk_parent(ctx, creds, start, path, &WalkOpts::default())?;
        match (last, is_dir) {
            (Last::Normal(_), _) => Self::want_write(&parent),
            (_, false) => Err(Errno::EISDIR),
            (Last::Dot, true) => Err(Errno::EINVAL),
            (Last::DotDot, true) => Err(Errno::ENOTEMPTY),
            (Last::Root, true) => Err(Errno::EBUSY),
        }
    }

    /// rename(2) family.
    #[allow(clippy::too_many_arguments)]
    pub fn rename_at(
        &self,
        ctx: &FsContext,
        creds: &Creds,
        old_start: &Location,
        old: &[u8],
        new_start: &Location,
        new: &[u8],
    ) -> Result<(), Errno> {
        let (op, ol, _) = self.walk_parent(ctx, creds, old_start, old, &WalkOpts::default())?;
        let (np, nl, _) = self.walk_parent(ctx, creds, new_start, new, &WalkOpts::default())?;
        if !matches!(ol, Last::Normal(_)) || !matches!(nl, Last::Normal(_)) {
            return Err(Errno::EBUSY);
        }
        if !Arc::ptr_eq(&op.mount, &np.mount) {
            return Err(Errno::EXDEV);
        }
        Self::want_write(&op)
    }

    /// chmod/chown/utimes/truncate on a walked location.
    pub fn setattr(&self, loc: &Location) -> Result<(), Errno> {
        Self::want_write(loc)
    }
}

/// Pushes the components of `path` (empty ones dropped) so that popping yields
/// them in order.
fn push_components(stack: &mut Vec<Vec<u8>>, path: &[u8]) {
    let mut comps: VecDeque<&[u8]> = path
        .split(|&c| c == b'/')
        .filter(|c| !c.is_empty())
        .collect();
    while let Some(c) = comps.pop_back() {
        stack.push(c.to_vec());
    }
}

/// An O_PATH description: only stat-like operations work.
struct PathOps {
    loc: Location,
}

impl FileOps for PathOps {
    fn stat(&self) -> Result<Stat, Errno> {
        self.loc.stat()
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        self.loc.statfs()
    }
    fn is_dir(&self) -> bool {
        self.loc.attr().mode & S_IFMT == S_IFDIR
    }
}
