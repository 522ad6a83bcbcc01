//! The gofer's seccomp allow-list. Installed by `runsc gofer` after its
//! confinement ([`crate::gofer_confine`]) and right before it serves the first
//! request; any other system call kills the gofer (SECCOMP_RET_KILL_PROCESS), as
//! does a call from another architecture (x32 / i386 numbering).
//!
//! The list is what `gofer::server` (through `gofer/src/sys.rs`), Rust's std,
//! glibc and the logger call while serving, found by tracing the test suites.
//! Arguments are checked where that narrows a call to what the server does:
//! - every path open carries O_NOFOLLOW | O_CLOEXEC; a create is always O_EXCL;
//! - the socket calls name the gofer's socket, with the flags `sys.rs` passes;
//! - every `*at` call that could follow a symlink or take AT_EMPTY_PATH carries
//!   the flags the server uses;
//! - no memory is mapped executable.
//!
//! A read-only gofer (`--read-only`) is allowed no call that modifies the tree
//! (its server refuses writes with EROFS before any host call): no mkdirat,
//! mknodat, symlinkat, linkat, unlinkat, renameat2, chmod/chown/utimes,
//! ftruncate, setxattr/removexattr, and no open for writing, creating or truncating.
//!
//! Not on the list, whatever the mode: socket/connect/bind (no network, and no new
//! sockets at all), execve, fork/clone, ptrace, kill (only tgkill of itself, for
//! abort), mount/umount/pivot_root/chroot/unshare/setns, open_by_handle_at,
//! process_vm_*, ioctl, and anything else.

use std::collections::BTreeMap;
use std::os::fd::RawFd;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

type Rules = BTreeMap<i64, Vec<SeccompRule>>;

/// `arg & mask == value` on the low 32 bits of argument `arg`.
fn masked(arg: u8, mask: u64, value: u64) -> SeccompCondition {
    SeccompCondition::new(arg, Len::Dword, Op::MaskedEq(mask), value)
        .expect("valid seccomp condition")
}

/// `arg == value` (the low 32 bits: flags and fds are ints).
fn eq(arg: u8, value: u64) -> SeccompCondition {
    SeccompCondition::new(arg, Len::Dword, Op::Eq, value).expect("valid seccomp condition")
}

fn rule(conds: Vec<SeccompCondition>) -> SeccompRule {
    SeccompRule::new(conds).expect("valid seccomp rule")
}

fn allow(r: &mut Rules, nr: libc::c_long, _why: &str) {
    r.insert(nr, Vec::new());
}

fn allow_if(r: &mut Rules, nr: libc::c_long, rules: Vec<SeccompRule>, _why: &str) {
    r.insert(nr, rules);
}

/// fchmodat2 (Linux 6.6); libc may not name it.
const SYS_FCHMODAT2: libc::c_long = 452;

