//! `runsc update [--resources FILE|-] [LIMIT FLAGS] ID`: changes the limits
//! of a running container's host cgroup, as `runc update` does (what
//! `docker update` and containerd's `Update` call, the latter with the
//! `linux.resources` JSON on stdin). Only the limits given change.
//!
//! ```text
//! --resources FILE|-      a linux.resources JSON object (- reads stdin)
//! --memory N              memory.limit (bytes; k/m/g suffixes, -1: none)
//! --memory-swap N         memory.swap (memory plus swap, as runc)
//! --memory-reservation N  memory.reservation
//! --cpu-shares N, --cpu-quota N, --cpu-period N
//! --cpuset-cpus S, --cpuset-mems S
//! --pids-limit N          pids.limit (0 or -1: none)
//! ```
//!
//! runc's `--kernel-memory`, `--kernel-memory-tcp`, `--blkio-weight`,
//! `--cpu-rt-period`, `--cpu-rt-runtime` and `--l3-cache-schema` are
//! accepted and ignored (logged), as the sandbox does not apply them at
//! create either.

use std::io::Read;

use super::cgroup::{self, Resources};
use super::state::{Dir, Status};
use super::{extra, fail, one_id, parse_args, root, warn};
use crate::cli::Global;

const VALUES: &[&str] = &[
    "resources",
    "memory",
    "memory-swap",
    "memory-reservation",
    "cpu-shares",
    "cpu-quota",
    "cpu-period",
    "cpuset-cpus",
    "cpuset-mems",
    "pids-limit",
    "kernel-memory",
    "kernel-memory-tcp",
    "blkio-weight",
    "cpu-rt-period",
    "cpu-rt-runtime",
    "l3-cache-schema",
    "mem-bw-schema",
];

/// `runsc update`.
pub fn cmd_update(g: &Global, args: &[String]) -> i32 {
    match update(g, args) {
        Ok(()) => 0,
        Err(e) => fail(g, &e),
    }
}

fn update(g: &Global, args: &[String]) -> Result<(), String> {
    let a = parse_args(args, VALUES, &[], &[("r", "resources")])?;
    let id = one_id(&a, "update")?;
    let mut r = match a.value("resources") {
        Some(src) => {
            let text = if src == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .map_err(|e| format!("--resources: reading stdin: {e}"))?;
                s
            } else {
                std::fs::read_to_string(src).map_err(|e| format!("--resources {src}: {e}"))?
            };
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("--resources: invalid JSON: {e}"))?;
            cgroup::parse_resources(&v)?
        }
        None => Resources::default(),
    };
    flags(&a, &mut r)?;
    for ignored in VALUES[10..].iter().filter(|f| a.value(f).is_some()) {
        warn(
            g,
            &format!("update: --{ignored} is not applied by runsc; ignored"),
        );
    }
    let dir = Dir::open(&root(g), &id)?;
    let st = dir.load()?;
    if matches!(dir.live_status(&st), Status::Stopped) {
        return Err(format!("container {id} is not running"));
    }
    let saved = extra::load_saved(&dir.path);
    let cg = saved
        .cgroup
        .ok_or_else(|| format!("container {id} has no cgroup to update"))?;
    cgroup::update(&cg, &r, &|m| warn(g, m))?;
    // The sandbox's own bounds follow (its OOM killer must act before the
    // cgroup's: see `sandbox_memory`).
    let memory = r.memory_limit.map(|m| {
        if m > 0 {
            super::sandbox_memory(m as u64, true)
        } else {
            0
        }
    });
    let max_tasks = r.pids_limit.map(|p| {
        if p > 0 {
            p as u64
        } else {
            g.max_tasks.unwrap_or_else(crate::cli::default_max_tasks)
        }
    });
    if memory.is_some() || max_tasks.is_some() {
        let req = super::control::Request::SetLimits { memory, max_tasks };
        match super::control::call(&dir.control_path(), &req) {
            Ok(resp) if resp.ok => {}
            Ok(resp) => warn(
                g,
                &format!(
                    "update: the sandbox refused the new limits: {}",
                    resp.error.unwrap_or_default()
                ),
            ),
            Err(e) => warn(g, &format!("update: telling the sandbox: {e}")),
        }
    }
    Ok(())
}

