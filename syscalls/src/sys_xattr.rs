//! Extended attributes: getxattr, setxattr, listxattr, removexattr and their l*
//! (no final symlink following) and f* (open file) forms; name_to_handle_at.
//!
//! The argument rules are Linux's (fs/xattr.c): names are 1..=255 bytes (empty or
//! longer: ERANGE), values at most 64 KiB (E2BIG), flags XATTR_CREATE/XATTR_REPLACE
//! (others EINVAL); a `size` of 0 asks for the needed size, a smaller non-zero size
//! is ERANGE. The namespace and permission rules are the VFS's
//! (`Vfs::getxattr` etc.); storage is the file system's (tmpfs keeps user.* and
//! trusted.*, the gofer fs passes user.* to the host, others have none: EOPNOTSUPP).

use std::sync::Arc;

use abi::sysno as nr;
use abi::{Errno, SysResult};
use fs::vfs::{Location, WalkOpts};
use fs::OpenFile;
use sentry::Task;

use crate::sys_file::{creds, path_arg, resolve};
use crate::{Arg, Args, Table};

/// Longest xattr name (XATTR_NAME_MAX).
const XATTR_NAME_MAX: usize = 255;
/// Largest value (XATTR_SIZE_MAX) and name list (XATTR_LIST_MAX).
const XATTR_SIZE_MAX: usize = 65536;
const XATTR_LIST_MAX: usize = 65536;
const XATTR_CREATE: i32 = 1;
const XATTR_REPLACE: i32 = 2;
const CAP_SYS_ADMIN: u32 = 21;

pub(crate) fn register(t: &mut Table) {
    use Arg::*;
    t.add(nr::GETXATTR, sys_getxattr, &[Path, Path, Hex, UDec]);
    t.add(nr::LGETXATTR, sys_lgetxattr, &[Path, Path, Hex, UDec]);
    t.add(nr::FGETXATTR, sys_fgetxattr, &[Fd, Path, Hex, UDec]);
    t.add(nr::LISTXATTR, sys_listxattr, &[Path, Hex, UDec]);
    t.add(nr::LLISTXATTR, sys_llistxattr, &[Path, Hex, UDec]);
    t.add(nr::FLISTXATTR, sys_flistxattr, &[Fd, Hex, UDec]);
    t.add(nr::SETXATTR, sys_setxattr, &[Path, Path, Hex, UDec, Hex]);
    t.add(nr::LSETXATTR, sys_lsetxattr, &[Path, Path, Hex, UDec, Hex]);
    t.add(nr::FSETXATTR, sys_fsetxattr, &[Fd, Path, Hex, UDec, Hex]);
    t.add(nr::REMOVEXATTR, sys_removexattr, &[Path, Path]);
    t.add(nr::LREMOVEXATTR, sys_lremovexattr, &[Path, Path]);
    t.add(nr::FREMOVEXATTR, sys_fremovexattr, &[Fd, Path]);
    t.add(
        nr::NAME_TO_HANDLE_AT,
        sys_name_to_handle_at,
        &[DirFd, Path, Hex, Hex, Hex],
    );
}

fn admin(t: &Task) -> bool {
    t.creds.has_capability(CAP_SYS_ADMIN)
}

/// Copies in an xattr name: EFAULT for a bad pointer, ERANGE when empty or longer
/// than XATTR_NAME_MAX (Linux's strncpy_from_user into a 256-byte buffer).
fn name_arg(t: &Task, addr: u64) -> Result<Vec<u8>, Errno> {
    if addr == 0 {
        return Err(Errno::EFAULT);
    }
    match t.copy_in_string(addr, XATTR_NAME_MAX) {
        Ok(n) if n.is_empty() => Err(Errno::ERANGE),
        Ok(n) => Ok(n),
        Err(Errno::ENAMETOOLONG) => Err(Errno::ERANGE),
        Err(e) => Err(e),
    }
}

