#!/bin/bash
# The C API's behaviour tests (tests/unit/test-process) against kpa-execd
# through kpa_control_connect: both controllers must behave the same.
set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
execd="$top_builddir/src/daemon/kpa-execd"
if [ "$(id -u)" -ne 0 ] || [ ! -x "$execd" ]; then
    echo "1..0 # SKIP needs root and kpa-execd"
    exit 0
fi
KPA_TEST_EXECD="$execd" exec ${KPA_REPLAY_WRAPPER:-} "$top_builddir/tests/unit/test-process"
