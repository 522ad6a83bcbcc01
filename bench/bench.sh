#!/usr/bin/env bash
# bench/bench.sh - run the same workloads natively, under our runsc (each
# platform in BENCH_PLATFORMS) and under Debian's gVisor (/usr/bin/runsc, if
# installed), and print a table of medians with ratios.
#
# Usage: bash bench/bench.sh            (from anywhere; needs gcc, root for gVisor)
#
# Environment:
#   BENCH_N=20                 repetitions of each workload per runtime
#   BENCH_PLATFORMS="ptrace kvm"  our platforms to measure (space separated; one that
#                                 cannot run /bin/true is skipped with a note)
#   RUNSC=<repo>/target/release/runsc     our binary
#   GVISOR=/usr/bin/runsc      gVisor's binary ("" to skip it)
#   GVISOR_FLAGS="--network=none --platform=ptrace"
#   BENCH_GETPID_ITERS=200000  syscalls per getpid run
#   BENCH_OPEN_ITERS=5000      open+fstat+close iterations per openloop run
#   BENCH_FILE=/tmp/bench-64m  the 64 MiB file read by readfile (created once)
#   BENCH_FORKEXEC_ITERS=200   fork+execve+wait iterations per forkexec run
#   BENCH_PINGPONG_ITERS=20000 round trips per pingpong run
#   BENCH_MUTEX_ITERS=20000    round trips per mutexpp run
#   BENCH_FS_ITERS=2000        operations per fsops run (stat ... write4k)
#   BENCH_DENTS_ITERS=5        directory scans per getdents run
#   BENCH_TMP=/dev/shm         writable dir (natively and in every sandbox) for
#                              the files fsops and gcc-c create
#   BENCH_ONLY="stat gcc-c"    run only these workloads (names as in the table)
#   BENCH_TCP_MIB=256          MiB moved per tcp-stream run
#   BENCH_TCP_RTT_ITERS=20000  round trips per tcp-rtt run
#   BENCH_REDIS_N=50000        requests per redis-set / redis-get run
#   BENCH_WRK_SECS=5           seconds of load per nginx-wrk run
#   BENCH_NET_N=5              repetitions of redis-set, redis-get, nginx-wrk
#
# Workloads (all static binaries built from bench/*.c into target/bench/):
#   startup   wall time of `/bin/true` (dynamic, so includes ld.so), ms
#   getpid    raw syscall(SYS_getpid) round trip, ns/call (measured inside)
#   openloop  open("/etc/passwd")+fstat+close, ns/iteration (measured inside)
#   readfile  read(2) of a 64 MiB file in 1 MiB chunks, MB/s (measured inside)
#   forkexec  fork + execve(static nop) + waitpid, us/iteration (measured inside)
#   pingpong  1-byte round trip between two processes over two pipes, ns/trip
#   mutexpp   two threads taking turns via mutex+condvar (futex), ns/trip
#   stat      stat() of a file in BENCH_TMP, ns/op (fsops.c, measured inside)
#   open+close    open(O_RDONLY)+close of that file, ns/op
#   create+unlink open(O_CREAT|O_EXCL)+close+unlink of a new file, ns/op
#   read4k    pread of 4 KiB at offset 0, ns/op
#   write4k   pwrite of 4 KiB at offset 0, ns/op
#   getdents10k   open+getdents64 to the end+close of a 10,000-entry directory,
#             us/scan (the files are created and removed untimed)
#   gcc-c     wall time of `gcc -pipe -c` of bench/cc_input.c (dynamic gcc,
#             cc1 and as: exec-heavy; includes the runtime's startup), ms
#   tcp-stream  TCP over 127.0.0.1 between two processes: 256 MiB in 64 KiB
#             writes, MB/s (tcpbench.c throughput, measured inside)
#   tcp-rtt   1-byte TCP ping-pong over 127.0.0.1 (TCP_NODELAY), ns/trip
#             (tcpbench.c rtt)
#   redis-set, redis-get  redis-server + `redis-benchmark -q -t set|get` in
#             the same sandbox, requests/s (bench/netbench.sh)
#   nginx-wrk nginx serving a 4 KiB static file + `wrk -t2 -c10 -d5s` in the
#             same sandbox, requests/s (bench/netbench.sh)
# The network rows need the sandbox to have AF_INET; the server rows need
# redis-server, redis-tools, nginx, curl and wrk (skipped if missing).
#
# Ratios are slowdowns, >1 = slower: for times runtime/native, for MB/s and
# req/s native/runtime. "ours/gVisor" < 1 means we are faster than gVisor.
#
# Notes on gVisor (0.0~20221219, Debian's `runsc` package): `runsc do` works as
# root without --rootless; it does not accept `--` before the command, so no
# `--` is passed to either runtime. It writes to an inherited stdout file at its
# own offset, so all output here is read through pipes.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${BENCH_N:-20}
PLATFORMS=${BENCH_PLATFORMS:-ptrace kvm}
RUNSC=${RUNSC:-$ROOT/target/release/runsc}
GVISOR=${GVISOR-/usr/bin/runsc}
GVISOR_FLAGS=${GVISOR_FLAGS:---network=none --platform=ptrace}
GETPID_ITERS=${BENCH_GETPID_ITERS:-200000}
OPEN_ITERS=${BENCH_OPEN_ITERS:-5000}
FORKEXEC_ITERS=${BENCH_FORKEXEC_ITERS:-200}
PINGPONG_ITERS=${BENCH_PINGPONG_ITERS:-20000}
MUTEX_ITERS=${BENCH_MUTEX_ITERS:-20000}
BENCH_FILE=${BENCH_FILE:-/tmp/bench-64m}
FS_ITERS=${BENCH_FS_ITERS:-2000}
DENTS_ITERS=${BENCH_DENTS_ITERS:-5}
BENCH_TMP=${BENCH_TMP:-/dev/shm}
TCP_MIB=${BENCH_TCP_MIB:-256}
TCP_RTT_ITERS=${BENCH_TCP_RTT_ITERS:-20000}
REDIS_N=${BENCH_REDIS_N:-50000}
WRK_SECS=${BENCH_WRK_SECS:-5}
NET_N=${BENCH_NET_N:-5}
ONLY=${BENCH_ONLY:-}
GCC=$(command -v gcc || echo /usr/bin/gcc)
BIN=$ROOT/target/bench

