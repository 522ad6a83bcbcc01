//! The contents of procfs (and sysfs) files.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock, Weak};

use abi::linux::{S_IFCHR, S_IFIFO, S_IFMT, S_IFSOCK};
use abi::Errno;
use fs::inode::Inode;

use super::{Kind, Node, PidFile};
use crate::kernel::Kernel;
use crate::signal::{SIG_DFL, SIG_IGN};
use crate::task::TaskShared;

/// Clock ticks per second (USER_HZ).
const HZ: u64 = 100;

/// Host facts read once, before the sentry confines itself.
struct HostInfo {
    cpus: usize,
    cpuinfo: Vec<u8>,
    mem_total_kb: u64,
}

static HOST: OnceLock<HostInfo> = OnceLock::new();

fn host() -> &'static HostInfo {
    HOST.get_or_init(|| {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(1024);
        let raw = std::fs::read("/proc/cpuinfo").unwrap_or_default();
        // Keep the first `cpus` processor blocks, renumbered 0..cpus.
        let text = String::from_utf8_lossy(&raw);
        let mut out = String::new();
        for (i, block) in text.split("\n\n").filter(|b| !b.trim().is_empty()).take(cpus).enumerate() {
            for line in block.lines() {
                if line.starts_with("processor") {
                    let _ = writeln!(out, "processor\t: {i}");
                } else if line.starts_with("siblings") {
                    let _ = writeln!(out, "siblings\t: {cpus}");
                } else if line.starts_with("cpu cores") {
                    let _ = writeln!(out, "cpu cores\t: {cpus}");
                } else {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            out.push('\n');
        }
        if out.is_empty() {
            for i in 0..cpus {
                let _ = write!(out, "processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: unknown\nflags\t\t: fpu\n\n");
            }
        }
        // SAFETY: sysinfo only writes the struct it is given.
        let mem_total_kb = unsafe {
            let mut si: libc::sysinfo = std::mem::zeroed();
            if libc::sysinfo(&mut si) == 0 {
                si.totalram as u64 * si.mem_unit as u64 / 1024
            } else {
                4 << 20
            }
        };
        HostInfo {
            cpus,
            cpuinfo: out.into_bytes(),
            mem_total_kb,
        }
    })
}

/// The number of CPUs the sandbox reports.
pub fn cpu_count() -> usize {
    host().cpus
}

fn uuid() -> String {
    let mut b = [0u8; 16];
    platform::fill_random(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}\n",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn boot_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(uuid)
}

fn uptime(k: &Kernel) -> std::time::Duration {
    k.boot_time.elapsed()
}

fn btime(k: &Kernel) -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(uptime(k))
        .as_secs()
}

/// Renders a file's contents from kernel state.
pub(super) type Render = fn(&Kernel) -> Vec<u8>;

pub(super) const ROOT_ENTRIES: &[(&str, Render)] = &[
    ("cmdline", |_| b"BOOT_IMAGE=/vmlinuz-5.15.0 ro\n".to_vec()),
    ("cpuinfo", |_| host().cpuinfo.clone()),
    ("filesystems", |_| {
        b"nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tdevpts\nnodev\tmqueue\nnodev\tpipefs\nnodev\tsockfs\nnodev\toverlay\nnodev\t9p\n".to_vec()
    }),
    ("loadavg", |k| {
        let p = k.pids();
        let n = p.tasks.len();
        let last = p.tasks.keys().max().copied().unwrap_or(0);
        format!("0.00 0.00 0.00 1/{n} {last}\n").into_bytes()
    }),
    ("meminfo", meminfo),
    ("mounts", mounts),
    ("stat", stat),
    ("sys", |_| Vec::new()),
    ("uptime", |k| {
        let u = uptime(k).as_secs_f64();
        format!("{:.2} {:.2}\n", u, u * cpu_count() as f64).into_bytes()
    }),
    ("version", |_| {
        b"Linux version 5.15.0 (runsc@sandbox) (gcc version 12.2.0) #1 SMP runsc\n".to_vec()
    }),
];

pub(super) fn root_entry_is_dir(n: &str) -> bool {
    n == "sys"
}

fn meminfo(k: &Kernel) -> Vec<u8> {
    // With a memory limit, the sandbox's memory is the limit (as in a
    // container whose runtime virtualises meminfo).
    let (total, free) = match k.limits.memory_totals() {
        Some((t, f)) => (t / 1024, f / 1024),
        None => (host().mem_total_kb, host().mem_total_kb / 2),
    };
    let commit_limit = k.limits.memory().map_or(total, |m| {
        m.saturating_mul(crate::limits::OVERCOMMIT_RATIO) / 1024
    });
    let mut s = String::new();
    for (n, v) in [
        ("MemTotal", total),
        ("MemFree", free),
        ("MemAvailable", free),
        ("Buffers", 0),
        ("Cached", 0),
        ("SwapCached", 0),
        ("Active", 0),
        ("Inactive", 0),
        ("Active(anon)", 0),
        ("Inactive(anon)", 0),
        ("Active(file)", 0),
        ("Inactive(file)", 0),
        ("Unevictable", 0),
        ("Mlocked", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Dirty", 0),
        ("Writeback", 0),
        ("AnonPages", 0),
        ("Mapped", 0),
        ("Shmem", 0),
        ("CommitLimit", commit_limit),
        ("Committed_AS", k.limits.committed().unwrap_or(0) / 1024),
        ("VmallocTotal", 34359738367),
        ("VmallocUsed", 0),
        ("VmallocChunk", 0),
    ] {
        let _ = writeln!(s, "{:<16}{:>8} kB", format!("{n}:"), v);
    }
    s.into_bytes()
}

/// /proc/mounts as the current task sees it.
fn mounts(k: &Kernel) -> Vec<u8> {
    let ctx = crate::task::current_task()
        .and_then(|t| t.proc.lock().unwrap_or_else(|e| e.into_inner()).fs.clone());
    mount_table(k, ctx.as_deref(), false)
}

/// The mount options column: ro/rw and the per-mount flags.
fn mount_opts(m: &fs::vfs::Mount) -> String {
    let f = m.flags();
    let mut o = String::from(if m.read_only() { "ro" } else { "rw" });
    for (bit, name) in [
        (libc::MS_NOSUID, "nosuid"),
        (libc::MS_NODEV, "nodev"),
        (libc::MS_NOEXEC, "noexec"),
        (libc::MS_NOATIME, "noatime"),
        (libc::MS_NODIRATIME, "nodiratime"),
    ] {
        if f & bit != 0 {
            o.push(',');
            o.push_str(name);
        }
    }
    if f & (libc::MS_NOATIME | libc::MS_STRICTATIME) == 0 {
        o.push_str(",relatime");
    }
    o
}

/// Escapes a path for /proc/mounts (space, tab, newline, backslash as octal).
fn escape_mount_path(p: &[u8]) -> String {
    let mut out = String::new();
    for &b in p {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => {
                let _ = write!(out, "\\{:03o}", b);
            }
            _ => out.push(b as char),
        }
    }
    out
}

