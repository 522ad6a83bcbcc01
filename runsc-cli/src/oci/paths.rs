//! What the spec sets inside the sandbox besides mounts: `process.rlimits`,
//! `linux.maskedPaths`, `linux.readonlyPaths` and `linux.sysctl`.
//!
//! `runsc create` parses them (one-line errors naming the field) and passes
//! them to `runsc boot` as `--rlimit=RESOURCE:SOFT:HARD`, `--masked-path=P`
//! and `--readonly-path=P`; the sentry applies them before the workload
//! starts:
//!
//! - rlimits become init's (the sentry keeps per-task rlimits; children
//!   inherit them).
//! - readonlyPaths (first, as runc) get a recursive read-only bind mount of
//!   the path over itself; maskedPaths get an empty read-only tmpfs over a
//!   directory and a bind mount of /dev/null over anything else. Paths that do
//!   not exist in the sandbox are skipped, as runc does.
//! - sysctl: the sandbox's /proc/sys is its own and emulates few settings.
//!   As gVisor does, every well-formed entry is accepted: `kernel.hostname` is
//!   applied (it names the sandbox's host name, over `hostname`), the others
//!   are logged (debug log) and ignored.

use std::sync::Arc;

use serde_json::Value;

/// The extra sandbox settings of a spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// (resource, soft, hard).
    pub rlimits: Vec<(u32, u64, u64)>,
    pub masked: Vec<String>,
    pub readonly: Vec<String>,
    /// sysctl kernel.hostname.
    pub hostname: Option<String>,
    /// sysctl kernel.domainname.
    pub domainname: Option<String>,
    /// sysctl net.ipv4.ping_group_range (low, high).
    pub ping_group_range: Option<(u32, u32)>,
}

/// Parses a net.ipv4.ping_group_range value: two gids up to 4294967294
/// (Linux's limit), separated by white space.
fn parse_ping_group_range(v: &str) -> Option<(u32, u32)> {
    let mut it = v.split_ascii_whitespace().map(|w| {
        w.parse::<u32>()
            .ok()
            .filter(|g| *g <= sentry::net::PING_GROUP_MAX)
    });
    let lo = it.next()??;
    let hi = it.next()??;
    it.next().is_none().then_some((lo, hi))
}

/// The rlimit names of the runtime spec, by resource number.
const RLIMITS: &[(&str, u32)] = &[
    ("RLIMIT_CPU", 0),
    ("RLIMIT_FSIZE", 1),
    ("RLIMIT_DATA", 2),
    ("RLIMIT_STACK", 3),
    ("RLIMIT_CORE", 4),
    ("RLIMIT_RSS", 5),
    ("RLIMIT_NPROC", 6),
    ("RLIMIT_NOFILE", 7),
    ("RLIMIT_MEMLOCK", 8),
    ("RLIMIT_AS", 9),
    ("RLIMIT_LOCKS", 10),
    ("RLIMIT_SIGPENDING", 11),
    ("RLIMIT_MSGQUEUE", 12),
    ("RLIMIT_NICE", 13),
    ("RLIMIT_RTPRIO", 14),
    ("RLIMIT_RTTIME", 15),
];

/// Most paths in maskedPaths or readonlyPaths.
const MAX_PATHS: usize = 1024;

fn get<'a>(o: &'a Value, key: &str) -> Option<&'a Value> {
    o.get(key).filter(|v| !v.is_null())
}

fn path_list(v: &Value, field: &str) -> Result<Vec<String>, String> {
    let a = v
        .as_array()
        .ok_or_else(|| format!("{field}: expected an array of strings"))?;
    if a.len() > MAX_PATHS {
        return Err(format!("{field}: too many paths"));
    }
    let mut out = Vec::new();
    for (i, p) in a.iter().enumerate() {
        let p = p
            .as_str()
            .ok_or_else(|| format!("{field}[{i}]: expected a string"))?;
        if !p.starts_with('/') || p.contains('\0') || p.len() >= 4096 {
            return Err(format!("{field}[{i}]: {p:?} is not an absolute path"));
        }
        if p.split('/').any(|c| c == "..") {
            return Err(format!("{field}[{i}]: {p:?} may not contain \"..\""));
        }
        out.push(p.to_string());
    }
    Ok(out)
}

