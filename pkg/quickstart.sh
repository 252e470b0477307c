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
# processes of an instance (a minbase Debian has no procps)
[ "$action" = check ] && DEPS="$DEPS valgrind cppcheck clang-14 clang-tidy-14
      libclang-rt-14-dev bear shellcheck gcovr
      debhelper fakeroot lintian bash-completion systemd procps"

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
    status=0
    make -j"$(nproc)" check AM_COLOR_TESTS=no >check.log 2>&1 || status=$?
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
    # the quality gates: sanitizers, valgrind, fuzzing, static analysis,
    # coverage; each counts as one test
    BUILD=. bash ../tests/gates.sh | tee gates.log || status=1
    pass=$((pass + $(grep -c '^PASS: gate' gates.log || true)))
    fail=$((fail + $(grep -c '^FAIL: gate' gates.log || true)))
    # the release tarball must build and pass its own tests too
    if make -j"$(nproc)" distcheck >distcheck.log 2>&1; then
        echo "PASS: make distcheck"
        pass=$((pass + 1))
    else
        echo "FAIL: make distcheck (see build/distcheck.log)"
        tail -30 distcheck.log
        fail=$((fail + 1))
        status=1
    fi
    echo "$pass passed, $fail failed, $skip skipped"
    exit $status
    ;;
*) echo "usage: $0 demo|check" >&2; exit 2 ;;
esac
