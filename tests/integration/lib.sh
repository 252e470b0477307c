# shellcheck shell=bash
# lib.sh: shared helpers of the integration tests (sourced, TAP output).
#   check "name" CMD...        passes when CMD exits 0
#   check_fails "name" CMD...  passes when CMD fails: exits 1 to 125
#   check_exit "name" CODE CMD...          passes when CMD exits CODE
#   check_output "name" "needle" CMD...   passes when CMD fails (1 to 125)
#                                          and its stderr+stdout contain NEEDLE
#   check_exit_output "name" CODE "needle" CMD...   both: exit CODE and NEEDLE
#   skip "name" "reason"       a check that cannot run here: "ok N - name # SKIP reason"
#   done_testing               prints the plan; the script's exit code
# An exit of 126 or more is never a failure that check_fails or check_output
# accepts: 126 and 127 are the shell's "cannot execute" and "command not
# found", 128+N a death by signal N (a crash). A test that expects one of
# those says which, with check_exit.
# Every test gets its own scratch directory $T, removed on exit.
set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${PYTHON3:=/usr/bin/python3}"
export top_srcdir top_builddir PYTHON3

# shellcheck disable=SC2034 # used by the scripts that source this file
KPA_PACK="$top_builddir/src/tools/kpa-pack"
# shellcheck disable=SC2034
KPA_INSTALL="$top_builddir/src/tools/kpa-install"
# shellcheck disable=SC2034
MKPKG="$PYTHON3 $top_srcdir/tests/integration/mkpkg.py"
unset KPA_ROOT SOURCE_DATE_EPOCH

