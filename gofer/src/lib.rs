//! The gofer: a trusted process that alone opens host files beneath the container
//! root and hands the sandboxed sentry host fds over a SOCK_SEQPACKET socketpair.
//!
//! - [`proto`]: the messages and their length-checked binary codec.
//! - [`server::serve`]: the server loop (runs in `runsc gofer`).
//! - [`Client`]: what the sentry's gofer-backed fs calls.
//!
//! Semantics the fs layer relies on:
//! - Nodes are named by [`Handle`]; handles are never reused within a connection;
//!   unknown handles give EBADF. `mount()` returns a fresh root handle each call.
//! - Walks never follow symlinks and take one validated component at a time
//!   (non-empty, no '/', no NUL, not "." / "..", <= 255 bytes; else EINVAL). Walking
//!   *through* a symlink or a non-directory gives ENOTDIR; the sentry resolves
//!   symlinks itself with `readlink` and handles ".." itself.
//! - `open` only opens regular files and directories: a symlink node gives ELOOP,
//!   devices/FIFOs/sockets give ENXIO, and a name that now refers to a different
//!   inode than the one walked gives ESTALE (re-walk). Allowed flags: access mode,
//!   O_DIRECTORY, O_APPEND, O_TRUNC, O_NONBLOCK, O_DSYNC, O_SYNC, O_LARGEFILE;
//!   others are stripped; the server adds O_NOFOLLOW|O_CLOEXEC|O_NOCTTY. A read-only
//!   server answers any write access or O_TRUNC with EROFS.
//! - `getdents` offsets are entry indexes: offset 0 (re-)reads the directory,
//!   each entry's `next_offset` is index+1, an empty reply means the end.
//! - Writes (`create`, `mkdir`, `mknod`, `symlink`, `link`, `unlink`, `rename`,
//!   `setstat`, `setxattr`, `removexattr`) are checked by [`proto::validate`] in the
//!   client (no round trip) and again in the server: names as for walks (EINVAL),
//!   unknown flag/mask bits EINVAL, mode bits beyond 0o7777 EINVAL, device nodes EPERM,
//!   xattr namespaces other than user. EOPNOTSUPP. A read-only
//!   server answers them with EROFS (`getxattr`/`listxattr` still work; a `setstat`
//!   with an empty mask is a stat). `create` never opens an existing name (EEXIST);
//!   modes are applied exactly (no umask); uid/gid u32::MAX keep the gofer's own ids.
//! - Handles follow renames made through the same connection. A handle whose name was
//!   unlinked gives ENOENT, and one whose name now refers to another inode ESTALE, for
//!   every operation that goes through its name (open, setstat, xattrs, link target);
//!   `stat`/`readlink` keep describing the old inode. See [`server`] for details.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod client;
pub mod proto;
pub mod server;
mod sys;

pub use client::Client;

/// A node of the served tree, as named on the wire.
pub type Handle = u64;

/// A connected AF_UNIX SOCK_SEQPACKET socket pair (close-on-exec), for
/// connecting a [`Client`] to [`server::serve`].
pub fn socketpair() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    sys::socketpair()
}
