//! `runsc install` / `runsc uninstall`: register runsc with Docker by editing
//! the `runtimes` object of its daemon.json (as gVisor's `runsc install`
//! does), leaving everything else in the file as it was: other keys and their
//! order, other runtimes, nested objects.
//!
//! ```text
//! runsc install   [--config-file FILE] [--runtime NAME] [-- RUNTIME_FLAGS...]
//! runsc uninstall [--config-file FILE] [--runtime NAME]
//! ```
//!
//! FILE defaults to /etc/docker/daemon.json and NAME to "runsc". The file is
//! rewritten atomically (a temporary file in the same directory, renamed over
//! it) with its mode and owner kept; a file that is not valid JSON is an error
//! and is left untouched. Values are re-serialised, so whitespace is
//! normalised (4-space indent) and a float may be re-spelled (1e3 -> 1000.0).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::cli::split_flag;

pub const DEFAULT_CONFIG: &str = "/etc/docker/daemon.json";
pub const DEFAULT_RUNTIME: &str = "runsc";

/// Parses daemon.json text; empty (or all-whitespace) is an empty object.
pub fn parse_config(text: &str) -> Result<Map<String, Value>, String> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// Adds (or replaces) runtime `name` in `cfg`; returns whether it replaced
/// one. A replaced entry keeps its place among the runtimes.
pub fn add_runtime(
    cfg: &mut Map<String, Value>,
    name: &str,
    path: &str,
    args: &[String],
) -> Result<bool, String> {
    let runtimes = cfg
        .entry("runtimes")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(runtimes) = runtimes else {
        return Err("\"runtimes\" is not a JSON object".into());
    };
    let mut entry = Map::new();
    entry.insert("path".into(), Value::String(path.into()));
    if !args.is_empty() {
        entry.insert(
            "runtimeArgs".into(),
            Value::Array(args.iter().cloned().map(Value::String).collect()),
        );
    }
    Ok(runtimes.insert(name.into(), Value::Object(entry)).is_some())
}

/// Removes runtime `name` from `cfg` (and "runtimes" if that leaves it empty).
pub fn remove_runtime(cfg: &mut Map<String, Value>, name: &str) -> Result<(), String> {
    let Some(Value::Object(runtimes)) = cfg.get_mut("runtimes") else {
        return Err(format!("runtime {name:?} not found"));
    };
    // shift_remove keeps the order of the others (remove would swap).
    if runtimes.shift_remove(name).is_none() {
        return Err(format!("runtime {name:?} not found"));
    }
    if runtimes.is_empty() {
        cfg.shift_remove("runtimes");
    }
    Ok(())
}

/// daemon.json text for `cfg`: 4-space indent, trailing newline.
pub fn render(cfg: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(cfg, &mut ser).expect("serialising a JSON value");
    out.push(b'\n');
    out
}

/// The file actually edited: `path`, or its target if it is a symlink.
fn real_path(path: &Path) -> PathBuf {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

/// Reads `path` (a missing file is an empty object) with its metadata.
fn load(path: &Path) -> Result<(Map<String, Value>, Option<fs::Metadata>), String> {
    match fs::read(path) {
        Ok(bytes) => {
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| format!("{}: invalid JSON: not UTF-8", path.display()))?;
            let cfg = parse_config(text).map_err(|e| format!("{}: {e}", path.display()))?;
            let meta = fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok((cfg, Some(meta)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Map::new(), None)),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Replaces `path` with `data` atomically, with the mode and owner of `old`
/// (0644 for a new file, whose directory is created if missing).
fn write_atomic(path: &Path, data: &[u8], old: Option<&fs::Metadata>) -> Result<(), String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "daemon.json".into());
    let tmp = dir.join(format!(".{name}.runsc-{}.tmp", std::process::id()));
    let mode = old.map_or(0o644, |m| m.permissions().mode() & 0o7777);
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        if let Some(m) = old {
            // Best effort: only root can give the file to someone else.
            let _ = std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()));
        }
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// Go's %q of a []string: `["a" "b"]`.
fn quote_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(" "))
}

