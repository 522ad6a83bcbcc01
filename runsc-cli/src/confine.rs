//! Confinement of the sentry (`runsc boot`), the second wall around the
//! workload (DESIGN.md section 2).
//!
//! - [`SentryCommand`] starts `runsc boot` with a raw `clone(CLONE_NEWPID)`:
//!   the sentry is PID 1 of its own PID namespace and sees no host process,
//!   yet its host PID (what `clone` returns to the caller) is the one `runsc`
//!   records, signals, puts in the cgroup and shows in `ps --format json`.
//!   (std's `Command` cannot pass clone flags, and unsharing in `boot` and
//!   forking again would leave an unconfined supervisor as the recorded
//!   process.) Before exec the child joins the OCI spec's network namespace
//!   if there is one (while it is still in the host's user namespace, which
//!   owns it), then unshares a user namespace with new mount, IPC, UTS and
//!   cgroup namespaces (and a new, empty network namespace unless it joined
//!   one or uses the host's, `--network=host`), all owned by that user
//!   namespace; the parent writes its uid/gid maps (identity maps of root,
//!   nobody and the caller's ids: [`id_map`]).
//! - Rootless ([`Identity::Rootless`]: runsc run by a non-root user, or
//!   `--rootless` as root): the user namespace is created by an unprivileged
//!   host user, so it can map only one uid and one gid, the sandbox's own, to
//!   that user's ([`Rootless::maps`], setgroups denied first). A non-root
//!   caller clones with `CLONE_NEWUSER` and all the other namespaces at once
//!   (the new user namespace owns the PID namespace too) and cannot join a
//!   network namespace; as root, the child switches to host nobody before it
//!   unshares. The child then makes its capabilities of the new namespace
//!   ambient, so that `runsc boot` keeps them across exec even when its uid
//!   inside is not 0. [`confine`] keeps that one mapped uid/gid (there is no
//!   other to switch to) and drops every capability all the same.
//! - [`close_inherited_fds`], first thing in `boot`: every descriptor but
//!   stdio and those named on the command line is closed.
//! - [`confine`], in `boot` once every host resource it needs is open (the
//!   gofer and volume sockets, the console, the ready pipe, the bound control
//!   socket, the exit-status file, the debug log, host facts read from /proc)
//!   and before the platform and the first task exist: the root becomes an
//!   empty, read-only tmpfs (pivot_root), the capability bounding and ambient
//!   sets are emptied with the root-related securebits locked, the sentry
//!   becomes the unprivileged host user and group nobody (uid/gid
//!   [`SANDBOX_HOST_ID`], no supplementary group; rootless: the one mapped
//!   uid/gid, an unprivileged host user already) with no capability left in
//!   any set, stays dumpable (so it may trace its own stubs without
//!   CAP_SYS_PTRACE) and sets no_new_privs. The ptrace platform's stubs,
//!   forked afterwards, inherit all of it.
//!
//! Everything the sentry does with host objects afterwards goes through
//! descriptors opened before (read/write/fallocate/fsync/mmap need no
//! permission check at call time), so the switch to an unprivileged uid costs
//! nothing; `/dev/kvm` (`--platform=kvm`) is opened before [`confine`] too
//! (`platform::kvm::preopen`), and the VM created after it.
//!
//! PID 1 of a PID namespace gets no signal from the host that it has no
//! handler for (except SIGKILL and SIGSTOP), so [`confine`] installs handlers
//! that end the sentry with exit status 128+N for the signals that used to kill
//! it (a terminal's SIGINT reaching `runsc do`'s process group, SIGTERM from a
//! supervisor): `runsc do` reports the same status as before.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

/// Namespaces the child unshares right after the clone (which made its PID
/// namespace), after joining a network namespace if it is given one: the user
/// namespace first, so that it owns the others (the network namespace too,
/// unless it joined one).
const NEW_NAMESPACES: libc::c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP;

/// The host user and group the sentry runs as once confined (nobody/nogroup,
/// as gVisor's sandbox).
pub const SANDBOX_HOST_ID: u32 = 65534;

