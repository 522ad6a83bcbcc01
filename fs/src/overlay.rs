//! overlay: a writable upper file system (a fresh tmpfs) over a read-only lower
//! one (any [`Inode`] tree, e.g. the gofer fs over the host root), with Linux
//! overlayfs semantics:
//!
//! - A name resolves to the upper entry if there is one, else to the lower one.
//!   A directory present in both layers is *merged*: its listing is the union
//!   (upper first, de-duplicated).
//! - Removing a name that the lower layer has leaves a *whiteout*: the lower
//!   entry is hidden from then on. Whiteouts are kept by the overlay (a set of
//!   names per directory, keyed by the directory's overlay inode number), not in
//!   the upper tmpfs, so the upper never holds entries the workload must not see.
//!   A directory made where a whiteout is (rmdir then mkdir) is *opaque*: the
//!   whiteout keeps the old lower directory out of it.
//! - Every modification copies the object up first: its parent chain is made in
//!   the upper (directories with their mode, owner and times), then the object
//!   (regular-file data, symlink target, device number), then mode, owner,
//!   atime and mtime. The overlay node keeps its identity (the VFS dentry cache
//!   holds it) and switches internally from the lower to the upper layer.
//! - Renaming a directory that has lower contents (a lower-only or merged one)
//!   fails with EXDEV, as Linux's overlay without `redirect_dir`: `mv` then falls
//!   back to copying. Renaming files, and directories made in the overlay, works.
//! - st_dev is the overlay's own; st_ino is the lower inode number for objects of
//!   the lower root's device (so `ls -i` agrees with the host), and a number of
//!   the overlay's otherwise (upper objects, other lower devices). Copy-up keeps
//!   the number. Merged directories report st_nlink 1, as Linux does.
//! - Directory listings are a snapshot taken at the start (offset 0) of a
//!   listing, so getdents across several calls neither repeats nor skips
//!   entries; offsets are positions in the snapshot (as Linux's overlay).
//!
//! A file opened read-only before a copy-up keeps reading the lower layer (Linux's
//! behaviour before 4.19): later writes through other descriptors are not seen by
//! it. Lower hard links are broken by copy-up (no `index` feature).
//!
//! Locking: namespace changes and copy-ups are serialized by the overlay's `ns`
//! lock; a directory's `children` lock is held while its entries are looked up
//! (both layers and the whiteouts) and while a change to them is made, so a
//! lookup never sees half of a change. Mutations may hold several `children`
//! locks (always under `ns`); lookups hold one and take no other overlay lock
//! but leaf ones.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, Weak};

