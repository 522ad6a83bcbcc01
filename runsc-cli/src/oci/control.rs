//! The sandbox's control socket (`<root>/<id>/control.sock`): one JSON request
//! line per connection, one JSON response line. `runsc boot` serves it; the
//! OCI commands are its clients. The socket lives in the container's state
//! directory (mode 0700), so only its owner can connect.
//!
//! `exec` passes the new process's stdin, stdout and stderr with its request
//! (SCM_RIGHTS); it may get a second line, the process's exit status.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
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
    Signal {
        signal: i32,
        all: bool,
    },
    /// Block until init exits; the response carries its status.
    Wait,
    /// Start a new process (stdio: the three descriptors sent with the
    /// request, or one host terminal with `process.terminal`). The response carries its pid; with `wait`, a second response
    /// line carries its exit status once it exits.
    Exec {
        process: ExecProcess,
        wait: bool,
    },
    /// List the sandbox's processes.
    Ps,
    /// Freeze / thaw every task.
    Pause,
    Resume,
    /// CPU, memory and task counts.
    Stats,
    /// New bounds (`runsc update`): the memory limit in bytes and the task
    /// limit; 0 lifts a limit, None leaves it.
    SetLimits {
        memory: Option<u64>,
        max_tasks: Option<u64>,
    },
}

/// What `exec` runs: runc's process.json, reduced to what the sandbox uses.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExecProcess {
    pub args: Vec<String>,
    /// `KEY=VALUE` strings.
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    #[serde(default)]
    pub umask: Option<u32>,
    /// process.terminal: the one descriptor sent is a host terminal, bridged
    /// to a new sandbox pty (the process's stdio and controlling terminal).
    #[serde(default)]
    pub terminal: bool,
    /// process.capabilities (None: root holds every capability).
    #[serde(default)]
    pub capabilities: Option<super::caps::Caps>,
    /// process.noNewPrivileges.
    #[serde(default)]
    pub no_new_privs: bool,
}

/// Bounds on an exec request (either end checks them).
pub const MAX_ARGS: usize = 65_536;
pub const MAX_GIDS: usize = 65_536;

impl ExecProcess {
    /// Checks what the process's image and identity are built from.
    pub fn validate(&self) -> Result<(), String> {
        if self.args.is_empty() || self.args[0].is_empty() {
            return Err("process.args must not be empty".into());
        }
        if self.args.len() > MAX_ARGS || self.env.len() > MAX_ARGS {
            return Err("process: too many args or env entries".into());
        }
        if self.additional_gids.len() > MAX_GIDS {
            return Err("process.user.additionalGids: too many groups".into());
        }
        if self.args.iter().any(|a| a.contains('\0')) {
            return Err("process.args: an argument holds a NUL byte".into());
        }
        for e in &self.env {
            if e.contains('\0') || !e.contains('=') || e.starts_with('=') {
                return Err(format!("process.env: invalid entry {e:?} (want KEY=VALUE)"));
            }
        }
        if !self.cwd.starts_with('/') || self.cwd.contains('\0') {
            return Err(format!(
                "process.cwd: {:?} is not an absolute path",
                self.cwd
            ));
        }
        if self.umask.is_some_and(|m| m > 0o777) {
            return Err("process.user.umask: out of range".into());
        }
        Ok(())
    }
}

/// One process as `ps` shows it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProcInfo {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    /// Seconds after the sandbox's boot the process started.
    pub start_secs: u64,
    /// CPU time (user + system), nanoseconds.
    pub cpu_ns: u64,
    /// The command line, arguments joined by spaces (or `[comm]`).
    pub cmd: String,
}

/// What `events --stats` reports.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    pub cpu_user_ns: u64,
    pub cpu_kernel_ns: u64,
    pub memory_bytes: u64,
    pub tasks: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    /// exec: the new process's pid in the sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<ProcInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
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
            ..Default::default()
        }
    }
}

/// What the server's handler answers: one response, or one now and a second
/// when the closure returns (an exec'd process's exit status); the closure
/// may read further messages from the connection meanwhile.
pub enum Reply {
    One(Response),
    Then(Response, Box<dyn FnOnce(&UnixStream) -> Response + Send>),
}

/// What an exec client sends after its request, one JSON line each: a
/// signal to forward to the process.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Forward {
    pub signal: i32,
}

impl From<Response> for Reply {
    fn from(r: Response) -> Reply {
        Reply::One(r)
    }
}

/// The largest request or response line.
const MAX_LINE: usize = 4 << 20;
/// The most descriptors a request may carry.
const MAX_FDS: usize = 3;

/// Sends one request and reads the response. `Err` when the sandbox could not
/// be reached or hung up without answering.
pub fn call(sock: &Path, req: &Request) -> std::io::Result<Response> {
    call_with_fds(sock, req, &[]).map(|(r, _)| r)
}

/// Sends one request with `fds` attached and reads the first response; the
/// connection is returned for further responses ([`read_response`]).
pub fn call_with_fds(
    sock: &Path,
    req: &Request,
    fds: &[RawFd],
) -> std::io::Result<(Response, BufReader<UnixStream>)> {
    let (_dir, p) = short_path(sock)?;
    let mut s = UnixStream::connect(p)?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    let sent = if fds.is_empty() {
        0
    } else {
        send_fds(&s, &line, fds)?
    };
    s.write_all(&line[sent..])?;
    let mut r = BufReader::new(s);
    let resp = read_response(&mut r)?;
    Ok((resp, r))
}

/// Reads one response line.
pub fn read_response(r: &mut BufReader<UnixStream>) -> std::io::Result<Response> {
    let mut resp = Vec::new();
    r.by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut resp)?;
    if resp.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the sandbox closed the control socket",
        ));
    }
    Ok(serde_json::from_slice(&resp)?)
}

