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

use tests::{all_platforms, runsc_bin, target_dir};

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

/// `run`, `run -d` + `exec` + `delete` with each platform as the global flag
/// (the sandbox keeps its platform: `exec` names none).
#[test]
fn run_and_exec_on_every_platform() {
    let env = Env::new("plat");
    let b = env.bundle();
    let b = b.to_str().unwrap();
    for p in all_platforms() {
        let flag = format!("--platform={p}");
        env.config(
            "echo out-$(cat /proc/sys/kernel/hostname); exit 3",
            false,
            "",
        );
        let o = env.runsc(&[&flag, "run", "--bundle", b, "p1"]);
        assert_eq!(o.code, 3, "{p}: {o:?}");
        assert!(o.stdout.contains("out-oci-test"), "{p}: {o:?}");
        env.config("sleep 60", false, "");
        env.ok(&[&flag, "run", "-d", "--bundle", b, "p2"]);
        let o = env.runsc(&["exec", "p2", "sh", "-c", "echo in-$(hostname); exit 4"]);
        assert_eq!(o.code, 4, "{p}: {o:?}");
        assert!(o.stdout.contains("in-oci-test"), "{p}: {o:?}");
        env.ok(&["delete", "-f", "p2"]);
    }
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
  "process":{"args":["sh","-c","id; echo foo=$FOO; pwd; umask; cat /proc/sys/kernel/hostname; cat /proc/sys/kernel/domainname; uname -n; touch /tmp/u"],
             "env":["PATH=/bin","FOO=bar baz"],"cwd":"/tmp",
             "user":{"uid":1000,"gid":1001,"additionalGids":[5,6],"umask":63}},
  "root":{"path":"rootfs"},"hostname":"myhost","domainname":"example.org",
  "annotations":{"org.example":"v"}}"#,
    );
    let o = env.runsc(&["run", "--bundle", env.bundle().to_str().unwrap(), "p1"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        o.stdout,
        "uid=1000 gid=1001 groups=5,6\nfoo=bar baz\n/tmp\n0077\nmyhost\nexample.org\nmyhost\n",
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

/// A hook running `sh -c SCRIPT` on the host (JSON text of one hook).
fn sh_hook(script: &str, extra: &str) -> String {
    let script = script.replace('\\', "\\\\").replace('"', "\\\"");
    format!(r#"{{"path":"/bin/sh","args":["sh","-c","{script}"]{extra}}}"#)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn hooks_run_on_the_host_with_the_state() {
    let env = Env::new("hooks");
    let d = env.dir.display().to_string();
    // Each hook saves its stdin (the state) and appends its kind to `order`.
    let hook = |kind: &str| {
        sh_hook(
            &format!("cat > {d}/{kind}.json; echo {kind}$HOOKVAR >> {d}/order"),
            r#","env":["HOOKVAR=-env"],"timeout":20"#,
        )
    };
    let kinds = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ];
    let hooks: Vec<String> = kinds
        .iter()
        .map(|k| format!("\"{k}\":[{}]", hook(k)))
        .collect();
    env.config(
        "echo running; sleep 60",
        false,
        &format!(r#","hooks":{{{}}}"#, hooks.join(",")),
    );
    env.create("h1");
    assert_eq!(
        read(&env.dir.join("order")),
        "prestart-env\ncreateRuntime-env\ncreateContainer-env\n"
    );
    let pid = env.ok(&["state", "h1"]).stdout;
    let pid: i32 = pid
        .split("\"pid\": ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap();
    for k in ["prestart", "createRuntime", "createContainer"] {
        let st = read(&env.dir.join(format!("{k}.json")));
        assert!(st.contains("\"status\":\"creating\""), "{k}: {st}");
        assert!(st.contains("\"id\":\"h1\""), "{k}: {st}");
        assert!(st.contains(&format!("\"pid\":{pid}")), "{k}: {st}");
        assert!(st.contains("\"bundle\":"), "{k}: {st}");
    }
    env.ok(&["start", "h1"]);
    let st = read(&env.dir.join("startContainer.json"));
    assert!(st.contains("\"status\":\"created\""), "{st}");
    let st = read(&env.dir.join("poststart.json"));
    assert!(st.contains("\"status\":\"running\""), "{st}");
    assert!(!env.dir.join("poststop.json").exists());
    // Let init print before it is killed (the check at the end reads it).
    eventually("init's output", || {
        read(&env.dir.join("out.0")).contains("running")
    });
    env.ok(&["kill", "h1", "KILL"]);
    env.wait_status("h1", "stopped");
    env.ok(&["delete", "h1"]);
    let st = read(&env.dir.join("poststop.json"));
    assert!(st.contains("\"status\":\"stopped\""), "{st}");
    assert_eq!(
        read(&env.dir.join("order")),
        "prestart-env\ncreateRuntime-env\ncreateContainer-env\nstartContainer-env\n\
         poststart-env\npoststop-env\n"
    );

    // A failing createRuntime hook fails create (naming it), leaves nothing,
    // and the poststop hooks run.
    let _ = std::fs::remove_file(env.dir.join("poststop.json"));
    let b = env.bundle();
    let b = b.to_str().unwrap();
    env.config(
        "echo should-not-run",
        false,
        &format!(
            r#","hooks":{{"createRuntime":[{}],"createContainer":[{}],"poststop":[{}]}}"#,
            sh_hook("echo no network here >&2; exit 3", ""),
            sh_hook(&format!("touch {d}/not-reached"), ""),
            hook("poststop"),
        ),
    );
    env.fails(&["create", "--bundle", b, "h2"], "createRuntime hook #0");
    let o = env.fails(&["create", "--bundle", b, "h2"], "no network here");
    assert!(o.stderr.contains("exit status 3"), "{o:?}");
    assert!(!env.state_root().join("h2").exists());
    assert!(!env.dir.join("not-reached").exists());
    assert!(env.dir.join("poststop.json").exists());

    // A hook that outlives its timeout is killed and fails create.
    env.config(
        "true",
        false,
        &format!(
            r#","hooks":{{"prestart":[{}]}}"#,
            sh_hook("sleep 30", r#","timeout":1"#)
        ),
    );
    let t = Instant::now();
    env.fails(
        &["create", "--bundle", b, "h3"],
        "prestart hook #0 (/bin/sh): timed out",
    );
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(!env.state_root().join("h3").exists());

    // Failing poststart and poststop hooks are logged; start and delete work.
    let log = env.dir.join("runsc.log");
    let log_arg = format!("--log={}", log.display());
    env.config(
        "sleep 60",
        false,
        &format!(
            r#","hooks":{{"poststart":[{}],"poststop":[{}]}}"#,
            sh_hook("exit 1", ""),
            sh_hook("exit 2", "")
        ),
    );
    env.ok(&[&log_arg, "create", "--bundle", b, "h4"]);
    env.ok(&[&log_arg, "start", "h4"]);
    assert_eq!(env.status("h4"), "running");
    env.ok(&[&log_arg, "delete", "--force", "h4"]);
    let l = read(&log);
    assert!(l.contains("poststart hook #0"), "{l}");
    assert!(l.contains("poststop hook #0"), "{l}");

    // A hook with a relative path is a config error.
    env.config(
        "true",
        false,
        r#","hooks":{"poststop":[{"path":"bin/true"}]}"#,
    );
    env.fails(&["create", "--bundle", b, "h5"], "hooks.poststop[0].path");
    let out = read(&env.dir.join("out.0"));
    assert!(out.contains("running"), "{out}");
    env.finish();
}

#[test]
fn rlimits_and_sysctl() {
    let env = Env::new("rlimits");
    let b = env.bundle();
    let b = b.to_str().unwrap();
    env.raw_config(
        r#"{"ociVersion":"1.0.2",
  "process":{"args":["sh","-c","ulimit -n; ulimit -Hn; ulimit -c; cat /proc/sys/kernel/hostname /proc/sys/net/ipv4/ping_group_range"],
             "env":["PATH=/bin"],"cwd":"/",
             "rlimits":[{"type":"RLIMIT_NOFILE","soft":123,"hard":456},
                        {"type":"RLIMIT_CORE","soft":0,"hard":0}]},
  "root":{"path":"rootfs"},"hostname":"from-spec",
  "linux":{"sysctl":{"kernel.hostname":"from-sysctl","net.ipv4.ip_forward":"1",
                     "net.ipv4.ping_group_range":"0 2147483647"}}}"#,
    );
    let o = env.runsc(&["run", "--bundle", b, "r1"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        o.stdout, "123\n456\n0\nfrom-sysctl\n0\t2147483647\n",
        "{o:?}"
    );
    env.raw_config(
        r#"{"ociVersion":"1.0.2","process":{"args":["true"],
             "rlimits":[{"type":"RLIMIT_BOGUS","soft":1,"hard":1}]},"root":{"path":"rootfs"}}"#,
    );
    env.fails(
        &["create", "--bundle", b, "r2"],
        "process.rlimits[0].type: unknown rlimit type \"RLIMIT_BOGUS\"",
    );
    env.raw_config(
        r#"{"ociVersion":"1.0.2","process":{"args":["true"],
             "rlimits":[{"type":"RLIMIT_NOFILE","soft":10,"hard":1}]},"root":{"path":"rootfs"}}"#,
    );
    env.fails(&["create", "--bundle", b, "r2"], "process.rlimits[0]");
    assert!(!env.state_root().join("r2").exists());
    env.finish();
}

#[test]
fn masked_and_readonly_paths() {
    let env = Env::new("maskedpaths");
    let r = env.rootfs();
    std::fs::write(r.join("secret"), "s3cret\n").unwrap();
    std::fs::create_dir_all(r.join("secretdir")).unwrap();
    std::fs::write(r.join("secretdir/f"), "hidden\n").unwrap();
    std::fs::create_dir_all(r.join("rodir")).unwrap();
    std::fs::write(r.join("rodir/f"), "keep\n").unwrap();
    std::fs::write(r.join("rofile"), "keep too\n").unwrap();
    env.config(
        "echo \"[$(cat /secret)]\"; echo \"[$(ls -A /secretdir)]\"; \
         touch /secretdir/x 2>/dev/null || echo masked-ro; \
         cat /rodir/f; touch /rodir/x 2>&1 || echo rodir-refused; \
         echo y > /rodir/f || echo rofile-refused; \
         echo z > /rofile || echo rofile2-refused; \
         cat /proc/sys/kernel/hostname; echo w > /tmp/w && echo tmp-ok",
        false,
        // With Docker's default lists, as engines pass them.
        r#","linux":{"maskedPaths":["/secret","/secretdir","/no/such/path",
                    "/proc/asound","/proc/acpi","/proc/kcore","/proc/keys","/proc/latency_stats",
                    "/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/proc/scsi",
                    "/sys/firmware","/sys/devices/virtual/powercap"],
                    "readonlyPaths":["/rodir","/rofile","/no/such/dir","/proc/bus","/proc/fs","/proc/irq",
                    "/proc/sys","/proc/sysrq-trigger"]}"#,
    );
    let o = env.runsc(&["run", "--bundle", env.bundle().to_str().unwrap(), "mp1"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.starts_with("[]\n[]\nmasked-ro\nkeep\n"), "{o:?}");
    assert!(o.stdout.contains("Read-only file system"), "{o:?}");
    assert!(o.stdout.contains("rodir-refused"), "{o:?}");
    assert!(o.stdout.contains("rofile-refused"), "{o:?}");
    assert!(o.stdout.contains("rofile2-refused"), "{o:?}");
    assert!(o.stdout.contains("oci-test\ntmp-ok\n"), "{o:?}");
    // The host's files are untouched.
    assert_eq!(read(&r.join("secret")), "s3cret\n");
    assert_eq!(read(&r.join("rodir/f")), "keep\n");
    assert_eq!(read(&r.join("rofile")), "keep too\n");
    assert!(!r.join("rodir/x").exists());
    assert!(!r.join("secretdir/x").exists());
    env.config("true", false, r#","linux":{"maskedPaths":["relative"]}"#);
    env.fails(
        &["create", "--bundle", env.bundle().to_str().unwrap(), "mp2"],
        "linux.maskedPaths[0]",
    );
    env.finish();
}

/// The host cgroup (v2 or v1) directory of `path` for `controller`.
fn cgroup_dir(controller: &str, path: &str) -> PathBuf {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        root.join(path)
    } else {
        root.join(controller).join(path)
    }
}

