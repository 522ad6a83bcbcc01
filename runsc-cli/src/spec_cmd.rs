//! `runsc spec [--bundle DIR] [--rootless]`: writes the default OCI bundle
//! configuration, `config.json`, as `runc spec` (runc 1.1) does: the same
//! fields, in the same order, tab-indented, no trailing newline. The only
//! differences are the hostname ("runsc") and the cgroup namespace, which
//! runc adds only on a cgroup v2 host and we always add (the sandbox's cgroup
//! view does not depend on the host's).
//!
//! `--rootless` applies runc's `ToRootless`: no network namespace, a user
//! namespace mapping the caller's euid/egid to 0, /sys as a read-only rbind,
//! no uid=/gid= mount options, no linux.resources.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::cli::split_flag;

/// The `ociVersion` written (runc 1.1's).
pub const OCI_VERSION: &str = "1.0.2-dev";

const CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// runc's default spec (libcontainer/specconv.Example), hostname "runsc".
pub fn example() -> Value {
    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": CAPS,
                "effective": CAPS,
                "permitted": CAPS
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "runsc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"]
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"]
            },
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
            }
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"},
                {"type": "network"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
                {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ]
        }
    })
}

/// runc's `ToRootless` applied to `spec` (from `example()`), for a caller
/// with effective ids `uid`/`gid`.
pub fn to_rootless(spec: &mut Value, uid: u32, gid: u32) {
    let linux = spec["linux"].take();
    let mut namespaces: Vec<Value> = linux["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|ns| !matches!(ns["type"].as_str(), Some("network" | "user")))
        .cloned()
        .collect();
    namespaces.push(json!({"type": "user"}));
    // Rebuilt in runc's field order: mappings first, resources dropped.
    let mut out = serde_json::Map::new();
    out.insert(
        "uidMappings".into(),
        json!([{"containerID": 0, "hostID": uid, "size": 1}]),
    );
    out.insert(
        "gidMappings".into(),
        json!([{"containerID": 0, "hostID": gid, "size": 1}]),
    );
    out.insert("namespaces".into(), Value::Array(namespaces));
    if let Value::Object(rest) = linux {
        for (k, v) in rest {
            if !matches!(k.as_str(), "resources" | "namespaces") {
                out.insert(k, v);
            }
        }
    }
    spec["linux"] = Value::Object(out);

    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for m in mounts.iter_mut() {
            if m["destination"].as_str().map(|d| d.trim_end_matches('/')) == Some("/sys") {
                *m = json!({
                    "destination": "/sys",
                    "type": "none",
                    "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]
                });
                continue;
            }
            if let Some(opts) = m.get_mut("options").and_then(Value::as_array_mut) {
                opts.retain(|o| {
                    !o.as_str()
                        .is_some_and(|o| o.starts_with("gid=") || o.starts_with("uid="))
                });
            }
        }
    }
}

/// The bytes `runc spec` writes: tab-indented, no trailing newline.
pub fn render(spec: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(spec, &mut ser).expect("serialising a JSON value");
    out
}

/// Writes `config.json` in `bundle` (never over an existing file or symlink).
pub fn write_spec(bundle: &Path, rootless: bool) -> Result<PathBuf, String> {
    let mut spec = example();
    if rootless {
        // SAFETY: geteuid/getegid cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        to_rootless(&mut spec, uid, gid);
    }
    let path = bundle.join("config.json");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                "File config.json exists. Remove it first".to_string()
            }
            _ => format!("cannot create {}: {e}", path.display()),
        })?;
    if let Err(e) = f.write_all(&render(&spec)).and_then(|()| f.sync_all()) {
        let _ = std::fs::remove_file(&path);
        return Err(format!("cannot write {}: {e}", path.display()));
    }
    Ok(path)
}

