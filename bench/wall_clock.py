"""Single waits by the wall clock, percentiles from the fine buckets, and
totals against schedstat, in one scene (issue 15): a sleeper pinned next to a
CPU hog, where every wakeup preempts the hog and the kernel skips its next
clock update. Per round, both methods watch the same waits at once (two
probes), the sched_info one also streaming every wait:

- the sleeper's median wait by the kernel's clock (the stream's latency_ns
  minus clock_correction_ns), corrected (the histogram's p50), and by the
  wakeup method;
- p50/p90/p99 of the sleeper's waits of at least 1 us from the kernel's fine
  buckets (and, for comparison, from the log2 table), against the exact ones
  of the same streamed waits;
- total_ns against schedstat's run_delay over the window (frozen at both ends).

    sudo .venv/bin/python bench/wall_clock.py --rounds 5 --seconds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

import noisy_neighbor as nn
from noisy_neighbor import fine_buckets
from noisy_neighbor.log2 import log2_percentile
from noisy_neighbor.testing import CPU_HOG, TestCgroup, measure_window, periodic_sleeper

QUANTILES = (50, 90, 99)


def one_round(seconds: float) -> dict[str, float]:
    cpu = (os.cpu_count() or 1) - 1
    with TestCgroup() as hogs, TestCgroup() as sleepers:
        hogs.run(CPU_HOG, cpus={cpu})
        sleepers.run(periodic_sleeper(0.002), cpus={cpu})
        time.sleep(0.3)
        with (
            nn.RunqProbe(
                method="sched_info", stream=True, cgroups=[sleepers.id], pending_batches=4096
            ) as by_clock,
            nn.RunqProbe(method="wakeup", cgroups=[sleepers.id]) as by_wakeup,
        ):
            (window,) = measure_window(by_clock, [sleepers], seconds)
            corrected, stamped = by_clock.latency(sleepers), by_wakeup.latency(sleepers)
            by_clock.stop()
            parts = [b.columns() for b in by_clock.batches()]
    wall = np.concatenate([p["latency_ns"] for p in parts])
    kernel = wall.astype(np.int64) - np.concatenate([p["clock_correction_ns"] for p in parts])
    assert corrected.buckets is not None
    long = wall[wall >= 1024]
    long_buckets = corrected.buckets.copy()
    long_buckets[: 1 + 9 * 10] = 0  # waits below 2**10 ns
    long_slots = fine_buckets.log2_slots(long_buckets)
    row = {
        "waits": float(corrected.count),
        "kernel clock p50 (us)": float(np.median(kernel)) / 1e3,
        "corrected p50 (us)": corrected.percentile(50) / 1e3,
        "wakeup method p50 (us)": stamped.percentile(50) / 1e3,
        "total_ns vs schedstat (%)": 100 * window.relative_error,
        "wall_ns / total_ns": (corrected.wall_ns or 0) / max(corrected.total_ns, 1),
    }
    row["corrected / wakeup"] = row["corrected p50 (us)"] / row["wakeup method p50 (us)"]
    for q in QUANTILES:
        exact = float(np.percentile(long, q, method="inverted_cdf"))
        fine = fine_buckets.percentile(long_buckets, q)
        coarse = log2_percentile(long_slots, q, int(long.max()))
        row[f"p{q} fine error (%)"] = 100 * abs(fine / exact - 1)
        row[f"p{q} log2 error (%)"] = 100 * abs(coarse / exact - 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: loading BPF needs it")
    rows = []
    for round_ in range(args.rounds):
        rows.append(one_round(args.seconds))
        print(f"round {round_}: {rows[-1]}", file=sys.stderr)
    print(f"\nmedians (and ranges) of {args.rounds} rounds, {args.seconds:g} s each\n")
    print("| figure | median | min | max |")
    print("|---|---:|---:|---:|")
    for name in rows[0]:
        values = [r[name] for r in rows]
        print(
            f"| {name} | {statistics.median(values):.4g} | {min(values):.4g} | {max(values):.4g} |"
        )


if __name__ == "__main__":
    main()