#[test]
fn resources_in_the_host_cgroup() {
    // Needs writable cgroups (root): probe with this test's own directory.
    let top = format!("runsc-oci-test-{}", std::process::id());
    let probe = cgroup_dir("pids", &top);
    if std::fs::create_dir(&probe).is_err() {
        eprintln!(
            "SKIPPED resources_in_the_host_cgroup: cannot make {} (cgroups not writable here)",
            probe.display()
        );
        return;
    }
    let _ = std::fs::remove_dir(&probe);
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let env = Env::new("cgroup");
    let path = format!("{top}/c1");
    env.config(
        "echo in-cgroup; sleep 60",
        false,
        &format!(
            r#","linux":{{"cgroupsPath":"/{path}","resources":{{
                "memory":{{"limit":1073741824}},
                "cpu":{{"shares":512,"quota":50000,"period":100000}},
                "pids":{{"limit":300}},
                "devices":[{{"allow":false,"access":"rwm"}}]}}}}"#
        ),
    );
    env.create("cg1");
    let st = env.ok(&["state", "cg1"]).stdout;
    let pid: String = st
        .split("\"pid\": ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap()
        .trim()
        .to_string();
    let f = |c: &str, file: &str| read(&cgroup_dir(c, &path).join(file)).trim().to_string();
    assert_eq!(f("pids", "pids.max"), "300");
    if v2 {
        assert_eq!(f("memory", "memory.max"), "1073741824");
        assert_eq!(f("cpu", "cpu.max"), "50000 100000");
    } else {
        assert_eq!(f("memory", "memory.limit_in_bytes"), "1073741824");
        assert_eq!(f("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(f("cpu", "cpu.shares"), "512");
    }
    // The sandbox and its gofer are in it; this test's process is not.
    let procs = f("pids", "cgroup.procs");
    assert!(procs.lines().any(|l| l == pid), "{pid} in {procs}");
    assert!(procs.lines().count() >= 2, "{procs}");
    assert!(
        !procs.lines().any(|l| l == std::process::id().to_string()),
        "{procs}"
    );
    // runsc update (docker update, containerd's Update): flags, a resources
    // file, stdin; only the limits given change.
    env.ok(&["update", "--memory", "64m", "--pids-limit", "33", "cg1"]);
    assert_eq!(f("pids", "pids.max"), "33");
    let (mem, quota) = if v2 {
        ("memory.max", ("cpu.max", "50000 100000"))
    } else {
        ("memory.limit_in_bytes", ("cpu.cfs_quota_us", "50000"))
    };
    assert_eq!(f("memory", mem), "67108864");
    assert_eq!(f("cpu", quota.0), quota.1, "cpu untouched");
    let res = env.dir.join("res.json");
    std::fs::write(
        &res,
        r#"{"pids":{"limit":44},"cpu":{"quota":20000,"period":100000}}"#,
    )
    .unwrap();
    env.ok(&["update", "--resources", res.to_str().unwrap(), "cg1"]);
    assert_eq!(f("pids", "pids.max"), "44");
    assert_eq!(f("cpu", quota.0), if v2 { "20000 100000" } else { "20000" });
    let mut c = Command::new(runsc_bin())
        .arg(format!("--root={}", env.state_root().display()))
        .args(["update", "--resources", "-", "cg1"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(c.stdin.as_mut().unwrap(), br#"{"pids":{"limit":55}}"#).unwrap();
    drop(c.stdin.take());
    assert!(c.wait().unwrap().success());
    assert_eq!(f("pids", "pids.max"), "55");
    env.fails(&["update", "--memory", "lots", "cg1"], "--memory");
    env.fails(&["update", "--pids-limit", "1", "nosuch"], "does not exist");
    env.ok(&["start", "cg1"]);
    eventually("init's output", || {
        read(&env.dir.join("out.0")).contains("in-cgroup")
    });
    env.ok(&["kill", "cg1", "KILL"]);
    env.wait_status("cg1", "stopped");
    env.ok(&["delete", "cg1"]);
    for c in ["pids", "memory", "cpu"] {
        assert!(
            !cgroup_dir(c, &top).exists(),
            "{} left behind",
            cgroup_dir(c, &top).display()
        );
    }
    assert!(read(&env.dir.join("out.0")).contains("in-cgroup"));
    // `run` (which stays in the foreground) leaves the cgroup to the
    // sandbox: delete removes it.
    env.config(
        "echo ran-in-cgroup",
        false,
        &format!(r#","linux":{{"cgroupsPath":"/{path}","resources":{{"pids":{{"limit":200}}}}}}"#),
    );
    let o = env.runsc(&["run", "--bundle", env.bundle().to_str().unwrap(), "cg3"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, "ran-in-cgroup\n", "{o:?}");
    assert!(!cgroup_dir("pids", &top).exists(), "left behind after run");
    // A bad limit fails create and leaves no cgroup behind.
    env.config(
        "true",
        false,
        &format!(
            r#","linux":{{"cgroupsPath":"/{path}","resources":{{"cpu":{{"cpus":"100000"}}}}}}"#
        ),
    );
    env.fails(
        &["create", "--bundle", env.bundle().to_str().unwrap(), "cg2"],
        "linux.resources.cpu.cpus",
    );
    for c in ["pids", "memory", "cpu", "cpuset"] {
        assert!(!cgroup_dir(c, &top).exists(), "{c} left behind");
    }
    env.finish();
}

// ---- process.terminal, file bind mounts, `runsc spec` + `runsc run` ----

/// Accepts one connection on `l` and receives the fd and message sent on it
/// with SCM_RIGHTS (what an engine's console socket gets from runc).
fn recv_fd(l: &std::os::unix::net::UnixListener) -> (std::os::fd::OwnedFd, String) {
    use std::os::fd::{AsRawFd, FromRawFd};
    l.set_nonblocking(true).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let s = loop {
        match l.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < end,
                    "nothing connected to the console socket"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut name = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: name.as_mut_ptr() as *mut libc::c_void,
        iov_len: name.len(),
    };
    let mut cbuf = [0u64; 16];
    // SAFETY: msghdr is plain data; the buffers outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    // SAFETY: valid msghdr.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert!(n > 0, "recvmsg: {}", std::io::Error::last_os_error());
    // SAFETY: the kernel filled the control buffer.
    let fd = unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        assert!(!c.is_null(), "no fd received");
        assert_eq!((*c).cmsg_level, libc::SOL_SOCKET);
        assert_eq!((*c).cmsg_type, libc::SCM_RIGHTS);
        std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const i32)
    };
    // SAFETY: a fresh fd from the kernel, ours now.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    (
        fd,
        String::from_utf8_lossy(&name[..n as usize]).into_owned(),
    )
}

/// Collects what is read from `f` until EOF or EIO, in the background.
fn collect(mut f: std::fs::File) -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = std::io::Read::read(&mut f, &mut chunk) {
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

fn wait_for(buf: &std::sync::Mutex<Vec<u8>>, want: &str) -> String {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let s = String::from_utf8_lossy(&buf.lock().unwrap()).into_owned();
        if s.contains(want) {
            return s;
        }
        assert!(
            Instant::now() < end,
            "want {want:?} from the terminal, got {s:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn terminal_config(env: &Env, args: &str) {
    env.raw_config(&format!(
        r#"{{"ociVersion":"1.0.2",
  "process":{{"terminal":true,"args":{args},"env":["PATH=/bin","HOME=/","TERM=xterm"],"cwd":"/"}},
  "root":{{"path":"rootfs"}}}}"#
    ));
}

#[test]
fn terminal_with_console_socket() {
    let env = Env::new("tty");
    terminal_config(&env, r#"["sh"]"#);
    let b = env.bundle();
    // A path longer than a socket address holds (engines' can be): bound
    // here through the directory's fd, connected to by runsc likewise.
    let sdir = env.dir.join("s".repeat(100));
    std::fs::create_dir(&sdir).unwrap();
    let sock = sdir.join("console.sock");
    assert!(sock.as_os_str().len() > 108);
    let d = std::fs::File::open(&sdir).unwrap();
    let l = std::os::unix::net::UnixListener::bind(format!(
        "/proc/self/fd/{}/console.sock",
        std::os::fd::AsRawFd::as_raw_fd(&d)
    ))
    .unwrap();
    env.ok(&[
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        "t1",
    ]);
    let (master, name) = recv_fd(&l);
    assert!(
        name.starts_with("/dev/pts/"),
        "the message is the pty's name: {name:?}"
    );
    // A pty master: the engine may set its window size.
    let ws = libc::winsize {
        ws_row: 33,
        ws_col: 101,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: a valid winsize for TIOCSWINSZ on our fd.
    let r = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&master),
            libc::TIOCSWINSZ,
            &ws,
        )
    };
    assert_eq!(r, 0, "TIOCSWINSZ on the console: not a pty master?");
    let mut w = std::fs::File::from(master);
    let out = collect(w.try_clone().unwrap());
    assert_eq!(env.status("t1"), "created");
    env.ok(&["start", "t1"]);
    // The shell sees a terminal: stdin is a tty, its name, its size, and it
    // is the controlling terminal (/dev/tty opens).
    std::io::Write::write_all(
        &mut w,
        b"[ -t 0 ] && echo is-$((6*7))-tty; stty size; tty; echo x > /dev/tty && echo ctty-$((1+1))\n",
    )
    .unwrap();
    let s = wait_for(&out, "ctty-2\r\n");
    assert!(s.contains("is-42-tty\r\n"), "{s:?}");
    assert!(s.contains("/dev/pts/0\r\n"), "{s:?}");
    wait_for(&out, "33 101\r\n");
    // A later resize reaches the sandbox's terminal (and its SIGWINCH).
    let ws = libc::winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: as above.
    let r = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&w), libc::TIOCSWINSZ, &ws) };
    assert_eq!(r, 0);
    std::thread::sleep(Duration::from_millis(600));
    std::io::Write::write_all(&mut w, b"stty size\n").unwrap();
    wait_for(&out, "40 120\r\n");
    std::io::Write::write_all(&mut w, b"echo hi; exit 5\n").unwrap();
    // The line is echoed (with CRLF), then the output.
    let s = wait_for(&out, "\r\nhi\r\n");
    assert!(s.contains("echo hi; exit 5\r\n"), "{s:?}");
    let o = env.runsc(&["wait", "t1"]);
    assert_eq!(o.code, 5, "{o:?}");
    assert!(o.stdout.contains("\"exitStatus\":5"), "{o:?}");
    env.wait_status("t1", "stopped");
    env.ok(&["delete", "t1"]);
    drop(w);
    drop(l);
    std::fs::remove_file(&sock).unwrap();
    drop(d);
    env.finish();
}

