//! `runsc ps [--format table|json] ID`: the sandbox's processes as the
//! workload sees them (pids of its PID namespace). runc runs the host's `ps`
//! on the container's processes; ours live inside the sandbox, so the sandbox
//! reports them and this prints them in `ps -ef`'s columns.
//!
//! `--format json` is what engines call (containerd's `Pids`, `docker top`):
//! they take the numbers as host pids and look them up in the host's `ps`, as
//! runc's are. So it lists the host processes the container runs in: the
//! sandbox process and its descendants on the host (the platform's stubs),
//! never in-sandbox pids, which on the host name unrelated processes.

use std::sync::Arc;

use sentry::Kernel;

use super::control::{self, ProcInfo, Request};
use super::state::{Dir, Status};
use super::{fail, parse_args, root};
use crate::cli::Global;

// ---- the sandbox's side ----

/// Every live process of the sandbox, by pid.
pub fn list(k: &Arc<Kernel>) -> Vec<ProcInfo> {
    let mut out = Vec::new();
    for tg in k.all_groups() {
        let leader = {
            let st = tg.lock();
            st.tasks
                .iter()
                .find(|t| t.tid() == tg.tgid)
                .or_else(|| st.tasks.first())
                .cloned()
        };
        let Some(leader) = leader else { continue };
        let (uid, cmdline, comm) = {
            let v = leader.proc.lock().unwrap_or_else(|e| e.into_inner());
            (v.creds.uid, v.cmdline.clone(), v.comm)
        };
        let mut cmd: Vec<String> = cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if cmd.is_empty() {
            let n = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
            cmd.push(format!("[{}]", String::from_utf8_lossy(&comm[..n])));
        }
        let u = sentry::timer::group_usage(&tg);
        out.push(ProcInfo {
            pid: tg.tgid,
            ppid: tg.ppid(),
            uid,
            start_secs: leader
                .start_time
                .saturating_duration_since(k.boot_time)
                .as_secs(),
            cpu_ns: u.user_ns + u.sys_ns,
            cmd: cmd.join(" "),
        });
    }
    out.sort_by_key(|p| p.pid);
    out
}

// ---- the client ----

/// `runsc ps [--format table|json] ID [PS_ARGS...]` (ps arguments, which
/// runc hands to the host's ps, are accepted and ignored).
pub fn cmd_ps(g: &Global, args: &[String]) -> i32 {
    match ps(g, args) {
        Ok(()) => 0,
        Err(e) => fail(g, &e),
    }
}

fn ps(g: &Global, args: &[String]) -> Result<(), String> {
    // Everything after the ID belongs to ps.
    let split = args
        .iter()
        .enumerate()
        .scan(false, |skip, (i, a)| {
            if *skip {
                *skip = false;
                return Some(None);
            }
            if a == "--format" || a == "-f" {
                *skip = true;
                return Some(None);
            }
            Some((!a.starts_with('-')).then_some(i))
        })
        .flatten()
        .next()
        .unwrap_or(args.len());
    let a = parse_args(&args[..split], &["format"], &[], &[("f", "format")])?;
    let id = args.get(split).ok_or("ps: container id cannot be empty")?;
    let format = a.value("format").unwrap_or("table");
    if format != "table" && format != "json" {
        return Err(format!("invalid format option {format:?}"));
    }
    let (sock, started, host_pid) = {
        let dir = Dir::open(&root(g), id)?;
        let st = dir.load()?;
        let status = dir.live_status(&st);
        if matches!(status, Status::Stopped | Status::Creating) {
            return Err("container not running".into());
        }
        (dir.control_path(), st.created.clone(), st.pid)
    };
    if format == "json" {
        println!("{}", serde_json::json!(host_tree(host_pid)));
        return Ok(());
    }
    let resp = control::call(&sock, &Request::Ps)
        .map_err(|e| format!("container \"{id}\": cannot reach the sandbox: {e}"))?;
    if !resp.ok {
        return Err(resp.error.unwrap_or_else(|| "ps failed".into()));
    }
    let procs = resp.processes.unwrap_or_default();
    print!("{}", table(&procs, &started));
    Ok(())
}

/// `root` and its descendants on the host, by /proc's parent links, sorted.
fn host_tree(root: i32) -> Vec<i32> {
    let mut parent = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // "pid (comm) state ppid ...": comm may hold spaces and ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok());
            if let Some(ppid) = ppid {
                parent.push((pid, ppid));
            }
        }
    }
    tree_of(root, &parent)
}

fn tree_of(root: i32, parent: &[(i32, i32)]) -> Vec<i32> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parent.iter().filter(|&&(_, pp)| pp == p).map(|&(c, _)| c));
        i += 1;
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// `ps -ef`'s columns: UID PID PPID C STIME TTY TIME CMD.
fn table(procs: &[ProcInfo], created: &str) -> String {
    // STIME as HH:MM of the container's creation day plus the start offset;
    // the RFC 3339 creation time is `YYYY-MM-DDTHH:MM:SS...`.
    let base = created
        .get(11..19)
        .and_then(|t| {
            let mut it = t.split(':').map(|x| x.parse::<u64>().ok());
            Some(it.next()?? * 3600 + it.next()?? * 60 + it.next()??)
        })
        .unwrap_or(0);
    let mut rows =
        vec![["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"].map(String::from)];
    for p in procs {
        let t = (base + p.start_secs) % 86_400;
        let cpu = p.cpu_ns / 1_000_000_000;
        rows.push([
            p.uid.to_string(),
            p.pid.to_string(),
            p.ppid.to_string(),
            "0".into(),
            format!("{:02}:{:02}", t / 3600, t / 60 % 60),
            "?".into(),
            format!("{:02}:{:02}:{:02}", cpu / 3600, cpu / 60 % 60, cpu % 60),
            p.cmd.clone(),
        ]);
    }
    let mut widths = [0usize; 8];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i == 7 {
                line.push_str(c);
            } else if (1..=2).contains(&i) {
                line.push_str(&format!("{c:>w$} ", w = widths[i]));
            } else {
                line.push_str(&format!("{c:<w$} ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_tree_follows_parents() {
        let links = [(10, 1), (11, 10), (12, 11), (13, 11), (20, 1), (21, 20)];
        assert_eq!(tree_of(10, &links), vec![10, 11, 12, 13]);
        assert_eq!(tree_of(21, &links), vec![21]);
        let me = std::process::id() as i32;
        assert!(host_tree(me).contains(&me));
    }

    #[test]
    fn table_shape() {
        let t = table(
            &[ProcInfo {
                pid: 1,
                ppid: 0,
                uid: 0,
                start_secs: 61,
                cpu_ns: 2_000_000_000,
                cmd: "sleep 100".into(),
            }],
            "2026-01-02T03:04:05.000000000Z",
        );
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("UID"));
        assert!(lines[0].ends_with("CMD"));
        assert!(lines[1].contains("03:05"), "{t}");
        assert!(lines[1].contains("00:00:02"), "{t}");
        assert!(lines[1].ends_with("sleep 100"));
    }
}
