//! Networking: the sandbox's sockets of the Internet families.

pub mod inet;

use std::sync::{Arc, Mutex, OnceLock};

use abi::Errno;
use netstack::{Stack, StackConfig};

/// The sandbox's own TCP/IP stack (`--network=none` and `sandbox`): made at
/// boot when it has links to drive, else on the first AF_INET/AF_INET6
/// socket (loopback only), so sandboxes that never use the network pay
/// nothing for it.
#[derive(Default)]
pub struct Netstack {
    stack: OnceLock<Arc<Stack>>,
    config: Mutex<Option<StackConfig>>,
}

impl Netstack {
    /// Starts the stack now with `cfg` (the links boot took over).
    pub fn start(&self, cfg: StackConfig) -> std::io::Result<()> {
        let s = Stack::new(cfg)?;
        let _ = self.stack.set(s);
        Ok(())
    }

    /// The stack, started (loopback only) if it is not running yet.
    pub fn get(&self) -> Result<Arc<Stack>, Errno> {
        if let Some(s) = self.stack.get() {
            return Ok(s.clone());
        }
        let mut cfg = self.config.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = self.stack.get() {
            return Ok(s.clone());
        }
        let s = Stack::new(cfg.take().unwrap_or_default()).map_err(|e| {
            tracing::warn!("netstack: cannot start: {e}");
            Errno::ENOBUFS
        })?;
        let _ = self.stack.set(s.clone());
        Ok(s)
    }

    /// The stack if it is running.
    pub fn running(&self) -> Option<Arc<Stack>> {
        self.stack.get().cloned()
    }
}