#[test]
fn terminal_needs_a_console_socket() {
    let env = Env::new("ttyerr");
    let b = env.bundle();
    let b = b.to_str().unwrap();
    terminal_config(&env, r#"["sh"]"#);
    env.fails(
        &["create", "--bundle", b, "t"],
        "cannot allocate tty if runc will detach without setting console socket",
    );
    env.fails(
        &["run", "-d", "--bundle", b, "t"],
        "cannot allocate tty if runc will detach without setting console socket",
    );
    env.config("true", false, "");
    env.fails(
        &[
            "create",
            "--bundle",
            b,
            "--console-socket",
            "/nonexistent.sock",
            "t",
        ],
        "cannot use console socket if runc will not detach or allocate tty",
    );
    // A console socket nobody listens on: a one-line error, nothing left.
    terminal_config(&env, r#"["sh"]"#);
    let sock = env.dir.join("nobody.sock");
    env.fails(
        &[
            "create",
            "--bundle",
            b,
            "--console-socket",
            sock.to_str().unwrap(),
            "t",
        ],
        "console-socket",
    );
    assert!(!env.state_root().join("t").exists());
    env.finish();
}

#[test]
fn file_bind_mounts() {
    let env = Env::new("filebind");
    let b = env.bundle();
    let ro = env.dir.join("hosts");
    let rw = env.dir.join("rw.txt");
    std::fs::write(&ro, "127.0.0.1 from-host\n").unwrap();
    std::fs::write(&rw, "first\n").unwrap();
    std::fs::write(env.rootfs().join("tmp/existing"), "rootfs copy\n").unwrap();
    // /etc does not exist in the rootfs (made in the sandbox only); /tmp/existing does.
    env.config(
        "cat /etc/hosts && cat /tmp/existing && echo second >> /tmp/existing && \
         [ -f /etc/hosts ] && echo is-file && (echo x > /etc/hosts || echo ro-refused)",
        true,
        &format!(
            r#","mounts":[
  {{"destination":"/etc/hosts","type":"bind","source":"{}","options":["rbind","ro"]}},
  {{"destination":"/tmp/existing","type":"bind","source":"{}","options":["rbind","rw"]}}]"#,
            ro.display(),
            rw.display()
        ),
    );
    let o = env.runsc(&["run", "--bundle", b.to_str().unwrap(), "f1"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout
            .starts_with("127.0.0.1 from-host\nfirst\nis-file\n"),
        "{o:?}"
    );
    assert!(o.stdout.contains("ro-refused"), "{o:?}");
    assert!(o.stderr.contains("Read-only file system"), "{o:?}");
    assert_eq!(std::fs::read_to_string(&rw).unwrap(), "first\nsecond\n");
    assert_eq!(
        std::fs::read_to_string(&ro).unwrap(),
        "127.0.0.1 from-host\n"
    );
    assert_eq!(
        std::fs::read_to_string(env.rootfs().join("tmp/existing")).unwrap(),
        "rootfs copy\n"
    );
    assert!(!env.rootfs().join("etc").exists());
    env.finish();
}

/// `runsc spec` writes the default config.json (terminal, args ["sh"]).
fn runsc_spec(env: &Env) -> serde_json::Value {
    let b = env.bundle();
    let o = Command::new(runsc_bin())
        .arg("spec")
        .current_dir(&b)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap()
}

#[test]
fn spec_then_run() {
    let env = Env::new("specrun");
    let mut v = runsc_spec(&env);
    assert_eq!(v["process"]["terminal"], true);
    assert_eq!(v["process"]["args"], serde_json::json!(["sh"]));
    v["process"]["terminal"] = false.into();
    v["process"]["args"] = serde_json::json!(["sh", "-c", "echo spec-ok"]);
    env.raw_config(&v.to_string());
    let b = env.bundle();
    let o = env.runsc(&["run", "--bundle", b.to_str().unwrap(), "s1"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, "spec-ok\n", "{o:?}");
    env.finish();
}

/// The unmodified default spec (terminal, `sh`) in the foreground: runsc's
/// own stdio (a terminal, from script(1)) is the container's terminal.
#[test]
fn default_spec_runs_on_the_callers_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux script is not installed");
        return;
    }
    let env = Env::new("specterm");
    runsc_spec(&env);
    let cmd = format!(
        "{} --root={} run --bundle {} s2",
        runsc_bin().display(),
        env.state_root().display(),
        env.bundle().display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let out = collect(std::fs::File::from(std::os::fd::OwnedFd::from(
        child.stdout.take().unwrap(),
    )));
    // The shell's prompt comes back first.
    wait_for(&out, "# ");
    std::io::Write::write_all(&mut input, b"echo spec-$((6*7))\n").unwrap();
    wait_for(&out, "spec-42\r\n");
    std::io::Write::write_all(&mut input, b"exit 3\n").unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("runsc run under script did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(input);
    let s = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    assert_eq!(status.code(), Some(3), "{s:?}");
    assert!(
        s.contains("echo spec-$((6*7))"),
        "the input is echoed: {s:?}"
    );
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
        &["exec", "--tty", "--detach", "e1", "sh"],
        "cannot allocate tty if runc will detach without setting console socket",
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
    // json: host pids (engines look them up in the host's ps): the sandbox
    // process and its descendants, never in-sandbox pid 1.
    let o = env.ok(&["ps", "--format", "json", "e1"]);
    let pids: Vec<i32> = serde_json::from_str(o.stdout.trim()).expect("json array");
    let st: serde_json::Value = serde_json::from_str(&env.ok(&["state", "e1"]).stdout).unwrap();
    let sandbox = st["pid"].as_i64().unwrap() as i32;
    assert!(pids.contains(&sandbox) && !pids.contains(&1), "{o:?}");
    assert!(pids.iter().all(|&p| pid_alive(p)), "{o:?}");
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

/// An engine reads `create`'s output to EOF when the container has a terminal
/// (go-runc's cmdOutput): with `--console-socket`, no sandbox process may keep
/// `create`'s stdout or stderr open, or the engine waits for the container's
/// end before it ever calls `start` (containerd's `ctr run -t` hung so).
#[test]
fn terminal_create_does_not_hold_the_callers_output() {
    let env = Env::new("ttyeof");
    terminal_config(&env, r#"["sh"]"#);
    let b = env.bundle();
    let sock = env.dir.join("c.sock");
    let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let mut child = Command::new(runsc_bin())
        .arg(format!("--root={}", env.state_root().display()))
        .args([
            "create",
            "--bundle",
            b.to_str().unwrap(),
            "--console-socket",
        ])
        .arg(&sock)
        .arg("t1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning runsc create");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        let _ = tx.send(s);
    });
    let eof = rx.recv_timeout(Duration::from_secs(30));
    let status = child.wait().unwrap();
    // Whatever happens, take the master (so the sandbox can be cleaned up).
    let _master = recv_fd(&l);
    let _ = env.runsc(&["delete", "--force", "t1"]);
    assert!(status.success(), "create failed: {eof:?}");
    assert!(
        eof.is_ok(),
        "create's stdout/stderr stayed open after it returned (held by the sandbox)"
    );
}

// ---- exec with a terminal (`exec --tty`, process.json's `terminal`) ----

/// Whether the reader [`collect`] started has ended (EOF or EIO on the
/// master: nothing holds the terminal's other end any more).
fn collected_all(buf: &std::sync::Arc<std::sync::Mutex<Vec<u8>>>) -> bool {
    std::sync::Arc::strong_count(buf) == 1
}

/// `runsc exec --tty --detach --console-socket` (what containerd's shim runs
/// for `docker exec -it`): the master comes over the socket, the process has
/// the terminal as its stdio and controlling terminal, the pid file's waiter
/// lasts as long as it, and the master reads EIO once it is gone.
#[test]
fn exec_tty_console_socket() {
    let env = Env::new("exectty");
    env.config("sleep 100", false, "");
    env.create("x1");
    env.ok(&["start", "x1"]);
    let sock = env.dir.join("console.sock");
    let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let pidfile = env.dir.join("exec.pid");
    let o = env.ok(&[
        "exec",
        "--tty",
        "--detach",
        "--console-socket",
        sock.to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        "x1",
        "sh",
        "-c",
        "tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo is-$((6*7))-tty; \
         echo x > /dev/tty && echo ctty-ok; read v; echo got-$v; exit 3",
    ]);
    assert_eq!(o.stdout, "", "{o:?}");
    let (master, name) = recv_fd(&l);
    assert!(name.starts_with("/dev/pts/"), "{name:?}");
    let waiter: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut w = std::fs::File::from(master);
    let out = collect(w.try_clone().unwrap());
    let s = wait_for(&out, "ctty-ok\r\n");
    assert!(s.contains("/dev/pts/"), "{s:?}");
    assert!(s.contains("is-42-tty\r\n"), "{s:?}");
    assert!(pid_alive(waiter), "the waiter lives as long as the process");
    // Input goes through the sandbox's line discipline (echoed).
    std::io::Write::write_all(&mut w, b"hello\n").unwrap();
    let s = wait_for(&out, "got-hello\r\n");
    assert!(s.contains("hello\r\n"), "echo: {s:?}");
    eventually("the exec waiter exits with the process", || {
        !pid_alive(waiter)
    });
    eventually("the master reads EIO once the process is gone", || {
        collected_all(&out)
    });
    assert!(!env.ok(&["ps", "x1"]).stdout.contains("got-"));
    // An interactive shell: a session leader with the terminal in the
    // foreground (job control works), ended by `exit`.
    env.ok(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        sock.to_str().unwrap(),
        "x1",
        "sh",
    ]);
    let (master, _) = recv_fd(&l);
    let mut w = std::fs::File::from(master);
    let out = collect(w.try_clone().unwrap());
    std::io::Write::write_all(&mut w, b"sleep 30 & echo bg-$!; echo done-$((2+3))\n").unwrap();
    wait_for(&out, "done-5\r\n");
    std::io::Write::write_all(&mut w, b"kill %1; exit\n").unwrap();
    eventually("the master reads EIO after exit", || collected_all(&out));
    env.ok(&["kill", "x1", "KILL"]);
    env.wait_status("x1", "stopped");
    env.ok(&["delete", "x1"]);
    drop(l);
    env.finish();
}

/// process.json with `"terminal": true`: over a console socket (detached),
/// and in the foreground, where `runsc exec` copies the terminal to its own
/// stdout and exits with the process's status.
#[test]
fn exec_process_json_terminal() {
    let env = Env::new("exectty-pj");
    env.config("sleep 100", false, "");
    env.create("x2");
    env.ok(&["start", "x2"]);
    let pj = env.dir.join("process.json");
    std::fs::write(
        &pj,
        r#"{"terminal":true,"args":["sh","-c","tty; [ -t 0 ] && echo pj-$(id -u)-ok; exit 6"],
            "env":["PATH=/bin","TERM=xterm"],"cwd":"/tmp","user":{"uid":5,"gid":5}}"#,
    )
    .unwrap();
    let sock = env.dir.join("c.sock");
    let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let pidfile = env.dir.join("p.pid");
    env.ok(&[
        "exec",
        "--process",
        pj.to_str().unwrap(),
        "--detach",
        "--console-socket",
        sock.to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        "x2",
    ]);
    let (master, _) = recv_fd(&l);
    let out = collect(std::fs::File::from(master));
    let s = wait_for(&out, "pj-5-ok\r\n");
    assert!(s.contains("/dev/pts/"), "{s:?}");
    eventually("the master reads EIO", || collected_all(&out));
    assert!(std::fs::read_to_string(&pidfile).is_ok_and(|p| !p.trim().is_empty()));

    // In the foreground, without a console socket: our stdout gets the
    // terminal's output, and the exit status is the process's.
    let o = env.runsc(&["exec", "--process", pj.to_str().unwrap(), "x2"]);
    assert_eq!(o.code, 6, "{o:?}");
    assert!(o.stdout.contains("pj-5-ok\r\n"), "{o:?}");
    assert!(o.stdout.contains("/dev/pts/"), "{o:?}");
    let o = env.runsc(&["exec", "--tty", "x2", "sh", "-c", "tty && exit 4"]);
    assert_eq!(o.code, 4, "{o:?}");
    assert!(o.stdout.starts_with("/dev/pts/"), "{o:?}");
    env.ok(&["kill", "x2", "KILL"]);
    env.wait_status("x2", "stopped");
    env.ok(&["delete", "x2"]);
    drop(l);
    env.finish();
}

/// runc's checks: a detached terminal needs a console socket, and a console
/// socket needs a detached terminal; one-line errors, nothing started.
#[test]
fn exec_tty_errors() {
    let env = Env::new("exectty-err");
    env.config("sleep 100", false, "");
    env.create("x3");
    env.ok(&["start", "x3"]);
    let need = "cannot allocate tty if runc will detach without setting console socket";
    let no = "cannot use console socket if runc will not detach or allocate tty";
    env.fails(&["exec", "--tty", "--detach", "x3", "sleep", "55"], need);
    let pj = env.dir.join("process.json");
    std::fs::write(&pj, r#"{"terminal":true,"args":["sleep","55"],"cwd":"/"}"#).unwrap();
    env.fails(&["exec", "-d", "-p", pj.to_str().unwrap(), "x3"], need);
    let sock = env.dir.join("c.sock");
    let s = sock.to_str().unwrap();
    env.fails(
        &["exec", "-d", "--console-socket", s, "x3", "sleep", "55"],
        no,
    );
    env.fails(
        &["exec", "--tty", "--console-socket", s, "x3", "sleep", "55"],
        no,
    );
    // A console socket nobody listens on.
    env.fails(
        &[
            "exec",
            "-t",
            "-d",
            "--console-socket",
            s,
            "x3",
            "sleep",
            "55",
        ],
        "console-socket",
    );
    assert!(!env.ok(&["ps", "x3"]).stdout.contains("sleep 55"));
    env.ok(&["kill", "x3", "KILL"]);
    env.wait_status("x3", "stopped");
    env.ok(&["delete", "x3"]);
    env.finish();
}

/// `runsc exec -it` in the foreground on a terminal (from script(1)): the
/// caller's terminal is the process's, in both directions, and the exit
/// status is the process's.
#[test]
fn exec_tty_on_the_callers_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux script is not installed");
        return;
    }
    let env = Env::new("exectty-fg");
    env.config("sleep 100", false, "");
    env.create("x4");
    env.ok(&["start", "x4"]);
    let cmd = format!(
        "{} --root={} exec -t x4 sh",
        runsc_bin().display(),
        env.state_root().display(),
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let out = collect(std::fs::File::from(std::os::fd::OwnedFd::from(
        child.stdout.take().unwrap(),
    )));
    std::io::Write::write_all(&mut input, b"tty; echo fg-$((6*7))\n").unwrap();
    let s = wait_for(&out, "fg-42\r\n");
    assert!(s.contains("/dev/pts/"), "{s:?}");
    std::io::Write::write_all(&mut input, b"exit 3\n").unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("runsc exec under script did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(input);
    let s = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    assert_eq!(status.code(), Some(3), "{s:?}");
    env.ok(&["kill", "x4", "KILL"]);
    env.wait_status("x4", "stopped");
    env.ok(&["delete", "x4"]);
    env.finish();
}

/// A foreground `runsc run` passes the signals runc forwards to the
/// container's init: SIGTERM reaches init's trap, and `run` exits with init's
/// status and removes the container.
#[test]
fn foreground_run_forwards_signals() {
    let env = Env::new("run-fwd");
    env.config(
        "trap 'echo got TERM; exit 3' TERM; echo ready; while true; do sleep 0.1; done",
        true,
        "",
    );
    let out = env.dir.join("fwd.out");
    let mut child = Command::new(runsc_bin())
        .arg(format!("--root={}", env.state_root().display()))
        .args(["run", "--bundle", env.bundle().to_str().unwrap(), "fwd"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&out)
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(Instant::now() < end, "init never became ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) of our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "run did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(3));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "ready\ngot TERM\n");
    env.finish();
}

/// The container's init is the init of its PID namespace (Linux's
/// SIGNAL_UNKILLABLE): `runsc kill` of a signal it has no handler for does
/// nothing (docker stop then escalates to SIGKILL), SIGKILL from outside
/// kills it, a handler gets the signal, and `kill --all` still reaches the
/// other processes.
#[test]
fn init_only_gets_signals_it_handles() {
    let env = Env::new("initsig");
    env.raw_config(
        r#"{"ociVersion":"1.0.2",
  "process":{"args":["sleep","1000"],"env":["PATH=/bin","HOME=/"],"cwd":"/",
             "user":{"uid":0,"gid":0}},
  "root":{"path":"rootfs","readonly":false},
  "hostname":"oci-test"}"#,
    );
    env.create("i1");
    env.ok(&["start", "i1"]);
    std::thread::sleep(Duration::from_millis(200));
    for sig in ["TERM", "INT", "HUP", "USR1"] {
        env.ok(&["kill", "i1", sig]);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        env.status("i1"),
        "running",
        "init without handlers survives"
    );
    env.ok(&["kill", "i1", "KILL"]);
    env.wait_status("i1", "stopped");
    assert_eq!(env.runsc(&["wait", "i1"]).code, 137);
    env.ok(&["delete", "i1"]);

    // A TERM handler runs (busybox sh runs traps between commands).
    env.config(
        "trap 'echo got-term; exit 3' TERM; echo ready; while true; do sleep 0.05; done",
        false,
        "",
    );
    let out = env.dir.join(format!(
        "out.{}",
        env.n.load(std::sync::atomic::Ordering::SeqCst)
    ));
    env.create("i2");
    env.ok(&["start", "i2"]);
    eventually("the trap set", || read(&out).contains("ready"));
    env.ok(&["kill", "i2", "TERM"]);
    let w = env.runsc(&["wait", "i2"]);
    assert_eq!(w.code, 3, "{w:?}");
    assert!(read(&out).contains("got-term"), "{}", read(&out));
    env.wait_status("i2", "stopped");
    env.ok(&["delete", "i2"]);

    // kill --all: the other processes die of TERM, init (no trap) goes on.
    env.config(
        "sleep 1000; echo after-sleep; while true; do sleep 0.05; done",
        false,
        "",
    );
    let out = env.dir.join(format!(
        "out.{}",
        env.n.load(std::sync::atomic::Ordering::SeqCst)
    ));
    env.create("i3");
    env.ok(&["start", "i3"]);
    std::thread::sleep(Duration::from_millis(300));
    env.ok(&["kill", "--all", "i3", "TERM"]);
    eventually("the child sleep killed", || {
        read(&out).contains("after-sleep")
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(env.status("i3"), "running");
    env.ok(&["kill", "i3", "KILL"]);
    env.wait_status("i3", "stopped");
    env.ok(&["delete", "i3"]);
    env.finish();
}

/// linux.namespaces: the sandbox process joins the spec's network namespace
/// (what an engine prepared); a path that is no network namespace fails
/// create with one line; other types are checked.
#[test]
fn joins_the_network_namespace() {
    let env = Env::new("netns");
    let mut holder = Command::new("unshare")
        .args(["--net", "sleep", "60"])
        .spawn()
        .expect("unshare");
    let ns_path = format!("/proc/{}/ns/net", holder.id());
    let link = |p: &str| std::fs::read_link(p).map(|l| l.display().to_string());
    let end = Instant::now() + Duration::from_secs(10);
    while link(&ns_path).ok() == link("/proc/self/ns/net").ok() {
        assert!(Instant::now() < end, "unshare --net never made a namespace");
        std::thread::sleep(Duration::from_millis(10));
    }
    let cfg = |path: &str| {
        format!(
            r#","linux":{{"namespaces":[{{"type":"pid"}},{{"type":"mount"}},{{"type":"network","path":"{path}"}}]}}"#
        )
    };
    env.config("sleep 60", true, &cfg(&ns_path));
    env.create("n1");
    let st: serde_json::Value = serde_json::from_str(&env.ok(&["state", "n1"]).stdout).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(
        link(&format!("/proc/{pid}/ns/net")).unwrap(),
        link(&ns_path).unwrap()
    );
    env.ok(&["delete", "--force", "n1"]);
    env.config("true", true, &cfg("/proc/self/ns/uts"));
    let b = env.bundle();
    env.fails(
        &["create", "--bundle", b.to_str().unwrap(), "n2"],
        "linux.namespaces: network path /proc/self/ns/uts: not a network namespace",
    );
    env.config(
        "true",
        true,
        r#","linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}"#,
    );
    env.fails(
        &["create", "--bundle", b.to_str().unwrap(), "n3"],
        "duplicate namespace",
    );
    let _ = holder.kill();
    let _ = holder.wait();
    env.finish();
}

// ---- process.capabilities and process.noNewPrivileges ----

/// Docker's default capability set, as its config.json lists it.
const DOCKER_CAPS: &str = r#"["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER",
    "CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"]"#;

/// Writes config.json running `sh -c SCRIPT` as `uid`, with `process` JSON
/// members (e.g. `,"noNewPrivileges":true`).
fn process_config(env: &Env, script: &str, uid: u32, process: &str) {
    let script = script.replace('\\', "\\\\").replace('"', "\\\"");
    env.raw_config(&format!(
        r#"{{"ociVersion":"1.0.2",
  "process":{{"args":["sh","-c","{script}"],"env":["PATH=/bin","HOME=/"],"cwd":"/",
              "user":{{"uid":{uid},"gid":0}}{process}}},
  "root":{{"path":"rootfs"}},
  "hostname":"oci-test"}}"#
    ));
}

