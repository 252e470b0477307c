#!/bin/bash
# tests/fresh-root.sh: the README's quick start, checked as a new user meets
# it. It builds a fresh Debian 12 minbase root (mmdebstrap, plus git),
# clones this checkout's HEAD into /root/kpa inside it (/root is mode 0700
# there, as on every Debian), and runs the README's two commands in it as
# root, entered with bubblewrap:
#     bash pkg/quickstart.sh demo
#     bash pkg/quickstart.sh check
# It is not part of `make check`: it downloads several hundred MB of Debian
# packages into the root and takes 30 to 60 minutes. Commit first: the
# clone has what HEAD has, not the working tree's changes.
#
# usage: bash tests/fresh-root.sh [--keep] [--only demo|check] [DIR]
#   DIR           where to build the root (default: a new directory under
#                 /var/tmp); an existing root made by an earlier --keep run
#                 is used again, with a fresh clone
#   --keep        keep the root afterwards (it is removed otherwise)
#   --only WHAT   run one of the two commands
# FRESH_MIRROR    what mmdebstrap takes as its mirror: a mirror URL or an
#                 apt sources file (default: this host's Debian sources)
# Needs root, and installs mmdebstrap and bubblewrap on the host when they
# are missing. The last line is "fresh root: demo PASS, check PASS" or
# says which failed; the exit code is 0 only when every command passed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

keep=no only='' dir=''
while [ $# -gt 0 ]; do
    case $1 in
    --keep) keep=yes ;;
    --only) only=${2:?--only takes demo or check}; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fresh-root.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) dir=$1 ;;
    esac
    shift
done
case $only in "" | demo | check) ;; *) echo "fresh-root.sh: --only takes demo or check" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "fresh-root.sh: run it as root (mmdebstrap and bwrap need it)" >&2; exit 1; }

if ! command -v mmdebstrap >/dev/null || ! command -v bwrap >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends mmdebstrap bubblewrap >/dev/null
fi

# the host's own Debian sources, so that the root reaches the mirror this
# machine is allowed to reach
mirror=${FRESH_MIRROR:-}
if [ -z "$mirror" ]; then
    for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
        [ -s "$f" ] && grep -q '^[^#]*deb' "$f" && { mirror=$f; break; }
    done
fi

if [ -z "$dir" ]; then
    dir=$(mktemp -d /var/tmp/kpa-fresh-root.XXXXXX)
    rmdir "$dir"
fi
cleanup() { # (the EXIT trap)
    # shellcheck disable=SC2317
    if [ "$keep" = yes ]; then
        echo "fresh-root.sh: the root is kept in $dir"
    else
        rm -rf --one-file-system "$dir"
    fi
}
trap cleanup EXIT

if [ ! -x "$dir/usr/bin/git" ]; then
    echo "== building a Debian 12 minbase root in $dir"
    mmdebstrap --quiet --variant=minbase --include=git bookworm "$dir" ${mirror:+"$mirror"}
fi
[ -s "$dir/etc/resolv.conf" ] || cp /etc/resolv.conf "$dir/etc/resolv.conf"
rm -rf "$dir/root/kpa"
git clone -q "$top" "$dir/root/kpa"
chmod 700 "$dir/root"
echo "== cloned $(git -C "$top" rev-parse --short HEAD) into /root/kpa (/root is mode $(stat -c %a "$dir/root"))"

# The host's /proc, not a new one (--proc): bwrap covers parts of a new
# /proc (sys, sysrq-trigger, ...), and the kernel lets a user namespace
# mount a /proc only where one is fully visible, so rootless kpa-run would
# fail there with EPERM, as it would in such a container.
in_root() {
    bwrap --bind "$dir" / --dev-bind /dev /dev --bind /proc /proc --bind /sys /sys --perms 1777 --tmpfs /tmp \
        --cap-add ALL --uid 0 --gid 0 --chdir /root/kpa \
        env -i HOME=/root LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        "$@"
}

result=() failed=0
for what in demo check; do
    [ -z "$only" ] || [ "$only" = "$what" ] || continue
    echo "== bash pkg/quickstart.sh $what"
    start=$(date +%s)
    if in_root bash pkg/quickstart.sh "$what" 2>&1 | tee "$dir.$what.log"; then
        result+=("$what PASS")
    else
        result+=("$what FAIL")
        failed=1
    fi
    echo "== $what took $(($(date +%s) - start)) s (its output: $dir.$what.log)"
done
# the demo's sized private storage keeps its loop device until a purge
# (storage-image.c); check's readme.sh purges it, a demo alone does not
if [ "$only" = demo ] && [ "$keep" != yes ]; then
    in_root make -s -C build clean-demo >/dev/null 2>&1 || true
fi
summary=$(IFS=,; echo "${result[*]}")
echo "fresh root: ${summary//,/, }"
exit $failed
