#!/bin/bash
# Upgrades, rollbacks and removals of a package whose instances run:
# kpa-install finds them (kpa-execd's and kpa-run's alike), refuses a
# removal unless --stop, has kpa-execd restart the instances it supervises
# on the new version (unless --no-restart), warns about the others, and
# never deletes a tree that a process still runs from (it waits in
# retired/ until the last one ends). Checked from outside: /proc/PID/root.
. "$(dirname "$0")/lib.sh"
need_root

execd_paths
export KPA_EXECD_SOCKET="$S"
APP=org.example.running$$
for v in 1.0 2.0 3.0; do
    $MKPKG "$T/v$v.kpa" --id $APP --version $v --bin "$PROBE" --set 'runConfigurations[0].args=[]'
done
inst() { "$KPA_INSTALL" --root "$R" "$@"; }
run() { "$KPA_RUN" --socket "$S" "$@"; }
inst -q "$T/v1.0.kpa" || { echo "Bail out! cannot install the probe"; exit 1; }

dpid=
"$EXECD" --foreground --on-exit stop --no-autorun --socket "$S" --root "$R" --state-dir "$T/state" \
    2>>"$T/execd.log" &
# shellcheck disable=SC2034 # used by the cleanup below
dpid=$!
cleanup_add '[ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null'
direct=()
cleanup_add 'for p in "${direct[@]}"; do kill -9 "$p" && wait "$p"; done 2>/dev/null'
for _ in $(seq 200); do
    [ -S "$S" ] && run --list >/dev/null 2>&1 && break
    sleep 0.05
done
run --list >/dev/null 2>&1 || { cat "$T/execd.log"; echo "Bail out! kpa-execd did not start"; exit 1; }

# pid_of TOKEN: the host pid of the instance's init (empty when none)
pid_of() { run --status "$1" 2>/dev/null | sed -n 's/^pid: *//p'; }
# version_in PID: the version of the package tree that PID runs from
version_in() { sed -n 's/.*"version": "\([^"]*\)".*/\1/p' "/proc/$1/root/$APP/manifest.json" | tail -1; }
# wait_running TOKEN OLDPID: until TOKEN runs with an init other than OLDPID
wait_running() {
    local i p
    for i in $(seq 100); do
        p=$(pid_of "$1")
        if [ -n "$p" ] && [ "$p" != "$2" ] && run --status "$1" | grep -q 'state: *Running'; then
            echo "$p"
            return 0
        fi
        sleep 0.1
    done
    return 1
}
# direct_init: the init of the instance that kpa-run started itself
inits_running() { # the pids of every instance init running $APP
    local p
    for p in /proc/[0-9]*; do
        [ -d "$p/root/$APP" ] 2>/dev/null || continue
        grep -q $'^NSpid:.*\t1$' "$p/status" 2>/dev/null && echo "${p#/proc/}"
    done
}

tok=$(run --detach $APP -- sleep 120)
spid=$(wait_running "$tok" "")
check "a supervised instance runs 1.0" test "$(version_in "$spid")" = 1.0
"$KPA_RUN" --root "$R" $APP -- sleep 120 >/dev/null 2>&1 &
direct+=($!)
dinit=
for _ in $(seq 100); do
    for p in $(inits_running); do [ "$p" != "$spid" ] && dinit=$p; done
    [ -n "$dinit" ] && break
    sleep 0.1
done
check "a direct-mode instance (kpa-run) runs 1.0" test -n "$dinit" -a "$(version_in "$dinit")" = 1.0

# ---- a removal with running instances is refused ----
before=$(snapshot "$R")
out=$(inst --remove $APP 2>&1)
rc=$?
check_eq "--remove of a running package fails (exit 1)" "$rc" 1
check "the refusal counts both instances and names --stop" \
    grep -q "is running (2 instance(s), init pid .*--remove --stop" <<<"$out"
check "the refusal names the init pids" grep -q "$dinit" <<<"$out"
check_eq "the refused removal changed nothing" "$(snapshot "$R")" "$before"

# ---- an upgrade restarts kpa-execd's instance, warns about kpa-run's ----
out=$(inst "$T/v2.0.kpa" 2>&1)
check "the upgrade goes through" grep -q "Upgraded $APP from 1.0 to 2.0" <<<"$out"
check "it says kpa-execd restarts its instance" \
    grep -q "Restarting 1 instance(s) of $APP on the new version" <<<"$out"
check "it warns about the kpa-run instance, by pid" \
    grep -q "the instance with pid $dinit is not supervised by kpa-execd" <<<"$out"
