//! `process.terminal`: the container's console.
//!
//! Inside the sandbox the init gets a pty of the sentry's devpts as its
//! stdin, stdout, stderr, /dev/console and controlling terminal. Outside, the
//! engine gets a host pty master, as runc hands out: `runsc create` opens a
//! host pty pair, sends the master over `--console-socket` (SCM_RIGHTS, with
//! the replica's path as the message, as runc's `utils.SendFd`) and passes the
//! replica, in raw mode, to the sentry (`runsc boot --console-fd=N`). The
//! sentry bridges that host replica to the sandbox master with two threads,
//! and forwards the host pty's window size (polled) to the sandbox terminal.
//! A foreground `runsc run` without a console socket keeps the master itself
//! and copies between it and its own stdio (raw mode on its terminal).

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use abi::Errno;

/// runc's message for a detached container with a terminal and no socket.
pub const NEED_SOCKET: &str =
    "cannot allocate tty if runc will detach without setting console socket";
/// runc's message for a console socket without a detached terminal.
pub const NO_SOCKET: &str = "cannot use console socket if runc will not detach or allocate tty";

/// runc's checkTerminal: `detach` is create, or run --detach.
pub fn check(terminal: bool, detach: bool, socket: Option<&str>) -> Result<(), String> {
    if detach && terminal && socket.is_none() {
        return Err(NEED_SOCKET.into());
    }
    if (!detach || !terminal) && socket.is_some() {
        return Err(NO_SOCKET.into());
    }
    Ok(())
}

fn last_err() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// A host pty pair.
pub struct HostPty {
    pub master: OwnedFd,
    pub replica: OwnedFd,
    /// The replica's path (/dev/pts/N).
    pub name: String,
}

impl HostPty {
    /// Opens a pair (both ends close-on-exec); the replica is put in raw mode
    /// (the sandbox's own terminal does the line discipline).
    pub fn open() -> std::io::Result<HostPty> {
        // SAFETY: plain syscalls; results checked.
        let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
        if m < 0 {
            return Err(last_err());
        }
        // SAFETY: a fresh fd we own.
        let master = unsafe { OwnedFd::from_raw_fd(m) };
        // SAFETY: plain syscalls on our fd.
        if unsafe { libc::grantpt(m) } != 0 || unsafe { libc::unlockpt(m) } != 0 {
            return Err(last_err());
        }
        let mut buf = [0 as libc::c_char; 128];
        // SAFETY: the buffer is valid for its length.
        if unsafe { libc::ptsname_r(m, buf.as_mut_ptr(), buf.len()) } != 0 {
            return Err(last_err());
        }
        // SAFETY: ptsname_r NUL-terminated it.
        let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
        // SAFETY: a valid C string.
        let r = unsafe {
            libc::open(
                name.as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        };
        if r < 0 {
            return Err(last_err());
        }
        // SAFETY: a fresh fd we own.
        let replica = unsafe { OwnedFd::from_raw_fd(r) };
        set_raw(replica.as_raw_fd())?;
        Ok(HostPty {
            master,
            replica,
            name: name.to_string_lossy().into_owned(),
        })
    }
}

/// Puts a terminal in raw mode; returns its previous settings.
pub fn set_raw(fd: RawFd) -> std::io::Result<libc::termios> {
    // SAFETY: termios is plain data; tcgetattr fills it.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
        return Err(last_err());
    }
    let old = t;
    // SAFETY: valid pointer.
    unsafe { libc::cfmakeraw(&mut t) };
    // SAFETY: valid pointer.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) } != 0 {
        return Err(last_err());
    }
    Ok(old)
}

fn winsize(fd: RawFd) -> Option<libc::winsize> {
    // SAFETY: winsize is plain data filled by the ioctl.
    let mut w: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer for TIOCGWINSZ.
    (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut w) } == 0).then_some(w)
}

fn set_winsize(fd: RawFd, w: &libc::winsize) {
    // SAFETY: valid pointer for TIOCSWINSZ.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, w) };
}

/// Sends `fd` over the AF_UNIX socket at `path` with `name` as the message
/// (runc's `utils.SendFd`, which containerd's and Podman's `RecvFd` read).
pub fn send(path: &str, fd: &OwnedFd, name: &str) -> Result<(), String> {
    // Any length (containerd's are long), through the open parent directory.
    let err = |e: std::io::Error| format!("--console-socket {path}: {e}");
    let (_dir, short) = super::control::short_path(std::path::Path::new(path)).map_err(err)?;
    let sock = std::os::unix::net::UnixStream::connect(short).map_err(err)?;
    let payload = name.as_bytes();
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    // SAFETY: msghdr is plain data.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer has room for one header and one fd.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut RawFd, fd.as_raw_fd());
    }
    // SAFETY: msg points at live buffers.
    let r = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    if r < 0 {
        return Err(format!("--console-socket {path}: {}", last_err()));
    }
    Ok(())
}

