"""Cost per context switch when one cgroup's load runs on both CPUs, against
the same load split over two cgroups: the cost of CPUs sharing a cgroup's
histogram (issue 15). Each scene runs `stress-ng --switch 1` pinned to CPU 0
and another pinned to CPU 1, in one cgroup ("same") or one cgroup each
("split"). A third scene runs one instance, on CPU 0 only ("one CPU"): against
it, "split" shows what two CPUs producing at once cost (the ring buffer's lock
and cache lines while streaming; in histogram mode, only what two busy vCPUs
cost each other). Rounds alternate the order of the scenes; figures are
medians, and each ratio is taken per round, then its median.

    sudo .venv/bin/python bench/cgroup_spread.py --rounds 7 --seconds 4
    sudo .venv/bin/python bench/cgroup_spread.py --tree ../before --tree .

With --tree, each checkout's own `.venv` and `bench/nn_driver.py` run the
probe, in the same rounds (before/after in one run).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from kernel_cost import bpf_cost, programs, running_tracer

from noisy_neighbor.testing import TestCgroup

MODES = {"histograms": [], "streaming": ["--stream"]}
SWITCH = ["stress-ng", "--switch", "1", "--metrics-brief"]


@contextlib.contextmanager
def scene(name: str) -> Iterator[list[TestCgroup]]:
    """The cgroups the instances run in (on CPU 0, then CPU 1): one shared,
    one each, or a single instance."""
    cgroups = [TestCgroup()] if name != "split" else [TestCgroup(), TestCgroup()]
    try:
        yield cgroups[:1] if name == "one CPU" else [cgroups[0], cgroups[-1]]
    finally:
        for cgroup in cgroups:
            cgroup.remove()


def run_scene(name: str, seconds: float) -> None:
    with scene(name) as cgroups:
        procs = [
            cgroup.run([*SWITCH, "--timeout", f"{seconds}s"], cpus={cpu})
            for cpu, cgroup in enumerate(cgroups)
        ]
        for proc in procs:
            if proc.wait(timeout=seconds + 60) != 0:
                raise RuntimeError("stress-ng failed")


def measure(driver: list[str], scene_name: str, seconds: float) -> float:
    """ns of BPF run time per sched_switch run, all programs of the probe."""
    with running_tracer(driver) as (ids, _report):
        start = {i: p for i, p in programs().items() if i in ids}
        run_scene(scene_name, seconds)
        end = {i: p for i, p in programs().items() if i in ids}
    run_ns, switches = bpf_cost(ids, start, end)
    return run_ns / switches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--tree", type=Path, action="append", help="checkouts to compare")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: loading BPF and reading bpf_stats need it")
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs two CPUs")
    trees = [t.resolve() for t in args.tree or [Path(__file__).resolve().parent.parent]]
    drivers = {
        (tree.name, mode): [
            str(tree / ".venv/bin/python"),
            str(tree / "bench/nn_driver.py"),
            "--method",
            "sched_info",
            *flags,
        ]
        for tree in trees
        for mode, flags in MODES.items()
    }
    cost: dict[tuple[str, str, str], list[float]] = {}
    subprocess.run(["sysctl", "-q", "kernel.bpf_stats_enabled=1"], check=True)
    try:
        for round_ in range(args.rounds):
            scenes = ["same", "split", "one CPU"]
            if round_ % 2:
                scenes.reverse()
            for key, driver in drivers.items():
                for name in scenes:
                    ns = measure(driver, name, args.seconds)
                    cost.setdefault((*key, name), []).append(ns)
                    print(f"round {round_} {key} {name}: {ns:.1f} ns/switch", file=sys.stderr)
    finally:
        subprocess.run(["sysctl", "-q", "kernel.bpf_stats_enabled=0"], check=True)

    print(f"\nmedians of {args.rounds} rounds, {args.seconds:g} s each\n")
    print("| checkout | mode | same cgroup | split | one CPU | same / split | split / one CPU |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for tree, mode in drivers:
        same, split, one = (cost[(tree, mode, name)] for name in ("same", "split", "one CPU"))
        same_split = statistics.median(a / b for a, b in zip(same, split))
        split_one = statistics.median(a / b for a, b in zip(split, one))
        print(
            f"| {tree} | {mode} | {statistics.median(same):.0f} | {statistics.median(split):.0f} "
            f"| {statistics.median(one):.0f} | {same_split:.2f} | {split_one:.2f} |"
        )
    print("\n(ns of BPF run time per context switch, all programs)")


if __name__ == "__main__":
    main()
