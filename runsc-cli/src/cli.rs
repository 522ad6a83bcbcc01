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
}

impl Default for Global {
    fn default() -> Self {
        Global {
            platform: "ptrace".into(),
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
            "network" => g.network = value(&mut i)?,
            "debug-log" => g.debug_log = Some(value(&mut i)?),
            "root" => g.root = Some(value(&mut i)?),
            "log" => g.log = Some(value(&mut i)?),
            "log-format" => g.log_format = Some(value(&mut i)?),
            "strace" => g.strace = inline.map_or(Ok(true), |v| parse_bool(name, v))?,
            "debug" => g.debug = inline.map_or(Ok(true), |v| parse_bool(name, v))?,
            "rootless" => g.rootless = inline.map_or(Ok(true), |v| parse_bool(name, v))?,
            "overlay" => g.overlay = inline.map_or(Ok(true), |v| parse_bool(name, v))?,
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
        "ptrace" => {}
        "kvm" => {
            return Err(UsageError(
                "platform kvm is not available yet (use --platform=ptrace)".into(),
            ))
        }
        p => {
            return Err(UsageError(format!(
                "unknown platform {p:?} (want ptrace or kvm)"
            )))
        }
    }
    if g.network != "none" && g.network != "sandbox" && g.network != "host" {
        return Err(UsageError(format!(
            "invalid network type {:?} (want none, sandbox or host)",
            g.network
        )));
    }
    Ok((g, args[i..].to_vec()))
}

/// Re-creates the global flags for a re-executed child (`runsc boot`, `runsc gofer`).
pub fn forward(g: &Global) -> Vec<String> {
    let mut v = vec![
        format!("--platform={}", g.platform),
        format!("--network={}", g.network),
    ];
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
    }

    #[test]
    fn bad_flags() {
        assert!(parse_global(&s(&["--bogus", "do"])).is_err());
        assert!(parse_global(&s(&["--platform=qemu", "do"])).is_err());
        assert!(parse_global(&s(&["--platform"])).is_err());
        assert!(parse_global(&s(&["--strace=maybe"])).is_err());
    }
}
