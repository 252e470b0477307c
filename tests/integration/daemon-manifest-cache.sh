#!/bin/bash
# kpa-execd's cache of installed manifests (src/lib/manifest-cache.c), from
# outside: a start is served from the cache once the package's files are
# old enough (the daemon's debug log says which), and the cache never
# serves a stale manifest. Each version's run configuration makes the probe
# exit with its own code, so the code of a start through the daemon names
# the manifest it was planned from: after an upgrade through kpa-install
# (which tells the daemon), after a manifest.json replaced behind the
# daemon's back (a new file, no notice), after one rewritten in place (the
# same inode and size) and after a removal, the next start sees the change.
. "$(dirname "$0")/lib.sh"
need_root

execd_paths
export KPA_EXECD_SOCKET="$S"
APP=org.example.mcache$$
for v in 1 2; do
    $MKPKG "$T/v$v.kpa" --id $APP --version "$v.0" --bin "$PROBE" \
        --set "runConfigurations[0].args=[\"exit\", \"1$v\"]"
done
inst() { "$KPA_INSTALL" --root "$R" "$@"; }
run() { "$KPA_RUN" --socket "$S" "$@"; }
inst -q "$T/v1.kpa" || { echo "Bail out! cannot install the probe"; exit 1; }
leftovers() {
    local d
    execd_stop
    for d in $(app_cgroups $APP); do
        find "$d" -mindepth 1 -maxdepth 1 -type d -exec rmdir {} \;
        rmdir "$d"
    done 2>/dev/null
}
cleanup_add leftovers
: >"$T/execd.log"
execd_start --no-autorun --on-exit stop --log-level debug
_result $? "kpa-execd starts"

# code: start APP through the daemon, wait for its end, print its exit code
code() {
    local tok
    tok=$(run --detach $APP) || { echo "start-failed"; return; }
    run --wait "$tok" >/dev/null 2>&1
    echo $?
}
served() { grep -c "starting $APP/(primary) (manifest from the cache)" "$T/execd.log"; }
# cached: start until a start is served from the cache (the package's files
# are cached once they are RACY_MS old): 0, and the last start's code in
# $last (called as itself, not through check, which runs it in a subshell)
last=
cached() {
    local before i
    before=$(served)
    for i in $(seq 100); do
        last=$(code)
        [ "$(served)" -gt "$before" ] && return 0
        sleep 0.05
    done
    return 1
}
# set_args JSON FILE: FILE, a copy of the installed manifest with other args
set_args() {
    /usr/bin/python3 - "$R/apps/$APP/manifest.json" "$1" "$2" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["runConfigurations"][0]["args"] = json.loads(sys.argv[2])
open(sys.argv[3], "w").write(json.dumps(m, indent=2))
PY
}

check_eq "version 1.0 runs (exit 11)" "$(code)" 11
cached
_result $? "a later start of it is served from the cache"
check_eq "... and runs 1.0 (exit 11)" "$last" 11

# ---- an upgrade through kpa-install, which tells the daemon ----
check "the upgrade to 2.0 goes through" inst -q "$T/v2.kpa"
check_eq "the next start runs 2.0 (exit 12)" "$(code)" 12
cached
_result $? "2.0 is served from the cache in turn"
check_eq "... and runs 2.0 (exit 12)" "$last" 12

# ---- manifest.json replaced behind the daemon's back: a new file ----
set_args '["exit", "13"]' "$T/m13.json"
check "the manifest is replaced by a new file, without a notice" \
    mv -f "$T/m13.json" "$R/apps/$APP/manifest.json"
check_eq "the next start sees the new manifest (exit 13)" "$(code)" 13
cached
_result $? "the new manifest is served from the cache in turn"
check_eq "... exit 13" "$last" 13

# ---- rewritten in place: the same inode and size, other content ----
ino=$(stat -c %i "$R/apps/$APP/manifest.json")
size=$(stat -c %s "$R/apps/$APP/manifest.json")
set_args '["exit", "14"]' "$T/m14.json"
cat "$T/m14.json" >"$R/apps/$APP/manifest.json"
check_eq "the manifest is rewritten in place (same inode, same size)" \
    "$(stat -c %i:%s "$R/apps/$APP/manifest.json")" "$ino:$size"
check_eq "the next start sees the rewritten manifest (exit 14)" "$(code)" 14

# ---- a removal ----
check "the package is removed" inst -q --remove $APP
out=$(run --detach $APP 2>&1)
check_exit_output "a start of the removed package fails, naming it" 1 "$APP is not installed" \
    run --detach $APP
check_eq "(and prints no token)" "$(grep -c '^[0-9a-f]\{32\}$' <<<"$out")" 0
check "the package is installed again (1.0)" inst -q "$T/v1.kpa"
check_eq "the next start runs 1.0 again (exit 11)" "$(code)" 11

execd_stop
done_testing