spid2=$(wait_running "$tok" "$spid")
check "the supervised instance runs again, same token, new init" test -n "$spid2"
check_eq "and it runs 2.0" "$(version_in "$spid2")" 2.0
check "its old init is gone" test ! -e "/proc/$spid"
check_eq "the kpa-run instance still runs 1.0" "$(version_in "$dinit")" 1.0
check_eq "1.0 is the previous version, the tree it runs from" \
    "$(stat -c %i "/proc/$dinit/root/$APP")" "$(stat -c %i "$R/previous/$APP")"

# ---- the tree it runs from outlives the next upgrade: retired/ ----
out=$(inst "$T/v3.0.kpa" 2>&1)
check "upgrade to 3.0 while 1.0 still runs" grep -q "Upgraded $APP from 2.0 to 3.0" <<<"$out"
spid3=$(wait_running "$tok" "$spid2")
check_eq "the supervised instance runs 3.0" "$(version_in "$spid3")" 3.0
retired=("$R/retired/$APP@"*)
check "the 1.0 tree moved to retired/, not deleted" test ${#retired[@]} -eq 1 -a -d "${retired[0]}"
check "the kpa-run instance can still read its files" \
    cmp -s "/proc/$dinit/root/$APP/bin/hello" "$PROBE"
check_eq "and still sees 1.0" "$(version_in "$dinit")" 1.0
kill "$dinit"
for _ in $(seq 100); do [ -e "/proc/$dinit" ] || break; sleep 0.1; done
inst -q --unhold $APP # any writer collects what nobody runs from
check_eq "once it ended, the next writer deleted the retired tree" "$(ls -A "$R/retired")" ""

# ---- rollback restarts it too; --no-restart leaves it ----
out=$(inst --rollback $APP 2>&1)
check "a rollback restarts the supervised instance" grep -q "Restarting 1 instance" <<<"$out"
spid4=$(wait_running "$tok" "$spid3")
check_eq "which then runs 2.0" "$(version_in "$spid4")" 2.0
out=$(inst --no-restart --rollback $APP 2>&1)
check_eq "--no-restart: no restart" "$(grep -c Restarting <<<"$out")" 0
check "--no-restart: it says the instance stays" grep -q "was left as it is (--no-restart)" <<<"$out"
check_eq "--no-restart: same init, still 2.0" "$(pid_of "$tok") $(version_in "$spid4")" "$spid4 2.0"
check_exit_output "--no-restart does not go with --remove (a usage error)" 2 \
    "kpa-install: --no-restart goes with an install or --rollback" inst --no-restart --remove $APP

# ---- a reinstall killed right after its exchange: the tree that runs stays ----
SHIM="$top_builddir/tests/inject/.libs/libinject.so"
if [ -f "$SHIM" ]; then
    out=$(inst --rollback $APP 2>&1) # 2.0 current again: the version the instance runs
    check_eq "a rollback to the version an instance runs does not restart it" \
        "$(grep -c Restarting <<<"$out") $(pid_of "$tok")" "0 $spid4"
    spid5=$spid4
    KPA_INJECT="renameat2:KILLAFTER:/apps/$APP" LD_PRELOAD=$SHIM ASAN_OPTIONS=verify_asan_link_order=0 \
        "$KPA_INSTALL" --root "$R" -q --reinstall "$T/v2.0.kpa" >/dev/null 2>&1
    check_eq "a reinstall killed after its exchange (exit 137)" "$?" 137
    inst -q --unhold $APP # the next writer finds the old tree in .staging
    retired=("$R/retired/$APP@"*)
    check "... the old tree, still run from, went to retired/" test -d "${retired[0]}"
    check "... and the instance still reads its files" \
        cmp -s "/proc/$spid5/root/$APP/bin/hello" "$PROBE"
    check_eq "... .staging is empty" "$(ls -A "$R/.staging")" ""
else
    skip "a reinstall killed after its exchange" "tests/inject/libinject.la is not built"
fi

# ---- --remove --stop ----
out=$(inst --remove --stop $APP 2>&1)
check "--remove --stop stops the instance, then removes" \
    grep -q "Stopped 1 instance(s) of $APP" <<<"$out"
check "and the package is gone" test ! -e "$R/apps/$APP"
st=$(run --status "$tok" 2>&1)
check "kpa-execd recorded a Normal stop" grep -q "exit status: *Normal" <<<"$st"
sleep 0.5
# (its state, read again: still Finished, where a kpa-run that failed or
# crashed would have passed a "not Running")
st=$(run --status "$tok" 2>&1)
check "and did not start it again" grep -q "^state: *Finished" <<<"$st"
check_eq "no process runs the package any more" "$(inits_running)" ""
check_eq "no tree is left in retired/" "$(ls -A "$R/retired")" ""
check_exit_output "--stop only goes with --remove (a usage error)" 2 "kpa-install: --stop only goes with --remove" \
    inst --stop --list

done_testing
