//! The sentry's seccomp allow-list (DESIGN.md section 2, the second wall).
//!
//! `runsc boot` implements every syscall of the workload in user space; its own
//! host syscalls are only those listed here. It installs the filter right before
//! the first workload instruction runs (after mounts, the gofer connection, the
//! platform, the control socket and every other file it will ever need are
//! open) on all its threads at once (SECCOMP_FILTER_FLAG_TSYNC), and any other
//! syscall kills the whole sentry (SECCOMP_RET_KILL_PROCESS): a sentry bug that
//! the workload exploits cannot reach the rest of the host kernel.
//!
//! Notably absent: every way to name a host file (open, openat, openat2,
//! creat, execve, execveat, stat by path, mkdir, unlink, ...): host files reach
//! the sentry as descriptors from the gofer (SCM_RIGHTS). `fork`/`vfork`, and
//! `clone` other than a thread of the sentry itself: the ptrace platform forks
//! its master stub before the filter, and later stubs are cloned by the master
//! through a clone() the sentry injects into the stub (the stub's syscall, not
//! ours). `process_vm_readv`/`writev`: workload memory is the MemoryFile, mapped
//! in the sentry. `socket` of any family but AF_UNIX, `mount`, `pivot_root`,
//! `connect`, `bind`, `listen` (no host socket is reached by path), `setns`,
//! `unshare`, `bpf`, `perf_event_open`, `keyctl`, `userfaultfd`,
//! `io_uring_*`, module and reboot calls. (`--network=host` alone widens the
//! list with the host socket calls of hostinet: [`host_network_rules`].)
//!
//! Argument rules: `mmap`/`mprotect` never with PROT_EXEC (the sentry maps only
//! data: its heap, thread stacks and the MemoryFile; workload code is mapped
//! into stubs by injected mmap calls), `ioctl` only the terminal and FIONREAD
//! requests the sentry passes to host terminals, `clone` only with the flags of
//! a new thread, `socket` only AF_UNIX, `kill`/`tgkill` only the signals the
//! sentry sends (SIGKILL and SIGSTOP to its stubs; SIGABRT, abort(), to
//! itself), `prctl` only thread names, `ptrace` only the requests the platform
//! makes after setup (no PTRACE_ATTACH, no PEEK/POKE), `sendto` only without
//! an address, `fcntl` only descriptor and status flags and F_DUPFD_CLOEXEC,
//! `madvise` only MADV_DONTNEED/MADV_FREE, `fstat`-like calls only on a
//! descriptor (AT_EMPTY_PATH). (`renameat` within a pre-opened state directory
//! is supported by [`Options::state_dir_fd`] but unused: the OCI exit file is
//! opened before the sentry confines itself and written through its fd.)
//!
//! How the list was found: the whole test suite (workloads, conformance, OCI,
//! engines, CPython's tests) run under the filter, with the sentry's host
//! syscalls after the filter recorded (`perf record -e raw_syscalls:sys_enter`
//! over a cgroup holding the tests); `RUNSC_SENTRY_SECCOMP=log` turns
//! violations into audit-log lines (`dmesg`) instead of a kill.
//!
//! Before the filter, [`install`] settles what glibc would otherwise find out
//! later by opening a file (malloc's arena limit); procfs and the scheduler
//! syscalls read the host's CPU count and /proc/cpuinfo at setup, and the OCI
//! exit file is opened then (`oci::boot::open_exit_file`, before the pivot).
//!
//! Limits: a filter cannot read memory, so `newfstatat`/`statx` with
//! AT_EMPTY_PATH still resolve a non-empty path (metadata only), `sendmsg` may
//! carry an address, and `ptrace`/`kill` cannot be limited to the sentry's own
//! stubs by pid: those rely on the sentry's namespaces (empty root, own PID
//! namespace, no capabilities).
//!
//! `clone3` is answered ENOSYS (a second filter, which takes precedence over
//! the allow-list's ALLOW): its flags live in memory where a filter cannot read
//! them, and glibc then falls back to `clone`, whose flags are checked.

use std::collections::BTreeMap;
use std::os::fd::RawFd;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op,
    SeccompCondition as Cond, SeccompFilter, SeccompRule, TargetArch,
};

/// What happens on a syscall outside the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// SECCOMP_RET_KILL_PROCESS: the sentry dies of SIGSYS (the default).
    Kill,
    /// SECCOMP_RET_LOG: allowed, and logged by the host kernel's audit (for
    /// finding what a change made the sentry need; read with `dmesg`).
    Log,
    /// SECCOMP_RET_TRAP: SIGSYS, whose handler prints the syscall number and
    /// a raw backtrace (`runsc(+0xOFFSET)`, for addr2line) to stderr and aborts.
    Trap,
}

