//! `runsc boot`: the sentry. It connects to the gofer, creates the platform and
//! the kernel, starts the first task and exits with the workload's status.

use std::ffi::OsString;
use std::os::fd::{FromRawFd, OwnedFd};

use std::os::unix::ffi::OsStringExt;
use std::sync::Arc;

use abi::Errno;
use platform::{MemoryFile, Platform};
use sentry::task::{Credentials, ExitStatus, CAP_FULL_SET};
use sentry::{Kernel, Task};

use crate::cli::{split_flag, Global};

/// Options of `runsc boot`.
struct BootArgs {
    gofer_fd: i32,
    /// `--volume=FD:ro|rw:PATH`: a gofer socket serving a volume mounted at PATH.
    volumes: Vec<(i32, bool, String)>,
    private_tmp: bool,
    /// `--die-with-parent` (`runsc do`): the sandbox ends when runsc does.
    die_with_parent: bool,
    cwd: Option<String>,
    /// `--net=JSON` (`--network=sandbox`): the interfaces taken over for the
    /// sandbox and their packet sockets (see `crate::net`).
    net: Option<crate::net::NetArg>,
    argv: Vec<String>,
    /// The OCI container mode (`runsc create`); `None` for `runsc do`.
    oci: Option<OciBoot>,
}

/// What `runsc create` adds: the gofer's tree is the root itself (no
/// overlay), the workload waits for "start" on the control socket, and the
/// spec's identity, hostname and tmpfs mounts.
#[derive(Default)]
struct OciBoot {
    /// `--oci-root=ro|rw`.
    root_read_only: bool,
    /// `--control=PATH`: the control socket to listen on.
    control: String,
    /// `--ready-fd=N`: "ok" is written here once the workload is loaded, or
    /// the one-line error that stopped it.
    ready_fd: Option<i32>,
    /// `--exit-file=PATH`: init's exit status is written here.
    exit_file: String,
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    umask: Option<u32>,
    /// `--caps=B,E,I,P,A` (process.capabilities; see `oci::caps`).
    caps: Option<crate::oci::caps::Caps>,
    /// `--no-new-privs=1` (process.noNewPrivileges).
    no_new_privs: bool,
    hostname: Option<String>,
    domainname: Option<String>,
    /// `--ping-group-range=LOW:HIGH` (sysctl net.ipv4.ping_group_range).
    ping_group_range: Option<(u32, u32)>,
    /// `--tmpfs=MODE:SIZE:ro|rw:PATH` (mode octal, size in bytes, 0: default).
    tmpfs: Vec<(u32, u64, bool, String)>,
    /// `--rlimit=RESOURCE:SOFT:HARD`: init's rlimits (process.rlimits).
    rlimits: Vec<(u32, u64, u64)>,
    /// `--masked-path=P` and `--readonly-path=P` (linux.maskedPaths, readonlyPaths).
    masked: Vec<String>,
    readonly: Vec<String>,
    /// `--console-fd=N`: a host terminal bridged to init's sandbox pty
    /// (`process.terminal`; see `oci::console`).
    console_fd: Option<i32>,
}

