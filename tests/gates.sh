#!/bin/bash
# gates.sh: the quality gates that CI runs beside make check
# (pkg/quickstart.sh check calls it). Each gate prints one line,
# "PASS: gate NAME: ..." or "FAIL: gate NAME: ..." followed by what failed,
# and keeps its whole output in GATES_DIR/NAME.log.
#
#   bash tests/gates.sh [GATE...]     default: every gate but asan-coverage,
#                                     in this order
#   * asan        a tree built with --enable-sanitizers (ASan+UBSan) runs all
#                 of make check; any sanitizer report fails it, even from a
#                 process whose failure a test expected. (Not one tree with
#                 coverage too: built so, at -O0, an instance's init read
#                 an error from its application that none had sent (they
#                 share memory until the exec, CLONE_VM) and a start hung:
#                 seen in 1 of 2 runs of daemon.sh; never at -O2 or without
#                 ASan.)
#   * valgrind    memcheck over the unit tests and fuzz replays (make check-valgrind)
#   * fuzz        the libFuzzer targets, FUZZ_SECONDS each (default 60; tests/fuzz/run.sh)
#   * cppcheck    src and tests
#   * clang-tidy  src and tests/fuzz, with .clang-tidy
#   * shellcheck  every shell script, with .shellcheckrc
#   * mandoc      every man page, mandoc -Tlint -W warning
#   * coverage    a tree built with --enable-coverage runs make check and
#                 prints src/lib's line coverage (make coverage)
#   * asan-coverage  both in one tree built at -O2, one make check for both
#                 verdicts (a build and a make check fewer). Not what CI runs:
#                 once in two CI runs test-cgroup hung in its fork loop at
#                 pids.max (alarm after 120 s; 3 s otherwise), as the -O0
#                 tree above hung a start; the two trees never have.
#
#   The asan and coverage trees skip deb.sh (KPA_SKIP_DEB=1): it builds the
#   Debian packages from the sources with their own flags, the same in every
#   tree; make check in the plain tree builds and checks them once.
#
#   BUILD      a configured plain build tree, for valgrind (default ./build)
#   GATES_DIR  where the gates' own trees and logs go (default BUILD/gates)
# Exit status: 0 when every gate passed, else 1.
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${BUILD:-build}" && pwd) || exit 1
GATES_DIR=${GATES_DIR:-$BUILD/gates}
mkdir -p "$GATES_DIR"
GATES_DIR=$(cd "$GATES_DIR" && pwd)
jobs=$(nproc)
# the test suites run with twice as many jobs as CPUs: the integration tests
# wait on the kernel, on daemons and on each other more than they compute
# (the ASan tree's make check: 173 s with -j2, 115 s with -j4 on 2 CPUs)
test_jobs=$((2 * jobs))
failed=0

# tap_totals LOG: "N tests" from an automake test-suite summary
tap_totals() {
    local total fail
    total=$(grep -E '^# TOTAL:' "$1" | awk '{s+=$3} END {print s+0}')
    fail=$(grep -E '^# (FAIL|XPASS|ERROR):' "$1" | awk '{s+=$3} END {print s+0}')
    echo "$total tests, $fail failed"
}

# configure_tree DIR ARGS...: a fresh build tree configured with ARGS
configure_tree() {
    local dir=$1
    shift
    rm -rf "$dir"
    mkdir -p "$dir"
    (cd "$dir" && "$src/configure" -q "$@")
}

