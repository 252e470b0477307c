#!/bin/bash
# Versions in the store: the downgrade guard (dpkg's order, then the build
# number), the previous version an upgrade keeps, --rollback (and forward
# again), --hold/--unhold, --list --all, what a removal takes along; the
# store after kpa-install is killed at each rename of an upgrade and of a
# rollback (always exactly the old or the new state), and concurrent
# upgrades and rollbacks.
. "$(dirname "$0")/lib.sh"
need_root

R="$T/store"
APP=org.example.hello
A="$R/apps/$APP"
P="$R/previous/$APP"
inst() { "$KPA_INSTALL" --root "$R" "$@"; }
ver() { sed -n 's/.*"version": "\([^"]*\)".*/\1/p' "$1/manifest.json" 2>/dev/null | tail -1; }
for v in 1.0 2.0 3.0 1.0~rc1 2.0~beta; do $MKPKG "$T/v$v.kpa" --version "$v"; done
$MKPKG "$T/b2.kpa" --version 2.0 --set 'application.buildNumber="2"'

# ---- the downgrade guard ----
check "install 2.0" inst -q "$T/v2.0.kpa"
uid=$(cat "$R/users/$APP")
echo "kept" >"$R/storage/$APP/data"
before=$(snapshot "$R")
out=$(inst "$T/v1.0.kpa" 2>&1)
rc=$?
check_eq "a downgrade is refused (exit 1)" "$rc" 1
check "the refusal says: downgrade from 2.0 to 1.0" grep -q "downgrade from 2.0 to 1.0" <<<"$out"
check "it names --allow-downgrade" grep -q -- "--allow-downgrade" <<<"$out"
check_eq "a refused downgrade changes nothing" "$(snapshot "$R")" "$before"
out=$(inst "$T/v2.0~beta.kpa" 2>&1)
check "2.0~beta is lower than 2.0 (dpkg's ~)" grep -q "downgrade from 2.0 to 2.0~beta" <<<"$out"
out=$(inst "$T/b2.kpa" 2>&1)
check_eq "the same version with a higher buildNumber is an upgrade" "$out" \
    "Upgraded $APP from 2.0 to 2.0"
out=$(inst "$T/v2.0.kpa" 2>&1)
check "a lower buildNumber of the same version is a downgrade" \
    grep -q "downgrade from 2.0 build 2 to 2.0 build 1" <<<"$out"
out=$(inst --allow-downgrade "$T/v1.0.kpa" 2>&1)
check_eq "--allow-downgrade installs it and says so" "$out" \
    "Downgraded $APP from 2.0 to 1.0 (--allow-downgrade)"
check_eq "a downgrade keeps the private storage" "$(cat "$R/storage/$APP/data")" "kept"
check_eq "a downgrade keeps the uid" "$(cat "$R/users/$APP")" "$uid"
check_eq "the version downgraded from is kept as previous" "$(ver "$P")" 2.0
check_exit_output "--allow-downgrade only goes with an install (a usage error)" 2 \
    "kpa-install: --allow-downgrade only goes with an install" inst --allow-downgrade --list

# ---- upgrades keep the previous version; rollback ----
inst -q --purge --remove "$APP"
check "install 1.0~rc1" inst -q "$T/v1.0~rc1.kpa"
check_eq "a first install keeps no previous version" "$(ls -A "$R/previous" 2>/dev/null)" ""
out=$(inst "$T/v1.0.kpa")
check_eq "1.0~rc1 -> 1.0 is an upgrade" "$out" "Upgraded $APP from 1.0~rc1 to 1.0"
check "install 2.0" inst -q "$T/v2.0.kpa"
check_eq "2.0 installed" "$(ver "$A")" 2.0
check_eq "1.0 kept as previous" "$(ver "$P")" 1.0
check_eq "only one previous version is kept" "$(ls -A "$R/previous")" "$APP"
check_eq "the older one is gone, nothing left in .staging or retired" \
    "$(ls -A "$R/.staging")$(ls -A "$R/retired" 2>/dev/null)" ""
check "--info shows the previous version" \
    sh -c "'$KPA_INSTALL' --root '$R' --info $APP | grep -q '^Previous: *1.0 (build 1)'"
check "--list shows the previous version" \
    sh -c "'$KPA_INSTALL' --root '$R' --list | grep -q '(previous 1.0)'"
check "--list --json has previousVersion and held" sh -c \
    "'$KPA_INSTALL' --root '$R' --list --json | $PYTHON3 -c 'import json,sys; d=json.load(sys.stdin)[0]; assert d[\"previousVersion\"]==\"1.0\" and d[\"held\"] is False and d[\"state\"]==\"installed\", d'"
