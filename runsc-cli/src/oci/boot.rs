//! The sandbox's side of the OCI lifecycle (in `runsc boot`): the start gate
//! the loaded init waits on, the control socket, and the exit-status file.

use std::sync::{Arc, Condvar, Mutex};

use sentry::kernel::SigOrigin;
use sentry::signal::{DefaultAction, SigInfo, SI_USER};
use sentry::Kernel;

use super::control::{Reply, Request, Response};

/// Holds init back until "start".
#[derive(Default)]
pub struct Gate {
    started: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    pub fn wait_start(&self) {
        let mut s = self.started.lock().unwrap_or_else(|e| e.into_inner());
        while !*s {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Opens the gate; false if it was already open.
    fn start(&self) -> bool {
        let mut s = self.started.lock().unwrap_or_else(|e| e.into_inner());
        if *s {
            return false;
        }
        *s = true;
        self.cv.notify_all();
        true
    }

    fn is_started(&self) -> bool {
        *self.started.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The exit-status file, created (empty: "not exited") before the sentry
/// confines itself, since the state directory is out of its reach afterwards.
static EXIT_FILE: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// Creates the (empty) exit-status file at `path` and keeps it open for
/// [`record_exit`].
pub fn open_exit_file(path: &str) -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    *EXIT_FILE.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
    Ok(())
}

/// Writes init's exit status (a shell code) where `runsc wait` and `runsc
/// state` find it after the sandbox is gone (an empty file reads as not
/// exited; the status is one small write).
/// Idempotent: the first caller writes it (init's status is final).
pub fn record_exit(code: i32) {
    static RECORDED: Mutex<bool> = Mutex::new(false);
    let mut done = RECORDED.lock().unwrap_or_else(|e| e.into_inner());
    if std::mem::replace(&mut *done, true) {
        return;
    }
    let f = EXIT_FILE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(f) = f.as_ref() else {
        tracing::warn!("no exit-status file to write {code} to");
        return;
    };
    if let Err(e) = std::os::unix::fs::FileExt::write_all_at(f, format!("{code}\n").as_bytes(), 0) {
        tracing::warn!("writing the exit status: {e}");
    }
}

/// Listens on the control socket and answers start, signal and wait (and
/// exec, ps, pause, resume and stats).
pub fn serve_control(
    kernel: &Arc<Kernel>,
    gate: Arc<Gate>,
    init: i32,
    listener: std::os::unix::net::UnixListener,
) -> std::io::Result<()> {
    let k = kernel.clone();
    let handler = move |req: Request, fds: Vec<std::os::fd::OwnedFd>| -> Reply {
        // Only exec takes descriptors; any others are closed here.
        let fds = if matches!(req, Request::Exec { .. }) {
            fds
        } else {
            Vec::new()
        };
        let init_alive = k.group(init).is_some_and(|g| g.lock().zombie.is_none());
        let r = match req {
            Request::Start => {
                if gate.start() {
                    Response::ok()
                } else {
                    Response::err("container already started")
                }
            }
            Request::Signal { signal, all } => {
                if !(1..=64).contains(&signal) {
                    return Response::err(format!("invalid signal {signal}")).into();
                }
                if !gate.is_started() {
                    // Init has not run a single instruction: it has no handlers,
                    // so the default action decides.
                    return match sentry::signal::default_action(signal) {
                        DefaultAction::Terminate | DefaultAction::Core => {
                            let code = 128 + signal;
                            record_exit(code);
                            std::process::exit(code);
                        }
                        _ => Response::ok().into(),
                    };
                }
                let targets = if all {
                    k.all_groups()
                } else {
                    k.group(init).into_iter().collect()
                };
                if targets.is_empty() {
                    return Response::err("container not running").into();
                }
                // From the container engine, outside the sandbox's PID
                // namespace: si_pid 0, and forced, so that init (which gets
                // no signal it has no handler for) still dies of SIGKILL.
                for tg in targets {
                    k.send_to_group_from(
                        &tg,
                        SigInfo::from_sender(signal, SI_USER, 0, 0),
                        SigOrigin::Outside,
                    );
                }
                Response::ok()
            }
            Request::Wait => {
                let st = k.wait_init();
                // Recorded before the answer, so that a `delete` right after
                // `wait` finds the container stopped.
                record_exit(st.shell_code());
                Response {
                    ok: true,
                    status: Some(st.shell_code()),
                    ..Default::default()
                }
            }
            Request::Exec { process, wait } => {
                return super::exec::handle(&k, init_alive, &process, fds, wait);
            }
            Request::Ps => Response {
                ok: true,
                processes: Some(super::ps::list(&k)),
                ..Default::default()
            },
            Request::Stats => Response {
                ok: true,
                stats: Some(super::events::collect(&k)),
                ..Default::default()
            },
            Request::Pause => {
                if !k.freeze(std::time::Duration::from_secs(5)) {
                    tracing::warn!("pause: some task did not leave workload code in time");
                }
                Response::ok()
            }
            Request::Resume => {
                k.thaw();
                Response::ok()
            }
            Request::SetLimits { memory, max_tasks } => {
                if let Some(m) = memory {
                    k.set_memory_limit(m);
                }
                if let Some(t) = max_tasks {
                    k.limits.set_max_tasks(t.try_into().unwrap_or(usize::MAX));
                }
                Response::ok()
            }
        };
        Reply::One(r)
    };
    super::control::serve(listener, Arc::new(handler))
}
