//! The mount tree, dentries and path walk, and the path-based operations.
//!
//! A [`Location`] is (mount, dentry). Dentries cache the children looked up in
//! them; every namespace change made through the VFS (create, unlink, rename)
//! updates the cache of the directories involved, and a renamed dentry moves
//! (name and parent) so open files and cwds follow it. Mounts are keyed by (parent mount, mount-point dentry); the walk crosses
//! into a mount after every step down, and ".." at a mount's root first climbs to
//! the mount point.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use abi::linux::{Stat, S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK};

const S_ISVTX: u32 = 0o1000;
use abi::Errno;

use crate::anon::inotify;
use crate::context::FsContext;
use crate::file::{FileOps, OpenFile};
use crate::inode::{Attr, Inode, MagicTarget, SetAttr, StatFs, TimeSet, ST_RDONLY};
use crate::perm::{self, Creds, CAP_CHOWN, CAP_MKNOD, MAY_EXEC, MAY_READ, MAY_WRITE};
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
    name: Mutex<Vec<u8>>,
    /// Weak: parents own their children (through the cache), not the reverse.
    /// Dangling for a file system's root.
    parent: Mutex<Weak<Dentry>>,
    inode: Arc<dyn Inode>,
    children: Mutex<HashMap<Vec<u8>, Arc<Dentry>>>,
    /// Hint: some mount may sit on this dentry.
    mounted_on: AtomicBool,
}

impl Dentry {
    fn new(name: &[u8], parent: Weak<Dentry>, inode: Arc<dyn Inode>) -> Arc<Dentry> {
        Arc::new(Dentry {
            id: next_id(),
            name: Mutex::new(name.to_vec()),
            parent: Mutex::new(parent),
            inode,
            children: Mutex::new(HashMap::new()),
            mounted_on: AtomicBool::new(false),
        })
    }

    pub fn inode(&self) -> &Arc<dyn Inode> {
        &self.inode
    }

