//! inotify(7): watches on inodes and a queue of `struct inotify_event` records
//! for the changes made through the sandbox's VFS (host-side changes to gofer
//! files are not seen).
//!
//! Watches are per inode, keyed by the address of the watched `Arc<dyn Inode>`
//! allocation; the watch holds that Arc (as a Linux inotify mark pins its
//! inode), so the key cannot be reused while watched, and every dentry of the
//! inode (hard links) shares its watches.
//!
//! The VFS calls the hooks below (`notify_dentry`, `opened`, `created`,
//! `removed`, `renamed`, ...) after each change; each returns at once when no
//! watch exists anywhere ([`active`]). An event on a file goes to the watches
//! on its parent directory (with the file's name) and then to those on the
//! file itself (without a name), as Linux orders them.
//!
//! IN_DELETE_SELF and IN_IGNORED for a deleted inode come when its dentry is
//! released: at once when nothing else holds it, else when the last open
//! file (or cwd) holding it goes, as Linux does.
//!
//! Not done: IN_UNMOUNT (there is no umount), changes made on the host side of
//! a gofer mount, and hard links of gofer-backed files (each name's lookup
//! makes its own inode object, so their watches are not shared). memfds live
//! in /dev/shm here, so watches on /dev/shm see their "#<ino>" events.
//!
//! Locking: one global registry lock, then an instance's queue lock. No
//! dentry lock is taken, and no dentry is dropped, while the registry lock is
//! held (a dentry's drop calls back here).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use abi::linux::Stat;
use abi::Errno;

use crate::file::{FileOps, FileState, OpenFile};
use crate::inode::{Inode, SetAttr};
use crate::vfs::{Dentry, Location};
use crate::waiter::{WaitQueue, EVENT_IN};
use crate::UserIo;

pub const IN_ACCESS: u32 = 0x1;
pub const IN_MODIFY: u32 = 0x2;
pub const IN_ATTRIB: u32 = 0x4;
pub const IN_CLOSE_WRITE: u32 = 0x8;
pub const IN_CLOSE_NOWRITE: u32 = 0x10;
pub const IN_OPEN: u32 = 0x20;
pub const IN_MOVED_FROM: u32 = 0x40;
pub const IN_MOVED_TO: u32 = 0x80;
pub const IN_CREATE: u32 = 0x100;
pub const IN_DELETE: u32 = 0x200;
pub const IN_DELETE_SELF: u32 = 0x400;
pub const IN_MOVE_SELF: u32 = 0x800;
pub const IN_ALL_EVENTS: u32 = 0xfff;
pub const IN_CLOSE: u32 = IN_CLOSE_WRITE | IN_CLOSE_NOWRITE;
pub const IN_MOVE: u32 = IN_MOVED_FROM | IN_MOVED_TO;
pub const IN_UNMOUNT: u32 = 0x2000;
pub const IN_Q_OVERFLOW: u32 = 0x4000;
pub const IN_IGNORED: u32 = 0x8000;
pub const IN_ONLYDIR: u32 = 0x0100_0000;
pub const IN_DONT_FOLLOW: u32 = 0x0200_0000;
pub const IN_EXCL_UNLINK: u32 = 0x0400_0000;
pub const IN_MASK_CREATE: u32 = 0x1000_0000;
pub const IN_MASK_ADD: u32 = 0x2000_0000;
pub const IN_ISDIR: u32 = 0x4000_0000;
pub const IN_ONESHOT: u32 = 0x8000_0000;
/// Every bit inotify_add_watch accepts (Linux's ALL_INOTIFY_BITS).
pub const ALL_INOTIFY_BITS: u32 = IN_ALL_EVENTS
    | IN_UNMOUNT
    | IN_Q_OVERFLOW
    | IN_IGNORED
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
    | IN_EXCL_UNLINK
    | IN_MASK_CREATE
    | IN_MASK_ADD
    | IN_ISDIR
    | IN_ONESHOT;
pub const IN_CLOEXEC: i32 = libc::O_CLOEXEC;
pub const IN_NONBLOCK: i32 = libc::O_NONBLOCK;

/// Linux's default /proc/sys/fs/inotify/max_queued_events.
pub const MAX_QUEUED_EVENTS: usize = 16384;
/// Most watches in the sandbox (Linux's max_user_watches is of this order).
const MAX_WATCHES: usize = 1 << 20;
/// Linux's default /proc/sys/fs/inotify/max_user_instances (per effective uid).
pub const MAX_USER_INSTANCES: usize = 128;
/// sizeof(struct inotify_event).
pub const EVENT_HEADER: usize = 16;
const FIONREAD: u32 = 0x541B;
const READABLE: u32 = EVENT_IN | libc::POLLRDNORM as u32;
/// What a watch keeps of the mask it was given.
const WATCH_BITS: u32 = IN_ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK;

/// One queued event.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Event {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Vec<u8>,
}

