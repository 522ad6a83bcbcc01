//! `--network=host` (sentry::net::hostinet): the sandbox's AF_INET/AF_INET6
//! sockets are host sockets, so a sandboxed program talks to host programs
//! over the host's loopback. Each test runs python3 in the sandbox against
//! a peer in this test process (the same program natively would test
//! nothing of the sandbox, hence no native run).
//!
//! Needs: python3 (/usr/bin/python3).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use tests::{extra_runsc_flags, runsc_bin, Cmd, Exit, RunOutput, PLATFORMS};

const PY: &str = "/usr/bin/python3";

fn run_py(platform: &str, flags: &[&str], prog: &str, args: &[String]) -> RunOutput {
    let mut argv = vec![PY.to_string(), "-c".into(), prog.to_string()];
    argv.extend(args.iter().cloned());
    Cmd::new(argv)
        .timeout(Duration::from_secs(60))
        .run_sandbox_with(platform, flags)
}

fn assert_ok(out: &RunOutput) {
    assert_eq!(out.exit, Exit::Code(0), "\n{}", out.describe());
}

/// A sandboxed client reaches a TCP server of the host (blocking connect,
/// send, receive until EOF).
#[test]
fn tcp_client_in_sandbox_host_server() {
    for p in PLATFORMS {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut b = [0u8; 5];
            c.read_exact(&mut b).unwrap();
            c.write_all(b"reply:").unwrap();
            c.write_all(&b).unwrap();
            b
        });
        let prog = r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(b"hello")
data = b""
while True:
    d = s.recv(100)
    if not d:
        break
    data += d
print(data.decode())
print(s.getpeername()[1] == int(sys.argv[1]), s.family == socket.AF_INET)
"#;
        let out = run_py(p, &["--network=host"], prog, &[port.to_string()]);
        assert_ok(&out);
        assert_eq!(&server.join().unwrap(), b"hello");
        assert_eq!(out.stdout, "reply:hello\nTrue True\n", "{}", out.describe());
    }
}

/// A sandboxed TCP server (IPv4 and IPv6 loopback) serves a host client,
/// through asyncio (epoll, non-blocking accept).
#[test]
fn tcp_server_in_sandbox_host_client() {
    let prog = r#"
import asyncio, socket, sys
fam = int(sys.argv[1])
async def handle(r, w):
    d = await r.readexactly(4)
    w.write(b"got:" + d)
    await w.drain()
    w.close()
async def main():
    host = "127.0.0.1" if fam == 4 else "::1"
    srv = await asyncio.start_server(handle, host, 0)
    print(srv.sockets[0].getsockname()[1], flush=True)
    async with srv:
        await asyncio.wait_for(srv.serve_forever(), 20)
try:
    asyncio.run(main())
except asyncio.TimeoutError:
    pass
"#;
    for p in PLATFORMS {
        for fam in ["4", "6"] {
            let mut args = vec![format!("--platform={p}"), "--network=host".into()];
            args.extend(extra_runsc_flags());
            let mut child = Command::new(runsc_bin())
                .args(&args)
                .args(["do", "--", PY, "-c", prog, fam])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            let port: u16 = line.trim().parse().unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("no port from the sandbox: {line:?}")
            });
            let addr = if fam == "4" {
                format!("127.0.0.1:{port}")
            } else {
                format!("[::1]:{port}")
            };
            let mut c = TcpStream::connect(&addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            c.write_all(b"ping").unwrap();
            let mut got = Vec::new();
            c.read_to_end(&mut got).unwrap();
            let _ = child.kill();
            let _ = child.wait();
            assert_eq!(got, b"got:ping", "IPv{fam}");
        }
    }
}

/// UDP echo: the sandbox sends to a host socket and gets the echo back from
/// the right address (sendto/recvfrom, connect + send/recv).
#[test]
fn udp_echo_with_the_host() {
    for p in PLATFORMS {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        u.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let port = u.local_addr().unwrap().port();
        let echo = std::thread::spawn(move || {
            for _ in 0..2 {
                let mut b = [0u8; 100];
                let (n, from) = u.recv_from(&mut b).unwrap();
                u.send_to(&b[..n], from).unwrap();
            }
        });
        let prog = r#"
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(20)
s.sendto(b"one", ("127.0.0.1", port))
d, a = s.recvfrom(100)
print(d.decode(), a[1] == port)
s.connect(("127.0.0.1", port))
s.send(b"two-longer")
# Truncated datagram: MSG_TRUNC reports the full length.
print(s.recv(3).decode())
"#;
        let out = run_py(p, &["--network=host"], prog, &[port.to_string()]);
        echo.join().unwrap();
        assert_ok(&out);
        assert_eq!(out.stdout, "one True\ntwo\n", "{}", out.describe());
    }
}

