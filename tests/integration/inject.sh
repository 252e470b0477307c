#!/bin/bash
# Failure injection: an LD_PRELOAD shim (tests/inject/inject.c, KPA_INJECT)
# makes one system call fail with ENOSPC or ENOMEM in the middle of an
# install or a start. Each failure must be a clear error (exit 1, a message
# naming the step and the cause) that leaves nothing half-done: the store
# exactly as it was with an empty .staging; no instance cgroup, process or
# mount; an older package file that kpa-pack would have replaced intact.
. "$(dirname "$0")/lib.sh"
need_root

SHIM="$top_builddir/tests/inject/.libs/libinject.so"
KPA_RUN="$top_builddir/src/tools/kpa-run"
PROBE="$top_builddir/tests/probe/probe"
[ -f "$SHIM" ] || skip_all "tests/inject/libinject.la not built"
[ -x "$KPA_RUN" ] || skip_all "kpa-run not built"
# ASan wants its runtime first among the loaded libraries; the shim comes
# before it on purpose
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

LOG="$T/inject.log"
# inject SPEC CMD...: CMD with the shim failing SPEC (SYSCALL:ERRNO[:MATCH[:NTH]])
inject() {
    local spec=$1
    shift
    KPA_INJECT=$spec KPA_INJECT_LOG=$LOG LD_PRELOAD=$SHIM "$@"
}
# fired SYSCALL OUTPUT: the last injected run did make SYSCALL fail (a
# sandbox child that cannot reach $LOG says so on stderr)
fired() { grep -q " $1" "$LOG" 2>/dev/null || grep -q "^kpa-inject: .* $1" <<<"$2"; }
json() { sed -n '/^{/p' <<<"$1" | tail -1; }
jq_() { $PYTHON3 -c "import json,sys; d=json.loads(sys.argv[1]); print(d[sys.argv[2]])" "$1" "$2"; }

# ---- install: every failure leaves the store as it was ----
R="$T/store"
APP=org.example.inject$$
NEW=org.example.fresh$$
$MKPKG "$T/v1.kpa" --id $APP --version 1.0
$MKPKG "$T/v2.kpa" --id $APP --version 2.0 --files 3 --file-size 100000
$MKPKG "$T/new.kpa" --id $NEW
"$KPA_INSTALL" --root "$R" -q "$T/v1.kpa" || { echo "Bail out! cannot install $APP 1.0"; exit 1; }

# install_fails NAME SPEC PKG NEEDLE: installing PKG with SPEC injected
# exits 1 with NEEDLE in its message and changes nothing in the store
install_fails() {
    local name=$1 spec=$2 pkg=$3 needle=$4 before out rc
    before=$(snapshot "$R")
    rm -f "$LOG"
    out=$(inject "$spec" "$KPA_INSTALL" --root "$R" "$pkg" 2>&1)
    rc=$?
    check "$name: the failure was injected ($spec)" fired "${spec%%:*}" "$out"
    check_eq "$name: exit 1" "$rc" 1
    check "$name: the message names the step and the cause ($needle)" \
        grep -qF -- "$needle" <<<"$out"
    check_eq "$name: the store is unchanged" "$(snapshot "$R")" "$before"
    check_eq "$name: .staging is empty" "$(ls -A "$R/.staging")" ""
}
nospace="No space left on device"
install_fails "upgrade, write while staging" "write:ENOSPC:/.staging/" "$T/v2.kpa" \
    "write bin/hello: $nospace"
install_fails "upgrade, write of manifest.json" "write:ENOSPC:/manifest.json" "$T/v2.kpa" \
    "write manifest.json: $nospace"
install_fails "upgrade, mkdir of the staging directory" "mkdir:ENOSPC:/.staging/install-" \
    "$T/v2.kpa" "cannot create .staging/install-"
install_fails "upgrade, mkdir below staging" "mkdir:ENOSPC:/.staging/install-:2" "$T/v2.kpa" \
    "create directory bin: $nospace"
