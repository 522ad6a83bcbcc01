//! An OCI bundle's `config.json`, parsed into what the sandbox uses.
//!
//! The file is untrusted: it is read as a `serde_json::Value` and every field is
//! extracted by hand, so that each error is one line naming the field
//! (`process.args: ...`). Unknown fields are ignored.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// A bind mount from the spec (served by its own gofer, as `runsc do
/// --volume`): a directory, or a single regular file (such as an engine's
/// /etc/hosts), which the gofer serves alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
}

/// A tmpfs mount from the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tmpfs {
    pub destination: String,
    pub mode: u32,
    /// Size limit in bytes (None: the sandbox's default).
    pub size: Option<u64>,
    pub read_only: bool,
}

/// The parts of config.json the sandbox implements.
#[derive(Clone, Debug)]
pub struct Spec {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    /// process.capabilities (None: absent, root keeps every capability).
    pub capabilities: Option<super::caps::Caps>,
    /// process.noNewPrivileges.
    pub no_new_privs: bool,
    pub terminal: bool,
    /// The root file system (absolute, canonical).
    pub root: PathBuf,
    pub root_readonly: bool,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub binds: Vec<Bind>,
    pub tmpfs: Vec<Tmpfs>,
    pub annotations: Map<String, Value>,
}

/// Largest config.json we read (engines write a few KiB).
const MAX_CONFIG: u64 = 4 << 20;

/// Reads and parses `<bundle>/config.json`.
pub fn load(bundle: &Path) -> Result<Spec, String> {
    use std::io::Read;
    let path = bundle.join("config.json");
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let f = std::fs::File::open(&path).map_err(err)?;
    if !f.metadata().map_err(err)?.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    let mut text = Vec::new();
    f.take(MAX_CONFIG + 1).read_to_end(&mut text).map_err(err)?;
    if text.len() as u64 > MAX_CONFIG {
        return Err(format!("{}: file too large", path.display()));
    }
    parse(&text, bundle)
}

fn obj<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{field}: expected an object"))
}

/// An optional member: missing and null are the same.
fn member<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.get(key).filter(|v| !v.is_null())
}

fn string(v: &Value, field: &str) -> Result<String, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("{field}: expected a string"))?;
    if s.contains('\0') {
        return Err(format!("{field}: contains a NUL byte"));
    }
    Ok(s.to_string())
}

fn strings(v: &Value, field: &str) -> Result<Vec<String>, String> {
    let a = v
        .as_array()
        .ok_or_else(|| format!("{field}: expected an array of strings"))?;
    a.iter()
        .enumerate()
        .map(|(i, s)| string(s, &format!("{field}[{i}]")))
        .collect()
}

fn u32_of(v: &Value, field: &str) -> Result<u32, String> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("{field}: expected an integer from 0 to 4294967295"))
}

fn bool_of(v: &Value, field: &str) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("{field}: expected true or false"))
}

/// Checks a mount destination: absolute, no "..", not "/" itself.
fn destination(v: Option<&Value>, field: &str) -> Result<String, String> {
    let d = string(v.ok_or_else(|| format!("{field}: missing"))?, field)?;
    if !d.starts_with('/') {
        return Err(format!("{field}: {d:?} is not an absolute path"));
    }
    if d.split('/').any(|c| c == "..") {
        return Err(format!("{field}: {d:?} may not contain \"..\""));
    }
    Ok(d)
}

/// `/a//b/` -> `/a/b`.
fn clean(p: &str) -> String {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// Parses a tmpfs `size=` value: bytes, or with a k/m/g suffix.
fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1u64 << 10),
        b'm' | b'M' => (&s[..s.len() - 1], 1 << 20),
        b'g' | b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// The members of config.json and of `process` read here (others are logged
/// as ignored).
const TOP_FIELDS: &[&str] = &[
    "ociVersion",
    "process",
    "root",
    "hostname",
    "domainname",
    "mounts",
    "annotations",
];
const PROCESS_FIELDS: &[&str] = &[
    "args",
    "env",
    "cwd",
    "user",
    "terminal",
    "capabilities",
    "noNewPrivileges",
];

