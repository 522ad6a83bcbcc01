//! Futexes: wait queues keyed by address. Private futexes are keyed by (memory
//! manager, address); shared ones by memory-file offset, so that processes
//! sharing memory meet on the same queue.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use abi::Errno;
use fs::waiter::{block, Waiter};

use crate::task::Task;

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
        if addr % 4 != 0 {
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
}

/// All futex wait queues of a sandbox.
#[derive(Default)]
pub struct Futexes {
    queues: Mutex<HashMap<FutexKey, Vec<Entry>>>,
    next_id: AtomicU64,
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
/// wakes a waiter of each (Linux's exit_robust_list).
pub fn exit_robust_list(t: &Task) {
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
        if old & FUTEX_TID_MASK == tid && old & FUTEX_WAITERS != 0 {
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
