//! Rootless sandboxes (issue 6): runsc run by an unprivileged host user (uid
//! 65534 here), and `--rootless` as root. Every process of the sandbox then
//! lives in user namespaces created by an unprivileged host user, mapping the
//! sandbox's one uid/gid to that user's; the sentry is still PID 1 of its own
//! PID namespace, in an empty root, without capabilities, with no_new_privs
//! and its seccomp filter, and the gofers are still in their own mount and
//! network namespaces, pivoted or with the host's /proc hidden.
//!
//! Needs root (to become uid 65534), busybox-static (/bin/busybox) and
//! unprivileged user namespaces (checked first with `unshare -U`: skipped
//! without them).

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tests::{extra_runsc_flags, runsc_bin, target_dir, PLATFORMS};

const NOBODY: u32 = 65534;
const NAMESPACES: &[&str] = &["user", "mnt", "pid", "net", "ipc", "uts", "cgroup"];

fn status_field(pid: i32, name: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

fn ns(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|e| format!("unreadable: {e}"))
}

fn ppid(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            c.split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The children of `parent` running `runsc <sub>`.
fn children(parent: i32, sub: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| ppid(p) == Some(parent) && cmdline(p).iter().any(|a| a == sub))
        .collect()
}

/// Waits until `runsc do` (`parent`) has a sentry and `gofers` gofers, all
/// under their seccomp filters (done confining themselves).
fn wait_sandbox(parent: i32, gofers: usize) -> (i32, Vec<i32>) {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let s = children(parent, "boot");
        let g = children(parent, "gofer");
        let confined = |p: &i32| status_field(*p, "Seccomp").as_deref() == Some("2");
        if s.len() == 1 && g.len() == gofers && s.iter().chain(&g).all(confined) {
            // Let the workload start.
            std::thread::sleep(Duration::from_millis(300));
            return (s[0], g);
        }
        assert!(
            Instant::now() < end,
            "sandbox of {parent} not confined in time: sentry {s:?}, gofers {g:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs as host uid/gid 65534 without supplementary groups (std drops them:
/// setgroups(0) as root), in "/", with a minimal environment.
fn as_nobody(c: &mut Command) -> &mut Command {
    c.uid(NOBODY)
        .gid(NOBODY)
        .current_dir("/")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
}

/// Whether uid 65534 can run runsc and create a user namespace here; prints
/// why not otherwise (the test is then skipped).
fn nobody_can_run() -> bool {
    let ok = |c: &mut Command| {
        c.stdin(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ok(as_nobody(&mut Command::new(runsc_bin())).arg("--version")) {
        eprintln!("skipped: uid 65534 cannot run {}", runsc_bin().display());
        return false;
    }
    if !ok(as_nobody(&mut Command::new("unshare")).args(["-U", "-r", "true"])) {
        eprintln!("skipped: uid 65534 cannot create a user namespace (unshare -U -r true)");
        return false;
    }
    true
}

fn runsc() -> Command {
    let mut c = Command::new(runsc_bin());
    c.arg(format!("--platform={}", PLATFORMS[0]))
        .args(extra_runsc_flags());
    c
}

fn scratch(name: &str, owner: u32) -> PathBuf {
    let d = target_dir()
        .join("rootless-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::os::unix::fs::chown(&d, Some(owner), Some(owner)).unwrap();
    d
}

fn busybox() -> PathBuf {
    let p = Path::new("/bin/busybox");
    assert!(
        p.exists(),
        "/bin/busybox is missing: install the Debian package busybox-static"
    );
    std::fs::canonicalize(p).unwrap()
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: signals our own child's process group.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

fn hex(pid: i32, field: &str) -> u64 {
    u64::from_str_radix(&status_field(pid, field).unwrap_or_default(), 16).unwrap_or(u64::MAX)
}

/// Every way the sentry `pid` is not confined, `host_id` being the host uid
/// and gid it must run as.
fn sentry_failures(pid: i32, host_id: u32) -> Vec<String> {
    let mut f = Vec::new();
    let p = pid.to_string();
    for kind in NAMESPACES {
        let (theirs, ours) = (ns(&p, kind), ns("self", kind));
        if theirs == ours || theirs.starts_with("unreadable") {
            f.push(format!("{kind} namespace {theirs} (ours {ours})"));
        }
    }
    match status_field(pid, "NSpid") {
        Some(v) if v.split_whitespace().last() == Some("1") => {}
        v => f.push(format!("NSpid {v:?}: not PID 1 of its own PID namespace")),
    }
    match std::fs::read_dir(format!("/proc/{pid}/root/")) {
        Ok(d) => {
            let names: Vec<_> = d.flatten().map(|e| e.file_name()).collect();
            if !names.is_empty() {
                f.push(format!("root is not empty: {names:?}"));
            }
        }
        Err(e) => f.push(format!("root: {e}")),
    }
    // Capabilities are those of its own user namespace: none in any set.
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        if hex(pid, cap) != 0 {
            f.push(format!("{cap} {:?}", status_field(pid, cap)));
        }
    }
    for id in ["Uid", "Gid"] {
        match status_field(pid, id) {
            Some(v) if v.split_whitespace().all(|x| x == host_id.to_string()) => {}
            v => f.push(format!("{id} {v:?}, want {host_id}")),
        }
    }
    for (field, want) in [("NoNewPrivs", "1"), ("Seccomp", "2")] {
        if status_field(pid, field).as_deref() != Some(want) {
            f.push(format!("{field} {:?}", status_field(pid, field)));
        }
    }
    f
}

/// Every way the gofer `pid` is not confined (see gofer_confine.rs; here in a
/// user namespace of its own as well).
fn gofer_failures(pid: i32, host_id: u32) -> Vec<String> {
    let mut f = Vec::new();
    let p = pid.to_string();
    for kind in ["user", "mnt", "net", "ipc", "uts"] {
        if ns(&p, kind) == ns("self", kind) {
            f.push(format!("gofer {pid}: the host's {kind} namespace"));
        }
    }
    for id in ["Uid", "Gid"] {
        match status_field(pid, id) {
            Some(v) if v.split_whitespace().all(|x| x == host_id.to_string()) => {}
            v => f.push(format!("gofer {pid}: {id} {v:?}, want {host_id}")),
        }
    }
    // CAP_CHOWN | CAP_DAC_OVERRIDE | CAP_FOWNER | CAP_FSETID at most, in its
    // own user namespace.
    for cap in ["CapEff", "CapPrm", "CapBnd"] {
        if hex(pid, cap) & !0x1b != 0 {
            f.push(format!("gofer {pid}: {cap} {:?}", status_field(pid, cap)));
        }
    }
    for (field, want) in [("NoNewPrivs", "1"), ("Seccomp", "2")] {
        if status_field(pid, field).as_deref() != Some(want) {
            f.push(format!(
                "gofer {pid}: {field} {:?}",
                status_field(pid, field)
            ));
        }
    }
    // `runsc do`'s root gofer serves the host's "/", without its /proc.
    if Path::new(&format!("/proc/{pid}/root/proc/self")).exists() {
        f.push(format!("gofer {pid}: sees the host's /proc"));
    }
    f
}

fn output_of(c: &mut Command) -> Output {
    c.stdin(Stdio::null()).output().unwrap()
}

/// `runsc do` as uid 65534: the workload runs as the caller, the sentry and
/// the gofers are confined in user namespaces of their own.
#[test]
fn unprivileged_do_runs_confined() {
    if !nobody_can_run() {
        return;
    }
    let bb = busybox();
    let o = output_of(
        as_nobody(&mut runsc())
            .arg("do")
            .arg(&bb)
            .args(["echo", "hi"]),
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n", "{o:?}");
    let o =
        output_of(
            as_nobody(&mut runsc())
                .arg("do")
                .arg(&bb)
                .args(["sh", "-c", "id -u; id -g"]),
        );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "65534\n65534\n",
        "{o:?}"
    );
    // Exit statuses come through.
    let o = output_of(
        as_nobody(&mut runsc())
            .arg("do")
            .arg(&bb)
            .args(["sh", "-c", "exit 7"]),
    );
    assert_eq!(o.status.code(), Some(7), "{o:?}");

    let child = as_nobody(&mut runsc())
        .args(["do", "--"])
        .arg(&bb)
        .args(["sleep", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let child = KillOnDrop(child);
    let (sentry, gofers) = wait_sandbox(child.0.id() as i32, 1);
    let mut f = sentry_failures(sentry, NOBODY);
    for g in gofers {
        f.extend(gofer_failures(g, NOBODY));
        if ns(&g.to_string(), "user") == ns(&sentry.to_string(), "user") {
            f.push(format!("gofer {g} shares the sentry's user namespace"));
        }
    }
    assert!(
        f.is_empty(),
        "rootless sandbox not confined:\n{}",
        f.join("\n")
    );
}

/// What a rootless `runsc do` creates in a volume belongs to the caller.
#[test]
fn unprivileged_volume_files_belong_to_the_caller() {
    if !nobody_can_run() {
        return;
    }
    let dir = scratch("vol", NOBODY);
    let o = output_of(
        as_nobody(&mut runsc())
            .arg("do")
            .arg(format!("--volume={}:/v", dir.display()))
            .arg(busybox())
            .args([
                "sh",
                "-c",
                "echo x > /v/f && mkdir /v/d && ln -s f /v/l && stat -c '%u:%g' /v/f /v/d",
            ]),
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "65534:65534\n65534:65534\n",
        "{o:?}"
    );
    for n in ["f", "d", "l"] {
        let m = std::fs::symlink_metadata(dir.join(n)).unwrap();
        assert_eq!((m.uid(), m.gid()), (NOBODY, NOBODY), "{n}");
    }
    assert_eq!(std::fs::read_to_string(dir.join("f")).unwrap(), "x\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `runsc --rootless do` as root: the workload still sees root's identity,
/// but on the host the sentry and the gofers are nobody, in user namespaces
/// of their own; what it writes to a volume is nobody's; root's files stay
/// out of its reach.
#[test]
fn root_rootless_do_runs_as_nobody() {
    if !nobody_can_run() {
        return;
    }
    let bb = busybox();
    let o =
        output_of(
            runsc()
                .args(["--rootless", "do"])
                .arg(&bb)
                .args(["sh", "-c", "id -u; id -g"]),
        );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "0\n0\n", "{o:?}");
    // A root-only file of the host is not readable through the gofer.
    let dir = scratch("rootonly", 0);
    let secret = dir.join("secret");
    std::fs::write(&secret, "s").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let o = output_of(
        runsc()
            .args(["--rootless", "do"])
            .arg(&bb)
            .arg("cat")
            .arg(&secret),
    );
    assert!(!o.status.success(), "root's file read: {o:?}");
    let o = output_of(runsc().arg("do").arg(&bb).arg("cat").arg(&secret));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "s", "{o:?}");
    let _ = std::fs::remove_dir_all(&dir);

    let vol = scratch("rootvol", NOBODY);
    let o = output_of(
        runsc()
            .args(["--rootless", "do"])
            .arg(format!("--volume={}:/v", vol.display()))
            .arg(&bb)
            .args(["sh", "-c", "echo y > /v/g && stat -c '%u:%g' /v/g"]),
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "0:0\n", "{o:?}");
    let m = std::fs::metadata(vol.join("g")).unwrap();
    assert_eq!((m.uid(), m.gid()), (NOBODY, NOBODY));
    let _ = std::fs::remove_dir_all(&vol);

    let child = runsc()
        .args(["--rootless", "do", "--"])
        .arg(&bb)
        .args(["sleep", "30"])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let child = KillOnDrop(child);
    let (sentry, gofers) = wait_sandbox(child.0.id() as i32, 1);
    let mut f = sentry_failures(sentry, NOBODY);
    for g in gofers {
        f.extend(gofer_failures(g, NOBODY));
    }
    assert!(
        f.is_empty(),
        "--rootless sandbox not confined:\n{}",
        f.join("\n")
    );
}

/// `runsc spec --rootless` and `runsc --root DIR run` as uid 65534 with a
/// busybox rootfs: the workload runs as root of the container, its output and
/// exit status come through, and what it writes is the user's on the host.
#[test]
fn unprivileged_oci_run() {
    if !nobody_can_run() {
        return;
    }
    let dir = scratch("oci", NOBODY);
    let bundle = dir.join("bundle");
    let rootfs = bundle.join("rootfs");
    for d in ["bin", "tmp", "proc", "dev", "sys"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(busybox(), rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    let o = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let o = output_of(
        as_nobody(&mut Command::new(runsc_bin()))
            .args(["spec", "--rootless"])
            .current_dir(&bundle),
    );
    assert!(o.status.success(), "spec: {o:?}");
    let path = bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(spec["linux"]["uidMappings"][0]["hostID"], NOBODY);
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!([
        "sh",
        "-c",
        "id; echo written > /tmp/out; cat /tmp/out; exit 3"
    ]);
    spec["root"]["readonly"] = false.into();
    std::fs::write(&path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let state = dir.join("state");
    let o = output_of(
        as_nobody(&mut runsc())
            .arg(format!("--root={}", state.display()))
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg("rl1"),
    );
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "uid=0 gid=0\nwritten\n",
        "{o:?}"
    );
    let m = std::fs::metadata(rootfs.join("tmp/out")).unwrap();
    assert_eq!((m.uid(), m.gid()), (NOBODY, NOBODY));
    // A network namespace path (the host's) cannot be joined: a clear error.
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "network", "path": "/proc/1/ns/net"}));
    std::fs::write(&path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let o = output_of(
        as_nobody(&mut runsc())
            .arg(format!("--root={}", state.display()))
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg("rl2"),
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("needs root"), "{err}");
    assert!(!state.join("rl2").exists(), "state left behind");
    let _ = std::fs::remove_dir_all(&dir);
}