/// The environment variable that turns violations into audit-log entries
/// (`RUNSC_SENTRY_SECCOMP=log`) or a SIGSYS with a backtrace (`=trap`): a
/// debugging aid; `runsc do` does not pass it on
/// to the workload.
pub const MODE_ENV: &str = "RUNSC_SENTRY_SECCOMP";

impl Violation {
    /// Kill, unless [`MODE_ENV`] says `log`.
    pub fn from_env() -> Violation {
        match std::env::var(MODE_ENV).as_deref() {
            Ok("log") => Violation::Log,
            Ok("trap") => Violation::Trap,
            _ => Violation::Kill,
        }
    }
}

/// What the filter depends on at run time.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// The OCI state directory (opened O_PATH): the exit file is renamed into
    /// place there at the end (see `oci::boot::record_exit`).
    pub state_dir_fd: Option<RawFd>,
    /// `--network=host`: the host socket calls of hostinet (see
    /// [`host_network_rules`]).
    pub host_network: bool,
    /// `--platform=kvm`: the KVM ioctls of running vCPUs and SIGUSR2, which
    /// kicks a vCPU thread out of KVM_RUN.
    pub kvm: bool,
}

type Rules = BTreeMap<i64, Vec<SeccompRule>>;

fn cond(arg: u8, op: Op, v: u64) -> Cond {
    Cond::new(arg, Len::Qword, op, v).expect("valid seccomp condition")
}

fn cond32(arg: u8, op: Op, v: u64) -> Cond {
    Cond::new(arg, Len::Dword, op, v).expect("valid seccomp condition")
}

fn rule(conds: Vec<Cond>) -> SeccompRule {
    SeccompRule::new(conds).expect("valid seccomp rule")
}

/// One rule per value: argument `arg` (a 32-bit int) equal to any of `vals`.
fn any_of(arg: u8, vals: &[u64]) -> Vec<SeccompRule> {
    vals.iter()
        .map(|&v| rule(vec![cond32(arg, Op::Eq, v)]))
        .collect()
}

/// Argument `arg` has none of the bits of `mask`.
fn without(arg: u8, mask: u64) -> Vec<SeccompRule> {
    vec![rule(vec![cond(arg, Op::MaskedEq(mask), 0)])]
}