fn parse(args: &[String]) -> Result<BootArgs, String> {
    let mut gofer_fd = None;
    let mut cwd = None;
    let mut private_tmp = false;
    let mut die_with_parent = false;
    let mut volumes = Vec::new();
    let mut net = None;
    let mut oci: Option<OciBoot> = None;
    let mut i = 0;
    let num = |v: &str, a: &str| v.parse::<u32>().map_err(|_| format!("bad argument {a:?}"));
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            break;
        }
        match split_flag(a) {
            Some(("gofer-fd", Some(v))) => gofer_fd = v.parse::<i32>().ok().filter(|f| *f > 2),
            Some(("cwd", Some(v))) => cwd = Some(v.to_string()),
            Some(("private-tmp", None)) => private_tmp = true,
            Some(("die-with-parent", None)) => die_with_parent = true,
            Some(("volume", Some(v))) => volumes.push(parse_volume(v)?),
            Some(("net", Some(v))) => net = Some(crate::net::NetArg::parse(v)?),
            Some((name, Some(v))) if name.starts_with("oci-") || OCI_FLAGS.contains(&name) => {
                let o = oci.get_or_insert_with(OciBoot::default);
                match name {
                    "oci-root" if v == "ro" || v == "rw" => o.root_read_only = v == "ro",
                    "control" => o.control = v.to_string(),
                    "ready-fd" => o.ready_fd = v.parse::<i32>().ok().filter(|f| *f > 2),
                    "exit-file" => o.exit_file = v.to_string(),
                    "uid" => o.uid = num(v, a)?,
                    "gid" => o.gid = num(v, a)?,
                    "groups" => {
                        o.groups = v
                            .split(',')
                            .filter(|g| !g.is_empty())
                            .map(|g| num(g, a))
                            .collect::<Result<_, _>>()?
                    }
                    "umask" => {
                        o.umask = Some(u32::from_str_radix(v, 8).map_err(|_| format!("bad {a:?}"))?)
                    }
                    "caps" => o.caps = Some(crate::oci::caps::Caps::from_arg(v)?),
                    "no-new-privs" => o.no_new_privs = v == "1" || v == "true",
                    "hostname" => o.hostname = Some(v.to_string()),
                    "domainname" => o.domainname = Some(v.to_string()),
                    "ping-group-range" => {
                        let (lo, hi) = v.split_once(':').ok_or_else(|| format!("bad {a:?}"))?;
                        o.ping_group_range = Some((num(lo, a)?, num(hi, a)?));
                    }
                    "tmpfs" => o.tmpfs.push(parse_tmpfs(v)?),
                    "rlimit" => o.rlimits.push(crate::oci::paths::parse_rlimit_arg(v)?),
                    "masked-path" => o.masked.push(v.to_string()),
                    "readonly-path" => o.readonly.push(v.to_string()),
                    "console-fd" => {
                        o.console_fd = Some(
                            v.parse::<i32>()
                                .ok()
                                .filter(|f| *f > 2)
                                .ok_or_else(|| format!("bad argument {a:?}"))?,
                        )
                    }
                    _ => return Err(format!("bad argument {a:?}")),
                }
            }
            _ => return Err(format!("bad argument {a:?}")),
        }
    }
    if let Some(o) = &oci {
        if o.control.is_empty() || o.exit_file.is_empty() {
            return Err("--control and --exit-file are required in OCI mode".into());
        }
    }
    let gofer_fd = gofer_fd.ok_or("--gofer-fd is required")?;
    let argv = args[i..].to_vec();
    if argv.is_empty() {
        return Err("missing command".into());
    }
    Ok(BootArgs {
        gofer_fd,
        volumes,
        private_tmp,
        die_with_parent,
        cwd,
        net,
        argv,
        oci,
    })
}

/// Flags of the OCI mode that do not start with `oci-`.
const OCI_FLAGS: &[&str] = &[
    "control",
    "ready-fd",
    "exit-file",
    "uid",
    "gid",
    "groups",
    "umask",
    "caps",
    "no-new-privs",
    "hostname",
    "domainname",
    "ping-group-range",
    "tmpfs",
    "rlimit",
    "masked-path",
    "readonly-path",
    "console-fd",
];

/// `MODE:SIZE:ro|rw:PATH` (as `runsc create` passes it).
fn parse_tmpfs(v: &str) -> Result<(u32, u64, bool, String), String> {
    let bad = || format!("bad --tmpfs {v:?}");
    let mut it = v.splitn(4, ':');
    let mode = u32::from_str_radix(it.next().ok_or_else(bad)?, 8).map_err(|_| bad())?;
    let size = it
        .next()
        .ok_or_else(bad)?
        .parse::<u64>()
        .map_err(|_| bad())?;
    let ro = match it.next().ok_or_else(bad)? {
        "ro" => true,
        "rw" => false,
        _ => return Err(bad()),
    };
    let path = it.next().ok_or_else(bad)?;
    if !path.starts_with('/') {
        return Err(bad());
    }
    Ok((mode, size, ro, path.to_string()))
}

/// `FD:ro|rw:PATH` (as `runsc do` passes it).
fn parse_volume(v: &str) -> Result<(i32, bool, String), String> {
    let bad = || format!("bad --volume {v:?}");
    let (fd, rest) = v.split_once(':').ok_or_else(bad)?;
    let (mode, path) = rest.split_once(':').ok_or_else(bad)?;
    let fd = fd.parse::<i32>().ok().filter(|f| *f > 2).ok_or_else(bad)?;
    let ro = match mode {
        "ro" => true,
        "rw" => false,
        _ => return Err(bad()),
    };
    if !path.starts_with('/') {
        return Err(bad());
    }
    Ok((fd, ro, path.to_string()))
}

