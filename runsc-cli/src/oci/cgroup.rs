//! `linux.resources` applied to the sandbox's host cgroup (v1 or v2).
//!
//! The cgroup is `linux.cgroupsPath` (absolute, or relative to the
//! hierarchy's root); with `--systemd-cgroup`, a `slice:prefix:name` path is
//! mapped, best effort, to the cgroupfs path systemd would use
//! (`/a.slice/a-b.slice/prefix-name.scope`; systemd itself is not asked).
//! Without a cgroupsPath the sandbox gets `/runsc/<id>` when the spec sets a
//! limit, and no cgroup of its own otherwise.
//!
//! `create` makes the directories (v2: enabling the controllers on the way),
//! writes the limits (memory limit/reservation/swap, cpu shares/quota/period,
//! cpuset cpus/mems, pids limit), and moves itself in while it starts the
//! gofers and the sentry, so that every process of the sandbox (sentry, stubs,
//! gofers) starts inside; `delete` removes the directories it made. When
//! cgroups are not writable (not root, read-only cgroupfs), the limits are
//! skipped with a warning.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The limits of `linux.resources` the sandbox applies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub memory_limit: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub memory_swap: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpus: Option<String>,
    pub mems: Option<String>,
    pub pids_limit: Option<i64>,
}

impl Resources {
    fn any(&self) -> bool {
        *self != Resources::default()
    }
}

/// Where the sandbox's cgroup goes and what it limits.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Absolute, clean path inside each hierarchy; None: no cgroup.
    pub path: Option<String>,
    pub resources: Resources,
}

/// What `create` made (kept in the state directory for `delete`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Cgroup {
    /// The sandbox's directories, one per hierarchy.
    pub dirs: Vec<PathBuf>,
    /// Directories `create` made, shallowest first (removed at delete).
    pub created: Vec<PathBuf>,
    /// The cgroups `create` itself was in (it returns there after launching).
    #[serde(default)]
    pub original: Vec<PathBuf>,
}

fn int(v: &Value, field: &str) -> Result<i64, String> {
    v.as_i64()
        .ok_or_else(|| format!("{field}: expected an integer"))
}

fn uint(v: &Value, field: &str) -> Result<u64, String> {
    v.as_u64()
        .ok_or_else(|| format!("{field}: expected a non-negative integer"))
}

/// A cpuset list: digits, commas and dashes.
fn cpuset(v: &Value, field: &str) -> Result<String, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("{field}: expected a string"))?;
    if s.len() > 4096
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b',' || b == b'-')
    {
        return Err(format!(
            "{field}: {s:?} is not a list of numbers and ranges"
        ));
    }
    Ok(s.to_string())
}

fn get<'a>(o: &'a Value, key: &str) -> Option<&'a Value> {
    o.get(key).filter(|v| !v.is_null())
}

/// Parses `linux.resources` and `linux.cgroupsPath`.
pub fn parse(top: &Value, id: &str, systemd: bool) -> Result<Config, String> {
    let mut r = Resources::default();
    let linux = match get(top, "linux") {
        Some(l) if l.is_object() => Some(l),
        Some(_) => return Err("linux: expected an object".into()),
        None => None,
    };
    if let Some(res) = linux.and_then(|l| get(l, "resources")) {
        if !res.is_object() {
            return Err("linux.resources: expected an object".into());
        }
        if let Some(m) = get(res, "memory") {
            if !m.is_object() {
                return Err("linux.resources.memory: expected an object".into());
            }
            let f = |k: &str| {
                get(m, k)
                    .map(|v| int(v, &format!("linux.resources.memory.{k}")))
                    .transpose()
            };
            r.memory_limit = f("limit")?;
            r.memory_reservation = f("reservation")?;
            r.memory_swap = f("swap")?;
        }
        if let Some(c) = get(res, "cpu") {
            if !c.is_object() {
                return Err("linux.resources.cpu: expected an object".into());
            }
            let name = |k: &str| format!("linux.resources.cpu.{k}");
            r.cpu_shares = get(c, "shares")
                .map(|v| uint(v, &name("shares")))
                .transpose()?;
            r.cpu_quota = get(c, "quota")
                .map(|v| int(v, &name("quota")))
                .transpose()?;
            r.cpu_period = get(c, "period")
                .map(|v| uint(v, &name("period")))
                .transpose()?;
            r.cpus = get(c, "cpus")
                .map(|v| cpuset(v, &name("cpus")))
                .transpose()?;
            r.mems = get(c, "mems")
                .map(|v| cpuset(v, &name("mems")))
                .transpose()?;
            r.cpus = r.cpus.filter(|s| !s.is_empty());
            r.mems = r.mems.filter(|s| !s.is_empty());
        }
        if let Some(p) = get(res, "pids") {
            if !p.is_object() {
                return Err("linux.resources.pids: expected an object".into());
            }
            r.pids_limit = get(p, "limit")
                .map(|v| int(v, "linux.resources.pids.limit"))
                .transpose()?;
        }
    }
    let given = match linux.and_then(|l| get(l, "cgroupsPath")) {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("linux.cgroupsPath: expected a string".into()),
        None => String::new(),
    };
    let path = if given.is_empty() {
        r.any().then(|| format!("/runsc/{id}"))
    } else if systemd && given.matches(':').count() == 2 {
        Some(systemd_path(&given)?)
    } else {
        Some(given)
    };
    let path = path.map(|p| clean(&p)).transpose()?;
    Ok(Config { path, resources: r })
}

