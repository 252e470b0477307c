#!/bin/bash
# seeds.sh OUTDIR: make the seed inputs of the fuzz targets that are not
# already files in the tree (those are manifests/examples and manifests/bad):
#   OUTDIR/manifest  manifests with a locale after a NUL (see fuzz-manifest.c)
#   OUTDIR/package   packages from tests/integration/mkpkg.py, good and hostile
#   OUTDIR/protocol  kpa-execd requests of every op, some with fds (see fuzz-protocol.c)
# Generated rather than committed, to keep the repository small.
set -euo pipefail
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
PYTHON3=${PYTHON3:-python3}
out=$1
mkdir -p "$out/manifest" "$out/package" "$out/protocol"

locale_en=$top_srcdir/manifests/demo/locales/en.json
for m in "$top_srcdir"/manifests/examples/*.json "$top_srcdir/manifests/demo/manifest.json"; do
    { cat "$m"; printf '\0'; cat "$locale_en"; } >"$out/manifest/locale-$(basename "$m")"
done
printf '{"en":{"app_name":"A","rc_name":"R"},"ru_RU":{"app_name":"B"},"de-DE":{}}' \
    >"$out/manifest/locale-only.json"

mkpkg() { "$PYTHON3" "$top_srcdir/tests/integration/mkpkg.py" "$@"; }
for c in none gzip zstd xz; do
    mkpkg "$out/package/good-$c.kpa" --compress "$c"
done
for s in digest-mismatch missing-component setuid absolute dotdot symlink hardlink device \
    extra-member duplicate-member second-manifest manifest-not-first no-manifest bad-json \
    truncated corrupt signature signature-late signature-garbage; do
    mkpkg "$out/package/$s.kpa" --scenario "$s" --compress none
done
mkpkg "$out/package/files-3.kpa" --files 3 --file-size 100 --compress none

# protocol: one request of every op; after a NUL, the number of fds attached
tok=0123456789abcdef0123456789abcdef
req() { # req NAME JSON [N_FDS]
    if [ $# -gt 2 ]; then
        { printf '%s' "$2"; printf '\0'; printf '%b' "\\0$(printf '%03o' "$3")"; } >"$out/protocol/$1"
    else
        printf '%s' "$2" >"$out/protocol/$1"
    fi
}
req version '{"op":"Version","id":1}'
req start '{"op":"StartProcess","id":2,"package":"org.example.app","runConfig":"main","parent":"'"$tok"'","handles":["in","log sink"],"args":["-v","two words"],"env":["A=1","B=x=y"],"memory":268435456,"pids":64,"cpuWeight":100,"network":"host","uid":1000,"gid":1000,"stopTimeoutMs":2500}' 2
req start-min '{"op":"StartProcess","package":"a"}'
req start-bad-fds '{"op":"StartProcess","package":"a","handles":["x"]}' 3
req stop '{"op":"StopProcess","id":3,"token":"'"$tok"'","policy":"Forced"}'
req get-state '{"op":"GetProcessState","id":4,"token":"'"$tok"'"}'
req wait '{"op":"WaitProcess","id":5,"token":"'"$tok"'","timeoutMs":1000}'
req list '{"op":"ListProcesses","id":6}'
req list-continue '{"op":"ListProcesses","id":6,"continue":true}'
req stop-all '{"op":"StopAll","id":7,"policy":"Normal"}'
req subscribe '{"op":"Subscribe","id":8}'
req open-log '{"op":"OpenLog","id":9,"token":"'"$tok"'","rotated":true}'
req package-installed '{"op":"PackageInstalled","id":10,"package":"org.example.app"}'
req bad-unknown-key '{"op":"Version","id":11,"extra":[1,{"a":null}]}' 1
