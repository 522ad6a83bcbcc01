//! The state directory: `<root>/<id>/state.json` (the OCI state plus runsc's
//! own fields), a lock file serialising commands on one container, the
//! sandbox's control socket and, once init exited, its exit status.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where state lives without `--root`.
pub const DEFAULT_ROOT: &str = "/run/runsc";

/// The OCI runtime spec version we implement.
pub const OCI_VERSION: &str = "1.0.2";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
    /// `runsc pause`: every task frozen.
    Paused,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Paused => "paused",
        }
    }
}

/// A host process we started, identified by pid and start time (so that a
/// reused pid is never mistaken for ours).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostProc {
    pub pid: i32,
    pub start_time: u64,
}

/// What `state.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: String,
    pub rootfs: String,
    #[serde(default)]
    pub annotations: Map<String, Value>,
    /// RFC 3339 creation time.
    pub created: String,
    /// runsc's private fields.
    pub runsc: Private,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Private {
    pub control_socket: String,
    pub sandbox: Option<HostProc>,
    pub gofers: Vec<HostProc>,
}

/// A container's state directory, locked for the lifetime of this value.
pub struct Dir {
    pub path: PathBuf,
    pub id: String,
    _lock: File,
}

/// runc's rule for container IDs: `^[\w+\-.]+$`, not "." or "..".
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("invalid container id: empty".into());
    }
    if id == "." || id == ".." || id.len() > 1024 {
        return Err(format!("invalid container id: {id:?}"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
    {
        return Err(format!("invalid container id format: {id:?}"));
    }
    Ok(())
}

pub fn not_exist(id: &str) -> String {
    format!("container \"{id}\" does not exist")
}

/// The state root (`--root`).
pub fn root_dir(root: Option<&str>) -> PathBuf {
    let p = PathBuf::from(root.unwrap_or(DEFAULT_ROOT));
    // Absolute: the sandbox runs in another working directory.
    std::path::absolute(&p).unwrap_or(p)
}

fn lock_file(path: &Path) -> Result<File, String> {
    let f = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path.join("lock"))
        .map_err(|e| format!("lock file: {e}"))?;
    f.lock().map_err(|e| format!("locking the state: {e}"))?;
    Ok(f)
}

impl Dir {
    /// Makes the state directory of a new container and locks it; an existing
    /// one is runc's "container with id exists".
    pub fn create(root: &Path, id: &str) -> Result<Dir, String> {
        validate_id(id)?;
        std::fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
        let path = root.join(id);
        let mut b = std::fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        match b.create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(format!("container with id exists: {id}"));
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        let lock = match lock_file(&path) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&path);
                return Err(e);
            }
        };
        Ok(Dir {
            path,
            id: id.to_string(),
            _lock: lock,
        })
    }

    /// Opens and locks an existing container's directory.
    pub fn open(root: &Path, id: &str) -> Result<Dir, String> {
        validate_id(id)?;
        let path = root.join(id);
        if !path.join("state.json").is_file() {
            return Err(not_exist(id));
        }
        let lock = lock_file(&path).map_err(|_| not_exist(id))?;
        // Deleted while we waited for the lock?
        if !path.join("state.json").is_file() {
            return Err(not_exist(id));
        }
        Ok(Dir {
            path,
            id: id.to_string(),
            _lock: lock,
        })
    }

    pub fn control_path(&self) -> PathBuf {
        self.path.join("control.sock")
    }

    pub fn exit_path(&self) -> PathBuf {
        self.path.join("exit")
    }

    pub fn load(&self) -> Result<State, String> {
        let p = self.path.join("state.json");
        let text = std::fs::read(&p).map_err(|_| not_exist(&self.id))?;
        serde_json::from_slice(&text)
            .map_err(|e| format!("container \"{}\": corrupt state.json: {e}", self.id))
    }

    pub fn save(&self, st: &State) -> Result<(), String> {
        let text = serde_json::to_vec_pretty(st).map_err(|e| e.to_string())?;
        write_atomic(&self.path.join("state.json"), &text)
            .map_err(|e| format!("writing state.json: {e}"))
    }

    /// The exit status the sandbox recorded when init exited.
    pub fn exit_status(&self) -> Option<i32> {
        read_exit(&self.exit_path())
    }

    /// The status as it is now: a created or running container whose
    /// sandbox is gone, or whose init exited, is stopped.
    pub fn live_status(&self, st: &State) -> Status {
        live_status(&self.path, st)
    }

    /// Removes the directory (the lock goes with it).
    pub fn remove(self) -> Result<(), String> {
        std::fs::remove_dir_all(&self.path).map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

/// The status of the container whose state directory is `dir`, as it is now
/// (see [`Dir::live_status`]); needs no lock.
pub fn live_status(dir: &Path, st: &State) -> Status {
    match st.status {
        Status::Stopped => Status::Stopped,
        Status::Creating => Status::Creating,
        s => {
            if !st.runsc.sandbox.is_some_and(alive) || read_exit(&dir.join("exit")).is_some() {
                Status::Stopped
            } else {
                s
            }
        }
    }
}

pub fn read_exit(p: &Path) -> Option<i32> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Writes `data` to `path` through a temporary file and rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all().ok();
    std::fs::rename(&tmp, path)
}

/// The start time (clock ticks since boot, field 22 of /proc/PID/stat) and
/// the state letter of a host process.
fn proc_stat(pid: i32) -> Option<(u64, char)> {
    if pid <= 0 {
        return None;
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); starttime is field 22.
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, state))
}

/// The identity of a running host process.
pub fn host_proc(pid: i32) -> Option<HostProc> {
    proc_stat(pid).map(|(start_time, _)| HostProc { pid, start_time })
}

/// Whether `p` still runs (not a zombie, not a reused pid).
pub fn alive(p: HostProc) -> bool {
    matches!(proc_stat(p.pid), Some((t, s)) if t == p.start_time && s != 'Z' && s != 'X')
}

/// Sends `sig` to `p` if it is still the process we started.
pub fn signal_host(p: HostProc, sig: i32) {
    if alive(p) {
        // SAFETY: kill(2) has no memory effects; the pid was checked to be ours
        // just above (a reuse in between is the usual, unavoidable kill race).
        unsafe { libc::kill(p.pid, sig) };
    }
}

/// Waits up to `timeout` for `p` to exit; true if it did.
pub fn wait_gone(p: HostProc, timeout: std::time::Duration) -> bool {
    let end = std::time::Instant::now() + timeout;
    while alive(p) {
        if std::time::Instant::now() > end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    true
}

/// RFC 3339 (UTC, nanoseconds) of a time since the epoch.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// The user name owning `path` (runc's OWNER column), or `#UID`.
pub fn owner(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata(path).map(|m| m.uid()) else {
        return String::new();
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "a\0b", "../x"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn time_format() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 5);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.000000005Z");
    }

    #[test]
    fn self_is_alive() {
        let me = host_proc(std::process::id() as i32).unwrap();
        assert!(alive(me));
        assert!(!alive(HostProc {
            pid: me.pid,
            start_time: me.start_time + 1
        }));
    }
}