/// `slice:prefix:name` -> `/a.slice/a-b.slice/prefix-name.scope`.
fn systemd_path(p: &str) -> Result<String, String> {
    let mut it = p.splitn(3, ':');
    let (slice, prefix, name) = (
        it.next().unwrap_or(""),
        it.next().unwrap_or(""),
        it.next().unwrap_or(""),
    );
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let base = slice
        .strip_suffix(".slice")
        .ok_or_else(|| format!("linux.cgroupsPath: {p:?}: the slice must end in \".slice\""))?;
    if base.contains('/') || name.contains('/') || prefix.contains('/') || name.is_empty() {
        return Err(format!(
            "linux.cgroupsPath: {p:?} is not a systemd \"slice:prefix:name\""
        ));
    }
    let mut out = String::new();
    if base != "-" {
        let parts: Vec<&str> = base.split('-').collect();
        for i in 0..parts.len() {
            out.push('/');
            out.push_str(&parts[..=i].join("-"));
            out.push_str(".slice");
        }
    }
    out.push('/');
    if name.ends_with(".slice") {
        out.push_str(name);
    } else if prefix.is_empty() {
        out.push_str(&format!("{name}.scope"));
    } else {
        out.push_str(&format!("{prefix}-{name}.scope"));
    }
    Ok(out)
}

/// Cleans a cgroup path: no "..", not the root itself.
fn clean(p: &str) -> Result<String, String> {
    if p.contains('\0') || p.len() > 2048 {
        return Err(format!("linux.cgroupsPath: {p:?} is not a valid path"));
    }
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(format!("linux.cgroupsPath: {p:?} may not contain \"..\""));
    }
    if parts.is_empty() {
        return Err(format!("linux.cgroupsPath: {p:?} names the root cgroup"));
    }
    Ok(format!("/{}", parts.join("/")))
}

const V2_ROOT: &str = "/sys/fs/cgroup";

/// The v1 controllers the sandbox joins.
const V1_CONTROLLERS: &[&str] = &["memory", "cpu", "cpuacct", "cpuset", "pids"];

fn is_v2() -> bool {
    Path::new(V2_ROOT).join("cgroup.controllers").exists()
}

