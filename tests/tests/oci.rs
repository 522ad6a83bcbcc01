//! runsc as an OCI runtime: the container lifecycle (create, start, state,
//! kill, delete, run, wait, list) on a busybox bundle built in a temporary
//! directory under target/, with `--root` another temporary directory.
//!
//! Every test ends by checking that no sandbox or gofer process of its own
//! (found by its temporary directory in their command lines) and no state
//! directory remain.
//!
//! Needs: busybox-static (/bin/busybox); `bash .ci/run` installs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tests::{runsc_bin, target_dir};

const BUSYBOX_LINKS: &[&str] = &[
    "sh", "echo", "sleep", "cat", "ls", "touch", "true", "false", "grep", "mkdir", "id", "pwd",
];

/// A command's result.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// One test's temporary directory: a bundle (`b/`, rootfs `b/rootfs`) and the
/// state root (`state/`).
struct Env {
    dir: PathBuf,
    n: std::sync::atomic::AtomicU32,
}

impl Env {
    fn new(name: &str) -> Env {
        let p = Path::new("/bin/busybox");
        assert!(
            p.exists(),
            "/bin/busybox is missing: install the Debian package busybox-static"
        );
        let dir = target_dir()
            .join("oci-tests")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let bin = dir.join("b/rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(p, bin.join("busybox")).unwrap();
        for l in BUSYBOX_LINKS {
            std::os::unix::fs::symlink("busybox", bin.join(l)).unwrap();
        }
        std::fs::create_dir_all(dir.join("b/rootfs/tmp")).unwrap();
        std::fs::set_permissions(
            dir.join("b/rootfs/tmp"),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .unwrap();
        Env {
            dir,
            n: std::sync::atomic::AtomicU32::new(0),
        }
    }

    fn bundle(&self) -> PathBuf {
        self.dir.join("b")
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.join("b/rootfs")
    }

    fn state_root(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Writes config.json running `sh -c SCRIPT`, with `extra` JSON members
    /// (e.g. `,"mounts":[...]`) and root.readonly as given.
    fn config(&self, script: &str, readonly: bool, extra: &str) {
        let script = script.replace('\\', "\\\\").replace('"', "\\\"");
        self.raw_config(&format!(
            r#"{{"ociVersion":"1.0.2",
  "process":{{"args":["sh","-c","{script}"],"env":["PATH=/bin","HOME=/"],"cwd":"/",
              "user":{{"uid":0,"gid":0}}}},
  "root":{{"path":"rootfs","readonly":{readonly}}},
  "hostname":"oci-test"{extra}}}"#
        ));
    }

    fn raw_config(&self, text: &str) {
        std::fs::write(self.bundle().join("config.json"), text).unwrap();
    }

    /// Runs `runsc --root=<state> ARGS`, stdout and stderr to files (a
    /// created sandbox keeps them open), with a time limit.
    fn runsc(&self, args: &[&str]) -> Out {
        let n = self.n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let out = self.dir.join(format!("out.{n}"));
        let err = self.dir.join(format!("err.{n}"));
        let mut c = Command::new(runsc_bin());
        c.arg(format!("--root={}", self.state_root().display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        let mut child = c.spawn().expect("spawning runsc");
        let end = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                panic!("runsc {args:?} timed out");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Out {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&out).unwrap_or_default(),
            stderr: std::fs::read_to_string(&err).unwrap_or_default(),
        }
    }

    fn ok(&self, args: &[&str]) -> Out {
        let o = self.runsc(args);
        assert_eq!(o.code, 0, "runsc {args:?}: {o:?}");
        o
    }

    /// Expects failure with one line on stderr containing `want`.
    fn fails(&self, args: &[&str], want: &str) -> Out {
        let o = self.runsc(args);
        assert_ne!(o.code, 0, "runsc {args:?} should fail: {o:?}");
        assert!(
            o.stderr.contains(want),
            "runsc {args:?}: want {want:?}: {o:?}"
        );
        assert_eq!(o.stderr.trim_end().lines().count(), 1, "one line: {o:?}");
        o
    }

    fn create(&self, id: &str) -> Out {
        let b = self.bundle();
        self.ok(&["create", "--bundle", b.to_str().unwrap(), id])
    }

    fn status(&self, id: &str) -> String {
        let o = self.ok(&["state", id]);
        let i = o.stdout.find("\"status\": \"").expect("status in state") + 11;
        let rest = &o.stdout[i..];
        rest[..rest.find('"').unwrap()].to_string()
    }

    fn wait_status(&self, id: &str, want: &str) {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.status(id);
            if s == want {
                return;
            }
            assert!(Instant::now() < end, "{id}: status {s}, want {want}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Host processes whose command line mentions this test's directory.
    fn our_processes(&self) -> Vec<String> {
        let needle = self.dir.to_string_lossy().into_owned();
        let me = std::process::id().to_string();
        let mut v = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
                continue;
            }
            if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
                let c = String::from_utf8_lossy(&c).replace('\0', " ");
                if c.contains(&needle) {
                    v.push(format!("{name}: {c}"));
                }
            }
        }
        v
    }

    /// Checks that nothing is left behind, and removes the directory.
    fn finish(self) {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let p = self.our_processes();
            if p.is_empty() {
                break;
            }
            assert!(Instant::now() < end, "processes left behind: {p:#?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let left: Vec<_> = std::fs::read_dir(self.state_root())
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "state left behind: {left:?}");
        std::fs::remove_dir_all(&self.dir).unwrap();
    }
}

impl Drop for Env {
    /// Best effort after a failed assertion: end every container of this test.
    fn drop(&mut self) {
        if !self.dir.exists() {
            return;
        }
        if let Ok(d) = std::fs::read_dir(self.state_root()) {
            for e in d.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = Command::new(runsc_bin())
                    .arg(format!("--root={}", self.state_root().display()))
                    .args(["delete", "--force", &id])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let st = s.rsplit(')').next().unwrap_or("").trim_start();
            !st.starts_with('Z') && !st.starts_with('X')
        })
        .unwrap_or(false)
}

#[test]
fn lifecycle() {
    let env = Env::new("lifecycle");
    env.config("echo started; sleep 60", false, "");
    let b = env.bundle();
    let pidfile = env.dir.join("pid");
    env.ok(&[
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        "c1",
    ]);
    assert_eq!(env.status("c1"), "created");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid_alive(pid), "sandbox pid {pid} not alive");
    let st = env.ok(&["state", "c1"]).stdout;
    assert!(st.contains(&format!("\"pid\": {pid}")), "{st}");
    assert!(st.contains("\"id\": \"c1\""), "{st}");
    assert!(st.contains("\"ociVersion\""), "{st}");

