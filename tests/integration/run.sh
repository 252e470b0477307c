#!/bin/bash
# kpa-run in direct mode, checked from outside and from a probe inside the
# sandbox: namespaces, private root, cgroup and limits, handles, capabilities,
# states and exit statuses, stops, and clean-up after every run.
. "$(dirname "$0")/lib.sh"
need_root

KPA_RUN="$top_builddir/src/tools/kpa-run"
PROBE="$top_builddir/tests/probe/probe"
PROBE_SD="$top_builddir/tests/probe/probe-sd"
[ -x "$KPA_RUN" ] || skip_all "kpa-run not built"
R="$T/store"
APP=org.example.probe$$
$MKPKG "$T/probe.kpa" --id $APP --bin "$PROBE" --set 'runConfigurations[0].args=[]'
"$KPA_INSTALL" --root "$R" -q "$T/probe.kpa" || { echo "Bail out! cannot install the probe"; exit 1; }
uid=$(cat "$R/users/$APP")

# the cgroups this test's instances land in (below our own cgroup, per hierarchy)
cg_dirs() { app_cgroups "$APP"; }
leftover_instances() {
    local d
    for d in $(cg_dirs); do find "$d" -mindepth 1 -maxdepth 1 -type d; done
}
cleanup_add 'for d in $(cg_dirs); do find "$d" -mindepth 1 -maxdepth 1 -type d -exec rmdir {} \; ; rmdir "$d" 2>/dev/null; done'

run() { "$KPA_RUN" --root "$R" "$@"; }
val() { sed -n "s|^$1=||p" <<<"$2" | head -1; }
fds() { sed -n 's/^fd\.\([0-9]*\)=.*/\1/p' <<<"$1" | sort -n | paste -sd, -; }

# ---- inside the sandbox ----
out=$(run $APP -- info)
check_eq "the application is PID 2" "$(val pid "$out")" 2
check_eq "its parent is the init at PID 1" "$(val ppid "$out")" 1
check_eq "/proc shows only the instance (init and application)" "$(val processes "$out")" 2
check_eq "hostname is the application id" "$(val hostname "$out")" $APP
check_eq "only a loopback interface" "$(val netifs "$out")" "lo"
for c in CapInh CapPrm CapEff CapBnd CapAmb; do
    check_eq "$c is zero" "$(val "$c" "$out")" 0000000000000000
done
check_eq "NoNewPrivs is set" "$(val NoNewPrivs "$out")" 1
# the child is kept off its parent's CPU while the parent makes the cgroup;
# the application must not keep that restriction
check_eq "it may run on every CPU its caller may" "$(val Cpus_allowed_list "$out")" \
    "$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status)"
last_cpu=$(( $(nproc) - 1 ))
check_eq "... and on no other (a caller bound to CPU $last_cpu)" \
    "$(val Cpus_allowed_list "$(taskset -c $last_cpu "$KPA_RUN" --root "$R" $APP -- info)")" "$last_cpu"
check_eq "runs as the package's own uid" "$(val uid "$out") $(val gid "$out")" "$uid $uid"
check_eq "/usr is read-only" "$(val writable./usr "$out")" 0
check_eq "/ is read-only" "$(val writable./ "$out")" 0
check_eq "the package at /$APP is read-only" "$(val "writable./$APP" "$out")" 0
check_eq "/storage is writable" "$(val writable./storage "$out")" 1
check_eq "/tmp is writable" "$(val writable./tmp "$out")" 1
check_eq "/tmp is a tmpfs" "$(val tmp.tmpfs "$out")" 1
check_eq "only fds 0, 1, 2 are open" "$(fds "$out")" "0,1,2"
# (TERM passes when kpa-run's environment has it: a shell variable that is
# set but not exported does not count)
expected_env="env.HOME env.LANG env.MODE env.PATH"
printenv TERM >/dev/null && expected_env="$expected_env env.TERM"
check_eq "the environment is clean" "$(grep '^env\.' <<<"$out" | cut -d= -f1 | sort | paste -sd' ' -)" \
    "$(tr ' ' '\n' <<<"$expected_env" | sort | paste -sd' ' -)"
