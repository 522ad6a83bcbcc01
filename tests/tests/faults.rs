//! Faults from the host: a gofer killed with SIGKILL stops the sandbox
//! cleanly (one line on stderr, non-zero status; an OCI container becomes
//! stopped and delete cleans up); a ptrace stub killed with SIGKILL kills its
//! process with SIGKILL semantics while the rest of the sandbox goes on.
//!
//! The gofer and `runsc do` cases run on every platform of
//! `tests::all_platforms` (ptrace, and kvm where /dev/kvm works); the stub
//! case is about the ptrace platform's stub processes and runs on ptrace only.
//!
//! Needs: busybox-static (/bin/busybox) for the OCI case.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tests::{all_platforms, runsc_bin, target_dir};

/// A scratch directory under target/ for this test.
fn scratch(name: &str) -> PathBuf {
    let d = target_dir()
        .join("faults-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Host PIDs of the children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if stat_field(p, 4) == Some(pid as u64) {
            v.push(p);
        }
    }
    v
}

/// Field `n` (1-based, as proc(5) numbers them) of /proc/PID/stat.
fn stat_field(pid: u32, n: usize) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    rest.split(' ').nth(n - 3)?.parse().ok()
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .unwrap_or_default()
}

fn sigkill(pid: u32) {
    // SAFETY: plain syscall on a process this test started (a descendant).
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
}