/// Installs runtime `name` (binary `bin`, flags `args`) into `config`;
/// returns the message to print.
pub fn install(config: &Path, name: &str, bin: &str, args: &[String]) -> Result<String, String> {
    let real = real_path(config);
    let (mut cfg, meta) = load(&real)?;
    let replaced =
        add_runtime(&mut cfg, name, bin, args).map_err(|e| format!("{}: {e}", real.display()))?;
    write_atomic(&real, &render(&cfg), meta.as_ref())?;
    Ok(format!(
        "{} runtime {name:?} with arguments {} to {:?}.",
        if replaced { "Replaced" } else { "Added" },
        quote_list(args),
        config.display().to_string()
    ))
}

/// Removes runtime `name` from `config`; returns the message to print.
pub fn uninstall(config: &Path, name: &str) -> Result<String, String> {
    let real = real_path(config);
    let (mut cfg, meta) = match load(&real)? {
        (_, None) => return Err(format!("{}: no such file", config.display())),
        v => v,
    };
    remove_runtime(&mut cfg, name).map_err(|e| format!("{e} in {}", config.display()))?;
    write_atomic(&real, &render(&cfg), meta.as_ref())?;
    Ok(format!(
        "Removed runtime {name:?} from {:?}.",
        config.display().to_string()
    ))
}

struct Opts {
    config: PathBuf,
    runtime: String,
    extra: Vec<String>,
}

fn parse(cmd: &str, args: &[String], allow_extra: bool) -> Result<Opts, String> {
    let mut o = Opts {
        config: PathBuf::from(DEFAULT_CONFIG),
        runtime: DEFAULT_RUNTIME.into(),
        extra: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            if !allow_extra {
                return Err(format!("{cmd} takes no runtime flags"));
            }
            o.extra = args[i + 1..].to_vec();
            break;
        }
        let Some((name, inline)) = split_flag(a) else {
            return Err(format!("unexpected argument {a:?}"));
        };
        let mut value = || -> Result<String, String> {
            if let Some(v) = inline {
                return Ok(v.to_string());
            }
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("flag needs an argument: --{name}"))
        };
        match name {
            "config-file" | "config_file" => o.config = PathBuf::from(value()?),
            "runtime" => o.runtime = value()?,
            _ => return Err(format!("flag provided but not defined: -{name}")),
        }
        i += 1;
    }
    if o.runtime.is_empty() {
        return Err("--runtime must not be empty".into());
    }
    if o.config.as_os_str().is_empty() {
        return Err("--config-file must not be empty".into());
    }
    Ok(o)
}

/// `runsc install`.
pub fn cmd_install(args: &[String]) -> i32 {
    let r = parse("install", args, true).and_then(|o| {
        let bin =
            std::env::current_exe().map_err(|e| format!("cannot find the runsc binary: {e}"))?;
        install(&o.config, &o.runtime, &bin.to_string_lossy(), &o.extra)
    });
    report("install", r)
}

/// `runsc uninstall`.
pub fn cmd_uninstall(args: &[String]) -> i32 {
    let r = parse("uninstall", args, false).and_then(|o| uninstall(&o.config, &o.runtime));
    report("uninstall", r)
}