check "the manifest's envVariables arrive" grep -q '^env.MODE=test$' <<<"$out"
out=$(run --env MODE=override --env EXTRA=1 $APP -- info a b)
check "--env overrides the manifest" grep -q '^env.MODE=override$' <<<"$out"
check_eq "extra args follow the manifest's" "$(val argv.2 "$out") $(val argv.3 "$out")" "a b"
check_exit_output "--network host needs the network permission" 1 \
    "the network permission is not granted (an administrator grants it with: kpa-install --grant network $APP)" \
    run --network host $APP -- exit 0
"$KPA_INSTALL" --root "$R" -q --grant network $APP
out=$(run --network host $APP -- info)
check "--network host, granted, shares the host's interfaces" test -n "$(val netifs "$out")" -a "$(val netifs "$out")" != "lo"
"$KPA_INSTALL" --root "$R" -q --revoke network $APP

# ---- private storage persists ----
check "write to /storage" run $APP -- write /storage/note.txt kept
check_eq "/storage keeps its content across runs" "$(run $APP -- cat /storage/note.txt)" kept
check_eq "the file belongs to the package uid on the host" "$(storage_owner "$R" $APP note.txt)" "$uid"

# ---- host paths bound read-only (extensions.KPA_sandbox.readOnlyPaths) ----
chmod 755 "$T" # the package's uid must reach the paths below (permissions.sh)
mkdir -p "$T/ro/dir" && echo "ro content" >"$T/ro/dir/f" && echo "file content" >"$T/ro/file"
libdir=$(dirname "$(readlink -f /lib/*-linux-gnu/libc.so.6 | head -1)") # /usr/lib/TRIPLET
rundir=/run/kpa-test-run$$
cleanup_add "rm -rf $rundir"
mkdir -p $rundir && echo "run content" >$rundir/sock
RAPP=org.example.ro$$
paths="\"$T/ro/dir\",\"$T/ro/file\",\"/lib/${libdir##*/}\",\"$rundir\""
$MKPKG "$T/ro.kpa" --id $RAPP --bin "$PROBE" --set 'runConfigurations[0].args=[]' \
    --set "extensions={\"KPA_sandbox\":{\"readOnlyPaths\":[$paths]}}"
"$KPA_INSTALL" --root "$R" -q --grant readOnlyPaths "$T/ro.kpa"
check_eq "a host directory arrives at its own path" "$("$KPA_RUN" --root "$R" $RAPP -- cat "$T/ro/dir/f")" \
    "ro content"
check_eq "a host file too" "$("$KPA_RUN" --root "$R" $RAPP -- cat "$T/ro/file")" "file content"
check "... read-only" grep -q "EROFS" <<<"$("$KPA_RUN" --root "$R" $RAPP -- write "$T/ro/dir/g" x)"
check "a path through the /lib symlink (into the /usr bind) is bound too" \
    "$KPA_RUN" --root "$R" $RAPP -- cat "/lib/${libdir##*/}/libc.so.6"
check_eq "a path below /run shows on the sandbox's own /run (and below /tmp, as above)" \
    "$("$KPA_RUN" --root "$R" $RAPP -- cat $rundir/sock)" "run content"
MAPP=org.example.romissing$$
$MKPKG "$T/romissing.kpa" --id $MAPP --bin "$PROBE" --set 'runConfigurations[0].args=[]' \
    --set "extensions={\"KPA_sandbox\":{\"readOnlyPaths\":[\"$T/not-there\"]}}"
"$KPA_INSTALL" --root "$R" -q --grant all "$T/romissing.kpa"
check_exit_output "a read-only path missing on the host fails the start, named" 1 \
    "cannot bind the host path $T/not-there: No such file or directory" \
    "$KPA_RUN" --root "$R" $MAPP -- exit 0

