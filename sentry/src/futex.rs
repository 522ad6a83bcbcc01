//! Futexes: wait queues keyed by address. Private futexes are keyed by (memory
//! manager, address); shared ones by memory-file offset, so that processes
//! sharing memory meet on the same queue.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use abi::Errno;
use fs::waiter::{block, Waiter};

use crate::task::{Task, TaskShared};

/// Identifies one futex word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FutexKey {
    /// An address in one memory manager. `shared` is set for a non-private
    /// futex on private memory: Linux keys those apart from FUTEX_PRIVATE ones
    /// (FUT_OFF_MMSHARED), so a private wake never reaches a shared waiter.
    Private {
        mm: usize,
        addr: u64,
        shared: bool,
    },
    Shared {
        offset: u64,
    },
}

impl FutexKey {
    /// The key of `addr` in `t`'s address space (`private`: FUTEX_PRIVATE_FLAG).
    pub fn of(t: &Task, addr: u64, private: bool) -> Result<FutexKey, Errno> {
        if !addr.is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        if !private {
            if let Some(offset) = t.mm.shared_offset(addr)? {
                return Ok(FutexKey::Shared { offset });
            }
        }
        Ok(FutexKey::Private {
            mm: Arc::as_ptr(&t.mm) as usize,
            addr,
            shared: !private,
        })
    }
}

struct Entry {
    id: u64,
    waiter: Arc<Waiter>,
    bitset: u32,
    woken: Arc<AtomicBool>,
    /// For a FUTEX_LOCK_PI waiter: its own TID (the value UNLOCK_PI hands the
    /// word to); 0 for a plain waiter.
    pi_tid: u32,
    /// For a FUTEX_LOCK_PI waiter: the TID of the owner it waits on, so that
    /// the owner's exit can wake it to take the lock over.
    pi_owner: u32,
}

/// All futex wait queues of a sandbox.
#[derive(Default)]
pub struct Futexes {
    queues: Mutex<HashMap<FutexKey, Vec<Entry>>>,
    next_id: AtomicU64,
    /// Tasks that have run their futex exit cleanup but are not yet marked
    /// `exited`: PI lockers must treat them as dead already, or they could
    /// queue behind an owner whose exit has already looked for waiters.
    /// Locked after `queues`.
    dying: Mutex<Vec<Weak<TaskShared>>>,
}

/// FUTEX_BITSET_MATCH_ANY.
pub const MATCH_ANY: u32 = u32::MAX;