/// The location of a path argument (following a final symlink or not).
fn path_target(t: &Task, addr: u64, follow: bool) -> Result<Location, Errno> {
    let p = path_arg(t, addr)?;
    let opts = if follow {
        WalkOpts::follow()
    } else {
        WalkOpts::nofollow()
    };
    resolve(t, &creds(t), libc::AT_FDCWD, &p, &opts)
}

/// The open file of an f*xattr call (O_PATH descriptors are EBADF) and its
/// location; None for a file with no place in the file system tree (pipes,
/// sockets, inherited stdio).
fn fd_target(t: &Task, fd: i32) -> Result<(Arc<OpenFile>, Option<Location>), Errno> {
    let f = t.fds.get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    let loc = f.location().cloned();
    Ok((f, loc))
}

/// A file without a location is a special file on a file system without xattrs:
/// Linux's `xattr_permission` answers user.* (and trusted.* without
/// CAP_SYS_ADMIN) with ENODATA to read and EPERM to change; anything else has no
/// handler (EOPNOTSUPP).
fn no_xattrs(t: &Task, name: &[u8], write: bool) -> Errno {
    if name.starts_with(b"user.") || (name.starts_with(b"trusted.") && !admin(t)) {
        if write {
            Errno::EPERM
        } else {
            Errno::ENODATA
        }
    } else {
        Errno::EOPNOTSUPP
    }
}

/// Copies `data` out under the size rules: 0 returns the length, a smaller size
/// ERANGE (E2BIG when the data could never fit).
fn reply(t: &Task, addr: u64, size: usize, data: &[u8], max: usize) -> SysResult {
    if size == 0 {
        return Ok(data.len() as u64);
    }
    let size = size.min(max);
    if data.len() > size {
        return Err(if size >= max {
            Errno::E2BIG
        } else {
            Errno::ERANGE
        });
    }
    t.copy_out(addr, data)?;
    Ok(data.len() as u64)
}

// ---- getxattr

fn do_getxattr(t: &Task, loc: &Location, name: &[u8], value: u64, size: usize) -> SysResult {
    let v = t.kernel.vfs.getxattr(&creds(t), admin(t), loc, name)?;
    reply(t, value, size, &v, XATTR_SIZE_MAX)
}

fn path_getxattr(t: &Task, a: &Args, follow: bool) -> SysResult {
    let name = name_arg(t, a.u64(1))?;
    let loc = path_target(t, a.u64(0), follow)?;
    do_getxattr(t, &loc, &name, a.u64(2), a.u64(3) as usize)
}

fn sys_getxattr(t: &mut Task, a: &Args) -> SysResult {
    path_getxattr(t, a, true)
}

fn sys_lgetxattr(t: &mut Task, a: &Args) -> SysResult {
    path_getxattr(t, a, false)
}

fn sys_fgetxattr(t: &mut Task, a: &Args) -> SysResult {
    let (_f, loc) = fd_target(t, a.fd(0))?;
    let name = name_arg(t, a.u64(1))?;
    match loc {
        Some(loc) => do_getxattr(t, &loc, &name, a.u64(2), a.u64(3) as usize),
        None => Err(no_xattrs(t, &name, false)),
    }
}

// ---- listxattr

fn do_listxattr(t: &Task, loc: &Location, list: u64, size: usize) -> SysResult {
    let v = t.kernel.vfs.listxattr(admin(t), loc)?;
    reply(t, list, size, &v, XATTR_LIST_MAX)
}

fn sys_listxattr(t: &mut Task, a: &Args) -> SysResult {
    let loc = path_target(t, a.u64(0), true)?;
    do_listxattr(t, &loc, a.u64(1), a.u64(2) as usize)
}

fn sys_llistxattr(t: &mut Task, a: &Args) -> SysResult {
    let loc = path_target(t, a.u64(0), false)?;
    do_listxattr(t, &loc, a.u64(1), a.u64(2) as usize)
}

fn sys_flistxattr(t: &mut Task, a: &Args) -> SysResult {
    match fd_target(t, a.fd(0))? {
        (_, Some(loc)) => do_listxattr(t, &loc, a.u64(1), a.u64(2) as usize),
        (_, None) => Ok(0),
    }
}

