//! Confinement of `runsc gofer`, the only process of a sandbox that opens host
//! files. Done once, in this order, before the first request is served:
//!
//! 1. [`close_inherited_fds`]: every fd but stdin/stdout/stderr (which the
//!    spawner set: /dev/null or its stderr) and the gofer's socket is closed, so
//!    nothing the spawner (or an engine above it) leaked stays reachable.
//! 2. [`enter_root`]: new mount, ipc, uts, net (empty: the gofer never needs the
//!    network) and cgroup namespaces (and user namespace, when rootless); all mounts made private (nothing propagates
//!    back to the host); then "/" becomes the served tree (see below).
//! 3. [`drop_capabilities`]: bounding, permitted, effective, inheritable and
//!    ambient sets reduced to [`KEEP_CAPS`]; SECBIT_NOROOT locked; no_new_privs.
//! 4. The seccomp allow-list ([`crate::seccomp_gofer`]), installed by the caller
//!    right before serving.
//!
//! The new root:
//! - A directory root is bind-mounted onto itself (recursively: mounts beneath it
//!   are served as before) and pivoted into; the old root is detached. A root of
//!   "/" (`runsc do`) is already "/" and is not pivoted.
//! - A single file (a bind mount of one file) is bind-mounted onto an empty file
//!   of a fresh tmpfs, which is pivoted into: "/" then holds that file only.
//! - The kernel-interface file systems beneath the new root (proc, sysfs,
//!   devtmpfs, cgroup, ...: the host's `/proc`, `/sys` and `/dev` for `runsc do`)
//!   are detached (covered, when rootless): the sentry has its own, and the gofer must not reach the host's
//!   process table or devices. So the gofer has no /proc at all; it needs none (it
//!   never reopens an fd by path: every open is `openat` on an fd it holds).
//! - A read-only gofer also makes its whole tree read-only (best effort: a mount
//!   someone holds open for writing cannot be).
//!
//! No PID namespace: a process can only be put into one by whoever clones it
//! (`unshare(CLONE_NEWPID)` affects only later children, and the gofer has none),
//! and `std::process::Command` cannot pass clone flags; a fork-and-wait shim would
//! leave the pid that runsc records and signals outside. Without /proc and with a
//! seccomp filter that allows no kill/ptrace/process_vm_* (only tgkill of itself),
//! the gofer cannot reach another process anyway.
//!
//! No user namespace when runsc is root (the default): the gofer creates files
//! as host root on behalf of the sandbox and must chown them to the sandbox's ids.
//!
//! A rootless sandbox (runsc run by a non-root user, or `--rootless`: see
//! [`crate::confine::Identity`]): the gofer runs as the unprivileged host user
//! and step 2 starts with a new user namespace too, mapping the sandbox's uid
//! and gid (`runsc gofer --userns=UID:GID`; by default its own) to that user's,
//! with setgroups denied; it has every capability in it, so the mounts and the
//! pivot work as above, except that the kernel file systems beneath the root,
//! locked by the less privileged namespace, cannot be detached: they are covered
//! by an empty read-only tmpfs. Its kept capabilities only reach files whose
//! owner is mapped, i.e. the host user's: it can only act as that user.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The capabilities the gofer keeps, with why:
/// - CAP_CHOWN: `create`/`mkdir`/`mknod`/`symlink` and `setstat` chown to the
///   sandbox's uid/gid.
/// - CAP_DAC_OVERRIDE: it reads, writes and searches files and directories on
///   behalf of sandbox users whatever their modes (the sentry checks permissions
///   against the sandbox's credentials). It also covers directory read/search, so
///   CAP_DAC_READ_SEARCH (which would also allow `open_by_handle_at`) is not kept.
/// - CAP_FOWNER: chmod, utimes and user.* xattrs of files the gofer (uid 0) does
///   not own; hard links to them (fs.protected_hardlinks).
/// - CAP_FSETID: keeps set-user/group-ID bits through its chmod/chown.
///
/// Not CAP_MKNOD: the sentry creates only regular files, FIFOs and sockets through
/// the gofer (device nodes are refused), and those need no capability.
pub const KEEP_CAPS: &[u32] = &[CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID];

const CAP_CHOWN: u32 = 0;
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_FOWNER: u32 = 3;
const CAP_FSETID: u32 = 4;
const CAP_SETPCAP: u32 = 8;

fn cvt(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn ctx(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Closes every fd except 0, 1, 2 and `keep`.
pub fn close_inherited_fds(keep: RawFd) -> io::Result<()> {
    let close_range = |lo: u32, hi: u32| -> io::Result<()> {
        if lo > hi {
            return Ok(());
        }
        // SAFETY: close_range only closes descriptors; none of those in range is
        // owned by a Rust object of this process at this point (only `keep` is).
        cvt(unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0u32) }).map(drop)
    };
    let keep = u32::try_from(keep).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    if keep < 3 {
        return close_range(3, u32::MAX);
    }
    close_range(3, keep - 1)?;
    close_range(keep + 1, u32::MAX)
}

