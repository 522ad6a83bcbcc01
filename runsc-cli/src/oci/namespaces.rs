//! `linux.namespaces`. The sandbox is one kernel with its own PID, mount,
//! IPC, UTS, user and cgroup views whatever the spec lists, so those entries
//! are checked and otherwise change nothing; a `path` to join for one of them
//! (a Kubernetes pod's containers share the pause container's) cannot be
//! honoured by a separate sandbox and is logged and ignored. The network
//! namespace is different: it is host state (interfaces, routes) that the
//! engine prepared, so with a `path` the sandbox process joins it (setns) as
//! runc's init would: its host sockets, and the links `--network=sandbox`
//! drives, are the container's.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use serde_json::Value;

const TYPES: &[&str] = &[
    "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time",
];

/// What the sandbox does with `linux.namespaces`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Namespaces {
    /// The network namespace to join.
    pub network: Option<PathBuf>,
    /// Other namespaces with a path: (type, path), not joined.
    pub ignored: Vec<(String, String)>,
}

pub fn parse(top: &Value) -> Result<Namespaces, String> {
    let mut out = Namespaces::default();
    let Some(list) = top.get("linux").and_then(|l| l.get("namespaces")) else {
        return Ok(out);
    };
    if list.is_null() {
        return Ok(out);
    }
    let list = list
        .as_array()
        .ok_or("linux.namespaces: expected an array")?;
    let mut seen: Vec<&str> = Vec::new();
    for (i, ns) in list.iter().enumerate() {
        let field = format!("linux.namespaces[{i}]");
        let o = ns
            .as_object()
            .ok_or_else(|| format!("{field}: expected an object"))?;
        let ty = o
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{field}.type: expected a string"))?;
        if !TYPES.contains(&ty) {
            return Err(format!("{field}.type: unknown namespace type {ty:?}"));
        }
        if seen.contains(&ty) {
            return Err(format!("{field}: duplicate namespace {ty:?}"));
        }
        seen.push(ty);
        let path = match o.get("path") {
            None | Some(Value::Null) => continue,
            Some(Value::String(p)) if p.is_empty() => continue,
            Some(Value::String(p)) => p,
            Some(_) => return Err(format!("{field}.path: expected a string")),
        };
        if !path.starts_with('/') {
            return Err(format!("{field}.path: {path:?} is not an absolute path"));
        }
        if ty == "network" {
            out.network = Some(PathBuf::from(path));
        } else {
            out.ignored.push((ty.to_string(), path.clone()));
        }
    }
    Ok(out)
}

/// Opens the network namespace at `path`, checking that it is one.
pub fn open_network(path: &std::path::Path) -> Result<File, String> {
    let what = || format!("linux.namespaces: network path {}", path.display());
    let f = File::open(path).map_err(|e| format!("{}: {e}", what()))?;
    // NS_GET_NSTYPE (_IO(0xb7, 0x3)): the namespace type of an nsfs file.
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: an ioctl without arguments on a descriptor we own.
    let t = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_NSTYPE as _) };
    if t != libc::CLONE_NEWNET {
        return Err(format!("{}: not a network namespace", what()));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Namespaces, String> {
        parse(&serde_json::from_str(s).unwrap())
    }

    #[test]
    fn shapes() {
        assert_eq!(p("{}"), Ok(Namespaces::default()));
        let n = p(
            r#"{"linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/run/netns/x"},
                {"type":"ipc","path":"/proc/9/ns/ipc"},{"type":"mount"}]}}"#,
        )
        .unwrap();
        assert_eq!(n.network, Some(PathBuf::from("/run/netns/x")));
        assert_eq!(
            n.ignored,
            vec![("ipc".to_string(), "/proc/9/ns/ipc".to_string())]
        );
        let e = |s: &str| p(s).unwrap_err();
        assert!(e(r#"{"linux":{"namespaces":{}}}"#).contains("linux.namespaces: expected an array"));
        assert!(e(r#"{"linux":{"namespaces":[{"type":"bogus"}]}}"#)
            .contains("linux.namespaces[0].type"));
        assert!(
            e(r#"{"linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}}"#).contains("duplicate")
        );
        assert!(
            e(r#"{"linux":{"namespaces":[{"type":"network","path":"rel"}]}}"#).contains("absolute")
        );
        assert!(e(r#"{"linux":{"namespaces":[{"type":"network","path":5}]}}"#).contains("path"));
    }

    #[test]
    fn open_checks_the_type() {
        assert!(open_network(std::path::Path::new("/proc/self/ns/net")).is_ok());
        let e = open_network(std::path::Path::new("/proc/self/ns/uts")).unwrap_err();
        assert!(e.contains("not a network namespace"), "{e}");
        let e = open_network(std::path::Path::new("/nonexistent")).unwrap_err();
        assert!(
            e.contains("linux.namespaces: network path /nonexistent"),
            "{e}"
        );
    }
}
