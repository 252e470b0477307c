#!/bin/bash
# tests/vm/supervisor.sh: kpa-execd on pure cgroup v2 with the cgroupfs driver
# (no systemd), started the way a service manager without systemd starts a
# service: in a cgroup of its own, SERVICE. It moves itself into the leaf
# SERVICE/supervisor, enables the controllers in SERVICE, and makes each
# instance in SERVICE/kpa.slice/APP/TOKEN, beside the leaf, with its limits;
# a daemon restarted in the leaf adopts the instance and stops it; a cgroup
# that it cannot leave is refused with a message that names it and the
# cause. It needs such a host: the plain guest of make check-vm
# (tests/vm/tests.sh runs it there); elsewhere it skips.
. "$(dirname "$0")/../integration/lib.sh"
need_root

KPA_RUN="$top_builddir/src/tools/kpa-run"
EXECD="$top_builddir/src/daemon/kpa-execd"
PROBE="$top_builddir/tests/probe/probe"
{ [ -x "$KPA_RUN" ] && [ -x "$EXECD" ]; } || skip_all "kpa-run or kpa-execd not built"
[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] || skip_all "not a pure cgroup v2 host"
[ ! -d /run/systemd/system ] || skip_all "systemd runs: kpa uses its systemd driver here"
own=$(sed -n 's/^0:://p' /proc/self/cgroup)
own=${own%/}
for c in memory pids; do
    grep -qw $c "/sys/fs/cgroup$own/cgroup.subtree_control" ||
        skip_all "the $c controller is not enabled below this test's cgroup ($own)"
done
export KPA_CGROUP_DRIVER=cgroupfs

R="$T/store"
S="$T/execd.sock"
STATE="$T/state"
APP=org.example.svc$$
SVC_GROUP="$own/kpa-test-svc.$$"
SVC="/sys/fs/cgroup$SVC_GROUP"
$MKPKG "$T/probe.kpa" --id $APP --bin "$PROBE" --set 'runConfigurations[0].args=[]'
"$KPA_INSTALL" --root "$R" -q "$T/probe.kpa" || { echo "Bail out! cannot install the probe"; exit 1; }

# everything below SERVICE is this test's: its processes (the daemons and
# instances it started) go, then the groups, deepest first
remove_tree() { # remove_tree DIR
    local p
    [ -d "$1" ] || return 0
    find "$1" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r p; do
        kill -9 "$p" 2>/dev/null
    done
    for _ in $(seq 50); do
        find "$1" -depth -type d -exec rmdir {} + 2>/dev/null
        [ -d "$1" ] || return 0
        sleep 0.1
    done
}
cleanup_add 'remove_tree "$SVC"; remove_tree "$SVC.daemon"; remove_tree "$SVC.refused"'
mkdir "$SVC" || { echo "Bail out! cannot create $SVC"; exit 1; }

run() { "$KPA_RUN" --socket "$S" "$@"; }
# start_daemon GROUP_DIR: kpa-execd, as a service manager starts it in GROUP_DIR
dpid=
start_daemon() {
    # shellcheck disable=SC2016 # $$ is the inner shell's, which becomes kpa-execd
    bash -c 'echo $$ >"$1/cgroup.procs" && exec "$2" --foreground --no-autorun --socket "$3" \
        --root "$4" --state-dir "$5"' - "$1" "$EXECD" "$S" "$R" "$STATE" 2>>"$T/execd.log" &
    dpid=$!
    for _ in $(seq 200); do
        [ -S "$S" ] && run --list >/dev/null 2>&1 && return 0
        kill -0 "$dpid" 2>/dev/null || break
        sleep 0.05
    done
    cat "$T/execd.log"
    return 1
}
cleanup_add '[ -n "$dpid" ] && kill -9 "$dpid" 2>/dev/null'
group_of() { sed -n 's/^0:://p' "/proc/$1/cgroup"; }

# ---- the leaf, the controllers, an instance beside the leaf ----
start_daemon "$SVC" || { echo "Bail out! kpa-execd did not start"; exit 1; }
check_eq "kpa-execd moved itself into the leaf SERVICE/supervisor" "$(group_of "$dpid")" \
    "$SVC_GROUP/supervisor"
check_eq "... SERVICE holds no process" "$(cat "$SVC/cgroup.procs")" ""
want="cpu memory pids"
grep -qw io "$SVC/cgroup.controllers" && want="cpu io memory pids"
check_eq "... and enables $want below it" \
    "$(tr ' ' '\n' <"$SVC/cgroup.subtree_control" | sort | paste -sd' ')" "$want"