/// The allow-list: each syscall the sentry makes after setup, and why.
pub fn rules(opts: &Options) -> Rules {
    let mut r = Rules::new();
    let mut allow = |nr: libc::c_long, rules: Vec<SeccompRule>| {
        let prev = r.insert(nr, rules);
        debug_assert!(prev.is_none(), "syscall {nr} listed twice");
    };
    let any = Vec::new;

    // ---- Memory ----
    // The heap (glibc malloc: brk, then mmap for large blocks and arenas),
    // thread stacks and guard pages, the MemoryFile's own mapping. Never
    // executable: the sentry runs no code it did not start with.
    allow(libc::SYS_mmap, without(2, libc::PROT_EXEC as u64));
    allow(libc::SYS_mprotect, without(2, libc::PROT_EXEC as u64));
    allow(libc::SYS_munmap, any());
    allow(libc::SYS_mremap, any()); // realloc of large blocks
    allow(libc::SYS_brk, any());
    // malloc trimming, glibc's freed thread stacks: MADV_DONTNEED (MADV_FREE).
    allow(
        libc::SYS_madvise,
        any_of(2, &[libc::MADV_DONTNEED as u64, libc::MADV_FREE as u64]),
    );

    // ---- I/O on descriptors it already holds ----
    // Host files arrive from the gofer; stdio, the console, pipes and sockets
    // from runsc. The MemoryFile is a memfd.
    allow(libc::SYS_read, any());
    allow(libc::SYS_write, any());
    allow(libc::SYS_readv, any()); // std's vectored I/O (none seen today; fd-only)
    allow(libc::SYS_writev, any());
    allow(libc::SYS_pread64, any()); // gofer files (positional), MAP_SHARED writeback
    allow(libc::SYS_pwrite64, any());
    allow(libc::SYS_lseek, any()); // host fds; SEEK_DATA/SEEK_HOLE on the MemoryFile
    allow(libc::SYS_close, any());
    allow(libc::SYS_fsync, any()); // fsync(2) of gofer files, the exit file
    allow(libc::SYS_fdatasync, any());
    // FALLOC_FL_PUNCH_HOLE on the MemoryFile (freed pages), fallocate(2) of gofer files.
    allow(libc::SYS_fallocate, any());
    allow(libc::SYS_fstatfs, any()); // statfs(2) of host-backed files

    // fstat(2) itself: fd-only (glibc uses newfstatat).
    allow(libc::SYS_fstat, any());
    // glibc's fstat() is fstatat(fd, "", AT_EMPTY_PATH) and std's metadata()
    // statx(fd, "", AT_EMPTY_PATH): only that form, on a descriptor.
    allow(
        libc::SYS_newfstatat,
        vec![rule(vec![cond32(
            3,
            Op::MaskedEq(libc::AT_EMPTY_PATH as u64),
            libc::AT_EMPTY_PATH as u64,
        )])],
    );
    allow(
        libc::SYS_statx,
        vec![rule(vec![cond32(
            2,
            Op::MaskedEq(libc::AT_EMPTY_PATH as u64),
            libc::AT_EMPTY_PATH as u64,
        )])],
    );
    allow(
        libc::SYS_fcntl,
        any_of(
            1,
            &[
                libc::F_GETFD as u64,
                libc::F_SETFD as u64,
                libc::F_GETFL as u64, // the host O_APPEND kept in step; stdio flags
                libc::F_SETFL as u64,
                libc::F_DUPFD_CLOEXEC as u64, // try_clone() of gofer fds
            ],
        ),
    );
    // Terminal requests passed to a host terminal (stdio of `runsc do`; the
    // console of `runsc create --console-socket`: fs::host, oci::console).
    let mut ioctls = vec![
        libc::TCGETS,
        libc::TCSETS,
        libc::TCSETSW,
        libc::TCSETSF,
        libc::TIOCGWINSZ,
        libc::TIOCSWINSZ,
        libc::TIOCGPGRP,
        libc::FIONREAD,
    ];
    if opts.host_network {
        // hostinet's SIOCINQ (FIONREAD) and SIOCOUTQ (TIOCOUTQ).
        for c in sentry::net::hostinet::IOCTLS {
            if !ioctls.contains(c) {
                ioctls.push(*c);
            }
        }
    }
    if opts.kvm {
        for c in platform::kvm::RUNTIME_IOCTLS {
            ioctls.push(*c as _);
        }
    }
    allow(libc::SYS_ioctl, any_of(1, &ioctls));

    // ---- Waiting ----
    allow(libc::SYS_poll, any()); // host stdio and the console bridge
    allow(libc::SYS_ppoll, any()); // (none seen today; fd-only)

    // fs::waiter: a task's wakeup.
    allow(libc::SYS_eventfd2, any());
    // fs::anon::epoll's 10 ms host ticker (an epoll fd's host_fd).
    allow(libc::SYS_timerfd_create, any());
    allow(libc::SYS_timerfd_settime, any());
    allow(libc::SYS_timerfd_gettime, any());
    allow(libc::SYS_futex, any()); // std's Mutex/Condvar, thread joins
    allow(libc::SYS_clock_nanosleep, any());
    allow(libc::SYS_sched_yield, any());

    // ---- Time ----
    // Normally answered by the vDSO; the syscall is its fallback.
    allow(libc::SYS_clock_gettime, any());
    allow(libc::SYS_clock_getres, any());
    allow(libc::SYS_gettimeofday, any());
    allow(libc::SYS_time, any());
    allow(libc::SYS_sysinfo, any()); // /proc/meminfo, sysinfo(2): host memory

    // ---- Sockets (AF_UNIX only; the gofer, the control socket, exec) ----
    // None made today after setup; AF_UNIX only. With --network=host,
    // hostinet's families instead (see `host_network_rules`).
    if !opts.host_network {
        allow(libc::SYS_socket, any_of(0, &[libc::AF_UNIX as u64]));
    }
    // Control connections (the listener was bound before). No connect, bind
    // or listen: the sentry reaches no host socket by path.
    allow(libc::SYS_accept4, any());
    allow(libc::SYS_sendmsg, any()); // gofer requests, SCM_RIGHTS

    // Gofer replies with host fds.
    allow(libc::SYS_recvmsg, any());
    // send(2) (std, libc::send), to the connected peer only: no address.
    allow(libc::SYS_sendto, vec![rule(vec![cond(4, Op::Eq, 0)])]);
    allow(libc::SYS_recvfrom, any()); // std's UnixStream::read is recv(2)

    // ---- Threads and signals ----
    // A new sentry thread (each task has its own host thread): CLONE_VM,
    // CLONE_FS, CLONE_FILES, CLONE_SIGHAND and CLONE_THREAD, and besides those
    // only glibc's TLS and tid bookkeeping flags. No new process, no namespace.
    let thread = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD) as u64;
    let optional = (libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_SETTID
        | libc::CLONE_CHILD_CLEARTID) as u64;
    allow(
        libc::SYS_clone,
        vec![rule(vec![cond(0, Op::MaskedEq(!optional), thread)])],
    );
    // Listed so that the second filter's ENOSYS decides (see `install`).
    allow(libc::SYS_clone3, any());
    allow(libc::SYS_set_robust_list, any()); // every new thread (glibc)
    allow(libc::SYS_rseq, any()); // every new thread (glibc >= 2.35)
    allow(libc::SYS_exit, any());
    allow(libc::SYS_exit_group, any());
    allow(libc::SYS_gettid, any());
    allow(libc::SYS_getpid, any());
    allow(libc::SYS_rt_sigaction, any());
    allow(libc::SYS_rt_sigprocmask, any());
    allow(libc::SYS_rt_sigreturn, any());
    allow(libc::SYS_sigaltstack, any()); // std's stack-overflow handler, per thread
    allow(libc::SYS_restart_syscall, any());
    // Stubs: SIGKILL when an address space or the platform goes; abort() (a
    // sentry panic) raises SIGABRT at itself.
    allow(libc::SYS_kill, any_of(1, &[libc::SIGKILL as u64]));
    // Kick: SIGSTOP to a stub thread running workload code (pause, signals,
    // exit); SIGABRT: abort().
    // With --platform=kvm, SIGUSR2 kicks a vCPU thread out of KVM_RUN
    // (platform::kvm::vcpu::KICK_SIGNAL).
    let mut kicks = vec![libc::SIGSTOP as u64, libc::SIGABRT as u64];
    if opts.kvm {
        kicks.push(platform::kvm::vcpu::KICK_SIGNAL as u64);
    }
    allow(libc::SYS_tgkill, any_of(2, &kicks));
    // Thread names (std names its threads): PR_SET_NAME only.
    allow(libc::SYS_prctl, any_of(0, &[libc::PR_SET_NAME as u64]));
    // Tracer threads pin themselves and their stub to one CPU.
    allow(libc::SYS_sched_getaffinity, any());
    allow(libc::SYS_sched_setaffinity, any());
    allow(libc::SYS_getrandom, any()); // HashMap seeds, /dev/urandom, AT_RANDOM, boot_id

    // ---- The ptrace platform ----
    // Every task's host thread traces its stub thread (stubs run under their
    // own filter, installed before this one, that admits only syscalls the
    // sentry injects from the stub page). Not PTRACE_ATTACH (only the master
    // stub is attached, before the filter), nor PEEK/POKE of another process's
    // memory or user area.
    allow(
        libc::SYS_ptrace,
        any_of(
            0,
            &[
                libc::PTRACE_SEIZE as u64, // a new stub process or thread
                libc::PTRACE_INTERRUPT as u64,
                libc::PTRACE_SETOPTIONS as u64,
                libc::PTRACE_DETACH as u64, // a new address space's leader, handed over
                libc::PTRACE_CONT as u64,   // injected syscalls
                libc::PTRACE_SYSEMU as u64, // workload code
                libc::PTRACE_GETREGS as u64,
                libc::PTRACE_SETREGS as u64,
                libc::PTRACE_GETREGSET as u64, // FPU/XSAVE state
                libc::PTRACE_SETREGSET as u64,
                libc::PTRACE_GETSIGINFO as u64, // fault address, signal info
            ],
        ),
    );
    allow(libc::SYS_wait4, any()); // waitpid() of traced stub threads
                                   // The stub watcher's liveness check of a stub process (P_PID with
                                   // WNOWAIT|WNOHANG: it never reaps; faults.rs / AddressSpace::alive).
    allow(
        libc::SYS_waitid,
        vec![rule(vec![
            cond32(0, Op::Eq, libc::P_PID as u64),
            cond32(3, Op::MaskedEq(libc::WNOWAIT as u64), libc::WNOWAIT as u64),
        ])],
    );

    if opts.host_network {
        for (nr, rules) in host_network_rules() {
            allow(nr, rules);
        }
    }

    // ---- OCI: the exit file ----
    // The state directory and a temporary file in it are opened before the
    // filter; the status is renamed into place within that directory only.
    if let Some(fd) = opts.state_dir_fd {
        let within = vec![rule(vec![
            cond32(0, Op::Eq, fd as u64),
            cond32(2, Op::Eq, fd as u64),
        ])];
        allow(libc::SYS_renameat, within);
    }

    r
}