/// What the gofer serves once confined.
pub enum Served {
    /// A directory: the O_PATH fd of "/" (the served tree).
    Dir(OwnedFd),
    /// One regular file: the O_PATH fd of "/" (holding only it) and its name.
    File(OwnedFd, Vec<u8>),
}

fn mount(
    src: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    let p = |s: Option<&CStr>| s.map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: every pointer is null or a valid NUL-terminated string.
    let r = unsafe {
        libc::mount(
            p(src),
            target.as_ptr(),
            p(fstype),
            flags,
            p(data).cast::<libc::c_void>(),
        )
    };
    cvt(r.into()).map(drop)
}

fn chdir(p: &CStr) -> io::Result<()> {
    // SAFETY: valid NUL-terminated path.
    cvt(unsafe { libc::chdir(p.as_ptr()) }.into()).map(drop)
}

fn umount_detach(p: &CStr) -> io::Result<()> {
    // SAFETY: valid NUL-terminated path.
    cvt(unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) }.into()).map(drop)
}

fn open_path(p: &CStr, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: valid NUL-terminated path; no mode without O_CREAT/O_TMPFILE.
    let fd = unsafe { libc::open(p.as_ptr(), flags | libc::O_CLOEXEC) };
    cvt(fd.into())?;
    // SAFETY: a fresh fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes the current directory (a mount point) "/" and detaches the old root.
fn pivot_here() -> io::Result<()> {
    // pivot_root(".", "."): the old root is stacked on "." and detached right away
    // (the way runc does it: no directory for the old root is needed).
    // SAFETY: two valid NUL-terminated paths.
    cvt(unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) })
        .map_err(ctx("pivot_root"))?;
    umount_detach(c".").map_err(ctx("detaching the old root"))?;
    chdir(c"/")
}

/// File system types that are interfaces to the kernel (or the host's devices),
/// never served: the sentry has its own /proc, /sys and /dev.
const KERNEL_FS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "mqueue",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "bpf",
    "configfs",
    "fusectl",
    "pstore",
    "efivarfs",
    "binfmt_misc",
    "hugetlbfs",
    "autofs",
    "selinuxfs",
    "nsfs",
];

/// Undoes the octal escapes (`\040` etc.) of a /proc/self/mountinfo field.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                out.push((oct[0] - b'0') * 64 + (oct[1] - b'0') * 8 + (oct[2] - b'0'));
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The mount points of kernel file systems strictly beneath `root` (a canonical
/// path), as paths relative to it, outermost first, from `mountinfo`.
pub fn kernel_mounts_beneath(mountinfo: &str, root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for line in mountinfo.lines() {
        // id parent major:minor root mountpoint options [optional...] - fstype source super
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(mp), Some(fstype)) = (fields.get(4), fields.get(dash + 1)) else {
            continue;
        };
        if !KERNEL_FS.contains(fstype) {
            continue;
        }
        let mp = PathBuf::from(std::ffi::OsStr::from_bytes(&unescape(mp)));
        if let Ok(rel) = mp.strip_prefix(root) {
            if !rel.as_os_str().is_empty() {
                out.push(rel.to_path_buf());
            }
        }
    }
    out.sort_by_key(|p| p.components().count());
    let mut outer: Vec<PathBuf> = Vec::new();
    for p in out {
        if !outer.iter().any(|o| p.starts_with(o)) {
            outer.push(p);
        }
    }
    outer
}

/// Enters new namespaces and makes "/" the served tree (`root`: a directory or a
/// regular file, as given on the command line). See the module doc.
///
/// `userns`: the sandbox's uid and gid, to be mapped to ours in a new user
/// namespace (a rootless sandbox; also implied, with our own ids, when we are
/// not root).
pub fn enter_root(root: &Path, read_only: bool, userns: Option<(u32, u32)>) -> io::Result<Served> {
    let root = std::fs::canonicalize(root).map_err(ctx(root.display()))?;
    let is_file = std::fs::metadata(&root)
        .map_err(ctx(root.display()))?
        .is_file();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut flags = libc::CLONE_NEWNS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWCGROUP;
    // SAFETY: geteuid/getegid cannot fail.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let userns = match userns {
        Some(ids) => Some(ids),
        None if euid != 0 => Some((euid, egid)),
        None => None,
    };
    if userns.is_some() {
        flags |= libc::CLONE_NEWUSER;
    }
    // SAFETY: plain syscall; the gofer is single-threaded here (as
    // CLONE_NEWUSER requires).
    cvt(unsafe { libc::unshare(flags) }.into()).map_err(ctx("unshare"))?;
    if let Some((uid, gid)) = userns {
        write_own_maps(uid, gid, euid, egid).map_err(ctx("the gofer's user namespace"))?;
    }
    mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)
        .map_err(ctx("making mounts private"))?;
    if is_file {
        return enter_file_root(&root, read_only);
    }
    let croot = cpath(&root)?;
    if root != Path::new("/") {
        mount(
            Some(&croot),
            &croot,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )
        .map_err(ctx(format!("bind-mounting {}", root.display())))?;
        chdir(&croot)?;
        pivot_here()?;
    } else {
        chdir(c"/")?;
    }
    for rel in kernel_mounts_beneath(&mountinfo, &root) {
        let p = cpath(&Path::new("/").join(&rel))?;
        if let Err(e) = hide_mount(&p) {
            tracing::debug!("gofer: hiding /{}: {e}", rel.display());
        }
    }
    if read_only {
        make_read_only(c"/");
    }
    let fd = open_path(c"/", libc::O_PATH | libc::O_DIRECTORY)?;
    Ok(Served::Dir(fd))
}

