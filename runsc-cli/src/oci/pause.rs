//! `runsc pause ID` / `runsc resume ID`: freeze every task of the sandbox
//! (none returns to workload code; see `sentry::Kernel::freeze`) and thaw it.
//! state.json says "paused" meanwhile.

use super::control::{self, Request};
use super::state::Status;
use super::{fail, one_id, parse_args, root};
use crate::cli::Global;

/// `runsc pause ID`.
pub fn cmd_pause(g: &Global, args: &[String]) -> i32 {
    run(g, args, true)
}

/// `runsc resume ID`.
pub fn cmd_resume(g: &Global, args: &[String]) -> i32 {
    run(g, args, false)
}

fn run(g: &Global, args: &[String], pause: bool) -> i32 {
    let cmd = if pause { "pause" } else { "resume" };
    let r = parse_args(args, &[], &[], &[])
        .and_then(|a| one_id(&a, cmd))
        .and_then(|id| set(g, &id, pause));
    match r {
        Ok(()) => 0,
        Err(e) => fail(g, &e),
    }
}

fn set(g: &Global, id: &str, pause: bool) -> Result<(), String> {
    let dir = super::state::Dir::open(&root(g), id)?;
    let mut st = dir.load()?;
    let status = dir.live_status(&st);
    match (pause, status) {
        (true, Status::Running) | (false, Status::Paused) => {}
        (true, Status::Paused) => return Err("container already paused".into()),
        (false, Status::Running) => return Err("container not paused".into()),
        (_, s) => return Err(format!("container not running: {}", s.as_str())),
    }
    let req = if pause {
        Request::Pause
    } else {
        Request::Resume
    };
    let resp = control::call(&dir.control_path(), &req)
        .map_err(|e| format!("container \"{id}\": cannot reach the sandbox: {e}"))?;
    if !resp.ok {
        return Err(resp.error.unwrap_or_else(|| "failed".into()));
    }
    st.status = if pause {
        Status::Paused
    } else {
        Status::Running
    };
    dir.save(&st)
}
