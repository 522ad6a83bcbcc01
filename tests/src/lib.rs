//! Support for the integration tests in `tests/tests/`: locating the `runsc`
//! binary, compiling the C conformance programs, and running a command natively
//! or in the sandbox with a timeout, capturing its output.
//!
//! The rule every test here follows (DESIGN.md section 5): the same command runs
//! natively and under `runsc do`; native must succeed, and the sandbox must give
//! the same observable result.

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The platform every sandbox test runs on (`runsc --platform=<p>`). The
/// conformance programs and the workloads also run on KVM: [`all_platforms`].
pub const PLATFORMS: &[&str] = &["ptrace"];

/// Whether /dev/kvm can run a VM here: it opens read-write, speaks KVM API
/// 12 and creates a VM. Err says why not (printed when KVM runs are skipped).
/// `RUNSC_TEST_KVM=0` turns KVM runs off.
pub fn kvm_usable() -> Result<(), String> {
    static R: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    R.get_or_init(|| {
        if std::env::var("RUNSC_TEST_KVM").as_deref() == Ok("0") {
            return Err("RUNSC_TEST_KVM=0".into());
        }
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .map_err(|e| format!("open /dev/kvm: {e}"))?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
        const KVM_GET_API_VERSION: libc::c_ulong = 0xae00;
        const KVM_CREATE_VM: libc::c_ulong = 0xae01;
        // SAFETY: ioctls without pointer arguments on a descriptor we own.
        let v = unsafe { libc::ioctl(fd, KVM_GET_API_VERSION, 0) };
        if v != 12 {
            return Err(format!("/dev/kvm: API version {v}, want 12"));
        }
        // SAFETY: as above; the VM descriptor returned is closed at once.
        let vm = unsafe { libc::ioctl(fd, KVM_CREATE_VM, 0) };
        if vm < 0 {
            return Err(format!(
                "KVM_CREATE_VM: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: `vm` is a descriptor we own.
        unsafe { libc::close(vm) };
        Ok(())
    })
    .clone()
}

/// The platforms the conformance programs and workloads run on: ptrace, and
/// kvm where [`kvm_usable`]; otherwise the calling test (named by its thread,
/// as libtest names them) is reported as skipped on KVM, with the reason, on
/// stderr.
pub fn all_platforms() -> Vec<&'static str> {
    let mut v = PLATFORMS.to_vec();
    match kvm_usable() {
        Ok(()) => v.push("kvm"),
        Err(why) => eprintln!(
            "{}: --platform=kvm SKIPPED ({why})",
            thread::current().name().unwrap_or("test")
        ),
    }
    v
}

/// Default per-command time limit.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The environment every command (native and sandboxed) runs with, so that
/// both runs see the same variables regardless of the caller's environment.
pub const CLEAN_ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ("LC_ALL", "C"),
    ("HOME", "/root"),
    ("HARNESS_CHECK_ENV", "conformance"),
];

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("tests crate has a parent directory")
        .to_path_buf()
}

/// Path of the runsc binary under test: `$RUNSC_BIN`, else
/// `<workspace>/target/release/runsc`. Panics with a clear message (the test
/// FAILS, it is not skipped) if the binary does not exist.
pub fn runsc_bin() -> PathBuf {
    let (path, origin) = match std::env::var_os("RUNSC_BIN") {
        Some(p) if !p.is_empty() => (PathBuf::from(p), "$RUNSC_BIN"),
        _ => (
            workspace_root().join("target/release/runsc"),
            "the default location",
        ),
    };
    if !path.is_file() {
        panic!(
            "\n\nrunsc binary not found at {} ({}).\n\
             Build it first with `cargo build --release` in {} \
             (or set RUNSC_BIN=/path/to/runsc). `bash .ci/run` does both.\n\n",
            path.display(),
            origin,
            workspace_root().display()
        );
    }
    path
}

