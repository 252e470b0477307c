#!/bin/bash
# usesServices made real: a package with a service and its clients (python3
# scripts that talk over the handle kpa connects), in direct mode and
# through kpa-execd. Checked from outside: what the programs print, the
# stop order of --stop-all, the sockets the processes hold
# (/proc/PID/fd against ss's peers), the service's socket in kpa-execd's
# state directory; and the refusals: a cycle and an unknown service at
# install, serviceCanUse with the service not running, a use that the run
# configuration does not declare.
. "$(dirname "$0")/lib.sh"
need_root

KPA_RUN="$top_builddir/src/tools/kpa-run"
EXECD="$top_builddir/src/daemon/kpa-execd"
[ -x "$KPA_RUN" ] || skip_all "kpa-run not built"
[ -x "$EXECD" ] || skip_all "kpa-execd not built"
command -v ss >/dev/null || skip_all "ss missing (Debian: apt-get install iproute2)"

R="$T/store"
S="$T/execd.sock"
STATE="$T/state"
APP=org.example.uses$$

# The program of every run configuration: "service" answers each line
# with "pong LINE" on every connection it accepts on the handle "svc", and
# on SIGTERM says how many clients are still connected; "client" sends
# "ping" over its handle "svc" and prints the reply ("hold": then waits).
cat >"$T/app.py" <<'EOF'
#!/usr/bin/python3
import os, select, signal, socket, sys, time

names = os.environ.get("LISTEN_FDNAMES", "").split(":") if os.environ.get("LISTEN_FDS") else []
fds = {n: 3 + i for i, n in enumerate(names)}
role = sys.argv[1]
print(f"{role}: handles {','.join(names) or '-'}", flush=True)
if role == "service":
    ls = socket.socket(fileno=fds["svc"])
    conns = []
    def term(*_):
        alive = sum(1 for c in conns if c.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b"")
        print(f"service: SIGTERM with {alive} client(s) still connected", flush=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, term)
    while True:
        r, _, _ = select.select([ls] + conns, [], [])
        for s in r:
            if s is ls:
                conns.append(ls.accept()[0])
                continue
            data = s.recv(4096)
            if not data:
                conns.remove(s)
                s.close()
                continue
            s.sendall(b"pong " + data)
else:
    if "svc" not in fds:
        print("client: no handle svc", flush=True)
        sys.exit(3)
    s = socket.socket(fileno=fds["svc"])
    s.sendall(b"ping\n")
    print("client: reply " + s.recv(4096).decode().strip(), flush=True)
    if sys.argv[2:] == ["hold"]:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            time.sleep(3600)
EOF

rcs='[{"id":"svc","name":"Service","type":"service","path":"bin/hello","primary":false,"args":["service"]},
 {"id":"client","name":"Client","type":"gui","path":"bin/hello","primary":true,"args":["client"],
  "usesServices":[{"name":"svc","useType":"serviceActive"}]},
 {"id":"canuse","name":"Polite client","type":"gui","path":"bin/hello","primary":false,"args":["client"],
  "usesServices":[{"name":"svc","useType":"serviceCanUse"}]},
 {"id":"kid","name":"Client with its own","type":"gui","path":"bin/hello","primary":false,"args":["client"],
  "usesServices":[{"name":"'$APP'/svc","useType":"child"}]},
 {"id":"loner","name":"Undeclared","type":"gui","path":"bin/hello","primary":false,"args":["client"]}]'
$MKPKG "$T/uses.kpa" --id $APP --bin "$T/app.py" --set "runConfigurations=$rcs"
"$KPA_INSTALL" --root "$R" -q "$T/uses.kpa" || { echo "Bail out! cannot install the package"; exit 1; }

