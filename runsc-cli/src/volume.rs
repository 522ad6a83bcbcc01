//! `runsc do --volume HOST:CONTAINER[:ro]`: bind mounts of host directories.
//!
//! Each volume gets its own `runsc gofer` process serving only that host
//! directory (read-only for `:ro`) over its own socketpair; the sentry mounts
//! each gofer's tree at CONTAINER (`runsc boot --volume=FD:ro|rw:CONTAINER`). One
//! process per volume keeps the gofer a single-root server (its security argument,
//! "nothing outside the root fd is reachable", stays per process) and needs no
//! protocol change.

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};

use crate::cli::{forward, Global};
use crate::confine::Identity;

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

/// The running gofers of the volumes, and the sentry's ends of their sockets.
pub struct VolumeGofers {
    children: Vec<Child>,
    socks: Vec<OwnedFd>,
}

impl VolumeGofers {
    /// Starts one gofer per volume. The sentry's socket ends are made inheritable
    /// only once all gofers run (no gofer inherits another's socket). `detached`
    /// puts each gofer in a process group of its own (an OCI container outlives
    /// the `runsc create` that started it).
    pub fn spawn(
        exe: &std::path::Path,
        g: &Global,
        id: &Identity,
        volumes: &[Volume],
        detached: bool,
    ) -> std::io::Result<Self> {
        let mut v = VolumeGofers {
            children: Vec::new(),
            socks: Vec::new(),
        };
        for vol in volumes {
            match spawn_gofer(exe, g, id, vol, detached) {
                Ok((c, s)) => {
                    v.children.push(c);
                    v.socks.push(s);
                }
                Err(e) => {
                    v.kill();
                    return Err(e);
                }
            }
        }
        if let Err(e) = v.socks.iter().try_for_each(crate::sandbox::inheritable) {
            v.kill();
            return Err(e);
        }
        Ok(v)
    }

    /// The `runsc boot` arguments: `--volume=FD:ro|rw:CONTAINER` each.
    pub fn boot_args(&self, volumes: &[Volume]) -> Vec<String> {
        volumes
            .iter()
            .zip(&self.socks)
            .map(|(v, s)| {
                let mode = if v.read_only { "ro" } else { "rw" };
                format!("--volume={}:{mode}:{}", s.as_raw_fd(), v.container)
            })
            .collect()
    }

    /// The gofers' host pids.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|c| c.id()).collect()
    }

    /// Closes our copies of the sentry's socket ends (after it was spawned).
    pub fn close_sockets(&mut self) {
        self.socks.clear();
    }

    /// Ends the gofers (setup failed before the sentry took them over).
    pub fn kill(&mut self) {
        self.socks.clear();
        for c in self.children.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the gofers (each exits when the sentry's end of its socket closes).
    pub fn wait(&mut self) {
        for c in self.children.iter_mut() {
            let _ = c.wait();
        }
    }
}

/// Starts `runsc gofer` serving `vol.host` on a new socketpair; returns the
/// process and the sentry's end of the socket.
fn spawn_gofer(
    exe: &std::path::Path,
    g: &Global,
    id: &Identity,
    vol: &Volume,
    detached: bool,
) -> std::io::Result<(Child, OwnedFd)> {
    let (sentry_end, gofer_end) = gofer::socketpair()?;
    crate::sandbox::inheritable(&gofer_end)?;
    let mut root_arg = std::ffi::OsString::from("--root=");
    root_arg.push(&vol.host);
    let mut c = Command::new(exe);
    c.args(forward(g)).arg("gofer");
    crate::sandbox::gofer_identity(&mut c, id);
    c.arg(root_arg)
        .arg(format!("--fd={}", gofer_end.as_raw_fd()));
    if vol.read_only {
        c.arg("--read-only");
    }
    if detached {
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
    }
    // A detached gofer must not hold the caller's stderr: an engine reading
    // `create`'s output to EOF (go-runc's cmdOutput, for terminals) would wait
    // for the container's end.
    if detached {
        c.stderr(Stdio::null());
    }
    let child = c.stdin(Stdio::null()).stdout(Stdio::null()).spawn()?;
    Ok((child, sentry_end))
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
