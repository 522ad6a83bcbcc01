//! The sandbox's side of the OCI lifecycle (in `runsc boot`): the start gate
//! the loaded init waits on, the control socket, and the exit-status file.

use std::path::Path;
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

/// Where init's exit status goes, opened before the sentry confines itself
/// (its seccomp filter forbids opening files): the state directory and a
/// temporary file in it, renamed over the exit file once the status is known.
struct ExitRecorder {
    path: String,
    dir: std::os::fd::OwnedFd,
    tmp: std::fs::File,
}

static RECORDER: Mutex<Option<ExitRecorder>> = Mutex::new(None);

/// Opens what [`record_exit`] needs for `path`; returns the state directory's
/// fd (the only directory the sentry's filter lets it rename in).
pub fn prepare_exit_file(path: &str) -> std::io::Result<std::os::fd::RawFd> {
    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let p = Path::new(path);
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = p
        .file_name()
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let cpath = |p: &std::ffi::OsStr| {
        CString::new(std::os::unix::ffi::OsStrExt::as_bytes(p))
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))
    };
    let dir_c = cpath(parent.as_os_str())?;
    // SAFETY: a valid C string; the result is checked.
    let d = unsafe {
        libc::open(
            dir_c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if d < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    let dir = unsafe { OwnedFd::from_raw_fd(d) };
    let mut tmp_name = name.to_owned();
    tmp_name.push(".tmp");
    let tmp_c = cpath(&tmp_name)?;
    // SAFETY: a valid C string and our directory fd; the result is checked.
    let t = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            tmp_c.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        )
    };
    if t < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    let tmp = unsafe { std::fs::File::from_raw_fd(t) };
    let raw = dir.as_raw_fd();
    *RECORDER.lock().unwrap_or_else(|e| e.into_inner()) = Some(ExitRecorder {
        path: path.to_string(),
        dir,
        tmp,
    });
    Ok(raw)
}

/// Writes init's exit status (a shell code) where `runsc wait` and `runsc
/// state` find it after the sandbox is gone.
/// Idempotent: the first caller writes it (init's status is final).
pub fn record_exit(path: &str, code: i32) {
    static RECORDED: Mutex<bool> = Mutex::new(false);
    let mut done = RECORDED.lock().unwrap_or_else(|e| e.into_inner());
    if std::mem::replace(&mut *done, true) {
        return;
    }
    let data = format!("{code}\n");
    let prepared = RECORDER.lock().unwrap_or_else(|e| e.into_inner()).take();
    let r = match prepared {
        Some(rec) if rec.path == path => write_prepared(rec, data.as_bytes()),
        _ => super::state::write_atomic(Path::new(path), data.as_bytes()),
    };
    if let Err(e) = r {
        tracing::warn!("writing the exit status to {path}: {e}");
    }
}

/// Writes through the prepared temporary file and renames it over the exit
/// file within the prepared directory (no path is resolved from the root).
fn write_prepared(mut rec: ExitRecorder, data: &[u8]) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    rec.tmp.write_all(data)?;
    rec.tmp.sync_all().ok();
    let name = Path::new(&rec.path)
        .file_name()
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(name);
    let mut tmp = bytes.to_vec();
    tmp.extend_from_slice(b".tmp");
    let bad = |_| std::io::Error::from_raw_os_error(libc::EINVAL);
    let (from, to) = (
        CString::new(tmp).map_err(bad)?,
        CString::new(bytes).map_err(bad)?,
    );
    let d = rec.dir.as_raw_fd();
    // SAFETY: valid C strings and our directory fd.
    if unsafe { libc::renameat(d, from.as_ptr(), d, to.as_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Listens on the control socket and answers start, signal and wait (and
/// exec, ps, pause, resume and stats).
pub fn serve_control(
    kernel: &Arc<Kernel>,
    gate: Arc<Gate>,
    init: i32,
    control: &str,
    exit_file: &str,
) -> std::io::Result<()> {
    let listener = super::control::bind(Path::new(control))?;
    let k = kernel.clone();
    let exit_file = exit_file.to_string();
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
                            record_exit(&exit_file, code);
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
                record_exit(&exit_file, st.shell_code());
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
        };
        Reply::One(r)
    };
    super::control::serve(listener, Arc::new(handler))
}
