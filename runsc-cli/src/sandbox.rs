//! Sandbox launch: `runsc do` starts a gofer and a sentry (`runsc boot`) as
//! re-executions of this binary, connected by a socketpair, and waits for the
//! workload's exit status.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use crate::cli::{forward, split_flag, Global};

/// Lets `fd` survive exec into the child about to be spawned.
fn inheritable(fd: &OwnedFd) -> std::io::Result<()> {
    // SAFETY: plain fcntl on a descriptor we own.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// One `--volume HOST:CONTAINER[:ro|:rw]` of `runsc do`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    /// The host directory (canonical, absolute).
    pub host: std::path::PathBuf,
    /// Where it appears in the sandbox (absolute).
    pub container: String,
    pub read_only: bool,
}

/// Parses and checks a `--volume` spec: HOST must be an existing directory,
/// CONTAINER an absolute path other than "/" without "..".
pub fn parse_volume(spec: &str) -> Result<Volume, String> {
    let bad = |why: &str| format!("invalid --volume {spec:?}: {why}");
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, container, read_only) = match parts.as_slice() {
        [h, c] => (*h, *c, false),
        [h, c, "ro"] => (*h, *c, true),
        [h, c, "rw"] => (*h, *c, false),
        [_, _, o] => return Err(bad(&format!("unknown option {o:?} (want ro or rw)"))),
        _ => return Err(bad("want HOST:CONTAINER[:ro]")),
    };
    if host.is_empty() || container.is_empty() {
        return Err(bad("want HOST:CONTAINER[:ro]"));
    }
    if !container.starts_with('/') {
        return Err(bad("the container path must be absolute"));
    }
    if container.split('/').any(|c| c == "..") {
        return Err(bad("the container path may not contain \"..\""));
    }
    if container.split('/').all(|c| c.is_empty() || c == ".") {
        return Err(bad("cannot mount over /"));
    }
    if container.contains('\0') || host.contains('\0') {
        return Err(bad("NUL in path"));
    }
    let hp = std::path::Path::new(host);
    let meta = std::fs::metadata(hp).map_err(|e| bad(&format!("host directory {host}: {e}")))?;
    if !meta.is_dir() {
        return Err(bad(&format!("host path {host} is not a directory")));
    }
    let host =
        std::fs::canonicalize(hp).map_err(|e| bad(&format!("host directory {host}: {e}")))?;
    Ok(Volume {
        host,
        container: container.to_string(),
        read_only,
    })
}

/// `runsc do [--cwd=DIR] [--private-tmp] [--volume=HOST:CONTAINER[:ro]]... [--] CMD [ARGS...]`.
pub fn cmd_do(g: &Global, args: &[String]) -> i32 {
    let mut cwd = None;
    let mut private_tmp = false;
    let mut volumes = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') {
            break;
        }
        match split_flag(a) {
            Some(("cwd", Some(v))) => cwd = Some(v.to_string()),
            Some(("private-tmp", None)) => private_tmp = true,
            Some(("cwd", None)) if i + 1 < args.len() => {
                i += 1;
                cwd = Some(args[i].clone());
            }
            Some(("volume", v)) => {
                let spec = match v {
                    Some(v) => v.to_string(),
                    None if i + 1 < args.len() => {
                        i += 1;
                        args[i].clone()
                    }
                    None => {
                        eprintln!("runsc do: flag needs an argument: --volume");
                        return 2;
                    }
                };
                match parse_volume(&spec) {
                    Ok(v) => volumes.push(v),
                    Err(e) => {
                        eprintln!("runsc do: {e}");
                        return 2;
                    }
                }
            }
            _ => {
                eprintln!("runsc do: flag provided but not defined: {a}");
                return 2;
            }
        }
        i += 1;
    }
    let cmd = &args[i..];
    if cmd.is_empty() {
        eprintln!("runsc do: missing command (usage: runsc do [--] CMD [ARGS...])");
        return 2;
    }
    match run_sandbox(g, cmd, cwd, private_tmp, &volumes) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("runsc do: {e}");
            1
        }
    }
}

