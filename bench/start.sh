#!/bin/bash
# bench/start.sh: wall time to start and finish a trivial application
# (/bin/true) with kpa-run (full isolation) against bwrap, unshare and a bare
# fork+exec, measured in one run, interleaved, as medians.
#
#   bash bench/start.sh [BUILDDIR] [RUNS]      (as root)
#
# KPA_BENCH_BASE=OTHER_BUILDDIR adds that build's kpa-run as two more rows
# (the same package, as a package of its own; and the one without storage),
# timed in the same loop (before/after comparisons of a change).
# KPA_BENCH_SPACING_MS=50 spaces every start that far from the one before
# (default: the commands of a round back to back, 20 ms between rounds).
# KPA_BENCH_DRIVERS=1 adds kpa-run with --cgroup-driver systemd and
# cgroupfs as rows (the systemd guest: the scope's D-Bus round trip).
# The package is /bin/true with mkpkg.py's default 10 MB ext4 private
# storage (an image on a loop device, whose file system a kpa-keep process
# keeps mounted between starts, storage-keep.c; the row "KPA_STORAGE_LINGER=0"
# mounts and unmounts it in each start, as kpa did before; the row "kpa-run,
# no sized storage" is the same package without it).
# The "floor" row is bench/floor.c, built here statically: the namespaces,
# root and vfork of a sandbox and nothing else, the least a start costs on
# this machine (kpa-run's row minus it is the price of everything else).
set -euo pipefail
builddir=$(cd "${1:-build}" && pwd)
runs=${2:-200}
src=$(cd "$(dirname "$0")/.." && pwd)
command -v bwrap >/dev/null || { apt-get install -y -qq bubblewrap >/dev/null; }

W=$(mktemp -d /var/tmp/kpa-bench-start.XXXXXX)
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
BENCH_APPS="org.example.true org.example.nostor org.example.true0 org.example.trueb"
trap 'bench_cleanup' EXIT
/usr/bin/python3 "$src/tests/integration/mkpkg.py" "$W/true.kpa" --id org.example.true \
    --bin /bin/true --set 'runConfigurations[0].args=[]'
"$builddir/src/tools/kpa-install" --root "$W/store" -q "$W/true.kpa"
/usr/bin/python3 "$src/tests/integration/mkpkg.py" "$W/nostor.kpa" --id org.example.nostor \
    --bin /bin/true --set 'runConfigurations[0].args=[]' --delete privateStorage
"$builddir/src/tools/kpa-install" --root "$W/store" -q "$W/nostor.kpa"
# the same as org.example.true, for the row that mounts its storage in each
# start (KPA_STORAGE_LINGER=0), and for KPA_BENCH_BASE's row (a build with
# kpa-keep keeps it, one from before mounts it in each start): an app of
# their own each, so that no other row's keeper serves them
for a in true0 trueb; do
    /usr/bin/python3 "$src/tests/integration/mkpkg.py" "$W/$a.kpa" --id org.example.$a \
        --bin /bin/true --set 'runConfigurations[0].args=[]'
    "$builddir/src/tools/kpa-install" --root "$W/store" -q "$W/$a.kpa"
done
${CC:-cc} -O2 -static -o "$W/floor" "$src/bench/floor.c" 2>/dev/null ||
    ${CC:-cc} -O2 -o "$W/floor" "$src/bench/floor.c"

/usr/bin/python3 - "$runs" "$builddir/src/tools/kpa-run" "$W/store" "$W/floor" <<'PY'
import os, random, subprocess, sys, time, statistics
runs, kpa_run, store, floor = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
# kpa-run links libkpa-core statically and is the real binary; should it be
# a libtool wrapper script (linked to libkpa.so), which would add a shell to
# every start, time the real binary behind it
real = os.path.join(os.path.dirname(kpa_run), ".libs", os.path.basename(kpa_run))
env = dict(os.environ)
with open(kpa_run, "rb") as f:
    is_script = f.read(2) == b"#!"
if is_script and os.path.exists(real):
    env["LD_LIBRARY_PATH"] = os.path.join(os.path.dirname(os.path.dirname(kpa_run)), "lib", ".libs")
    kpa_run = real