/// `--network=host` only (sentry::net::hostinet): the workload's Internet
/// sockets are host sockets the sentry makes and drives. The filter admits
///
/// - `socket` of AF_INET/AF_INET6 only, SOCK_STREAM or SOCK_DGRAM, always
///   with SOCK_NONBLOCK|SOCK_CLOEXEC, protocol 0, TCP, UDP or ICMP/ICMPv6
///   (ping sockets), and no AF_UNIX socket at all: with `connect` and `bind`
///   allowed, a new AF_UNIX socket could reach the host network namespace's
///   abstract sockets (the sentry makes none after setup anyway);
/// - `bind`, `listen`, `connect`, `getsockname`, `getpeername`, `shutdown`
///   on any descriptor (a filter cannot read the address; the sentry's
///   empty root leaves no path-named socket to reach, and it holds no
///   unconnected AF_UNIX socket);
/// - `getsockopt`/`setsockopt` only for the (level, name) pairs of
///   hostinet's allow-list (`hostinet::OPTIONS`);
/// - `epoll_create1`, `epoll_ctl`, `epoll_wait`/`epoll_pwait`: hostinet's
///   notifier thread, which wakes the sockets' waiters.
///
/// (`accept4`, `sendmsg`, `recvmsg`, `poll` and the FIONREAD/SIOCOUTQ
/// ioctls are in the base list or added to it.)
pub fn host_network_rules() -> Vec<(libc::c_long, Vec<SeccompRule>)> {
    use sentry::net::hostinet::{OPTIONS, SOCK_FLAGS};
    let mut socket = Vec::new();
    for family in [libc::AF_INET, libc::AF_INET6] {
        let icmp = if family == libc::AF_INET {
            libc::IPPROTO_ICMP
        } else {
            libc::IPPROTO_ICMPV6
        };
        for (ty, protos) in [
            (libc::SOCK_STREAM, vec![0, libc::IPPROTO_TCP]),
            (libc::SOCK_DGRAM, vec![0, libc::IPPROTO_UDP, icmp]),
        ] {
            for p in protos {
                socket.push(rule(vec![
                    cond32(0, Op::Eq, family as u64),
                    cond32(1, Op::Eq, (ty | SOCK_FLAGS) as u64),
                    cond32(2, Op::Eq, p as u64),
                ]));
            }
        }
    }
    let opts = |set: bool| -> Vec<SeccompRule> {
        OPTIONS
            .iter()
            .filter(|o| if set { o.set } else { o.get })
            .map(|o| {
                rule(vec![
                    cond32(1, Op::Eq, o.level as u64),
                    cond32(2, Op::Eq, o.name as u64),
                ])
            })
            .collect()
    };
    vec![
        (libc::SYS_socket, socket),
        (libc::SYS_bind, Vec::new()),
        (libc::SYS_listen, Vec::new()),
        (libc::SYS_connect, Vec::new()),
        (libc::SYS_getsockname, Vec::new()),
        (libc::SYS_getpeername, Vec::new()),
        (libc::SYS_shutdown, Vec::new()),
        (libc::SYS_getsockopt, opts(false)),
        (libc::SYS_setsockopt, opts(true)),
        (libc::SYS_epoll_create1, Vec::new()),
        (libc::SYS_epoll_ctl, Vec::new()),
        (libc::SYS_epoll_wait, Vec::new()),
        (libc::SYS_epoll_pwait, Vec::new()),
    ]
}

