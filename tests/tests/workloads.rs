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

// ------------------------------------------------------------ issue 3: processes
//
// These need fork/exec/wait, pipes, signals and threads in the sandbox. They
// always run natively (and must pass there); under the sandbox only once
// enabled: `RUNSC_ISSUE3=1`, or a line `issue3_workloads` in
// tests/conformance/ENABLED (see tests/conformance.rs).

/// Like `same_as_native`, but skips the sandbox part until issue 3 is enabled.
fn same_as_native_issue3(cmd: Cmd, code: i32, how: Compare) {
    if tests::issue3_enabled("issue3_workloads") {
        same_as_native(cmd, code, how);
        return;
    }
    let mut f = Failures::new();
    let native = cmd.run_native();
    expect_native_ok(&native, code, &mut f);
    f.check("native run");
    eprintln!(
        "native run passed; sandbox run SKIPPED (issue-3 workload not enabled: set \
         RUNSC_ISSUE3=1 or list `issue3_workloads` in tests/conformance/ENABLED)"
    );
}

/// A fresh directory under the host temp dir, removed on drop. The sandbox
/// sees the host's /tmp read-only, which is all these tests need.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static SEQ: AtomicU32 = AtomicU32::new(0);
        // Under the workspace's target/ directory, not the host /tmp: the
        // sandbox has its own empty tmpfs at /tmp, so files the test makes
        // there would not be visible inside.
        let base = tests::target_dir().join("workload-tmp");
        std::fs::create_dir_all(&base)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", base.display()));
        loop {
            let p = base.join(format!(
                "runsc-workload-{tag}-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            match std::fs::create_dir(&p) {
                Ok(()) => return TempDir(p),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create {}: {e}", p.display()),
            }
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn sh_pipeline_sort_head() {
    same_as_native_issue3(
        Cmd::new([
            "/bin/sh",
            "-c",
            "seq 1 5000 | sort -rn | head -3; echo $((1+2))",
        ]),
        0,
        Compare::Exact,
    );
}

const BASH_SCRIPT: &str = r#"#!/bin/bash
# Subshells, command substitution, background jobs, traps.
set -u
x=$(echo inner; (echo sub; exit 3); echo "rc=$?")
echo "$x"
a=$( (exit 7); echo $?)
echo "a=$a"
n=0
for i in 1 2 3 4 5; do n=$((n + $(echo $i))); done
echo "n=$n"
(exit 4) & p1=$!
(sleep 0.05; exit 5) & p2=$!
sh -c 'exit 6' & p3=$!
wait $p1; echo "w1=$?"
wait $p2; echo "w2=$?"
wait $p3; echo "w3=$?"
for i in 1 2 3; do (echo "job $i" >/dev/null) & done
wait
echo "all jobs done"
echo piped | { read -r line; echo "read: $line"; }
out=$(bash -c 'kill -TERM $$; echo unreachable'; echo "status=$?")
echo "$out"
trap 'echo "got TERM"; exit 42' TERM
kill -TERM $$
echo "not reached"
"#;

#[test]
fn bash_script_jobs_and_traps() {
    require_file("/bin/bash", "bash");
    let dir = TempDir::new("bash");
    let script = dir.0.join("script.sh");
    std::fs::write(&script, BASH_SCRIPT).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // Executed directly: the kernel (or sandbox) handles the #! line.
    same_as_native_issue3(Cmd::new([script.as_os_str()]), 42, Compare::Exact);
}

const PYTHON_PROCS: &str = r#"
import os, signal, subprocess, sys
from concurrent.futures import ThreadPoolExecutor

r = subprocess.run(["ls", "/"], capture_output=True)
print("ls rc", r.returncode, "entries", len(r.stdout.split()))
print(subprocess.run(["sh", "-c", "exit 9"]).returncode)
print(subprocess.check_output(["echo", "hi"], text=True).strip())

with ThreadPoolExecutor(max_workers=8) as ex:
    print("sum", sum(ex.map(lambda i: i * i, range(1000))))

class Alarm(Exception):
    pass

def on_alarm(sig, frame):
    raise Alarm()

signal.signal(signal.SIGALRM, on_alarm)
signal.setitimer(signal.ITIMER_REAL, 0.05)
try:
    signal.pause()
    print("no alarm")
except Alarm:
    print("alarm caught")

pid = os.fork()
if pid == 0:
    os._exit(7)
_, st = os.waitpid(pid, 0)
print("child", os.WIFEXITED(st), os.WEXITSTATUS(st))

r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    os.write(w, b"from child")
    os._exit(0)
os.close(w)
print(os.read(r, 100).decode())
os.waitpid(pid, 0)

p = subprocess.Popen(["sleep", "10"])
p.terminate()
print("terminated", p.wait())
sys.stdout.flush()
"#;

#[test]
fn python3_processes_threads_signals() {
    require_file("/usr/bin/python3", "python3");
    same_as_native_issue3(
        Cmd::new(["/usr/bin/python3", "-c", PYTHON_PROCS]),
        0,
        Compare::Exact,
    );
}

#[test]
fn sh_reports_sigsegv_as_139() {
    let dir = build_dir();
    let src = dir.join("segv.c");
    std::fs::write(
        &src,
        "#include <sys/resource.h>\n\
         int main(void) {\n\
             struct rlimit rl = {0, 0};\n\
             setrlimit(RLIMIT_CORE, &rl); /* never write a core file */\n\
             volatile int *volatile p = 0;\n\
             *p = 1;\n\
             return 0;\n\
         }\n",
    )
    .unwrap();
    let bin = tests::compile_c_file(&src, "segv", tests::Link::Static);
    let script = format!(
        "ulimit -c 0; {}; s=$?; echo \"status $s\"; exit $s",
        bin.display()
    );
    same_as_native_issue3(Cmd::new(["/bin/sh", "-c", &script]), 139, Compare::Exact);
}

// ------------------------------------------------------------ pseudo-terminals

/// pty.fork(): a child on a new pty as its controlling terminal (setsid,
/// TIOCSCTTY through glibc's login_tty), canonical input with echo, ONLCR
/// output, VINTR to the foreground group, EIO on the master once the child
/// is gone.
const PYTHON_PTY: &str = r#"
import os, pty, signal, sys, termios
pid, fd = pty.fork()
if pid == 0:
    got = []
    signal.signal(signal.SIGINT, lambda s, f: got.append(s))
    print("tty", os.isatty(0), os.ttyname(0).startswith("/dev/pts/"))
    print("session leader", os.getsid(0) == os.getpid(), os.tcgetpgrp(0) == os.getpid())
    print("/dev/tty", os.path.exists("/dev/tty"), os.open("/dev/tty", os.O_RDWR) > 2)
    sys.stdout.flush()
    line = sys.stdin.readline()
    print("got", repr(line))
    sys.stdout.flush()
    attrs = termios.tcgetattr(0)
    attrs[3] &= ~(termios.ICANON | termios.ECHO)
    termios.tcsetattr(0, termios.TCSANOW, attrs)
    print("raw")
    sys.stdout.flush()
    c = os.read(0, 1)
    print("char", c)
    sys.stdout.flush()
    while not got:
        signal.pause()
    print("sigint", got == [signal.SIGINT])
    sys.stdout.flush()
    os._exit(5)

out = b""
def read_until(marker):
    global out
    while marker not in out:
        d = os.read(fd, 1024)
        if not d:
            break
        out += d

read_until(b"/dev/tty True True\r\n")
os.write(fd, b"hello\r")
read_until(b"raw\r\n")
os.write(fd, b"x")
read_until(b"char b'x'\r\n")
os.write(fd, b"\x03")
while True:
    try:
        d = os.read(fd, 1024)
    except OSError as e:
        out += ("[%s]" % os.strerror(e.errno)).encode()
        break
    if not d:
        break
    out += d
_, st = os.waitpid(pid, 0)
print(out.decode().replace("\r", "\\r"))
print("exit", os.waitstatus_to_exitcode(st))
"#;

#[test]
fn python3_pty_fork() {
    require_file("/usr/bin/python3", "python3");
    same_as_native(
        Cmd::new(["/usr/bin/python3", "-c", PYTHON_PTY]),
        0,
        Compare::Exact,
    );
}

#[test]
fn script_runs_command_on_a_pty() {
    if !Path::new("/usr/bin/script").exists() {
        eprintln!("/usr/bin/script (util-linux) is missing: skipped");
        return;
    }
    same_as_native(
        Cmd::new([
            "/usr/bin/script",
            "-qc",
            "echo hi; tty; stty -a | head -3; test -t 0 && echo stdin-tty",
            "/dev/null",
        ]),
        0,
        Compare::Exact,
    );
}

/// Under `runsc do` on a host terminal (here script(1)'s pty), the terminal
/// is /dev/console and /dev/tty of the first session, and job control on it is
/// the sandbox's own: an interactive bash gets job control (native `bash -i`
/// under script prints the same lines, but for the job's PID).
#[test]
fn host_terminal_console_and_job_control() {
    if !Path::new("/usr/bin/script").exists() || !Path::new("/bin/bash").exists() {
        eprintln!("/usr/bin/script or /bin/bash is missing: skipped");
        return;
    }
    // Inside double quotes of script's own `sh -c`: `\$` keeps `$?` for bash.
    let inner = "echo start; sleep 0.1 & wait; (exit 2); echo rc=\\$?; \
                 python3 -c 'import os; print(os.tcgetpgrp(1) == os.getpgrp())'; \
                 test -c /dev/console && echo console; echo via-tty > /dev/tty";
    let mut f = Failures::new();
    for platform in PLATFORMS {
        let runsc = tests::runsc_bin();
        let line = format!(
            "{} --platform={platform} do /bin/bash --norc --noprofile -ic \"{inner}\" 2>&1",
            runsc.display()
        );
        let out = Cmd::new(["/usr/bin/script", "-qec", line.as_str(), "/dev/null"]).run_native();
        let text = out.stdout.replace('\r', "");
        let want =
            "start\n[1] 2\n[1]+  Done                    sleep 0.1\nrc=2\nTrue\nconsole\nvia-tty\n";
        if out.exit != Exit::Code(0) || text != want {
            f.add(format!(
                "--platform={platform}: expected\n{want}got\n{text}\n{}",
                out.describe()
            ));
        }
    }
    f.check("host terminal");
}