cmds = {
    "kpa-run (full isolation)": [kpa_run, "--root", store, "org.example.true"],
    "kpa-run, no sized storage": [kpa_run, "--root", store, "org.example.nostor"],
    "kpa-run, KPA_STORAGE_LINGER=0": [kpa_run, "--root", store, "org.example.true0"],
}
# per-command environments (no env(1) in the timed path)
cmd_env = {"kpa-run, KPA_STORAGE_LINGER=0": dict(env, KPA_STORAGE_LINGER="0")}
if os.environ.get("KPA_BENCH_DRIVERS"):
    for d in ("systemd", "cgroupfs"):
        cmds[f"kpa-run --cgroup-driver {d}"] = [kpa_run, "--root", store, "--cgroup-driver", d,
                                                "org.example.nostor"]
base = os.environ.get("KPA_BENCH_BASE")
if base:
    cmds["kpa-run of KPA_BENCH_BASE"] = [os.path.join(base, "src", "tools", "kpa-run"), "--root",
                                         store, "org.example.trueb"]
    cmds["KPA_BENCH_BASE, no sized storage"] = [os.path.join(base, "src", "tools", "kpa-run"),
                                                "--root", store, "org.example.nostor"]
cmds |= {
    "bwrap --unshare-all": ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
                            "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib",
                            "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin",
                            "--proc", "/proc", "--dev", "/dev", "/bin/true"],
    "unshare (pid,mnt,ipc,uts,net,cgroup)": ["unshare", "--fork", "--pid", "--mount", "--ipc",
                            "--uts", "--net", "--cgroup", "--mount-proc", "/bin/true"],
    "floor (bench/floor.c)": [floor],
    "bare fork+exec": ["/bin/true"],
}
times = {k: [] for k in cmds}
for k, c in list(cmds.items()):  # warm up, and fail loudly if a command does not work
    if k.startswith("kpa-run --cgroup-driver") and subprocess.run(c, env=env).returncode != 0:
        print(f"({k}: does not work here, left out)")
        del cmds[k], times[k]
        continue
    subprocess.run(c, check=True, env=cmd_env.get(k, env))
# Each round starts after a pause, and its first command pays for the idle
# CPU (measured: 0.6 ms of 5 for the same kpa-run run twice a round); and
# each command pays for some of what the one before left to the kernel (a
# network namespace is cleaned up by a kernel worker after its last process
# has gone: 0.1-0.2 ms of the next command's time, measured). So the order
# is shuffled every round (a fixed seed: runs repeat), and every command
# follows every other about as often. (It rotated before, which kept each
# command after the same one.)
order = list(cmds.items())
rng = random.Random(15)
spacing = int(os.environ.get("KPA_BENCH_SPACING_MS", "0")) / 1000
for r in range(runs):
    rng.shuffle(order)
    for k, c in order:
        time.sleep(spacing)
        t0 = time.perf_counter_ns()
        subprocess.run(c, env=cmd_env.get(k, env))
        times[k].append(time.perf_counter_ns() - t0)
    time.sleep(0.02)  # spread starts out, as real ones are (PERF-NOTES: the cgroup trap)
med = {k: statistics.median(v) / 1e6 for k, v in times.items()}
p90 = {k: sorted(v)[int(len(v) * 0.9)] / 1e6 for k, v in times.items()}
print(f"{'median of %d runs' % runs:40s} {'ms':>8s} {'p90 ms':>8s}")
for k in cmds:
    print(f"{k:40s} {med[k]:8.2f} {p90[k]:8.2f}")
b = med["bwrap --unshare-all"]
print(f"ratio kpa-run / bwrap: {med['kpa-run (full isolation)'] / b:.2f}  (goal <= 0.60)")
print(f"ratio kpa-run, no sized storage / bwrap: {med['kpa-run, no sized storage'] / b:.2f}")
print(f"ratio kpa-run, KPA_STORAGE_LINGER=0 / bwrap: {med['kpa-run, KPA_STORAGE_LINGER=0'] / b:.2f}")
for d in ("systemd", "cgroupfs"):
    if f"kpa-run --cgroup-driver {d}" in med:
        print(f"ratio kpa-run --cgroup-driver {d} / bwrap: {med[f'kpa-run --cgroup-driver {d}'] / b:.2f}")
print(f"ratio unshare / bwrap: {med['unshare (pid,mnt,ipc,uts,net,cgroup)'] / b:.2f}")
print(f"ratio floor / bwrap: {med['floor (bench/floor.c)'] / b:.2f}")
if base:
    print(f"ratio KPA_BENCH_BASE's kpa-run / bwrap: {med['kpa-run of KPA_BENCH_BASE'] / b:.2f}")
    print(f"ratio KPA_BENCH_BASE, no sized storage / bwrap: "
          f"{med['KPA_BENCH_BASE, no sized storage'] / b:.2f}")
PY
