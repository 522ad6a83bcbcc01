//! Advisory file locks: flock(2) locks, POSIX record locks (fcntl F_SETLK,
//! F_SETLKW, F_GETLK) and open-file-description locks (F_OFD_*), as Linux's
//! fs/locks.c implements them.
//!
//! Locks live in one sandbox-wide table keyed by the file's identity, its
//! (st_dev, st_ino): every open of the same file (through any hard link, and
//! whichever inode object a file system made for it) shares the same locks.
//!
//! Owners are opaque ids from [`new_owner_id`]:
//! - flock and OFD locks belong to an open file description ([`OpenFile`]);
//!   they go when its last fd is closed.
//! - POSIX locks belong to an fd table (Linux's `fl_owner` is the
//!   `files_struct`); they go when that table closes *any* fd of the file, and
//!   when the table is dropped (process exit).
//!
//! flock and POSIX locks never conflict with each other; POSIX and OFD locks
//! share one list and do conflict (unless they have the same owner).
//!
//! [`OpenFile`]: crate::OpenFile

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use abi::Errno;

use crate::waiter::{WaitQueue, Waiter, EVENT_ALL};

/// A file's identity: (st_dev, st_ino).
pub type Key = (u64, u64);

/// Who holds a lock (see the module comment).
pub type OwnerId = u64;

static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

/// A fresh owner id (fd tables and open file descriptions take one each).
pub fn new_owner_id() -> OwnerId {
    NEXT_OWNER.fetch_add(1, Ordering::Relaxed)
}

/// The largest file offset: a lock "to end of file" ends here (Linux's OFFSET_MAX).
pub const OFFSET_MAX: i64 = i64::MAX;

/// Most hops the deadlock detector follows (Linux's MAX_DEADLK_ITERATIONS).
const MAX_DEADLK_ITERATIONS: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockType {
    Read,
    Write,
}

impl LockType {
    /// From F_RDLCK / F_WRLCK; None for F_UNLCK; EINVAL otherwise.
    pub fn from_fcntl(t: i16) -> Result<Option<LockType>, Errno> {
        match t as i32 {
            libc::F_RDLCK => Ok(Some(LockType::Read)),
            libc::F_WRLCK => Ok(Some(LockType::Write)),
            libc::F_UNLCK => Ok(None),
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn to_fcntl(self) -> i16 {
        match self {
            LockType::Read => libc::F_RDLCK as i16,
            LockType::Write => libc::F_WRLCK as i16,
        }
    }

    fn conflicts(self, other: LockType) -> bool {
        self == LockType::Write || other == LockType::Write
    }
}

/// One POSIX or OFD lock over the byte range `start..=end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PosixLock {
    pub owner: OwnerId,
    /// An open-file-description lock (reported with l_pid -1).
    pub ofd: bool,
    /// The locking process (F_GETLK's l_pid).
    pub pid: i32,
    pub ty: LockType,
    pub start: i64,
    pub end: i64,
}

impl PosixLock {
    fn overlaps(&self, start: i64, end: i64) -> bool {
        self.start <= end && start <= self.end
    }

