#!/bin/bash
# sockets.sh: extensions.KPA_sockets from outside (issue 18). A real Debian
# server, lighttpd, takes its socket from kpa (LISTEN_FDS) as an autorun
# service of kpa-execd and is reached with curl after a restart of the
# server and of kpa-execd, with the same listening socket (its inode in
# /proc/net/tcp) throughout; socket activation (the first connection
# starts it) over TCP and a unix socket; the port of listen:tcp:HOST:0;
# the warning about a socket nobody accepts on (python3 -m http.server);
# the refusals (not granted, address in use, a handle of the same name);
# the clean-up when the package goes.
. "$(dirname "$0")/lib.sh"
need_root

EXECD="$top_builddir/src/daemon/kpa-execd"
KPA_RUN="$top_builddir/src/tools/kpa-run"
PROBE="$top_builddir/tests/probe/probe"
[ -x "$EXECD" ] || skip_all "kpa-execd not built"
command -v curl >/dev/null || skip_all "curl missing (Debian: apt-get install curl)"
CLIENT_PY="$top_srcdir/tests/integration/execd-client.py"
client() { "$PYTHON3" "$CLIENT_PY" "$@"; }
R="$T/store"
S="$T/execd.sock"
STATE="$T/state"
# the unix sockets of this test's packages live here, not in /run/kpa/sockets
export KPA_SOCKETS_DIR="$T/sockets"
# kpa-install tells this daemon of installs and removals
export KPA_EXECD_SOCKET="$S"
WEB=org.example.web$$
ACT=org.example.act$$
PY=org.example.py$$
NG=org.example.ng$$
BUSY=org.example.busy$$
LH=org.example.lh$$