/// /proc/[pid]/mounts (`info`: mountinfo) for a task whose fs context is
/// `ctx`: the mounts below its root, paths relative to it.
pub(super) fn mount_table(k: &Kernel, ctx: Option<&fs::FsContext>, info: bool) -> Vec<u8> {
    let vfs = &k.vfs;
    let root_ctx;
    let ctx = match ctx {
        Some(c) => c,
        None => {
            root_ctx = fs::FsContext::new(vfs.root());
            &root_ctx
        }
    };
    let mut s = String::new();
    for m in vfs.mounts() {
        let Some(point) = vfs.path_below_root(ctx, &m.root_location()) else {
            continue;
        };
        let point = escape_mount_path(&point);
        let source = escape_mount_path(m.source());
        let opts = mount_opts(&m);
        if !info {
            let _ = writeln!(s, "{source} {point} {} {opts} 0 0", m.fstype());
            continue;
        }
        // The mount's root within its file system (not "/" for bind mounts).
        let mut parts = Vec::new();
        let mut d = m.root_location().dentry;
        while let Some(p) = d.parent_dentry() {
            parts.push(d.name());
            d = p;
        }
        let mut root = String::new();
        for p in parts.iter().rev() {
            root.push('/');
            root.push_str(&escape_mount_path(p));
        }
        if root.is_empty() {
            root.push('/');
        }
        let dev = m.root_location().stat().map(|st| st.dev).unwrap_or(0);
        let (major, minor) = (abi::linux::dev_major(dev), abi::linux::dev_minor(dev));
        let parent = m.parent_id().unwrap_or(m.id());
        let ro = if m.read_only() { "ro" } else { "rw" };
        let _ = writeln!(
            s,
            "{} {parent} {major}:{minor} {root} {point} {opts} - {} {source} {ro}",
            m.id(),
            m.fstype()
        );
    }
    s.into_bytes()
}

fn stat(k: &Kernel) -> Vec<u8> {
    let up = uptime(k);
    let ticks = up.as_millis() as u64 / (1000 / HZ);
    let n = cpu_count() as u64;
    let mut s = String::new();
    let _ = writeln!(s, "cpu  0 0 0 {} 0 0 0 0 0 0", ticks * n);
    for i in 0..n {
        let _ = writeln!(s, "cpu{i} 0 0 0 {ticks} 0 0 0 0 0 0");
    }
    let (procs, running) = {
        let p = k.pids();
        (p.tasks.len(), 1)
    };
    let _ = writeln!(s, "intr 0");
    let _ = writeln!(s, "ctxt 0");
    let _ = writeln!(s, "btime {}", btime(k));
    let _ = writeln!(s, "processes {procs}");
    let _ = writeln!(s, "procs_running {running}");
    let _ = writeln!(s, "procs_blocked 0");
    let _ = writeln!(s, "softirq 0 0 0 0 0 0 0 0 0 0 0");
    s.into_bytes()
}