    // A duplicate id is refused and leaves the first alone.
    env.fails(
        &["create", "--bundle", b.to_str().unwrap(), "c1"],
        "container with id exists: c1",
    );
    assert_eq!(env.status("c1"), "created");

    env.ok(&["start", "c1"]);
    assert_eq!(env.status("c1"), "running");
    env.fails(&["start", "c1"], "already running");
    env.fails(&["delete", "c1"], "not stopped");

    let list = env.ok(&["list"]).stdout;
    let header = list.lines().next().unwrap();
    for col in ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"] {
        assert!(header.contains(col), "{list}");
    }
    assert!(list.contains("c1") && list.contains("running"), "{list}");
    assert_eq!(env.ok(&["list", "-q"]).stdout, "c1\n");
    let json = env.ok(&["list", "--format", "json"]).stdout;
    assert!(json.contains("\"id\":\"c1\""), "{json}");

    env.ok(&["kill", "c1", "KILL"]);
    env.wait_status("c1", "stopped");
    assert!(!pid_alive(pid) || env.status("c1") == "stopped");
    env.fails(&["start", "c1"], "stopped");
    env.fails(&["kill", "c1"], "not running");
    env.ok(&["delete", "c1"]);
    env.fails(&["state", "c1"], "container \"c1\" does not exist");
    // The workload ran with the caller's stdout.
    assert!(
        std::fs::read_to_string(env.dir.join("out.0"))
            .unwrap()
            .contains("started"),
        "stdout of the container"
    );
    env.finish();
}

