//! Workloads: real programs (coreutils, dash, python3, busybox) run natively
//! and under `runsc do` with the same environment and cwd; stdout and the exit
//! code must match. A few sandbox-only checks cover runsc's own behaviour
//! (missing command, non-ELF file, --strace).
//!
//! Needs: busybox-static (/bin/busybox) and python3 (/usr/bin/python3);
//! `bash .ci/run` installs them.

use std::path::Path;

use tests::{build_dir, expect_native_ok, Cmd, Exit, Failures, RunOutput, PLATFORMS};

/// How stdout is compared.
#[derive(Clone, Copy, PartialEq)]
enum Compare {
    Exact,
    /// Order-insensitive (directory order or env order is not specified).
    SortedLines,
}

fn normalise(s: &str, how: Compare) -> String {
    match how {
        Compare::Exact => s.to_string(),
        Compare::SortedLines => {
            let mut v: Vec<&str> = s.lines().collect();
            v.sort_unstable();
            v.join("\n")
        }
    }
}

fn require_file(path: &str, package: &str) {
    if !Path::new(path).exists() {
        panic!(
            "{path} is missing: install the Debian package `{package}` \
             (`bash .ci/run` does)"
        );
    }
}

/// Runs `cmd` natively (must exit with `code`) and in the sandbox on every
/// platform; stdout (normalised by `how`) and exit status must match.
fn same_as_native(cmd: Cmd, code: i32, how: Compare) {
    let mut f = Failures::new();
    let native = cmd.run_native();
    if !expect_native_ok(&native, code, &mut f) {
        f.check("native run");
        return;
    }
    for platform in PLATFORMS {
        let sb = cmd.run_sandbox(platform);
        let differs =
            sb.exit != native.exit || normalise(&sb.stdout, how) != normalise(&native.stdout, how);
        if differs {
            f.add(format!(
                "--platform={platform}: sandbox {} / native {}; stdout {}\n\
                 --- sandbox ---\n{}--- native ---\n{}",
                sb.exit,
                native.exit,
                if normalise(&sb.stdout, how) == normalise(&native.stdout, how) {
                    "same"
                } else {
                    "DIFFERS"
                },
                sb.describe(),
                native.describe()
            ));
        }
    }
    f.check(&format!(
        "workload `{}`",
        cmd.argv
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    ));
}

fn exact(argv: &[&str]) {
    same_as_native(Cmd::new(argv.iter().copied()), 0, Compare::Exact);
}

// ------------------------------------------------------------ coreutils, sh

#[test]
fn echo_hello() {
    exact(&["/bin/echo", "hello"]);
}

#[test]
fn sh_exit_status() {
    same_as_native(Cmd::new(["/bin/sh", "-c", "exit 7"]), 7, Compare::Exact);
}

#[test]
fn true_and_false() {
    same_as_native(Cmd::new(["/bin/true"]), 0, Compare::Exact);
    same_as_native(Cmd::new(["/bin/false"]), 1, Compare::Exact);
}

#[test]
fn ls_la_etc() {
    // Same host files are served, so sizes, times and link counts agree.
    // (Not `ls /`'s long form: /proc, /sys and /dev are the sandbox's own.)
    exact(&["/bin/ls", "-la", "/etc"]);
}

#[test]
fn ls_usr_bin_sorted() {
    exact(&["/bin/ls", "/usr/bin"]);
}

#[test]
fn cat_os_release() {
    exact(&["/bin/cat", "/etc/os-release"]);
}

#[test]
fn sha256sum_binary() {
    exact(&["/usr/bin/sha256sum", "/usr/bin/ls", "/etc/passwd"]);
}

#[test]
fn env_exact_environment() {
    let env = [("FOO", "bar"), ("PATH", "/usr/bin:/bin")];
    same_as_native(
        Cmd::new(["/usr/bin/env"]).env_exact(&env),
        0,
        Compare::SortedLines,
    );
}

#[test]
fn pwd_in_cwd() {
    let mut cmd = Cmd::new(["/bin/pwd"]);
    cmd.cwd = "/usr/share".into();
    same_as_native(cmd, 0, Compare::Exact);
}

// ------------------------------------------------------------ python

