#!/bin/bash
# kpa-execd against a member of its group who tries to become somebody else
# or to lock the daemon up (issue 13, sections 2 and 3): loader variables
# in the environment, limits above the manifest's, directory handles, many
# idle connections, running out of fds, one user's ended starts evicting
# another's contexts, listings longer than one message, a subscriber that
# cannot read (the freed-client case, clean under ASan), and a record the
# daemon cannot write.
. "$(dirname "$0")/lib.sh"
need_root

EXECD="$top_builddir/src/daemon/kpa-execd"
KPA_RUN="$top_builddir/src/tools/kpa-run"
PROBE="$top_builddir/tests/probe/probe"
[ -x "$EXECD" ] || skip_all "kpa-execd not built"
GROUP=$(getent group 65534 | cut -d: -f1)
[ -n "$GROUP" ] || skip_all "no group with gid 65534 to stand for group kpa"
# what uid 65534 runs must be reachable from any clone location
CLIENT_PY=$(reachable "$top_srcdir/tests/integration/execd-client.py")
client() { "$PYTHON3" "$CLIENT_PY" "$@"; }
# a member of the daemon's group (gid 65534, the group given with --group)
member() { setpriv --reuid 65534 --regid 65534 --clear-groups "$PYTHON3" "$CLIENT_PY" "$@"; }
R="$T/store"
S="$T/execd.sock"
STATE="$T/state"
LOG="$T/execd.log"
APP=org.example.lim$$
FREE=org.example.free$$
$MKPKG "$T/lim.kpa" --id $APP --bin "$PROBE" --set 'runConfigurations[0].args=[]' \
    --set 'extensions={"KPA_limits":{"memory":"32M","pids":10}}'
$MKPKG "$T/free.kpa" --id $FREE --bin "$PROBE" --set 'runConfigurations[0].args=[]'
for p in lim free; do
    "$KPA_INSTALL" --root "$R" -q "$T/$p.kpa" || { echo "Bail out! cannot install $p"; exit 1; }
done

call() { client "$S" call "$@"; }
dpid=
# start_daemon [OPTIONS...]: on $S and $STATE (called in this shell)
start_daemon() {
    "$EXECD" --foreground --on-exit stop --no-autorun --socket "$S" --root "$R" --state-dir "$STATE" \
        --group "$GROUP" "$@" </dev/null >/dev/null 2>>"$LOG" &
    dpid=$!
    local i
    for i in $(seq 200); do
        [ -S "$S" ] && client "$S" call '{"op":"Version"}' >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}