# the host pids of this package's processes running ROLE (their command
# line, read from /proc; nothing is ever signalled by name)
pids_of() {
    local f pid
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        [[ "$({ tr '\0' ' ' <"$f"; } 2>/dev/null)" == "/usr/bin/python3 /$APP/bin/hello $1"* ]] && echo "$pid"
    done
}
# the socket inode at fd FD of PID
inode_of() { readlink "/proc/$1/fd/$2" | sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p'; }
# the socket inodes PID holds, one per line
inodes_of() {
    local l
    for l in /proc/"$1"/fd/*; do readlink "$l"; done | sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p'
}
# the peer of unix socket INODE, per ss
peer_of() { ss -xan | awk -v i="$1" '$6 == i { print $8 }'; }
# the local address of the listening unix socket INODE, per ss
listener_addr() { ss -xln | awk -v i="$1" '$6 == i { print $5 }'; }
# wait_for CMD...: until CMD succeeds (at most 20 s)
wait_for() {
    local i
    for i in $(seq 200); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}
# first_line FILE NEEDLE: the number of FILE's first line that holds NEEDLE
first_line() { grep -n -m1 -F -- "$2" "$1" | cut -d: -f1; }

# ---- refused at install: a cycle, an unknown service ----
$MKPKG "$T/cycle.kpa" --id $APP.cycle --bin "$T/app.py" --set "runConfigurations=$rcs" \
    --set 'runConfigurations[0].usesServices=[{"name":"client","useType":"serviceCanUse"}]'
check_exit_output "a cycle of usesServices is refused at install, with the JSON path" 1 \
    'runConfigurations[1].usesServices[0].name: "svc" makes a cycle of usesServices: svc -> client -> svc' \
    "$KPA_INSTALL" --root "$R" -q "$T/cycle.kpa"
check "  and nothing of it is installed" test ! -e "$R/apps/$APP.cycle"
$MKPKG "$T/unknown.kpa" --id $APP.unknown --bin "$T/app.py" --set "runConfigurations=$rcs" \
    --set 'runConfigurations[1].usesServices=[{"name":"nosuch","useType":"serviceActive"}]'
check_exit_output "a service that is no run configuration of the package is refused at install" 1 \
    'runConfigurations[1].usesServices[0].name: "nosuch" names no run configuration of this package' \
    "$KPA_INSTALL" --root "$R" -q "$T/unknown.kpa"

# ---- direct mode ----
out=$("$KPA_RUN" --root "$R" $APP client 2>&1)
rc=$?
echo "$out" >"$T/direct.out"
check_eq "direct mode: the client ends well" "$rc" 0
check "  the client got its reply from the service over the handle svc" \
    grep -qx 'client: reply pong ping' "$T/direct.out"
s_line=$(first_line "$T/direct.out" 'service: handles svc')
c_line=$(first_line "$T/direct.out" 'client: handles svc')
# (which of the two prints first is python's start-up time under load, not
# kpa's order: the client's reply above shows that the service was serving
# when the client ran)
check "  the service ran with its handle svc, the client with its own" \
    test -n "$s_line" -a -n "$c_line"
check "  the service was stopped after the client had ended, and kpa-run waited for it" \
    grep -qx 'service: SIGTERM with 0 client(s) still connected' "$T/direct.out"
check "  no service or client is left" test -z "$(pids_of service)$(pids_of client)"

# held open: the sockets, from /proc and ss
"$KPA_RUN" --root "$R" $APP client -- hold >"$T/hold.out" 2>&1 &
rpid=$!
cleanup_add "kill $rpid 2>/dev/null; wait $rpid 2>/dev/null"
wait_for grep -q 'client: reply' "$T/hold.out"
spid=$(pids_of service)
cpid=$(pids_of "client hold")
check "direct mode: one service and one client run" test -n "$spid" -a -n "$cpid" \
    -a "$(wc -w <<<"$spid $cpid")" = 2
lsock=$(inode_of "$spid" 3)
check "  the service's fd 3 is a listening socket" test -n "$lsock" -a -n "$(listener_addr "$lsock")"
csock=$(inode_of "$cpid" 3)
peer=$(peer_of "$csock")
check "  the client's fd 3 is connected to a socket that the service holds" \
    grep -qx "${peer:-none}" <(inodes_of "$spid")
check "  the service holds its listener and that one connection only" \
    test "$(inodes_of "$spid" | sort | tr '\n' ' ')" = "$(printf '%s\n' "$lsock" "$peer" | sort | tr '\n' ' ')"
kill -TERM "$rpid"
wait "$rpid"
check_eq "  SIGTERM to kpa-run stops the client (its own exit code on SIGTERM: 0)" "$?" 0
check "  and then the service, the client gone" \
    grep -qx 'service: SIGTERM with 0 client(s) still connected' "$T/hold.out"
check "  no service is left" test -z "$(pids_of service)"

check_exit_output "direct mode: serviceCanUse does not start the service, and says so" 1 \
    'the service "svc" is not running, and usesServices[0] (serviceCanUse) connects to a running service without starting it' \
    "$KPA_RUN" --root "$R" $APP canuse
check_exit_output "a client that does not declare the service gets no handle" 3 'client: no handle svc' \
    "$KPA_RUN" --root "$R" $APP loner
check_exit_output "kpa-run refuses to connect it explicitly" 1 \
    "$APP/loner does not declare \"svc\" in usesServices, and a client connects only to the services it declares" \
    "$KPA_RUN" --root "$R" --handle svc=service:svc $APP loner
check_exit_output "a declared service named explicitly is the declared connection" 0 'client: reply pong ping' \
    "$KPA_RUN" --root "$R" --handle svc=service:svc $APP client
check_exit_output "  under its own name only" 2 'the connection to the service "svc" is the handle "svc"' \
    "$KPA_RUN" --root "$R" --handle other=service:svc $APP client
check_exit_output "a handle of the client's own may not take the service's name" 1 \
    'the handle "svc" is given already, and usesServices[0] names the service "svc" too' \
    "$KPA_RUN" --root "$R" --handle svc=file:/dev/null $APP client

# rootless: the same, as an unprivileged user in a store of their own
USERID=65534
nobody() { setpriv --reuid $USERID --regid $USERID --clear-groups "$@"; }
if nobody unshare -U true 2>/dev/null; then
    U_INSTALL=$(reachable "$KPA_INSTALL")
    U_RUN=$(reachable "$KPA_RUN")
    mkdir "$T/home"
    chown $USERID:$USERID "$T/home"
    chmod a+r "$T/uses.kpa"
    nobody "$U_INSTALL" --root "$T/home/store" -q "$T/uses.kpa"
    out=$(nobody env -u XDG_RUNTIME_DIR "$U_RUN" --root "$T/home/store" $APP client 2>&1)
    check_eq "rootless: the client gets its reply from the service it started" \
        "$?:$(grep -cx -e 'client: reply pong ping' -e 'service: SIGTERM with 0 client(s) still connected' <<<"$out")" 0:2
    check "  and leaves no services directory behind" \
        test -z "$(find /tmp -maxdepth 1 -name 'kpa-services-*' -user $USERID)"
else
    skip "rootless: the client gets its reply from the service it started" \
        "unprivileged user namespaces are disabled here"
fi

# ---- through kpa-execd ----
dpid=
run() { "$KPA_RUN" --socket "$S" "$@"; }
# (called in this shell, never in $(...): the daemon keeps its stdout open)
# members of group nogroup (as nobody is) may use it, when there is one
group=()
getent group nogroup >/dev/null && group=(--group nogroup)
start_daemon() {
    "$EXECD" --foreground --on-exit stop --no-autorun --socket "$S" --root "$R" --state-dir "$STATE" \
        "${group[@]}" </dev/null >/dev/null 2>>"$T/execd.log" &
    dpid=$!
    wait_for run --list >/dev/null 2>&1
}
cleanup_add '[ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null'
# whatever an instance left: its init, by pid
cleanup_add 'for f in "$STATE"/instances/*.json; do [ -f "$f" ] && p=$(sed -n "s/.*\"pid\":\([0-9]*\).*/\1/p" "$f") && [ "${p:-0}" -gt 0 ] && kill -9 "$p"; done 2>/dev/null'
start_daemon || { cat "$T/execd.log"; echo "Bail out! kpa-execd did not start"; exit 1; }
# the tokens of RUNCONFIG's live instances (per --list, oldest first)
tokens_of() { run --list | awk -v rc="$1" '$4 == rc && $2 != "Finished" && $2 != "Failed" { print $1 }'; }

check_exit_output "kpa-execd: serviceCanUse with the service not running is refused" 1 \
    'the service "svc" is not running' run --detach $APP canuse -- hold
c1=$(run --detach $APP client -- hold)
check "kpa-execd: the client starts" grep -Eqx '[0-9a-f]{32}' <<<"$c1"
svc=$(tokens_of svc)
check "  its service was started with it" test -n "$svc" -a "$(wc -w <<<"$svc")" = 1
list=$(run --list)
check "  the service first (--list is oldest first)" \
    test "$(awk 'NR > 1 && $2 != "Failed" { print $4 }' <<<"$list" | tr '\n' ' ')" = "svc client "
check "  its listening socket is STATE/services/TOKEN" test -S "$STATE/services/$svc"
wait_for grep -q 'client: reply' "$STATE/logs/$c1.log"
check "  the client got its reply" grep -qx 'client: reply pong ping' "$STATE/logs/$c1.log"
c2=$(run --detach $APP client -- hold)
c3=$(run --detach $APP canuse -- hold)
check "  a second client and a serviceCanUse one start" test "${#c2}:${#c3}" = 32:32
check "  and share the running service" test "$(tokens_of svc)" = "$svc"
wait_for grep -q 'client: reply' "$STATE/logs/$c3.log"
check "  the serviceCanUse client got its reply" grep -qx 'client: reply pong ping' "$STATE/logs/$c3.log"
spid=$(pids_of service)
lsock=$(inode_of "$spid" 3)
check "  the service's fd 3 listens at its socket in STATE/services" \
    grep -q "/$svc\$" <<<"$(listener_addr "$lsock")"
peers=()
for c in $(pids_of "client hold"); do
    peers+=("$(peer_of "$(inode_of "$c" 3)")")
done
held=$(inodes_of "$spid" | sort | tr '\n' ' ')
want=$(printf '%s\n' "$lsock" "${peers[@]}" | sort | tr '\n' ' ')
check "  the service holds its listener and one connection per client, each a client's fd 3" \
    test "${#peers[@]}" = 3 -a "$held" = "$want"
lone=$(run --detach $APP loner)
wait_for grep -q 'client: no handle' "$STATE/logs/$lone.log"
check "  a client that does not declare the service gets no handle" \
    grep -qx 'client: no handle svc' "$STATE/logs/$lone.log"
kid=$(run --detach $APP kid -- hold)
wait_for grep -q 'client: reply' "$STATE/logs/$kid.log"
check "  a child use gets a service of its own" test "$(tokens_of svc | wc -l)" = 2
kidsvc=$(tokens_of svc | grep -vxF "$svc")
run --stop "$kid" && run --wait "$kid" >/dev/null
wait_for test -z "$(tokens_of svc | grep -vxF "$svc")"
check "  stopping that client stops its own service, not the shared one" \
    test -n "$kidsvc" -a "$(tokens_of svc)" = "$svc" -a "$(grep -c 'SIGTERM with 0 client' "$STATE/logs/$kidsvc.log")" = 1

# a new kpa-execd re-adopts them: it connects a new client to the running
# service, and still knows which clients stop before which service
svcs=$(tokens_of svc | sort | tr '\n' ' ')
kill -9 "$dpid"
wait "$dpid" 2>/dev/null
start_daemon
c4=$(run --detach $APP client -- hold)
wait_for grep -q 'client: reply' "$STATE/logs/$c4.log"
check "after a kill -9 of kpa-execd, a new client is connected to the service it re-adopted" \
    test "$(grep -cx 'client: reply pong ping' "$STATE/logs/$c4.log")" = 1 -a \
    "$(tokens_of svc | sort | tr '\n' ' ')" = "$svcs"

live=$(run --list | awk '$2 == "Running"' | wc -l)
out=$(run --stop-all)
check_eq "--stop-all stops the clients and the services" "$?:$out" "0:stopped $live processes"
check_eq "  the shared service was stopped after its clients had ended" \
    "$(grep -c 'SIGTERM with 0 client' "$STATE/logs/$svc.log")" 1
check "  every instance has ended" test -z "$(tokens_of svc)$(tokens_of client)"
check "  and the service sockets are gone" test -z "$(ls -A "$STATE/services")"
check "  no process of the package is left" test -z "$(pids_of service)$(pids_of client)"

# users do not share service instances (stopping a service stops its clients)
if [ ${#group[@]} -gt 0 ]; then
    U_RUN=$(reachable "$KPA_RUN")
    nt=$(nobody "$U_RUN" --socket "$S" --detach $APP client -- hold)
    wait_for grep -q 'client: reply' "$STATE/logs/$nt.log"
    nsvc=$(tokens_of svc)
    check "a kpa-group user's client gets the service started as that user" \
        test "$(wc -w <<<"$nsvc")" = 1 -a "$(run --status "$nsvc" | sed -n 's/^owner: *//p')" = $USERID
    rt=$(run --detach $APP client -- hold)
    wait_for grep -q 'client: reply' "$STATE/logs/$rt.log"
    check "  root's client is not joined to that user's service: it starts one of its own" \
        test "$(tokens_of svc | wc -l)" = 2 -a "$(grep -cx 'client: reply pong ping' "$STATE/logs/$rt.log")" = 1
    run --stop-all >/dev/null
else
    skip "a kpa-group user's client gets the service started as that user" "no group nogroup"
    skip "  root's client is not joined to that user's service: it starts one of its own" "no group nogroup"
fi

done_testing
