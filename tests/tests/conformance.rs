//! Conformance: each C program in `tests/conformance/` is compiled twice
//! (static and dynamic, `gcc -O1 -Wall`), run natively, where it must pass
//! (summary line `N passed, 0 failed`, exit 0), and then under
//! `runsc --platform=P do` for every platform in `tests::all_platforms` (ptrace,
//! and kvm where /dev/kvm works; skipped by name otherwise), where its
//! stdout (the SKIP lines and the summary line) and exit status must be
//! identical to the native run.
//!
//! Run one program by hand:
//!   target/conformance/file_read.static -v            natively
//!   target/release/runsc do target/conformance/file_read.static -v
//! A name filter argument runs only matching tests: `... mm.static mremap`.
//!
//! Issue-3 programs (processes, threads, signals, pipes/poll, futexes,
//! credentials/timers; listed in `ISSUE3_PROGRAMS`) always run natively and
//! must pass there. Under the sandbox they are skipped (with a note on
//! stderr) until enabled, by either:
//!   * `RUNSC_ISSUE3=1` in the environment: enables all of them, or
//!   * a line with the program's name in `tests/conformance/ENABLED`
//!     (one name per line, `#` starts a comment; the file is optional):
//!     enables that one for good. (`issue3_workloads` there enables the
//!     issue-3 workloads in workloads.rs.)
//!
//! The lead adds names to ENABLED as the features land; once every issue-3
//! program is listed there, fold ISSUE3_PROGRAMS into PROGRAMS and delete
//! the gate.

use tests::{all_platforms, compile_c, expect_native_ok, Cmd, Failures, Link, RunOutput};

/// Program names (conformance/<name>.c). Each has its own #[test] below.
pub const PROGRAMS: &[&str] = &[
    "file_read",
    "mm",
    "misc",
    "anonfd",
    "fsmut",
    "perm",
    "capfs",
    "mount",
    "xattr",
    "inotify",
    "locks",
    "shm",
    "splice",
    "pty",
    "pidns_init",
    "execcreds",
    "socketpair",
    "netlink",
    "inet",
    "unixsock",
    "procnet",
];

/// Programs that change the mount table run natively in a private mount
/// namespace (util-linux's unshare), so the host's mounts are never touched.
/// Programs about the init of a PID namespace run natively as PID 1 of a new
/// one (as they are under `runsc do`).
const NATIVE_PREFIX: &[(&str, &[&str])] = &[
    (
        "mount",
        &["/usr/bin/unshare", "--mount", "--propagation", "private"],
    ),
    (
        "execcreds",
        &["/usr/bin/unshare", "--mount", "--propagation", "private"],
    ),
    // A new network namespace: only lo (the program brings it up).
    ("netlink", &["/usr/bin/unshare", "--net"]),
    ("procnet", &["/usr/bin/unshare", "--net"]),
    (
        "pidns_init",
        &["/usr/bin/unshare", "--pid", "--fork", "--mount-proc"],
    ),
];

/// Issue-3 programs: native always, sandbox only when enabled (see the
/// module comment and `sandbox_enabled`).
pub const ISSUE3_PROGRAMS: &[&str] = &[
    "process",
    "signals",
    "threads",
    "pipes_poll",
    "futex",
    "creds_time",
];

/// Whether `name` runs under the sandbox: always for PROGRAMS; for
/// ISSUE3_PROGRAMS only with `RUNSC_ISSUE3=1` or a line `name` in
/// `tests/conformance/ENABLED`.
fn sandbox_enabled(name: &str) -> bool {
    if !ISSUE3_PROGRAMS.contains(&name) {
        return true;
    }
    tests::issue3_enabled(name)
}

fn is_summary(line: &str) -> Option<(u32, u32)> {
    // "N passed, N failed"
    let (p, rest) = line.trim().split_once(" passed, ")?;
    let f = rest.strip_suffix(" failed")?;
    Some((p.parse().ok()?, f.parse().ok()?))
}

