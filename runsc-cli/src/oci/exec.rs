//! `runsc exec`: a new process in a running sandbox, with its own stdio.
//!
//! The client sends the process (args, env, cwd, user, capabilities,
//! noNewPrivileges) and its stdin, stdout and stderr over the control socket
//! (SCM_RIGHTS). The sandbox starts it as a
//! new thread group in the same kernel, mounts and PID namespace: it has no
//! parent inside the sandbox (getppid() is 0, as for runc's exec'd processes
//! whose parent is outside the container), its own session and process group,
//! and its orphaned children go to init. The sandbox reaps it itself and
//! reports its exit status on the same connection.
//!
//! With a terminal (`--tty`, or process.json's `terminal`) the client sends
//! one host pty replica instead of its stdio, and the sandbox bridges it to a
//! new sandbox pty ([`super::console`], as for init's `process.terminal`);
//! the host master goes to `--console-socket` or, in the foreground, is
//! copied to and from the client's stdio.
//!
//! Without `--detach` the client waits for that status and exits with it
//! (128+N when killed by signal N). With `--detach` the client forks a waiter
//! that holds the connection and exits with the process's status; the pid file
//! gets the waiter's host pid (what engines wait on, as with gVisor's runsc).

use std::io::BufReader;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use abi::Errno;
use sentry::kernel::SigOrigin;
use sentry::signal::{SigInfo, SI_USER};
use sentry::task::{Credentials, ExitStatus, CAP_FULL_SET};
use sentry::thread_group::ThreadGroup;
use sentry::{Kernel, Task};

use super::control::{self, ExecProcess, Request, Response};
use super::state::{Dir, Status};
use super::{fail, parse_args, root, Args};
use crate::cli::{split_flag, Global};

// ---- the sandbox's side ----

/// Why an exec'd process could not start: the message, and the exit status
/// the client reports (127: not found, 126: not executable, 1: other).
pub struct SpawnError(pub String, pub i32);

fn creds_of(p: &ExecProcess) -> Credentials {
    let root = p.uid == 0;
    let caps = if root { CAP_FULL_SET } else { 0 };
    let mut c = Credentials {
        uid: p.uid,
        euid: p.uid,
        suid: p.uid,
        fsuid: p.uid,
        gid: p.gid,
        egid: p.gid,
        sgid: p.gid,
        fsgid: p.gid,
        groups: p.additional_gids.clone(),
        cap_effective: caps,
        cap_permitted: caps,
        cap_inheritable: 0,
        cap_bounding: CAP_FULL_SET,
        cap_ambient: 0,
        securebits: 0,
    };
    if let Some(caps) = &p.capabilities {
        super::caps::apply(&mut c, caps);
    }
    c
}