/// Under whose host identity the sandbox's processes (sentry and gofers) run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// runsc run by root (the default): the sentry's user namespace maps root,
    /// nobody and the caller's ids identically ([`id_map`]) and the sentry
    /// ends as host nobody; the gofers stay in the host's user namespace with a
    /// few capabilities.
    Privileged,
    /// Unprivileged (runsc run by a non-root user, or `--rootless`): every
    /// process of the sandbox lives in a user namespace created by an
    /// unprivileged host user and mapping one uid and one gid, the sandbox's
    /// own (the workload's) to that user's.
    Rootless(Rootless),
}

/// The one uid and gid a rootless sandbox's user namespaces map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rootless {
    /// The ids inside (what the workload is, and the owner of what it creates).
    pub inside_uid: u32,
    pub inside_gid: u32,
    /// The host ids they stand for.
    pub host_uid: u32,
    pub host_gid: u32,
    /// runsc itself is root (`--rootless`): each process of the sandbox
    /// switches to the host ids (nobody) before it creates its namespaces.
    pub switch: bool,
}

impl Identity {
    /// The identity of a sandbox started by this process: rootless when our
    /// effective uid is not 0 (host ids: ours) or with `--rootless` as root
    /// (host ids: nobody, [`SANDBOX_HOST_ID`]). `workload` is the sandbox's
    /// uid/gid (an OCI spec's `process.user`); `None` (`runsc do`): the
    /// caller's own (root's 0 under `--rootless`).
    pub fn new(rootless_flag: bool, workload: Option<(u32, u32)>) -> Identity {
        // SAFETY: geteuid/getegid cannot fail.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let (inside_uid, inside_gid) = workload.unwrap_or((euid, egid));
        if euid != 0 {
            Identity::Rootless(Rootless {
                inside_uid,
                inside_gid,
                host_uid: euid,
                host_gid: egid,
                switch: false,
            })
        } else if rootless_flag {
            Identity::Rootless(Rootless {
                inside_uid,
                inside_gid,
                host_uid: SANDBOX_HOST_ID,
                host_gid: SANDBOX_HOST_ID,
                switch: true,
            })
        } else {
            Identity::Privileged
        }
    }

    pub fn rootless(&self) -> Option<&Rootless> {
        match self {
            Identity::Privileged => None,
            Identity::Rootless(r) => Some(r),
        }
    }
}

impl Rootless {
    /// The one-line uid and gid maps.
    pub fn maps(&self) -> (String, String) {
        (
            format!("{} {} 1\n", self.inside_uid, self.host_uid),
            format!("{} {} 1\n", self.inside_gid, self.host_gid),
        )
    }
}

/// The sentry's user namespace maps identically the host's root (so that it
/// starts with every capability inside its namespaces, to pivot, and can
/// still open what it needs on the host), [`SANDBOX_HOST_ID`] (which it
/// switches to for good when it confines itself) and the caller's own ids and
/// supplementary groups (so that `runsc do`'s workload, which runs as its
/// caller, reads them as they are on the host).
fn id_map(ids: impl IntoIterator<Item = u32>) -> String {
    let mut ids: Vec<u32> = [0, SANDBOX_HOST_ID]
        .into_iter()
        .chain(ids)
        .filter(|&i| i != u32::MAX)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    // The kernel takes at most 340 lines.
    ids.truncate(340);
    ids.iter().map(|i| format!("{i} {i} 1\n")).collect()
}

/// The `runsc boot` command line and how to start it: the subset of
/// `std::process::Command` that the launchers use.
pub struct SentryCommand {
    exe: PathBuf,
    args: Vec<OsString>,
    /// `None`: our environment.
    env: Option<Vec<(OsString, OsString)>>,
    cwd: Option<PathBuf>,
    null_stdio: [bool; 3],
    process_group: bool,
    netns: Option<RawFd>,
    /// `--network=host`: stay in runsc's network namespace.
    host_network: bool,
    identity: Identity,
}

impl SentryCommand {
    pub fn new(exe: &Path) -> SentryCommand {
        SentryCommand {
            exe: exe.to_path_buf(),
            args: Vec::new(),
            env: None,
            cwd: None,
            null_stdio: [false; 3],
            process_group: false,
            netns: None,
            host_network: false,
            identity: Identity::Privileged,
        }
    }

    /// Under which host identity the sentry runs (default: privileged).
    pub fn identity(&mut self, id: Identity) -> &mut Self {
        self.identity = id;
        self
    }

