//! runsc as an OCI runtime: the container lifecycle commands `create`,
//! `start`, `state`, `kill`, `delete`, `run`, `wait` and `list`, with
//! runc-compatible arguments and messages.
//!
//! `create` starts the gofer(s) and the sentry (`runsc boot` in its OCI mode)
//! in process groups of their own, with the caller's stdio; the sentry loads
//! the workload and waits on `<root>/<id>/control.sock` for `start`. Each
//! command locks `<root>/<id>/lock` while it reads or changes the state.

pub mod boot;
pub mod caps;
pub mod cgroup;
pub mod console;
pub mod control;
pub mod events;
pub mod exec;
pub mod extra;
pub mod hooks;
pub mod namespaces;
pub mod paths;
pub mod pause;
pub mod ps;
pub mod spec;
pub mod state;
pub mod update;

#[cfg(test)]
mod fuzz;

use std::collections::HashMap;
use std::io::BufRead;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::cli::{forward, split_flag, Global};
use crate::volume::{Volume, VolumeGofers};
use control::Request;
use state::{Dir, Private, State, Status};

/// A command's flags and positional arguments.
struct Args {
    values: HashMap<&'static str, String>,
    bools: HashMap<&'static str, bool>,
    pos: Vec<String>,
    /// Every value of a repeated flag (`--env`), in order.
    multi: HashMap<&'static str, Vec<String>>,
}