/// The single-file case: "/" becomes a tmpfs holding only the file, bind-mounted
/// onto an empty file of the same name.
fn enter_file_root(file: &Path, read_only: bool) -> io::Result<Served> {
    let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    let name = name.as_bytes().to_vec();
    // The tmpfs covers the file's own directory (it always exists, and this mount
    // namespace is ours alone); a file directly in "/" uses /tmp instead, since a
    // mount over "/" itself cannot be pivoted into.
    let stage = if dir == Path::new("/") {
        Path::new("/tmp")
    } else {
        dir
    };
    // A detached copy of the file's mount, taken before the tmpfs hides the file
    // (open_tree: no /proc path needed, so a file in /proc itself works too).
    let cfile = cpath(file)?;
    let f = open_path(&cfile, libc::O_PATH | libc::O_NOFOLLOW)?;
    // SAFETY: a valid fd and an empty NUL-terminated path (AT_EMPTY_PATH).
    let tree = cvt(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            f.as_raw_fd(),
            c"".as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_EMPTY_PATH as libc::c_uint,
        )
    })
    .map_err(ctx(format!("open_tree {}", file.display())))?;
    // SAFETY: open_tree returned a fresh fd nobody else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as RawFd) };
    drop(f);
    let cstage = cpath(stage)?;
    mount(
        Some(c"tmpfs"),
        &cstage,
        Some(c"tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        Some(c"size=4k,nr_inodes=4,mode=0755"),
    )
    .map_err(ctx(format!("mounting a tmpfs on {}", stage.display())))?;
    let target = cpath(&stage.join(std::ffi::OsStr::from_bytes(&name)))?;
    drop(open_path(
        &target,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
    )?);
    // SAFETY: a valid mount fd, an empty path for it and a valid target path.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
    .map_err(ctx(format!("bind-mounting {}", file.display())))?;
    drop(tree);
    if read_only {
        make_read_only(&target);
    }
    chdir(&cstage)?;
    pivot_here()?;
    // Nothing can be created next to the file.
    make_read_only_one(c"/");
    let fd = open_path(c"/", libc::O_PATH | libc::O_DIRECTORY)?;
    Ok(Served::File(fd, name))
}

/// Maps `uid`/`gid` inside the user namespace we just unshared to our host
/// ids `host_uid`/`host_gid` (all an unprivileged process may map; setgroups
/// denied first, as it must be then).
fn write_own_maps(uid: u32, gid: u32, host_uid: u32, host_gid: u32) -> io::Result<()> {
    std::fs::write("/proc/self/setgroups", "deny").map_err(ctx("setgroups"))?;
    std::fs::write("/proc/self/uid_map", format!("{uid} {host_uid} 1\n"))
        .map_err(ctx("uid_map"))?;
    std::fs::write("/proc/self/gid_map", format!("{gid} {host_gid} 1\n")).map_err(ctx("gid_map"))
}

