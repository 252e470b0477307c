#!/bin/bash
# kpa-install end to end: install, list, info, reinstall, upgrade, verify,
# remove, purge, uids, private storage, compressions, locking.
. "$(dirname "$0")/lib.sh"
need_root

R="$T/store"
mk() { $MKPKG "$@"; }

mk "$T/hello-1.kpa"
mk "$T/hello-2.kpa" --version 2.0
mk "$T/other.kpa" --id org.example.other

check "install a package" "$KPA_INSTALL" --root "$R" "$T/hello-1.kpa"
out=$("$KPA_INSTALL" --root "$R" --reinstall "$T/hello-1.kpa")
check_eq "reinstall says so" "$out" "Reinstalled org.example.hello 1.0"
A="$R/apps/org.example.hello"
check_eq "bin installed 0755" "$(stat -c %a "$A/bin/hello")" 755
check_eq "lib installed 0644" "$(stat -c %a "$A/lib/libx.so")" 644
check_eq "res under its directoryPath" "$(cat "$A/res/data/conf.txt")" "greeting=hello"
check "manifest.json installed" test -f "$A/manifest.json"
check_eq "installed files owned by root" "$(find "$A" ! -user 0 | wc -l)" 0
uid=$(cat "$R/users/org.example.hello")
check "uid allocated from the reserved range" test "$uid" -ge 61184 -a "$uid" -le 65519
check_eq "private storage owned by the package uid, mode 0700" \
    "$(stat -c '%u %g %a' "$R/storage/org.example.hello")" "$uid $uid 700"
check_eq "staging left empty" "$(ls -A "$R/.staging")" ""
check_eq ".staging is private" "$(stat -c %a "$R/.staging")" 700

# list and info
check_eq "--list" "$("$KPA_INSTALL" --root "$R" --list | awk '{print $1, $2}')" "org.example.hello 1.0"
check "--list --json is JSON with the id" sh -c \
    "'$KPA_INSTALL' --root '$R' --list --json | $PYTHON3 -c 'import json,sys; d=json.load(sys.stdin); assert d[0][\"id\"]==\"org.example.hello\" and d[0][\"name\"]==\"Hello\"'"
info=$(LANG=C "$KPA_INSTALL" --root "$R" --info org.example.hello)
check "--info shows the localized name" grep -q '^Name: *Hello$' <<<"$info"
check "--info shows the localized description" grep -q '^Description: *Says hello$' <<<"$info"
check "--info marks the primary run configuration" grep -q '^  \* main .*(primary)' <<<"$info"
check "--info lists components with size and digest" \
    grep -qE '^  bin +bin/hello +30  [0-9a-f]{64}$' <<<"$info"
check "--info shows the package uid" grep -q "^Package uid: *$uid$" <<<"$info"
info_ru=$(LANG=ru_RU.UTF-8 "$KPA_INSTALL" --root "$R" --info org.example.hello)
check "--info localizes to LANG" grep -q '^Name: *Privet$' <<<"$info_ru"
check "--info of a package file" sh -c "'$KPA_INSTALL' --info '$T/hello-2.kpa' | grep -q '^Version: *2.0 '"
check "--info --json of a package file" sh -c \
    "'$KPA_INSTALL' --info --json '$T/hello-2.kpa' | $PYTHON3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"version\"]==\"2.0\" and d[\"components\"][0][\"size\"]==30 and d[\"runConfigurations\"][0][\"primary\"]'"
check_exit_output "--info of an unknown app" 1 "not installed" "$KPA_INSTALL" --root "$R" --info org.example.none

# same version refused, store unchanged
before=$(snapshot "$R")
check_exit_output "same version again is refused" 1 "already installed" "$KPA_INSTALL" --root "$R" "$T/hello-1.kpa"
check_eq "refused reinstall changed nothing" "$(snapshot "$R")" "$before"

# upgrade keeps private storage and uid
echo "user data" >"$R/storage/org.example.hello/data.txt"
out=$("$KPA_INSTALL" --root "$R" "$T/hello-2.kpa")
check_eq "upgrade says so" "$out" "Upgraded org.example.hello from 1.0 to 2.0"
check "upgrade installed version 2.0" grep -q '"version": "2.0"' "$A/manifest.json"
check_eq "upgrade keeps private storage" "$(cat "$R/storage/org.example.hello/data.txt")" "user data"
check_eq "upgrade keeps the uid" "$(cat "$R/users/org.example.hello")" "$uid"
check_eq "upgrade leaves no old tree behind" "$(ls -A "$R/.staging")" ""