impl Args {
    fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
    fn flag(&self, name: &str) -> bool {
        self.bools.get(name).copied().unwrap_or(false)
    }
    fn values_of(&self, name: &str) -> &[String] {
        self.multi.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Parses `--flag value`, `--flag=value`, `-flag`, short aliases (`aliases`:
/// (short, long)); flags may come before or between positional arguments.
fn parse_args(
    args: &[String],
    with_value: &[&'static str],
    bools: &[&'static str],
    aliases: &[(&str, &'static str)],
) -> Result<Args, String> {
    let mut out = Args {
        values: HashMap::new(),
        bools: HashMap::new(),
        pos: Vec::new(),
        multi: HashMap::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            out.pos.extend(args[i..].iter().cloned());
            break;
        }
        if !a.starts_with('-') || a == "-" {
            out.pos.push(a.clone());
            continue;
        }
        let (name, inline) = split_flag(a).ok_or_else(|| format!("invalid flag {a:?}"))?;
        let name = aliases
            .iter()
            .find(|(s, _)| *s == name)
            .map(|(_, l)| *l)
            .unwrap_or(name);
        if let Some(n) = with_value.iter().find(|n| **n == name) {
            let v = match inline {
                Some(v) => v.to_string(),
                None => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| format!("flag needs an argument: --{name}"))?;
                    i += 1;
                    v.clone()
                }
            };
            out.multi.entry(n).or_default().push(v.clone());
            out.values.insert(n, v);
        } else if let Some(n) = bools.iter().find(|n| **n == name) {
            let v = match inline {
                None | Some("true") | Some("1") => true,
                Some("false") | Some("0") => false,
                Some(v) => return Err(format!("invalid boolean value {v:?} for flag --{name}")),
            };
            out.bools.insert(n, v);
        } else {
            return Err(format!("flag provided but not defined: -{name}"));
        }
    }
    Ok(out)
}

/// The single container ID argument.
fn one_id(a: &Args, cmd: &str) -> Result<String, String> {
    match a.pos.as_slice() {
        [id] => Ok(id.clone()),
        [] => Err(format!("{cmd}: container id cannot be empty")),
        _ => Err(format!("{cmd}: too many arguments (want one container id)")),
    }
}

/// Prints an error as runc does (one line on stderr, and to `--log`), and
/// gives the exit status.
fn fail(g: &Global, msg: &str) -> i32 {
    eprintln!("runsc: {msg}");
    if let Some(log) = &g.log {
        let line = if g.log_format.as_deref() == Some("json") {
            serde_json::json!({
                "level": "error",
                "msg": msg,
                "time": state::rfc3339(std::time::SystemTime::now()),
            })
            .to_string()
        } else {
            format!("runsc: {msg}")
        };
        if let Ok(mut f) = std::fs::File::options().create(true).append(true).open(log) {
            let _ = std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes());
        }
    }
    1
}

/// A warning (hooks that failed after the fact, limits not applied): to
/// `--log` and the debug log, never to stderr (a created container's stdio is
/// the caller's).
fn warn(g: &Global, msg: &str) {
    tracing::warn!("{msg}");
    if let Some(log) = &g.log {
        let line = if g.log_format.as_deref() == Some("json") {
            serde_json::json!({
                "level": "warning",
                "msg": msg,
                "time": state::rfc3339(std::time::SystemTime::now()),
            })
            .to_string()
        } else {
            format!("runsc: warning: {msg}")
        };
        if let Ok(mut f) = std::fs::File::options().create(true).append(true).open(log) {
            let _ = std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes());
        }
    }
}

fn root(g: &Global) -> PathBuf {
    state::root_dir(g.root.as_deref())
}

const CREATE_VALUES: &[&str] = &["bundle", "pid-file", "console-socket", "preserve-fds"];
const CREATE_BOOLS: &[&str] = &["no-pivot", "no-new-keyring"];

/// `runsc create --bundle B [--pid-file F] [--console-socket S] ID`.
pub fn cmd_create(g: &Global, args: &[String]) -> i32 {
    let r = parse_args(args, CREATE_VALUES, CREATE_BOOLS, &[("b", "bundle")])
        .and_then(|a| Ok((one_id(&a, "create")?, a)))
        .and_then(|(id, a)| create(g, &id, &a, true));
    match r {
        // The sandbox runs on; this process (its parent) leaves it behind.
        Ok(_) => 0,
        Err(e) => fail(g, &e),
    }
}

/// `runsc run --bundle B [--pid-file F] [--detach] ID`: create, start, and
/// (without --detach) wait, delete and exit with the container's status.
pub fn cmd_run(g: &Global, args: &[String]) -> i32 {
    let mut bools = CREATE_BOOLS.to_vec();
    bools.push("detach");
    bools.push("keep");
    let a = match parse_args(
        args,
        CREATE_VALUES,
        &bools,
        &[("b", "bundle"), ("d", "detach")],
    )
    .and_then(|a| Ok((one_id(&a, "run")?, a)))
    {
        Ok(v) => v,
        Err(e) => return fail(g, &e),
    };
    let (id, a) = a;
    // In the foreground the signals runc forwards (HUP, INT, QUIT, TERM,
    // USR1, USR2, ALRM) go to the container's init, as `runsc kill` sends
    // them; caught before create so that none is lost.
    let sigs = if a.flag("detach") {
        None
    } else {
        exec::catch_signals()
    };
    // In the foreground the sandbox stays in the caller's process group, so
    // that a terminal's job control (^C, reads from it) reaches it.
    let mut procs = match create(g, &id, &a, a.flag("detach")) {
        Ok(p) => p,
        Err(e) => return fail(g, &e),
    };
    // process.terminal without a console socket: our stdio is the terminal.
    let fg = procs.console.take().map(console::Foreground::start);
    if let Err(e) = start(g, &id) {
        let _ = delete(g, &id, true);
        procs.reap();
        return fail(g, &e);
    }
    if a.flag("detach") {
        return 0;
    }
    if let Some(fd) = sigs {
        if let Ok(dir) = Dir::open(&root(g), &id) {
            let sock = dir.control_path();
            std::thread::spawn(move || forward_signals(fd, &sock));
        }
    }
    let code = wait(g, &id);
    procs.reap();
    if let Some(fg) = fg {
        fg.finish();
    }
    if !a.flag("keep") {
        if let Err(e) = delete(g, &id, true) {
            fail(g, &e);
        }
    }
    match code {
        Ok(c) => c,
        Err(e) => fail(g, &e),
    }
}

/// The host processes `create` started (reaped by `run`).
struct Procs {
    sandbox: crate::confine::Sentry,
    gofers: Vec<Child>,
    volumes: Option<VolumeGofers>,
    /// The console's host master, for a foreground `run` to copy.
    console: Option<OwnedFd>,
}

impl Procs {
    fn reap(&mut self) {
        let _ = self.sandbox.wait();
        for c in self.gofers.iter_mut() {
            let _ = c.wait();
        }
        if let Some(v) = self.volumes.as_mut() {
            v.wait();
        }
    }

    fn kill(&mut self) {
        let _ = self.sandbox.kill();
        let _ = self.sandbox.wait();
        for c in self.gofers.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(v) = self.volumes.as_mut() {
            v.kill();
        }
    }
}

/// The workload's memory limit for a spec's `limit`: with a host cgroup
/// (`in_cgroup`), less a reserve for the sentry's and gofers' own memory,
/// which the cgroup charges too.
pub(crate) fn sandbox_memory(limit: u64, in_cgroup: bool) -> u64 {
    if in_cgroup {
        limit - (limit / 8).clamp(16 << 20, 128 << 20).min(limit / 2)
    } else {
        limit
    }
}

/// `g` with the memory and task limits of `r` applied (the lower of the
/// flag's and the spec's). With a host cgroup (`in_cgroup`), the sentry's and
/// gofers' own memory is charged to it too: the workload's limit keeps a
/// reserve for them below the cgroup's, so that the sandbox's OOM killer acts
/// before the host's would.
fn limited(g: &Global, r: &cgroup::Resources, in_cgroup: bool) -> Global {
    let mut g = g.clone();
    if let Some(m) = r.memory_limit.filter(|m| *m > 0) {
        let m = sandbox_memory(m as u64, in_cgroup);
        g.total_memory = Some(g.total_memory.map_or(m, |t| t.min(m)));
    }
    if let Some(p) = r.pids_limit.filter(|p| *p > 0) {
        let cur = g.max_tasks.unwrap_or_else(crate::cli::default_max_tasks);
        g.max_tasks = Some(if cur == 0 {
            p as u64
        } else {
            cur.min(p as u64)
        });
    }
    g
}

/// Creates the container; `detach` puts the sandbox and its gofers in process
/// groups of their own.
fn create(g: &Global, id: &str, a: &Args, detach: bool) -> Result<Procs, String> {
    state::validate_id(id)?;
    if a.value("preserve-fds").is_some_and(|n| n != "0") {
        return Err("--preserve-fds is not supported yet".into());
    }
    let bundle = a.value("bundle").unwrap_or(".");
    let bundle = std::fs::canonicalize(bundle).map_err(|e| format!("bundle {bundle}: {e}"))?;
    let mut spec = spec::load(&bundle)?;
    let extra = extra::load(&bundle, id, g.systemd_cgroup)?;
    if let Some(d) = &extra.settings.domainname {
        spec.domainname = Some(d.clone());
    }
    if let Some(h) = &extra.settings.hostname {
        spec.hostname = Some(h.clone());
    }
    console::check(spec.terminal, detach, a.value("console-socket"))?;
    let root = root(g);
    let dir = Dir::create(&root, id)?;
    let mut st = State {
        oci_version: state::OCI_VERSION.into(),
        id: id.into(),
        status: Status::Creating,
        pid: 0,
        bundle: bundle.to_string_lossy().into_owned(),
        rootfs: spec.root.to_string_lossy().into_owned(),
        annotations: spec.annotations.clone(),
        created: state::rfc3339(std::time::SystemTime::now()),
        runsc: Private {
            control_socket: dir.control_path().to_string_lossy().into_owned(),
            sandbox: None,
            gofers: Vec::new(),
        },
    };
    let w = |m: &str| warn(g, m);
    let cg = match cgroup::create(&extra.cgroup, &w) {
        Ok(c) => c,
        Err(e) => {
            let _ = dir.remove();
            return Err(e);
        }
    };
    // The sandbox enforces linux.resources' memory and pids limits itself
    // too (the cgroup, when there is one, bounds the sandbox as a whole).
    let g = &limited(g, &extra.cgroup.resources, cg.is_some());
    let saved = extra::Saved {
        hooks: extra.hooks.clone(),
        cgroup: cg.clone(),
    };
    // process.terminal: a host pty whose master goes to the console socket
    // (or stays with a foreground `run`) and whose replica to the sandbox.
    let mut master = None;
    // The sandbox's processes start inside its cgroup: this process joins it
    // while it starts them.
    let launched = extra::save(&dir.path, &saved)
        .and_then(|()| dir.save(&st))
        .and_then(|()| cg.as_ref().map_or(Ok(()), cgroup::enter))
        .and_then(|()| {
            let pty = match spec.terminal {
                true => Some(console::HostPty::open().map_err(|e| format!("console: {e}"))?),
                false => None,
            };
            if let Some(p) = &pty {
                if let Some(sock) = a.value("console-socket") {
                    console::send(sock, &p.master, &p.name)?;
                }
            }
            let procs = launch(
                g,
                &dir,
                &spec,
                &extra.settings,
                &extra.namespaces,
                detach,
                pty.as_ref().map(|p| &p.replica),
            )?;
            if a.value("console-socket").is_none() {
                master = pty.map(|p| p.master);
            }
            Ok(procs)
        });
    if let Some(c) = &cg {
        cgroup::leave(c, &w);
    }
    let mut procs = match launched {
        Ok(p) => p,
        Err(e) => {
            if let Some(c) = &cg {
                cgroup::remove(c);
            }
            let _ = dir.remove();
            return Err(e);
        }
    };
    let mut finish = || -> Result<(), String> {
        st.pid = procs.sandbox.id() as i32;
        st.runsc.sandbox = Some(state::host_proc(st.pid).ok_or("the sandbox exited during setup")?);
        let mut gofers: Vec<u32> = procs.gofers.iter().map(|c| c.id()).collect();
        gofers.extend(procs.volumes.as_ref().map(|v| v.pids()).unwrap_or_default());
        st.runsc.gofers = gofers
            .into_iter()
            .filter_map(|p| state::host_proc(p as i32))
            .collect();
        // prestart (deprecated), createRuntime, createContainer: on the host,
        // the sandbox up, the workload not started.
        let creating = state_json(&dir.path, &st, Status::Creating);
        for kind in ["prestart", "createRuntime", "createContainer"] {
            hooks::run(&saved.hooks, kind, &creating)?;
        }
        st.status = Status::Created;
        dir.save(&st)?;
        if let Some(f) = a.value("pid-file") {
            state::write_atomic(Path::new(f), st.pid.to_string().as_bytes())
                .map_err(|e| format!("pid file {f}: {e}"))?;
        }
        Ok(())
    };
    if let Err(e) = finish() {
        procs.kill();
        hooks::run_logged(
            &saved.hooks,
            "poststop",
            &state_json(&dir.path, &st, Status::Stopped),
            &w,
        );
        if let Some(c) = &cg {
            cgroup::remove(c);
        }
        let _ = dir.remove();
        return Err(e);
    }
    procs.console = master;
    Ok(procs)
}

/// Starts the gofers and the sentry, and waits until the workload is loaded.
fn launch(
    g: &Global,
    dir: &Dir,
    spec: &spec::Spec,
    settings: &paths::Settings,
    ns: &namespaces::Namespaces,
    detach: bool,
    console: Option<&OwnedFd>,
) -> Result<Procs, String> {
    let io = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| format!("{what}: {e}")
    };
    let exe = std::env::current_exe().map_err(io("locating runsc"))?;
    let (sentry_end, gofer_end) = gofer::socketpair().map_err(io("socketpair"))?;
    crate::sandbox::inheritable(&gofer_end).map_err(io("socketpair"))?;
    let mut root_arg = std::ffi::OsString::from("--root=");
    root_arg.push(&spec.root);
    // Rootless (a non-root caller, or --rootless): the workload's ids are
    // mapped to the host user's in every process's user namespace.
    let id = crate::confine::Identity::new(g.rootless, Some((spec.uid, spec.gid)));
    if let Some(r) = id.rootless() {
        rootless_checks(r, dir, ns)?;
    }
    let mut gc = Command::new(&exe);
    gc.args(forward(g)).arg("gofer");
    crate::sandbox::gofer_identity(&mut gc, &id);
    gc.arg(root_arg)
        .arg(format!("--fd={}", gofer_end.as_raw_fd()));
    if spec.root_readonly {
        gc.arg("--read-only");
    }
    if detach {
        gc.process_group(0);
        // Not the caller's stderr: an engine reading `create`'s output to EOF
        // (go-runc does, for terminals) would otherwise wait for the container.
        gc.stderr(Stdio::null());
    }
    let gofer = gc
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(io("starting the gofer"))?;
    drop(gofer_end);
    let mut procs_gofers = vec![gofer];
    let kill_gofers = |gs: &mut Vec<Child>| {
        for c in gs.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    };
    let volumes: Vec<Volume> = spec
        .binds
        .iter()
        .map(|b| Volume {
            host: b.source.clone(),
            container: b.destination.clone(),
            read_only: b.read_only,
        })
        .collect();
    let mut vols = match VolumeGofers::spawn(&exe, g, &id, &volumes, detach) {
        Ok(v) => v,
        Err(e) => {
            kill_gofers(&mut procs_gofers);
            return Err(format!("starting a bind mount's gofer: {e}"));
        }
    };
    // linux.namespaces: the sandbox process joins the engine's network
    // namespace (opened now, so that a bad path fails create cleanly).
    for (ty, path) in &ns.ignored {
        warn(
            g,
            &format!(
                "linux.namespaces: the sandbox cannot join the {ty} namespace {path}; ignored"
            ),
        );
    }
    let netns = match ns.network.as_deref().map(namespaces::open_network) {
        Some(Err(e)) => {
            kill_gofers(&mut procs_gofers);
            vols.kill();
            return Err(e);
        }
        Some(Ok(f)) => Some(f),
        None => None,
    };
    let net = match sandbox_network(g, netns.as_ref()) {
        Ok(n) => n,
        Err(e) => {
            kill_gofers(&mut procs_gofers);
            vols.kill();
            return Err(e);
        }
    };
    // A failed start gives the namespace its addresses back.
    let restore_net = || {
        if let (Some(cfg), Some(ns)) = (&net, &netns) {
            if let Err(e) = crate::net::takeover::restore(ns.as_raw_fd(), cfg) {
                tracing::warn!("restoring the network namespace's addresses: {e}");
            }
        }
    };
    let boot = (|| -> Result<(crate::confine::Sentry, std::io::PipeReader), String> {
        crate::sandbox::inheritable(&sentry_end).map_err(io("socketpair"))?;
        let (reader, writer) = std::io::pipe().map_err(io("pipe"))?;
        let writer: OwnedFd = writer.into();
        crate::sandbox::inheritable(&writer).map_err(io("pipe"))?;
        // The sentry, in new namespaces (see `confine`).
        let mut c = crate::confine::SentryCommand::new(&exe);
        c.identity(id)
            .args(forward(g))
            .arg("boot")
            .arg(format!("--gofer-fd={}", sentry_end.as_raw_fd()))
            .arg(format!(
                "--oci-root={}",
                if spec.root_readonly { "ro" } else { "rw" }
            ))
            .arg(arg_path("--control=", &dir.control_path()))
            .arg(format!("--ready-fd={}", writer.as_raw_fd()))
            .arg(arg_path("--exit-file=", &dir.exit_path()))
            .arg(format!("--uid={}", spec.uid))
            .arg(format!("--gid={}", spec.gid))
            .arg(format!("--cwd={}", spec.cwd));
        if !spec.additional_gids.is_empty() {
            let gs: Vec<String> = spec.additional_gids.iter().map(u32::to_string).collect();
            c.arg(format!("--groups={}", gs.join(",")));
        }
        if let Some(m) = spec.umask {
            c.arg(format!("--umask={m:o}"));
        }
        if let Some(caps) = &spec.capabilities {
            c.arg(format!("--caps={}", caps.to_arg()));
        }
        if spec.no_new_privs {
            c.arg("--no-new-privs=1");
        }
        if let Some(d) = &spec.domainname {
            c.arg(format!("--domainname={d}"));
        }
        if let Some(h) = &spec.hostname {
            c.arg(format!("--hostname={h}"));
        }
        c.args(vols.boot_args(&volumes));
        if let Some(fd) = console {
            crate::sandbox::inheritable(fd).map_err(io("console"))?;
            c.arg(format!("--console-fd={}", fd.as_raw_fd()));
            // The container's stdio is the terminal: the sandbox keeps none of
            // the caller's (go-runc reads `create`'s output to EOF here).
            if detach {
                c.null_stdio(true, true, true);
            }
        }
        for t in &spec.tmpfs {
            c.arg(format!(
                "--tmpfs={:o}:{}:{}:{}",
                t.mode,
                t.size.unwrap_or(0),
                if t.read_only { "ro" } else { "rw" },
                t.destination
            ));
        }
        c.args(settings.boot_args());
        if let Some(cfg) = &net {
            cfg.inheritable().map_err(io("network"))?;
            c.arg(format!("--net={}", cfg.to_arg()));
        }
        c.arg("--").args(&spec.args);
        // The workload's environment is the spec's, not ours.
        c.env_exact(spec.env.iter().map(|(k, v)| (k, v)));
        c.current_dir(Path::new("/"));
        if detach {
            c.process_group();
        }
        // Without a path the sandbox gets a new, empty network namespace
        // (--network=host: runsc's own).
        c.host_network(g.network == "host");
        if let Some(ns) = &netns {
            c.join_netns(ns.as_raw_fd());
        }

        let child = c.spawn().map_err(io("starting the sandbox"))?;
        Ok((child, reader))
    })();
    drop(sentry_end);
    vols.close_sockets();
    let (mut child, reader) = match boot {
        Ok(v) => v,
        Err(e) => {
            kill_gofers(&mut procs_gofers);
            vols.kill();
            restore_net();
            return Err(e);
        }
    };
    // "ok" once the workload is loaded; otherwise the sandbox's one-line error.
    let (tx, rx) = std::sync::mpsc::channel();
    let _ = std::thread::Builder::new()
        .name("ready".into())
        .spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(reader).read_line(&mut line);
            let _ = tx.send(line);
        });
    let line = rx
        .recv_timeout(SETUP_TIMEOUT)
        .unwrap_or_else(|_| "the sandbox did not get ready in time".into());
    if line.trim_end() != "ok" {
        let _ = child.kill();
        let _ = child.wait();
        kill_gofers(&mut procs_gofers);
        vols.kill();
        restore_net();
        let msg = line.trim();
        return Err(if msg.is_empty() {
            "the sandbox exited during setup".into()
        } else {
            msg.strip_prefix("runsc: ").unwrap_or(msg).to_string()
        });
    }
    Ok(Procs {
        sandbox: child,
        gofers: procs_gofers,
        volumes: Some(vols),
        console: None,
    })
}