log() { echo "bench: $*" >&2; }

# ---------------------------------------------------------------- build
mkdir -p "$BIN"
for p in getpid openloop readfile nop forkexec pingpong mutexpp fsops tcpbench; do
    if [ ! -x "$BIN/$p" ] || [ "$ROOT/bench/$p.c" -nt "$BIN/$p" ]; then
        gcc -O2 -Wall -static -o "$BIN/$p" "$ROOT/bench/$p.c" || { log "gcc failed for $p.c"; exit 1; }
    fi
done
if [ "$(stat -c %s "$BENCH_FILE" 2>/dev/null)" != 67108864 ]; then
    log "creating $BENCH_FILE (64 MiB)"
    head -c 67108864 /dev/urandom >"$BENCH_FILE.tmp" && mv "$BENCH_FILE.tmp" "$BENCH_FILE"
fi
# Warm the page cache so every runtime reads from memory.
cat "$BENCH_FILE" >/dev/null

# ---------------------------------------------------------------- runtimes
# Each runtime is a name and a command prefix.
RT_NAMES=(native)
RT_PREFIX=("")
for p in $PLATFORMS; do
    if [ -x "$RUNSC" ]; then
        if out=$("$RUNSC" --platform="$p" do /bin/true 2>&1); then
            RT_NAMES+=("ours-$p")
            RT_PREFIX+=("$RUNSC --platform=$p do")
        else
            log "our runsc --platform=$p cannot run /bin/true, skipped: $(echo "$out" | tail -1)"
        fi
    else
        log "$RUNSC not found (cargo build --release), our runtime skipped"
    fi