    pub fn arg(&mut self, a: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&mut self, it: I) -> &mut Self {
        for a in it {
            self.arg(a);
        }
        self
    }

    /// Replaces the environment by `vars` (as `env_clear().envs(vars)`).
    pub fn env_exact<I, K, V>(&mut self, vars: I) -> &mut Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.env = Some(
            vars.into_iter()
                .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
                .collect(),
        );
        self
    }

    pub fn current_dir(&mut self, d: &Path) -> &mut Self {
        self.cwd = Some(d.to_path_buf());
        self
    }

    /// Stdin, stdout and stderr from `/dev/null` instead of ours.
    pub fn null_stdio(&mut self, stdin: bool, stdout: bool, stderr: bool) -> &mut Self {
        self.null_stdio = [stdin, stdout, stderr];
        self
    }

    /// A process group of its own (`setpgid(0, 0)`).
    pub fn process_group(&mut self) -> &mut Self {
        self.process_group = true;
        self
    }

    /// Joins the network namespace open at `fd` instead of making a new one.
    /// `fd` must stay open until `spawn` returns.
    pub fn join_netns(&mut self, fd: RawFd) -> &mut Self {
        self.netns = Some(fd);
        self
    }

    /// Keeps runsc's network namespace (`--network=host`) instead of making
    /// a new, empty one (a joined namespace still takes precedence).
    pub fn host_network(&mut self, host: bool) -> &mut Self {
        self.host_network = host;
        self
    }

    /// Starts the sentry in its new namespaces. Like `Command::spawn`, an
    /// error setting it up or executing it is returned here.
    pub fn spawn(&self) -> io::Result<Sentry> {
        let cstr = |s: &OsStr| {
            CString::new(s.as_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in argument"))
        };
        let exe = cstr(self.exe.as_os_str())?;
        let mut argv_c = vec![exe.clone()];
        for a in &self.args {
            argv_c.push(cstr(a)?);
        }
        let env: Vec<(OsString, OsString)> = match &self.env {
            Some(e) => e.clone(),
            None => std::env::vars_os().collect(),
        };
        let mut envp_c = Vec::with_capacity(env.len());
        for (k, v) in &env {
            let mut kv = k.clone();
            kv.push("=");
            kv.push(v);
            envp_c.push(cstr(&kv)?);
        }
        let cwd = self
            .cwd
            .as_deref()
            .map(|d| cstr(d.as_os_str()))
            .transpose()?;
        let argv: Vec<*const libc::c_char> = argv_c
            .iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        let envp: Vec<*const libc::c_char> = envp_c
            .iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        // Once it has its user namespace, the child asks for the maps with
        // one byte on the report pipe (below) and waits for them on `go`.
        let mut g = [0; 2];
        // SAFETY: pipe2 writes two descriptors into `g`.
        if unsafe { libc::pipe2(g.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh descriptors we own.
        let (go_rd, go_wr) = unsafe { (OwnedFd::from_raw_fd(g[0]), OwnedFd::from_raw_fd(g[1])) };
        let mut unshare = NEW_NAMESPACES;
        if self.netns.is_none() && !self.host_network {
            unshare |= libc::CLONE_NEWNET;
        }
        let mut clone_flags = libc::CLONE_NEWPID;
        let rootless = self.identity.rootless().copied();
        match rootless {
            // Unprivileged: the user namespace comes with the clone, and
            // owns the PID namespace and all the others made with it.
            Some(r) if !r.switch => {
                if self.netns.is_some() {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!(
                            "joining a network namespace needs root (runsc runs as uid {}): \
                             use a spec without a network namespace path",
                            r.host_uid
                        ),
                    ));
                }
                clone_flags |= unshare;
                unshare = 0;
            }
            _ => {}
        }
        let child = ChildSetup {
            unshare,
            switch_ids: rootless
                .filter(|r| r.switch)
                .map(|r| (r.host_uid, r.host_gid)),
            raise_caps: rootless.is_some(),
            last_cap: last_cap(),
            go: go_rd.as_raw_fd(),
            exe: exe.as_ptr(),
            argv: argv.as_ptr(),
            envp: envp.as_ptr(),
            cwd: cwd.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            null_stdio: self.null_stdio,
            process_group: self.process_group,
            netns: self.netns.unwrap_or(-1),
        };
        // The child reports a setup or exec failure on this pipe (closed on a
        // successful exec).
        let mut p = [0; 2];
        // SAFETY: pipe2 writes two descriptors into `p`.
        if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh descriptors we own.
        let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
        // SAFETY: a fork-like clone (no CLONE_VM, no new stack): the child gets a
        // copy of our memory and runs only `ChildSetup::run`, which makes
        // async-signal-safe system calls on data prepared above and never
        // returns.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (clone_flags | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if pid < 0 {
            return Err(io::Error::other(format!(
                "clone with new namespaces: {}",
                io::Error::last_os_error()
            )));
        }
        if pid == 0 {
            // SAFETY: see above; this is the child.
            unsafe { child.run(wr.as_raw_fd()) }
        }
        drop(wr);
        drop(go_rd);
        let mut sentry = Sentry {
            pid: pid as i32,
            status: None,
        };
        let read_report = |report: &mut [u8; 8]| loop {
            // SAFETY: reads into the caller's buffer.
            let n = unsafe { libc::read(rd.as_raw_fd(), report.as_mut_ptr().cast(), 8) };
            if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break n;
            }
        };
        let mut report = [0u8; 8];
        let mut n = read_report(&mut report);
        if n == 1 {
            let maps = match &rootless {
                Some(r) => write_rootless_maps(sentry.pid, r),
                None => write_id_maps(sentry.pid),
            };
            if let Err(e) = maps {
                let _ = sentry.kill();
                let _ = sentry.wait();
                return Err(io::Error::new(
                    e.kind(),
                    format!("the sandbox's user namespace: {e}"),
                ));
            }
            // SAFETY: writes one byte from our buffer.
            unsafe { libc::write(go_wr.as_raw_fd(), b"g".as_ptr().cast(), 1) };
            n = read_report(&mut report);
        }
        drop(go_wr);
        if n != 0 && n != 8 {
            let _ = sentry.kill();
            let _ = sentry.wait();
            return Err(io::Error::other("the sandbox died while starting"));
        }
        if n == 8 {
            let step = i32::from_ne_bytes(report[..4].try_into().unwrap());
            let errno = i32::from_ne_bytes(report[4..].try_into().unwrap());
            let _ = sentry.wait();
            let what = match step {
                STEP_SETNS => "joining the network namespace",
                STEP_UNSHARE => "new namespaces",
                STEP_IDS => "switching to the unprivileged host user",
                STEP_CAPS => "capabilities in the user namespace",
                STEP_PGID => "setpgid",
                STEP_STDIO => "/dev/null",
                STEP_CWD => "changing directory",
                _ => "exec",
            };
            return Err(io::Error::new(
                io::Error::from_raw_os_error(errno).kind(),
                format!("{what}: {}", io::Error::from_raw_os_error(errno)),
            ));
        }
        Ok(sentry)
    }
}