#[test]
fn kill_signals_and_wait() {
    let env = Env::new("killsig");
    env.config(
        "trap 'exit 42' TERM; while true; do sleep 0.05; done",
        false,
        "",
    );
    env.create("t1");
    env.ok(&["start", "t1"]);
    std::thread::sleep(Duration::from_millis(300));
    env.ok(&["kill", "t1", "SIGTERM"]);
    let w = env.runsc(&["wait", "t1"]);
    assert_eq!(w.code, 42, "{w:?}");
    assert!(w.stdout.contains("\"exitStatus\":42"), "{w:?}");
    env.wait_status("t1", "stopped");
    env.ok(&["delete", "t1"]);

    // wait on a container that exits by itself; numeric signal names.
    env.config("sleep 0.3; exit 7", false, "");
    env.create("t2");
    env.ok(&["start", "t2"]);
    assert_eq!(env.runsc(&["wait", "t2"]).code, 7);
    env.ok(&["delete", "t2"]);

    env.config("sleep 60", false, "");
    env.create("t3");
    env.fails(&["kill", "t3", "NOSUCHSIG"], "unknown signal");
    env.ok(&["start", "t3"]);
    env.ok(&["kill", "--all", "t3", "9"]);
    env.wait_status("t3", "stopped");
    env.ok(&["delete", "t3"]);
    env.finish();
}

#[test]
fn kill_and_delete_before_start() {
    let env = Env::new("created");
    env.config("echo should-not-run", false, "");
    env.create("k1");
    env.ok(&["kill", "k1", "KILL"]);
    env.wait_status("k1", "stopped");
    env.ok(&["delete", "k1"]);
    // A created container is deleted without --force (as runc does).
    env.create("k2");
    env.ok(&["delete", "k2"]);
    let out = std::fs::read_to_string(env.dir.join("out.0")).unwrap();
    assert!(!out.contains("should-not-run"), "{out}");
    env.finish();
}