/// Starts `p` in the sandbox with `stdio` as its fds 0, 1 and 2 (with
/// `p.terminal`, one host terminal: the process gets a sandbox pty bridged to
/// it, as init does for `process.terminal`); returns its thread group once its
/// image is loaded (it runs on a host thread of its own).
pub fn spawn(
    k: &Arc<Kernel>,
    p: &ExecProcess,
    mut stdio: Vec<OwnedFd>,
) -> Result<Arc<ThreadGroup>, SpawnError> {
    let setup = |m: String| SpawnError(m, 1);
    p.validate().map_err(setup)?;
    let want = if p.terminal { 1 } else { 3 };
    if stdio.len() != want {
        return Err(setup(format!(
            "exec needs {want} stdio descriptor{}, got {}",
            if want == 1 { "" } else { "s" },
            stdio.len()
        )));
    }
    let host_tty = if p.terminal { stdio.pop() } else { None };
    let creds = creds_of(p);
    let fcreds = sentry::exec::fs_creds(&creds);
    let vfs = &k.vfs;
    let fsctx = fs::FsContext::new(vfs.root());
    fsctx.set_umask(p.umask.unwrap_or(0o022) & 0o777);
    let loc = vfs
        .walk(
            &fsctx,
            &fcreds,
            &vfs.root(),
            p.cwd.as_bytes(),
            &fs::WalkOpts::follow(),
        )
        .and_then(|loc| vfs.check_chdir(&fcreds, &loc).map(|_| loc))
        .map_err(|e| {
            setup(format!(
                "chdir to cwd ({:?}) set in the process failed: {}",
                p.cwd,
                e.description().to_lowercase()
            ))
        })?;
    fsctx.set_cwd(loc);
    let fds = fs::FdTable::new();
    for (i, fd) in stdio.into_iter().enumerate() {
        let file =
            fs::host::HostFile::new(fd).map_err(|e| setup(format!("stdio descriptor {i}: {e}")))?;
        fds.insert_at(i as i32, file, false, u64::MAX)
            .map_err(|e| setup(format!("stdio descriptor {i}: {e}")))?;
    }
    let envp: Vec<Vec<u8>> = p.env.iter().map(|e| e.as_bytes().to_vec()).collect();
    let argv: Vec<Vec<u8>> = p.args.iter().map(|a| a.as_bytes().to_vec()).collect();
    let cmd = p.args[0].clone();
    let (uid, gid) = (creds.uid, creds.gid);
    let no_new_privs = p.no_new_privs;
    let exec_err = |cmd: &str, errno: Errno| {
        if errno == Errno::ENOENT && !cmd.contains('/') {
            SpawnError(
                format!("exec: {cmd:?}: executable file not found in $PATH"),
                127,
            )
        } else {
            let code = if errno == Errno::ENOENT { 127 } else { 126 };
            SpawnError(
                format!("exec: {cmd:?}: {}", errno.description().to_lowercase()),
                code,
            )
        }
    };
    let path = crate::boot::resolve_command(k, &fsctx, &fcreds, &cmd, &envp)
        .map_err(|e| exec_err(&cmd, e))?;
    let (tx, rx) = std::sync::mpsc::channel::<Result<Arc<ThreadGroup>, SpawnError>>();
    let k2 = k.clone();
    std::thread::Builder::new()
        .name("task-exec".into())
        .spawn(move || {
            let stack = 8 << 20;
            let image = match sentry::exec::load_image(
                &k2,
                &fsctx,
                &creds,
                no_new_privs,
                &path,
                argv,
                envp,
                stack,
            ) {
                Ok(i) => i,
                Err(e) => {
                    let _ = tx.send(Err(exec_err(&cmd, e)));
                    return;
                }
            };
            // A thread group without a parent: the sandbox reaps it.
            let mut task = match Task::new_init(k2.clone(), image.mm.clone(), fsctx, fds, creds) {
                Ok(t) => t,
                Err(e) => {
                    let _ = tx.send(Err(SpawnError(format!("creating the task: {e}"), 1)));
                    return;
                }
            };
            task.no_new_privs = no_new_privs;
            task.exec(image);
            // A terminal: the process leads its own session, which the new
            // pty controls. The bridge ends once every replica is closed.
            if let Some(host) = host_tty {
                let tty = super::console::sandbox_console(&k2.vfs, host, uid, gid, task.tgid)
                    .and_then(|(replica, _bridge)| {
                        (0..3).try_for_each(|fd| {
                            task.fds
                                .insert_at(fd, replica.clone(), false, u64::MAX)
                                .map(|_| ())
                                .map_err(|e| format!("console: {e}"))
                        })
                    });
                if let Err(e) = tty {
                    let _ = tx.send(Err(SpawnError(e, 1)));
                    // It never runs its program: killed first thing, it goes
                    // the usual way (and, without a parent, is reaped).
                    k2.send_to_group(&task.tg, SigInfo::from_sender(libc::SIGKILL, SI_USER, 0, 0));
                    task.run();
                    return;
                }
            }
            let _ = tx.send(Ok(task.tg.clone()));
            task.run();
        })
        .map_err(|e| setup(format!("spawning the task thread: {e}")))?;
    rx.recv()
        .map_err(|_| setup("the task thread died".into()))?
}

