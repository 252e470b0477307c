#!/bin/bash
# Instances by name, and what happened to them, against a kpa-execd of its
# own: --status/--stop/--wait/--logs with APP_ID[/RUNCONFIG] (one match,
# several, none, a bad name), the status fields (start time, restarts, the
# last failure, the host pid), the restart log line with its backoff, the
# backoff reset by KPA_restart.resetAfter, an OOM kill reported as "oom" and
# restarted under on-failure, and the init's name in ps.
. "$(dirname "$0")/lib.sh"
need_root

execd_paths
LOG="$T/execd.log"
APP=org.example.names$$
FAIL=org.example.fails$$
HEALTHY=org.example.healthy$$
OOM=org.example.oom$$
$MKPKG "$T/app.kpa" --id $APP --bin "$PROBE" --set 'runConfigurations[0].args=[]'
# exits 3 at once: the backoff doubles, 0.2 s then 0.4 s
$MKPKG "$T/fail.kpa" --id $FAIL --bin "$PROBE" --set 'runConfigurations[0].args=["sleep-exit","0","3"]' \
    --set 'extensions={"KPA_restart":{"policy":"on-failure","maxRetries":2,"delayMs":200,"maxDelayMs":5000}}'
# runs 1.5 s, longer than its resetAfter: every restart waits delayMs again
$MKPKG "$T/healthy.kpa" --id $HEALTHY --bin "$PROBE" --set 'runConfigurations[0].args=["sleep-exit","1.5","3"]' \
    --set 'extensions={"KPA_restart":{"policy":"on-failure","maxRetries":3,"delayMs":300,"maxDelayMs":5000,"resetAfter":1}}'
# allocates past its memory limit: the OOM killer ends it, once restarted
$MKPKG "$T/oom.kpa" --id $OOM --bin "$PROBE" --set 'runConfigurations[0].args=["memhog","200"]' \
    --set 'extensions={"KPA_limits":{"memory":"32M"},"KPA_restart":{"policy":"on-failure","maxRetries":1,"delayMs":100}}'
for p in app fail healthy oom; do
    "$KPA_INSTALL" --root "$R" -q "$T/$p.kpa" || { echo "Bail out! cannot install $p"; exit 1; }
done

start_daemon() { execd_start --on-exit stop --no-autorun; }
start_daemon || { echo "Bail out! kpa-execd did not start"; exit 1; }

run() { "$KPA_RUN" --socket "$S" "$@"; }

# wait_for NEEDLE CMD...: until CMD's output holds NEEDLE (at most 20 s)
wait_for() {
    local needle=$1 i
    shift
    for i in $(seq 200); do
        [[ "$("$@" 2>&1)" == *"$needle"* ]] && return 0
        sleep 0.1
    done
    return 1
}

# ---- one instance by name ----
tok=$(run --detach $APP -- sleep 60)
out=$(run --status $APP)
check_eq "--status APP_ID finds the one instance" "$(sed -n 's/^token: *//p' <<<"$out")" "$tok"
out=$(run --status $APP/main)
check_eq "--status APP_ID/RUNCONFIG finds it too" "$(sed -n 's/^token: *//p' <<<"$out")" "$tok"
pid=$(sed -n 's/^pid: *//p' <<<"$out")
check "--status shows the init's host pid, a live process" test -n "$pid" -a -d "/proc/${pid:-0}"
check_eq "the pid is the instance's init (pid 1 inside)" \
    "$(sed -n 's/^NSpid:\t[0-9]*\t//p' "/proc/${pid:-0}/status")" 1
app=$(sed -n 's/^app pid: *//p' <<<"$out")
check_eq "--status shows the application's host pid, a child of the init" \
    "$(awk '{print $4}' "/proc/${app:-0}/stat" 2>&1)" "$pid"
