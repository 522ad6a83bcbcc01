//! `runsc gofer`: the file proxy process. It confines itself
//! ([`crate::gofer_confine`]: inherited fds closed, own namespaces, "/" = the
//! served tree, few capabilities, [`crate::seccomp_gofer`]'s allow-list), then
//! serves the container root over the socket it inherited and exits when the
//! sentry hangs up.

use std::os::fd::{FromRawFd, OwnedFd};

use crate::cli::{split_flag, Global};
use crate::gofer_confine::{self, Served};

pub fn cmd_gofer(g: &Global, args: &[String]) -> i32 {
    let mut root = None;
    let mut fd = None;
    let mut read_only = false;
    // A rootless sandbox: its uid and gid, mapped to ours in a user namespace.
    let mut userns = None;
    for a in args {
        match split_flag(a) {
            Some(("root", Some(v))) => root = Some(v.to_string()),
            Some(("fd", Some(v))) => fd = v.parse::<i32>().ok(),
            Some(("read-only", None)) => read_only = true,
            Some(("userns", Some(v))) => match v
                .split_once(':')
                .and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)))
            {
                Some(ids) => userns = Some(ids),
                None => {
                    eprintln!("runsc gofer: bad --userns {v:?} (want UID:GID)");
                    return 2;
                }
            },
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
    // Before anything else is opened (the debug log is opened after).
    if let Err(e) = gofer_confine::close_inherited_fds(fd) {
        eprintln!("runsc gofer: closing inherited fds: {e}");
        return 1;
    }
    crate::log::init(g.debug_log.as_deref(), g.debug, "gofer");
    // SAFETY: the parent passed us this fd number for our exclusive use.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let served = match gofer_confine::enter_root(std::path::Path::new(&root), read_only, userns) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("gofer: confining to {root}: {e}");
            eprintln!("runsc gofer: {root}: {e}");
            return 1;
        }
    };
    if let Err(e) = gofer_confine::drop_capabilities() {
        tracing::error!("gofer: {e}");
        eprintln!("runsc gofer: {e}");
        return 1;
    }
    if let Err(e) = crate::seccomp_gofer::install(fd, read_only) {
        tracing::error!("gofer: {e}");
        eprintln!("runsc gofer: {e}");
        return 1;
    }
    let r = match served {
        Served::Dir(rootfd) => gofer::server::serve(rootfd, sock, read_only),
        // A regular file (a bind mount of one file): only that file is served.
        Served::File(dir, name) => gofer::server::serve_file(dir, &name, sock, read_only),
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("gofer: {e}");
            eprintln!("runsc gofer: {root}: {e}");
            1
        }
    }
}