tok=$(run --detach --memory 64M --pids 20 $APP -- sleep 60)
check "--detach with limits" grep -Eqx '[0-9a-f]{32}' <<<"$tok"
ipid=$(run --status "$tok" | sed -n 's/^pid: *//p')
INST="$SVC/kpa.slice/$APP/$tok"
check_eq "the instance is in SERVICE/kpa.slice/APP/TOKEN, beside the leaf" \
    "$(group_of "$ipid")" "$SVC_GROUP/kpa.slice/$APP/$tok"
check_eq "... with its memory limit" "$(cat "$INST/memory.max" 2>&1)" 67108864
check_eq "... and its pids limit" "$(cat "$INST/pids.max" 2>&1)" 20
check_eq "the leaf stays a leaf: only kpa-execd, no group below it" \
    "$(cat "$SVC/supervisor/cgroup.procs") $(find "$SVC/supervisor" -mindepth 1 -type d | wc -l)" \
    "$dpid 0"
check_eq "the record names the parent" "$("$PYTHON3" -c 'import json, sys
print(json.load(open(sys.argv[1])).get("cgroupParent"))' "$STATE/instances/$tok.json")" "$SVC_GROUP"

# ---- a restart: the new daemon starts in the leaf (SERVICE takes no
# process now that it has controllers enabled) and adopts the instance ----
kill -9 "$dpid"
{ wait "$dpid"; } 2>/dev/null # (no "Killed" line from bash)
check_fails "SERVICE takes no process any more" sh -c "echo \$\$ >'$SVC/cgroup.procs'"
start_daemon "$SVC/supervisor" || { echo "Bail out! kpa-execd did not start again"; exit 1; }
check_eq "the restarted kpa-execd stays in the leaf" "$(group_of "$dpid")" "$SVC_GROUP/supervisor"
check "... and adopts the instance" grep -Eq '^state: +Running$' <<<"$(run --status "$tok")"
check "... and stops it" run --stop "$tok" --force
for _ in $(seq 100); do [ -d "$INST" ] || break; sleep 0.05; done
check "its cgroup is removed" test ! -d "$INST"
check "... and kpa.slice/APP stays for the next start (kpa's own, beside the leaf)" test -d "$SVC/kpa.slice/$APP"
tok=$(run --detach --pids 20 $APP -- exit 0)
run --wait "$tok" >/dev/null 2>&1
check_eq "a new instance runs and ends" "$(run --status "$tok" | sed -n 's/^state: *//p')" Finished
kill "$dpid"
wait "$dpid" 2>/dev/null
check_eq "kpa-execd ends on SIGTERM" $? 0

# ---- as a daemon (it forks): the move comes first, so the process that
# waits for it to be ready leaves SERVICE with it, and SERVICE is empty ----
mkdir "$SVC.daemon"
# shellcheck disable=SC2016
bash -c 'echo $$ >"$1/cgroup.procs" && exec "$2" --no-autorun --socket "$3" --root "$4" \
    --state-dir "$5"' - "$SVC.daemon" "$EXECD" "$T/daemon.sock" "$R" "$T/daemon" 2>>"$T/execd.log"
check_eq "kpa-execd without --foreground: ready" "$?" 0
dpid=$(cat "$SVC.daemon/supervisor/cgroup.procs")
check "... it is in the leaf" test -n "$dpid"
check_eq "... SERVICE holds no process" "$(cat "$SVC.daemon/cgroup.procs")" ""
check_eq "... and enables $want below it" \
    "$(tr ' ' '\n' <"$SVC.daemon/cgroup.subtree_control" | sort | paste -sd' ')" "$want"
kill "$dpid"
for _ in $(seq 100); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.05; done
dpid=

# ---- a cgroup it cannot leave: a clear refusal ----
mkdir "$SVC.refused"
echo 0 >"$SVC.refused/cgroup.max.descendants"
# shellcheck disable=SC2016
out=$(bash -c 'echo $$ >"$1/cgroup.procs" && exec "$2" --foreground --no-autorun --socket "$3" \
    --root "$4" --state-dir "$5"' - "$SVC.refused" "$EXECD" "$T/refused.sock" "$R" "$T/refused" 2>&1)
rc=$?
check_eq "kpa-execd in a cgroup that can have no leaf: exit 1" "$rc" 1
check "... the message names the leaf and the cause" \
    grep -q "cgroup $SVC.refused/supervisor: cannot create.*: Resource temporarily unavailable" <<<"$out"
check_eq "... and nothing is left in it" "$(find "$SVC.refused" -mindepth 1 -type d)" ""
done_testing
