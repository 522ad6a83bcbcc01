//! The gofer's confinement, seen from the host while a sandbox runs: its own
//! mount/net/ipc/uts namespaces, "/" = the tree it serves (no host /proc, /sys or
//! /dev in it), only CAP_CHOWN/DAC_OVERRIDE/FOWNER/FSETID, no_new_privs, a seccomp
//! filter, and no fd but stdio, its socket and the nodes it opened. Covers the
//! three modes: `runsc do`'s read-only host root, a writable `--volume`, and an
//! OCI container's rootfs and single-file bind mount.
//!
//! (That the filter kills the gofer on a forbidden call is tested in runsc-cli:
//! `cargo test -p runsc-cli seccomp_gofer`.)
//!
//! Needs root (as every sandbox test) and busybox-static for the OCI case.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tests::{extra_runsc_flags, runsc_bin, target_dir, PLATFORMS};

/// CAP_CHOWN | CAP_DAC_OVERRIDE | CAP_FOWNER | CAP_FSETID.
const GOFER_CAPS: u64 = 0x1b;

fn status_field(pid: i32, name: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn ppid(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

/// The `runsc gofer` children of `parent`.
fn gofers_of(parent: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if ppid(pid) == Some(parent) && cmdline(pid).contains(" gofer ") {
            out.push(pid);
        }
    }
    out
}

/// Waits until each of `pids()` (at least `n`) runs under its seccomp filter,
/// i.e. is done confining itself.
fn wait_confined(n: usize, pids: impl Fn() -> Vec<i32>) -> Vec<i32> {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let p = pids();
        if p.len() >= n
            && p.iter()
                .all(|&g| status_field(g, "Seccomp").as_deref() == Some("2"))
        {
            return p;
        }
        assert!(
            Instant::now() < end,
            "gofers not confined in time: {:?}",
            p.iter()
                .map(|&g| (g, cmdline(g), status_field(g, "Seccomp")))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ns(pid: &str, kind: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap()
}

/// Checks everything but the root; `leaked` is the inode of a pipe the gofer's
/// spawner inherited (it must not have it).
fn check_gofer(pid: i32, leaked: Option<u64>) {
    let what = format!("gofer {pid} ({})", cmdline(pid));
    for kind in ["mnt", "net", "ipc", "uts"] {
        assert_ne!(
            ns(&pid.to_string(), kind),
            ns("self", kind),
            "{what}: {kind} namespace is the host's"
        );
    }
    assert_eq!(ns(&pid.to_string(), "user"), ns("self", "user"), "{what}");
    for f in ["CapEff", "CapPrm", "CapBnd"] {
        let v = u64::from_str_radix(&status_field(pid, f).unwrap(), 16).unwrap();
        assert_eq!(v, GOFER_CAPS, "{what}: {f} {v:#x}");
    }
    for f in ["CapInh", "CapAmb"] {
        let v = u64::from_str_radix(&status_field(pid, f).unwrap(), 16).unwrap();
        assert_eq!(v, 0, "{what}: {f}");
    }
    assert_eq!(
        status_field(pid, "NoNewPrivs").as_deref(),
        Some("1"),
        "{what}"
    );
    assert_eq!(status_field(pid, "Seccomp").as_deref(), Some("2"), "{what}");
    // fds: 0-2 (as the spawner set them), exactly one socket (its connection to
    // the sentry), the rest O_PATH/open nodes of its tree: no pipes, no
    // anonymous inodes, no inherited files.
    let mut sockets = 0;
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let n: i32 = e.file_name().to_string_lossy().parse().unwrap();
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue; // closed meanwhile
        };
        let t = target.to_string_lossy().to_string();
        if let Some(ino) = leaked {
            assert_ne!(t, format!("pipe:[{ino}]"), "{what}: inherited fd {n}");
        }
        if n <= 2 {
            continue;
        }
        if t.starts_with("socket:") {
            sockets += 1;
            continue;
        }
        assert!(t.starts_with('/'), "{what}: unexpected fd {n} -> {t}");
    }
    assert_eq!(sockets, 1, "{what}: sockets");
}

fn same_file(a: &Path, b: &Path) -> bool {
    let (a, b) = (std::fs::metadata(a).unwrap(), std::fs::metadata(b).unwrap());
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

fn scratch(name: &str) -> PathBuf {
    let d = target_dir()
        .join("gofer-confine-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn kill_wait(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// `runsc do` with a writable volume: the root gofer serves the host "/" with
/// the host's /proc, /sys and /dev detached; the volume's gofer is pivoted into
/// the volume directory. A pipe leaked into runsc (not close-on-exec) does not
/// reach either.
#[test]
fn do_gofers_are_confined() {
    let dir = scratch("do");
    let vol = dir.join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("marker"), "x").unwrap();
    let mut fds = [0; 2];
    // SAFETY: a valid out-array of two ints.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let leaked_ino = std::fs::metadata(format!("/proc/self/fd/{}", fds[0]))
        .unwrap()
        .ino();
    let leak = fds[0];
    let mut c = Command::new(runsc_bin());
    c.arg(format!("--platform={}", PLATFORMS[0]))
        .args(extra_runsc_flags())
        .arg("do")
        .arg(format!("--volume={}:/vol", vol.display()))
        .args(["--", "sleep", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    // SAFETY: the closure only makes async-signal-safe calls (dup2).
    unsafe {
        c.pre_exec(move || {
            // The same pipe as fd 60, without close-on-exec: runsc inherits it.
            if libc::dup2(leak, 60) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = c.spawn().unwrap();
    // SAFETY: closing our own pipe fds.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    let runsc = child.id() as i32;
    let result = std::panic::catch_unwind(|| {
        let gofers = wait_confined(2, || gofers_of(runsc));
        let mut saw_root = false;
        let mut saw_vol = false;
        for &g in &gofers {
            check_gofer(g, Some(leaked_ino));
            let root = PathBuf::from(format!("/proc/{g}/root"));
            if cmdline(g).contains("--root=/ ") {
                saw_root = true;
                assert!(same_file(&root, Path::new("/")), "gofer {g}: root");
                // The host's /proc, /sys and /dev are mounts beneath "/": the
                // gofer's tree has them detached (what is left are the root file
                // system's own directories under them).
                for d in ["proc", "sys", "dev"] {
                    let host = std::fs::metadata(Path::new("/").join(d)).unwrap().dev();
                    if host == std::fs::metadata("/").unwrap().dev() {
                        continue; // not a mount on this host
                    }
                    if let Ok(m) = std::fs::metadata(root.join(d)) {
                        assert_ne!(m.dev(), host, "gofer {g} sees the host's /{d}");
                    }
                }
                assert!(!root.join("proc/self").exists(), "gofer {g}: host /proc");
            } else {
                saw_vol = true;
                assert!(same_file(&root, &vol), "gofer {g}: root is not the volume");
                assert!(root.join("marker").exists());
            }
        }
        assert!(saw_root && saw_vol, "{gofers:?}");
    });
    // runsc do, its gofers and the sentry: the process group it leads.
    // SAFETY: signalling the process group this test started.
    unsafe { libc::kill(-runsc, libc::SIGKILL) };
    kill_wait(child);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// An OCI container with a writable rootfs and read-only single-file bind
/// mounts: the root gofer is pivoted into the rootfs, each file's gofer into a
/// tmpfs holding only that file.
#[test]
fn oci_gofers_are_confined() {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "/bin/busybox is missing: install the Debian package busybox-static"
    );
    let dir = scratch("oci");
    let rootfs = dir.join("b/rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("tmp")).unwrap();
    std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    for l in ["sh", "sleep"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(l)).unwrap();
    }
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, "127.0.0.1 x\n").unwrap();
    // A sibling the file's gofer must not see.
    std::fs::write(dir.join("secret"), "s").unwrap();
    std::fs::write(
        dir.join("b/config.json"),
        format!(
            r#"{{"ociVersion":"1.0.2",
  "process":{{"args":["sleep","30"],"env":["PATH=/bin"],"cwd":"/","user":{{"uid":0,"gid":0}}}},
  "root":{{"path":"rootfs","readonly":false}},
  "mounts":[{{"destination":"/etc/hosts","type":"bind","source":"{}","options":["rbind","ro"]}},
            {{"destination":"/cpuinfo","type":"bind","source":"/proc/cpuinfo","options":["rbind","ro"]}}]}}"#,
            hosts.display()
        ),
    )
    .unwrap();
    let state = dir.join("state");
    // stderr to a file, not a pipe: the created sandbox keeps it open.
    let err = dir.join("stderr");
    let runsc = |args: &[&str]| {
        let s = Command::new(runsc_bin())
            .arg(format!("--root={}", state.display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        (s, std::fs::read_to_string(&err).unwrap_or_default())
    };
    let b = dir.join("b");
    let (st, e) = runsc(&["create", "--bundle", b.to_str().unwrap(), "gc1"]);
    assert!(st.success(), "create: {st:?} {e}");
    let result = std::panic::catch_unwind(|| {
        let st: serde_json::Value =
            serde_json::from_slice(&std::fs::read(state.join("gc1/state.json")).unwrap()).unwrap();
        let pids: Vec<i32> = st["runsc"]["gofers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["pid"].as_i64().unwrap() as i32)
            .collect();
        assert_eq!(pids.len(), 3, "{st}");
        let pids = wait_confined(3, || pids.clone());
        let (mut saw_root, mut saw_files) = (false, 0);
        for &g in &pids {
            check_gofer(g, None);
            let root = PathBuf::from(format!("/proc/{g}/root"));
            // A file in /proc itself: its tmpfs covers the host's /proc in the
            // gofer's mount namespace.
            let file = [hosts.as_path(), Path::new("/proc/cpuinfo")]
                .into_iter()
                .find(|f| cmdline(g).contains(&format!("--root={} ", f.display())));
            if let Some(file) = file {
                saw_files += 1;
                let name = file.file_name().unwrap();
                let names: Vec<_> = std::fs::read_dir(&root)
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect();
                assert_eq!(names, [name], "gofer {g}: its root holds more");
                assert!(same_file(&root.join(name), file), "gofer {g}");
            } else {
                saw_root = true;
                assert!(
                    same_file(&root, &rootfs),
                    "gofer {g}: root is not the rootfs"
                );
            }
        }
        assert!(saw_root && saw_files == 2, "{pids:?}");
    });
    let (st, e) = runsc(&["delete", "--force", "gc1"]);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert!(st.success(), "delete: {st:?} {e}");
}

/// runsc run by a user without privileges still works, and its gofer is as
/// confined: it makes a user namespace of its own (mapping only the caller's
/// ids) with the other namespaces, hides the host's /proc, and keeps at most
/// GOFER_CAPS (of that namespace), no_new_privs and seccomp. (tests/rootless.rs
/// covers the rest of a rootless sandbox.)
#[test]
fn unprivileged_do_still_works() {
    let nobody = |c: &mut Command| {
        c.uid(65534)
            .gid(65534)
            .current_dir("/")
            .stdin(Stdio::null())
            .env_clear()
            .env("PATH", "/usr/bin:/bin");
    };
    let mut probe = Command::new(runsc_bin());
    probe.arg("--version");
    nobody(&mut probe);
    match probe.output() {
        Ok(o) if o.status.success() => {}
        r => {
            eprintln!(
                "skipped: uid 65534 cannot run {}: {r:?}",
                runsc_bin().display()
            );
            return;
        }
    }
    let mut c = Command::new(runsc_bin());
    c.arg(format!("--platform={}", PLATFORMS[0]))
        .args(extra_runsc_flags())
        .args(["do", "sh", "-c", "id -u; ls / >/dev/null && echo ok"]);
    nobody(&mut c);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "65534\nok\n", "{o:?}");

    let mut c = Command::new(runsc_bin());
    c.arg(format!("--platform={}", PLATFORMS[0]))
        .args(extra_runsc_flags())
        .args(["do", "sleep", "30"]);
    nobody(&mut c);
    let child = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let runsc = child.id() as i32;
    let result = std::panic::catch_unwind(|| {
        let gofers = wait_confined(1, || gofers_of(runsc));
        for g in gofers {
            let what = format!("gofer {g} ({})", cmdline(g));
            for kind in ["user", "mnt", "net", "ipc", "uts"] {
                assert_ne!(
                    ns(&g.to_string(), kind),
                    ns("self", kind),
                    "{what}: {kind} namespace is the host's"
                );
            }
            for f in ["CapEff", "CapPrm", "CapBnd"] {
                let v = u64::from_str_radix(&status_field(g, f).unwrap(), 16).unwrap();
                assert_eq!(v & !GOFER_CAPS, 0, "{what}: {f} {v:#x}");
            }
            assert_eq!(
                status_field(g, "NoNewPrivs").as_deref(),
                Some("1"),
                "{what}"
            );
            assert_eq!(
                status_field(g, "Uid").unwrap(),
                "65534\t65534\t65534\t65534"
            );
            let root = PathBuf::from(format!("/proc/{g}/root"));
            assert!(same_file(&root, Path::new("/")), "{what}: root");
            assert!(!root.join("proc/self").exists(), "{what}: host /proc");
        }
    });
    // SAFETY: signalling the process group this test started.
    unsafe { libc::kill(-runsc, libc::SIGKILL) };
    kill_wait(child);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