/// Writes the uid and gid maps of `pid`'s user namespace (see [`id_map`]).
fn write_id_maps(pid: i32) -> io::Result<()> {
    // SAFETY: identity calls that cannot fail.
    let (uid, euid, gid, egid) = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    let mut groups = vec![0 as libc::gid_t; 512];
    // SAFETY: the buffer holds 512 entries.
    let n = unsafe { libc::getgroups(groups.len() as i32, groups.as_mut_ptr()) };
    groups.truncate(n.max(0) as usize);
    std::fs::write(format!("/proc/{pid}/uid_map"), id_map([uid, euid]))?;
    std::fs::write(
        format!("/proc/{pid}/gid_map"),
        id_map([gid, egid].into_iter().chain(groups)),
    )
}

/// Writes the one-id maps of a rootless sandbox's user namespace: setgroups
/// is denied first (an unprivileged writer must; and the sandbox could
/// otherwise drop a group that denies it access).
fn write_rootless_maps(pid: i32, r: &Rootless) -> io::Result<()> {
    let (uid_map, gid_map) = r.maps();
    std::fs::write(format!("/proc/{pid}/setgroups"), "deny")?;
    std::fs::write(format!("/proc/{pid}/uid_map"), uid_map)?;
    std::fs::write(format!("/proc/{pid}/gid_map"), gid_map)
}

