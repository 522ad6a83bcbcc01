//! Sandbox launch: `runsc do` starts a gofer and a sentry (`runsc boot`) as
//! re-executions of this binary, connected by a socketpair, and waits for the
//! workload's exit status.
//!
//! Host signals are not relayed into the sandbox as sandbox signals: a
//! terminal's SIGINT (or a SIGTERM sent to `runsc boot`) acts on the sentry
//! process itself, which ends and takes the workload with it (exit 128+N; the
//! sentry, PID 1 of its own PID namespace, exits so from a handler, see
//! `confine`). That is as if they were forced past the protection the sandbox's
//! init (PID 1) has against signals it has no handler for, which only
//! in-sandbox senders and `runsc kill` (see `sentry::kernel::SigOrigin`)
//! meet: `do` runs a command, it does not host a container.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use crate::cli::{forward, split_flag, Global};
use crate::confine::Identity;
use crate::volume::{parse_volume, Volume, VolumeGofers};

/// Lets `fd` survive exec into the child about to be spawned.
pub(crate) fn inheritable(fd: &OwnedFd) -> std::io::Result<()> {
    // SAFETY: plain fcntl on a descriptor we own.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the gofer command `c` (its arguments so far ending with "gofer") run
/// under the sandbox's identity: a rootless sandbox's gofers map its uid and
/// gid to their host user's in a user namespace of their own, and switch to
/// that host user first when runsc is root (`--rootless`: nobody).
pub(crate) fn gofer_identity(c: &mut Command, id: &Identity) {
    if let Some(r) = id.rootless() {
        c.arg(format!("--userns={}:{}", r.inside_uid, r.inside_gid));
        if r.switch {
            // std drops the supplementary groups too (setgroups(0) as root).
            std::os::unix::process::CommandExt::uid(c, r.host_uid);
            std::os::unix::process::CommandExt::gid(c, r.host_gid);
        }
    }
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

fn run_sandbox(
    g: &Global,
    cmd: &[String],
    cwd: Option<String>,
    private_tmp: bool,
    volumes: &[Volume],
) -> std::io::Result<i32> {
    let exe = std::env::current_exe()?;
    // First, so that a failure leaves nothing to stop; the veth pair goes
    // when `net` is dropped (on every return below).
    let net = match g.network.as_str() {
        "sandbox" => Some(sandbox_network()?),
        _ => None,
    };
    let (sentry_end, gofer_end) = gofer::socketpair()?;
    inheritable(&gofer_end)?;
    // The sandbox runs as its caller: see `Identity`.
    let id = Identity::new(g.rootless, None);
    let mut gofer = Command::new(&exe);
    gofer.args(forward(g)).arg("gofer");
    gofer_identity(&mut gofer, &id);
    let mut gofer = gofer
        .arg("--root=/")
        .arg(format!("--fd={}", gofer_end.as_raw_fd()))
        .arg("--read-only")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()?;
    drop(gofer_end);
    let mut vols = match VolumeGofers::spawn(&exe, g, &id, volumes, false) {
        Ok(v) => v,
        Err(e) => {
            let _ = gofer.kill();
            let _ = gofer.wait();
            return Err(e);
        }
    };
    inheritable(&sentry_end)?;
    // The sentry in new namespaces: the network one is empty
    // (`--network=none`), the veth's (`sandbox`) or the host's (`host`).
    let mut boot = crate::confine::SentryCommand::new(&exe);
    boot.identity(id)
        .host_network(g.network == "host")
        .args(forward(g))
        .arg("boot")
        .arg("--die-with-parent")
        .arg(format!("--gofer-fd={}", sentry_end.as_raw_fd()));
    if let Some((n, cfg)) = &net {
        cfg.inheritable()?;
        boot.arg(format!("--net={}", cfg.to_arg()))
            .join_netns(n.netns.as_raw_fd());
    }
    if let Some(c) = cwd {
        boot.arg(format!("--cwd={c}"));
    }
    if private_tmp {
        boot.arg("--private-tmp");
    }
    boot.args(vols.boot_args(volumes));
    let boot = boot.arg("--").args(cmd).spawn();
    drop(sentry_end);
    // The packet sockets are the sentry's alone now; the veth pair stays.
    let _host_veth = net.map(|(n, _cfg)| n);
    vols.close_sockets();
    let status = match boot {
        Ok(mut b) => b.wait(),
        Err(e) => {
            let _ = gofer.kill();
            let _ = gofer.wait();
            vols.kill();
            return Err(e);
        }
    };
    // The gofer exits when the sentry's end of the socket closes.
    let _ = gofer.wait();
    vols.wait();
    let status = status?;
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    })
}

/// `runsc do --network=sandbox`: a new network namespace behind a veth pair
/// from the host, taken over for the sentry (see `net::veth`); announces the
/// addresses on stderr.
fn sandbox_network() -> std::io::Result<(crate::net::veth::SandboxNet, crate::net::NetConfig)> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "--network=sandbox needs root (it creates a veth pair); use --network=none or host",
        ));
    }
    let (net, cfg) = crate::net::veth::setup(std::process::id())
        .map_err(|e| std::io::Error::new(e.kind(), format!("--network=sandbox: {e}")))?;
    tracing::debug!("sandbox network: {}", cfg.summary());
    eprintln!(
        "runsc do: sandbox network {}/30 (host side {} {})",
        net.sandbox_addr, net.host_ifname, net.host_addr
    );
    Ok((net, cfg))
}