# ---- handles ----
echo "handle content" >"$T/h.txt"
out=$(run --handle cfg=file:"$T/h.txt" --handle log=file+a:"$T/log.txt" $APP -- handles cfg log)
check_eq "kpa_lookup_handle finds every handle, in order" "$(val handle.cfg "$out") $(val handle.log "$out")" "3 4"
check_eq "the handle is the file given" "$(val handle.cfg.target "$out")" "$T/h.txt"
out=$(run --handle cfg=file:"$T/h.txt" --handle log=file+a:"$T/log.txt" $APP -- info)
check_eq "/proc/self/fd shows only 0, 1, 2 and the handles" "$(fds "$out")" "0,1,2,3,4"
check_eq "LISTEN_PID is the pid inside the namespace" "$(val env.LISTEN_PID "$out")" 2
check_eq "LISTEN_FDNAMES" "$(val env.LISTEN_FDNAMES "$out")" "cfg:log"
if [ -x "$PROBE_SD" ]; then
    $MKPKG "$T/sd.kpa" --id org.example.sd$$ --bin "$PROBE_SD" --set 'runConfigurations[0].args=[]'
    "$KPA_INSTALL" --root "$R" -q "$T/sd.kpa"
    out=$("$KPA_RUN" --root "$R" --handle cfg=file:"$T/h.txt" --handle log=file+a:"$T/log.txt" org.example.sd$$)
    check_eq "sd_listen_fds_with_names() finds the handles" "$(echo "$out" | tr '\n' ' ')" "count=2 cfg=3 log=4 "
else
    skip "sd_listen_fds_with_names() finds the handles" "tests/probe/probe-sd is not built (no libsystemd)"
fi
check_exit_output "a bad handle spec is named" 2 'handle spec "nosuch:x": unknown kind' run --handle a=nosuch:x $APP -- info

# ---- cgroup and limits ----
"$KPA_RUN" --root "$R" --memory 64M --pids 50 --cpu-weight 200 $APP -- sleep 30 &
runpid=$!
cleanup_add "kill -9 $runpid 2>/dev/null"
for _ in $(seq 100); do [ -n "$(leftover_instances)" ] && break; sleep 0.05; done
inst=$(leftover_instances | head -1)
check "an instance cgroup exists while it runs" test -n "$inst"
for d in $(leftover_instances); do
    # (the group is made before its processes join it, or while they start)
    for _ in $(seq 100); do [ "$(wc -l <"$d/cgroup.procs")" -ge 2 ] && break; sleep 0.05; done
    check_eq "cgroup $(basename "$(dirname "$(dirname "$(dirname "$d")")")") holds exactly init and the application" \
        "$(wc -l <"$d/cgroup.procs")" 2
    # each limit is in whichever hierarchy has its controller (v1: one
    # each; v2: all in one)
    [ -f "$d/memory.limit_in_bytes" ] && lim_mem=$(cat "$d/memory.limit_in_bytes")
    [ -f "$d/memory.max" ] && lim_mem=$(cat "$d/memory.max")
    [ -f "$d/pids.max" ] && lim_pids=$(cat "$d/pids.max")
    [ -f "$d/cpu.shares" ] && lim_cpu="$(cat "$d/cpu.shares") (cpu.shares)"
    [ -f "$d/cpu.weight" ] && lim_cpu="$(cat "$d/cpu.weight") (cpu.weight)"
done
# (a limit that no hierarchy shows is a failure, not a check left out)
check_eq "memory limit visible from the host" "${lim_mem:-none}" 67108864
check_eq "pids limit visible from the host" "${lim_pids:-none}" 50
case ${lim_cpu:-} in
*cpu.shares*) check_eq "cpu weight visible from the host (as cpu.shares)" "$lim_cpu" "2048 (cpu.shares)" ;;
*) check_eq "cpu weight visible from the host" "${lim_cpu:-none}" "200 (cpu.weight)" ;;
esac
kill -TERM $runpid
wait $runpid
check_eq "a Normal stop of an application without a SIGTERM handler: kpa-run exits 143" "$?" 143
check_eq "no instance cgroup remains" "$(leftover_instances)" ""

# --cgroup-parent as a directory of the cgroup file system: the group it is
# (the mount point is stripped, not doubled); the pids hierarchy on v1 and
# hybrid hosts, the v2 one on pure v2
pmnt=/sys/fs/cgroup
pgroup=$(sed -n 's/^0:://p' /proc/self/cgroup)
if grep -q '^[0-9]*:pids:' /proc/self/cgroup; then
    pmnt=/sys/fs/cgroup/pids
    pgroup=$(sed -n 's/^[0-9]*:pids://p' /proc/self/cgroup)