/// `--network=sandbox` (the default): the interfaces of the spec's network
/// namespace are taken over for the sentry (`net::takeover`). Without a
/// namespace path, or not as root, or when the namespace has no usable
/// interface (an engine's `--network=none`), the sandbox has loopback only.
fn sandbox_network(
    g: &Global,
    netns: Option<&std::fs::File>,
) -> Result<Option<crate::net::NetConfig>, String> {
    if g.network != "sandbox" {
        return Ok(None);
    }
    let Some(ns) = netns else {
        tracing::debug!("--network=sandbox without a network namespace path: loopback only");
        return Ok(None);
    };
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        tracing::debug!("--network=sandbox not as root: loopback only");
        return Ok(None);
    }
    let cfg = crate::net::takeover::takeover(ns.as_raw_fd())
        .map_err(|e| format!("--network=sandbox: taking over the network namespace: {e}"))?;
    tracing::debug!("sandbox network: {}", cfg.summary());
    Ok(Some(cfg))
}

/// What a rootless sandbox cannot do, as clear errors; and, under
/// `--rootless` as root, the container's state directory handed to the
/// unprivileged host user (the sentry makes its control socket and exit file
/// there).
fn rootless_checks(
    r: &crate::confine::Rootless,
    dir: &Dir,
    ns: &namespaces::Namespaces,
) -> Result<(), String> {
    if !r.switch {
        if let Some(p) = &ns.network {
            return Err(format!(
                "linux.namespaces: joining the network namespace {} needs root (runsc runs as \
                 uid {}); `runsc spec --rootless` makes a spec without a path",
                p.display(),
                r.host_uid
            ));
        }
        return Ok(());
    }
    use std::os::unix::fs::PermissionsExt;
    for a in dir.path.ancestors().skip(1) {
        let m = std::fs::metadata(a).map_err(|e| format!("{}: {e}", a.display()))?;
        if m.permissions().mode() & 0o001 == 0 {
            return Err(format!(
                "--rootless: the sandbox runs as uid {} and cannot reach its state directory \
                 {}: {} is not searchable by others (choose another --root)",
                r.host_uid,
                dir.path.display(),
                a.display()
            ));
        }
    }
    std::os::unix::fs::chown(&dir.path, Some(r.host_uid), Some(r.host_gid))
        .map_err(|e| format!("{}: {e}", dir.path.display()))
}