pub fn cmd_boot(g: &Global, args: &[String]) -> i32 {
    let mut b = match parse(args) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("runsc boot: {e}");
            return 2;
        }
    };
    // Only stdio and what we were handed by number stay open.
    let mut keep = vec![b.gofer_fd];
    keep.extend(b.volumes.iter().map(|v| v.0));
    keep.extend(b.net.iter().flat_map(|n| n.fds()));
    if let Some(o) = &b.oci {
        keep.extend(o.ready_fd);
        keep.extend(o.console_fd);
    }
    if let Err(e) = crate::confine::close_inherited_fds(&keep) {
        eprintln!("runsc boot: closing inherited descriptors: {e}");
        return 1;
    }
    crate::log::init(g.debug_log.as_deref(), g.debug, "boot");
    // A sentry bug must end the sandbox, not leave it hanging with a dead task
    // thread: log and abort (the stubs die with us).
    std::panic::set_hook(Box::new(|info| {
        tracing::error!("sentry panic: {info}");
        eprintln!("runsc: internal error: {info}");
        std::process::abort();
    }));
    // SAFETY: `runsc create` handed us this descriptor for our exclusive use.
    let mut ready = b
        .oci
        .as_mut()
        .and_then(|o| o.ready_fd.take())
        .map(|fd| unsafe { std::fs::File::from_raw_fd(fd) });
    match boot(g, b, &mut ready) {
        Ok(st) => st.shell_code(),
        Err(e) => {
            // `runsc create` reports the error (one line) to its caller.
            match ready.as_mut() {
                Some(r) => {
                    let _ = std::io::Write::write_all(r, e.to_string().as_bytes());
                }
                None => eprintln!("runsc: {e}"),
            }
            e.exit_code()
        }
    }
}

/// Why the sandbox could not start its command.
enum BootError {
    Setup(String),
    Exec { cmd: String, errno: Errno },
}

impl BootError {
    fn exit_code(&self) -> i32 {
        match self {
            BootError::Setup(_) => 1,
            BootError::Exec { errno, .. } if *errno == Errno::ENOENT => 127,
            BootError::Exec { .. } => 126,
        }
    }
}

impl std::fmt::Display for BootError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BootError::Setup(s) => write!(f, "sandbox setup failed: {s}"),
            BootError::Exec { cmd, errno } if *errno == Errno::ENOENT && !cmd.contains('/') => {
                write!(f, "exec: {cmd:?}: executable file not found in $PATH")
            }
            BootError::Exec { cmd, errno } => {
                write!(f, "exec: {cmd:?}: {}", errno.description().to_lowercase())
            }
        }
    }
}

fn setup<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> BootError {
    move |e| BootError::Setup(format!("{what}: {e}"))
}

fn host_creds() -> Credentials {
    // SAFETY: these identity calls cannot fail.
    let (uid, euid, gid, egid) = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    let mut groups = vec![0 as libc::gid_t; 256];
    // SAFETY: the buffer holds 256 entries.
    let n = unsafe { libc::getgroups(groups.len() as i32, groups.as_mut_ptr()) };
    groups.truncate(n.max(0) as usize);
    Credentials {
        uid,
        euid,
        suid: euid,
        fsuid: euid,
        gid,
        egid,
        sgid: egid,
        fsgid: egid,
        groups,
        // Root in the sandbox holds every capability (inside it only); other
        // users none, as after a Linux exec without file capabilities.
        cap_effective: if euid == 0 { CAP_FULL_SET } else { 0 },
        cap_permitted: if uid == 0 || euid == 0 {
            CAP_FULL_SET
        } else {
            0
        },
        cap_inheritable: 0,
        cap_bounding: CAP_FULL_SET,
        cap_ambient: 0,
        securebits: 0,
    }
}

