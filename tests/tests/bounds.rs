//! Resource bounds (C programs in `tests/bounds/`): the memory limit
//! (`--total-memory`, an OCI spec's `linux.resources.memory.limit`) gives
//! ENOMEM or an in-sandbox OOM kill, never the host's OOM killer; the task
//! limit (`--max-tasks`, `linux.resources.pids.limit`) makes fork and
//! pthread_create fail with EAGAIN; RLIMIT_NOFILE gives EMFILE.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tests::{
    all_platforms, compile_c_file, runsc_bin, target_dir, Cmd, Exit, Link, RunOutput, PLATFORMS,
};

fn program(name: &str) -> PathBuf {
    let src = tests::workspace_root().join(format!("tests/bounds/{name}.c"));
    compile_c_file(&src, &format!("bounds-{name}"), Link::Static)
}

/// Nothing alarming from the sandbox on stderr (no panic, no error line).
fn quiet(out: &RunOutput) {
    for bad in ["panic", "ERROR", "RUST_BACKTRACE"] {
        assert!(!out.stderr.contains(bad), "stderr: {}", out.describe());
    }
}

/// The sandbox's own memory accounting survived: it still runs workloads.
fn sandbox_still_works(platform: &str) {
    let out = Cmd::new(["/bin/true"]).run_sandbox(platform);
    assert_eq!(out.exit, Exit::Code(0), "{}", out.describe());
}

#[test]
fn touching_past_the_memory_limit_is_oom_killed() {
    let hog = program("memhog");
    for platform in all_platforms() {
        let out = Cmd::new([hog.as_os_str()])
            .timeout(Duration::from_secs(30))
            .run_sandbox_with(platform, &["--total-memory=64M"]);
        // Killed by the sandbox's OOM killer (SIGKILL: 137), or malloc failed.
        let enomem = out.exit == Exit::Code(3) && out.stdout.contains("ENOMEM after");
        assert!(
            out.exit == Exit::Code(137) || enomem,
            "want an OOM kill or ENOMEM: {}",
            out.describe()
        );
        quiet(&out);
        sandbox_still_works(platform);
    }
}

