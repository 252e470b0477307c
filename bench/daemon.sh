#!/bin/bash
# bench/daemon.sh: start throughput (starts per second) and start latency
# (request to Running, p50 and p99) through kpa-execd, against the same
# starts in direct mode (this process the parent, kpa_control_open_local),
# with 1 and 4 concurrent clients. The application is /bin/true; each start
# is also waited for until it has ended. Rounds are interleaved; the table
# gives each round and the ratio daemon/direct of the throughputs, and the
# CPU time per start (user and system; not the kernel's workers), which a
# loaded machine disturbs far less than the throughput: "cpu ms" in all, and
# its parts: "parent" (the process that runs libkpa's start: the clients in
# direct mode, kpa-execd in daemon mode, its netns pool's making included),
# "inst" (the instances: init and application; in direct mode, and in daemon
# mode when the pool is empty, they make their own network namespace) and
# "client" (the clients in daemon mode: the requests and replies).
#
#   bash bench/daemon.sh [BUILDDIR] [STARTS_PER_CLIENT] [ROUNDS]   (as root)
set -euo pipefail
builddir=$(cd "${1:-build}" && pwd)
n=${2:-100}
rounds=${3:-3}
src=$(cd "$(dirname "$0")/.." && pwd)
make -C "$builddir" -s bench/execd-bench src/daemon/kpa-execd >/dev/null

# on tmpfs, as /run/kpa (the state directory) is in production
W=$(mktemp -d /dev/shm/kpa-bench-daemon.XXXXXX)
dpid=
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
BENCH_APPS="org.example.benchtrue"
trap '[ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid"; bench_cleanup' EXIT
app=org.example.benchtrue
# KPA_BENCH_MKPKG_OPTS="--delete privateStorage": without mkpkg.py's sized
# private storage (whose ext4 mount the daemon makes for every start)
read -ra mkpkg_opts <<<"${KPA_BENCH_MKPKG_OPTS:-}"
/usr/bin/python3 "$src/tests/integration/mkpkg.py" "$W/true.kpa" --id $app \
    --bin /bin/true --set 'runConfigurations[0].args=[]' "${mkpkg_opts[@]}"
"$builddir/src/tools/kpa-install" --root "$W/store" -q "$W/true.kpa"
read -ra extra <<<"${KPA_BENCH_EXECD_OPTS:-}" # more kpa-execd options, e.g. "--keep-ended 10"
"$builddir/src/daemon/kpa-execd" --foreground --no-autorun --log-level warning "${extra[@]}" \
    --socket "$W/execd.sock" --root "$W/store" --state-dir "$W/state" </dev/null >/dev/null &
dpid=$!
for _ in $(seq 100); do [ -S "$W/execd.sock" ] && break; sleep 0.05; done

bench="$builddir/bench/execd-bench"
printf '%-6s %-7s %-8s %10s %9s %9s %8s %7s %7s %7s %7s\n' round clients mode "starts/s" "p50 ms" \
    "p99 ms" ratio "cpu ms" parent inst client
for r in $(seq "$rounds"); do
    for c in 1 4; do
        l=$("$bench" local "$W/store" $app $((n)) $c)
        d=$("$bench" daemon "$W/execd.sock" $app $((n)) $c "$dpid")
        /usr/bin/python3 - "$r" "$c" "$l" "$d" <<'PY'
import json, sys
r, c, l, d = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
for x in (l, d):
    mode = "direct" if x["mode"] == "local" else "daemon"
    ratio = "%.2f" % (d["starts_per_s"] / l["starts_per_s"]) if x is d else ""
    print("%-6s %-7s %-8s %10.1f %9.2f %9.2f %8s %7.2f %7.2f %7.2f %7.2f" % (r, c, mode,
          x["starts_per_s"], x["p50_ms"], x["p99_ms"], ratio, x["cpu_ms"], x["parent_ms"],
          x["instances_ms"], x["client_ms"]))
    if x["failed"]:
        print("  (%d failed)" % x["failed"])
PY
    done
done
echo "daemon RSS after the rounds: $(awk '/VmRSS/ {print $2}' /proc/$dpid/status) kB," \
    "fds: $(ls /proc/$dpid/fd | wc -l)"