    /// The `struct flock` fields F_GETLK reports: (l_start, l_len, l_pid).
    pub fn report(&self) -> (i64, i64, i32) {
        let len = if self.end == OFFSET_MAX {
            0
        } else {
            self.end - self.start + 1
        };
        (self.start, len, if self.ofd { -1 } else { self.pid })
    }
}

/// Converts a `struct flock` range to `start..=end` as Linux's
/// flock_to_posix_lock: `base` is where l_whence points (0, the file offset or
/// the file size); l_len 0 means "to end of file", a negative l_len covers the
/// bytes before l_start.
pub fn flock_range(base: i64, l_start: i64, l_len: i64) -> Result<(i64, i64), Errno> {
    let base = base.max(0);
    if l_start > OFFSET_MAX - base {
        return Err(Errno::EOVERFLOW);
    }
    let start = base + l_start;
    if start < 0 {
        return Err(Errno::EINVAL);
    }
    if l_len > 0 {
        if l_len - 1 > OFFSET_MAX - start {
            return Err(Errno::EOVERFLOW);
        }
        Ok((start, start + (l_len - 1)))
    } else if l_len < 0 {
        // start + l_len cannot overflow: start >= 0 and l_len < 0.
        let s = start + l_len;
        if s < 0 {
            return Err(Errno::EINVAL);
        }
        Ok((s, start - 1))
    } else {
        Ok((start, OFFSET_MAX))
    }
}

/// The first lock in `locks` that conflicts with `ty` over `start..=end` for
/// `owner`.
pub fn posix_conflict(
    locks: &[PosixLock],
    owner: OwnerId,
    ty: LockType,
    start: i64,
    end: i64,
) -> Option<PosixLock> {
    locks
        .iter()
        .find(|l| l.owner != owner && l.overlaps(start, end) && l.ty.conflicts(ty))
        .copied()
}

/// Applies `owner`'s lock (`ty` Some) or unlock (None) of `start..=end` to
/// `locks`, splitting and merging `owner`'s existing locks as Linux's
/// posix_lock_inode: same-type locks that overlap or touch the new range merge
/// with it; other-type locks (or any, for an unlock) lose the overlapping part,
/// which can split one lock in two. Other owners' locks are untouched (the
/// caller has checked for conflicts). Returns whether anything changed.
pub fn posix_apply(locks: &mut Vec<PosixLock>, new: PosixLock, ty: Option<LockType>) -> bool {
    let (mut s, mut e) = (new.start, new.end);
    let before = locks.clone();
    let mut out = Vec::with_capacity(locks.len() + 2);
    for l in locks.drain(..) {
        if l.owner != new.owner {
            out.push(l);
            continue;
        }
        match ty {
            Some(t) if t == l.ty => {
                // Overlapping or adjacent: absorbed into the new lock.
                if l.end >= s - 1 && l.start - 1 <= e {
                    s = s.min(l.start);
                    e = e.max(l.end);
                } else {
                    out.push(l);
                }
            }
            _ => {
                if !l.overlaps(s, e) {
                    out.push(l);
                    continue;
                }
                if l.start < s {
                    out.push(PosixLock { end: s - 1, ..l });
                }
                if l.end > e {
                    out.push(PosixLock { start: e + 1, ..l });
                }
            }
        }
    }
    if let Some(t) = ty {
        out.push(PosixLock {
            ty: t,
            start: s,
            end: e,
            ..new
        });
    }
    out.sort_by_key(|l| (l.owner, l.start));
    *locks = out;
    *locks != before
}

/// flock(2) operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlockOp {
    Lock(LockType),
    Unlock,
}

impl FlockOp {
    /// Decodes flock(2)'s `operation` into (op, LOCK_NB); EINVAL for anything
    /// but LOCK_SH, LOCK_EX or LOCK_UN, optionally with LOCK_NB. LOCK_MAND
    /// requests are accepted and ignored (Ok(None)), as Linux since 5.15 does.
    pub fn decode(op: i32) -> Result<Option<(FlockOp, bool)>, Errno> {
        const LOCK_MAND: i32 = 32;
        if op & LOCK_MAND != 0 {
            return Ok(None);
        }
        let nb = op & libc::LOCK_NB != 0;
        let op = match op & !libc::LOCK_NB {
            libc::LOCK_SH => FlockOp::Lock(LockType::Read),
            libc::LOCK_EX => FlockOp::Lock(LockType::Write),
            libc::LOCK_UN => FlockOp::Unlock,
            _ => return Err(Errno::EINVAL),
        };
        Ok(Some((op, nb)))
    }
}

/// The locks of one file.
#[derive(Default)]
struct FileLocks {
    flocks: Vec<(OwnerId, LockType)>,
    posix: Vec<PosixLock>,
    /// Blocked lockers of this file sleep here; notified whenever a lock goes
    /// or shrinks.
    queue: Arc<WaitQueue>,
}

impl FileLocks {
    fn is_unused(&self) -> bool {
        self.flocks.is_empty() && self.posix.is_empty() && self.queue.is_empty()
    }
}

#[derive(Default)]
struct State {
    files: HashMap<Key, FileLocks>,
    /// POSIX owners blocked in F_SETLKW -> the owner they wait for and the
    /// file (the deadlock detector's wait-for graph).
    waiting: HashMap<OwnerId, (OwnerId, Key)>,
}

impl State {
    /// Wakes `key`'s waiters and forgets the entry once nothing uses it.
    fn changed(&mut self, key: Key) {
        // Woken waiters stop counting as blocked until they block again (as
        // Linux takes them off its blocked list when it wakes them).
        self.waiting.retain(|_, (_, k)| *k != key);
        if let Some(f) = self.files.get(&key) {
            f.queue.notify(EVENT_ALL);
            if f.is_unused() {
                self.files.remove(&key);
            }
        }
    }

