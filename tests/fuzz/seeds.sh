#!/bin/bash
# seeds.sh OUTDIR: make the seed inputs of the fuzz targets that are not
# already files in the tree (those are manifests/examples and manifests/bad):
#   OUTDIR/manifest  manifests with a locale after a NUL (see fuzz-manifest.c)
#   OUTDIR/package   packages from tests/integration/mkpkg.py, good and hostile
# Generated rather than committed, to keep the repository small.
set -euo pipefail
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
PYTHON3=${PYTHON3:-python3}
out=$1
mkdir -p "$out/manifest" "$out/package"

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
    truncated corrupt; do
    mkpkg "$out/package/$s.kpa" --scenario "$s" --compress none
done
mkpkg "$out/package/files-3.kpa" --files 3 --file-size 100 --compress none
