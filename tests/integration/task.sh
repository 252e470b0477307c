#!/bin/bash
# The task API (kpa/task.h) and parent trees, driven from C by task-test.
. "$(dirname "$0")/lib.sh"
need_root

TASK_TEST="$top_builddir/tests/probe/task-test"
PROBE="$top_builddir/tests/probe/probe"
R="$T/store"
# not run.sh's org.example.probe: both run at once under make -j, and a start
# of an app removes the stale instance cgroups that run.sh checks for
APP=org.example.taskprobe$$
$MKPKG "$T/probe.kpa" --id $APP --bin "$PROBE" --set 'runConfigurations[0].args=[]'
"$KPA_INSTALL" --root "$R" -q "$T/probe.kpa" || { echo "Bail out! cannot install the probe"; exit 1; }
val() { sed -n "s|^$1=||p" <<<"$2" | head -1; }

out=$("$TASK_TEST" channel "$R" $APP)
check_eq "a connected channel carries data from one task..." "$(val echoed "$out")" ping
check_eq "...to the other and back" "$(val reply "$out")" ping
check_eq "both tasks end Finished/Normal with 0" \
    "$(val a.state "$out") $(val a.status "$out") $(val a.code "$out") $(val b.state "$out") $(val b.code "$out")" \
    "Finished Normal 0 Finished 0"

echo content >"$T/cfg.txt"
out=$("$TASK_TEST" transfer "$R" $APP "$T/cfg.txt")
check_eq "a transferred fd arrives as a named handle" "$(val handle.cfg "$out")" 3
check_eq "it is the file given" "$(val handle.cfg.target "$out")" "$T/cfg.txt"

out=$("$TASK_TEST" tree "$R" $APP)
check_eq "stopping a parent stops its child first" "$(val child_first "$out")" 1
check_eq "the child (ignoring SIGTERM) ends Terminated" "$(val child.status "$out")" Terminated
check_eq "the parent ends Finished/Normal" "$(val parent.state "$out") $(val parent.status "$out")" \
    "Finished Normal"

out=$("$TASK_TEST" errors "$R" $APP)
check_eq "a path not of the form /APP/bin/NAME is refused" "$(val bad_path "$out")" -22
check "... with a message naming it" grep -q 'bad_path.message=task path "no-slash"' <<<"$out"
check_eq "a path naming no bin component is refused" "$(val no_bin "$out")" -2
check_eq "a task cannot connect to itself" "$(val self_connect "$out")" -22
check_eq "an invalid handle name is refused" "$(val bad_name "$out")" -22
check_eq "a duplicate handle name is refused" "$(val dup_name "$out")" "0,-17"
check_eq "stopping a task that has not started is refused" "$(val stop_unstarted "$out")" -3
done_testing
