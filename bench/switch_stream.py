"""Streaming every context switch to Python: noisy-neighbor's probe host
(a ten-line plugin, numpy batches) against bpftrace (printf, lines read from a
pipe), side by side in one run on the same workload.

For each tracer: events delivered to the Python process per second, events
lost, kernel ns per event (bpf_stats run time of its sched_switch program over
its runs), the workload's ops/s against its ops/s with no tracer, and the
tracer's user-space CPU time (its processes, reader included) per million
events delivered. Rounds alternate the order; figures are medians.

    sudo .venv/bin/python bench/switch_stream.py --rounds 5 --seconds 5

The bpftrace reader only counts lines (no parsing): the cheapest consumer
bpftrace's text allows. Needs bpftrace and stress-ng (make bench installs them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

from kernel_cost import measure, run_workload

HERE = Path(__file__).resolve().parent
DRIVER = [sys.executable, str(HERE / "switch_stream_drivers.py")]
TRACERS = {
    "noisy-neighbor plugin (numpy batches)": [*DRIVER, "plugin"],
    "bpftrace printf (text lines)": [*DRIVER, "bpftrace"],
}
WORKLOAD = ("stress-ng --switch 2", ["stress-ng", "--switch", "2"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: loading BPF and reading bpf_stats need it")
    if not os.path.ismount("/sys/kernel/tracing"):
        subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"], check=True)
    subprocess.run(["sysctl", "-q", "kernel.bpf_stats_enabled=1"], check=True)
    wname, workload = WORKLOAD
    baseline: list[float] = []
    results: dict[str, list[dict]] = {name: [] for name in TRACERS}
    try:
        for round_ in range(args.rounds):
            baseline.append(run_workload(workload, args.seconds))
            order = list(TRACERS.items())
            if round_ % 2:
                order.reverse()
            for name, argv in order:
                r = measure(argv, workload, args.seconds)
                results[name].append(r)
                print(f"round {round_} | {name}: {r}", file=sys.stderr)
    finally:
        subprocess.run(["sysctl", "-q", "kernel.bpf_stats_enabled=0"], check=True)

    base = statistics.median(baseline)
    print(f"\n{wname}: medians of {args.rounds} rounds, {args.seconds:g} s each\n")
    print(
        "| tracer | events/s into Python | lost | kernel ns per event | ops/s | vs no tracer "
        "| tracer CPU s per M events |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| none | | | | {base:,.0f} | 1.00 | |")
    medians = {}
    for name, rs in results.items():
        rate = statistics.median(r["report"]["delivered"] / r["report"]["elapsed_s"] for r in rs)
        lost = statistics.median(r["report"]["lost"] for r in rs)
        ns = statistics.median(r["ns_per_switch"] for r in rs)
        ops = statistics.median(r["ops_per_s"] for r in rs)
        cpu = statistics.median(r["report"]["cpu_s"] / r["report"]["delivered"] * 1e6 for r in rs)
        medians[name] = (rate, ns, ops, cpu)
        print(f"| {name} | {rate:,.0f} | {lost:,.0f} | {ns:,.0f} | {ops:,.0f} | {ops / base:.2f} "
              f"| {cpu:.3f} |")  # fmt: skip
    (nn_rate, nn_ns, nn_ops, nn_cpu), (bt_rate, bt_ns, bt_ops, bt_cpu) = medians.values()
    print(
        f"\nnoisy-neighbor / bpftrace: events/s {nn_rate / bt_rate:.2f}, kernel ns per event "
        f"{nn_ns / bt_ns:.3f}, workload ops/s {nn_ops / bt_ops:.2f}, CPU per event "
        f"{nn_cpu / bt_cpu:.4f}"
    )


if __name__ == "__main__":
    main()
