//! The sandbox's control socket (`<root>/<id>/control.sock`): one JSON request
//! line per connection, one JSON response line. `runsc boot` serves it; the
//! OCI commands are its clients. The socket lives in the container's state
//! directory (mode 0700), so only its owner can connect.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    /// Let the loaded workload run.
    Start,
    /// Deliver `signal` to init, or to every process with `all`.
    Signal { signal: i32, all: bool },
    /// Block until init exits; the response carries its status.
    Wait,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
}

impl Response {
    pub fn ok() -> Response {
        Response {
            ok: true,
            ..Default::default()
        }
    }
    pub fn err(e: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(e.into()),
            status: None,
        }
    }
}

/// Sends one request and reads the response. `Err` when the sandbox could not
/// be reached or hung up without answering.
pub fn call(sock: &Path, req: &Request) -> std::io::Result<Response> {
    let (_dir, p) = short_path(sock)?;
    let mut s = UnixStream::connect(p)?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    s.write_all(&line)?;
    let mut r = BufReader::new(s);
    let mut resp = String::new();
    r.read_line(&mut resp)?;
    if resp.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the sandbox closed the control socket",
        ));
    }
    Ok(serde_json::from_str(&resp)?)
}

/// A socket address can hold about 107 bytes of path; state roots of engines
/// are longer (containerd: `/run/containerd/runc/<namespace>/<64-hex-id>`).
/// A longer path is reached through its open parent directory,
/// `/proc/self/fd/N/NAME`; the returned directory must be kept open while the
/// path is used.
pub fn short_path(p: &Path) -> std::io::Result<(Option<std::fs::File>, PathBuf)> {
    if p.as_os_str().len() < 100 {
        return Ok((None, p.to_path_buf()));
    }
    let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
        return Ok((None, p.to_path_buf()));
    };
    let dir = std::fs::File::open(parent)?;
    let short = Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name);
    Ok((Some(dir), short))
}

/// Binds the control socket at `p` (any length; see [`short_path`]).
pub fn bind(p: &Path) -> std::io::Result<UnixListener> {
    let (_dir, short) = short_path(p)?;
    let _ = std::fs::remove_file(&short);
    UnixListener::bind(short)
}

/// Serves `listener` on a thread of its own; each connection on another.
pub fn serve(
    listener: UnixListener,
    handler: Arc<dyn Fn(Request) -> Response + Send + Sync>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let h = handler.clone();
                let _ = std::thread::Builder::new()
                    .name("control-conn".into())
                    .spawn(move || handle(conn, &*h));
            }
        })?;
    Ok(())
}

fn handle(conn: UnixStream, h: &(dyn Fn(Request) -> Response + Send + Sync)) {
    let mut line = String::new();
    let Ok(reader) = conn.try_clone() else { return };
    // A request is one short line; refuse anything larger.
    let mut r = BufReader::new(std::io::Read::take(reader, 64 << 10));
    if r.read_line(&mut line).is_err() {
        return;
    }
    let resp = match serde_json::from_str::<Request>(&line) {
        Ok(req) => h(req),
        Err(e) => Response::err(format!("bad request: {e}")),
    };
    if let Ok(mut out) = serde_json::to_vec(&resp) {
        out.push(b'\n');
        let mut c = conn;
        let _ = c.write_all(&out);
    }
}
