#!/bin/bash
# Root trusts no store it does not own (issue "Trust boundaries", 4): as
# root, the tools refuse a store that anyone but root could change; a uid
# read from a store must lie in kpa's range; no symlink below the store is
# followed; two root-managed stores never give out the same uid (the
# host-wide uid registry); a package without a uid record does not start.
. "$(dirname "$0")/lib.sh"
need_root

KPA_RUN="$top_builddir/src/tools/kpa-run"
PROBE="$top_builddir/tests/probe/probe"
[ -x "$KPA_RUN" ] || skip_all "kpa-run not built"
APP=org.example.trust$$
OTHER=org.example.trust-other$$
$MKPKG "$T/probe.kpa" --id $APP --bin "$PROBE" --set 'runConfigurations[0].args=[]'
$MKPKG "$T/other.kpa" --id $OTHER --bin "$PROBE" --set 'runConfigurations[0].args=[]'
R="$T/store"
"$KPA_INSTALL" --root "$R" -q "$T/probe.kpa" || { echo "Bail out! cannot install the probe"; exit 1; }
run() { "$KPA_RUN" --root "$R" "$@"; }
check "a store that only root can change is used" run $APP -- exit 0

# ---- a store that others can change ----
chmod 777 "$R/users"
check_exit_output "a store with a world-writable users/ is refused by kpa-run" 1 \
    "users/ is writable by every user" run $APP -- exit 0
check_exit_output "... and by kpa-install" 1 "nobody but root can change" \
    "$KPA_INSTALL" --root "$R" --list
chmod 755 "$R/users"
chown 65534 "$R"
check_exit_output "a store owned by another user is refused" 1 "is not owned by root" run $APP -- exit 0
chown 0 "$R"
mkdir -m 775 "$T/groupw"

check_exit_output "a store below a group-writable directory is refused, naming it" 1 \
    "$T/groupw is writable by its group" "$KPA_INSTALL" --root "$T/groupw/store" -q "$T/probe.kpa"
check "... and nothing was created there" test ! -e "$T/groupw/store"
mkdir -m 1777 "$T/sticky"
check "a store below a sticky world-writable directory (as /tmp) is used" \
    "$KPA_INSTALL" --root "$T/sticky/store" -q "$T/probe.kpa"
"$KPA_INSTALL" --root "$T/sticky/store" -q --remove --purge $APP

# ---- what the store says is checked too ----
uid=$(cat "$R/users/$APP")
echo 0 >"$R/users/$APP"
out=$(run $APP -- info 2>&1)
check_eq "a uid record of 0 is refused at start (kpa-run exits 1: not started)" "$?" 1
check "... saying that the uid is outside kpa's range" grep -q "outside kpa's range" <<<"$out"
check_exit "... and nothing ran" 1 grep -q '^uid=' <<<"$out"
echo "$uid" >"$R/users/$APP"
mv "$R/users/$APP" "$T/uid.kept"
check_exit_output "a package without a uid record does not start (never as nobody)" 1 \
    "no uid recorded" run $APP -- info
mv "$T/uid.kept" "$R/users/$APP"

# storage/APP_ID replaced by a symlink to a directory of the host
mkdir "$T/host-dir"
echo secret >"$T/host-dir/secret"
mv "$R/storage/$APP" "$T/storage.kept"
ln -s "$T/host-dir" "$R/storage/$APP"
out=$(run $APP -- cat /storage/secret 2>&1)
check_eq "a storage directory that is a symlink is not followed (kpa-run exits 1: not started)" "$?" 1
check_exit "... the host file was not read" 1 grep -q secret <<<"$out"
check "... and the message says why" grep -q "symlink" <<<"$out"
rm "$R/storage/$APP"
mv "$T/storage.kept" "$R/storage/$APP"
# storage/ itself a symlink
mv "$R/storage" "$T/storage-top.kept"
mkdir -p "$T/elsewhere/$APP"
ln -s "$T/elsewhere" "$R/storage"
check_exit_output "a store whose storage/ is a symlink is refused" 1 "storage/ is not a directory" \
    run $APP -- exit 0
rm "$R/storage"
mv "$T/storage-top.kept" "$R/storage"
check "the store is usable again" run $APP -- exit 0

# ---- uids are unique on the host ----
R2="$T/store2"
"$KPA_INSTALL" --root "$R2" -q "$T/other.kpa"
check "two root-managed stores give different uids" \
    test "$(cat "$R/users/$APP")" != "$(cat "$R2/users/$OTHER")"
check_eq "the registry records both" "$(find "$KPA_UID_REGISTRY" -maxdepth 1 -name '[0-9]*' | wc -l)" 2
check "... with the store and the package" grep -qx "$OTHER" "$KPA_UID_REGISTRY/$(cat "$R2/users/$OTHER")"
u2=$(cat "$R2/users/$OTHER")
"$KPA_INSTALL" --root "$R2" -q --remove --purge $OTHER
check "a purge releases its uid in the registry" test ! -e "$KPA_UID_REGISTRY/$u2"
# a store deleted without a purge leaves a stale entry, which is reused
"$KPA_INSTALL" --root "$R2" -q "$T/other.kpa"
rm -rf "$R2"
R3="$T/store3"
"$KPA_INSTALL" --root "$R3" -q "$T/other.kpa"
check_eq "the uid of a store that is gone is given out again" "$(cat "$R3/users/$OTHER")" "$u2"
chmod 777 "$KPA_UID_REGISTRY"
check_exit_output "a registry that others can write is refused" 1 "is not root's alone" \
    "$KPA_INSTALL" --root "$T/store4" -q "$T/other.kpa"
check "... and the package was not installed" test ! -e "$T/store4/apps/$OTHER"
chmod 700 "$KPA_UID_REGISTRY"

done_testing