/// Socket options: the allow-list passes known ones to the host, anything
/// else is ENOPROTOOPT (never the host's); refused connections and
/// FIONREAD work.
#[test]
fn sockopt_allow_list() {
    let prog = r#"
import errno, fcntl, socket, struct, termios
s = socket.socket()
def err(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
print("unknown-get", err(lambda: s.getsockopt(socket.SOL_SOCKET, 9999)))
print("unknown-set", err(lambda: s.setsockopt(socket.SOL_SOCKET, 9999, 1)))
print("bindtodevice", err(lambda: s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"lo")))
print("unknown-level", err(lambda: s.getsockopt(12345, 1)))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
print("nodelay", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
print("reuseaddr", s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR))
print("protocol", s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL))
print("cc", len(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0")) > 0)
print("cc-set", err(lambda: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"reno")))
l = socket.socket()
l.bind(("127.0.0.1", 0))
port = l.getsockname()[1]
l.close()
print("refused", err(lambda: s.connect(("127.0.0.1", port))))
l = socket.socket()
l.bind(("127.0.0.1", 0)); l.listen()
print("acceptconn", l.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
c = socket.create_connection(l.getsockname())
a, _ = l.accept()
c.sendall(b"12345")
import select
select.select([a], [], [], 5)
print("fionread", struct.unpack("i", fcntl.ioctl(a, termios.FIONREAD, b"\0" * 4))[0])
print("tcpinfo", len(a.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)))
print("raw", err(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)))
"#;
    for p in PLATFORMS {
        let out = run_py(p, &["--network=host"], prog, &[]);
        assert_ok(&out);
        let want = "unknown-get ENOPROTOOPT\nunknown-set ENOPROTOOPT\n\
                    bindtodevice ENOPROTOOPT\nunknown-level ENOPROTOOPT\nnodelay 1\n\
                    reuseaddr 1\nprotocol 6\ncc True\ncc-set ENOPROTOOPT\n\
                    refused ECONNREFUSED\nacceptconn 1\nfionread 5\ntcpinfo 104\nraw EPERM\n";
        assert_eq!(out.stdout, want, "{}", out.describe());
    }
}

/// Without --network=host no Internet socket reaches the host: socket(2)
/// fails (EAFNOSUPPORT until the sandbox's own stack exists).
/// Without --network=host the sandbox's sockets are on its own stack: its
/// 127.0.0.1 is not the host's, so a host listener there is unreachable.
#[test]
fn no_host_network_by_default() {
    let l4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let p4 = l4.local_addr().unwrap().port();
    let l6 = TcpListener::bind("[::1]:0").ok();
    let p6 = l6.as_ref().map_or(p4, |l| l.local_addr().unwrap().port());
    let prog = r#"
import errno, socket, sys
for fam, host, port in ((socket.AF_INET, "127.0.0.1", sys.argv[1]), (socket.AF_INET6, "::1", sys.argv[2])):
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.connect((host, int(port)))
        print("connected")
    except OSError as e:
        print(errno.errorcode[e.errno])
"#;
    for p in PLATFORMS {
        let out = run_py(p, &[], prog, &[p4.to_string(), p6.to_string()]);
        assert_ok(&out);
        assert_eq!(
            out.stdout,
            "ECONNREFUSED\nECONNREFUSED\n",
            "{}",
            out.describe()
        );
    }
}

/// epoll on hostinet sockets, edge-triggered: one report per new event, as
/// natively (the host socket's edges reach the sandbox's wait queue). The
/// pause after sending lets the host's wakeup reach the sandbox before the
/// wait: a wait that finds the data by its level check first would see the
/// late wakeup as a second edge (README, known gaps).
#[test]
fn epoll_edge_triggered_matches_native() {
    let prog = r#"
import select, socket, time
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
c = socket.create_connection(l.getsockname()); a, _ = l.accept()
a.setblocking(False)
ep = select.epoll()
ep.register(a, select.EPOLLIN | select.EPOLLET)
print("idle", ep.poll(0.1))
c.sendall(b"abc")
time.sleep(0.3)
print("first", [e for _, e in ep.poll(5)])
print("again", ep.poll(0.1))
print(a.recv(1))
print("after partial read", ep.poll(0.1))
c.sendall(b"d")
print("new data", [e for _, e in ep.poll(5)])
c.close()
print("eof", [e & select.EPOLLIN for _, e in ep.poll(5)])
"#;
    let native = Cmd::new([PY, "-c", prog]).run_native();
    assert_ok(&native);
    for p in PLATFORMS {
        let out = run_py(p, &["--network=host"], prog, &[]);
        assert_ok(&out);
        assert_eq!(out.stdout, native.stdout, "{}", out.describe());
    }
}

/// The sentry keeps the host's network namespace with --network=host only.
#[test]
fn sentry_netns_follows_the_mode() {
    let mine = std::fs::read_link("/proc/self/ns/net").unwrap();
    for p in PLATFORMS {
        for (mode, same) in [("host", true), ("none", false)] {
            let mut args = vec![format!("--platform={p}"), format!("--network={mode}")];
            args.extend(extra_runsc_flags());
            let mut child = Command::new(runsc_bin())
                .args(&args)
                .args(["do", "--", PY, "-c", "import sys; sys.stdin.read()"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            // The sentry is `runsc ... boot`, a child of `runsc do`.
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            let sentry = loop {
                let found = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
                    let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                    let ppid: u32 = stat[stat.rfind(')')? + 2..]
                        .split(' ')
                        .nth(1)?
                        .parse()
                        .ok()?;
                    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                    (ppid == child.id() && cmd.split(|&b| b == 0).any(|a| a == b"boot"))
                        .then_some(pid)
                });
                if let Some(pid) = found {
                    break pid;
                }
                assert!(std::time::Instant::now() < deadline, "no sentry");
                std::thread::sleep(Duration::from_millis(20));
            };
            let ns = std::fs::read_link(format!("/proc/{sentry}/ns/net")).unwrap();
            drop(child.stdin.take());
            let _ = child.wait();
            assert_eq!(
                ns == mine,
                same,
                "--network={mode}: sentry in {ns:?}, host {mine:?}"
            );
        }
    }
}