T=$(mktemp -d /tmp/kpa-test.XXXXXX)
# root's installs record their uids in a host-wide registry (uid-registry.c);
# each test keeps its own, so that the host's is left alone
export KPA_UID_REGISTRY="$T/uid-registry"
_tap_n=0
_tap_failed=0
_cleanups=()
cleanup_add() { _cleanups+=("$*"); }
_run_cleanups() {
    local i f
    for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
        eval "${_cleanups[$i]}" || true
    done
    # a sized private storage's file system is kept mounted after its last
    # instance by a kpa-keep process (storage-keep.c): end those of the
    # images in the test's stores, which the test started
    local k
    for k in $(storage_keepers "$T"); do
        kill "$k" 2>/dev/null
        for _ in $(seq 100); do [ -d "/proc/$k" ] || break; sleep 0.02; done
    done
    # the loop devices of sized private storage (storage-image.c) in the
    # test's stores stay attached until a purge: detach what is left
    for f in /sys/block/loop*/loop/backing_file; do
        if [[ $(cat "$f" 2>/dev/null) == "$T"/* ]]; then
            f=${f#/sys/block/}
            losetup -d "/dev/${f%%/*}" 2>/dev/null || true
        fi
    done
    # the groups kpa.slice/APP that kpa keeps for the next start, of the
    # applications installed in the test's stores (or removed from them, their
    # private storage kept), where they are empty
    local a d
    for a in $(find "$T" -mindepth 3 -maxdepth 4 \( -path '*/apps/*.*' -o -path '*/storage/*.*' \) \
        -type d -printf '%f\n' 2>/dev/null | sort -u); do
        for d in $(app_cgroups "$a"); do rmdir "$d" 2>/dev/null; done
    done
    rm -rf "$T"
}
trap _run_cleanups EXIT

_result() { # _result STATUS NAME
    _tap_n=$((_tap_n + 1))
    if [ "$1" -eq 0 ]; then
        echo "ok $_tap_n - $2"
    else
        echo "not ok $_tap_n - $2"
        _tap_failed=$((_tap_failed + 1))
    fi
}

check() {
    local name=$1
    shift
    local out
    out=$("$@" 2>&1)
    local rc=$?
    _result $rc "$name"
    [ $rc -eq 0 ] || { echo "$out" | sed 's/^/#   /' | head -20; echo "#   (exit $rc: $*)"; }
    return $rc
}

# _not_a_failure RC: why exit code RC is not the failure a check expects
# (prints nothing, and returns 1, when RC is an ordinary failure: 1 to 125)
_not_a_failure() {
    case $1 in
    0) echo "it succeeded (exit 0)" ;;
    126) echo "exit 126: a command that could not be executed, not a failure" ;;
    127) echo "exit 127: a command that was not found, not a failure" ;;
    *)
        [ "$1" -ge 128 ] || return 1
        echo "exit $1: killed by signal $(($1 - 128)) (SIG$(kill -l $(($1 - 128)) 2>/dev/null)), not a failure"
        ;;
    esac
}

# check_fails NAME CMD...: CMD must fail, with an exit code from 1 to 125.
check_fails() {
    local name=$1
    shift
    local out why
    out=$("$@" 2>&1)
    local rc=$?
    if ! why=$(_not_a_failure $rc); then _result 0 "$name"; else
        _result 1 "$name"
        echo "$out" | sed 's/^/#   /' | head -20
        echo "#   (expected a failure; $why: $*)"
    fi
}

# check_exit NAME CODE CMD...: CMD must exit with exactly CODE.
check_exit() {
    local name=$1 code=$2
    shift 2
    local out
    out=$("$@" 2>&1)
    local rc=$?
    if [ $rc -eq "$code" ]; then _result 0 "$name"; else
        _result 1 "$name"
        echo "$out" | sed 's/^/#   /' | head -20
        echo "#   (expected exit $code, got exit $rc: $*)"
    fi
}

# check_output NAME NEEDLE CMD...: CMD must fail (exit 1 to 125), and its
# output must contain NEEDLE.
check_output() {
    local name=$1 needle=$2
    shift 2
    local out why
    out=$("$@" 2>&1)
    local rc=$?
    if ! why=$(_not_a_failure $rc) && [[ "$out" == *"$needle"* ]]; then _result 0 "$name"; else
        _result 1 "$name"
        echo "$out" | sed 's/^/#   /' | head -20
        echo "#   (exit $rc; wanted a failure mentioning '$needle'${why:+; $why})"
    fi
}

# check_exit_output NAME CODE NEEDLE CMD...: CMD must exit with exactly
# CODE, and its output must contain NEEDLE.
check_exit_output() {
    local name=$1 code=$2 needle=$3
    shift 3
    local out
    out=$("$@" 2>&1)
    local rc=$?
    if [ $rc -eq "$code" ] && [[ "$out" == *"$needle"* ]]; then _result 0 "$name"; else
        _result 1 "$name"
        echo "$out" | sed 's/^/#   /' | head -20
        echo "#   (exit $rc; wanted exit $code and a message mentioning '$needle')"
    fi
}

# skip NAME REASON: a check that cannot run here, said as such in TAP
skip() {
    _tap_n=$((_tap_n + 1))
    echo "ok $_tap_n - $1 # SKIP $2"
}

# check_eq NAME GOT EXPECTED
check_eq() {
    if [ "$2" = "$3" ]; then _result 0 "$1"; else
        _result 1 "$1"
        echo "#   got:      $2" | head -20
        echo "#   expected: $3" | head -20
    fi
}

# proc_ref PID: "PID STARTTIME", which names that one process even once
# its pid has been reused (pid_max may be as low as 32768, and a busy test
# run churns through pids)
# (fails, printing nothing, when PID is not a running process's pid)
proc_ref() {
    local stat stat_fields
    [[ ${1:-} =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    read -ra stat_fields <<<"${stat##*) }"
    [ "${#stat_fields[@]}" -gt 19 ] || return 1
    echo "$1 ${stat_fields[19]}"
}

# proc_sid PID: the session id of process PID (nothing when there is none)
proc_sid() {
    local stat stat_fields
    [[ ${1:-} =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    read -ra stat_fields <<<"${stat##*) }"
    echo "${stat_fields[3]:-}"
}

# proc_alive REF: the process REF names runs (is neither gone nor a zombie);
# if so, it prints what it is doing, for the log of a check_fails
proc_alive() {
    local pid=${1% *} start=${1#* } stat stat_fields
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    read -ra stat_fields <<<"${stat##*) }"
    [ "${#stat_fields[@]}" -gt 19 ] && [ "${stat_fields[19]}" = "$start" ] && [ "${stat_fields[0]}" != Z ] || return 1
    ps -o pid=,ppid=,stat=,wchan:32=,etimes=,args= -p "$pid"
}

# reachable PATH: the path of a copy of PATH (a program or script of the
# build or source tree) that every uid can run. The checkout may lie where
# only root can go (a clone in /root, mode 0700 on Debian), so whatever a
# test runs as another uid runs from here: $T/reach, with $T made
# world-searchable. A libtool wrapper script becomes the real binary, the
# uninstalled libkpa beside it, and a two-line script that points the
# loader there.
reachable() {
    local src=$1 name dest
    name=$(basename "$src")
    dest="$T/reach/$name"
    chmod 755 "$T"
    mkdir -p "$T/reach"
    if [ -f "$(dirname "$src")/.libs/$name" ] && grep -q 'libtool' "$src" 2>/dev/null; then
        mkdir -p "$T/reach/.libs"
        cp "$(dirname "$src")/.libs/$name" "$T/reach/.libs/$name"
        cp -P "$top_builddir"/src/lib/.libs/libkpa.so* "$T/reach/.libs/"
        printf '#!/bin/sh\nLD_LIBRARY_PATH=%q exec %q "$@"\n' \
            "$T/reach/.libs" "$T/reach/.libs/$name" >"$dest"
    else
        cp "$src" "$dest"
    fi
    chmod -R a+rX "$T/reach"
    chmod 755 "$dest"
    echo "$dest"
}

# The kpa-execd of a test (on $S, the store $R, the state directory $STATE).
# field JSON KEY[.KEY...]: one value of a JSON object, a list's by its
# index ("" when absent)
field() {
    "$PYTHON3" -c 'import json,sys
v = json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v.get(k)
print("" if v is None else v)' "$1" "$2"
}

# execd_paths: what a test of kpa-execd uses, or a skip when it is not
# built: KPA_RUN, EXECD and PROBE, and below $T the store R, the socket S
# and the state directory STATE (which execd_start takes).
# shellcheck disable=SC2034 # PROBE: for the tests that call this
execd_paths() {
    KPA_RUN="$top_builddir/src/tools/kpa-run"
    EXECD="$top_builddir/src/daemon/kpa-execd"
    PROBE="$top_builddir/tests/probe/probe"
    [ -x "$KPA_RUN" ] || skip_all "kpa-run not built"
    [ -x "$EXECD" ] || skip_all "kpa-execd not built"
    R="$T/store"
    S="$T/execd.sock"
    STATE="$T/state"
}
# execd_start ARGS...: "$EXECD" --foreground with those and ARGS, in the
# background, its stderr appended to $T/execd.log and its pid in $dpid;
# waits until it answers (kpa-run --list), or prints its log and returns 1.
# (Called in the test's shell, never in $(...): the daemon keeps the
# output of $(...) open.) execd_stop: SIGTERM, and wait for it. The first
# start adds the cleanup: execd_stop, then a SIGKILL of every init that the
# daemon's records still name (by pid, never by name).
dpid=
execd_start() {
    "$EXECD" --foreground --socket "$S" --root "$R" --state-dir "$STATE" "$@" \
        </dev/null >/dev/null 2>>"$T/execd.log" &
    dpid=$!
    if [ -z "${_execd_cleanup:-}" ]; then
        _execd_cleanup=1
        cleanup_add 'execd_stop; for f in "$STATE"/instances/*.json; do [ -f "$f" ] && p=$(sed -n "s/.*\"pid\": *\([0-9]*\).*/\1/p" "$f") && [ "${p:-0}" -gt 0 ] && kill -9 "$p"; done 2>/dev/null'
    fi
    local i
    for i in $(seq 200); do
        [ -S "$S" ] && "$top_builddir/src/tools/kpa-run" --socket "$S" --list >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    cat "$T/execd.log"
    return 1
}
execd_stop() {
    [ -n "$dpid" ] || return 0
    kill -TERM "$dpid" 2>/dev/null
    wait "$dpid" 2>/dev/null
    dpid=
}

# own_cgroup_dirs: our own cgroup's directory in every hierarchy kpa uses:
# v1 controllers (devices too: OCI device rules), and the v2 hierarchy (the 0:: line: all of it on a pure
# v2 host, the empty "unified" one of a hybrid host)
own_cgroup_dirs() {
    local ctrl path mnt
    while IFS=: read -r _ ctrl path; do
        case $ctrl in
        memory | pids | cpu,cpuacct | cpu | devices) mnt=/sys/fs/cgroup/${ctrl%%,*} ;;
        "") mnt=/sys/fs/cgroup; [ -d /sys/fs/cgroup/unified ] && mnt=/sys/fs/cgroup/unified ;;
        *) continue ;;
        esac
        echo "$mnt$path"
    done </proc/self/cgroup
}
# app_cgroups APP...: the cgroup directories of these applications below
# our own cgroup, in every hierarchy (own_cgroup_dirs)
app_cgroups() {
    local d a
    while read -r d; do
        for a in "$@"; do
            [ -d "$d/kpa.slice/$a" ] && echo "$d/kpa.slice/$a"
        done
    done < <(own_cgroup_dirs)
    return 0
}

