//! Property tests (issue 6, fuzzing): the OCI parsers are fed random JSON
//! values, random mutations of a full valid config.json and random bytes.
//! Whatever the input, each parser returns a value or an error of one line
//! that names what it refused (`field: reason`); it never panics.
//!
//! The case counts are modest so `cargo test` stays fast; run longer with
//! `PROPTEST_CASES=100000 cargo test --release -p runsc-cli oci::fuzz`.

use super::{caps, exec, extra, spec};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Map, Value};

/// Calls `f` with `full` where each member, at every depth, is replaced in
/// turn by each JSON type (null, -1, 1e300, a string with NUL, [], {}, true):
/// the deterministic hostile-types sweep the parsers' own tests run.
pub(super) fn each_member_replaced(full: &Value, mut f: impl FnMut(Value)) -> usize {
    fn walk(v: &Value, cur: Vec<String>, out: &mut Vec<Vec<String>>) {
        let kids: Vec<(String, &Value)> = match v {
            Value::Object(m) => m.iter().map(|(k, c)| (k.clone(), c)).collect(),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, c)| (i.to_string(), c))
                .collect(),
            _ => Vec::new(),
        };
        for (k, c) in kids {
            let mut p = cur.clone();
            p.push(k);
            out.push(p.clone());
            walk(c, p, out);
        }
    }
    let replacements = [
        Value::Null,
        json!(-1),
        json!(1e300),
        json!("x\0y"),
        json!([]),
        json!({}),
        json!(true),
    ];
    let mut all = Vec::new();
    walk(full, Vec::new(), &mut all);
    for p in &all {
        for r in &replacements {
            let mut v = full.clone();
            let mut cur = &mut v;
            for k in p {
                cur = match cur {
                    Value::Object(m) => m.get_mut(k).unwrap(),
                    Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
                    _ => unreachable!(),
                };
            }
            *cur = r.clone();
            f(v);
        }
    }
    all.len() * replacements.len()
}

/// `cases` unless `$PROPTEST_CASES` says otherwise.
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Everything `runsc spec` writes, plus every other part of the spec the
/// parsers read: hooks, resources, rlimits, capabilities, namespaces, ...
fn full_config() -> Value {
    let mut v = crate::spec_cmd::example();
    let extra = json!({
        "hostname": "fuzz",
        "annotations": {"a": "b"},
        "process": {
            "args": ["sh", "-c", "true"],
            "env": ["PATH=/bin", "A=b"],
            "cwd": "/",
            "terminal": false,
            "user": {"uid": 1, "gid": 2, "umask": 18, "additionalGids": [3, 4]},
            "capabilities": {
                "bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"],
                "permitted": ["CAP_KILL"], "inheritable": [], "ambient": ["CAP_KILL"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}],
            "noNewPrivileges": true,
            "oomScoreAdj": 100
        },
        "root": {"path": "/", "readonly": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/t", "type": "tmpfs", "options": ["size=1k", "mode=755", "nosuid"]},
            {"destination": "/b", "type": "bind", "source": "/", "options": ["rbind", "ro"]}
        ],
        "hooks": {
            "prestart": [{"path": "/bin/true", "args": ["true"], "env": ["A=b"], "timeout": 5}],
            "createRuntime": [{"path": "/bin/true"}],
            "poststart": [{"path": "/bin/true", "timeout": 1}],
            "poststop": [{"path": "/bin/true"}]
        },
        "linux": {
            "cgroupsPath": "/fuzz",
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"],
            "sysctl": {"kernel.hostname": "h", "net.ipv4.ip_forward": "1"},
            "resources": {
                "memory": {"limit": 1 << 30, "swap": 1 << 31, "reservation": 1 << 20},
                "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
                "pids": {"limit": 100},
                "devices": [{"allow": false, "access": "rwm"}]
            }
        }
    });
    merge(&mut v, extra);
    v
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Leaves that are likely to hit edge cases of a field's type.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(i64::MIN),
            Just(i64::MAX),
            Just(u32::MAX as i64),
            Just(u32::MAX as i64 + 1),
            Just(i32::MIN as i64),
        ]
        .prop_map(|n| json!(n)),
        Just(json!(u64::MAX)),
        any::<f64>()
            .prop_filter("JSON has no NaN/inf", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        Just(json!(1e300)),
        Just(json!(-0.5)),
        "\\PC{0,12}".prop_map(Value::String),
        prop_oneof![
            Just(""),
            Just("/"),
            Just("x\0y"),
            Just(".."),
            Just("../../etc"),
            Just("/proc/self/ns/net"),
            Just("CAP_SYS_ADMIN"),
            Just("CAP_ALL"),
            Just("RLIMIT_NOFILE"),
            Just("RLIMIT_BOGUS"),
            Just("pid"),
            Just("user"),
            Just("tmpfs"),
            Just("bind"),
            Just("size=99999999999999999999k"),
            Just("mode=99999"),
            Just("1.0.2"),
            Just("=="),
            Just("KEY"),
            Just("0-18446744073709551615"),
            Just("\u{10ffff}\u{feff}"),
        ]
        .prop_map(|s| Value::String(s.to_string())),
        (0usize..70_000).prop_map(|n| Value::String("a".repeat(n))),
    ]
}