stop_daemon() { [ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null; dpid=; }
cleanup_add 'stop_daemon'
# whatever an instance of this test left: its init, by pid (never by name);
# one pass over the records, as there are 1500 of them below
kill_leftovers() {
    "$PYTHON3" -c 'import glob, json, os, signal, sys
for f in glob.glob(sys.argv[1] + "/state*/instances/*.json"):
    try:
        pid = json.load(open(f)).get("pid", 0)
        if pid > 0:
            os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass' "$T"
}
cleanup_add 'kill_leftovers'
cg_dirs() { app_cgroups $APP $FREE; }
cleanup_add 'sleep 0.2; for d in $(cg_dirs); do find "$d" -mindepth 1 -maxdepth 1 -type d -exec rmdir {} \; ; rmdir "$d"; done 2>/dev/null'
# cgfile TOKEN FILE: FILE of the instance's cgroup, in whichever hierarchy has it
cgfile() {
    local d
    for d in $(cg_dirs); do [ -f "$d/$1/$2" ] && cat "$d/$1/$2" && return 0; done
    return 1
}
# records TOKEN...: how many of these have a record in $STATE
n_contexts() { find "$STATE/instances" -name '*.json' | wc -l; }
dfds() { find "/proc/$dpid/fd" -mindepth 1 | wc -l; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$dpid/stat"; }

start_daemon --max-connections-per-user 8 --idle-timeout 2 --keep-ended 3
_result $? "kpa-execd starts with --group, --max-connections-per-user, --idle-timeout"
check_eq "the socket belongs to the group given with --group" "$(stat -c '%G %a' "$S")" "$GROUP 660"
check_exit_output "an unknown --group is refused" 1 'there is no group "nosuchgroup'"$$"'"' \
    "$EXECD" --foreground --on-exit stop --no-autorun --group nosuchgroup$$ --socket "$T/x.sock" --root "$R" --state-dir "$T/statex"
check_exit_output "--idle-timeout takes a positive number" 2 '--idle-timeout: "0" is not a positive number' \
    "$EXECD" --idle-timeout 0

# ---- 2. loader variables: refused from a member, root's to pass ----
rep=$(member "$S" call '{"op":"Version"}')
check_eq "a member of the group connects (SO_PEERCRED)" "$(field "$rep" error)" 0
before=$(n_contexts)
echo "not a library" >"$T/evil.so"
rep=$(member "$S" call "{\"op\":\"StartProcess\",\"package\":\"$APP\",\"handles\":[\"so\"],\"env\":[\"A=1\",\"LD_PRELOAD=/proc/self/fd/3\"],\"args\":[\"info\"]}" "$T/evil.so")
check_eq "a member's LD_PRELOAD is refused: EPERM" "$(field "$rep" error)" 1
check "... and the message names the variable and says who may" \
    grep -q 'environment variable LD_PRELOAD is read by the dynamic loader.*only root may pass it' <<<"$rep"
for v in LD_LIBRARY_PATH LD_AUDIT GCONV_PATH GLIBC_TUNABLES MALLOC_ARENA_MAX HOSTALIASES LOCALDOMAIN RES_OPTIONS TMPDIR TZDIR NLSPATH LOCPATH; do
    rep=$(member "$S" call "{\"op\":\"StartProcess\",\"package\":\"$APP\",\"env\":[\"$v=/tmp/x\"],\"args\":[\"info\"]}")
    check_eq "a member's $v is refused, by name" "$(field "$rep" error) $(grep -o "variable $v " <<<"$rep")" "1 variable $v "
done
check_eq "none of the refused starts made a process" "$(n_contexts)" "$before"
rep=$(call "{\"op\":\"StartProcess\",\"package\":\"$APP\",\"env\":[\"LD_LIBRARY_PATH=/opt/root-says\"],\"args\":[\"info\"]}")
tok=$(field "$rep" token)
call "{\"op\":\"WaitProcess\",\"token\":\"$tok\",\"timeoutMs\":5000}" >/dev/null
check "root may pass LD_LIBRARY_PATH through kpa-execd" grep -qx 'env.LD_LIBRARY_PATH=/opt/root-says' <<<"$(client "$S" readlog "$tok")"
check "and in direct mode: kpa-run as root passes LD_LIBRARY_PATH" \
    grep -qx 'env.LD_LIBRARY_PATH=/opt/direct' <<<"$("$KPA_RUN" --root "$R" --env LD_LIBRARY_PATH=/opt/direct $APP -- info)"
rep=$(member "$S" call "{\"op\":\"StartProcess\",\"package\":\"$APP\",\"env\":[\"LD_OK=1\",\"GREETING=hello\"],\"args\":[\"info\"]}")
check_eq "(LD_OK is LD_* too)" "$(field "$rep" error)" 1
rep=$(member "$S" call "{\"op\":\"StartProcess\",\"package\":\"$APP\",\"env\":[\"GREETING=hello\"],\"args\":[\"info\"]}")
tok=$(field "$rep" token)
member "$S" call "{\"op\":\"WaitProcess\",\"token\":\"$tok\",\"timeoutMs\":5000}" >/dev/null
check "a member's ordinary variable is passed" grep -qx 'env.GREETING=hello' <<<"$(member "$S" readlog "$tok")"

# ---- 2. limits: a member may lower them, never raise them ----
before=$(n_contexts)
rep=$(member "$S" call "{\"op\":\"StartProcess\",\"package\":\"$APP\",\"memory\":68719476736,\"args\":[\"sleep\",\"30\"]}")
check_eq "a member's memory limit above the manifest's (64G > 32M) is refused: EPERM" "$(field "$rep" error)" 1
check "... and the message gives both and the rule" \
    grep -q "memory limit of 68719476736 bytes is above $APP's own (33554432, from extensions.KPA_limits.*only root may raise" <<<"$rep"
rep=$(member "$S" call "{\"op\":\"StartProcess\",\"package\":\"$APP\",\"pids\":1000,\"args\":[\"sleep\",\"30\"]}")
check_eq "a member's pids limit above the manifest's (1000 > 10) is refused" \
    "$(field "$rep" error) $(grep -o 'pids limit of 1000 is above' <<<"$rep")" "1 pids limit of 1000 is above"
rep=$(member "$S" call "{\"op\":\"StartProcess\",\"package\":\"$FREE\",\"cpuWeight\":10000,\"args\":[\"sleep\",\"30\"]}")
check_eq "a member's CPU weight above the default (no weight in the manifest) is refused" \
    "$(field "$rep" error) $(grep -o "the kernel's default weight" <<<"$rep")" "1 the kernel's default weight"
check_eq "none of them made a process" "$(n_contexts)" "$before"
rep=$(member "$S" call "{\"op\":\"StartProcess\",\"package\":\"$APP\",\"memory\":16777216,\"pids\":5,\"cpuWeight\":50,\"args\":[\"sleep\",\"30\"]}")
tok=$(field "$rep" token)
check_eq "a member may lower the limits" "$(field "$rep" error) $(field "$rep" process.state)" "0 Running"
check_eq "... the lower pids limit is the instance's (pids.max)" "$(cgfile "$tok" pids.max)" 5
member "$S" call "{\"op\":\"StopProcess\",\"token\":\"$tok\",\"policy\":\"Forced\"}" >/dev/null
rep=$(member "$S" call "{\"op\":\"StartProcess\",\"package\":\"$FREE\",\"memory\":16777216,\"args\":[\"sleep\",\"30\"]}")
tok=$(field "$rep" token)
check_eq "a member may set a limit the manifest has none of (none is unlimited)" "$(field "$rep" error)" 0
mem=$(cgfile "$tok" memory.max || cgfile "$tok" memory.limit_in_bytes)
check_eq "... and it is the instance's" "$mem" 16777216
member "$S" call "{\"op\":\"StopProcess\",\"token\":\"$tok\",\"policy\":\"Forced\"}" >/dev/null
rep=$(call "{\"op\":\"StartProcess\",\"package\":\"$APP\",\"pids\":1000,\"args\":[\"sleep\",\"30\"]}")
tok=$(field "$rep" token)
check_eq "root may raise them" "$(field "$rep" error) $(cgfile "$tok" pids.max)" "0 1000"
call "{\"op\":\"StopProcess\",\"token\":\"$tok\",\"policy\":\"Forced\"}" >/dev/null

# ---- 2. directory handles: through kpa-execd and as fd:N ----
mkdir -m 700 "$T/hostdir"
before=$(n_contexts)
rep=$(member "$S" call "{\"op\":\"StartProcess\",\"package\":\"$APP\",\"handles\":[\"d\"],\"args\":[\"handles\",\"d\"]}" /tmp)
check_eq "a directory fd sent to kpa-execd is refused: EISDIR" "$(field "$rep" error)" 21
check "... and the message names the handle" grep -q 'handle \\"d\\" is a directory' <<<"$rep"
rep=$(call "{\"op\":\"StartProcess\",\"package\":\"$APP\",\"handles\":[\"d\"],\"args\":[\"handles\",\"d\"]}" "$T/hostdir")
check_eq "... from root too" "$(field "$rep" error)" 21
check_eq "... and no process was made" "$(n_contexts)" "$before"
check_exit_output "kpa-run refuses fd:N of a directory" 1 'handle spec "fd:7": fd 7 is a directory' \
    "$KPA_RUN" --root "$R" --handle d=fd:7 $APP -- handles d 7<"$T/hostdir"
"$KPA_RUN" --root "$R" --handle d=fd:7 $APP -- handles d 7<"$T/hostdir" >/dev/null 2>&1
check_eq "... with exit code 1" "$?" 1
check_eq "... and nothing was created in the directory" "$(find "$T/hostdir" -mindepth 1 | wc -l)" 0
check "kpa-run still passes fd:N of a file" \
    grep -q 'handle.f=3' <<<"$("$KPA_RUN" --root "$R" --handle f=fd:7 $APP -- handles f 7<"$T/evil.so")"

# ---- 3. per-owner retention (--keep-ended 3) ----
root_toks=()
for _ in 1 2 3; do
    rep=$(call "{\"op\":\"StartProcess\",\"package\":\"$APP\",\"args\":[\"exit\",\"0\"]}")
    root_toks+=("$(field "$rep" token)")
    call "{\"op\":\"WaitProcess\",\"token\":\"${root_toks[-1]}\",\"timeoutMs\":5000}" >/dev/null
done
for _ in $(seq 8); do
    rep=$(member "$S" call "{\"op\":\"StartProcess\",\"package\":\"$APP\",\"args\":[\"exit\",\"1\"]}")
    member "$S" call "{\"op\":\"WaitProcess\",\"token\":\"$(field "$rep" token)\",\"timeoutMs\":5000}" >/dev/null
done
sleep 1.1 # the retention runs at most once a second
states=
for t in "${root_toks[@]}"; do states+="$(field "$(call "{\"op\":\"GetProcessState\",\"token\":\"$t\"}")" process.state) "; done
check_eq "a member's 8 ended starts did not evict root's 3 ended contexts" "$states" "Finished Finished Finished "
rep=$(member "$S" list)
check_eq "the member keeps its own 3 newest, as --keep-ended says" \
    "$("$PYTHON3" -c 'import json,sys; print(len(json.load(sys.stdin)["processes"]))' <<<"$rep")" 3

# ---- 3. a subscriber that cannot read: its client is freed only after the request ----
rep=$(call '{"op":"Version"}')
client "$S" deaf "{\"op\":\"StartProcess\",\"package\":\"$APP\",\"args\":[\"exit\",\"0\"]}"
client "$S" deaf "{\"op\":\"StartProcess\",\"package\":\"$APP\",\"args\":[\"exit\",\"0\"],\"runConfig\":\"nosuch\"}"
client "$S" deaf '{"op":"ListProcesses"}'
sleep 0.5
rep=$(call '{"op":"Version"}')
check_eq "a subscriber that cannot take its events is dropped, and the daemon goes on" "$(field "$rep" error)" 0
# (exit 1: no match in a log that is there; 2 would be a missing log)
check_exit "... with no use of freed memory (AddressSanitizer, when built with it)" 1 grep -q 'AddressSanitizer' "$LOG"

# ---- 3. a record that cannot be written is logged ----
rep=$(call "{\"op\":\"StartProcess\",\"package\":\"$APP\",\"args\":[\"sleep\",\"30\"]}")
tok=$(field "$rep" token)
mkdir "$STATE/instances/$tok.json.tmp" # where the next record would be written
rep=$(call "{\"op\":\"StopProcess\",\"token\":\"$tok\",\"policy\":\"Forced\"}")
check_eq "a stop whose record cannot be written still stops" "$(field "$rep" error)" 0
sleep 0.3
check "... and the daemon logs that the record was not written" \
    grep -q "cannot write the record of $tok.json ($APP, .*a restarted kpa-execd would not know its latest state" "$LOG"
rmdir "$STATE/instances/$tok.json.tmp"
rep=$(call '{"op":"StopProcess","token":"00000000000000000000000000000000"}')
check_eq "a stop of an unknown token is an error, not a success" "$(field "$rep" error)" 3

# ---- 3. connections: a per-user limit, an idle timeout, root always served ----
before_fds=$(dfds)
log_before=$(stat -c %s "$LOG")
cpu_before=$(cpu_ticks)
member "$S" hold 20 4 >"$T/hold.out" &
hp=$!
sleep 1
rep=$(call '{"op":"Version"}')
check_eq "root is answered while a member holds all the connections it may" "$(field "$rep" error)" 0
wait $hp
out=$(cat "$T/hold.out")
check_eq "a member gets 8 connections (--max-connections-per-user), the other 12 are refused" \
    "$(field "$out" served) $(field "$out" refused) $(field "$out" unanswered)" "8 12 0"
check "... with a message that names the limit" grep -q 'the most one user may have (--max-connections-per-user)' <<<"$(field "$out" message)"
check_eq "the daemon closed the 8 idle ones (--idle-timeout 2)" "$(field "$out" dropped)" 8
# (polled: the daemon closes them as it sees the peers go, which a loaded
# machine may delay)
for _ in $(seq 50); do [ "$(dfds)" = "$before_fds" ] && break; sleep 0.1; done
check_eq "and holds as many fds as before" "$(dfds)" "$before_fds"
cpu=$(($(cpu_ticks) - cpu_before))
logged=$(($(stat -c %s "$LOG") - log_before))
check "meanwhile the daemon used under half a second of CPU time ($cpu ticks)" test "$cpu" -lt 50
check "and wrote less than 8 KiB of log ($logged bytes)" test "$logged" -lt 8192
rep=$(client "$S" hold 3 3)
check_eq "root's connections are neither limited nor timed out" "$(field "$rep" served) $(field "$rep" dropped)" "3 0"

# ---- 3. out of fds: no busy loop, at most a line a second, root still served ----
stop_daemon
# a limit of 40 open files: at most 20 connections of users other than root
# (half), and root's own connections are what runs the daemon out of fds
(ulimit -n 40 && exec "$EXECD" --foreground --on-exit stop --no-autorun --socket "$S" --root "$R" --state-dir "$STATE" \
    --group "$GROUP" --max-connections-per-user 100 --idle-timeout 60 </dev/null >/dev/null 2>>"$LOG") &
dpid=$!
for _ in $(seq 200); do [ -S "$S" ] && client "$S" call '{"op":"Version"}' >/dev/null 2>&1 && break; sleep 0.05; done
log_before=$(stat -c %s "$LOG")
cpu_before=$(cpu_ticks)
rep=$(member "$S" hold 30 0.1)
check_eq "at 40 open files a member gets 20 connections (half of them), the rest is refused" \
    "$(field "$rep" served) $(field "$rep" refused)" "20 10"
check "... saying so" grep -q '(--max-connections)' <<<"$(field "$rep" message)"
client "$S" hold 40 4 0.3 >"$T/hold-root.out" &
hp=$!
sleep 1
member "$S" hold 10 0.1 0.3 >"$T/hold-member.out"
wait $hp
out=$(cat "$T/hold-root.out")
check "root's own connections ran the daemon out of fds (some went unanswered)" test "$(field "$out" unanswered)" -gt 0
echo "# out of fds: root $out; member $(cat "$T/hold-member.out")"
sleep 1.2 # listening resumes after a second
rep=$(call '{"op":"Version"}')
check_eq "once they are closed, root is answered again" "$(field "$rep" error)" 0
cpu=$(($(cpu_ticks) - cpu_before))
logged=$(($(stat -c %s "$LOG") - log_before))
check "the daemon did not spin: under 1 s of CPU time in these 8 s ($cpu ticks)" test "$cpu" -lt 100
check "and wrote less than 16 KiB of log ($logged bytes)" test "$logged" -lt 16384
check "it said it ran out of file descriptors" grep -q 'out of file descriptors' "$LOG"

# ---- 3. a listing longer than one message ----
stop_daemon
# 1500 ended contexts, as records an earlier daemon left: one ended record
# of this test as the model
model=$(grep -l '"state": *"Finished"' "$STATE"/instances/*.json | head -1)
check "an ended record to copy" test -n "$model"
rm -rf "$T/state-list"
mkdir -p "$T/state-list/instances"
"$PYTHON3" - "$model" "$T/state-list/instances" <<'EOF'
import json, os, sys
rec = json.load(open(sys.argv[1]))
rec["endedMs"] = 1 << 60  # "in another boot": counts from the daemon's start
for k in range(1500):
    rec["token"] = "%032x" % (0xabc0000 + k)
    rec["owner"] = 0 if k % 3 else 65534
    with open(os.path.join(sys.argv[2], rec["token"] + ".json"), "w") as f:
        json.dump(rec, f)
EOF
STATE="$T/state-list"
start_daemon --keep-ended 5000
_result $? "a daemon with 1500 ended contexts starts"
rep=$(call '{"op":"ListProcesses"}')
check_eq "ListProcesses answers a first page, and says there is more" \
    "$(field "$rep" error) $(field "$rep" more)" "0 True"
rep=$(client "$S" list | "$PYTHON3" -c 'import json,sys; r = json.load(sys.stdin); print(len(r["processes"]), r["pages"] > 1)')
check_eq "the pages hold all 1500, in more than one page" "$rep" "1500 True"
check_eq "kpa-run --list lists all 1500 (and a header line)" \
    "$("$KPA_RUN" --socket "$S" --list | wc -l)" 1501
check_eq "kpa-run --list --json too" \
    "$("$KPA_RUN" --socket "$S" --list --json | "$PYTHON3" -c 'import json,sys; print(len(json.load(sys.stdin)))')" 1500
check_eq "a member's listing holds its own 500" \
    "$(member "$S" list | "$PYTHON3" -c 'import json,sys; print(len(json.load(sys.stdin)["processes"]))')" 500
rep=$(call '{"op":"ListProcesses","continue":true}')
check_eq "\"continue\" without a listing under way is refused" "$(field "$rep" error)" 22

done_testing