/// How long `create` waits for the sandbox to load the workload.
const SETUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn arg_path(flag: &str, p: &Path) -> std::ffi::OsString {
    let mut s = std::ffi::OsString::from(flag);
    s.push(p);
    s
}

/// `runsc start ID`.
pub fn cmd_start(g: &Global, args: &[String]) -> i32 {
    match parse_args(args, &[], &[], &[])
        .and_then(|a| one_id(&a, "start"))
        .and_then(|id| start(g, &id))
    {
        Ok(()) => 0,
        Err(e) => fail(g, &e),
    }
}

fn start(g: &Global, id: &str) -> Result<(), String> {
    let dir = Dir::open(&root(g), id)?;
    let mut st = dir.load()?;
    match dir.live_status(&st) {
        Status::Created => {}
        Status::Running => return Err("cannot start an already running container".into()),
        Status::Stopped => return Err("cannot start a container that has stopped".into()),
        Status::Paused => return Err("cannot start a paused container".into()),
        Status::Creating => return Err("cannot start a container that is being created".into()),
    }
    // startContainer hooks run on the host (see hooks.rs); a failure stops
    // the container.
    let saved = extra::load_saved(&dir.path);
    if let Err(e) = hooks::run(
        &saved.hooks,
        "startContainer",
        &state_json(&dir.path, &st, Status::Created),
    ) {
        teardown(&st);
        st.status = Status::Stopped;
        let _ = dir.save(&st);
        return Err(e);
    }
    let resp = control::call(&dir.control_path(), &Request::Start)
        .map_err(|e| format!("container \"{id}\": cannot reach the sandbox: {e}"))?;
    if !resp.ok {
        return Err(resp.error.unwrap_or_else(|| "start failed".into()));
    }
    st.status = Status::Running;
    dir.save(&st)?;
    hooks::run_logged(
        &saved.hooks,
        "poststart",
        &state_json(&dir.path, &st, Status::Running),
        &|m| warn(g, m),
    );
    Ok(())
}

