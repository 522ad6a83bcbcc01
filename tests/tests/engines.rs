//! Real container engines driving the built runsc: Docker (dockerd started by
//! the test with `--config-file`, runsc registered with `runsc install`),
//! containerd (`ctr run --runc-binary`) and Podman (`--runtime`). Each test
//! starts its engine itself with all state under a temporary directory,
//! imports a busybox image made from busybox-static (tests/engines/mkimage.py,
//! no registry), and removes everything afterwards.
//!
//! An engine that is not installed is reported as skipped, by name, unless
//! RUNSC_REQUIRE_ENGINES=1 (set by .ci/run, which installs them all): then it
//! is a failure. The configuration files written here are the ones README's
//! "Registering with engines" section shows.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tests::{run_with_timeout, runsc_bin, workspace_root, Exit, RunOutput};

const IMAGE: &str = "runsc-test/busybox:latest";
const RUNTIME: &str = "runsc-test";
const T: Duration = Duration::from_secs(90);

/// Whether `engine`'s programs are installed; false means skip (printed).
fn have(engine: &str, progs: &[&str]) -> bool {
    let missing: Vec<&str> = progs
        .iter()
        .copied()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!("{engine}: not installed ({})", missing.join(", "));
    if std::env::var("RUNSC_REQUIRE_ENGINES").as_deref() == Ok("1") {
        panic!("{msg}, and RUNSC_REQUIRE_ENGINES=1");
    }
    eprintln!("SKIP {msg}");
    false
}

/// A short temporary directory (unix socket paths inside it must stay under
/// 108 bytes), removed on drop, after the engine is gone.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p = PathBuf::from(format!("/tmp/rs-{tag}-{}", std::process::id()));
        let _ = Command::new("rm").arg("-rf").arg(&p).status();
        fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
    fn s(&self, rel: &str) -> String {
        self.path(rel).to_str().unwrap().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // The vfs/native snapshotters leave read-only dirs; rm -rf copes.
        let _ = Command::new("rm").arg("-rf").arg(&self.0).status();
    }
}

/// A background daemon, killed (SIGTERM, then SIGKILL) on drop.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(mut c: Command, log: PathBuf) -> Daemon {
        let f = fs::File::create(&log).unwrap();
        c.stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .process_group(0);
        let child = c.spawn().unwrap_or_else(|e| panic!("start {c:?}: {e}"));
        Daemon { child, log }
    }
    fn log(&self) -> String {
        tests::truncate(&fs::read_to_string(&self.log).unwrap_or_default(), 6000)
    }
    fn stop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: kill(2) of the daemon we spawned.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above; its process group too (containerd under dockerd).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(args: &[&str], envs: &[(&str, &str)]) -> RunOutput {
    let mut c = Command::new(args[0]);
    c.args(&args[1..]);
    for (k, v) in envs {
        c.env(k, v);
    }
    run_with_timeout(c, args.join(" "), T)
}

/// Runs a command on a terminal (util-linux `script`), typing `input`.
fn run_on_tty(cmdline: &str, input: &str, envs: &[(&str, &str)]) -> RunOutput {
    let inp = Scratch::new("tty-in");
    let path = inp.path("in");
    fs::write(&path, input).unwrap();
    // `script` reads its stdin and types it; the trailing sleep keeps the
    // terminal open until the program has read everything and exited.
    let sh = format!(
        "(cat {}; sleep 5) | script -qec {} /dev/null",
        path.display(),
        shell_quote(cmdline)
    );
    run(&["/bin/sh", "-c", &sh], envs)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn ok(o: &RunOutput) -> &RunOutput {
    assert_eq!(o.exit, Exit::Code(0), "\n{}", o.describe());
    o
}

fn image_archive(dir: &Scratch) -> String {
    let out = dir.s("busybox.tar");
    let script = workspace_root().join("tests/engines/mkimage.py");
    ok(&run(
        &["python3", script.to_str().unwrap(), &out, IMAGE],
        &[],
    ));
    out
}

/// Host processes whose command line mentions `needle` (what must be gone
/// once an engine has removed its containers and stopped).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let Ok(cmd) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) {
            found.push(format!("{pid}: {cmd}"));
        }
    }
    found
}