done
if [ -n "$GVISOR" ] && [ -x "$GVISOR" ]; then
    # shellcheck disable=SC2086
    if out=$("$GVISOR" $GVISOR_FLAGS do /bin/true 2>&1); then
        RT_NAMES+=(gvisor)
        RT_PREFIX+=("$GVISOR $GVISOR_FLAGS do")
    else
        log "gVisor at $GVISOR cannot run /bin/true, skipped: $(echo "$out" | tail -1)"
    fi
else
    log "gVisor not installed (apt-get install runsc), skipped"
fi

# ---------------------------------------------------------------- workloads
# name|unit|kind|command[|reps] ; kind: wall (time the command, ms) or self
# (the command prints its own number as the last line of stdout); reps
# overrides BENCH_N for that row.
WORKLOADS=(
    "startup|ms|wall|/bin/true"
    "getpid|ns/call|self|$BIN/getpid $GETPID_ITERS"
    "openloop|ns/iter|self|$BIN/openloop $OPEN_ITERS /etc/passwd"
    "readfile|MB/s|self|$BIN/readfile $BENCH_FILE"
    "forkexec|us/iter|self|$BIN/forkexec $FORKEXEC_ITERS $BIN/nop"
    "pingpong|ns/trip|self|$BIN/pingpong $PINGPONG_ITERS"
    "mutexpp|ns/trip|self|$BIN/mutexpp $MUTEX_ITERS"
    "stat|ns/op|self|$BIN/fsops stat $FS_ITERS $BENCH_TMP"
    "open+close|ns/op|self|$BIN/fsops open $FS_ITERS $BENCH_TMP"
    "create+unlink|ns/op|self|$BIN/fsops create $FS_ITERS $BENCH_TMP"
    "read4k|ns/op|self|$BIN/fsops read4k $FS_ITERS $BENCH_TMP"
    "write4k|ns/op|self|$BIN/fsops write4k $FS_ITERS $BENCH_TMP"
    "getdents10k|us/scan|self|$BIN/fsops getdents $DENTS_ITERS $BENCH_TMP"
    "gcc-c|ms|wall|$GCC -pipe -c -o $BENCH_TMP/bench-cc.$$.o $ROOT/bench/cc_input.c"
    "tcp-stream|MB/s|self|$BIN/tcpbench throughput $TCP_MIB"
    "tcp-rtt|ns/trip|self|$BIN/tcpbench rtt $TCP_RTT_ITERS"
)
NETBENCH="/bin/sh $ROOT/bench/netbench.sh $BIN/tcpbench"
if [ -x /usr/bin/redis-server ] && [ -x /usr/bin/redis-cli ] && [ -x /usr/bin/redis-benchmark ]; then
    WORKLOADS+=(
        "redis-set|req/s|self|$NETBENCH redis set $REDIS_N|$NET_N"
        "redis-get|req/s|self|$NETBENCH redis get $REDIS_N|$NET_N"
    )
else
    log "redis-server/redis-tools not installed: redis rows skipped"
fi
if [ -x /usr/sbin/nginx ] && [ -x /usr/bin/wrk ] && [ -x /usr/bin/curl ]; then
    WORKLOADS+=("nginx-wrk|req/s|self|$NETBENCH nginx $WRK_SECS|$NET_N")
else
    log "nginx/wrk/curl not installed: nginx-wrk row skipped"
fi

# selected WORKLOAD -> whether BENCH_ONLY (if set) names it
selected() {
    [ -z "$ONLY" ] && return 0
    local n
    for n in $ONLY; do [ "$n" = "$1" ] && return 0; done
    return 1
}

now_ns() { date +%s%N; }