#[test]
fn error_cases() {
    let env = Env::new("errors");
    for cmd in ["state", "start", "kill", "delete", "wait"] {
        env.fails(&[cmd, "nosuch"], "container \"nosuch\" does not exist");
    }
    env.fails(&["state", "a/b"], "invalid container id");
    env.fails(&["state", ".."], "invalid container id");
    // delete --force of a missing container succeeds, as with runc.
    env.ok(&["delete", "--force", "nosuch"]);
    env.fails(
        &["create", "--bundle", "/nonexistent-bundle-xyz", "x"],
        "bundle",
    );

    // A running container: delete needs --force.
    env.config("sleep 60", false, "");
    env.create("d1");
    env.ok(&["start", "d1"]);
    env.fails(
        &["delete", "d1"],
        "cannot delete container d1 that is not stopped",
    );
    assert_eq!(env.status("d1"), "running");
    env.ok(&["delete", "--force", "d1"]);
    env.fails(&["state", "d1"], "does not exist");

    // The sandbox killed from the host: stopped, and delete cleans up.
    env.create("d2");
    env.ok(&["start", "d2"]);
    let st = env.ok(&["state", "d2"]).stdout;
    let pid: i32 = st
        .split("\"pid\": ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap();
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    env.wait_status("d2", "stopped");
    env.ok(&["delete", "d2"]);
    env.finish();
}

#[test]
fn run_exit_status_and_stdout() {
    let env = Env::new("run");
    env.config(
        "echo out-$(cat /proc/sys/kernel/hostname); exit 3",
        false,
        "",
    );
    let b = env.bundle();
    let o = env.runsc(&["run", "--bundle", b.to_str().unwrap(), "r1"]);
    assert_eq!(o.code, 3, "{o:?}");
    assert!(o.stdout.contains("out-oci-test"), "{o:?}");
    env.config("exit 0", false, "");
    env.ok(&["run", "--bundle", b.to_str().unwrap(), "r1"]);
    // --detach: running in the background; cleaned up by delete --force.
    env.config("sleep 60", false, "");
    env.ok(&["run", "-d", "--bundle", b.to_str().unwrap(), "r2"]);
    assert_eq!(env.status("r2"), "running");
    env.ok(&["delete", "-f", "r2"]);
    env.finish();
}

#[test]
fn root_readonly_and_writable() {
    let env = Env::new("rootfs");
    let b = env.bundle();
    env.config(
        "echo data > /made-here && echo created; echo sub > /tmp/in-tmp",
        false,
        "",
    );
    let o = env.runsc(&["run", "--bundle", b.to_str().unwrap(), "w1"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        std::fs::read_to_string(env.rootfs().join("made-here")).unwrap(),
        "data\n"
    );
    assert_eq!(
        std::fs::read_to_string(env.rootfs().join("tmp/in-tmp")).unwrap(),
        "sub\n"
    );

    env.config("echo data > /ro-file; echo rc=$?", true, "");
    let o = env.runsc(&["run", "--bundle", b.to_str().unwrap(), "w2"]);
    assert!(o.stdout.contains("rc=1"), "{o:?}");
    assert!(o.stderr.contains("Read-only file system"), "{o:?}");
    assert!(!env.rootfs().join("ro-file").exists());
    env.finish();
}

#[test]
fn mounts_from_the_spec() {
    let env = Env::new("mounts");
    let b = env.bundle();
    let host_rw = env.dir.join("vol-rw");
    let host_ro = env.dir.join("vol-ro");
    std::fs::create_dir_all(&host_rw).unwrap();
    std::fs::create_dir_all(&host_ro).unwrap();
    std::fs::write(host_ro.join("hello"), "from host\n").unwrap();
    // A read-only root with a writable tmpfs and two bind mounts.
    env.config(
        "echo t > /scratch/f && cat /scratch/f && cat /ro/hello && echo w > /rw/out && \
         (echo x > /ro/nope || echo ro-refused)",
        true,
        &format!(
            r#","mounts":[
  {{"destination":"/proc","type":"proc","source":"proc"}},
  {{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","mode=755"]}},
  {{"destination":"/dev/pts","type":"devpts","source":"devpts"}},
  {{"destination":"/scratch","type":"tmpfs","source":"tmpfs","options":["size=1m","mode=1777"]}},
  {{"destination":"/rw","type":"bind","source":"{}","options":["rbind","rw"]}},
  {{"destination":"/ro","type":"bind","source":"{}","options":["rbind","ro"]}}]"#,
            host_rw.display(),
            host_ro.display()
        ),
    );
    let o = env.runsc(&["run", "--bundle", b.to_str().unwrap(), "m1"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("t\nfrom host\n"), "{o:?}");
    assert!(o.stdout.contains("ro-refused"), "{o:?}");
    assert_eq!(std::fs::read_to_string(host_rw.join("out")).unwrap(), "w\n");
    assert!(!host_ro.join("nope").exists());
    assert!(!env.rootfs().join("scratch/f").exists());
    env.finish();
}

#[test]
fn bad_config() {
    let env = Env::new("badcfg");
    let b = env.bundle();
    let b = b.to_str().unwrap();
    let cases: &[(&str, &str)] = &[
        ("{not json", "invalid JSON"),
        (
            r#"{"ociVersion":"2.0.0","process":{"args":["sh"]},"root":{"path":"rootfs"}}"#,
            "ociVersion",
        ),
        (
            r#"{"ociVersion":"1.0.2","process":{"cwd":"/"},"root":{"path":"rootfs"}}"#,
            "process.args",
        ),
        (
            r#"{"ociVersion":"1.0.2","process":{"args":["sh"]},"root":{"path":"nosuchdir"}}"#,
            "root.path",
        ),
        (
            r#"{"ociVersion":"1.0.2","process":{"args":["sh"]}}"#,
            "root",
        ),
        (
            r#"{"ociVersion":"1.0.2","process":{"args":["sh"]},"root":{"path":"rootfs"},
                "mounts":[{"destination":"/x","type":"nfs4","source":"h:/x"}]}"#,
            "mounts[0].type",
        ),
        (
            r#"{"ociVersion":"1.0.2","process":{"args":["sh"],"user":{"uid":"root"}},
                "root":{"path":"rootfs"}}"#,
            "process.user.uid",
        ),
        (
            r#"{"ociVersion":"1.0.2","process":{"args":["/bin/nonexistent"]},"root":{"path":"rootfs"}}"#,
            "nonexistent",
        ),
    ];
    // No config.json, and one that is not a regular file.
    env.fails(&["create", "--bundle", b, "bad"], "config.json");
    std::os::unix::fs::symlink("/dev/zero", env.bundle().join("config.json")).unwrap();
    env.fails(&["create", "--bundle", b, "bad"], "not a regular file");
    std::fs::remove_file(env.bundle().join("config.json")).unwrap();
    for (text, want) in cases {
        env.raw_config(text);
        env.fails(&["create", "--bundle", b, "bad"], want);
        assert!(
            !env.state_root().join("bad").exists(),
            "a failed create left its state for {want}"
        );
    }
    env.finish();
}

#[test]
fn concurrent_commands_are_serialised() {
    let env = Env::new("concurrent");
    env.config("sleep 60", false, "");
    env.create("s1");
    let results: Vec<Out> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|_| sc.spawn(|| env.runsc(&["start", "s1"])))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = results.iter().filter(|o| o.code == 0).count();
    assert_eq!(ok, 1, "exactly one start succeeds: {results:?}");
    for o in results.iter().filter(|o| o.code != 0) {
        assert!(o.stderr.contains("already running"), "{o:?}");
    }
    assert_eq!(env.status("s1"), "running");
    // Concurrent deletes: one removes it, the others find nothing.
    let results: Vec<Out> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..3)
            .map(|_| sc.spawn(|| env.runsc(&["delete", "--force", "s1"])))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.iter().all(|o| o.code == 0), "{results:?}");
    env.fails(&["state", "s1"], "does not exist");
    env.finish();
}