fn eventually(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ------------------------------------------------------------------ docker

#[test]
fn docker() {
    if !have(
        "docker",
        &["/usr/sbin/dockerd", "/usr/bin/docker", "/usr/bin/script"],
    ) {
        return;
    }
    let dir = Scratch::new("docker");
    let archive = image_archive(&dir);
    // daemon.json: everything under the scratch dir, no host networking
    // changes (no bridge, no iptables), the vfs storage driver (works on any
    // filesystem); then `runsc install` adds the runtime to it.
    let cfg = dir.s("daemon.json");
    fs::write(
        &cfg,
        format!(
            r#"{{
    "data-root": "{d}/data",
    "exec-root": "{d}/exec",
    "pidfile": "{d}/docker.pid",
    "hosts": ["unix://{d}/docker.sock"],
    "iptables": false,
    "ip-forward": false,
    "ip-masq": false,
    "bridge": "none",
    "storage-driver": "vfs"
}}
"#,
            d = dir.0.display()
        ),
    )
    .unwrap();
    let runsc = runsc_bin();
    let o = run(
        &[
            runsc.to_str().unwrap(),
            "install",
            "--config-file",
            &cfg,
            "--runtime",
            RUNTIME,
        ],
        &[],
    );
    ok(&o);
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&cfg).unwrap()).unwrap();
    assert_eq!(v["runtimes"][RUNTIME]["path"], runsc.to_str().unwrap());
    assert_eq!(v["storage-driver"], "vfs", "install kept the other keys");

    let mut c = Command::new("/usr/sbin/dockerd");
    c.arg("--config-file").arg(&cfg);
    let mut daemon = Daemon::start(c, dir.path("dockerd.log"));
    let host = format!("unix://{}", dir.s("docker.sock"));
    let env = [("DOCKER_HOST", host.as_str())];
    let docker = |args: &[&str]| {
        let mut v = vec!["/usr/bin/docker"];
        v.extend_from_slice(args);
        run(&v, &env)
    };
    let end = Instant::now() + Duration::from_secs(60);
    while docker(&["version"]).exit != Exit::Code(0) {
        assert!(
            Instant::now() < end,
            "dockerd did not come up:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    ok(&docker(&["load", "-i", &archive]));

    // The issue's command, and an exit status.
    let rt = format!("--runtime={RUNTIME}");
    let o = docker(&["run", "--rm", &rt, IMAGE, "echo", "hi"]);
    assert_eq!(ok(&o).stdout, "hi\n", "\n{}", o.describe());
    let o = docker(&["run", "--rm", &rt, IMAGE, "sh", "-c", "exit 7"]);
    assert_eq!(o.exit, Exit::Code(7), "\n{}", o.describe());
    // The process spec: env, cwd, user, hostname.
    let o = docker(&[
        "run",
        "--rm",
        &rt,
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "--hostname",
        "boxy",
        IMAGE,
        "sh",
        "-c",
        "echo $FOO $(pwd) $(id -u):$(id -g) $(hostname)",
    ]);
    assert_eq!(
        ok(&o).stdout,
        "bar /tmp 1000:1000 boxy\n",
        "\n{}",
        o.describe()
    );
    // Docker's default capabilities, as runc gives them; --cap-add.
    let o = docker(&[
        "run",
        "--rm",
        &rt,
        IMAGE,
        "grep",
        "-E",
        "^Cap(Prm|Eff|Bnd)",
        "/proc/self/status",
    ]);
    assert_eq!(
        ok(&o).stdout,
        "CapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\n"
    );
    let mnt = "mkdir -p /m && mount -t tmpfs none /m && echo mounted";
    let o = docker(&["run", "--rm", &rt, IMAGE, "sh", "-c", mnt]);
    assert!(
        o.exit != Exit::Code(0) && o.stderr.contains("permission denied"),
        "\n{}",
        o.describe()
    );
    let o = docker(&[
        "run",
        "--rm",
        &rt,
        "--cap-add",
        "SYS_ADMIN",
        IMAGE,
        "sh",
        "-c",
        mnt,
    ]);
    assert_eq!(ok(&o).stdout, "mounted\n");
    // A pty: docker run -it.
    let o = run_on_tty(
        &format!("/usr/bin/docker run --rm -it {rt} {IMAGE} sh"),
        "tty; echo $((6*7))\nexit 5\n",
        &env,
    );
    assert_eq!(o.exit, Exit::Code(5), "\n{}", o.describe());
    assert!(
        o.stdout.contains("/dev/pts/") && o.stdout.contains("42"),
        "\n{}",
        o.describe()
    );

    // A long-running container: exec, exec -it, top, pause, stop.
    ok(&docker(&[
        "run", "-d", &rt, "--name", "long", IMAGE, "sleep", "1000",
    ]));
    let o = docker(&["exec", "long", "sh", "-c", "echo in-exec; exit 3"]);
    assert_eq!(o.exit, Exit::Code(3), "\n{}", o.describe());
    assert_eq!(o.stdout, "in-exec\n");
    let o = run_on_tty(
        "/usr/bin/docker exec -it long sh",
        "tty; echo $((6*8))\nexit 4\n",
        &env,
    );
    assert_eq!(o.exit, Exit::Code(4), "\n{}", o.describe());
    assert!(
        o.stdout.contains("/dev/pts/") && o.stdout.contains("48"),
        "\n{}",
        o.describe()
    );
    // docker top looks the pids of `runsc ps --format json` up in the host's
    // ps: they are the sandbox's host processes.
    let o = docker(&["top", "long"]);
    assert!(
        ok(&o).stdout.contains(runsc.to_str().unwrap()),
        "\n{}",
        o.describe()
    );
    // docker update: runsc update on the container's host cgroup.
    ok(&docker(&[
        "update",
        "--memory",
        "100m",
        "--memory-swap",
        "200m",
        "--pids-limit",
        "77",
        "long",
    ]));
    ok(&docker(&["pause", "long"]));
    let o = docker(&["inspect", "-f", "{{.State.Status}}", "long"]);
    assert_eq!(ok(&o).stdout.trim(), "paused");
    ok(&docker(&["unpause", "long"]));
    ok(&docker(&["exec", "long", "true"]));
    // stop: SIGTERM, which `sleep` as the container's init ignores (Linux
    // drops signals to a pid namespace's init that has no handler), then
    // SIGKILL after the timeout: 137, as with runc.
    ok(&docker(&["stop", "-t", "1", "long"]));
    let o = docker(&[
        "inspect",
        "-f",
        "{{.State.Running}} {{.State.ExitCode}}",
        "long",
    ]);
    assert_eq!(ok(&o).stdout.trim(), "false 137", "\n{}", o.describe());
    ok(&docker(&["rm", "long"]));
    let o = docker(&["ps", "-aq"]);
    assert_eq!(ok(&o).stdout, "");

    daemon.stop();
    let left = processes_mentioning(&dir.0.display().to_string());
    assert!(left.is_empty(), "left behind: {left:#?}");
}

// -------------------------------------------------------------- containerd

#[test]
fn containerd_ctr() {
    if !have(
        "containerd",
        &[
            "/usr/bin/containerd",
            "/usr/bin/ctr",
            "/usr/bin/containerd-shim-runc-v2",
        ],
    ) {
        return;
    }
    let dir = Scratch::new("ctrd");
    let archive = image_archive(&dir);
    let cfg = dir.s("config.toml");
    fs::write(
        &cfg,
        format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
"#,
            d = dir.0.display()
        ),
    )
    .unwrap();
    let mut c = Command::new("/usr/bin/containerd");
    c.arg("--config").arg(&cfg);
    let mut daemon = Daemon::start(c, dir.path("containerd.log"));
    let addr = dir.s("containerd.sock");
    let ctr = |args: &[&str]| {
        let mut v = vec![
            "/usr/bin/ctr",
            "--address",
            &addr,
            "--namespace",
            "runsc-test",
        ];
        v.extend_from_slice(args);
        run(&v, &[])
    };
    let end = Instant::now() + Duration::from_secs(60);
    while ctr(&["version"]).exit != Exit::Code(0) {
        assert!(
            Instant::now() < end,
            "containerd did not come up:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let snap = "--snapshotter=native";
    ok(&ctr(&["images", "import", snap, &archive]));
    let runsc = runsc_bin();
    let bin = runsc.to_str().unwrap();

    // The issue's command, and an exit status.
    let o = ctr(&[
        "run",
        "--rm",
        snap,
        "--runc-binary",
        bin,
        IMAGE,
        "c1",
        "echo",
        "hi",
    ]);
    assert_eq!(ok(&o).stdout, "hi\n", "\n{}", o.describe());
    let o = ctr(&[
        "run",
        "--rm",
        snap,
        "--runc-binary",
        bin,
        IMAGE,
        "c2",
        "sh",
        "-c",
        "exit 9",
    ]);
    assert_eq!(o.exit, Exit::Code(9), "\n{}", o.describe());
    // A pty.
    let o = run_on_tty(
        &format!(
            "/usr/bin/ctr --address {addr} --namespace runsc-test run --rm -t {snap} \
             --runc-binary {bin} {IMAGE} c3 sh"
        ),
        "tty; echo $((6*7))\nexit 5\n",
        &[],
    );
    assert_eq!(o.exit, Exit::Code(5), "\n{}", o.describe());
    assert!(
        o.stdout.contains("/dev/pts/") && o.stdout.contains("42"),
        "\n{}",
        o.describe()
    );

    // Detached: task exec, task ps, kill, delete.
    ok(&ctr(&[
        "run",
        "-d",
        snap,
        "--runc-binary",
        bin,
        IMAGE,
        "long",
        "sleep",
        "1000",
    ]));
    let o = ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "long",
        "sh",
        "-c",
        "echo in-exec; exit 3",
    ]);
    assert_eq!(o.exit, Exit::Code(3), "\n{}", o.describe());
    assert_eq!(o.stdout, "in-exec\n");
    let o = run_on_tty(
        &format!(
            "/usr/bin/ctr --address {addr} --namespace runsc-test task exec -t --exec-id e2 long sh"
        ),
        "tty; echo $((6*8))\nexit 4\n",
        &[],
    );
    assert_eq!(o.exit, Exit::Code(4), "\n{}", o.describe());
    assert!(
        o.stdout.contains("/dev/pts/") && o.stdout.contains("48"),
        "\n{}",
        o.describe()
    );
    let o = ctr(&["task", "ps", "long"]);
    assert!(ok(&o).stdout.contains("PID"), "\n{}", o.describe());
    ok(&ctr(&["task", "kill", "--signal", "SIGKILL", "long"]));
    eventually("task long stopped", 20, || {
        ctr(&["task", "ls"])
            .stdout
            .lines()
            .any(|l| l.starts_with("long") && l.contains("STOPPED"))
    });
    ok(&ctr(&["task", "delete", "long"]));
    ok(&ctr(&["container", "delete", "long"]));
    let o = ctr(&["container", "ls", "-q"]);
    assert_eq!(ok(&o).stdout, "");
    ok(&ctr(&["images", "rm", IMAGE]));

    daemon.stop();
    let left = processes_mentioning(&dir.0.display().to_string());
    assert!(left.is_empty(), "left behind: {left:#?}");

    // README's Kubernetes snippet: the CRI plugin reads runsc as the runc v2
    // shim's BinaryName (the option `--runc-binary` set above).
    let cri = dir.s("cri.toml");
    fs::write(&cri, CRI_SNIPPET.replace("/usr/local/bin/runsc", bin)).unwrap();
    let o = run(
        &["/usr/bin/containerd", "--config", &cri, "config", "dump"],
        &[],
    );
    let dump = &ok(&o).stdout;
    let section = dump
        .split("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runsc]")
        .nth(1)
        .unwrap_or_else(|| panic!("no runsc runtime in the CRI config:\n{}", o.describe()));
    let section = &section[..section
        .find("untrusted_workload_runtime")
        .unwrap_or(section.len())];
    assert!(
        section.contains("runtime_type = \"io.containerd.runc.v2\""),
        "{section}"
    );
    assert!(
        section.contains(&format!("BinaryName = \"{bin}\"")),
        "{section}"
    );
}