uid=$(cat "$R/users/$APP")
echo "mine" >"$R/storage/$APP/data"
inst -q --grant all "$APP" >/dev/null
grants_before=$(cat "$R/grants/$APP" 2>/dev/null)
out=$(inst --rollback "$APP")
check "--rollback goes back to 1.0 and says so" \
    grep -q "^Rolled $APP back from 2.0 to 1.0" <<<"$out"
check_eq "1.0 is installed again" "$(ver "$A")" 1.0
check_eq "2.0 is now the previous version" "$(ver "$P")" 2.0
check "the rolled-back tree verifies" inst --verify "$APP"
check_eq "rollback keeps the private storage" "$(cat "$R/storage/$APP/data")" "mine"
check_eq "rollback keeps the uid" "$(cat "$R/users/$APP")" "$uid"
check_eq "rollback keeps the grants record" "$(cat "$R/grants/$APP" 2>/dev/null)" "$grants_before"
out=$(inst --rollback "$APP")
check "a second rollback goes forward again" grep -q "^Rolled $APP forward from 1.0 to 2.0" <<<"$out"
check_eq "2.0 installed after the second rollback" "$(ver "$A")" 2.0
check_exit_output "rollback of an unknown package" 1 "not installed" inst --rollback org.example.none
check_exit_output "rollback of an invalid id" 1 "not a valid application id" inst --rollback ../x
$MKPKG "$T/other.kpa" --id org.example.other
inst -q "$T/other.kpa"
before=$(snapshot "$R")
check_exit_output "rollback without a previous version says why" 1 "no previous version" \
    inst --rollback org.example.other
check_eq "a refused rollback changes nothing" "$(snapshot "$R")" "$before"
check "a reinstall keeps the previous version" inst -q --reinstall "$T/v2.0.kpa"
check_eq "previous still 1.0 after a reinstall" "$(ver "$P")" 1.0

# ---- hold ----
out=$(inst --hold "$APP")
check "--hold says what it means" grep -q "is held" <<<"$out"
check "the hold is recorded in the store" test -f "$R/holds/$APP"
before=$(snapshot "$R")
check_exit_output "a held package is not upgraded" 1 "is held at version 2.0" inst "$T/v3.0.kpa"
check_exit_output "the refusal names --unhold" 1 "--unhold $APP" inst "$T/v3.0.kpa"
check_exit_output "a held package is not reinstalled" 1 "is held" inst --reinstall "$T/v2.0.kpa"
check_exit_output "a held package is not downgraded" 1 "is held" inst --allow-downgrade "$T/v1.0.kpa"
check_exit_output "a held package is not rolled back" 1 "is held" inst --rollback "$APP"
check_eq "refusals of a held package change nothing" "$(snapshot "$R")" "$before"
check "--info shows the hold" sh -c "'$KPA_INSTALL' --root '$R' --info $APP | grep -q '^Held: *yes'"
check "--list shows the hold" sh -c "'$KPA_INSTALL' --root '$R' --list | grep -q '(held, previous 1.0)'"
check "--unhold" inst -q --unhold "$APP"
check "an unheld package upgrades" inst -q "$T/v3.0.kpa"
check_eq "3.0 installed, 2.0 previous" "$(ver "$A") $(ver "$P")" "3.0 2.0"
check_exit_output "--hold of a package that is not installed" 1 "not installed" inst --hold org.example.none
check_exit_output "--hold and --unhold together are a usage error" 2 \
    "kpa-install: --unhold cannot be combined with another action" inst --hold --unhold "$APP"

# ---- --list --all, and what a removal takes ----
inst -q --hold "$APP"
check "remove (storage kept)" inst -q --remove "$APP"
check_eq "a removal takes the previous version" "$(ls -A "$R/previous")" ""
check "a removal takes the hold" test ! -e "$R/holds/$APP"
check_eq "--list leaves a removed package out" \
    "$("$KPA_INSTALL" --root "$R" --list | awk '{print $1}')" "org.example.other"
all=$("$KPA_INSTALL" --root "$R" --list --all)
check "--list --all shows it as removed with its storage kept" \
    grep -q "^$APP .*removed; storage kept" <<<"$all"
check "--list --all --json says removed" sh -c \
    "'$KPA_INSTALL' --root '$R' --list --all --json | $PYTHON3 -c 'import json,sys; d={e[\"id\"]: e for e in json.load(sys.stdin)}; assert d[\"$APP\"][\"state\"]==\"removed\" and d[\"$APP\"][\"version\"] is None'"
