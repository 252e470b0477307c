#!/bin/bash
# The example applications of manifests/examples, built and packed by
# `make examples`, installed into a throwaway store and run: hello (args,
# environment, handles, private storage, exit code), echo (a TCP server on
# a listening socket handed over as "listen") and the greeter service and
# client (two run configurations joined by a channel with kpa/task.h).
. "$(dirname "$0")/lib.sh"
need_root

KPA_RUN="$top_builddir/src/tools/kpa-run"
EX="$top_builddir/manifests/examples"
[ -x "$KPA_RUN" ] || skip_all "kpa-run not built"
R="$T/store"
run() { "$KPA_RUN" --root "$R" "$@"; }

# a make of our own, not a part of the caller's (make check's jobserver)
check "make examples builds and packs every example" \
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$top_builddir" examples
for p in hello echo service; do
    check "$p.kpa installs" "$KPA_INSTALL" --root "$R" -q "$EX/$p.kpa"
done
check "every example verifies" "$KPA_INSTALL" --root "$R" --verify \
    org.example.hello org.example.echo org.example.greeter

# ---- hello ----
echo "handle content" >"$T/config.txt"
hello_out=$(run --env EXTRA=1 --handle config=file:"$T/config.txt" --handle log=file+a:"$T/log.txt" \
    org.example.hello -- "two words" --exit 7)
check_eq "hello exits with the code asked for" "$?" 7
has() { grep -qxF -- "$1" <<<"$hello_out"; }
check "hello gets the manifest's args first" has "arg[1]: --greeting"
check "...then the extra args, intact" has "arg[3]: two words"
check "hello sees the manifest's envVariables" has "env: GREETING=hello, world"
check "hello sees --env" has "env: EXTRA=1"
check "hello sees nothing else of the caller's environment" test "$(grep -c "^env: " <<<"$hello_out")" -le 9
check "hello gets its handles, named and in order" has "handle: config fd 3 $T/config.txt"
check "hello gets its second handle" has "handle: log fd 4 $T/log.txt"
check "hello writes to its private storage" has "storage: /storage is writable, run 1"
hello_out=$(run org.example.hello)
check_eq "hello exits 0 by default" "$?" 0
check "hello has no handles unless given" has "handles: 0"
check "private storage persists between runs" has "storage: /storage is writable, run 2"
check_eq "the storage file belongs to the package's uid on the host" \
    "$(storage_owner "$R" org.example.hello runs)" "$(cat "$R/users/org.example.hello")"

# ---- echo ----
check_exit_output "echo refuses to start without its listening socket" 1 'handle "listen"' \
    run org.example.echo
# port 0: the kernel picks a free one, and echo prints it
# kpa-run itself in the background (not the function run), so that $! is its pid
"$KPA_RUN" --root "$R" --handle listen=listen:tcp:127.0.0.1:0 org.example.echo >"$T/echo.out" 2>&1 &
echo_pid=$!
cleanup_add "kill -9 $echo_pid 2>/dev/null"
port=
for _ in $(seq 100); do
    port=$(sed -n 's/^echo: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/echo.out")
    [ -n "$port" ] && break
    sleep 0.05
done
check "echo listens on the socket it was given" test -n "$port"
echo_round() { # TEXT: send TEXT on a new connection, print what comes back
    local line
    exec 5<>"/dev/tcp/127.0.0.1/$port" || return 1
    printf '%s\n' "$1" >&5
    read -r -t 5 line <&5
    exec 5>&-
    printf '%s\n' "$line"
}
check_eq "echo sends back what a client sends" "$(echo_round "hello, echo")" "hello, echo"
exec 6<>"/dev/tcp/127.0.0.1/$port"
check_eq "echo serves a second client while the first stays connected" "$(echo_round second)" second
printf 'first\n' >&6
read -r -t 5 line <&6
exec 6>&-
check_eq "...and still the first one" "$line" first
kill -TERM $echo_pid
wait $echo_pid
check_eq "a Normal stop ends echo with exit code 0" "$?" 0
check "echo says it was stopped" grep -q '^echo: stopped after' "$T/echo.out"

# ---- the greeter: a service and its client, joined by a channel ----
CONNECT_RUN="$top_builddir/manifests/examples/service/connect-run"
out=$("$KPA_INSTALL" --root "$R" --info org.example.greeter)
check "the package has a service and a client run configuration" \
    grep -qE '^  \* service .*^|^    client ' <<<"$out"
check "the client declares that it uses the service" grep -q 'uses: service (serviceCanUse)' <<<"$out"
out=$("$CONNECT_RUN" --root "$R" org.example.greeter service client greeter alice bob 2>&1)
check_eq "connect-run exits with the client's exit code" "$?" 0
check "the client got the service's reply to the manifest's argument" \
    grep -qxF 'greeter-client: world -> hello, world (request 1)' <<<"$out"
check "...and to the extra arguments, in order" \
    grep -qxF 'greeter-client: bob -> hello, bob (request 3)' <<<"$out"
check "the service saw the client hang up and ended by itself" \
    grep -qxF 'greeter-service: client gone after 3 requests' <<<"$out"
check "both ended Finished/Normal" test "$(grep -c 'ended Finished/Normal, exit code 0' <<<"$out")" -eq 2
# kpa-run acts on the client's usesServices: serviceCanUse needs its service running
check_exit_output "the client alone is refused: the service it may use is not running" 1 \
    'the service "service" is not running, and usesServices[0] (serviceCanUse)' \
    run org.example.greeter client
done_testing
