# shellcheck shell=bash
# bench/lib.sh: sourced by the benchmarks once they have made their working
# directory $W. What a run leaves behind goes with it: $W, and the loop
# devices of its stores' sized private storage (storage-image.c), which stay
# attached until a purge; root's installs record their uids in a registry
# of the run's own, not the host's.
: "${W:?bench/lib.sh needs W}"
export KPA_UID_REGISTRY="$W/uid-registry"
bench_cleanup() {
    local f
    for f in /sys/block/loop*/loop/backing_file; do
        if [[ $(cat "$f" 2>/dev/null) == "$W"/* ]]; then
            f=${f#/sys/block/}
            losetup -d "/dev/${f%%/*}" 2>/dev/null || true
        fi
    done
    rm -rf "$W"
}