check_exit_output "--all only goes with --list (a usage error)" 2 "kpa-install: --all only goes with --list" \
    inst --all --info "$APP"
check "purge" inst -q --remove --purge "$APP"
check "--list --all no longer shows a purged package" \
    sh -c "! '$KPA_INSTALL' --root '$R' --list --all | grep -q '^$APP '"

# ---- kill -9 in the middle: the store is the old or the new state ----
SHIM="$top_builddir/tests/inject/.libs/libinject.so"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
# state: "CURRENT PREVIOUS" after the next writer has recovered the store
state() {
    inst -q --unhold "$APP" >/dev/null 2>&1 # a writer: takes the lock, recovers
    echo "$(ver "$A") $(ver "$P")"
}
trees_ok() { # the current tree verifies, .staging is empty, no stray tree
    inst --verify -q "$APP" >/dev/null && [ -z "$(ls -A "$R/.staging")" ] &&
        [ -z "$(ls -A "$R/retired" 2>/dev/null)" ]
}
if [ -f "$SHIM" ]; then
    for op in upgrade rollback; do
        bad=0 n=0
        for nth in $(seq 1 8); do
            inst -q --remove --purge "$APP" >/dev/null 2>&1
            inst -q "$T/v1.0.kpa" && inst -q "$T/v2.0.kpa" || bad=1
            if [ $op = upgrade ]; then
                KPA_INJECT="rename:KILLAFTER:$R:$nth" LD_PRELOAD=$SHIM inst -q "$T/v3.0.kpa" \
                    >/dev/null 2>&1
                rc=$?
                s=$(state)
                [ "$s" = "2.0 1.0" ] || [ "$s" = "3.0 2.0" ] || { bad=1; echo "# $op $nth: $s"; }
            else
                KPA_INJECT="rename:KILLAFTER:$R:$nth" LD_PRELOAD=$SHIM inst -q --rollback "$APP" \
                    >/dev/null 2>&1
                rc=$?
                s=$(state)
                [ "$s" = "2.0 1.0" ] || [ "$s" = "1.0 2.0" ] || { bad=1; echo "# $op $nth: $s"; }
            fi
            trees_ok || { bad=1; echo "# $op $nth: the trees do not verify"; }
            n=$((n + 1))
            [ $rc -eq 137 ] || break # it was not killed: every rename was passed
        done
        check_eq "kill -9 after each rename of an $op ($n points): old or new state, whole" "$bad" 0
        check "the $op was killed at least twice before it ran through" test "$n" -ge 2
    done
    # a kill before the first rename of an upgrade: the old state exactly
    inst -q --remove --purge "$APP" >/dev/null 2>&1
    inst -q "$T/v1.0.kpa" && inst -q "$T/v2.0.kpa"
    before=$(snapshot "$R/apps")
    KPA_INJECT="rename:KILL:$R" LD_PRELOAD=$SHIM inst -q "$T/v3.0.kpa" >/dev/null 2>&1
    check_eq "killed before its first rename: the installed tree is untouched" \
        "$(snapshot "$R/apps")" "$before"
    check_eq "and the next writer leaves 2.0 with 1.0 previous" "$(state)" "2.0 1.0"
else
    skip "kill -9 during an upgrade or a rollback leaves a whole state" "tests/inject/libinject.la is not built"
fi

# ---- concurrent upgrades and rollbacks ----
inst -q --remove --purge "$APP" >/dev/null 2>&1
inst -q "$T/v1.0.kpa" && inst -q "$T/v2.0.kpa"
(for _ in $(seq 10); do inst -q --rollback "$APP"; done) >"$T/rb.log" 2>&1 &
rb=$!
(for _ in $(seq 10); do inst -q --reinstall "$T/v3.0.kpa" || inst -q "$T/v3.0.kpa"; done) \
    >"$T/up.log" 2>&1 &
up=$!
wait $rb
wait $up
s=$(state)
case $s in
"3.0 "[12].0 | [12].0" 3.0" | "2.0 1.0" | "1.0 2.0") ok=0 ;;
*) ok=1 ;;
esac
check_eq "concurrent upgrades and rollbacks end in one whole state ($s)" "$ok" 0
check "and the installed tree verifies" trees_ok
check "nothing of theirs failed but a refusal" \
    sh -c "! grep -v 'no previous version\|is already installed\|downgrade from' '$T/rb.log' '$T/up.log' | grep -q ."

done_testing