#[test]
fn long_state_root() {
    // Longer than a socket address can hold (containerd's roots are).
    let env = Env::new("longroot");
    let root = env.dir.join("r".repeat(60)).join("s".repeat(60));
    env.config("echo long-ok", false, "");
    let id = "x".repeat(64);
    let out = Command::new(runsc_bin())
        .arg(format!("--root={}", root.display()))
        .args(["run", "--bundle", env.bundle().to_str().unwrap(), &id])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "long-ok\n");
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    env.finish();
}

#[test]
fn process_fields_from_the_spec() {
    let env = Env::new("process");
    env.raw_config(
        r#"{"ociVersion":"1.0.2",
  "process":{"args":["sh","-c","id; echo foo=$FOO; pwd; umask; cat /proc/sys/kernel/hostname; touch /tmp/u"],
             "env":["PATH=/bin","FOO=bar baz"],"cwd":"/tmp",
             "user":{"uid":1000,"gid":1001,"additionalGids":[5,6],"umask":63}},
  "root":{"path":"rootfs"},"hostname":"myhost","annotations":{"org.example":"v"}}"#,
    );
    let o = env.runsc(&["run", "--bundle", env.bundle().to_str().unwrap(), "p1"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        o.stdout, "uid=1000 gid=1001 groups=5,6\nfoo=bar baz\n/tmp\n0077\nmyhost\n",
        "{o:?}"
    );
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(env.rootfs().join("tmp/u")).unwrap();
    assert_eq!(m.mode() & 0o777, 0o600);
    // A missing process.cwd is made, as runc does.
    env.raw_config(
        r#"{"ociVersion":"1.0.2","process":{"args":["sh","-c","pwd"],"cwd":"/work/dir"},
            "root":{"path":"rootfs"}}"#,
    );
    let o = env.runsc(&["run", "--bundle", env.bundle().to_str().unwrap(), "p2"]);
    assert_eq!(o.stdout, "/work/dir\n", "{o:?}");
    assert!(env.rootfs().join("work/dir").is_dir());
    env.finish();
}