/// `,"capabilities":{...}` with `set` as bounding, effective and permitted.
fn caps_member(set: &str) -> String {
    format!(
        r#","capabilities":{{"bounding":{set},"effective":{set},"permitted":{set},
            "inheritable":[],"ambient":[]}}"#
    )
}

/// The Cap* lines of /proc/self/status for these sets (hex).
fn cap_lines(inh: u64, prm: u64, eff: u64, bnd: u64, amb: u64) -> String {
    format!(
        "CapInh:\t{inh:016x}\nCapPrm:\t{prm:016x}\nCapEff:\t{eff:016x}\nCapBnd:\t{bnd:016x}\nCapAmb:\t{amb:016x}\n"
    )
}

const DOCKER_SET: u64 = 0xa80425fb;
const CAP_SYS_ADMIN_BIT: u64 = 1 << 21;
const FULL_SET: u64 = (1 << 41) - 1;

#[test]
fn capabilities_from_the_spec() {
    let env = Env::new("caps");
    std::fs::create_dir_all(env.rootfs().join("mnt")).unwrap();
    let b = env.bundle();
    let b = b.to_str().unwrap();
    let script = "grep Cap /proc/self/status; \
        busybox mount -t tmpfs none /mnt && echo mounted; \
        busybox hostname x && echo named-$(busybox hostname); echo done";
    // Docker's defaults (and an unknown name, ignored as runc does): no
    // mount(2), no sethostname(2).
    let with_unknown = DOCKER_CAPS.replace("\"CAP_KILL\"", "\"CAP_KILL\",\"CAP_NO_SUCH_THING\"");
    process_config(&env, script, 0, &caps_member(&with_unknown));
    let o = env.runsc(&["run", "--bundle", b, "c1"]);
    assert_eq!(o.code, 0, "{o:?}");
    let d = DOCKER_SET;
    assert_eq!(
        o.stdout,
        format!("{}done\n", cap_lines(0, d, d, d, 0)),
        "{o:?}"
    );
    assert!(o.stderr.contains("mount"), "{o:?}");
    // Another user: nothing permitted or effective after the exec.
    process_config(
        &env,
        "grep Cap /proc/self/status",
        1000,
        &caps_member(DOCKER_CAPS),
    );
    let o = env.ok(&["run", "--bundle", b, "c1"]);
    assert_eq!(o.stdout, cap_lines(0, 0, 0, d, 0), "{o:?}");
    // CAP_SYS_ADMIN added: mount and sethostname work.
    let admin = DOCKER_CAPS.replace("\"CAP_KILL\"", "\"CAP_KILL\",\"CAP_SYS_ADMIN\"");
    process_config(&env, script, 0, &caps_member(&admin));
    let o = env.ok(&["run", "--bundle", b, "c1"]);
    let a = d | CAP_SYS_ADMIN_BIT;
    assert_eq!(
        o.stdout,
        format!("{}mounted\nnamed-x\ndone\n", cap_lines(0, a, a, a, 0)),
        "{o:?}"
    );
    // No process.capabilities: root holds every capability, as before.
    process_config(&env, "grep Cap /proc/self/status", 0, "");
    let o = env.ok(&["run", "--bundle", b, "c1"]);
    let f = FULL_SET;
    assert_eq!(o.stdout, cap_lines(0, f, f, f, 0), "{o:?}");
    // A set that is not an array: one line naming it.
    process_config(
        &env,
        "true",
        0,
        r#","capabilities":{"bounding":"CAP_KILL"}"#,
    );
    env.fails(
        &["create", "--bundle", b, "c2"],
        "process.capabilities.bounding",
    );
    assert!(!env.state_root().join("c2").exists());
    env.finish();
}

