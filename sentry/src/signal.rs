//! Signals: queuing, default actions and delivery (being written).

use crate::task::{ExitStatus, Task};

/// Signals whose default action is to do nothing.
pub fn default_ignored(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGCHLD | libc::SIGCONT | libc::SIGURG | libc::SIGWINCH
    )
}

/// Sends `sig` to the calling task. Until delivery to handlers exists, only
/// ignore and the default terminate action are carried out.
pub fn send_to_self(t: &mut Task, sig: i32) {
    if !(1..=64).contains(&sig) {
        return;
    }
    let act = t.sigactions[sig as usize - 1];
    if act.handler == 1 || (act.handler == 0 && default_ignored(sig)) {
        return;
    }
    if act.handler == 0 {
        t.exit_status = Some(ExitStatus::Signaled(sig));
    }
}