    /// Forgets `key`'s entry if nothing uses it.
    fn cleanup(&mut self, key: Key) {
        if self.files.get(&key).is_some_and(|f| f.is_unused()) {
            self.files.remove(&key);
        }
    }

    /// Whether `me` blocking on `blocker` closes a cycle in the wait-for graph.
    fn would_deadlock(&self, me: OwnerId, blocker: OwnerId) -> bool {
        let mut cur = blocker;
        for _ in 0..MAX_DEADLK_ITERATIONS {
            match self.waiting.get(&cur) {
                Some(&(next, _)) if next == me => return true,
                Some(&(next, _)) => cur = next,
                None => return false,
            }
        }
        false
    }
}

fn state() -> MutexGuard<'static, State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// What a blocked attempt waits for.
struct Blocked {
    /// The owner of the conflicting lock, for the deadlock detector (None: no
    /// detection, as for flock and OFD locks).
    blocker: Option<OwnerId>,
}

/// Runs `attempt` under the table lock until it succeeds; when it reports a
/// conflict, fails with EAGAIN if `w` is None, else sleeps on the file's queue
/// (ERESTARTSYS when a signal interrupts, EDEADLK when waiting would deadlock).
fn lock_loop(
    key: Key,
    me: OwnerId,
    w: Option<&Arc<Waiter>>,
    mut attempt: impl FnMut(&mut FileLocks) -> Result<bool, Blocked>,
) -> Result<(), Errno> {
    loop {
        let mut st = state();
        let f = st.files.entry(key).or_default();
        let blocked = match attempt(f) {
            Ok(changed) => {
                st.waiting.remove(&me);
                if changed {
                    st.changed(key);
                } else {
                    st.cleanup(key);
                }
                return Ok(());
            }
            Err(b) => b,
        };
        let queue = f.queue.clone();
        let Some(w) = w else {
            st.cleanup(key);
            return Err(Errno::EAGAIN);
        };
        if let Some(b) = blocked.blocker {
            if st.would_deadlock(me, b) {
                st.waiting.remove(&me);
                st.cleanup(key);
                return Err(Errno::EDEADLK);
            }
            st.waiting.insert(me, (b, key));
        }
        // Registered before the table is unlocked: an unlock after this point
        // finds us on the queue.
        let reg = queue.register(w, EVENT_ALL);
        drop(st);
        let r = w.wait(None, &[]);
        drop(reg);
        if let Err(e) = r {
            let mut st = state();
            st.waiting.remove(&me);
            st.cleanup(key);
            return Err(e);
        }
    }
}

/// flock(2) on file `key` for description `owner`. `w` is None for LOCK_NB.
/// Converting a lock first drops the old one (as Linux does: another waiter may
/// get in between, and a failed LOCK_NB conversion leaves no lock).
pub fn flock(key: Key, owner: OwnerId, op: FlockOp, w: Option<&Arc<Waiter>>) -> Result<(), Errno> {
    lock_loop(key, owner, w, |f| {
        let mut changed = false;
        if let Some(i) = f.flocks.iter().position(|(o, _)| *o == owner) {
            if op == FlockOp::Lock(f.flocks[i].1) {
                return Ok(false);
            }
            f.flocks.remove(i);
            changed = true;
        }
        let FlockOp::Lock(ty) = op else {
            return Ok(changed);
        };
        if f.flocks.iter().any(|(o, t)| *o != owner && t.conflicts(ty)) {
            // Wake those that waited for the lock just dropped.
            if changed {
                f.queue.notify(EVENT_ALL);
            }
            return Err(Blocked { blocker: None });
        }
        f.flocks.push((owner, ty));
        Ok(true)
    })
}

/// F_SETLK / F_SETLKW / F_OFD_SETLK(W): sets (`ty` Some) or clears `req`'s range
/// for `req.owner`. `w` is None for the non-waiting commands (EAGAIN on a
/// conflict).
pub fn posix_set(
    key: Key,
    req: PosixLock,
    ty: Option<LockType>,
    w: Option<&Arc<Waiter>>,
) -> Result<(), Errno> {
    lock_loop(key, req.owner, w, |f| {
        if let Some(t) = ty {
            if let Some(c) = posix_conflict(&f.posix, req.owner, t, req.start, req.end) {
                return Err(Blocked {
                    blocker: (!req.ofd && !c.ofd).then_some(c.owner),
                });
            }
        }
        Ok(posix_apply(&mut f.posix, req, ty))
    })
}