/// The credentials of an OCI container's init (process.user): without
/// process.capabilities root holds every capability inside the sandbox, other
/// users none; with them, what runc leaves the exec'd init.
fn oci_creds(o: &OciBoot) -> Credentials {
    let root = o.uid == 0;
    let mut c = Credentials {
        uid: o.uid,
        euid: o.uid,
        suid: o.uid,
        fsuid: o.uid,
        gid: o.gid,
        egid: o.gid,
        sgid: o.gid,
        fsgid: o.gid,
        groups: o.groups.clone(),
        cap_effective: if root { CAP_FULL_SET } else { 0 },
        cap_permitted: if root { CAP_FULL_SET } else { 0 },
        cap_inheritable: 0,
        cap_bounding: CAP_FULL_SET,
        cap_ambient: 0,
        securebits: 0,
    };
    if let Some(caps) = &o.caps {
        crate::oci::caps::apply(&mut c, caps);
    }
    c
}

/// Starts the kernel's netstack over the links of `cfg` and makes netlink
/// and the interface ioctls report its configuration.
fn start_netstack(kernel: &Arc<Kernel>, cfg: crate::net::NetConfig) -> Result<(), BootError> {
    let mut links = Vec::new();
    for l in cfg.links {
        let device = netstack::FdLink::new(l.fd).map_err(setup("network link"))?;
        links.push(netstack::LinkConfig {
            name: l.name,
            mac: l.mac,
            mtu: l.mtu as usize,
            addrs: l.addrs,
            routes: l
                .routes
                .iter()
                .filter_map(|r| {
                    r.gateway.map(|gateway| netstack::RouteConfig {
                        dst: r.dst,
                        prefix: r.prefix,
                        gateway,
                    })
                })
                .collect(),
            device: Box::new(device),
        });
    }
    kernel
        .netstack
        .start(netstack::StackConfig { links })
        .map_err(setup("network stack"))?;
    if let Some(stack) = kernel.netstack.running() {
        kernel.net.set_info(Arc::new(sentry::net::StackInfo(stack)));
    }
    Ok(())
}

/// The sandbox's network interfaces (`--network=sandbox`); `None` for
/// `--network=none` and `host`, and an empty configuration (loopback only)
/// when the network namespace had no usable interface.
fn network(g: &Global, b: &mut BootArgs) -> Result<Option<crate::net::NetConfig>, BootError> {
    let arg = b.net.take();
    if g.network != "sandbox" {
        return Ok(None);
    }
    match arg {
        // SAFETY: runsc handed us these descriptors for our exclusive use,
        // and `take` leaves no other owner.
        Some(a) => unsafe { a.into_config() }
            .map(Some)
            .map_err(BootError::Setup),
        None => Ok(Some(crate::net::NetConfig::default())),
    }
}

/// The host's hostname (our UTS namespace is a copy of the caller's), or
/// "sandbox" when it cannot be read.
fn host_hostname() -> String {
    // SAFETY: uname writes into the zeroed struct we pass.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return "sandbox".to_string();
    }
    let b: Vec<u8> = u
        .nodename
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    match String::from_utf8(b) {
        Ok(s) if !s.is_empty() => s,
        _ => "sandbox".to_string(),
    }
}

