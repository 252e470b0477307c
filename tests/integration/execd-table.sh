#!/bin/bash
# kpa-execd's request table (docs/DESIGN.md, "kpa-execd's state table"),
# walked from outside through the socket: every op sent by root, by a
# member of the daemon's group (primary, and supplementary through
# SO_PEERGROUPS), and by a uid that is neither, each refused or served as
# its row says, with the refusal's errno and wording; then the same ops
# while the daemon shuts down (--on-exit stop) and while it leaves its
# processes running (--on-exit keep).
. "$(dirname "$0")/lib.sh"
need_root

EXECD="$top_builddir/src/daemon/kpa-execd"
PROBE="$top_builddir/tests/probe/probe"
[ -x "$EXECD" ] || skip_all "kpa-execd not built"
command -v setpriv >/dev/null || skip_all "setpriv (util-linux) is not installed"
# the daemon's group: the one of gid 65534 (nogroup on Debian), so that no
# group is made on the host
GRP=$(getent group 65534 | cut -d: -f1)
[ -n "$GRP" ] || skip_all "no group has gid 65534"
CLIENT_PY="$top_srcdir/tests/integration/execd-client.py"
R="$T/store"
S="$T/execd.sock"
STATE="$T/state"
APP=org.example.table$$
$MKPKG "$T/app.kpa" --id $APP --bin "$PROBE" --set 'runConfigurations[0].args=[]'
"$KPA_INSTALL" --root "$R" -q "$T/app.kpa" || { echo "Bail out! cannot install $APP"; exit 1; }
# whatever an instance of APP left: its cgroups below our own (those of a
# process just killed empty a moment later)
rm_cgroups() {
    local d
    for d in $(app_cgroups $APP); do
        for _ in $(seq 100); do
            find "$d" -mindepth 1 -maxdepth 1 -type d -exec rmdir {} \; 2>/dev/null
            rmdir "$d" 2>/dev/null && break
            sleep 0.02
        done
    done
}
cleanup_add rm_cgroups

# the client that the other uids run must be reachable by them
USER_CLIENT_PY=$(reachable "$CLIENT_PY")
# client_cmd WHO: sets cmd to execd-client.py's command line as WHO: root,
# member (uid and primary group 65534), member2 (uid 65532, group 65534 as a
# supplementary group only) or stranger (uid 65533, in no group of the daemon)
client_cmd() {
    case $1 in
    root) cmd=("$PYTHON3" "$CLIENT_PY") ;;
    member) cmd=(setpriv --reuid 65534 --regid 65534 --clear-groups "$PYTHON3" "$USER_CLIENT_PY") ;;
    member2) cmd=(setpriv --reuid 65532 --regid 65532 --groups 65534 "$PYTHON3" "$USER_CLIENT_PY") ;;
    stranger) cmd=(setpriv --reuid 65533 --regid 65533 --clear-groups "$PYTHON3" "$USER_CLIENT_PY") ;;
    esac
}
# as_client WHO ARGS...: execd-client.py with ARGS, as WHO
as_client() {
    local cmd
    client_cmd "$1"
    shift
    "${cmd[@]}" "$S" "$@"
}
# as WHO JSON: one request as WHO, its reply as one JSON line
as() { as_client "$1" call "$2"; }
# row NAME JSON WHO=ERRNO...: JSON sent by each WHO answers with ERRNO
row() {
    local name=$1 json=$2 w rep
    shift 2
    for w in "$@"; do
        rep=$(as "${w%=*}" "$json" 2>&1)
        check_eq "$name by ${w%=*}: error ${w#*=}" "$(field "$rep" error 2>/dev/null)" "${w#*=}"
    done
}
# refused NAME WHO JSON ERRNO NEEDLE: also the refusal's wording
refused() {
    local rep
    rep=$(as "$2" "$3" 2>&1)
    check_eq "$1: error $4" "$(field "$rep" error 2>/dev/null)" "$4"
    check "... saying: $5" grep -qF -- "$5" <<<"$(field "$rep" message 2>/dev/null)"
}
start_json() { echo "{\"op\":\"StartProcess\",\"package\":\"$APP\",\"args\":[$1]${2:+,$2}}"; }
tok_json() { echo "{\"op\":\"$1\",\"token\":\"$2\"${3:+,$3}}"; }
NOTOKEN=00000000000000000000000000000000

# ---- serving ----
execd_start --on-exit stop --no-autorun --group "$GRP" || { echo "Bail out! kpa-execd did not start"; exit 1; }
check_eq "the socket belongs to group $GRP, mode 0660" "$(stat -c '%G %a' "$S")" "$GRP 660"
rep=$(as root "$(start_json '"sleep","600"')")
TR=$(field "$rep" token)
check_eq "root starts" "$(field "$rep" error) ${#TR}" "0 32"
rep=$(as member "$(start_json '"sleep","600"')")
TM=$(field "$rep" token)
check_eq "a member of $GRP starts (the socket's group lets it connect)" "$(field "$rep" error) ${#TM}" "0 32"
check_exit_output "a uid outside $GRP cannot connect to the socket (mode 0660)" 1 \
    "Permission denied" as stranger '{"op":"Version"}'
