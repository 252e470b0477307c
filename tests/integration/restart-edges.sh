#!/bin/bash
# KPA_restart at the edges of kpa-execd's life, against a daemon of its
# own: a restart that is due when the package is removed does not come
# (it would only fail, and count as a failure), and one that is due when
# kpa-execd is killed comes all the same from the restarted daemon. A
# kpa-execd upgraded while an instance runs adopts it from a record of the
# format before records had their own (the protocol's context, no
# "record" key), and writes its next record in its own format.
. "$(dirname "$0")/lib.sh"
need_root

execd_paths
DUE=org.example.due$$
GONE=org.example.gone$$
OLD=org.example.oldrec$$
# both exit 3 at once; DUE is restarted 1.5 s later, GONE a minute later
$MKPKG "$T/due.kpa" --id $DUE --bin "$PROBE" --set 'runConfigurations[0].args=["sleep-exit","0","3"]' \
    --set 'extensions={"KPA_restart":{"policy":"on-failure","maxRetries":1,"delayMs":1500}}'
$MKPKG "$T/gone.kpa" --id $GONE --bin "$PROBE" --set 'runConfigurations[0].args=["sleep-exit","0","3"]' \
    --set 'extensions={"KPA_restart":{"policy":"on-failure","maxRetries":1,"delayMs":60000,"maxDelayMs":60000}}'
$MKPKG "$T/old.kpa" --id $OLD --bin "$PROBE" --set 'runConfigurations[0].args=["sleep","60"]'
for p in due gone old; do
    "$KPA_INSTALL" --root "$R" -q "$T/$p.kpa" || { echo "Bail out! cannot install $p"; exit 1; }
done
cleanup_add 'for d in $(app_cgroups $DUE $GONE $OLD); do find "$d" -mindepth 1 -maxdepth 1 -type d -exec rmdir {} \; ; rmdir "$d"; done 2>/dev/null'
execd_start --on-exit stop --no-autorun || { echo "Bail out! kpa-execd did not start"; exit 1; }

run() { "$KPA_RUN" --socket "$S" "$@"; }
# status TOKEN KEY: one field of the instance's --status --json
status() { field "$(run --status "$1" --json 2>/dev/null)" "$2"; }
# until TOKEN's KEY is VALUE (at most 20 s)
wait_status() {
    local i
    for i in $(seq 200); do
        [ "$(status "$1" "$2")" = "$3" ] && return 0
        sleep 0.1
    done
    return 1
}
# until TOKEN has a restart due
wait_due() {
    local i
    for i in $(seq 200); do
        [ "$(status "$1" restartInMs)" -gt 0 ] 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# ---- a removal cancels a restart that is due ----
tok=$(run --detach $GONE)
check "the instance ended with 3 and has a restart due" wait_due "$tok"
check_exit "kpa-install --remove of the package (nothing runs)" 0 \
    env KPA_EXECD_SOCKET="$S" "$KPA_INSTALL" --root "$R" -q --remove $GONE
check "the restart is no longer due" wait_status "$tok" restartInMs 0
check_eq "the instance stays ended: Finished, exit 3, not restarted" \
    "$(status "$tok" state) $(status "$tok" exitCode) $(status "$tok" restarts)" "Finished 3 0"
check_eq "nothing of the package runs" "$(run --list | grep $GONE | grep -vc Finished)" 0

# ---- a restart that is due survives kill -9 of kpa-execd ----
tok=$(run --detach $DUE)
check "the instance ended with 3 and has a restart due" wait_due "$tok"
check_eq "  not restarted yet" "$(status "$tok" restarts)" 0
kill -9 "$dpid"
wait "$dpid" 2>/dev/null
dpid=
execd_start --on-exit stop --no-autorun || { echo "Bail out! kpa-execd did not start again"; exit 1; }
check "the restarted kpa-execd restarts it when it is due" wait_status "$tok" restarts 1
check "after its one retry it ends again" wait_status "$tok" state Finished
check_eq "  with 3, and no restart due" "$(status "$tok" exitCode) $(status "$tok" restartInMs)" "3 0"
check_eq "its log has both runs" "$(run --logs "$tok" | grep -c ready=1)" 2

# ---- a record of the format before is adopted (kpa-execd upgraded) ----
tok=$(run --detach $OLD)
check "the instance runs" wait_status "$tok" state Running
pid=$(status "$tok" pid)
ref=$(proc_ref "$pid")
rec="$STATE/instances/$tok.json"
check_eq "its record is of kpa-execd's own format (\"record\": 1)" "$(field "$(cat "$rec")" record)" 1
kill -9 "$dpid"
wait "$dpid" 2>/dev/null
dpid=
# the record as a kpa-execd before records had a format wrote it: the
# protocol's context (flat exit fields, appPid), then the same extra fields
"$PYTHON3" - "$rec" <<'PY'
import json, sys
path = sys.argv[1]
with open(path) as f:
    r = json.load(f)
del r["record"]
e = r.pop("exit")
for k in ("status", "code", "reason", "cause"):
    r["exit" + k.capitalize()] = e[k]
r["appPid"] = 0
lf = r.get("lastFailure")
if lf:
    for k in ("status", "code", "reason", "cause"):
        lf["exit" + k.capitalize()] = lf.pop(k)
with open(path + ".tmp", "w") as f:
    json.dump(r, f)
import os
os.rename(path + ".tmp", path)
PY
check_eq "  the test wrote it in the old format" \
    "$(field "$(cat "$rec")" record)|$(field "$(cat "$rec")" exitStatus)" "|Uninitialized"
execd_start --on-exit stop --no-autorun || { echo "Bail out! kpa-execd did not start again"; exit 1; }
check_eq "the new kpa-execd adopted it: Running, same pid" \
    "$(status "$tok" state) $(status "$tok" pid)" "Running $pid"
check_eq "  the same process (pid and start time)" "$(proc_ref "$pid")" "$ref"
check_eq "  its output is still captured" "$(run --logs "$tok" | grep -c ready=1)" 1
check_exit "a stop of the adopted instance" 0 run --stop "$tok"
check "  it ends Finished" wait_status "$tok" state Finished
check_eq "  Normal, by SIGTERM" "$(status "$tok" exitStatus) $(status "$tok" exitCause)" "Normal stopped"
# (the old daemon's inits are reparented: one may be a zombie of another's)
gone() { ! [ -r "/proc/$1/status" ] || grep -q '^State:.*Z' "/proc/$1/status"; }
check "  its init is gone" gone "$pid"
check_eq "its record is rewritten in the new format" \
    "$(field "$(cat "$rec")" record) $(field "$(cat "$rec")" state) $(field "$(cat "$rec")" exit.status)" \
    "1 Finished Normal"
done_testing