install_fails "upgrade, rename at publish" "renameat2:ENOSPC:/apps/$APP" "$T/v2.kpa" \
    "install $APP: cannot replace $R/apps/$APP: $nospace"
install_fails "upgrade, rename before publish" "renameat2:ENOSPC:/.staging/publish-" "$T/v2.kpa" \
    "install $APP: cannot rename .staging/install-"
install_fails "upgrade, out of memory at publish" "renameat2:ENOMEM" "$T/v2.kpa" \
    "Cannot allocate memory"
# a new package: its uid record and private storage are taken back
install_fails "new package, rename at publish" "renameat2:ENOSPC" "$T/new.kpa" \
    "install $NEW: cannot publish $R/apps/$NEW: $nospace"
install_fails "new package, mkdir of its private storage" "mkdir:ENOSPC:/storage/$NEW" \
    "$T/new.kpa" "cannot create storage/$NEW: $nospace"
install_fails "new package, write of its uid record" "write:ENOSPC:/users/" "$T/new.kpa" \
    "cannot write users/$NEW: $nospace"
install_fails "new package, rename of its uid record" "rename:ENOSPC:/users/" "$T/new.kpa" \
    "cannot write users/$NEW: $nospace"
rm -f "$LOG"
out=$(inject "mkdir:ENOSPC:/store2/.staging" "$KPA_INSTALL" --root "$T/store2" "$T/new.kpa" 2>&1)
check_eq "a new store whose .staging cannot be made: exit 1" "$?" 1
check "... the message names it and the cause" grep -qF ".staging/: $nospace" <<<"$out"
check_eq "... nothing is installed" "$(ls -A "$T/store2/apps" 2>/dev/null)" ""
check "after all that, the upgrade works" "$KPA_INSTALL" --root "$R" -q "$T/v2.kpa"
check "and the new package installs" "$KPA_INSTALL" --root "$R" -q "$T/new.kpa"
check "both verify" sh -c "'$KPA_INSTALL' --root '$R' --verify $APP && '$KPA_INSTALL' --root '$R' --verify $NEW"
out=$(inject "unlink:EIO:/.staging/install-:2" "$KPA_INSTALL" --root "$R" -q --reinstall "$T/v2.kpa" 2>&1)
check_eq "a reinstall whose old files cannot be deleted still succeeds" "$?" 0
check "... the old tree waits in .staging" test -n "$(ls -A "$R/.staging")"
check "the next install" "$KPA_INSTALL" --root "$R" -q --reinstall "$T/v2.kpa"
check_eq "... empties .staging" "$(ls -A "$R/.staging")" ""
before=$(snapshot "$R")
out=$(inject "rename:ENOSPC:/.staging/remove-" "$KPA_INSTALL" --root "$R" --remove $APP 2>&1)
check_eq "remove, rename fails: exit 1" "$?" 1
check "remove, rename fails: the message says why" grep -qF "remove $APP: rename" <<<"$out"
check_eq "remove, rename fails: the store is unchanged" "$(snapshot "$R")" "$before"
# killed right after the one rename that unpublishes it: removed, whole
inject "rename:KILLAFTER:/.staging/remove-" "$KPA_INSTALL" --root "$R" --remove $APP >/dev/null 2>&1
check_eq "remove, killed after its rename: it was killed" "$?" 137
check "... the package is gone, not an empty apps/$APP" test ! -e "$R/apps/$APP"
check_eq "... and not listed" "$("$KPA_INSTALL" --root "$R" --list | grep -c "^$APP ")" 0
"$KPA_INSTALL" --root "$R" -q "$T/v2.kpa" # a writer: cleans .staging, installs it again
check_eq "... the next writer leaves nothing in .staging" "$(ls -A "$R/.staging")" ""
check "... and the package installs again" "$KPA_INSTALL" --root "$R" --verify -q $APP
out=$(inject "unlink:EIO:/users/$NEW" "$KPA_INSTALL" --root "$R" --remove --purge $NEW 2>&1)
check_eq "purge, the uid record cannot be removed: exit 1" "$?" 1
check "purge, the uid record cannot be removed: the message says why" \
    grep -qF "purge $NEW: remove $R/users/$NEW: Input/output error" <<<"$out"
