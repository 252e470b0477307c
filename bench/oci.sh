#!/bin/bash
# bench/oci.sh: wall time of `podman run --rm` of /bin/true with kpa-oci as
# the runtime against podman with runc (Debian's, which podman brings), on
# the same local image (a static busybox imported with podman import), with
# the same options; one warm-up each, then RUNS runs interleaved; medians and
# their ratio.
#
#   bash bench/oci.sh [BUILDDIR] [RUNS]      (as root; RUNS default 3)
#
# Both runs get podman's default seccomp profile, --network none, and
# --ulimit nofile/nproc within this host's hard limits (podman's defaults exceed them where root lacks
# CAP_SYS_RESOURCE). Podman's storage lives in the run's directory.
set -euo pipefail
builddir=$(cd "${1:-build}" && pwd)
runs=${2:-3}
kpa_oci=$builddir/src/tools/kpa-oci
[ -x "$kpa_oci" ] || { echo "bench/oci.sh: $kpa_oci is not built" >&2; exit 1; }
for tool in podman runc; do
    command -v $tool >/dev/null || { echo "bench/oci.sh: $tool is not installed" >&2; exit 1; }
done
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
    echo "bench/oci.sh: needs a static /bin/busybox (busybox-static)" >&2
    exit 1
fi

W=$(mktemp -d /var/tmp/kpa-bench-oci.XXXXXX)
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
# podman's cgroups go below our own (memory's on a hybrid host), and are
# removed afterwards with whatever parents did not exist before
mycg=$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)
[ -n "$mycg" ] || mycg=$(sed -n 's/^0:://p' /proc/self/cgroup)
cgp="${mycg%/}/kpa-bench-oci$$"
new_cgroups=()
for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
    [ -e "$h/cgroup.procs" ] || continue
    d=$h$cgp
    while [ "$d" != "$h" ] && [ ! -d "$d" ]; do
        new_cgroups+=("$d")
        d=$(dirname "$d")
    done
done
# what podman and the runtimes keep in /run (podman's IPAM database, their
# default --root) goes too when this run made it
new_run_dirs=()
for d in /run/containers /run/kpa-oci /run/runc; do
    [ -e $d ] || new_run_dirs+=("$d")
done
podman_base=(podman --root "$W/podman" --runroot "$W/podman-run" --cgroup-manager cgroupfs
    --events-backend file --storage-driver vfs)
cleanup() {
    "${podman_base[@]}" rm -af -t 0 >/dev/null 2>&1 || true
    local d
    for d in "${new_cgroups[@]}"; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    for d in "${new_run_dirs[@]}"; do rm -rf "$d"; done
    bench_cleanup
}
trap cleanup EXIT

mkdir -p "$W/rootfs/bin"
cp /bin/busybox "$W/rootfs/bin/busybox"
ln -s busybox "$W/rootfs/bin/true"
tar -C "$W/rootfs" -cf "$W/rootfs.tar" .
"${podman_base[@]}" import -q "$W/rootfs.tar" localhost/kpa-bench-true:latest >/dev/null

opts=(run --rm --network none
    --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --cgroup-parent "$cgp"
    localhost/kpa-bench-true:latest /bin/true)
one() { # one RUNTIME: milliseconds of one podman run
    local t0 t1
    t0=$(date +%s%N)
    "${podman_base[@]}" --runtime "$1" "${opts[@]}" \
        >/dev/null 2>"$W/err" || { cat "$W/err" >&2; exit 1; }
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}
runc_bin=$(command -v runc)
one "$kpa_oci" >/dev/null
one "$runc_bin" >/dev/null
kpa_times=()
runc_times=()
for ((i = 0; i < runs; i++)); do
    kpa_times+=("$(one "$kpa_oci")")
    runc_times+=("$(one "$runc_bin")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
k=$(median "${kpa_times[@]}")
r=$(median "${runc_times[@]}")
echo "podman run --rm /bin/true, median of $runs (ms):"
printf '  %-8s %6s   runs: %s\n' kpa-oci "$k" "${kpa_times[*]}"
printf '  %-8s %6s   runs: %s\n' runc "$r" "${runc_times[*]}"
awk -v k="$k" -v r="$r" 'BEGIN { printf "  ratio kpa-oci/runc: %.2f\n", k / r }'