    pub fn name(&self) -> Vec<u8> {
        self.name.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The parent dentry (None at a file system's root).
    pub fn parent_dentry(&self) -> Option<Arc<Dentry>> {
        self.parent()
    }

    fn parent(&self) -> Option<Arc<Dentry>> {
        self.parent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .upgrade()
    }

    fn children(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Arc<Dentry>>> {
        self.children.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops the cached child `name` (after the file system removed it).
    fn forget(&self, name: &[u8]) {
        self.children().remove(name);
    }

    /// Caches a freshly created child.
    fn add_child(self: &Arc<Self>, name: &[u8], inode: Arc<dyn Inode>) {
        self.children().insert(
            name.to_vec(),
            Dentry::new(name, Arc::downgrade(self), inode),
        );
    }

    /// Whether `self` is `other` or below it (same file system).
    fn is_within(self: &Arc<Self>, other: &Arc<Dentry>) -> bool {
        let mut cur = self.clone();
        loop {
            if Arc::ptr_eq(&cur, other) {
                return true;
            }
            match cur.parent() {
                Some(p) => cur = p,
                None => return false,
            }
        }
    }

    fn is_mount_point(&self) -> bool {
        self.mounted_on.load(Ordering::Acquire)
    }

    /// The cached child `name`, or a fresh lookup (cached on success).
    fn child(self: &Arc<Self>, name: &[u8]) -> Result<Arc<Dentry>, Errno> {
        {
            let mut m = self.children.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = m.get(name) {
                if !c.inode.is_stale() {
                    return Ok(c.clone());
                }
                m.remove(name);
            }
        }
        let inode = self.inode.lookup(name)?;
        let mut m = self.children.lock().unwrap_or_else(|e| e.into_inner());
        if m.get(name).is_some_and(|c| c.inode.is_stale()) {
            m.remove(name);
        }
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
    /// MS_RDONLY (remount may change it).
    read_only: AtomicBool,
    /// The other per-mount flags (MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_NOATIME, ...).
    flags: AtomicU64,
    /// What mount(2) named as the source ("none" for the sentry's own).
    source: Vec<u8>,
    /// The file-system type as /proc/mounts shows it; None: from statfs's magic.
    fstype: Option<&'static str>,
}

/// How a new mount is made (mount(2)'s source, flags and type).
#[derive(Clone, Debug, Default)]
pub struct MountOpts {
    pub read_only: bool,
    /// MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME ...
    pub flags: u64,
    pub source: Vec<u8>,
    pub fstype: Option<&'static str>,
}

/// The per-mount flags mount(2) keeps (besides MS_RDONLY).
pub const MOUNT_FLAG_MASK: u64 = libc::MS_NOSUID
    | libc::MS_NODEV
    | libc::MS_NOEXEC
    | libc::MS_NOATIME
    | libc::MS_NODIRATIME
    | libc::MS_RELATIME
    | libc::MS_STRICTATIME;

impl Mount {
    pub fn read_only(&self) -> bool {
        self.read_only.load(Ordering::Acquire)
    }
    pub fn id(&self) -> u64 {
        self.id
    }
    /// The per-mount flags (MOUNT_FLAG_MASK bits).
    pub fn flags(&self) -> u64 {
        self.flags.load(Ordering::Acquire)
    }
    pub fn source(&self) -> &[u8] {
        &self.source
    }
    /// The mount this one is mounted on (None for the root mount).
    pub fn parent_id(&self) -> Option<u64> {
        self.parent.as_ref().map(|(m, _)| m.id)
    }
    /// Where this mount is mounted (None for the root mount).
    pub fn mount_point(&self) -> Option<Location> {
        self.parent.as_ref().map(|(m, d)| Location {
            mount: m.clone(),
            dentry: d.clone(),
        })
    }
    /// The mount's root.
    pub fn root_location(self: &Arc<Self>) -> Location {
        Location {
            mount: self.clone(),
            dentry: self.root.clone(),
        }
    }
    /// The file-system type name, as /proc/mounts shows it.
    pub fn fstype(&self) -> &'static str {
        if let Some(t) = self.fstype {
            return t;
        }
        match self.root.inode.statfs().map(|s| s.fs_type).unwrap_or(0) {
            crate::synthetic::TMPFS_MAGIC => "tmpfs",
            crate::synthetic::PROC_SUPER_MAGIC => "proc",
            crate::synthetic::SYSFS_MAGIC => "sysfs",
            0x6573_5546 => "fuse",
            0x0102_1997 => "9p",
            0x794c_7630 => "overlay",
            0x1cd1 => "devpts",
            _ => "9p",
        }
    }
    /// Changes MS_RDONLY and the per-mount flags (mount -o remount).
    pub fn set_flags(&self, read_only: bool, flags: u64) {
        self.read_only.store(read_only, Ordering::Release);
        self.flags.store(flags & MOUNT_FLAG_MASK, Ordering::Release);
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
    /// Whether this is the root of its mount.
    pub fn is_mount_root(&self) -> bool {
        Arc::ptr_eq(&self.dentry, &self.mount.root)
    }
    pub fn stat(&self) -> Result<Stat, Errno> {
        self.dentry.inode.stat()
    }
    pub fn statfs(&self) -> Result<StatFs, Errno> {
        let mut s = self.dentry.inode.statfs()?;
        if self.mount.read_only() {
            s.flags |= ST_RDONLY;
        }
        // ST_NOSUID, ST_NODEV, ST_NOEXEC, ST_NOATIME, ST_NODIRATIME share the
        // MS_* values; ST_RELATIME does not.
        let f = self.mount.flags();
        s.flags |= f & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
        s.flags |= f & (libc::MS_NOATIME | libc::MS_NODIRATIME);
        if f & libc::MS_RELATIME != 0 {
            s.flags |= 4096;
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
            String::from_utf8_lossy(&self.dentry.name())
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
    /// The ptys (/dev/ptmx, /dev/pts, /dev/tty, /dev/console).
    devpts: Arc<crate::devpts::DevPts>,
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
            read_only: AtomicBool::new(read_only),
            flags: AtomicU64::new(0),
            source: b"none".to_vec(),
            fstype: None,
        });
        Arc::new(Vfs {
            root: Location {
                mount: m,
                dentry: d,
            },
            mounts: RwLock::new(HashMap::new()),
            devpts: crate::devpts::DevPts::new(),
        })
    }

    /// The sandbox's ptys, for the kernel's job-control hooks and the console.
    pub fn devpts(&self) -> &Arc<crate::devpts::DevPts> {
        &self.devpts
    }

    /// The sandbox's VFS: the gofer's tree at / (read-only for now), the
    /// sentry's own file systems mounted over /proc, /sys and /dev (the gofer's
    /// are never walked), and a fresh tmpfs at /dev/shm.
    pub fn new_with_gofer_root(client: Arc<gofer::Client>) -> Result<Arc<Vfs>, Errno> {
        Vfs::new_with_remote_root(client, true)
    }

    /// As [`Vfs::new_with_gofer_root`], over any [`RemoteFs`]. The non-overlay
    /// root: writes go to the remote tree unless `read_only`.
    pub fn new_with_remote_root(
        remote: Arc<dyn RemoteFs>,
        read_only: bool,
    ) -> Result<Arc<Vfs>, Errno> {
        let root = RemoteInode::mount_root(remote, read_only)?;
        let vfs = Vfs::new(root, read_only);
        vfs.mount_sentry_fs();
        Ok(vfs)
    }

    /// The `runsc do` VFS: an overlay at / of a fresh tmpfs (`upper_limit`
    /// bytes) over the gofer's tree, read-only (the host tree is never
    /// modified: every write lands in memory), and the sentry's own file
    /// systems as in [`Vfs::new_with_remote_root`].
    pub fn new_with_overlay_root(
        remote: Arc<dyn RemoteFs>,
        upper_limit: u64,
    ) -> Result<Arc<Vfs>, Errno> {
        let lower = RemoteInode::mount_root(remote, true)?;
        let upper = crate::tmpfs::TmpFs::new_root(0o755, upper_limit);
        let root = crate::overlay::OverlayFs::new_root(upper, lower)?;
        let vfs = Vfs::new(root, false);
        vfs.mount_sentry_fs();
        Ok(vfs)
    }

    /// Mounts the sentry's file systems over /proc, /sys and /dev (the root
    /// file system's are never walked), and a fresh tmpfs at /dev/shm.
    fn mount_sentry_fs(&self) {
        for (name, magic) in [(&b"proc"[..], PROC_SUPER_MAGIC), (b"sys", SYSFS_MAGIC)] {
            self.mount_under_root(name, SynthDir::new(magic), true);
        }
        let dev = self.mount_under_root(
            b"dev",
            crate::devfs::DevDir::with_pts(self.devpts.clone()),
            false,
        );
        // The sandbox's own /dev/shm (the host's is never served).
        let shm = dev.root.ensure_child(b"shm", || SynthDir::new(TMPFS_MAGIC));
        self.mount_at(
            &Location {
                mount: dev.clone(),
                dentry: shm,
            },
            crate::tmpfs::TmpFs::new_root(0o1777, crate::tmpfs::DEFAULT_LIMIT),
            false,
        );
    }

    /// Mounts a fresh, empty tmpfs over /tmp (`runsc do --private-tmp`): the
    /// root's /tmp (the host's, through the overlay) is then not visible.
    pub fn mount_private_tmp(&self) {
        self.mount_under_root(
            b"tmp",
            crate::tmpfs::TmpFs::new_root(0o1777, crate::tmpfs::DEFAULT_LIMIT),
            false,
        );
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

    /// Mounts `fs_root` at the absolute `path` (bind mounts such as `runsc do
    /// --volume`). Symlinks along the path are followed; components that do not
    /// exist are made as synthetic directories in the dentry cache only (the file
    /// system below, e.g. a read-only root, is never asked to create them).
    /// EINVAL for a relative path, "..", or "/" itself; ENOTDIR if a component is
    /// not a directory.
    pub fn mount_at_path(
        &self,
        path: &[u8],
        fs_root: Arc<dyn Inode>,
        read_only: bool,
    ) -> Result<Arc<Mount>, Errno> {
        let cur = self.dir_at_path(path)?;
        Ok(self.mount_at(&cur, fs_root, read_only))
    }

    /// The directory at the absolute `path`, made (in the dentry cache only)
    /// where missing, as [`Vfs::mount_at_path`] needs.
    fn dir_at_path(&self, path: &[u8]) -> Result<Location, Errno> {
        if path.first() != Some(&b'/') || path.len() >= PATH_MAX {
            return Err(Errno::EINVAL);
        }
        let ctx = FsContext::new(self.root());
        let creds = Creds::root();
        let mut cur = self.root();
        let mut any = false;
        for comp in path.split(|&c| c == b'/').filter(|c| !c.is_empty()) {
            if comp == b"." {
                continue;
            }
            if comp == b".." {
                return Err(Errno::EINVAL);
            }
            if comp.len() > NAME_MAX {
                return Err(Errno::ENAMETOOLONG);
            }
            any = true;
            cur = match self.walk(&ctx, &creds, &cur, comp, &WalkOpts::follow()) {
                Ok(l) => l,
                Err(Errno::ENOENT) => {
                    let d = cur.dentry.ensure_child(comp, || SynthDir::new(TMPFS_MAGIC));
                    self.follow_mounts(Location {
                        mount: cur.mount.clone(),
                        dentry: d,
                    })
                }
                Err(e) => return Err(e),
            };
            if !cur.is_dir() {
                return Err(Errno::ENOTDIR);
            }
        }
        if !any {
            return Err(Errno::EINVAL);
        }
        Ok(cur)
    }

    /// Mounts a file (`fs_root`, not a directory) at the absolute `path`: a
    /// bind mount of a single file, such as an engine's /etc/hosts. The
    /// parent directories are found or made as in [`Vfs::mount_at_path`]; the
    /// last component may be a file (covered) or missing (a placeholder is
    /// made in the dentry cache only, the file system below is not asked);
    /// a directory there gives EISDIR.
    pub fn mount_file_at_path(
        &self,
        path: &[u8],
        fs_root: Arc<dyn Inode>,
        read_only: bool,
    ) -> Result<Arc<Mount>, Errno> {
        if path.first() != Some(&b'/') || path.len() >= PATH_MAX {
            return Err(Errno::EINVAL);
        }
        let comps: Vec<&[u8]> = path
            .split(|&c| c == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .collect();
        let Some((last, dirs)) = comps.split_last() else {
            return Err(Errno::EINVAL);
        };
        if comps.iter().any(|c| *c == b"..") {
            return Err(Errno::EINVAL);
        }
        if comps.iter().any(|c| c.len() > NAME_MAX) {
            return Err(Errno::ENAMETOOLONG);
        }
        let parent = if dirs.is_empty() {
            self.root()
        } else {
            let mut p = Vec::new();
            for d in dirs {
                p.push(b'/');
                p.extend_from_slice(d);
            }
            // Make (or find) the parent as a directory mount point would, then
            // walk to it (not mounting anything there).
            self.dir_at_path(&p)?
        };
        let ctx = FsContext::new(self.root());
        let creds = Creds::root();
        let at = match self.walk(&ctx, &creds, &parent, last, &WalkOpts::follow()) {
            // An existing directory cannot take a file.
            Ok(l) if l.is_dir() => return Err(Errno::EISDIR),
            Ok(l) => l,
            Err(Errno::ENOENT) => {
                let d = parent
                    .dentry
                    .ensure_child(last, || SynthDir::new(TMPFS_MAGIC));
                self.follow_mounts(Location {
                    mount: parent.mount.clone(),
                    dentry: d,
                })
            }
            Err(e) => return Err(e),
        };
        Ok(self.mount_at(&at, fs_root, read_only))
    }

    /// Mounts `fs_root` over `at` (a later mount on the same point covers an earlier one).
    pub fn mount_at(&self, at: &Location, fs_root: Arc<dyn Inode>, read_only: bool) -> Arc<Mount> {
        self.mount_with(
            at,
            fs_root,
            MountOpts {
                read_only,
                source: b"none".to_vec(),
                ..Default::default()
            },
        )
    }

    /// Mounts `fs_root` over `at` with mount(2)'s options.
    pub fn mount_with(
        &self,
        at: &Location,
        fs_root: Arc<dyn Inode>,
        opts: MountOpts,
    ) -> Arc<Mount> {
        let d = Dentry::new(&at.dentry.name(), Weak::new(), fs_root);
        self.attach(at, d, opts)
    }

    /// A bind mount: `src`'s subtree (same dentries, so the same files) also
    /// appears at `at`. Mounts below `src` are not copied (no MS_REC).
    pub fn bind_mount(&self, at: &Location, src: &Location, opts: MountOpts) -> Arc<Mount> {
        self.attach(at, src.dentry.clone(), opts)
    }

    /// A recursive bind mount (MS_REC, and what pivot_root leaves at put_old):
    /// as [`Vfs::bind_mount`], plus a copy of every mount below `src`.
    pub fn bind_mount_rec(&self, at: &Location, src: &Location, opts: MountOpts) -> Arc<Mount> {
        // The mounts as they are now: the copies must not copy themselves.
        let snapshot: Vec<Arc<Mount>> = self
            .mounts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let top = self.bind_mount(at, src, opts);
        // (original mount, its copy): copy the originals' children under the copies.
        let mut todo = vec![(src.mount.clone(), top.clone(), Some(src.dentry.clone()))];
        while let Some((orig, copy, within)) = todo.pop() {
            for child in &snapshot {
                let Some((pm, pd)) = &child.parent else {
                    continue;
                };
                if !Arc::ptr_eq(pm, &orig) {
                    continue;
                }
                if let Some(w) = &within {
                    if !pd.is_within(w) {
                        continue;
                    }
                }
                let at = Location {
                    mount: copy.clone(),
                    dentry: pd.clone(),
                };
                let c = self.attach(
                    &at,
                    child.root.clone(),
                    MountOpts {
                        read_only: child.read_only(),
                        flags: child.flags(),
                        source: child.source.clone(),
                        fstype: Some(child.fstype()),
                    },
                );
                todo.push((child.clone(), c, None));
            }
        }
        top
    }

    fn attach(&self, at: &Location, root: Arc<Dentry>, opts: MountOpts) -> Arc<Mount> {
        let at = self.follow_mounts(at.clone());
        let m = Arc::new(Mount {
            id: next_id(),
            root,
            parent: Some((at.mount.clone(), at.dentry.clone())),
            read_only: AtomicBool::new(opts.read_only),
            flags: AtomicU64::new(opts.flags & MOUNT_FLAG_MASK),
            source: opts.source,
            fstype: opts.fstype,
        });
        at.dentry.mounted_on.store(true, Ordering::Release);
        self.mounts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((at.mount.id, at.dentry.id), m.clone());
        m
    }

    /// umount2(2) of the mount whose root is `loc`: EINVAL if `loc` is not a
    /// mount's root or is the root mount; EBUSY while other mounts sit inside
    /// it, unless `detach` (MNT_DETACH), which takes them along.
    pub fn unmount(&self, loc: &Location, detach: bool) -> Result<(), Errno> {
        if !loc.is_mount_root() {
            return Err(Errno::EINVAL);
        }
        let Some((pm, pd)) = loc.mount.parent.clone() else {
            return Err(Errno::EINVAL);
        };
        let mut table = self.mounts.write().unwrap_or_else(|e| e.into_inner());
        let children = |table: &HashMap<(u64, u64), Arc<Mount>>, id: u64| -> Vec<(u64, u64)> {
            table
                .iter()
                .filter(|(_, m)| m.parent_id() == Some(id))
                .map(|(k, _)| *k)
                .collect()
        };
        if !detach && !children(&table, loc.mount.id).is_empty() {
            return Err(Errno::EBUSY);
        }
        // Remove the mount and, with MNT_DETACH, everything mounted inside it.
        let mut todo = vec![loc.mount.id];
        while let Some(id) = todo.pop() {
            for k in children(&table, id) {
                if let Some(m) = table.remove(&k) {
                    todo.push(m.id);
                }
            }
        }
        table.remove(&(pm.id, pd.id));
        if !table.keys().any(|&(m, d)| m == pm.id && d == pd.id) {
            pd.mounted_on.store(false, Ordering::Release);
        }
        Ok(())
    }

    /// Every mount, the root mount first, then in the order they were made;
    /// without the sentry's empty placeholder directories that another mount
    /// covers (they only keep the walk off the root file system's /proc, /sys).
    pub fn mounts(&self) -> Vec<Arc<Mount>> {
        let table = self.mounts.read().unwrap_or_else(|e| e.into_inner());
        let covered = |m: &Mount| table.contains_key(&(m.id, m.root.id));
        let mut v: Vec<Arc<Mount>> = table
            .values()
            .filter(|m| {
                let placeholder = m.root.inode.as_any().is_some_and(|a| a.is::<SynthDir>());
                !(placeholder && covered(m))
            })
            .cloned()
            .collect();
        drop(table);
        v.sort_by_key(|m| m.id);
        v.insert(0, self.root.mount.clone());
        v
    }

    /// The path of `loc` from the task's root, or None when `loc` is not below
    /// that root (e.g. a mount outside a chroot).
    pub fn path_below_root(&self, ctx: &FsContext, loc: &Location) -> Option<Vec<u8>> {
        let root = ctx.root();
        let mut cur = loc.clone();
        loop {
            if cur.same(&root) {
                return Some(self.path_of(ctx, loc));
            }
            if cur.is_mount_root() {
                let (pm, pd) = cur.mount.parent.clone()?;
                cur = Location {
                    mount: pm,
                    dentry: pd,
                };
                continue;
            }
            cur.dentry = cur.dentry.parent()?;
        }
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
        let p = cur.dentry.parent().unwrap_or_else(|| cur.dentry.clone());
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
                if let Some(m) = next.inode().follow_magic() {
                    cur = match m? {
                        MagicTarget::Location(l) => l,
                        MagicTarget::File(f) => Location {
                            mount: next.mount.clone(),
                            dentry: Dentry::new(
                                &name,
                                Arc::downgrade(&next.dentry),
                                Arc::new(FileInode(f)),
                            ),
                        },
                    };
                    continue;
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
            let acc = flags & libc::O_ACCMODE;
            if acc != libc::O_WRONLY && acc != libc::O_RDWR {
                return Err(Errno::EINVAL);
            }
            Self::want_write(&dir)?;
            Self::may_modify_dir(creds, &dir)?;
            let mode = Self::strip_sgid(creds, &dir.attr(), S_IFREG | (how.mode & 0o7777));
            let inode = dir.inode().tmpfile(
                mode & 0o7777,
                creds.uid,
                creds.gid,
                flags & libc::O_EXCL == 0,
            )?;
            let name = format!("#{}", inode.stat()?.ino).into_bytes();
            // An unhashed dentry: reachable only through the open file.
            let d = Dentry::new(&name, Arc::downgrade(&dir.dentry), inode);
            let loc = Location {
                mount: dir.mount.clone(),
                dentry: d,
            };
            let ops = loc
                .inode()
                .clone()
                .open(flags & !O_TMPFILE_BIT & !libc::O_DIRECTORY)?;
            let file = OpenFile::new(ops, flags & !O_TMPFILE_BIT & !libc::O_DIRECTORY, Some(loc));
            // Linux names it "#<ino>" in events to the directory's watches too.
            inotify::opened(&file, false);
            return Ok(file);
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
                            // A dangling link: create its target (the walk
                            // reports ELOOP for cycles, so this recursion ends).
                            Err(Errno::ENOENT) => {
                                let target = child.inode().readlink()?;
                                return self.open(ctx, creds, &parent, &target, how);
                            }
                            Err(e) => return Err(e),
                        }
                    } else {
                        child
                    }
                }
                Err(Errno::ENOENT) => {
                    // Create it: a writable mount and write permission on the
                    // parent. The new file is opened without a permission check
                    // (open(O_CREAT|O_RDWR, 0444) works, as on Linux).
                    Self::want_write(&parent)?;
                    Self::may_modify_dir(creds, &parent)?;
                    let mode =
                        Self::strip_sgid(creds, &parent.attr(), S_IFREG | (how.mode & 0o7777));
                    let inode =
                        parent
                            .inode()
                            .create(&name, mode & 0o7777, creds.uid, creds.gid)?;
                    parent.dentry.forget(&name);
                    parent.dentry.add_child(&name, inode.clone());
                    inotify::created(&parent.dentry, &name, &inode, false);
                    let loc = self.lookup_child(&parent, &name, base.no_xdev)?;
                    let ops = loc.inode().clone().open(flags & !libc::O_TRUNC)?;
                    let file = OpenFile::new(ops, flags, Some(loc));
                    inotify::opened(&file, false);
                    return Ok(file);
                }
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
            && loc.mount.read_only()
            && matches!(a.mode & S_IFMT, S_IFREG | S_IFDIR | S_IFLNK)
        {
            return Err(Errno::EROFS);
        }
        perm::check(creds, a.mode, a.uid, a.gid, mask)?;
        // O_NOATIME can only be set by the owner or with CAP_FOWNER (may_open).
        if flags & libc::O_NOATIME != 0 && !creds.owner_or_capable(a.uid) {
            return Err(Errno::EPERM);
        }
        let ops = loc.inode().clone().open(flags)?;
        let truncate = flags & libc::O_TRUNC != 0 && a.is_regular() && !loc.mount.read_only();
        if truncate {
            loc.inode().setattr(&SetAttr {
                size: Some(0),
                // Truncation drops set-user-ID/set-group-ID (do_truncate).
                mode: perm::mode_after_write(creds, a.mode, a.gid),
                ..Default::default()
            })?;
        }
        let file = OpenFile::new(ops, flags, Some(loc));
        inotify::opened(&file, truncate);
        Ok(file)
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
        if !a.is_regular() || loc.mount.flags() & libc::MS_NOEXEC != 0 {
            return Err(Errno::EACCES);
        }
        perm::check(creds, a.mode, a.uid, a.gid, MAY_EXEC)?;
        let ops = loc.inode().clone().open(libc::O_RDONLY)?;
        let p = self.path_of(ctx, &loc);
        let file = OpenFile::new(ops, libc::O_RDONLY, Some(loc));
        inotify::opened(&file, false);
        Ok((file, p))
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
            parts.push(cur.dentry.name());
            match cur.dentry.parent() {
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
            && loc.mount.read_only()
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

    // ---- The mutating calls. Each resolves its paths first (so ENOENT/ENOTDIR/
    // EEXIST come out as Linux orders them), checks the mount is writable and the
    // caller's permissions, then asks the file system and updates the dentry cache.

    fn want_write(loc: &Location) -> Result<(), Errno> {
        if loc.mount.read_only() {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// May `creds` add or remove names in directory `dir` (write + search)?
    fn may_modify_dir(creds: &Creds, dir: &Location) -> Result<(), Errno> {
        let a = dir.attr();
        perm::check(creds, a.mode, a.uid, a.gid, MAY_WRITE | MAY_EXEC)
    }

    /// The sticky-bit rule (`check_sticky`): in a sticky directory only the
    /// owner of the entry, the owner of the directory, or a holder of CAP_FOWNER
    /// may remove or rename it.
    fn sticky_ok(creds: &Creds, dir: &Attr, child: &Attr) -> Result<(), Errno> {
        if dir.mode & S_ISVTX != 0
            && creds.uid != child.uid
            && creds.uid != dir.uid
            && !creds.capable(perm::CAP_FOWNER)
        {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    /// `mode_strip_sgid`: a non-directory created group-executable and
    /// set-group-ID in a set-group-ID directory keeps set-group-ID only if the
    /// creator is in the directory's group or has CAP_FSETID.
    fn strip_sgid(creds: &Creds, dir: &Attr, mode: u32) -> u32 {
        if mode & 0o2010 != 0o2010
            || mode & S_IFMT == S_IFDIR
            || dir.mode & 0o2000 == 0
            || creds.in_group_or_capable(dir.gid)
        {
            return mode;
        }
        mode & !0o2000
    }

    /// mkdir(2) / mknod(2) of a regular node without the details: kept for
    /// callers that only need the checks (a directory, or a regular file).
    pub fn create_at(
        &self,
        ctx: &FsContext,
        creds: &Creds,
        start: &Location,
        path: &[u8],
        is_dir: bool,
    ) -> Result<(), Errno> {
        let what = if is_dir {
            NewNode::Dir { mode: 0o755 }
        } else {
            NewNode::Node {
                mode: S_IFREG | 0o644,
                rdev: 0,
            }
        };
        self.make_node_at(ctx, creds, start, path, what)
    }

    /// mkdir(2), mknod(2), symlink(2) and link(2)'s new name: EEXIST if it
    /// exists, EROFS on a read-only mount, EACCES without write permission on the
    /// parent. `mode` permission bits have the umask applied by the caller.
    pub fn make_node_at(
        &self,
        ctx: &FsContext,
        creds: &Creds,
        start: &Location,
        path: &[u8],
        what: NewNode,
    ) -> Result<(), Errno> {
        let is_dir = matches!(what, NewNode::Dir { .. });
        let (parent, last, trailing) =
            self.walk_parent(ctx, creds, start, path, &WalkOpts::default())?;
        let n = match last {
            Last::Normal(n) => n,
            _ => return Err(Errno::EEXIST),
        };
        match self.lookup_last(creds, &parent, &n, false) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        if trailing && !is_dir {
            return Err(Errno::ENOENT);
        }
        Self::want_write(&parent)?;
        Self::may_modify_dir(creds, &parent)?;
        let dir = parent.inode();
        let (uid, gid) = (creds.uid, creds.gid);
        let is_link = matches!(what, NewNode::Link { .. });
        let inode = match what {
            NewNode::Dir { mode } => dir.mkdir(&n, mode & 0o7777, uid, gid)?,
            NewNode::Node { mode, rdev } => {
                let ty = mode & S_IFMT;
                if (ty == S_IFCHR || ty == S_IFBLK) && !creds.capable(CAP_MKNOD) {
                    return Err(Errno::EPERM);
                }
                let mode = Self::strip_sgid(creds, &parent.attr(), mode);
                if ty == 0 || ty == S_IFREG {
                    dir.create(&n, mode & 0o7777, uid, gid)?
                } else {
                    dir.mknod(&n, mode, rdev, uid, gid)?
                }
            }
            NewNode::Symlink { target } => dir.symlink(&n, &target, uid, gid)?,
            NewNode::Link { target } => {
                if !Arc::ptr_eq(&target.mount, &parent.mount) {
                    return Err(Errno::EXDEV);
                }
                if target.is_dir() {
                    return Err(Errno::EPERM);
                }
                dir.link(&n, target.inode())?;
                target.inode().clone()
            }
        };
        parent.dentry.forget(&n);
        parent.dentry.add_child(&n, inode.clone());
        inotify::created(&parent.dentry, &n, &inode, is_link);
        Ok(())
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
        let (parent, last, trailing) =
            self.walk_parent(ctx, creds, start, path, &WalkOpts::default())?;
        let n = match (last, is_dir) {
            (Last::Normal(n), _) => n,
            (_, false) => return Err(Errno::EISDIR),
            (Last::Dot, true) => return Err(Errno::EINVAL),
            (Last::DotDot, true) => return Err(Errno::ENOTEMPTY),
            (Last::Root, true) => return Err(Errno::EBUSY),
        };
        Self::want_write(&parent)?;
        let pa = parent.attr();
        if !pa.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        perm::check(creds, pa.mode, pa.uid, pa.gid, MAY_EXEC)?;
        let child = parent.dentry.child(&n)?;
        let ca = child.inode.attr();
        if !is_dir && trailing {
            // unlink("file/"): a trailing slash needs a directory.
            return Err(if ca.is_dir() {
                Errno::EISDIR
            } else {
                Errno::ENOTDIR
            });
        }
        Self::may_modify_dir(creds, &parent)?;
        Self::sticky_ok(creds, &pa, &ca)?;
        if is_dir {
            if !ca.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if child.is_mount_point() {
                return Err(Errno::EBUSY);
            }
            parent.inode().rmdir(&n)?;
        } else {
            if ca.is_dir() {
                return Err(Errno::EISDIR);
            }
            if child.is_mount_point() {
                return Err(Errno::EBUSY);
            }
            parent.inode().unlink(&n)?;
        }
        parent.dentry.forget(&n);
        inotify::removed(&parent.dentry, &n, child, is_dir);
        Ok(())
    }

    /// rename(2) / renameat(2).
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
        self.rename_at2(ctx, creds, old_start, old, new_start, new, 0)
    }

    /// renameat2(2) (`flags` validated by the caller: RENAME_NOREPLACE,
    /// RENAME_EXCHANGE).
    #[allow(clippy::too_many_arguments)]
    pub fn rename_at2(
        &self,
        ctx: &FsContext,
        creds: &Creds,
        old_start: &Location,
        old: &[u8],
        new_start: &Location,
        new: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        const RENAME_NOREPLACE: u32 = 1;
        const RENAME_EXCHANGE: u32 = 2;
        let (op, ol, otrail) =
            self.walk_parent(ctx, creds, old_start, old, &WalkOpts::default())?;
        let (np, nl, ntrail) =
            self.walk_parent(ctx, creds, new_start, new, &WalkOpts::default())?;
        let (on, nn) = match (ol, nl) {
            (Last::Normal(a), Last::Normal(b)) => (a, b),
            _ => return Err(Errno::EBUSY),
        };
        if !Arc::ptr_eq(&op.mount, &np.mount) {
            return Err(Errno::EXDEV);
        }
        Self::want_write(&op)?;
        for d in [&op, &np] {
            let a = d.attr();
            perm::check(creds, a.mode, a.uid, a.gid, MAY_EXEC)?;
        }
        let src = op.dentry.child(&on)?;
        let sa = src.inode.attr();
        let dst = match np.dentry.child(&nn) {
            Ok(d) => Some(d),
            Err(Errno::ENOENT) if flags & RENAME_EXCHANGE == 0 => None,
            Err(e) => return Err(e),
        };
        if (otrail || ntrail) && !sa.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if let Some(d) = &dst {
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            if std::ptr::addr_eq(Arc::as_ptr(&d.inode), Arc::as_ptr(&src.inode))
                || Arc::ptr_eq(d, &src)
            {
                return Ok(());
            }
            let da = d.inode.attr();
            if flags & RENAME_EXCHANGE == 0 {
                if sa.is_dir() && !da.is_dir() {
                    return Err(Errno::ENOTDIR);
                }
                if !sa.is_dir() && da.is_dir() {
                    return Err(Errno::EISDIR);
                }
            } else if ntrail && !da.is_dir() {
                return Err(Errno::ENOTDIR);
            }
        }
        // A directory may not move below itself; nor may the target contain
        // the source (exchange).
        if sa.is_dir() && np.dentry.is_within(&src) {
            return Err(Errno::EINVAL);
        }
        if let Some(d) = &dst {
            if d.inode.attr().is_dir() && op.dentry.is_within(d) {
                return Err(if flags & RENAME_EXCHANGE != 0 {
                    Errno::EINVAL
                } else {
                    Errno::ENOTEMPTY
                });
            }
        }
        Self::may_modify_dir(creds, &op)?;
        Self::may_modify_dir(creds, &np)?;
        Self::sticky_ok(creds, &op.attr(), &sa)?;
        if let Some(d) = &dst {
            Self::sticky_ok(creds, &np.attr(), &d.inode.attr())?;
        }
        // Moving a directory to a new parent rewrites its "..": needs write
        // permission on it.
        if sa.is_dir() && !Arc::ptr_eq(&op.dentry, &np.dentry) {
            perm::check(creds, sa.mode, sa.uid, sa.gid, MAY_WRITE)?;
        }
        if src.is_mount_point() || dst.as_ref().is_some_and(|d| d.is_mount_point()) {
            return Err(Errno::EBUSY);
        }
        op.inode().rename(&on, np.inode(), &nn, flags)?;
        // Update the cache: the dentries move with their nodes.
        let move_to = |d: &Arc<Dentry>, parent: &Arc<Dentry>, name: &[u8]| {
            *d.name.lock().unwrap_or_else(|e| e.into_inner()) = name.to_vec();
            *d.parent.lock().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(parent);
            parent.children().insert(name.to_vec(), d.clone());
        };
        op.dentry.forget(&on);
        np.dentry.forget(&nn);
        move_to(&src, &np.dentry, &nn);
        if flags & RENAME_EXCHANGE != 0 {
            if let Some(d) = &dst {
                move_to(d, &op.dentry, &on);
            }
        }
        let exchange = flags & RENAME_EXCHANGE != 0;
        inotify::renamed(&op.dentry, &on, &np.dentry, &nn, &src, dst, exchange);
        Ok(())
    }

    /// chmod/chown/utimes/truncate on a walked location, with the checks Linux
    /// makes (EROFS; EPERM for a non-owner's chmod/chown/explicit times; EACCES
    /// for truncate or "now" times without write permission). `by_fd` is set for
    /// ftruncate/futimens-style calls, which skip the write-permission check for
    /// truncate (the description was opened for writing).
    pub fn setattr(
        &self,
        creds: &Creds,
        loc: &Location,
        attr: &SetAttr,
        by_fd: bool,
    ) -> Result<(), Errno> {
        let a = loc.attr();
        let mut attr = *attr;
        let ro_sensitive = matches!(a.mode & S_IFMT, S_IFREG | S_IFDIR | S_IFLNK);
        if loc.mount.read_only() && ro_sensitive {
            return Err(Errno::EROFS);
        }
        // inode_owner_or_capable: the fsuid owns the file, or CAP_FOWNER.
        let owner = creds.owner_or_capable(a.uid);
        if let Some(mode) = attr.mode {
            if !owner {
                return Err(Errno::EPERM);
            }
            let mut mode = mode & 0o7777;
            if !creds.in_group_or_capable(attr.gid.unwrap_or(a.gid)) {
                mode &= !0o2000;
            }
            attr.mode = Some(mode);
        }
        if attr.uid.is_some() || attr.gid.is_some() {
            // chown_ok / chgrp_ok: the owner may leave the uid and set the gid
            // to one of its groups; anything else needs CAP_CHOWN.
            let is_owner = creds.uid == a.uid;
            let uid_ok = attr.uid.is_none_or(|u| is_owner && u == a.uid);
            let gid_ok = attr
                .gid
                .is_none_or(|g| is_owner && (g == a.gid || creds.in_group(g)));
            let allowed = (uid_ok && gid_ok) || creds.capable(CAP_CHOWN);
            if !allowed {
                return Err(Errno::EPERM);
            }
            // Changing the owner of a non-directory clears set-user-ID (even for
            // root) and set-group-ID when group-executable or the caller is
            // neither in the file's group nor has CAP_FSETID (chown_common's
            // ATTR_KILL_SUID | setattr_should_drop_sgid). The implied mode
            // change is checked as one (inode_owner_or_capable).
            if !a.is_dir() && attr.mode.is_none() {
                let old = a.mode & 0o7777;
                let mut kill = None;
                if old & 0o4000 != 0 {
                    kill = Some(old & !0o4000);
                }
                if old & 0o2000 != 0 && (old & 0o010 != 0 || !creds.in_group_or_capable(a.gid)) {
                    kill = Some(kill.unwrap_or(old) & !0o2000);
                }
                if let Some(mut m) = kill {
                    if !owner {
                        return Err(Errno::EPERM);
                    }
                    if !creds.in_group_or_capable(attr.gid.unwrap_or(a.gid)) {
                        m &= !0o2000;
                    }
                    attr.mode = Some(m);
                }
            }
        }
        if attr.size.is_some() {
            if a.is_dir() {
                return Err(Errno::EISDIR);
            }
            if !a.is_regular() {
                return Err(Errno::EINVAL);
            }
            if !by_fd {
                perm::check(creds, a.mode, a.uid, a.gid, MAY_WRITE)?;
            }
            // Truncation drops set-user-ID/set-group-ID (do_truncate).
            if attr.mode.is_none() {
                attr.mode = perm::mode_after_write(creds, a.mode, a.gid);
            }
        }
        let explicit = matches!(attr.atime, Some(TimeSet::At(_)))
            || matches!(attr.mtime, Some(TimeSet::At(_)));
        let now_only = !explicit && (attr.atime.is_some() || attr.mtime.is_some());
        if explicit && !owner {
            return Err(Errno::EPERM);
        }
        if now_only && !owner {
            perm::check(creds, a.mode, a.uid, a.gid, MAY_WRITE)?;
        }
        loc.inode().setattr(&attr)?;
        inotify::attr_changed(loc, &attr);
        Ok(())
    }

    /// `file_remove_privs` before a write to `loc`: a regular file loses
    /// set-user-ID (and set-group-ID, per [`perm::mode_after_write`]) unless
    /// the writer has CAP_FSETID.
    pub fn remove_privs(&self, creds: &Creds, loc: &Location) -> Result<(), Errno> {
        let a = loc.attr();
        if a.mode & 0o6000 == 0 {
            return Ok(());
        }
        if let Some(mode) = perm::mode_after_write(creds, a.mode, a.gid) {
            let attr = SetAttr {
                mode: Some(mode),
                ..Default::default()
            };
            loc.inode().setattr(&attr)?;
            inotify::attr_changed(loc, &attr);
        }
        Ok(())
    }

    // ---- Extended attributes: Linux's `xattr_permission` rules here, storage in
    // the file systems (Inode::{get,set,list,remove}xattr).

    /// Linux's `xattr_permission`: security.* and system.* are left to the file
    /// system; trusted.* needs CAP_SYS_ADMIN (`admin`) (else EPERM to write, ENODATA to
    /// read); user.* only on regular files and directories (else EPERM / ENODATA) and,
    /// on a sticky directory, writes only by its owner; then read or write permission.
    fn xattr_permission(
        creds: &Creds,
        admin: bool,
        loc: &Location,
        name: &[u8],
        write: bool,
    ) -> Result<(), Errno> {
        let a = loc.attr();
        if name.starts_with(b"security.") || name.starts_with(b"system.") {
            return Ok(());
        }
        let denied = if write { Errno::EPERM } else { Errno::ENODATA };
        if name.starts_with(b"trusted.") {
            return if admin { Ok(()) } else { Err(denied) };
        }
        if name.starts_with(b"user.") {
            if !a.is_regular() && !a.is_dir() {
                return Err(denied);
            }
            if a.is_dir() && a.mode & S_ISVTX != 0 && write && !creds.owner_or_capable(a.uid) {
                return Err(Errno::EPERM);
            }
        }
        let mask = if write { MAY_WRITE } else { MAY_READ };
        perm::check(creds, a.mode, a.uid, a.gid, mask)
    }

    /// getxattr(2) on a resolved location: the whole value (the caller applies the
    /// size rules). `admin`: the caller has CAP_SYS_ADMIN.
    pub fn getxattr(
        &self,
        creds: &Creds,
        admin: bool,
        loc: &Location,
        name: &[u8],
    ) -> Result<Vec<u8>, Errno> {
        Self::xattr_permission(creds, admin, loc, name, false)?;
        loc.inode().getxattr(name)
    }

    /// setxattr(2) (`flags` validated by the caller).
    pub fn setxattr(
        &self,
        creds: &Creds,
        admin: bool,
        loc: &Location,
        name: &[u8],
        value: &[u8],
        flags: i32,
    ) -> Result<(), Errno> {
        Self::want_write(loc)?;
        Self::xattr_permission(creds, admin, loc, name, true)?;
        loc.inode().setxattr(name, value, flags)
    }

    /// removexattr(2).
    pub fn removexattr(
        &self,
        creds: &Creds,
        admin: bool,
        loc: &Location,
        name: &[u8],
    ) -> Result<(), Errno> {
        Self::want_write(loc)?;
        Self::xattr_permission(creds, admin, loc, name, true)?;
        loc.inode().removexattr(name)
    }

    /// listxattr(2): the NUL-terminated names, trusted.* hidden without `admin`.
    pub fn listxattr(&self, admin: bool, loc: &Location) -> Result<Vec<u8>, Errno> {
        let all = loc.inode().listxattr()?;
        if admin {
            return Ok(all);
        }
        let mut out = Vec::with_capacity(all.len());
        for n in all.split(|&c| c == 0).filter(|n| !n.is_empty()) {
            if !n.starts_with(b"trusted.") {
                out.extend_from_slice(n);
                out.push(0);
            }
        }
        Ok(out)
    }

    /// fallocate(2) on an open file's location.
    pub fn allocate(
        &self,
        loc: &Location,
        off: u64,
        len: u64,
        keep_size: bool,
    ) -> Result<(), Errno> {
        Self::want_write(loc)?;
        loc.inode().allocate(off, len, keep_size)?;
        inotify::notify_dentry(&loc.dentry, inotify::IN_MODIFY);
        Ok(())
    }

    /// fallocate(2) FALLOC_FL_PUNCH_HOLE on an open file's location.
    pub fn punch_hole(&self, loc: &Location, off: u64, len: u64) -> Result<(), Errno> {
        Self::want_write(loc)?;
        loc.inode().punch_hole(off, len)
    }
}

// ---- inotify (anon/inotify.rs) ----

impl Dentry {
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The parent, this dentry's name there, and whether that name still
    /// refers to this dentry (false once unlinked or replaced).
    pub(crate) fn notify_parent(&self) -> Option<(Arc<Dentry>, Vec<u8>, bool)> {
        let p = self.parent()?;
        let name = self.name();
        let linked = p
            .children()
            .get(&name)
            .is_some_and(|c| std::ptr::eq(Arc::as_ptr(c), self));
        Some((p, name, linked))
    }
}

impl Drop for Dentry {
    fn drop(&mut self) {
        if inotify::active() {
            inotify::dentry_dropped(self.id, &self.inode);
        }
    }
}

/// What [`Vfs::make_node_at`] makes.
pub enum NewNode {
    Dir {
        mode: u32,
    },
    /// A regular file, FIFO, socket or device node (`mode` has the type).
    Node {
        mode: u32,
        rdev: u64,
    },
    Symlink {
        target: Vec<u8>,
    },
    /// A hard link to an existing node.
    Link {
        target: Location,
    },
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

/// The node a magic link to a pathless open file leads to: opening it makes a
/// new description sharing the file's operations.
struct FileInode(Arc<OpenFile>);

impl Inode for FileInode {
    fn attr(&self) -> Attr {
        let st = self.0.stat().unwrap_or_default();
        Attr {
            mode: st.mode,
            uid: st.uid,
            gid: st.gid,
        }
    }
    fn stat(&self) -> Result<Stat, Errno> {
        self.0.stat()
    }
    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }
    fn open(self: Arc<Self>, _flags: i32) -> Result<Box<dyn FileOps>, Errno> {
        Ok(Box::new(crate::file::SharedOps(self.0.clone())))
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        self.0.statfs()
    }
}

#[cfg(test)]
mod mutation_tests {
    use super::*;
    use crate::tmpfs::TmpFs;

    struct T {
        vfs: Arc<Vfs>,
        ctx: Arc<FsContext>,
    }

    fn root() -> Creds {
        Creds::root()
    }
    fn user(uid: u32) -> Creds {
        Creds::user(uid, uid, vec![])
    }

    fn setup() -> T {
        let vfs = Vfs::new(TmpFs::new_root(0o755, 1 << 20), false);
        let ctx = FsContext::new(vfs.root());
        let t = T { vfs, ctx };
        t.mkdir(&root(), "/tmp", 0o1777).unwrap();
        t
    }

    impl T {
        fn mkdir(&self, c: &Creds, p: &str, mode: u32) -> Result<(), Errno> {
            self.vfs.make_node_at(
                &self.ctx,
                c,
                &self.vfs.root(),
                p.as_bytes(),
                NewNode::Dir { mode },
            )
        }
        fn creat(&self, c: &Creds, p: &str, mode: u32) -> Result<Arc<OpenFile>, Errno> {
            self.vfs.open(
                &self.ctx,
                c,
                &self.vfs.root(),
                p.as_bytes(),
                &OpenHow {
                    flags: libc::O_CREAT | libc::O_RDWR,
                    mode,
                    resolve: 0,
                },
            )
        }
        fn open(&self, c: &Creds, p: &str, flags: i32) -> Result<Arc<OpenFile>, Errno> {
            self.vfs.open(
                &self.ctx,
                c,
                &self.vfs.root(),
                p.as_bytes(),
                &OpenHow {
                    flags,
                    mode: 0o644,
                    resolve: 0,
                },
            )
        }
        fn rm(&self, c: &Creds, p: &str, dir: bool) -> Result<(), Errno> {
            self.vfs
                .remove_at(&self.ctx, c, &self.vfs.root(), p.as_bytes(), dir)
        }
        fn mv(&self, c: &Creds, a: &str, b: &str, flags: u32) -> Result<(), Errno> {
            let r = self.vfs.root();
            self.vfs
                .rename_at2(&self.ctx, c, &r, a.as_bytes(), &r, b.as_bytes(), flags)
        }
        fn stat(&self, p: &str) -> Result<Stat, Errno> {
            self.vfs
                .walk(
                    &self.ctx,
                    &root(),
                    &self.vfs.root(),
                    p.as_bytes(),
                    &WalkOpts::nofollow(),
                )?
                .stat()
        }
        fn path_of_open(&self, f: &OpenFile) -> String {
            String::from_utf8(self.vfs.path_of(&self.ctx, f.location().unwrap())).unwrap()
        }
    }

    #[test]
    fn create_write_read_truncate() {
        let t = setup();
        let f = t.creat(&root(), "/tmp/a", 0o644).unwrap();
        assert_eq!(f.write(b"hello").unwrap(), 5);
        let g = t.open(&root(), "/tmp/a", libc::O_RDONLY).unwrap();
        let mut b = [0u8; 10];
        assert_eq!(g.read(&mut b).unwrap(), 5);
        assert_eq!(&b[..5], b"hello");
        assert_eq!(
            t.open(
                &root(),
                "/tmp/a",
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR
            )
            .err(),
            Some(Errno::EEXIST)
        );
        t.open(&root(), "/tmp/a", libc::O_WRONLY | libc::O_TRUNC)
            .unwrap();
        assert_eq!(t.stat("/tmp/a").unwrap().size, 0);
        // Created read-only but opened read-write: allowed at creation.
        t.creat(&user(1000), "/tmp/ro", 0o444).unwrap();
        assert_eq!(
            t.open(&user(1000), "/tmp/ro", libc::O_RDWR).err(),
            Some(Errno::EACCES)
        );
        assert_eq!(
            t.creat(&root(), "/nope/x", 0o644).err(),
            Some(Errno::ENOENT)
        );
    }

    #[test]
    fn capabilities_not_uid_zero() {
        use crate::perm::{ALL_CAPS, CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID};
        let t = setup();
        let without = |caps: &[u32]| Creds {
            caps: caps.iter().fold(ALL_CAPS, |m, c| m & !(1 << c)),
            ..root()
        };
        t.creat(&user(1000), "/tmp/f", 0o600).unwrap();
        let no_dac = without(&[CAP_DAC_OVERRIDE, perm::CAP_DAC_READ_SEARCH]);
        assert_eq!(
            t.open(&no_dac, "/tmp/f", libc::O_RDONLY).err(),
            Some(Errno::EACCES)
        );
        assert!(t.open(&without(&[]), "/tmp/f", libc::O_RDWR).is_ok());
        let r = t.vfs.root();
        let loc = t
            .vfs
            .walk(&t.ctx, &root(), &r, b"/tmp/f", &WalkOpts::follow())
            .unwrap();
        let chown = SetAttr {
            uid: Some(5),
            ..Default::default()
        };
        assert_eq!(
            t.vfs.setattr(&without(&[CAP_CHOWN]), &loc, &chown, false),
            Err(Errno::EPERM)
        );
        let chmod = SetAttr {
            mode: Some(0o2644),
            ..Default::default()
        };
        assert_eq!(
            t.vfs.setattr(&without(&[CAP_FOWNER]), &loc, &chmod, false),
            Err(Errno::EPERM)
        );
        // Not in group 1000 and no CAP_FSETID: set-group-ID is dropped.
        t.vfs
            .setattr(&without(&[CAP_FSETID]), &loc, &chmod, false)
            .unwrap();
        assert_eq!(t.stat("/tmp/f").unwrap().mode, S_IFREG | 0o644);
        t.vfs.setattr(&root(), &loc, &chmod, false).unwrap();
        assert_eq!(t.stat("/tmp/f").unwrap().mode, S_IFREG | 0o2644);
        // Sticky /tmp (owned by root): another user's file needs CAP_FOWNER.
        let uid2000 = |caps: &[u32]| Creds {
            uid: 2000,
            gid: 2000,
            ..without(caps)
        };
        assert_eq!(
            t.rm(&uid2000(&[CAP_FOWNER]), "/tmp/f", false),
            Err(Errno::EPERM)
        );
        t.rm(&uid2000(&[CAP_DAC_OVERRIDE]), "/tmp/f", false)
            .unwrap();
    }

    #[test]
    fn permissions_and_sticky() {
        let t = setup();
        t.mkdir(&root(), "/priv", 0o755).unwrap();
        assert_eq!(
            t.creat(&user(1000), "/priv/x", 0o644).err(),
            Some(Errno::EACCES)
        );
        assert_eq!(t.mkdir(&user(1000), "/priv/d", 0o755), Err(Errno::EACCES));
        t.creat(&user(1000), "/tmp/mine", 0o644).unwrap();
        // Sticky /tmp: another user cannot remove or rename it; the owner and root can.
        assert_eq!(t.rm(&user(1001), "/tmp/mine", false), Err(Errno::EPERM));
        assert_eq!(
            t.mv(&user(1001), "/tmp/mine", "/tmp/theirs", 0),
            Err(Errno::EPERM)
        );
        t.mv(&user(1000), "/tmp/mine", "/tmp/mine2", 0).unwrap();
        t.rm(&user(1000), "/tmp/mine2", false).unwrap();
        t.creat(&user(1000), "/tmp/m", 0o644).unwrap();
        t.rm(&root(), "/tmp/m", false).unwrap();
        // setattr checks.
        t.creat(&user(1000), "/tmp/f", 0o644).unwrap();
        let loc = t
            .vfs
            .walk(
                &t.ctx,
                &root(),
                &t.vfs.root(),
                b"/tmp/f",
                &WalkOpts::follow(),
            )
            .unwrap();
        let chmod = SetAttr {
            mode: Some(0o600),
            ..Default::default()
        };
        assert_eq!(
            t.vfs.setattr(&user(1001), &loc, &chmod, false),
            Err(Errno::EPERM)
        );
        t.vfs.setattr(&user(1000), &loc, &chmod, false).unwrap();
        assert_eq!(t.stat("/tmp/f").unwrap().mode, S_IFREG | 0o600);
        let chown = SetAttr {
            uid: Some(1001),
            ..Default::default()
        };
        assert_eq!(
            t.vfs.setattr(&user(1000), &loc, &chown, false),
            Err(Errno::EPERM)
        );
        t.vfs.setattr(&root(), &loc, &chown, false).unwrap();
        assert_eq!(t.stat("/tmp/f").unwrap().uid, 1001);
        let now = SetAttr {
            mtime: Some(TimeSet::Now),
            ..Default::default()
        };
        assert_eq!(
            t.vfs.setattr(&user(1000), &loc, &now, false),
            Err(Errno::EACCES)
        );
        let trunc = SetAttr {
            size: Some(3),
            ..Default::default()
        };
        assert_eq!(
            t.vfs.setattr(&user(1000), &loc, &trunc, false),
            Err(Errno::EACCES)
        );
        t.vfs.setattr(&user(1001), &loc, &trunc, false).unwrap();
        assert_eq!(t.stat("/tmp/f").unwrap().size, 3);
    }

    #[test]
    fn remove_errnos() {
        let t = setup();
        t.mkdir(&root(), "/d", 0o755).unwrap();
        t.creat(&root(), "/d/f", 0o644).unwrap();
        assert_eq!(t.rm(&root(), "/d", false), Err(Errno::EISDIR));
        assert_eq!(t.rm(&root(), "/d", true), Err(Errno::ENOTEMPTY));
        assert_eq!(t.rm(&root(), "/d/f", true), Err(Errno::ENOTDIR));
        assert_eq!(t.rm(&root(), "/d/f/", false), Err(Errno::ENOTDIR));
        assert_eq!(t.rm(&root(), "/d/nope", false), Err(Errno::ENOENT));
        assert_eq!(t.rm(&root(), "/d/.", true), Err(Errno::EINVAL));
        assert_eq!(t.mkdir(&root(), "/d/f", 0o755), Err(Errno::EEXIST));
        let long = format!("/d/{}", "x".repeat(256));
        assert_eq!(t.mkdir(&root(), &long, 0o755), Err(Errno::ENAMETOOLONG));
        t.rm(&root(), "/d/f", false).unwrap();
        assert_eq!(t.stat("/d/f").err(), Some(Errno::ENOENT));
        t.rm(&root(), "/d", true).unwrap();
        assert_eq!(t.stat("/d").err(), Some(Errno::ENOENT));
        // Symlink loops.
        let r = t.vfs.root();
        t.vfs
            .make_node_at(
                &t.ctx,
                &root(),
                &r,
                b"/l1",
                NewNode::Symlink {
                    target: b"/l2".to_vec(),
                },
            )
            .unwrap();
        t.vfs
            .make_node_at(
                &t.ctx,
                &root(),
                &r,
                b"/l2",
                NewNode::Symlink {
                    target: b"/l1".to_vec(),
                },
            )
            .unwrap();
        assert_eq!(
            t.open(&root(), "/l1", libc::O_RDONLY).err(),
            Some(Errno::ELOOP)
        );
        // A dangling symlink: O_CREAT creates the target.
        t.vfs
            .make_node_at(
                &t.ctx,
                &root(),
                &r,
                b"/dl",
                NewNode::Symlink {
                    target: b"made".to_vec(),
                },
            )
            .unwrap();
        t.creat(&root(), "/dl", 0o644).unwrap();
        assert!(t.stat("/made").unwrap().mode & S_IFMT == S_IFREG);
    }

    #[test]
    fn rename_moves_dentries() {
        let t = setup();
        t.mkdir(&root(), "/a", 0o755).unwrap();
        t.mkdir(&root(), "/a/b", 0o755).unwrap();
        let f = t.creat(&root(), "/a/b/f", 0o644).unwrap();
        assert_eq!(t.mv(&root(), "/a", "/a/b/c", 0), Err(Errno::EINVAL));
        assert_eq!(t.mv(&root(), "/a", "/a", 0), Ok(()));
        t.mv(&root(), "/a", "/z", 0).unwrap();
        assert_eq!(t.stat("/a").err(), Some(Errno::ENOENT));
        assert!(t.stat("/z/b/f").is_ok());
        assert_eq!(t.path_of_open(&f), "/z/b/f");
        // Replace a file; the old name's cache entry must not linger.
        t.creat(&root(), "/z/g", 0o644).unwrap();
        let ino = t.stat("/z/b/f").unwrap().ino;
        t.mv(&root(), "/z/b/f", "/z/g", 0).unwrap();
        assert_eq!(t.stat("/z/g").unwrap().ino, ino);
        assert_eq!(t.stat("/z/b/f").err(), Some(Errno::ENOENT));
        // Exchange.
        t.mkdir(&root(), "/y", 0o755).unwrap();
        t.mv(&root(), "/y", "/z/g", 2).unwrap();
        assert!(t.stat("/y").unwrap().mode & S_IFMT == S_IFREG);
        assert!(t.stat("/z/g").unwrap().mode & S_IFMT == S_IFDIR);
        assert_eq!(t.mv(&root(), "/y", "/z", 1), Err(Errno::EEXIST));
        assert_eq!(t.mv(&root(), "/z", "/y", 0), Err(Errno::ENOTDIR));
        assert_eq!(t.mv(&root(), "/y", "/z/g", 0), Err(Errno::EISDIR));
        // Across mounts: EXDEV.
        let m = t
            .vfs
            .mount_under_root(b"mnt", TmpFs::new_root(0o755, 1 << 20), false);
        let _ = m;
        t.vfs
            .make_node_at(
                &t.ctx,
                &root(),
                &t.vfs.root(),
                b"/mnt",
                NewNode::Dir { mode: 0o755 },
            )
            .unwrap_err();
        assert_eq!(t.mv(&root(), "/y", "/mnt/y", 0), Err(Errno::EXDEV));
        assert_eq!(t.rm(&root(), "/mnt", true), Err(Errno::EBUSY));
        // Hard links across mounts: EXDEV; within: nlink 2.
        let r = t.vfs.root();
        let y = t
            .vfs
            .walk(&t.ctx, &root(), &r, b"/y", &WalkOpts::nofollow())
            .unwrap();
        assert_eq!(
            t.vfs.make_node_at(
                &t.ctx,
                &root(),
                &r,
                b"/mnt/y",
                NewNode::Link { target: y.clone() }
            ),
            Err(Errno::EXDEV)
        );
        t.vfs
            .make_node_at(&t.ctx, &root(), &r, b"/y2", NewNode::Link { target: y })
            .unwrap();
        assert_eq!(t.stat("/y").unwrap().nlink, 2);
    }

    #[test]
    fn tmpfile_then_link() {
        let t = setup();
        let f = t
            .open(
                &root(),
                "/tmp",
                O_TMPFILE_BIT | libc::O_DIRECTORY | libc::O_RDWR,
            )
            .unwrap();
        assert_eq!(f.write(b"x").unwrap(), 1);
        assert_eq!(f.stat().unwrap().nlink, 0);
        let loc = f.location().unwrap().clone();
        let r = t.vfs.root();
        t.vfs
            .make_node_at(
                &t.ctx,
                &root(),
                &r,
                b"/tmp/n",
                NewNode::Link { target: loc },
            )
            .unwrap();
        assert_eq!(t.stat("/tmp/n").unwrap().size, 1);
        assert_eq!(
            t.open(
                &root(),
                "/tmp",
                O_TMPFILE_BIT | libc::O_DIRECTORY | libc::O_RDONLY
            )
            .err(),
            Some(Errno::EINVAL)
        );
    }

    #[test]
    fn read_only_mount_is_erofs() {
        let vfs = Vfs::new(TmpFs::new_root(0o755, 1 << 20), true);
        let ctx = FsContext::new(vfs.root());
        let r = vfs.root();
        assert_eq!(
            vfs.make_node_at(&ctx, &root(), &r, b"/d", NewNode::Dir { mode: 0o755 }),
            Err(Errno::EROFS)
        );
    }
}
