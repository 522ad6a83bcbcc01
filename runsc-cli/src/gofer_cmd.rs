//! `runsc gofer`: the file proxy process. It serves the container root over the
//! socket it inherited and exits when the sentry hangs up.

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};

use crate::cli::{split_flag, Global};

pub fn cmd_gofer(g: &Global, args: &[String]) -> i32 {
    crate::log::init(g.debug_log.as_deref(), g.debug, "gofer");
    let mut root = None;
    let mut fd = None;
    let mut read_only = false;
    for a in args {
        match split_flag(a) {
            Some(("root", Some(v))) => root = Some(v.to_string()),
            Some(("fd", Some(v))) => fd = v.parse::<i32>().ok(),
            Some(("read-only", None)) => read_only = true,
            _ => {
                eprintln!("runsc gofer: bad argument {a:?}");
                return 2;
            }
        }
    }
    let (Some(root), Some(fd)) = (root, fd) else {
        eprintln!("runsc gofer: --root and --fd are required");
        return 2;
    };
    if fd < 3 {
        eprintln!("runsc gofer: bad --fd");
        return 2;
    }
    // SAFETY: the parent passed us this fd number for our exclusive use.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let Ok(path) = CString::new(root.clone()) else {
        eprintln!("runsc gofer: bad root path");
        return 2;
    };
    // A regular file (a bind mount of one file): its directory is opened and
    // only that file served.
    if std::fs::metadata(&root).is_ok_and(|m| m.is_file()) {
        return serve_file(&root, sock, read_only);
    }
    // SAFETY: plain syscall with a valid C string.
    let rfd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if rfd < 0 {
        eprintln!(
            "runsc gofer: cannot open root {root}: {}",
            std::io::Error::last_os_error()
        );
        return 1;
    }
    // SAFETY: rfd is a fresh descriptor we own.
    let rootfd = unsafe { OwnedFd::from_raw_fd(rfd) };
    match gofer::server::serve(rootfd, sock, read_only) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("gofer: {e}");
            1
        }
    }
}

/// Serves the single regular file `path` (`--root` naming a file).
fn serve_file(path: &str, sock: OwnedFd, read_only: bool) -> i32 {
    use std::os::unix::ffi::OsStrExt;
    let p = std::path::Path::new(path);
    let (Some(dir), Some(name)) = (p.parent(), p.file_name()) else {
        eprintln!("runsc gofer: bad root path {path:?}");
        return 2;
    };
    let dir = match std::fs::File::open(dir) {
        Ok(d) if d.metadata().is_ok_and(|m| m.is_dir()) => OwnedFd::from(d),
        Ok(_) => {
            eprintln!("runsc gofer: {}: not a directory", dir.display());
            return 1;
        }
        Err(e) => {
            eprintln!("runsc gofer: cannot open {}: {e}", dir.display());
            return 1;
        }
    };
    match gofer::server::serve_file(dir, name.as_bytes(), sock, read_only) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("gofer: {e}");
            eprintln!("runsc gofer: {path}: {e}");
            1
        }
    }
}