fn boot(
    g: &Global,
    mut b: BootArgs,
    ready: &mut Option<std::fs::File>,
) -> Result<ExitStatus, BootError> {
    // SAFETY: the parent handed us this descriptor for our exclusive use.
    let sock = unsafe { OwnedFd::from_raw_fd(b.gofer_fd) };
    let net = network(g, &mut b)?;
    let client = Arc::new(gofer::Client::new(sock));
    // Everything the sentry needs from the host is opened (or read) before it
    // confines itself: the control socket, the exit-status file, the working
    // directory's name, the caller's identity, the host facts /proc shows.
    let control = match &b.oci {
        Some(o) => Some(
            crate::oci::control::bind(std::path::Path::new(&o.control))
                .map_err(setup("control socket"))?,
        ),
        None => None,
    };
    if let Some(o) = &b.oci {
        crate::oci::boot::open_exit_file(&o.exit_file).map_err(setup("exit-status file"))?;
    }
    let cwd = match &b.cwd {
        Some(c) => c.clone(),
        None => std::env::current_dir()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "/".into()),
    };
    sentry::procfs::cpu_count();
    // Without --total-memory (or a spec limit), the sandbox may use 3/4 of the
    // host's memory: a workload that fills its memory (or a memfd) gets
    // ENOMEM/ENOSPC or an in-sandbox OOM kill, never the host's OOM killer.
    let host_memory = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let kb: u64 = m
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb * 1024)
    });
    // `runsc do`'s workload runs as its caller (the sentry is not, soon).
    let creds = match &b.oci {
        Some(o) => oci_creds(o),
        None => host_creds(),
    };
    // /dev/kvm is a host path: opened (and the choice of platform made) while
    // the sentry still sees the host's tree.
    let kvm = choose_kvm(&g.platform)?;
    // Before the platform exists, so that its stub processes inherit the
    // confinement (and have no capability the sentry, their tracer, lacks).
    crate::confine::confine().map_err(BootError::Setup)?;
    if b.die_with_parent {
        // After the last credential change (which would clear it): a
        // `runsc do` killed by anything takes its sandbox along (and the
        // veth of --network=sandbox with its namespace).
        // SAFETY: prctl on our own process with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) } != 0 {
            return Err(BootError::Setup("PR_SET_PDEATHSIG".into()));
        }
    }
    crate::faults::watch_gofer(&client, "/");
    let memory_limit = g.total_memory.or(host_memory.map(|h| h / 4 * 3));
    let mf_size = match kvm {
        KvmChoice::No => platform::memfile::DEFAULT_SIZE,
        _ => platform::kvm::memory_file_size(memory_limit, platform::memfile::DEFAULT_SIZE),
    };
    let mf = Arc::new(MemoryFile::new(mf_size).map_err(setup("memory file"))?);
    // tmpfs and memfd data live in the same memory file, so that shared
    // mappings map file pages directly.
    fs::pagestore::set_memory_file(mf.clone());
    let platform: Arc<dyn Platform> = match kvm {
        KvmChoice::No => platform::ptrace::Ptrace::new(mf).map_err(setup("ptrace platform"))?,
        KvmChoice::Required => Arc::new(
            platform::kvm::KvmPlatform::new(mf)
                .map_err(|e| BootError::Setup(format!("--platform=kvm: {e}")))?,
        ),
        KvmChoice::IfItWorks => match platform::kvm::KvmPlatform::new(mf.clone()) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                tracing::info!("--platform=auto: kvm unusable ({e}); using ptrace");
                platform::ptrace::Ptrace::new(mf).map_err(setup("ptrace platform"))?
            }
        },
    };
    tracing::debug!("platform: {}", platform.name());
    // The root: the host's tree (read-only) under an in-memory overlay, so the
    // workload may write anywhere without touching the host.
    // An OCI container's root is the bundle's rootfs itself, written through
    // the gofer unless root.readonly.
    let vfs = match &b.oci {
        Some(o) => fs::Vfs::new_with_remote_root(client, o.root_read_only),
        None => fs::Vfs::new_with_overlay_root(client, fs::tmpfs::DEFAULT_LIMIT),
    }
    .map_err(setup("mounting the root"))?;
    if b.private_tmp {
        vfs.mount_private_tmp();
    }
    let hostname = b
        .oci
        .as_ref()
        .map(|o| o.hostname.clone().unwrap_or_else(|| "sandbox".to_string()))
        // `runsc do` keeps the host's hostname, as gVisor's do (its spec's
        // hostname is os.Hostname()): names in the host's /etc/hosts resolve.
        .unwrap_or_else(host_hostname);
    let kernel =
        Kernel::new_with_hostname(platform, vfs.clone(), syscalls::table(), g.strace, hostname);
    crate::faults::set_kernel(&kernel);
    let _ = kernel.network.set(match g.network.as_str() {
        "host" => sentry::kernel::NetworkMode::Host,
        "sandbox" => sentry::kernel::NetworkMode::Sandbox,
        _ => sentry::kernel::NetworkMode::None,
    });
    // --network=sandbox: the links taken over, driven by the sandbox's own
    // stack from now on (started here so that it answers ARP and
    // connections before the workload makes a socket).
    if let Some(cfg) = net.filter(|c| !c.links.is_empty()) {
        start_netstack(&kernel, cfg)?;
    }
    if let Some(m) = memory_limit {
        kernel.set_memory_limit(m);
    }
    kernel
        .limits
        .set_max_tasks(g.max_tasks.unwrap_or(0).try_into().unwrap_or(usize::MAX));
    if let Some(d) = b.oci.as_ref().and_then(|o| o.domainname.clone()) {
        *kernel.domainname.lock().unwrap() = d;
    }
    if let Some((lo, hi)) = b.oci.as_ref().and_then(|o| o.ping_group_range) {
        kernel.net.set_ping_group_range(lo, hi);
    }
    // The sentry's /proc and /sys cover the empty directories the VFS mounted.
    vfs.mount_under_root(b"proc", sentry::procfs::new_procfs(&kernel), false);
    vfs.mount_under_root(b"sys", sentry::procfs::sysfs_root(), true);
    // Volumes and tmpfs mounts last, so that nothing mounted later covers them.
    let tmpfs = b.oci.as_ref().map(|o| o.tmpfs.as_slice()).unwrap_or(&[]);
    mount_volumes(&vfs, &b.volumes, tmpfs)?;
    if let Some(o) = &b.oci {
        crate::oci::paths::apply(&vfs, &o.masked, &o.readonly).map_err(BootError::Setup)?;
    }

    let fcreds = sentry::exec::fs_creds(&creds);
    let fsctx = fs::FsContext::new(vfs.root());
    if let Some(m) = b.oci.as_ref().and_then(|o| o.umask) {
        fsctx.set_umask(m & 0o777);
    }
    let enter = || {
        vfs.walk(
            &fsctx,
            &fcreds,
            &vfs.root(),
            cwd.as_bytes(),
            &fs::WalkOpts::follow(),
        )
        .and_then(|loc| vfs.check_chdir(&fcreds, &loc).map(|_| loc))
    };
    let mut entered = enter();
    if b.oci.is_some() && matches!(entered, Err(Errno::ENOENT)) {
        // As runc: a missing process.cwd is made (0755, by root).
        let mut p = Vec::new();
        for comp in cwd.split('/').filter(|c| !c.is_empty()) {
            p.push(b'/');
            p.extend_from_slice(comp.as_bytes());
            let _ = vfs.make_node_at(
                &fsctx,
                &fs::Creds::root(),
                &vfs.root(),
                &p,
                fs::vfs::NewNode::Dir { mode: 0o755 },
            );
        }
        entered = enter();
    }
    match entered {
        Ok(loc) => fsctx.set_cwd(loc),
        Err(e) => tracing::warn!("cannot enter working directory {cwd}: {e}; using /"),
    }
    let fds = fs::FdTable::new();
    // process.terminal: init's stdio is a sandbox pty bridged to the host's.
    let mut console = None;
    if let Some(fd) = b.oci.as_ref().and_then(|o| o.console_fd) {
        // SAFETY: `runsc create` handed us this descriptor for our exclusive use.
        let host = unsafe { OwnedFd::from_raw_fd(fd) };
        // Init (the first pid) leads session 1.
        let (replica, bridge) =
            crate::oci::console::sandbox_console(&vfs, host, creds.uid, creds.gid, 1)
                .map_err(BootError::Setup)?;
        vfs.devpts().set_console(replica.clone());
        for fd in 0..3 {
            fds.insert_at(fd, replica.clone(), false, u64::MAX)
                .map_err(setup("stdio"))?;
        }
        console = Some(bridge);
    }
    for (fd, file) in fs::host::HostFile::stdio()
        .into_iter()
        .filter(|_| console.is_none())
    {
        // /dev/console is the initial stdout when that is a terminal (a
        // container started with a terminal); otherwise there is none.
        if fd == 1 && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            vfs.devpts().set_console(file.clone());
        }
        fds.insert_at(fd, file, false, u64::MAX)
            .map_err(setup("stdio"))?;
    }
    let envp: Vec<Vec<u8>> = std::env::vars_os()
        .filter(|(k, _)| k != crate::seccomp_sentry::MODE_ENV)
        .map(|(k, v)| {
            let mut kv: OsString = k;
            kv.push("=");
            kv.push(v);
            kv.into_vec()
        })
        .collect();
    let argv: Vec<Vec<u8>> = b.argv.iter().map(|a| a.as_bytes().to_vec()).collect();
    let cmd = b.argv[0].clone();
    let path = resolve_command(&kernel, &fsctx, &fcreds, &cmd, &envp).map_err(|errno| {
        BootError::Exec {
            cmd: cmd.clone(),
            errno,
        }
    })?;

    // The first task runs on its own host thread: that thread creates (and so
    // traces) the task's stub process. The sandbox lasts as long as init.
    let k = kernel.clone();
    let (tx, rx) = std::sync::mpsc::channel::<Result<i32, BootError>>();
    // An OCI container's init waits here for "start".
    let gate = Arc::new(crate::oci::boot::Gate::default());
    let task_gate = b.oci.is_some().then(|| gate.clone());
    let rlimits = b
        .oci
        .as_ref()
        .map(|o| o.rlimits.clone())
        .unwrap_or_default();
    let no_new_privs = b.oci.as_ref().is_some_and(|o| o.no_new_privs);
    // The task thread waits for `go`: the seccomp filter first.
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("task-1".into())
        .spawn(move || {
            let stack = 8 << 20;
            let image = match sentry::exec::load_image(
                &k,
                &fsctx,
                &creds,
                no_new_privs,
                &path,
                argv,
                envp,
                stack,
            ) {
                Ok(i) => i,
                Err(errno) => {
                    let _ = tx.send(Err(BootError::Exec {
                        cmd: cmd.clone(),
                        errno,
                    }));
                    return;
                }
            };
            let mut task = match Task::new_init(k, image.mm.clone(), fsctx, fds, creds) {
                Ok(t) => t,
                Err(e) => {
                    let _ = tx.send(Err(BootError::Setup(format!(
                        "creating the first task: {e}"
                    ))));
                    return;
                }
            };
            task.no_new_privs = no_new_privs;
            task.exec(image);
            for (r, cur, max) in rlimits {
                task.rlimits[r as usize] = abi::linux::Rlimit { cur, max };
            }
            let _ = tx.send(Ok(task.tgid));
            // Not one workload instruction before the sentry is confined.
            if go_rx.recv().is_err() {
                return;
            }
            if let Some(g) = task_gate {
                g.wait_start();
            }
            task.run();
        })
        .map_err(setup("spawning the task thread"))?;
    let init = rx
        .recv()
        .map_err(|_| BootError::Setup("task thread died".into()))??;
    // Only an OCI container has a control socket.
    let Some(control) = control else {
        install_seccomp(&crate::seccomp_sentry::Options {
            host_network: g.network == "host",
            kvm: kernel.platform.name() == "kvm",
            ..Default::default()
        })?;
        let _ = go_tx.send(());
        return Ok(kernel.wait_init());
    };
    crate::oci::boot::serve_control(&kernel, gate, init, control)
        .map_err(setup("control socket"))?;
    // Confined before "ready": `start` cannot come earlier. The exit file
    // was opened before the sentry confined itself (no rename needed).
    install_seccomp(&crate::seccomp_sentry::Options {
        state_dir_fd: None,
        host_network: g.network == "host",
        kvm: kernel.platform.name() == "kvm",
    })?;
    let _ = go_tx.send(());
    if let Some(mut r) = ready.take() {
        std::io::Write::write_all(&mut r, b"ok\n").map_err(setup("reporting readiness"))?;
    }
    let st = kernel.wait_init();
    if let Some(c) = console {
        c.finish();
    }
    crate::oci::boot::record_exit(st.shell_code());
    Ok(st)
}

