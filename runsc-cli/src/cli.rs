//! Command-line parsing: `runsc [global flags] <command> [command flags] [args]`,
//! as runc and gVisor take them (`--flag=value`, `--flag value`, `-flag`).

use std::fmt;

/// Flags that go before the command.
#[derive(Clone, Debug)]
pub struct Global {
    pub platform: String,
    pub strace: bool,
    pub debug: bool,
    pub debug_log: Option<String>,
    pub root: Option<String>,
    pub log: Option<String>,
    pub log_format: Option<String>,
    pub network: String,
    /// Run the sandbox as an unprivileged host user (see
    /// `confine::Identity`); implied when runsc is not run by root.
    pub rootless: bool,
    pub overlay: bool,
    pub systemd_cgroup: bool,
    /// `--total-memory=SIZE`: the sandbox's memory limit (an OCI spec's
    /// `linux.resources.memory.limit` lowers it).
    pub total_memory: Option<u64>,
    /// `--max-tasks=N`: the most tasks (threads) the sandbox may have; 0 for
    /// no limit (an OCI spec's `linux.resources.pids.limit` lowers it).
    pub max_tasks: Option<u64>,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            platform: "auto".into(),
            strace: false,
            debug: false,
            debug_log: None,
            root: None,
            log: None,
            log_format: None,
            network: "none".into(),
            rootless: false,
            overlay: false,
            systemd_cgroup: false,
            total_memory: None,
            max_tasks: None,
        }
    }
}

/// A usage error: printed as one line, exit status 2... runc uses 1; so do we.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn parse_bool(name: &str, v: &str) -> Result<bool, UsageError> {
    match v {
        "true" | "1" | "t" | "T" | "TRUE" | "True" => Ok(true),
        "false" | "0" | "f" | "F" | "FALSE" | "False" => Ok(false),
        _ => Err(UsageError(format!(
            "invalid boolean value {v:?} for flag --{name}"
        ))),
    }
}

/// Splits `--name=value` / `-name=value` / `--name` into (name, inline value).
pub fn split_flag(arg: &str) -> Option<(&str, Option<&str>)> {
    let body = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    if body.is_empty() {
        return None;
    }
    Some(match body.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (body, None),
    })
}

/// Parses global flags; returns them and the remaining arguments (command first).
pub fn parse_global(args: &[String]) -> Result<(Global, Vec<String>), UsageError> {
    let mut g = Global::default();
    let mut network = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" || !a.starts_with('-') || a == "-" {
            break;
        }
        let (name, inline) =
            split_flag(a).ok_or_else(|| UsageError(format!("invalid flag {a:?}")))?;
        if matches!(name, "version" | "v" | "help" | "h") {
            break;
        }
        let value = |i: &mut usize| -> Result<String, UsageError> {
            if let Some(v) = inline {
                return Ok(v.to_string());
            }
            *i += 1;
            args.get(*i)
                .cloned()
                .ok_or_else(|| UsageError(format!("flag needs an argument: --{name}")))
        };
        match name {
            "platform" => g.platform = value(&mut i)?,
            "network" => network = Some(value(&mut i)?),
            "debug-log" => g.debug_log = Some(value(&mut i)?),
            "root" => g.root = Some(value(&mut i)?),
            "log" => g.log = Some(value(&mut i)?),
            "log-format" => g.log_format = Some(value(&mut i)?),
            "strace" => g.strace = inline.map_or(Ok(true), |v| parse_bool(name, v))?,
            "debug" => g.debug = inline.map_or(Ok(true), |v| parse_bool(name, v))?,
            "rootless" => g.rootless = inline.map_or(Ok(true), |v| parse_bool(name, v))?,
            "overlay" => g.overlay = inline.map_or(Ok(true), |v| parse_bool(name, v))?,
            "total-memory" => {
                let v = value(&mut i)?;
                g.total_memory =
                    Some(parse_size(&v).filter(|n| *n > 0).ok_or_else(|| {
                        UsageError(format!("invalid size {v:?} for flag --{name}"))
                    })?)
            }
            "max-tasks" => {
                let v = value(&mut i)?;
                g.max_tasks =
                    Some(v.parse::<u64>().map_err(|_| {
                        UsageError(format!("invalid number {v:?} for flag --{name}"))
                    })?)
            }
            "systemd-cgroup" => {
                g.systemd_cgroup = inline.map_or(Ok(true), |v| parse_bool(name, v))?
            }
            _ => {
                return Err(UsageError(format!(
                    "flag provided but not defined: -{name}"
                )))
            }
        }
        i += 1;
    }
    match g.platform.as_str() {
        "ptrace" | "kvm" | "auto" => {}
        p => {
            return Err(UsageError(format!(
                "unknown platform {p:?} (want ptrace, kvm or auto)"
            )))
        }
    }
    // OCI containers get their namespace's network by default (as gVisor's
    // runsc); `runsc do` none unless asked.
    g.network = network.unwrap_or_else(|| {
        match args.get(i).map(String::as_str) {
            Some("create" | "run") => "sandbox",
            _ => "none",
        }
        .into()
    });
    if g.network != "none" && g.network != "sandbox" && g.network != "host" {
        return Err(UsageError(format!(
            "invalid network type {:?} (want none, sandbox or host)",
            g.network
        )));
    }
    Ok((g, args[i..].to_vec()))
}