impl Event {
    /// The name field's length: the name, a NUL, padded to a multiple of the
    /// header size (0 without a name).
    fn name_len(&self) -> usize {
        if self.name.is_empty() {
            0
        } else {
            (self.name.len() + 1).div_ceil(EVENT_HEADER) * EVENT_HEADER
        }
    }
    fn size(&self) -> usize {
        EVENT_HEADER + self.name_len()
    }
    fn encode(&self, out: &mut [u8]) {
        let n = self.name_len();
        out[0..4].copy_from_slice(&self.wd.to_ne_bytes());
        out[4..8].copy_from_slice(&self.mask.to_ne_bytes());
        out[8..12].copy_from_slice(&self.cookie.to_ne_bytes());
        out[12..16].copy_from_slice(&(n as u32).to_ne_bytes());
        let body = &mut out[EVENT_HEADER..EVENT_HEADER + n];
        body.fill(0);
        body[..self.name.len()].copy_from_slice(&self.name);
    }
}

#[derive(Default)]
struct State {
    events: VecDeque<Event>,
    /// Bytes a read of everything would return (FIONREAD).
    bytes: usize,
    /// The IN_Q_OVERFLOW event is in the queue.
    overflowed: bool,
    last_wd: i32,
    /// wd -> the watched inode's key.
    watches: HashMap<i32, usize>,
}

impl State {
    /// Queues `e`, merging it into an identical last event and replacing it
    /// with IN_Q_OVERFLOW past the limit. Returns whether anything was queued.
    fn push(&mut self, e: Event) -> bool {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            if self.overflowed {
                return false;
            }
            self.overflowed = true;
            let o = Event {
                wd: -1,
                mask: IN_Q_OVERFLOW,
                cookie: 0,
                name: Vec::new(),
            };
            self.bytes += o.size();
            self.events.push_back(o);
            return true;
        }
        if let Some(last) = self.events.back() {
            if last.mask & IN_IGNORED == 0
                && last.mask == e.mask
                && last.wd == e.wd
                && last.name == e.name
            {
                return false;
            }
        }
        self.bytes += e.size();
        self.events.push_back(e);
        true
    }

    fn push_ignored(&mut self, wd: i32) -> bool {
        self.push(Event {
            wd,
            mask: IN_IGNORED,
            cookie: 0,
            name: Vec::new(),
        })
    }
}

/// One inotify instance.
pub struct Inotify {
    state: Mutex<State>,
    queue: WaitQueue,
    stat: Stat,
    /// The creator's effective uid, charged one instance.
    uid: u32,
    /// Names the instance's watches in the registry; never reused (unlike
    /// an address).
    id: u64,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Live instances per effective uid.
fn instances() -> MutexGuard<'static, HashMap<u32, usize>> {
    static I: OnceLock<Mutex<HashMap<u32, usize>>> = OnceLock::new();
    I.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The instance's file operations (dropped at the last close: the watches go).
struct InotifyFile(Arc<Inotify>);

impl Inotify {
    /// inotify_init1(flags) minus the flag checks and the fd install
    /// (O_RDONLY, as Linux). EMFILE past MAX_USER_INSTANCES for `uid`.
    pub fn new_file(flags: i32, uid: u32, gid: u32) -> Result<Arc<OpenFile>, Errno> {
        {
            let mut m = instances();
            let n = m.entry(uid).or_insert(0);
            if *n >= MAX_USER_INSTANCES {
                return Err(Errno::EMFILE);
            }
            *n += 1;
        }
        let ino = Arc::new(Inotify {
            state: Mutex::new(State::default()),
            queue: WaitQueue::default(),
            stat: super::anon_stat(uid, gid),
            uid,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        });
        let ops = Box::new(InotifyFile(ino.clone()));
        Ok(super::new_registered(
            ops,
            &ino,
            libc::O_RDONLY | (flags & IN_NONBLOCK),
        ))
    }