use abi::linux::{Stat, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use abi::Errno;

use crate::file::{DirEntry, FileOps, FileState};
use crate::inode::{Attr, Inode, SetAttr, StatFs, TimeSet};
use crate::pipe::Pipe;
use crate::waiter::WaitQueue;
use crate::UserIo;

/// statfs f_type of an overlay (Linux's OVERLAYFS_SUPER_MAGIC).
pub const OVERLAYFS_SUPER_MAGIC: u64 = 0x794c_7630;
const RENAME_NOREPLACE: u32 = 1;
const RENAME_EXCHANGE: u32 = 2;
/// Inode numbers the overlay hands out start here; lower inode numbers below it
/// (of the lower root's device) are passed through.
const MAPPED_INO_BASE: u64 = 1 << 48;
/// Bytes copied per step of a copy-up.
const COPY_CHUNK: usize = 1 << 20;

static NEXT_DEV_MINOR: AtomicU64 = AtomicU64::new(400);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One mounted overlay.
pub struct OverlayFs {
    dev: u64,
    upper_root: Arc<dyn Inode>,
    /// st_dev of the lower root: lower inode numbers of this device pass through.
    lower_dev: u64,
    /// (is upper, st_dev, st_ino) of a layer object -> the overlay's inode number.
    inos: Mutex<HashMap<(bool, u64, u64), u64>>,
    next_ino: AtomicU64,
    /// Serializes namespace changes and copy-ups.
    ns: Mutex<()>,
    /// Hidden lower names, per directory (by the directory's overlay ino).
    whiteouts: Mutex<HashMap<u64, HashSet<Vec<u8>>>>,
}

impl OverlayFs {
    /// A new overlay of `upper` (the root of a fresh, empty, writable file
    /// system: a tmpfs) over `lower` (never modified). Returns its root.
    pub fn new_root(
        upper: Arc<dyn Inode>,
        lower: Arc<dyn Inode>,
    ) -> Result<Arc<OverlayInode>, Errno> {
        let lst = lower.stat()?;
        if lst.mode & S_IFMT != S_IFDIR || !upper.attr().is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let fs = Arc::new(OverlayFs {
            dev: abi::linux::makedev(0, NEXT_DEV_MINOR.fetch_add(1, Ordering::Relaxed) as u32),
            upper_root: upper,
            lower_dev: lst.dev,
            inos: Mutex::new(HashMap::new()),
            next_ino: AtomicU64::new(MAPPED_INO_BASE),
            ns: Mutex::new(()),
            whiteouts: Mutex::new(HashMap::new()),
        });
        // The root starts as the lower root alone (so it looks exactly like the
        // host's until something is written); its copy-up adopts the upper root.
        Ok(OverlayInode::new(&fs, None, None, Some(lower)))
    }

    fn fresh_ino(&self) -> u64 {
        self.next_ino.fetch_add(1, Ordering::Relaxed)
    }

    /// The overlay inode number of a layer object.
    fn map_ino(&self, upper: bool, dev: u64, ino: u64) -> u64 {
        if !upper && dev == self.lower_dev && ino < MAPPED_INO_BASE {
            return ino;
        }
        *lock(&self.inos)
            .entry((upper, dev, ino))
            .or_insert_with(|| self.next_ino.fetch_add(1, Ordering::Relaxed))
    }

    fn set_ino(&self, upper: bool, dev: u64, ino: u64, to: u64) {
        lock(&self.inos).insert((upper, dev, ino), to);
    }

    fn whited_out(&self, dir_ino: u64, name: &[u8]) -> bool {
        lock(&self.whiteouts)
            .get(&dir_ino)
            .is_some_and(|s| s.contains(name))
    }

    fn add_whiteout(&self, dir_ino: u64, name: &[u8]) {
        lock(&self.whiteouts)
            .entry(dir_ino)
            .or_default()
            .insert(name.to_vec());
    }

    fn whiteouts_of(&self, dir_ino: u64) -> HashSet<Vec<u8>> {
        lock(&self.whiteouts)
            .get(&dir_ino)
            .cloned()
            .unwrap_or_default()
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        let mut s = self.upper_root.statfs()?;
        s.fs_type = OVERLAYFS_SUPER_MAGIC;
        s.fsid = self.dev;
        Ok(s)
    }
}

/// The layers of a node: at least one is present. Non-directories drop the
/// lower once copied up; merged directories keep both.
#[derive(Clone, Default)]
struct Layers {
    upper: Option<Arc<dyn Inode>>,
    lower: Option<Arc<dyn Inode>>,
}

impl Layers {
    fn top(&self) -> Option<&Arc<dyn Inode>> {
        self.upper.as_ref().or(self.lower.as_ref())
    }
}

/// Where a node is: its parent and name (None for the root).
type Place = Option<(Arc<OverlayInode>, Vec<u8>)>;

/// An overlay node.
pub struct OverlayInode {
    fs: Arc<OverlayFs>,
    me: Weak<OverlayInode>,
    ino: OnceLock<u64>,
    /// st_dev of the lower directory (for its entries' inode numbers).
    lower_dev: OnceLock<u64>,
    layers: RwLock<Layers>,
    /// For copy-up (the upper parent chain is made along it).
    place: Mutex<Place>,
    /// Children looked up (or made) here, so a name keeps resolving to the same
    /// node while it lives. Also the directory's lookup lock.
    children: Mutex<HashMap<Vec<u8>, Weak<OverlayInode>>>,
    /// Unlinked or removed while still lower-only: may not be copied up.
    removed: AtomicBool,
}

fn as_ovl(i: &Arc<dyn Inode>) -> Option<&OverlayInode> {
    i.as_any().and_then(|a| a.downcast_ref::<OverlayInode>())
}

fn not_found<T>(r: Result<T, Errno>) -> Result<Option<T>, Errno> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// All entries of directory `dir` (one layer), "." and ".." included.
fn read_all(dir: &Arc<dyn Inode>) -> Result<Vec<DirEntry>, Errno> {
    let f = dir.clone().open(libc::O_RDONLY | libc::O_DIRECTORY)?;
    let mut out = Vec::new();
    let mut off = 0;
    loop {
        let ents = f.readdir(off, 32 * 1024)?;
        let Some(last) = ents.last() else {
            return Ok(out);
        };
        if last.next_off == off {
            // A file system that does not advance: stop rather than loop.
            return Ok(out);
        }
        off = last.next_off;
        out.extend(ents);
    }
}

/// Copies regular-file data from `src` to `dst` (empty, same size afterwards).
/// Chunks of zeros are skipped (holes stay holes where the upper keeps them).
fn copy_data(src: &Arc<dyn Inode>, dst: &Arc<dyn Inode>) -> Result<(), Errno> {
    let r = src.clone().open(libc::O_RDONLY)?;
    let w = dst.clone().open(libc::O_WRONLY)?;
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut off = 0u64;
    loop {
        let n = r.pread(&mut buf, off)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            let mut done = 0;
            while done < n {
                let m = w.pwrite(&buf[done..n], off + done as u64)?;
                if m == 0 {
                    return Err(Errno::EIO);
                }
                done += m;
            }
        }
        off += n as u64;
    }
    if off > 0 {
        dst.setattr(&SetAttr {
            size: Some(off),
            ..Default::default()
        })?;
    }
    Ok(())
}