/// A static directory of generated files.
fn sdir(k: &Weak<Kernel>, ents: Vec<(&'static str, Arc<Node>)>) -> Arc<Node> {
    Node::new(k, Kind::Static(Arc::new(ents)))
}

fn g(k: &Weak<Kernel>, f: fn(&Kernel) -> Vec<u8>) -> Arc<Node> {
    Node::new(k, Kind::Global(f))
}

fn proc_sys(k: &Weak<Kernel>) -> Arc<Node> {
    sdir(
        k,
        vec![
            (
                "fs",
                sdir(
                    k,
                    vec![
                        ("file-max", g(k, |_| b"9223372036854775807\n".to_vec())),
                        ("nr_open", g(k, |_| b"1048576\n".to_vec())),
                    ],
                ),
            ),
            (
                "kernel",
                sdir(
                    k,
                    vec![
                        ("cap_last_cap", g(k, |_| b"40\n".to_vec())),
                        (
                            "domainname",
                            g(k, |k| {
                                let d = k.domainname.lock().unwrap_or_else(|e| e.into_inner());
                                format!("{d}\n").into_bytes()
                            }),
                        ),
                        (
                            "hostname",
                            g(k, |k| {
                                let h = k.hostname.lock().unwrap_or_else(|e| e.into_inner());
                                format!("{h}\n").into_bytes()
                            }),
                        ),
                        ("ngroups_max", g(k, |_| b"65536\n".to_vec())),
                        ("osrelease", g(k, |_| b"5.15.0\n".to_vec())),
                        ("ostype", g(k, |_| b"Linux\n".to_vec())),
                        ("overflowgid", g(k, |_| b"65534\n".to_vec())),
                        ("overflowuid", g(k, |_| b"65534\n".to_vec())),
                        ("pid_max", g(k, |_| b"4194304\n".to_vec())),
                        (
                            "random",
                            sdir(
                                k,
                                vec![
                                    ("boot_id", g(k, |_| boot_id().as_bytes().to_vec())),
                                    ("uuid", g(k, |_| uuid().into_bytes())),
                                ],
                            ),
                        ),
                        ("threads-max", g(k, |_| b"63000\n".to_vec())),
                        ("version", g(k, |_| b"#1 SMP runsc\n".to_vec())),
                        (
                            "yama",
                            sdir(k, vec![("ptrace_scope", g(k, |_| b"0\n".to_vec()))]),
                        ),
                    ],
                ),
            ),
            ("net", proc_sys_net(k)),
            (
                "vm",
                sdir(
                    k,
                    vec![
                        ("max_map_count", g(k, |_| b"65530\n".to_vec())),
                        ("mmap_min_addr", g(k, |_| b"65536\n".to_vec())),
                        ("overcommit_memory", g(k, |_| b"0\n".to_vec())),
                    ],
                ),
            ),
        ],
    )
}

fn sysctl(k: &Weak<Kernel>, get: fn(&Kernel) -> Vec<u8>, set: super::Setter) -> Arc<Node> {
    Node::new(k, Kind::Sysctl(get, set))
}

/// A fixed sysctl value.
fn fixed(k: &Weak<Kernel>, v: &'static str) -> Arc<Node> {
    macro_rules! f {
        ($($s:literal),*) => {
            match v {
                $($s => g(k, |_| concat!($s, "\n").as_bytes().to_vec()),)*
                _ => unreachable!("sysctl value {v}"),
            }
        };
    }
    f!(
        "0",
        "1",
        "2",
        "9",
        "60",
        "64",
        "75",
        "1024",
        "4096",
        "7200",
        "212992",
        "cubic",
        "reno cubic",
        "32768\t60999",
        "4096\t131072\t6291456",
        "4096\t16384\t4194304"
    )
}

/// Parses a write to net.ipv4.ping_group_range as Linux's
/// ipv4_ping_group_range: one or two gids (a missing second one keeps the
/// old value), each at most 4294967294; high < low means "1 0".
fn set_ping_group_range(k: &Kernel, buf: &[u8]) -> Result<(), Errno> {
    let text = std::str::from_utf8(buf).map_err(|_| Errno::EINVAL)?;
    let (mut lo, mut hi) = k.net.ping_group_range();
    let mut n = 0;
    for w in text.split_ascii_whitespace() {
        if n == 2 || w.starts_with('-') || w.starts_with('+') {
            return Err(Errno::EINVAL);
        }
        let v: u64 = w.parse().map_err(|_| Errno::EINVAL)?;
        if v > crate::net::PING_GROUP_MAX as u64 {
            return Err(Errno::EINVAL);
        }
        if n == 0 {
            lo = v as u32;
        } else {
            hi = v as u32;
        }
        n += 1;
    }
    if n == 0 {
        return Ok(());
    }
    k.net.set_ping_group_range(lo, hi);
    Ok(())
}

/// `name` as a &'static str: interface names, kept once each (a sandbox has
/// a handful).
fn intern(name: &str) -> &'static str {
    static NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut v = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = v.iter().find(|n| **n == name) {
        return n;
    }
    let n: &'static str = Box::leak(name.to_string().into_boxed_str());
    v.push(n);
    n
}

/// /proc/sys/net: Linux's defaults for a new network namespace (the values
/// the sandbox's stack uses), and net.ipv4.ping_group_range.
fn proc_sys_net(k: &Weak<Kernel>) -> Arc<Node> {
    let conf = |k: &Weak<Kernel>| {
        sdir(
            k,
            vec![
                ("disable_ipv6", fixed(k, "0")),
                ("forwarding", fixed(k, "0")),
                ("hop_limit", fixed(k, "64")),
            ],
        )
    };
    sdir(
        k,
        vec![
            (
                "core",
                sdir(
                    k,
                    vec![
                        ("rmem_default", fixed(k, "212992")),
                        ("rmem_max", fixed(k, "212992")),
                        ("somaxconn", fixed(k, "4096")),
                        ("wmem_default", fixed(k, "212992")),
                        ("wmem_max", fixed(k, "212992")),
                    ],
                ),
            ),
            (
                "ipv4",
                sdir(
                    k,
                    vec![
                        ("ip_default_ttl", fixed(k, "64")),
                        ("ip_forward", fixed(k, "0")),
                        ("ip_local_port_range", fixed(k, "32768\t60999")),
                        ("ip_nonlocal_bind", fixed(k, "0")),
                        ("ip_unprivileged_port_start", fixed(k, "1024")),
                        (
                            "ping_group_range",
                            sysctl(
                                k,
                                |k| {
                                    let (lo, hi) = k.net.ping_group_range();
                                    format!("{lo}\t{hi}\n").into_bytes()
                                },
                                set_ping_group_range,
                            ),
                        ),
                        ("tcp_available_congestion_control", fixed(k, "reno cubic")),
                        ("tcp_congestion_control", fixed(k, "cubic")),
                        ("tcp_fin_timeout", fixed(k, "60")),
                        ("tcp_keepalive_intvl", fixed(k, "75")),
                        ("tcp_keepalive_probes", fixed(k, "9")),
                        ("tcp_keepalive_time", fixed(k, "7200")),
                        ("tcp_max_syn_backlog", fixed(k, "1024")),
                        ("tcp_rmem", fixed(k, "4096\t131072\t6291456")),
                        ("tcp_sack", fixed(k, "1")),
                        ("tcp_syncookies", fixed(k, "1")),
                        ("tcp_timestamps", fixed(k, "1")),
                        ("tcp_tw_reuse", fixed(k, "2")),
                        ("tcp_window_scaling", fixed(k, "1")),
                        ("tcp_wmem", fixed(k, "4096\t16384\t4194304")),
                    ],
                ),
            ),
            (
                "ipv6",
                sdir(
                    k,
                    vec![
                        ("bindv6only", fixed(k, "0")),
                        ("conf", {
                            let mut v = vec![("all", conf(k)), ("default", conf(k))];
                            let ifaces = k
                                .upgrade()
                                .map(|k| k.net.info().interfaces())
                                .unwrap_or_else(|| vec![crate::net::LoopbackOnly::lo()]);
                            for i in ifaces {
                                v.push((intern(&i.name), conf(k)));
                            }
                            sdir(k, v)
                        }),
                    ],
                ),
            ),
        ],
    )
}