// ---- the foreground `runsc run` side ----

/// A foreground `run`'s copy of its stdio to and from the console master.
pub struct Foreground {
    out: Option<std::thread::JoinHandle<()>>,
    saved: Option<libc::termios>,
}

impl Foreground {
    /// Starts copying: stdin to `master`, `master` to stdout; stdin (when a
    /// terminal) goes raw and its window size is forwarded.
    pub fn start(master: OwnedFd) -> Foreground {
        let stdin_tty = std::io::IsTerminal::is_terminal(&std::io::stdin());
        let saved = if stdin_tty {
            if let Some(w) = winsize(0) {
                set_winsize(master.as_raw_fd(), &w);
            }
            set_raw(0).ok()
        } else {
            None
        };
        let master = Arc::new(master);
        let m = master.clone();
        let _ = std::thread::Builder::new()
            .name("console-in".into())
            .spawn(move || {
                let mut last = winsize(0).map(|w| (w.ws_row, w.ws_col));
                let mut buf = [0u8; 4096];
                loop {
                    let mut p = libc::pollfd {
                        fd: 0,
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    let r = unsafe { libc::poll(&mut p, 1, 250) };
                    if stdin_tty {
                        if let Some(w) = winsize(0) {
                            if last != Some((w.ws_row, w.ws_col)) {
                                last = Some((w.ws_row, w.ws_col));
                                set_winsize(m.as_raw_fd(), &w);
                            }
                        }
                    }
                    if r <= 0 {
                        continue;
                    }
                    // Unbuffered: poll(2) must see whatever is left.
                    // SAFETY: the buffer is valid for its length.
                    let n = unsafe { libc::read(0, buf.as_mut_ptr() as *mut libc::c_void, 4096) };
                    if n < 0 && last_err().kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    if n <= 0 {
                        return;
                    }
                    if write_all(m.as_raw_fd(), &buf[..n as usize]).is_err() {
                        return;
                    }
                }
            });
        let out = std::thread::Builder::new()
            .name("console-out".into())
            .spawn(move || {
                let mut buf = [0u8; 4096];
                let mut stdout = std::io::stdout();
                loop {
                    // SAFETY: the buffer is valid for its length.
                    let n = unsafe {
                        libc::read(
                            master.as_raw_fd(),
                            buf.as_mut_ptr() as *mut libc::c_void,
                            buf.len(),
                        )
                    };
                    if n < 0 && last_err().kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    // EIO: the sandbox (the replica's only holder) is gone.
                    if n <= 0 {
                        return;
                    }
                    let _ = stdout.write_all(&buf[..n as usize]);
                    let _ = stdout.flush();
                }
            })
            .ok();
        Foreground { out, saved }
    }

    /// Waits (briefly) for the last output, and restores the terminal.
    pub fn finish(mut self) {
        if let Some(h) = self.out.take() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.restore();
    }

    fn restore(&mut self) {
        if let Some(t) = self.saved.take() {
            // SAFETY: valid pointer.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
        }
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        self.restore();
    }
}

fn write_all(fd: RawFd, mut b: &[u8]) -> std::io::Result<()> {
    while !b.is_empty() {
        // SAFETY: the buffer is valid for its length.
        let n = unsafe { libc::write(fd, b.as_ptr() as *const libc::c_void, b.len()) };
        if n < 0 {
            let e = last_err();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        b = &b[n as usize..];
    }
    Ok(())
}

// ---- the sentry side ----

/// The sandbox end of a console: the bridge between the host replica and the
/// sandbox master.
pub struct Bridge {
    done: Arc<AtomicBool>,
    out: Option<std::thread::JoinHandle<()>>,
}

/// Makes the sandbox terminal of session `sid` (init's, or an exec'd
/// process's; owned by `uid`/`gid`) and starts bridging it to the host
/// terminal `host`. Returns the replica (the leader's stdio, and init's
/// /dev/console) and the bridge.
pub fn sandbox_console(
    vfs: &Arc<fs::Vfs>,
    host: OwnedFd,
    uid: u32,
    gid: u32,
    sid: i32,
) -> Result<(Arc<fs::OpenFile>, Bridge), String> {
    let (term, master, replica) = vfs
        .devpts()
        .new_console(uid, gid, sid)
        .map_err(|e| format!("console: {e}"))?;
    // The replica goes by its name (ttyname(3) of init's stdio).
    let path = format!("/dev/pts/{}", term.index());
    let ctx = fs::FsContext::new(vfs.root());
    let loc = vfs
        .walk(
            &ctx,
            &fs::Creds::root(),
            &vfs.root(),
            path.as_bytes(),
            &fs::WalkOpts::nofollow(),
        )
        .ok();
    let replica = fs::OpenFile::new(replica, libc::O_RDWR, loc);
    let master = fs::OpenFile::new(master, libc::O_RDWR, None);
    if let Some(w) = winsize(host.as_raw_fd()) {
        term.set_winsize([w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel]);
    }
    let host = Arc::new(host);
    let done = Arc::new(AtomicBool::new(false));

    // Host -> sandbox (and the window size), until the output side ends.
    let (h, m, t, d) = (host.clone(), master.clone(), term.clone(), done.clone());
    std::thread::Builder::new()
        .name("console-in".into())
        .spawn(move || {
            let Ok(w) = fs::waiter::Waiter::new() else {
                return;
            };
            let mut last = winsize(h.as_raw_fd()).map(|w| (w.ws_row, w.ws_col));
            let mut buf = [0u8; 4096];
            loop {
                let mut p = libc::pollfd {
                    fd: h.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                let r = unsafe { libc::poll(&mut p, 1, 250) };
                if d.load(Ordering::SeqCst) {
                    return;
                }
                if let Some(ws) = winsize(h.as_raw_fd()) {
                    if last != Some((ws.ws_row, ws.ws_col)) {
                        last = Some((ws.ws_row, ws.ws_col));
                        t.set_winsize([ws.ws_row, ws.ws_col, ws.ws_xpixel, ws.ws_ypixel]);
                    }
                }
                if r <= 0 {
                    continue;
                }
                if p.revents & libc::POLLIN == 0 {
                    // The engine closed the master: nothing more comes in.
                    return;
                }
                // SAFETY: the buffer is valid for its length.
                let n = unsafe {
                    libc::read(h.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, 4096)
                };
                if n < 0 && last_err().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                if n <= 0 {
                    return;
                }
                let mut off = 0;
                let n = n as usize;
                while off < n {
                    let q = m.ops().wait_queue();
                    let qs: Vec<(&fs::waiter::WaitQueue, u32)> =
                        q.map(|q| (q, fs::waiter::EVENT_OUT)).into_iter().collect();
                    match fs::waiter::block(&w, &qs, &[], None, || m.write(&buf[off..n])) {
                        Ok(k) => off += k,
                        Err(_) => return,
                    }
                }
            }
        })
        .map_err(|e| format!("console: {e}"))?;

    // Sandbox -> host. When it ends (every sandbox replica closed, as when an
    // exec'd process and its children are gone, or `finish`), the input side
    // ends too and the host terminal is closed: the engine's master reads EIO.
    let (m, d) = (master, done.clone());
    let out = std::thread::Builder::new()
        .name("console-out".into())
        .spawn(move || {
            struct Done(Arc<AtomicBool>);
            impl Drop for Done {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::SeqCst);
                }
            }
            let _done = Done(d.clone());
            let Ok(w) = fs::waiter::Waiter::new() else {
                return;
            };
            let mut buf = [0u8; 4096];
            // Once the engine stops reading, output is dropped (the sandbox
            // must not stall on it).
            let mut host_ok = true;
            loop {
                let q = m.ops().wait_queue();
                let qs: Vec<(&fs::waiter::WaitQueue, u32)> =
                    q.map(|q| (q, fs::waiter::EVENT_IN)).into_iter().collect();
                let deadline = Instant::now() + Duration::from_millis(200);
                match fs::waiter::block(&w, &qs, &[], Some(deadline), || m.read(&mut buf)) {
                    Ok(n) if n > 0 => {
                        if host_ok && write_all(host.as_raw_fd(), &buf[..n]).is_err() {
                            host_ok = false;
                        }
                    }
                    Err(Errno::ETIMEDOUT) if !d.load(Ordering::SeqCst) => {}
                    // Drained after init exited, or the replica is closed (EIO).
                    _ => return,
                }
            }
        })
        .map_err(|e| format!("console: {e}"))?;
    Ok((
        replica,
        Bridge {
            done,
            out: Some(out),
        },
    ))
}

impl Bridge {
    /// Init exited: copies what is left of its output (for up to a second).
    pub fn finish(mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(h) = self.out.take() {
            let deadline = Instant::now() + Duration::from_secs(1);
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_checks() {
        assert_eq!(check(true, true, None), Err(NEED_SOCKET.into()));
        assert!(check(true, true, Some("/s")).is_ok());
        assert!(check(true, false, None).is_ok());
        assert_eq!(check(true, false, Some("/s")), Err(NO_SOCKET.into()));
        assert_eq!(check(false, true, Some("/s")), Err(NO_SOCKET.into()));
        assert!(check(false, true, None).is_ok());
    }
}
