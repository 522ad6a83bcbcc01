//! The sentry's seccomp allow-list (runsc-cli/src/seccomp_sentry.rs).
//!
//! `runsc seccomp-probe CALL` (hidden) installs the very filter `runsc boot`
//! installs, then makes one host call: forbidden calls must kill it with
//! SIGSYS, allowed ones must work. And a running sentry must be under it, on
//! every thread (vCPU threads included), on every platform of
//! `tests::all_platforms`.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tests::{all_platforms, runsc_bin};

fn probe(call: &str) -> std::process::Output {
    Command::new(runsc_bin())
        .args(["seccomp-probe", call])
        .stdin(Stdio::null())
        .output()
        .expect("run runsc seccomp-probe")
}

#[test]
fn forbidden_host_calls_kill_the_sentry() {
    let mut bad = Vec::new();
    for call in [
        "open",
        "openat",
        "openat2",
        "creat",
        "execve",
        "execveat",
        "socket-inet",
        "socket-inet-host",
        "socket-netlink",
        "connect-unix",
        "connect-bad-fd",
        "setsockopt-nodelay",
        "ptrace-attach",
        "ptrace-poke",
        "mmap-exec",
        "mprotect-exec",
        "fork",
        "clone-process",
        "clone-newns",
        "ioctl-tiocsti",
        "prctl-dumpable",
        "kill-term",
        "process_vm_readv",
        "stat-path",
        "unshare",
        "mount",
        "seccomp",
    ] {
        let out = probe(call);
        if out.status.signal() != Some(libc::SIGSYS) {
            bad.push(format!(
                "{call}: {:?} (stdout {:?}, stderr {:?})",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(bad.is_empty(), "not killed by SIGSYS:\n{}", bad.join("\n"));
}

#[test]
fn allowed_host_calls_work_under_the_filter() {
    let mut bad = Vec::new();
    for (call, want) in [
        ("getpid", None),
        // write 7 into a pipe, read it back: 1 byte read + 7 * 100.
        ("pipe", Some("701")),
        ("mmap-rw", Some("0")),
        // A sentry thread (clone with thread flags, after clone3's ENOSYS).
        ("thread", Some("5")),
        ("socket-unix", None),
        // clone3 is answered ENOSYS (its flags cannot be checked), not killed.
        ("clone3", Some("-38")),
    ] {
        let out = probe(call);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let got = stdout
            .trim()
            .strip_prefix(&format!("{call}: "))
            .unwrap_or("");
        let ok = out.status.success()
            && match want {
                Some(w) => got == w,
                None => got.parse::<i64>().is_ok_and(|v| v >= 0),
            };
        if !ok {
            bad.push(format!(
                "{call}: {:?}, stdout {stdout:?}, stderr {:?}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "failed under the filter:\n{}",
        bad.join("\n")
    );
}

/// `--network=host` widens the filter by hostinet's calls only: the socket
/// families, types and flags it makes, allow-listed options; no AF_UNIX
/// socket (connect could reach the host's abstract sockets).
#[test]
fn host_network_filter() {
    let run = |call: &str| {
        Command::new(runsc_bin())
            .args(["seccomp-probe", "--network=host", call])
            .stdin(Stdio::null())
            .output()
            .expect("run runsc seccomp-probe")
    };
    let mut bad = Vec::new();
    for call in [
        "socket-inet",
        "socket-unix",
        "socket-netlink",
        "setsockopt-bindtodevice",
        "open",
        "execve",
    ] {
        let out = run(call);
        if out.status.signal() != Some(libc::SIGSYS) {
            bad.push(format!("{call}: not killed: {:?}", out.status));
        }
    }
    for (call, ok) in [
        ("socket-inet-host", None),
        ("connect-bad-fd", Some("-9")),
        ("setsockopt-nodelay", Some("-9")),
        ("getpid", None),
    ] {
        let out = run(call);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let got = stdout
            .trim()
            .strip_prefix(&format!("{call}: "))
            .unwrap_or("");
        let good = out.status.success()
            && match ok {
                Some(w) => got == w,
                None => got.parse::<i64>().is_ok_and(|v| v >= 0),
            };
        if !good {
            bad.push(format!("{call}: {:?}, stdout {stdout:?}", out.status));
        }
    }
    assert!(
        bad.is_empty(),
        "host-mode filter:
{}",
        bad.join(
            "
"
        )
    );
}

/// The children of `pid` (from /proc/*/stat).
fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let ppid = rest.split(' ').nth(1).and_then(|s| s.parse::<i32>().ok());
        if ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

/// The `runsc boot` process among the descendants of `pid`.
fn find_sentry(pid: i32) -> Option<i32> {
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for c in children(p) {
            let cmdline = std::fs::read(format!("/proc/{c}/cmdline")).unwrap_or_default();
            if cmdline.split(|&b| b == 0).any(|a| a == b"boot") {
                return Some(c);
            }
            todo.push(c);
        }
    }
    None
}

fn status_field(path: &str, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

#[test]
fn running_sentry_is_confined_on_every_thread() {
    for platform in all_platforms() {
        running_sentry_is_confined_on(platform);
    }
}

fn running_sentry_is_confined_on(platform: &str) {
    let mut child = Command::new(runsc_bin())
        .arg(format!("--platform={platform}"))
        .args(["do", "/bin/sh", "-c", "echo started; sleep 3"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run runsc do");
    // The filter is in before the workload's first instruction.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "started");
    let deadline = Instant::now() + Duration::from_secs(10);
    let sentry = loop {
        if let Some(s) = find_sentry(child.id() as i32) {
            break s;
        }
        assert!(Instant::now() < deadline, "no runsc boot process found");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut threads = 0;
    let mut bad = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{sentry}/task"))
        .unwrap()
        .flatten()
    {
        let tid = t.file_name().to_string_lossy().into_owned();
        let path = format!("/proc/{sentry}/task/{tid}/status");
        let Some(mode) = status_field(&path, "Seccomp") else {
            continue; // gone meanwhile
        };
        threads += 1;
        let nnp = status_field(&path, "NoNewPrivs").unwrap_or_default();
        // 2: SECCOMP_MODE_FILTER.
        if mode != "2" || nnp != "1" {
            bad.push(format!("thread {tid}: Seccomp {mode}, NoNewPrivs {nnp}"));
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{platform}: runsc do: {status:?}");
    assert!(threads > 1, "{platform}: the sentry has {threads} threads");
    assert!(
        bad.is_empty(),
        "{platform}: sentry threads not confined:\n{}",
        bad.join("\n")
    );
}