# sanitized_make DIR TARGET...: make TARGET in the sanitizer tree DIR (its
# output in DIR/check.log), deb.sh skipped; 1 when it fails or a sanitizer
# reported anything, even from a process whose failure a test expected.
# Reports go to files as well as to the process's exit status; the prefix
# is right in /tmp: sandboxed children have a /tmp of their own, and a
# log_path whose directory is missing there would kill them. Sets n_reports.
sanitized_make() {
    local d=$1 prefix rc=0 reports
    shift
    prefix=/tmp/kpa-sanitizer-$$-$RANDOM
    ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:log_path=$prefix \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$prefix KPA_SKIP_DEB=1 \
        make -C "$d" -j"$test_jobs" "$@" AM_COLOR_TESTS=no >"$d/check.log" 2>&1 || rc=1
    reports=$(grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$prefix".* 2>/dev/null)
    [ $rc -eq 0 ] || grep -E '^(FAIL|ERROR):' "$d/check.log"
    if [ -n "$reports" ]; then
        rc=1
        echo "sanitizer reports:"
        # shellcheck disable=SC2086 # one file name per line, no spaces
        head -n 40 $reports
    fi
    rm -f "$prefix".*
    n_reports=$(echo -n "$reports" | grep -c .)
    return $rc
}

gate_asan() {
    local d=$GATES_DIR/asan rc=0
    configure_tree "$d" --enable-sanitizers && make -C "$d" -j"$jobs" >/dev/null || return 1
    sanitized_make "$d" check || rc=1
    detail="ASan+UBSan, make check: $(tap_totals "$d/check.log"), $n_reports sanitizer reports"
    return $rc
}

# asan-coverage: the asan gate and the coverage gate in one tree, built at
# -O2 (see asan above for -O0), whose one make check gives both verdicts
# (one build and one make check fewer; not what CI runs, see above)
gate_asan_coverage() {
    local d=$GATES_DIR/asan-coverage rc=0
    configure_tree "$d" --enable-sanitizers --enable-coverage &&
        make -C "$d" -j"$jobs" CFLAGS="-g -O2" >/dev/null || return 1
    sanitized_make "$d" CFLAGS="-g -O2" coverage || rc=1
    detail="ASan+UBSan, make check: $(tap_totals "$d/check.log"), $n_reports sanitizer reports; src/lib $(grep -E '^lines:' "$d/check.log" | head -1)"
    return $rc
}

gate_valgrind() {
    local rc=0
    make -C "$BUILD" -j"$jobs" check-valgrind AM_COLOR_TESTS=no >"$GATES_DIR/valgrind-check.log" 2>&1 ||
        rc=1
    [ $rc -eq 0 ] || grep -E '^(FAIL|ERROR):' "$GATES_DIR/valgrind-check.log"
    detail="memcheck, unit tests and fuzz replays: $(tap_totals "$GATES_DIR/valgrind-check.log")"
    return $rc
}

gate_fuzz() {
    local seconds=${FUZZ_SECONDS:-60} rc=0 out
    out=$(FUZZ_BUILDDIR=$GATES_DIR/fuzz bash "$src/tests/fuzz/run.sh" "$seconds") || rc=1
    echo "$out"
    detail="$(grep -E '^fuzz-' <<<"$out" | paste -sd ';' - | sed 's/;/; /g')"
    return $rc
}

gate_cppcheck() {
    local out rc=0
    out=$(cd "$src" && cppcheck --enable=warning,performance,portability --error-exitcode=1 \
        --inline-suppr --suppressions-list=.cppcheck-suppressions \
        --library=tests/static/json-c.cfg --std=c11 -q -j "$jobs" -I include -I src/common -I src/lib \
        --template='{file}:{line}: {severity}: {message} [{id}]' src tests 2>&1) || rc=1
    [ -z "$out" ] || { echo "$out"; rc=1; }
    detail="cppcheck $(cppcheck --version | awk '{print $2}'), src and tests"
    return $rc
}

gate_clang_tidy() {
    local d=$GATES_DIR/tidy cc tidy runner
    cc=$(command -v clang-14 || command -v clang)
    tidy=$(command -v clang-tidy-14 || command -v clang-tidy)
    runner=$(command -v run-clang-tidy-14 || command -v run-clang-tidy)
    # compile_commands.json from a clean clang build of everything, tests too
    configure_tree "$d" CC="$cc" &&
        (cd "$d" && bear -- make -j"$jobs" check TESTS= >/dev/null 2>&1) || return 1
    "$runner" -clang-tidy-binary "$tidy" -p "$d" -j "$jobs" -quiet "$src/(src|tests/fuzz)/" \
        >"$d/tidy.log" 2>&1
    local findings known new
    findings=$(sed 's/\x1b\[[0-9;]*m//g' "$d/tidy.log" |
        sed -n "s|^$src/\([^:]*\):\([0-9]*\):[0-9]*: [a-z]*: .* \[\([a-zA-Z0-9.-]*\).*\]$|\1 \3 \2|p" |
        sort -u)
    known=$(grep -v '^#' "$src/tests/static/clang-tidy-known" | grep .)
    new=$(awk 'NR == FNR { k[$1 " " $2] = 1; next } !(($1 " " $2) in k)' \
        <(echo "$known") <(echo "$findings") | grep .)
    detail="$(echo -n "$findings" | grep -c .) findings, $(echo -n "$new" | grep -c .) not in tests/static/clang-tidy-known"
    [ -z "$findings" ] || printf '  %s\n' "$findings"
    if [ -n "$new" ]; then
        sed 's/\x1b\[[0-9;]*m//g' "$d/tidy.log" | grep -E -A6 '(warning|error): ' | head -80
        return 1
    fi
    return 0
}

gate_shellcheck() {
    local rc=0
    cd "$src" || return 1
    local scripts=(tests/integration/*.sh tests/fuzz/*.sh tests/gates.sh tests/fresh-root.sh tests/vm/*.sh tests/vm/init pkg/*.sh .ci/run
        manifests/demo/*.sh)
    shellcheck "${scripts[@]}" || rc=1
    # bench/ is its owner's to change: its "ls -l" prints sizes on purpose (SC2012)
    shellcheck --exclude=SC2012 bench/*.sh || rc=1
    detail="shellcheck $(shellcheck --version | sed -n 's/^version: //p'), $((${#scripts[@]} + $(echo bench/*.sh | wc -w))) scripts"
    cd - >/dev/null || return 1
    return $rc
}

gate_mandoc() {
    local out rc=0
    out=$(mandoc -Tlint -W warning "$src"/man/*.[1-8] 2>&1) || rc=1
    [ -z "$out" ] || { echo "$out"; rc=1; }
    detail="$(echo "$src"/man/*.[1-8] | wc -w) man pages"
    return $rc
}

gate_coverage() {
    local d=$GATES_DIR/coverage
    configure_tree "$d" --enable-coverage && make -C "$d" -j"$jobs" >/dev/null || return 1
    local rc=0
    KPA_SKIP_DEB=1 make -C "$d" -j"$test_jobs" coverage AM_COLOR_TESTS=no >"$d/coverage.log" 2>&1 ||
        rc=1
    [ $rc -eq 0 ] || grep -E '^(FAIL|ERROR):' "$d/coverage.log"
    sed -n 's/^lines: /src\/lib line coverage: /p' "$d/coverage.log"
    detail="src/lib $(grep -E '^lines:' "$d/coverage.log" | head -1)"
    return $rc
}

all=(asan valgrind fuzz cppcheck clang-tidy shellcheck mandoc coverage)
[ $# -gt 0 ] || set -- "${all[@]}"
for gate in "$@"; do
    detail=
    start=$SECONDS
    fn=gate_${gate//-/_}
    if ! declare -F "$fn" >/dev/null; then
        echo "unknown gate: $gate (gates: ${all[*]})" >&2
        exit 2
    fi
    if "$fn" >"$GATES_DIR/$gate.log" 2>&1; then
        echo "PASS: gate $gate: $detail ($((SECONDS - start)) s)"
    else
        echo "FAIL: gate $gate: $detail ($((SECONDS - start)) s; log: $GATES_DIR/$gate.log)"
        tail -n 40 "$GATES_DIR/$gate.log" | sed 's/^/  /'
        failed=$((failed + 1))
    fi
done
[ $failed -eq 0 ]