/// Blocks until `tg` has exited; its status.
pub fn wait_exit(tg: &Arc<ThreadGroup>) -> ExitStatus {
    let waiter = fs::waiter::Waiter::new().ok();
    loop {
        let _reg = waiter
            .as_ref()
            .map(|w| tg.exit_wait.register(w, fs::waiter::EVENT_ALL));
        if let Some(st) = tg.lock().zombie {
            return st;
        }
        match &waiter {
            Some(w) => {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
                let _ = w.wait(Some(deadline), &[]);
            }
            None => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
}

/// Waits for `tg` to exit while the client holds the connection: a
/// `{"signal":N}` line from it is delivered to the process; the client going
/// away (closing, or killed) kills the process, as its pid file promised an
/// engine that killing the waiter ends it.
fn serve_exec(k: &Arc<Kernel>, tg: &Arc<ThreadGroup>, conn: &UnixStream) -> ExitStatus {
    let Ok(waiter) = fs::waiter::Waiter::new() else {
        return wait_exit(tg);
    };
    let mut buf = Vec::new();
    let mut open = true;
    loop {
        let _reg = tg.exit_wait.register(&waiter, fs::waiter::EVENT_ALL);
        if let Some(st) = tg.lock().zombie {
            return st;
        }
        if !open {
            let _ = waiter.wait(None, &[]);
            continue;
        }
        let _ = waiter.wait(None, &[(conn.as_raw_fd(), libc::POLLIN)]);
        let mut chunk = [0u8; 512];
        // SAFETY: a nonblocking read into a valid buffer (the waiter says
        // nothing about readiness, so MSG_DONTWAIT).
        let n = unsafe {
            libc::recv(
                conn.as_raw_fd(),
                chunk.as_mut_ptr() as *mut libc::c_void,
                chunk.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ) {
                continue;
            }
        }
        if n <= 0 || buf.len() > 4096 {
            // Hung up (or sent garbage): the process goes with it.
            open = false;
            k.send_to_group_from(
                tg,
                SigInfo::from_sender(libc::SIGKILL, SI_USER, 0, 0),
                SigOrigin::Outside,
            );
            continue;
        }
        buf.extend_from_slice(&chunk[..n as usize]);
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            if let Ok(f) = serde_json::from_slice::<control::Forward>(&line) {
                if (1..=64).contains(&f.signal) {
                    // Forwarded from the host: outside the sandbox.
                    k.send_to_group_from(
                        tg,
                        SigInfo::from_sender(f.signal, SI_USER, 0, 0),
                        SigOrigin::Outside,
                    );
                }
            }
        }
    }
}

/// The control handler's side of `exec`.
pub fn handle(
    k: &Arc<Kernel>,
    init_alive: bool,
    p: &ExecProcess,
    stdio: Vec<OwnedFd>,
    wait: bool,
) -> control::Reply {
    if !init_alive {
        return Response::err("cannot exec in a stopped container").into();
    }
    if k.is_frozen() {
        return Response::err("cannot exec in a paused container").into();
    }
    match spawn(k, p, stdio) {
        Err(SpawnError(msg, code)) => Response {
            ok: false,
            error: Some(msg),
            status: Some(code),
            ..Default::default()
        }
        .into(),
        Ok(tg) => {
            let first = Response {
                ok: true,
                pid: Some(tg.tgid),
                ..Default::default()
            };
            if !wait {
                return first.into();
            }
            let k = k.clone();
            control::Reply::Then(
                first,
                Box::new(move |conn| Response {
                    ok: true,
                    status: Some(serve_exec(&k, &tg, conn).shell_code()),
                    ..Default::default()
                }),
            )
        }
    }
}

// ---- the client ----

const VALUES: &[&str] = &[
    "process",
    "pid-file",
    "cwd",
    "env",
    "user",
    "console-socket",
    "preserve-fds",
    "additional-gids",
    "cap",
    "apparmor",
    "process-label",
    "cgroup",
];
const BOOLS: &[&str] = &[
    "detach",
    "tty",
    "no-new-privs",
    "ignore-paused",
    "no-subreaper",
];
const ALIASES: &[(&str, &str)] = &[
    ("p", "process"),
    ("d", "detach"),
    ("t", "tty"),
    ("e", "env"),
    ("u", "user"),
    ("g", "additional-gids"),
];

/// Splits `exec`'s arguments at the container ID: flags come first (runc
/// does not reorder them), then the ID, then the command and its arguments.
fn split_at_id(args: &[String]) -> (Vec<String>, Vec<String>) {
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            return (args[..i].to_vec(), args[i + 1..].to_vec());
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        i += 1;
        if let Some((name, None)) = split_flag(a) {
            let name = ALIASES
                .iter()
                .find(|(s, _)| *s == name)
                .map(|(_, l)| *l)
                .unwrap_or(name);
            if VALUES.contains(&name) {
                i += 1;
            }
        }
    }
    let i = i.min(args.len());
    (args[..i].to_vec(), args[i..].to_vec())
}