const STEP_UNSHARE: i32 = 6;
const STEP_IDS: i32 = 7;
const STEP_CAPS: i32 = 8;
const STEP_SETNS: i32 = 1;
const STEP_PGID: i32 = 2;
const STEP_STDIO: i32 = 3;
const STEP_CWD: i32 = 4;
const STEP_EXEC: i32 = 5;

/// What the cloned child does before exec, prepared before the clone.
struct ChildSetup {
    /// Namespaces to unshare (0: none, all came with the clone).
    unshare: libc::c_int,
    /// Host uid/gid to switch to before unsharing (`--rootless` as root).
    switch_ids: Option<(u32, u32)>,
    /// Keep every capability of the new user namespace across exec (as
    /// ambient capabilities): the sandbox's uid inside may not be 0.
    raise_caps: bool,
    last_cap: u32,
    go: RawFd,
    exe: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    null_stdio: [bool; 3],
    process_group: bool,
    netns: RawFd,
}

impl ChildSetup {
    /// # Safety
    /// Only in the child of a fork-like clone; the pointers must be valid.
    unsafe fn run(&self, report: RawFd) -> ! {
        let fail = |step: i32| -> ! {
            let errno = *libc::__errno_location();
            let mut b = [0u8; 8];
            b[..4].copy_from_slice(&step.to_ne_bytes());
            b[4..].copy_from_slice(&errno.to_ne_bytes());
            libc::write(report, b.as_ptr().cast(), 8);
            libc::_exit(127)
        };
        // As std's Command: no blocked signal, SIGPIPE back to its default.
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        // The network namespace is joined before the new user namespace
        // exists: it belongs to the host's.
        if self.netns >= 0 && libc::setns(self.netns, libc::CLONE_NEWNET) != 0 {
            fail(STEP_SETNS);
        }
        // The unprivileged host user creates the user namespace: raw system
        // calls (glibc's wrappers would try to reach our parent's threads).
        if let Some((uid, gid)) = self.switch_ids {
            if libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>()) != 0
                || libc::syscall(libc::SYS_setresgid, gid, gid, gid) != 0
                || libc::syscall(libc::SYS_setresuid, uid, uid, uid) != 0
            {
                fail(STEP_IDS);
            }
        }
        if self.unshare != 0 && libc::unshare(self.unshare) != 0 {
            fail(STEP_UNSHARE);
        }
        // The parent writes our uid and gid maps.
        let mut b = 0u8;
        if libc::write(report, b"m".as_ptr().cast(), 1) != 1
            || libc::read(self.go, (&mut b as *mut u8).cast(), 1) != 1
        {
            libc::_exit(127);
        }
        if self.raise_caps && !raise_ambient(self.last_cap) {
            fail(STEP_CAPS);
        }
        if self.process_group && libc::setpgid(0, 0) != 0 {
            fail(STEP_PGID);
        }
        if self.null_stdio.iter().any(|&n| n) {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if null < 0 {
                fail(STEP_STDIO);
            }
            for (fd, _) in self.null_stdio.iter().enumerate().filter(|(_, &n)| n) {
                if libc::dup2(null, fd as i32) < 0 {
                    fail(STEP_STDIO);
                }
            }
            if null > 2 {
                libc::close(null);
            }
        }
        if !self.cwd.is_null() && libc::chdir(self.cwd) != 0 {
            fail(STEP_CWD);
        }
        libc::execve(self.exe, self.argv, self.envp);
        fail(STEP_EXEC)
    }
}

/// Makes every capability we hold (all of them, in the user namespace we just
/// created) inheritable and ambient, so that they survive the exec of `runsc
/// boot` under a uid other than 0 in the namespace. Only raw system calls:
/// runs in the cloned child.
///
/// # Safety
/// capget/capset/prctl on our own credentials.
unsafe fn raise_ambient(last_cap: u32) -> bool {
    let mut h = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut d = [CapData::default(); 2];
    if libc::syscall(libc::SYS_capget, &mut h as *mut CapHeader, d.as_mut_ptr()) != 0 {
        return false;
    }
    for x in d.iter_mut() {
        x.inheritable = x.permitted;
    }
    if libc::syscall(libc::SYS_capset, &mut h as *mut CapHeader, d.as_ptr()) != 0 {
        return false;
    }
    for cap in 0..=last_cap.min(63) {
        if d[(cap / 32) as usize].permitted & (1 << (cap % 32)) == 0 {
            continue;
        }
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            cap as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        ) != 0
        {
            return false;
        }
    }
    true
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