// ---- setxattr

/// The name and value of a setxattr call, checked in Linux's order: flags (EINVAL),
/// name (EFAULT, ERANGE), size (E2BIG), value (EFAULT).
fn set_args(
    t: &Task,
    name: u64,
    value: u64,
    size: u64,
    flags: i32,
) -> Result<(Vec<u8>, Vec<u8>), Errno> {
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = name_arg(t, name)?;
    if size > XATTR_SIZE_MAX as u64 {
        return Err(Errno::E2BIG);
    }
    let value = if size > 0 {
        t.copy_in_vec(value, size as usize)?
    } else {
        Vec::new()
    };
    Ok((name, value))
}

fn path_setxattr(t: &Task, a: &Args, follow: bool) -> SysResult {
    let flags = a.i32(4);
    let (name, value) = set_args(t, a.u64(1), a.u64(2), a.u64(3), flags)?;
    let loc = path_target(t, a.u64(0), follow)?;
    t.kernel
        .vfs
        .setxattr(&creds(t), admin(t), &loc, &name, &value, flags)?;
    Ok(0)
}

fn sys_setxattr(t: &mut Task, a: &Args) -> SysResult {
    path_setxattr(t, a, true)
}

fn sys_lsetxattr(t: &mut Task, a: &Args) -> SysResult {
    path_setxattr(t, a, false)
}

fn sys_fsetxattr(t: &mut Task, a: &Args) -> SysResult {
    let (_f, loc) = fd_target(t, a.fd(0))?;
    let flags = a.i32(4);
    let (name, value) = set_args(t, a.u64(1), a.u64(2), a.u64(3), flags)?;
    let Some(loc) = loc else {
        return Err(no_xattrs(t, &name, true));
    };
    t.kernel
        .vfs
        .setxattr(&creds(t), admin(t), &loc, &name, &value, flags)?;
    Ok(0)
}

// ---- removexattr

fn path_removexattr(t: &Task, a: &Args, follow: bool) -> SysResult {
    let name = name_arg(t, a.u64(1))?;
    let loc = path_target(t, a.u64(0), follow)?;
    t.kernel.vfs.removexattr(&creds(t), admin(t), &loc, &name)?;
    Ok(0)
}

fn sys_removexattr(t: &mut Task, a: &Args) -> SysResult {
    path_removexattr(t, a, true)
}

fn sys_lremovexattr(t: &mut Task, a: &Args) -> SysResult {
    path_removexattr(t, a, false)
}

fn sys_fremovexattr(t: &mut Task, a: &Args) -> SysResult {
    let (_f, loc) = fd_target(t, a.fd(0))?;
    let name = name_arg(t, a.u64(1))?;
    let Some(loc) = loc else {
        return Err(no_xattrs(t, &name, true));
    };
    t.kernel.vfs.removexattr(&creds(t), admin(t), &loc, &name)?;
    Ok(0)
}

// ---- file handles

/// name_to_handle_at(2): no file system here exports file handles: after the
/// flag check and the path walk, EOPNOTSUPP (what Linux answers for a file system
/// without export operations).
fn sys_name_to_handle_at(t: &mut Task, a: &Args) -> SysResult {
    const AT_HANDLE_FID: i32 = 0x200;
    let flags = a.i32(4);
    if flags & !(libc::AT_SYMLINK_FOLLOW | libc::AT_EMPTY_PATH | AT_HANDLE_FID) != 0 {
        return Err(Errno::EINVAL);
    }
    let p = path_arg(t, a.u64(1))?;
    let opts = WalkOpts {
        follow_final: flags & libc::AT_SYMLINK_FOLLOW != 0,
        allow_empty: flags & libc::AT_EMPTY_PATH != 0,
        ..Default::default()
    };
    if p.is_empty() && flags & libc::AT_EMPTY_PATH != 0 && a.fd(0) != libc::AT_FDCWD {
        t.fds.get(a.fd(0))?;
    } else {
        resolve(t, &creds(t), a.fd(0), &p, &opts)?;
    }
    Err(Errno::EOPNOTSUPP)
}
