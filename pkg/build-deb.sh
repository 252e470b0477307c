#!/bin/bash
# build-deb.sh: build kpa's Debian packages (kpa, libkpa0, libkpa-dev) from
# this source tree and check them with lintian.
#   bash pkg/build-deb.sh OUTDIR
# The release tarball (make dist, in a scratch build) is unpacked in a
# scratch directory, its pkg/debian becomes debian/, and
# `dpkg-buildpackage -us -uc -b` builds it; lintian must report no errors.
# The .deb files (and the .changes and .buildinfo) go to OUTDIR. Installs
# the Debian packages it needs when run as root and they are missing.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
work=$(mktemp -d /tmp/kpa-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT

NEEDED="build-essential debhelper dpkg-dev fakeroot lintian pkg-config autoconf automake libtool
        libarchive-dev libjson-c-dev libcap-dev libcgroup-dev nettle-dev libseccomp-dev
        bash-completion"
# shellcheck disable=SC2086 # a list of package names
missing=$(dpkg-query -W -f='${Package} ${Status}\n' $NEEDED 2>/dev/null |
    awk '$NF == "installed" { ok[$1] = 1 } END { for (p in ok) print p }' |
    sort | comm -13 - <(tr -s ' \n' '\n' <<<"$NEEDED" | grep . | sort))
if [ -n "$missing" ]; then
    [ "$(id -u)" -eq 0 ] || { echo "build-deb.sh: missing packages:" "$missing" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

echo "==> make dist"
mkdir "$work/build"
(cd "$work/build" && "$src/configure" -q && make -s dist-gzip >/dev/null)
tarball=$(ls "$work"/build/kpa-*.tar.gz)
tar -xzf "$tarball" -C "$work"
tree=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'kpa-*')
cp -a "$tree/pkg/debian" "$tree/debian"

echo "==> dpkg-buildpackage -us -uc -b"
(cd "$tree" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
    tail -40 "$work/build.log"
    echo "build-deb.sh: dpkg-buildpackage failed" >&2
    exit 1
}

echo "==> lintian"
changes=$(ls "$work"/kpa_*.changes)
# errors fail the build; warnings are shown (and overridden where justified,
# pkg/debian/*.lintian-overrides)
lintian --fail-on error --tag-display-limit 0 "$changes" || {
    echo "build-deb.sh: lintian reports errors" >&2
    exit 1
}
cp "$work"/*.deb "$changes" "$work"/*.buildinfo "$out"/
ls -1 "$out"/*.deb