check "--status shows when it started" grep -Eq '^started: +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} .*s ago\)$' <<<"$out"
check "--status shows no restarts" grep -Eq '^restarts: +0$' <<<"$out"
js=$(run --status $APP --json)
now=$(date +%s)
check "--status --json has startedAt, a Unix time of now" \
    test "$(field "$js" startedAt)" -gt $((now - 60)) -a "$(field "$js" startedAt)" -le "$now"
check_eq "--status --json: restarts 0, no last failure, the two pids" \
    "$(field "$js" restarts):$(field "$js" lastFailure):$(field "$js" pid):$(field "$js" appPid)" \
    "0::$pid:$app"

# ---- the init's name in ps ----
check_eq "the init's comm is kpa-init" "$(cat "/proc/${pid:-0}/comm")" kpa-init
check_eq "its command line is kpa-init APP_ID/RUNCONFIG" \
    "$(tr '\0' '\n' <"/proc/${pid:-0}/cmdline")" "kpa-init $APP/main"
check "the daemon's own command line is unchanged" grep -q -- '--state-dir' <<<"$(tr '\0' ' ' <"/proc/$dpid/cmdline")"

# ---- several instances of one name ----
tok2=$(run --detach $APP -- sleep 60)
out=$(run --status $APP)
rc=$?
check_eq "--status of an ambiguous name lists both (exit 0)" \
    "$rc $(grep -c '^token:' <<<"$out")" "0 2"
check "  the first and the second" grep -q "$tok2" <<<"$out"
js=$(run --status $APP --json)
check_eq "--status --json of an ambiguous name is an array of both" \
    "$(field "$js" 0.token) $(field "$js" 1.token)" "$tok $tok2"
for verb in --stop --wait --logs; do
    check_exit_output "$verb of an ambiguous name refuses with the list" 1 \
        "$APP names 2 instances; give $verb one of their tokens" run $verb $APP
done
out=$(run --stop $APP 2>&1)
check "  the list names each token and pid" grep -q "$tok2  $APP/main  Running  pid [0-9]" <<<"$out"
check_exit "--stop TOKEN still works" 0 run --stop "$tok2"
run --wait "$tok2" >/dev/null

# ---- --stop, --wait and --logs by name ----
check_exit "--stop APP_ID stops the one left" 0 run --stop $APP/main
run --wait $APP
check_eq "--wait APP_ID: the latest ended instance (stopped: 143)" "$?" 143
check_eq "  it is the one stopped by name" "$(run --status $APP --json | sed 's/.*"token":"\([0-9a-f]*\)".*/\1/')" "$tok"
tok3=$(run --detach $APP -- sleep 0)
check_exit "--wait APP_ID of a short run" 0 run --wait $APP
out=$(run --logs $APP)
check_eq "--logs APP_ID prints the output of that latest one" "$out" "$(run --logs "$tok3")"
check_eq "  which is its output" "$(head -1 <<<"$out")" "ready=1"

# ---- a user sees by name only what is theirs ----
chmod 666 "$S"
check_exit_output "a uid that is not the owner does not find root's instance by name" 1 \
    "$APP: no such instance (kpa-execd knows no instance of that package)" \
    setpriv --reuid 65534 --regid 65534 --clear-groups "$(reachable "$KPA_RUN")" --socket "$S" --status $APP
chmod 660 "$S"

# ---- names that match nothing, and bad ones ----
check_exit_output "--status of a package with no instance" 1 \
    "org.example.none$$: no such instance (kpa-execd knows no instance of that package)" \
    run --status org.example.none$$
check_exit_output "--stop of a run configuration with no instance" 1 \
    "$APP/other: no such instance (kpa-execd knows no instance of that package and run configuration)" \
    run --stop $APP/other
for bad in 'org example' "$APP/" '/main' "$APP/a/b" 'x;y'; do
    check_exit_output "--status \"$bad\" is a usage error" 2 \
        "is neither a token (32 lowercase hexadecimal characters, as --detach prints) nor APP_ID[/RUNCONFIG]" \
        run --status "$bad"
