#!/bin/bash
# The ABI of libkpa.so: it exports exactly the functions that include/kpa
# declares KPA_PUBLIC, under the version KPA_0, and nothing of the
# internals (issue 16). Checked from outside, with nm -D on the built
# library.
. "$(dirname "$0")/lib.sh"

SO=$top_builddir/src/lib/.libs/libkpa.so
[ -f "$SO" ] || skip_all "src/lib/.libs/libkpa.so not built (a static-only build?)"
command -v nm >/dev/null || skip_all "no nm (binutils)"

# what the headers promise: every name declared after KPA_PUBLIC
cat "$top_srcdir"/include/kpa/*.h | tr -s ' \n\t' ' ' |
    grep -oE 'KPA_PUBLIC [^;{]*\(' | grep -oE 'kpa_[a-z0-9_]+ ?\($' | sed 's/ *($//' |
    LC_ALL=C sort -u >"$T/public"
# what the library gives: its defined dynamic symbols, without the version
nm -D --defined-only "$SO" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//' |
    LC_ALL=C sort -u >"$T/exported"

check "the headers declare public functions" test "$(wc -l <"$T/public")" -ge 80
check_eq "libkpa.so exports nothing the headers do not declare" \
    "$(LC_ALL=C comm -23 "$T/exported" "$T/public" | paste -sd ' ' -)" ""
check_eq "every public function is exported" \
    "$(LC_ALL=C comm -13 "$T/exported" "$T/public" | paste -sd ' ' -)" ""
check "the symbols carry the version KPA_0" \
    sh -c "nm -D --defined-only '$SO' | grep -q ' kpa_store_install@@KPA_0$'"
for internal in kpa_xmalloc kpa_sandbox_spawn kpa_request_parse kpa_error_set kpa_cgroup_create; do
    check "an internal ($internal) is not exported" \
        sh -c "! nm -D --defined-only '$SO' | grep -q ' $internal\(@\|$\)'"
done
done_testing
