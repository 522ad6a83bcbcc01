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