/// Starts `runsc gofer` serving `root` on a new socketpair; returns the process
/// and the sentry's end of the socket.
fn spawn_gofer(
    exe: &std::path::Path,
    g: &Global,
    root: &std::ffi::OsStr,
    read_only: bool,
) -> std::io::Result<(std::process::Child, OwnedFd)> {
    let (sentry_end, gofer_end) = gofer::socketpair()?;
    inheritable(&gofer_end)?;
    let mut root_arg = std::ffi::OsString::from("--root=");
    root_arg.push(root);
    let mut c = Command::new(exe);
    c.args(forward(g))
        .arg("gofer")
        .arg(root_arg)
        .arg(format!("--fd={}", gofer_end.as_raw_fd()));
    if read_only {
        c.arg("--read-only");
    }
    let child = c.stdin(Stdio::null()).stdout(Stdio::null()).spawn()?;
    Ok((child, sentry_end))
}

/// Ends the gofers started so far (setup failed before the sentry took them over).
fn reap(gofers: &mut [std::process::Child]) {
    for g in gofers.iter_mut() {
        let _ = g.kill();
        let _ = g.wait();
    }
}

/// Starts one gofer for the root (read-only) and one per `--volume` (each serving
/// only its host directory, read-only for `:ro`), then the sentry with all their
/// sockets, and waits for it.
fn run_sandbox(
    g: &Global,
    cmd: &[String],
    cwd: Option<String>,
    private_tmp: bool,
    volumes: &[Volume],
) -> std::io::Result<i32> {
    let exe = std::env::current_exe()?;
    let mut gofers = Vec::new();
    let mut socks = Vec::new();
    for (root, ro) in std::iter::once((std::ffi::OsStr::new("/"), true))
        .chain(volumes.iter().map(|v| (v.host.as_os_str(), v.read_only)))
    {
        match spawn_gofer(&exe, g, root, ro) {
            Ok((c, s)) => {
                gofers.push(c);
                socks.push(s);
            }
            Err(e) => {
                reap(&mut gofers);
                return Err(e);
            }
        }
    }
    // Only the sentry inherits the sockets (not the gofers spawned after each).
    if let Err(e) = socks.iter().try_for_each(inheritable) {
        reap(&mut gofers);
        return Err(e);
    }
    let mut boot = Command::new(&exe);
    boot.args(forward(g))
        .arg("boot")
        .arg(format!("--gofer-fd={}", socks[0].as_raw_fd()));
    for (v, s) in volumes.iter().zip(&socks[1..]) {
        let mode = if v.read_only { "ro" } else { "rw" };
        boot.arg(format!("--volume={}:{mode}:{}", s.as_raw_fd(), v.container));
    }
    if let Some(c) = cwd {
        boot.arg(format!("--cwd={c}"));
    }
    if private_tmp {
        boot.arg("--private-tmp");
    }
    let boot = boot.arg("--").args(cmd).spawn();
    drop(socks);
    let status = match boot {
        Ok(mut b) => b.wait(),
        Err(e) => {
            reap(&mut gofers);
            return Err(e);
        }
    };
    // Each gofer exits when the sentry's end of its socket closes.
    for g in gofers.iter_mut() {
        let _ = g.wait();
    }
    let status = status?;
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_specs() {
        let d = std::env::temp_dir();
        let ds = d.to_str().unwrap();
        let v = parse_volume(&format!("{ds}:/vol")).unwrap();
        assert_eq!(v.container, "/vol");
        assert!(!v.read_only);
        assert!(parse_volume(&format!("{ds}:/a/b:ro")).unwrap().read_only);
        assert!(!parse_volume(&format!("{ds}:/a/b:rw")).unwrap().read_only);
        for bad in [
            format!("{ds}:vol"),
            format!("{ds}:/"),
            format!("{ds}:/a/../b"),
            format!("{ds}:/a:rx"),
            ds.to_string(),
            ":/vol".to_string(),
            "/nonexistent-volume-dir-xyz:/vol".to_string(),
            "/etc/passwd:/vol".to_string(),
        ] {
            let e = parse_volume(&bad).unwrap_err();
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
