//! mount(2), umount2(2), pivot_root(2) inside the sandbox. They change the
//! sandbox's own mount tree (never the host's): new tmpfs, proc and sysfs
//! instances, bind mounts, remounts (ro/rw and the per-mount flags), and
//! propagation changes (accepted: the sandbox has one mount namespace, so
//! there is nothing to propagate to).
//!
//! Not supported: MS_MOVE (EINVAL); pivot_root changes the calling process's
//! root and cwd only (Linux changes every process whose root was the old
//! root), and leaves a recursive bind of the old root at put_old rather than
//! moving the mount.

use abi::sysno::*;
use abi::{Errno, SysResult};
use fs::vfs::{Location, MountOpts, WalkOpts};
use fs::Inode;
use sentry::Task;

use crate::sys_file::{creds, path_arg, resolve};
use crate::{Arg, Args, Table};

pub(crate) fn register(t: &mut Table) {
    use Arg::*;
    t.add(MOUNT, sys_mount, &[Path, Path, Path, Hex, Hex]);
    t.add(UMOUNT2, sys_umount2, &[Path, Hex]);
    t.add(PIVOT_ROOT, sys_pivot_root, &[Path, Path]);
}

/// CAP_SYS_ADMIN.
const CAP_SYS_ADMIN: u32 = 21;

const MS_RDONLY: u64 = libc::MS_RDONLY;
const MS_REMOUNT: u64 = libc::MS_REMOUNT;
const MS_BIND: u64 = libc::MS_BIND;
const MS_MOVE: u64 = libc::MS_MOVE;
const MS_REC: u64 = libc::MS_REC;
const MS_SILENT: u64 = libc::MS_SILENT;
const MS_PROPAGATION: u64 =
    libc::MS_SHARED | libc::MS_PRIVATE | libc::MS_SLAVE | libc::MS_UNBINDABLE;
/// The old magic number callers may put in the top 16 bits.
const MS_MGC_VAL: u64 = 0xc0ed_0000;
const MS_MGC_MSK: u64 = 0xffff_0000;

const MNT_FORCE: i32 = 1;
const MNT_DETACH: i32 = 2;
const MNT_EXPIRE: i32 = 4;
const UMOUNT_NOFOLLOW: i32 = 8;

