#!/bin/bash
# The groups kpa.slice/APP_ID that kpa keeps for an application's next start
# (cgroup.c: made once, not at every start) go with the package: kpa-install
# --remove removes those below its own cgroup, and kpa-execd, told of the
# removal, those below its own. Checked in the cgroup file systems.
. "$(dirname "$0")/lib.sh"
need_root

execd_paths
APP=org.example.kept$$
$MKPKG "$T/app.kpa" --id $APP --bin "$PROBE" --set 'runConfigurations[0].args=["exit","0"]' \
    --delete privateStorage
# kept: every kpa.slice/APP below our cgroup, at any depth (kpa-execd may
# keep its own below a leaf of its)
kept() {
    local d
    while read -r d; do
        find "$d" -type d -path "*/kpa.slice/$APP" 2>/dev/null
    done < <(own_cgroup_dirs)
    return 0
}
cleanup_add 'for d in $(kept); do find "$d" -mindepth 1 -maxdepth 1 -type d -exec rmdir {} \; ; rmdir "$d"; done 2>/dev/null'
install() { "$KPA_INSTALL" --root "$R" -q "$T/app.kpa"; }

check "the package installs" install
check "a direct start works" "$KPA_RUN" --root "$R" $APP
check "... and keeps kpa.slice/APP for the next start" test -n "$(kept)"
check "kpa-install --remove works" "$KPA_INSTALL" --root "$R" -q --remove $APP
check_eq "... and removes the kept groups" "$(kept)" ""

# a group that still holds an instance stays (nothing is killed or moved):
# an instance from another store of the same id, then the removal here
check "installed again, and in a second store" sh -c \
    '"$0" --root "$1" -q "$3" && "$0" --root "$2" -q "$3"' "$KPA_INSTALL" "$R" "$T/other" "$T/app.kpa"
$MKPKG "$T/sleep.kpa" --id $APP --version 2.0 --bin "$PROBE" \
    --set 'runConfigurations[0].args=["sleep-exit","30","0"]' --delete privateStorage
"$KPA_INSTALL" --root "$T/other" -q "$T/sleep.kpa"
"$KPA_RUN" --root "$T/other" $APP >/dev/null 2>&1 &
sleeper=$!
cleanup_add "kill $sleeper 2>/dev/null; wait $sleeper 2>/dev/null"
busy() { for d in $(kept); do [ -n "$(find "$d" -mindepth 1 -maxdepth 1 -type d)" ] && return 0; done; return 1; }
for _ in $(seq 100); do busy && break; sleep 0.05; done
check "an instance of the other store's package runs" busy
check "kpa-install --remove of the first store's works" "$KPA_INSTALL" --root "$R" -q --remove $APP
check "... and leaves the group that holds the running instance" busy
kill $sleeper 2>/dev/null
wait $sleeper 2>/dev/null
"$KPA_INSTALL" --root "$T/other" -q --remove $APP

# kpa-execd: its instances' groups, removed when kpa-install tells it
check "installed again" install
execd_start --no-autorun || { echo "Bail out! kpa-execd did not start"; exit 1; }
tok=$("$KPA_RUN" --socket "$S" --detach $APP)
for _ in $(seq 200); do
    [ "$(field "$("$KPA_RUN" --socket "$S" --status "$tok" --json 2>/dev/null)" state)" = Finished ] && break
    sleep 0.05
done
check "a start through kpa-execd ran and ended" test -n "$tok"
check "... and kpa-execd keeps its kpa.slice/APP" test -n "$(kept)"
check "kpa-install --remove, telling kpa-execd" \
    env KPA_EXECD_SOCKET="$S" "$KPA_INSTALL" --root "$R" -q --remove $APP
check_eq "... removes kpa-execd's kept groups too" "$(kept)" ""
done_testing
