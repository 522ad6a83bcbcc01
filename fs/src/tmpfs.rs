//! tmpfs: a writable in-memory file system (directories, regular files, symlinks,
//! hard links, FIFO/socket/device nodes).
//!
//! File data lives in the MemoryFile, a page at a time ([`PageStore`]): sparse
//! files allocate nothing for holes, and the memory manager maps the same pages
//! for MAP_SHARED, so mappings, read(2) and write(2) are coherent. The mount's
//! size limit counts allocated pages. memfd_create files are O_TMPFILE files of
//! the sandbox's /dev/shm tmpfs; their seals live in the page store.
//!
//! Known differences from Linux (see also `sentry::mm`):
//! - MAP_PRIVATE mappings copy the file at mmap time: later writes to the file
//!   do not show through pages the mapping has not written (Linux shows them
//!   until copy-on-write).
//! - A fault on a shared mapping allocates up to 64 pages ahead (fault-around),
//!   so st_blocks of a file filled through a mapping may be larger than Linux's.
//! - After a truncate, the truncating process's mappings lose the pages past the
//!   new end at once (SIGBUS on access); other processes re-map theirs the next
//!   time one of their threads enters the sentry (a syscall, fault or signal),
//!   and until then still see the old pages (stale, but never another file's
//!   memory: removed pages are freed only when the file's last mapping goes).
//!   The ptrace platform updates an address space only from its own threads.
//!
//! Locking: every namespace change (create, unlink, rename, link) takes the
//! file system's `ns` lock first, then the directories' entry locks one at a time,
//! so two directory locks are never held in conflicting orders.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use abi::linux::{Stat, Timespec, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use abi::Errno;

use crate::file::{generic_lseek, DirEntry, FileOps, FileState};
use crate::inode::{Attr, Inode, SetAttr, StatFs, TimeSet};
use crate::pagestore::{PageStore, Quota};
use crate::synthetic::TMPFS_MAGIC;

/// Default size limit of a tmpfs mount.
pub const DEFAULT_LIMIT: u64 = 256 << 20;
pub const RENAME_NOREPLACE: u32 = 1;
pub const RENAME_EXCHANGE: u32 = 2;
use crate::pagestore::{MAX_FILE_SIZE, PAGE};

static NEXT_DEV_MINOR: AtomicU64 = AtomicU64::new(300);