// ---- /proc/[pid]/net

/// /proc/[pid]/net (the sandbox has one network namespace).
pub(super) fn proc_net(k: &Weak<Kernel>) -> Arc<Node> {
    sdir(
        k,
        vec![
            ("dev", g(k, net_dev)),
            ("if_inet6", g(k, net_if_inet6)),
            ("ipv6_route", g(k, net_ipv6_route)),
            ("route", g(k, net_route)),
            ("tcp", g(k, |k| net_socks(k, true, false))),
            ("tcp6", g(k, |k| net_socks(k, true, true))),
            ("udp", g(k, |k| net_socks(k, false, false))),
            ("udp6", g(k, |k| net_socks(k, false, true))),
            (
                "unix",
                g(k, |_| {
                    b"Num       RefCount Protocol Flags    Type St Inode Path\n".to_vec()
                }),
            ),
        ],
    )
}

fn ifname(k: &Kernel, index: u32) -> String {
    k.net
        .info()
        .by_index(index)
        .map_or_else(|| "*".to_string(), |i| i.name)
}

/// Linux's dev_seq_show.
fn net_dev(k: &Kernel) -> Vec<u8> {
    let mut s = String::from(
        "Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n",
    );
    for i in k.net.info().interfaces() {
        let st = i.stats;
        let _ = writeln!(
            s,
            "{:>6}: {:>7} {:>7} {:>4} {:>4} {:>4} {:>5} {:>10} {:>9} {:>8} {:>7} {:>4} {:>4} {:>4} {:>5} {:>7} {:>10}",
            i.name,
            st.rx_bytes,
            st.rx_packets,
            st.rx_errors,
            st.rx_dropped,
            0,
            0,
            0,
            0,
            st.tx_bytes,
            st.tx_packets,
            st.tx_errors,
            st.tx_dropped,
            0,
            0,
            0,
            0
        );
    }
    s.into_bytes()
}

/// Linux's ipv6_addr_scope as if_inet6 shows it.
fn v6_scope(a: &std::net::Ipv6Addr) -> u8 {
    if a.is_loopback() {
        0x10
    } else if a.segments()[0] & 0xffc0 == 0xfe80 {
        0x20
    } else if a.segments()[0] & 0xffc0 == 0xfec0 {
        0x40
    } else {
        0
    }
}

fn hex6(a: &std::net::Ipv6Addr) -> String {
    a.octets().iter().map(|b| format!("{b:02x}")).collect()
}

/// Linux's if6_seq_show: address, ifindex, prefix, scope, flags
/// (IFA_F_PERMANENT), name.
fn net_if_inet6(k: &Kernel) -> Vec<u8> {
    let mut s = String::new();
    for i in k.net.info().interfaces() {
        for a in &i.addrs {
            if let std::net::IpAddr::V6(v6) = a.addr {
                let _ = writeln!(
                    s,
                    "{} {:02x} {:02x} {:02x} {:02x} {:>8}",
                    hex6(&v6),
                    i.index,
                    a.prefix,
                    v6_scope(&v6),
                    0x80,
                    i.name
                );
            }
        }
    }
    s.into_bytes()
}

/// Linux's ipv6_route_seq_show over the main then the local table, each
/// ending with its unreachable root entry when it has no default route.
fn net_ipv6_route(k: &Kernel) -> Vec<u8> {
    let zero = hex6(&std::net::Ipv6Addr::UNSPECIFIED);
    let null = format!("{zero} 00 {zero} 00 {zero} ffffffff 00000001 00000000 00200200       lo\n");
    let routes = k.net.info().routes();
    let mut s = String::new();
    for table in [crate::net::RT_TABLE_MAIN, crate::net::RT_TABLE_LOCAL] {
        let mut has_default = false;
        for r in routes.iter().filter(|r| r.table == table) {
            let std::net::IpAddr::V6(dst) = r.dst else {
                continue;
            };
            has_default |= r.prefix == 0;
            let gw = match r.gateway {
                Some(std::net::IpAddr::V6(g)) => hex6(&g),
                _ => zero.clone(),
            };
            // RTF_UP, RTF_GATEWAY, RTF_NONEXTHOP | RTF_LOCAL for local routes.
            let mut flags = 0x1u32;
            if r.gateway.is_some() {
                flags |= 0x2;
            }
            if r.kind == crate::net::RTN_LOCAL {
                flags |= 0x8020_0000;
            }
            let _ = writeln!(
                s,
                "{} {:02x} {zero} 00 {gw} {:08x} {:08x} 00000000 {:08x} {:>8}",
                hex6(&dst),
                r.prefix,
                r.priority.unwrap_or(0),
                if r.kind == crate::net::RTN_LOCAL {
                    2
                } else {
                    1
                },
                flags,
                ifname(k, r.ifindex)
            );
        }
        if !has_default {
            s.push_str(&null);
        }
    }
    s.into_bytes()
}

fn le_hex4(a: std::net::Ipv4Addr) -> String {
    format!("{:08X}", u32::from_le_bytes(a.octets()))
}