fn need_admin(t: &Task) -> Result<(), Errno> {
    if t.creds.has_capability(CAP_SYS_ADMIN) {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// A string argument of mount(2) (type, source), at most a page.
fn string_arg(t: &Task, addr: u64) -> Result<Option<Vec<u8>>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    t.copy_in_string(addr, 4095).map(Some)
}

/// Parses "size=", "mode=", "uid=", "gid=" of tmpfs (others Linux knows are
/// accepted and ignored; unknown ones are EINVAL, as tmpfs does).
struct TmpfsOpts {
    size: u64,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
}

fn parse_size(v: &str) -> Option<u64> {
    let (num, mul) = match v.as_bytes().last()? {
        b'k' | b'K' => (&v[..v.len() - 1], 1u64 << 10),
        b'm' | b'M' => (&v[..v.len() - 1], 1 << 20),
        b'g' | b'G' => (&v[..v.len() - 1], 1 << 30),
        b'%' => {
            // A percentage of "RAM": of the default tmpfs limit.
            let pct: u64 = v[..v.len() - 1].parse().ok()?;
            return Some(fs::tmpfs::DEFAULT_LIMIT / 100 * pct.min(100));
        }
        _ => (v, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

fn parse_tmpfs(data: &[u8]) -> Result<TmpfsOpts, Errno> {
    let mut o = TmpfsOpts {
        size: fs::tmpfs::DEFAULT_LIMIT,
        mode: 0o1777,
        uid: None,
        gid: None,
    };
    let s = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
    for opt in s.split(',').filter(|o| !o.is_empty()) {
        let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
        match k {
            "size" => {
                let n = parse_size(v).ok_or(Errno::EINVAL)?;
                // Rounded up to pages; 0 means "no limit" in Linux.
                o.size = if n == 0 {
                    u64::MAX
                } else {
                    n.div_ceil(4096) * 4096
                };
            }
            "mode" => o.mode = u32::from_str_radix(v, 8).map_err(|_| Errno::EINVAL)? & 0o7777,
            "uid" => o.uid = Some(v.parse().map_err(|_| Errno::EINVAL)?),
            "gid" => o.gid = Some(v.parse().map_err(|_| Errno::EINVAL)?),
            "nr_inodes" | "nr_blocks" | "huge" | "mpol" | "inode32" | "inode64" | "noswap"
            | "rw" | "ro" | "defaults" | "nosuid" | "nodev" | "noexec" | "relatime"
            | "strictatime" | "noatime" => {}
            _ => return Err(Errno::EINVAL),
        }
    }
    Ok(o)
}

fn sys_mount(t: &mut Task, a: &Args) -> SysResult {
    let mut flags = a.u64(3);
    if flags & MS_MGC_MSK == MS_MGC_VAL {
        flags &= !MS_MGC_MSK;
    }
    let target_path = path_arg(t, a.u64(1))?;
    let c = creds(t);
    let target = resolve(t, &c, libc::AT_FDCWD, &target_path, &WalkOpts::follow())?;
    need_admin(t)?;
    let vfs = t.kernel.vfs.clone();
    let per_mount = flags & fs::vfs::MOUNT_FLAG_MASK;
    let read_only = flags & MS_RDONLY != 0;

    if flags & MS_REMOUNT != 0 {
        if !target.is_mount_root() {
            return Err(Errno::EINVAL);
        }
        // Without MS_BIND this would also change the file system's own
        // options (none of ours have any that matter after mounting).
        target.mount.set_flags(read_only, per_mount);
        return Ok(0);
    }
    if flags & MS_BIND != 0 {
        let src_path = path_arg(t, a.u64(0))?;
        let src = resolve(t, &c, libc::AT_FDCWD, &src_path, &WalkOpts::follow())?;
        // A directory goes on a directory, a file on a file.
        if src.is_dir() != target.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        // The initial bind ignores MS_RDONLY and the other flags (Linux: they
        // take a remount).
        let opts = MountOpts {
            source: src_path,
            fstype: Some(target.mount.fstype()),
            ..Default::default()
        };
        if flags & MS_REC != 0 {
            vfs.bind_mount_rec(&target, &src, opts);
        } else {
            vfs.bind_mount(&target, &src, opts);
        }
        return Ok(0);
    }
    if flags & MS_PROPAGATION != 0 {
        if !target.is_mount_root() {
            return Err(Errno::EINVAL);
        }
        // One mount namespace: nothing to propagate to or from.
        return Ok(0);
    }
    if flags & MS_MOVE != 0 {
        tracing::warn!("mount: MS_MOVE is not supported");
        return Err(Errno::EINVAL);
    }
    // A new mount needs a type (Linux's do_new_mount: EINVAL without one).
    let fstype = string_arg(t, a.u64(2))?.ok_or(Errno::EINVAL)?;
    let source = string_arg(t, a.u64(0))?.unwrap_or_else(|| b"none".to_vec());
    let data = string_arg(t, a.u64(4))?.unwrap_or_default();
    let _ = MS_SILENT;
    if !target.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let (root, name): (std::sync::Arc<dyn Inode>, &'static str) = match &fstype[..] {
        b"tmpfs" => {
            let o = parse_tmpfs(&data)?;
            let r = fs::tmpfs::TmpFs::new_root(o.mode, o.size);
            if o.uid.is_some() || o.gid.is_some() {
                r.setattr(&fs::SetAttr {
                    uid: o.uid,
                    gid: o.gid,
                    ..Default::default()
                })?;
            }
            (r, "tmpfs")
        }
        b"proc" => (sentry::procfs::new_procfs(&t.kernel), "proc"),
        b"sysfs" => (sentry::procfs::sysfs_root(), "sysfs"),
        _ => return Err(Errno::ENODEV),
    };
    vfs.mount_with(
        &target,
        root,
        MountOpts {
            read_only,
            flags: per_mount,
            source,
            fstype: Some(name),
        },
    );
    Ok(0)
}

fn sys_umount2(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.i32(1);
    if flags & !(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW) != 0
        || (flags & MNT_EXPIRE != 0 && flags & (MNT_FORCE | MNT_DETACH) != 0)
    {
        return Err(Errno::EINVAL);
    }
    let p = path_arg(t, a.u64(0))?;
    let opts = if flags & UMOUNT_NOFOLLOW != 0 {
        WalkOpts::nofollow()
    } else {
        WalkOpts::follow()
    };
    let loc = resolve(t, &creds(t), libc::AT_FDCWD, &p, &opts)?;
    need_admin(t)?;
    if flags & MNT_EXPIRE != 0 {
        // Expiry marks need two calls with nothing in between; we never expire.
        return Err(Errno::EAGAIN);
    }
    // The task's own root cannot go (Linux: EINVAL for the namespace root,
    // EBUSY while in use).
    if loc.same(&t.fs.root()) {
        return Err(if loc.mount.parent_id().is_none() {
            Errno::EINVAL
        } else {
            Errno::EBUSY
        });
    }
    t.kernel.vfs.unmount(&loc, flags & MNT_DETACH != 0)?;
    Ok(0)
}

/// Whether `loc` is `ancestor` or below it in the mount tree.
fn is_below(loc: &Location, ancestor: &Location) -> bool {
    let mut cur = loc.clone();
    loop {
        if cur.same(ancestor) {
            return true;
        }
        if cur.is_mount_root() {
            match cur.mount.mount_point() {
                Some(p) => cur = p,
                None => return false,
            }
            continue;
        }
        match cur.dentry.parent_dentry() {
            Some(p) => cur.dentry = p,
            None => return false,
        }
    }
}

fn sys_pivot_root(t: &mut Task, a: &Args) -> SysResult {
    let new_path = path_arg(t, a.u64(0))?;
    let old_path = path_arg(t, a.u64(1))?;
    let c = creds(t);
    let new_root = resolve(t, &c, libc::AT_FDCWD, &new_path, &WalkOpts::follow())?;
    let put_old = resolve(t, &c, libc::AT_FDCWD, &old_path, &WalkOpts::follow())?;
    need_admin(t)?;
    if !new_root.is_dir() || !put_old.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let root = t.fs.root();
    // new_root must be a mount point, other than the current root, and put_old
    // must be at or below it.
    if new_root.same(&root) || put_old.same(&root) {
        return Err(Errno::EBUSY);
    }
    if !new_root.is_mount_root() || !root.is_mount_root() {
        return Err(Errno::EINVAL);
    }
    if !is_below(&put_old, &new_root) || !is_below(&new_root, &root) {
        return Err(Errno::EINVAL);
    }
    // The old root, with everything mounted in it, stays reachable at put_old
    // (until it is unmounted there).
    t.kernel.vfs.bind_mount_rec(
        &put_old,
        &root,
        MountOpts {
            read_only: root.mount.read_only(),
            flags: root.mount.flags(),
            source: root.mount.source().to_vec(),
            fstype: Some(root.mount.fstype()),
        },
    );
    if t.fs.cwd().same(&root) {
        t.fs.set_cwd(new_root.clone());
    }
    t.fs.set_root(new_root);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmpfs_options() {
        let o = parse_tmpfs(b"size=1m,mode=700,uid=5").unwrap();
        assert_eq!(
            (o.size, o.mode, o.uid, o.gid),
            (1 << 20, 0o700, Some(5), None)
        );
        assert_eq!(parse_tmpfs(b"size=10").unwrap().size, 4096);
        assert_eq!(parse_tmpfs(b"bogus=1").err(), Some(Errno::EINVAL));
        assert_eq!(parse_tmpfs(b"size=x").err(), Some(Errno::EINVAL));
        assert_eq!(parse_tmpfs(b"mode=9").err(), Some(Errno::EINVAL));
        assert_eq!(parse_tmpfs(b"").unwrap().mode, 0o1777);
        assert_eq!(parse_size("99999999999999999999g"), None);
    }
}
