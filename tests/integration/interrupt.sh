#!/bin/bash
# kill -9 in the middle of an install leaves the old version intact, and the
# next writer cleans the staging directory.
. "$(dirname "$0")/lib.sh"
need_root

R="$T/store"
$MKPKG "$T/hello-1.kpa"
$MKPKG "$T/hello-2.kpa" --version 2.0 --files 300 --file-size 100000 --compress none
$MKPKG "$T/other.kpa" --id org.example.other
check "install version 1.0" "$KPA_INSTALL" --root "$R" -q "$T/hello-1.kpa"
before=$(snapshot "$R/apps"; snapshot "$R/storage"; snapshot "$R/users")

mkfifo "$T/pipe.kpa"
"$KPA_INSTALL" --root "$R" -q "$T/pipe.kpa" 2>/dev/null &
pid=$!
cleanup_add "kill -9 $pid 2>/dev/null"
exec 3>"$T/pipe.kpa"
half=$(($(stat -c %s "$T/hello-2.kpa") / 2))
head -c "$half" "$T/hello-2.kpa" >&3
# wait until the installer has written part of the new version
for _ in $(seq 100); do
    n=$(find "$R/.staging" -type f 2>/dev/null | wc -l)
    [ "$n" -gt 10 ] && break
    sleep 0.05
done
check "the install was midway when killed" test "$n" -gt 10
kill -9 $pid
wait $pid 2>/dev/null
exec 3>&-
check "a half-written tree is left in staging" test -n "$(ls -A "$R/.staging")"
check_eq "the old version is intact" "$(snapshot "$R/apps"; snapshot "$R/storage"; snapshot "$R/users")" "$before"
check "the old version still verifies" "$KPA_INSTALL" --root "$R" --verify -q org.example.hello

check "the next install succeeds" "$KPA_INSTALL" --root "$R" -q "$T/other.kpa"
check_eq "and it cleaned the staging directory" "$(ls -A "$R/.staging")" ""
check "the upgrade then goes through" "$KPA_INSTALL" --root "$R" -q "$T/hello-2.kpa"
check "the upgraded version verifies" "$KPA_INSTALL" --root "$R" --verify -q org.example.hello
done_testing