#[test]
fn python3_listdir_json() {
    require_file("/usr/bin/python3", "python3");
    exact(&[
        "/usr/bin/python3",
        "-c",
        "import os,json,re; print(json.dumps(sorted(os.listdir(\"/usr\"))))",
    ]);
}

#[test]
fn python3_exit_code() {
    require_file("/usr/bin/python3", "python3");
    same_as_native(
        Cmd::new([
            "/usr/bin/python3",
            "-S",
            "-c",
            "import sys; print(sum(range(1000))); sys.exit(3)",
        ]),
        3,
        Compare::Exact,
    );
}

// ------------------------------------------------------------ busybox (static)

const BUSYBOX: &str = "/bin/busybox";

fn busybox(args: &[&str], how: Compare) {
    require_file(BUSYBOX, "busybox-static");
    let mut argv = vec![BUSYBOX];
    argv.extend_from_slice(args);
    same_as_native(Cmd::new(argv), 0, how);
}

#[test]
fn busybox_ls_root() {
    busybox(&["ls", "/"], Compare::Exact);
}

#[test]
fn busybox_cat_os_release() {
    busybox(&["cat", "/etc/os-release"], Compare::Exact);
}

#[test]
fn busybox_wc_passwd() {
    busybox(&["wc", "/etc/passwd"], Compare::Exact);
}

#[test]
fn busybox_find_etc_conf() {
    busybox(&["find", "/etc", "-name", "*.conf"], Compare::SortedLines);
}

// ------------------------------------------------------------ runsc itself

fn sandbox_only(cmd: &Cmd, platform: &str, flags: &[&str]) -> RunOutput {
    cmd.run_sandbox_with(platform, flags)
}

#[test]
fn missing_command_fails_with_one_line() {
    let mut f = Failures::new();
    let cmd = Cmd::new(["/nonexistent/conformance-cmd"]);
    for platform in PLATFORMS {
        let sb = sandbox_only(&cmd, platform, &[]);
        let lines: Vec<&str> = sb.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        if matches!(sb.exit, Exit::Code(0) | Exit::TimedOut | Exit::Signal(_)) || lines.len() != 1 {
            f.add(format!(
                "--platform={platform}: expected a non-zero exit and exactly one line on \
                 stderr for a missing command\n{}",
                sb.describe()
            ));
        }
    }
    f.check("missing command");
}

#[test]
fn non_elf_files_fail_cleanly() {
    let mut f = Failures::new();
    // Not executable, not ELF.
    let mut cases = vec![Cmd::new(["/etc/passwd"])];
    // Executable but not ELF (no #!), and a truncated ELF header.
    let dir = build_dir();
    let garbage = dir.join("not-elf.bin");
    std::fs::write(&garbage, b"this is not an ELF file\n").unwrap();
    let truncated = dir.join("truncated-elf.bin");
    let ls = std::fs::read("/usr/bin/ls").unwrap();
    std::fs::write(&truncated, &ls[..100]).unwrap();
    for p in [&garbage, &truncated] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        cases.push(Cmd::new([p.as_os_str()]));
    }
    for cmd in &cases {
        let native = cmd.run_native();
        if native.exit == Exit::Code(0) {
            f.add(format!(
                "native run unexpectedly succeeded\n{}",
                native.describe()
            ));
        }
        for platform in PLATFORMS {
            let sb = sandbox_only(cmd, platform, &[]);
            if matches!(sb.exit, Exit::Code(0) | Exit::TimedOut | Exit::Signal(_)) {
                f.add(format!(
                    "--platform={platform}: expected a non-zero exit (not a crash or hang)\n{}",
                    sb.describe()
                ));
            }
        }
    }
    f.check("non-ELF files");
}

#[test]
fn strace_prints_syscalls() {
    let mut f = Failures::new();
    let cmd = Cmd::new(["/bin/true"]);
    for platform in PLATFORMS {
        let sb = sandbox_only(&cmd, platform, &["--strace"]);
        if sb.exit != Exit::Code(0)
            || !(sb.stderr.contains("execve(") || sb.stderr.contains("exit_group("))
        {
            f.add(format!(
                "--platform={platform}: `runsc --strace do /bin/true` should exit 0 and \
                 print execve(/exit_group( lines on stderr\n{}",
                sb.describe()
            ));
        }
    }
    f.check("--strace");
}