/// A started sentry, by its host PID: what `std::process::Child` is for the
/// other processes.
pub struct Sentry {
    pid: i32,
    status: Option<ExitStatus>,
}

impl Sentry {
    /// The host PID.
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Waits for the sentry to exit (once; later calls return the status).
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        loop {
            let mut st = 0;
            // SAFETY: waits for our own child.
            let r = unsafe { libc::waitpid(self.pid, &mut st, 0) };
            if r == self.pid {
                let s = ExitStatus::from_raw(st);
                self.status = Some(s);
                return Ok(s);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// SIGKILL, unless it was already reaped.
    pub fn kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        // SAFETY: our own child, not yet reaped (so the PID is still its).
        if unsafe { libc::kill(self.pid, libc::SIGKILL) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Closes every descriptor but stdio and `keep`: whatever the caller left
/// open by mistake does not reach the sandbox.
pub fn close_inherited_fds(keep: &[RawFd]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep.iter().filter(|&&f| f > 2).map(|&f| f as u32).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut from = 3u32;
    for k in keep.into_iter().chain(std::iter::once(u32::MAX)) {
        if k > from {
            // SAFETY: closes descriptors nothing in this process uses yet
            // (called before anything else opens one).
            let r = unsafe { libc::syscall(libc::SYS_close_range, from, k - 1, 0u32) };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if k == u32::MAX {
            break;
        }
        from = k + 1;
    }
    Ok(())
}

/// Confines the calling sentry: see the module documentation. Everything it
/// needs from the host must be open before. Errors are one line.
pub fn confine() -> Result<(), String> {
    // SAFETY: getpid cannot fail.
    if unsafe { libc::getpid() } != 1 {
        return Err(
            "confining the sandbox: not started in a new PID namespace (runsc boot is started \
             by runsc do, create and run)"
                .into(),
        );
    }
    let last_cap = last_cap();
    // Read while /proc is there.
    let ids = final_ids();
    empty_root().map_err(|e| format!("confining the sandbox: {e}"))?;
    drop_capabilities(last_cap, ids).map_err(|e| format!("confining the sandbox: {e}"))?;
    // SAFETY: plain prctl.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "confining the sandbox: no_new_privs: {}",
            io::Error::last_os_error()
        ));
    }
    exit_on_host_signals();
    Ok(())
}

/// The uid and gid the sentry ends as, and whether it may (and so must) drop
/// its supplementary groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FinalIds {
    uid: u32,
    gid: u32,
    setgroups: bool,
}

/// [`SANDBOX_HOST_ID`] if our user namespace maps it (runsc run by root: see
/// [`id_map`]), else the id we have (a rootless sandbox's namespace maps that
/// one only: the sentry keeps it, with no capability).
fn final_ids() -> FinalIds {
    let read = |f: &str| std::fs::read_to_string(format!("/proc/self/{f}")).unwrap_or_default();
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    FinalIds {
        uid: pick_id(&read("uid_map"), uid),
        gid: pick_id(&read("gid_map"), gid),
        setgroups: read("setgroups").trim() != "deny",
    }
}

/// [`SANDBOX_HOST_ID`] if `map` (a uid_map or gid_map) maps it inside, else `current`.
fn pick_id(map: &str, current: u32) -> u32 {
    let mapped = map.lines().any(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        f.len() == 3 && (f[0]..f[0] + f[2]).contains(&u64::from(SANDBOX_HOST_ID))
    });
    if mapped {
        SANDBOX_HOST_ID
    } else {
        current
    }
}

fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63)
}

fn os_err(what: &str) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