impl OverlayInode {
    fn new(
        fs: &Arc<OverlayFs>,
        place: Place,
        upper: Option<Arc<dyn Inode>>,
        lower: Option<Arc<dyn Inode>>,
    ) -> Arc<OverlayInode> {
        Arc::new_cyclic(|me| OverlayInode {
            fs: fs.clone(),
            me: me.clone(),
            ino: OnceLock::new(),
            lower_dev: OnceLock::new(),
            layers: RwLock::new(Layers { upper, lower }),
            place: Mutex::new(place),
            children: Mutex::new(HashMap::new()),
            removed: AtomicBool::new(false),
        })
    }

    fn arc(&self) -> Arc<OverlayInode> {
        self.me.upgrade().expect("live overlay node")
    }

    fn layers(&self) -> Layers {
        self.layers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn upper(&self) -> Option<Arc<dyn Inode>> {
        self.layers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .upper
            .clone()
    }

    fn has_lower(&self) -> bool {
        self.layers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .lower
            .is_some()
    }

    fn top(&self) -> Result<Arc<dyn Inode>, Errno> {
        self.layers().top().cloned().ok_or(Errno::EIO)
    }

    /// The inode number, computing it (a stat) if nobody asked yet.
    fn ino_now(&self) -> u64 {
        if let Some(i) = self.ino.get() {
            return *i;
        }
        match self.stat() {
            Ok(st) => st.ino,
            Err(_) => *self.ino.get_or_init(|| self.fs.fresh_ino()),
        }
    }

    /// Whether the lower entry `name` of this directory is hidden.
    fn whited_out(&self, name: &[u8]) -> bool {
        // Whiteouts exist only in directories that were copied up.
        if self.upper().is_none() {
            return false;
        }
        self.fs.whited_out(self.ino_now(), name)
    }

    /// Looks `name` up; the caller holds this directory's `children` lock.
    fn lookup_locked(
        &self,
        kids: &mut HashMap<Vec<u8>, Weak<OverlayInode>>,
        name: &[u8],
    ) -> Result<Arc<OverlayInode>, Errno> {
        if let Some(c) = kids.get(name).and_then(Weak::upgrade) {
            return Ok(c);
        }
        let l = self.layers();
        let up = match &l.upper {
            Some(u) => not_found(u.lookup(name))?,
            None => None,
        };
        let mut low = None;
        if up.as_ref().is_none_or(|u| u.attr().is_dir()) {
            if let Some(ld) = &l.lower {
                if !self.whited_out(name) {
                    low = not_found(ld.lookup(name))?;
                }
            }
        }
        if up.is_some() && low.as_ref().is_some_and(|x| !x.attr().is_dir()) {
            // A directory over a lower non-directory: nothing to merge.
            low = None;
        }
        if up.is_none() && low.is_none() {
            return Err(Errno::ENOENT);
        }
        let node = OverlayInode::new(&self.fs, Some((self.arc(), name.to_vec())), up, low);
        Self::remember(kids, name, &node);
        Ok(node)
    }

    fn remember(
        kids: &mut HashMap<Vec<u8>, Weak<OverlayInode>>,
        name: &[u8],
        node: &Arc<OverlayInode>,
    ) {
        if kids.len() >= 64 && kids.len().is_power_of_two() {
            kids.retain(|_, w| w.strong_count() > 0);
        }
        kids.insert(name.to_vec(), Arc::downgrade(node));
    }

    fn child(&self, name: &[u8]) -> Result<Arc<OverlayInode>, Errno> {
        let mut kids = lock(&self.children);
        self.lookup_locked(&mut kids, name)
    }

    fn child_opt(&self, name: &[u8]) -> Result<Option<Arc<OverlayInode>>, Errno> {
        not_found(self.child(name))
    }

    /// Copies the node up (with its parent chain) unless it is up already, and
    /// returns its upper node. `data`: copy a regular file's contents (not when
    /// it is about to be truncated to nothing). The caller holds `fs.ns`.
    fn copy_up(&self, data: bool) -> Result<Arc<dyn Inode>, Errno> {
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        if self.removed.load(Ordering::Acquire) {
            return Err(Errno::ENOENT);
        }
        let lower = self.layers().lower.ok_or(Errno::EIO)?;
        let st = lower.stat()?;
        let ino = *self
            .ino
            .get_or_init(|| self.fs.map_ino(false, st.dev, st.ino));
        let is_dir = st.mode & S_IFMT == S_IFDIR;
        let times = SetAttr {
            atime: Some(TimeSet::At(st.atime)),
            mtime: Some(TimeSet::At(st.mtime)),
            ..Default::default()
        };
        let place = lock(&self.place).clone();
        let upper = match place {
            None => {
                let u = self.fs.upper_root.clone();
                u.setattr(&SetAttr {
                    mode: Some(st.mode & 0o7777),
                    uid: Some(st.uid),
                    gid: Some(st.gid),
                    ..times
                })?;
                u
            }
            Some((parent, name)) => {
                let pu = parent.copy_up(true)?;
                let _kids = lock(&parent.children);
                // A copy-up changes nothing the workload sees in the parent:
                // its times are put back afterwards (as Linux does).
                let pst = pu.stat()?;
                let (m, uid, gid) = (st.mode & 0o7777, st.uid, st.gid);
                let u = match st.mode & S_IFMT {
                    S_IFDIR => pu.mkdir(&name, m, uid, gid)?,
                    S_IFREG => {
                        let u = pu.create(&name, m, uid, gid)?;
                        if data {
                            if let Err(e) = copy_data(&lower, &u) {
                                let _ = pu.unlink(&name);
                                return Err(e);
                            }
                        }
                        u
                    }
                    S_IFLNK => {
                        let target = lower.readlink()?;
                        pu.symlink(&name, &target, uid, gid)?
                    }
                    _ => pu.mknod(&name, st.mode, st.rdev, uid, gid)?,
                };
                // Owner (a set-group-ID parent may have changed the group),
                // the set-ID bits and the times.
                let meta = SetAttr {
                    mode: Some(m),
                    uid: Some(uid),
                    gid: Some(gid),
                    ..times
                };
                if let Err(e) = u.setattr(&meta) {
                    let _ = if is_dir {
                        pu.rmdir(&name)
                    } else {
                        pu.unlink(&name)
                    };
                    return Err(e);
                }
                let _ = pu.setattr(&SetAttr {
                    atime: Some(TimeSet::At(pst.atime)),
                    mtime: Some(TimeSet::At(pst.mtime)),
                    ..Default::default()
                });
                u
            }
        };
        // The lower's extended attributes come along (those the upper can hold).
        if let Ok(names) = lower.listxattr() {
            for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
                if let Ok(v) = lower.getxattr(name) {
                    let _ = upper.setxattr(name, &v, 0);
                }
            }
        }
        if let Ok(ust) = upper.stat() {
            self.fs.set_ino(true, ust.dev, ust.ino, ino);
        }
        let mut l = self.layers.write().unwrap_or_else(|e| e.into_inner());
        l.upper = Some(upper.clone());
        if !is_dir {
            l.lower = None;
        }
        Ok(upper)
    }

