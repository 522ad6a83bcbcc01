//! Faults outside the sentry:
//! - a gofer that dies (killed from the host, or crashed) ends the sandbox.
//!   Its mount's file operations fail with EIO from then on, and every process
//!   is SIGKILLed, so that `runsc do` exits with status 137 and an OCI
//!   container becomes stopped, with one line on stderr saying why.
//! - a ptrace stub that dies (killed from the host) kills the process whose
//!   address space it was, with SIGKILL semantics; the rest goes on. A task
//!   running workload code notices at once; a watcher thread finds the stubs
//!   of tasks blocked in the sentry (every [`STUB_WATCH_PERIOD`]).

use std::sync::{Arc, OnceLock, Weak};

use sentry::Kernel;

static KERNEL: OnceLock<Weak<Kernel>> = OnceLock::new();

/// How often the stub watcher looks at every address space.
pub const STUB_WATCH_PERIOD: std::time::Duration = std::time::Duration::from_millis(100);

/// The kernel the watchers stop (set once it exists); starts the stub watcher.
pub fn set_kernel(k: &Arc<Kernel>) {
    if KERNEL.set(Arc::downgrade(k)).is_err() {
        return;
    }
    let weak = Arc::downgrade(k);
    let spawned = std::thread::Builder::new()
        .name("stub-watch".into())
        .spawn(move || loop {
            std::thread::sleep(STUB_WATCH_PERIOD);
            let Some(k) = weak.upgrade() else { return };
            k.kill_lost_address_spaces();
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the stub watcher: {e}");
    }
}

/// Watches the gofer behind `client`, which serves `mount`: when it hangs up,
/// says so on stderr and stops the sandbox.
pub fn watch_gofer(client: &Arc<gofer::Client>, mount: &str) {
    let c = client.clone();
    let name = mount.to_string();
    let spawned = std::thread::Builder::new()
        .name("gofer-watch".into())
        .spawn(move || {
            c.wait_hangup();
            let k = KERNEL.get().and_then(Weak::upgrade);
            // A gofer going away after init exited is the normal teardown.
            if k.as_ref().is_some_and(|k| k.init_exited()) {
                return;
            }
            eprintln!("runsc: the gofer for {name} died; stopping the sandbox");
            tracing::warn!("the gofer for {name} died; stopping the sandbox");
            match k {
                Some(k) => k.kill_all(),
                // Still booting: nothing to stop but ourselves.
                None => std::process::exit(1),
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot watch the gofer for {mount}: {e}");
    }
}