# verify
check "--verify of an intact package" "$KPA_INSTALL" --root "$R" --verify org.example.hello
echo tampered >>"$A/res/data/conf.txt"
check_exit_output "--verify finds a modified file" 1 "modified: res/data/conf.txt" \
    "$KPA_INSTALL" --root "$R" --verify org.example.hello
rm "$A/lib/libx.so"
check_exit_output "--verify finds a missing file" 1 "missing: lib/libx.so" \
    "$KPA_INSTALL" --root "$R" --verify org.example.hello
touch "$A/res/data/intruder"
check_exit_output "--verify finds an extra file" 1 "extra: res/data/intruder" \
    "$KPA_INSTALL" --root "$R" --verify org.example.hello
chmod 4755 "$A/bin/hello"
check_exit_output "--verify finds a changed mode" 1 "wrong type or mode: bin/hello" \
    "$KPA_INSTALL" --root "$R" --verify org.example.hello
check "--reinstall repairs" "$KPA_INSTALL" --root "$R" --reinstall -q "$T/hello-2.kpa"
check "--verify after repair" "$KPA_INSTALL" --root "$R" --verify org.example.hello

# a second package gets its own uid
check "install a second package" "$KPA_INSTALL" --root "$R" -q "$T/other.kpa"
uid2=$(cat "$R/users/org.example.other")
check "second package has a different uid" test -n "$uid2" -a "$uid2" != "$uid"

# remove and purge
check "--remove" "$KPA_INSTALL" --root "$R" --remove org.example.hello
check "--remove deletes the package" test ! -e "$A"
check "--remove keeps private storage" test -f "$R/storage/org.example.hello/data.txt"
check_exit_output "--remove of a package that is not installed" 1 "not installed" \
    "$KPA_INSTALL" --root "$R" --remove org.example.hello
check "install again after remove" "$KPA_INSTALL" --root "$R" -q "$T/hello-1.kpa"
check_eq "the uid comes back after a remove" "$(cat "$R/users/org.example.hello")" "$uid"
check "--remove --purge" "$KPA_INSTALL" --root "$R" --remove --purge org.example.hello
check "--purge deletes private storage" test ! -e "$R/storage/org.example.hello"
check "--purge releases the uid" test ! -e "$R/users/org.example.hello"
check_eq "--list after purge" "$("$KPA_INSTALL" --root "$R" --list | awk '{print $1}')" "org.example.other"

# every compression, and KPA_ROOT
for c in zstd gzip xz none; do
    mk "$T/c-$c.kpa" --id "org.example.c$c" --compress $c
    check "install a $c package" env KPA_ROOT="$R" "$KPA_INSTALL" -q "$T/c-$c.kpa"
done
check "KPA_ROOT selects the store" test -d "$R/apps/org.example.cxz"

# architecture
mk "$T/arch.kpa" --id org.example.arch --set 'platform.hwSpecification.arch="riscv128"'
check_exit_output "a foreign architecture is refused" 1 'the package is built for "riscv128"' \
    "$KPA_INSTALL" --root "$R" "$T/arch.kpa"
check "--force-arch installs it anyway" "$KPA_INSTALL" --root "$R" -q --force-arch "$T/arch.kpa"
mk "$T/kos.kpa" --id org.example.kos --set "platform.hwSpecification.arch=\"$(uname -m)-kos\""
check "the KasperskyOS arch spelling maps to Linux" "$KPA_INSTALL" --root "$R" -q "$T/kos.kpa"

# concurrency: two installs at once, serialized by the lock
mk "$T/p1.kpa" --id org.example.p1 --files 200 --file-size 20000
mk "$T/p2.kpa" --id org.example.p2 --files 200 --file-size 20000
"$KPA_INSTALL" --root "$R" -q "$T/p1.kpa" & p1=$!
"$KPA_INSTALL" --root "$R" -q "$T/p2.kpa" & p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
check_eq "two concurrent installs both succeed" "$r1 $r2" "0 0"
check "both concurrent installs verify" "$KPA_INSTALL" --root "$R" --verify -q org.example.p1 org.example.p2

# usage errors exit 2
for args in "" "--bogus" "--purge x" "--list extra" "--info" "--json x.kpa" "--remove"; do
    # shellcheck disable=SC2086
    "$KPA_INSTALL" --root "$R" $args >/dev/null 2>&1
    check_eq "usage error exits 2: kpa-install $args" "$?" 2
done
check "--help" sh -c "'$KPA_INSTALL' --help | grep -q -- --reinstall"
check "--version" sh -c "'$KPA_INSTALL' --version | grep -q '^kpa-install [0-9]'"
check_exit_output "a missing package file is named" 1 "$T/nope.kpa: No such file or directory" \
    "$KPA_INSTALL" --root "$R" "$T/nope.kpa"

done_testing
