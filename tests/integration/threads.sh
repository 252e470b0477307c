#!/bin/bash
# libkpa called from a program with threads (tests/probe/threaded-start):
# the sandbox's child comes from a raw clone3() of one of them, and must
# start and drop its ids all the same. glibc's set*id() would, in such a
# child, wait forever for threads that exist only in the parent.
. "$(dirname "$0")/lib.sh"
need_root

STARTER="$top_builddir/tests/probe/threaded-start"
PROBE="$top_builddir/tests/probe/probe"
[ -x "$STARTER" ] || skip_all "tests/probe/threaded-start not built"
chmod 755 "$T"
R="$T/store"
APP=org.example.threads$$
$MKPKG "$T/probe.kpa" --id $APP --bin "$PROBE" --set 'runConfigurations[0].args=[]'
"$KPA_INSTALL" --root "$R" -q "$T/probe.kpa" || { echo "Bail out! cannot install the probe"; exit 1; }

out=$("$STARTER" "$R" $APP 1 info 2>&1)
check_eq "a start from a caller with threads finishes" "$?" 0
val() { sed -n "s|^$1=||p" <<<"$out" | head -1; }
check_eq "... as PID 2 under kpa's init" "$(val pid) $(val ppid)" "2 1"
uid=$(stat -c %u "$R/storage/$APP" 2>/dev/null)
check "... its uid is the package's own ($uid)" test -n "$uid" -a "$(val uid)" = "$uid"
check_eq "... with no capability left" "$(val CapEff) $(val CapBnd)" "0000000000000000 0000000000000000"
check_eq "... and no_new_privs" "$(val NoNewPrivs)" 1

out=$("$STARTER" "$R" $APP 20 exit 3 2>&1)
check_eq "20 starts in a row, while another thread makes threads and allocates" "$?" 0
check_eq "... each one ends with its own exit code" \
    "$(grep -c '^state=Finished status=Normal code=3$' <<<"$out")" 20

# PR_SET_PDEATHSIG is per thread: an instance started by a worker thread
# that then ended was killed with it (the death pipe is what ties an
# instance to its starting process)
out=$(START_IN_WORKER=1 "$STARTER" "$R" $APP 1 sleep-exit 1 4 2>&1)
check_eq "an instance outlives the thread that started it" "$?" 0
check "... and ends by itself, with its own code" grep -q '^state=Finished status=Normal code=4$' <<<"$out"
done_testing