/// The OCI state JSON (what `state` prints and `list --format json` lists).
fn state_json(dir: &Path, st: &State, status: Status) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": st.oci_version,
        "id": st.id,
        "pid": if status == Status::Stopped { 0 } else { st.pid },
        "status": status.as_str(),
        "bundle": st.bundle,
        "rootfs": st.rootfs,
        "created": st.created,
        "owner": state::owner(dir),
        "annotations": st.annotations,
    })
}

/// `runsc state ID`.
pub fn cmd_state(g: &Global, args: &[String]) -> i32 {
    let r = parse_args(args, &[], &[], &[])
        .and_then(|a| one_id(&a, "state"))
        .and_then(|id| {
            let dir = Dir::open(&root(g), &id)?;
            let mut st = dir.load()?;
            let status = dir.live_status(&st);
            if status == Status::Stopped && st.status != Status::Stopped {
                st.status = Status::Stopped;
                let _ = dir.save(&st);
            }
            Ok(state_json(&dir.path, &st, status))
        });
    match r {
        Ok(v) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
            );
            0
        }
        Err(e) => fail(g, &e),
    }
}

/// A signal by name (`KILL`, `SIGKILL`, `kill`) or number.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(format!("invalid signal {s:?}"));
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" | "CLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => return Err(format!("unknown signal {s:?}")),
    };
    Ok(n)
}