/// `UID[:GID]`, numbers only.
fn parse_user(u: &str) -> Result<(u32, Option<u32>), String> {
    let bad = || format!("--user {u:?}: want UID[:GID] (numbers)");
    let (uid, gid) = match u.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (u, None),
    };
    let uid = uid.parse::<u32>().map_err(|_| bad())?;
    let gid = gid
        .map(|g| g.parse::<u32>().map_err(|_| bad()))
        .transpose()?;
    Ok((uid, gid))
}

/// A process JSON (runc's `--process`), from untrusted input.
pub fn parse_process_json(text: &[u8]) -> Result<(ExecProcess, bool), String> {
    use serde_json::Value;
    let v: Value =
        serde_json::from_slice(text).map_err(|e| format!("process: invalid JSON: {e}"))?;
    let o = v.as_object().ok_or("process: not a JSON object")?;
    let strings = |key: &str| -> Result<Vec<String>, String> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|s| {
                    s.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("process.{key}: not a list of strings"))
                })
                .collect(),
            Some(_) => Err(format!("process.{key}: not a list of strings")),
        }
    };
    let u32_at = |o: &serde_json::Map<String, Value>, key: &str| -> Result<Option<u32>, String> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(n) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| format!("process.user.{key}: not a 32-bit unsigned number")),
        }
    };
    let terminal = match o.get("terminal") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("process.terminal: not a boolean".into()),
    };
    let cwd = match o.get("cwd") {
        None | Some(Value::Null) => "/".to_string(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => return Err("process.cwd: not a path".into()),
    };
    let mut p = ExecProcess {
        args: strings("args")?,
        env: strings("env")?,
        cwd,
        ..Default::default()
    };
    match o.get("user") {
        None | Some(Value::Null) => {}
        Some(Value::Object(u)) => {
            p.uid = u32_at(u, "uid")?.unwrap_or(0);
            p.gid = u32_at(u, "gid")?.unwrap_or(0);
            p.umask = u32_at(u, "umask")?;
            match u.get("additionalGids") {
                None | Some(Value::Null) => {}
                Some(Value::Array(a)) => {
                    for g in a {
                        p.additional_gids.push(
                            g.as_u64()
                                .and_then(|n| u32::try_from(n).ok())
                                .ok_or("process.user.additionalGids: not a list of numbers")?,
                        );
                    }
                }
                Some(_) => return Err("process.user.additionalGids: not a list".into()),
            }
        }
        Some(_) => return Err("process.user: not an object".into()),
    }
    if let Some(c) = o.get("capabilities").filter(|c| !c.is_null()) {
        p.capabilities = Some(super::caps::parse(c, "process.capabilities")?);
    }
    match o.get("noNewPrivileges") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => p.no_new_privs = *b,
        Some(_) => return Err("process.noNewPrivileges: not a boolean".into()),
    }
    p.validate()?;
    Ok((p, terminal))
}

/// Sets `KEY=VALUE` in `env`, replacing an entry with the same key.
fn set_env(env: &mut Vec<String>, kv: &str) {
    let key = kv.split_once('=').map_or(kv, |(k, _)| k);
    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
    env.push(kv.to_string());
}