fi
PDIR="$pmnt${pgroup%/}/kpa-test-parent.$$"
mkdir "$PDIR"
cleanup_add "rmdir '$PDIR'/kpa.slice/$APP/* '$PDIR/kpa.slice/$APP' '$PDIR/kpa.slice' '$PDIR' 2>/dev/null"
"$KPA_RUN" --root "$R" --cgroup-parent "$PDIR" $APP -- sleep 30 &
runpid=$!
cleanup_add "kill -9 $runpid 2>/dev/null"
pinst_of() { find "$PDIR/kpa.slice/$APP" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -1; }
for _ in $(seq 100); do [ -n "$(pinst_of)" ] && break; sleep 0.05; done
pinst=$(pinst_of)
check "--cgroup-parent $PDIR: the instance is in $PDIR/kpa.slice" test -n "$pinst"
procs() { wc -l <"$pinst/cgroup.procs" 2>/dev/null; }
for _ in $(seq 100); do [ "$(procs)" = 2 ] && break; sleep 0.05; done
check_eq "... holding init and the application" "$(procs)" 2
kill -TERM $runpid
wait $runpid
check_eq "... and ends" "$?" 143
check "... leaving $PDIR as it was" test ! -e "$PDIR/kpa.slice"
check "no group with a doubled mount point is made" test ! -e "$pmnt/sys"
check_exit_output "--cgroup-parent to a missing directory of the cgroup file system is refused" 1 \
    "cgroup parent $pmnt/kpa-test-nowhere.$$: no such directory in the cgroup file system" \
    run --cgroup-parent "$pmnt/kpa-test-nowhere.$$" $APP -- exit 0
rmdir "$PDIR"

out=$(run --pids 20 $APP -- forkbomb)
check "a fork bomb stops at the pids limit" test "$(val forks "$out")" -lt 20
out=$(run --json --memory 32M $APP -- memhog 200 2>&1)
rc=$?
check_eq "a memory hog is killed" "$rc" 137
check "and it is reported as out of memory" grep -q 'out of memory' <<<"$out"

# ---- states and exit statuses ----
json() { sed -n '/^{/p' <<<"$1" | tail -1; }
jq_() { $PYTHON3 -c "import json,sys; d=json.loads(sys.argv[1]); print(d[sys.argv[2]])" "$1" "$2"; }
out=$(run --json $APP -- exit 7 2>&1)
check_eq "the exit code arrives" "$?" 7
j=$(json "$out")
check_eq "a normal run ends Finished" "$(jq_ "$j" state)" Finished
check_eq "with exit status Normal" "$(jq_ "$j" exitStatus)" Normal
check_eq "and exit code 7" "$(jq_ "$j" exitCode)" 7

"$KPA_RUN" --root "$R" --json $APP -- sleep 30 2>"$T/stop.json" &
p=$!
sleep 0.5
kill -TERM $p
wait $p
j=$(json "$(cat "$T/stop.json")")
check_eq "Normal stop of an application without a handler: Finished" "$(jq_ "$j" state)" Finished
check_eq "Normal stop of an application without a handler: Normal" "$(jq_ "$j" exitStatus)" Normal

"$KPA_RUN" --root "$R" --json --stop-timeout 1 $APP -- ignore-term 30 2>"$T/stop.json" &
p=$!
sleep 0.5
t0=$(date +%s%N)
kill -TERM $p
wait $p
t1=$(date +%s%N)
j=$(json "$(cat "$T/stop.json")")
check_eq "an application that ignores SIGTERM ends Terminated" "$(jq_ "$j" exitStatus)" Terminated
check "after the grace period (1 s)" test $(((t1 - t0) / 1000000)) -ge 900

"$KPA_RUN" --root "$R" --json $APP -- ignore-term 30 2>"$T/stop.json" &
p=$!
sleep 0.5
kill -TERM $p
sleep 0.2
kill -TERM $p
wait $p
j=$(json "$(cat "$T/stop.json")")
check_eq "a second signal forces the stop: Terminated" "$(jq_ "$j" exitStatus)" Terminated