/// Extra global flags for every sandbox run, from `$RUNSC_TEST_FLAGS`
/// (whitespace separated), e.g. `RUNSC_TEST_FLAGS=--strace` when debugging.
pub fn extra_runsc_flags() -> Vec<String> {
    std::env::var("RUNSC_TEST_FLAGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The cargo target directory this test binary was built into (derived from
/// the test executable's path, `<target>/<profile>/deps/<test>`), falling back
/// to `$CARGO_TARGET_DIR` or `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        // <target>/<profile>/deps/<exe>
        if let Some(deps) = exe.parent() {
            if deps.file_name().is_some_and(|n| n == "deps") {
                if let Some(target) = deps.parent().and_then(Path::parent) {
                    return target.to_path_buf();
                }
            }
        }
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_root().join(d)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// Directory for compiled conformance programs and other test artifacts.
pub fn build_dir() -> PathBuf {
    let dir = target_dir().join("conformance");
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// The directory holding the C sources and harness.h.
pub fn conformance_src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance")
}

/// Environment variable that enables every issue-3 test under the sandbox.
pub const ISSUE3_ENV: &str = "RUNSC_ISSUE3";

/// Path of the file listing enabled issue-3 tests (`tests/conformance/ENABLED`):
/// one name per line (a conformance program such as `process`, or
/// `issue3_workloads` for the issue-3 workloads in workloads.rs); blank lines
/// and `#` comments are ignored. The file is optional.
pub fn issue3_enabled_file() -> PathBuf {
    conformance_src_dir().join("ENABLED")
}

/// The names listed in [`issue3_enabled_file`] (empty if it doesn't exist).
pub fn issue3_enabled_list() -> Vec<String> {
    let text = std::fs::read_to_string(issue3_enabled_file()).unwrap_or_default();
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether the issue-3 test `name` should run under the sandbox:
/// `RUNSC_ISSUE3=1` enables all of them, otherwise `name` must be listed in
/// `tests/conformance/ENABLED`. (Native runs are never gated.)
pub fn issue3_enabled(name: &str) -> bool {
    if std::env::var(ISSUE3_ENV).is_ok_and(|v| v == "1") {
        return true;
    }
    issue3_enabled_list().iter().any(|n| n == name)
}

/// How a conformance program is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Static,
    Dynamic,
}

impl Link {
    pub const ALL: [Link; 2] = [Link::Static, Link::Dynamic];

    pub fn name(self) -> &'static str {
        match self {
            Link::Static => "static",
            Link::Dynamic => "dynamic",
        }
    }
}

/// Compiles `conformance/<name>.c` with gcc (`-O1 -Wall`, plus `-static` for
/// [`Link::Static`]) into `build_dir()/<name>.<static|dynamic>` and returns the
/// binary's absolute path. Panics with gcc's output on failure.
pub fn compile_c(name: &str, link: Link) -> PathBuf {
    let src = conformance_src_dir().join(format!("{name}.c"));
    compile_c_file(&src, &format!("{name}.{}", link.name()), link)
}

/// Compiles an arbitrary C file (e.g. from bench/) the same way.
pub fn compile_c_file(src: &Path, out_name: &str, link: Link) -> PathBuf {
    let out = build_dir().join(out_name);
    // Unique per call: two tests of one process may compile the same program.
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = build_dir().join(format!(".{out_name}.{}.{seq}.tmp", std::process::id()));
    let mut cmd = Command::new("gcc");
    cmd.arg("-O1")
        .arg("-Wall")
        .arg("-g")
        .arg("-I")
        .arg(conformance_src_dir());
    if link == Link::Static {
        cmd.arg("-static");
    }
    cmd.arg("-o").arg(&tmp).arg(src);
    let output = match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run gcc ({e}); install gcc and libc6-dev (`bash .ci/run` does)"),
    };
    if !output.status.success() {
        panic!(
            "gcc failed for {} ({}):\n{}{}",
            src.display(),
            link.name(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::rename(&tmp, &out)
        .unwrap_or_else(|e| panic!("rename {} -> {}: {e}", tmp.display(), out.display()));
    out
}

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    TimedOut,
}

impl Exit {
    /// Shell-style status: the exit code, or 128+signal (what `runsc do`
    /// returns when the workload is killed by a signal). TimedOut is -1.
    pub fn shell_code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
            Exit::TimedOut => -1,
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s} (status {})", 128 + s),
            Exit::TimedOut => write!(f, "TIMED OUT"),
        }
    }
}

/// Result of one run.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// The command line, for messages.
    pub cmdline: String,
    pub exit: Exit,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl RunOutput {
    /// The last non-empty line of stdout (the harness summary line).
    pub fn last_line(&self) -> Option<&str> {
        self.stdout.lines().rev().find(|l| !l.trim().is_empty())
    }

    /// A multi-line description (command, status, stdout, stderr) for failure
    /// messages; long outputs are cut in the middle.
    pub fn describe(&self) -> String {
        format!(
            "  $ {}\n  -> {} after {:.2}s\n  --- stdout ---\n{}  --- stderr ---\n{}",
            self.cmdline,
            self.exit,
            self.elapsed.as_secs_f64(),
            indent(&truncate(&self.stdout, 6000)),
            indent(&truncate(&self.stderr, 4000)),
        )
    }
}

