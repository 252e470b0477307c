#!/usr/bin/env python3
"""bench/steps.py: where kpa-run's start-up time goes, step by step.

    python3 bench/steps.py KPA_RUN STORE APP_ID [RUNS]

Runs KPA_RUN (the real binary, not a libtool wrapper) RUNS times with
KPA_TRACE_START=1, which makes libkpa print a CLOCK_MONOTONIC timestamp at
each step on stderr, and prints for each step the median time since the
previous event (all processes of the instance merged, in time order) and
since the exec of kpa-run. "exec+loading" is the time from just before the
exec to kpa-run's main(); "exit" is from its last trace to its end.
KPA_STEPS_OPTS="--network host ..." passes options to kpa-run."""
import os, statistics, subprocess, sys, time

kpa_run, store, app = sys.argv[1:4]
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 100
env = dict(os.environ, KPA_TRACE_START="1")
deltas, since, order, totals = {}, {}, [], []
for _ in range(runs):
    t0 = time.monotonic_ns() // 1000
    p = subprocess.run([kpa_run, "--root", store] + os.environ.get("KPA_STEPS_OPTS", "").split() + [app], env=env, stderr=subprocess.PIPE, text=True)
    t1 = time.monotonic_ns() // 1000
    ev = [("(before exec)", t0)]
    for line in p.stderr.splitlines():
        f = line.split(" ", 3)
        if len(f) == 4 and f[0] == "kpa-trace":
            ev.append((f[3], int(f[1])))
    ev.sort(key=lambda e: e[1])
    ev.append(("(kpa-run gone)", t1))
    for (name, t), (_, prev) in zip(ev[1:], ev):
        if name not in deltas:
            deltas[name], since[name] = [], []
            order.append(name)
        deltas[name].append(t - prev)
        since[name].append(t - t0)
    totals.append(t1 - t0)
    time.sleep(0.02)
print(f"{'step (median of %d)' % runs:36s} {'delta us':>9s} {'at us':>8s}")
for name in sorted(order, key=lambda n: statistics.median(since[n])):
    print(f"{name:36s} {statistics.median(deltas[name]):9.0f} {statistics.median(since[name]):8.0f}")
print(f"{'total':36s} {statistics.median(totals):9.0f}")
