#!/bin/bash
# kpa-run as an unprivileged user (rootless): a user namespace maps the
# user to uid 0 inside; the rest of the sandbox is the same, checked from
# inside and from outside. Limits need a cgroup the user may create: a
# clear refusal when there is none.
. "$(dirname "$0")/lib.sh"
need_root

KPA_RUN="$top_builddir/src/tools/kpa-run"
PROBE="$top_builddir/tests/probe/probe"
[ -x "$KPA_RUN" ] || skip_all "kpa-run not built"
USERID=65534
nobody() { setpriv --reuid $USERID --regid $USERID --clear-groups "$@"; }
nobody unshare -U true 2>/dev/null || skip_all "unprivileged user namespaces are disabled here"
APP=org.example.rootless$$
# what the user runs must be reachable by the user (the checkout need not be)
KPA_INSTALL=$(reachable "$KPA_INSTALL")
KPA_RUN=$(reachable "$KPA_RUN")
mkdir "$T/home"
chown $USERID:$USERID "$T/home"
R="$T/home/store"
$MKPKG "$T/probe.kpa" --id $APP --bin "$PROBE" --set 'runConfigurations[0].args=[]'
# the user installs into a store of their own, without root
check "kpa-install works without root, into the user's own store" \
    nobody "$KPA_INSTALL" --root "$R" -q "$T/probe.kpa"
run() { nobody "$KPA_RUN" --root "$R" "$@"; }
val() { sed -n "s|^$1=||p" <<<"$2" | head -1; }

out=$(run $APP -- info 2>&1)
check_eq "rootless: the application is PID 2 under kpa's init" "$(val pid "$out") $(val ppid "$out")" "2 1"
check_eq "its uid inside is 0 (the user's own outside)" "$(val uid "$out") $(val gid "$out")" "0 0"
check_eq "hostname is the application id" "$(val hostname "$out")" $APP
check_eq "only a loopback interface" "$(val netifs "$out")" lo
check_eq "/proc shows only the instance" "$(val processes "$out")" 2
for c in CapPrm CapEff CapBnd CapAmb; do
    check_eq "$c is zero" "$(val "$c" "$out")" 0000000000000000
done
check_eq "NoNewPrivs is set" "$(val NoNewPrivs "$out")" 1
check_eq "a seccomp filter is on" "$(val Seccomp "$out")" 2
check_eq "/usr is read-only" "$(val writable./usr "$out")" 0
check_eq "the package is read-only" "$(val "writable./$APP" "$out")" 0
check_eq "/storage is writable" "$(val writable./storage "$out")" 1
check_eq "/tmp is a tmpfs" "$(val tmp.tmpfs "$out")" 1
check_eq "only fds 0, 1, 2 are open" "$(sed -n 's/^fd\.\([0-9]*\)=.*/\1/p' <<<"$out" | paste -sd, -)" "0,1,2"

# from outside
setpriv --reuid $USERID --regid $USERID --clear-groups "$KPA_RUN" --root "$R" $APP -- sleep 30 \
    >"$T/sleep.out" 2>&1 &
kr=$! # kpa-run itself (setpriv execs it)
cleanup_add "kill -9 $kr 2>/dev/null"
for _ in $(seq 100); do grep -q ready=1 "$T/sleep.out" && break; sleep 0.05; done
init=$(pgrep -P $kr | head -1)
app=$(pgrep -P "$init" | head -1)
check "the application runs" test -n "$app"
check_eq "outside, it runs as the user" "$(awk '/^Uid:/ {print $2}' "/proc/$app/status")" $USERID
userns=$(readlink "/proc/$app/ns/user")
check "in a user namespace of its own" test -n "$userns" -a "$userns" != "$(readlink /proc/self/ns/user)"
check_eq "with no capability in the host's namespace" "$(awk '/^CapEff:/ {print $2}' "/proc/$app/status")" 0000000000000000
ref=$(proc_ref "$app")
kill -9 $kr
wait $kr 2>/dev/null
# gone, or a zombie that whoever inherited it has not reaped yet
for _ in $(seq 200); do proc_alive "$ref" >/dev/null || break; sleep 0.05; done
check_exit "kill -9 of kpa-run ends the instance" 1 proc_alive "$ref"

out=$(run $APP -- exit 7 2>&1)
check_eq "the exit code comes through" "$?" 7
check_exit_output "limits without a cgroup the user may create are refused, and why" 1 \
    "rootless, and its limits need a cgroup that this user may create" run --memory 64M $APP -- exit 0
check_exit_output "... naming the way out" 1 "Delegate=yes" run --pids 10 $APP -- exit 0
check_exit_output "only root chooses the uid" 1 "only root can choose" run --user 1000 $APP -- exit 0
check_eq "no cgroup was made" "$(find /sys/fs/cgroup -maxdepth 6 -type d -name "$APP" 2>/dev/null)" ""

done_testing