/// Whether the sentry runs its workload in a KVM virtual machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KvmChoice {
    /// `--platform=ptrace`, or `auto` where KVM is missing or slower.
    No,
    /// `--platform=kvm`: a failure to create the VM is the sandbox's failure.
    Required,
    /// `--platform=auto` on a host whose KVM looks right: ptrace if the VM
    /// cannot be made after all.
    IfItWorks,
}

/// Resolves `--platform` before confinement, opening /dev/kvm if KVM may be
/// used. `auto` takes KVM where /dev/kvm opens and the host's KVM has
/// hardware virtualisation; on a PVM host (software-emulated ring changes,
/// see `platform::kvm::host_is_pvm`) ptrace is several times faster, so
/// `auto` keeps ptrace there.
fn choose_kvm(platform: &str) -> Result<KvmChoice, BootError> {
    match platform {
        "kvm" => {
            platform::kvm::preopen()
                .map_err(|e| BootError::Setup(format!("--platform=kvm: {e}")))?;
            Ok(KvmChoice::Required)
        }
        "auto" if !platform::kvm::host_is_pvm() => match platform::kvm::preopen() {
            Ok(()) => Ok(KvmChoice::IfItWorks),
            Err(e) => {
                tracing::debug!("--platform=auto: {e}; using ptrace");
                Ok(KvmChoice::No)
            }
        },
        _ => Ok(KvmChoice::No),
    }
}

