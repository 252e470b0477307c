#!/bin/bash
# The kpa-execd service embedded in a C program of its own (issue 16): the
# probe tests/probe/execd-embed calls kpa_execd_run() of kpa/execd.h alone,
# linked against libkpa.so, on a socket and store of its own. kpa-run
# --socket starts, lists and stops an instance through it, checked from
# outside (/proc, the cgroup); a bad config fails with the cause named.
. "$(dirname "$0")/lib.sh"
need_root

EMBED="$top_builddir/tests/probe/execd-embed"
KPA_RUN="$top_builddir/src/tools/kpa-run"
PROBE="$top_builddir/tests/probe/probe"
[ -x "$EMBED" ] || skip_all "tests/probe/execd-embed not built"
R="$T/store"
S="$T/embed.sock"
STATE="$T/state"
APP=org.example.embed$$
$MKPKG "$T/app.kpa" --id $APP --bin "$PROBE" --set 'runConfigurations[0].args=[]'
"$KPA_INSTALL" --root "$R" -q "$T/app.kpa" || { echo "Bail out! cannot install $APP"; exit 1; }

epid=
embed_stop() {
    [ -n "$epid" ] || return 0
    kill -TERM "$epid" 2>/dev/null
    wait "$epid" 2>/dev/null
    epid=
}
cleanup_add 'embed_stop; for f in "$STATE"/instances/*.json; do [ -f "$f" ] && p=$(sed -n "s/.*\"pid\": *\([0-9]*\).*/\1/p" "$f") && [ "${p:-0}" -gt 0 ] && kill -9 "$p"; done 2>/dev/null'
cleanup_add 'for d in $(app_cgroups $APP); do find "$d" -mindepth 1 -maxdepth 1 -type d -exec rmdir {} \; ; rmdir "$d"; done 2>/dev/null'

# ---- it serves ----
"$EMBED" "$S" "$R" "$STATE" </dev/null >"$T/embed.out" 2>"$T/embed.log" &
epid=$!
for _ in $(seq 400); do
    grep -qx ready "$T/embed.out" 2>/dev/null && break
    kill -0 "$epid" 2>/dev/null || break
    sleep 0.05
done
if ! grep -qx ready "$T/embed.out"; then
    sed 's/^/#   /' "$T/embed.log"
    echo "Bail out! execd-embed did not get ready"
    exit 1
fi
_result 0 "the embedded service says READY=1 through its notify callback"
check "it listens on its own socket" test -S "$S"
check_eq "the socket is mode 0660" "$(stat -c %a "$S")" 660
check "its log came through its log callback" grep -q "^execd-embed: info: listening on $S" "$T/embed.log"
check "it holds its state directory's lock" sh -c "ls -l /proc/$epid/fd | grep -q '$STATE/execd.lock'"

tok=$("$KPA_RUN" --socket "$S" --detach $APP -- sleep 3600)
_result $? "kpa-run --socket --detach starts an instance through it"
st=$("$KPA_RUN" --socket "$S" --status "$tok" --json 2>&1)
pid=$("$PYTHON3" -c 'import json,sys; print(json.loads(sys.argv[1])["pid"])' "$st" 2>/dev/null)
check "the instance runs (/proc/PID)" test -d "/proc/${pid:-none}"
ppid=$(awk '/^PPid:/ {print $2}' "/proc/${pid:-none}/status" 2>/dev/null)
check_eq "the instance's init is a child of the embedding program" "$ppid" "$epid"
check "the instance is in its cgroup kpa.slice/$APP" grep -q "kpa.slice/$APP/" "/proc/${pid:-none}/cgroup"
cg=$(app_cgroups $APP | head -1)
check "the cgroup lists the instance's init" sh -c "cat '$cg'/*/cgroup.procs '$cg'/*/*/cgroup.procs 2>/dev/null | grep -qx '$pid'"
check "kpa-run --list shows it" sh -c "'$KPA_RUN' --socket '$S' --list | grep -q '$tok'"
"$KPA_RUN" --socket "$S" --stop "$tok" >/dev/null 2>&1
_result $? "kpa-run --stop stops it"
for _ in $(seq 200); do
    [ -d "/proc/$pid" ] || break
    sleep 0.05
done
check "the instance is gone from /proc" test ! -d "/proc/$pid"
check_eq "kpa-run --status says it ended" \
    "$("$PYTHON3" -c 'import json,sys; print(json.loads(sys.argv[1])["state"])' \
        "$("$KPA_RUN" --socket "$S" --status "$tok" --json 2>&1)" 2>/dev/null)" Finished

# ---- it stops on SIGTERM ----
kill -TERM "$epid"
wait "$epid"
rc=$?
epid=
check_eq "SIGTERM: kpa_execd_run returns 0 and the program exits 0" "$rc" 0
check "the socket file is removed" test ! -e "$S"
check "it said READY=1 once" grep -q "stopped (ready 1 time)" "$T/embed.log"

# ---- a bad config: the cause named, exit 1 ----
check_exit_output "no such store" 1 "$T/no-store" "$EMBED" "$T/s2.sock" "$T/no-store" "$T/state2"
long="$T/$(printf 'd%.0s' $(seq 120))/execd.sock"
check_exit_output "a socket path too long" 1 "socket path $long is too long" \
    "$EMBED" "$long" "$R" "$T/state3"
check_exit_output "a relative state directory" 1 "state directory \"state\" is not an absolute path" \
    "$EMBED" "$T/s4.sock" "$R" state
check_exit_output "a config never initialized (struct_size 0)" 1 \
    "kpa_execd_config.struct_size is 0: set it with kpa_execd_config_init() first" \
    "$EMBED" --uninitialized "$T/s5.sock" "$R" "$T/state5"
check "the failed configs leave no socket" test ! -e "$T/s2.sock" -a ! -e "$T/s4.sock" -a ! -e "$T/s5.sock"
done_testing
