#!/bin/bash
# quickstart.sh: everything a fresh Debian 12 machine needs, as root.
#   bash pkg/quickstart.sh demo    install dependencies, build, run the demo
#   bash pkg/quickstart.sh check   install dependencies, build, run all tests
#                                  and the quality gates (tests/gates.sh)
# The build goes to ./build (out of tree); nothing is installed system-wide
# except Debian's packages.
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:-demo}

DEPS="build-essential autoconf automake libtool pkg-config
      libarchive-dev libjson-c-dev libcap-dev libcgroup-dev nettle-dev libseccomp-dev libsystemd-dev
      zstd xz-utils libarchive-tools python3 python3-jsonschema mandoc e2fsprogs"
# the quality gates of check (tests/gates.sh); the Debian packaging and
# bash completion tests (tests/integration/deb.sh, completion.sh); systemd-analyze
# for the units (daemon.sh); pgrep and ps, with which the tests find the
# processes of an instance (a minbase Debian has no procps); user-mode-linux
# and iproute2 for the VM lanes (make check-vm: pure cgroup v2, and systemd
# as PID 1; the guest runs this machine's ip to bring its loopback up); umoci,
# skopeo and podman, which take kpa's OCI images (tests/integration/oci-image.sh);
# lighttpd and curl, a real server on declared sockets and its client
# (tests/integration/sockets.sh); the engines that drive kpa-oci and a static
# busybox for its bundles (tests/integration/oci-runtime.sh, bench/oci.sh)
[ "$action" = check ] && DEPS="$DEPS valgrind cppcheck clang-14 clang-tidy-14
      libclang-rt-14-dev bear shellcheck gcovr
      debhelper fakeroot lintian bash-completion systemd procps user-mode-linux iproute2
      umoci skopeo podman lighttpd curl containerd runc containernetworking-plugins busybox-static"

install_deps() {
    # shellcheck disable=SC2086
    if dpkg-query -W -f='${Status}\n' $DEPS 2>/dev/null | grep -qv 'install ok installed' ||
        [ "$(dpkg-query -W -f='${Status}\n' $DEPS 2>/dev/null | wc -l)" -ne "$(echo $DEPS | wc -w)" ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $DEPS >/dev/null
    fi
}

build() {
    autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
    mkdir -p build
    cd build
    [ -f Makefile ] || ../configure -q
    make -j"$(nproc)" >/dev/null
}

install_deps
build
case $action in
demo) make demo ;;
check)
    # Lanes (each prints its wall time; the summary ends with the total):
    #   make check       the whole suite in this plain tree
    #   VM lanes         make check-vm in user-mode-linux guests: pure cgroup
    #                    v2, and systemd as PID 1 (tests/vm, docs/HACKING.md);
    #                    they run in the background, beside the gates, and
    #                    use this tree: the gates that use it (valgrind) wait
    #   gates            tests/gates.sh: ASan+UBSan and coverage (make check
    #                    in a tree of each), fuzzing, cppcheck, clang-tidy,
    #                    the shell scripts' and man pages' linters; valgrind
    #   distcheck        the release tarball builds, installs and passes its
    #                    unit and schema tests (make distcheck-quick)
    status=0
    t0=$SECONDS
    # (twice as many jobs as CPUs: the tests mostly wait, tests/gates.sh)
    make -j"$((2 * $(nproc)))" check AM_COLOR_TESTS=no >check.log 2>&1 || status=$?
    grep -E '^(PASS|FAIL|XFAIL|XPASS|SKIP|ERROR):' check.log | grep -v '^PASS' || true
    grep -E '^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):' check.log || true
    if [ $status -ne 0 ]; then
        grep -E '^(FAIL|ERROR)' check.log | sed 's/^/  /' || true
        tail -40 check.log
    fi
    pass=$(grep -E '^# PASS:' check.log | awk '{s+=$3} END {print s+0}')
    fail=$(grep -E '^# (FAIL|XPASS|ERROR):' check.log | awk '{s+=$3} END {print s+0}')
    skip=$(grep -E '^# SKIP:' check.log | awk '{s+=$3} END {print s+0}')
    [ $status -ne 0 ] && [ "$fail" -eq 0 ] && fail=1
    lanes="make check $((SECONDS - t0)) s"
    # the VM lanes, in the background; each writes its verdict to a file. A
    # guest that gives no result (run.sh exits 2: it could not boot, or ran
    # out of time) is reported and counted as skipped: that is the guest,
    # not kpa; a test that fails in it is a failure.
    (
        for mode in plain systemd; do
            start=$SECONDS
            vm_status=0
            make check-vm VM_MODE=$mode VM_FLAGS="--timeout 900 --quiet" >"check-vm-$mode.log" 2>&1 ||
                vm_status=$?
            echo "$vm_status $((SECONDS - start))" >"check-vm-$mode.result"
        done
    ) &
    vm_pid=$!
    # the quality gates that do not use this tree, beside the guests
    t=$SECONDS
    BUILD=. bash ../tests/gates.sh asan coverage fuzz cppcheck clang-tidy shellcheck mandoc |
        tee gates.log ||
        status=1
    lanes="$lanes, gates $((SECONDS - t)) s"
    # the release tarball must build and pass its own tests too
    t=$SECONDS
    if make -j"$(nproc)" distcheck-quick >distcheck.log 2>&1; then
        echo "PASS: make distcheck-quick ($((SECONDS - t)) s)"
        pass=$((pass + 1))
    else
        echo "FAIL: make distcheck-quick (see build/distcheck.log)"
        tail -30 distcheck.log
        fail=$((fail + 1))
        status=1
    fi
    lanes="$lanes, distcheck $((SECONDS - t)) s"
    t=$SECONDS
    wait "$vm_pid"
    lanes="$lanes, waiting for the VM lanes $((SECONDS - t)) s"
    for mode in plain systemd; do
        lane="make check-vm VM_MODE=$mode"
        read -r vm_status wall <"check-vm-$mode.result" || { vm_status=2; wall='?'; }
        if [ "$vm_status" -eq 0 ]; then
            echo "PASS: $lane ($wall s)"
            pass=$((pass + 1))
        elif grep -q '^tests/vm/run.sh: .*exit status [1-9]' "check-vm-$mode.log"; then
            echo "FAIL: $lane ($wall s; see build/check-vm-$mode.log)"
            grep -E '^(FAIL|ERROR):' "vm-check/$mode/log" 2>/dev/null | sed 's/^/  /' | head -20
            tail -5 "check-vm-$mode.log"
            fail=$((fail + 1))
            status=1
        else
            echo "SKIP: $lane: the guest gave no result (see build/check-vm-$mode.log):"
            grep '^tests/vm/run.sh: ' "check-vm-$mode.log" | head -3 | sed 's/^/  /'
            skip=$((skip + 1))
        fi
        lanes="$lanes, VM $mode $wall s"
    done
    # valgrind runs the unit tests of this tree: after the guests
    t=$SECONDS
    BUILD=. bash ../tests/gates.sh valgrind | tee -a gates.log || status=1
    lanes="$lanes, valgrind $((SECONDS - t)) s"
    pass=$((pass + $(grep -c '^PASS: gate' gates.log || true)))
    fail=$((fail + $(grep -c '^FAIL: gate' gates.log || true)))
    echo "lanes: $lanes; total $((SECONDS - t0)) s"
    echo "$pass passed, $fail failed, $skip skipped"
    exit $status
    ;;
*) echo "usage: $0 demo|check" >&2; exit 2 ;;
esac