/// Installs the sentry's seccomp allow-list on all its threads: everything it
/// will need is open, and the workload has not run yet.
fn install_seccomp(opts: &crate::seccomp_sentry::Options) -> Result<(), BootError> {
    // glibc's free() in a thread arena shrinks the heap past the trim
    // threshold, and the first shrink opens /proc/sys/vm/overcommit_memory
    // (check_may_shrink_heap): an openat the filter kills. Fixed thresholds
    // (which also stop glibc's dynamic adjustment) keep large blocks in
    // mmap (munmap on free) and never trim heaps, so that open never comes.
    // SAFETY: mallopt only sets allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
    let violation = crate::seccomp_sentry::Violation::from_env();
    crate::seccomp_sentry::install(opts, violation).map_err(BootError::Setup)?;
    tracing::debug!("sentry seccomp filter installed ({violation:?} on violation)");
    Ok(())
}

/// Mounts each `--volume` gofer's tree (writable unless `ro`) and each
/// `--tmpfs` at its path, shallower paths first so that a mount inside another
/// lands on top of it.
fn mount_volumes(
    vfs: &fs::Vfs,
    volumes: &[(i32, bool, String)],
    tmpfs: &[(u32, u64, bool, String)],
) -> Result<(), BootError> {
    enum M {
        Vol(i32),
        Tmp(u32, u64),
    }
    let mut all: Vec<(M, bool, &str)> = volumes
        .iter()
        .map(|(fd, ro, p)| (M::Vol(*fd), *ro, p.as_str()))
        .chain(
            tmpfs
                .iter()
                .map(|(mode, size, ro, p)| (M::Tmp(*mode, *size), *ro, p.as_str())),
        )
        .collect();
    all.sort_by_key(|(_, _, p)| p.split('/').filter(|c| !c.is_empty()).count());
    for (m, ro, path) in all {
        let root: Arc<dyn fs::Inode> = match m {
            M::Vol(fd) => {
                // SAFETY: our parent handed us this descriptor for our exclusive use.
                let sock = unsafe { OwnedFd::from_raw_fd(fd) };
                let client = Arc::new(gofer::Client::new(sock));
                crate::faults::watch_gofer(&client, path);
                fs::remote::RemoteInode::mount_root(client, ro)
                    .map_err(|e| BootError::Setup(format!("volume {path}: {e}")))?
            }
            M::Tmp(mode, size) => {
                let limit = if size == 0 {
                    fs::tmpfs::DEFAULT_LIMIT
                } else {
                    size
                };
                fs::tmpfs::TmpFs::new_root(mode & 0o7777, limit)
            }
        };
        // A gofer serving a single file (an OCI bind mount of a file).
        if root.attr().is_regular() {
            vfs.mount_file_at_path(path.as_bytes(), root, ro)
        } else {
            vfs.mount_at_path(path.as_bytes(), root, ro)
        }
        .map_err(|e| BootError::Setup(format!("mount {path}: {e}")))?;
    }
    Ok(())
}