/// Makes the root an empty read-only tmpfs, in our private mount namespace.
fn empty_root() -> Result<(), String> {
    // SAFETY: mount/pivot_root/umount2/chdir on constant C strings, in the
    // mount namespace this process got for itself at clone.
    unsafe {
        // Nothing below propagates back to the host's mounts.
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(os_err("making the mounts private"));
        }
        // Any directory that exists will do as the mount point: /proc is
        // always there (it is not used after this).
        if libc::mount(
            c"runsc-root".as_ptr(),
            c"/proc".as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RDONLY,
            c"mode=0555,size=4k,nr_inodes=2".as_ptr().cast(),
        ) != 0
        {
            return Err(os_err("mounting the empty root"));
        }
        if libc::chdir(c"/proc".as_ptr()) != 0 {
            return Err(os_err("entering the empty root"));
        }
        // pivot_root(".", "."): the old root ends up stacked on "." and is
        // then detached.
        if libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) != 0 {
            return Err(os_err("pivot_root"));
        }
        if libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0 {
            return Err(os_err("detaching the host's root"));
        }
        if libc::chdir(c"/".as_ptr()) != 0 {
            return Err(os_err("chdir /"));
        }
    }
    Ok(())
}

/// Drops every capability from every set, for good.
fn drop_capabilities(last_cap: u32, ids: FinalIds) -> Result<(), String> {
    // SAFETY: prctl and capset with valid arguments on our own credentials.
    unsafe {
        // Root gets nothing back from exec or setuid, and that cannot be undone
        // (needs CAP_SETPCAP: before the drop).
        // SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP and SECBIT_NO_CAP_AMBIENT_RAISE,
        // each with its lock, and SECBIT_KEEP_CAPS_LOCKED.
        const SECBITS: libc::c_ulong = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80;
        if libc::prctl(libc::PR_SET_SECUREBITS, SECBITS, 0, 0, 0) != 0 {
            return Err(os_err("securebits"));
        }
        for cap in 0..=last_cap {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(os_err("dropping the capability bounding set"));
            }
        }
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            return Err(os_err("clearing the ambient capabilities"));
        }
        // The unprivileged host identity, for good (no setuid-fixup: the
        // capabilities are cleared explicitly below): no supplementary
        // group, then group and user. In a rootless sandbox's namespace
        // setgroups is denied (the groups we have are the caller's, which
        // it cannot drop on the host either).
        if ids.setgroups && libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(os_err("setgroups"));
        }
        if libc::setresgid(ids.gid, ids.gid, ids.gid) != 0 {
            return Err(os_err("setresgid"));
        }
        if libc::setresuid(ids.uid, ids.uid, ids.uid) != 0 {
            return Err(os_err("setresuid"));
        }
        let mut h = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let d = [CapData::default(); 2];
        if libc::syscall(libc::SYS_capset, &mut h as *mut CapHeader, d.as_ptr()) != 0 {
            return Err(os_err("capset"));
        }
        // Changing the uid made us non-dumpable, which would keep the sentry
        // (with no CAP_SYS_PTRACE) from tracing the stub processes it forks:
        // they inherit it.
        if libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) != 0 {
            return Err(os_err("PR_SET_DUMPABLE"));
        }
    }
    Ok(())
}

/// PID 1 of a PID namespace ignores the host's signals it has no handler for:
/// these end the sentry as their default action did before.
fn exit_on_host_signals() {
    extern "C" fn die(sig: libc::c_int) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + sig) }
    }
    for sig in [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGTERM,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGIO,
        libc::SIGPWR,
        libc::SIGSTKFLT,
    ] {
        // SAFETY: installs a handler that only calls _exit.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = die as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_maps() {
        assert_eq!(id_map([0, 0]), "0 0 1\n65534 65534 1\n");
        assert_eq!(
            id_map([1000, 5, 65534, u32::MAX]),
            "0 0 1\n5 5 1\n1000 1000 1\n65534 65534 1\n"
        );
        assert_eq!(id_map(0..1000).lines().count(), 340);
    }

    #[test]
    fn final_id_is_nobody_if_mapped() {
        assert_eq!(pick_id("0 0 1\n65534 65534 1\n", 0), 65534);
        assert_eq!(pick_id("         0          0 4294967295\n", 1000), 65534);
        assert_eq!(pick_id("1000 1000 1\n", 1000), 1000);
        assert_eq!(pick_id("0 65534 1\n", 0), 0);
        assert_eq!(pick_id("", 7), 7);
    }

    #[test]
    fn rootless_maps() {
        let r = Rootless {
            inside_uid: 0,
            inside_gid: 0,
            host_uid: 1000,
            host_gid: 100,
            switch: false,
        };
        assert_eq!(r.maps(), ("0 1000 1\n".into(), "0 100 1\n".into()));
    }
}
