#!/bin/bash
# The choice of cgroup driver on the command line and in the environment
# (kpa-run --cgroup-driver, kpa-execd --cgroup-driver, KPA_CGROUP_DRIVER):
# bad words are refused with the choices named, the systemd driver where
# systemd does not answer fails the start with the cause and leaves nothing,
# and the cgroupfs driver makes the groups below kpa's own cgroup. The
# systemd driver's scopes are checked in the systemd guest
# (tests/integration/systemd-host.sh).
. "$(dirname "$0")/lib.sh"
need_root

KPA_RUN="$top_builddir/src/tools/kpa-run"
EXECD="$top_builddir/src/daemon/kpa-execd"
PROBE="$top_builddir/tests/probe/probe"
[ -x "$KPA_RUN" ] || skip_all "kpa-run not built"
R="$T/store"
APP=org.example.driver$$
$MKPKG "$T/probe.kpa" --id $APP --bin "$PROBE" --set 'runConfigurations[0].args=[]'
"$KPA_INSTALL" --root "$R" -q "$T/probe.kpa" || { echo "Bail out! cannot install the probe"; exit 1; }
unset KPA_CGROUP_DRIVER
run() { "$KPA_RUN" --root "$R" "$@"; }
cleanup_add 'for d in $(app_cgroups '$APP'); do find "$d" -mindepth 1 -maxdepth 1 -type d -exec rmdir {} \; ; rmdir "$d" 2>/dev/null; done'

# ---- bad words ----
out=$(run --cgroup-driver docker $APP -- exit 0 2>&1)
check_eq "--cgroup-driver docker is a usage error" "$?" 2
check "naming the word and the choices" grep -q 'unknown cgroup driver "docker" (auto, cgroupfs or systemd)' <<<"$out"
out=$(KPA_CGROUP_DRIVER=docker run $APP -- exit 0 2>&1)
check_eq "KPA_CGROUP_DRIVER=docker: the start fails" "$?" 1
check "naming the variable" grep -q 'KPA_CGROUP_DRIVER=docker: unknown cgroup driver' <<<"$out"
check_exit_output "--cgroup-driver does not go with --detach" 2 "kpa-execd chooses the cgroups" \
    "$KPA_RUN" --detach --cgroup-driver cgroupfs $APP
check_exit_output "kpa-execd --cgroup-driver docker is refused" 2 'unknown cgroup driver "docker"' \
    "$EXECD" --foreground --cgroup-driver docker
out=$(KPA_CGROUP_DRIVER=docker "$EXECD" --foreground --socket "$T/x.sock" --state-dir "$T/x" 2>&1)
check_eq "kpa-execd with KPA_CGROUP_DRIVER=docker does not start" "$?" 1
check "and says why" grep -q 'KPA_CGROUP_DRIVER=docker: unknown cgroup driver' <<<"$out"
check "and made no socket" test ! -e "$T/x.sock"

# ---- cgroupfs: below our own cgroup ----
out=$(run --cgroup-driver cgroupfs --pids 20 $APP -- exit 3 2>&1)
check_eq "--cgroup-driver cgroupfs starts it" "$?" 3
KPA_CGROUP_DRIVER=cgroupfs "$KPA_RUN" --root "$R" --pids 20 $APP -- sleep 30 >/dev/null 2>&1 &
rpid=$!
cleanup_add 'kill -9 '"$rpid"' 2>/dev/null'
for _ in $(seq 100); do [ -n "$(app_cgroups "$APP")" ] && break; sleep 0.05; done
dirs=$(app_cgroups "$APP")
check "its group is kpa.slice/APP below our own cgroup" grep -q "/kpa.slice/$APP\$" <<<"$dirs"
for d in $dirs; do
    for i in "$d"/*/; do
        [ -f "$i/cgroup.procs" ] && while read -r p; do kill -9 "$p" 2>/dev/null; done <"$i/cgroup.procs"
    done
done
wait "$rpid"

# ---- systemd where it does not answer ----
if [ -d /run/systemd/system ]; then
    skip "the systemd driver without systemd" "systemd is PID 1 here"
else
    out=$(run --cgroup-driver systemd $APP -- exit 0 2>&1)
    check_eq "--cgroup-driver systemd without systemd: the start fails" "$?" 1
    check "naming the socket it tried" grep -q 'cannot connect to systemd at /run/systemd/private' <<<"$out"
    check "and leaves no group behind" test -z "$(for d in $(app_cgroups "$APP"); do find "$d" -mindepth 1 -type d; done)"
    out=$(run $APP -- exit 4 2>&1)
    check_eq "auto here (no systemd as PID 1) is cgroupfs: it starts" "$?" 4
fi
"$EXECD" --foreground --on-exit stop --cgroup-driver cgroupfs --no-autorun --socket "$T/d.sock" \
    --root "$R" --state-dir "$T/d" 2>"$T/d.log" &
dpid=$!
cleanup_add 'kill '"$dpid"' 2>/dev/null; wait '"$dpid"' 2>/dev/null'
for _ in $(seq 100); do grep -q 'cgroup driver' "$T/d.log" && break; sleep 0.05; done
check "kpa-execd logs its cgroup driver" grep -q 'cgroup driver: cgroupfs' "$T/d.log"
done_testing
