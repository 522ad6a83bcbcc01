//! The sentry's confinement, seen from the host while a sandbox runs
//! (`runsc do` and an OCI container): its own user, mount, PID, network, IPC,
//! UTS and cgroup namespaces (PID 1 in its PID namespace), host uid/gid
//! nobody, an empty root, no capability in any set, no_new_privs, and no
//! descriptor but those it was handed or made itself (no host directory above
//! all).
//!
//! Needs: busybox-static (/bin/busybox), util-linux (`unshare`).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tests::{runsc_bin, target_dir};

const NAMESPACES: &[&str] = &["user", "mnt", "pid", "net", "ipc", "uts", "cgroup"];

fn ns(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|e| format!("unreadable: {e}"))
}

fn status_field(pid: i32, name: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

fn ppid(pid: &str) -> Option<i32> {
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

/// The `runsc boot` child of `parent`, once it runs `exe` (its descriptors
/// show the executable).
fn wait_for_sentry(parent: i32, exe: &Path) -> i32 {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let sentry = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .find(|&p| {
                ppid(&p.to_string()) == Some(parent) && cmdline(p).iter().any(|a| a == "boot")
            });
        if let Some(p) = sentry {
            let running = std::fs::read_dir(format!("/proc/{p}/fd"))
                .map(|d| {
                    d.flatten()
                        .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == exe))
                })
                .unwrap_or(false);
            if running {
                // Let it settle in the workload.
                std::thread::sleep(Duration::from_millis(300));
                return p;
            }
        }
        assert!(
            Instant::now() < end,
            "no sandbox running {exe:?} under {parent}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every way `pid` is not confined; `files` are the host files it may hold
/// (its stdio, the workload's executable).
fn confinement_failures(pid: i32, files: &[PathBuf], same_net: Option<&str>) -> Vec<String> {
    let mut f = Vec::new();
    let p = pid.to_string();
    for kind in NAMESPACES {
        let (theirs, ours) = (ns(&p, kind), ns("self", kind));
        match (*kind, same_net) {
            ("net", Some(want)) => {
                if theirs != want {
                    f.push(format!("net namespace {theirs}, want the spec's {want}"));
                }
            }
            _ => {
                if theirs == ours || theirs.starts_with("unreadable") {
                    f.push(format!("{kind} namespace {theirs} (ours {ours})"));
                }
            }
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
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        match status_field(pid, cap) {
            Some(v) if v.chars().all(|c| c == '0') => {}
            v => f.push(format!("{cap} {v:?}")),
        }
    }
    // The unprivileged host user and group nobody, no supplementary group.
    for id in ["Uid", "Gid"] {
        match status_field(pid, id) {
            Some(v) if v.split_whitespace().all(|x| x == "65534") => {}
            v => f.push(format!("{id} {v:?}, want 65534 (nobody)")),
        }
    }
    if status_field(pid, "Groups").is_some_and(|g| !g.is_empty()) {
        f.push(format!("Groups {:?}", status_field(pid, "Groups")));
    }
    if status_field(pid, "NoNewPrivs").as_deref() != Some("1") {
        f.push(format!("NoNewPrivs {:?}", status_field(pid, "NoNewPrivs")));
    }
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        let t = target.to_string_lossy();
        if std::fs::metadata(e.path()).is_ok_and(|m| m.is_dir()) {
            f.push(format!("fd {:?}: a directory, {t}", e.file_name()));
            continue;
        }
        let anon = ["pipe:", "socket:", "anon_inode:", "/memfd:"]
            .iter()
            .any(|p| t.starts_with(p));
        if !anon && t != "/dev/null" && !files.contains(&target) {
            f.push(format!("fd {:?}: {t}", e.file_name()));
        }
    }
    f
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

#[test]
fn do_sentry_is_confined() {
    let bb = busybox();
    let child = Command::new(runsc_bin())
        .args(["do", "--"])
        .arg(&bb)
        .args(["sleep", "30"])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let child = KillOnDrop(child);
    let sentry = wait_for_sentry(child.0.id() as i32, &bb);
    let mut f = confinement_failures(sentry, &[bb], None);
    // Its stub processes, forked after it confined itself, are as confined.
    let stubs: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| ppid(&p.to_string()) == Some(sentry))
        .collect();
    if stubs.is_empty() {
        f.push("no stub process".into());
    }
    for stub in stubs {
        for kind in NAMESPACES {
            if ns(&stub.to_string(), kind) != ns(&sentry.to_string(), kind) {
                f.push(format!("stub {stub}: another {kind} namespace"));
            }
        }
        for (field, want) in [
            ("CapEff", "0000000000000000"),
            ("CapBnd", "0000000000000000"),
            ("NoNewPrivs", "1"),
            // The stub's own filter (DESIGN 4.3): only the stub page's
            // syscall instruction is allowed through.
            ("Seccomp", "2"),
            ("Uid", "65534\t65534\t65534\t65534"),
        ] {
            if status_field(stub, field).as_deref() != Some(want) {
                f.push(format!(
                    "stub {stub}: {field} {:?}",
                    status_field(stub, field)
                ));
            }
        }
    }
    assert!(
        f.is_empty(),
        "sentry {sentry} not confined:\n{}",
        f.join("\n")
    );
}

/// SIGTERM from the host still ends the sentry (PID 1 of its namespace
/// ignores signals it has no handler for), and `runsc do` reports 128+15.
#[test]
fn do_sentry_ends_on_host_sigterm() {
    let bb = busybox();
    let child = Command::new(runsc_bin())
        .args(["do", "--"])
        .arg(&bb)
        .args(["sleep", "30"])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let sentry = wait_for_sentry(child.0.id() as i32, &bb);
    // SAFETY: signals the sandbox we started.
    unsafe { libc::kill(sentry, libc::SIGTERM) };
    let end = Instant::now() + Duration::from_secs(10);
    let st = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < end, "the sandbox ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(st.code(), Some(143), "{st}");
}

/// Creates and starts an OCI container running `sleep` and checks its sentry
/// (the pid in state.json); `netns`: a network namespace path for the spec
/// and the namespace link it reads as.
fn oci_check(name: &str, netns: Option<(&str, &str)>) {
    let bb = busybox();
    let dir = target_dir()
        .join("confine-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bin = dir.join("b/rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(&bb, bin.join("busybox")).unwrap();
    let ns = match netns {
        Some((p, _)) => format!(r#","linux":{{"namespaces":[{{"type":"network","path":"{p}"}}]}}"#),
        None => String::new(),
    };
    std::fs::write(
        dir.join("b/config.json"),
        format!(
            r#"{{"ociVersion":"1.0.2",
  "process":{{"args":["/bin/busybox","sleep","30"],"env":["PATH=/bin"],"cwd":"/",
              "user":{{"uid":0,"gid":0}}}},
  "root":{{"path":"rootfs","readonly":true}}{ns}}}"#
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let runsc = |args: &[&str]| {
        let s = Command::new(runsc_bin())
            .arg(format!("--root={}", dir.join("state").display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(dir.join("err")).unwrap())
            .status()
            .unwrap();
        let err = std::fs::read_to_string(dir.join("err")).unwrap_or_default();
        assert!(s.success(), "runsc {args:?}: {s}: {err}");
    };
    let pidfile = dir.join("pid");
    runsc(&[
        "create",
        "--bundle",
        dir.join("b").to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        "c",
    ]);
    let result = std::panic::catch_unwind(|| {
        runsc(&["start", "c"]);
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The gofer serves the rootfs pivoted into it, so the executable's
        // fd reads as its path inside the container.
        let exe = PathBuf::from("/bin/busybox");
        let end = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == exe))
        {
            assert!(Instant::now() < end, "the container never ran busybox");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        let f = confinement_failures(
            pid,
            // Its stdio, the workload, and the exit-status file it
            // opened before confining itself.
            &[exe, out.clone(), dir.join("err"), dir.join("state/c/exit")],
            netns.map(|(_, link)| link),
        );
        assert!(f.is_empty(), "sentry {pid} not confined:\n{}", f.join("\n"));
    });
    let _ = Command::new(runsc_bin())
        .arg(format!("--root={}", dir.join("state").display()))
        .args(["delete", "--force", "c"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn oci_sentry_is_confined() {
    oci_check("oci", None);
}

/// With a network namespace path in the spec the sentry joins it (and still
/// gets new namespaces of every other kind).
#[test]
fn oci_sentry_joins_the_specs_network_namespace() {
    let holder = Command::new("unshare")
        .args(["--net", "sleep", "60"])
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("unshare (util-linux)");
    let holder = KillOnDrop(holder);
    let pid = holder.0.id().to_string();
    let end = Instant::now() + Duration::from_secs(10);
    while ns(&pid, "net") == ns("self", "net") {
        assert!(Instant::now() < end, "unshare --net did not take");
        std::thread::sleep(Duration::from_millis(10));
    }
    let path = format!("/proc/{pid}/ns/net");
    oci_check("ocinet", Some((&path, &ns(&pid, "net"))));
}