    /// The instance behind `f`, if it is an inotify file.
    pub fn of(f: &OpenFile) -> Option<Arc<Inotify>> {
        super::lookup::<Inotify>(f)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// inotify_add_watch on a resolved inode (the caller validated the mask
    /// bits and did the path checks). Returns the watch descriptor: the same
    /// one for the same inode.
    pub fn add_watch(self: &Arc<Self>, inode: &Arc<dyn Inode>, mask: u32) -> Result<i32, Errno> {
        let k = key(inode);
        let me = self.id;
        let new = mask & WATCH_BITS;
        let mut reg = registry();
        let mut st = self.lock();
        if let Some(t) = reg.targets.get_mut(&k) {
            if let Some(w) = t.watches.iter_mut().find(|w| w.owner_id == me) {
                if mask & IN_MASK_CREATE != 0 {
                    return Err(Errno::EEXIST);
                }
                w.mask = if mask & IN_MASK_ADD != 0 {
                    w.mask | new
                } else {
                    new
                };
                return Ok(w.wd);
            }
        }
        if reg.nwatches >= MAX_WATCHES {
            return Err(Errno::ENOSPC);
        }
        // Linux allocates cyclically from 1.
        let mut wd = st.last_wd;
        loop {
            wd = if wd == i32::MAX { 1 } else { wd + 1 };
            if !st.watches.contains_key(&wd) {
                break;
            }
        }
        st.last_wd = wd;
        st.watches.insert(wd, k);
        reg.nwatches += 1;
        reg.targets
            .entry(k)
            .or_insert_with(|| Target {
                inode: inode.clone(),
                watches: Vec::new(),
            })
            .watches
            .push(Watch {
                owner: Arc::downgrade(self),
                owner_id: me,
                wd,
                mask: new,
            });
        reg.update_active();
        Ok(wd)
    }

    /// inotify_rm_watch: EINVAL for an unknown wd; queues IN_IGNORED.
    pub fn rm_watch(&self, wd: i32) -> Result<(), Errno> {
        let me = self.id;
        let dropped;
        {
            let mut reg = registry();
            let mut st = self.lock();
            let k = st.watches.remove(&wd).ok_or(Errno::EINVAL)?;
            dropped = reg.forget_watch(k, me);
            st.push_ignored(wd);
        }
        drop(dropped);
        self.queue.notify(READABLE);
        Ok(())
    }

    /// Removes every watch of this instance (its last close).
    fn release(&self) {
        let me = self.id;
        let mut dropped = Vec::new();
        {
            let mut reg = registry();
            let mut st = self.lock();
            for (_, k) in st.watches.drain() {
                dropped.extend(reg.forget_watch(k, me));
            }
        }
        drop(dropped);
    }

    /// Bytes queued (FIONREAD).
    pub fn pending_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Reads whole events into `buf`: EINVAL when the first does not fit,
    /// EAGAIN when none is queued.
    fn read_events(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut st = self.lock();
        if st.events.is_empty() {
            return Err(Errno::EAGAIN);
        }
        let mut done = 0;
        while let Some(e) = st.events.front() {
            let n = e.size();
            if done + n > buf.len() {
                if done == 0 {
                    return Err(Errno::EINVAL);
                }
                break;
            }
            e.encode(&mut buf[done..done + n]);
            done += n;
            if e.mask == IN_Q_OVERFLOW && e.wd == -1 {
                st.overflowed = false;
            }
            st.bytes -= n;
            st.events.pop_front();
        }
        Ok(done)
    }
}

impl Drop for InotifyFile {
    fn drop(&mut self) {
        self.0.release();
        let mut m = instances();
        if let Some(n) = m.get_mut(&self.0.uid) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.0.uid);
            }
        }
        drop(m);
        super::unregister(self as *const InotifyFile as usize);
    }
}

impl FileOps for InotifyFile {
    fn read(&self, _st: &FileState, buf: &mut [u8]) -> Result<usize, Errno> {
        self.0.read_events(buf)
    }
    fn write(&self, _st: &FileState, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }
    fn seekable(&self) -> bool {
        false
    }
    /// Linux's noop_llseek.
    fn lseek(&self, _st: &FileState, _off: i64, _whence: i32) -> Result<u64, Errno> {
        Ok(0)
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.0.stat)
    }
    fn ioctl(&self, _st: &FileState, io: &dyn UserIo, cmd: u32, arg: u64) -> Result<u64, Errno> {
        match cmd {
            FIONREAD => {
                let n = self.0.pending_bytes().min(i32::MAX as usize) as i32;
                io.copy_out(arg, &n.to_ne_bytes())?;
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }
    fn readiness(&self, mask: u32) -> u32 {
        if self.0.lock().events.is_empty() {
            0
        } else {
            READABLE & mask
        }
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.0.queue)
    }
}

// ---- The registry of watched inodes ----

struct Watch {
    owner: Weak<Inotify>,
    /// The owner's [`Inotify::id`].
    owner_id: u64,
    wd: i32,
    mask: u32,
}

struct Target {
    inode: Arc<dyn Inode>,
    watches: Vec<Watch>,
}

#[derive(Default)]
struct Registry {
    targets: HashMap<usize, Target>,
    nwatches: usize,
    /// Dentries of deleted watched inodes still held (open): their release
    /// brings IN_DELETE_SELF and IN_IGNORED.
    pending: HashSet<u64>,
}

/// Watched inodes plus pending deletions: zero means every hook returns at once.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static NEXT_COOKIE: AtomicU32 = AtomicU32::new(1);

fn registry() -> MutexGuard<'static, Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn key(inode: &Arc<dyn Inode>) -> usize {
    Arc::as_ptr(inode) as *const () as usize
}

fn next_cookie() -> u32 {
    loop {
        let c = NEXT_COOKIE.fetch_add(1, Ordering::Relaxed);
        if c != 0 {
            return c;
        }
    }
}

/// Whether any watch (or pending deletion) exists: the hooks' fast path.
#[inline]
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed) != 0
}

/// What to do once the registry lock is released: wake readers, drop the
/// inode references of removed watches.
#[derive(Default)]
struct After {
    wake: Vec<Arc<Inotify>>,
    dropped: Vec<Arc<dyn Inode>>,
}

impl After {
    fn finish(mut self) {
        self.wake.sort_by_key(|i| Arc::as_ptr(i) as usize);
        self.wake.dedup_by(|a, b| Arc::ptr_eq(a, b));
        for i in &self.wake {
            i.queue.notify(READABLE);
        }
    }
}

impl Registry {
    fn update_active(&self) {
        ACTIVE.store(self.targets.len() + self.pending.len(), Ordering::Relaxed);
    }