check "a second purge finishes the job" "$KPA_INSTALL" --root "$R" -q --remove --purge $NEW
check "... the uid is released" test ! -e "$R/users/$NEW"

# ---- pack: a failure leaves the older output as it was, and no temporary ----
O="$T/out"
mkdir -p "$O"
"$KPA_PACK" -q -o "$O/app.kpa" --manifest "$R/apps/$APP/manifest.json" "$R/apps/$APP" ||
    { echo "Bail out! cannot pack"; exit 1; }
pack_fails() { # pack_fails NAME SPEC NEEDLE
    local name=$1 spec=$2 needle=$3 before out rc
    before=$(cd "$O" && ls -A && sha256sum app.kpa)
    rm -f "$LOG"
    out=$(inject "$spec" "$KPA_PACK" -q -o "$O/app.kpa" --compress none \
        --manifest "$R/apps/$APP/manifest.json" "$R/apps/$APP" 2>&1)
    rc=$?
    check "$name: the failure was injected ($spec)" fired "${spec%%:*}" "$out"
    check_eq "$name: exit 1" "$rc" 1
    check "$name: the message names the cause ($needle)" grep -qF -- "$needle" <<<"$out"
    check_eq "$name: the older output is intact, nothing else is left" \
        "$(cd "$O" && ls -A && sha256sum app.kpa)" "$before"
}
pack_fails "pack, write" "write:ENOSPC:$O/" "$O/app.kpa: Write error: $nospace"
pack_fails "pack, a later write" "write:ENOSPC:$O/:3" "$O/app.kpa: Write error: $nospace"
pack_fails "pack, rename into place" "rename:ENOSPC:$O/" "$O/app.kpa: $nospace"

# ---- start: every failure leaves no cgroup, process or mount ----
PAPP=org.example.injprobe$$
$MKPKG "$T/probe.kpa" --id $PAPP --bin "$PROBE" --set 'runConfigurations[0].args=[]'
"$KPA_INSTALL" --root "$R" -q "$T/probe.kpa" || { echo "Bail out! cannot install the probe"; exit 1; }

# the instance cgroups of PAPP below our own cgroup, in every hierarchy
cg_dirs() { app_cgroups "$PAPP"; }
leftover_instances() {
    local d
    for d in $(cg_dirs); do find "$d" -mindepth 1 -maxdepth 1 -type d; done
}
cleanup_add 'for d in $(cg_dirs); do find "$d" -mindepth 1 -maxdepth 1 -type d -exec rmdir {} \; ; rmdir "$d" 2>/dev/null; done'

check "the probe starts without injection" "$KPA_RUN" --root "$R" $PAPP -- exit 0

