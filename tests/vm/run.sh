#!/bin/bash
# tests/vm/run.sh: run kpa's tests in a pure cgroup v2 guest (issue 14).
#
# The guest is user-mode-linux (Debian's user-mode-linux package, a 6.1
# kernel that runs as an ordinary process: no KVM, no root on the host
# needed to run it) whose root is the host's / shared read-only over hostfs;
# tests/vm/init makes a pure cgroup v2 machine of it (cgroup2 with
# nsdelegate, cpu memory pids io enabled, tmpfs on /tmp /run /var/tmp /root,
# tmpfs-backed overlays on /etc /var /usr, a dummy eth0) and runs `make
# check` in the built tree, which it mounts read-write. Build on the host
# first (make check-vm does).
#
#   bash tests/vm/run.sh [options] [TEST...]
#     --builddir DIR   the configured, built tree (default: $top_builddir, or .)
#     --mode MODE      plain (default): init runs the tests;
#                      systemd: the host's systemd boots as PID 1 and a oneshot
#                      service of kpa-test.target runs them (tests/vm/systemd.sh)
#     --command CMD    run the shell command CMD in the guest instead of make check
#     --timeout SEC    end the guest after SEC seconds (default 1800)
#     --mem SIZE       the guest's memory (default 1G)
#     --out DIR        results (default BUILDDIR/vm-check/MODE)
#     --quiet          no console on stdout (it is in OUT/console.log either way)
#   TEST...            what make check runs (TESTS=...); "all" or none: all of it
#
# Results: OUT/console.log (the guest's console), OUT/log (what the tests
# printed), OUT/boot (kernel, controllers, boot and test times), and the
# tests' own .log/.trs files in the build tree, as make check leaves them.
# Exit status: that of the tests (make check) in the guest; 2 when the guest
# gave none (it could not boot, set up, or ran out of time; the reason is
# printed).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
builddir=${top_builddir:-.}
mode=plain
command=
timeout=1800
mem=1G
out=
quiet=
die() { echo "tests/vm/run.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --builddir) builddir=${2:?}; shift 2 ;;
    --mode) mode=${2:?}; shift 2 ;;
    --command) command=${2:?}; shift 2 ;;
    --timeout) timeout=${2:?}; shift 2 ;;
    --mem) mem=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --quiet) quiet=1; shift ;;
    -h | --help) sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
    esac
done
tests=${*:-all}
case $mode in plain | systemd) ;; *) die "--mode is plain or systemd, not $mode" ;; esac
[[ $timeout =~ ^[0-9]+$ ]] || die "--timeout takes seconds, not $timeout"
builddir=$(cd "$builddir" && pwd) || die "no build tree $builddir"
{ [ -f "$builddir/Makefile" ] && [ -f "$builddir/config.status" ]; } ||
    die "$builddir is not a configured build tree (configure and make first)"
out=${out:-$builddir/vm-check/$mode}
srcdir=$(sed -n 's/^abs_top_srcdir = //p' "$builddir/Makefile" | head -1)
srcdir=$(cd "${srcdir:-.}" && pwd) || die "no source tree for $builddir"
# the paths go on the guest's kernel command line and to hostfs
for p in "$builddir" "$srcdir" "$here" "$out"; do
    [[ $p =~ ^[A-Za-z0-9_./+-]+$ ]] || die "the path $p has characters the guest's kernel command line cannot carry"
done

# user-mode-linux: Debian's package, installed when missing (as root)
uml=$(command -v linux.uml || command -v linux) || uml=
if [ -z "$uml" ]; then
    [ "$(id -u)" -eq 0 ] || die "user-mode-linux is not installed: apt-get install user-mode-linux (as root)"
    echo "tests/vm/run.sh: installing user-mode-linux" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q user-mode-linux >&2 ||
        die "cannot install user-mode-linux (apt-get install user-mode-linux)"
    uml=$(command -v linux.uml) || die "user-mode-linux installed no linux.uml"
fi

# the guest runs this machine's programs: without ip(8) its loopback stays
# down, and tests that use 127.0.0.1 wait for ever (a minbase Debian has none)
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] ||
    die "ip(8) is missing: the guest needs it for its network (apt-get install iproute2)"

mkdir -p "$out" || die "cannot create $out"
rm -rf "${out:?}"/uml
rm -f "$out"/{config,status,error,log,boot,journal,console.log}
{
    printf 'VM_MODE=%q\n' "$mode"
    printf 'VM_BUILDDIR=%q\n' "$builddir"
    printf 'VM_SRCDIR=%q\n' "$srcdir"
    printf 'VM_SCRIPTS=%q\n' "$here"
    printf 'VM_TESTS=%q\n' "$tests"
    printf 'VM_COMMAND=%q\n' "$command"
    printf 'PYTHON3=%q\n' "$(sed -n 's/^PYTHON3 = //p' "$builddir/Makefile" | head -1)"
} >"$out/config"

guest=
tailer=
stop_guest() {
    # the guest is one process group (setsid below): end it, and only it
    if [ -n "$guest" ] && kill -0 "$guest" 2>/dev/null; then
        kill -TERM -- "-$guest" 2>/dev/null
        for _ in 1 2 3 4 5; do kill -0 "$guest" 2>/dev/null || break; sleep 1; done
        kill -KILL -- "-$guest" 2>/dev/null
    fi
    [ -n "$tailer" ] && kill "$tailer" 2>/dev/null
    guest='' tailer=''
}
trap stop_guest EXIT
trap 'stop_guest; exit 2' INT TERM HUP

# (con0=null,fd:1: no input, output to our stdout)
# shellcheck disable=SC2054
cmdline=(mem="$mem" rootfstype=hostfs rootflags=/ ro init="$here/init" quiet
    con=null con0=null,fd:1 ssl=null uml_dir="$out/uml" umid=kpa-vm
    kpa_vm_dir="$out")
started=$SECONDS
# UML keeps the guest's memory in a file in $TMPDIR: tmpfs if we can
if [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
mkdir -p "$out/uml"
setsid "$uml" "${cmdline[@]}" </dev/null >"$out/console.log" 2>&1 &
guest=$!
# (setsid runs it as the leader of a new process group, whose id is its pid)
[ "$(ps -o pgid= -p "$guest" | tr -d ' ')" = "$guest" ] || sleep 0.2
if [ -z "$quiet" ]; then
    tail -n +1 -f --pid="$guest" "$out/console.log" &
    tailer=$!
fi
while kill -0 "$guest" 2>/dev/null; do
    if [ $((SECONDS - started)) -ge "$timeout" ]; then
        echo "tests/vm/run.sh: the guest ran out of time (--timeout $timeout): ended" >&2
        stop_guest
        break
    fi
    sleep 1
done
wait "$guest" 2>/dev/null
[ -n "$tailer" ] && wait "$tailer" 2>/dev/null
guest='' tailer=''
rm -rf "${out:?}"/uml
echo "guest wall time: $((SECONDS - started)) s" >>"$out/boot"

if [ -f "$out/error" ]; then
    echo "tests/vm/run.sh: $(cat "$out/error")" >&2
    exit 2
fi
if [ ! -f "$out/status" ]; then
    echo "tests/vm/run.sh: the guest reported no result; its console ($out/console.log) ends:" >&2
    tail -n 20 "$out/console.log" >&2
    exit 2
fi
status=$(cat "$out/status")
echo "tests/vm/run.sh: $mode guest: exit status $status; $(paste -sd';' "$out/boot")"
exit "$status"
