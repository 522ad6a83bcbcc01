//! The host side of `--network=sandbox` (runsc-cli/src/net): the rtnetlink
//! client, the takeover of a network namespace's interfaces, and `runsc do
//! --network=sandbox`'s veth pair. The net module is compiled into this test
//! as it is into runsc (it depends on std, libc and serde only), so the
//! tests call it directly; `ip` (iproute2) cross-checks what it did.
//!
//! Needs root and `ip`: skipped (with a SKIP line) otherwise.

use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use tests::runsc_bin;

#[allow(dead_code)]
#[path = "../../runsc-cli/src/net/mod.rs"]
mod net;

use net::rtnetlink::{Netlink, Route};

fn can_run(test: &str) -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP {test}: needs root");
        return false;
    }
    if Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        eprintln!("SKIP {test}: `ip` (iproute2) is missing");
        return false;
    }
    true
}

/// Runs `ip ARGS`, returning stdout; panics on failure.
fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip ARGS` run in the network namespace open at `fd` in this process.
fn ip_in(fd: i32, args: &[&str]) -> String {
    let ns = format!("--net=/proc/{}/fd/{fd}", std::process::id());
    let out = Command::new("nsenter")
        .arg(&ns)
        .arg("ip")
        .args(args)
        .output()
        .expect("run nsenter ip");
    assert!(
        out.status.success(),
        "nsenter ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ipa(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn rtnetlink_client_in_a_fresh_netns() {
    if !can_run("rtnetlink_client_in_a_fresh_netns") {
        return;
    }
    let ns = net::veth::new_netns().expect("new netns");
    let other = net::veth::new_netns().expect("second netns");
    let nsfd = ns.as_raw_fd();
    let otherfd = other.as_raw_fd();
    net::in_netns(Some(nsfd), move || {
        let mut nl = Netlink::open()?;
        let links = nl.links()?;
        assert_eq!(links.len(), 1, "{links:?}");
        assert!(links[0].is_loopback() && links[0].name == "lo");
        nl.create_veth("nma", "nmb", None)?;
        let a = nl.link_by_name("nma")?.expect("nma");
        let b = nl.link_by_name("nmb")?.expect("nmb");
        assert_eq!(a.kind.as_deref(), Some("veth"));
        assert!(a.mac.is_some() && a.mtu == 1500 && !a.is_up());
        // The same name again: EEXIST, as `ip link add`.
        let e = nl.create_veth("nma", "nmc", None).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        nl.add_addr(a.index, ipa("10.9.0.1"), 24)?;
        nl.add_addr(a.index, ipa("fd09::1"), 64)?;
        nl.set_up(b.index)?;
        nl.set_up(a.index)?;
        assert!(nl.link_by_name("nma")?.unwrap().is_up());
        let addrs = nl.addrs()?;
        for (addr, p) in [("10.9.0.1", 24), ("fd09::1", 64)] {
            assert!(
                addrs
                    .iter()
                    .any(|x| x.index == a.index && x.addr == ipa(addr) && x.prefix == p),
                "{addr} missing: {addrs:?}"
            );
        }
        let gw = Route {
            dst: ipa("10.99.0.0"),
            prefix: 16,
            gateway: Some(ipa("10.9.0.2")),
            oif: Some(a.index),
            scope: 0,
            protocol: 0,
            priority: None,
        };
        nl.add_route(&gw)?;
        let routes = nl.routes()?;
        assert!(
            routes.iter().any(|r| r.dst == ipa("10.9.0.0")
                && r.prefix == 24
                && r.gateway.is_none()
                && r.oif == Some(a.index)),
            "{routes:?}"
        );
        assert!(
            routes.iter().any(|r| r.dst == gw.dst
                && r.prefix == 16
                && r.gateway == gw.gateway
                && r.oif == Some(a.index)),
            "{routes:?}"
        );
        nl.del_route(&gw)?;
        assert!(!nl.routes()?.iter().any(|r| r.dst == gw.dst));
        nl.del_addr(a.index, ipa("10.9.0.1"), 24)?;
        let e = nl.del_addr(a.index, ipa("10.9.0.1"), 24).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL));
        assert!(!nl.addrs()?.iter().any(|x| x.addr == ipa("10.9.0.1")));
        // A pair whose peer is made in another namespace.
        nl.create_veth("nmx", "nmy", Some(otherfd))?;
        assert!(nl.link_by_name("nmy")?.is_none());
        Ok(())
    })
    .expect("rtnetlink calls");
    // iproute2 sees the same.
    let addrs = ip_in(nsfd, &["-o", "addr", "show", "dev", "nma"]);
    assert!(
        addrs.contains("fd09::1/64") && !addrs.contains("10.9.0.1"),
        "{addrs}"
    );
    assert!(ip_in(otherfd, &["-o", "link"]).contains("nmy@"));
    net::in_netns(Some(nsfd), || {
        let mut nl = Netlink::open()?;
        let a = nl.link_by_name("nma")?.expect("nma");
        nl.del_link(a.index)?;
        assert!(nl.link_by_name("nmb")?.is_none(), "the peer goes too");
        let x = nl.link_by_name("nmx")?.expect("nmx");
        nl.del_link(x.index)?;
        Ok(())
    })
    .expect("deleting links");
    assert!(!ip_in(otherfd, &["-o", "link"]).contains("nmy"));
}

/// The rsc<pid>h links present on the host.
fn rsc_link(pid: u32) -> bool {
    ip(&["-o", "link"]).contains(&format!("rsc{pid}h"))
}

#[test]
fn do_network_sandbox_sets_up_and_cleans_up() {
    if !can_run("do_network_sandbox_sets_up_and_cleans_up") {
        return;
    }
    let child = Command::new(runsc_bin())
        .args(["--network=sandbox", "do", "--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run runsc do");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("runsc do: sandbox network 10."))
        .unwrap_or_else(|| panic!("no address line: {err}"));
    assert!(
        line.contains(&format!(".2/30 (host side rsc{pid}h 10.")) && line.ends_with(".1)"),
        "{line}"
    );
    assert!(!rsc_link(pid), "rsc{pid}h left behind");

    // A workload that cannot start: the sandbox fails, nothing stays.
    let child = Command::new(runsc_bin())
        .args(["--network=sandbox", "do", "--", "/nonexistent/cmd"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert!(!rsc_link(pid), "rsc{pid}h left behind after a failed start");

    // Not as root: one clear line, nothing made.
    let out = Command::new(runsc_bin())
        .args(["--network=sandbox", "do", "--", "true"])
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--network=sandbox needs root"), "{err}");

    // --network=none (the default) and host announce nothing.
    for flags in [&[][..], &["--network=host"][..]] {
        let out = Command::new(runsc_bin())
            .args(flags)
            .args(["do", "--", "true"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{flags:?}: {err}");
        assert!(!err.contains("sandbox network"), "{flags:?}: {err}");
    }
}

/// A named namespace with a veth pair (`ip netns add`), removed when dropped.
struct PreparedNs {
    name: String,
    host: String,
}

impl Drop for PreparedNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// `ip netns add rscnm<tag><pid>` with a veth `nm<tag>h<pid>` (host, up) /
/// `nm<tag>e<pid>` (inside, mtu 1400, 10.77.1.2/24, fd77::2/64, default
/// route via 10.77.1.1, 10.88.0.0/16 via 10.77.1.254); returns it and the
/// inner name.
fn prepare_netns(tag: &str) -> (PreparedNs, String) {
    let id = std::process::id();
    let p = PreparedNs {
        name: format!("rscnm{tag}{id}"),
        host: format!("nm{tag}h{id}"),
    };
    let inner = format!("nm{tag}e{id}");
    let n = p.name.as_str();
    ip(&["netns", "add", n]);
    ip(&[
        "link", "add", &p.host, "type", "veth", "peer", "name", &inner,
    ]);
    ip(&["link", "set", &inner, "netns", n]);
    ip(&["link", "set", &p.host, "up"]);
    ip(&["-n", n, "addr", "add", "10.77.1.2/24", "dev", &inner]);
    ip(&["-n", n, "addr", "add", "fd77::2/64", "dev", &inner, "nodad"]);
    ip(&["-n", n, "link", "set", &inner, "mtu", "1400", "up"]);
    ip(&["-n", n, "route", "add", "default", "via", "10.77.1.1"]);
    ip(&[
        "-n",
        n,
        "route",
        "add",
        "10.88.0.0/16",
        "via",
        "10.77.1.254",
    ]);
    (p, inner)
}

#[test]
fn takeover_of_a_prepared_netns() {
    if !can_run("takeover_of_a_prepared_netns") {
        return;
    }
    let (p, inner) = prepare_netns("t");
    let n = p.name.as_str();
    // Not taken: a link that is down, and one without addresses.
    ip(&[
        "-n", n, "link", "add", "dm0", "type", "veth", "peer", "name", "dm1",
    ]);
    ip(&["-n", n, "addr", "add", "10.66.0.1/24", "dev", "dm0"]);
    ip(&["-n", n, "link", "set", "dm1", "up"]);
    let mac_line = ip(&["-n", n, "-o", "link", "show", "dev", &inner]);

    let ns = std::fs::File::open(format!("/run/netns/{n}")).unwrap();
    let cfg = net::takeover::takeover(ns.as_raw_fd()).expect("takeover");
    assert_eq!(cfg.links.len(), 1, "{cfg:?}");
    let l = &cfg.links[0];
    assert_eq!(l.name, inner);
    assert_eq!(l.mtu, 1400);
    let mac: Vec<String> = l.mac.iter().map(|b| format!("{b:02x}")).collect();
    assert!(mac_line.contains(&mac.join(":")), "{mac:?} in {mac_line}");
    let has_addr = |a: &str, p: u8| l.addrs.contains(&(ipa(a), p));
    assert!(
        has_addr("10.77.1.2", 24) && has_addr("fd77::2", 64),
        "{:?}",
        l.addrs
    );
    let has_route = |d: &str, p: u8, g: Option<&str>| {
        l.routes.contains(&net::RouteSpec {
            dst: ipa(d),
            prefix: p,
            gateway: g.map(ipa),
        })
    };
    assert!(has_route("0.0.0.0", 0, Some("10.77.1.1")), "{:?}", l.routes);
    assert!(
        has_route("10.88.0.0", 16, Some("10.77.1.254")),
        "{:?}",
        l.routes
    );
    assert!(has_route("10.77.1.0", 24, None), "{:?}", l.routes);
    // The socket: AF_PACKET, and the boot argument round-trips.
    let arg = net::NetArg::parse(&cfg.to_arg()).expect("--net parses back");
    assert_eq!(arg.fds(), vec![l.fd.as_raw_fd()]);
    let mut dom: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt into an int of that size.
    let r = unsafe {
        libc::getsockopt(
            l.fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&mut dom as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert!(r == 0 && dom == libc::AF_PACKET);

    // The host kernel's side has no address nor route left; the link is up.
    let addrs = ip(&["-n", n, "-o", "addr", "show", "dev", &inner]);
    assert!(!addrs.contains("inet"), "{addrs}");
    let link = ip(&["-n", n, "-o", "link", "show", "dev", &inner]);
    assert!(link.contains(",UP"), "{link}");
    let routes = ip(&["-n", n, "-o", "route"]);
    assert!(!routes.contains(&inner), "{routes}");
    // The others are untouched.
    assert!(ip(&["-n", n, "-o", "addr", "show", "dev", "dm0"]).contains("10.66.0.1/24"));

    // A failed start puts everything back.
    net::takeover::restore(ns.as_raw_fd(), &cfg).expect("restore");
    let addrs = ip(&["-n", n, "-o", "addr", "show", "dev", &inner]);
    assert!(
        addrs.contains("10.77.1.2/24") && addrs.contains("fd77::2/64"),
        "{addrs}"
    );
    let routes = ip(&["-n", n, "route"]);
    assert!(
        routes.contains("default via 10.77.1.1") && routes.contains("10.88.0.0/16 via 10.77.1.254"),
        "{routes}"
    );

    // Never the caller's own namespace.
    let own = std::fs::File::open("/proc/self/ns/net").unwrap();
    let e = net::takeover::takeover(own.as_raw_fd()).unwrap_err();
    assert!(
        e.to_string().contains("host's own network namespace"),
        "{e}"
    );

    // A namespace without a usable interface (an engine's --network=none).
    let empty = net::veth::new_netns().unwrap();
    let cfg = net::takeover::takeover(empty.as_raw_fd()).unwrap();
    assert!(cfg.links.is_empty());
}

/// A busybox bundle under a state root of its own; its containers and
/// files go when dropped.
struct Bundle {
    dir: std::path::PathBuf,
}

impl Bundle {
    fn new(tag: &str) -> Bundle {
        let dir = tests::target_dir()
            .join("netmode-tests")
            .join(format!("{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let bin = dir.join("b/rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
        for l in ["sh", "sleep", "true"] {
            std::os::unix::fs::symlink("busybox", bin.join(l)).unwrap();
        }
        Bundle { dir }
    }

    /// config.json running `args` (a JSON array), joining the network
    /// namespace at `netns` if given.
    fn config(&self, args: &str, netns: Option<&str>) {
        let ns = netns
            .map(|p| format!(r#",{{"type":"network","path":"{p}"}}"#))
            .unwrap_or_default();
        std::fs::write(
            self.dir.join("b/config.json"),
            format!(
                r#"{{"ociVersion":"1.0.2",
  "process":{{"args":{args},"env":["PATH=/bin"],"cwd":"/","user":{{"uid":0,"gid":0}}}},
  "root":{{"path":"rootfs","readonly":true}},
  "linux":{{"namespaces":[{{"type":"pid"}},{{"type":"mount"}}{ns}]}}}}"#
            ),
        )
        .unwrap();
    }

    /// Runs runsc with stdout and stderr in files: a created sandbox keeps
    /// them open, so pipes would never end.
    fn runsc(&self, flags: &[&str], args: &[&str]) -> std::process::Output {
        let (out, err) = (self.dir.join("stdout"), self.dir.join("stderr"));
        let status = Command::new(runsc_bin())
            .arg(format!("--root={}", self.dir.join("state").display()))
            .args(flags)
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        std::process::Output {
            status,
            stdout: std::fs::read(&out).unwrap_or_default(),
            stderr: std::fs::read(&err).unwrap_or_default(),
        }
    }

    fn create(&self, flags: &[&str], id: &str) -> std::process::Output {
        let b = self.dir.join("b");
        self.runsc(flags, &["create", "--bundle", b.to_str().unwrap(), id])
    }

    fn pid(&self, id: &str) -> i32 {
        let out = self.runsc(&[], &["state", id]);
        let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        st["pid"].as_i64().unwrap() as i32
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if let Ok(d) = std::fs::read_dir(self.dir.join("state")) {
            for e in d.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.runsc(&[], &["delete", "--force", &id]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `runsc create` (default --network=sandbox) with a spec network namespace:
/// the namespace's interface is taken over before the sentry starts and
/// handed to it; a failed create gives the addresses back; `--network=none`
/// leaves the namespace alone; `--network=host` without a path keeps the
/// sentry in the host's namespace.
#[test]
fn oci_create_takes_the_namespace_over() {
    if !can_run("oci_create_takes_the_namespace_over") {
        return;
    }
    if !std::path::Path::new("/bin/busybox").exists() {
        eprintln!("SKIP oci_create_takes_the_namespace_over: /bin/busybox is missing");
        return;
    }
    let (p, inner) = prepare_netns("o");
    let n = p.name.as_str();
    let path = format!("/run/netns/{n}");
    let b = Bundle::new("takeover");
    let inet = || ip(&["-n", n, "-o", "addr", "show", "dev", &inner]);
    let ok = |o: &std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr))
    };

    b.config(r#"["sleep","60"]"#, Some(&path));
    ok(&b.create(&[], "t1"));
    let pid = b.pid("t1");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    let (flags, _) = cmdline.split_once(" -- ").expect("boot's -- ");
    assert!(
        flags.contains(r#"--net=[{"fd":"#) && flags.contains(&inner),
        "{cmdline}"
    );
    assert!(flags.contains("--network=sandbox"), "{cmdline}");
    assert!(!inet().contains("inet"), "{}", inet());
    // The workload starts and runs (boot took the arguments).
    ok(&b.runsc(&[], &["start", "t1"]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let st = String::from_utf8_lossy(&b.runsc(&[], &["state", "t1"]).stdout).into_owned();
    assert!(st.contains(r#""status": "running""#), "{st}");
    ok(&b.runsc(&[], &["delete", "--force", "t1"]));

    // A create that fails (no such program) leaves the namespace as it was.
    ip(&["-n", n, "addr", "add", "10.77.1.2/24", "dev", &inner]);
    ip(&["-n", n, "route", "add", "default", "via", "10.77.1.1"]);
    b.config(r#"["/nonexistent"]"#, Some(&path));
    assert!(!b.create(&[], "t2").status.success());
    assert!(inet().contains("10.77.1.2/24"), "{}", inet());
    assert!(ip(&["-n", n, "route"]).contains("default via 10.77.1.1"));

    // --network=none: the namespace keeps its addresses.
    b.config(r#"["sleep","60"]"#, Some(&path));
    ok(&b.create(&["--network=none"], "t3"));
    assert!(inet().contains("10.77.1.2/24"), "{}", inet());
    ok(&b.runsc(&[], &["delete", "--force", "t3"]));

    // --network=host without a path: the host's namespace.
    b.config(r#"["sleep","60"]"#, None);
    ok(&b.create(&["--network=host"], "t4"));
    let pid = b.pid("t4");
    let link = |p: String| std::fs::read_link(p).unwrap();
    assert_eq!(
        link(format!("/proc/{pid}/ns/net")),
        link("/proc/self/ns/net".into())
    );
    ok(&b.runsc(&[], &["delete", "--force", "t4"]));
}

/// Starts `runsc --network=sandbox do python3 -c PROG` and returns the child
/// and the sandbox's address (from its announcement line).
fn sandbox_python(
    prog: &str,
) -> (
    std::process::Child,
    String,
    std::io::BufReader<std::process::ChildStdout>,
) {
    use std::io::BufRead;
    let mut child = Command::new(runsc_bin())
        .args(["--network=sandbox", "do", "--", "python3", "-c", prog])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run runsc do");
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("runsc do: sandbox network ")
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address line: {line:?}"))
        .to_string();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    // The workload says when it is ready.
    let mut ready = String::new();
    out.read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "ready", "workload did not start");
    (child, addr, out)
}

/// The host reaches a web server in the sandbox through the veth: every
/// packet goes through the sandbox's own TCP/IP stack.
#[test]
fn host_curl_reaches_http_server_in_sandbox() {
    if !can_run("host_curl_reaches_http_server_in_sandbox") {
        return;
    }
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("SKIP host_curl_reaches_http_server_in_sandbox: curl missing");
        return;
    }
    // http.server without its reverse DNS lookup (there is no resolver
    // behind the veth); serves 3 requests, then exits.
    let prog = r#"
import http.server, os, socketserver, sys
os.chdir("/tmp")
open("/tmp/hello.txt", "w").write("hello from the sandbox\n" * 1000)
class S(http.server.HTTPServer):
    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "sandbox", self.server_address[1]
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
s = S(("0.0.0.0", 8080), H)
print("ready", flush=True)
for _ in range(3):
    s.handle_request()
"#;
    let (mut child, addr, _out) = sandbox_python(prog);
    let url = format!("http://{addr}:8080/hello.txt");
    for _ in 0..3 {
        let out = Command::new("curl")
            .args(["-s", "-m", "20", &url])
            .output()
            .unwrap();
        assert!(out.status.success(), "curl {url}: {:?}", out.status);
        let body = String::from_utf8_lossy(&out.stdout);
        assert_eq!(body, "hello from the sandbox\n".repeat(1000));
    }
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(0));
}

/// UDP echo between the host and the sandbox over the veth.
#[test]
fn host_udp_echo_with_sandbox() {
    if !can_run("host_udp_echo_with_sandbox") {
        return;
    }
    let prog = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
print("ready", flush=True)
for _ in range(3):
    d, a = s.recvfrom(65536)
    s.sendto(d.upper(), a)
"#;
    let (mut child, addr, _out) = sandbox_python(prog);
    let u = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    u.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    for (i, msg) in ["ping", "hello sandbox", &"x".repeat(1400)]
        .iter()
        .enumerate()
    {
        u.send_to(msg.as_bytes(), format!("{addr}:9999")).unwrap();
        let mut buf = [0u8; 2048];
        let (n, from) = u
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("echo {i}: {e}"));
        assert_eq!(&buf[..n], msg.to_uppercase().as_bytes());
        assert_eq!(from.ip().to_string(), addr);
    }
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(0));
}

/// An OCI container with a network namespace prepared as a CNI plugin would
/// (veth, addresses, default route) serves the host: `runsc run` takes the
/// interface over and busybox httpd in the container answers curl on the
/// host through the sandbox's own TCP/IP stack (a 1-2 MB file, byte for
/// byte).
#[test]
fn oci_container_serves_the_host() {
    if !can_run("oci_container_serves_the_host") {
        return;
    }
    if !std::path::Path::new("/bin/busybox").exists()
        || Command::new("curl").arg("--version").output().is_err()
    {
        eprintln!("SKIP oci_container_serves_the_host: busybox or curl missing");
        return;
    }
    let id = std::process::id();
    let p = PreparedNs {
        name: format!("rscnmw{id}"),
        host: format!("nmwh{id}"),
    };
    let inner = format!("nmwe{id}");
    let n = p.name.as_str();
    let net = format!("10.79.{}", id % 200 + 20);
    ip(&["netns", "add", n]);
    ip(&[
        "link", "add", &p.host, "type", "veth", "peer", "name", &inner,
    ]);
    ip(&["link", "set", &inner, "netns", n]);
    ip(&["addr", "add", &format!("{net}.1/24"), "dev", &p.host]);
    ip(&["link", "set", &p.host, "up"]);
    ip(&[
        "-n",
        n,
        "addr",
        "add",
        &format!("{net}.2/24"),
        "dev",
        &inner,
    ]);
    ip(&["-n", n, "link", "set", &inner, "up"]);
    ip(&[
        "-n",
        n,
        "route",
        "add",
        "default",
        "via",
        &format!("{net}.1"),
    ]);

    let b = Bundle::new("serve");
    b.config(
        r#"["busybox","httpd","-f","-p","8080","-h","/"]"#,
        Some(&format!("/run/netns/{n}")),
    );
    let out = b.create(&[], "web");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = b.runsc(&[], &["start", "web"]);
    assert!(out.status.success());
    let want = std::fs::read("/bin/busybox").unwrap();
    let file = b.dir.join("fetched");
    let url = format!("http://{net}.2:8080/bin/busybox");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let o = Command::new("curl")
            .args(["-s", "-f", "-m", "5", "-o", file.to_str().unwrap(), &url])
            .status()
            .unwrap();
        if o.success() {
            break;
        }
        assert!(std::time::Instant::now() < end, "curl {url} kept failing");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        std::fs::read(&file).unwrap() == want,
        "fetched file differs"
    );
    let out = b.runsc(&[], &["delete", "--force", "web"]);
    assert!(out.status.success());
}

/// Like `sandbox_python`, and also returns runsc's stderr (after the
/// announcement line), to be read to its end once the sandbox exits.
fn sandbox_python_err(
    prog: &str,
) -> (
    std::process::Child,
    String,
    std::io::BufReader<std::process::ChildStdout>,
    std::io::BufReader<std::process::ChildStderr>,
) {
    use std::io::BufRead;
    let mut child = Command::new(runsc_bin())
        .args(["--network=sandbox", "do", "--", "python3", "-c", prog])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run runsc do");
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("runsc do: sandbox network ")
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address line: {line:?}"))
        .to_string();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut ready = String::new();
    out.read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "ready", "workload did not start");
    (child, addr, out, err)
}

/// Waits up to `secs` for `child` to exit; kills it (and fails) otherwise.
fn wait_exit(child: &mut std::process::Child, secs: u64) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if start.elapsed() > std::time::Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the sandbox did not exit within {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The rest of runsc's stderr.
fn rest_of(mut err: std::io::BufReader<std::process::ChildStderr>) -> String {
    use std::io::Read;
    let mut s = String::new();
    let _ = err.read_to_string(&mut s);
    s
}

/// A UDP (port 9999, upper-cases) and TCP (port 9998) echo server; exits 0
/// on the datagram "quit".
const ECHO_SERVER: &str = r#"
import select, socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", 9999))
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", 9998))
t.listen(64)
conns = []
print("ready", flush=True)
while True:
    r, _, _ = select.select([u, t] + conns, [], [])
    for s in r:
        if s is u:
            d, a = u.recvfrom(65536)
            if d == b"quit":
                raise SystemExit(0)
            u.sendto(d.upper(), a)
        elif s is t:
            c, _ = t.accept()
            conns.append(c)
        else:
            try:
                d = s.recv(65536)
            except OSError:
                d = b""
            if d:
                s.sendall(d)
            else:
                conns.remove(s)
                s.close()
"#;

/// UDP echo through ECHO_SERVER, retrying lost datagrams.
fn udp_echo(addr: &str, msg: &[u8]) -> Result<(), String> {
    let u = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    u.set_read_timeout(Some(std::time::Duration::from_millis(1000)))
        .unwrap();
    for _ in 0..5 {
        u.send_to(msg, format!("{addr}:9999")).unwrap();
        let mut buf = vec![0u8; 65536];
        if let Ok((n, _)) = u.recv_from(&mut buf) {
            if buf[..n] == msg.to_ascii_uppercase()[..] {
                return Ok(());
            }
            return Err(format!("bad UDP echo of {} bytes: {n} bytes", msg.len()));
        }
    }
    Err(format!("no UDP echo of {} bytes", msg.len()))
}

/// TCP echo of `n` bytes through ECHO_SERVER.
fn tcp_echo(addr: &str, n: usize) -> Result<(), String> {
    use std::io::{Read, Write};
    let sa: std::net::SocketAddr = format!("{addr}:9998").parse().unwrap();
    let mut c = std::net::TcpStream::connect_timeout(&sa, std::time::Duration::from_secs(10))
        .map_err(|e| format!("TCP connect: {e}"))?;
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let data: Vec<u8> = (0..n).map(|i| (i * 7 + i / 251) as u8).collect();
    let w = {
        let mut c2 = c.try_clone().unwrap();
        let d = data.clone();
        std::thread::spawn(move || c2.write_all(&d))
    };
    let mut got = vec![0u8; n];
    c.read_exact(&mut got)
        .map_err(|e| format!("TCP echo read: {e}"))?;
    w.join().unwrap().map_err(|e| format!("TCP write: {e}"))?;
    if got != data {
        return Err("TCP echo differs".into());
    }
    Ok(())
}

/// xorshift64*: the fuzzer's generator (fixed seed, reproducible).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
    fn rbytes(&mut self, max: u64) -> Vec<u8> {
        let n = self.below(max) as usize;
        self.bytes(n)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// One of `v`, or (one time in `v.len() + 1`) any value.
    fn pick_any<T: Copy + TryFrom<u64>>(&mut self, v: &[T]) -> T {
        let i = self.below(v.len() as u64 + 1) as usize;
        match v.get(i) {
            Some(&x) => x,
            None => {
                let x = self.next() & 0xffff;
                T::try_from(x)
                    .or_else(|_| T::try_from(x & 0xff))
                    .unwrap_or(v[0])
            }
        }
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }
}

fn csum16(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in data.chunks(2) {
        s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Who the fuzzer talks to.
struct Peers {
    smac: [u8; 6],
    hmac: [u8; 6],
    sip: [u8; 4],
    hip: [u8; 4],
}

/// An IPv4 packet with header length, total length, flags/fragment and
/// options sometimes wrong.
fn fz_ipv4(r: &mut Rng, p: &Peers, proto: u8, payload: &[u8]) -> Vec<u8> {
    let opts = if r.chance(8) {
        {
            let n = 4 * r.below(11) as usize;
            r.bytes(n)
        }
    } else {
        Vec::new()
    };
    let ihl = if r.chance(16) {
        r.below(16) as u8
    } else {
        5 + (opts.len() / 4) as u8
    };
    let mut len = 20 + opts.len() + payload.len();
    if r.chance(10) {
        len = r.below(65536) as usize;
    }
    let (flags, frag) = match r.below(10) {
        0 => (0x20u16, r.below(0x2000) as u16), // MF, any offset
        1 => (0, r.below(0x2000) as u16),       // last fragment
        2 => (r.below(8) as u16 * 0x2000, 0),
        _ => (0x4000, 0), // DF
    };
    let ff = (flags & 0xe000) | (frag & 0x1fff);
    let src = if r.chance(6) {
        r.bytes(4).try_into().unwrap()
    } else {
        p.hip
    };
    let dst = match r.below(12) {
        0 => [255, 255, 255, 255],
        1 => [224, 0, 0, r.next() as u8],
        2 => r.bytes(4).try_into().unwrap(),
        3 => [p.sip[0], p.sip[1], p.sip[2], 3],
        _ => p.sip,
    };
    let ttl = if r.chance(10) { 0 } else { 64 };
    let mut h = vec![
        if r.chance(20) {
            (r.below(16) as u8) << 4
        } else {
            0x40
        } | (ihl & 15),
        r.next() as u8,
        (len >> 8) as u8,
        len as u8,
        r.next() as u8,
        r.next() as u8,
        (ff >> 8) as u8,
        ff as u8,
        ttl,
        proto,
        0,
        0,
    ];
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(&opts);
    let c = csum16(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn fz_tcp(r: &mut Rng, open: bool) -> Vec<u8> {
    let sport = if r.chance(4) {
        r.pick(&[0u16, 1, 9998, 65535])
    } else {
        1024 + r.below(60000) as u16
    };
    let dport = if open {
        9998
    } else {
        r.pick_any::<u16>(&[9998u16, 80, 0, 22])
    };
    let flags = match r.below(6) {
        0 | 1 => 0x02,       // SYN (flood)
        2 => r.next() as u8, // any combination
        3 => r.pick(&[
            0x10u8, 0x11, 0x04, 0x14, 0x18, 0x12, 0x03, 0x06, 0x29, 0xff, 0,
        ]),
        _ => 0x10 | (r.next() as u8 & 0x0f),
    };
    let window: u16 = r.pick_any::<u16>(&[0, 1, 65535]);
    let mut opts = Vec::new();
    if r.chance(2) {
        let n = r.below(6);
        for _ in 0..n {
            match r.below(7) {
                0 => opts.extend_from_slice(&[2, 4, r.next() as u8, r.next() as u8]), // MSS
                1 => opts.extend_from_slice(&[3, 3, r.below(20) as u8]), // window scale
                2 => opts.extend_from_slice(&[4, 2]),                    // SACK permitted
                3 => {
                    let k = r.below(5) as u8;
                    opts.extend_from_slice(&[5, 2 + 8 * k]);
                    opts.extend(r.bytes(8 * k as usize));
                }
                4 => {
                    opts.push(8);
                    opts.push(10);
                    opts.extend(r.bytes(8));
                }
                5 => opts.extend(r.rbytes(8)), // garbage, bad lengths
                _ => opts.extend_from_slice(&[1, 0]),
            }
        }
    }
    while opts.len() % 4 != 0 {
        opts.push(0);
    }
    opts.truncate(40);
    let doff = if r.chance(10) {
        r.below(16) as u8
    } else {
        5 + (opts.len() / 4) as u8
    };
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend(r.bytes(8)); // seq, ack
    t.push(doff << 4 | (r.below(2) as u8));
    t.push(flags);
    t.extend_from_slice(&window.to_be_bytes());
    t.extend(r.bytes(2)); // checksum (not verified: rx offload)
    t.extend_from_slice(&(if r.chance(4) { r.next() as u16 } else { 0 }).to_be_bytes());
    t.extend(opts);
    if r.chance(3) {
        let n = r.below(1400) as usize;
        t.extend(r.bytes(n));
    }
    t
}

fn fz_udp(r: &mut Rng) -> Vec<u8> {
    let dport = r.pick_any::<u16>(&[9999u16, 9999, 53, 0, 67, 68]);
    let n = r.below(1500) as usize;
    let mut len = 8 + n;
    if r.chance(5) {
        len = r.below(65536) as usize;
    }
    let mut u = Vec::new();
    u.extend_from_slice(&(1024 + r.below(60000) as u16).to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(len as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    // Echoed payloads stay small so replies do not flood the host.
    u.extend(r.bytes(n.min(64)));
    u
}

fn fz_icmp4(r: &mut Rng) -> Vec<u8> {
    let ty = r.pick_any::<u8>(&[8u8, 0, 3, 4, 5, 11, 12, 13, 17]);
    let mut m = vec![ty, r.below(16) as u8, 0, 0];
    m.extend(r.bytes(4));
    if ty == 3 || ty == 11 || ty == 12 || ty == 5 {
        // An embedded (maybe bogus) IP header + 8 bytes.
        m.extend_from_slice(&[
            0x45,
            0,
            0,
            40,
            0,
            0,
            0x40,
            0,
            64,
            r.pick(&[6u8, 17, 1]),
            0,
            0,
        ]);
        m.extend(r.bytes(16));
    } else {
        let n = r.below(200) as usize;
        m.extend(r.bytes(n));
    }
    let c = csum16(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn fz_ipv6(r: &mut Rng, p: &Peers) -> Vec<u8> {
    let mut src = [0u8; 16];
    src[0] = 0xfe;
    src[1] = 0x80;
    src[8..].copy_from_slice(&r.bytes(8));
    if r.chance(5) {
        src = r.bytes(16).try_into().unwrap();
    }
    let mut dst = [0u8; 16];
    match r.below(4) {
        0 => dst = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        1 => {
            dst = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0];
            dst[13..].copy_from_slice(&p.smac[3..]);
        }
        2 => dst = r.bytes(16).try_into().unwrap(),
        _ => {
            dst[0] = 0xfe;
            dst[1] = 0x80;
            dst[8..].copy_from_slice(&[
                p.smac[0] ^ 2,
                p.smac[1],
                p.smac[2],
                0xff,
                0xfe,
                p.smac[3],
                p.smac[4],
                p.smac[5],
            ]);
        }
    }
    let mut next = r.pick_any::<u8>(&[58u8, 58, 6, 17, 0, 43, 44, 60, 59]);
    let first_next = next;
    let mut body = Vec::new();
    // Extension headers (hop-by-hop, routing, fragment, destination).
    let mut chain = Vec::new();
    while matches!(next, 0 | 43 | 44 | 60) && chain.len() < 4 {
        let after = r.pick(&[58u8, 6, 17, 0, 44, 60, 59]);
        let len = if next == 44 { 0 } else { r.below(4) as u8 };
        let mut e = vec![after, len];
        e.extend(r.bytes(6 + 8 * len as usize));
        if next == 0 && r.chance(2) {
            // Router alert / jumbo / padding options.
            e[2..6].copy_from_slice(&[r.pick(&[5u8, 0xc2, 1, 0]), 4, 0, 0]);
        }
        chain.push(e);
        next = after;
    }
    for e in &chain {
        body.extend_from_slice(e);
    }
    let l4 = match next {
        58 => {
            let ty = r.pick_any::<u8>(&[128u8, 129, 133, 134, 135, 136, 137, 1, 2, 3, 4, 143]);
            let mut m = vec![ty, r.below(4) as u8, 0, 0];
            m.extend(r.bytes(4));
            if ty == 135 || ty == 136 {
                m.extend_from_slice(&dst); // target
                if r.chance(2) {
                    m.extend_from_slice(&[r.pick(&[1u8, 2, 3, 5, 0]), r.below(3) as u8]);
                    m.extend(r.bytes(6));
                }
            } else if ty == 134 {
                m.extend(r.bytes(8));
                m.extend_from_slice(&[3, 4, 64, 0xc0]);
                m.extend(r.bytes(28));
            }
            let n = r.below(100) as usize;
            m.extend(r.bytes(n));
            m
        }
        6 => fz_tcp(r, false),
        17 => fz_udp(r),
        _ => r.rbytes(64),
    };
    body.extend(l4);
    let mut plen = body.len();
    if r.chance(8) {
        plen = r.below(65536) as usize;
    }
    let mut h = vec![0x60, r.next() as u8, 0, 0];
    h.extend_from_slice(&(plen as u16).to_be_bytes());
    h.push(first_next);
    h.push(r.pick(&[255u8, 64, 1, 0]));
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend(body);
    h
}

fn fz_arp(r: &mut Rng, p: &Peers) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, r.pick(&[1u8, 2, 1, 3, 0])];
    if r.chance(8) {
        a[..6].copy_from_slice(&r.bytes(6));
    }
    // Never claims the host's address from another MAC (that is a real
    // poisoning, answered as Linux would: the test would then talk to a
    // bogus MAC).
    let (smac, sip) = if r.chance(3) {
        let mut ip: [u8; 4] = r.bytes(4).try_into().unwrap();
        if ip == p.hip {
            ip[3] ^= 0x80;
        }
        (r.bytes(6), ip.to_vec())
    } else {
        (p.hmac.to_vec(), p.hip.to_vec())
    };
    a.extend(smac);
    a.extend(sip);
    a.extend(r.bytes(6));
    a.extend_from_slice(&if r.chance(3) {
        r.bytes(4).try_into().unwrap()
    } else {
        p.sip
    });
    a
}

/// One hostile frame.
fn fz_frame(r: &mut Rng, p: &Peers) -> Vec<u8> {
    let kind = r.below(20);
    if kind == 0 {
        let n = r.below(1600) as usize;
        return r.bytes(n);
    }
    let (ethertype, payload): (u16, Vec<u8>) = match kind {
        1..=2 => (0x0806, fz_arp(r, p)),
        3..=6 => {
            let t = fz_tcp(r, kind == 3);
            (0x0800, fz_ipv4(r, p, 6, &t))
        }
        7..=9 => {
            let u = fz_udp(r);
            (0x0800, fz_ipv4(r, p, 17, &u))
        }
        10..=11 => {
            let m = fz_icmp4(r);
            (0x0800, fz_ipv4(r, p, 1, &m))
        }
        12 => {
            let proto = r.next() as u8;
            let b = r.rbytes(100);
            (0x0800, fz_ipv4(r, p, proto, &b))
        }
        13..=17 => (0x86dd, fz_ipv6(r, p)),
        18 => (r.next() as u16, r.rbytes(200)),
        _ => (0x0800, r.rbytes(200)),
    };
    let dst = match r.below(10) {
        0 => [0xff; 6],
        1 => [0x01, 0, 0x5e, 0, 0, r.next() as u8],
        2 => [0x33, 0x33, 0xff, p.smac[3], p.smac[4], p.smac[5]],
        3 => r.bytes(6).try_into().unwrap(),
        _ => p.smac,
    };
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&p.hmac);
    // VLAN tags (802.1Q, QinQ).
    for _ in 0..(if r.chance(10) { 1 + r.below(2) } else { 0 }) {
        f.extend_from_slice(&r.pick(&[0x8100u16, 0x88a8]).to_be_bytes());
        f.extend(r.bytes(2));
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend(payload);
    // Mutations: flipped bytes, truncation, garbage tails, jumbo sizes.
    match r.below(8) {
        0 => {
            for _ in 0..1 + r.below(4) {
                let i = r.below(f.len().min(80) as u64) as usize;
                f[i] ^= 1 << r.below(8);
            }
        }
        1 => f.truncate(r.below(f.len() as u64 + 1) as usize),
        2 => {
            let n = r.below(100) as usize;
            f.extend(r.bytes(n));
        }
        3 if r.chance(4) => {
            // Up to the MTU and beyond it (the host refuses: EMSGSIZE).
            let n = r.pick(&[1514usize, 1518, 1522, 1600, 9018, 65535]);
            f.resize(n, 0xa5);
        }
        _ => {}
    }
    f
}

/// An AF_PACKET raw socket bound to `ifname` on the host.
fn host_packet_socket(ifname: &str) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    let idx = std::fs::read_to_string(format!("/sys/class/net/{ifname}/ifindex"))
        .expect("ifindex")
        .trim()
        .parse::<i32>()
        .unwrap();
    // SAFETY: plain socket(2).
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            (libc::ETH_P_ALL as u16).to_be() as i32,
        )
    };
    assert!(
        fd >= 0,
        "AF_PACKET socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a fresh fd we own.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sa.sll_ifindex = idx;
    // SAFETY: `sa` is a valid sockaddr_ll.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
    fd
}

fn parse_mac(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s
        .trim()
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

/// Hostile frames on the sandbox's link (injected on the host side of its
/// veth) never crash the stack: afterwards it still echoes over UDP and
/// TCP, and nothing panicked. `RSC_LINKFUZZ_SEED` changes the frames,
/// `RSC_LINKFUZZ_FRAMES` their number.
#[test]
fn hostile_frames_on_the_link_never_crash_the_stack() {
    if !can_run("hostile_frames_on_the_link_never_crash_the_stack") {
        return;
    }
    let seed: u64 = std::env::var("RSC_LINKFUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026);
    let count: usize = std::env::var("RSC_LINKFUZZ_FRAMES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40_000);
    eprintln!("link fuzz: seed {seed} (RSC_LINKFUZZ_SEED), {count} frames (RSC_LINKFUZZ_FRAMES)");
    let (mut child, addr, _out, err) = sandbox_python_err(ECHO_SERVER);
    let pid = child.id();
    let host_if = format!("rsc{pid}h");
    udp_echo(&addr, b"before").unwrap();
    let neigh = ip(&["neigh", "show", &addr, "dev", &host_if]);
    let smac = neigh
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap_or_else(|| panic!("no neighbour entry for {addr}: {neigh}"));
    let sip: std::net::Ipv4Addr = addr.parse().unwrap();
    let sip = sip.octets();
    let peers = Peers {
        smac: parse_mac(smac),
        hmac: parse_mac(
            &std::fs::read_to_string(format!("/sys/class/net/{host_if}/address")).unwrap(),
        ),
        sip,
        hip: [sip[0], sip[1], sip[2], 1],
    };
    let fd = host_packet_socket(&host_if);
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let (mut sent, mut refused) = (0usize, 0usize);
    let start = std::time::Instant::now();
    for i in 0..count {
        let f = fz_frame(&mut r, &peers);
        // SAFETY: `f` is a valid buffer.
        let n = unsafe { libc::send(fd.as_raw_fd(), f.as_ptr().cast(), f.len(), 0) };
        if n < 0 {
            refused += 1;
        } else {
            sent += 1;
        }
        if i % 256 == 255 {
            // Let the stack (and the host's answers to its RSTs) keep up:
            // this is about hostile content, not a bandwidth contest (the
            // sandbox's socket buffer would drop most of an unpaced burst).
            std::thread::sleep(std::time::Duration::from_millis(3));
            assert!(
                child.try_wait().unwrap().is_none(),
                "the sandbox died after {i} frames"
            );
        }
    }
    eprintln!(
        "link fuzz: {sent} frames sent, {refused} refused by the host, {:?}",
        start.elapsed()
    );
    // A mutated ARP frame may have claimed the host's address for another
    // MAC (poisoning the sandbox's ARP cache, as it would Linux's): the host
    // announces itself again.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&peers.hmac);
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&peers.hmac);
    arp.extend_from_slice(&peers.hip);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&peers.sip);
    std::thread::sleep(std::time::Duration::from_millis(100));
    // SAFETY: `arp` is a valid buffer.
    let n = unsafe { libc::send(fd.as_raw_fd(), arp.as_ptr().cast(), arp.len(), 0) };
    assert_eq!(n, arp.len() as isize);
    drop(fd);
    assert!(child.try_wait().unwrap().is_none(), "the sandbox died");
    // Still serving: UDP echo (small and large) and a TCP echo of 256 KiB.
    // (No reassembly in netstack: datagrams up to the MTU.)
    for msg in [
        &b"after the storm"[..],
        &[b'z'; 1400][..],
        &[b'y'; 1472][..],
    ] {
        udp_echo(&addr, msg).unwrap();
    }
    tcp_echo(&addr, 256 << 10).unwrap();
    let u = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    u.send_to(b"quit", format!("{addr}:9999")).unwrap();
    let st = wait_exit(&mut child, 20);
    let err = rest_of(err);
    assert!(!err.contains("panicked"), "runsc stderr: {err}");
    assert_eq!(st.code(), Some(0), "runsc stderr: {err}");
}

/// CPU time (user + system, in clock ticks) of `pid` and its descendants.
fn tree_cpu_ticks(pid: u32) -> u64 {
    let mut procs: Vec<(u32, u32, u64)> = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // Fields after the command (which may hold spaces) in parentheses.
        let Some(rest) = stat.rsplit_once(')').map(|x| x.1) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() < 13 {
            continue;
        }
        let ppid = f[1].parse().unwrap_or(0);
        let t = f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
        procs.push((p, ppid, t));
    }
    let mut tree = vec![pid];
    let mut total = 0;
    let mut k = 0;
    while k < tree.len() {
        let cur = tree[k];
        for &(p, pp, t) in &procs {
            if p == cur {
                total += t;
            }
            if pp == cur && !tree.contains(&p) {
                tree.push(p);
            }
        }
        k += 1;
    }
    total
}

/// Deleting the host side of the veth while the sandbox runs: its stack
/// thread does not spin (the link's fd reports the error once, then
/// nothing), nothing panics, and the sandbox exits cleanly with its
/// workload.
#[test]
fn host_veth_deletion_does_not_spin() {
    if !can_run("host_veth_deletion_does_not_spin") {
        return;
    }
    // Keeps sending to the host (ARP, then nothing answers) for 4 s.
    let prog = r#"
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
print("ready", flush=True)
d, a = s.recvfrom(100)
s.sendto(d, a)
end = time.time() + 4
while time.time() < end:
    try:
        s.sendto(b"x", a)
    except OSError:
        pass
    time.sleep(0.1)
print("done", flush=True)
"#;
    let (mut child, addr, mut out, err) = sandbox_python_err(prog);
    let pid = child.id();
    // The workload's peer is the host: the sandbox learnt its MAC.
    let u = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    u.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    u.send_to(b"hi", format!("{addr}:9999")).unwrap();
    let mut buf = [0u8; 16];
    u.recv_from(&mut buf).expect("echo before the deletion");
    ip(&["link", "del", &format!("rsc{pid}h")]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let t0 = tree_cpu_ticks(pid);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let used = tree_cpu_ticks(pid) - t0;
    // SAFETY: sysconf cannot fail for _SC_CLK_TCK.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    assert!(
        used * 100 < hz * 2 * 20,
        "the sandbox used {used} ticks ({hz}/s) of CPU in 2 s after its link went away"
    );
    eprintln!("after the veth deletion: {used} ticks ({hz}/s) of CPU in 2 s");
    let t = std::time::Instant::now();
    let st = wait_exit(&mut child, 20);
    eprintln!("exit {:?} after {:?}", st.code(), t.elapsed());
    let mut line = String::new();
    use std::io::BufRead;
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "done");
    let err = rest_of(err);
    assert!(!err.contains("panicked"), "runsc stderr: {err}");
    assert_eq!(st.code(), Some(0), "runsc stderr: {err}");
    assert!(!rsc_link(pid));
}

/// `busybox route -n` and /proc/net/route in `runsc --network=sandbox do`
/// against a native namespace with the same link (eth0 with the sandbox's
/// /30 and default route): byte for byte.
#[test]
fn proc_net_route_matches_native() {
    if !can_run("proc_net_route_matches_native") {
        return;
    }
    let script = "/bin/busybox route -n; /bin/busybox cat /proc/net/route";
    let out = Command::new(runsc_bin())
        .args([
            "--network=sandbox",
            "do",
            "--",
            "/bin/busybox",
            "sh",
            "-c",
            script,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run runsc do");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    // "runsc do: sandbox network 10.a.b.2/30 (host side rsc<pid>h 10.a.b.1)"
    let line = err
        .lines()
        .find(|l| l.starts_with("runsc do: sandbox network 10."))
        .unwrap_or_else(|| panic!("no address line: {err}"));
    let addr = line
        .split_whitespace()
        .nth(4)
        .and_then(|a| a.strip_suffix("/30"))
        .unwrap_or_else(|| panic!("{line}"));
    let gw = line
        .trim_end_matches(')')
        .rsplit(' ')
        .next()
        .unwrap_or_else(|| panic!("{line}"));
    let native = Command::new("/usr/bin/unshare")
        .args([
            "--net",
            "/bin/sh",
            "-c",
            &format!(
                "set -e; ip link set lo up; ip link add eth0 type veth peer name v1; \
                 ip addr add {addr}/30 dev eth0; ip link set v1 up; ip link set eth0 up; \
                 ip route add default via {gw}; {script}"
            ),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run unshare");
    assert!(
        native.status.success(),
        "native: {}",
        String::from_utf8_lossy(&native.stderr)
    );
    let (sb, nat) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&native.stdout),
    );
    assert_eq!(sb, nat, "sandbox vs native");
    assert!(sb.contains(&format!("0.0.0.0         {gw}")), "{sb}");
}