/// Finds `cmd` as execvp(3) does: a name with a slash is used as is, others are
/// looked up in $PATH of the workload's environment.
pub(crate) fn resolve_command(
    kernel: &Arc<Kernel>,
    ctx: &fs::FsContext,
    creds: &fs::Creds,
    cmd: &str,
    envp: &[Vec<u8>],
) -> Result<Vec<u8>, Errno> {
    if cmd.is_empty() {
        return Err(Errno::ENOENT);
    }
    if cmd.contains('/') {
        return Ok(cmd.as_bytes().to_vec());
    }
    let path_var = envp
        .iter()
        .find_map(|e| e.strip_prefix(b"PATH="))
        .map(|p| p.to_vec())
        .unwrap_or_else(|| b"/usr/local/bin:/usr/bin:/bin".to_vec());
    let mut err = Errno::ENOENT;
    for dir in path_var.split(|&c| c == b':') {
        let dir = if dir.is_empty() { &b"."[..] } else { dir };
        let mut cand = dir.to_vec();
        cand.push(b'/');
        cand.extend_from_slice(cmd.as_bytes());
        match kernel.vfs.open_exec(ctx, creds, &cand) {
            Ok(_) => return Ok(cand),
            Err(Errno::EACCES) => err = Errno::EACCES,
            Err(_) => {}
        }
    }
    Err(err)
}