/// Pads a line to 127 characters then ends it (Linux's seq_pad).
fn pad_line(s: &mut String, line: &str, width: usize) {
    let _ = writeln!(s, "{line:<width$}");
}

/// Linux's fib_route_seq_show: the main table's IPv4 unicast routes.
fn net_route(k: &Kernel) -> Vec<u8> {
    let mut s = String::new();
    pad_line(
        &mut s,
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
        127,
    );
    // The fib trie's order: by destination, then shorter prefixes first.
    let mut routes: Vec<(std::net::Ipv4Addr, crate::net::Route)> = k
        .net
        .info()
        .routes()
        .into_iter()
        .filter_map(|r| match r.dst {
            std::net::IpAddr::V4(d) => Some((d, r)),
            _ => None,
        })
        .filter(|(_, r)| {
            r.table == crate::net::RT_TABLE_MAIN && r.kind != crate::net::RTN_BROADCAST
        })
        .collect();
    routes.sort_by_key(|(d, r)| (u32::from(*d), r.prefix));
    for (dst, r) in routes {
        let mask = std::net::Ipv4Addr::from(if r.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - r.prefix.min(32) as u32)
        });
        let gw = match r.gateway {
            Some(std::net::IpAddr::V4(g)) => g,
            _ => std::net::Ipv4Addr::UNSPECIFIED,
        };
        let mut flags = 0x1; // RTF_UP
        if r.gateway.is_some() {
            flags |= 0x2; // RTF_GATEWAY
        }
        if r.prefix == 32 {
            flags |= 0x4; // RTF_HOST
        }
        let line = format!(
            "{}\t{}\t{}\t{:04X}\t0\t0\t{}\t{}\t0\t0\t0",
            ifname(k, r.ifindex),
            le_hex4(dst),
            le_hex4(gw),
            flags,
            r.priority.unwrap_or(0),
            le_hex4(mask)
        );
        pad_line(&mut s, &line, 127);
    }
    s.into_bytes()
}

/// An address as /proc/net/tcp6 prints it: four host-order words.
fn hex6_words(a: &std::net::Ipv6Addr) -> String {
    a.octets()
        .chunks(4)
        .map(|c| format!("{:08X}", u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect()
}

/// /proc/net/{tcp,udp}[6] (Linux's tcp4_seq_show, tcp6_seq_show,
/// udp4_format_sock, ip6_dgram_sock_seq_show). The "sl" of UDP is a
/// sequence number, not Linux's hash bucket; an accepted connection still
/// queued in its listener has no socket file yet (uid and inode 0, as Linux).
fn net_socks(k: &Kernel, tcp: bool, v6: bool) -> Vec<u8> {
    let mut s = String::new();
    let head6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
    match (tcp, v6) {
        (true, false) => pad_line(
            &mut s,
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
            149,
        ),
        (false, false) => pad_line(
            &mut s,
            "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops",
            127,
        ),
        (true, true) => {
            let _ = writeln!(s, "{head6}");
        }
        (false, true) => {
            let _ = writeln!(s, "{head6} ref pointer drops");
        }
    }
    let Some(stack) = k.netstack.running() else {
        return s.into_bytes();
    };
    let addr = |a: &std::net::SocketAddr| match a.ip() {
        std::net::IpAddr::V4(ip) if !v6 => format!("{}:{:04X}", le_hex4(ip), a.port()),
        std::net::IpAddr::V6(ip) if v6 => format!("{}:{:04X}", hex6_words(&ip), a.port()),
        std::net::IpAddr::V4(ip) => {
            format!("{}:{:04X}", hex6_words(&ip.to_ipv6_mapped()), a.port())
        }
        std::net::IpAddr::V6(ip) => format!(
            "{}:{:04X}",
            le_hex4(
                ip.to_ipv4_mapped()
                    .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED)
            ),
            a.port()
        ),
    };
    let socks = stack.sockets();
    for (n, e) in socks
        .iter()
        .filter(|e| e.tcp == tcp && e.v6 == v6)
        .enumerate()
    {
        let common = format!(
            "{}: {} {} {:02X} {:08X}:{:08X} 00:00000000 00000000 {:>5} {:>8} {}",
            if tcp {
                format!("{n:>4}")
            } else {
                format!("{n:>5}")
            },
            addr(&e.local),
            addr(&e.remote),
            e.state,
            e.tx_queue,
            e.rx_queue,
            e.uid,
            0,
            e.inode
        );
        let line = if tcp {
            let rto = if e.state == 10 { 100 } else { 20 };
            let ssthresh = if e.state == 10 { 0 } else { -1 };
            format!("{common} 1 0000000000000000 {rto} 0 0 10 {ssthresh}")
        } else {
            format!("{common} 2 0000000000000000 0")
        };
        if v6 {
            let _ = writeln!(s, "{line}");
        } else {
            pad_line(&mut s, &line, if tcp { 149 } else { 127 });
        }
    }
    s.into_bytes()
}

pub(super) fn root_lookup(k: &Weak<Kernel>, name: &str) -> Option<Arc<Node>> {
    if name == "sys" {
        return Some(proc_sys(k));
    }
    ROOT_ENTRIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| Node::new(k, Kind::Global(*f)))
}

// ---- sysfs ----

fn cpu_range() -> Vec<u8> {
    let n = cpu_count();
    if n <= 1 {
        b"0\n".to_vec()
    } else {
        format!("0-{}\n", n - 1).into_bytes()
    }
}