/// Parses the settings from config.json (the whole document is `top`).
pub fn parse(top: &Value) -> Result<Settings, String> {
    let mut s = Settings::default();
    if let Some(rl) = get(top, "process").and_then(|p| get(p, "rlimits")) {
        let rl = rl.as_array().ok_or("process.rlimits: expected an array")?;
        for (i, r) in rl.iter().enumerate() {
            let f = format!("process.rlimits[{i}]");
            if !r.is_object() {
                return Err(format!("{f}: expected an object"));
            }
            let typ = get(r, "type")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{f}.type: expected a string"))?;
            let res = RLIMITS
                .iter()
                .find(|(n, _)| *n == typ)
                .map(|(_, r)| *r)
                .ok_or_else(|| format!("{f}.type: unknown rlimit type {typ:?}"))?;
            let num = |k: &str| {
                get(r, k)
                    .ok_or_else(|| format!("{f}.{k}: missing"))?
                    .as_u64()
                    .ok_or_else(|| format!("{f}.{k}: expected a non-negative integer"))
            };
            let (soft, hard) = (num("soft")?, num("hard")?);
            if soft > hard {
                return Err(format!(
                    "{f}: soft limit {soft} of {typ} is above the hard limit {hard}"
                ));
            }
            if s.rlimits.iter().any(|(r, _, _)| *r == res) {
                return Err(format!("{f}.type: {typ} is given twice"));
            }
            s.rlimits.push((res, soft, hard));
        }
    }
    let linux = get(top, "linux").filter(|l| l.is_object());
    if let Some(m) = linux.and_then(|l| get(l, "maskedPaths")) {
        s.masked = path_list(m, "linux.maskedPaths")?;
    }
    if let Some(m) = linux.and_then(|l| get(l, "readonlyPaths")) {
        s.readonly = path_list(m, "linux.readonlyPaths")?;
    }
    if let Some(sys) = linux.and_then(|l| get(l, "sysctl")) {
        let sys = sys.as_object().ok_or("linux.sysctl: expected an object")?;
        for (k, v) in sys {
            let f = format!("linux.sysctl.{k}");
            if k.is_empty()
                || k.len() > 256
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b))
            {
                return Err(format!("linux.sysctl: {k:?} is not a sysctl name"));
            }
            let v = v
                .as_str()
                .ok_or_else(|| format!("{f}: expected a string"))?;
            if v.contains('\0') {
                return Err(format!("{f}: contains a NUL byte"));
            }
            match k.replace('/', ".").as_str() {
                "kernel.hostname" => {
                    if v.len() > 64 {
                        return Err(format!("{f}: longer than 64 bytes"));
                    }
                    s.hostname = Some(v.to_string());
                }
                "kernel.domainname" => {
                    if v.len() > 64 {
                        return Err(format!("{f}: longer than 64 bytes"));
                    }
                    s.domainname = Some(v.to_string());
                }
                "net.ipv4.ping_group_range" => {
                    s.ping_group_range = Some(
                        parse_ping_group_range(v)
                            .ok_or_else(|| format!("{f}: {v:?} is not a gid range"))?,
                    );
                }
                _ => tracing::warn!("sysctl {k}={v}: not emulated by the sandbox; ignored"),
            }
        }
    }
    Ok(s)
}

impl Settings {
    /// The `runsc boot` arguments carrying the settings.
    pub fn boot_args(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .rlimits
            .iter()
            .map(|(r, s, h)| format!("--rlimit={r}:{s}:{h}"))
            .collect();
        v.extend(self.masked.iter().map(|p| format!("--masked-path={p}")));
        v.extend(self.readonly.iter().map(|p| format!("--readonly-path={p}")));
        if let Some((lo, hi)) = self.ping_group_range {
            v.push(format!("--ping-group-range={lo}:{hi}"));
        }
        v
    }
}

/// Parses `RESOURCE:SOFT:HARD` (as `runsc create` passes it).
pub fn parse_rlimit_arg(v: &str) -> Result<(u32, u64, u64), String> {
    let bad = || format!("bad --rlimit {v:?}");
    let mut it = v.split(':');
    let r = it
        .next()
        .and_then(|x| x.parse::<u32>().ok())
        .filter(|r| (*r as usize) < sentry::task::RLIM_NLIMITS)
        .ok_or_else(bad)?;
    let soft = it.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    let hard = it.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    if it.next().is_some() || soft > hard {
        return Err(bad());
    }
    Ok((r, soft, hard))
}

