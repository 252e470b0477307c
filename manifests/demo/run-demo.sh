#!/bin/bash
# The demo: build the sample application, pack it, install it into a local
# store and run it. Called by `make demo` with the build directory as $1.
set -euo pipefail
builddir=$(cd "${1:-.}" && pwd)
demo=$(cd "$(dirname "$0")" && pwd)
work="$builddir/demo"
store="$work/store"
# an earlier demo's package is purged first: its sized private storage is
# an image on a loop device, which only a purge detaches
if [ -d "$store/apps/org.example.hello" ]; then
    "$builddir/src/tools/kpa-install" --root "$store" -q --remove --purge org.example.hello || true
fi
rm -rf "$work"
mkdir -p "$work"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "Build the sample application"
show "${CC:-cc}" -O2 -Wall -o "$work/hello" "$demo/hello.c"
sed "s/@ARCH@/$(uname -m)/" "$demo/manifest.json" >"$work/manifest.json"

step "Pack it (kpa-pack fills in the digests)"
show "$builddir/src/tools/kpa-pack" -o "$work/hello.kpa" --manifest "$work/manifest.json" \
    "$work/hello" "$demo/res" "$demo/locales"

step "Install it into the store $store"
show "$builddir/src/tools/kpa-install" --root "$store" "$work/hello.kpa"
show "$builddir/src/tools/kpa-install" --root "$store" --info org.example.hello
show "$builddir/src/tools/kpa-install" --root "$store" --verify org.example.hello

step "Run it"
if [ -x "$builddir/src/tools/kpa-run" ]; then
    show "$builddir/src/tools/kpa-run" --root "$store" org.example.hello
else
    echo "(kpa-run, the sandboxed launcher, is not built yet; running the installed"
    echo " binary directly, outside any sandbox, to show the package works)"
    show env -i GREETING=hello "$store/apps/org.example.hello/bin/hello" --greet world
fi
step "Done. The store is in $store"
tools="$builddir/src/tools"
mandir="$(cd "$demo/../.." && pwd)/man"
cat <<NEXT
The tools are in $tools (make install puts them on the PATH,
with kpa-execd, the daemon, and its systemd unit). Things to try next:

  $tools/kpa-run --root $store org.example.hello -- --greet you
      run it again, with an argument of yours
  $tools/kpa-install --root $store --info org.example.hello
      what the package holds, who signed it, what it asks for
  mandoc -l $mandir/kpa-run.8
      what the sandbox gives an application, and every option

README's tour goes on from here: signed packages, updates and rollback, a
service with a declared socket under kpa-execd, interactive programs, and
packages as OCI images. The test suite: bash pkg/quickstart.sh check
NEXT