fn check_native(name: &str, link: Link, out: &RunOutput, f: &mut Failures) -> bool {
    let label = format!("{name} ({}) natively", link.name());
    match out.last_line().and_then(is_summary) {
        Some((p, 0)) if p > 0 => expect_native_ok(out, 0, f),
        Some(_) => {
            f.add(format!(
                "{label}: tests failed natively. Native must pass: fix the test (it \
                 must describe Linux) or the host setup.\n{}",
                out.describe()
            ));
            false
        }
        None => {
            f.add(format!(
                "{label}: no summary line `N passed, N failed` at the end of stdout\n{}",
                out.describe()
            ));
            false
        }
    }
}

fn compare(
    name: &str,
    link: Link,
    platform: &str,
    native: &RunOutput,
    sb: &RunOutput,
    f: &mut Failures,
) {
    let label = format!("{name} ({}) under runsc --platform={platform}", link.name());
    let native_sum = native.last_line().unwrap_or("");
    let sb_sum = sb.last_line().unwrap_or("<no output>");
    if native_sum != sb_sum || native.exit != sb.exit || native.stdout != sb.stdout {
        let why = if native_sum != sb_sum {
            format!("summary `{sb_sum}` != native `{native_sum}`")
        } else if native.exit != sb.exit {
            format!("{} != native {}", sb.exit, native.exit)
        } else {
            "stdout differs (SKIP lines?)".to_string()
        };
        f.add(format!(
            "{label}: {why}\n--- sandbox ---\n{}--- native ---\n{}",
            sb.describe(),
            native.describe()
        ));
    }
}

fn run_program(name: &str) {
    let mut f = Failures::new();
    let mut natives = Vec::new();
    for link in Link::ALL {
        let bin = compile_c(name, link);
        let cmd = Cmd::new([bin.as_os_str()]);
        let prefix = NATIVE_PREFIX
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(&[][..], |(_, p)| *p);
        let native_cmd = Cmd::new(
            prefix
                .iter()
                .map(std::ffi::OsStr::new)
                .chain([bin.as_os_str()]),
        );
        let native = native_cmd.run_native();
        if check_native(name, link, &native, &mut f) {
            natives.push((link, cmd, native));
        }
    }
    if !f.is_empty() {
        f.check(&format!("conformance/{name}.c (native)"));
        return;
    }
    if !sandbox_enabled(name) {
        eprintln!(
            "conformance/{name}.c: native run passed; sandbox run SKIPPED (issue-3 \
             program not enabled: set RUNSC_ISSUE3=1 or list `{name}` in \
             tests/conformance/ENABLED)"
        );
        return;
    }
    // Native passes; now the sandbox. runsc_bin() fails loudly if it is missing.
    for (link, cmd, native) in &natives {
        for platform in all_platforms() {
            let sb = cmd.run_sandbox(platform);
            compare(name, *link, platform, native, &sb, &mut f);
        }
    }
    f.check(&format!("conformance/{name}.c"));
}

#[test]
fn conformance_file_read() {
    run_program("file_read");
}

#[test]
fn conformance_mm() {
    run_program("mm");
}

#[test]
fn conformance_shm() {
    run_program("shm");
}

#[test]
fn conformance_misc() {
    run_program("misc");
}

#[test]
fn conformance_anonfd() {
    run_program("anonfd");
}

#[test]
fn conformance_fsmut() {
    run_program("fsmut");
}

#[test]
fn conformance_perm() {
    run_program("perm");
}

#[test]
fn conformance_capfs() {
    run_program("capfs");
}

#[test]
fn conformance_mount() {
    run_program("mount");
}

#[test]
fn conformance_xattr() {
    run_program("xattr");
}

#[test]
fn conformance_inotify() {
    run_program("inotify");
}

#[test]
fn conformance_locks() {
    run_program("locks");
}

#[test]
fn conformance_splice() {
    run_program("splice");
}

#[test]
fn conformance_pty() {
    run_program("pty");
}

#[test]
fn conformance_pidns_init() {
    run_program("pidns_init");
}