done
unknown=0123456789abcdef0123456789abcdef
for verb in --status --stop --wait --logs; do
    check_exit_output "$verb of an unknown token says the same as every verb" 1 \
        "$unknown: no such instance (it never existed, or kpa-execd no longer keeps its context)" \
        run $verb $unknown
done

# ---- restarts: the log line, the backoff, the status fields ----
ftok=$(run --detach $FAIL)
check "the daemon logs the first restart with its cause and backoff" \
    wait_for "restarting $FAIL/main in 0.2 s after exited with code 3, restart 1" cat "$LOG"
check "and the second one, after twice the delay" \
    wait_for "restarting $FAIL/main in 0.4 s after exited with code 3, restart 2" cat "$LOG"
check "then it stays ended after maxRetries" \
    wait_for "not restarted: 2 restarts in a row" run --status $FAIL
out=$(run --status $FAIL)
check_eq "--status by name is the same instance across restarts" "$(sed -n 's/^token: *//p' <<<"$out")" "$ftok"
check "--status counts 2 restarts" grep -Eq '^restarts: +2$' <<<"$out"
check "--status shows the last failure" \
    grep -Eq '^last failure: Finished, Normal, exit code 3, exit reason 0, cause exited$' <<<"$out"
check "--list counts them in RESTARTS" grep -Eq "^$ftok +Finished +$FAIL +main +- +2 +3$" <<<"$(run --list)"
js=$(run --list --json)
check_eq "--list --json has the restarts and the last failure" \
    "$("$PYTHON3" -c 'import json,sys
p = [p for p in json.loads(sys.argv[1]) if p["package"] == sys.argv[2]][0]
print(p["restarts"], p["lastFailure"]["state"], p["lastFailure"]["exitStatus"], p["lastFailure"]["exitCode"], p["lastFailure"]["exitCause"], p["startedAt"] > 0)' "$js" $FAIL)" \
    "2 Finished Normal 3 exited True"

# ---- the backoff starts over after a healthy run (resetAfter) ----
run --detach $HEALTHY >/dev/null
check "a run longer than resetAfter: the third restart waits delayMs again" \
    wait_for "restarting $HEALTHY/main in 0.3 s after exited with code 3, restart 3" cat "$LOG"
check_exit "  and never more" 1 grep -q "restarting $HEALTHY/main in 0.6 s" "$LOG"

# ---- out of memory: reported as such, and restarted under on-failure ----
otok=$(run --detach $OOM)
check "an OOM kill is logged as the restart's cause" \
    wait_for "restarting $OOM/main in 0.1 s after killed by SIGKILL (out of memory: the memory limit was reached), restart 1" cat "$LOG"
check "then it stays ended after maxRetries" \
    wait_for "not restarted: 1 restarts in a row" run --status "$otok"
js=$(run --status $OOM --json)
check_eq "--status --json: exit cause oom, Failed, 1 restart" \
    "$(field "$js" exitCause) $(field "$js" state) $(field "$js" exitCode) $(field "$js" restarts)" \
    "oom Failed 9 1"
check_eq "  and the last failure is the OOM kill" \
    "$(field "$js" lastFailure.exitCause) $(field "$js" lastFailure.exitStatus)" "oom Unexpected"
check "--status says exit cause: oom" grep -Eq '^exit cause: +oom$' <<<"$(run --status $OOM)"

# ---- the history survives a restart of the daemon ----
check_exit "the healthy one is stopped by name" 0 run --stop $HEALTHY
run --wait $HEALTHY >/dev/null
kill -9 "$dpid" && wait "$dpid" 2>/dev/null
rm -f "$S"
start_daemon
out=$(run --status $FAIL)
check "after kill -9 of kpa-execd, a new one still counts the restarts" grep -Eq '^restarts: +2$' <<<"$out"
check "  and knows the last failure" \
    grep -Eq '^last failure: Finished, Normal, exit code 3, exit reason 0, cause exited$' <<<"$out"

done_testing
