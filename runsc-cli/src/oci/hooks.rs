//! OCI hooks (config.json `hooks`), run on the host as the runtime spec says:
//! each `{path, args, env, timeout}` is executed with the container's state
//! JSON on its stdin, in order.
//!
//! - `prestart` (deprecated), `createRuntime`, `createContainer`: at `create`,
//!   once the sandbox is up (state `creating`, `pid` the sandbox's host pid, so
//!   that `/proc/<pid>/ns/net` is the sandbox's network namespace). A failure
//!   fails `create`, which then tears everything down.
//! - `startContainer`: at `start`, before the workload is released (state
//!   `created`). runc runs these inside the container; the sandbox cannot run
//!   a host binary inside itself, so they run on the host, like the others. A
//!   failure fails `start` and stops the container.
//! - `poststart`: after `start` (state `running`); failures are logged.
//! - `poststop`: at `delete` once the sandbox is gone (state `stopped`);
//!   failures are logged.
//!
//! Hook paths are run as given (they come from the engine, as with runc).
//! `timeout` (seconds) kills the hook (and its process group) when it expires.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One hook.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    pub path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// Seconds.
    pub timeout: Option<u64>,
}

/// Every kind of hook, in the order the spec lists them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    pub poststart: Vec<Hook>,
    pub poststop: Vec<Hook>,
}

impl Hooks {
    pub fn of(&self, kind: &str) -> &[Hook] {
        match kind {
            "prestart" => &self.prestart,
            "createRuntime" => &self.create_runtime,
            "createContainer" => &self.create_container,
            "startContainer" => &self.start_container,
            "poststart" => &self.poststart,
            "poststop" => &self.poststop,
            _ => &[],
        }
    }

    fn of_mut(&mut self, kind: &str) -> Option<&mut Vec<Hook>> {
        Some(match kind {
            "prestart" => &mut self.prestart,
            "createRuntime" => &mut self.create_runtime,
            "createContainer" => &mut self.create_container,
            "startContainer" => &mut self.start_container,
            "poststart" => &mut self.poststart,
            "poststop" => &mut self.poststop,
            _ => return None,
        })
    }
}

/// At most this many hooks of one kind (engines pass a handful).
const MAX_HOOKS: usize = 256;

fn strings(v: &Value, field: &str) -> Result<Vec<String>, String> {
    let a = v
        .as_array()
        .ok_or_else(|| format!("{field}: expected an array of strings"))?;
    a.iter()
        .enumerate()
        .map(|(i, s)| match s.as_str() {
            Some(s) if !s.contains('\0') => Ok(s.to_string()),
            Some(_) => Err(format!("{field}[{i}]: contains a NUL byte")),
            None => Err(format!("{field}[{i}]: expected a string")),
        })
        .collect()
}

/// Parses config.json's `hooks` (the whole document is `top`).
pub fn parse(top: &Value) -> Result<Hooks, String> {
    let mut out = Hooks::default();
    let Some(h) = top.get("hooks").filter(|v| !v.is_null()) else {
        return Ok(out);
    };
    let h = h.as_object().ok_or("hooks: expected an object")?;
    for (kind, list) in h {
        let Some(slot) = out.of_mut(kind) else {
            tracing::debug!("hooks.{kind}: unknown hook kind ignored");
            continue;
        };
        if list.is_null() {
            continue;
        }
        let list = list
            .as_array()
            .ok_or_else(|| format!("hooks.{kind}: expected an array"))?;
        if list.len() > MAX_HOOKS {
            return Err(format!("hooks.{kind}: too many hooks"));
        }
        for (i, hook) in list.iter().enumerate() {
            let f = format!("hooks.{kind}[{i}]");
            let o = hook
                .as_object()
                .ok_or_else(|| format!("{f}: expected an object"))?;
            let path = match o.get("path") {
                Some(Value::String(p)) => p.clone(),
                Some(_) => return Err(format!("{f}.path: expected a string")),
                None => return Err(format!("{f}.path: missing")),
            };
            if !path.starts_with('/') || path.contains('\0') {
                return Err(format!("{f}.path: {path:?} is not an absolute path"));
            }
            let args = match o.get("args").filter(|v| !v.is_null()) {
                Some(a) => strings(a, &format!("{f}.args"))?,
                None => Vec::new(),
            };
            let env = match o.get("env").filter(|v| !v.is_null()) {
                Some(e) => strings(e, &format!("{f}.env"))?,
                None => Vec::new(),
            };
            let timeout = match o.get("timeout").filter(|v| !v.is_null()) {
                Some(t) => Some(
                    t.as_u64()
                        .filter(|t| *t > 0)
                        .ok_or_else(|| format!("{f}.timeout: expected a positive integer"))?,
                ),
                None => None,
            };
            slot.push(Hook {
                path,
                args,
                env,
                timeout,
            });
        }
    }
    Ok(out)
}

/// Runs the hooks of `kind` in order with `state` on stdin; stops at the first
/// failure, whose one-line error names the hook.
pub fn run(hooks: &Hooks, kind: &str, state: &Value) -> Result<(), String> {
    let input = state.to_string();
    for (i, h) in hooks.of(kind).iter().enumerate() {
        run_one(h, &input).map_err(|e| format!("{kind} hook #{i} ({}): {e}", h.path))?;
    }
    Ok(())
}