free_port() {
    "$PYTHON3" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
P_WEB=$(free_port)
P_ACT=$(free_port)
P_PY=$(free_port)
P_NG=$(free_port)
P_BUSY=$(free_port)

# the inode of the socket that listens on 127.0.0.1:PORT ("" when none)
listen_inode() {
    awk -v a="$(printf '0100007F:%04X' "$1")" '$2 == a && $4 == "0A" {print $10}' /proc/net/tcp
}
call() { client "$S" call "$@"; }
# the init pid of the Running instance of PACKAGE ("" when none)
init_of() {
    call '{"op":"ListProcesses"}' | "$PYTHON3" -c 'import json,sys
print(next((p["pid"] for p in json.load(sys.stdin)["processes"]
            if p["package"] == sys.argv[1] and p["state"] == "Running"), ""))' "$1"
}
count_running() {
    call '{"op":"ListProcesses"}' | "$PYTHON3" -c 'import json,sys
print(sum(1 for p in json.load(sys.stdin)["processes"] if p["package"] == sys.argv[1] and p["state"] == "Running"))' "$1"
}
# the application: the init's one child
app_of() { local i; i=$(init_of "$1"); [ -n "$i" ] && awk '{print $1}' "/proc/$i/task/$i/children" 2>/dev/null; }
# get URL [CURL ARGS]: the page, retried for up to 10 s (a start is under way)
get() {
    local url=$1 i out
    shift
    for i in $(seq 100); do
        out=$(curl -s --max-time 5 "$@" "$url") && [ -n "$out" ] && { echo "$out"; return 0; }
        sleep 0.1
    done
    return 1
}
# serves URL [CURL ARGS]: a lighttpd of this test answers there
serves() { get "$@" | grep -q '^instance '; }
# poll CMD... for up to 15 s
wait_for() { local i; for i in $(seq 150); do "$@" && return 0; sleep 0.1; done; return 1; }

start_daemon() { execd_start --on-exit stop; } # (lib.sh: it also cleans up after the daemon)
stop_daemon() { execd_stop; }
cleanup_add 'sleep 0.2; for d in $(app_cgroups $WEB $ACT $PY $NG $BUSY $LH); do find "$d" -mindepth 1 -maxdepth 1 -type d -exec rmdir {} \; ; rmdir "$d"; done 2>/dev/null'

# ---- the packages ----
# lighttpd with its socket from LISTEN_FDS; each instance serves its own id
cat >"$T/lighttpd.sh" <<'EOF'
#!/bin/sh
echo "instance $(cat /proc/sys/kernel/random/uuid)" >/tmp/index.html
cat >/tmp/lighttpd.conf <<CONF
server.document-root = "/tmp"
server.systemd-socket-activation = "enable"
server.upload-dirs = ( "/tmp" )
index-file.names = ( "index.html" )
CONF
exec /usr/sbin/lighttpd -D -f /tmp/lighttpd.conf
EOF
# a server that binds a port of its own and ignores the one it is given
printf '#!/bin/sh\nexec python3 -m http.server --bind 127.0.0.1 8000\n' >"$T/pyhttp.sh"
# sockets JSON [RESTART]: the extensions with KPA_sockets.main = JSON; a
# server (RESTART "always") is started again whenever it ends
sockets() {
    local restart=${2:+,\"KPA_restart\":{\"policy\":\"$2\",\"delayMs\":50\}}
    echo "extensions={\"KPA_sockets\":{\"main\":$1}$restart}"
}
$MKPKG "$T/web.kpa" --id $WEB --bin "$T/lighttpd.sh" --set 'runConfigurations[0].args=[]' \
    --set 'runConfigurations[0].autorun=true' \
    --set "$(sockets "[{\"name\":\"http\",\"listen\":\"tcp:127.0.0.1:$P_WEB\"}]" always)"
$MKPKG "$T/act.kpa" --id $ACT --bin "$T/lighttpd.sh" --set 'runConfigurations[0].args=[]' \
    --set 'runConfigurations[0].autorun=true' \
    --set "$(sockets "[{\"name\":\"http\",\"listen\":\"tcp:127.0.0.1:$P_ACT\",\"activate\":true},{\"name\":\"ctl\",\"listen\":\"unix:run/ctl.sock\",\"activate\":true}]" always)"
$MKPKG "$T/py.kpa" --id $PY --bin "$T/pyhttp.sh" --set 'runConfigurations[0].args=[]' \
    --set 'runConfigurations[0].autorun=true' \
    --set "$(sockets "[{\"name\":\"http\",\"listen\":\"tcp:127.0.0.1:$P_PY\"}]" always)"
$MKPKG "$T/ng.kpa" --id $NG --bin "$PROBE" --set 'runConfigurations[0].args=[]' \
    --set "$(sockets "[{\"name\":\"http\",\"listen\":\"tcp:127.0.0.1:$P_NG\"}]")"
$MKPKG "$T/busy.kpa" --id $BUSY --bin "$PROBE" --set 'runConfigurations[0].args=["handles","http"]' \
    --set "$(sockets "[{\"name\":\"http\",\"listen\":\"tcp:127.0.0.1:$P_BUSY\"}]")"
$MKPKG "$T/lh.kpa" --id $LH --bin "$T/lighttpd.sh" --set 'runConfigurations[0].args=[]'

# ---- install: a request, refused until granted ----
check_exit_output "an install whose sockets are not granted is refused, naming them" 1 \
    "requests permissions that are not granted: sockets tcp:127.0.0.1:$P_NG" \
    "$KPA_INSTALL" --root "$R" -q "$T/ng.kpa"
for p in ng busy lh; do
    "$KPA_INSTALL" --root "$R" -q --grant sockets "$T/$p.kpa" >/dev/null ||
        { echo "Bail out! cannot install $p"; exit 1; }
done

# ---- direct mode: refusals ----
"$KPA_INSTALL" --root "$R" -q --revoke sockets $NG >/dev/null
check_exit_output "a start whose socket is not granted is refused, naming the permission" 1 \
    "the permission sockets:tcp:127.0.0.1:$P_NG is not granted" \
    "$KPA_RUN" --root "$R" $NG
check "... and binds nothing" test -z "$(listen_inode "$P_NG")"
"$PYTHON3" -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); print("ready", flush=True); time.sleep(120)' "$P_BUSY" >"$T/holder.out" &
holder=$!
cleanup_add "kill $holder 2>/dev/null"
wait_for grep -q ready "$T/holder.out"
check_exit_output "a declared port in use: a clear error naming the address" 1 \
    "socket \"http\" (tcp:127.0.0.1:$P_BUSY): cannot bind 127.0.0.1:$P_BUSY: the address is in use" \
    "$KPA_RUN" --root "$R" $BUSY
kill $holder; wait $holder 2>/dev/null
check_exit_output "a --handle of a declared socket's name is refused" 1 \
    "the manifest declares a socket of that name (tcp:127.0.0.1:$P_BUSY)" \
    "$KPA_RUN" --root "$R" --handle http=file:/dev/null $BUSY
out=$("$KPA_RUN" --root "$R" $BUSY 2>&1)
check_eq "direct mode: kpa-run makes the declared socket and passes it as handle http, fd 3" \
    "$(echo "$out" | grep -E '^handle\.http' | sed 's/socket:.*/socket/' | tr '\n' ' ')" \
    "handle.http=3 handle.http.target=socket "

# ---- listen:tcp:HOST:0 prints the port it got; lighttpd serves on it ----
"$KPA_RUN" --root "$R" --handle http=listen:tcp:127.0.0.1:0 $LH >"$T/lh.out" 2>"$T/lh.err" &
lh=$!
cleanup_add "kill $lh 2>/dev/null"
wait_for grep -q "listens on" "$T/lh.err"
port=$(sed -n 's/^kpa-run: handle http listens on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/lh.err")
check "kpa-run prints the port of listen:tcp:127.0.0.1:0 (\"handle http listens on 127.0.0.1:N\")" \
    test -n "$port" -a "${port:-0}" -gt 0
check "... and lighttpd answers on it (curl)" serves "http://127.0.0.1:${port:-1}/"
kill $lh; wait $lh 2>/dev/null
out=$("$KPA_RUN" --json --root "$R" --handle http=listen:tcp:127.0.0.1:0 $BUSY 2>&1 >/dev/null | head -1)
check "--json: the port as {\"handle\": \"http\", \"listens\": \"127.0.0.1:N\"}" \
    "$PYTHON3" -c 'import json, sys; o = json.loads(sys.argv[1]); assert o["handle"] == "http" and o["listens"].startswith("127.0.0.1:") and int(o["listens"].split(":")[1]) > 0' "$out"

# ---- kpa-execd: an autorun service on a declared socket ----
start_daemon
_result $? "kpa-execd starts"
"$KPA_INSTALL" --root "$R" -q --grant sockets "$T/web.kpa" >/dev/null
page1=$(get "http://127.0.0.1:$P_WEB/")
check "installed while kpa-execd runs: it made the socket and autoran lighttpd on it (curl)" \
    test -n "$page1"
inode=$(listen_inode "$P_WEB")
check "kpa-execd holds the listening socket" \
    sh -c "ls -l /proc/$dpid/fd | grep -q 'socket:\[$inode\]'"
app=$(app_of $WEB)
check "lighttpd runs (its pid)" test -n "$app"
kill -9 "$app"
page2=$(get "http://127.0.0.1:$P_WEB/")
check "after kill -9 of lighttpd, the restarted server answers (curl)" \
    test -n "$page2" -a "$page2" != "$page1"
check_eq "... on the same listening socket" "$(listen_inode "$P_WEB")" "$inode"

# ---- a restart of kpa-execd ----
kill -9 "$dpid"
wait "$dpid" 2>/dev/null
dpid=
start_daemon
_result $? "a new kpa-execd starts (the instance keeps running)"
check_eq "the adopted lighttpd still answers (curl)" "$(get "http://127.0.0.1:$P_WEB/")" "$page2"
check "the new kpa-execd took the socket back from the instance's init" \
    sh -c "ls -l /proc/$dpid/fd | grep -q 'socket:\[$inode\]'"
app=$(app_of $WEB)
kill -9 "$app"
page3=$(get "http://127.0.0.1:$P_WEB/")
check "after kill -9 of lighttpd under the new kpa-execd, the restarted server answers (curl)" \
    test -n "$page3" -a "$page3" != "$page2"
check_eq "... still on the same listening socket" "$(listen_inode "$P_WEB")" "$inode"

# ---- activation ----
"$KPA_INSTALL" --root "$R" -q --grant sockets "$T/act.kpa" >/dev/null
wait_for test -n "$(listen_inode "$P_ACT")"
check_eq "activate: installed, its sockets made, nothing started yet" \
    "$(test -n "$(listen_inode "$P_ACT")" && echo listening) $(count_running $ACT)" "listening 0"
usock="$T/sockets/$ACT/run/ctl.sock"
uid=$(stat -c %u "$R/storage/$ACT" 2>/dev/null)
check_eq "the unix socket is below KPA_SOCKETS_DIR/APP_ID/, a socket owned by the package's uid" \
    "$(stat -c '%F %u %a' "$usock" 2>&1)" "socket ${uid:-?} 666"
check "the first connection starts it, and it answers (curl)" serves "http://127.0.0.1:$P_ACT/"
check_eq "one instance runs" "$(count_running $ACT)" 1
check "it answers on its unix socket too (curl --unix-socket)" \
    serves "http://localhost/" --unix-socket "$usock"

# ---- a run configuration that is not autorun: its socket comes with its first start ----
check_eq "not autorun: kpa-execd makes no socket for it before it starts" "$(listen_inode "$P_BUSY")" ""
tok=$("$KPA_RUN" --detach $BUSY)
"$KPA_RUN" --wait "$tok" >/dev/null 2>&1
check_eq "a --detach start passes the declared socket (handle http, fd 3)" \
    "$("$KPA_RUN" --logs "$tok" | grep '^handle\.http=')" "handle.http=3"
busy_inode=$(listen_inode "$P_BUSY")
check "... which kpa-execd made and keeps after the instance ended" test -n "$busy_inode"
tok=$("$KPA_RUN" --detach $BUSY)
"$KPA_RUN" --wait "$tok" >/dev/null 2>&1
check_eq "the next start gets the same socket" "$(listen_inode "$P_BUSY")" "$busy_inode"

# ---- never accepted: python3 -m http.server ignores its socket ----
"$KPA_INSTALL" --root "$R" -q --grant sockets "$T/py.kpa" >/dev/null
wait_for test "$(count_running $PY)" = 1
curl -s --max-time 20 "http://127.0.0.1:$P_PY/" >/dev/null 2>&1 &
cpid=$!
cleanup_add "kill $cpid 2>/dev/null"
check "a connection that waits 5 s unaccepted: kpa-execd warns, naming the socket" \
    wait_for grep -q "$PY/main: connections to its socket \"http\" (tcp:127.0.0.1:$P_PY) have waited 5 s and were never accepted" "$T/execd.log"
check_eq "... once" "$(grep -c "$PY/main: connections to its socket" "$T/execd.log")" 1
kill $cpid 2>/dev/null; wait $cpid 2>/dev/null
"$KPA_INSTALL" --root "$R" -q --remove --stop $PY >/dev/null 2>&1
# the same from kpa-run, for a --handle
$MKPKG "$T/py2.kpa" --id $PY --bin "$T/pyhttp.sh" --set 'runConfigurations[0].args=[]'
"$KPA_INSTALL" --root "$R" -q "$T/py2.kpa" >/dev/null
"$KPA_RUN" --root "$R" --handle http=listen:tcp:127.0.0.1:0 $PY >/dev/null 2>"$T/direct.err" &
dl=$!
cleanup_add "kill $dl 2>/dev/null"
wait_for grep -q "listens on" "$T/direct.err"
port=$(sed -n 's/^kpa-run: handle http listens on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/direct.err")
curl -s --max-time 20 "http://127.0.0.1:${port:-1}/" >/dev/null 2>&1 &
cpid=$!
cleanup_add "kill $cpid 2>/dev/null"
check "kpa-run warns about a handle never accepted on (python3 -m http.server)" \
    wait_for grep -q "warning: $PY: connections to handle http have waited 5 s and were never accepted" "$T/direct.err"
kill $cpid $dl 2>/dev/null; wait $cpid $dl 2>/dev/null

# ---- clean-up with the package ----
"$KPA_INSTALL" --root "$R" -q --remove --stop $ACT >/dev/null 2>&1
check "a removed package's unix sockets go with it" test ! -e "$T/sockets/$ACT"
check "... and its TCP socket is closed" wait_for test -z "$(listen_inode "$P_ACT")"
"$KPA_INSTALL" --root "$R" -q --remove --stop $WEB >/dev/null 2>&1
check "the service's socket is closed once it is removed" wait_for test -z "$(listen_inode "$P_WEB")"
check_exit "curl is refused there now" 7 curl -s --max-time 5 "http://127.0.0.1:$P_WEB/"
check_exit "no warning about the sockets that lighttpd accepts on" 1 \
    grep -Eq "($WEB|$ACT)/main: connections to its socket" "$T/execd.log"
stop_daemon

# ---- rootless: a user's own store, sockets in the user's runtime directory ----
USERID=65534
nobody() { setpriv --reuid $USERID --regid $USERID --clear-groups "$@"; }
if nobody unshare -U true 2>/dev/null; then
    mkdir -p "$T/home/run"
    chown -R $USERID:$USERID "$T/home"
    chmod 0700 "$T/home/run"
    UR="$T/home/store"
    $MKPKG "$T/user.kpa" --id $NG --bin "$PROBE" --set 'runConfigurations[0].args=["handles","ctl"]' \
        --set "$(sockets "[{\"name\":\"ctl\",\"listen\":\"unix:ctl.sock\"}]")"
    nobody "$(reachable "$KPA_INSTALL")" --root "$UR" -q --grant sockets "$T/user.kpa" >/dev/null 2>&1
    out=$(env -u KPA_SOCKETS_DIR XDG_RUNTIME_DIR="$T/home/run" \
        setpriv --reuid $USERID --regid $USERID --clear-groups "$(reachable "$KPA_RUN")" --root "$UR" $NG 2>&1)
    check_eq "rootless: the declared unix socket is made in \$XDG_RUNTIME_DIR/kpa-sockets/APP_ID and passed" \
        "$(echo "$out" | grep '^handle\.ctl=') $(stat -c '%F %u' "$T/home/run/kpa-sockets/$NG/ctl.sock" 2>&1)" \
        "handle.ctl=3 socket $USERID"
else
    skip "rootless: declared sockets" "unprivileged user namespaces are disabled here"
fi

done_testing
