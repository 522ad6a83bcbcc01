//! Network workloads: a real server and its client in ONE sandbox, talking
//! over the loopback (python3's http.server + curl, redis-server +
//! redis-benchmark, nginx + curl). Each runs as one `sh -c` script, natively
//! and under `runsc do`; the script checks its own results and prints only
//! deterministic lines, so stdout and exit status must match.
//!
//! Each workload has two tests: `<name>_native` (always run: the script must
//! pass on the host) and `<name>` (native, then the sandbox). The sandbox ones
//! run natively and in the sandbox, with the same output.
//!
//! Needs: python3, curl, redis-server, redis-tools, nginx(-light); `bash
//! .ci/run` installs them. A case whose binaries are missing is skipped with a
//! message on stderr.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use tests::{expect_native_ok, Cmd, Failures, PLATFORMS};

/// A TCP port free on the host's loopback now (the sandbox has a network
/// stack of its own, where any port is free).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// Whether every binary exists; if not, prints why the case is skipped.
fn have(case: &str, bins: &[(&str, &str)]) -> bool {
    let missing: Vec<String> = bins
        .iter()
        .filter(|(p, _)| !Path::new(p).exists())
        .map(|(p, pkg)| format!("{p} (Debian package {pkg})"))
        .collect();
    if missing.is_empty() {
        return true;
    }
    eprintln!(
        "SKIP {case}: missing {} (`bash .ci/run` installs them)",
        missing.join(", ")
    );
    false
}

