#!/bin/bash
# run.sh [SECONDS]: build the libFuzzer targets with clang
# (-fsanitize=fuzzer,address,undefined) and run each for SECONDS (default
# $FUZZ_SECONDS or 60), both at once. Exit 1 if a target crashed, leaked or
# hung; the input that did it is kept under fuzz-build/artifacts/ and shown
# in hex, to be added to tests/fuzz/regressions/TARGET/.
#   FUZZ_BUILDDIR  the clang build tree (default ./fuzz-build, made when missing)
#   CLANG          the compiler (default clang-14, else clang)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-${FUZZ_SECONDS:-60}}
bdir=${FUZZ_BUILDDIR:-$PWD/fuzz-build}
cc=${CLANG:-$(command -v clang-14 || command -v clang || echo clang)}

mkdir -p "$bdir"
bdir=$(cd "$bdir" && pwd)
cd "$bdir"
if [ ! -f Makefile ]; then
    "$src/configure" -q CC="$cc" --enable-fuzzing >configure.log 2>&1 ||
        { tail -20 configure.log; exit 1; }
fi
make -j"$(nproc)" fuzz-targets >make.log 2>&1 || { tail -30 make.log; exit 1; }

rm -rf seeds corpus artifacts
top_srcdir=$src bash "$src/tests/fuzz/seeds.sh" seeds >/dev/null
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
pids=()
for t in manifest package protocol; do
    mkdir -p "corpus/$t" "artifacts/$t"
    seeds=("seeds/$t" "$src/tests/fuzz/regressions/$t")
    [ "$t" = manifest ] && seeds+=("$src/manifests/examples" "$src/manifests/bad")
    # the first directory collects new inputs; the others are read only
    "tests/fuzz/fuzz-$t" "corpus/$t" "${seeds[@]}" -max_total_time="$seconds" \
        -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" >"fuzz-$t.log" 2>&1 &
    pids+=($!)
done
status=0
i=0
for t in manifest package protocol; do
    rc=0
    wait "${pids[$i]}" || rc=$?
    i=$((i + 1))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "fuzz-$t.log")
    cov=$(grep -o 'cov: [0-9]*' "fuzz-$t.log" | tail -1)
    if [ $rc -eq 0 ]; then
        echo "fuzz-$t: ${runs:-?} inputs in ${seconds}s, $cov, no crash"
    else
        status=1
        echo "fuzz-$t: FAILED (exit $rc); see $bdir/fuzz-$t.log"
        grep -E -A25 '^==[0-9]+==ERROR|runtime error|^INFO: a leak|deadly signal|timeout' "fuzz-$t.log" | head -60 || true
        for a in "artifacts/$t"/*; do
            [ -f "$a" ] || continue
            echo "--- $a ($(stat -c %s "$a") bytes):"
            od -A d -c "$a" | head -20
        done
    fi
done
exit $status
