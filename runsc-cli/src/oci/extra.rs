//! The parts of config.json beyond the lifecycle basics (hooks, cgroup
//! resources, rlimits, masked and read-only paths, sysctl), read from the
//! bundle next to [`super::spec`], and what `create` keeps of them in the
//! state directory (`extra.json`) for `start` and `delete`.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cgroup::{self, Cgroup};
use super::hooks::{self, Hooks};
use super::namespaces::{self, Namespaces};
use super::paths::{self, Settings};

/// What config.json asks for besides [`super::spec::Spec`].
pub struct Extra {
    pub hooks: Hooks,
    pub cgroup: cgroup::Config,
    pub settings: Settings,
    pub namespaces: Namespaces,
}

/// Largest config.json we read (as spec.rs).
const MAX_CONFIG: u64 = 4 << 20;

/// Reads `<bundle>/config.json` (already checked by `spec::load`).
pub fn load(bundle: &Path, id: &str, systemd: bool) -> Result<Extra, String> {
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
    parse(&text, id, systemd)
}

pub fn parse(text: &[u8], id: &str, systemd: bool) -> Result<Extra, String> {
    let top: Value =
        serde_json::from_slice(text).map_err(|e| format!("config.json: invalid JSON: {e}"))?;
    if !top.is_object() {
        return Err("config.json: expected an object".into());
    }
    Ok(Extra {
        hooks: hooks::parse(&top)?,
        cgroup: cgroup::parse(&top, id, systemd)?,
        settings: paths::parse(&top)?,
        namespaces: namespaces::parse(&top)?,
    })
}

/// What `start` and `delete` need of the spec, saved at `create`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Saved {
    #[serde(default)]
    pub hooks: Hooks,
    #[serde(default)]
    pub cgroup: Option<Cgroup>,
}

const FILE: &str = "extra.json";

pub fn save(dir: &Path, s: &Saved) -> Result<(), String> {
    let text = serde_json::to_vec(s).map_err(|e| format!("{FILE}: {e}"))?;
    super::state::write_atomic(&dir.join(FILE), &text)
        .map_err(|e| format!("{}: {e}", dir.join(FILE).display()))
}

/// The saved settings (none if the file is missing or unreadable).
pub fn load_saved(dir: &Path) -> Saved {
    std::fs::read(dir.join(FILE))
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every member replaced by each JSON type: an error (one line) or a
    /// value, never a panic.
    #[test]
    fn hostile_types() {
        let full: Value = serde_json::from_str(
            r#"{"process":{"rlimits":[{"type":"RLIMIT_NOFILE","soft":1,"hard":2}]},
              "hooks":{"prestart":[{"path":"/x","args":["a"],"env":["A=b"],"timeout":1}]},
              "linux":{"cgroupsPath":"/a","maskedPaths":["/m"],"readonlyPaths":["/r"],
                       "sysctl":{"kernel.hostname":"h"},
                       "resources":{"memory":{"limit":1,"swap":2,"reservation":3},
                                    "cpu":{"shares":1,"quota":1,"period":1,"cpus":"0","mems":"0"},
                                    "pids":{"limit":1}}}}"#,
        )
        .unwrap();
        assert!(parse(full.to_string().as_bytes(), "id", false).is_ok());
        let n = super::super::fuzz::each_member_replaced(&full, |v| {
            if let Err(e) = parse(v.to_string().as_bytes(), "id", true) {
                assert!(!e.contains('\n'), "{e}");
            }
        });
        assert!(n > 100, "only {n} variants");
    }
}
