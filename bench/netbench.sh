#!/bin/sh
# bench/netbench.sh - a server and its load generator in one process tree (so
# in ONE sandbox when run under `runsc do`), over 127.0.0.1. Prints the
# requests per second as the last line of stdout; the tools' output goes to
# stderr. Used by bench/bench.sh.
#
#   netbench.sh TCPBENCH redis set|get N   redis-server + redis-benchmark -q -n N -t set|get
#   netbench.sh TCPBENCH nginx SECS        nginx (static file) + wrk -t2 -c10 -d SECS
#
# TCPBENCH is bench/tcpbench's binary (its `freeport` mode picks the port).
set -eu
tcpbench=$1
mode=$2
port=$("$tcpbench" freeport)
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

# wait_for CMD...: retries CMD for up to 20 s while the server runs.
wait_for() {
    i=0
    until "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -ge 200 ] || ! kill -0 "$srv" 2>/dev/null; then
            echo "netbench: $mode did not start" >&2
            cat "$d"/*.log >&2 2>/dev/null || true
            exit 1
        fi
        sleep 0.1
    done
}

case $mode in
redis)
    test=$3
    n=$4
    /usr/bin/redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --dir "$d" --logfile "$d/redis.log" &
    srv=$!
    wait_for /usr/bin/redis-cli -p "$port" ping
    /usr/bin/redis-benchmark -p "$port" -q -n "$n" -t "$test" >"$d/out" 2>&1 || true
    tr '\r' '\n' <"$d/out" >&2
    # "SET: 86956.52 requests per second, p50=0.287 msec"
    tr '\r' '\n' <"$d/out" | sed -n 's/^[A-Z]*: \([0-9.]*\) requests per second.*/\1/p' | tail -n 1
    ;;
nginx)
    secs=$3
    mkdir -p "$d/www"
    head -c 4096 /dev/zero | tr '\0' x >"$d/www/index.html"
    chmod -R a+rX "$d/www"
    user=""
    [ "$(id -u)" = 0 ] && user="user nobody nogroup;"
    cat >"$d/nginx.conf" <<EOF
$user
daemon off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    server {
        listen 127.0.0.1:$port;
        root $d/www;
    }
}
EOF
    /usr/sbin/nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf" >"$d/nginx.log" 2>&1 &
    srv=$!
    wait_for /usr/bin/curl -sf -o /dev/null "http://127.0.0.1:$port/"
    /usr/bin/wrk -t2 -c10 -d"${secs}s" "http://127.0.0.1:$port/index.html" >"$d/out" 2>&1 || true
    cat "$d/out" >&2
    # "Requests/sec:  12345.67"
    sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$d/out"
    ;;
*)
    echo "usage: netbench.sh TCPBENCH redis set|get N | nginx SECS" >&2
    exit 2
    ;;
esac
