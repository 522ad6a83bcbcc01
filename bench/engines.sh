#!/usr/bin/env bash
# bench/engines.sh - the same containers under Docker with runc, with our
# runsc and with Debian's gVisor (/usr/bin/runsc, if installed), side by side.
#
# Usage: bash bench/engines.sh      (as root; needs docker.io, python3,
#                                    busybox-static; .ci/run installs them)
#
# Starts its own dockerd (state in a temporary directory, vfs storage, no
# bridge, no iptables), registers the runtimes with `runsc install`, imports
# the busybox image of tests/engines/mkimage.py, and times (median of BENCH_N):
#   run       `docker run --rm IMAGE true`: create, start, exit, delete, ms
#   exec      `docker exec C true` in a running container, ms
#   forkexec  `docker exec C sh -c 'for i in $(seq 200); do /bin/true; done'`
#             minus the exec cost: 200 fork+exec of busybox inside, ms
# Ratios are runtime/runc (>1 = slower) and ours/gVisor (<1 = we are faster).
#
# Environment: BENCH_N=10, RUNSC=<repo>/target/release/runsc,
# GVISOR=/usr/bin/runsc ("" to skip), GVISOR_FLAGS="--network=none --platform=ptrace".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${BENCH_N:-10}
RUNSC=${RUNSC:-$ROOT/target/release/runsc}
GVISOR=${GVISOR-/usr/bin/runsc}
GVISOR_FLAGS=${GVISOR_FLAGS:---network=none --platform=ptrace}
IMAGE=runsc-bench/busybox:latest

[ -x "$RUNSC" ] || { echo "bench: $RUNSC missing (cargo build --release)" >&2; exit 1; }
command -v dockerd >/dev/null || { echo "bench: dockerd missing (apt-get install docker.io)" >&2; exit 1; }
DOCKER=/usr/bin/docker

D=$(mktemp -d /tmp/rs-bench-XXXXXX)
cleanup() {
    if [ -f "$D/docker.pid" ]; then
        local ids
        ids=$($DOCKER --host "unix://$D/docker.sock" ps -aq 2>/dev/null || true)
        # shellcheck disable=SC2086
        [ -z "$ids" ] || $DOCKER --host "unix://$D/docker.sock" rm -f $ids >/dev/null 2>&1 || true
        kill "$(cat "$D/docker.pid")" 2>/dev/null || true
        for _ in $(seq 100); do [ -f "$D/docker.pid" ] || break; sleep 0.1; done
    fi
    rm -rf "$D"
}
trap cleanup EXIT

cat >"$D/daemon.json" <<EOF
{
    "data-root": "$D/data",
    "exec-root": "$D/exec",
    "pidfile": "$D/docker.pid",
    "hosts": ["unix://$D/docker.sock"],
    "iptables": false,
    "ip-forward": false,
    "ip-masq": false,
    "bridge": "none",
    "storage-driver": "vfs"
}
EOF
"$RUNSC" install --config-file "$D/daemon.json" --runtime ours >/dev/null
RUNTIMES="runc ours"
if [ -n "$GVISOR" ] && [ -x "$GVISOR" ]; then
    # shellcheck disable=SC2086
    "$RUNSC" install --config-file "$D/daemon.json" --runtime gvisor -- $GVISOR_FLAGS >/dev/null
    # install writes our own path; point this entry at gVisor's binary.
    python3 - "$D/daemon.json" "$GVISOR" <<'EOF'
import json, sys
p, g = sys.argv[1], sys.argv[2]
c = json.load(open(p))
c["runtimes"]["gvisor"]["path"] = g
json.dump(c, open(p, "w"), indent=4)
EOF
    RUNTIMES="$RUNTIMES gvisor"
fi
dockerd --config-file "$D/daemon.json" >"$D/dockerd.log" 2>&1 &
export DOCKER_HOST=unix://$D/docker.sock
for _ in $(seq 300); do $DOCKER version >/dev/null 2>&1 && break; sleep 0.1; done
$DOCKER version >/dev/null || { echo "bench: dockerd did not start:"; tail "$D/dockerd.log"; exit 1; } >&2
python3 "$ROOT/tests/engines/mkimage.py" "$D/image.tar" "$IMAGE"
$DOCKER load -i "$D/image.tar" >/dev/null

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# median of N timings (ms) of a command
median() {
    local t=()
    for _ in $(seq "$N"); do
        local s e
        s=$(now_ms)
        "$@" >/dev/null 2>&1 || { echo "bench: failed: $*" >&2; return 1; }
        e=$(now_ms)
        t+=($((e - s)))
    done
    printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

declare -A R
for rt in $RUNTIMES; do
    R[run,$rt]=$(median $DOCKER run --rm --runtime="$rt" "$IMAGE" true)
    $DOCKER run -d --name "bench-$rt" --runtime="$rt" "$IMAGE" sleep 100000 >/dev/null
    R[exec,$rt]=$(median $DOCKER exec "bench-$rt" true)
    loop=$(median $DOCKER exec "bench-$rt" sh -c 'for i in $(seq 200); do /bin/true; done')
    R[forkexec,$rt]=$((loop - R[exec,$rt]))
    $DOCKER rm -f "bench-$rt" >/dev/null
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
printf '%-10s %10s %10s %10s %12s %12s\n' workload runc ours gVisor ours/runc ours/gVisor
for w in run exec forkexec; do
    g=${R[$w,gvisor]:-}
    printf '%-10s %10s %10s %10s %12s %12s\n' "$w" "${R[$w,runc]}ms" "${R[$w,ours]}ms" \
        "${g:+${g}ms}" "$(ratio "${R[$w,ours]}" "${R[$w,runc]}")" \
        "$([ -n "$g" ] && ratio "${R[$w,ours]}" "$g" || echo -)"
done