#[test]
fn conformance_socketpair() {
    run_program("socketpair");
}

#[test]
fn conformance_inet() {
    run_program("inet");
}

#[test]
fn conformance_unixsock() {
    run_program("unixsock");
}

#[test]
fn conformance_execcreds() {
    run_program("execcreds");
}

#[test]
fn conformance_process() {
    run_program("process");
}

#[test]
fn conformance_signals() {
    run_program("signals");
}

#[test]
fn conformance_threads() {
    run_program("threads");
}

#[test]
fn conformance_pipes_poll() {
    run_program("pipes_poll");
}

#[test]
fn conformance_futex() {
    run_program("futex");
}

#[test]
fn conformance_creds_time() {
    run_program("creds_time");
}

/// ENABLED may only name issue-3 programs (a typo would silently enable
/// nothing).
#[test]
fn enabled_file_names_known_programs() {
    let unknown: Vec<String> = tests::issue3_enabled_list()
        .into_iter()
        .filter(|n| !ISSUE3_PROGRAMS.contains(&n.as_str()) && n != "issue3_workloads")
        .collect();
    assert!(
        unknown.is_empty(),
        "tests/conformance/ENABLED names programs that are not in ISSUE3_PROGRAMS: {unknown:?}"
    );
}

/// Every .c file in conformance/ must be listed in PROGRAMS (and so have a
/// #[test] above): a new program can't be silently left out.
#[test]
fn all_programs_listed() {
    let dir = tests::conformance_src_dir();
    let mut missing = Vec::new();
    for e in std::fs::read_dir(&dir).expect("read conformance dir") {
        let p = e.expect("dir entry").path();
        if p.extension().is_some_and(|x| x == "c") {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            if !PROGRAMS.contains(&stem.as_str()) && !ISSUE3_PROGRAMS.contains(&stem.as_str()) {
                missing.push(stem);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "conformance programs without a #[test] in tests/conformance.rs \
         (add them to PROGRAMS or ISSUE3_PROGRAMS): {missing:?}"
    );
}

/// The harness itself reports failures: a deliberately failing program must
/// print FAIL lines, the summary with failures, and exit 1.
#[test]
fn harness_reports_failures() {
    let dir = tests::build_dir();
    let src = dir.join("harness_selftest.c");
    std::fs::write(
        &src,
        r#"#include "harness.h"
#include <fcntl.h>
#include <unistd.h>
TEST(passes) { EXPECT_EQ(1 + 1, 2); EXPECT_ERRNO(open("/nonexistent-x", O_RDONLY), ENOENT); }
TEST(fails_eq) { EXPECT_EQ(1, 2); }
TEST(fails_errno) { EXPECT_ERRNO(open("/nonexistent-x", O_RDONLY), EBADF); }
TEST(skips) { SKIP("because"); }
"#,
    )
    .unwrap();
    let bin = tests::compile_c_file(&src, "harness_selftest", Link::Static);
    let out = Cmd::new([bin.as_os_str()]).run_native();
    assert_eq!(out.exit, tests::Exit::Code(1), "{}", out.describe());
    assert_eq!(
        out.last_line(),
        Some("2 passed, 2 failed"),
        "{}",
        out.describe()
    );
    assert!(out.stdout.contains("FAIL fails_eq: "), "{}", out.describe());
    assert!(
        out.stdout.contains("harness_selftest.c:5:"),
        "{}",
        out.describe()
    );
    assert!(
        out.stdout.contains("FAIL fails_errno: "),
        "{}",
        out.describe()
    );
    assert!(out.stdout.contains("ENOENT"), "{}", out.describe());
    assert!(
        out.stdout.contains("SKIP skips: because"),
        "{}",
        out.describe()
    );
    assert!(!out.stdout.contains("FAIL passes"), "{}", out.describe());
}

#[test]
fn conformance_netlink() {
    run_program("netlink");
}

#[test]
fn conformance_procnet() {
    run_program("procnet");
}