/// A size in bytes: a number with an optional K, M, G or T suffix (powers
/// of 1024; `KB`, `KiB` and lower case are accepted too).
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..digits].parse().ok()?;
    let shift = match t[digits..].to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

/// The task limit when neither `--max-tasks` nor the OCI spec sets one: 16384
/// tasks, or an eighth of the host's pid_max if that is smaller. Each sandbox
/// task costs the host two tasks (a sentry thread and a stub), so a fork bomb
/// stops well before it could exhaust the host's PIDs.
pub fn default_max_tasks() -> u64 {
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(32768);
    (pid_max / 8).clamp(64, 16384)
}

/// Re-creates the global flags for a re-executed child (`runsc boot`, `runsc gofer`).
pub fn forward(g: &Global) -> Vec<String> {
    let mut v = vec![
        format!("--platform={}", g.platform),
        format!("--network={}", g.network),
        format!(
            "--max-tasks={}",
            g.max_tasks.unwrap_or_else(default_max_tasks)
        ),
    ];
    if let Some(m) = g.total_memory {
        v.push(format!("--total-memory={m}"));
    }
    if g.strace {
        v.push("--strace".into());
    }
    if g.debug {
        v.push("--debug".into());
    }
    if let Some(l) = &g.debug_log {
        v.push(format!("--debug-log={l}"));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn globals_before_command() {
        let (g, rest) = parse_global(&s(&[
            "--strace",
            "--platform",
            "ptrace",
            "-debug-log=/tmp/x",
            "do",
            "ls",
        ]))
        .unwrap();
        assert!(g.strace);
        assert_eq!(g.debug_log.as_deref(), Some("/tmp/x"));
        assert_eq!(rest, s(&["do", "ls"]));
        assert_eq!(g.network, "none");
    }

    #[test]
    fn network_defaults() {
        let net = |a: &[&str]| parse_global(&s(a)).unwrap().0.network;
        assert_eq!(net(&["create", "x"]), "sandbox");
        assert_eq!(net(&["--debug", "run", "x"]), "sandbox");
        assert_eq!(net(&["--network=none", "run", "x"]), "none");
        assert_eq!(net(&["--network", "host", "do", "x"]), "host");
        assert_eq!(net(&["boot", "x"]), "none");
        assert!(parse_global(&s(&["--network=bridge", "do"])).is_err());
    }

    #[test]
    fn bad_flags() {
        assert!(parse_global(&s(&["--bogus", "do"])).is_err());
        assert!(parse_global(&s(&["--platform=qemu", "do"])).is_err());
        assert!(parse_global(&s(&["--platform"])).is_err());
        assert!(parse_global(&s(&["--strace=maybe"])).is_err());
        assert!(parse_global(&s(&["--total-memory=lots", "do"])).is_err());
        assert!(parse_global(&s(&["--max-tasks=-1", "do"])).is_err());
    }

    #[test]
    fn limits() {
        let (g, _) = parse_global(&s(&["--total-memory=64M", "--max-tasks", "100", "do"])).unwrap();
        assert_eq!(g.total_memory, Some(64 << 20));
        assert_eq!(g.max_tasks, Some(100));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("2KiB"), Some(2048));
        assert_eq!(parse_size("M"), None);
        assert!(forward(&g).contains(&"--total-memory=67108864".to_string()));
    }
}