/// `runsc kill [--all] ID [SIGNAL]`.
pub fn cmd_kill(g: &Global, args: &[String]) -> i32 {
    let r = parse_args(args, &[], &["all"], &[("a", "all")]).and_then(|a| {
        let (id, sig) = match a.pos.as_slice() {
            [id] => (id.clone(), libc::SIGTERM),
            [id, s] => (id.clone(), parse_signal(s)?),
            [] => return Err("kill: container id cannot be empty".into()),
            _ => return Err("kill: too many arguments (want ID [SIGNAL])".into()),
        };
        kill(g, &id, sig, a.flag("all"))
    });
    match r {
        Ok(()) => 0,
        Err(e) => fail(g, &e),
    }
}

fn kill(g: &Global, id: &str, sig: i32, all: bool) -> Result<(), String> {
    let dir = Dir::open(&root(g), id)?;
    let st = dir.load()?;
    if !matches!(
        dir.live_status(&st),
        Status::Created | Status::Running | Status::Paused
    ) {
        return Err("container not running".into());
    }
    match control::call(&dir.control_path(), &Request::Signal { signal: sig, all }) {
        Ok(r) if r.ok => Ok(()),
        Ok(r) => Err(r.error.unwrap_or_else(|| "kill failed".into())),
        // A created container killed before it ran exits at once.
        Err(_) if dir.exit_status().is_some() => Ok(()),
        Err(_) => Err("container not running".into()),
    }
}

