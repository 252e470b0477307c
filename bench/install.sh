#!/bin/bash
# bench/install.sh: kpa-install against its physical floor.
#
# A package of about 200 MiB in 2,000 files (half incompressible, half text)
# is installed into a fresh store, and in the same run the floor is measured:
# `tar -xf` of the same content (uncompressed, and with the same zstd
# compression) followed by `sha256sum` of every file. Medians of N runs
# (default 5), warm page cache for everyone. The same package signed
# (kpa-pack --sign) is installed with its key trusted, beside the unsigned
# one (goal: at most 2% more). Also reports kpa-install's peak RSS for this
# package and for one with as many files, ten times smaller.
#
#   bash bench/install.sh [BUILDDIR] [RUNS]
set -euo pipefail
builddir=$(cd "${1:-build}" && pwd)
runs=${2:-5}
KPA_PACK="$builddir/src/tools/kpa-pack"
KPA_INSTALL="$builddir/src/tools/kpa-install"
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null; }

W=$(mktemp -d /var/tmp/kpa-bench.XXXXXX)
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
trap 'bench_cleanup' EXIT

make_content() { # DIR NFILES FILESIZE
    local dir=$1 n=$2 size=$3
    mkdir -p "$dir/res/data"
    /usr/bin/python3 - "$dir" "$n" "$size" <<'PY'
import os, sys, random
d, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
words = [b"kpa", b"package", b"manifest", b"sandbox", b"store", b"digest", b"process"]
rnd = random.Random(42)
for i in range(n):
    if i % 2:
        data = os.urandom(size)
    else:
        out = bytearray()
        while len(out) < size:
            out += rnd.choice(words) + b" %d\n" % rnd.randrange(1 << 30)
        data = bytes(out[:size])
    with open(os.path.join(d, "res/data/f%05d.dat" % i), "wb") as f:
        f.write(data)
PY
    cp /bin/true "$dir/true"
    {
        printf '{"version":"2.0","application":{"id":"org.example.bench","name":"Bench","version":"1","buildNumber":"1","systemApplication":false},'
        printf '"platform":{"id":"linux","sdk":{"buildSdkName":"kpa","buildSdkVersion":"0.1","targetApiLevel":1},"hwSpecification":{"arch":"%s","cpu":""}},' "$(uname -m)"
        printf '"components":[{"name":"true","componentType":"bin"}'
        for f in "$dir"/res/data/*; do
            printf ',{"name":"%s","componentType":"res","directoryPath":"data"}' "$(basename "$f")"
        done
        printf '],"runConfigurations":[{"id":"main","name":"Main","type":"service","path":"bin/true","primary":true}]}\n'
    } >"$dir/manifest.json"
}

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { awk -v ns="$1" 'BEGIN {printf "%.1f", ns / 1e6}'; }

time_runs() { # NAME SETUP-CMD RUN-CMD : prints the median in ns
    local setup=$2 run=$3 i t0 t1
    for ((i = 0; i < runs; i++)); do
        eval "$setup"
        t0=$(now)
        eval "$run"
        t1=$(now)
        echo $((t1 - t0))
    done | median
}

echo "Preparing a package of 2,000 files (about 200 MiB)..."
make_content "$W/src" 2000 $((100 * 1024 + 512))
"$KPA_PACK" -q -o "$W/bench.kpa" --manifest "$W/src/manifest.json" "$W/src/true" "$W/src/res/data"
# the same package signed, and a directory that trusts its key
"$KPA_PACK" -q --new-key "$W/bench-key"
"$KPA_PACK" -q -o "$W/bench-signed.kpa" --manifest "$W/src/manifest.json" --sign "$W/bench-key.key" \
    "$W/src/true" "$W/src/res/data"
mkdir -m 0700 "$W/trusted" && cp "$W/bench-key.pub" "$W/trusted/"
# the same content as plain tar and tar.zst, for the floor
mkdir -p "$W/tree"
"$KPA_INSTALL" --root "$W/probe" -q "$W/bench.kpa"
cp -a "$W/probe/apps/org.example.bench/." "$W/tree/"
tar -C "$W/tree" -cf "$W/bench.tar" .
zstd -q -3 -o "$W/bench.tar.zst" "$W/bench.tar"
du -sh --apparent-size "$W/tree" | awk '{print "content: " $1 " in " '"$(find "$W/tree" -type f | wc -l)"' " files"}'
ls -l "$W/bench.kpa" "$W/bench.tar" "$W/bench.tar.zst" | awk '{print "  " $9 ": " $5 " bytes"}'

floor_cmd() { # ARCHIVE
    echo "tar -xf $1 -C $W/out && find $W/out -type f -print0 | xargs -0 sha256sum >/dev/null"
}
reset_out='rm -rf "$W/out" && mkdir "$W/out"'
reset_store='rm -rf "$W/store"'

t_kpa=$(time_runs kpa "$reset_store" "'$KPA_INSTALL' --root '$W/store' -q '$W/bench.kpa'")
# signed against unsigned: interleaved, each run after a sync, so that
# neither pays for the other's writeback (run one after the other, the
# second series came out 75% slower or faster, on the disk's mood alone)
pair_runs() { # prints "u NS" and "s NS" lines
    local i t0 t1
    for ((i = 0; i < runs; i++)); do
        rm -rf "$W/store" && sync
        t0=$(now)
        "$KPA_INSTALL" --root "$W/store" -q "$W/bench.kpa"
        t1=$(now)
        echo "u $((t1 - t0))"
        rm -rf "$W/store" && sync
        t0=$(now)
        "$KPA_INSTALL" --root "$W/store" --trusted-keys "$W/trusted" -q "$W/bench-signed.kpa"
        t1=$(now)
        echo "s $((t1 - t0))"
    done
}
pairs=$(pair_runs)
t_pair_unsigned=$(awk '$1 == "u" {print $2}' <<<"$pairs" | median)
t_kpa_signed=$(awk '$1 == "s" {print $2}' <<<"$pairs" | median)
t_floor_plain=$(time_runs floor-plain "$reset_out" "$(floor_cmd "$W/bench.tar")")
t_floor_zstd=$(time_runs floor-zstd "$reset_out" "$(floor_cmd "$W/bench.tar.zst")")
t_floor_zstd_sync=$(time_runs floor-zstd-sync "$reset_out" "$(floor_cmd "$W/bench.tar.zst") && sync -f $W/out")

echo
printf '%-46s %10s\n' "median of $runs runs" "ms"
printf '%-46s %10s\n' "kpa-install (zstd package, verify + syncfs)" "$(ms "$t_kpa")"
printf '%-46s %10s\n' "kpa-install, after a sync (as the next row)" "$(ms "$t_pair_unsigned")"
printf '%-46s %10s\n' "kpa-install, the same package signed, same" "$(ms "$t_kpa_signed")"
printf '%-46s %10s\n' "floor: tar -xf plain tar + sha256sum" "$(ms "$t_floor_plain")"
printf '%-46s %10s\n' "floor: tar -xf tar.zst + sha256sum" "$(ms "$t_floor_zstd")"
printf '%-46s %10s\n' "floor: tar -xf tar.zst + sha256sum + sync" "$(ms "$t_floor_zstd_sync")"
awk -v k="$t_kpa" -v u="$t_pair_unsigned" -v g="$t_kpa_signed" -v f="$t_floor_zstd" -v p="$t_floor_plain" -v s="$t_floor_zstd_sync" 'BEGIN {
    printf "ratio kpa-install / floor (same compression): %.2f  (goal <= 1.20)\n", k / f
    printf "ratio kpa-install / floor (plain tar):        %.2f\n", k / p
    printf "ratio kpa-install / floor (zstd + sync):      %.2f\n", k / s
    printf "signed / unsigned install:                    %+.1f%%  (goal <= +2%%)\n", (g / u - 1) * 100
}'

rss() { # PACKAGE
    rm -rf "$W/store"
    /usr/bin/time -f %M "$KPA_INSTALL" --root "$W/store" -q "$1" 2>&1 >/dev/null | tail -1
}
mkdir -p "$W/small"
make_content "$W/small" 2000 $((10 * 1024))
"$KPA_PACK" -q -o "$W/small.kpa" --manifest "$W/small/manifest.json" "$W/small/true" "$W/small/res/data"
echo "peak RSS of kpa-install: $(rss "$W/small.kpa") KiB for 20 MiB, $(rss "$W/bench.kpa") KiB for 200 MiB"
