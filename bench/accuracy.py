"""Accuracy of the run-queue probe against the kernel's own schedstat run_delay.

For each method and placement, runs a victim cgroup (a CPU-bound loop and a
2 ms periodic sleeper) beside a neighbor cgroup of CPU hogs, measures windows
between frozen moments (see noisy_neighbor.testing.measure_window), and prints
the relative error of each cgroup's total wait, median and worst over the runs.

    sudo .venv/bin/python bench/accuracy.py --runs 5 --seconds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import noisy_neighbor as nn
from noisy_neighbor.testing import CPU_HOG, TestCgroup, measure_window, periodic_sleeper


def one_run(method: str, pinned: bool, seconds: float) -> list[float]:
    cpus = {(os.cpu_count() or 1) - 1} if pinned else None
    with TestCgroup() as victims, TestCgroup() as neighbors, nn.RunqProbe(method=method) as probe:
        victims.run(CPU_HOG, cpus=cpus)
        victims.run(periodic_sleeper(0.002), cpus=cpus)
        for _ in range(2 if pinned else 3):
            neighbors.run(CPU_HOG, cpus=cpus)
        time.sleep(0.3)
        windows = measure_window(probe, [victims, neighbors], seconds)
    return [w.relative_error for w in windows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(f"{'method':<11} {'placement':<9} {'median err':>10} {'worst err':>10}  (n={args.runs})")
    for method in ("sched_info", "wakeup"):
        for pinned in (True, False):
            errors = [e for _ in range(args.runs) for e in one_run(method, pinned, args.seconds)]
            print(
                f"{method:<11} {'pinned' if pinned else 'unpinned':<9} "
                f"{statistics.median(errors):>10.4%} {max(errors):>10.4%}"
            )


if __name__ == "__main__":
    main()