impl Futexes {
    /// FUTEX_WAIT(_BITSET): sleeps while `check()` (run under the queue lock, so a
    /// wake between check and sleep is not lost) says the word still holds the
    /// expected value; EAGAIN if not, ETIMEDOUT at `deadline`, ERESTARTSYS when
    /// interrupted.
    pub fn wait(
        &self,
        waiter: &Arc<Waiter>,
        key: FutexKey,
        bitset: u32,
        check: impl FnOnce() -> Result<bool, Errno>,
        deadline: Option<Instant>,
    ) -> Result<(), Errno> {
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let woken = Arc::new(AtomicBool::new(false));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut q = self.queues.lock().unwrap();
            if !check()? {
                return Err(Errno::EAGAIN);
            }
            q.entry(key).or_default().push(Entry {
                id,
                waiter: waiter.clone(),
                bitset,
                woken: woken.clone(),
                pi_tid: 0,
                pi_owner: 0,
            });
        }
        let r = block(waiter, &[], &[], deadline, || {
            if woken.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err(Errno::EAGAIN)
            }
        });
        if r.is_err() {
            // Timed out or interrupted: leave the queue (it may have moved by requeue).
            let mut q = self.queues.lock().unwrap();
            for v in q.values_mut() {
                v.retain(|e| e.id != id);
            }
            q.retain(|_, v| !v.is_empty());
            if woken.load(Ordering::SeqCst) {
                return Ok(());
            }
        }
        r
    }

    /// FUTEX_WAKE(_BITSET): wakes up to `n` waiters whose bitset intersects.
    pub fn wake(&self, key: FutexKey, bitset: u32, n: u32) -> Result<u64, Errno> {
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let mut q = self.queues.lock().unwrap();
        Ok(Self::wake_locked(&mut q, key, bitset, n))
    }

    fn wake_locked(
        q: &mut HashMap<FutexKey, Vec<Entry>>,
        key: FutexKey,
        bitset: u32,
        n: u32,
    ) -> u64 {
        let Some(v) = q.get_mut(&key) else { return 0 };
        let mut count = 0u64;
        let mut i = 0;
        while i < v.len() && count < n as u64 {
            if v[i].bitset & bitset != 0 {
                let e = v.remove(i);
                e.woken.store(true, Ordering::SeqCst);
                e.waiter.notify();
                count += 1;
            } else {
                i += 1;
            }
        }
        if v.is_empty() {
            q.remove(&key);
        }
        count
    }

    /// FUTEX_REQUEUE / FUTEX_CMP_REQUEUE: wakes `n_wake` waiters of `from` and moves
    /// up to `n_requeue` others to `to`. `check` (CMP_REQUEUE) runs under the lock.
    pub fn requeue(
        &self,
        from: FutexKey,
        to: FutexKey,
        n_wake: u32,
        n_requeue: u32,
        check: impl FnOnce() -> Result<bool, Errno>,
    ) -> Result<u64, Errno> {
        let mut q = self.queues.lock().unwrap();
        if !check()? {
            return Err(Errno::EAGAIN);
        }
        let woke = Self::wake_locked(&mut q, from, u32::MAX, n_wake);
        let mut moved = Vec::new();
        if let Some(v) = q.get_mut(&from) {
            let n = (n_requeue as usize).min(v.len());
            moved.extend(v.drain(..n));
            if v.is_empty() {
                q.remove(&from);
            }
        }
        let count = moved.len() as u64;
        if count > 0 {
            q.entry(to).or_default().extend(moved);
        }
        Ok(woke + count)
    }

    /// FUTEX_WAKE_OP: atomically applies `op` to the word at `addr2` (via `apply`,
    /// which returns the old value), wakes `n1` on `k1` and, if the comparison
    /// holds on the old value, `n2` on `k2`.
    pub fn wake_op(
        &self,
        k1: FutexKey,
        k2: FutexKey,
        n1: u32,
        n2: u32,
        apply: impl FnOnce() -> Result<u32, Errno>,
        cmp: impl FnOnce(u32) -> bool,
    ) -> Result<u64, Errno> {
        let mut q = self.queues.lock().unwrap();
        let old = apply()?;
        let mut n = Self::wake_locked(&mut q, k1, u32::MAX, n1);
        if cmp(old) {
            n += Self::wake_locked(&mut q, k2, u32::MAX, n2);
        }
        Ok(n)
    }
}

/// Wakes `n` waiters on `addr` with a non-private FUTEX_WAKE, as the kernel does
/// for CLONE_CHILD_CLEARTID at exit and for robust-list cleanup.
pub fn wake_addr(t: &Task, addr: u64, n: u32) -> Result<u64, Errno> {
    t.kernel
        .futexes
        .wake(FutexKey::of(t, addr, false)?, MATCH_ANY, n)
}

const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// Most robust-list entries walked (Linux's ROBUST_LIST_LIMIT).
const ROBUST_LIST_LIMIT: usize = 2048;

/// At thread exit, marks the robust futexes it still holds as OWNER_DIED and
/// wakes a waiter of each (Linux's exit_robust_list), then lets a waiter of
/// each PI futex it still owns take that over (Linux's exit_pi_state_list).
pub fn exit_robust_list(t: &Task) {
    walk_robust_list(t);
    exit_pi(t);
}

fn walk_robust_list(t: &Task) {
    let (head, len) = t.robust_list;
    if head == 0 || len != 24 {
        return;
    }
    let (Ok(mut entry), Ok(offset), Ok(pending)) = (
        t.copy_in_u64(head),
        t.copy_in_u64(head + 8),
        t.copy_in_u64(head + 16),
    ) else {
        return;
    };
    let offset = offset as i64;
    let handle = |e: u64| {
        // The list pointers carry the PI flag in bit 0.
        let pi = e & 1 != 0;
        let word = (e & !1).wrapping_add(offset as u64);
        let tid = t.tid as u32;
        let Ok(old) = t.mm.update_u32(word, |v| {
            if v & FUTEX_TID_MASK == tid {
                (v & FUTEX_WAITERS) | FUTEX_OWNER_DIED
            } else {
                v
            }
        }) else {
            return;
        };
        // PI waiters are woken by exit_pi (they may wait on a private key,
        // which a shared wake would miss), as in Linux's handle_futex_death.
        if !pi && old & FUTEX_TID_MASK == tid && old & FUTEX_WAITERS != 0 {
            let _ = wake_addr(t, word, 1);
        }
    };
    let mut n = 0;
    while entry != head && entry != 0 && n < ROBUST_LIST_LIMIT {
        let next = t.copy_in_u64(entry & !1);
        if entry != pending {
            handle(entry);
        }
        match next {
            Ok(nx) => entry = nx,
            Err(_) => break,
        }
        n += 1;
    }
    if pending != 0 {
        handle(pending);
    }
}