/// Builds the process from `--process` or the container's config.json plus
/// the command line.
fn build_process(a: &Args, cmd: &[String], bundle: &str) -> Result<ExecProcess, String> {
    if let Some(path) = a.value("process") {
        let f = std::fs::File::open(path).map_err(|e| format!("process {path}: {e}"))?;
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(f, 16 << 20), &mut text)
            .map_err(|e| format!("process {path}: {e}"))?;
        let (mut p, terminal) = parse_process_json(&text)?;
        p.terminal = terminal || a.flag("tty");
        // Capabilities and noNewPrivileges the process does not give are
        // the container's.
        let v = serde_json::from_slice::<serde_json::Value>(&text).unwrap_or_default();
        let has = |key: &str| v.get(key).is_some_and(|x| !x.is_null());
        if !has("capabilities") || !has("noNewPrivileges") {
            if let Ok(spec) = super::spec::load(Path::new(bundle)) {
                if !has("capabilities") {
                    p.capabilities = spec.capabilities;
                }
                if !has("noNewPrivileges") {
                    p.no_new_privs = spec.no_new_privs;
                }
            }
        }
        apply_privilege_flags(a, &mut p);
        return Ok(p);
    }
    if cmd.is_empty() {
        return Err("exec: arguments cannot be empty".into());
    }
    // As runc: the container's process, with the command line's changes.
    let mut p = ExecProcess {
        cwd: "/".into(),
        env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
        ..Default::default()
    };
    if let Ok(spec) = super::spec::load(Path::new(bundle)) {
        p.env = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        p.cwd = spec.cwd.clone();
        p.uid = spec.uid;
        p.gid = spec.gid;
        p.additional_gids = spec.additional_gids.clone();
        p.umask = spec.umask;
        p.capabilities = spec.capabilities;
        p.no_new_privs = spec.no_new_privs;
    }
    p.args = cmd.to_vec();
    p.terminal = a.flag("tty");
    for e in a.values_of("env") {
        if !e.contains('=') {
            return Err(format!("--env {e:?}: want KEY=VALUE"));
        }
        set_env(&mut p.env, e);
    }
    if let Some(c) = a.value("cwd") {
        p.cwd = c.to_string();
    }
    if let Some(u) = a.value("user") {
        let (uid, gid) = parse_user(u)?;
        p.uid = uid;
        p.gid = gid.unwrap_or(0);
    }
    for g in a.values_of("additional-gids") {
        p.additional_gids.push(
            g.parse::<u32>()
                .map_err(|_| format!("--additional-gids {g:?}: not a number"))?,
        );
    }
    apply_privilege_flags(a, &mut p);
    p.validate()?;
    Ok(p)
}

/// `--cap CAP` (repeatable: added to the bounding, effective and permitted
/// sets, as runc does) and `--no-new-privs`.
fn apply_privilege_flags(a: &Args, p: &mut ExecProcess) {
    let caps = a.values_of("cap");
    if !caps.is_empty() {
        // Unknown names are ignored, as runc does.
        let set = super::caps::set_of(caps, "--cap");
        // Without process.capabilities root holds them all already.
        if let Some(c) = p.capabilities.as_mut() {
            c.add(set);
        }
    }
    if a.flag("no-new-privs") {
        p.no_new_privs = true;
    }
}

/// Our stdin, stdout and stderr (`/dev/null` for a closed one).
fn stdio_fds() -> Result<(Vec<OwnedFd>, Vec<i32>), String> {
    let mut keep = Vec::new();
    let mut raw = Vec::new();
    for i in 0..3 {
        // SAFETY: F_GETFD on a possibly-closed fd just fails.
        if unsafe { libc::fcntl(i, libc::F_GETFD) } >= 0 {
            raw.push(i);
        } else {
            let f = std::fs::File::options()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(|e| format!("/dev/null: {e}"))?;
            let fd: OwnedFd = f.into();
            raw.push(fd.as_raw_fd());
            keep.push(fd);
        }
    }
    Ok((keep, raw))
}

/// `runsc exec [flags] ID [COMMAND ARGS...]`.
pub fn cmd_exec(g: &Global, args: &[String]) -> i32 {
    match exec(g, args) {
        Ok(code) => code,
        Err((msg, code)) => {
            fail(g, &msg);
            code
        }
    }
}