# start_fails NAME SPEC ERRNO NEEDLE [OPTION...]: a start (with OPTIONs) with
# SPEC injected exits 1, names NEEDLE, ends Failed with exit reason ERRNO
# and leaves nothing
start_fails() {
    local name=$1 spec=$2 errno=$3 needle=$4 mounts out rc j
    shift 4
    mounts=$(wc -l </proc/self/mountinfo)
    rm -f "$LOG"
    out=$(inject "$spec" "$KPA_RUN" --root "$R" --json "$@" $PAPP -- exit 0 2>&1)
    rc=$?
    check "$name: the failure was injected ($spec)" fired "${spec%%:*}" "$out"
    check_eq "$name: exit 1" "$rc" 1
    check "$name: the message names the step and the cause ($needle)" \
        grep -qF -- "$needle" <<<"$out"
    j=$(json "$out")
    check_eq "$name: --json says Failed, exit reason $errno" \
        "$(jq_ "$j" state) $(jq_ "$j" exitReason)" "Failed $errno"
    check_eq "$name: no instance cgroup is left" "$(leftover_instances)" ""
    check_eq "$name: no process is left" "$(pgrep -f -- "$PAPP -- exit 0" | paste -sd' ' -)" ""
    check_eq "$name: the host's mount table is unchanged" "$(wc -l </proc/self/mountinfo)" "$mounts"
}
nomem="Cannot allocate memory"
start_fails "cgroup mkdir" "mkdir:ENOSPC:/kpa.slice/$PAPP/" 28 "cannot create: $nospace"
start_fails "cgroup mkdir of APP" "mkdir:ENOSPC:/kpa.slice/$PAPP" 28 "cannot create: $nospace"
start_fails "a cgroup limit" "write:ENOSPC:/pids.max" 28 "cannot write pids.max: $nospace" \
    --pids 20
# the child joins by writing "0" into "tasks" on v1 and hybrid hosts (the
# pids hierarchy is v1 there); on pure v2 it is cloned into its cgroup
# (CLONE_INTO_CGROUP), made before the clone, which a failed clone removes
if grep -q '^[0-9]*:pids:' /proc/self/cgroup; then
    start_fails "joining the cgroup" "write:ENOSPC:/tasks" 28 \
        "failed at step \"join the cgroup\": $nospace"
else
    start_fails "clone3 into the cgroup" "clone3:EBUSY" 16 \
        "clone into new namespaces: Device or resource busy"
fi
start_fails "clone3" "clone3:ENOMEM" 12 "clone into new namespaces: $nomem"
start_fails "the new root, made by the parent" "fsmount:ENOMEM" 12 \
    "the new root: cannot make a tmpfs: $nomem"
start_fails "the new /dev, made by the parent" "fsmount:ENOMEM::2" 12 \
    "the new /dev: cannot make a tmpfs: $nomem"
start_fails "the new root sent to the child" "sendmsg:ENOMEM" 12 \
    "cannot send the new root to the child: $nomem"
start_fails "the new root, received by the child" "recvmsg:ENOMEM" 12 \
    "failed at step \"create the private root\": $nomem"
start_fails "the setup message to the child (cgroup made)" "sendmsg:ENOMEM::2" 12 \
    "cannot send the setup to the child: $nomem"
start_fails "the setup message, in the child" "recvmsg:ENOMEM::2" 12 \
    "failed at step \"join the cgroup\": $nomem"
start_fails "the first mount, in the child" "mount:ENOMEM" 12 \
    "failed at step \"make mounts private\": $nomem"
start_fails "a mount of /dev, in the child, after many" "mount:ENOMEM:/dev/pts" 12 \
    "failed at step \"create /dev\": $nomem"
start_fails "the mount of /proc after pivot_root" "mount:ENOMEM:/proc" 12 \
    "failed at step \"mount /proc, /tmp, /run and /var\": $nomem"
start_fails "the fork of the application, in the init" "clone:ENOMEM::2" 12 \
    "failed at step \"fork the application\": $nomem"
# a group that cannot be removed is left to the next start's collection
out=$(inject "unlink:EBUSY:/kpa.slice/$PAPP/" "$KPA_RUN" --root "$R" $PAPP -- exit 0 2>&1)
check_eq "an instance cgroup that cannot be removed: the run itself succeeds" "$?" 0
check "... its group is left" test -n "$(leftover_instances)"
check "... and kpa-run says so" grep -q "warning: .*cgroup could not be removed" <<<"$out"
sleep 1.1
check "the probe still starts" "$KPA_RUN" --root "$R" $PAPP -- exit 0
check_eq "and leaves no cgroup" "$(leftover_instances)" ""
done_testing
