//! `runsc events [--stats] [--interval D] ID`: the sandbox's resource use in
//! runc's event shape, once (`--stats`) or every interval until the container
//! stops.

use std::sync::Arc;
use std::time::Duration;

use sentry::Kernel;

use super::control::{self, Request, Stats};
use super::state::{Dir, Status};
use super::{fail, one_id, parse_args, root};
use crate::cli::Global;

// ---- the sandbox's side ----

/// CPU time of every live process (and of the children they reaped), the
/// workload memory the host backs, and the number of tasks (threads).
pub fn collect(k: &Arc<Kernel>) -> Stats {
    let mut s = Stats::default();
    for tg in k.all_groups() {
        let u = sentry::timer::group_usage(&tg);
        let c = tg.lock().children_usage;
        s.cpu_user_ns += u.user_ns + c.user_ns;
        s.cpu_kernel_ns += u.sys_ns + c.sys_ns;
    }
    s.tasks = k
        .pids()
        .tasks
        .values()
        .filter(|t| !t.exited.load(std::sync::atomic::Ordering::Relaxed))
        .count() as u64;
    let mf = fs::pagestore::memory_file();
    // SAFETY: fstat on the memory file's descriptor into a zeroed stat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(mf.fd(), &mut st) } == 0 {
        s.memory_bytes = (st.st_blocks as u64).saturating_mul(512);
    }
    s
}

// ---- the client ----

/// A Go duration (`5s`, `100ms`, `1m30s`, `2h`); a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}");
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let v: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += v * mult;
        rest = &rest[u..];
    }
    if !total.is_finite() || total > 1e9 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(total))
}

/// runc's stats event.
pub fn event_json(id: &str, s: &Stats) -> serde_json::Value {
    serde_json::json!({
        "type": "stats",
        "id": id,
        "data": {
            "cpu": {
                "usage": {
                    "total": s.cpu_user_ns + s.cpu_kernel_ns,
                    "user": s.cpu_user_ns,
                    "kernel": s.cpu_kernel_ns,
                },
            },
            "memory": {
                "usage": { "usage": s.memory_bytes },
            },
            "pids": { "current": s.tasks },
        },
    })
}

/// `runsc events [--stats] [--interval D] ID`.
pub fn cmd_events(g: &Global, args: &[String]) -> i32 {
    match events(g, args) {
        Ok(()) => 0,
        Err(e) => fail(g, &e),
    }
}

fn stats_once(g: &Global, id: &str) -> Result<Option<Stats>, String> {
    let sock = {
        let dir = Dir::open(&root(g), id)?;
        let st = dir.load()?;
        if matches!(dir.live_status(&st), Status::Stopped | Status::Creating) {
            return Ok(None);
        }
        dir.control_path()
    };
    match control::call(&sock, &Request::Stats) {
        Ok(r) if r.ok => Ok(r.stats),
        Ok(r) => Err(r.error.unwrap_or_else(|| "events failed".into())),
        Err(_) => Ok(None),
    }
}

fn events(g: &Global, args: &[String]) -> Result<(), String> {
    let a = parse_args(args, &["interval"], &["stats"], &[])?;
    let id = one_id(&a, "events")?;
    let interval = match a.value("interval") {
        Some(v) => parse_duration(v)?,
        None => Duration::from_secs(5),
    };
    if interval.is_zero() {
        return Err("duration interval must be greater than 0".into());
    }
    if a.flag("stats") {
        let s = stats_once(g, &id)?.ok_or("container not running")?;
        println!("{}", event_json(&id, &s));
        return Ok(());
    }
    loop {
        let Some(s) = stats_once(g, &id)? else {
            return Ok(());
        };
        println!("{}", event_json(&id, &s));
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn shape() {
        let v = event_json(
            "c1",
            &Stats {
                cpu_user_ns: 1,
                cpu_kernel_ns: 2,
                memory_bytes: 4096,
                tasks: 3,
            },
        );
        assert_eq!(v["type"], "stats");
        assert_eq!(v["data"]["cpu"]["usage"]["total"], 3);
        assert_eq!(v["data"]["pids"]["current"], 3);
    }
}