/// Shell functions every script may use. `wait_for CMD...` retries CMD for up
/// to 20 s; `$d` is a fresh directory, removed on exit, when the server whose
/// pid the script put in `$srv` is killed.
const PRELUDE: &str = r#"set -e
d=$(mktemp -d)
chmod 755 "$d"
srv=""
cleanup() {
    if [ -n "$srv" ]; then
        kill "$srv" 2>/dev/null || true
        wait "$srv" 2>/dev/null || true
    fi
    rm -rf "$d"
}
trap cleanup EXIT
wait_for() {
    i=0
    until "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        dead=""
        if [ -n "$srv" ] && ! kill -0 "$srv" 2>/dev/null; then dead=1; fi
        if [ $i -ge 200 ] || [ -n "$dead" ]; then
            if [ -n "$dead" ]; then echo "the server exited"; else echo "timed out waiting for: $*"; fi
            for f in "$d"/*.log; do [ -f "$f" ] && { echo "--- $f"; cat "$f"; }; done
            exit 1
        fi
        sleep 0.1
    done
}
"#;

/// The command running `script` (after [`PRELUDE`]) with the port as `$1`.
fn script_cmd(script: &str, port: u16, timeout: Duration) -> Cmd {
    Cmd::new([
        "/bin/sh".to_string(),
        "-c".to_string(),
        format!("{PRELUDE}{script}"),
        "sh".to_string(),
        port.to_string(),
    ])
    .timeout(timeout)
}

/// Runs the script natively (must exit 0 and print `expected`) and, if
/// `sandbox`, under every platform: stdout and exit status must match the
/// native run.
fn net_workload(name: &str, script: &str, expected: &str, timeout_secs: u64, sandbox: bool) {
    let timeout = Duration::from_secs(timeout_secs);
    let mut f = Failures::new();
    let native = script_cmd(script, free_port(), timeout).run_native();
    if !expect_native_ok(&native, 0, &mut f) {
        f.check(&format!("network workload {name} (native)"));
        return;
    }
    if native.stdout != expected {
        f.add(format!(
            "native stdout is not the expected\n{expected}\n{}",
            native.describe()
        ));
        f.check(&format!("network workload {name} (native)"));
        return;
    }
    eprintln!("{name}: native {:.1}s", native.elapsed.as_secs_f64());
    if sandbox {
        for platform in PLATFORMS {
            let sb = script_cmd(script, free_port(), timeout).run_sandbox(platform);
            eprintln!(
                "{name}: sandbox --platform={platform} {:.1}s",
                sb.elapsed.as_secs_f64()
            );
            if sb.exit != native.exit || sb.stdout != native.stdout {
                f.add(format!(
                    "--platform={platform}: sandbox {} / native {}\n--- sandbox ---\n{}--- native ---\n{}",
                    sb.exit,
                    native.exit,
                    sb.describe(),
                    native.describe()
                ));
            }
        }
    }
    f.check(&format!("network workload {name}"));
}

// ------------------------------------------------------------ http.server

const HTTP_SERVER: &str = r#"
cd "$d"
printf 'hello from http.server\n' > index.txt
head -c 1048576 /dev/zero | tr '\0' x > big
/usr/bin/python3 -m http.server --bind 127.0.0.1 "$1" > "$d/server.log" 2>&1 &
srv=$!
wait_for /usr/bin/curl -sf -o /dev/null "http://127.0.0.1:$1/index.txt"
/usr/bin/curl -sS "http://127.0.0.1:$1/index.txt"
/usr/bin/curl -sS -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$1/missing"
/usr/bin/curl -sS "http://127.0.0.1:$1/big" | wc -c
/usr/bin/curl -sS "http://127.0.0.1:$1/" | grep -o 'index.txt' | head -1
# Several connections at once.
pids=""
for i in 1 2 3 4; do
    /usr/bin/curl -sS -o "$d/got$i" "http://127.0.0.1:$1/big" &
    pids="$pids $!"
done
for p in $pids; do wait "$p"; done
cat "$d"/got1 "$d"/got2 "$d"/got3 "$d"/got4 | wc -c
"#;

fn http_server(sandbox: bool) {
    if have(
        "python3 http.server + curl",
        &[("/usr/bin/python3", "python3"), ("/usr/bin/curl", "curl")],
    ) {
        net_workload(
            "http_server_curl",
            HTTP_SERVER,
            "hello from http.server\n404\n1048576\nindex.txt\n4194304\n",
            120,
            sandbox,
        );
    }
}

#[test]
fn http_server_curl_native() {
    http_server(false);
}

#[test]
fn http_server_curl() {
    http_server(true);
}

// ------------------------------------------------------------ redis

const REDIS: &str = r#"
/usr/bin/redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --dir "$d" --logfile "$d/redis.log" &
srv=$!
wait_for /usr/bin/redis-cli -p "$1" ping
/usr/bin/redis-cli -p "$1" ping
/usr/bin/redis-cli -p "$1" set greeting hello
/usr/bin/redis-cli -p "$1" get greeting
/usr/bin/redis-cli -p "$1" incrby counter 41
/usr/bin/redis-cli -p "$1" incr counter
/usr/bin/redis-benchmark -p "$1" -q -n 20000 -t set,get > "$d/bench.out" 2>&1
tr '\r' '\n' < "$d/bench.out" | grep -E '^(SET|GET): [0-9.]+ requests per second' > "$d/rps" || true
cat "$d/rps" >&2
for t in SET GET; do
    grep -q "^$t: " "$d/rps" || { echo "no $t line:"; cat "$d/bench.out"; exit 1; }
    echo "$t: requests per second"
done
/usr/bin/redis-cli -p "$1" get greeting
"#;

fn redis(sandbox: bool) {
    if have(
        "redis-server + redis-benchmark",
        &[
            ("/usr/bin/redis-server", "redis-server"),
            ("/usr/bin/redis-cli", "redis-tools"),
            ("/usr/bin/redis-benchmark", "redis-tools"),
        ],
    ) {
        net_workload(
            "redis_benchmark",
            REDIS,
            "PONG\nOK\nhello\n41\n42\nSET: requests per second\n\
             GET: requests per second\nhello\n",
            180,
            sandbox,
        );
    }
}

#[test]
fn redis_benchmark_native() {
    redis(false);
}

#[test]
fn redis_benchmark() {
    redis(true);
}

// ------------------------------------------------------------ nginx

/// nginx with its own config, prefix, pid and logs in `$d`; as root its
/// workers run as nobody (the files are world-readable), otherwise no `user`.
const NGINX: &str = r#"
mkdir -p "$d/www"
printf 'hello from nginx\n' > "$d/www/index.html"
head -c 2097152 /dev/zero | tr '\0' y > "$d/www/big.bin"
chmod -R a+rX "$d/www"
user=""
[ "$(id -u)" = 0 ] && user="user nobody nogroup;"
cat > "$d/nginx.conf" <<EOF
$user
daemon off;
worker_processes 2;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 128; }
http {
    access_log off;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    server {
        listen 127.0.0.1:$1;
        root $d/www;
    }
}
EOF
/usr/sbin/nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf" > "$d/nginx.log" 2>&1 &
srv=$!
wait_for /usr/bin/curl -sf -o /dev/null "http://127.0.0.1:$1/"
/usr/bin/curl -sS "http://127.0.0.1:$1/"
/usr/bin/curl -sS -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$1/missing"
/usr/bin/curl -sS "http://127.0.0.1:$1/big.bin" | wc -c
/usr/bin/curl -sS -r 10-19 "http://127.0.0.1:$1/big.bin"; echo
# Two requests on one (kept-alive) connection.
/usr/bin/curl -sS -o /dev/null -o /dev/null -w '%{http_code} %{size_download}\n' \
    "http://127.0.0.1:$1/index.html" "http://127.0.0.1:$1/index.html"
"#;

/// One worker (no EPOLLEXCLUSIVE): it alone accepts, and closes its
/// connections without EPOLL_CTL_DEL; a series of short connections must all
/// be served (an epoll entry gone that way once hid the next one).
const NGINX_ONE_WORKER_EXTRA: &str = r#"
for i in $(seq 1 30); do
    /usr/bin/curl -sS -m 10 -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$1/index.html"
done | sort | uniq -c | tr -s ' '
"#;

fn nginx_one_worker(sandbox: bool) {
    if have(
        "nginx + curl",
        &[
            ("/usr/sbin/nginx", "nginx-light"),
            ("/usr/bin/curl", "curl"),
        ],
    ) {
        let script =
            NGINX.replace("worker_processes 2;", "worker_processes 1;") + NGINX_ONE_WORKER_EXTRA;
        net_workload(
            "nginx_one_worker",
            &script,
            "hello from nginx\n404\n2097152\nyyyyyyyyyy\n200 17\n200 17\n 30 200\n",
            120,
            sandbox,
        );
    }
}

#[test]
fn nginx_one_worker_native() {
    nginx_one_worker(false);
}

#[test]
fn nginx_one_worker_sandbox() {
    nginx_one_worker(true);
}

fn nginx(sandbox: bool) {
    if have(
        "nginx + curl",
        &[
            ("/usr/sbin/nginx", "nginx-light"),
            ("/usr/bin/curl", "curl"),
        ],
    ) {
        net_workload(
            "nginx_curl",
            NGINX,
            "hello from nginx\n404\n2097152\nyyyyyyyyyy\n200 17\n200 17\n",
            120,
            sandbox,
        );
    }
}

#[test]
fn nginx_curl_native() {
    nginx(false);
}

#[test]
fn nginx_curl() {
    nginx(true);
}