    /// The merged listing: ".", "..", upper entries, then the lower entries not
    /// in the upper and not whited out. Inode numbers are the overlay's.
    fn list(&self) -> Result<Vec<DirEntry>, Errno> {
        // The lower directory's device (its entries' inode numbers are of it),
        // found once; the same stat gives a lower-only directory its number.
        let lower_dev = match self.layers() {
            Layers {
                lower: Some(ld),
                upper,
            } => Some(match self.lower_dev.get() {
                Some(d) => *d,
                None => {
                    let st = ld.stat()?;
                    if upper.is_none() {
                        self.ino
                            .get_or_init(|| self.fs.map_ino(false, st.dev, st.ino));
                    }
                    *self.lower_dev.get_or_init(|| st.dev)
                }
            }),
            _ => None,
        };
        let self_ino = self.ino_now();
        let parent = lock(&self.place).as_ref().map(|(p, _)| p.clone());
        let parent_ino = parent.map_or(self_ino, |p| p.ino_now());
        let _kids = lock(&self.children);
        let l = self.layers();
        let dt = abi::linux::dtype_of_mode(S_IFDIR);
        let mut out = vec![
            DirEntry {
                ino: self_ino,
                next_off: 0,
                dtype: dt,
                name: b".".to_vec(),
            },
            DirEntry {
                ino: parent_ino,
                next_off: 0,
                dtype: dt,
                name: b"..".to_vec(),
            },
        ];
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        if let Some(u) = &l.upper {
            let dev = u.stat()?.dev;
            for mut e in read_all(u)? {
                if e.name == b"." || e.name == b".." {
                    continue;
                }
                e.ino = self.fs.map_ino(true, dev, e.ino);
                seen.insert(e.name.clone());
                out.push(e);
            }
        }
        if let Some(ld) = &l.lower {
            let wo = if l.upper.is_some() {
                self.fs.whiteouts_of(self_ino)
            } else {
                HashSet::new()
            };
            let dev = lower_dev.ok_or(Errno::EIO)?;
            for mut e in read_all(ld)? {
                if e.name == b"." || e.name == b".." || seen.contains(&e.name) {
                    continue;
                }
                if wo.contains(&e.name) {
                    continue;
                }
                e.ino = self.fs.map_ino(false, dev, e.ino);
                out.push(e);
            }
        }
        for (i, e) in out.iter_mut().enumerate() {
            e.next_off = i as u64 + 1;
        }
        Ok(out)
    }