/// Runs every hook of `kind`, logging failures (poststart, poststop).
pub fn run_logged(hooks: &Hooks, kind: &str, state: &Value, log: &dyn Fn(&str)) {
    let input = state.to_string();
    for (i, h) in hooks.of(kind).iter().enumerate() {
        if let Err(e) = run_one(h, &input) {
            log(&format!("{kind} hook #{i} ({}): {e}", h.path));
        }
    }
}

/// The most of a hook's output kept for an error message.
const MAX_OUTPUT: u64 = 4096;

fn run_one(h: &Hook, input: &str) -> Result<(), String> {
    let mut c = Command::new(&h.path);
    if let Some((a0, rest)) = h.args.split_first() {
        c.arg0(a0).args(rest);
    }
    c.env_clear();
    for kv in &h.env {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                c.env(k, v);
            }
            _ => {}
        }
    }
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .current_dir("/")
        // Its own process group: a timeout ends whatever it started too.
        .process_group(0);
    let mut child = c.spawn().map_err(|e| e.to_string())?;
    let pid = child.id() as i32;
    // stdin, stdout and stderr on threads: a hook that does not read its
    // input, or writes much, never blocks us.
    if let Some(mut stdin) = child.stdin.take() {
        let data = input.as_bytes().to_vec();
        let _ = std::thread::Builder::new()
            .name("hook-stdin".into())
            .spawn(move || {
                let _ = stdin.write_all(&data);
            });
    }
    let reader = |r: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        if let Some(r) = r {
            let _ = std::thread::Builder::new()
                .name("hook-output".into())
                .spawn(move || {
                    let mut buf = Vec::new();
                    let mut r = r.take(MAX_OUTPUT);
                    let _ = r.read_to_end(&mut buf);
                    // Drain the rest so that the hook never blocks on a full pipe.
                    let _ = std::io::copy(r.get_mut(), &mut std::io::sink());
                    let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
                });
        }
        rx
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    // A timeout too far away to represent is none.
    let deadline = h
        .timeout
        .and_then(|t| Instant::now().checked_add(Duration::from_secs(t)));
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            // SAFETY: kill(2) of the hook's own process group.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "timed out after {}s",
                h.timeout.unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if status.success() {
        return Ok(());
    }
    // What it printed (if it is done printing soon): the last non-empty line.
    let grace = Duration::from_millis(200);
    let text = err
        .recv_timeout(grace)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| out.recv_timeout(grace).ok())
        .unwrap_or_default();
    let last = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let what = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".to_string(),
    };
    if last.is_empty() {
        Err(what)
    } else {
        Err(format!("{what}: {last}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let v: Value = serde_json::from_str(
            r#"{"hooks":{"createRuntime":[{"path":"/bin/true","args":["true","x"],"env":["A=b"],"timeout":3}],
                "poststop":[{"path":"/bin/false"}],"bogus":[1]}}"#,
        )
        .unwrap();
        let h = parse(&v).unwrap();
        assert_eq!(h.create_runtime[0].args, vec!["true", "x"]);
        assert_eq!(h.create_runtime[0].timeout, Some(3));
        assert_eq!(h.poststop[0].path, "/bin/false");
        for (bad, want) in [
            (r#"{"hooks":[]}"#, "hooks"),
            (r#"{"hooks":{"prestart":{}}}"#, "hooks.prestart"),
            (r#"{"hooks":{"prestart":[{}]}}"#, "hooks.prestart[0].path"),
            (
                r#"{"hooks":{"prestart":[{"path":"rel"}]}}"#,
                "hooks.prestart[0].path",
            ),
            (
                r#"{"hooks":{"poststart":[{"path":"/x","timeout":0}]}}"#,
                "hooks.poststart[0].timeout",
            ),
            (
                r#"{"hooks":{"poststart":[{"path":"/x","args":[1]}]}}"#,
                "hooks.poststart[0].args[0]",
            ),
        ] {
            let e = parse(&serde_json::from_str(bad).unwrap()).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn runs_with_state_and_times_out() {
        let ok = Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), "grep -q '\"id\"'".into()],
            ..Default::default()
        };
        assert_eq!(run_one(&ok, r#"{"id":"x"}"#), Ok(()));
        let fail = Hook {
            path: "/bin/sh".into(),
            args: vec![
                "sh".into(),
                "-c".into(),
                "echo bad thing >&2; exit 3".into(),
            ],
            ..Default::default()
        };
        assert_eq!(
            run_one(&fail, ""),
            Err("exit status 3: bad thing".to_string())
        );
        let slow = Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), "sleep 30".into()],
            timeout: Some(1),
            ..Default::default()
        };
        let t = Instant::now();
        assert!(run_one(&slow, "").unwrap_err().contains("timed out"));
        assert!(t.elapsed() < Duration::from_secs(10));
        let missing = Hook {
            path: "/nonexistent/hook".into(),
            ..Default::default()
        };
        assert!(run_one(&missing, "").is_err());
        let huge = Hook {
            timeout: Some(u64::MAX),
            ..ok.clone()
        };
        assert_eq!(run_one(&huge, r#"{"id":"x"}"#), Ok(()));
    }
}
