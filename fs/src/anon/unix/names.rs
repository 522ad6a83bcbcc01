//! The sandbox's AF_UNIX name space: abstract names and the file-system nodes
//! sockets are bound to (Linux's unix_socket_table). It belongs to the
//! sandbox, so a workload never reaches the host's abstract sockets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use abi::Errno;

use super::UnixSocket;
use crate::socket::NodeKey;

/// What a bound socket is found by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// The name's bytes after the leading NUL.
    Abstract(Vec<u8>),
    /// The S_IFSOCK node bind(2) created.
    Path(NodeKey),
}

/// Bound AF_UNIX sockets by name.
#[derive(Default)]
pub struct Namespace {
    bound: Mutex<HashMap<Key, Weak<UnixSocket>>>,
    /// The next autobind name to try (Linux's ordernum).
    order: Mutex<u32>,
}

/// Autobind names are five hex digits.
const AUTOBIND_NAMES: u32 = 0x10_0000;

impl Namespace {
    /// The sandbox's name space (one sentry process runs one sandbox).
    pub fn sandbox() -> Arc<Namespace> {
        static NS: OnceLock<Arc<Namespace>> = OnceLock::new();
        NS.get_or_init(Default::default).clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Weak<UnixSocket>>> {
        self.bound.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Binds `key` to `s`: EADDRINUSE if a live socket has it.
    pub fn insert(&self, key: Key, s: &Arc<UnixSocket>) -> Result<(), Errno> {
        let mut m = self.lock();
        if m.get(&key).and_then(Weak::upgrade).is_some() {
            return Err(Errno::EADDRINUSE);
        }
        m.insert(key, Arc::downgrade(s));
        Ok(())
    }

    /// Binds a fresh abstract name (autobind): its bytes, leading NUL
    /// included. EADDRINUSE once all names are taken (Linux: ENOSPC).
    pub fn autobind(&self, s: &Arc<UnixSocket>) -> Result<Vec<u8>, Errno> {
        let mut order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..AUTOBIND_NAMES {
            let n = *order % AUTOBIND_NAMES;
            *order = order.wrapping_add(1);
            let name = format!("{n:05x}").into_bytes();
            if self.insert(Key::Abstract(name.clone()), s).is_ok() {
                let mut v = vec![0];
                v.extend_from_slice(&name);
                return Ok(v);
            }
        }
        Err(Errno::ENOSPC)
    }

    /// Forgets `key` if it is still `s`'s.
    pub fn remove(&self, key: &Key, s: *const UnixSocket) {
        let mut m = self.lock();
        if m.get(key).is_some_and(|w| std::ptr::eq(w.as_ptr(), s)) {
            m.remove(key);
        }
    }

    /// The socket bound to `key`, if any.
    pub fn find(&self, key: &Key) -> Option<Arc<UnixSocket>> {
        self.lock().get(key).and_then(Weak::upgrade)
    }
}