# storage_keepers DIR: the pids of the kpa-keep processes (storage-keep.c)
# that keep the file system of an image below DIR mounted: the owners of a
# POSIX read lock on it (/proc/locks), whose fd 4 is the image.
storage_keepers() {
    local pid img
    while read -r pid; do
        img=$(readlink "/proc/$pid/fd/4" 2>/dev/null) || continue
        [[ $img == "$1"/* && $(cat "/proc/$pid/comm" 2>/dev/null) == kpa-keep ]] && echo "$pid"
    done < <(awk '$2 == "POSIX" && $4 == "READ" {print $5}' /proc/locks | sort -u)
    return 0
}

# storage_owner STORE APP FILE: the uid that owns FILE in APP's private
# storage, read from outside: from its file system image when it has one
# (debugfs reads it without a mount), else from the directory. The file
# system of an instance that just ended may still be mounted for a moment
# (its mount namespace goes away after the instance; a 1-CPU guest showed
# it), with its metadata in the journal: wait until its loop device has no
# ext4 mounted on it.
storage_owner() {
    local img="$1/images/$2.img" f dev _
    if [ -f "$img" ]; then
        # the file system stays mounted after the instance (storage-keep.c)
        "$KPA_INSTALL" --root "$1" --release-storage "$2" >&2
        for f in /sys/block/loop*/loop/backing_file; do
            [ "$(cat "$f" 2>/dev/null)" = "$img" ] || continue
            f=${f#/sys/block/}
            dev=${f%%/*}
        done
        for _ in $(seq 200); do
            if [ -z "${dev:-}" ] || [ ! -e "/sys/fs/ext4/$dev" ]; then break; fi
            sleep 0.05
        done
        debugfs -R "stat /$3" "$img" 2>/dev/null | sed -n 's/^User: *\([0-9]*\).*/\1/p' | head -1
    else
        stat -c %u "$1/storage/$2/$3"
    fi
}

skip_all() { echo "1..0 # SKIP $*"; exit 0; }
need_root() { [ "$(id -u)" -eq 0 ] || skip_all "needs root"; }

done_testing() {
    echo "1..$_tap_n"
    [ $_tap_failed -eq 0 ]
}

# snapshot DIR: a listing of every path under DIR with type, mode, owner, size
# and content hash, to prove that a refused operation changed nothing.
snapshot() {
    # (not the content of a private storage image: its file system may be
    # kept mounted after its instance, storage-keep.c, and the kernel then
    # writes its journal when it will)
    (cd "$1" && find . -printf '%p %y %m %U:%G %s\n' | LC_ALL=C sort &&
        find . -type f ! -path './images/*.img' -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}