/// Waits until `f` holds (10 s at most).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn exec_and_ps() {
    let env = Env::new("exec");
    env.config("sleep 100", false, "");
    env.create("e1");
    env.ok(&["start", "e1"]);

    // Output and exit status.
    let o = env.runsc(&["exec", "e1", "sh", "-c", "echo hi; echo err >&2; exit 3"]);
    assert_eq!(o.code, 3, "{o:?}");
    assert_eq!(o.stdout, "hi\n", "{o:?}");
    assert_eq!(o.stderr, "err\n", "{o:?}");
    // Killed by a signal: 128+N.
    let o = env.runsc(&["exec", "e1", "sh", "-c", "kill -9 $$"]);
    assert_eq!(o.code, 137, "{o:?}");

    // Environment (the spec's plus --env), cwd and user.
    let o = env.ok(&[
        "exec",
        "-e",
        "FOO=bar",
        "--env=BAZ=q",
        "--cwd",
        "/tmp",
        "-u",
        "1000:1001",
        "e1",
        "sh",
        "-c",
        "echo $FOO $BAZ $HOME $(pwd) $(id -u) $(id -g)",
    ]);
    assert_eq!(o.stdout, "bar q / /tmp 1000 1001\n", "{o:?}");

    // --process, as runc's process.json.
    let pj = env.dir.join("process.json");
    std::fs::write(
        &pj,
        r#"{"args":["sh","-c","echo $X $(pwd) $(id -u):$(id -g); exit 4"],"env":["PATH=/bin","X=y"],
            "cwd":"/bin","user":{"uid":7,"gid":8}}"#,
    )
    .unwrap();
    let o = env.runsc(&["exec", "--process", pj.to_str().unwrap(), "e1"]);
    assert_eq!((o.code, o.stdout.as_str()), (4, "y /bin 7:8\n"), "{o:?}");
    std::fs::write(&pj, r#"{"args":["sh"],"cwd":"relative"}"#).unwrap();
    env.fails(&["exec", "--process", pj.to_str().unwrap(), "e1"], "cwd");
    std::fs::write(&pj, r#"{"args":"sh"}"#).unwrap();
    env.fails(
        &["exec", "--process", pj.to_str().unwrap(), "e1"],
        "process.args",
    );

    // Errors.
    let o = env.fails(&["exec", "e1", "nosuchcmd"], "executable file not found");
    assert_eq!(o.code, 127, "{o:?}");
    env.fails(&["exec", "--cwd", "/nonexistent", "e1", "true"], "cwd");
    env.fails(
        &["exec", "--tty", "e1", "sh"],
        "exec --tty: not supported yet",
    );
    env.fails(&["exec", "nosuch", "true"], "does not exist");
    env.fails(&["exec", "e1"], "arguments cannot be empty");

    // --detach returns at once; the pid file names a host process that lives
    // as long as the exec'd one.
    let pidfile = env.dir.join("exec.pid");
    let t = Instant::now();
    env.ok(&[
        "exec",
        "--detach",
        "--pid-file",
        pidfile.to_str().unwrap(),
        "e1",
        "sleep",
        "3",
    ]);
    assert!(t.elapsed() < Duration::from_secs(2));
    let waiter: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid_alive(waiter), "exec waiter {waiter}");

    // ps: init and the exec'd sleep, as the workload sees them.
    let o = env.ok(&["ps", "e1"]);
    let header = o.stdout.lines().next().unwrap();
    for col in ["UID", "PID", "PPID", "STIME", "TIME", "CMD"] {
        assert!(header.contains(col), "{o:?}");
    }
    assert!(o.stdout.lines().any(|l| l.ends_with("sleep 100")), "{o:?}");
    let sleeper = o
        .stdout
        .lines()
        .find(|l| l.ends_with("sleep 3"))
        .unwrap_or_else(|| panic!("no exec'd sleep: {o:?}"));
    let cols: Vec<&str> = sleeper.split_whitespace().collect();
    assert_eq!(cols[2], "0", "exec'd process has no parent inside: {o:?}");
    let o = env.ok(&["ps", "--format", "json", "e1"]);
    let pids: Vec<i32> = serde_json::from_str(o.stdout.trim()).expect("json array");
    assert!(pids.contains(&1) && pids.len() >= 2, "{o:?}");
    env.fails(&["ps", "--format", "yaml", "e1"], "invalid format");

    // The waiter exits with the process.
    eventually("exec --detach waiter exits", || !pid_alive(waiter));

    env.ok(&["kill", "e1", "KILL"]);
    env.wait_status("e1", "stopped");
    env.fails(&["exec", "e1", "true"], "stopped");
    env.fails(&["ps", "e1"], "not running");
    env.ok(&["delete", "e1"]);
    env.finish();
}