fn exec(g: &Global, args: &[String]) -> Result<i32, (String, i32)> {
    let e1 = |m: String| (m, 1);
    let (flags, rest) = split_at_id(args);
    let a = parse_args(&flags, VALUES, BOOLS, ALIASES).map_err(e1)?;
    let Some((id, cmd)) = rest.split_first() else {
        return Err(e1("exec: container id cannot be empty".into()));
    };
    if a.value("preserve-fds").is_some_and(|n| n != "0") {
        return Err(e1("exec --preserve-fds is not supported yet".into()));
    }
    let (sock, bundle) = {
        let dir = Dir::open(&root(g), id).map_err(e1)?;
        let st = dir.load().map_err(e1)?;
        match dir.live_status(&st) {
            Status::Created | Status::Running => {}
            Status::Paused if a.flag("ignore-paused") => {}
            Status::Paused => return Err(e1("cannot exec in a paused container".into())),
            _ => return Err(e1("cannot exec in a stopped container".into())),
        }
        (dir.control_path(), st.bundle.clone())
        // The lock is released here: the process may run for long.
    };
    let p = build_process(&a, cmd, &bundle).map_err(e1)?;
    let detach = a.flag("detach");
    let socket = a.value("console-socket");
    super::console::check(p.terminal, detach, socket).map_err(e1)?;
    // process.terminal: the process gets a host pty's replica (bridged to a
    // sandbox pty inside); the master goes to the console socket (as create
    // does) or, in the foreground, is copied to and from our own stdio.
    let (_keep, raw, pty) = if p.terminal {
        let pty = super::console::HostPty::open().map_err(|e| e1(format!("console: {e}")))?;
        if let Some(sock) = socket {
            super::console::send(sock, &pty.master, &pty.name).map_err(e1)?;
        }
        (Vec::new(), vec![pty.replica.as_raw_fd()], Some(pty))
    } else {
        let (keep, raw) = stdio_fds().map_err(e1)?;
        (keep, raw, None)
    };
    let req = Request::Exec {
        process: p,
        wait: true,
    };
    let sigs = catch_signals();
    let called = control::call_with_fds(&sock, &req, &raw);
    // The sandbox has its own copy of the replica: the master reads EIO once
    // the process (and whatever else holds the terminal) is gone.
    let master = pty.and_then(|p| socket.is_none().then_some(p.master));
    let (resp, mut conn) =
        called.map_err(|e| e1(format!("container \"{id}\": cannot reach the sandbox: {e}")))?;
    if !resp.ok {
        let code = resp.status.filter(|c| (1..=255).contains(c)).unwrap_or(1);
        return Err((resp.error.unwrap_or_else(|| "exec failed".into()), code));
    }
    let pid = resp
        .pid
        .filter(|p| *p > 0)
        .ok_or_else(|| e1("exec: the sandbox gave no pid".into()))?;
    if !detach {
        tracing::debug!(pid, "exec'd process started");
        let fg = master.map(super::console::Foreground::start);
        let code = forward_and_wait(&mut conn, sigs);
        if let Some(fg) = fg {
            fg.finish();
        }
        return Ok(code);
    }
    // A waiter keeps the connection and exits with the process's status.
    // SAFETY: this command runs no other threads; the child only reads the
    // socket and exits.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(e1(format!(
            "exec --detach: fork: {}",
            std::io::Error::last_os_error()
        )));
    }
    if child == 0 {
        // SAFETY: plain syscalls in the child; stdio goes to /dev/null so that
        // the caller's pipes close when the process closes them.
        unsafe {
            libc::setsid();
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if null >= 0 {
                for fd in 0..3 {
                    libc::dup2(null, fd);
                }
            }
        }
        drop(_keep);
        let code = forward_and_wait(&mut conn, sigs);
        // SAFETY: ends the waiter without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    drop(conn);
    if let Some(f) = a.value("pid-file") {
        if let Err(e) = super::state::write_atomic(Path::new(f), child.to_string().as_bytes()) {
            // Nobody could wait for it: the waiter goes, and the process with it.
            // SAFETY: signals and reaps our own child.
            unsafe {
                libc::kill(child, libc::SIGKILL);
                libc::waitpid(child, std::ptr::null_mut(), 0);
            }
            return Err(e1(format!("pid file {f}: {e}")));
        }
    }
    Ok(0)
}

/// The write end of the self-pipe the signal handler writes to.
static SIG_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let b = sig as u8;
    let fd = SIG_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; one byte from the stack.
        unsafe { libc::write(fd, &b as *const u8 as *const libc::c_void, 1) };
    }
}

/// Signals `runsc exec` and a foreground `runsc run` pass on to the process
/// (as runc does).
const FORWARDED: &[i32] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
];