chmod 666 "$S"

row "Version" '{"op":"Version"}' root=0 member=0 member2=0 stranger=0
row "StartProcess" "$(start_json '"exit","0"')" root=0 member=0 member2=0
refused "StartProcess by stranger" stranger "$(start_json '"exit","0"')" 13 \
    "permission denied: only root and members of group \"$GRP\" may start processes (uid 65533 is neither)"
row "StopProcess of root's" "$(tok_json StopProcess "$TR")" member=13 member2=13
refused "StopProcess of root's by stranger" stranger "$(tok_json StopProcess "$TR")" 13 \
    "permission denied: the process belongs to another user; only its owner and root may stop it"
row "StopProcess of a token that does not exist" "$(tok_json StopProcess $NOTOKEN)" root=3 member=3 stranger=3
row "GetProcessState of root's" "$(tok_json GetProcessState "$TR")" root=0 member=13 stranger=13
refused "GetProcessState of root's by member" member "$(tok_json GetProcessState "$TR")" 13 \
    "only its owner and root may see its state"
rep=$(as stranger "$(tok_json GetProcessState $NOTOKEN)")
check_eq "GetProcessState of a token that does not exist: NotExisting, to anyone" \
    "$(field "$rep" error) $(field "$rep" process.state)" "0 NotExisting"
row "GetProcessState of the member's" "$(tok_json GetProcessState "$TM")" root=0 member=0 stranger=13
row "WaitProcess of root's (timeoutMs 0, live: ETIMEDOUT)" "$(tok_json WaitProcess "$TR" '"timeoutMs":0')" \
    root=110 member=13 stranger=13
refused "WaitProcess of root's by stranger" stranger "$(tok_json WaitProcess "$TR" '"timeoutMs":0')" 13 \
    "only its owner and root may wait for it"
row "ListProcesses" '{"op":"ListProcesses"}' root=0 member=0 stranger=0
check_eq "... the member lists only its own" \
    "$(as member '{"op":"ListProcesses"}' | "$PYTHON3" -c 'import json,sys; print(sorted({p["owner"] for p in json.load(sys.stdin)["processes"]}))')" "[65534]"
check_eq "... the stranger none" "$(field "$(as stranger '{"op":"ListProcesses"}')" processes)" "[]"
row "StopAll" '{"op":"StopAll"}' member=13 member2=13
refused "StopAll by member" member '{"op":"StopAll"}' 13 \
    "permission denied: only root may stop all processes (uid 65534 is not root)"
row "Subscribe" '{"op":"Subscribe"}' root=0 member=0 stranger=0
row "OpenLog of root's" "$(tok_json OpenLog "$TR")" root=0 member=13 stranger=13
refused "OpenLog of root's by stranger" stranger "$(tok_json OpenLog "$TR")" 13 \
    "only its owner and root may read its output"
row "OpenLog of a token that does not exist" "$(tok_json OpenLog $NOTOKEN)" root=3 stranger=3
row "PackageInstalled" "{\"op\":\"PackageInstalled\",\"package\":\"$APP\"}" root=0 member=0 member2=0
refused "PackageInstalled by stranger" stranger "{\"op\":\"PackageInstalled\",\"package\":\"$APP\"}" 13 \
    "only root and members of group \"$GRP\" may report an installed package"
row "StopPackage" "{\"op\":\"StopPackage\",\"package\":\"$APP\"}" member=13
refused "StopPackage by stranger" stranger "{\"op\":\"StopPackage\",\"package\":\"$APP\"}" 13 \
    "permission denied: only root may stop a package's processes (uid 65533 is not root)"
row "FindProcesses" "{\"op\":\"FindProcesses\",\"package\":\"$APP\"}" root=0 member=0 stranger=0
check_eq "... the stranger finds none" \
    "$(field "$(as stranger "{\"op\":\"FindProcesses\",\"package\":\"$APP\"}")" tokens)" "[]"
check "root's process still runs after all those refusals" \
    test "$(field "$(as root "$(tok_json GetProcessState "$TR")")" process.state)" = Running
row "StopProcess of its own" "$(tok_json StopProcess "$TM" '"policy":"Forced"')" member=0
row "StopProcess of its own" "$(tok_json StopProcess "$TR" '"policy":"Forced"')" root=0
row "StopPackage" "{\"op\":\"StopPackage\",\"package\":\"$APP\"}" root=0
row "StopAll" '{"op":"StopAll","policy":"Forced"}' root=0

# ---- shutting down (--on-exit stop): a process that ignores SIGTERM,
# with a stop timeout of a minute, holds the daemon in that state ----
rep=$(as root "$(start_json '"ignore-term","600"' '"stopTimeoutMs":60000')")
TH=$(field "$rep" token)
check_eq "a process that ignores SIGTERM runs" "$(field "$rep" error) $(field "$rep" process.state)" "0 Running"
kill -TERM "$dpid"
for _ in $(seq 200); do grep -q 'stopping 1 process (normal stop), then exiting' "$T/execd.log" && break; sleep 0.05; done
check "SIGTERM: the daemon stops its processes" grep -q 'stopping 1 process (normal stop), then exiting' "$T/execd.log"
refused "StartProcess while shutting down" root "$(start_json '"exit","0"')" 108 \
    "kpa-execd is shutting down (it stops its processes, then exits): it takes no StartProcess now"
