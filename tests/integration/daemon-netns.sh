#!/bin/bash
# kpa-execd's pool of prepared network namespaces, from outside: the daemon
# holds --netns-pool of them as fds (nothing else holds them), an instance
# started through it gets a network namespace of its own (not the host's,
# not another instance's, not one the pool still holds), with loopback up,
# the pool refills once the daemon is idle, --netns-pool 0 holds none,
# bad values are refused, and no namespace of the pool outlives the daemon.
. "$(dirname "$0")/lib.sh"
need_root

execd_paths
APP=org.example.netns$$
$MKPKG "$T/probe.kpa" --id $APP --bin "$PROBE" --set 'runConfigurations[0].args=[]'
"$KPA_INSTALL" --root "$R" -q "$T/probe.kpa" || { echo "Bail out! cannot install the probe"; exit 1; }

run() { "$KPA_RUN" --socket "$S" "$@"; }

# start_daemon OPTIONS...: a daemon of this test, with a log of its own
start_daemon() {
    : >"$T/execd.log"
    execd_start --no-autorun --on-exit stop "$@"
}
stop_daemon() { execd_stop; }
leftovers() {
    local d
    stop_daemon
    for d in $(app_cgroups $APP); do
        find "$d" -mindepth 1 -maxdepth 1 -type d -exec rmdir {} \;
        rmdir "$d"
    done 2>/dev/null
}
cleanup_add leftovers

# the network namespaces that PID holds as fds ("net:[INODE]", one a line),
# but its own (the daemon keeps an fd of it, to come back to)
held_netns() {
    local f own
    own=$(readlink "/proc/$1/ns/net")
    for f in /proc/"$1"/fd/*; do readlink "$f"; done 2>/dev/null | grep '^net:\[' |
        grep -vxF "$own" | sort
}
# wait_held PID N: until PID holds N network namespaces as fds (10 s)
wait_held() {
    local i
    for i in $(seq 200); do
        [ "$(held_netns "$1" | wc -l)" -eq "$2" ] && return 0
        sleep 0.05
    done
    return 1
}
instance_pid() { run --status "$1" | sed -n 's/^pid: *//p'; }
# netns_cookie PATH: the cookie of the network namespace at PATH (an ns file
# or an fd of one): SO_NETNS_COOKIE is the namespace's for the whole boot,
# while an inode number is given again once its namespace is gone (say to
# one a test in another lane makes at that moment)
netns_cookie() {
    nsenter --net="$1" "$PYTHON3" -c 'import socket, struct
s = socket.socket(socket.AF_UNIX)
print(struct.unpack("Q", s.getsockopt(socket.SOL_SOCKET, 71, 8))[0])' 2>/dev/null
}
# held_cookies PID: "INODE COOKIE" of each namespace held_netns lists
held_cookies() {
    local f l own
    own=$(readlink "/proc/$1/ns/net")
    for f in /proc/"$1"/fd/*; do
        l=$(readlink "$f") && [[ $l == net:\[* && $l != "$own" ]] && echo "$l $(netns_cookie "$f")"
    done 2>/dev/null
    return 0
}
# still_held "INODE COOKIE" lines: those whose namespace a process still has
# (as its own or an fd): the same inode and the same cookie
still_held() {
    local p f l ino cookie
    while read -r ino cookie; do
        [ -n "$ino" ] || continue
        for p in /proc/[0-9]*; do
            for f in "$p/ns/net" "$p"/fd/*; do
                l=$(readlink "$f" 2>/dev/null) && [ "$l" = "$ino" ] &&
                    [ "$(netns_cookie "$f")" = "$cookie" ] && echo "$ino held by ${p#/proc/}"
            done
        done
    done
    return 0
}

# ---- bad values ----
check_exit_output "--netns-pool with a bad value is refused, naming the range" 2 \
    '--netns-pool: "65" is not a number from 0 to 64' "$EXECD" --netns-pool 65
check_exit_output "--netns-pool -1 is refused" 2 \
    '--netns-pool: "-1" is not a number from 0 to 64' "$EXECD" --netns-pool -1

# ---- the pool ----
start_daemon --netns-pool 3
_result $? "a daemon with --netns-pool 3 starts"
check "it fills its pool: it holds 3 network namespaces as fds" wait_held "$dpid" 3
pool_before=$(held_netns "$dpid")
pool_before_c=$(held_cookies "$dpid")
host=$(readlink /proc/self/ns/net)
check "... none of them its own" bash -c "! grep -qxF '$(readlink /proc/"$dpid"/ns/net)' <<<'$pool_before'"

toks=() nets=()
for i in 1 2 3 4 5; do
    tok=$(run --detach "$APP" -- sleep 600) || break
    toks+=("$tok")
    p=$(instance_pid "$tok")
    nets+=("$(readlink "/proc/$p/ns/net")")
done
check_eq "5 instances start through the daemon" "${#toks[@]}" 5
check_eq "each has a network namespace of its own (5 different ones)" \
    "$(printf '%s\n' "${nets[@]}" | sort -u | wc -l)" 5
check "... none of them the host's" bash -c "! printf '%s\n' ${nets[*]} | grep -qxF '$host'"
check "... none of them the daemon's" \
    bash -c "! printf '%s\n' ${nets[*]} | grep -qxF '$(readlink /proc/"$dpid"/ns/net)'"
check "the pool refills to 3 while the daemon is idle" wait_held "$dpid" 3
pool_after=$(held_netns "$dpid")
pool_after_c=$(held_cookies "$dpid")
check "... with namespaces no instance has" \
    bash -c "! printf '%s\n' ${nets[*]} | grep -qxF -f <(printf '%s\n' '$pool_after')"
p=$(instance_pid "${toks[0]}")
check "loopback is up in an instance's namespace (from the pool)" \
    bash -c "nsenter --net=/proc/$p/ns/net ip -o link show lo | grep -q 'LOOPBACK,UP'"
for tok in "${toks[@]}"; do run --stop "$tok" >/dev/null; done
stop_daemon
check_eq "no namespace of the pool survives the daemon's exit" \
    "$(still_held <<<"$pool_before_c
$pool_after_c")" ""

# ---- a killed daemon leaves none either ----
start_daemon --netns-pool 2
check "a second daemon fills a pool of 2" wait_held "$dpid" 2
pool=$(held_cookies "$dpid")
kill -KILL "$dpid"
wait "$dpid" 2>/dev/null
dpid=
check_eq "after SIGKILL none of its pool's namespaces is left" "$(still_held <<<"$pool")" ""
rm -f "$S"

# ---- --netns-pool 0 ----
start_daemon --netns-pool 0
_result $? "a daemon with --netns-pool 0 starts"
tok=$(run --detach "$APP" -- sleep 600)
p=$(instance_pid "$tok")
check "an instance still gets a namespace of its own" \
    test "$(readlink "/proc/$p/ns/net")" != "$host"
check_eq "the daemon holds no network namespace" "$(held_netns "$dpid" | wc -l)" 0
run --stop "$tok" >/dev/null
stop_daemon

done_testing