/// F_GETLK / F_OFD_GETLK: the first lock that would block `ty` over
/// `start..=end` for `owner`.
pub fn posix_test(
    key: Key,
    owner: OwnerId,
    ty: LockType,
    start: i64,
    end: i64,
) -> Option<PosixLock> {
    let st = state();
    let f = st.files.get(&key)?;
    posix_conflict(&f.posix, owner, ty, start, end)
}

/// Drops `owner`'s POSIX locks on `key` (an fd of the file was closed).
pub fn release_posix(key: Key, owner: OwnerId) {
    let mut st = state();
    let Some(f) = st.files.get_mut(&key) else {
        return;
    };
    let n = f.posix.len();
    f.posix.retain(|l| l.owner != owner);
    if f.posix.len() != n {
        st.changed(key);
    }
}

/// Drops every lock `owner` holds on `key` (flock and OFD locks of a
/// description being freed).
pub fn release_on(key: Key, owner: OwnerId) {
    let mut st = state();
    let Some(f) = st.files.get_mut(&key) else {
        return;
    };
    let n = f.posix.len() + f.flocks.len();
    f.posix.retain(|l| l.owner != owner);
    f.flocks.retain(|(o, _)| *o != owner);
    if f.posix.len() + f.flocks.len() != n {
        st.changed(key);
    }
}

/// Drops every lock `owner` holds on any file (an fd table going away).
pub fn release_owner(owner: OwnerId) {
    let mut st = state();
    let keys: Vec<Key> = st
        .files
        .iter_mut()
        .filter_map(|(k, f)| {
            let n = f.posix.len() + f.flocks.len();
            f.posix.retain(|l| l.owner != owner);
            f.flocks.retain(|(o, _)| *o != owner);
            (f.posix.len() + f.flocks.len() != n).then_some(*k)
        })
        .collect();
    st.waiting.remove(&owner);
    for k in keys {
        st.changed(k);
    }
}

