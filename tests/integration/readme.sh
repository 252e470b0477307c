#!/bin/bash
# The README's tour works as written: every ```sh block after "A tour" runs,
# in order, in one bash process with set -e, in an empty directory, with
# KPA_ROOT set to a throwaway store and the tools just built first on PATH
# (the convention is written down in the README itself). ```console blocks
# are not run. Of the quick start, `demo` is run as what it ends with,
# `make demo` (its store is the throwaway build/demo/store); `check` would
# run this very test suite again and is only looked up.
. "$(dirname "$0")/lib.sh"
need_root

README=$top_srcdir/README
[ -x "$top_builddir/src/tools/kpa-run" ] || skip_all "kpa-run not built"

# ---- the quick start ----
for action in demo check; do
    check "the quick start says 'bash pkg/quickstart.sh $action'" \
        grep -qx "bash pkg/quickstart.sh $action" "$README"
    check "pkg/quickstart.sh knows '$action'" grep -qE "^ *$action\)" "$top_srcdir/pkg/quickstart.sh"
done
# (its sized private storage keeps a loop device until a purge: make
# clean-demo purges it, so that a test run leaves none behind)
cleanup_add 'env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$top_builddir" clean-demo >/dev/null 2>&1'
out=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$top_builddir" demo 2>&1)
check_eq "the quick-start demo (make demo) runs" "$?" 0
check "...and runs the sample application in its store" grep -q 'Done. The store is in' <<<"$out"
check "...and ends by saying where the tools are" grep -q "The tools are in $top_builddir/src/tools" <<<"$out"
# its first suggestion, run as it is printed (stdin not a terminal: no pty)
try=$(grep -m1 -E '^  /.*/kpa-run --root ' <<<"$out")
check_exit_output "...and what to try next: its first suggestion works" 0 "= you" \
    bash -c "$try </dev/null"

# ---- the tour ----
# blocks.sh: each ```sh block, followed by a marker line that says it ran
awk -v marker="__readme_block_ok" '
    /^A tour$/ { tour = 1 }
    tour && /^```sh$/ { inblock = 1; n++; printf "# block %d, README line %d\n", n, NR; next }
    inblock && /^```$/ { inblock = 0; printf "echo %s %d\n", marker, n; next }
    inblock { print }
' "$README" >"$T/blocks.sh"
nblocks=$(grep -c '^echo __readme_block_ok' "$T/blocks.sh")
check "the tour has shell blocks" test "$nblocks" -ge 5
mkdir -p "$T/work"
tour_out=$(cd "$T/work" && PATH="$top_builddir/src/tools:$top_builddir/src/daemon:$PATH" KPA_ROOT="$T/store" \
    bash -euo pipefail "$T/blocks.sh" 2>&1)
rc=$?
for ((i = 1; i <= nblocks; i++)); do
    line=$(sed -n "s/^# block $i, README line //p" "$T/blocks.sh")
    if grep -qx "__readme_block_ok $i" <<<"$tour_out"; then
        _result 0 "README block $i (line $line) runs"
    else
        _result 1 "README block $i (line $line) runs"
        echo "$tour_out" | grep -v "^__readme_block_ok" | tail -15 | sed 's/^/#   /'
        echo "#   (the tour stopped with exit $rc)"
        break
    fi
done

# what the tour shows really happened
has() { grep -qF -- "$1" <<<"$tour_out"; }
check "the application ran sandboxed, with its hostname" has "hello from org.example.hello as uid"
check "it got the manifest's args and the extra ones" has "args: --verbose one two"
check "--env won over the manifest" has "GREETING=hi"
check "its exit code came through" has "exit code 3"
check "the tour's downgrade was refused" has "downgrade from 1.2 to 1.1 refused"
check "the tour rolled back" has "Rolled org.example.hello back from 1.2 to 1.1"
check "and forward again" has "Rolled org.example.hello forward from 1.1 to 1.2"
check "the tour's held package was not reinstalled" has "is held at version 1.2"
check "it read its config handle" has "config says: colour=blue"
check "its private storage persisted across runs" has "runs so far: 3"
check "the bad manifest was refused" has "refused, as it should be"
check "the upgrade happened" has "Upgraded org.example.hello from 1.0 to 1.1"
check "the request for the network was printed" \
    has "org.example.hello requests network (the host's network instead of an empty network namespace): NOT GRANTED"
check "... and refused until granted" has "refused: the network is not granted"
check "... then granted" has "Upgraded org.example.hello from 1.1 to 1.2"
check "the signed package installed, its signer shown" has "Signature:    signed by acme (fingerprint "
check "... an unsigned one was refused" has "the package is not signed, and 1 key is trusted in trusted; refused"
check "... and a tampered one" has "does not match manifest.json: the package was changed after it was signed; refused"
check "--info shows it requested and granted" has "network (the host's network instead of an empty network namespace): requested, granted"
check "the daemon ran it detached and stopped it on request" has "stopped: exit code 143"
check "the store was the throwaway one" test -d "$T/store/apps/org.example.hello"
done_testing
