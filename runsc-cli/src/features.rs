//! `runsc features` (runc's `features`, the OCI runtime-spec features
//! document) and `runsc --version` / `runsc version`.
//!
//! The features document says what this runtime supports, not what runc
//! does. Notes on each claim:
//! - namespaces: every container is its own sandbox, so it always has its
//!   own pid, mount, ipc, uts, network and cgroup views, and its own user ids
//!   (the sentry keeps credentials itself); all seven types are accepted.
//! - capabilities: the sentry models all 41 (CAP_CHOWN..CAP_CHECKPOINT_RESTORE)
//!   for the workload; none of them are granted on the host.
//! - mountOptions: the options the sandbox's mounts honour or accept
//!   (propagation options are accepted: the sandbox has one mount namespace).
//! - cgroup: linux.resources are applied to the sandbox's host cgroup (v1
//!   and v2, cgroupfs); the systemd cgroup driver is not implemented.
//! - seccomp, apparmor, selinux: the spec's profiles/labels are not applied
//!   (the workload's syscalls never reach the host kernel; the sentry
//!   implements them), so these are reported disabled.
//! - checkpoint/restore: not supported.

use serde_json::{json, Value};

/// The runtime-spec version `--version` reports and `features` allows up to.
pub const SPEC_VERSION: &str = "1.1.0";
/// The oldest runtime-spec version accepted.
pub const SPEC_VERSION_MIN: &str = "1.0.0";
/// `git rev-parse --short HEAD` at build time, or "unknown".
pub const COMMIT: &str = env!("RUNSC_GIT_COMMIT");

/// What `runsc --version` prints (runc's layout).
pub fn version_text() -> String {
    format!(
        "runsc version {}\ncommit: {COMMIT}\nspec: {SPEC_VERSION}",
        env!("CARGO_PKG_VERSION")
    )
}

const HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "unbindable",
];

const NAMESPACES: &[&str] = &["cgroup", "ipc", "mount", "network", "pid", "user", "uts"];

/// Capability names by number (linux/capability.h), 0..=40.
pub const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The features document, in runc's field order.
pub fn features() -> Value {
    json!({
        "ociVersionMin": SPEC_VERSION_MIN,
        "ociVersionMax": SPEC_VERSION,
        "hooks": HOOKS,
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": CAPABILITIES,
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": false,
                "systemdUser": false,
                "rdma": false
            },
            "seccomp": {"enabled": false},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "dev.runsc.commit": COMMIT,
            "dev.runsc.version": env!("CARGO_PKG_VERSION")
        }
    })
}

/// `runsc features`: the document, 4-space indented (as runc prints it).
pub fn cmd_features(args: &[String]) -> i32 {
    if let Some(a) = args.first() {
        eprintln!("runsc features: unexpected argument {a:?} (usage: runsc features)");
        return 1;
    }
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(&features(), &mut ser).expect("serialising a JSON value");
    println!("{}", String::from_utf8_lossy(&out));
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_document() {
        let f = features();
        let keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "ociVersionMin",
                "ociVersionMax",
                "hooks",
                "mountOptions",
                "linux",
                "annotations"
            ]
        );
        assert_eq!(f["linux"]["seccomp"]["enabled"], false);
        assert_eq!(
            f["annotations"]["org.opencontainers.runc.checkpoint.enabled"],
            "false"
        );
        assert_eq!(CAPABILITIES.len(), 41);
        assert_eq!(CAPABILITIES[21], "CAP_SYS_ADMIN");
        assert_eq!(CAPABILITIES[40], "CAP_CHECKPOINT_RESTORE");
        let mut sorted = MOUNT_OPTIONS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, MOUNT_OPTIONS);
        // The default spec only uses namespaces and capabilities listed here.
        let spec = crate::spec_cmd::example();
        for ns in spec["linux"]["namespaces"].as_array().unwrap() {
            assert!(NAMESPACES.contains(&ns["type"].as_str().unwrap()));
        }
        for c in spec["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
        {
            assert!(CAPABILITIES.contains(&c.as_str().unwrap()));
        }
    }

    #[test]
    fn version() {
        let v = version_text();
        let lines: Vec<&str> = v.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("runsc version "));
        assert!(lines[1].starts_with("commit: ") && lines[1].len() > "commit: ".len());
        assert_eq!(lines[2], "spec: 1.1.0");
    }
}