    /// Removes `owner`'s watch on `k` (the caller updates the owner's map);
    /// returns the inode reference if that was the last watch on it.
    fn forget_watch(&mut self, k: usize, owner: u64) -> Option<Arc<dyn Inode>> {
        let t = self.targets.get_mut(&k)?;
        let before = t.watches.len();
        t.watches.retain(|w| w.owner_id != owner);
        self.nwatches -= before - t.watches.len();
        let gone = t.watches.is_empty().then(|| self.targets.remove(&k));
        self.update_active();
        gone.flatten().map(|t| t.inode)
    }

    /// Queues an event on the watches of inode `k` that want it (an unlinked
    /// child's events skip IN_EXCL_UNLINK watches).
    fn deliver(
        &mut self,
        k: usize,
        mask: u32,
        cookie: u32,
        name: &[u8],
        unlinked: bool,
        after: &mut After,
    ) {
        let Some(t) = self.targets.get_mut(&k) else {
            return;
        };
        let mut i = 0;
        let mut removed = 0;
        while i < t.watches.len() {
            let w = &t.watches[i];
            if w.mask & mask & IN_ALL_EVENTS == 0 || (unlinked && w.mask & IN_EXCL_UNLINK != 0) {
                i += 1;
                continue;
            }
            let Some(owner) = w.owner.upgrade() else {
                i += 1;
                continue;
            };
            let (wd, oneshot) = (w.wd, w.mask & IN_ONESHOT != 0);
            {
                let mut st = owner.lock();
                st.push(Event {
                    wd,
                    mask,
                    cookie,
                    name: name.to_vec(),
                });
                if oneshot {
                    st.watches.remove(&wd);
                    st.push_ignored(wd);
                }
            }
            if oneshot {
                t.watches.remove(i);
                removed += 1;
            } else {
                i += 1;
            }
            after.wake.push(owner);
        }
        let empty = t.watches.is_empty();
        self.nwatches -= removed;
        if empty {
            if let Some(t) = self.targets.remove(&k) {
                after.dropped.push(t.inode);
            }
            self.update_active();
        }
    }

    /// The inode `k` is gone: IN_IGNORED on every watch, which all go.
    fn destroy(&mut self, k: usize, after: &mut After) {
        let Some(t) = self.targets.remove(&k) else {
            return;
        };
        for w in &t.watches {
            if let Some(owner) = w.owner.upgrade() {
                let mut st = owner.lock();
                st.watches.remove(&w.wd);
                st.push_ignored(w.wd);
                drop(st);
                after.wake.push(owner);
            }
        }
        self.nwatches -= t.watches.len();
        after.dropped.push(t.inode);
        self.update_active();
    }

    fn watched(&self, k: usize) -> bool {
        self.targets.contains_key(&k)
    }
}

fn isdir_bit(inode: &Arc<dyn Inode>) -> u32 {
    if inode.attr().is_dir() {
        IN_ISDIR
    } else {
        0
    }
}

// ---- Hooks called by the VFS ----

/// An event on the object at `d`: to the watches on its parent directory
/// (with its name) and on the object itself (IN_ISDIR added for directories).
pub(crate) fn notify_dentry(d: &Arc<Dentry>, mask: u32) {
    if !active() {
        return;
    }
    let mask = mask | isdir_bit(d.inode());
    let parent = d.notify_parent();
    let unlinked = parent.as_ref().is_some_and(|(_, _, linked)| !linked);
    let mut after = After::default();
    {
        let mut reg = registry();
        if let Some((p, name, _)) = &parent {
            reg.deliver(key(p.inode()), mask, 0, name, unlinked, &mut after);
        }
        reg.deliver(key(d.inode()), mask, 0, &[], unlinked, &mut after);
    }
    after.finish();
}

/// An event on an inode only (link-count changes), to its own watches.
fn notify_inode(inode: &Arc<dyn Inode>, mask: u32) {
    let mask = mask | isdir_bit(inode);
    let mut after = After::default();
    registry().deliver(key(inode), mask, 0, &[], false, &mut after);
    after.finish();
}

/// A file was opened (not O_PATH): IN_OPEN, then IN_MODIFY if O_TRUNC
/// truncated it. Arms the file's IN_CLOSE_* for its last close.
pub(crate) fn opened(file: &OpenFile, truncated: bool) {
    let Some(loc) = file.location() else {
        return;
    };
    file.close_hook().arm(loc, file.writable());
    if !active() {
        return;
    }
    notify_dentry(&loc.dentry, IN_OPEN);
    if truncated {
        notify_dentry(&loc.dentry, IN_MODIFY);
    }
}

/// Sends IN_CLOSE_WRITE or IN_CLOSE_NOWRITE when the open file holding it
/// goes (armed by [`opened`]).
#[derive(Default)]
pub struct CloseHook(OnceLock<(Location, bool)>);

impl CloseHook {
    fn arm(&self, loc: &Location, writable: bool) {
        let _ = self.0.set((loc.clone(), writable));
    }
}

impl Drop for CloseHook {
    fn drop(&mut self) {
        if let Some((loc, writable)) = self.0.get() {
            if active() {
                let mask = if *writable {
                    IN_CLOSE_WRITE
                } else {
                    IN_CLOSE_NOWRITE
                };
                notify_dentry(&loc.dentry, mask);
            }
        }
    }
}