/// Hides the kernel file system mounted at `p` (in our private mount
/// namespace): detached, or, when it cannot be (a mount locked by a less
/// privileged user namespace: the host's /proc for a rootless `runsc do`),
/// covered by an empty read-only tmpfs.
fn hide_mount(p: &CStr) -> io::Result<()> {
    // UMOUNT_NOFOLLOW: a symlink planted at a mount point's name is not followed
    // (the rest of the path only matters to this private namespace).
    // SAFETY: valid NUL-terminated path.
    let r = unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) };
    if cvt(r.into()).is_ok() {
        return Ok(());
    }
    // O_NOFOLLOW | O_DIRECTORY: never mounted through a symlink; mounted on
    // "." once in it (no /proc needed: it may be one of those covered).
    let dir = open_path(p, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)?;
    // SAFETY: fchdir on a descriptor we own.
    cvt(unsafe { libc::fchdir(dir.as_raw_fd()) }.into())?;
    let r = mount(
        Some(c"tmpfs"),
        c".",
        Some(c"tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RDONLY,
        Some(c"size=4k,nr_inodes=2,mode=0555"),
    );
    chdir(c"/")?;
    r
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// Makes the mount at `p` and every mount beneath it read-only (best effort).
fn make_read_only(p: &CStr) {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: valid path and a valid mount_attr of the stated size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            p.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if let Err(e) = cvt(r) {
        tracing::debug!("gofer: making the tree read-only: {e}");
        make_read_only_one(p);
    }
}

/// Makes the one mount at `p` read-only (best effort).
fn make_read_only_one(p: &CStr) {
    if let Err(e) = mount(
        None,
        p,
        None,
        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
        None,
    ) {
        tracing::debug!("gofer: remounting read-only: {e}");
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Reduces every capability set to [`KEEP_CAPS`], locks SECBIT_NOROOT (an execve
/// would not regain root's capabilities) and sets no_new_privs.
pub fn drop_capabilities() -> io::Result<()> {
    let hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut cur = [CapData::default(); 2];
    // SAFETY: a valid v3 header and an out-array of two data structs, as capget expects.
    cvt(unsafe { libc::syscall(libc::SYS_capget, &hdr as *const CapHeader, cur.as_mut_ptr()) })
        .map_err(ctx("capget"))?;
    let has = |c: u32| cur[(c / 32) as usize].effective & (1 << (c % 32)) != 0;
    // Without CAP_SETPCAP (runsc run by a non-root user: no capabilities at all)
    // the bounding set cannot be changed; it does not matter then, as execve is
    // refused by no_new_privs and the seccomp filter.
    if has(CAP_SETPCAP) {
        for cap in 0u32..64 {
            // SAFETY: prctl with integer arguments; EINVAL past the last capability.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong) };
            if r < 0 {
                break;
            }
            if r == 1 && !KEEP_CAPS.contains(&cap) {
                // SAFETY: prctl with integer arguments.
                cvt(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong) }.into())
                    .map_err(ctx(format!(
                        "dropping capability {cap} from the bounding set"
                    )))?;
            }
        }
    }
    // SAFETY: prctl with integer arguments.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if r < 0 {
        tracing::debug!(
            "gofer: clearing ambient capabilities: {}",
            io::Error::last_os_error()
        );
    }
    // Needs CAP_SETPCAP, so before capset drops it.
    let bits = libc::SECBIT_NOROOT | libc::SECBIT_NOROOT_LOCKED;
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_SECUREBITS, bits as libc::c_ulong) } < 0 {
        tracing::debug!("gofer: securebits: {}", io::Error::last_os_error());
    }
    // The kept capabilities that are permitted now (none for a non-root user).
    let mut data = [CapData::default(); 2];
    for &c in KEEP_CAPS {
        let (i, bit) = ((c / 32) as usize, 1u32 << (c % 32));
        data[i].permitted |= bit & cur[i].permitted;
        data[i].effective = data[i].permitted;
    }
    // SAFETY: a valid v3 header and an array of two data structs, as capset expects.
    cvt(unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) })
        .map_err(ctx("capset"))?;
    // SAFETY: prctl with integer arguments.
    cvt(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }.into())
        .map_err(ctx("no_new_privs"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_kernel_mounts() {
        let mi = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:5 / /proc rw,nosuid shared:2 - proc proc rw
24 23 0:6 / /proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw
25 22 0:7 / /sys rw - sysfs sysfs rw
26 22 0:8 / /dev rw - devtmpfs udev rw
27 26 0:9 / /dev/pts rw - devpts devpts rw
28 22 0:10 / /tmp rw - tmpfs tmpfs rw
29 22 0:11 / /srv/root/proc rw - proc proc rw
30 22 0:12 / /srv/root\\040x/sys rw - sysfs sysfs rw
";
        let got = kernel_mounts_beneath(mi, Path::new("/"));
        assert_eq!(
            got,
            ["proc", "sys", "dev", "srv/root/proc", "srv/root x/sys"]
                .map(PathBuf::from)
                .to_vec()
        );
        let got = kernel_mounts_beneath(mi, Path::new("/srv/root"));
        assert_eq!(got, vec![PathBuf::from("proc")]);
        assert!(kernel_mounts_beneath(mi, Path::new("/srv/root/proc")).is_empty());
        assert!(kernel_mounts_beneath(mi, Path::new("/srv/ro")).is_empty());
    }

    #[test]
    fn unescapes() {
        assert_eq!(unescape("a\\040b\\134c\\"), b"a b\\c\\");
    }
}