/// The sandbox's /sys: the CPU topology files and an empty /sys/fs/cgroup.
pub fn sysfs_root() -> Arc<dyn Inode> {
    host();
    let f = |f: fn() -> Vec<u8>| Node::new_sys(Kind::Text(f));
    let d = |ents: Vec<(&'static str, Arc<Node>)>| Node::new_sys(Kind::Static(Arc::new(ents)));
    let cpu = d(vec![
        ("online", f(cpu_range)),
        ("possible", f(cpu_range)),
        ("present", f(cpu_range)),
    ]);
    d(vec![
        ("block", d(vec![])),
        ("bus", d(vec![])),
        ("class", d(vec![])),
        ("dev", d(vec![])),
        ("devices", d(vec![("system", d(vec![("cpu", cpu)]))])),
        ("fs", d(vec![("cgroup", d(vec![]))])),
        (
            "kernel",
            d(vec![(
                "mm",
                d(vec![(
                    "transparent_hugepage",
                    d(vec![
                        ("enabled", f(|| b"always [madvise] never\n".to_vec())),
                        ("hpage_pmd_size", f(|| b"2097152\n".to_vec())),
                    ]),
                )]),
            )]),
        ),
    ])
}

// ---- per-process files ----

/// What an fd names, as readlink of /proc/[pid]/fd/N shows it.
pub(super) fn file_name(k: &Kernel, ctx: Option<&fs::FsContext>, f: &fs::OpenFile) -> Vec<u8> {
    if let (Some(loc), Some(ctx)) = (f.location(), ctx) {
        return k.vfs.path_of(ctx, loc);
    }
    let st = f.stat().unwrap_or_default();
    // The host terminal behind /dev/console goes by that name (so ttyname(3)
    // finds it).
    if f.ops().host_fd().is_some() {
        if let Some(c) = k.vfs.devpts().console() {
            if c.stat()
                .is_ok_and(|cs| cs.dev == st.dev && cs.ino == st.ino)
            {
                return b"/dev/console".to_vec();
            }
        }
    }
    match st.mode & S_IFMT {
        S_IFIFO => format!("pipe:[{}]", st.ino).into_bytes(),
        S_IFSOCK => format!("socket:[{}]", st.ino).into_bytes(),
        S_IFCHR => {
            let (maj, min) = (
                (st.rdev >> 8) & 0xfff,
                (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00),
            );
            match maj {
                136 => format!("/dev/pts/{min}").into_bytes(),
                1 if min == 3 => b"/dev/null".to_vec(),
                _ => format!("/dev/char/{maj}:{min}").into_bytes(),
            }
        }
        // A host file the workload inherited (gVisor names these the same way).
        _ if f.ops().host_fd().is_some() => format!("host:[{}]", st.ino).into_bytes(),
        0 => b"anon_inode:[eventfd]".to_vec(),
        _ => format!("anon_inode:[{}]", st.ino).into_bytes(),
    }
}

fn state_of(k: &Kernel, t: &Arc<TaskShared>) -> (char, &'static str) {
    let st = t.tg.lock();
    if st.zombie.is_some() && t.tid() == t.tg.tgid {
        return ('Z', "zombie");
    }
    if st.stopped {
        return ('T', "stopped");
    }
    drop(st);
    let _ = k;
    if crate::task::current_task().is_some_and(|c| Arc::ptr_eq(&c, t)) {
        ('R', "running")
    } else {
        ('S', "sleeping")
    }
}

fn comm_str(c: &[u8; 16]) -> String {
    let n = c.iter().position(|&b| b == 0).unwrap_or(16);
    String::from_utf8_lossy(&c[..n]).into_owned()
}

struct MemStats {
    vsize: u64,
    rss_kb: u64,
    data: u64,
    stack: u64,
    exe: u64,
    lib: u64,
    start_brk: u64,
}

fn mem_stats(mm: Option<&Arc<crate::mm::MemoryManager>>, sp: u64) -> MemStats {
    let mut m = MemStats {
        vsize: 0,
        rss_kb: 0,
        data: 0,
        stack: 0,
        exe: 0,
        lib: 0,
        start_brk: 0,
    };
    let Some(mm) = mm else { return m };
    for v in mm.vmas() {
        m.vsize += v.len();
        if v.name == b"[stack]" || (v.start <= sp && sp < v.end) {
            m.stack += v.len();
        } else if v.prot & libc::PROT_EXEC != 0 && v.file.is_some() {
            m.exe += v.len();
        } else if v.prot & libc::PROT_WRITE != 0 && !v.shared {
            m.data += v.len();
        }
        if v.name == b"[heap]" && m.start_brk == 0 {
            m.start_brk = v.start;
        }
    }
    m.rss_kb = mm.resident_kb();
    let _ = m.lib;
    m
}

fn sigsets(t: &Arc<TaskShared>) -> (u64, u64, u64, u64, u64) {
    let own = t.sig.lock().unwrap().pending.set();
    let shd = t.tg.lock().pending.set();
    let blk = t.sigmask();
    let acts = *t.tg.handlers.actions.lock().unwrap();
    let (mut ign, mut cgt) = (0u64, 0u64);
    for (i, a) in acts.iter().enumerate() {
        if a.handler == SIG_IGN {
            ign |= 1 << i;
        } else if a.handler != SIG_DFL {
            cgt |= 1 << i;
        }
    }
    (own, shd, blk, ign, cgt)
}

pub(super) fn generate(node: &Node) -> Result<Vec<u8>, Errno> {
    match &node.kind {
        Kind::Global(f) | Kind::Sysctl(f, _) => {
            let k = node.kernel()?;
            Ok(f(&k))
        }
        Kind::Text(f) => Ok(f()),
        Kind::PidFile { which, .. } => pid_file(node, *which),
        Kind::FdInfo { fd, .. } => {
            let t = node.task()?;
            let fds = t.proc.lock().unwrap_or_else(|e| e.into_inner()).fds.clone();
            let f = fds
                .ok_or(Errno::ENOENT)?
                .get(*fd)
                .map_err(|_| Errno::ENOENT)?;
            let pos = f.lseek(0, libc::SEEK_CUR).unwrap_or(0);
            let ino = f.stat().map(|s| s.ino).unwrap_or(0);
            Ok(format!(
                "pos:\t{pos}\nflags:\t0{:o}\nmnt_id:\t1\nino:\t{ino}\n",
                f.status_flags()
            )
            .into_bytes())
        }
        _ => Err(Errno::EINVAL),
    }
}

fn pid_file(node: &Node, which: PidFile) -> Result<Vec<u8>, Errno> {
    let k = node.kernel()?;
    let t = node.task()?;
    let tid = t.tid();
    let tgid = t.tg.tgid;
    let v = t.proc.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = String::new();
    match which {
        PidFile::Cmdline => return Ok(v.cmdline.clone()),
        PidFile::Environ => return Ok(v.environ.clone()),
        PidFile::Auxv => return Ok(v.auxv.clone()),
        PidFile::Comm => return Ok(format!("{}\n", comm_str(&v.comm)).into_bytes()),
        PidFile::Cgroup => return Ok(b"0::/\n".to_vec()),
        PidFile::OomScoreAdj => return Ok(b"0\n".to_vec()),
        PidFile::OomScore => return Ok(b"0\n".to_vec()),
        PidFile::LoginUid => return Ok(b"4294967295".to_vec()),
        PidFile::Wchan => return Ok(b"0".to_vec()),
        PidFile::Mounts => return Ok(mount_table(&k, v.fs.as_deref(), false)),
        PidFile::MountInfo => return Ok(mount_table(&k, v.fs.as_deref(), true)),
        PidFile::UidMap | PidFile::GidMap => {
            return Ok(format!("{:>10} {:>10} {:>10}\n", 0, 0, u32::MAX).into_bytes())
        }
        PidFile::SetGroups => return Ok(b"allow\n".to_vec()),
        PidFile::Io => {
            return Ok(b"rchar: 0\nwchar: 0\nsyscr: 0\nsyscw: 0\nread_bytes: 0\nwrite_bytes: 0\ncancelled_write_bytes: 0\n".to_vec())
        }
        PidFile::Limits => {
            let names = [
                ("Max cpu time", "seconds"),
                ("Max file size", "bytes"),
                ("Max data size", "bytes"),
                ("Max stack size", "bytes"),
                ("Max core file size", "bytes"),
                ("Max resident set", "bytes"),
                ("Max processes", "processes"),
                ("Max open files", "files"),
                ("Max locked memory", "bytes"),
                ("Max address space", "bytes"),
                ("Max file locks", "locks"),
                ("Max pending signals", "signals"),
                ("Max msgqueue size", "bytes"),
                ("Max nice priority", ""),
                ("Max realtime priority", ""),
                ("Max realtime timeout", "us"),
            ];
            let _ = writeln!(s, "{:<25} {:<20} {:<20} {:<10}", "Limit", "Soft Limit", "Hard Limit", "Units");
            let lims = if v.rlimits.is_empty() {
                crate::task::default_rlimits().to_vec()
            } else {
                v.rlimits.clone()
            };
            let fmt = |x: u64| {
                if x == u64::MAX {
                    "unlimited".to_string()
                } else {
                    x.to_string()
                }
            };
            for (i, (n, u)) in names.iter().enumerate() {
                let l = lims.get(i).copied().unwrap_or(abi::linux::Rlimit { cur: u64::MAX, max: u64::MAX });
                let _ = write!(s, "{:<25} {:<20} {:<20} ", n, fmt(l.cur), fmt(l.max));
                if u.is_empty() {
                    s.push('\n');
                } else {
                    let _ = writeln!(s, "{u:<10}");
                }
            }
        }
        PidFile::Maps => {
            if let Some(mm) = &v.mm {
                for vma in mm.vmas() {
                    let p = |b: i32, c: char| if vma.prot & b != 0 { c } else { '-' };
                    let off = vma.file.as_ref().map_or(0, |(_, o)| *o);
                    let line = format!(
                        "{:08x}-{:08x} {}{}{}{} {:08x} 00:00 0",
                        vma.start,
                        vma.end,
                        p(libc::PROT_READ, 'r'),
                        p(libc::PROT_WRITE, 'w'),
                        p(libc::PROT_EXEC, 'x'),
                        if vma.shared { 's' } else { 'p' },
                        off
                    );
                    let stack = vma.name.is_empty()
                        && vma.file.is_none()
                        && vma.start <= v.stack_sp
                        && v.stack_sp < vma.end;
                    if stack {
                        let _ = writeln!(s, "{:<72} [stack]", line);
                    } else if vma.name.is_empty() {
                        let _ = writeln!(s, "{line}");
                    } else {
                        let _ = writeln!(s, "{:<72} {}", line, String::from_utf8_lossy(&vma.name));
                    }
                }
            }
        }
        PidFile::Statm => {
            let m = mem_stats(v.mm.as_ref(), v.stack_sp);
            let _ = writeln!(
                s,
                "{} {} 0 {} 0 {} 0",
                m.vsize / 4096,
                m.rss_kb / 4,
                m.exe / 4096,
                (m.data + m.stack) / 4096
            );
        }
        PidFile::Stat => {
            let m = mem_stats(v.mm.as_ref(), v.stack_sp);
            let comm = comm_str(&v.comm);
            let nice = v.nice;
            drop(v);
            let (state, _) = state_of(&k, &t);
            let (ppid, pgid, sid, nthreads, exit_signal) = {
                let st = t.tg.lock();
                (
                    st.parent.as_ref().map_or(0, |p| p.tgid),
                    st.pgid,
                    st.sid,
                    st.tasks.len().max(1),
                    st.exit_signal,
                )
            };
            let (tty_nr, tpgid) = k
                .vfs
                .devpts()
                .ctty_of(sid)
                .map_or((0, -1), |c| (c.tty_nr(), c.foreground().unwrap_or(-1)));
            let start = t.start_time.saturating_duration_since(k.boot_time).as_millis() as u64 / (1000 / HZ);
            let (own, shd, blk, ign, cgt) = sigsets(&t);
            let _ = own;
            let _ = shd;
            let prio = 20 + nice;
            let u = if tid == tgid {
                crate::timer::group_usage(&t.tg)
            } else {
                crate::timer::thread_usage(&t)
            };
            let cu = t.tg.lock().children_usage;
            let tk = |ns: u64| ns / (1_000_000_000 / HZ);
            let (ut, st_, cut, cst) = (tk(u.user_ns), tk(u.sys_ns), tk(cu.user_ns), tk(cu.sys_ns));
            let _ = writeln!(
                s,
                "{tid} ({comm}) {state} {ppid} {pgid} {sid} {tty_nr} {tpgid} 4194304 0 0 0 0 {ut} {st_} {cut} {cst} {prio} {nice} {nthreads} 0 {start} {} {} {} 0 0 0 0 0 {} {} {} {} 0 0 0 {exit_signal} 0 0 0 0 0 0 0 0 {} 0 0 0 0 0",
                m.vsize,
                m.rss_kb / 4,
                u64::MAX,
                0,
                blk & 0x7fff_ffff,
                ign & 0x7fff_ffff,
                cgt & 0x7fff_ffff,
                m.start_brk
            );
        }
        PidFile::Status => {
            let m = mem_stats(v.mm.as_ref(), v.stack_sp);
            let comm = comm_str(&v.comm);
            let c = v.creds.clone();
            let nnp = v.no_new_privs as u8;
            let nfds = v.fds.as_ref().map_or(0, |f| f.fds().into_iter().max().unwrap_or(0) + 1);
            let umask = v.fs.as_ref().map_or(0o022, |f| f.umask());
            drop(v);
            let (state, sname) = state_of(&k, &t);
            let (ppid, nthreads, pgid, sid) = {
                let st = t.tg.lock();
                (
                    st.parent.as_ref().map_or(0, |p| p.tgid),
                    st.tasks.len().max(1),
                    st.pgid,
                    st.sid,
                )
            };
            let (own, shd, blk, ign, cgt) = sigsets(&t);
            let fdsize = (nfds.max(64) as u64).next_power_of_two();
            let groups: String = c.groups.iter().map(|g| format!("{g} ")).collect();
            let ncpu = cpu_count();
            let _ = write!(
                s,
                "Name:\t{comm}\nUmask:\t{umask:04o}\nState:\t{state} ({sname})\nTgid:\t{tgid}\nNgid:\t0\nPid:\t{tid}\nPPid:\t{ppid}\nTracerPid:\t0\n\
Uid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nFDSize:\t{fdsize}\nGroups:\t{groups}\n\
NStgid:\t{tgid}\nNSpid:\t{tid}\nNSpgid:\t{pgid}\nNSsid:\t{sid}\n",
                c.uid, c.euid, c.suid, c.fsuid, c.gid, c.egid, c.sgid, c.fsgid
            );
            let kb = |x: u64| format!("{:>8} kB", x);
            let _ = write!(
                s,
                "VmPeak:\t{}\nVmSize:\t{}\nVmLck:\t{}\nVmPin:\t{}\nVmHWM:\t{}\nVmRSS:\t{}\nRssAnon:\t{}\nRssFile:\t{}\nRssShmem:\t{}\n\
VmData:\t{}\nVmStk:\t{}\nVmExe:\t{}\nVmLib:\t{}\nVmPTE:\t{}\nVmSwap:\t{}\nHugetlbPages:\t{}\nCoreDumping:\t0\nTHP_enabled:\t1\n",
                kb(m.vsize / 1024),
                kb(m.vsize / 1024),
                kb(0),
                kb(0),
                kb(m.rss_kb),
                kb(m.rss_kb),
                kb(m.rss_kb),
                kb(0),
                kb(0),
                kb(m.data / 1024),
                kb(m.stack / 1024),
                kb(m.exe / 1024),
                kb(0),
                kb(0),
                kb(0),
                kb(0),
            );
            let cpus_list = if ncpu <= 1 { "0".to_string() } else { format!("0-{}", ncpu - 1) };
            let mut mask = String::new();
            let words = ncpu.div_ceil(32);
            for w in (0..words).rev() {
                let bits = (ncpu - w * 32).min(32);
                let val: u32 = if bits == 32 { u32::MAX } else { (1u32 << bits) - 1 };
                if !mask.is_empty() {
                    mask.push(',');
                }
                if w == words - 1 {
                    let _ = write!(mask, "{val:x}");
                } else {
                    let _ = write!(mask, "{val:08x}");
                }
            }
            let _ = write!(
                s,
                "Threads:\t{nthreads}\nSigQ:\t0/63000\nSigPnd:\t{own:016x}\nShdPnd:\t{shd:016x}\nSigBlk:\t{blk:016x}\nSigIgn:\t{ign:016x}\nSigCgt:\t{cgt:016x}\n\
CapInh:\t{:016x}\nCapPrm:\t{:016x}\nCapEff:\t{:016x}\nCapBnd:\t{:016x}\nCapAmb:\t{:016x}\nNoNewPrivs:\t{nnp}\nSeccomp:\t0\nSeccomp_filters:\t0\n\
Speculation_Store_Bypass:\tthread vulnerable\nCpus_allowed:\t{mask}\nCpus_allowed_list:\t{cpus_list}\nMems_allowed:\t1\nMems_allowed_list:\t0\n\
voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n",
                c.cap_inheritable, c.cap_permitted, c.cap_effective, c.cap_bounding, c.cap_ambient
            );
        }
    }
    Ok(s.into_bytes())
}
