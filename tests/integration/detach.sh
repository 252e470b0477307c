#!/bin/bash
# kpa-run's daemon options against a kpa-execd of its own: --detach (with
# handles), --status, --list, --logs (and --follow), --stop, --wait (exit
# codes, --timeout), unknown tokens, a daemon that is not running, and a
# client that may not use the daemon.
. "$(dirname "$0")/lib.sh"
need_root

execd_paths
APP=org.example.detach$$
$MKPKG "$T/probe.kpa" --id $APP --bin "$PROBE" --set 'runConfigurations[0].args=[]'
"$KPA_INSTALL" --root "$R" -q "$T/probe.kpa" || { echo "Bail out! cannot install the probe"; exit 1; }

dpid=
"$EXECD" --foreground --on-exit stop --no-autorun --socket "$S" --root "$R" --state-dir "$STATE" \
    2>>"$T/execd.log" &
dpid=$!
cleanup_add '[ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null'
# whatever an instance left: its init, by pid (never by name)
cleanup_add 'for t in "${tokens[@]}"; do p=$(run --status "$t" 2>/dev/null | sed -n "s/^pid: *//p"); [ -n "$p" ] && kill -9 "$p"; done 2>/dev/null'
tokens=()

run() { "$KPA_RUN" --socket "$S" "$@"; }
for _ in $(seq 200); do
    [ -S "$S" ] && run --list >/dev/null 2>&1 && break
    sleep 0.05
done
run --list >/dev/null 2>&1 || { cat "$T/execd.log"; echo "Bail out! kpa-execd did not start"; exit 1; }

# wait_for NEEDLE CMD...: until CMD's output holds NEEDLE (at most 10 s)
wait_for() {
    local needle=$1 i
    shift
    for i in $(seq 100); do
        [[ "$("$@" 2>&1)" == *"$needle"* ]] && return 0
        sleep 0.1
    done
    "$@"
    return 1
}

# ---- --detach, --status, --list, --logs ----
tok=$(run --detach $APP -- sleep 60)
rc=$?
tokens+=("$tok")
check_eq "--detach exits 0" "$rc" 0
check "--detach prints a token" grep -Eqx '[0-9a-f]{32}' <<<"$tok"
out=$(run --status "$tok")
check "--status shows Running" grep -Eq '^state: +Running$' <<<"$out"
check "--status names the package" grep -Eq "^package: +$APP$" <<<"$out"
check "--status shows the pid" grep -Eq '^pid: +[1-9][0-9]*$' <<<"$out"
out=$(run --status "$tok" --json)
check "--status --json prints the context" grep -q "\"token\":\"$tok\".*\"state\":\"Running\"" <<<"$out"
out=$(run --list)
check "--list has a header" grep -Eq '^TOKEN +STATE +PACKAGE +RUNCONFIG +PID +RESTARTS +EXIT$' <<<"$out"
check "--list shows the instance as Running" grep -Eq "^$tok +Running +$APP " <<<"$out"
check "--list --json has the instance" grep -q "\"token\":\"$tok\"" <<<"$(run --list --json)"
check "--logs shows what the application printed" wait_for "ready=1" run --logs "$tok"

# ---- --wait --timeout, --stop, --wait ----
check_exit_output "--wait --timeout gives up while it runs" 1 "still Running" \
    run --wait "$tok" --timeout 0.3
check "--stop" run --stop "$tok"
run --wait "$tok"
check_eq "--wait after --stop: 128+SIGTERM" $? 143
out=$(run --status "$tok")
check "--status shows Finished" grep -Eq '^state: +Finished$' <<<"$out"
check "  with how it ended" grep -q "^message: .*SIGTERM" <<<"$out"
out=$(run --list)
check "--list shows the end" grep -Eq "^$tok +Finished +$APP " <<<"$out"

tok=$(run --detach $APP -- exit 7)
tokens+=("$tok")
run --wait "$tok"
check_eq "--wait exits with the application's code" $? 7

tok=$(run --detach $APP -- ignore-term 60)
tokens+=("$tok")
wait_for "ready=1" run --logs "$tok" >/dev/null
check "--stop --force" run --stop "$tok" --force
run --wait "$tok" 2>/dev/null
check_eq "--wait after --stop --force: 128+SIGKILL" $? 137

# ---- handles go through the daemon ----
echo "handle content" >"$T/h.txt"
tok=$(run --detach --handle cfg=file:"$T/h.txt" $APP -- handles cfg)
tokens+=("$tok")
run --wait "$tok" >/dev/null
out=$(run --logs "$tok")
check "a --handle arrives as fd 3" grep -q '^handle.cfg=3$' <<<"$out"
check "  and is the file given" grep -q "^handle.cfg.target=$T/h.txt$" <<<"$out"
tok=$(run --detach --env MODE=detached $APP -- info)
tokens+=("$tok")
run --wait "$tok" >/dev/null
check "--env arrives" grep -q '^env.MODE=detached$' <<<"$(run --logs "$tok")"

# ---- --logs --follow ----
tok=$(run --detach $APP -- sleep 1)
tokens+=("$tok")
out=$(timeout 30 "$KPA_RUN" --socket "$S" --logs "$tok" --follow)
check_eq "--logs --follow ends with the instance" $? 0
check "  and has all of its output" grep -q '^slept=1$' <<<"$out"

# ---- refusals ----
check_exit_output "--detach of an unknown package fails and says why" 1 "org.example.none is not installed" \
    run --detach org.example.none
unknown=0123456789abcdef0123456789abcdef
check_exit_output "--status of an unknown token" 1 "$unknown: no such instance" run --status $unknown
check_exit_output "--stop of an unknown token" 1 "$unknown: no such instance" run --stop $unknown
check_exit_output "--wait of an unknown token" 1 "$unknown: no such instance" run --wait $unknown
check_exit_output "--logs of an unknown token" 1 "$unknown: no such instance" run --logs $unknown
check_exit_output "a malformed token is a usage error" 2 "is neither a token" run --status 'no/pe/'
check_exit_output "a name without instances is no such instance" 1 \
    "nope: no such instance (kpa-execd knows no instance of that package)" run --status nope
check_exit_output "no daemon: the message names the socket" 1 "cannot reach kpa-execd at $T/none.sock" \
    "$KPA_RUN" --socket "$T/none.sock" --list
check_exit_output "  and says kpa-execd is not running" 1 "is kpa-execd running?" \
    "$KPA_RUN" --socket "$T/none.sock" --status $unknown
check_exit_output "KPA_EXECD_SOCKET chooses the socket" 1 "cannot reach kpa-execd at $T/env.sock" \
    env KPA_EXECD_SOCKET="$T/env.sock" "$KPA_RUN" --list
chmod 755 "$T"
check_exit_output "an unprivileged client is refused" 1 \
    "Permission denied (only root and members of the kpa group may use kpa-execd)" \
    setpriv --reuid 65534 --regid 65534 --clear-groups "$KPA_RUN" --socket "$S" --list
chmod 700 "$T"
check "the daemon is still serving" run --list

kill "$dpid" && wait "$dpid"
check_eq "kpa-execd ends on SIGTERM" $? 0
dpid=
done_testing