fn wait_timeout(c: &mut Child, t: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + t;
    loop {
        if let Some(s) = c.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() > end {
            let _ = c.kill();
            let _ = c.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `runsc --platform=PLATFORM do sh -c SCRIPT` with stdout and stderr to
/// files in `dir`.
fn spawn_do(platform: &str, dir: &Path, script: &str) -> Child {
    Command::new(runsc_bin())
        .arg(format!("--platform={platform}"))
        .args(["do", "/bin/sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("out")).unwrap())
        .stderr(std::fs::File::create(dir.join("err")).unwrap())
        .spawn()
        .expect("spawning runsc do")
}

fn wait_for_output(dir: &Path, want: &str) {
    let end = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(dir.join("out"))
        .unwrap_or_default()
        .contains(want)
    {
        assert!(Instant::now() < end, "no {want:?} from the workload");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn gofer_death_stops_runsc_do() {
    for platform in all_platforms() {
        gofer_death_stops_runsc_do_on(platform);
    }
}

fn gofer_death_stops_runsc_do_on(platform: &str) {
    let dir = scratch(&format!("gofer-do-{platform}"));
    let mut c = spawn_do(
        platform,
        &dir,
        "echo ready; while :; do read x < /etc/hostname || echo 'read failed'; done",
    );
    wait_for_output(&dir, "ready");
    let gofer = children(c.id())
        .into_iter()
        .find(|p| cmdline(*p).contains(" gofer "))
        .expect("the root gofer");
    sigkill(gofer);
    let start = Instant::now();
    let st = wait_timeout(&mut c, Duration::from_secs(10)).expect("sandbox stops");
    let err = std::fs::read_to_string(dir.join("err")).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert_ne!(st.code(), Some(0), "status {st:?}; stderr {err}");
    assert_eq!(
        err.trim_end(),
        "runsc: the gofer for / died; stopping the sandbox",
        "one clear line on stderr"
    );
    assert!(children(c.id()).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `runsc do` killed (SIGKILL, no chance to clean up): its sentry dies with
/// it (PR_SET_PDEATHSIG), then the gofer (its socket closes): nothing of the
/// sandbox is left running.
#[test]
fn runsc_do_death_takes_the_sandbox_along() {
    for platform in all_platforms() {
        runsc_do_death_takes_the_sandbox_along_on(platform);
    }
}

fn runsc_do_death_takes_the_sandbox_along_on(platform: &str) {
    let dir = scratch(&format!("do-death-{platform}"));
    let mut c = spawn_do(platform, &dir, "echo ready; while :; do sleep 1; done");
    wait_for_output(&dir, "ready");
    let kids = children(c.id());
    assert!(kids.len() >= 2, "gofer and sentry: {kids:?}");
    sigkill(c.id());
    let _ = c.wait();
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let alive: Vec<u32> = kids
            .iter()
            .copied()
            .filter(|p| {
                std::path::Path::new(&format!("/proc/{p}")).exists() && stat_field(*p, 3).is_some()
            })
            .filter(|p| {
                // A zombie is gone for our purpose (reaped by init later).
                std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .map(|s| !s.contains(") Z "))
                    .unwrap_or(false)
            })
            .collect();
        if alive.is_empty() {
            break;
        }
        assert!(Instant::now() < end, "left running: {alive:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// ptrace only: the stubs are the ptrace platform's host processes (on kvm
/// the workload's address spaces live in the sentry's VM, with no host
/// process of their own to kill).
#[test]
fn stub_death_kills_only_its_process() {
    let dir = scratch("stub");
    let mut c = spawn_do(
        "ptrace",
        &dir,
        "/bin/sleep 60 & echo started; wait $!; echo \"status $?\"; echo after",
    );
    wait_for_output(&dir, "started");
    // runsc do -> runsc boot (the sentry) -> master stub -> one stub per
    // address space; the newest is sleep's (after its exec).
    let boot = children(c.id())
        .into_iter()
        .find(|p| cmdline(*p).contains(" boot "))
        .expect("the sentry");
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let masters = children(boot);
        let mut stubs: Vec<u32> = masters.iter().flat_map(|m| children(*m)).collect();
        // Two address spaces: the shell's and sleep's (after its exec).
        if stubs.len() == 2 {
            stubs.sort_by_key(|p| (stat_field(*p, 22), *p));
            let victim = *stubs.last().unwrap();
            // Let sleep's exec finish (its stub is made before the exec
            // completes); a stub that went away meanwhile was the fork's,
            // replaced by the exec's: look again.
            std::thread::sleep(Duration::from_millis(300));
            // SAFETY: plain syscall on a descendant of this test.
            if unsafe { libc::kill(victim as i32, libc::SIGKILL) } == 0 {
                break;
            }
        }
        assert!(Instant::now() < end, "stubs: {stubs:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = wait_timeout(&mut c, Duration::from_secs(10)).expect("the shell goes on");
    let out = std::fs::read_to_string(dir.join("out")).unwrap();
    assert_eq!(st.code(), Some(0), "stdout {out}");
    assert!(
        out.contains("status 137\nafter"),
        "the shell sees SIGKILL: {out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

const BUSYBOX_LINKS: &[&str] = &["sh", "cat", "sleep", "echo"];

/// `runsc --root=ROOT [--platform=P] ARGS`; output to a file (a created
/// sandbox keeps its stdout and stderr open, so a pipe would never reach end
/// of file).
fn runsc_oci(root: &Path, args: &[&str]) -> (i32, String) {
    runsc_oci_on(None, root, args)
}

fn runsc_oci_on(platform: Option<&str>, root: &Path, args: &[&str]) -> (i32, String) {
    let out = root.with_extension(format!("out.{}", args[0]));
    let st = Command::new(runsc_bin())
        .arg(format!("--root={}", root.display()))
        .args(platform.map(|p| format!("--platform={p}")))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(out.with_extension("err")).unwrap())
        .status()
        .unwrap();
    let text = std::fs::read_to_string(&out).unwrap_or_default()
        + &std::fs::read_to_string(out.with_extension("err")).unwrap_or_default();
    (st.code().unwrap_or(-1), text)
}

fn status(root: &Path, id: &str) -> String {
    let (_, o) = runsc_oci(root, &["state", id]);
    let v: serde_json::Value = serde_json::from_str(&o).unwrap_or_default();
    v["status"].as_str().unwrap_or("").to_string()
}

#[test]
fn gofer_death_stops_an_oci_container() {
    for platform in all_platforms() {
        gofer_death_stops_an_oci_container_on(platform);
    }
}

fn gofer_death_stops_an_oci_container_on(platform: &str) {
    let bb = Path::new("/bin/busybox");
    assert!(
        bb.exists(),
        "/bin/busybox is missing: install busybox-static"
    );
    let dir = scratch(&format!("gofer-oci-{platform}"));
    let bin = dir.join("b/rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(bb, bin.join("busybox")).unwrap();
    for l in BUSYBOX_LINKS {
        std::os::unix::fs::symlink("busybox", bin.join(l)).unwrap();
    }
    std::fs::write(dir.join("b/rootfs/data"), "x\n").unwrap();
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"args": ["sh", "-c", "while :; do cat /data >/dev/null; sleep 0.05; done"],
                    "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "root": {"path": "rootfs", "readonly": false},
    });
    std::fs::write(dir.join("b/config.json"), config.to_string()).unwrap();
    let root = dir.join("state");
    let id = format!("gofer-{}", std::process::id());
    let b = dir.join("b");
    let (code, o) = runsc_oci_on(
        Some(platform),
        &root,
        &["create", "--bundle", b.to_str().unwrap(), &id],
    );
    assert_eq!(code, 0, "create: {o}");
    let (code, o) = runsc_oci(&root, &["start", &id]);
    assert_eq!(code, 0, "start: {o}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status(&root, &id), "running");
    let rootfs = dir.join("b/rootfs").to_string_lossy().into_owned();
    let gofer = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .find(|p| {
            let c = cmdline(*p);
            c.contains(" gofer ") && c.contains(&rootfs)
        })
        .expect("the container's gofer");
    sigkill(gofer);
    let end = Instant::now() + Duration::from_secs(10);
    while status(&root, &id) != "stopped" {
        assert!(Instant::now() < end, "state: {}", status(&root, &id));
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, o) = runsc_oci(&root, &["delete", &id]);
    assert_eq!(code, 0, "delete: {o}");
    let left: Vec<_> = std::fs::read_dir(&root)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "state left behind: {left:?}");
    let procs: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|p| cmdline(*p).contains(dir.to_str().unwrap()))
        .collect();
    assert!(procs.is_empty(), "processes left: {procs:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