#[test]
fn no_new_privileges_from_the_spec() {
    let env = Env::new("nnp");
    let b = env.bundle();
    let b = b.to_str().unwrap();
    let script = "grep NoNewPrivs /proc/self/status";
    process_config(&env, script, 0, r#","noNewPrivileges":true"#);
    let o = env.ok(&["run", "--bundle", b, "n1"]);
    assert_eq!(o.stdout, "NoNewPrivs:\t1\n", "{o:?}");
    process_config(&env, script, 0, "");
    let o = env.ok(&["run", "--bundle", b, "n1"]);
    assert_eq!(o.stdout, "NoNewPrivs:\t0\n", "{o:?}");
    // exec: the container's value, or --no-new-privs.
    process_config(&env, "sleep 100", 0, r#","noNewPrivileges":true"#);
    env.create("n2");
    env.ok(&["start", "n2"]);
    let o = env.ok(&["exec", "n2", "grep", "NoNewPrivs", "/proc/self/status"]);
    assert_eq!(o.stdout, "NoNewPrivs:\t1\n", "{o:?}");
    env.ok(&["delete", "-f", "n2"]);
    process_config(&env, "sleep 100", 0, "");
    env.create("n3");
    env.ok(&["start", "n3"]);
    let o = env.ok(&["exec", "n3", "grep", "NoNewPrivs", "/proc/self/status"]);
    assert_eq!(o.stdout, "NoNewPrivs:\t0\n", "{o:?}");
    let o = env.ok(&[
        "exec",
        "--no-new-privs",
        "n3",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    assert_eq!(o.stdout, "NoNewPrivs:\t1\n", "{o:?}");
    env.ok(&["delete", "-f", "n3"]);
    env.finish();
}

#[test]
fn exec_capabilities() {
    let env = Env::new("execcaps");
    process_config(&env, "sleep 100", 0, &caps_member(DOCKER_CAPS));
    env.create("x1");
    env.ok(&["start", "x1"]);
    let d = DOCKER_SET;
    let status = ["grep", "Cap", "/proc/self/status"];
    let exec = |pre: &[&str]| {
        let mut args = vec!["exec"];
        args.extend_from_slice(pre);
        args.push("x1");
        args.extend_from_slice(&status);
        env.ok(&args).stdout
    };
    // The container's capabilities.
    assert_eq!(exec(&[]), cap_lines(0, d, d, d, 0));
    assert_eq!(exec(&["-u", "1000"]), cap_lines(0, 0, 0, d, 0));
    // --cap adds to the bounding, effective and permitted sets.
    let a = d | CAP_SYS_ADMIN_BIT;
    assert_eq!(exec(&["--cap", "CAP_SYS_ADMIN"]), cap_lines(0, a, a, a, 0));
    let o = env.ok(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        "x1",
        "sh",
        "-c",
        "busybox hostname exec-host && busybox hostname",
    ]);
    assert_eq!(o.stdout, "exec-host\n", "{o:?}");
    let o = env.runsc(&["exec", "x1", "busybox", "hostname", "nope"]);
    assert_ne!(o.code, 0, "{o:?}");
    // --process: its own capabilities, or the container's without them.
    let pj = env.dir.join("process.json");
    std::fs::write(
        &pj,
        r#"{"args":["grep","Cap","/proc/self/status"],"env":["PATH=/bin"],"cwd":"/",
            "user":{"uid":0,"gid":0},
            "capabilities":{"bounding":["CAP_KILL","CAP_CHOWN"],"effective":["CAP_KILL"],
                            "permitted":["CAP_KILL"]}}"#,
    )
    .unwrap();
    let o = env.ok(&["exec", "--process", pj.to_str().unwrap(), "x1"]);
    let kc = (1 << 5) | 1;
    assert_eq!(o.stdout, cap_lines(0, kc, kc, kc, 0), "{o:?}");
    std::fs::write(
        &pj,
        r#"{"args":["grep","Cap","/proc/self/status"],"env":["PATH=/bin"],"cwd":"/"}"#,
    )
    .unwrap();
    let o = env.ok(&["exec", "--process", pj.to_str().unwrap(), "x1"]);
    assert_eq!(o.stdout, cap_lines(0, d, d, d, 0), "{o:?}");
    std::fs::write(
        &pj,
        r#"{"args":["true"],"cwd":"/","capabilities":{"permitted":{}}}"#,
    )
    .unwrap();
    env.fails(
        &["exec", "--process", pj.to_str().unwrap(), "x1"],
        "process.capabilities.permitted",
    );
    env.ok(&["delete", "-f", "x1"]);
    env.finish();
}

/// The sandbox killed with SIGKILL from the host: `state` says stopped (it
/// survives the sandbox), `delete` removes the gofers and the state, and
/// nothing is left behind. The same before `start`.
#[test]
fn sandbox_killed_from_the_host() {
    let env = Env::new("hostkill");
    env.config("sleep 60", false, "");
    for (id, start) in [("k1", true), ("k2", false)] {
        env.create(id);
        if start {
            env.ok(&["start", id]);
        }
        let st: serde_json::Value = serde_json::from_str(&env.ok(&["state", id]).stdout).unwrap();
        let pid = st["pid"].as_i64().unwrap() as i32;
        assert!(pid > 0 && pid_alive(pid));
        // SAFETY: kill(2) of the sandbox this test created.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        eventually("the sandbox is gone", || !pid_alive(pid));
        env.wait_status(id, "stopped");
        env.fails(&["exec", id, "true"], "stopped");
        env.ok(&["delete", id]);
        env.fails(&["state", id], "does not exist");
    }
    env.finish();
}