/// The limit flags, over what `--resources` gave (runc: flags win).
fn flags(a: &super::Args, r: &mut Resources) -> Result<(), String> {
    let bytes = |k: &str| a.value(k).map(|v| parse_bytes(v, k)).transpose();
    let int = |k: &str| {
        a.value(k)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| format!("--{k}: invalid value {v:?}"))
            })
            .transpose()
    };
    let uint = |k: &str| {
        a.value(k)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("--{k}: invalid value {v:?}"))
            })
            .transpose()
    };
    if let Some(v) = bytes("memory")? {
        r.memory_limit = Some(v);
    }
    if let Some(v) = bytes("memory-swap")? {
        r.memory_swap = Some(v);
    }
    if let Some(v) = bytes("memory-reservation")? {
        r.memory_reservation = Some(v);
    }
    if let Some(v) = uint("cpu-shares")? {
        r.cpu_shares = Some(v);
    }
    if let Some(v) = int("cpu-quota")? {
        r.cpu_quota = Some(v);
    }
    if let Some(v) = uint("cpu-period")? {
        r.cpu_period = Some(v);
    }
    if let Some(v) = int("pids-limit")? {
        r.pids_limit = Some(v);
    }
    let set = |k: &str| -> Result<Option<String>, String> {
        match a.value(k) {
            None => Ok(None),
            Some(v) => {
                let parsed = cgroup::parse_resources(&serde_json::json!({"cpu": {"cpus": v}}))
                    .map_err(|e| e.replace("linux.resources.cpu.cpus", &format!("--{k}")))?;
                Ok(parsed.cpus.or(Some(String::new())))
            }
        }
    };
    if let Some(v) = set("cpuset-cpus")? {
        r.cpus = Some(v).filter(|s| !s.is_empty());
    }
    if let Some(v) = set("cpuset-mems")? {
        r.mems = Some(v).filter(|s| !s.is_empty());
    }
    Ok(())
}

/// A byte count as runc's flags take it (go-units RAMInBytes): a number with
/// an optional binary suffix b, k, m, g, t, p (with or without a trailing
/// "b", any case); -1 means unlimited.
fn parse_bytes(v: &str, flag: &str) -> Result<i64, String> {
    let bad = || format!("--{flag}: invalid size {v:?}");
    if v == "-1" {
        return Ok(-1);
    }
    let s = v.trim().to_ascii_lowercase();
    let s = s
        .strip_suffix("ib")
        .or_else(|| s.strip_suffix('b'))
        .unwrap_or(&s);
    let (num, mult) = match s.chars().last() {
        Some('k') => (&s[..s.len() - 1], 1i64 << 10),
        Some('m') => (&s[..s.len() - 1], 1 << 20),
        Some('g') => (&s[..s.len() - 1], 1 << 30),
        Some('t') => (&s[..s.len() - 1], 1 << 40),
        Some('p') => (&s[..s.len() - 1], 1 << 50),
        _ => (s, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    if !(0.0..9.2e18).contains(&n) {
        return Err(bad());
    }
    let total = n * mult as f64;
    if total >= 9.2e18 {
        return Err(bad());
    }
    Ok(total as i64)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("100", "m"), Ok(100));
        assert_eq!(parse_bytes("100m", "m"), Ok(100 << 20));
        assert_eq!(parse_bytes("1.5G", "m"), Ok(3 << 29));
        assert_eq!(parse_bytes("64MiB", "m"), Ok(64 << 20));
        assert_eq!(parse_bytes("2kb", "m"), Ok(2048));
        assert_eq!(parse_bytes("-1", "m"), Ok(-1));
        assert!(parse_bytes("x", "m").is_err());
        assert!(parse_bytes("-5", "m").is_err());
        assert!(parse_bytes("99999999p", "m").is_err());
    }
}