/// Applies readonlyPaths then maskedPaths to the sandbox's mount tree.
pub fn apply(vfs: &fs::Vfs, masked: &[String], readonly: &[String]) -> Result<(), String> {
    use abi::Errno;
    let ctx = fs::FsContext::new(vfs.root());
    let creds = fs::Creds::root();
    let find = |p: &str, field: &str| -> Result<Option<fs::Location>, String> {
        match vfs.walk(
            &ctx,
            &creds,
            &vfs.root(),
            p.as_bytes(),
            &fs::WalkOpts::follow(),
        ) {
            Ok(l) => Ok(Some(l)),
            // As runc: what does not exist is not there to protect.
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Ok(None),
            Err(e) => Err(format!("{field}: {p}: {e}")),
        }
    };
    for p in readonly {
        let Some(loc) = find(p, "linux.readonlyPaths")? else {
            continue;
        };
        vfs.bind_mount_rec(
            &loc,
            &loc,
            fs::vfs::MountOpts {
                read_only: true,
                flags: loc.mount.flags(),
                source: p.as_bytes().to_vec(),
                fstype: Some(loc.mount.fstype()),
            },
        );
    }
    let null = find("/dev/null", "linux.maskedPaths")?;
    for p in masked {
        let Some(loc) = find(p, "linux.maskedPaths")? else {
            continue;
        };
        if loc.is_dir() {
            let empty: Arc<dyn fs::Inode> = fs::tmpfs::TmpFs::new_root(0o755, 4096);
            vfs.mount_with(
                &loc,
                empty,
                fs::vfs::MountOpts {
                    read_only: true,
                    source: b"tmpfs".to_vec(),
                    fstype: Some("tmpfs"),
                    ..Default::default()
                },
            );
        } else {
            let null = null
                .as_ref()
                .ok_or_else(|| format!("linux.maskedPaths: {p}: the sandbox has no /dev/null"))?;
            vfs.bind_mount(
                &loc,
                null,
                fs::vfs::MountOpts {
                    read_only: true,
                    source: b"/dev/null".to_vec(),
                    fstype: Some(null.mount.fstype()),
                    ..Default::default()
                },
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Settings, String> {
        parse(&serde_json::from_str(s).unwrap())
    }

    #[test]
    fn parses() {
        let s = p(
            r#"{"process":{"rlimits":[{"type":"RLIMIT_NOFILE","soft":100,"hard":200}]},
              "linux":{"maskedPaths":["/proc/kcore"],"readonlyPaths":["/proc/sys"],
                       "sysctl":{"kernel.hostname":"h","net.ipv4.ip_forward":"1"}}}"#,
        )
        .unwrap();
        assert_eq!(s.rlimits, vec![(7, 100, 200)]);
        assert_eq!(s.hostname.as_deref(), Some("h"));
        assert_eq!(
            s.boot_args(),
            vec![
                "--rlimit=7:100:200",
                "--masked-path=/proc/kcore",
                "--readonly-path=/proc/sys"
            ]
        );
        let s = p(r#"{"linux":{"sysctl":{"net.ipv4.ping_group_range":"0 2147483647"}}}"#).unwrap();
        assert_eq!(s.ping_group_range, Some((0, 2147483647)));
        assert_eq!(s.boot_args(), vec!["--ping-group-range=0:2147483647"]);
        for bad in ["0", "0 1 2", "-1 0", "0 4294967295", "a b"] {
            let j = format!(r#"{{"linux":{{"sysctl":{{"net.ipv4.ping_group_range":"{bad}"}}}}}}"#);
            assert!(p(&j).is_err(), "{bad}");
        }
        assert_eq!(parse_rlimit_arg("7:100:200"), Ok((7, 100, 200)));
        assert!(parse_rlimit_arg("99:1:2").is_err());
        assert!(parse_rlimit_arg("7:3:2").is_err());
        for (bad, want) in [
            (
                r#"{"process":{"rlimits":[{"type":"RLIMIT_BOGUS","soft":1,"hard":1}]}}"#,
                "RLIMIT_BOGUS",
            ),
            (
                r#"{"process":{"rlimits":[{"type":"RLIMIT_NOFILE","soft":3,"hard":1}]}}"#,
                "process.rlimits[0]",
            ),
            (
                r#"{"process":{"rlimits":[{"type":"RLIMIT_NOFILE","soft":-1,"hard":1}]}}"#,
                "process.rlimits[0].soft",
            ),
            (
                r#"{"linux":{"maskedPaths":["rel"]}}"#,
                "linux.maskedPaths[0]",
            ),
            (
                r#"{"linux":{"readonlyPaths":[1]}}"#,
                "linux.readonlyPaths[0]",
            ),
            (r#"{"linux":{"sysctl":{"a b":"1"}}}"#, "linux.sysctl"),
            (
                r#"{"linux":{"sysctl":{"kernel.x":1}}}"#,
                "linux.sysctl.kernel.x",
            ),
        ] {
            let e = p(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
