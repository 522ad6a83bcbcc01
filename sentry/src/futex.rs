//! Futexes: wait queues keyed by address. Private futexes are keyed by (memory
//! manager, address); shared ones will be keyed by memory-file offset once memory
//! is shared between processes (until then the two coincide).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use abi::Errno;

/// Identifies one futex word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FutexKey {
    /// The owning memory manager's identity (its address).
    pub mm: usize,
    pub addr: u64,
}

struct Waiter {
    bitset: u32,
    woken: Mutex<bool>,
    cv: Condvar,
}

/// All futex wait queues of a sandbox.
#[derive(Default)]
pub struct Futexes {
    queues: Mutex<HashMap<FutexKey, Vec<Arc<Waiter>>>>,
}

impl Futexes {
    /// FUTEX_WAIT(_BITSET): blocks while `*addr == val` (checked by `check` under
    /// the queue lock, so a wake between check and sleep is not lost) until woken
    /// or `deadline` passes (ETIMEDOUT). EAGAIN when the value differs.
    pub fn wait(
        &self,
        key: FutexKey,
        bitset: u32,
        check: impl FnOnce() -> Result<bool, Errno>,
        deadline: Option<Instant>,
    ) -> Result<(), Errno> {
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let w = Arc::new(Waiter {
            bitset,
            woken: Mutex::new(false),
            cv: Condvar::new(),
        });
        {
            let mut q = self.queues.lock().unwrap();
            if !check()? {
                return Err(Errno::EAGAIN);
            }
            q.entry(key).or_default().push(w.clone());
        }
        let mut woken = w.woken.lock().unwrap();
        while !*woken {
            match deadline {
                None => woken = w.cv.wait(woken).unwrap(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        drop(woken);
                        return self.cancel(key, &w);
                    }
                    woken = w.cv.wait_timeout(woken, d - now).unwrap().0;
                }
            }
        }
        Ok(())
    }

    /// Removes a timed-out waiter; if a wake raced with the timeout, it counts.
    fn cancel(&self, key: FutexKey, w: &Arc<Waiter>) -> Result<(), Errno> {
        let mut q = self.queues.lock().unwrap();
        if let Some(v) = q.get_mut(&key) {
            if let Some(i) = v.iter().position(|x| Arc::ptr_eq(x, w)) {
                v.remove(i);
                if v.is_empty() {
                    q.remove(&key);
                }
                return Err(Errno::ETIMEDOUT);
            }
        }
        Ok(())
    }

    /// FUTEX_WAKE(_BITSET): wakes up to `n` waiters whose bitset intersects.
    pub fn wake(&self, key: FutexKey, bitset: u32, n: u32) -> Result<u64, Errno> {
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let mut q = self.queues.lock().unwrap();
        let Some(v) = q.get_mut(&key) else {
            return Ok(0);
        };
        let mut count = 0u64;
        let mut i = 0;
        while i < v.len() && count < n as u64 {
            if v[i].bitset & bitset != 0 {
                let w = v.remove(i);
                *w.woken.lock().unwrap() = true;
                w.cv.notify_one();
                count += 1;
            } else {
                i += 1;
            }
        }
        if v.is_empty() {
            q.remove(&key);
        }
        Ok(count)
    }
}