fn report(cmd: &str, r: Result<String, String>) -> i32 {
    match r {
        Ok(msg) => {
            println!("{msg}");
            0
        }
        Err(e) => {
            eprintln!("runsc {cmd}: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct TempDir(PathBuf);
    impl TempDir {
        fn new() -> TempDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let p = std::env::temp_dir().join(format!(
                "runsc-install-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    const EXISTING: &str = r#"{
  "zzz-first": 1,
  "log-opts": {"max-size": "10m", "max-file": "3", "labels": ["a", "b"]},
  "runtimes": {
    "kata": {"path": "/usr/bin/kata-runtime"},
    "crun": {"path": "/usr/bin/crun", "runtimeArgs": ["--debug"]}
  },
  "big": 18446744073709551615,
  "debug": true,
  "aaa-last": null
}"#;

    #[test]
    fn install_preserves_everything_else() {
        let d = TempDir::new();
        let f = d.0.join("daemon.json");
        fs::write(&f, EXISTING).unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
        let msg = install(
            &f,
            "runsc",
            "/opt/runsc",
            &s(&["--debug", "--platform=ptrace"]),
        )
        .unwrap();
        assert_eq!(
            msg,
            format!(
                "Added runtime \"runsc\" with arguments [\"--debug\" \"--platform=ptrace\"] to {:?}.",
                f.display().to_string()
            )
        );
        let v: Value = serde_json::from_slice(&fs::read(&f).unwrap()).unwrap();
        let before: Value = serde_json::from_str(EXISTING).unwrap();
        assert_eq!(
            keys(&v),
            [
                "zzz-first",
                "log-opts",
                "runtimes",
                "big",
                "debug",
                "aaa-last"
            ]
        );
        assert_eq!(keys(&v["log-opts"]), ["max-size", "max-file", "labels"]);
        assert_eq!(v["log-opts"], before["log-opts"]);
        assert_eq!(v["big"].as_u64(), Some(u64::MAX));
        assert_eq!(keys(&v["runtimes"]), ["kata", "crun", "runsc"]);
        assert_eq!(v["runtimes"]["crun"], before["runtimes"]["crun"]);
        assert_eq!(
            v["runtimes"]["runsc"],
            serde_json::json!({"path": "/opt/runsc", "runtimeArgs": ["--debug", "--platform=ptrace"]})
        );
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        // No temporary file left behind.
        assert_eq!(fs::read_dir(&d.0).unwrap().count(), 1);

        // Reinstalling replaces in place; uninstall restores the original.
        let msg = install(&f, "runsc", "/opt/runsc2", &[]).unwrap();
        assert!(msg.starts_with("Replaced runtime \"runsc\" with arguments []"));
        let v: Value = serde_json::from_slice(&fs::read(&f).unwrap()).unwrap();
        assert_eq!(
            v["runtimes"]["runsc"],
            serde_json::json!({"path": "/opt/runsc2"})
        );
        let msg = uninstall(&f, "runsc").unwrap();
        assert_eq!(
            msg,
            format!(
                "Removed runtime \"runsc\" from {:?}.",
                f.display().to_string()
            )
        );
        let v: Value = serde_json::from_slice(&fs::read(&f).unwrap()).unwrap();
        assert_eq!(v, before);
        assert_eq!(
            keys(&v),
            [
                "zzz-first",
                "log-opts",
                "runtimes",
                "big",
                "debug",
                "aaa-last"
            ]
        );
        assert_eq!(keys(&v["runtimes"]), ["kata", "crun"]);
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
            0o640
        );
    }

    #[test]
    fn uninstall_keeps_order_of_other_runtimes() {
        let mut cfg = parse_config(
            r#"{"runtimes": {"a": {"path": "/a"}, "runsc": {"path": "/r"}, "b": {"path": "/b"}, "c": {}}, "x": 1}"#,
        )
        .unwrap();
        remove_runtime(&mut cfg, "runsc").unwrap();
        let v = Value::Object(cfg);
        assert_eq!(keys(&v), ["runtimes", "x"]);
        assert_eq!(keys(&v["runtimes"]), ["a", "b", "c"]);
    }

    #[test]
    fn uninstall_drops_emptied_runtimes() {
        let d = TempDir::new();
        let f = d.0.join("daemon.json");
        fs::write(
            &f,
            r#"{"a": 1, "runtimes": {"runsc": {"path": "/x"}}, "b": {"c": [1, 2]}}"#,
        )
        .unwrap();
        uninstall(&f, "runsc").unwrap();
        let v: Value = serde_json::from_slice(&fs::read(&f).unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"a": 1, "b": {"c": [1, 2]}}));
        assert_eq!(keys(&v), ["a", "b"]);
        // Removing it again is an error, and the file is unchanged.
        let before = fs::read(&f).unwrap();
        let e = uninstall(&f, "runsc").unwrap_err();
        assert!(e.contains("runtime \"runsc\" not found"), "{e}");
        assert_eq!(fs::read(&f).unwrap(), before);
    }

    #[test]
    fn creates_missing_file_and_directory() {
        let d = TempDir::new();
        let f = d.0.join("etc/docker/daemon.json");
        let msg = install(&f, "myrt", "/bin/runsc", &[]).unwrap();
        assert!(
            msg.starts_with("Added runtime \"myrt\" with arguments [] to "),
            "{msg}"
        );
        let text = fs::read_to_string(&f).unwrap();
        assert_eq!(
            text,
            "{\n    \"runtimes\": {\n        \"myrt\": {\n            \"path\": \"/bin/runsc\"\n        }\n    }\n}\n"
        );
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // Uninstalling from a missing file is an error that creates nothing.
        let g = d.0.join("none.json");
        assert!(uninstall(&g, "myrt").is_err());
        assert!(!g.exists());
    }

    #[test]
    fn empty_file_is_an_empty_object() {
        let d = TempDir::new();
        let f = d.0.join("daemon.json");
        fs::write(&f, "  \n").unwrap();
        install(&f, "runsc", "/r", &s(&["--x"])).unwrap();
        let v: Value = serde_json::from_slice(&fs::read(&f).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"runtimes": {"runsc": {"path": "/r", "runtimeArgs": ["--x"]}}})
        );
    }

    #[test]
    fn invalid_json_is_untouched() {
        let d = TempDir::new();
        for bad in ["{\"a\": 1,", "[1, 2]", "{\"runtimes\": 5}", "nul"] {
            let f = d.0.join("daemon.json");
            fs::write(&f, bad).unwrap();
            let e = install(&f, "runsc", "/r", &[]).unwrap_err();
            assert!(!e.contains('\n'), "{e}");
            assert!(e.starts_with(&f.display().to_string()), "{e}");
            assert_eq!(fs::read_to_string(&f).unwrap(), bad);
            assert!(uninstall(&f, "runsc").is_err());
            assert_eq!(fs::read_to_string(&f).unwrap(), bad);
            assert_eq!(fs::read_dir(&d.0).unwrap().count(), 1);
        }
    }

    #[test]
    fn symlinked_config_edits_the_target() {
        let d = TempDir::new();
        let target = d.0.join("real.json");
        fs::write(&target, "{\"k\": \"v\"}").unwrap();
        let link = d.0.join("daemon.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        install(&link, "runsc", "/r", &[]).unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        let v: Value = serde_json::from_slice(&fs::read(&target).unwrap()).unwrap();
        assert_eq!(keys(&v), ["k", "runtimes"]);
    }

    #[test]
    fn flags() {
        let o = parse(
            "install",
            &s(&[
                "--runtime=rs",
                "--config_file",
                "/tmp/d.json",
                "--",
                "--strace",
                "x",
            ]),
            true,
        )
        .unwrap();
        assert_eq!(o.runtime, "rs");
        assert_eq!(o.config, PathBuf::from("/tmp/d.json"));
        assert_eq!(o.extra, s(&["--strace", "x"]));
        let o = parse("install", &[], true).unwrap();
        assert_eq!(o.config, PathBuf::from(DEFAULT_CONFIG));
        assert_eq!(o.runtime, "runsc");
        assert!(o.extra.is_empty());
        assert!(parse("uninstall", &s(&["--", "--x"]), false).is_err());
        assert!(parse("install", &s(&["--bogus"]), true).is_err());
        assert!(parse("install", &s(&["--runtime"]), true).is_err());
        assert!(parse("install", &s(&["stray"]), true).is_err());
    }
}
