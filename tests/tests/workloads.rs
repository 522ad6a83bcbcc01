//! Workloads: real programs (coreutils, dash, python3, busybox) run natively
//! and under `runsc do` with the same environment and cwd; stdout and the exit
//! code must match. A few sandbox-only checks cover runsc's own behaviour
//! (missing command, non-ELF file, --strace, --private-tmp), and the overlay
//! root: writes anywhere stay in the sandbox; gcc, make, tar and git work in it.
//!
//! Needs: busybox-static (/bin/busybox), python3 (/usr/bin/python3), gcc,
//! libc6-dev, make, git and sqlite3; `bash .ci/run` installs them.

use std::path::Path;

use tests::{
    all_platforms, build_dir, expect_native_ok, Cmd, Exit, Failures, RunOutput, PLATFORMS,
};

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
    for platform in all_platforms() {
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

/// Shared memory from Python: multiprocessing's shared values and locks (POSIX
/// semaphores and an arena in /dev/shm), shared_memory, and mmap of a memfd.
const PYTHON_SHM: &str = r#"
import mmap, os, multiprocessing as mp
from multiprocessing import shared_memory

def work(v, arr, lock):
    for _ in range(200):
        with lock:
            v.value += 1
    arr[os.getpid() % 4] += 0
    arr[3] = 7

if __name__ == "__main__":
    mp.set_start_method("fork")
    v, arr, lock = mp.Value("i", 0), mp.Array("i", 4), mp.Lock()
    ps = [mp.Process(target=work, args=(v, arr, lock)) for _ in range(3)]
    for p in ps: p.start()
    for p in ps: p.join()
    print("counter", v.value, "arr", list(arr))
    s = shared_memory.SharedMemory(create=True, size=10000)
    s.buf[:5] = b"hello"
    t = shared_memory.SharedMemory(name=s.name)
    print("shared_memory", bytes(t.buf[:5]))
    t.close(); s.close(); s.unlink()
    fd = os.memfd_create("py", 0)
    os.ftruncate(fd, 8192)
    m = mmap.mmap(fd, 8192)
    m[4096:4101] = b"memfd"
    print("memfd", os.pread(fd, 5, 4096), os.fstat(fd).st_size)
    pid = os.fork()
    if pid == 0:
        m[0:5] = b"child"
        os._exit(0)
    os.waitpid(pid, 0)
    print("after fork", m[0:5])
"#;

#[test]
fn python3_shared_memory() {
    require_file("/usr/bin/python3", "python3");
    same_as_native(
        Cmd::new(["/usr/bin/python3", "-c", PYTHON_SHM]),
        0,
        Compare::Exact,
    );
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

// ------------------------------------------------------------ ip (netlink)

/// `ip ARGS` in the sandbox (whose network is lo, up) against the same
/// natively in a new network namespace with lo brought up: stdout must match.
fn ip_same_as_fresh_netns(ip: &str, args: &[&str]) {
    let mut f = Failures::new();
    let cmdline = format!("{ip} {}", args.join(" "));
    let native = Cmd::new([
        "/usr/bin/unshare",
        "--net",
        "/bin/sh",
        "-c",
        &format!("{BUSYBOX} ip link set lo up && exec {cmdline}"),
    ])
    .run_native();
    if !expect_native_ok(&native, 0, &mut f) {
        f.check("native run");
        return;
    }
    let mut argv = vec![ip];
    argv.extend_from_slice(args);
    let cmd = Cmd::new(argv);
    for platform in all_platforms() {
        let sb = cmd.run_sandbox(platform);
        if sb.exit != native.exit || sb.stdout != native.stdout {
            f.add(format!(
                "--platform={platform}: sandbox {} / native {}\n--- sandbox ---\n{}--- native ---\n{}",
                sb.exit,
                native.exit,
                sb.describe(),
                native.describe()
            ));
        }
    }
    f.check(&format!("workload `{cmdline}`"));
}

#[test]
fn busybox_ip_addr() {
    require_file(BUSYBOX, "busybox-static");
    // One line per address (the link line's qlen needs an AF_INET socket).
    ip_same_as_fresh_netns(BUSYBOX, &["ip", "-o", "addr"]);
}

#[test]
fn busybox_ip_route() {
    require_file(BUSYBOX, "busybox-static");
    // IPv4 only: a fresh namespace may list lo's IPv6 local route twice.
    ip_same_as_fresh_netns(BUSYBOX, &["ip", "-4", "route", "show", "table", "all"]);
}

/// `busybox sh -c SCRIPT` in the sandbox against the same natively in a new
/// network namespace with lo brought up: stdout must match.
fn busybox_sh_same_as_fresh_netns(script: &str) {
    require_file(BUSYBOX, "busybox-static");
    let mut f = Failures::new();
    let native = Cmd::new([
        "/usr/bin/unshare",
        "--net",
        BUSYBOX,
        "sh",
        "-c",
        &format!("{BUSYBOX} ip link set lo up && {script}"),
    ])
    .run_native();
    if !expect_native_ok(&native, 0, &mut f) {
        f.check("native run");
        return;
    }
    let cmd = Cmd::new([BUSYBOX, "sh", "-c", script]);
    for platform in all_platforms() {
        let sb = cmd.run_sandbox(platform);
        if sb.exit != native.exit || sb.stdout != native.stdout {
            f.add(format!(
                "--platform={platform}: sandbox {} / native {}\n--- sandbox ---\n{}--- native ---\n{}",
                sb.exit,
                native.exit,
                sb.describe(),
                native.describe()
            ));
        }
    }
    f.check(&format!("workload `sh -c {script:?}`"));
}

/// `ifconfig lo`: the ioctls plus /proc/net/dev's counters.
#[test]
fn busybox_ifconfig_lo() {
    require_file(BUSYBOX, "busybox-static");
    ip_same_as_fresh_netns(BUSYBOX, &["ifconfig", "lo"]);
}

/// `route -n`: /proc/net/route (lo's routes are all in the local table).
#[test]
fn busybox_route_n() {
    require_file(BUSYBOX, "busybox-static");
    ip_same_as_fresh_netns(BUSYBOX, &["route", "-n"]);
}

/// `netstat -ltn` while `nc -l` listens: /proc/net/tcp and tcp6.
#[test]
fn busybox_netstat_listening() {
    busybox_sh_same_as_fresh_netns(
        "bb=/bin/busybox; $bb nc -l -p 8080 </dev/null >/dev/null & p=$!; i=0; \
         while ! $bb netstat -ltn | $bb grep -q ':8080 ' && [ $i -lt 100 ]; do \
         $bb sleep 0.05; i=$((i+1)); done; $bb netstat -ltn; $bb netstat -ltun; \
         kill $p; wait $p; $bb netstat -ltn",
    );
}

/// iproute2's `ip`, when the host has it.
#[test]
fn iproute2_ip_addr_link_route() {
    let ip = "/usr/sbin/ip";
    if !Path::new(ip).exists() {
        eprintln!("{ip} missing (iproute2): skipped");
        return;
    }
    ip_same_as_fresh_netns(ip, &["addr"]);
    ip_same_as_fresh_netns(ip, &["-s", "link"]);
    ip_same_as_fresh_netns(ip, &["-4", "route", "show", "table", "all"]);
}

// ------------------------------------------------------------ runsc itself

fn sandbox_only(cmd: &Cmd, platform: &str, flags: &[&str]) -> RunOutput {
    cmd.run_sandbox_with(platform, flags)
}

#[test]
fn missing_command_fails_with_one_line() {
    let mut f = Failures::new();
    let cmd = Cmd::new(["/nonexistent/conformance-cmd"]);
    for platform in all_platforms() {
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
        for platform in all_platforms() {
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
    for platform in all_platforms() {
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

/// A fresh directory for files a test makes on the host, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static SEQ: AtomicU32 = AtomicU32::new(0);
        // Under the workspace's target/ directory (the sandbox sees it
        // through its overlay, as it sees the rest of the host's tree).
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

// ------------------------------------------------------------ overlay root
//
// `runsc do`'s root is an overlay: the host's tree, read-only, under an
// in-memory upper layer. Writes anywhere work inside and never reach the host.

/// Fails unless `name` is on the tests' PATH.
fn require_cmd(name: &str, package: &str) {
    let path = tests::CLEAN_ENV
        .iter()
        .find(|(k, _)| *k == "PATH")
        .map(|(_, v)| *v)
        .unwrap_or("/usr/bin:/bin");
    if !path.split(':').any(|d| Path::new(d).join(name).exists()) {
        panic!(
            "`{name}` is missing: install the Debian package `{package}` \
             (`bash .ci/run` does)"
        );
    }
}

/// A path under the host's /tmp that does not exist yet.
fn fresh_tmp_path(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let p = std::path::PathBuf::from(format!(
        "/tmp/runsc-overlay-{tag}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    assert!(!p.exists(), "{} exists", p.display());
    p
}

/// Runs `script` (sh, in a fresh work directory under /tmp, also in "$d")
/// natively and in the sandbox; stdout and status must match, and the work
/// directory the sandbox made (and leaves) must not show up on the host. The
/// native run removes its work directory.
fn overlay_script(tag: &str, script: &str, timeout_secs: u64) {
    let work = fresh_tmp_path(tag);
    let body =
        |cleanup: &str| format!("set -e\nd=\"$1\"\nmkdir \"$d\"\n{cleanup}cd \"$d\"\n{script}");
    let cmd = |text: String| {
        Cmd::new([
            std::ffi::OsString::from("/bin/sh"),
            "-c".into(),
            text.into(),
            "sh".into(),
            work.clone().into_os_string(),
        ])
        .timeout(std::time::Duration::from_secs(timeout_secs))
    };
    let mut f = Failures::new();
    let native = cmd(body("trap 'cd /; rm -rf \"$d\"' EXIT\n")).run_native();
    let _ = std::fs::remove_dir_all(&work);
    if !expect_native_ok(&native, 0, &mut f) {
        f.check("native run");
        return;
    }
    let sb_cmd = cmd(body(""));
    for platform in all_platforms() {
        let sb = sb_cmd.run_sandbox(platform);
        if sb.exit != native.exit || sb.stdout != native.stdout {
            f.add(format!(
                "--platform={platform}: sandbox {} / native {}\n--- sandbox ---\n{}--- native ---\n{}",
                sb.exit,
                native.exit,
                sb.describe(),
                native.describe()
            ));
        }
        if work.exists() {
            let _ = std::fs::remove_dir_all(&work);
            f.add(format!(
                "--platform={platform}: the sandbox's {} reached the host",
                work.display()
            ));
        }
    }
    f.check(&format!("overlay workload {tag}"));
}

#[test]
fn overlay_writes_and_removes_stay_inside() {
    let host = TempDir::new("overlay");
    let victim = host.0.join("victim");
    std::fs::write(&victim, "host data\n").unwrap();
    let probe = std::path::PathBuf::from(format!("/etc/overlay-probe-{}", std::process::id()));
    let script = format!(
        "set -e\n\
         echo x > {p} && cat {p}\n\
         echo y >> /etc/passwd && tail -n 1 /etc/passwd\n\
         cat {v}\n\
         rm {v}\n\
         if [ -e {v} ]; then echo still there; else echo gone; fi\n\
         ls -A {dir}\n\
         mkdir -p /usr/overlay-dir/a/b && echo deep > /usr/overlay-dir/a/b/f && cat /usr/overlay-dir/a/b/f\n\
         [ \"$(stat -c %d /)\" = \"$(stat -c %d /etc/passwd)\" ] && echo one device\n",
        p = probe.display(),
        v = victim.display(),
        dir = host.0.display(),
    );
    let passwd = std::fs::read("/etc/passwd").unwrap();
    let mut f = Failures::new();
    for platform in all_platforms() {
        let sb = Cmd::new(["/bin/sh", "-c", &script]).run_sandbox(platform);
        let want = "x\ny\nhost data\ngone\ndeep\none device\n";
        if sb.exit != Exit::Code(0) || sb.stdout != want {
            f.add(format!(
                "--platform={platform}: want stdout {want:?}\n{}",
                sb.describe()
            ));
        }
        if probe.exists() {
            let _ = std::fs::remove_file(&probe);
            f.add(format!("{} was created on the host", probe.display()));
        }
        if std::fs::read_to_string(&victim).ok().as_deref() != Some("host data\n") {
            f.add(format!("{} was changed on the host", victim.display()));
        }
        if std::fs::read("/etc/passwd").unwrap() != passwd {
            f.add("/etc/passwd was changed on the host");
        }
        if Path::new("/usr/overlay-dir").exists() {
            f.add("/usr/overlay-dir was created on the host");
        }
    }
    f.check("overlay writes");
}

#[test]
fn overlay_gcc_builds_and_runs_in_tmp() {
    require_cmd("gcc", "gcc");
    overlay_script(
        "gcc",
        r#"cat > t.c <<'END'
#include <stdio.h>
int main(int argc, char **argv) {
    unsigned h = 5381;
    for (const char *p = "overlay"; *p; p++) h = h * 33 + (unsigned char)*p;
    printf("hash %u argc %d\n", h, argc);
    return 0;
}
END
gcc -O2 -Wall -o "$d/t" t.c
"$d/t" a b
ls
"#,
        60,
    );
}

#[test]
fn overlay_make_j2_multi_file_project() {
    require_cmd("gcc", "gcc");
    require_cmd("make", "make");
    overlay_script(
        "make",
        r#"mkdir src
printf 'int add(int, int);\nint mul(int, int);\n' > src/ops.h
printf '#include "ops.h"\nint add(int a, int b) { return a + b; }\n' > src/add.c
printf '#include "ops.h"\nint mul(int a, int b) { return a * b; }\n' > src/mul.c
cat > src/main.c <<'END'
#include <stdio.h>
#include "ops.h"
int main(void) { printf("%d %d\n", add(2, 3), mul(4, 5)); return 0; }
END
cat > Makefile <<'END'
OBJS = main.o add.o mul.o
prog: $(OBJS)
	$(CC) -o $@ $(OBJS)
%.o: src/%.c src/ops.h
	$(CC) -O2 -c -o $@ $<
clean:
	rm -f prog $(OBJS)
END
make -s -j2
./prog
make -q && echo up to date
sleep 0.01
printf '#include "ops.h"\nint mul(int a, int b) { return a * b * 10; }\n' > src/mul.c
make -q || echo stale
make -j2 | sort
./prog
make -s clean
ls
"#,
        60,
    );
}

#[test]
fn overlay_tar_round_trip_of_usr_include() {
    require_file("/usr/include/stdio.h", "libc6-dev");
    overlay_script(
        "tar",
        r#"# All of /usr/include unless it is big (the upper layer is in memory).
if [ "$(du -sm /usr/include | cut -f1)" -gt 120 ]; then sub=include/linux; else sub=include; fi
tar czf inc.tgz -C /usr "$sub"
mkdir x
tar xzf inc.tgz -C x
sums() { (cd "$1" && find . -type f | sort | xargs sha256sum | sha256sum); }
tree() { (cd "$1" && find . | sort | sha256sum); }
[ "$(sums /usr/$sub)" = "$(sums x/$sub)" ] && echo same contents
[ "$(tree /usr/$sub)" = "$(tree x/$sub)" ] && echo same tree
rm -r x
ls
"#,
        120,
    );
}

#[test]
fn overlay_git_init_add_commit() {
    require_cmd("git", "git");
    overlay_script(
        "git",
        r#"export HOME="$d" GIT_CONFIG_NOSYSTEM=1 LC_ALL=C
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
export GIT_AUTHOR_DATE='2020-01-01T00:00:00Z' GIT_COMMITTER_DATE='2020-01-01T00:00:00Z'
mkdir repo
cd repo
git init -q -b main
echo hello > a.txt
mkdir sub
echo world > sub/b.txt
git add .
git commit -qm first
echo more >> a.txt
git rm -q sub/b.txt
git commit -qam second
git log --format='%H %s'
git status --porcelain
git ls-files
git cat-file -p HEAD:a.txt
git fsck --no-progress 2>&1 | grep -v '^Checking' || true
"#,
        60,
    );
}

#[test]
fn private_tmp_is_empty_and_writable() {
    let mut f = Failures::new();
    for platform in all_platforms() {
        let mut c = std::process::Command::new(tests::runsc_bin());
        c.arg(format!("--platform={platform}"))
            .args(tests::extra_runsc_flags())
            .args(["do", "--private-tmp", "--", "/bin/sh", "-c"])
            .arg("ls -A /tmp | wc -l; echo a > /tmp/a && cat /tmp/a; stat -f -c %T /tmp")
            .env_clear()
            .envs(tests::CLEAN_ENV.iter().copied())
            .current_dir("/");
        let out = tests::run_with_timeout(c, "runsc do --private-tmp".into(), tests::TIMEOUT);
        if out.exit != Exit::Code(0) || out.stdout != "0\na\ntmpfs\n" {
            f.add(format!("--platform={platform}\n{}", out.describe()));
        }
    }
    f.check("--private-tmp");
}

/// File operations on a host directory (the lower layer, inside the
/// sandbox): every result and the final tree must be what Linux gives on a
/// writable copy. Renaming a directory with lower contents is left out (EXDEV
/// inside, as Linux's overlay without redirect_dir).
const FS_OPS: &str = r#"
import errno, os, sys
os.chdir(sys.argv[1])
def t(label, f):
    try:
        r = f()
        print(label, "ok", "" if r is None else r)
    except OSError as e:
        print(label, errno.errorcode[e.errno])
def write(p, s, mode="w"):
    with open(p, mode) as f:
        f.write(s)
def read(p):
    with open(p) as f:
        return f.read()
t("append a", lambda: write("a", "more", "a"))
t("read a", lambda: read("a"))
t("unlink b", lambda: os.unlink("b"))
t("stat b", lambda: os.stat("b"))
t("unlink b again", lambda: os.unlink("b"))
t("recreate b", lambda: write("b", "new b"))
t("read b", lambda: read("b"))
t("rmdir d", lambda: os.rmdir("d"))
t("unlink d", lambda: os.unlink("d"))
t("rmdir a", lambda: os.rmdir("a"))
t("mkdir d", lambda: os.mkdir("d"))
t("excl a", lambda: os.open("a", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
for p in ["d/x", "d/y", "d/sub/z"]:
    t("unlink " + p, lambda p=p: os.unlink(p))
t("rmdir d/sub", lambda: os.rmdir("d/sub"))
t("listdir d", lambda: sorted(os.listdir("d")))
t("rmdir d", lambda: os.rmdir("d"))
t("mkdir d", lambda: os.mkdir("d", 0o750))
t("listdir new d", lambda: sorted(os.listdir("d")))
t("stat d/sub", lambda: os.stat("d/sub"))
t("move a", lambda: os.rename("a", "e2/a2"))
t("read e2/a2", lambda: read("e2/a2"))
t("link", lambda: os.link("e2/a2", "c"))
t("nlink", lambda: (os.stat("c").st_nlink, os.stat("c").st_ino == os.stat("e2/a2").st_ino))
t("readlink l", lambda: os.readlink("l"))
t("exists l", lambda: os.path.exists("l"))
t("replace l", lambda: os.rename("c", "l"))
t("read l", lambda: read("l"))
t("over dir", lambda: os.rename("l", "e"))
t("dir over file", lambda: os.rename("e", "b"))
t("truncate t", lambda: os.truncate("t", 2))
t("chmod t", lambda: os.chmod("t", 0o600))
t("utime t", lambda: os.utime("t", (1000, 2000)))
t("stat t", lambda: (oct(os.stat("t").st_mode), os.stat("t").st_size, os.stat("t").st_mtime))
t("rmdir e2", lambda: os.rmdir("e2"))
t("mkdir n", lambda: os.mkdir("n"))
t("fill n", lambda: write("n/f", "f"))
t("n over e", lambda: os.rename("n", "e"))
t("listdir e", lambda: sorted(os.listdir("e")))
t("mkdir q", lambda: os.mkdir("q"))
t("q over nonempty", lambda: os.rename("q", "e2"))
t("symlink", lambda: os.symlink("e/f", "s"))
t("read s", lambda: read("s"))
t("rename over itself", lambda: os.rename("e2/a2", "e2/a2"))
t("noreplace-ish", lambda: os.rename("t", "t2"))
t("t gone", lambda: os.path.exists("t"))
t("many files", lambda: [write("m%03d" % i, str(i)) for i in range(300)] and None)
t("rm many", lambda: [os.unlink("m%03d" % i) for i in range(0, 300, 3)] and None)
for root, dirs, files in sorted(os.walk(".")):
    dirs.sort()
    for n in sorted(dirs + files):
        p = os.path.join(root, n)
        st = os.lstat(p)
        kind = "l" if os.path.islink(p) else "d" if os.path.isdir(p) else "f"
        size = st.st_size if kind == "f" else ""
        nl = st.st_nlink if kind == "f" else ""
        print(p, kind, oct(st.st_mode), size, nl)
"#;

/// Makes the tree FS_OPS works on.
fn fs_ops_tree(p: &Path) {
    use std::os::unix::fs::{symlink, PermissionsExt};
    for d in ["d/sub", "e", "e2"] {
        std::fs::create_dir_all(p.join(d)).unwrap();
    }
    for (f, data) in [
        ("a", "A"),
        ("b", "B"),
        ("t", "tttt"),
        ("d/x", "x"),
        ("d/y", "y"),
        ("d/sub/z", "z"),
        ("e2/keep", "k"),
    ] {
        std::fs::write(p.join(f), data).unwrap();
    }
    symlink("a", p.join("l")).unwrap();
    std::fs::set_permissions(p.join("d"), std::fs::Permissions::from_mode(0o711)).unwrap();
}

/// A listing of everything under `p` (paths, types, sizes, contents).
fn snapshot_tree(p: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let ft = e.file_type().unwrap();
            let data = if ft.is_file() {
                std::fs::read_to_string(&path).unwrap()
            } else {
                String::new()
            };
            out.push(format!("{} {:?} {data}", path.display(), ft));
            if ft.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn overlay_fs_ops_match_native() {
    require_file("/usr/bin/python3", "python3");
    let native_dir = TempDir::new("fsops-native");
    let lower_dir = TempDir::new("fsops-lower");
    fs_ops_tree(&native_dir.0);
    fs_ops_tree(&lower_dir.0);
    let pristine = snapshot_tree(&lower_dir.0);
    let cmd = |d: &Path| {
        Cmd::new([
            std::ffi::OsStr::new("/usr/bin/python3"),
            "-c".as_ref(),
            FS_OPS.as_ref(),
            d.as_os_str(),
        ])
    };
    let mut f = Failures::new();
    let native = cmd(&native_dir.0).run_native();
    if !expect_native_ok(&native, 0, &mut f) {
        f.check("native run");
        return;
    }
    for platform in all_platforms() {
        let sb = cmd(&lower_dir.0).run_sandbox(platform);
        if sb.exit != native.exit || sb.stdout != native.stdout {
            let diff: Vec<String> = sb
                .stdout
                .lines()
                .zip(native.stdout.lines())
                .filter(|(a, b)| a != b)
                .take(10)
                .map(|(a, b)| format!("  sandbox: {a}\n  native:  {b}"))
                .collect();
            f.add(format!(
                "--platform={platform}: differs from native; first differences:\n{}\n{}",
                diff.join("\n"),
                sb.describe()
            ));
        }
        if snapshot_tree(&lower_dir.0) != pristine {
            f.add(format!(
                "--platform={platform}: the host directory was modified"
            ));
        }
    }
    f.check("overlay file operations");
}

// ------------------------------------------------------------ runsc do --volume
//
// A host temp dir (under target/workload-tmp, removed afterwards) is mounted
// with `runsc do --volume DIR:/vol[:ro]`; the workload changes it and the test
// checks the HOST side. Nothing outside the temp dir is ever written.

impl TempDir {
    fn path(&self, p: &str) -> std::path::PathBuf {
        self.0.join(p)
    }
}

/// `runsc --platform=P do <do_flags> -- argv` in `/` with the clean environment.
fn run_do(platform: &str, do_flags: &[String], argv: &[&str]) -> RunOutput {
    let runsc = tests::runsc_bin();
    let mut args: Vec<String> = vec![format!("--platform={platform}")];
    args.extend(tests::extra_runsc_flags());
    args.push("do".into());
    args.extend(do_flags.iter().cloned());
    args.push("--".into());
    args.extend(argv.iter().map(|s| s.to_string()));
    let mut c = std::process::Command::new(&runsc);
    c.args(&args).env_clear().current_dir("/");
    for (k, v) in tests::CLEAN_ENV {
        c.env(k, v);
    }
    let cmdline = format!("{} {}", runsc.display(), args.join(" "));
    tests::run_with_timeout(c, cmdline, tests::TIMEOUT)
}

fn vol_flag(dir: &TempDir, at: &str, opt: &str) -> String {
    format!("--volume={}:{at}{opt}", dir.0.display())
}

/// Every path below `dir` (relative, sorted), not following symlinks.
fn tree_of(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn volume_writes_reach_the_host_dir() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut f = Failures::new();
    for platform in all_platforms() {
        let d = TempDir::new("volume-rw");
        std::fs::write(d.path("keep"), b"keep me\n").unwrap();
        std::fs::write(d.path("old"), b"old data\n").unwrap();
        std::fs::write(d.path("gone"), b"bye\n").unwrap();
        std::fs::create_dir(d.path("emptydir")).unwrap();
        let script = "set -e; cd /vol; \
            echo created > new.txt; printf 'more\\n' >> new.txt; \
            mkdir -p a/b; echo deep > a/b/deep.txt; \
            ln -s new.txt sym; ln new.txt hard; mv old a/b/renamed; \
            chmod 600 new.txt; truncate -s 3 keep; rm gone; rmdir emptydir; \
            touch -d @981173106 a/b/deep.txt; mkfifo fifo; \
            cat new.txt; ls -l sym | grep -c 'sym -> new.txt'";
        let out = run_do(
            platform,
            &[vol_flag(&d, "/vol", "")],
            &["/bin/sh", "-c", script],
        );
        let mut bad = Vec::new();
        if out.exit != Exit::Code(0) || out.stdout != "created\nmore\n1\n" {
            bad.push("exit status / stdout".to_string());
        }
        let want = [
            "a",
            "a/b",
            "a/b/deep.txt",
            "a/b/renamed",
            "fifo",
            "hard",
            "keep",
            "new.txt",
            "sym",
        ];
        let got = tree_of(&d.0);
        if got != want {
            bad.push(format!("host tree {got:?} != {want:?}"));
        } else {
            let m = |p: &str| std::fs::symlink_metadata(d.path(p)).unwrap();
            let read = |p: &str| std::fs::read(d.path(p)).unwrap();
            if read("new.txt") != b"created\nmore\n" || m("new.txt").mode() & 0o7777 != 0o600 {
                bad.push("new.txt content/mode".into());
            }
            if m("hard").ino() != m("new.txt").ino() || m("new.txt").nlink() != 2 {
                bad.push("hard link".into());
            }
            if std::fs::read_link(d.path("sym")).ok() != Some("new.txt".into()) {
                bad.push("symlink".into());
            }
            if read("keep") != b"kee" {
                bad.push("truncate".into());
            }
            if read("a/b/renamed") != b"old data\n" || read("a/b/deep.txt") != b"deep\n" {
                bad.push("rename / nested create".into());
            }
            if m("a/b/deep.txt").mtime() != 981173106 {
                bad.push("touch -d".into());
            }
            if !m("fifo").file_type().is_fifo() {
                bad.push("mkfifo".into());
            }
        }
        if !bad.is_empty() {
            f.add(format!(
                "--platform={platform}: {}\n{}",
                bad.join("; "),
                out.describe()
            ));
        }
    }
    f.check("runsc do --volume (writable)");
}

#[test]
fn volume_read_only_is_erofs() {
    let mut f = Failures::new();
    for platform in all_platforms() {
        let d = TempDir::new("volume-ro");
        std::fs::write(d.path("keep"), b"keep me\n").unwrap();
        let script = "cat /vol/keep; echo x > /vol/new; mkdir /vol/d; rm -f /vol/keep; \
                      echo x >> /vol/keep; touch /vol/keep; exit 0";
        let out = run_do(
            platform,
            &[vol_flag(&d, "/mnt/ro/here", ":ro")],
            &["/bin/sh", "-c", &script.replace("/vol", "/mnt/ro/here")],
        );
        let erofs = out.stderr.matches("Read-only file system").count();
        if out.exit != Exit::Code(0)
            || out.stdout != "keep me\n"
            || erofs < 4
            || tree_of(&d.0) != ["keep"]
            || std::fs::read(d.path("keep")).unwrap() != b"keep me\n"
        {
            f.add(format!(
                "--platform={platform}: a :ro volume must read but refuse every change \
                 with EROFS ({erofs} \"Read-only file system\" messages)\n{}",
                out.describe()
            ));
        }
    }
    f.check("runsc do --volume :ro");
}

#[test]
fn volume_symlinks_do_not_escape() {
    let mut f = Failures::new();
    for platform in all_platforms() {
        let base = TempDir::new("volume-escape");
        let vol = base.path("vol");
        let outside = base.path("outside");
        std::fs::create_dir(&vol).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"secret\n").unwrap();
        // Planted on the host: absolute and relative links pointing out of the volume.
        std::os::unix::fs::symlink(&outside, vol.join("abs")).unwrap();
        std::os::unix::fs::symlink("../outside", vol.join("rel")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), vol.join("file")).unwrap();
        let script = "for p in abs rel; do echo x > /vol/$p/pwned; mkdir /vol/$p/d; \
                      ln -s /x /vol/$p/l; done; echo x >> /vol/file; \
                      rm -f /vol/abs/secret /vol/rel/secret; echo done";
        let spec = format!("--volume={}:/vol", vol.display());
        let out = run_do(platform, &[spec], &["/bin/sh", "-c", script]);
        let outside_tree = tree_of(&outside);
        let vol_tree = tree_of(&vol);
        if !out.stdout.ends_with("done\n")
            || outside_tree != ["secret"]
            || std::fs::read(outside.join("secret")).unwrap() != b"secret\n"
            || vol_tree != ["abs", "file", "rel"]
        {
            f.add(format!(
                "--platform={platform}: writes through planted symlinks must fail or stay \
                 inside the volume; outside now {outside_tree:?}, volume {vol_tree:?}\n{}",
                out.describe()
            ));
        }
    }
    f.check("runsc do --volume symlink escape");
}

#[test]
fn volume_bad_specs_fail_with_one_line() {
    let mut f = Failures::new();
    let d = TempDir::new("volume-bad");
    let missing = d.path("missing");
    let specs = [
        format!("--volume={}:relative/path", d.0.display()),
        format!("--volume={}:/vol", missing.display()),
        format!("--volume={}:/vol:rx", d.0.display()),
        format!("--volume={}:/", d.0.display()),
        "--volume=nocolon".to_string(),
    ];
    for spec in &specs {
        let out = run_do(PLATFORMS[0], std::slice::from_ref(spec), &["/bin/true"]);
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        if out.exit == Exit::Code(0) || lines.len() != 1 || !lines[0].contains("--volume") {
            f.add(format!(
                "{spec}: expected a non-zero exit and one stderr line naming --volume\n{}",
                out.describe()
            ));
        }
    }
    if tree_of(&d.0) != Vec::<String>::new() {
        f.add("a failed run left files behind".to_string());
    }
    f.check("runsc do --volume bad specs");
}

#[test]
fn volume_xattrs_fsync_fallocate() {
    require_file("/usr/bin/python3", "python3");
    let mut f = Failures::new();
    for platform in all_platforms() {
        let d = TempDir::new("volume-xattr");
        let script = "import os\n\
            fd = os.open('/vol/f', os.O_CREAT | os.O_RDWR, 0o644)\n\
            os.write(fd, b'abc')\n\
            os.fsync(fd); os.fdatasync(fd)\n\
            os.posix_fallocate(fd, 0, 8192)\n\
            os.close(fd)\n\
            try:\n    os.setxattr('/vol/f', 'user.k', b'val')\nexcept OSError as e:\n    print('setxattr', e.errno)\n\
            print(os.getxattr('/vol/f', 'user.k'))\n\
            print(sorted(os.listxattr('/vol/f')))\n\
            try:\n    os.setxattr('/vol/f', 'trusted.k', b'v')\nexcept OSError as e:\n    print('trusted', e.errno)\n\
            os.symlink('f', '/vol/s')\n\
            try:\n    os.setxattr('/vol/s', 'user.k', b'v', follow_symlinks=False)\nexcept OSError as e:\n    print('symlink', e.errno)\n";
        let out = run_do(
            platform,
            &[vol_flag(&d, "/vol", "")],
            &["/usr/bin/python3", "-c", script],
        );
        let want = format!(
            "b'val'\n['user.k']\ntrusted {}\nsymlink {}\n",
            libc::EOPNOTSUPP,
            libc::EPERM
        );
        // The host sees the value (read back natively).
        let host = std::process::Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(format!(
                "import os; print(os.getxattr({:?}, 'user.k'))",
                d.path("f").display().to_string()
            ))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let size = std::fs::metadata(d.path("f")).map(|m| m.len()).ok();
        if out.exit != Exit::Code(0)
            || out.stdout != want
            || host != "b'val'\n"
            || size != Some(8192)
            || std::fs::read(d.path("f")).unwrap()[..3] != *b"abc"
        {
            f.add(format!(
                "--platform={platform}: want stdout {want:?}, host xattr \"b'val'\", \
                 size 8192; host read {host:?}, size {size:?}\n{}",
                out.describe()
            ));
        }
    }
    f.check("runsc do --volume xattrs, fsync, fallocate");
}

// ------------------------------------------------------------ sqlite3

/// The SQL of the sqlite3 workloads: a WAL database, 10,000 rows inserted in
/// one transaction, read back.
fn sqlite_script() -> String {
    let mut sql = String::from(
        "PRAGMA journal_mode=WAL;\n\
         CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER NOT NULL, s TEXT NOT NULL);\n\
         BEGIN;\n",
    );
    for i in 1..=10_000u32 {
        sql.push_str(&format!(
            "INSERT INTO t(v, s) VALUES ({}, 'row-{i}');\n",
            i * 7 % 1000
        ));
    }
    sql.push_str(
        "COMMIT;\n\
         SELECT count(*), sum(v), min(s), max(s) FROM t;\n\
         PRAGMA integrity_check;\n",
    );
    sql
}

/// Runs `script` with `sh -c` and the path of the SQL file as $1, in a fresh
/// directory under /dev/shm (a tmpfs natively and in the sandbox).
fn sqlite_workload(tag: &str, script: &str) {
    require_file("/usr/bin/sqlite3", "sqlite3");
    let dir = TempDir::new(tag);
    let sql = dir.0.join("script.sql");
    std::fs::write(&sql, sqlite_script()).unwrap();
    let full = format!(
        "set -u\n\
         d=$(mktemp -d /dev/shm/sqlite.XXXXXX) || exit 1\n\
         cd \"$d\" || exit 1\n\
         ( {script} ); s=$?\n\
         cd / && rm -rf \"$d\"\n\
         exit $s\n"
    );
    let cmd = Cmd::new([
        std::ffi::OsStr::new("/bin/sh"),
        std::ffi::OsStr::new("-c"),
        std::ffi::OsStr::new(&full),
        std::ffi::OsStr::new("sh"),
        sql.as_os_str(),
    ]);
    same_as_native(cmd, 0, Compare::Exact);
}

/// One writer process, then a second process reading the database back.
#[test]
fn sqlite3_wal_insert_and_read_back() {
    sqlite_workload(
        "sqlite",
        "sqlite3 test.db < \"$1\" || exit 2\n\
         sqlite3 test.db 'PRAGMA journal_mode; SELECT count(*), sum(v) FROM t WHERE v > 500;' \
         || exit 3\n\
         sqlite3 test.db 'SELECT s FROM t WHERE id % 2500 = 0;' || exit 4",
    );
}

/// Two processes at once: a writer holds its transaction open while a reader
/// reads the last commit (WAL) and a second writer waits for the lock
/// (sqlite's busy timeout over F_SETLK).
#[test]
fn sqlite3_wal_concurrent_reader_and_writer() {
    sqlite_workload(
        "sqlite-conc",
        "sqlite3 test.db < \"$1\" || exit 2\n\
         sqlite3 test.db \"BEGIN IMMEDIATE;\" \"INSERT INTO t(v, s) VALUES (1, 'held');\" \
         \".shell touch started; sleep 2\" \"COMMIT;\" &\n\
         w=$!\n\
         while [ ! -e started ]; do sleep 0.05; done\n\
         sqlite3 test.db \"SELECT 'reader', count(*) FROM t;\" || exit 4\n\
         sqlite3 test.db \".timeout 20000\" \"INSERT INTO t(v, s) VALUES (2, 'waited');\" \
         \"SELECT 'writer2', count(*) FROM t;\" || exit 5\n\
         wait $w || exit 6\n\
         sqlite3 test.db \"SELECT count(*), sum(v), group_concat(s) FROM t WHERE id > 10000;\" \
         || exit 7",
    );
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
    for platform in all_platforms() {
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

/// MAP_SHARED of a file on a volume (a host file through the gofer): stores
/// through the mapping reach the host file at msync, at munmap, and when the
/// process exits without either; a second process sees them after msync.
#[test]
fn volume_shared_mapping_writes_back() {
    require_file("/usr/bin/python3", "python3");
    let mut f = Failures::new();
    for platform in all_platforms() {
        let d = TempDir::new("volume-mmap");
        for name in ["a", "b", "c"] {
            std::fs::write(d.path(name), vec![b'.'; 8192]).unwrap();
        }
        let script = "import mmap, os, subprocess, sys\n\
            def m(p):\n    fd = os.open(p, os.O_RDWR)\n    mm = mmap.mmap(fd, 8192, mmap.MAP_SHARED)\n    os.close(fd)\n    return mm\n\
            a = m('/vol/a'); a[100:105] = b'hello'; a[8000:8003] = b'end'; a.flush()\n\
            print(subprocess.run([sys.executable, '-c', \"print(open('/vol/a','rb').read()[100:105])\"], capture_output=True).stdout.decode().strip())\n\
            b = m('/vol/b'); b[0:3] = b'bbb'; b.close()\n\
            c = m('/vol/c'); c[4096:4099] = b'ccc'\n\
            sys.stdout.flush(); os._exit(0)\n";
        let out = run_do(
            platform,
            &[vol_flag(&d, "/vol", "")],
            &["/usr/bin/python3", "-c", script],
        );
        let a = std::fs::read(d.path("a")).unwrap_or_default();
        let b = std::fs::read(d.path("b")).unwrap_or_default();
        let c = std::fs::read(d.path("c")).unwrap_or_default();
        let ok = out.exit == Exit::Code(0)
            && out.stdout == "b'hello'\n"
            && a.len() == 8192
            && &a[100..105] == b"hello"
            && &a[8000..8003] == b"end"
            && a[99] == b'.'
            && &b[0..3] == b"bbb"
            && b.len() == 8192
            && c.len() == 8192
            && &c[4096..4099] == b"ccc";
        if !ok {
            f.add(format!(
                "--platform={platform}: host files after the sandbox wrote through \
                 shared mappings: a[100..105]={:?} a[8000..8003]={:?} b[0..3]={:?} \
                 c[4096..4099]={:?}\n{}",
                String::from_utf8_lossy(a.get(100..105).unwrap_or_default()),
                String::from_utf8_lossy(a.get(8000..8003).unwrap_or_default()),
                String::from_utf8_lossy(b.get(0..3).unwrap_or_default()),
                String::from_utf8_lossy(c.get(4096..4099).unwrap_or_default()),
                out.describe()
            ));
        }
    }
    f.check("runsc do --volume: MAP_SHARED write-back");
}

/// `--platform=kvm` where /dev/kvm does not work (a mount namespace with
/// /dev/null over it): one line naming the platform and the device, exit 1;
/// the default (`auto`) still runs the command, on ptrace. Needs root for the
/// mount namespace.
#[test]
fn kvm_unusable_is_one_line_and_auto_still_runs() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("kvm_unusable_is_one_line_and_auto_still_runs: SKIPPED (needs root)");
        return;
    }
    let runsc = tests::runsc_bin();
    let run = |args: &str| {
        std::process::Command::new("unshare")
            .args(["-m", "sh", "-c"])
            .arg(format!(
                "mount --bind /dev/null /dev/kvm && exec {} {args}",
                runsc.display()
            ))
            .output()
            .expect("unshare")
    };
    let out = run("--platform=kvm do /bin/true");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "stderr: {err}");
    assert!(
        err.contains("--platform=kvm") && err.contains("/dev/kvm"),
        "{err}"
    );
    let out = run("do /bin/echo ran");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
}