/// v1 hierarchies: (controllers, mount point), from /proc/self/mountinfo.
fn v1_mounts() -> Vec<(Vec<String>, PathBuf)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split(' ');
        if post.next() != Some("cgroup") {
            continue;
        }
        let opts = post.nth(1).unwrap_or("");
        let Some(mnt) = pre.split(' ').nth(4) else {
            continue;
        };
        let ctrls: Vec<String> = opts
            .split(',')
            .filter(|o| V1_CONTROLLERS.contains(o))
            .map(String::from)
            .collect();
        if !ctrls.is_empty() {
            out.push((ctrls, PathBuf::from(unescape(mnt))));
        }
    }
    out
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(n) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or(""), 8)
            {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn write(dir: &Path, file: &str, value: &str, field: &str) -> Result<(), String> {
    std::fs::write(dir.join(file), value).map_err(|e| {
        format!(
            "{field}: writing {value:?} to {}: {e}",
            dir.join(file).display()
        )
    })
}

/// Makes `dir` and its missing parents; the new ones are appended to `made`.
/// Each new v1 cpuset directory gets its parent's cpus and mems (it cannot
/// hold a process without).
fn mkdirs(dir: &Path, made: &mut Vec<PathBuf>, cpuset_v1: bool) -> std::io::Result<()> {
    let mut todo = Vec::new();
    let mut cur = dir.to_path_buf();
    while !cur.exists() {
        todo.push(cur.clone());
        if !cur.pop() {
            break;
        }
    }
    for d in todo.into_iter().rev() {
        match std::fs::create_dir(&d) {
            Ok(()) => made.push(d.clone()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        if cpuset_v1 {
            if let Some(parent) = d.parent() {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let cur = std::fs::read_to_string(d.join(f)).unwrap_or_default();
                    if cur.trim().is_empty() {
                        let v = std::fs::read_to_string(parent.join(f)).unwrap_or_default();
                        std::fs::write(d.join(f), v.trim())?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn not_writable(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
    )
}

/// Makes the sandbox's cgroup and writes its limits. Ok(None): no cgroup
/// (none asked for, or cgroups not writable: `warn` says so).
pub fn create(cfg: &Config, warn: &dyn Fn(&str)) -> Result<Option<Cgroup>, String> {
    let Some(path) = &cfg.path else {
        return Ok(None);
    };
    let rel = path.trim_start_matches('/');
    let mut cg = Cgroup::default();
    let r = if is_v2() {
        create_v2(Path::new(V2_ROOT), &mut cg, rel, &cfg.resources)
    } else {
        create_v1(&mut cg, rel, &cfg.resources, warn)
    };
    match r {
        Ok(()) => Ok(Some(cg)),
        Err(Skip(msg)) => {
            remove(&cg);
            if cfg.resources.any() {
                warn(&format!(
                    "linux.resources not applied: cgroups are not writable ({msg})"
                ));
            }
            Ok(None)
        }
        Err(Fail(msg)) => {
            remove(&cg);
            Err(msg)
        }
    }
}

enum Problem {
    /// Cgroups cannot be used here: go on without.
    Skip(String),
    /// The spec's limits cannot be applied: fail create.
    Fail(String),
}
use Problem::{Fail, Skip};

fn create_v1(
    cg: &mut Cgroup,
    rel: &str,
    r: &Resources,
    warn: &dyn Fn(&str),
) -> Result<(), Problem> {
    let mounts = v1_mounts();
    if mounts.is_empty() {
        return Err(Skip("no cgroup hierarchy mounted".into()));
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for (ctrls, mnt) in &mounts {
        let dir = mnt.join(rel);
        let is_cpuset = ctrls.iter().any(|c| c == "cpuset");
        mkdirs(&dir, &mut cg.created, is_cpuset).map_err(|e| {
            let m = format!("{}: {e}", dir.display());
            if not_writable(&e) {
                Skip(m)
            } else {
                Fail(format!("linux.cgroupsPath: {m}"))
            }
        })?;
        cg.dirs.push(dir.clone());
        // Where this process is now in that hierarchy.
        let orig = own
            .lines()
            .filter_map(|l| {
                let mut f = l.splitn(3, ':');
                let _ = f.next();
                let cs = f.next()?;
                let p = f.next()?;
                cs.split(',')
                    .any(|c| ctrls.iter().any(|x| x == c))
                    .then_some(p)
            })
            .next()
            .map(|p| mnt.join(p.trim_start_matches('/')))
            .filter(|p| p.join("cgroup.procs").exists())
            .unwrap_or_else(|| mnt.clone());
        cg.original.push(orig);
        write_v1(&dir, ctrls, r, warn).map_err(Fail)?;
    }
    for (c, set) in [
        (
            "memory",
            r.memory_limit.is_some() || r.memory_swap.is_some(),
        ),
        ("cpu", r.cpu_shares.is_some() || r.cpu_quota.is_some()),
        ("cpuset", r.cpus.is_some() || r.mems.is_some()),
        ("pids", r.pids_limit.is_some()),
    ] {
        if set && !mounts.iter().any(|(cs, _)| cs.iter().any(|x| x == c)) {
            warn(&format!(
                "linux.resources: no {c} cgroup hierarchy on this host; its limits are ignored"
            ));
        }
    }
    Ok(())
}

/// Writes the limits of `r` that the v1 hierarchy with `ctrls` holds to `dir`.
fn write_v1(
    dir: &Path,
    ctrls: &[String],
    r: &Resources,
    warn: &dyn Fn(&str),
) -> Result<(), String> {
    let is_cpuset = ctrls.iter().any(|c| c == "cpuset");
    {
        let dir = dir.to_path_buf();
        let has = |c: &str| ctrls.iter().any(|x| x == c);
        let fail = |e: String| e;
        if has("memory") {
            if let Some(v) = r.memory_limit {
                write(
                    &dir,
                    "memory.limit_in_bytes",
                    &v.to_string(),
                    "linux.resources.memory.limit",
                )
                .map_err(fail)?;
            }
            if let Some(v) = r.memory_swap {
                if dir.join("memory.memsw.limit_in_bytes").exists() {
                    write(
                        &dir,
                        "memory.memsw.limit_in_bytes",
                        &v.to_string(),
                        "linux.resources.memory.swap",
                    )
                    .map_err(fail)?;
                } else {
                    warn("linux.resources.memory.swap: no swap accounting on this host; ignored");
                }
            }
            if let Some(v) = r.memory_reservation {
                write(
                    &dir,
                    "memory.soft_limit_in_bytes",
                    &v.to_string(),
                    "linux.resources.memory.reservation",
                )
                .map_err(fail)?;
            }
        }
        if has("cpu") {
            if let Some(v) = r.cpu_shares {
                write(
                    &dir,
                    "cpu.shares",
                    &v.to_string(),
                    "linux.resources.cpu.shares",
                )
                .map_err(fail)?;
            }
            if let Some(v) = r.cpu_period.filter(|p| *p != 0) {
                write(
                    &dir,
                    "cpu.cfs_period_us",
                    &v.to_string(),
                    "linux.resources.cpu.period",
                )
                .map_err(fail)?;
            }
            if let Some(v) = r.cpu_quota.filter(|q| *q != 0) {
                let v = if v < 0 { -1 } else { v };
                write(
                    &dir,
                    "cpu.cfs_quota_us",
                    &v.to_string(),
                    "linux.resources.cpu.quota",
                )
                .map_err(fail)?;
            }
        }
        if is_cpuset {
            if let Some(v) = &r.cpus {
                write(&dir, "cpuset.cpus", v, "linux.resources.cpu.cpus").map_err(fail)?;
            }
            if let Some(v) = &r.mems {
                write(&dir, "cpuset.mems", v, "linux.resources.cpu.mems").map_err(fail)?;
            }
        }
        if has("pids") {
            if let Some(v) = r.pids_limit {
                let v = if v <= 0 {
                    "max".to_string()
                } else {
                    v.to_string()
                };
                write(&dir, "pids.max", &v, "linux.resources.pids.limit").map_err(fail)?;
            }
        }
    }
    Ok(())
}

fn create_v2(root: &Path, cg: &mut Cgroup, rel: &str, r: &Resources) -> Result<(), Problem> {
    let dir = root.join(rel);
    mkdirs(&dir, &mut cg.created, false).map_err(|e| {
        let m = format!("{}: {e}", dir.display());
        if not_writable(&e) {
            Skip(m)
        } else {
            Fail(format!("linux.cgroupsPath: {m}"))
        }
    })?;
    cg.dirs.push(dir.clone());
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let orig = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| root.join(p.trim_start_matches('/')))
        .filter(|p| p.join("cgroup.procs").exists())
        .unwrap_or_else(|| root.to_path_buf());
    cg.original.push(orig);
    // Enable the controllers from the root down to the sandbox's parent.
    let wanted = ["cpu", "cpuset", "memory", "pids"];
    let mut cur = root.to_path_buf();
    for comp in Path::new(rel).components() {
        let avail = std::fs::read_to_string(cur.join("cgroup.controllers")).unwrap_or_default();
        for c in avail.split_whitespace().filter(|c| wanted.contains(c)) {
            // Best effort: a parent with processes refuses (its limits then
            // do not apply below it).
            let _ = std::fs::write(cur.join("cgroup.subtree_control"), format!("+{c}"));
        }
        cur.push(comp);
    }
    write_v2(&dir, r).map_err(Fail)
}

/// Writes the limits of `r` to the v2 cgroup `dir`.
fn write_v2(dir: &Path, r: &Resources) -> Result<(), String> {
    let dir = dir.to_path_buf();
    let fail = |e: String| e;
    let max = |v: i64| {
        if v < 0 {
            "max".to_string()
        } else {
            v.to_string()
        }
    };
    if let Some(v) = r.memory_limit {
        write(&dir, "memory.max", &max(v), "linux.resources.memory.limit").map_err(fail)?;
    }
    if let Some(v) = r.memory_reservation {
        write(
            &dir,
            "memory.low",
            &max(v),
            "linux.resources.memory.reservation",
        )
        .map_err(fail)?;
    }
    if let Some(swap) = r.memory_swap {
        // v1's memsw is memory plus swap; v2's swap.max is swap alone.
        let v = match r.memory_limit {
            _ if swap < 0 => "max".to_string(),
            Some(l) if l >= 0 => swap.saturating_sub(l).max(0).to_string(),
            _ => swap.to_string(),
        };
        if dir.join("memory.swap.max").exists() {
            write(&dir, "memory.swap.max", &v, "linux.resources.memory.swap").map_err(fail)?;
        }
    }
    if let Some(s) = r.cpu_shares.filter(|s| *s != 0) {
        let s = s.clamp(2, 262_144);
        let w = 1 + ((s - 2) * 9999) / 262_142;
        write(
            &dir,
            "cpu.weight",
            &w.to_string(),
            "linux.resources.cpu.shares",
        )
        .map_err(fail)?;
    }
    if r.cpu_quota.is_some() || r.cpu_period.is_some() {
        let period = r.cpu_period.filter(|p| *p != 0).unwrap_or(100_000);
        let quota = match r.cpu_quota {
            Some(q) if q > 0 => q.to_string(),
            _ => "max".to_string(),
        };
        write(
            &dir,
            "cpu.max",
            &format!("{quota} {period}"),
            "linux.resources.cpu.quota",
        )
        .map_err(fail)?;
    }
    if let Some(v) = &r.cpus {
        write(&dir, "cpuset.cpus", v, "linux.resources.cpu.cpus").map_err(fail)?;
    }
    if let Some(v) = &r.mems {
        write(&dir, "cpuset.mems", v, "linux.resources.cpu.mems").map_err(fail)?;
    }
    if let Some(v) = r.pids_limit {
        let v = if v <= 0 {
            "max".to_string()
        } else {
            v.to_string()
        };
        write(&dir, "pids.max", &v, "linux.resources.pids.limit").map_err(fail)?;
    }
    Ok(())
}

/// `runsc update`: writes `r` to the cgroup `create` made (only the limits
/// `r` sets; the others stay).
pub fn update(cg: &Cgroup, r: &Resources, warn: &dyn Fn(&str)) -> Result<(), String> {
    if cg.dirs.is_empty() {
        return Err("the container has no cgroup".into());
    }
    if is_v2() {
        for d in &cg.dirs {
            write_v2(d, r)?;
        }
        return Ok(());
    }
    let mounts = v1_mounts();
    for d in &cg.dirs {
        if let Some((ctrls, _)) = mounts.iter().find(|(_, m)| d.starts_with(m)) {
            write_v1(d, ctrls, r, warn)?;
        }
    }
    Ok(())
}

/// runc update's `--resources` JSON (a `linux.resources` object).
pub fn parse_resources(v: &Value) -> Result<Resources, String> {
    let top = serde_json::json!({ "linux": { "resources": v } });
    Ok(parse(&top, "update", false)?.resources)
}

fn move_self(dirs: &[PathBuf]) -> Result<(), String> {
    for d in dirs {
        std::fs::write(d.join("cgroup.procs"), "0")
            .map_err(|e| format!("joining the cgroup {}: {e}", d.display()))?;
    }
    Ok(())
}

/// Moves this process into the sandbox's cgroup (what it starts inherits it).
pub fn enter(cg: &Cgroup) -> Result<(), String> {
    move_self(&cg.dirs)
}

/// Moves this process back where it was.
pub fn leave(cg: &Cgroup, warn: &dyn Fn(&str)) {
    if let Err(e) = move_self(&cg.original) {
        warn(&e);
    }
}

/// Removes the directories `create` made (deepest first). Processes still in
/// the sandbox's cgroup (the sandbox is gone by now) are killed first.
pub fn remove(cg: &Cgroup) {
    for d in &cg.dirs {
        if !cg.created.contains(d) {
            continue;
        }
        let end = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
            let pids: Vec<i32> = procs
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            if pids.is_empty() || std::time::Instant::now() > end {
                break;
            }
            let me = std::process::id() as i32;
            for p in pids.into_iter().filter(|p| *p > 1 && *p != me) {
                // SAFETY: kill(2) of a process in the container's own cgroup.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    for d in cg.created.iter().rev() {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            match std::fs::remove_dir(d) {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::NotFound => break,
                // Shared with another container: leave it.
                Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => break,
                Err(e) => {
                    if std::time::Instant::now() > end {
                        tracing::warn!("removing the cgroup {}: {e}", d.display());
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(json: &str, systemd: bool) -> Result<Config, String> {
        parse(&serde_json::from_str(json).unwrap(), "cid", systemd)
    }

    #[test]
    fn paths() {
        assert_eq!(p("{}", false).unwrap().path, None);
        assert_eq!(
            p(r#"{"linux":{"resources":{"pids":{"limit":5}}}}"#, false)
                .unwrap()
                .path
                .as_deref(),
            Some("/runsc/cid")
        );
        assert_eq!(
            p(r#"{"linux":{"cgroupsPath":"a//b/"}}"#, false)
                .unwrap()
                .path
                .as_deref(),
            Some("/a/b")
        );
        assert_eq!(
            p(
                r#"{"linux":{"cgroupsPath":"machine-x.slice:libpod:abc"}}"#,
                true
            )
            .unwrap()
            .path
            .as_deref(),
            Some("/machine.slice/machine-x.slice/libpod-abc.scope")
        );
        assert_eq!(
            p(r#"{"linux":{"cgroupsPath":":runsc:abc"}}"#, true)
                .unwrap()
                .path
                .as_deref(),
            Some("/system.slice/runsc-abc.scope")
        );
        for bad in [
            r#"{"linux":{"cgroupsPath":"/a/../b"}}"#,
            r#"{"linux":{"cgroupsPath":"/"}}"#,
            r#"{"linux":{"cgroupsPath":7}}"#,
            r#"{"linux":{"resources":{"memory":{"limit":"1g"}}}}"#,
            r#"{"linux":{"resources":{"cpu":{"cpus":"0;1"}}}}"#,
            r#"{"linux":{"resources":{"pids":[]}}}"#,
        ] {
            let e = p(bad, false).unwrap_err();
            assert!(e.starts_with("linux."), "{bad}: {e}");
            assert!(!e.contains('\n'));
        }
        let r = p(
            r#"{"linux":{"resources":{"memory":{"limit":1048576,"swap":-1},
                "cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0"},"pids":{"limit":32},
                "devices":[{"allow":false,"access":"rwm"}]}}}"#,
            false,
        )
        .unwrap()
        .resources;
        assert_eq!(r.memory_limit, Some(1 << 20));
        assert_eq!(r.cpu_quota, Some(50000));
        assert_eq!(r.pids_limit, Some(32));
        assert_eq!(r.cpus.as_deref(), Some("0"));
    }

    /// The v2 files, written in a plain directory standing for /sys/fs/cgroup.
    #[test]
    fn v2_files() {
        let root = std::env::temp_dir().join(format!("runsc-cg-v2-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let r = Resources {
            memory_limit: Some(1 << 20),
            cpu_shares: Some(1024),
            cpu_quota: Some(50_000),
            pids_limit: Some(0),
            ..Default::default()
        };
        let mut cg = Cgroup::default();
        assert!(create_v2(&root, &mut cg, "a/b", &r).is_ok());
        let f = |n: &str| std::fs::read_to_string(root.join("a/b").join(n)).unwrap();
        assert_eq!(f("memory.max"), "1048576");
        assert_eq!(f("cpu.max"), "50000 100000");
        assert_eq!(f("cpu.weight"), "39");
        assert_eq!(f("pids.max"), "max");
        assert_eq!(cg.created, vec![root.join("a"), root.join("a/b")]);
        assert_eq!(cg.dirs, vec![root.join("a/b")]);
        assert_eq!(
            std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap(),
            "+pids"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/a\04"), r"/a\04");
    }
}