/// The events of a setattr (Linux's fsnotify_change): size and mtime alone
/// are IN_MODIFY, atime alone IN_ACCESS, both times or owner/mode IN_ATTRIB.
pub(crate) fn attr_changed(loc: &Location, a: &SetAttr) {
    if !active() {
        return;
    }
    let mut mask = 0;
    if a.uid.is_some() || a.gid.is_some() || a.mode.is_some() {
        mask |= IN_ATTRIB;
    }
    if a.size.is_some() {
        mask |= IN_MODIFY;
    }
    match (a.atime.is_some(), a.mtime.is_some()) {
        (true, true) => mask |= IN_ATTRIB,
        (true, false) => mask |= IN_ACCESS,
        (false, true) => mask |= IN_MODIFY,
        (false, false) => {}
    }
    if mask != 0 {
        notify_dentry(&loc.dentry, mask);
    }
}

/// `name` was made in `dir` (mkdir, mknod, symlink, creat, link). A hard link
/// first changes the target's link count (IN_ATTRIB on it).
pub(crate) fn created(dir: &Arc<Dentry>, name: &[u8], node: &Arc<dyn Inode>, is_link: bool) {
    if !active() {
        return;
    }
    if is_link {
        notify_inode(node, IN_ATTRIB);
    }
    let mask = IN_CREATE | isdir_bit(node);
    let mut after = After::default();
    registry().deliver(key(dir.inode()), mask, 0, name, false, &mut after);
    after.finish();
}

/// Whether the victim of an unlink/rmdir/rename-over is gone (watched and no
/// link left), and whether nothing else holds its dentry.
fn victim_state(victim: &Arc<Dentry>, is_dir: bool) -> (bool, bool) {
    let inode = victim.inode();
    if !registry().watched(key(inode)) {
        return (false, false);
    }
    let gone = is_dir || inode.stat().map(|s| s.nlink == 0).unwrap_or(true);
    (gone, Arc::strong_count(victim) == 1)
}

/// Queues IN_DELETE_SELF and IN_IGNORED for a deleted inode now, or when its
/// dentry is released.
fn victim_events(reg: &mut Registry, victim: &Arc<Dentry>, now: bool, after: &mut After) {
    if now {
        let k = key(victim.inode());
        reg.deliver(k, IN_DELETE_SELF, 0, &[], false, after);
        reg.destroy(k, after);
    } else {
        reg.pending.insert(victim.id());
        reg.update_active();
    }
}

/// `name` was removed from `dir` (unlink, rmdir); `child` is its dentry, which
/// the VFS has dropped from its cache.
pub(crate) fn removed(dir: &Arc<Dentry>, name: &[u8], child: Arc<Dentry>, is_dir: bool) {
    if !active() {
        return;
    }
    let (gone, now) = victim_state(&child, is_dir);
    let isdir = isdir_bit(child.inode());
    let mut after = After::default();
    {
        let mut reg = registry();
        if !is_dir {
            let k = key(child.inode());
            reg.deliver(k, IN_ATTRIB, 0, &[], false, &mut after);
        }
        if gone {
            victim_events(&mut reg, &child, now, &mut after);
        }
        reg.deliver(
            key(dir.inode()),
            IN_DELETE | isdir,
            0,
            name,
            false,
            &mut after,
        );
    }
    after.finish();
    // Outside the registry lock: the release may call back (dentry_dropped).
    drop(child);
}

/// A rename: `src` moved from `old_dir`/`old_name` to `new_dir`/`new_name`,
/// replacing `victim` (whose dentry the VFS dropped from its cache), or
/// swapping with it (`exchange`, `victim` then being the other dentry).
pub(crate) fn renamed(
    old_dir: &Arc<Dentry>,
    old_name: &[u8],
    new_dir: &Arc<Dentry>,
    new_name: &[u8],
    src: &Arc<Dentry>,
    victim: Option<Arc<Dentry>>,
    exchange: bool,
) {
    if !active() {
        return;
    }
    let src_dir = isdir_bit(src.inode());
    let (gone, now) = match (&victim, exchange) {
        (Some(v), false) => victim_state(v, v.inode().attr().is_dir()),
        _ => (false, false),
    };
    let victim_dir = victim.as_ref().map(|v| isdir_bit(v.inode())).unwrap_or(0);
    let cookie = next_cookie();
    let mut after = After::default();
    {
        let mut reg = registry();
        let (od, nd) = (key(old_dir.inode()), key(new_dir.inode()));
        reg.deliver(
            od,
            IN_MOVED_FROM | src_dir,
            cookie,
            old_name,
            false,
            &mut after,
        );
        reg.deliver(
            nd,
            IN_MOVED_TO | src_dir,
            cookie,
            new_name,
            false,
            &mut after,
        );
        if let (Some(v), false) = (&victim, exchange) {
            reg.deliver(
                key(v.inode()),
                IN_ATTRIB | victim_dir,
                0,
                &[],
                false,
                &mut after,
            );
        }
        reg.deliver(key(src.inode()), IN_MOVE_SELF, 0, &[], false, &mut after);
        if let Some(v) = &victim {
            if exchange {
                let c2 = next_cookie();
                let vk = key(v.inode());
                reg.deliver(
                    nd,
                    IN_MOVED_FROM | victim_dir,
                    c2,
                    new_name,
                    false,
                    &mut after,
                );
                reg.deliver(
                    od,
                    IN_MOVED_TO | victim_dir,
                    c2,
                    old_name,
                    false,
                    &mut after,
                );
                reg.deliver(vk, IN_MOVE_SELF, 0, &[], false, &mut after);
            } else if gone {
                victim_events(&mut reg, v, now, &mut after);
            }
        }
    }
    after.finish();
    drop(victim);
}

