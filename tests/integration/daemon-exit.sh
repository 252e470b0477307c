#!/bin/bash
# What kpa-execd does to its instances when it exits, from outside:
# --on-exit keep (SIGTERM and a Ctrl-C at its terminal leave them running,
# and the next daemon on the same state directory adopts and stops them),
# --on-exit stop (SIGTERM stops them), auto (by whether systemd is PID 1),
# kpa-run --stop-all (Normal and --force, the count, root only, no daemon),
# and bad values.
. "$(dirname "$0")/lib.sh"
need_root

execd_paths
APP=org.example.exit$$
$MKPKG "$T/probe.kpa" --id $APP --bin "$PROBE" --set 'runConfigurations[0].args=[]'
"$KPA_INSTALL" --root "$R" -q "$T/probe.kpa" || { echo "Bail out! cannot install the probe"; exit 1; }

run() { "$KPA_RUN" --socket "$S" "$@"; }

dpid=
# start_daemon ON-EXIT: a daemon in the foreground, in a session and
# process group of its own (as at a terminal: a Ctrl-C there goes to the
# whole group), logging to $T/execd.log
start_daemon() {
    : >"$T/execd.log"
    setsid "$EXECD" --foreground --no-autorun --on-exit "$1" --socket "$S" --root "$R" \
        --state-dir "$STATE" </dev/null >/dev/null 2>"$T/execd.log" &
    dpid=$!
    local i
    for i in $(seq 200); do
        [ -S "$S" ] && run --list >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    cat "$T/execd.log"
    return 1
}
# end_daemon SIGNAL: send it, and wait for the daemon's exit status
end_daemon() {
    local rc=0
    kill "-$1" "$dpid"
    wait "$dpid" || rc=$?
    dpid=
    return $rc
}
# What a failed run may leave: instances that a daemon left running (their
# inits, by the pid in their records, never by name; an init whose daemon
# is gone is reaped by whoever inherits it, maybe later, and its cgroup
# can go only after that), the daemon, and the cgroups.
leftovers() {
    local f p pids=() d alive
    [ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
    for f in "$STATE"/instances/*.json; do
        [ -f "$f" ] || continue
        p=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$f")
        [ "${p:-0}" -gt 0 ] && kill -9 "$p" 2>/dev/null && pids+=("$p")
    done
    for _ in $(seq 100); do
        alive=
        for p in "${pids[@]}"; do [ -e "/proc/$p" ] && alive=1; done
        [ -z "$alive" ] && break
        sleep 0.05
    done
    for d in $(app_cgroups $APP); do
        find "$d" -mindepth 1 -maxdepth 1 -type d -exec rmdir {} \;
        rmdir "$d"
    done 2>/dev/null
}
cleanup_add leftovers

# detach ARGS...: start the probe with ARGS through the daemon; sets tok and
# ref (the "PID STARTTIME" of the instance's process, see proc_ref)
detach() {
    local pid
    tok=$(run --detach "$APP" -- "$@") || return 1
    pid=$(run --status "$tok" | sed -n 's/^pid: *//p')
    ref=$(proc_ref "$pid") || return 1
}
state_of() { run --status "$1" | sed -n 's/^state: *//p'; }
pid_of() { run --status "$1" | sed -n 's/^pid: *//p'; }
gone() { ! proc_alive "$1" >/dev/null; }

# ---- bad values ----
check_exit_output "--on-exit with a bad value is refused, naming the choices" 2 \
    '--on-exit: "bogus" is not one of keep, stop, auto' "$EXECD" --on-exit bogus
"$EXECD" --on-exit bogus >/dev/null 2>&1
check_eq "... as a usage error (exit 2)" $? 2
check_exit_output "--on-exit without a value is refused" 2 "kpa-execd: --on-exit needs an argument" "$EXECD" --on-exit
check_exit_output "--stop-all with no daemon names the socket and says it is not running" 1 \
    "cannot reach kpa-execd at $T/none.sock" "$KPA_RUN" --socket "$T/none.sock" --stop-all
check_exit_output "--stop-all takes no APP_ID" 2 '--stop-all takes no APP_ID' "$KPA_RUN" --stop-all $APP
check_exit_output "--stop-all takes no start option" 2 '--memory is a start option' \
    "$KPA_RUN" --stop-all --memory 64M
check_exit_output "--force goes with --stop or --stop-all only" 2 '--force goes with --stop or --stop-all' \
    "$KPA_RUN" --list --force

# ---- keep: SIGTERM leaves the instance running ----
start_daemon keep
_result $? "a daemon with --on-exit keep starts"
check "its log says what SIGTERM will do" \
    grep -q 'on SIGTERM or SIGINT: exit and leave the processes running for the next kpa-execd (--on-exit keep)' "$T/execd.log"
check_eq "it runs in a process group of its own (as at a terminal)" \
    "$(ps -o pgid= -p "$dpid" | tr -d ' ')" "$dpid"
detach sleep 600
_result $? "an instance starts"
ta=$tok
ra=$ref
end_daemon TERM
check_eq "on SIGTERM the daemon exits 0" $? 0
check "the instance's process still runs after the daemon exited" proc_alive "$ra"
check "the daemon logged what it left" \
    grep -q 'leaving 1 process running; the next kpa-execd adopts them' "$T/execd.log"
check "its record is kept for the next daemon" test -f "$STATE/instances/$ta.json"
check "the daemon removed its socket" test ! -e "$S"

# ---- the next daemon adopts it, and stops it ----
start_daemon keep
_result $? "a new daemon starts on the same state directory"
check "it logged the adoption" grep -q 'adopted 1 process still running' "$T/execd.log"
check_eq "it lists the instance as Running" "$(run --list | awk -v t="$ta" '$1 == t {print $2}')" Running
check_eq "with the same pid" "$(pid_of "$ta")" "${ra% *}"

# ---- keep: a Ctrl-C at the daemon's terminal (SIGINT to its whole group) ----
detach sleep 600
tb=$tok
rb=$ref
kill -INT -- "-$dpid"
rc=0
wait "$dpid" || rc=$?
dpid=
check_eq "on SIGINT to its process group the daemon exits 0" $rc 0
check "the adopted instance still runs" proc_alive "$ra"
check "and so does the one it started" proc_alive "$rb"
check "it logged both" grep -q 'leaving 2 processes running' "$T/execd.log"
start_daemon keep
_result $? "a third daemon starts and adopts them"
check "--stop of an instance adopted twice works" run --stop "$ta"
run --wait "$ta" >/dev/null 2>&1
check_eq "it ended: Finished" "$(state_of "$ta")" Finished
check "its process is gone" gone "$ra"
check_eq "the other is still Running" "$(state_of "$tb")" Running

# ---- kpa-run --stop-all ----
detach sleep 600
tc=$tok
rc_ref=$ref
out=$(run --stop-all 2>&1)
rc=$?
check_eq "--stop-all exits 0" $rc 0
check_eq "it prints how many it stopped" "$out" "stopped 2 processes"
check "it returned once the first had ended" gone "$rb"
check "... and the second" gone "$rc_ref"
check_eq "both are Finished" "$(state_of "$tb") $(state_of "$tc")" "Finished Finished"
check_eq "--stop-all with nothing left to stop" "$(run --stop-all 2>&1)" "stopped 0 processes"
out=$(run --stop-all -q 2>&1)
check_eq "-q prints nothing, and exits 0" "$?:$out" "0:"
# --force: an instance that ignores SIGTERM and has a grace period of a minute
tok=$(run --detach --stop-timeout 60 "$APP" -- ignore-term 600)
rd=$(proc_ref "$(pid_of "$tok")")
sleep 0.3 # (until it has set SIGTERM aside)
t0=$(date +%s)
out=$(timeout 30 "$KPA_RUN" --socket "$S" --stop-all --force 2>&1)
t1=$(date +%s)
check_eq "--stop-all --force stops one that ignores SIGTERM" "$out" "stopped 1 process"
check "at once, not after its grace period (took $((t1 - t0)) s)" test $((t1 - t0)) -lt 20
check "its process is gone" gone "$rd"
check "the daemon says it was Forced" grep -q 'stopped all 1 processes (forced)' "$T/execd.log"
# only root: a user who may reach the socket is refused by the daemon
chmod 666 "$S"
check_exit_output "--stop-all by a user other than root is refused" 1 \
    "--stop-all: permission denied: only root may stop all processes" \
    setpriv --reuid 65534 --regid 65534 --clear-groups "$(reachable "$KPA_RUN")" --socket "$S" --stop-all
chmod 660 "$S"
end_daemon TERM
check_eq "the daemon with nothing left exits 0" $? 0
check "and leaves 0 processes" grep -q 'leaving 0 processes running' "$T/execd.log"

# ---- stop: SIGTERM stops the instances ----
start_daemon stop
_result $? "a daemon with --on-exit stop starts"
check "its log says what SIGTERM will do" \
    grep -q 'on SIGTERM or SIGINT: stop every process, then exit (--on-exit stop)' "$T/execd.log"
detach sleep 600
te=$tok
re=$ref
end_daemon TERM
check_eq "on SIGTERM the daemon exits 0" $? 0
check "after stopping the instance" gone "$re"
check "its log says so" grep -q 'stopping 1 process (normal stop), then exiting' "$T/execd.log"
start_daemon stop
_result $? "a new daemon starts"
check_eq "it reports the instance as ended by the stop" "$(state_of "$te")" Finished
end_daemon TERM

# ---- auto: keep when systemd is PID 1, else stop ----
start_daemon auto
_result $? "a daemon with --on-exit auto starts"
if [ -d /run/systemd/system ]; then
    check "systemd is PID 1 here: it keeps them" \
        grep -q 'exit and leave the processes running for the next kpa-execd (--on-exit auto: systemd is PID 1)' "$T/execd.log"
else
    check "systemd is not PID 1 here: it stops them" \
        grep -q 'stop every process, then exit (--on-exit auto: systemd is not PID 1)' "$T/execd.log"
fi
end_daemon TERM

done_testing