row "StartProcess while shutting down" "$(start_json '"exit","0"')" member=108 stranger=13
rep=$(as root "{\"op\":\"PackageInstalled\",\"package\":\"$APP\"}")
check_eq "PackageInstalled while shutting down: answered, nothing started" \
    "$(field "$rep" error) $(field "$rep" started) $(field "$rep" restarted)" "0 0 0"
row "Version while shutting down" '{"op":"Version"}' root=0 member=0
row "GetProcessState while shutting down" "$(tok_json GetProcessState "$TH")" root=0 member=13
row "StopProcess while shutting down" "$(tok_json StopProcess "$TH" '"policy":"Forced"')" stranger=13 root=0
wait "$dpid"
check_eq "then the daemon exits, with 0" "$?" 0
dpid=

# ---- leaving (--on-exit keep): SIGTERM exits once the starts under way
# are answered, which takes a few ms. To be seen in that state, the daemon
# is stopped (SIGSTOP) while a start, the SIGTERM and then the requests reach
# it, in that order, on connections it holds already; epoll hands them over
# in the order they became ready, so in one round it takes the start, begins
# to leave and answers the requests, the start still under way ----
execd_start --on-exit keep --no-autorun --group "$GRP" || { echo "Bail out! kpa-execd did not start"; exit 1; }
cleanup_add '[ -n "$dpid" ] && kill -CONT "$dpid" 2>/dev/null'
chmod 666 "$S"
G="$T/gates"
mkdir -m 1777 "$G"
# until_files N PATTERN: wait until N files match $G/PATTERN
until_files() {
    local n=$1 pat=$2
    for _ in $(seq 400); do
        [ "$(find "$G" -name "$pat" | wc -l)" -ge "$n" ] && return 0
        sleep 0.025
    done
    return 1
}
gated=()
cleanup_add 'for p in "${gated[@]}"; do kill "$p" 2>/dev/null; done'
gate() { # gate WHO NAME JSON: a client of WHO that sends JSON once NAME.go exists
    local cmd
    client_cmd "$1"
    # (a simple command: $! is the client's own pid, for the cleanup)
    "${cmd[@]}" "$S" gated "$G" "$2" "$3" >"$G/$2.out" 2>&1 &
    gated+=($!)
}
gate root held "$(start_json '"sleep","600"')"
gate root start "$(start_json '"exit","0"')"
gate member start-member "$(start_json '"exit","0"')"
gate stranger start-stranger "$(start_json '"exit","0"')"
gate root installed "{\"op\":\"PackageInstalled\",\"package\":\"$APP\"}"
gate stranger version '{"op":"Version"}'
gate member stop-all '{"op":"StopAll"}'
check "seven clients are connected" until_files 7 '*.ready'
kill -STOP "$dpid"
touch "$G/held.go"
check "a start is sent to the stopped daemon" until_files 1 'held.sent'
kill -TERM "$dpid"
for n in start start-member start-stranger installed version stop-all; do touch "$G/$n.go"; done
check "then SIGTERM, then the other requests" until_files 7 '*.sent'
kill -CONT "$dpid"
for p in "${gated[@]}"; do wait "$p"; done
check "SIGTERM with --on-exit keep: the daemon waits for the start under way" \
    grep -q 'exiting once 1 start under way is answered' "$T/execd.log"
out() { cat "$G/$1.out"; }
check_eq "StartProcess while leaving: error 108" "$(field "$(out start)" error)" 108
check "... saying so" grep -qF "kpa-execd is exiting and leaving its processes running for the next kpa-execd to adopt (--on-exit keep): it takes no StartProcess now" "$G/start.out"
check_eq "StartProcess while leaving by member: error 108" "$(field "$(out start-member)" error)" 108
check_eq "StartProcess while leaving by stranger: error 13" "$(field "$(out start-stranger)" error)" 13
check_eq "PackageInstalled while leaving: answered, nothing started" \
    "$(field "$(out installed)" error) $(field "$(out installed)" started)" "0 0"
check_eq "Version while leaving by stranger: error 0" "$(field "$(out version)" error)" 0
check_eq "StopAll while leaving by member: error 13" "$(field "$(out stop-all)" error)" 13
check_eq "the start under way is answered: Running" "$(field "$(out held)" process.state)" Running
wait "$dpid"
check_eq "then the daemon exits, with 0" "$?" 0
dpid=
held=$(field "$(out held)" process.pid)
check "its process runs on (kill -0 of its pid)" kill -0 "$held"
# ended here, so that its cgroup can go: no daemon is left to remove it
kill -9 "$held"
for _ in $(seq 200); do kill -0 "$held" 2>/dev/null || break; sleep 0.025; done

done_testing