/// The counter the pause test's workload writes.
fn read_counter(p: &Path) -> u64 {
    let mut last = 0;
    for _ in 0..50 {
        if let Ok(s) = std::fs::read_to_string(p) {
            if let Ok(n) = s.trim().parse() {
                return n;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
        last += 1;
    }
    panic!("no counter in {} after {last} tries", p.display());
}

#[test]
fn pause_resume_and_events() {
    let env = Env::new("pause");
    env.config(
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/c.new; busybox mv /tmp/c.new /tmp/c; sleep 0.02; done",
        false,
        "",
    );
    env.create("p1");
    env.fails(&["pause", "p1"], "not running");
    env.ok(&["start", "p1"]);
    let counter = env.rootfs().join("tmp/c");
    eventually("the counter starts", || counter.exists());

    // events --stats: runc's shape.
    let o = env.ok(&["events", "--stats", "p1"]);
    let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).expect("json");
    assert_eq!(v["type"], "stats", "{o:?}");
    assert_eq!(v["id"], "p1", "{o:?}");
    assert!(v["data"]["pids"]["current"].as_u64().unwrap() >= 1, "{o:?}");
    assert!(
        v["data"]["cpu"]["usage"]["total"].as_u64().is_some(),
        "{o:?}"
    );
    assert!(
        v["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{o:?}"
    );

    env.ok(&["pause", "p1"]);
    assert_eq!(env.status("p1"), "paused");
    env.fails(&["pause", "p1"], "already paused");
    env.fails(&["exec", "p1", "true"], "paused");
    env.fails(&["delete", "p1"], "paused");
    // Let whatever was in flight land, then the counter stands still.
    std::thread::sleep(Duration::from_millis(300));
    let a = read_counter(&counter);
    std::thread::sleep(Duration::from_millis(800));
    let b = read_counter(&counter);
    assert_eq!(a, b, "the counter advanced while paused");
    // ps and events still answer.
    assert!(env.ok(&["ps", "p1"]).stdout.contains("sh -c"));

    env.ok(&["resume", "p1"]);
    assert_eq!(env.status("p1"), "running");
    env.fails(&["resume", "p1"], "not paused");
    eventually("the counter advances after resume", || {
        read_counter(&counter) > b
    });

    // Streaming events end when the container stops.
    let mut c = Command::new(tests::runsc_bin());
    c.arg(format!("--root={}", env.state_root().display()))
        .args(["events", "--interval", "100ms", "p1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(350));
    env.ok(&["kill", "p1", "KILL"]);
    env.wait_status("p1", "stopped");
    eventually("events exits", || child.try_wait().unwrap().is_some());
    let mut text = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut text).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2, "{text}");
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).expect("json line");
        assert_eq!(v["type"], "stats");
    }
    env.ok(&["delete", "p1"]);
    env.finish();
}

#[test]
fn pause_then_kill() {
    let env = Env::new("pausekill");
    env.config("sleep 100", false, "");
    env.create("k1");
    env.ok(&["start", "k1"]);
    env.ok(&["pause", "k1"]);
    // A paused container still dies by SIGKILL, and delete --force cleans it.
    env.ok(&["kill", "k1", "KILL"]);
    env.wait_status("k1", "stopped");
    env.ok(&["delete", "k1"]);
    env.create("k2");
    env.ok(&["start", "k2"]);
    env.ok(&["pause", "k2"]);
    env.ok(&["delete", "--force", "k2"]);
    env.finish();
}

#[test]
fn exec_signals() {
    let env = Env::new("execsig");
    env.config("sleep 100", false, "");
    env.create("s1");
    env.ok(&["start", "s1"]);
    // Signals to a foreground `runsc exec` reach the process.
    let mut c = Command::new(tests::runsc_bin());
    c.arg(format!("--root={}", env.state_root().display()))
        .args([
            "exec",
            "s1",
            "sh",
            "-c",
            "trap 'exit 7' TERM; echo ready; while true; do sleep 0.05; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "ready\n");
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let end = Instant::now() + Duration::from_secs(10);
    let st = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "exec did not end after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(st.code(), Some(7));

    // Killing a detached exec's waiter (the pid file's process) ends the
    // process in the sandbox.
    let pidfile = env.dir.join("w.pid");
    env.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pidfile.to_str().unwrap(),
        "s1",
        "sleep",
        "77",
    ]);
    assert!(env.ok(&["ps", "s1"]).stdout.contains("sleep 77"));
    let waiter: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: the waiter is a process of this test.
    unsafe { libc::kill(waiter, libc::SIGKILL) };
    eventually("the exec'd process ends with its waiter", || {
        !env.ok(&["ps", "s1"]).stdout.contains("sleep 77")
    });
    env.ok(&["kill", "s1", "KILL"]);
    env.wait_status("s1", "stopped");
    env.ok(&["delete", "s1"]);
    env.finish();
}
