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
    cwd: Option<String>,
    argv: Vec<String>,
}

fn parse(args: &[String]) -> Result<BootArgs, String> {
    let mut gofer_fd = None;
    let mut cwd = None;
    let mut private_tmp = false;
    let mut volumes = Vec::new();
    let mut i = 0;
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
            Some(("volume", Some(v))) => volumes.push(parse_volume(v)?),
            _ => return Err(format!("bad argument {a:?}")),
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
        cwd,
        argv,
    })
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
    crate::log::init(g.debug_log.as_deref(), g.debug, "boot");
    // A sentry bug must end the sandbox, not leave it hanging with a dead task
    // thread: log and abort (the stubs die with us).
    std::panic::set_hook(Box::new(|info| {
        tracing::error!("sentry panic: {info}");
        eprintln!("runsc: internal error: {info}");
        std::process::abort();
    }));
    let b = match parse(args) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("runsc boot: {e}");
            return 2;
        }
    };
    match boot(g, b) {
        Ok(st) => st.shell_code(),
        Err(e) => {
            eprintln!("runsc: {e}");
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

fn boot(g: &Global, b: BootArgs) -> Result<ExitStatus, BootError> {
    // SAFETY: the parent handed us this descriptor for our exclusive use.
    let sock = unsafe { OwnedFd::from_raw_fd(b.gofer_fd) };
    let client = Arc::new(gofer::Client::new(sock));
    let mf =
        Arc::new(MemoryFile::new(platform::memfile::DEFAULT_SIZE).map_err(setup("memory file"))?);
    // tmpfs and memfd data live in the same memory file, so that shared
    // mappings map file pages directly.
    fs::pagestore::set_memory_file(mf.clone());
    let platform: Arc<dyn Platform> =
        platform::ptrace::Ptrace::new(mf).map_err(setup("ptrace platform"))?;
    // The root: the host's tree (read-only) under an in-memory overlay, so the
    // workload may write anywhere without touching the host.
    let vfs = fs::Vfs::new_with_overlay_root(client, fs::tmpfs::DEFAULT_LIMIT)
        .map_err(setup("mounting the root"))?;
    if b.private_tmp {
        vfs.mount_private_tmp();
    }
    let kernel = Kernel::new(platform, vfs.clone(), syscalls::table(), g.strace);
    // The sentry's /proc and /sys cover the empty directories the VFS mounted.
    vfs.mount_under_root(b"proc", sentry::procfs::new_procfs(&kernel), false);
    vfs.mount_under_root(b"sys", sentry::procfs::sysfs_root(), true);
    // Volumes last, so that nothing mounted later covers them.
    mount_volumes(&vfs, &b.volumes)?;

    let creds = host_creds();
    let fcreds = sentry::exec::fs_creds(&creds);
    let cwd = match &b.cwd {
        Some(c) => c.clone(),
        None => std::env::current_dir()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "/".into()),
    };
    let fsctx = fs::FsContext::new(vfs.root());
    let entered = vfs
        .walk(
            &fsctx,
            &fcreds,
            &vfs.root(),
            cwd.as_bytes(),
            &fs::WalkOpts::follow(),
        )
        .and_then(|loc| vfs.check_chdir(&fcreds, &loc).map(|_| loc));
    match entered {
        Ok(loc) => fsctx.set_cwd(loc),
        Err(e) => tracing::warn!("cannot enter working directory {cwd}: {e}; using /"),
    }
    let fds = fs::FdTable::new();
    for (fd, file) in fs::host::HostFile::stdio() {
        // /dev/console is the initial stdout when that is a terminal (a
        // container started with a terminal); otherwise there is none.
        if fd == 1 && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            vfs.devpts().set_console(file.clone());
        }
        fds.insert_at(fd, file, false, u64::MAX)
            .map_err(setup("stdio"))?;
    }
    let envp: Vec<Vec<u8>> = std::env::vars_os()
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
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), BootError>>();
    std::thread::Builder::new()
        .name("task-1".into())
        .spawn(move || {
            let stack = 8 << 20;
            let image = match sentry::exec::load_image(&k, &fsctx, &creds, &path, argv, envp, stack)
            {
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
            task.exec(image);
            let _ = tx.send(Ok(()));
            task.run();
        })
        .map_err(setup("spawning the task thread"))?;
    rx.recv()
        .map_err(|_| BootError::Setup("task thread died".into()))??;
    Ok(kernel.wait_init())
}

/// Mounts each `--volume` gofer's tree at its path (writable unless `ro`),
/// shallower paths first so that a volume inside another lands on top of it.
fn mount_volumes(vfs: &fs::Vfs, volumes: &[(i32, bool, String)]) -> Result<(), BootError> {
    let mut volumes: Vec<&(i32, bool, String)> = volumes.iter().collect();
    volumes.sort_by_key(|(_, _, p)| p.split('/').filter(|c| !c.is_empty()).count());
    for (fd, ro, path) in volumes {
        // SAFETY: `runsc do` handed us this descriptor for our exclusive use.
        let sock = unsafe { OwnedFd::from_raw_fd(*fd) };
        let client: Arc<dyn fs::RemoteFs> = Arc::new(gofer::Client::new(sock));
        let root = fs::remote::RemoteInode::mount_root(client, *ro)
            .map_err(|e| BootError::Setup(format!("volume {path}: {e}")))?;
        vfs.mount_at_path(path.as_bytes(), root, *ro)
            .map_err(|e| BootError::Setup(format!("volume {path}: {e}")))?;
    }
    Ok(())
}

/// Finds `cmd` as execvp(3) does: a name with a slash is used as is, others are
/// looked up in $PATH of the workload's environment.
fn resolve_command(
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
