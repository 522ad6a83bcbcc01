//! `runsc`: the container runtime binary. It parses the command line and hands
//! off to the sandbox lifecycle code; it also re-executes itself as the hidden
//! `runsc boot` (the sentry) and `runsc gofer` (the file proxy).

mod boot;
mod cli;
mod confine;
mod faults;
mod features;
mod gofer_cmd;
mod gofer_confine;
mod install;
mod log;
mod net;
mod oci;
mod sandbox;
mod seccomp_gofer;
mod seccomp_sentry;
mod spec_cmd;
mod volume;

use std::process::ExitCode;

const USAGE: &str = "usage: runsc [global flags] <command> [args]

commands:
  do        run a command in a new sandbox with the host / as root (writes go to
            an in-memory overlay, never to the host)
            [--cwd=DIR] [--private-tmp: an empty tmpfs over /tmp]
            [--volume=HOST:CONTAINER[:ro]: bind-mount a host directory, repeatable] [--] CMD ARGS
  create    create a container from an OCI bundle: --bundle B [--pid-file F] ID
  start     start a created container: ID
  state     print a container's OCI state: ID
  kill      signal a container's init (or --all processes): [--all] ID [SIGNAL]
  delete    remove a container (--force: even if running): [--force] ID
  run       create, start and wait: --bundle B [--pid-file F] [--detach] ID
  wait      wait for a container's init and exit with its status: ID
  list      list containers: [--format table|json] [-q]
  exec      run a process in a running container: [--process P.json] [--detach]
            [--pid-file F] [--cwd DIR] [--env K=V]... [--user UID[:GID]] ID [CMD ARGS...]
  ps        list a container's processes: [--format table|json] ID
  pause     freeze a container's processes: ID
  resume    thaw them: ID
  events    a container's CPU, memory and pids usage as JSON: [--stats] [--interval D] ID
  update    change a running container's cgroup limits: [--resources FILE|-]
            [--memory N] [--memory-swap N] [--cpu-shares N] [--cpu-quota N] [--cpu-period N]
            [--cpuset-cpus S] [--cpuset-mems S] [--pids-limit N] ID
  spec      write a default config.json [--bundle DIR] [--rootless]
  features  print the OCI features document (JSON)
  install   register runsc in Docker's daemon.json
            [--config-file FILE (/etc/docker/daemon.json)] [--runtime NAME (runsc)] [-- RUNSC_FLAGS]
  uninstall remove it again [--config-file FILE] [--runtime NAME]
  version   print the version (also --version)

global flags:
  --platform=P          how workload code runs: ptrace (stub processes), kvm
                        (a KVM virtual machine; /dev/kvm), or auto (the
                        default: kvm where the host's KVM has hardware
                        virtualisation, else ptrace)
  --strace              print every syscall of the workload to stderr
  --debug-log=FILE      write the sandbox's log to FILE
  --debug               verbose logging
  --total-memory=SIZE   the sandbox's memory limit (K/M/G suffixes): ENOMEM or
                        an in-sandbox OOM kill beyond it
  --max-tasks=N         the most tasks (threads) in the sandbox (fork: EAGAIN)
  --network=MODE        none: loopback only (default for do); sandbox: the
                        network namespace's interfaces, driven by the sandbox's
                        own TCP/IP stack (default for create and run; do: a new
                        veth pair, root only); host: the host's sockets
  --root=DIR            container state (default /run/runsc)
  --log, --log-format   where errors of the OCI commands also go (text or json)
  --rootless            run the whole sandbox as an unprivileged host user in user
                        namespaces (implied when not run by root; as root: nobody)
  --overlay, --systemd-cgroup: accepted for runc compatibility
  --version             print the version";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (global, rest) = match cli::parse_global(&args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("runsc: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(cmd) = rest.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let sub = &rest[1..];
    // The OCI commands log to --debug-log too (one file per command with a
    // directory pattern): what an engine asked, and how it ended. Without
    // --debug-log they print their one-line errors themselves.
    let oci_cmd = !matches!(
        cmd.as_str(),
        "do" | "boot" | "gofer" | "seccomp-probe" | "spec" | "features" | "install" | "uninstall"
    );
    if oci_cmd && global.debug_log.is_some() {
        log::init(global.debug_log.as_deref(), global.debug, cmd);
        tracing::info!("runsc {}", args.join(" "));
    }
    let code = match cmd.as_str() {
        "do" => sandbox::cmd_do(&global, sub),
        "boot" => boot::cmd_boot(&global, sub),
        "gofer" => gofer_cmd::cmd_gofer(&global, sub),
        "seccomp-probe" => seccomp_sentry::cmd_probe(sub),
        "create" => oci::cmd_create(&global, sub),
        "start" => oci::cmd_start(&global, sub),
        "state" => oci::cmd_state(&global, sub),
        "kill" => oci::cmd_kill(&global, sub),
        "delete" => oci::cmd_delete(&global, sub),
        "run" => oci::cmd_run(&global, sub),
        "wait" => oci::cmd_wait(&global, sub),
        "list" => oci::cmd_list(&global, sub),
        "exec" => oci::exec::cmd_exec(&global, sub),
        "ps" => oci::ps::cmd_ps(&global, sub),
        "pause" => oci::pause::cmd_pause(&global, sub),
        "resume" => oci::pause::cmd_resume(&global, sub),
        "events" => oci::events::cmd_events(&global, sub),
        "update" => oci::update::cmd_update(&global, sub),
        "spec" => spec_cmd::cmd_spec(sub),
        "features" => features::cmd_features(sub),
        "install" => install::cmd_install(sub),
        "uninstall" => install::cmd_uninstall(sub),
        "--version" | "-version" | "-v" | "version" => {
            println!("{}", features::version_text());
            0
        }
        "help" | "--help" | "-help" | "-h" => {
            println!("{USAGE}");
            0
        }
        other => {
            eprintln!("runsc: unknown command {other:?}\n{USAGE}");
            2
        }
    };
    if oci_cmd && global.debug_log.is_some() {
        tracing::info!("{cmd}: exit status {code}");
    }
    ExitCode::from(code.clamp(0, 255) as u8)
}