# run_once PREFIX KIND CMD -> prints the measured number, or fails
run_once() {
    local prefix=$1 kind=$2 cmd=$3 t0 t1 out
    if [ "$kind" = wall ]; then
        t0=$(now_ns)
        # shellcheck disable=SC2086
        $prefix $cmd </dev/null >/dev/null 2>&1 || return 1
        t1=$(now_ns)
        awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 }'
    else
        # shellcheck disable=SC2086
        out=$($prefix $cmd </dev/null 2>/dev/null) || return 1
        out=$(printf '%s\n' "$out" | tail -n 1)
        [[ $out =~ ^[0-9]+(\.[0-9]+)?$ ]] || return 1
        echo "$out"
    fi
}

median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) exit 1
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        if (m >= 100) printf "%.0f\n", m; else printf "%.3g\n", m }'
}

declare -A RESULT
for w in "${WORKLOADS[@]}"; do
    IFS='|' read -r wname unit kind cmd reps <<<"$w"
    selected "$wname" || continue
    runs=${reps:-$N}
    for i in "${!RT_NAMES[@]}"; do
        rt=${RT_NAMES[$i]}
        prefix=${RT_PREFIX[$i]}
        log "$wname on $rt ($runs runs)"
        vals=()
        failed=0
        for ((r = 0; r < runs; r++)); do
            if v=$(run_once "$prefix" "$kind" "$cmd"); then
                vals+=("$v")
            else
                failed=1
                break
            fi
        done
        if [ $failed = 1 ] || [ ${#vals[@]} = 0 ]; then
            RESULT[$wname,$rt]=n/a
        else
            RESULT[$wname,$rt]=$(printf '%s\n' "${vals[@]}" | median)
        fi
    done
done

# ---------------------------------------------------------------- table
# ratio VALUE BASE UNIT -> slowdown (value/base for times, base/value for
# MB/s and req/s)
ratio() {
    local v=$1 b=$2 unit=$3
    if [ "$v" = n/a ] || [ "$b" = n/a ] || [ -z "$v" ] || [ -z "$b" ]; then echo "-"; return; fi
    awk -v v="$v" -v b="$b" -v u="$unit" 'BEGIN {
        if (u == "MB/s" || u == "req/s") { if (v == 0) { print "-"; exit } r = b / v }
        else { if (b == 0) { print "-"; exit } r = v / b }
        printf "%.3gx\n", r }'
}

has_gvisor=0
for rt in "${RT_NAMES[@]}"; do [ "$rt" = gvisor ] && has_gvisor=1; done

header="| workload | unit |"
sep="| --- | --- |"
for rt in "${RT_NAMES[@]}"; do header+=" $rt |"; sep+=" ---: |"; done
for rt in "${RT_NAMES[@]}"; do
    [ "$rt" = native ] && continue
    header+=" $rt/native |"; sep+=" ---: |"
done
if [ $has_gvisor = 1 ]; then
    for rt in "${RT_NAMES[@]}"; do
        case $rt in ours-*) header+=" $rt/gvisor |"; sep+=" ---: |" ;; esac
    done
fi

echo
echo "Medians of $N runs ($NET_N for redis-*, nginx-wrk); $(uname -sr); $(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo 'no git'); $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "$header"
echo "$sep"
for w in "${WORKLOADS[@]}"; do
    IFS='|' read -r wname unit kind cmd reps <<<"$w"
    selected "$wname" || continue
    row="| $wname | $unit |"
    for rt in "${RT_NAMES[@]}"; do row+=" ${RESULT[$wname,$rt]} |"; done
    for rt in "${RT_NAMES[@]}"; do
        [ "$rt" = native ] && continue
        row+=" $(ratio "${RESULT[$wname,$rt]}" "${RESULT[$wname,native]}" "$unit") |"
    done
    if [ $has_gvisor = 1 ]; then
        for rt in "${RT_NAMES[@]}"; do
            case $rt in ours-*) row+=" $(ratio "${RESULT[$wname,$rt]}" "${RESULT[$wname,gvisor]}" "$unit") |" ;; esac
        done
    fi
    echo "$row"
done
echo
echo "Ratios are slowdowns (>1 = slower; for MB/s and req/s native/runtime). n/a = the workload did not run (e.g. no AF_INET)."
rm -f "$BENCH_TMP/bench-cc.$$.o"