/// `runsc delete [--force] ID`.
pub fn cmd_delete(g: &Global, args: &[String]) -> i32 {
    match parse_args(args, &[], &["force"], &[("f", "force")])
        .and_then(|a| Ok((one_id(&a, "delete")?, a.flag("force"))))
        .and_then(|(id, force)| delete(g, &id, force))
    {
        Ok(()) => 0,
        Err(e) => fail(g, &e),
    }
}

fn delete(g: &Global, id: &str, force: bool) -> Result<(), String> {
    state::validate_id(id)?;
    let dir = match Dir::open(&root(g), id) {
        Ok(d) => d,
        // runc: deleting a missing container with --force succeeds.
        Err(_) if force && !root(g).join(id).join("state.json").exists() => {
            // A create that died half-way may have left a directory behind.
            let _ = std::fs::remove_dir_all(root(g).join(id));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let st = dir.load()?;
    let status = dir.live_status(&st);
    if matches!(status, Status::Running | Status::Paused) && !force {
        return Err(format!(
            "cannot delete container {id} that is not stopped: {}",
            status.as_str()
        ));
    }
    teardown(&st);
    let saved = extra::load_saved(&dir.path);
    hooks::run_logged(
        &saved.hooks,
        "poststop",
        &state_json(&dir.path, &st, Status::Stopped),
        &|m| warn(g, m),
    );
    if let Some(c) = &saved.cgroup {
        cgroup::remove(c);
    }
    dir.remove()
}

/// Ends the sandbox and its gofers (if still there).
fn teardown(st: &State) {
    let grace = std::time::Duration::from_secs(5);
    if let Some(p) = st.runsc.sandbox {
        state::signal_host(p, libc::SIGKILL);
        state::wait_gone(p, grace);
    }
    for p in &st.runsc.gofers {
        // Each exits once the sandbox's end of its socket is closed; make sure.
        if !state::wait_gone(*p, std::time::Duration::from_millis(500)) {
            state::signal_host(*p, libc::SIGKILL);
            state::wait_gone(*p, grace);
        }
    }
}

/// `runsc wait ID`: waits for init to exit; prints `{"id","exitStatus"}` and
/// exits with its status.
pub fn cmd_wait(g: &Global, args: &[String]) -> i32 {
    let r = parse_args(args, &[], &[], &[])
        .and_then(|a| one_id(&a, "wait"))
        .and_then(|id| Ok((wait(g, &id)?, id)));
    match r {
        Ok((code, id)) => {
            println!("{}", serde_json::json!({"id": id, "exitStatus": code}));
            code
        }
        Err(e) => fail(g, &e),
    }
}

/// Sends each signal queued on `fd` (see [`exec::catch_signals`]) to the
/// container's init through its control socket; returns when `fd` fails.
fn forward_signals(fd: std::os::fd::RawFd, sock: &std::path::Path) {
    loop {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polls one valid descriptor.
        if unsafe { libc::poll(&mut p, 1, -1) } < 0 {
            continue;
        }
        let mut b = [0u8; 16];
        // SAFETY: a nonblocking read into a valid buffer.
        let n = unsafe { libc::read(fd, b.as_mut_ptr() as *mut libc::c_void, b.len()) };
        if n == 0 || (n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN))
        {
            return;
        }
        for &sig in b.iter().take(n.max(0) as usize) {
            let req = Request::Signal {
                signal: sig as i32,
                all: false,
            };
            let _ = control::call(sock, &req);
        }
    }
}

fn wait(g: &Global, id: &str) -> Result<i32, String> {
    let (sock, exit, st) = {
        let dir = Dir::open(&root(g), id)?;
        let st = dir.load()?;
        (dir.control_path(), dir.exit_path(), st)
        // The lock is released here: waiting must not block other commands.
    };
    if let Some(c) = state::read_exit(&exit) {
        return Ok(c);
    }
    if let Ok(r) = control::call(&sock, &Request::Wait) {
        if let Some(c) = r.status {
            return Ok(c);
        }
    }
    // The sandbox went away: it records the status before it exits.
    if let Some(p) = st.runsc.sandbox {
        state::wait_gone(p, std::time::Duration::from_secs(2));
    }
    state::read_exit(&exit)
        .ok_or_else(|| format!("container \"{id}\": the sandbox died without an exit status"))
}

/// `runsc list [--format table|json] [-q]`.
pub fn cmd_list(g: &Global, args: &[String]) -> i32 {
    let a = match parse_args(
        args,
        &["format"],
        &["quiet"],
        &[("f", "format"), ("q", "quiet")],
    ) {
        Ok(a) => a,
        Err(e) => return fail(g, &e),
    };
    let format = a.value("format").unwrap_or("table");
    if format != "table" && format != "json" {
        return fail(g, &format!("invalid format option {format:?}"));
    }
    let root = root(g);
    let mut rows = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&root) {
        for e in rd.flatten() {
            let path = e.path();
            let Ok(text) = std::fs::read(path.join("state.json")) else {
                continue;
            };
            let Ok(st) = serde_json::from_slice::<State>(&text) else {
                continue;
            };
            let status = state::live_status(&path, &st);
            rows.push(state_json(&path, &st, status));
        }
    }
    rows.sort_by(|x, y| x["id"].as_str().cmp(&y["id"].as_str()));
    if a.flag("quiet") {
        for r in &rows {
            println!("{}", r["id"].as_str().unwrap_or(""));
        }
        return 0;
    }
    if format == "json" {
        println!("{}", serde_json::Value::Array(rows));
        return 0;
    }
    let mut table = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for r in &rows {
        let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
        table.push([
            s("id"),
            r["pid"].to_string(),
            s("status"),
            s("bundle"),
            s("created"),
            s("owner"),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &table {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    for row in &table {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i == 5 {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}", w = widths[i] + 3));
            }
        }
        println!("{}", line.trim_end());
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL"), Ok(9));
        assert_eq!(parse_signal("SIGKILL"), Ok(9));
        assert_eq!(parse_signal("term"), Ok(15));
        assert_eq!(parse_signal("10"), Ok(10));
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("BOGUS").is_err());
    }

    #[test]
    fn flags() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let a = parse_args(
            &s(&["--bundle", "/b", "--pid-file=/p", "id1"]),
            CREATE_VALUES,
            CREATE_BOOLS,
            &[("b", "bundle")],
        )
        .unwrap();
        assert_eq!(a.value("bundle"), Some("/b"));
        assert_eq!(a.value("pid-file"), Some("/p"));
        assert_eq!(a.pos, vec!["id1"]);
        let a = parse_args(
            &s(&["-b", "x", "id"]),
            CREATE_VALUES,
            &[],
            &[("b", "bundle")],
        )
        .unwrap();
        assert_eq!(a.value("bundle"), Some("x"));
        assert!(parse_args(&s(&["--bogus", "id"]), CREATE_VALUES, &[], &[]).is_err());
        assert!(parse_args(&s(&["--bundle"]), CREATE_VALUES, &[], &[]).is_err());
        let a = parse_args(&s(&["-f", "id"]), &[], &["force"], &[("f", "force")]).unwrap();
        assert!(a.flag("force"));
    }
}