/// The rules of a gofer serving on `sock` as process `pid`.
pub fn rules(sock: RawFd, read_only: bool, pid: libc::pid_t) -> Rules {
    let sock = sock as u64;
    let mut r = Rules::new();
    let a = &mut r;
    let nofollow = (libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64;
    let no_exec = |arg| rule(vec![masked(arg, libc::PROT_EXEC as u64, 0)]);

    // --- the request loop (gofer/src/sys.rs send/recv) ---
    allow_if(
        a,
        libc::SYS_recvmsg,
        vec![rule(vec![
            eq(0, sock),
            eq(2, libc::MSG_CMSG_CLOEXEC as u64),
        ])],
        "requests (and any fds the peer sends, closed) from the gofer's socket",
    );
    allow_if(
        a,
        libc::SYS_sendmsg,
        vec![rule(vec![eq(0, sock), eq(2, libc::MSG_NOSIGNAL as u64)])],
        "replies, with opened fds as SCM_RIGHTS, on the gofer's socket",
    );
    allow(
        a,
        libc::SYS_close,
        "closing node fds (Close, replaced nodes, sent fds)",
    );
    allow(
        a,
        libc::SYS_write,
        "the debug log and error messages on stderr",
    );

    // --- reading the tree ---
    let open_rules = if read_only {
        // O_PATH or O_RDONLY only: no write access, no O_CREAT, no O_TRUNC.
        let m = (libc::O_ACCMODE | libc::O_CREAT | libc::O_TRUNC) as u64 | nofollow;
        vec![rule(vec![masked(2, m, nofollow)])]
    } else {
        let create = (libc::O_CREAT | libc::O_EXCL) as u64;
        vec![
            // Walks (O_PATH), opens for I/O, directory reads: never creating.
            rule(vec![masked(2, nofollow | libc::O_CREAT as u64, nofollow)]),
            // Create: only ever an exclusive create.
            rule(vec![masked(2, nofollow | create, nofollow | create)]),
        ]
    };
    allow_if(
        a,
        libc::SYS_openat,
        open_rules,
        "walks one component at a time (O_PATH|O_NOFOLLOW) and opens for I/O",
    );
    allow_if(
        a,
        libc::SYS_newfstatat,
        vec![rule(vec![masked(
            3,
            libc::AT_SYMLINK_NOFOLLOW as u64,
            libc::AT_SYMLINK_NOFOLLOW as u64,
        )])],
        "stat of nodes (fstatat(fd, \"\", AT_EMPTY_PATH)) and freshness checks, never following",
    );
    allow(a, libc::SYS_fstatfs, "StatFs (glibc's fstatvfs is fstatfs)");
    allow(a, libc::SYS_getdents64, "Getdents");
    allow(a, libc::SYS_readlinkat, "Readlink (readlinkat(fd, \"\"))");
    allow(a, libc::SYS_fgetxattr, "GetXattr");
    allow(a, libc::SYS_flistxattr, "ListXattr");
    allow_if(
        a,
        libc::SYS_fcntl,
        vec![
            rule(vec![eq(1, libc::F_GETFL as u64)]),
            rule(vec![eq(1, libc::F_SETFL as u64)]),
        ],
        "clearing O_NONBLOCK of an opened fd (every open is non-blocking first)",
    );

    // --- writing the tree (read-write gofers only) ---
    if !read_only {
        let empty_nofollow = (libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW) as u64;
        allow(a, libc::SYS_mkdirat, "Mkdir");
        let ifmt = libc::S_IFMT as u64;
        allow_if(
            a,
            libc::SYS_mknodat,
            [libc::S_IFREG, libc::S_IFIFO, libc::S_IFSOCK]
                .iter()
                .map(|&t| rule(vec![masked(2, ifmt, t as u64), eq(3, 0)]))
                .collect(),
            "Mknod of regular files, FIFOs and sockets (never a device: rdev 0)",
        );
        allow(a, libc::SYS_symlinkat, "Symlink");
        allow_if(
            a,
            libc::SYS_linkat,
            vec![rule(vec![eq(4, 0)])],
            "Link (flags 0: no AT_EMPTY_PATH, no AT_SYMLINK_FOLLOW)",
        );
        allow(a, libc::SYS_unlinkat, "Unlink");
        allow(a, libc::SYS_renameat2, "Rename (RENAME_NOREPLACE/EXCHANGE)");
        allow(
            a,
            libc::SYS_fchmod,
            "chmod through an open fd (Create; pre-6.6 fallback)",
        );
        allow_if(
            a,
            SYS_FCHMODAT2,
            vec![rule(vec![eq(3, libc::AT_EMPTY_PATH as u64)])],
            "SetStat mode on a node's O_PATH fd (AT_EMPTY_PATH)",
        );
        allow_if(
            a,
            libc::SYS_fchownat,
            vec![rule(vec![eq(4, empty_nofollow)])],
            "ownership of created nodes and SetStat uid/gid (AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW)",
        );
        allow_if(
            a,
            libc::SYS_utimensat,
            vec![rule(vec![eq(3, empty_nofollow)])],
            "SetStat times (AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW)",
        );
        allow(a, libc::SYS_ftruncate, "SetStat size");
        allow(a, libc::SYS_fsetxattr, "SetXattr");
        allow(a, libc::SYS_fremovexattr, "RemoveXattr");
    }

    // --- the runtime: allocator, locks, randomness, exit, abort ---
    allow(a, libc::SYS_brk, "malloc");
    allow_if(
        a,
        libc::SYS_mmap,
        vec![no_exec(2)],
        "malloc (never PROT_EXEC)",
    );
    allow_if(
        a,
        libc::SYS_mprotect,
        vec![no_exec(2)],
        "malloc (never PROT_EXEC)",
    );
    allow(a, libc::SYS_munmap, "free");
    allow(a, libc::SYS_mremap, "realloc of large buffers");
    allow(a, libc::SYS_madvise, "free (MADV_DONTNEED of freed pages)");
    allow(
        a,
        libc::SYS_futex,
        "the logger's mutex and std's once-cells",
    );
    allow(a, libc::SYS_getrandom, "std's HashMap seeds");
    allow(
        a,
        libc::SYS_clock_gettime,
        "log timestamps (when the vDSO falls back)",
    );
    allow(a, libc::SYS_sigaltstack, "std's stack-overflow handler");
    allow(a, libc::SYS_rt_sigreturn, "returning from a signal handler");
    allow(a, libc::SYS_rt_sigprocmask, "abort()");
    allow(a, libc::SYS_rt_sigaction, "abort() resets SIGABRT");
    allow(a, libc::SYS_getpid, "abort()");
    allow(a, libc::SYS_gettid, "abort()");
    allow_if(
        a,
        libc::SYS_tgkill,
        vec![rule(vec![eq(0, pid as u64), eq(2, libc::SIGABRT as u64)])],
        "abort() raising SIGABRT on itself (a panic that aborts)",
    );
    allow(a, libc::SYS_exit, "thread exit");
    allow(
        a,
        libc::SYS_exit_group,
        "process exit when the sentry hangs up",
    );
    r
}

/// The compiled filter of [`rules`].
pub fn program(sock: RawFd, read_only: bool, pid: libc::pid_t) -> Result<BpfProgram, String> {
    let filter = SeccompFilter::new(
        rules(sock, read_only, pid),
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(|e| format!("seccomp filter: {e}"))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| format!("seccomp filter: {e}"))
}

/// Installs the gofer's filter on the calling process (all threads; sets
/// no_new_privs).
pub fn install(sock: RawFd, read_only: bool) -> Result<(), String> {
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() };
    let prog = program(sock, read_only, pid)?;
    seccompiler::apply_filter_all_threads(&prog).map_err(|e| format!("seccomp: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Forks; the child installs `prog` and runs `f`; returns the child's wait status.
    fn in_filtered_child(prog: &BpfProgram, f: fn() -> i32) -> libc::c_int {
        // SAFETY: the child only makes raw syscalls (no allocation, no locks) before _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = match seccompiler::apply_filter(prog) {
                Ok(()) => f(),
                Err(_) => 99,
            };
            // SAFETY: ends the forked child without running the parent's atexit state.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        status
    }

    fn killed_by_sigsys(status: libc::c_int) -> bool {
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS
    }

    #[test]
    fn compiles_both_modes() {
        for ro in [false, true] {
            let p = program(5, ro, 1).unwrap();
            assert!(!p.is_empty());
        }
        assert!(rules(5, true, 1).len() < rules(5, false, 1).len());
    }

    #[test]
    fn forbidden_calls_kill() {
        for ro in [false, true] {
            let prog = program(1000, ro, 1).unwrap();
            // An allowed call goes through.
            let st = in_filtered_child(&prog, || {
                // SAFETY: getpid has no arguments.
                unsafe { libc::getpid() };
                7
            });
            assert!(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 7, "{st:#x}");
            let st = in_filtered_child(&prog, || {
                // SAFETY: plain syscall.
                unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
                0
            });
            assert!(killed_by_sigsys(st), "socket: {st:#x}");
            let st = in_filtered_child(&prog, || {
                // SAFETY: plain syscall with a valid path and null argv/envp.
                unsafe { libc::execve(c"/bin/true".as_ptr(), std::ptr::null(), std::ptr::null()) };
                0
            });
            assert!(killed_by_sigsys(st), "execve: {st:#x}");
            // A call on another fd than the gofer's socket.
            let st = in_filtered_child(&prog, || {
                // SAFETY: an empty msghdr on fd 0; the filter kills before the kernel reads it.
                let msg: libc::msghdr = unsafe { std::mem::zeroed() };
                // SAFETY: as above.
                unsafe { libc::sendmsg(0, &msg, libc::MSG_NOSIGNAL) };
                0
            });
            assert!(killed_by_sigsys(st), "sendmsg: {st:#x}");
            // An open that could follow a symlink.
            let st = in_filtered_child(&prog, || {
                // SAFETY: valid path.
                unsafe { libc::openat(libc::AT_FDCWD, c"/".as_ptr(), libc::O_PATH) };
                0
            });
            assert!(killed_by_sigsys(st), "openat: {st:#x}");
        }
        // A read-only gofer may not create.
        let prog = program(1000, true, 1).unwrap();
        let st = in_filtered_child(&prog, || {
            // SAFETY: valid path.
            unsafe { libc::mkdirat(libc::AT_FDCWD, c"/nonexistent-x".as_ptr(), 0o700) };
            0
        });
        assert!(killed_by_sigsys(st), "mkdirat: {st:#x}");
    }
}
