#!/bin/bash
# The sandbox's child allocates nothing. libkpa makes it with a raw clone3()
# straight from the caller; in a caller with threads, another thread may
# hold malloc's lock at that moment, and a child that allocated would wait
# for it forever. The noalloc shim (tests/inject/noalloc.c), preloaded with
# KPA_NOALLOC=1, kills with SIGABRT a raw clone's child that allocates: every
# kind of start below must still succeed under it.
. "$(dirname "$0")/lib.sh"
need_root

SHIM="$top_builddir/tests/inject/.libs/libnoalloc.so"
CHECKER="$top_builddir/tests/inject/noalloc-check"
KPA_RUN="$top_builddir/src/tools/kpa-run"
EXECD="$top_builddir/src/daemon/kpa-execd"
PROBE="$top_builddir/tests/probe/probe"
TASK_TEST="$top_builddir/tests/probe/task-test"
{ [ -f "$SHIM" ] && [ -x "$CHECKER" ]; } || skip_all "tests/inject/libnoalloc.la not built"
[ -x "$KPA_RUN" ] || skip_all "kpa-run not built"
# a sanitizer's runtime has its own malloc, which the shim would bypass;
# a coverage build's exec writes its counters first, which allocates
[ -z "${ASAN_OPTIONS:-}${UBSAN_OPTIONS:-}" ] || skip_all "not with a sanitizer's malloc"
! grep -qa __gcov_ "$KPA_RUN" || skip_all "not in a coverage build (its exec allocates)"
noalloc() { KPA_NOALLOC=1 LD_PRELOAD=$SHIM "$@"; }

# ---- the shim does catch it ----
check_eq "the shim kills a raw clone's child that allocates, not a fork's" \
    "$(noalloc "$CHECKER" 2>/dev/null | paste -sd' ' -)" "raw=abort fork=ok"
check_eq "... and only with KPA_NOALLOC set" "$(LD_PRELOAD=$SHIM "$CHECKER" | paste -sd' ' -)" \
    "raw=ok fork=ok"

# ---- direct starts ----
chmod 755 "$T"
R="$T/store"
APP=org.example.noalloc$$
$MKPKG "$T/probe.kpa" --id $APP --bin "$PROBE" --set 'runConfigurations[0].args=[]'
"$KPA_INSTALL" --root "$R" -q "$T/probe.kpa" || { echo "Bail out! cannot install the probe"; exit 1; }
echo "handle content" >"$T/h.txt"
out=$(noalloc "$KPA_RUN" --root "$R" --handle cfg=file:"$T/h.txt" --memory 64M --pids 50 \
    --cpu-weight 50 $APP -- handles cfg 2>&1)
check_eq "a root start with a handle and limits" "$(sed -n 's/^handle.cfg=//p' <<<"$out")" 3
check_exit "... allocated nothing in its child" 1 grep -q "kpa-noalloc" <<<"$out"
"$KPA_INSTALL" --root "$R" -q --grant network $APP
out=$(noalloc "$KPA_RUN" --root "$R" --network host $APP -- exit 7 2>&1)
check_eq "a root start with the host's network ends with its code" "$?" 7
out=$(noalloc "$KPA_RUN" --root "$R" $APP -- segv 2>&1)
check "a child that dies of a signal is reported as such, with no allocation" \
    grep -q "SIGSEGV" <<<"$out"
check_exit "... (no kpa-noalloc)" 1 grep -q "kpa-noalloc" <<<"$out"
if [ -x "$TASK_TEST" ]; then
    out=$(noalloc "$TASK_TEST" channel "$R" $APP 2>&1)
    check "two tasks connected by a channel (kpa/task.h)" grep -q "^echoed=ping$" <<<"$out"
else
    skip "two tasks connected by a channel (kpa/task.h)" "tests/probe/task-test not built"
fi

# ---- rootless ----
USERID=65534
nobody() { setpriv --reuid $USERID --regid $USERID --clear-groups "$@"; }
if nobody unshare -U true 2>/dev/null; then
    mkdir "$T/home" && chown $USERID:$USERID "$T/home"
    nobody "$(reachable "$KPA_INSTALL")" --root "$T/home/store" -q "$T/probe.kpa"
    out=$(nobody env KPA_NOALLOC=1 LD_PRELOAD="$(reachable "$SHIM")" "$(reachable "$KPA_RUN")" \
        --root "$T/home/store" $APP -- info 2>&1)
    check_eq "a rootless start" "$(sed -n 's/^pid=//p' <<<"$out")" 2
    check_exit "... allocated nothing in its child" 1 grep -q "kpa-noalloc" <<<"$out"
else
    skip "a rootless start" "unprivileged user namespaces are disabled here"
fi

# ---- through kpa-execd (supervised: exit record, captured output) ----
if [ -x "$EXECD" ]; then
    S="$T/execd.sock"
    # (not through noalloc(): $! would be a subshell's pid, not the daemon's)
    KPA_NOALLOC=1 LD_PRELOAD=$SHIM "$EXECD" --foreground --on-exit stop --no-autorun --socket "$S" --root "$R" \
        --state-dir "$T/state" </dev/null >/dev/null 2>>"$T/execd.log" &
    cleanup_add "kill $! 2>/dev/null && wait $! 2>/dev/null"
    for _ in $(seq 200); do
        [ -S "$S" ] && "$KPA_RUN" --socket "$S" --list >/dev/null 2>&1 && break
        sleep 0.05
    done
    tok=$("$KPA_RUN" --socket "$S" --detach $APP -- exit 5)
    "$KPA_RUN" --socket "$S" --wait "$tok"
    check_eq "a start through kpa-execd ends with its code" "$?" 5
    # (grep exits 2 when the log is missing or unreadable: that is no pass)
    check_exit "... and the daemon's children allocated nothing" 1 grep -q "kpa-noalloc" "$T/execd.log"
else
    skip "a start through kpa-execd" "kpa-execd not built"
fi
done_testing
