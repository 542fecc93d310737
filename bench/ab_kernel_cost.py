"""Kernel cost of the run-queue probe in two checkouts, interleaved: each round
runs `bench/nn_driver.py` of one tree and then of the other (alternating who
goes first) under the same workload, so host noise hits both alike. For
before/after figures of a change (BENCHMARKS.md).

    sudo .venv/bin/python bench/ab_kernel_cost.py --before ../old-checkout --after . \\
        --rounds 5 --seconds 5

Each checkout needs its own built `.venv`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

from kernel_cost import WORKLOADS, measure

MODES = {"histograms": [], "streaming": ["--stream"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workload", default="stress-ng --switch 2", choices=list(WORKLOADS))
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    results: dict[tuple[str, str], list[dict]] = {}
    subprocess.run(["sysctl", "-q", "kernel.bpf_stats_enabled=1"], check=True)
    try:
        for round_ in range(args.rounds):
            order = list(trees.items())
            if round_ % 2:
                order.reverse()
            for mode, extra in MODES.items():
                for name, root in order:
                    driver = [str(root / ".venv/bin/python"), str(root / "bench/nn_driver.py")]
                    r = measure(
                        [*driver, "--method", "sched_info", *extra],
                        WORKLOADS[args.workload],
                        args.seconds,
                    )
                    results.setdefault((mode, name), []).append(r)
                    print(round_, mode, name, f"{r['ns_per_switch']:.0f} ns", file=sys.stderr)
    finally:
        subprocess.run(["sysctl", "-q", "kernel.bpf_stats_enabled=0"], check=True)

    def median(mode: str, name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[(mode, name)])

    print(
        "| mode | before ns/switch | after ns/switch | ratio | before ops/s | after ops/s | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mode in MODES:
        b, a = median(mode, "before", "ns_per_switch"), median(mode, "after", "ns_per_switch")
        bo, ao = median(mode, "before", "ops_per_s"), median(mode, "after", "ops_per_s")
        print(
            f"| {mode}, sched_info | {b:.0f} | {a:.0f} | {a / b:.2f} | {bo:,.0f} | {ao:,.0f} "
            f"| {ao / bo:.2f} |"
        )


if __name__ == "__main__":
    main()
