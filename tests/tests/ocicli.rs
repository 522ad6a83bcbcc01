//! runc-compatible auxiliary commands of the built runsc binary: `spec`,
//! `install`/`uninstall` (always with --config-file in a temporary directory,
//! never /etc/docker), `features` and `--version`. Everything is written
//! inside temporary directories that are removed afterwards.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use tests::runsc_bin;

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "runsc-ocicli-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn runsc(cwd: &Path, args: &[&str]) -> Output {
    Command::new(runsc_bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run runsc")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

/// A failure: exit status 1, one line on stderr containing `want`.
fn assert_one_line_error(out: &Output, want: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    assert!(err.contains(want), "stderr {err:?} lacks {want:?}");
}

#[test]
fn version() {
    let d = TempDir::new("version");
    for flag in ["--version", "version"] {
        let out = runsc(&d.0, &[flag]);
        assert!(out.status.success());
        let s = text(&out.stdout);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 3, "{s}");
        assert!(lines[0].starts_with("runsc version "), "{s}");
        assert!(lines[1].starts_with("commit: "), "{s}");
        assert_eq!(lines[2], "spec: 1.1.0");
    }
}

#[test]
fn spec_writes_default_config() {
    let d = TempDir::new("spec");
    let out = runsc(&d.0, &["spec"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let path = d.0.join("config.json");
    let bytes = std::fs::read(&path).unwrap();
    let v: Value = serde_json::from_slice(&bytes).expect("config.json is JSON");
    assert_eq!(
        keys(&v),
        [
            "ociVersion",
            "process",
            "root",
            "hostname",
            "mounts",
            "linux"
        ]
    );
    assert_eq!(v["ociVersion"], "1.0.2-dev");
    assert_eq!(v["process"]["terminal"], true);
    assert_eq!(v["process"]["args"], serde_json::json!(["sh"]));
    assert_eq!(v["process"]["cwd"], "/");
    assert_eq!(v["process"]["noNewPrivileges"], true);
    assert_eq!(v["root"]["path"], "rootfs");
    assert_eq!(v["hostname"], "runsc");
    assert_eq!(v["mounts"].as_array().unwrap().len(), 7);
    assert_eq!(v["linux"]["namespaces"].as_array().unwrap().len(), 6);

    // A second run refuses to overwrite it, as runc does.
    let out = runsc(&d.0, &["spec"]);
    assert_one_line_error(&out, "File config.json exists. Remove it first");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn spec_bundle_and_rootless() {
    let d = TempDir::new("spec-bundle");
    std::fs::create_dir(d.0.join("b")).unwrap();
    let out = runsc(&d.0, &["spec", "--bundle", "b", "--rootless"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!d.0.join("config.json").exists());
    let v: Value =
        serde_json::from_slice(&std::fs::read(d.0.join("b/config.json")).unwrap()).unwrap();
    let l = &v["linux"];
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(l["uidMappings"][0]["hostID"], euid);
    assert_eq!(l["uidMappings"][0]["containerID"], 0);
    let ns: Vec<&str> = l["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(ns.contains(&"user") && !ns.contains(&"network"), "{ns:?}");
    assert!(l.get("resources").is_none());

    let out = runsc(&d.0, &["spec", "-b=b"]);
    assert_one_line_error(&out, "File config.json exists. Remove it first");
    let out = runsc(&d.0, &["spec", "--bogus"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn install_and_uninstall() {
    let d = TempDir::new("install");
    let cfg = d.0.join("daemon.json");
    let original = r#"{
    "log-driver": "json-file",
    "runtimes": {
        "other": {
            "path": "/usr/bin/other",
            "runtimeArgs": ["--x"]
        }
    },
    "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}},
    "debug": false
}"#;
    std::fs::write(&cfg, original).unwrap();
    let cfg_s = cfg.to_str().unwrap();

    let out = runsc(
        &d.0,
        &[
            "install",
            "--config-file",
            cfg_s,
            "--runtime=myrunsc",
            "--",
            "--debug",
            "--network=none",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "Added runtime \"myrunsc\" with arguments [\"--debug\" \"--network=none\"] to \"{cfg_s}\".\n"
        )
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    let before: Value = serde_json::from_str(original).unwrap();
    assert_eq!(
        keys(&v),
        ["log-driver", "runtimes", "default-ulimits", "debug"]
    );
    assert_eq!(keys(&v["runtimes"]), ["other", "myrunsc"]);
    assert_eq!(v["runtimes"]["other"], before["runtimes"]["other"]);
    assert_eq!(v["default-ulimits"], before["default-ulimits"]);
    let bin = std::fs::canonicalize(runsc_bin()).unwrap();
    assert_eq!(
        v["runtimes"]["myrunsc"],
        serde_json::json!({"path": bin.to_str().unwrap(), "runtimeArgs": ["--debug", "--network=none"]})
    );

    let out = runsc(
        &d.0,
        &["uninstall", "--config-file", cfg_s, "--runtime", "myrunsc"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("Removed runtime \"myrunsc\" from \"{cfg_s}\".\n")
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    assert_eq!(v, before);
    assert_eq!(
        keys(&v),
        ["log-driver", "runtimes", "default-ulimits", "debug"]
    );

    // Not installed: an error, the file unchanged.
    let now = std::fs::read(&cfg).unwrap();
    let out = runsc(
        &d.0,
        &["uninstall", "--config-file", cfg_s, "--runtime", "myrunsc"],
    );
    assert_one_line_error(&out, "not found");
    assert_eq!(std::fs::read(&cfg).unwrap(), now);
    // Only daemon.json is in the directory (no temporary files left).
    assert_eq!(std::fs::read_dir(&d.0).unwrap().count(), 1);
}

#[test]
fn install_creates_missing_file_and_refuses_invalid_json() {
    let d = TempDir::new("install-new");
    let cfg = d.0.join("docker/daemon.json");
    let cfg_s = cfg.to_str().unwrap();
    let out = runsc(&d.0, &["install", "--config-file", cfg_s]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("Added runtime \"runsc\" with arguments [] to "));
    let v: Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    assert_eq!(keys(&v), ["runtimes"]);
    assert!(v["runtimes"]["runsc"]["path"]
        .as_str()
        .unwrap()
        .starts_with('/'));
    let out = runsc(&d.0, &["uninstall", "--config-file", cfg_s]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    assert_eq!(v, serde_json::json!({}));

    let bad = "{\"debug\": true,,}";
    std::fs::write(&cfg, bad).unwrap();
    let out = runsc(&d.0, &["install", "--config-file", cfg_s]);
    assert_one_line_error(&out, "invalid JSON");
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), bad);
    let out = runsc(&d.0, &["uninstall", "--config-file", cfg_s]);
    assert_one_line_error(&out, "invalid JSON");
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), bad);
}

#[test]
fn features_is_json() {
    let d = TempDir::new("features");
    let out = runsc(&d.0, &["features"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("features prints JSON");
    assert_eq!(
        keys(&v),
        [
            "ociVersionMin",
            "ociVersionMax",
            "hooks",
            "mountOptions",
            "linux",
            "annotations"
        ]
    );
    assert_eq!(v["ociVersionMax"], "1.1.0");
    assert_eq!(v["linux"]["seccomp"]["enabled"], false);
    assert_eq!(v["linux"]["apparmor"]["enabled"], false);
    assert_eq!(v["linux"]["selinux"]["enabled"], false);
    assert!(v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "pid"));
    assert_eq!(
        v["annotations"]["org.opencontainers.runc.checkpoint.enabled"],
        "false"
    );
    assert!(v["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h == "poststop"));
}