#[test]
fn oom_kill_is_logged_and_meminfo_shows_the_limit() {
    let hog = program("memhog");
    let log = target_dir().join(format!("bounds-oom-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let flag = format!("--debug-log={}", log.display());
    let out = Cmd::new([hog.as_os_str()])
        .timeout(Duration::from_secs(30))
        .run_sandbox_with(PLATFORMS[0], &["--total-memory=64M", &flag]);
    assert_eq!(out.exit, Exit::Code(137), "{}", out.describe());
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(
        text.contains("Out of memory: Killed process 1 (bounds-memhog)"),
        "debug log:\n{text}"
    );
    let out = Cmd::new(["/bin/cat", "/proc/meminfo"])
        .run_sandbox_with(PLATFORMS[0], &["--total-memory=64M"]);
    assert_eq!(out.exit, Exit::Code(0), "{}", out.describe());
    let total = out.stdout.lines().next().unwrap_or("");
    assert!(
        total.starts_with("MemTotal:") && total.ends_with(" 65536 kB"),
        "{}",
        out.describe()
    );
}

#[test]
fn commit_limit_refuses_huge_writable_mappings() {
    let hog = program("memhog");
    for platform in all_platforms() {
        let out = Cmd::new([hog.as_os_str(), "reserve".as_ref()])
            .run_sandbox_with(platform, &["--total-memory=64M"]);
        assert_eq!(out.exit, Exit::Code(0), "{}", out.describe());
        assert!(out.stdout.contains("reserve ok"), "{}", out.describe());
        quiet(&out);
    }
}

#[test]
fn fork_bomb_gets_eagain_at_the_task_limit() {
    let bomb = program("forkbomb");
    for platform in all_platforms() {
        let out = Cmd::new([bomb.as_os_str()])
            .timeout(Duration::from_secs(60))
            .run_sandbox_with(platform, &["--max-tasks=100"]);
        assert_eq!(out.exit, Exit::Code(0), "{}", out.describe());
        // init itself is one of the 100.
        assert!(
            out.stdout
                .contains("forked 99 errno EAGAIN reaped 99 killed 99"),
            "{}",
            out.describe()
        );
        quiet(&out);
        let out = Cmd::new([bomb.as_os_str(), "threads".as_ref()])
            .timeout(Duration::from_secs(60))
            .run_sandbox_with(platform, &["--max-tasks=50"]);
        assert_eq!(out.exit, Exit::Code(0), "{}", out.describe());
        assert!(
            out.stdout.contains("threads 49 errno EAGAIN"),
            "{}",
            out.describe()
        );
    }
}

#[test]
fn rlimit_nofile_is_emfile() {
    let p = program("nofile");
    for platform in all_platforms() {
        let out = Cmd::new([p.as_os_str()]).run_sandbox(platform);
        assert_eq!(out.exit, Exit::Code(0), "{}", out.describe());
        assert!(out.stdout.contains("nofile ok"), "{}", out.describe());
    }
}

/// `runsc run` of a bundle whose rootfs holds `prog`, with `resources` as
/// `linux.resources`; returns (exit code, stdout, stderr + the debug log).
fn oci_run(name: &str, prog: &Path, args: &[&str], resources: &str) -> (i32, String, String) {
    let dir = target_dir()
        .join("bounds-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rootfs = dir.join("b/rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    std::fs::copy(prog, rootfs.join("prog")).unwrap();
    let argv: Vec<String> = std::iter::once("/prog".to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .collect();
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"args": argv, "env": ["PATH=/"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "root": {"path": "rootfs", "readonly": true},
        "linux": {"resources": serde_json::from_str::<serde_json::Value>(resources).unwrap()},
    });
    std::fs::write(dir.join("b/config.json"), config.to_string()).unwrap();
    let out = Command::new(runsc_bin())
        .arg(format!("--root={}", dir.join("state").display()))
        .arg(format!("--debug-log={}/", dir.join("log").display()))
        .args(["run", "--bundle"])
        .arg(dir.join("b"))
        .arg(format!("{name}-{}", std::process::id()))
        .stdin(Stdio::null())
        .output()
        .expect("runsc run");
    let left: Vec<_> = std::fs::read_dir(dir.join("state"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "state left behind: {left:?}");
    let mut err = String::from_utf8_lossy(&out.stderr).into_owned();
    for e in std::fs::read_dir(dir.join("log"))
        .into_iter()
        .flatten()
        .flatten()
    {
        err += &std::fs::read_to_string(e.path()).unwrap_or_default();
    }
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        err,
    )
}

#[test]
fn oci_memory_limit() {
    let hog = program("memhog");
    let (code, stdout, stderr) = oci_run("mem", &hog, &[], r#"{"memory": {"limit": 67108864}}"#);
    // The sandbox's OOM killer acts (with a host cgroup, before the host's
    // would: the workload's limit keeps a reserve for the sentry).
    assert!(
        (code == 137 && stderr.contains("Out of memory: Killed process 1 (prog)"))
            || (code == 3 && stdout.contains("ENOMEM after")),
        "exit {code}\n{stdout}\n{stderr}"
    );
    assert!(!stderr.contains("panic"), "{stderr}");
}

#[test]
fn oci_pids_limit() {
    let bomb = program("forkbomb");
    let (code, stdout, stderr) = oci_run("pids", &bomb, &[], r#"{"pids": {"limit": 40}}"#);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // At most 39 besides init; fewer when the host's pids cgroup (which
    // counts the sentry's threads and stubs too) stops it first.
    let n: u32 = stdout
        .strip_prefix("forked ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX);
    assert!(
        n > 0 && n <= 39 && stdout.contains(" errno EAGAIN"),
        "{stdout}\n{stderr}"
    );
}

#[test]
fn filling_tmpfs_near_the_memory_limit_is_enospc() {
    for platform in all_platforms() {
        let out = Cmd::new([
            "/bin/sh",
            "-c",
            "dd if=/dev/zero of=/tmp/big bs=1M count=200 2>/dev/null; echo \"dd $?\"; \
             rm /tmp/big; echo survived",
        ])
        .timeout(Duration::from_secs(30))
        .run_sandbox_with(platform, &["--total-memory=64M"]);
        assert_eq!(out.exit, Exit::Code(0), "{}", out.describe());
        assert_eq!(out.stdout, "dd 1\nsurvived\n", "{}", out.describe());
        quiet(&out);
    }
}

#[test]
fn oci_update_changes_the_sandbox_memory_limit() {
    let bb = Path::new("/bin/busybox");
    assert!(
        bb.exists(),
        "/bin/busybox is missing: install busybox-static"
    );
    let dir = target_dir()
        .join("bounds-tests")
        .join(format!("update-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bin = dir.join("b/rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(bb, bin.join("busybox")).unwrap();
    for l in ["sh", "sleep", "grep"] {
        std::os::unix::fs::symlink("busybox", bin.join(l)).unwrap();
    }
    let cg = format!("/runsc-bounds-test-{}", std::process::id());
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"args": ["sleep", "60"], "env": ["PATH=/bin"], "cwd": "/",
                    "user": {"uid": 0, "gid": 0}},
        "root": {"path": "rootfs", "readonly": true},
        "linux": {"cgroupsPath": cg, "resources": {"memory": {"limit": 1u64 << 30}}},
    });
    std::fs::write(dir.join("b/config.json"), config.to_string()).unwrap();
    let state = dir.join("state");
    let runsc = |args: &[&str]| {
        let out = dir.join("out");
        let st = Command::new(runsc_bin())
            .arg(format!("--root={}", state.display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(dir.join("err")).unwrap())
            .status()
            .unwrap();
        let text = std::fs::read_to_string(&out).unwrap_or_default()
            + &std::fs::read_to_string(dir.join("err")).unwrap_or_default();
        (st.code().unwrap_or(-1), text)
    };
    let b = dir.join("b");
    let (code, o) = runsc(&["create", "--bundle", b.to_str().unwrap(), "u1"]);
    assert_eq!(code, 0, "create: {o}");
    let meminfo_kb = || {
        let (code, o) = runsc(&["exec", "u1", "grep", "MemTotal", "/proc/meminfo"]);
        assert_eq!(code, 0, "exec: {o}");
        o.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()
    };
    runsc(&["start", "u1"]);
    let before = meminfo_kb();
    let (code, o) = runsc(&["update", "--memory", "256m", "u1"]);
    if code != 0 && o.contains("no cgroup") {
        eprintln!("SKIPPED oci_update_changes_the_sandbox_memory_limit: no host cgroup here");
    } else {
        assert_eq!(code, 0, "update: {o}");
        let after = meminfo_kb();
        // Below the cgroup's limit (a reserve for the sentry's own memory).
        assert!((128 << 10..256 << 10).contains(&after), "{after} kB");
        assert!((512 << 10..=1 << 20).contains(&before), "{before} kB");
    }
    runsc(&["delete", "--force", "u1"]);
    let _ = std::fs::remove_dir_all(&dir);
}
