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