/// The allow-list compiled to BPF, with `violation` for anything else.
pub fn build(opts: &Options, violation: Violation) -> Result<BpfProgram, String> {
    let mismatch = match violation {
        Violation::Kill => SeccompAction::KillProcess,
        Violation::Log => SeccompAction::Log,
        Violation::Trap => SeccompAction::Trap,
    };
    let f = SeccompFilter::new(rules(opts), mismatch, SeccompAction::Allow, arch())
        .map_err(|e| format!("seccomp filter: {e}"))?;
    f.try_into().map_err(|e| format!("seccomp filter: {e}"))
}

/// The second filter: clone3 fails with ENOSYS (everything else passes to
/// the allow-list). The kernel takes the strictest answer of all filters,
/// and ERRNO beats the allow-list's ALLOW.
fn build_enosys() -> Result<BpfProgram, String> {
    let mut r = Rules::new();
    r.insert(libc::SYS_clone3, Vec::new());
    let f = SeccompFilter::new(
        r,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch(),
    )
    .map_err(|e| format!("seccomp filter: {e}"))?;
    f.try_into().map_err(|e| format!("seccomp filter: {e}"))
}

fn arch() -> TargetArch {
    TargetArch::x86_64
}

/// Settles now what glibc would otherwise find out later by opening a file.
fn prepare() {
    // malloc: once a process has more threads than 8 arenas, glibc computes its
    // arena limit from the number of CPUs, reading /sys/devices/system/cpu/online.
    // Set the limit it would compute (8 per CPU on 64-bit) now.
    let arenas = (8 * sentry::procfs::cpu_count()).clamp(8, i32::MAX as usize) as i32;
    // SAFETY: mallopt only sets a malloc parameter.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
    // malloc: the first time a thread's (non-main) arena gives memory back,
    // glibc reads /proc/sys/vm/overcommit_memory once (check_may_shrink_heap).
    // Make that happen now, on a fresh thread (hence a fresh arena): fill
    // 1 MiB of its heap with blocks below the mmap threshold and free them,
    // so that the top of the heap is trimmed.
    let _ = std::thread::Builder::new()
        .name("malloc-warmup".into())
        .spawn(|| {
            let blocks: Vec<Vec<u8>> = (0..64).map(|_| vec![1u8; 16 << 10]).collect();
            for b in blocks.into_iter().rev() {
                drop(std::hint::black_box(b));
            }
        })
        .map(|t| t.join());
}