    /// Whether the directory is empty in the merged view.
    fn is_empty_dir(&self) -> Result<bool, Errno> {
        Ok(self.list()?.len() <= 2)
    }

    /// Adds a new node made by `make` (in this directory's upper) as `name`.
    fn add_new(
        &self,
        name: &[u8],
        make: impl FnOnce(&Arc<dyn Inode>) -> Result<Arc<dyn Inode>, Errno>,
    ) -> Result<Arc<dyn Inode>, Errno> {
        let _ns = lock(&self.fs.ns);
        if self.removed.load(Ordering::Acquire) {
            return Err(Errno::ENOENT);
        }
        let du = self.copy_up(true)?;
        let mut kids = lock(&self.children);
        let u = make(&du)?;
        let node = OverlayInode::new(&self.fs, Some((self.arc(), name.to_vec())), Some(u), None);
        Self::remember(&mut kids, name, &node);
        Ok(node)
    }

    /// After `name` was removed from this directory (in the upper, if it was
    /// there): hides the lower entry of that name.
    fn hide_lower(&self, name: &[u8]) {
        if self.has_lower() {
            // Unconditional: a whiteout over a name the lower lacks hides nothing.
            self.fs.add_whiteout(self.ino_now(), name);
            // The directory changed even if only a lower entry went.
            if let Some(u) = self.upper() {
                let _ = u.setattr(&SetAttr {
                    mtime: Some(TimeSet::Now),
                    ..Default::default()
                });
            }
        }
    }

