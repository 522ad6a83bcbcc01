//! The sandbox's control socket (`<root>/<id>/control.sock`): one JSON request
//! line per connection, one JSON response line. `runsc boot` serves it; the
//! OCI commands are its clients. The socket lives in the container's state
//! directory (mode 0700), so only its owner can connect.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
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
    let mut s = UnixStream::connect(sock)?;
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