/// The exit half of PI futexes: from now on lockers treat `t` as dead, and on
/// each PI futex `t` still owns, the first waiter is woken to take it over
/// (with FUTEX_OWNER_DIED, see `Futexes::lock_pi`).
fn exit_pi(t: &Task) {
    let f = &t.kernel.futexes;
    let me = t.tid as u32 & FUTEX_TID_MASK;
    let mut q = f.queues.lock().unwrap();
    {
        let mut d = f.dying.lock().unwrap();
        prune_dying(&mut d);
        d.push(Arc::downgrade(&t.shared));
    }
    for v in q.values_mut() {
        if let Some(i) = v.iter().position(|e| e.pi_tid != 0 && e.pi_owner == me) {
            let e = v.remove(i);
            e.woken.store(true, Ordering::SeqCst);
            e.waiter.notify();
        }
    }
    q.retain(|_, v| !v.is_empty());
}

/// Drops the `dying` entries whose task is gone or marked exited (which says
/// the same).
fn prune_dying(d: &mut Vec<Weak<TaskShared>>) {
    d.retain(|w| {
        w.upgrade()
            .is_some_and(|s| !s.exited.load(Ordering::SeqCst))
    });
}

/// Priority-inheritance futexes (FUTEX_LOCK_PI, LOCK_PI2, TRYLOCK_PI,
/// UNLOCK_PI). The word holds the owner's TID, FUTEX_WAITERS and
/// FUTEX_OWNER_DIED; user space takes and releases an uncontended lock with
/// compare-and-swap and calls in only when contended. The priority
/// inheritance proper (boosting the owner) has no meaning here, as the host
/// schedules the sentry's threads: waiters are served in FIFO order.
impl Futexes {
    /// Whether `tid` names a live task (not exited, nor past its futex exit
    /// cleanup).
    fn pi_owner_alive(&self, t: &Task, tid: u32) -> bool {
        let Some(s) = t.kernel.task(tid as i32) else {
            return false;
        };
        if s.exited.load(Ordering::SeqCst) {
            return false;
        }
        let mut d = self.dying.lock().unwrap();
        prune_dying(&mut d);
        !d.iter().any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&s)))
    }

    /// Records `owner` as the owner the PI waiters of `key` wait on.
    fn set_pi_owner(q: &mut HashMap<FutexKey, Vec<Entry>>, key: FutexKey, owner: u32) {
        if let Some(v) = q.get_mut(&key) {
            for e in v.iter_mut().filter(|e| e.pi_tid != 0) {
                e.pi_owner = owner;
            }
        }
    }

    /// FUTEX_LOCK_PI(2) (`try_only`: FUTEX_TRYLOCK_PI) on the word at `addr`,
    /// of key `key`: takes the lock if it is free (keeping OWNER_DIED), fails
    /// with EDEADLK if we own it, ESRCH if its owner does not exist, EAGAIN
    /// for a trylock; otherwise sets FUTEX_WAITERS and sleeps until
    /// UNLOCK_PI hands the lock over (or its owner dies), ETIMEDOUT at
    /// `deadline`, ERESTARTNOINTR when interrupted.
    pub fn lock_pi(
        &self,
        t: &Task,
        key: FutexKey,
        addr: u64,
        deadline: Option<Instant>,
        try_only: bool,
    ) -> Result<(), Errno> {
        let me = t.tid as u32 & FUTEX_TID_MASK;
        let mm = &t.mm;
        let load = || mm.update_u32(addr, |v| v);
        let cas = |old: u32, new: u32| -> Result<bool, Errno> {
            Ok(mm.update_u32(addr, |v| if v == old { new } else { v })? == old)
        };
        let waiter = t.waiter().clone();
        // Set once we have been queued: the word naming us then means UNLOCK_PI
        // handed the lock to us, and an owner dead since is one we waited on.
        let mut slept = false;
        loop {
            let mut q = self.queues.lock().unwrap();
            let cur = load()?;
            let owner = cur & FUTEX_TID_MASK;
            if owner == me {
                return if slept { Ok(()) } else { Err(Errno::EDEADLK) };
            }
            let others = q.get(&key).is_some_and(|v| v.iter().any(|e| e.pi_tid != 0));
            let waiters = if others { FUTEX_WAITERS } else { 0 };
            if owner == 0 {
                // Free, possibly after a robust owner died: keep OWNER_DIED so
                // that user space learns of it.
                if cas(cur, me | (cur & FUTEX_OWNER_DIED) | waiters)? {
                    Self::set_pi_owner(&mut q, key, me);
                    return Ok(());
                }
                continue;
            }
            if !self.pi_owner_alive(t, owner) {
                if slept {
                    // The owner we waited on died holding the lock: take it
                    // over flagged OWNER_DIED (Linux's fixup_pi_state_owner).
                    if cas(cur, me | FUTEX_OWNER_DIED | waiters)? {
                        Self::set_pi_owner(&mut q, key, me);
                        return Ok(());
                    }
                    continue;
                }
                if load()? != cur {
                    continue;
                }
                return Err(Errno::ESRCH);
            }
            if try_only {
                return Err(Errno::EAGAIN);
            }
            if cur & FUTEX_WAITERS == 0 && !cas(cur, cur | FUTEX_WAITERS)? {
                continue;
            }
            let woken = Arc::new(AtomicBool::new(false));
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            q.entry(key).or_default().push(Entry {
                id,
                waiter: waiter.clone(),
                bitset: MATCH_ANY,
                woken: woken.clone(),
                pi_tid: me,
                pi_owner: owner,
            });
            drop(q);
            let r = block(&waiter, &[], &[], deadline, || {
                if woken.load(Ordering::SeqCst) {
                    Ok(())
                } else {
                    Err(Errno::EAGAIN)
                }
            });
            slept = true;
            if let Err(e) = r {
                let mut q = self.queues.lock().unwrap();
                for v in q.values_mut() {
                    v.retain(|e| e.id != id);
                }
                q.retain(|_, v| !v.is_empty());
                if !woken.load(Ordering::SeqCst) {
                    // FUTEX_WAITERS stays set, as in Linux: the owner's unlock
                    // comes here and finds nobody.
                    return Err(if e.0 == abi::errno::ERESTARTSYS {
                        Errno(abi::errno::ERESTARTNOINTR)
                    } else {
                        e
                    });
                }
                // Woken as well (maybe handed the lock): look again.
            }
        }
    }

    /// FUTEX_UNLOCK_PI: EPERM unless the word names us; hands the lock to the
    /// first waiter (its TID, with FUTEX_WAITERS if more wait) and wakes it,
    /// or clears the word.
    pub fn unlock_pi(&self, t: &Task, key: FutexKey, addr: u64) -> Result<(), Errno> {
        let me = t.tid as u32 & FUTEX_TID_MASK;
        let mut q = self.queues.lock().unwrap();
        let next = q.get(&key).and_then(|v| {
            let mut pi = v.iter().filter(|e| e.pi_tid != 0);
            let first = pi.next()?;
            Some((first.id, first.pi_tid, pi.next().is_some()))
        });
        let new = match next {
            Some((_, tid, more)) => tid | if more { FUTEX_WAITERS } else { 0 },
            None => 0,
        };
        let old =
            t.mm.update_u32(addr, |v| if v & FUTEX_TID_MASK == me { new } else { v })?;
        if old & FUTEX_TID_MASK != me {
            return Err(Errno::EPERM);
        }
        if let Some((id, tid, _)) = next {
            let v = q.get_mut(&key).expect("PI waiter queue");
            let i = v.iter().position(|e| e.id == id).expect("PI waiter");
            let e = v.remove(i);
            if v.is_empty() {
                q.remove(&key);
            }
            Self::set_pi_owner(&mut q, key, tid);
            e.woken.store(true, Ordering::SeqCst);
            e.waiter.notify();
        }
        Ok(())
    }
}