/// README's containerd configuration for Kubernetes (a RuntimeClass handler).
const CRI_SNIPPET: &str = r#"version = 2
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc.options]
    BinaryName = "/usr/local/bin/runsc"
"#;

// ------------------------------------------------------------------ podman

#[test]
fn podman() {
    if !have(
        "podman",
        &["/usr/bin/podman", "/usr/bin/conmon", "/usr/bin/script"],
    ) {
        return;
    }
    let dir = Scratch::new("podman");
    let archive = image_archive(&dir);
    let runsc = runsc_bin();
    let bin = runsc.to_str().unwrap();
    // containers.conf: cgroupfs (no systemd here), file events; storage.conf:
    // vfs under the scratch dir.
    let conf = dir.s("containers.conf");
    fs::write(
        &conf,
        format!(
            "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
             events_logfile_path = \"{d}/events.log\"\n\
             [engine.runtimes]\n{RUNTIME} = [\"{bin}\"]\n",
            d = dir.0.display()
        ),
    )
    .unwrap();
    let storage = dir.s("storage.conf");
    fs::write(
        &storage,
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{d}/graph\"\nrunroot = \"{d}/run\"\n",
            d = dir.0.display()
        ),
    )
    .unwrap();
    let env = [
        ("CONTAINERS_CONF", conf.as_str()),
        ("CONTAINERS_STORAGE_CONF", storage.as_str()),
    ];
    let base = format!(
        "/usr/bin/podman --root {d}/graph --runroot {d}/run --tmpdir {d}/tmp --runtime {bin}",
        d = dir.0.display()
    );
    let podman = |args: &[&str]| {
        let mut v: Vec<&str> = base.split(' ').collect();
        v.extend_from_slice(args);
        run(&v, &env)
    };
    ok(&podman(&["load", "-i", &archive]));
    let ul = [
        "--ulimit",
        "nofile=4096:4096",
        "--ulimit",
        "nproc=4096:4096",
    ];
    let with = |pre: &[&str], post: &[&str]| {
        let mut v = pre.to_vec();
        v.extend_from_slice(&ul);
        v.extend_from_slice(post);
        podman(&v)
    };

    // The issue's command, and an exit status.
    let o = with(&["run", "--rm"], &[IMAGE, "echo", "hi"]);
    assert_eq!(ok(&o).stdout, "hi\n", "\n{}", o.describe());
    let o = with(&["run", "--rm"], &[IMAGE, "sh", "-c", "exit 9"]);
    assert_eq!(o.exit, Exit::Code(9), "\n{}", o.describe());
    // The runtime by its containers.conf name.
    let named = base.replace(&format!("--runtime {bin}"), &format!("--runtime {RUNTIME}"));
    let mut v: Vec<&str> = named.split(' ').collect();
    v.extend_from_slice(&["run", "--rm"]);
    v.extend_from_slice(&ul);
    v.extend_from_slice(&[IMAGE, "echo", "named"]);
    let o = run(&v, &env);
    assert_eq!(ok(&o).stdout, "named\n", "\n{}", o.describe());
    // A pty.
    let o = run_on_tty(
        &format!("{base} run --rm -it {} {IMAGE} sh", ul.join(" ")),
        "tty; echo $((6*7))\nexit 5\n",
        &env,
    );
    assert_eq!(o.exit, Exit::Code(5), "\n{}", o.describe());
    assert!(
        o.stdout.contains("/dev/pts/") && o.stdout.contains("42"),
        "\n{}",
        o.describe()
    );

    // A long-running container: exec, stop, rm.
    ok(&with(
        &["run", "-d", "--name", "long"],
        &[IMAGE, "sleep", "1000"],
    ));
    let o = podman(&["exec", "long", "sh", "-c", "echo in-exec; exit 3"]);
    assert_eq!(o.exit, Exit::Code(3), "\n{}", o.describe());
    assert_eq!(o.stdout, "in-exec\n");
    ok(&podman(&["stop", "-t", "1", "long"]));
    let o = podman(&[
        "inspect",
        "-f",
        "{{.State.Running}} {{.State.ExitCode}}",
        "long",
    ]);
    assert_eq!(ok(&o).stdout.trim(), "false 137", "\n{}", o.describe());
    ok(&podman(&["rm", "long"]));
    let o = podman(&["ps", "-aq"]);
    assert_eq!(ok(&o).stdout, "");
    ok(&podman(&["rmi", IMAGE]));

    let left = processes_mentioning(&dir.0.display().to_string());
    assert!(left.is_empty(), "left behind: {left:#?}");
}
