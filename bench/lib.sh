# shellcheck shell=bash
# bench/lib.sh: sourced by the benchmarks once they have made their working
# directory $W. What a run leaves behind goes with it: $W, and the loop
# devices of its stores' sized private storage (storage-image.c), which stay
# attached until a purge; root's installs record their uids in a registry
# of the run's own, not the host's.
# Also the groups kpa.slice/APP that kpa keeps for the next start (below
# this shell's cgroup, each hierarchy) of the apps in BENCH_APPS, when
# empty.
: "${W:?bench/lib.sh needs W}"
export KPA_UID_REGISTRY="$W/uid-registry"
bench_cleanup() {
    local f a
    # the kpa-keep processes of the bench's sized storages (storage-keep.c)
    for a in ${BENCH_APPS:-}; do
        "${builddir:-.}/src/tools/kpa-install" --root "$W/store" --release-storage "$a" 2>/dev/null || true
    done
    for f in /sys/block/loop*/loop/backing_file; do
        if [[ $(cat "$f" 2>/dev/null) == "$W"/* ]]; then
            f=${f#/sys/block/}
            losetup -d "/dev/${f%%/*}" 2>/dev/null || true
        fi
    done
    rm -rf "$W"
    local ctrls path mnt a
    while IFS=: read -r _ ctrls path; do
        case $ctrls in
        "") mnt=/sys/fs/cgroup; [ -d /sys/fs/cgroup/unified ] && mnt=/sys/fs/cgroup/unified ;;
        name=*) continue ;;
        *) mnt=/sys/fs/cgroup/${ctrls%%,*} ;;
        esac
        for a in ${BENCH_APPS:-}; do
            rmdir "$mnt${path%/}/kpa.slice/$a" 2>/dev/null || true
        done
    done </proc/self/cgroup
}