pub(crate) fn now() -> Timespec {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timespec {
        sec: d.as_secs() as i64,
        nsec: d.subsec_nanos() as i64,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One mounted tmpfs instance.
pub struct TmpFs {
    dev: u64,
    next_ino: AtomicU64,
    /// The size limit: allocated file pages are charged to it.
    quota: Arc<Quota>,
    /// Serializes namespace changes.
    ns: Mutex<()>,
}

impl TmpFs {
    /// A new tmpfs with root directory mode `mode` (permission bits) owned by root.
    /// `limit` is the data size limit in bytes.
    pub fn new_root(mode: u32, limit: u64) -> Arc<TmpInode> {
        let fs = Arc::new(TmpFs {
            dev: abi::linux::makedev(0, NEXT_DEV_MINOR.fetch_add(1, Ordering::Relaxed) as u32),
            next_ino: AtomicU64::new(1),
            quota: Quota::new(limit),
            ns: Mutex::new(()),
        });
        let root = TmpInode::new(&fs, S_IFDIR | (mode & 0o7777), 0, 0, 0, Kind::new_dir(0));
        if let Kind::Dir(d) = &root.kind {
            lock(d).parent_ino = root.ino;
        }
        root
    }
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    rdev: u64,
    atime: Timespec,
    mtime: Timespec,
    ctime: Timespec,
}

struct DirData {
    /// Entries by readdir offset (offsets start at 2; 0 and 1 are "." and "..").
    entries: BTreeMap<u64, (Vec<u8>, Arc<TmpInode>)>,
    by_name: HashMap<Vec<u8>, u64>,
    next_off: u64,
    parent_ino: u64,
}

impl DirData {
    fn get(&self, name: &[u8]) -> Option<Arc<TmpInode>> {
        self.by_name
            .get(name)
            .and_then(|o| self.entries.get(o))
            .map(|(_, i)| i.clone())
    }
    fn insert(&mut self, name: &[u8], inode: Arc<TmpInode>) {
        let off = self.next_off;
        self.next_off += 1;
        self.entries.insert(off, (name.to_vec(), inode));
        self.by_name.insert(name.to_vec(), off);
    }
    fn remove(&mut self, name: &[u8]) -> Option<Arc<TmpInode>> {
        let off = self.by_name.remove(name)?;
        self.entries.remove(&off).map(|(_, i)| i)
    }
    /// Replaces the node under an existing name, keeping its offset.
    fn replace(&mut self, name: &[u8], inode: Arc<TmpInode>) {
        if let Some(off) = self.by_name.get(name) {
            if let Some(e) = self.entries.get_mut(off) {
                e.1 = inode;
            }
        }
    }
}

enum Kind {
    Dir(Mutex<DirData>),
    File(Arc<PageStore>),
    Symlink(Vec<u8>),
    /// A named pipe.
    Fifo(crate::pipe::Fifo),
    /// FIFO, socket, character or block device.
    Node,
}

impl Kind {
    fn new_dir(parent_ino: u64) -> Kind {
        Kind::Dir(Mutex::new(DirData {
            entries: BTreeMap::new(),
            by_name: HashMap::new(),
            next_off: 2,
            parent_ino,
        }))
    }
}

/// A tmpfs node.
pub struct TmpInode {
    fs: Arc<TmpFs>,
    ino: u64,
    me: Weak<TmpInode>,
    meta: Mutex<Meta>,
    kind: Kind,
    /// An O_TMPFILE file (no name yet) that linkat may name.
    linkable: std::sync::atomic::AtomicBool,
    /// Extended attributes ("user." and "trusted." names), in name order.
    xattrs: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

/// The xattr namespaces tmpfs stores (Linux tmpfs: trusted.* always, user.* since 6.6).
const XATTR_PREFIXES: [&[u8]; 2] = [b"user.", b"trusted."];

fn as_tmp(i: &Arc<dyn Inode>) -> Option<&TmpInode> {
    i.as_any().and_then(|a| a.downcast_ref::<TmpInode>())
}

impl TmpInode {
    fn new(fs: &Arc<TmpFs>, mode: u32, uid: u32, gid: u32, rdev: u64, kind: Kind) -> Arc<TmpInode> {
        let t = now();
        let nlink = if mode & S_IFMT == S_IFDIR { 2 } else { 1 };
        Arc::new_cyclic(|me| TmpInode {
            fs: fs.clone(),
            ino: fs.next_ino.fetch_add(1, Ordering::Relaxed),
            me: me.clone(),
            meta: Mutex::new(Meta {
                mode,
                uid,
                gid,
                nlink,
                rdev,
                atime: t,
                mtime: t,
                ctime: t,
            }),
            kind,
            linkable: std::sync::atomic::AtomicBool::new(false),
            xattrs: Mutex::new(BTreeMap::new()),
        })
    }

    fn arc(&self) -> Arc<TmpInode> {
        self.me.upgrade().expect("live inode")
    }

    fn dir(&self) -> Result<&Mutex<DirData>, Errno> {
        match &self.kind {
            Kind::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir(_))
    }

    fn touch_dir(&self, nlink_delta: i64) {
        let t = now();
        let mut m = lock(&self.meta);
        m.mtime = t;
        m.ctime = t;
        m.nlink = (m.nlink as i64 + nlink_delta).max(0) as u64;
    }

    fn change_nlink(&self, delta: i64) {
        let mut m = lock(&self.meta);
        m.nlink = (m.nlink as i64 + delta).max(0) as u64;
        m.ctime = now();
    }

    /// Adds a new node called `name` (EEXIST if taken).
    fn add_new(
        &self,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
        rdev: u64,
        kind: Kind,
    ) -> Result<Arc<dyn Inode>, Errno> {
        let _ns = lock(&self.fs.ns);
        let d = self.dir()?;
        let mut dd = lock(d);
        if dd.by_name.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        if lock(&self.meta).nlink == 0 {
            // The directory was removed.
            return Err(Errno::ENOENT);
        }
        // The set-group-ID bit on a directory: new nodes inherit its group
        // (and new directories the bit).
        let (pmode, pgid) = {
            let m = lock(&self.meta);
            (m.mode, m.gid)
        };
        let (gid, mode) = if pmode & 0o2000 != 0 {
            let mode = if mode & S_IFMT == S_IFDIR {
                mode | 0o2000
            } else {
                mode
            };
            (pgid, mode)
        } else {
            (gid, mode)
        };
        let is_dir = mode & S_IFMT == S_IFDIR;
        let inode = TmpInode::new(&self.fs, mode, uid, gid, rdev, kind);
        if let Kind::Dir(nd) = &inode.kind {
            lock(nd).parent_ino = self.ino;
        }
        dd.insert(name, inode.clone());
        drop(dd);
        self.touch_dir(if is_dir { 1 } else { 0 });
        Ok(inode)
    }

    /// relatime: atime moves only if it is not newer than mtime/ctime, or is a
    /// day old.
    fn touch_atime(&self) {
        let t = now();
        let mut m = lock(&self.meta);
        let key = |x: &Timespec| (x.sec, x.nsec);
        if key(&m.atime) <= key(&m.mtime)
            || key(&m.atime) <= key(&m.ctime)
            || t.sec - m.atime.sec >= 24 * 3600
        {
            m.atime = t;
        }
    }

    fn file_data(&self) -> Option<&Arc<PageStore>> {
        match &self.kind {
            Kind::File(d) => Some(d),
            _ => None,
        }
    }

    fn size(&self) -> u64 {
        match &self.kind {
            Kind::File(d) => d.size(),
            Kind::Symlink(t) => t.len() as u64,
            // As Linux's tmpfs: a bogus 20 bytes per entry, "." and ".." included.
            Kind::Dir(d) => 20 * (2 + lock(d).entries.len() as u64),
            Kind::Node | Kind::Fifo(_) => 0,
        }
    }

    fn truncate(&self, size: u64) -> Result<(), Errno> {
        let d = self.file_data().ok_or(Errno::EINVAL)?;
        if size > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        d.truncate(size)?;
        // truncate(2) updates mtime/ctime even when the size does not change only
        // via open(O_TRUNC); do it whenever asked, as tmpfs does for a change.
        let t = now();
        let mut m = lock(&self.meta);
        m.mtime = t;
        m.ctime = t;
        Ok(())
    }

    fn read_data(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        let d = self.file_data().ok_or(Errno::EINVAL)?;
        let n = d.read(buf, off);
        self.touch_atime();
        Ok(n)
    }

    fn write_data(&self, buf: &[u8], off: u64, append: bool) -> Result<(usize, u64), Errno> {
        let d = self.file_data().ok_or(Errno::EINVAL)?;
        let (n, end) = d.write(buf, off, append)?;
        if n == 0 {
            return Ok((0, end));
        }
        let t = now();
        let mut m = lock(&self.meta);
        m.mtime = t;
        m.ctime = t;
        // TODO: a write by a caller without CAP_FSETID should clear set-user-ID
        // (and group-executable set-group-ID); the writer's credentials are not
        // known here yet.
        Ok((n, end))
    }

    fn make_stat(&self) -> Stat {
        let size = self.size();
        let m = lock(&self.meta);
        Stat {
            dev: self.fs.dev,
            ino: self.ino,
            nlink: m.nlink,
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            rdev: m.rdev,
            size: size as i64,
            blksize: PAGE as i64,
            blocks: match &self.kind {
                Kind::File(d) => d.blocks() as i64,
                _ => (size.div_ceil(PAGE) * (PAGE / 512)) as i64,
            },
            atime: m.atime,
            mtime: m.mtime,
            ctime: m.ctime,
        }
    }
}

fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(Errno::EINVAL);
    }
    if name.len() > crate::NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

impl Inode for TmpInode {
    fn attr(&self) -> Attr {
        let m = lock(&self.meta);
        Attr {
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
        }
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.make_stat())
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        let d = self.dir()?;
        match lock(d).get(name) {
            Some(i) => Ok(i),
            None => Err(Errno::ENOENT),
        }
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        match &self.kind {
            Kind::Symlink(t) => {
                self.touch_atime();
                Ok(t.clone())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn open(self: Arc<Self>, flags: i32) -> Result<Box<dyn FileOps>, Errno> {
        match &self.kind {
            Kind::Dir(_) => Ok(Box::new(TmpDirFile { dir: self })),
            Kind::File(_) => Ok(Box::new(TmpFile { inode: self })),
            Kind::Symlink(_) => Err(Errno::ELOOP),
            Kind::Fifo(f) => {
                let a = self.attr();
                f.open(flags, a.uid, a.gid)
            }
            Kind::Node => {
                // Device nodes on tmpfs are not openable (no devices behind them);
                // sockets are ENXIO in the VFS already.
                Err(Errno::ENXIO)
            }
        }
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        let blocks = self.fs.quota.limit() / PAGE;
        let used = self.fs.quota.used() / PAGE;
        let free = blocks.saturating_sub(used);
        Ok(StatFs {
            fs_type: TMPFS_MAGIC,
            bsize: PAGE,
            blocks,
            bfree: free,
            bavail: free,
            files: 1 << 20,
            ffree: (1u64 << 20).saturating_sub(self.fs.next_ino.load(Ordering::Relaxed)),
            fsid: self.fs.dev,
            namelen: crate::NAME_MAX as u64,
            frsize: PAGE,
            flags: 0,
        })
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }

    fn create(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        check_name(name)?;
        let mode = S_IFREG | (mode & 0o7777);
        self.add_new(
            name,
            mode,
            uid,
            gid,
            0,
            Kind::File(PageStore::new(self.fs.quota.clone())),
        )
    }

    fn tmpfile(
        &self,
        mode: u32,
        uid: u32,
        gid: u32,
        linkable: bool,
    ) -> Result<Arc<dyn Inode>, Errno> {
        self.dir()?;
        let i = TmpInode::new(
            &self.fs,
            S_IFREG | (mode & 0o7777),
            uid,
            gid,
            0,
            Kind::File(PageStore::new(self.fs.quota.clone())),
        );
        lock(&i.meta).nlink = 0;
        i.linkable.store(linkable, Ordering::Relaxed);
        Ok(i)
    }

    fn mkdir(&self, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Arc<dyn Inode>, Errno> {
        check_name(name)?;
        let mode = S_IFDIR | (mode & 0o7777);
        self.add_new(name, mode, uid, gid, 0, Kind::new_dir(self.ino))
    }

    fn mknod(
        &self,
        name: &[u8],
        mode: u32,
        rdev: u64,
        uid: u32,
        gid: u32,
    ) -> Result<Arc<dyn Inode>, Errno> {
        check_name(name)?;
        match mode & S_IFMT {
            0 | S_IFREG => return self.create(name, mode, uid, gid),
            S_IFDIR => return self.mkdir(name, mode, uid, gid),
            S_IFLNK => return Err(Errno::EINVAL),
            _ => {}
        }
        let kind = if mode & S_IFMT == abi::linux::S_IFIFO {
            Kind::Fifo(Default::default())
        } else {
            Kind::Node
        };
        self.add_new(name, mode, uid, gid, rdev, kind)
    }

    fn symlink(
        &self,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<Arc<dyn Inode>, Errno> {
        check_name(name)?;
        self.add_new(
            name,
            S_IFLNK | 0o777,
            uid,
            gid,
            0,
            Kind::Symlink(target.to_vec()),
        )
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> Result<(), Errno> {
        check_name(name)?;
        let t = as_tmp(target).ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&t.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        if t.is_dir() {
            return Err(Errno::EPERM);
        }
        let _ns = lock(&self.fs.ns);
        if lock(&t.meta).nlink == 0 && !t.linkable.swap(false, Ordering::Relaxed) {
            return Err(Errno::ENOENT);
        }
        let d = self.dir()?;
        let mut dd = lock(d);
        if dd.by_name.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        dd.insert(name, t.arc());
        drop(dd);
        t.change_nlink(1);
        self.touch_dir(0);
        Ok(())
    }

    fn unlink(&self, name: &[u8]) -> Result<(), Errno> {
        let _ns = lock(&self.fs.ns);
        let d = self.dir()?;
        let mut dd = lock(d);
        let child = dd.get(name).ok_or(Errno::ENOENT)?;
        if child.is_dir() {
            return Err(Errno::EISDIR);
        }
        dd.remove(name);
        drop(dd);
        child.change_nlink(-1);
        self.touch_dir(0);
        Ok(())
    }

    fn rmdir(&self, name: &[u8]) -> Result<(), Errno> {
        let _ns = lock(&self.fs.ns);
        let d = self.dir()?;
        let mut dd = lock(d);
        let child = dd.get(name).ok_or(Errno::ENOENT)?;
        let cd = child.dir()?;
        if !lock(cd).entries.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        dd.remove(name);
        drop(dd);
        lock(&child.meta).nlink = 0;
        lock(&child.meta).ctime = now();
        self.touch_dir(-1);
        Ok(())
    }

    fn rename(
        &self,
        old_name: &[u8],
        new_dir: &Arc<dyn Inode>,
        new_name: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        check_name(new_name)?;
        let nd = as_tmp(new_dir).ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&nd.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        let _ns = lock(&self.fs.ns);
        let od_lock = self.dir()?;
        let nd_lock = nd.dir()?;
        let same_dir = self.ino == nd.ino;
        let src = lock(od_lock).get(old_name).ok_or(Errno::ENOENT)?;
        let dst = lock(nd_lock).get(new_name);
        if flags & RENAME_EXCHANGE != 0 {
            let dst = dst.ok_or(Errno::ENOENT)?;
            if Arc::ptr_eq(&src, &dst) {
                return Ok(());
            }
            lock(od_lock).replace(old_name, dst.clone());
            lock(nd_lock).replace(new_name, src.clone());
            if !same_dir {
                if let Kind::Dir(sd) = &src.kind {
                    lock(sd).parent_ino = nd.ino;
                }
                if let Kind::Dir(dd) = &dst.kind {
                    lock(dd).parent_ino = self.ino;
                }
                let delta = src.is_dir() as i64 - dst.is_dir() as i64;
                self.touch_dir(-delta);
                nd.touch_dir(delta);
            } else {
                self.touch_dir(0);
            }
            src.change_nlink(0);
            dst.change_nlink(0);
            return Ok(());
        }
        if let Some(dst) = &dst {
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            if Arc::ptr_eq(&src, dst) {
                // Two names of the same node: nothing happens.
                return Ok(());
            }
            match (src.is_dir(), dst.is_dir()) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !lock(dst.dir()?).entries.is_empty() => {
                    return Err(Errno::ENOTEMPTY)
                }
                _ => {}
            }
        }
        // Unlink the source, then put it under the new name.
        lock(od_lock).remove(old_name);
        {
            let mut ndd = lock(nd_lock);
            if dst.is_some() {
                ndd.replace(new_name, src.clone());
            } else {
                ndd.insert(new_name, src.clone());
            }
        }
        let src_dir = src.is_dir();
        if let Some(dst) = &dst {
            if dst.is_dir() {
                lock(&dst.meta).nlink = 0;
                // The replaced directory's link from the parent goes away.
                nd.touch_dir(-1);
            } else {
                dst.change_nlink(-1);
            }
        }
        if !same_dir && src_dir {
            if let Kind::Dir(sd) = &src.kind {
                lock(sd).parent_ino = nd.ino;
            }
            self.touch_dir(-1);
            nd.touch_dir(1);
        } else {
            self.touch_dir(0);
            if !same_dir {
                nd.touch_dir(0);
            }
        }
        src.change_nlink(0);
        Ok(())
    }

    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        if let (Some(mode), Some(d)) = (a.mode, self.file_data()) {
            // F_SEAL_EXEC: the execute bits may not change.
            let cur = lock(&self.meta).mode;
            if d.seals() & crate::pagestore::F_SEAL_EXEC != 0 && (cur ^ mode) & 0o111 != 0 {
                return Err(Errno::EPERM);
            }
        }
        if let Some(size) = a.size {
            if self.is_dir() {
                return Err(Errno::EISDIR);
            }
            self.truncate(size)?;
        }
        let t = now();
        let mut m = lock(&self.meta);
        if let Some(mode) = a.mode {
            m.mode = (m.mode & S_IFMT) | (mode & 0o7777);
        }
        if let Some(uid) = a.uid {
            m.uid = uid;
        }
        if let Some(gid) = a.gid {
            m.gid = gid;
        }
        match a.atime {
            Some(TimeSet::Now) => m.atime = t,
            Some(TimeSet::At(ts)) => m.atime = ts,
            None => {}
        }
        match a.mtime {
            Some(TimeSet::Now) => m.mtime = t,
            Some(TimeSet::At(ts)) => m.mtime = ts,
            None => {}
        }
        m.ctime = t;
        Ok(())
    }

    fn getxattr(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        crate::inode::xattr_resolve(name, &XATTR_PREFIXES)?;
        lock(&self.xattrs).get(name).cloned().ok_or(Errno::ENODATA)
    }

    fn setxattr(&self, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno> {
        use crate::inode::{XATTR_CREATE, XATTR_REPLACE};
        crate::inode::xattr_resolve(name, &XATTR_PREFIXES)?;
        let mut x = lock(&self.xattrs);
        let exists = x.contains_key(name);
        if flags & XATTR_CREATE != 0 && exists {
            return Err(Errno::EEXIST);
        }
        if flags & XATTR_REPLACE != 0 && !exists {
            return Err(Errno::ENODATA);
        }
        x.insert(name.to_vec(), value.to_vec());
        drop(x);
        lock(&self.meta).ctime = now();
        Ok(())
    }

    fn listxattr(&self) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        for n in lock(&self.xattrs).keys() {
            out.extend_from_slice(n);
            out.push(0);
        }
        Ok(out)
    }

    fn removexattr(&self, name: &[u8]) -> Result<(), Errno> {
        crate::inode::xattr_resolve(name, &XATTR_PREFIXES)?;
        lock(&self.xattrs).remove(name).ok_or(Errno::ENODATA)?;
        lock(&self.meta).ctime = now();
        Ok(())
    }

    fn punch_hole(&self, off: u64, len: u64) -> Result<(), Errno> {
        let d = self.file_data().ok_or(Errno::ENODEV)?;
        d.punch_hole(off, len)?;
        let t = now();
        let mut m = lock(&self.meta);
        m.mtime = t;
        m.ctime = t;
        Ok(())
    }

    fn allocate(&self, off: u64, len: u64, keep_size: bool) -> Result<(), Errno> {
        let d = self.file_data().ok_or(Errno::ENODEV)?;
        let end = off.checked_add(len).ok_or(Errno::EFBIG)?;
        if end > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let grew = !keep_size && end > d.size();
        d.allocate(off, len, keep_size)?;
        if grew {
            let t = now();
            let mut m = lock(&self.meta);
            m.mtime = t;
            m.ctime = t;
        }
        Ok(())
    }
}

/// An open regular tmpfs file.
struct TmpFile {
    inode: Arc<TmpInode>,
}

impl FileOps for TmpFile {
    fn write(&self, st: &FileState, buf: &[u8]) -> Result<usize, Errno> {
        let mut off = st.offset();
        let (n, end) = self.inode.write_data(buf, *off, st.append())?;
        *off = end;
        Ok(n)
    }
    fn pread(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        self.inode.read_data(buf, off)
    }
    fn pwrite(&self, buf: &[u8], off: u64) -> Result<usize, Errno> {
        Ok(self.inode.write_data(buf, off, false)?.0)
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.inode.make_stat())
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        self.inode.statfs()
    }
    fn lseek(&self, st: &FileState, off: i64, whence: i32) -> Result<u64, Errno> {
        let store = match self.inode.file_data() {
            Some(d) if whence == libc::SEEK_DATA || whence == libc::SEEK_HOLE => d,
            _ => return generic_lseek(st, off, whence, Some(self.inode.size())),
        };
        if off < 0 {
            return Err(Errno::ENXIO);
        }
        let r = if whence == libc::SEEK_DATA {
            store.seek_data(off as u64)?
        } else {
            store.seek_hole(off as u64)?
        };
        *st.offset() = r;
        Ok(r)
    }
    fn page_store(&self) -> Option<Arc<PageStore>> {
        self.inode.file_data().cloned()
    }
}

/// An open tmpfs directory.
struct TmpDirFile {
    dir: Arc<TmpInode>,
}

impl FileOps for TmpDirFile {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.dir.make_stat())
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        self.dir.statfs()
    }
    fn is_dir(&self) -> bool {
        true
    }
    fn readdir(&self, off: u64, max: usize) -> Result<Vec<DirEntry>, Errno> {
        let d = self.dir.dir()?;
        let dd = lock(d);
        let dt = abi::linux::dtype_of_mode(S_IFDIR);
        let mut out = Vec::new();
        if off == 0 {
            out.push(DirEntry {
                ino: self.dir.ino,
                next_off: 1,
                dtype: dt,
                name: b".".to_vec(),
            });
        }
        if off <= 1 {
            out.push(DirEntry {
                ino: dd.parent_ino,
                next_off: 2,
                dtype: dt,
                name: b"..".to_vec(),
            });
        }
        let mut bytes = 0usize;
        for (o, (name, inode)) in dd.entries.range(off.max(2)..) {
            if bytes > max {
                break;
            }
            bytes += 24 + name.len();
            out.push(DirEntry {
                ino: inode.ino,
                next_off: o + 1,
                dtype: abi::linux::dtype_of_mode(lock(&inode.meta).mode),
                name: name.clone(),
            });
        }
        drop(dd);
        self.dir.touch_atime();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> Arc<dyn Inode> {
        TmpFs::new_root(0o1777, 1 << 20)
    }

    #[test]
    fn create_read_write() {
        let r = root();
        let f = r.create(b"a", 0o644, 1, 2).unwrap();
        assert_eq!(r.create(b"a", 0o644, 1, 2).err(), Some(Errno::EEXIST));
        let st = f.stat().unwrap();
        assert_eq!(st.mode, S_IFREG | 0o644);
        assert_eq!((st.uid, st.gid, st.nlink, st.size), (1, 2, 1, 0));
        let ops = f.clone().open(libc::O_RDWR).unwrap();
        assert_eq!(ops.pwrite(b"hello", 3).unwrap(), 5);
        let mut b = [9u8; 16];
        assert_eq!(ops.pread(&mut b, 0).unwrap(), 8);
        assert_eq!(&b[..8], b"\0\0\0hello");
        assert_eq!(ops.pread(&mut b, 100).unwrap(), 0);
        f.setattr(&SetAttr {
            size: Some(2),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(f.stat().unwrap().size, 2);
        assert_ne!(f.stat().unwrap().ino, r.stat().unwrap().ino);
        assert_eq!(f.stat().unwrap().dev, r.stat().unwrap().dev);
        assert_eq!(r.statfs().unwrap().fs_type, TMPFS_MAGIC);
    }

    #[test]
    fn enospc() {
        let r = root();
        let f = r.create(b"big", 0o644, 0, 0).unwrap();
        let ops = f.clone().open(libc::O_RDWR).unwrap();
        let chunk = vec![1u8; 512 << 10];
        ops.pwrite(&chunk, 0).unwrap();
        // Sparse: only allocated pages count; a write that runs out is short.
        assert_eq!(ops.pwrite(&chunk, 1 << 30), Ok(512 << 10));
        assert_eq!(ops.pwrite(&chunk, 1 << 20).err(), Some(Errno::ENOSPC));
        assert_eq!(f.stat().unwrap().blocks, 2048);
        assert_eq!(f.stat().unwrap().size, (1 << 30) + (512 << 10));
        drop(ops);
        r.unlink(b"big").unwrap();
        drop(f);
        // The space comes back once the last reference goes.
        let g = r.create(b"g", 0o644, 0, 0).unwrap();
        let ops = g.clone().open(libc::O_RDWR).unwrap();
        ops.pwrite(&vec![0u8; 1 << 20], 0).unwrap();
    }

    #[test]
    fn dirs_and_errnos() {
        let r = root();
        let d = r.mkdir(b"d", 0o755, 0, 0).unwrap();
        assert_eq!(r.stat().unwrap().nlink, 3);
        d.create(b"f", 0o644, 0, 0).unwrap();
        assert_eq!(r.rmdir(b"d").err(), Some(Errno::ENOTEMPTY));
        assert_eq!(r.unlink(b"d").err(), Some(Errno::EISDIR));
        assert_eq!(d.rmdir(b"f").err(), Some(Errno::ENOTDIR));
        assert_eq!(r.unlink(b"nope").err(), Some(Errno::ENOENT));
        d.unlink(b"f").unwrap();
        r.rmdir(b"d").unwrap();
        assert_eq!(r.stat().unwrap().nlink, 2);
        assert_eq!(d.stat().unwrap().nlink, 0);
        assert_eq!(d.create(b"x", 0o644, 0, 0).err(), Some(Errno::ENOENT));
        let long = vec![b'x'; 256];
        assert_eq!(
            r.create(&long, 0o644, 0, 0).err(),
            Some(Errno::ENAMETOOLONG)
        );
    }

    #[test]
    fn links_and_symlinks() {
        let r = root();
        let f = r.create(b"f", 0o644, 0, 0).unwrap();
        r.link(b"g", &f).unwrap();
        assert_eq!(f.stat().unwrap().nlink, 2);
        assert_eq!(r.link(b"g", &f).err(), Some(Errno::EEXIST));
        r.unlink(b"f").unwrap();
        assert_eq!(f.stat().unwrap().nlink, 1);
        let s = r.symlink(b"s", b"/target", 0, 0).unwrap();
        assert_eq!(s.readlink().unwrap(), b"/target");
        assert!(s.attr().is_symlink());
        let d = r.mkdir(b"d", 0o755, 0, 0).unwrap();
        assert_eq!(r.link(b"d2", &d).err(), Some(Errno::EPERM));
        let other = TmpFs::new_root(0o755, 1 << 20);
        let x = other.create(b"x", 0o644, 0, 0).unwrap();
        assert_eq!(r.link(b"x", &x).err(), Some(Errno::EXDEV));
        let p = r.mknod(b"p", abi::linux::S_IFIFO | 0o644, 0, 0, 0).unwrap();
        assert_eq!(p.stat().unwrap().mode & S_IFMT, abi::linux::S_IFIFO);
        assert!(p.clone().open(libc::O_RDWR).is_ok());
        assert_eq!(
            p.open(libc::O_WRONLY | libc::O_NONBLOCK).err(),
            Some(Errno::ENXIO)
        );
    }

    #[test]
    fn rename_cases() {
        let r = root();
        let a = r.mkdir(b"a", 0o755, 0, 0).unwrap();
        let b = r.mkdir(b"b", 0o755, 0, 0).unwrap();
        a.create(b"f", 0o644, 0, 0).unwrap();
        b.create(b"g", 0o644, 0, 0).unwrap();
        // Move a file between dirs.
        a.rename(b"f", &b, b"f2", 0).unwrap();
        assert_eq!(a.lookup(b"f").err(), Some(Errno::ENOENT));
        assert!(b.lookup(b"f2").is_ok());
        // NOREPLACE / EXCHANGE.
        assert_eq!(
            b.rename(b"f2", &b, b"g", RENAME_NOREPLACE).err(),
            Some(Errno::EEXIST)
        );
        let g = b.lookup(b"g").unwrap();
        b.rename(b"f2", &b, b"g", RENAME_EXCHANGE).unwrap();
        assert_eq!(
            b.lookup(b"f2").unwrap().stat().unwrap().ino,
            g.stat().unwrap().ino
        );
        assert_eq!(
            b.rename(b"f2", &b, b"zz", RENAME_EXCHANGE).err(),
            Some(Errno::ENOENT)
        );
        // Dir over file, file over dir, dir over non-empty dir.
        let bb = b.clone();
        assert_eq!(r.rename(b"a", &bb, b"g", 0).err(), Some(Errno::ENOTDIR));
        b.mkdir(b"sub", 0o755, 0, 0).unwrap();
        assert_eq!(b.rename(b"g", &bb, b"sub", 0).err(), Some(Errno::EISDIR));
        assert_eq!(r.rename(b"a", &r, b"b", 0).err(), Some(Errno::ENOTEMPTY));
        // Dir into another dir: link counts follow.
        assert_eq!(b.stat().unwrap().nlink, 3);
        r.rename(b"a", &bb, b"a", 0).unwrap();
        assert_eq!(b.stat().unwrap().nlink, 4);
        assert_eq!(r.stat().unwrap().nlink, 3);
        // Replace an empty dir.
        let sub = b.lookup(b"sub").unwrap();
        b.rename(b"a", &bb, b"sub", 0).unwrap();
        assert_eq!(sub.stat().unwrap().nlink, 0);
        assert_eq!(b.stat().unwrap().nlink, 3);
        assert_eq!(r.rename(b"nope", &bb, b"x", 0).err(), Some(Errno::ENOENT));
    }

    #[test]
    fn readdir_offsets_stable() {
        let r = root();
        for n in [&b"c"[..], b"a", b"b"] {
            r.create(n, 0o644, 0, 0).unwrap();
        }
        let ops = r.clone().open(libc::O_RDONLY).unwrap();
        let all = ops.readdir(0, 4096).unwrap();
        let names: Vec<_> = all.iter().map(|e| e.name.clone()).collect();
        assert_eq!(
            names,
            vec![
                b".".to_vec(),
                b"..".to_vec(),
                b"c".to_vec(),
                b"a".to_vec(),
                b"b".to_vec()
            ]
        );
        let after_c = all[2].next_off;
        r.unlink(b"c").unwrap();
        let rest = ops.readdir(after_c, 4096).unwrap();
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[0].name, b"a");
    }

    #[test]
    fn setattr_times() {
        let r = root();
        let f = r.create(b"f", 0o644, 0, 0).unwrap();
        let ts = Timespec { sec: 5, nsec: 6 };
        f.setattr(&SetAttr {
            mtime: Some(TimeSet::At(ts)),
            mode: Some(0o600),
            uid: Some(7),
            ..Default::default()
        })
        .unwrap();
        let st = f.stat().unwrap();
        assert_eq!(st.mtime, ts);
        assert_ne!(st.atime, ts);
        assert_eq!(st.mode, S_IFREG | 0o600);
        assert_eq!(st.uid, 7);
    }
}
