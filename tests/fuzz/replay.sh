#!/bin/bash
# The fuzz targets, without libFuzzer, on their seeds and on every input that
# once made them crash (tests/fuzz/regressions/TARGET/). In make check this
# runs in every build: plain, ASan+UBSan (tests/gates.sh asan) and under
# valgrind (KPA_REPLAY_WRAPPER, tests/gates.sh valgrind).
. "$(dirname "$0")/../integration/lib.sh"

# shellcheck disable=SC2206 # a command and its options, split on purpose
wrapper=(${KPA_REPLAY_WRAPPER:-})
F=$top_srcdir/tests/fuzz
bash "$F/seeds.sh" "$T/seeds" >/dev/null ||
    { echo "Bail out! cannot make the seeds"; exit 1; }

replay() { # replay TARGET DIR...
    local target=$1
    shift
    check "fuzz-$target replays $(find "$@" -type f ! -name '.*' | wc -l) inputs from ${*#"$top_srcdir/"}" \
        "${wrapper[@]}" "$top_builddir/tests/fuzz/replay-$target" "$@"
}
replay manifest "$top_srcdir"/manifests/examples/*.json "$top_srcdir/manifests/bad" "$T/seeds/manifest"
replay manifest "$F/regressions/manifest"
replay package "$T/seeds/package"
replay package "$F/regressions/package"
replay protocol "$T/seeds/protocol"
replay protocol "$F/regressions/protocol"
done_testing