/// `runsc spec`.
pub fn cmd_spec(args: &[String]) -> i32 {
    let mut bundle = PathBuf::from(".");
    let mut rootless = false;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let Some((name, inline)) = split_flag(a) else {
            eprintln!("runsc spec: unexpected argument {a:?} (usage: runsc spec [--bundle DIR] [--rootless])");
            return 1;
        };
        match name {
            "bundle" | "b" => {
                let v = match inline {
                    Some(v) => v.to_string(),
                    None => {
                        i += 1;
                        match args.get(i) {
                            Some(v) => v.clone(),
                            None => {
                                eprintln!("runsc spec: flag needs an argument: --bundle");
                                return 1;
                            }
                        }
                    }
                };
                bundle = PathBuf::from(v);
            }
            "rootless" => match inline {
                None | Some("true") => rootless = true,
                Some("false") => rootless = false,
                Some(v) => {
                    eprintln!("runsc spec: invalid boolean value {v:?} for flag --rootless");
                    return 1;
                }
            },
            _ => {
                eprintln!("runsc spec: flag provided but not defined: -{name}");
                return 1;
            }
        }
        i += 1;
    }
    match write_spec(&bundle, rootless) {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("runsc spec: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    #[test]
    fn default_spec_has_runc_fields_in_order() {
        let s = example();
        let text = String::from_utf8(render(&s)).unwrap();
        assert!(!text.ends_with('\n'));
        assert!(text.starts_with(
            "{\n\t\"ociVersion\": \"1.0.2-dev\",\n\t\"process\": {\n\t\t\"terminal\": true,"
        ));
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        assert_eq!(
            keys(&back),
            [
                "ociVersion",
                "process",
                "root",
                "hostname",
                "mounts",
                "linux"
            ]
        );
        let p = &back["process"];
        assert_eq!(
            keys(p),
            [
                "terminal",
                "user",
                "args",
                "env",
                "cwd",
                "capabilities",
                "rlimits",
                "noNewPrivileges"
            ]
        );
        assert_eq!(p["user"], json!({"uid": 0, "gid": 0}));
        assert_eq!(p["args"], json!(["sh"]));
        assert_eq!(p["env"][1], "TERM=xterm");
        assert!(p["env"][0]
            .as_str()
            .unwrap()
            .starts_with("PATH=/usr/local/sbin:"));
        assert_eq!(
            keys(&p["capabilities"]),
            ["bounding", "effective", "permitted"]
        );
        for set in ["bounding", "effective", "permitted"] {
            assert_eq!(p["capabilities"][set], json!(CAPS));
        }
        assert_eq!(
            p["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}])
        );
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(back["root"], json!({"path": "rootfs", "readonly": true}));
        assert_eq!(back["hostname"], "runsc");
        let dests: Vec<&str> = back["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup"
            ]
        );
        assert!(back["mounts"][0].get("options").is_none());
        let l = &back["linux"];
        assert_eq!(
            keys(l),
            ["resources", "namespaces", "maskedPaths", "readonlyPaths"]
        );
        let ns: Vec<&str> = l["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "network", "ipc", "uts", "mount", "cgroup"]);
        assert_eq!(l["maskedPaths"].as_array().unwrap().len(), 10);
        assert_eq!(l["readonlyPaths"][3], "/proc/sys");
    }

    #[test]
    fn rootless_spec() {
        let mut s = example();
        to_rootless(&mut s, 1000, 1001);
        let l = &s["linux"];
        assert_eq!(
            keys(l),
            [
                "uidMappings",
                "gidMappings",
                "namespaces",
                "maskedPaths",
                "readonlyPaths"
            ]
        );
        assert_eq!(
            l["uidMappings"],
            json!([{"containerID": 0, "hostID": 1000, "size": 1}])
        );
        assert_eq!(l["gidMappings"][0]["hostID"], 1001);
        let ns: Vec<&str> = l["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "ipc", "uts", "mount", "cgroup", "user"]);
        let mounts = s["mounts"].as_array().unwrap();
        assert_eq!(
            mounts[5],
            json!({"destination": "/sys", "type": "none", "source": "/sys",
                   "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
        );
        let pts = &mounts[2]["options"];
        assert!(!pts.as_array().unwrap().iter().any(|o| o == "gid=5"));
        assert!(pts.as_array().unwrap().iter().any(|o| o == "mode=0620"));
    }

    #[test]
    fn write_refuses_existing() {
        let dir = std::env::temp_dir().join(format!("runsc-spec-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = write_spec(&dir, false).unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v, example());
        let e = write_spec(&dir, true).unwrap_err();
        assert_eq!(e, "File config.json exists. Remove it first");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