    fn remove(&self, name: &[u8], dir: bool) -> Result<(), Errno> {
        let _ns = lock(&self.fs.ns);
        let child = self.child(name)?;
        let a = child.attr();
        if dir && !a.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if !dir && a.is_dir() {
            return Err(Errno::EISDIR);
        }
        if dir && !child.is_empty_dir()? {
            return Err(Errno::ENOTEMPTY);
        }
        if self.has_lower() {
            // The whiteout needs this directory in the upper.
            self.copy_up(true)?;
        }
        let mut kids = lock(&self.children);
        if child.upper().is_some() {
            let du = self.upper().ok_or(Errno::EIO)?;
            if dir {
                du.rmdir(name)?;
            } else {
                du.unlink(name)?;
            }
        }
        self.hide_lower(name);
        if dir || child.upper().is_none() {
            child.removed.store(true, Ordering::Release);
        }
        if kids
            .get(name)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&child)))
        {
            kids.remove(name);
        }
        Ok(())
    }
}

impl Inode for OverlayInode {
    fn attr(&self) -> Attr {
        self.layers().top().map(|i| i.attr()).unwrap_or_default()
    }

    fn stat(&self) -> Result<Stat, Errno> {
        let l = self.layers();
        let (mut st, from_upper) = match (&l.upper, &l.lower) {
            (Some(u), _) => (u.stat()?, true),
            (None, Some(lo)) => (lo.stat()?, false),
            (None, None) => return Err(Errno::EIO),
        };
        let ino = *self
            .ino
            .get_or_init(|| self.fs.map_ino(from_upper, st.dev, st.ino));
        if from_upper && l.lower.is_some() && st.mode & S_IFMT == S_IFDIR {
            // As Linux: counting the merged subdirectories is not worth it.
            st.nlink = 1;
        }
        st.dev = self.fs.dev;
        st.ino = ino;
        Ok(st)
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Ok(self.child(name)?)
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        self.top()?.readlink()
    }

    fn open(self: Arc<Self>, flags: i32) -> Result<Box<dyn FileOps>, Errno> {
        let a = self.attr();
        if a.is_dir() {
            return Ok(Box::new(OverlayDirFile {
                node: self,
                snapshot: Mutex::new(None),
            }));
        }
        let writing = flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0;
        let (layer, upper) = if writing && a.is_regular() {
            let _ns = lock(&self.fs.ns);
            (self.copy_up(flags & libc::O_TRUNC == 0)?, true)
        } else {
            let l = self.layers();
            match (l.upper, l.lower) {
                (Some(u), _) => (u, true),
                (None, Some(lo)) => (lo, false),
                (None, None) => return Err(Errno::EIO),
            }
        };
        let inner = layer.open(flags)?;
        Ok(Box::new(OverlayFile {
            inner,
            node: self,
            upper,
        }))
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        self.fs.statfs()
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }

    fn create(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        self.add_new(name, |d| d.create(name, mode, uid, gid))
    }

    fn mkdir(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        self.add_new(name, |d| d.mkdir(name, mode, uid, gid))
    }

    fn mknod(
        &self,
        name: &[u8],
        mode: u32,
        rdev: u64,
        uid: u32,
        gid: u32,
    ) -> Result<Arc<dyn Inode>, Errno> {
        self.add_new(name, |d| d.mknod(name, mode, rdev, uid, gid))
    }

    fn tmpfile(
        &self,
        mode: u32,
        uid: u32,
        gid: u32,
        linkable: bool,
    ) -> Result<Arc<dyn Inode>, Errno> {
        let _ns = lock(&self.fs.ns);
        let du = self.copy_up(true)?;
        let u = du.tmpfile(mode, uid, gid, linkable)?;
        // An upper-only node: it never needs its place.
        Ok(OverlayInode::new(&self.fs, None, Some(u), None))
    }