fn indent(s: &str) -> String {
    let mut out = String::new();
    for l in s.lines() {
        out.push_str("  | ");
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// Keeps the start and the end of a long string.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut head = max / 2;
    while !s.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = s.len() - max / 2;
    while !s.is_char_boundary(tail) {
        tail += 1;
    }
    format!(
        "{}\n[... {} bytes cut ...]\n{}",
        &s[..head],
        tail - head,
        &s[tail..]
    )
}

/// A command line to run natively or in the sandbox.
#[derive(Clone, Debug)]
pub struct Cmd {
    pub argv: Vec<OsString>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub timeout: Duration,
}

impl Cmd {
    /// `argv[0]` should be an absolute path (the sandbox does no PATH lookup
    /// in the tests, and AT_EXECFN checks rely on it). Runs with [`CLEAN_ENV`]
    /// in `/`, stdin from /dev/null.
    pub fn new<I, S>(argv: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Cmd {
            argv: argv.into_iter().map(Into::into).collect(),
            env: CLEAN_ENV
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cwd: PathBuf::from("/"),
            timeout: TIMEOUT,
        }
    }

    /// Replaces the environment entirely.
    pub fn env_exact(mut self, env: &[(&str, &str)]) -> Cmd {
        self.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self
    }

    pub fn timeout(mut self, t: Duration) -> Cmd {
        self.timeout = t;
        self
    }

    fn cmdline(&self) -> String {
        self.argv
            .iter()
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs the command directly on the host.
    pub fn run_native(&self) -> RunOutput {
        let mut c = Command::new(&self.argv[0]);
        c.args(&self.argv[1..]);
        self.apply(&mut c);
        run_with_timeout(c, self.cmdline(), self.timeout)
    }

    /// Runs the command under `runsc [--platform=P] [flags] do -- argv...`.
    pub fn run_sandbox(&self, platform: &str) -> RunOutput {
        self.run_sandbox_with(platform, &[])
    }

    /// As [`Cmd::run_sandbox`], with extra global runsc flags (before `do`).
    pub fn run_sandbox_with(&self, platform: &str, flags: &[&str]) -> RunOutput {
        self.run_sandbox_do(platform, flags, &[])
    }

    /// As [`Cmd::run_sandbox_with`], plus flags of `do` itself (`--volume`, ...).
    pub fn run_sandbox_do(&self, platform: &str, flags: &[&str], do_flags: &[&str]) -> RunOutput {
        let runsc = runsc_bin();
        let mut args: Vec<OsString> = vec![format!("--platform={platform}").into()];
        args.extend(flags.iter().map(OsString::from));
        args.extend(extra_runsc_flags().into_iter().map(OsString::from));
        args.push("do".into());
        args.extend(do_flags.iter().map(OsString::from));
        args.push("--".into());
        args.extend(self.argv.iter().cloned());
        let mut c = Command::new(&runsc);
        c.args(&args);
        self.apply(&mut c);
        let cmdline = format!(
            "{} {}",
            runsc.display(),
            args.iter()
                .map(|a| shell_quote(&a.to_string_lossy()))
                .collect::<Vec<_>>()
                .join(" ")
        );
        run_with_timeout(c, cmdline, self.timeout)
    }

    fn apply(&self, c: &mut Command) {
        c.env_clear();
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.current_dir(&self.cwd);
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Spawns `c` in its own process group with stdin from /dev/null and
/// captured stdout/stderr; kills the whole group after `timeout`.
pub fn run_with_timeout(mut c: Command, cmdline: String, timeout: Duration) -> RunOutput {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let start = Instant::now();
    let mut child = match c.spawn() {
        Ok(ch) => ch,
        Err(e) => {
            return RunOutput {
                cmdline,
                exit: Exit::Code(-1),
                stdout: String::new(),
                stderr: format!("<test harness: spawn failed: {e}>"),
                elapsed: start.elapsed(),
            }
        }
    };
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel::<(u8, Vec<u8>)>();
    for (tag, stream) in [
        (
            1u8,
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ),
        (
            2u8,
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ),
    ] {
        let tx = tx.clone();
        if let Some(mut s) = stream {
            thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf);
                let _ = tx.send((tag, buf));
            });
        }
    }
    drop(tx);

    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) => {}
            Err(_) => break None,
        }
        if start.elapsed() >= timeout {
            timed_out = true;
            // SAFETY: plain kill(2) of the process group we created.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            break child.wait().ok();
        }
        thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();

    // Collect output. Helpers that escaped the process group could keep the
    // pipes open: don't wait for them forever.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(5);
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((1, b)) => out = b,
            Ok((_, b)) => err = b,
            Err(_) => {
                err.extend_from_slice(b"\n<test harness: output pipe still open 5s after exit>\n");
                break;
            }
        }
    }

    let exit = if timed_out {
        Exit::TimedOut
    } else {
        match status {
            Some(st) => match (st.code(), st.signal()) {
                (Some(c), _) => Exit::Code(c),
                (None, Some(s)) => Exit::Signal(s),
                _ => Exit::Code(-1),
            },
            None => Exit::Code(-1),
        }
    };
    RunOutput {
        cmdline,
        exit,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
        elapsed,
    }
}

/// Collects failures so that one test can report all of them at the end.
#[derive(Default)]
pub struct Failures(Vec<String>);

impl Failures {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, msg: impl Into<String>) {
        let m = msg.into();
        eprintln!("FAILURE: {m}");
        self.0.push(m);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Panics listing every failure, if there were any.
    pub fn check(self, what: &str) {
        if !self.0.is_empty() {
            panic!(
                "\n{} failure(s) in {what}:\n\n{}\n",
                self.0.len(),
                self.0.join("\n\n")
            );
        }
    }
}

/// Checks that a command that is expected to work does so natively: this
/// guards against tests that pass nowhere (and so test nothing).
pub fn expect_native_ok(out: &RunOutput, expected_code: i32, f: &mut Failures) -> bool {
    if out.exit != Exit::Code(expected_code) {
        f.add(format!(
            "NATIVE run did not give exit code {expected_code} (the test itself is broken \
             or the host lacks something):\n{}",
            out.describe()
        ));
        return false;
    }
    true
}