/// A dentry is being released (its Drop): the deferred IN_DELETE_SELF and
/// IN_IGNORED of a deleted inode it held.
pub(crate) fn dentry_dropped(id: u64, inode: &Arc<dyn Inode>) {
    let mut after = After::default();
    {
        let mut reg = registry();
        if !reg.pending.remove(&id) {
            return;
        }
        reg.update_active();
        let k = key(inode);
        reg.deliver(k, IN_DELETE_SELF, 0, &[], false, &mut after);
        reg.destroy(k, &mut after);
    }
    after.finish();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tmpfs::TmpFs;
    use crate::vfs::{NewNode, OpenHow, Vfs, WalkOpts};
    use crate::waiter::Waiter;
    use crate::{Creds, FsContext};

    struct T {
        vfs: Arc<Vfs>,
        ctx: Arc<FsContext>,
        file: Arc<OpenFile>,
        ino: Arc<Inotify>,
    }

    fn setup() -> T {
        let vfs = Vfs::new(TmpFs::new_root(0o755, 1 << 20), false);
        let ctx = FsContext::new(vfs.root());
        let file = Inotify::new_file(IN_NONBLOCK, 0, 0).unwrap();
        let ino = Inotify::of(&file).unwrap();
        T {
            vfs,
            ctx,
            file,
            ino,
        }
    }

    impl T {
        fn loc(&self, p: &str) -> Location {
            self.vfs
                .walk(
                    &self.ctx,
                    &Creds::root(),
                    &self.vfs.root(),
                    p.as_bytes(),
                    &WalkOpts::nofollow(),
                )
                .unwrap()
        }
        fn watch(&self, p: &str, mask: u32) -> i32 {
            self.ino.add_watch(self.loc(p).inode(), mask).unwrap()
        }
        fn open(&self, p: &str, flags: i32) -> Arc<OpenFile> {
            let how = OpenHow {
                flags,
                mode: 0o644,
                resolve: 0,
            };
            let r = self.vfs.root();
            self.vfs
                .open(&self.ctx, &Creds::root(), &r, p.as_bytes(), &how)
                .unwrap()
        }
        fn mkdir(&self, p: &str) {
            let r = self.vfs.root();
            let d = NewNode::Dir { mode: 0o755 };
            self.vfs
                .make_node_at(&self.ctx, &Creds::root(), &r, p.as_bytes(), d)
                .unwrap();
        }
        fn rm(&self, p: &str, dir: bool) {
            let r = self.vfs.root();
            self.vfs
                .remove_at(&self.ctx, &Creds::root(), &r, p.as_bytes(), dir)
                .unwrap();
        }
        fn mv(&self, a: &str, b: &str, flags: u32) {
            let r = self.vfs.root();
            self.vfs
                .rename_at2(
                    &self.ctx,
                    &Creds::root(),
                    &r,
                    a.as_bytes(),
                    &r,
                    b.as_bytes(),
                    flags,
                )
                .unwrap();
        }
        /// Every queued event as (wd, mask, cookie, name).
        fn events(&self) -> Vec<(i32, u32, u32, String)> {
            let mut out = Vec::new();
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = self.file.read(&mut buf) {
                let mut off = 0;
                while off < n {
                    let b = &buf[off..];
                    let word = |i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().unwrap());
                    let len = word(12) as usize;
                    let name = &b[16..16 + len];
                    let end = name.iter().position(|&c| c == 0).unwrap_or(len);
                    out.push((
                        word(0) as i32,
                        word(4),
                        word(8),
                        String::from_utf8_lossy(&name[..end]).into_owned(),
                    ));
                    off += 16 + len;
                }
            }
            out
        }
    }

    fn e(wd: i32, mask: u32, name: &str) -> (i32, u32, u32, String) {
        (wd, mask, 0, name.to_string())
    }

    #[test]
    fn file_lifecycle_events() {
        let t = setup();
        t.mkdir("/d");
        let wd = t.watch("/d", IN_ALL_EVENTS);
        let f = t.open("/d/f", libc::O_CREAT | libc::O_RDWR);
        let wf = t.watch("/d/f", IN_ALL_EVENTS);
        assert_eq!(f.write(b"ab").unwrap(), 2);
        assert_eq!(f.pwrite(b"c", 5).unwrap(), 1);
        let mut b = [0u8; 4];
        assert_eq!(f.pread(&mut b, 0).unwrap(), 4);
        assert_eq!(f.pread(&mut b, 100).unwrap(), 0);
        drop(f);
        assert_eq!(
            t.events(),
            vec![
                e(wd, IN_CREATE, "f"),
                e(wd, IN_OPEN, "f"),
                e(wd, IN_MODIFY, "f"),
                e(wf, IN_MODIFY, ""),
                e(wd, IN_MODIFY, "f"),
                e(wf, IN_MODIFY, ""),
                e(wd, IN_ACCESS, "f"),
                e(wf, IN_ACCESS, ""),
                e(wd, IN_CLOSE_WRITE, "f"),
                e(wf, IN_CLOSE_WRITE, ""),
            ]
        );
        // Truncation through setattr; O_PATH opens make no events.
        let loc = t.loc("/d/f");
        let trunc = SetAttr {
            size: Some(0),
            ..Default::default()
        };
        t.vfs.setattr(&Creds::root(), &loc, &trunc, false).unwrap();
        drop(loc);
        drop(t.open("/d/f", libc::O_PATH));
        assert_eq!(
            t.events(),
            vec![e(wd, IN_MODIFY, "f"), e(wf, IN_MODIFY, "")]
        );
        // Unlink while open: IN_DELETE_SELF and IN_IGNORED wait for the close.
        let f = t.open("/d/f", libc::O_RDONLY);
        t.events();
        t.rm("/d/f", false);
        assert_eq!(
            t.events(),
            vec![e(wf, IN_ATTRIB, ""), e(wd, IN_DELETE, "f")]
        );
        drop(f);
        assert_eq!(
            t.events(),
            vec![
                e(wd, IN_CLOSE_NOWRITE, "f"),
                e(wf, IN_CLOSE_NOWRITE, ""),
                e(wf, IN_DELETE_SELF, ""),
                e(wf, IN_IGNORED, ""),
            ]
        );
        assert_eq!(t.ino.rm_watch(wf), Err(Errno::EINVAL));
        // rmdir of the watched directory.
        t.rm("/d", true);
        assert_eq!(
            t.events(),
            vec![e(wd, IN_DELETE_SELF, ""), e(wd, IN_IGNORED, "")]
        );
    }

    #[test]
    fn renames_pair_cookies() {
        let t = setup();
        t.mkdir("/a");
        t.mkdir("/b");
        drop(t.open("/a/x", libc::O_CREAT | libc::O_RDWR));
        t.mkdir("/a/y");
        let wa = t.watch("/a", IN_MOVE);
        let wb = t.watch("/b", IN_MOVE);
        let wx = t.watch("/a/x", IN_MOVE_SELF);
        t.mv("/a/x", "/b/x2", 0);
        let ev = t.events();
        assert_eq!(ev.len(), 3);
        assert_eq!(
            (ev[0].0, ev[0].1, ev[0].3.as_str()),
            (wa, IN_MOVED_FROM, "x")
        );
        assert_eq!(
            (ev[1].0, ev[1].1, ev[1].3.as_str()),
            (wb, IN_MOVED_TO, "x2")
        );
        assert_ne!(ev[0].2, 0);
        assert_eq!(ev[0].2, ev[1].2);
        assert_eq!(ev[2], e(wx, IN_MOVE_SELF, ""));
        // Exchange: two pairs, each with its own cookie.
        t.mv("/a/y", "/b/x2", 2);
        let ev = t.events();
        assert_eq!(ev.len(), 5, "{ev:?}");
        assert_eq!((ev[0].1, ev[0].3.as_str()), (IN_MOVED_FROM | IN_ISDIR, "y"));
        assert_eq!((ev[1].1, ev[1].3.as_str()), (IN_MOVED_TO | IN_ISDIR, "x2"));
        assert_eq!((ev[2].1, ev[2].3.as_str()), (IN_MOVED_FROM, "x2"));
        assert_eq!((ev[3].1, ev[3].3.as_str()), (IN_MOVED_TO, "y"));
        assert_eq!(ev[0].2, ev[1].2);
        assert_eq!(ev[2].2, ev[3].2);
        assert_ne!(ev[0].2, ev[2].2);
        assert_eq!(ev[4], e(wx, IN_MOVE_SELF, ""));
    }

    #[test]
    fn watches_are_per_inode_and_go_with_the_instance() {
        let t = setup();
        drop(t.open("/f", libc::O_CREAT | libc::O_RDWR));
        let r = t.vfs.root();
        let target = t.loc("/f");
        t.vfs
            .make_node_at(&t.ctx, &Creds::root(), &r, b"/g", NewNode::Link { target })
            .unwrap();
        let w = t.watch("/f", IN_OPEN);
        assert_eq!(t.watch("/g", IN_OPEN | IN_MASK_ADD), w);
        assert_eq!(
            t.ino
                .add_watch(t.loc("/g").inode(), IN_OPEN | IN_MASK_CREATE),
            Err(Errno::EEXIST)
        );
        drop(t.open("/g", libc::O_RDONLY));
        assert_eq!(t.events(), vec![e(w, IN_OPEN, "")]);
        let k = key(t.loc("/f").inode());
        assert!(registry().watched(k));
        drop(t.ino);
        drop(t.file);
        assert!(!registry().watched(k), "the last close removes the watches");
    }

    /// Namespace changes, I/O, watch changes and instance drops racing: no
    /// deadlock, no panic, consistent accounting at the end.
    #[test]
    fn concurrent_changes_and_watches() {
        let t = Arc::new(setup());
        t.mkdir("/s");
        // Watched before the writers start: added after the spawns, the
        // watch could miss all their events (a loaded machine may run the
        // threads to completion first) and the test would see no events.
        let w = t.watch("/s", IN_ALL_EVENTS);
        let mut threads = Vec::new();
        for n in 0..3 {
            let t = t.clone();
            threads.push(std::thread::spawn(move || {
                for i in 0..200 {
                    let a = format!("/s/f{n}-{i}");
                    let f = t.open(&a, libc::O_CREAT | libc::O_RDWR);
                    f.write(b"x").unwrap();
                    let b = format!("/s/g{n}");
                    t.mv(&a, &b, 0);
                    if i % 2 == 0 {
                        t.rm(&b, false);
                    }
                    drop(f);
                }
            }));
        }
        {
            let t = t.clone();
            threads.push(std::thread::spawn(move || {
                for _ in 0..200 {
                    let file = Inotify::new_file(IN_NONBLOCK, 0, 0).unwrap();
                    let ino = Inotify::of(&file).unwrap();
                    let wd = ino.add_watch(t.loc("/s").inode(), IN_ALL_EVENTS);
                    if let Ok(g) = t.vfs.walk(
                        &t.ctx,
                        &Creds::root(),
                        &t.vfs.root(),
                        b"/s/g0",
                        &WalkOpts::nofollow(),
                    ) {
                        let _ = ino.add_watch(g.inode(), IN_ALL_EVENTS | IN_ONESHOT);
                    }
                    let mut b = [0u8; 256];
                    let _ = file.read(&mut b);
                    if let Ok(wd) = wd {
                        let _ = ino.rm_watch(wd);
                    }
                }
            }));
        }
        for th in threads {
            th.join().unwrap();
        }
        assert!(!t.events().is_empty(), "the writers' events on /s");
        t.ino.rm_watch(w).unwrap();
        let k = key(t.loc("/s").inode());
        assert!(!registry().watched(k), "a watch on /s outlived its owner");
    }

    #[test]
    fn blocking_read_wakes_on_event() {
        let t = setup();
        let file = Inotify::new_file(0, 0, 0).unwrap();
        let ino = Inotify::of(&file).unwrap();
        ino.add_watch(t.vfs.root().inode(), IN_CREATE).unwrap();
        let w = Waiter::new().unwrap();
        let (vfs, ctx) = (t.vfs.clone(), t.ctx.clone());
        let th = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let r = vfs.root();
            let d = NewNode::Dir { mode: 0o755 };
            vfs.make_node_at(&ctx, &Creds::root(), &r, b"/late", d)
                .unwrap();
        });
        let mut buf = [0u8; 64];
        let n = file.block(&w, EVENT_IN, || file.read(&mut buf));
        assert_eq!(n, Ok(32));
        assert_eq!(&buf[16..20], b"late");
        th.join().unwrap();
        let mut small = [0u8; 8];
        ino.add_watch(t.vfs.root().inode(), IN_DELETE).unwrap();
        t.rm("/late", true);
        assert_eq!(file.read(&mut small), Err(Errno::EINVAL));
        assert_eq!(ino.pending_bytes(), 32);
    }

    fn ev(wd: i32, mask: u32, name: &[u8]) -> Event {
        Event {
            wd,
            mask,
            cookie: 0,
            name: name.to_vec(),
        }
    }

    #[test]
    fn encoding_pads_names() {
        let e = ev(3, IN_CREATE, b"f");
        assert_eq!(e.size(), 32);
        let mut b = vec![0xffu8; 32];
        e.encode(&mut b);
        assert_eq!(&b[0..4], &3i32.to_ne_bytes());
        assert_eq!(&b[12..16], &16u32.to_ne_bytes());
        assert_eq!(b[16], b'f');
        assert!(b[17..].iter().all(|&c| c == 0));
        assert_eq!(ev(1, 1, &[b'x'; 15]).size(), 32);
        assert_eq!(ev(1, 1, &[b'x'; 16]).size(), 48);
        assert_eq!(ev(1, 1, b"").size(), 16);
    }

    #[test]
    fn queue_merges_and_overflows() {
        let mut s = State::default();
        assert!(s.push(ev(1, IN_MODIFY, b"")));
        assert!(!s.push(ev(1, IN_MODIFY, b"")));
        assert!(s.push(ev(1, IN_MODIFY, b"a")));
        assert!(s.push(ev(1, IN_MODIFY, b"")));
        assert!(s.push_ignored(1));
        assert!(s.push_ignored(1), "IN_IGNORED never merges");
        assert_eq!(s.events.len(), 5);
        assert_eq!(s.bytes, 16 * 5 + 16);
        let mut s = State::default();
        for i in 0..MAX_QUEUED_EVENTS + 10 {
            s.push(ev(i as i32, IN_OPEN, b""));
        }
        assert_eq!(s.events.len(), MAX_QUEUED_EVENTS + 1);
        assert_eq!(s.events.back().unwrap().mask, IN_Q_OVERFLOW);
        assert_eq!(s.events.back().unwrap().wd, -1);
    }
}