/// Parses the text of config.json; relative paths are resolved against `bundle`.
pub fn parse(text: &[u8], bundle: &Path) -> Result<Spec, String> {
    let v: Value =
        serde_json::from_slice(text).map_err(|e| format!("config.json: invalid JSON: {e}"))?;
    let top = obj(&v, "config.json")?;

    let version = member(top, "ociVersion").ok_or("ociVersion: missing")?;
    let version = string(version, "ociVersion")?;
    if !version.starts_with("1.") {
        return Err(format!(
            "ociVersion: unsupported version {version:?} (want 1.x)"
        ));
    }

    // process
    let process = obj(member(top, "process").ok_or("process: missing")?, "process")?;
    let args = strings(
        member(process, "args").ok_or("process.args: missing")?,
        "process.args",
    )?;
    if args.is_empty() || args[0].is_empty() {
        return Err("process.args: must name a command".into());
    }
    let mut env = Vec::new();
    if let Some(e) = member(process, "env") {
        for (i, kv) in strings(e, "process.env")?.into_iter().enumerate() {
            match kv.split_once('=') {
                Some((k, val)) if !k.is_empty() => env.push((k.to_string(), val.to_string())),
                _ => return Err(format!("process.env[{i}]: {kv:?} is not KEY=VALUE")),
            }
        }
    }
    let cwd = match member(process, "cwd") {
        Some(c) => {
            let c = string(c, "process.cwd")?;
            if !c.starts_with('/') {
                return Err(format!("process.cwd: {c:?} is not an absolute path"));
            }
            c
        }
        None => "/".into(),
    };
    let (mut uid, mut gid, mut additional_gids, mut umask) = (0, 0, Vec::new(), None);
    if let Some(u) = member(process, "user") {
        let u = obj(u, "process.user")?;
        if let Some(x) = member(u, "uid") {
            uid = u32_of(x, "process.user.uid")?;
        }
        if let Some(x) = member(u, "gid") {
            gid = u32_of(x, "process.user.gid")?;
        }
        if let Some(x) = member(u, "umask") {
            let m = u32_of(x, "process.user.umask")?;
            if m > 0o777 {
                return Err("process.user.umask: must be at most 0777".into());
            }
            umask = Some(m);
        }
        if let Some(x) = member(u, "additionalGids") {
            let a = x
                .as_array()
                .ok_or("process.user.additionalGids: expected an array of integers")?;
            if a.len() > 65536 {
                return Err("process.user.additionalGids: too many groups".into());
            }
            for (i, g) in a.iter().enumerate() {
                additional_gids.push(u32_of(g, &format!("process.user.additionalGids[{i}]"))?);
            }
        }
        if member(u, "username").is_some() {
            tracing::debug!("process.user.username ignored (Windows only)");
        }
    }
    let terminal = match member(process, "terminal") {
        Some(t) => bool_of(t, "process.terminal")?,
        None => false,
    };
    let capabilities = member(process, "capabilities")
        .map(|c| super::caps::parse(c, "process.capabilities"))
        .transpose()?;
    let no_new_privs = match member(process, "noNewPrivileges") {
        Some(t) => bool_of(t, "process.noNewPrivileges")?,
        None => false,
    };

    // root
    let root = obj(member(top, "root").ok_or("root: missing")?, "root")?;
    let root_path = string(
        member(root, "path").ok_or("root.path: missing")?,
        "root.path",
    )?;
    if root_path.is_empty() {
        return Err("root.path: empty".into());
    }
    let root_readonly = match member(root, "readonly") {
        Some(r) => bool_of(r, "root.readonly")?,
        None => false,
    };
    let rp = bundle.join(&root_path);
    let root_dir =
        std::fs::canonicalize(&rp).map_err(|e| format!("root.path: {}: {e}", rp.display()))?;
    if !root_dir.is_dir() {
        return Err(format!("root.path: {} is not a directory", rp.display()));
    }

    let hostname = match member(top, "hostname") {
        Some(h) => {
            let h = string(h, "hostname")?;
            if h.len() > 64 {
                return Err("hostname: longer than 64 bytes".into());
            }
            Some(h).filter(|h| !h.is_empty())
        }
        None => None,
    };
    let domainname = match member(top, "domainname") {
        Some(h) => {
            let h = string(h, "domainname")?;
            if h.len() > 64 {
                return Err("domainname: longer than 64 bytes".into());
            }
            Some(h).filter(|h| !h.is_empty())
        }
        None => None,
    };

    // mounts
    let mut binds = Vec::new();
    let mut tmpfs = Vec::new();
    if let Some(ms) = member(top, "mounts") {
        let ms = ms.as_array().ok_or("mounts: expected an array")?;
        for (i, m) in ms.iter().enumerate() {
            let f = format!("mounts[{i}]");
            let m = obj(m, &f)?;
            let dest = destination(member(m, "destination"), &format!("{f}.destination"))?;
            let typ = match member(m, "type") {
                Some(t) => string(t, &format!("{f}.type"))?,
                None => String::new(),
            };
            let options = match member(m, "options") {
                Some(o) => strings(o, &format!("{f}.options"))?,
                None => Vec::new(),
            };
            let read_only = options.iter().any(|o| o == "ro");
            let is_bind = typ == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
            let d = clean(&dest);
            if is_bind {
                let src = string(
                    member(m, "source").ok_or_else(|| format!("{f}.source: missing"))?,
                    &format!("{f}.source"),
                )?;
                let sp = bundle.join(&src);
                let source = std::fs::canonicalize(&sp)
                    .map_err(|e| format!("{f}.source: {}: {e}", sp.display()))?;
                if !source.is_dir() && !source.is_file() {
                    return Err(format!(
                        "{f}.source: {}: only directories and regular files can be bind-mounted",
                        sp.display()
                    ));
                }
                if d == "/" {
                    return Err(format!("{f}.destination: cannot mount over /"));
                }
                binds.push(Bind {
                    source,
                    destination: d,
                    read_only,
                });
                continue;
            }
            match typ.as_str() {
                "tmpfs" if d == "/dev" => {
                    // The sandbox has its own /dev (devices, pts, shm).
                    tracing::debug!("{f}: tmpfs on /dev: the sandbox's own /dev is used");
                }
                "tmpfs" if d == "/" => {
                    return Err(format!("{f}.destination: cannot mount over /"));
                }
                "tmpfs" => {
                    let mut mode = 0o1777;
                    let mut size = None;
                    for o in &options {
                        if let Some(s) = o.strip_prefix("size=") {
                            size = Some(
                                parse_size(s)
                                    .ok_or_else(|| format!("{f}.options: bad tmpfs size {s:?}"))?,
                            );
                        } else if let Some(s) = o.strip_prefix("mode=") {
                            mode = u32::from_str_radix(s, 8)
                                .ok()
                                .filter(|m| *m <= 0o7777)
                                .ok_or_else(|| format!("{f}.options: bad tmpfs mode {s:?}"))?;
                        }
                    }
                    tmpfs.push(Tmpfs {
                        destination: d,
                        mode,
                        size,
                        read_only,
                    });
                }
                "proc" | "sysfs" if d == "/proc" || d == "/sys" => {
                    tracing::debug!("{f}: {typ} on {d}: the sandbox's own is used");
                }
                "proc" | "sysfs" => {
                    return Err(format!(
                        "{f}: {typ} can only be mounted at /proc or /sys, not {d}"
                    ));
                }
                "devpts" | "mqueue" | "cgroup" | "cgroup2" | "shm" => {
                    tracing::debug!("{f}: {typ} on {d}: ignored (the sandbox provides its own)");
                }
                other => {
                    return Err(format!("{f}.type: unsupported mount type {other:?}"));
                }
            }
        }
    }

    // What runsc does not implement (yet) is accepted: named in the debug log.
    for k in top.keys() {
        if !TOP_FIELDS.contains(&k.as_str()) {
            tracing::debug!("config.json: {k} ignored");
        }
    }
    for k in process.keys() {
        if !PROCESS_FIELDS.contains(&k.as_str()) {
            tracing::debug!("config.json: process.{k} ignored");
        }
    }

    let annotations = match member(top, "annotations") {
        Some(a) => {
            let a = obj(a, "annotations")?;
            for (k, v) in a {
                if !v.is_string() {
                    return Err(format!("annotations.{k}: expected a string"));
                }
            }
            a.clone()
        }
        None => Map::new(),
    };

    Ok(Spec {
        args,
        env,
        cwd,
        uid,
        gid,
        additional_gids,
        umask,
        capabilities,
        no_new_privs,
        terminal,
        root: root_dir,
        root_readonly,
        hostname,
        domainname,
        binds,
        tmpfs,
        annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> PathBuf {
        std::env::temp_dir()
    }

    fn cfg(extra: &str) -> String {
        format!(
            r#"{{"ociVersion":"1.0.2","process":{{"args":["sh"],"cwd":"/"}},"root":{{"path":"/"}}{extra}}}"#
        )
    }

    fn err(text: &str) -> String {
        let e = parse(text.as_bytes(), &bundle()).unwrap_err();
        assert!(!e.contains('\n'), "{e}");
        e
    }

    #[test]
    fn minimal() {
        let s = parse(cfg("").as_bytes(), &bundle()).unwrap();
        assert_eq!(s.args, vec!["sh"]);
        assert_eq!(s.cwd, "/");
        assert!(!s.root_readonly);
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err("{").contains("invalid JSON"));
        assert!(err("[]").contains("config.json"));
        assert!(err(r#"{"ociVersion":"2.0.0"}"#).contains("ociVersion"));
        assert!(err(r#"{"ociVersion":"1.0.0","root":{"path":"/"}}"#).contains("process"));
        assert!(
            err(r#"{"ociVersion":"1.0.0","process":{},"root":{"path":"/"}}"#)
                .contains("process.args")
        );
        assert!(err(r#"{"ociVersion":"1.0.0","process":{"args":["sh"]}}"#).contains("root"));
        assert!(
            err(r#"{"ociVersion":"1.0.0","process":{"args":["sh"]},"root":{}}"#)
                .contains("root.path")
        );
        assert!(err(
            r#"{"ociVersion":"1.0.0","process":{"args":["sh"]},"root":{"path":"/nonexistent-xyz"}}"#
        )
        .contains("root.path"));
        assert!(
            err(&cfg(r#","mounts":[{"destination":"/x","type":"nfs"}]"#))
                .contains("mounts[0].type")
        );
        assert!(
            err(&cfg(r#","mounts":[{"destination":"x","type":"tmpfs"}]"#))
                .contains("mounts[0].destination")
        );
        assert!(err(
            r#"{"ociVersion":"1.0.0","process":{"args":["sh"],"user":{"uid":-1}},"root":{"path":"/"}}"#
        )
        .contains("process.user.uid"));
        assert!(err(&cfg(
            r#","mounts":[{"destination":"/t","type":"tmpfs","options":["size=lots"]}]"#
        ))
        .contains("mounts[0].options"));
    }

    /// Every member of a full config replaced by each JSON type in turn:
    /// an error (one line) or a spec, never a panic.
    #[test]
    fn hostile_types() {
        let full: Value = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","hostname":"h","annotations":{"a":"b"},
              "process":{"args":["sh"],"env":["A=b"],"cwd":"/","terminal":false,
                         "user":{"uid":1,"gid":2,"umask":18,"additionalGids":[3]},
                         "capabilities":{"bounding":["CAP_KILL"],"ambient":[]},
                         "noNewPrivileges":true},
              "root":{"path":"/","readonly":true},
              "mounts":[{"destination":"/t","type":"tmpfs","options":["size=1k"]},
                        {"destination":"/b","type":"bind","source":"/","options":["ro"]}]}"#,
        )
        .unwrap();
        let n = super::super::fuzz::each_member_replaced(&full, |v| {
            if let Err(e) = parse(v.to_string().as_bytes(), &bundle()) {
                assert!(!e.contains('\n'), "{e}");
            }
        });
        assert!(n > 100, "only {n} variants");
        // Deep nesting is refused by the JSON parser, not by a stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(deep.as_bytes(), &bundle()).is_err());
    }

    #[test]
    fn capabilities_and_no_new_privs() {
        let s = parse(cfg("").as_bytes(), &bundle()).unwrap();
        assert_eq!((s.capabilities, s.no_new_privs), (None, false));
        let text = r#"{"ociVersion":"1.0.2","root":{"path":"/"},"process":{"args":["sh"],
            "noNewPrivileges":true,
            "capabilities":{"bounding":["CAP_SYS_ADMIN","CAP_NO_SUCH_CAP"],"effective":["CAP_KILL"]}}}"#;
        let s = parse(text.as_bytes(), &bundle()).unwrap();
        assert!(s.no_new_privs);
        assert_eq!(
            s.capabilities,
            Some(crate::oci::caps::Caps {
                bounding: 1 << 21,
                effective: 1 << 5,
                ..Default::default()
            })
        );
        let e = err(
            r#"{"ociVersion":"1.0.2","root":{"path":"/"},"process":{"args":["sh"],"capabilities":{"bounding":"CAP_KILL"}}}"#,
        );
        assert!(e.contains("process.capabilities.bounding"), "{e}");
        let e = err(
            r#"{"ociVersion":"1.0.2","root":{"path":"/"},"process":{"args":["sh"],"noNewPrivileges":1}}"#,
        );
        assert!(e.contains("process.noNewPrivileges"), "{e}");
    }

    #[test]
    fn mounts() {
        let s = parse(
            cfg(r#","mounts":[{"destination":"/proc","type":"proc","source":"proc"},
                {"destination":"/dev","type":"tmpfs"},
                {"destination":"/dev/pts","type":"devpts"},
                {"destination":"/scratch/","type":"tmpfs","options":["nosuid","size=1m","mode=755"]},
                {"destination":"/b","type":"bind","source":"/","options":["rbind","ro"]}]"#)
            .as_bytes(),
            &bundle(),
        )
        .unwrap();
        assert_eq!(
            s.tmpfs,
            vec![Tmpfs {
                destination: "/scratch".into(),
                mode: 0o755,
                size: Some(1 << 20),
                read_only: false
            }]
        );
        assert_eq!(s.binds.len(), 1);
        assert!(s.binds[0].read_only);
    }

    #[test]
    fn file_binds_and_the_default_spec() {
        let dir = std::env::temp_dir().join(format!("spec-filebind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("hosts");
        std::fs::write(&f, "x").unwrap();
        let s = parse(
            cfg(&format!(
                r#","mounts":[{{"destination":"/etc/hosts","type":"bind","source":"{}","options":["rbind","rw"]}}]"#,
                f.display()
            ))
            .as_bytes(),
            &bundle(),
        )
        .unwrap();
        assert_eq!(s.binds[0].destination, "/etc/hosts");
        assert!(!s.binds[0].read_only);
        // Not a directory or a regular file: refused, naming the field.
        assert!(err(&cfg(
            r#","mounts":[{"destination":"/n","type":"bind","source":"/dev/null"}]"#
        ))
        .contains("mounts[0].source"));
        // Everything `runsc spec` writes is accepted.
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        let text = serde_json::to_vec(&crate::spec_cmd::example()).unwrap();
        let s = parse(&text, &dir).unwrap();
        assert!(s.terminal && s.root_readonly);
        assert_eq!(s.args, vec!["sh"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