/// Catches the signals to forward (before the process starts, so none is
/// lost); the read end of the pipe they are queued on.
pub(crate) fn catch_signals() -> Option<RawFd> {
    let mut p = [0i32; 2];
    // SAFETY: pipe2 fills the two-element array.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
        return None;
    }
    SIG_PIPE.store(p[1], Ordering::Relaxed);
    for &s in FORWARDED {
        // SAFETY: installs a handler that only writes to the self-pipe.
        unsafe { libc::signal(s, on_signal as *const () as libc::sighandler_t) };
    }
    Some(p[0])
}

/// Waits for the process's exit status on `conn`, forwarding the signals
/// queued on `sigs` (see [`catch_signals`]); the status as a shell reports it.
fn forward_and_wait(conn: &mut BufReader<UnixStream>, sigs: Option<RawFd>) -> i32 {
    let status = |r: std::io::Result<Response>| match r {
        Ok(r) => r.status.map(|c| c.clamp(0, 255)).unwrap_or(1),
        // The sandbox went away (its init exited and took everything down).
        Err(_) => 128 + libc::SIGKILL,
    };
    let Some(sigs) = sigs else {
        return status(control::read_response(conn));
    };
    loop {
        if !conn.buffer().is_empty() {
            return status(control::read_response(conn));
        }
        let mut fds = [
            libc::pollfd {
                fd: conn.get_ref().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sigs,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: polls two valid descriptors.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 {
            continue;
        }
        if fds[1].revents != 0 {
            let mut b = [0u8; 16];
            // SAFETY: a nonblocking read into a valid buffer.
            let n = unsafe { libc::read(sigs, b.as_mut_ptr() as *mut libc::c_void, b.len()) };
            for &sig in b.iter().take(n.max(0) as usize) {
                let mut line = serde_json::json!({ "signal": sig as i32 }).to_string();
                line.push('\n');
                let _ = std::io::Write::write_all(&mut conn.get_ref(), line.as_bytes());
            }
        }
        if fds[0].revents != 0 {
            return status(control::read_response(conn));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn split() {
        let (f, r) = split_at_id(&s(&["-e", "A=1", "--cwd=/x", "-d", "id", "sh", "-c", "x"]));
        assert_eq!(f, s(&["-e", "A=1", "--cwd=/x", "-d"]));
        assert_eq!(r, s(&["id", "sh", "-c", "x"]));
        let (f, r) = split_at_id(&s(&["--process", "p.json", "id"]));
        assert_eq!(f, s(&["--process", "p.json"]));
        assert_eq!(r, s(&["id"]));
        let (_, r) = split_at_id(&s(&["-e"]));
        assert!(r.is_empty());
    }

    #[test]
    fn process_json() {
        let (p, t) = parse_process_json(
            br#"{"args":["sh","-c","x"],"env":["A=1"],"cwd":"/tmp","user":{"uid":5,"gid":6,"additionalGids":[7]},"terminal":false}"#,
        )
        .unwrap();
        assert!(!t);
        assert_eq!(p.args, s(&["sh", "-c", "x"]));
        assert_eq!((p.uid, p.gid, p.additional_gids.clone()), (5, 6, vec![7]));
        assert_eq!(p.cwd, "/tmp");
        for bad in [
            &br#"[]"#[..],
            br#"{"args":[]}"#,
            br#"{"args":[1]}"#,
            br#"{"args":["a\u0000b"]}"#,
            br#"{"args":["a"],"env":["NOEQ"]}"#,
            br#"{"args":["a"],"cwd":"rel"}"#,
            br#"{"args":["a"],"user":{"uid":-1}}"#,
            br#"{"args":["a"],"user":{"uid":4294967296}}"#,
            br#"{"args":["a"],"user":"root"}"#,
            br#"{"args":["a"],"terminal":"yes"}"#,
            b"not json",
        ] {
            assert!(
                parse_process_json(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn users_and_env() {
        assert_eq!(parse_user("5"), Ok((5, None)));
        assert_eq!(parse_user("5:6"), Ok((5, Some(6))));
        assert!(parse_user("root").is_err());
        let mut env = s(&["A=1", "B=2"]);
        set_env(&mut env, "A=3");
        assert_eq!(env, s(&["B=2", "A=3"]));
    }
}