/// Sends (part of) `data` with `fds` as SCM_RIGHTS; returns the bytes sent.
fn send_fds(s: &UnixStream, data: &[u8], fds: &[RawFd]) -> std::io::Result<usize> {
    let fd_bytes = std::mem::size_of_val(fds);
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(fd_bytes as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer holds CMSG_SPACE(fd_bytes) bytes, so the first
    // header and its data fit.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(fd_bytes as u32) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr() as *const u8, libc::CMSG_DATA(c), fd_bytes);
    }
    loop {
        // SAFETY: `msg` describes valid buffers.
        let n = unsafe { libc::sendmsg(s.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Reads into `buf`, collecting any descriptors that come along (at most
/// `MAX_FDS` in all are kept; the excess is closed and reported as an error).
fn recv_with_fds(s: &UnixStream, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> std::io::Result<usize> {
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE((8 * std::mem::size_of::<RawFd>()) as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = space as _;
    let n = loop {
        // SAFETY: `msg` describes valid buffers.
        let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let mut excess = msg.msg_flags & libc::MSG_CTRUNC != 0;
    // SAFETY: walks the control messages the kernel wrote into `cbuf`, within
    // msg_controllen; each SCM_RIGHTS payload is an array of fresh descriptors
    // now owned by us.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let len = ((*c).cmsg_len as usize).saturating_sub(data as usize - c as usize);
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let mut fd: RawFd = 0;
                    std::ptr::copy_nonoverlapping(
                        data.add(i * std::mem::size_of::<RawFd>()),
                        &mut fd as *mut RawFd as *mut u8,
                        std::mem::size_of::<RawFd>(),
                    );
                    if fd < 0 {
                        continue;
                    }
                    let owned = OwnedFd::from_raw_fd(fd);
                    if fds.len() < MAX_FDS {
                        fds.push(owned);
                    } else {
                        excess = true;
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if excess {
        return Err(std::io::Error::other("too many descriptors in a request"));
    }
    Ok(n)
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

/// The server's handler: a request and the descriptors sent with it.
pub type Handler = dyn Fn(Request, Vec<OwnedFd>) -> Reply + Send + Sync;

/// Serves `listener` on a thread of its own; each connection on another.
pub fn serve(listener: UnixListener, handler: Arc<Handler>) -> std::io::Result<()> {
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

/// Reads one request line (and its descriptors) from `conn`.
fn read_request(conn: &UnixStream) -> Result<(Request, Vec<OwnedFd>), String> {
    let mut line = Vec::new();
    let mut fds = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = recv_with_fds(conn, &mut buf, &mut fds).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before a full request".into());
        }
        let chunk = &buf[..n];
        match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => {
                line.extend_from_slice(&chunk[..i]);
                break;
            }
            None => line.extend_from_slice(chunk),
        }
        if line.len() > MAX_LINE {
            return Err("request too large".into());
        }
    }
    let req = serde_json::from_slice::<Request>(&line).map_err(|e| format!("bad request: {e}"))?;
    Ok((req, fds))
}

fn handle(conn: UnixStream, h: &Handler) {
    let send = |c: &UnixStream, resp: &Response| {
        if let Ok(mut out) = serde_json::to_vec(resp) {
            out.push(b'\n');
            let mut c = c;
            let _ = c.write_all(&out);
        }
    };
    let reply = match read_request(&conn) {
        Ok((req, fds)) => h(req, fds),
        Err(e) => Reply::One(Response::err(e)),
    };
    match reply {
        Reply::One(r) => send(&conn, &r),
        Reply::Then(r, then) => {
            send(&conn, &r);
            let last = then(&conn);
            send(&conn, &last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves one connection with a handler reporting how many descriptors
    /// came; returns the client's first response.
    fn roundtrip(line: &[u8], fds: &[RawFd]) -> Response {
        let (client, server) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            handle(server, &|_req: Request, fds: Vec<OwnedFd>| -> Reply {
                Response {
                    ok: true,
                    status: Some(fds.len() as i32),
                    ..Default::default()
                }
                .into()
            })
        });
        let sent = if fds.is_empty() {
            0
        } else {
            send_fds(&client, line, fds).unwrap()
        };
        (&client).write_all(&line[sent..]).unwrap();
        let mut r = BufReader::new(client);
        let resp = read_response(&mut r).unwrap();
        t.join().unwrap();
        resp
    }

    #[test]
    fn descriptors_and_bad_requests() {
        let line = b"{\"cmd\":\"ps\"}\n";
        assert_eq!(roundtrip(line, &[]).status, Some(0));
        assert_eq!(roundtrip(line, &[0, 1, 2]).status, Some(3));
        let r = roundtrip(line, &[0, 1, 2, 0]);
        assert!(!r.ok && r.error.unwrap().contains("too many"));
        let r = roundtrip(b"garbage\n", &[]);
        assert!(!r.ok && r.error.unwrap().contains("bad request"));
        let r = roundtrip(b"{\"cmd\":\"exec\",\"process\":5,\"wait\":true}\n", &[]);
        assert!(!r.ok);
    }

    #[test]
    fn exec_process_validation() {
        let ok = ExecProcess {
            args: vec!["sh".into()],
            env: vec!["A=1".into()],
            cwd: "/".into(),
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        for bad in [
            ExecProcess {
                args: vec![],
                ..ok.clone()
            },
            ExecProcess {
                env: vec!["=x".into()],
                ..ok.clone()
            },
            ExecProcess {
                cwd: "x".into(),
                ..ok.clone()
            },
            ExecProcess {
                umask: Some(0o1000),
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
