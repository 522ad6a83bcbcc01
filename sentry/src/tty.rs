//! The kernel side of terminal job control: the [`fs::devpts::TtyHooks`] that
//! tell the pty code who is calling (process, group, session, credentials) and
//! deliver its signals (SIGINT/SIGQUIT/SIGTSTP from the line discipline,
//! SIGWINCH, SIGHUP on hang-up, SIGTTIN for background reads).

use std::sync::{Arc, Weak};

use fs::devpts::{Caller, TtyHooks};

use crate::kernel::Kernel;
use crate::signal::{self, sigbit, SigInfo};
use crate::task::current_task;

const CAP_SYS_ADMIN: u32 = 21;

/// The hooks, holding the kernel weakly (the VFS outlives no kernel, but the
/// kernel owns the VFS).
pub struct KernelTtyHooks(pub Weak<Kernel>);

impl KernelTtyHooks {
    /// Registers the hooks for `k`'s ptys.
    pub fn install(k: &Arc<Kernel>) {
        k.vfs
            .devpts()
            .set_hooks(Arc::new(KernelTtyHooks(Arc::downgrade(k))));
    }
}

impl TtyHooks for KernelTtyHooks {
    fn caller(&self) -> Option<Caller> {
        let t = current_task()?;
        let (pgid, sid) = {
            let st = t.tg.lock();
            (st.pgid, st.sid)
        };
        // try_lock: a file may be closed while its task publishes procfs state.
        let (uid, gid, admin) = match t.proc.try_lock() {
            Ok(v) => (
                v.creds.fsuid,
                v.creds.fsgid,
                v.creds.has_capability(CAP_SYS_ADMIN),
            ),
            Err(_) => (0, 0, false),
        };
        Some(Caller {
            tgid: t.tg.tgid,
            pgid,
            sid,
            admin,
            uid,
            gid,
        })
    }

    fn pgrp_session(&self, pgid: i32) -> Option<i32> {
        let k = self.0.upgrade()?;
        let g = k.process_group(pgid).into_iter().next()?;
        let sid = g.lock().sid;
        Some(sid)
    }

    fn signal_pgrp(&self, pgid: i32, sig: i32) {
        let Some(k) = self.0.upgrade() else {
            return;
        };
        for g in k.process_group(pgid) {
            k.send_to_group(&g, SigInfo::from_sender(sig, signal::SI_KERNEL, 0, 0));
        }
    }

    fn signal_process(&self, tgid: i32, sig: i32) {
        let Some(k) = self.0.upgrade() else {
            return;
        };
        if let Some(g) = k.group(tgid) {
            k.send_to_group(&g, SigInfo::from_sender(sig, signal::SI_KERNEL, 0, 0));
        }
    }

    fn pgrp_orphaned(&self, pgid: i32) -> bool {
        let Some(k) = self.0.upgrade() else {
            return true;
        };
        // Linux's will_become_orphaned_pgrp: orphaned unless some member has a
        // live parent in another group of the same session.
        for g in k.process_group(pgid) {
            let (parent, sid) = {
                let st = g.lock();
                (st.parent.clone(), st.sid)
            };
            let Some(p) = parent else {
                continue;
            };
            let ps = p.lock();
            if ps.zombie.is_none() && ps.pgid != pgid && ps.sid == sid {
                return false;
            }
        }
        true
    }

    fn caller_blocks_or_ignores(&self, sig: i32) -> bool {
        let Some(t) = current_task() else {
            return true;
        };
        if t.sigmask() & sigbit(sig) != 0 {
            return true;
        }
        let act = t.tg.handlers.get(sig);
        signal::is_ignored(&act, sig)
    }
}