    fn symlink(
        &self,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<Arc<dyn Inode>, Errno> {
        self.add_new(name, |d| d.symlink(name, target, uid, gid))
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> Result<(), Errno> {
        let t = as_ovl(target).ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&t.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        if t.attr().is_dir() {
            return Err(Errno::EPERM);
        }
        let t = t.arc();
        let _ns = lock(&self.fs.ns);
        let tu = t.copy_up(true)?;
        let du = self.copy_up(true)?;
        let mut kids = lock(&self.children);
        du.link(name, &tu)?;
        Self::remember(&mut kids, name, &t);
        Ok(())
    }

    fn unlink(&self, name: &[u8]) -> Result<(), Errno> {
        self.remove(name, false)
    }

    fn rmdir(&self, name: &[u8]) -> Result<(), Errno> {
        self.remove(name, true)
    }

    fn rename(
        &self,
        old_name: &[u8],
        new_dir: &Arc<dyn Inode>,
        new_name: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        let nd = as_ovl(new_dir).ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&nd.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        let nd = nd.arc();
        let same_dir = std::ptr::eq(Arc::as_ptr(&nd), self);
        let _ns = lock(&self.fs.ns);
        let exchange = flags & RENAME_EXCHANGE != 0;
        let src = self.child(old_name)?;
        let dst = nd.child_opt(new_name)?;
        if exchange && dst.is_none() {
            return Err(Errno::ENOENT);
        }
        if let Some(d) = &dst {
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            // Two names of one file (hard links): nothing happens.
            let same_upper = match (src.upper(), d.upper()) {
                (Some(a), Some(b)) => std::ptr::addr_eq(Arc::as_ptr(&a), Arc::as_ptr(&b)),
                _ => false,
            };
            if Arc::ptr_eq(d, &src) || same_upper {
                return Ok(());
            }
        }
        let s_dir = src.attr().is_dir();
        // Without redirect_dir a directory with lower contents cannot move.
        if s_dir && src.has_lower() {
            return Err(Errno::EXDEV);
        }
        if let Some(d) = &dst {
            let d_dir = d.attr().is_dir();
            if exchange {
                if d_dir && d.has_lower() {
                    return Err(Errno::EXDEV);
                }
            } else {
                match (s_dir, d_dir) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) if !d.is_empty_dir()? => return Err(Errno::ENOTEMPTY),
                    _ => {}
                }
            }
        }
        let su = self.copy_up(true)?;
        let nu = nd.copy_up(true)?;
        src.copy_up(true)?;
        if let Some(d) = &dst {
            if exchange {
                d.copy_up(true)?;
            }
        }
        let mut kids = lock(&self.children);
        let mut nkids = if same_dir {
            None
        } else {
            Some(lock(&nd.children))
        };
        // A replaced lower-only target has no upper entry: the upper rename
        // just adds the name (NOREPLACE was checked above).
        su.rename(old_name, &nu, new_name, flags & !RENAME_NOREPLACE)?;
        self.hide_lower(old_name);
        nd.hide_lower(new_name);
        kids.remove(old_name);
        if let Some(d) = &dst {
            if exchange {
                *lock(&d.place) = Some((self.arc(), old_name.to_vec()));
                Self::remember(&mut kids, old_name, d);
            } else if d.attr().is_dir() || d.upper().is_none() {
                d.removed.store(true, Ordering::Release);
            }
        }
        *lock(&src.place) = Some((nd.clone(), new_name.to_vec()));
        match &mut nkids {
            Some(nk) => Self::remember(nk, new_name, &src),
            None => Self::remember(&mut kids, new_name, &src),
        }
        Ok(())
    }

    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno> {
        let _ns = lock(&self.fs.ns);
        let truncating = attr.size == Some(0) && self.upper().is_none();
        self.copy_up(!truncating)?.setattr(attr)
    }

    fn allocate(&self, off: u64, len: u64, keep_size: bool) -> Result<(), Errno> {
        let _ns = lock(&self.fs.ns);
        self.copy_up(true)?.allocate(off, len, keep_size)
    }

    // Extended attributes: read from the current layer; a change copies up
    // first (the copy-up brings the lower's xattrs along).

    fn getxattr(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        let l = self.layers();
        match (l.upper, l.lower) {
            (Some(u), _) => u.getxattr(name),
            (None, Some(lo)) => lo.getxattr(name),
            (None, None) => Err(Errno::ENODATA),
        }
    }

    fn listxattr(&self) -> Result<Vec<u8>, Errno> {
        let l = self.layers();
        match (l.upper, l.lower) {
            (Some(u), _) => u.listxattr(),
            (None, Some(lo)) => lo.listxattr(),
            (None, None) => Ok(Vec::new()),
        }
    }