out=$(run --json $APP -- segv 2>&1)
check_eq "a segfault: kpa-run exits 128+11" "$?" 139
j=$(json "$out")
check_eq "a segfault ends Failed" "$(jq_ "$j" state)" Failed
check_eq "a segfault is Unexpected" "$(jq_ "$j" exitStatus)" Unexpected
check_eq "with signal 11" "$(jq_ "$j" exitCode)" 11
check "and says killed by SIGSEGV" grep -q "killed by SIGSEGV" <<<"$out"

chmod 644 "$R/apps/$APP/bin/hello"
out=$(run --json $APP -- info 2>&1)
j=$(json "$out")
check_eq "a non-executable binary fails with EACCES" "$(jq_ "$j" exitReason)" 13
check_eq "... in state Failed" "$(jq_ "$j" state)" Failed
check "... with a message naming the step" grep -q 'exec' <<<"$out"
rm "$R/apps/$APP/bin/hello"
out=$(run --json $APP -- info 2>&1)
j=$(json "$out")
check_eq "a missing binary fails with ENOENT" "$(jq_ "$j" exitReason)" 2
check "... and the message names it and the repair" grep -q 'its program bin/hello is missing from the installed package (kpa-install --verify' <<<"$out"
"$KPA_INSTALL" --root "$R" -q --reinstall "$T/probe.kpa"
check_eq "failed starts leave no cgroup" "$(leftover_instances)" ""

check_exit_output "an unknown application is named" 1 "org.example.none is not installed" run org.example.none
check_exit_output "an unknown run configuration is named" 1 'has no run configuration "nosuch"' run $APP nosuch

# ---- orphans, kill -9 of kpa-run, TIOCSTI ----
check "an application that leaves orphans" run $APP -- orphans 3
check_eq "leaves no process or cgroup behind" "$(leftover_instances)" ""
"$KPA_RUN" --root "$R" $APP -- sleep 30 &
p=$!
for _ in $(seq 100); do init=$(pgrep -P $p | head -1); [ -n "$init" ] && break; sleep 0.05; done
sleep 0.3
check "kpa-run's child, the instance's init, is found" test -n "$init"
sid_init=$(proc_sid "$init") sid_run=$(proc_sid $p)
check "the instance has its own session (a Ctrl-C at kpa-run's terminal reaches only kpa-run)" \
    test -n "$sid_init" -a -n "$sid_run" -a "$sid_init" != "$sid_run"
ref=$(proc_ref "$init")
kill -9 $p
wait $p 2>/dev/null
for _ in $(seq 200); do proc_alive "$ref" >/dev/null || break; sleep 0.05; done
check_exit "kill -9 of kpa-run kills the instance" 1 proc_alive "$ref"
# (cgroup.c) the killed kpa-run could not remove its empty instance cgroup;
# the next start of the app removes it once it is a second old
check "kill -9 of kpa-run leaves its instance cgroup" test -n "$(leftover_instances)"
sleep 1.1
run $APP -- info >/dev/null
check_eq "the next start removes the cgroup that kill -9 left" "$(leftover_instances)" ""
if command -v script >/dev/null; then
    out=$(script -qec "$KPA_RUN --root $R $APP -- tiocsti" /dev/null </dev/null)
    # (at a terminal the application gets a pty of its own, which echoes
    # what script(1) types at the end of its input)
    check "TIOCSTI on the terminal fails" grep -aq 'tiocsti=E' <<<"$out"
    # Ctrl-C typed at kpa-run's terminal, with no pty of the application's
    # own (--tty: tty.sh): kpa-run turns it into a Normal stop
    out=$( (sleep 1.5; printf '\003'; sleep 3) |
        script -qec "$KPA_RUN --root $R --no-tty --json $APP -- sleep 30" /dev/null)
    check "Ctrl-C at the terminal is a Normal stop" grep -q '"exitStatus":"Normal"' <<<"$out"
else
    skip "TIOCSTI and Ctrl-C at a terminal" "script (bsdutils) is not installed: no terminal"
fi
done_testing