/// The locks held on `key` (for tests and /proc/locks-like views):
/// (flock locks, POSIX/OFD locks).
pub fn snapshot(key: Key) -> (Vec<(OwnerId, LockType)>, Vec<PosixLock>) {
    let st = state();
    st.files
        .get(&key)
        .map(|f| (f.flocks.clone(), f.posix.clone()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use abi::errno::ERESTARTSYS;

    const R: LockType = LockType::Read;
    const W: LockType = LockType::Write;

    fn lk(owner: OwnerId, ty: LockType, start: i64, end: i64) -> PosixLock {
        PosixLock {
            owner,
            ofd: false,
            pid: owner as i32,
            ty,
            start,
            end,
        }
    }

    fn ranges(v: &[PosixLock]) -> Vec<(OwnerId, LockType, i64, i64)> {
        v.iter().map(|l| (l.owner, l.ty, l.start, l.end)).collect()
    }

    fn key() -> Key {
        // A key no other test uses.
        (0xfeed, new_owner_id())
    }

    #[test]
    fn range_conversion() {
        assert_eq!(flock_range(0, 0, 0), Ok((0, OFFSET_MAX)));
        assert_eq!(flock_range(0, 10, 5), Ok((10, 14)));
        assert_eq!(flock_range(100, -10, 5), Ok((90, 94)));
        assert_eq!(flock_range(0, 10, -5), Ok((5, 9)));
        assert_eq!(flock_range(0, 10, -10), Ok((0, 9)));
        assert_eq!(flock_range(0, 10, -11), Err(Errno::EINVAL));
        assert_eq!(flock_range(0, -1, 1), Err(Errno::EINVAL));
        assert_eq!(flock_range(10, OFFSET_MAX, 1), Err(Errno::EOVERFLOW));
        assert_eq!(flock_range(0, OFFSET_MAX, 2), Err(Errno::EOVERFLOW));
        assert_eq!(flock_range(0, OFFSET_MAX, 1), Ok((OFFSET_MAX, OFFSET_MAX)));
        assert_eq!(flock_range(0, 0, i64::MIN), Err(Errno::EINVAL));
        assert_eq!(flock_range(0, i64::MIN, 0), Err(Errno::EINVAL));
        let l = lk(1, R, 5, OFFSET_MAX);
        assert_eq!(l.report(), (5, 0, 1));
        assert_eq!(lk(1, R, 5, 9).report(), (5, 5, 1));
    }

    #[test]
    fn split_and_merge() {
        let mut v = Vec::new();
        assert!(posix_apply(&mut v, lk(1, W, 0, 99), Some(W)));
        // Unlocking the middle splits the lock in two.
        assert!(posix_apply(&mut v, lk(1, W, 40, 59), None));
        assert_eq!(ranges(&v), vec![(1, W, 0, 39), (1, W, 60, 99)]);
        // Relocking the hole merges all three.
        assert!(posix_apply(&mut v, lk(1, W, 40, 59), Some(W)));
        assert_eq!(ranges(&v), vec![(1, W, 0, 99)]);
        // The same lock again changes nothing.
        assert!(!posix_apply(&mut v, lk(1, W, 10, 20), Some(W)));
        // A read lock in the middle: three pieces of two types.
        assert!(posix_apply(&mut v, lk(1, R, 10, 19), Some(R)));
        assert_eq!(
            ranges(&v),
            vec![(1, W, 0, 9), (1, R, 10, 19), (1, W, 20, 99)]
        );
        // Adjacent same-type locks merge.
        assert!(posix_apply(&mut v, lk(1, R, 20, 29), Some(R)));
        assert_eq!(
            ranges(&v),
            vec![(1, W, 0, 9), (1, R, 10, 29), (1, W, 30, 99)]
        );
        // Other owners are untouched; unlock to EOF trims.
        v.push(lk(2, R, 200, 300));
        assert!(posix_apply(&mut v, lk(1, W, 15, OFFSET_MAX), None));
        assert_eq!(
            ranges(&v),
            vec![(1, W, 0, 9), (1, R, 10, 14), (2, R, 200, 300)]
        );
        // Upgrading a whole range replaces both pieces.
        assert!(posix_apply(&mut v, lk(1, W, 0, 14), Some(W)));
        assert_eq!(ranges(&v), vec![(1, W, 0, 14), (2, R, 200, 300)]);
        // Unlocking what is not locked is no change.
        assert!(!posix_apply(&mut v, lk(1, W, 50, 60), None));
        // Locks touching OFFSET_MAX do not overflow.
        assert!(posix_apply(
            &mut v,
            lk(1, R, OFFSET_MAX, OFFSET_MAX),
            Some(R)
        ));
        assert!(posix_apply(&mut v, lk(1, R, 20, OFFSET_MAX - 1), Some(R)));
        assert_eq!(
            ranges(&v),
            vec![(1, W, 0, 14), (1, R, 20, OFFSET_MAX), (2, R, 200, 300)]
        );
        assert!(posix_apply(&mut v, lk(1, R, 0, OFFSET_MAX), None));
        assert_eq!(ranges(&v), vec![(2, R, 200, 300)]);
    }

    proptest::proptest! {
        /// posix_apply against a byte map: after any sequence of locks and
        /// unlocks by two owners, each owner's locks cover exactly the bytes
        /// the model says, with the model's types, never overlap each other,
        /// and same-type neighbours are merged.
        #[test]
        fn apply_matches_a_byte_model(
            ops in proptest::collection::vec((1u64..3, 0u8..3, 0i64..40, 0i64..12), 1..40)
        ) {
            const N: usize = 64;
            let mut model = [[None::<LockType>; N]; 3];
            let mut v: Vec<PosixLock> = Vec::new();
            for (owner, t, start, len) in ops {
                let ty = match t { 0 => None, 1 => Some(R), _ => Some(W) };
                let end = start + len;
                posix_apply(&mut v, lk(owner, W, start, end), ty);
                for b in start..=end {
                    model[owner as usize][b as usize] = ty;
                }
            }
            for owner in 1..3u64 {
                let mine: Vec<&PosixLock> = v.iter().filter(|l| l.owner == owner).collect();
                for b in 0..N as i64 {
                    let covering: Vec<&&PosixLock> =
                        mine.iter().filter(|l| l.start <= b && b <= l.end).collect();
                    proptest::prop_assert!(covering.len() <= 1, "overlap at {}", b);
                    proptest::prop_assert_eq!(
                        covering.first().map(|l| l.ty),
                        model[owner as usize][b as usize]
                    );
                }
                for w in mine.windows(2) {
                    proptest::prop_assert!(
                        w[0].end + 1 < w[1].start || w[0].ty != w[1].ty,
                        "unmerged neighbours {:?}", w
                    );
                }
            }
        }
    }

    #[test]
    fn conflicts() {
        let v = vec![lk(1, R, 0, 9), lk(1, W, 20, 29)];
        assert_eq!(posix_conflict(&v, 2, R, 0, 100), Some(v[1]));
        assert_eq!(posix_conflict(&v, 2, W, 0, 100), Some(v[0]));
        assert_eq!(posix_conflict(&v, 2, R, 0, 19), None);
        assert_eq!(posix_conflict(&v, 2, W, 10, 19), None);
        assert_eq!(
            posix_conflict(&v, 1, W, 0, 100),
            None,
            "own locks never conflict"
        );
        assert_eq!(posix_conflict(&v, 2, R, 29, 29), Some(v[1]));
    }

    #[test]
    fn table_flock_and_posix() {
        let k = key();
        let (a, b) = (new_owner_id(), new_owner_id());
        flock(k, a, FlockOp::Lock(R), None).unwrap();
        flock(k, b, FlockOp::Lock(R), None).unwrap();
        assert_eq!(flock(k, b, FlockOp::Lock(W), None), Err(Errno::EAGAIN));
        // The failed conversion dropped b's shared lock.
        assert_eq!(snapshot(k).0, vec![(a, R)]);
        // flock and POSIX locks do not conflict.
        posix_set(k, lk(b, W, 0, OFFSET_MAX), Some(W), None).unwrap();
        assert_eq!(
            posix_set(k, lk(a, R, 5, 5), Some(R), None),
            Err(Errno::EAGAIN)
        );
        assert_eq!(posix_test(k, a, R, 0, 0).map(|l| l.owner), Some(b));
        release_posix(k, b);
        assert_eq!(posix_test(k, a, W, 0, OFFSET_MAX), None);
        flock(k, a, FlockOp::Unlock, None).unwrap();
        assert_eq!(snapshot(k), (vec![], vec![]));
        assert!(!state().files.contains_key(&k), "entry freed");
    }

    #[test]
    fn blocking_wait_wakes_deadlock_and_interrupt() {
        let k = key();
        let (a, b) = (new_owner_id(), new_owner_id());
        posix_set(k, lk(a, W, 0, 9), Some(W), None).unwrap();
        posix_set(k, lk(b, W, 10, 19), Some(W), None).unwrap();
        let t = std::thread::spawn(move || {
            let w = Waiter::new().unwrap();
            // b waits for a's range.
            posix_set(k, lk(b, W, 0, 9), Some(W), Some(&w))
        });
        // Until b is recorded as waiting, a's request would just block.
        while !state().waiting.contains_key(&b) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let w = Waiter::new().unwrap();
        assert_eq!(
            posix_set(k, lk(a, W, 10, 19), Some(W), Some(&w)),
            Err(Errno::EDEADLK)
        );
        posix_set(k, lk(a, W, 0, 9), None, None).unwrap();
        assert_eq!(t.join().unwrap(), Ok(()));
        assert_eq!(posix_test(k, a, R, 0, 0).map(|l| l.owner), Some(b));

        // An interrupted wait gives ERESTARTSYS and leaves no trace.
        w.interrupt();
        assert_eq!(
            posix_set(k, lk(a, W, 0, 9), Some(W), Some(&w)),
            Err(Errno(ERESTARTSYS))
        );
        w.clear_interrupt();
        assert!(!state().waiting.contains_key(&a));
        release_owner(b);
        assert_eq!(snapshot(k), (vec![], vec![]));
    }

    #[test]
    fn ofd_locks_conflict_with_posix_of_same_process() {
        let k = key();
        let (files, desc) = (new_owner_id(), new_owner_id());
        posix_set(k, lk(files, R, 0, 9), Some(R), None).unwrap();
        let ofd = PosixLock {
            ofd: true,
            ..lk(desc, W, 0, 9)
        };
        assert_eq!(posix_set(k, ofd, Some(W), None), Err(Errno::EAGAIN));
        let c = posix_test(k, files, W, 0, 0);
        assert_eq!(c, None);
        release_on(k, files);
        posix_set(k, ofd, Some(W), None).unwrap();
        assert_eq!(posix_test(k, files, R, 0, 0).unwrap().report(), (0, 10, -1));
        release_on(k, desc);
        assert_eq!(snapshot(k), (vec![], vec![]));
    }
}