    fn setxattr(&self, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno> {
        let _ns = lock(&self.fs.ns);
        self.copy_up(true)?.setxattr(name, value, flags)
    }

    fn removexattr(&self, name: &[u8]) -> Result<(), Errno> {
        let _ns = lock(&self.fs.ns);
        if self.upper().is_none() {
            // Nothing to remove: no copy-up for an error.
            self.getxattr(name)?;
        }
        self.copy_up(true)?.removexattr(name)
    }
}

/// An open non-directory: the layer's own file, with the overlay's st_dev and
/// st_ino.
struct OverlayFile {
    inner: Box<dyn FileOps>,
    node: Arc<OverlayInode>,
    /// Whether `inner` is of the upper layer.
    upper: bool,
}

impl FileOps for OverlayFile {
    fn read(&self, st: &FileState, buf: &mut [u8]) -> Result<usize, Errno> {
        self.inner.read(st, buf)
    }
    fn write(&self, st: &FileState, buf: &[u8]) -> Result<usize, Errno> {
        self.inner.write(st, buf)
    }
    fn pread(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        self.inner.pread(buf, off)
    }
    fn pwrite(&self, buf: &[u8], off: u64) -> Result<usize, Errno> {
        self.inner.pwrite(buf, off)
    }
    fn seekable(&self) -> bool {
        self.inner.seekable()
    }
    fn lseek(&self, st: &FileState, off: i64, whence: i32) -> Result<u64, Errno> {
        self.inner.lseek(st, off, whence)
    }
    fn stat(&self) -> Result<Stat, Errno> {
        let mut st = self.inner.stat()?;
        let fs = &self.node.fs;
        st.ino = *self
            .node
            .ino
            .get_or_init(|| fs.map_ino(self.upper, st.dev, st.ino));
        st.dev = fs.dev;
        Ok(st)
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        self.node.fs.statfs()
    }
    fn is_dir(&self) -> bool {
        false
    }
    fn ioctl(&self, st: &FileState, io: &dyn UserIo, cmd: u32, arg: u64) -> Result<u64, Errno> {
        self.inner.ioctl(st, io, cmd, arg)
    }
    fn flags_changed(&self, flags: i32) -> Result<(), Errno> {
        self.inner.flags_changed(flags)
    }
    fn host_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.inner.host_fd()
    }
    fn readiness(&self, mask: u32) -> u32 {
        self.inner.readiness(mask)
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        self.inner.wait_queue()
    }
    fn pipe(&self) -> Option<&Pipe> {
        self.inner.pipe()
    }
    fn supports_fasync(&self) -> bool {
        self.inner.supports_fasync()
    }
    fn fsync(&self, datasync: bool) -> Result<(), Errno> {
        self.inner.fsync(datasync)
    }
    fn fallocate(&self, mode: i32, off: u64, len: u64) -> Option<Result<(), Errno>> {
        self.inner.fallocate(mode, off, len)
    }
    fn page_store(&self) -> Option<Arc<crate::pagestore::PageStore>> {
        self.inner.page_store()
    }
    fn read_timeout(&self) -> Option<std::time::Duration> {
        self.inner.read_timeout()
    }
    fn terminal(&self) -> Option<(&Arc<crate::devpts::Terminal>, bool)> {
        self.inner.terminal()
    }
    fn socket(&self) -> Option<&crate::socket::SocketFile> {
        self.inner.socket()
    }
}

/// An open overlay directory: listed from a snapshot of the merged entries,
/// taken when a listing starts (offset 0).
struct OverlayDirFile {
    node: Arc<OverlayInode>,
    snapshot: Mutex<Option<Arc<Vec<DirEntry>>>>,
}

impl FileOps for OverlayDirFile {
    fn stat(&self) -> Result<Stat, Errno> {
        self.node.stat()
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        self.node.fs.statfs()
    }
    fn is_dir(&self) -> bool {
        true
    }
    fn readdir(&self, off: u64, max_bytes: usize) -> Result<Vec<DirEntry>, Errno> {
        let snap = {
            let mut s = lock(&self.snapshot);
            match &*s {
                Some(v) if off != 0 => v.clone(),
                _ => {
                    let v = Arc::new(self.node.list()?);
                    *s = Some(v.clone());
                    v
                }
            }
        };
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for e in snap.iter().skip(usize::try_from(off).unwrap_or(usize::MAX)) {
            if bytes > max_bytes {
                break;
            }
            bytes += 24 + e.name.len();
            out.push(e.clone());
        }
        Ok(out)
    }
}