extern "C" {
    // glibc's execinfo.
    fn backtrace(buf: *mut *mut libc::c_void, size: libc::c_int) -> libc::c_int;
    fn backtrace_symbols_fd(buf: *const *mut libc::c_void, size: libc::c_int, fd: libc::c_int);
}

/// Installs the SIGSYS handler of [`Violation::Trap`].
fn trap_handler() {
    extern "C" fn on_sigsys(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid siginfo; SIGSYS's fields follow
        // the common header (si_call_addr, si_syscall, si_arch).
        let nr = unsafe { *((info as *const u8).add(24) as *const i32) };
        let mut msg = *b"runsc: sentry seccomp violation: syscall 000000\n";
        let mut n = nr.unsigned_abs();
        for i in (41..47).rev() {
            msg[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let mut frames = [std::ptr::null_mut(); 64];
        // SAFETY: write(2) and the execinfo calls are async-signal-safe once
        // libgcc is loaded (see trap_handler); buffers are valid.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), msg.len());
            let k = backtrace(frames.as_mut_ptr(), 64);
            backtrace_symbols_fd(frames.as_ptr(), k, 2);
            libc::abort();
        }
    }
    let mut frames = [std::ptr::null_mut(); 4];
    // SAFETY: loads libgcc_s now (backtrace's first call opens it); then a
    // plain sigaction with a valid handler.
    unsafe {
        backtrace(frames.as_mut_ptr(), 4);
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigsys as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut());
    }
}

/// Installs both filters on every thread of the calling process (sets
/// no_new_privs first, as seccomp requires without CAP_SYS_ADMIN).
pub fn install(opts: &Options, violation: Violation) -> Result<(), String> {
    prepare();
    if violation == Violation::Trap {
        trap_handler();
    }
    let allow = build(opts, violation)?;
    let enosys = build_enosys()?;
    // The ENOSYS filter first: once the allow-list is in, prctl(NO_NEW_PRIVS)
    // and seccomp() themselves are forbidden.
    seccompiler::apply_filter_all_threads(&enosys).map_err(|e| format!("seccomp: {e}"))?;
    seccompiler::apply_filter_all_threads(&allow).map_err(|e| format!("seccomp: {e}"))?;
    Ok(())
}

/// `runsc seccomp-probe [--network=host] CALL` (hidden;
/// tests/tests/seccomp.rs): installs the sentry's filter exactly as `runsc
/// boot` does (with `--network=host`: as in host network mode), then makes
/// one host call. Exits 0 when the call returned (printing its result), or
/// dies of SIGSYS.
pub fn cmd_probe(args: &[String]) -> i32 {
    let host_network = args.first().is_some_and(|a| a == "--network=host");
    let args = &args[usize::from(host_network)..];
    let Some(call) = args.first() else {
        eprintln!("usage: runsc seccomp-probe [--network=host] CALL");
        return 2;
    };
    let mut pipe = [0i32; 2];
    // SAFETY: a valid array of two ints.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        eprintln!("pipe2: {}", std::io::Error::last_os_error());
        return 1;
    }
    let opts = Options {
        host_network,
        ..Default::default()
    };
    if let Err(e) = install(&opts, Violation::from_env()) {
        eprintln!("{e}");
        return 1;
    }
    match probe(call, pipe) {
        Some(r) => {
            println!("{call}: {r}");
            0
        }
        None => {
            eprintln!("unknown probe {call:?}");
            2
        }
    }
}