/// Any JSON value (a few levels deep).
fn any_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-zA-Z]{0,12}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every path (object keys and array indices) in `v`.
fn paths(v: &Value, cur: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                cur.push(PathStep::Key(k.clone()));
                out.push(cur.clone());
                paths(c, cur, out);
                cur.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                cur.push(PathStep::Index(i));
                out.push(cur.clone());
                paths(c, cur, out);
                cur.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum PathStep {
    Key(String),
    Index(usize),
}

#[derive(Clone, Debug)]
enum Mutation {
    /// Replace the node at path #n with a value.
    Replace(usize, Value),
    /// Remove the node at path #n.
    Remove(usize),
    /// Add a member (or element) under path #n.
    Add(usize, String, Value),
    /// Duplicate the node at path #n next to itself (arrays).
    Duplicate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), any_json()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        2 => any::<usize>().prop_map(Mutation::Remove),
        1 => (any::<usize>(), "[a-zA-Z]{1,12}", any_json()).prop_map(|(i, k, v)| Mutation::Add(i, k, v)),
        1 => any::<usize>().prop_map(Mutation::Duplicate),
    ]
}

fn node_mut<'a>(v: &'a mut Value, path: &[PathStep]) -> Option<&'a mut Value> {
    let mut cur = v;
    for s in path {
        cur = match (cur, s) {
            (Value::Object(m), PathStep::Key(k)) => m.get_mut(k)?,
            (Value::Array(a), PathStep::Index(i)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn apply(v: &mut Value, m: &Mutation) {
    let mut all = vec![Vec::new()];
    paths(v, &mut Vec::new(), &mut all);
    let pick = |i: usize| all[i % all.len()].clone();
    match m {
        Mutation::Replace(i, new) => {
            if let Some(n) = node_mut(v, &pick(*i)) {
                *n = new.clone();
            }
        }
        Mutation::Remove(i) => {
            let p = pick(*i);
            if let Some((last, parent)) = p.split_last() {
                match (node_mut(v, parent), last) {
                    (Some(Value::Object(m)), PathStep::Key(k)) => {
                        m.remove(k);
                    }
                    (Some(Value::Array(a)), PathStep::Index(i)) if *i < a.len() => {
                        a.remove(*i);
                    }
                    _ => {}
                }
            }
        }
        Mutation::Add(i, k, new) => match node_mut(v, &pick(*i)) {
            Some(Value::Object(m)) => {
                m.insert(k.clone(), new.clone());
            }
            Some(Value::Array(a)) => a.push(new.clone()),
            _ => {}
        },
        Mutation::Duplicate(i) => {
            let p = pick(*i);
            if let Some((PathStep::Index(idx), parent)) = p.split_last() {
                if let Some(Value::Array(a)) = node_mut(v, parent) {
                    if let Some(x) = a.get(*idx).cloned() {
                        a.insert(*idx, x);
                    }
                }
            }
        }
    }
}

/// An error must be one non-empty line that starts with what it refused:
/// a field (`process.args`, `mounts[0].type`) or the file (`config.json`),
/// followed by the reason (`field: why` or `field must ...`).
fn check_err(e: &str) -> Result<(), TestCaseError> {
    prop_assert!(!e.contains('\n'), "multi-line error: {e:?}");
    let what = e.split([':', ' ']).next().unwrap_or("");
    prop_assert!(
        !what.is_empty()
            && what
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._[]-".contains(c)),
        "error does not start with a field name: {e:?}"
    );
    prop_assert!(e.len() > what.len() + 2, "error gives no reason: {e:?}");
    Ok(())
}

fn check_all(text: &[u8]) -> Result<(), TestCaseError> {
    let bundle = std::env::temp_dir();
    if let Err(e) = spec::parse(text, &bundle) {
        check_err(&e)?;
    }
    for systemd in [false, true] {
        if let Err(e) = extra::parse(text, "fuzz-id", systemd) {
            check_err(&e)?;
        }
    }
    if let Err(e) = exec::parse_process_json(text) {
        check_err(&e)?;
    }
    Ok(())
}

#[test]
fn full_config_is_valid() {
    let text = serde_json::to_vec(&full_config()).unwrap();
    spec::parse(&text, &std::env::temp_dir()).unwrap();
    extra::parse(&text, "fuzz-id", false).unwrap();
    extra::parse(&text, "fuzz-id", true).unwrap();
}

proptest! {
    #![proptest_config(config(1000))]

    /// Random mutations of a full, valid config.json.
    #[test]
    fn mutated_config(muts in prop::collection::vec(mutation(), 1..5)) {
        let mut v = full_config();
        for m in &muts {
            apply(&mut v, m);
        }
        check_all(&serde_json::to_vec(&v).unwrap())?;
        // The same mutations applied to the process object alone (`exec --process`).
        let mut p = full_config()["process"].clone();
        for m in &muts {
            apply(&mut p, m);
        }
        if let Err(e) = exec::parse_process_json(&serde_json::to_vec(&p).unwrap()) {
            check_err(&e)?;
        }
        if let Some(c) = v.get("process").and_then(|p| p.get("capabilities")) {
            if let Err(e) = caps::parse(c, "process.capabilities") {
                check_err(&e)?;
            }
        }
    }

    /// Any JSON value at all, at the top and in each top-level member.
    #[test]
    fn arbitrary_json(v in any_json(), key in prop::sample::select(
        vec!["process", "root", "mounts", "hooks", "linux", "ociVersion", "annotations", "hostname"])) {
        check_all(&serde_json::to_vec(&v).unwrap())?;
        let mut c = full_config();
        c[key] = v.clone();
        check_all(&serde_json::to_vec(&c).unwrap())?;
        if let Err(e) = caps::parse(&v, "process.capabilities") {
            check_err(&e)?;
        }
    }

    /// Random bytes and byte-level mutations of the JSON text.
    #[test]
    fn mutated_text(muts in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8),
                    junk in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut text = serde_json::to_vec(&full_config()).unwrap();
        let len = text.len();
        for &(i, b) in &muts {
            text[i % len] = b;
        }
        check_all(&text)?;
        check_all(&junk)?;
    }

    /// The small string parsers of the command line.
    #[test]
    fn cli_strings(s in "\\PC{0,24}", n in any::<u64>()) {
        for t in [s.clone(), n.to_string(), format!("{n}:{s}"), format!("{s}:{n}:{n}")] {
            let _ = super::parse_signal(&t);
            let _ = super::events::parse_duration(&t);
            if let Err(e) = super::paths::parse_rlimit_arg(&t) {
                prop_assert!(!e.contains('\n'));
            }
        }
    }
}