/// Makes the call named `call`; its raw result (negative: -errno).
fn probe(call: &str, pipe: [i32; 2]) -> Option<i64> {
    let raw = |r: i64| {
        if r < 0 {
            -(std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as i64)
        } else {
            r
        }
    };
    let path = c"/etc/hostname".as_ptr();
    // SAFETY: each call gets valid arguments (or ones the kernel rejects
    // without touching our memory); the filter decides whether it runs at all.
    let r = unsafe {
        match call {
            // Allowed.
            "getpid" => libc::syscall(libc::SYS_getpid),
            "pipe" => {
                let b = [7u8];
                let mut out = [0u8];
                libc::write(pipe[1], b.as_ptr().cast(), 1);
                libc::read(pipe[0], out.as_mut_ptr().cast(), 1) as i64 + out[0] as i64 * 100
            }
            "mmap-rw" => {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                if p == libc::MAP_FAILED {
                    -1
                } else {
                    0
                }
            }
            "thread" => {
                let h = std::thread::spawn(|| 5i64);
                h.join().unwrap_or(-1)
            }
            "socket-unix" => libc::syscall(
                libc::SYS_socket,
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
            ),
            // Allowed with --network=host only (hostinet's calls; -EBADF on fd -1).
            "socket-inet-host" => libc::syscall(
                libc::SYS_socket,
                libc::AF_INET,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            ),
            "connect-bad-fd" => libc::syscall(libc::SYS_connect, -1, 0usize, 0usize),
            "setsockopt-nodelay" => {
                let one: libc::c_int = 1;
                libc::syscall(
                    libc::SYS_setsockopt,
                    -1,
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    &one as *const libc::c_int,
                    4usize,
                )
            }
            // Forbidden even with --network=host: options off hostinet's list.
            "setsockopt-bindtodevice" => libc::syscall(
                libc::SYS_setsockopt,
                -1,
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                c"lo".as_ptr(),
                3usize,
            ),
            // Answered ENOSYS (glibc falls back to clone).
            "clone3" => libc::syscall(libc::SYS_clone3, 0usize, 0usize),
            // Forbidden: the sentry dies of SIGSYS.
            "open" => libc::syscall(libc::SYS_open, path, libc::O_RDONLY),
            "openat" => libc::syscall(libc::SYS_openat, libc::AT_FDCWD, path, libc::O_RDONLY),
            "openat2" => libc::syscall(libc::SYS_openat2, libc::AT_FDCWD, path, 0usize, 0usize),
            "creat" => libc::syscall(libc::SYS_creat, c"/tmp/x".as_ptr(), 0o600),
            "execve" => {
                let argv = [c"/bin/true".as_ptr(), std::ptr::null()];
                libc::syscall(
                    libc::SYS_execve,
                    c"/bin/true".as_ptr(),
                    argv.as_ptr(),
                    std::ptr::null::<*const libc::c_char>(),
                )
            }
            "execveat" => libc::syscall(libc::SYS_execveat, -1, path, 0usize, 0usize, 0),
            "socket-inet" => libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0),
            "socket-netlink" => {
                libc::syscall(libc::SYS_socket, libc::AF_NETLINK, libc::SOCK_RAW, 0)
            }
            "mmap-exec" => libc::syscall(
                libc::SYS_mmap,
                0usize,
                4096usize,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            ),
            "mprotect-exec" => {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                libc::syscall(
                    libc::SYS_mprotect,
                    p,
                    4096usize,
                    libc::PROT_READ | libc::PROT_EXEC,
                )
            }
            "connect-unix" => {
                let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
                let mut addr: libc::sockaddr_un = std::mem::zeroed();
                addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
                for (d, s) in addr.sun_path.iter_mut().zip(b"/run/probe.sock") {
                    *d = *s as libc::c_char;
                }
                libc::syscall(
                    libc::SYS_connect,
                    fd,
                    &addr as *const libc::sockaddr_un,
                    std::mem::size_of::<libc::sockaddr_un>(),
                )
            }
            "ptrace-attach" => libc::syscall(libc::SYS_ptrace, libc::PTRACE_ATTACH, 1, 0, 0),
            "ptrace-poke" => libc::syscall(libc::SYS_ptrace, libc::PTRACE_POKEDATA, 1, 0, 0),
            "fork" => libc::syscall(libc::SYS_fork),
            "clone-process" => libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0usize),
            "clone-newns" => libc::syscall(
                libc::SYS_clone,
                libc::CLONE_VM
                    | libc::CLONE_FS
                    | libc::CLONE_FILES
                    | libc::CLONE_SIGHAND
                    | libc::CLONE_THREAD
                    | libc::CLONE_NEWNS,
                0usize,
            ),
            "ioctl-tiocsti" => libc::syscall(libc::SYS_ioctl, 0, libc::TIOCSTI, c"x".as_ptr()),
            "prctl-dumpable" => libc::syscall(libc::SYS_prctl, libc::PR_SET_DUMPABLE, 1),
            "kill-term" => libc::syscall(libc::SYS_kill, 1, libc::SIGTERM),
            "process_vm_readv" => libc::syscall(
                libc::SYS_process_vm_readv,
                1,
                0usize,
                0usize,
                0usize,
                0usize,
                0usize,
            ),
            "stat-path" => {
                let mut st: libc::stat = std::mem::zeroed();
                libc::syscall(libc::SYS_newfstatat, libc::AT_FDCWD, path, &mut st, 0)
            }
            "unshare" => libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER),
            "mount" => libc::syscall(
                libc::SYS_mount,
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null::<libc::c_char>(),
                libc::MS_REMOUNT,
                0usize,
            ),
            "seccomp" => libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_STRICT, 0, 0),
            _ => return None,
        }
    };
    Some(raw(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_leaves_out_the_dangerous_calls() {
        let opts = Options {
            state_dir_fd: Some(5),
            host_network: false,
            kvm: false,
        };
        let r = rules(&opts);
        for nr in [
            libc::SYS_open,
            libc::SYS_openat,
            libc::SYS_openat2,
            libc::SYS_creat,
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_fork,
            libc::SYS_vfork,
            libc::SYS_process_vm_readv,
            libc::SYS_process_vm_writev,
            libc::SYS_connect,
            libc::SYS_bind,
            libc::SYS_listen,
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_pivot_root,
            libc::SYS_chroot,
            libc::SYS_setns,
            libc::SYS_unshare,
            libc::SYS_seccomp,
            libc::SYS_bpf,
            libc::SYS_perf_event_open,
            libc::SYS_userfaultfd,
            libc::SYS_io_uring_setup,
            libc::SYS_init_module,
            libc::SYS_finit_module,
            libc::SYS_kexec_load,
            libc::SYS_reboot,
            libc::SYS_keyctl,
            libc::SYS_add_key,
            libc::SYS_unlinkat,
            libc::SYS_mkdirat,
            libc::SYS_symlinkat,
            libc::SYS_linkat,
            libc::SYS_fchmodat,
            libc::SYS_fchownat,
            libc::SYS_memfd_create,
            libc::SYS_name_to_handle_at,
            libc::SYS_open_by_handle_at,
        ] {
            assert!(!r.contains_key(&nr), "syscall {nr} is allowed");
        }
        // Rename only with the state directory on both sides.
        assert!(r.contains_key(&libc::SYS_renameat));
        assert!(!rules(&Options::default()).contains_key(&libc::SYS_renameat));
        for v in [Violation::Kill, Violation::Log] {
            assert!(!build(&opts, v).unwrap().is_empty());
        }
        assert!(!build_enosys().unwrap().is_empty());
    }

    #[test]
    fn host_network_widens_only_in_host_mode() {
        let base = rules(&Options::default());
        let host = rules(&Options {
            host_network: true,
            ..Default::default()
        });
        for nr in [
            libc::SYS_bind,
            libc::SYS_listen,
            libc::SYS_connect,
            libc::SYS_getsockopt,
            libc::SYS_setsockopt,
            libc::SYS_epoll_wait,
        ] {
            assert!(!base.contains_key(&nr), "syscall {nr} in the default list");
            assert!(host.contains_key(&nr), "syscall {nr} not in the host list");
        }
        // Only the hostinet families and types, with their flags.
        assert_eq!(host[&libc::SYS_socket].len(), 10);
        assert_eq!(base[&libc::SYS_socket].len(), 1);
        for v in [Violation::Kill, Violation::Log] {
            assert!(!build(
                &Options {
                    host_network: true,
                    ..Default::default()
                },
                v
            )
            .unwrap()
            .is_empty());
        }
    }

    #[test]
    fn kvm_widens_only_ioctl_and_the_kick() {
        let base = rules(&Options::default());
        let kvm = rules(&Options {
            kvm: true,
            ..Default::default()
        });
        assert_eq!(
            base.keys().collect::<Vec<_>>(),
            kvm.keys().collect::<Vec<_>>()
        );
        assert_eq!(
            kvm[&libc::SYS_ioctl].len(),
            base[&libc::SYS_ioctl].len() + platform::kvm::RUNTIME_IOCTLS.len()
        );
        assert_eq!(
            kvm[&libc::SYS_tgkill].len(),
            base[&libc::SYS_tgkill].len() + 1
        );
        // KVM_CREATE_VM is not among them: the VM exists before the filter.
        assert!(!platform::kvm::RUNTIME_IOCTLS.contains(&0xae01));
    }
}
