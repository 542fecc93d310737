"""Kernel cost per context switch, and workload slowdown, of noisy-neighbor's
probe against bpftrace's runqlat.bt, measured in one run on the same workloads.

Cost is all-in: the run time of all of a tracer's BPF programs (wakeup ones
included), from kernel.bpf_stats_enabled, divided by the number of runs of its
sched_switch program. Slowdown is the workload's ops/s with the tracer over
its ops/s with none. Rounds alternate tracers; figures are medians.

    sudo .venv/bin/python bench/kernel_cost.py --rounds 3 --seconds 5

Needs bpftrace and stress-ng (make bench installs them) and root.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNQLAT_BT = Path("/usr/sbin/runqlat.bt")

WORKLOADS = {
    # pipe ping-pong between pairs of processes: a switch per message
    "stress-ng --switch 2": ["stress-ng", "--switch", "2"],
    # futex wait/wake between processes: wakeup-heavy
    "stress-ng --futex 2": ["stress-ng", "--futex", "2"],
    # busy loops time-slicing on two CPUs: preemption-heavy
    "stress-ng --cpu 6": ["stress-ng", "--cpu", "6", "--cpu-method", "int64"],
}


def runqlat_bt_without_headers(directory: str) -> str:
    """bpftrace's runqlat.bt includes <linux/sched.h>, absent without kernel
    headers; its only use is TASK_RUNNING, which is 0."""
    text = RUNQLAT_BT.read_text()
    text = re.sub(r"^#include.*$", "", text, flags=re.M).replace("TASK_RUNNING", "0")
    path = Path(directory) / "runqlat.bt"
    path.write_text(text)
    return str(path)


def tracers(bt_script: str, before: Path | None = None) -> dict[str, list[str]]:
    driver = [sys.executable, str(HERE / "nn_driver.py")]
    earlier: dict[str, list[str]] = {}
    if before is not None:
        # Another checkout's probe (its own .venv), for before/after ratios
        # against bpftrace measured in the same rounds.
        old = [str(before / ".venv/bin/python"), str(before / "bench/nn_driver.py")]
        earlier = {
            "before: histograms, sched_info": [*old, "--method", "sched_info"],
            "before: streaming, sched_info": [*old, "--method", "sched_info", "--stream"],
        }
    return {
        **earlier,
        "noisy-neighbor histograms, sched_info": [*driver, "--method", "sched_info"],
        "noisy-neighbor streaming, sched_info": [*driver, "--method", "sched_info", "--stream"],
        "noisy-neighbor attribution, sched_info": [
            *driver,
            "--method",
            "sched_info",
            "--attribution",
        ],
        "noisy-neighbor histograms, wakeup": [*driver, "--method", "wakeup"],
        "noisy-neighbor streaming, wakeup": [*driver, "--method", "wakeup", "--stream"],
        "bpftrace runqlat.bt": ["bpftrace", bt_script],
    }


def programs() -> dict[int, dict]:
    out = subprocess.run(
        ["bpftool", "prog", "show", "--json"], check=True, capture_output=True, text=True
    ).stdout
    return {p["id"]: p for p in json.loads(out)}


@contextlib.contextmanager
def running_tracer(argv: list[str]) -> Iterator[tuple[set[int], dict]]:
    """Starts a tracer, waits until it is attached, yields its program ids and
    (after it exits) its final report, if it prints one."""
    before = set(programs())
    # SIGINT ends a tracer; a shell that starts this script in the background
    # ignores SIGINT, and children inherit that: restore the default.
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    report: dict = {}
    try:
        for line in proc.stdout:
            if line.startswith(("ready", "Tracing")):
                break
        time.sleep(0.5)
        yield set(programs()) - before, report
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        for line in out.splitlines():
            if line.startswith("{"):
                report.update(json.loads(line))


def run_workload(argv: list[str], seconds: float) -> float:
    """Runs a stress-ng workload; returns its bogo ops/s (real time)."""
    out = subprocess.run(
        [*argv, "--timeout", f"{seconds}s", "--metrics-brief"],
        check=True,
        capture_output=True,
        text=True,
    )
    for line in (out.stdout + out.stderr).splitlines():
        fields = line.split()
        # "stress-ng: metrc: [pid] switch  ops  real usr sys  ops/s(real) ops/s(cpu)"
        if len(fields) >= 9 and fields[1] == "metrc:" and fields[4].replace(".", "").isdigit():
            return float(fields[8])
    raise RuntimeError(f"no metrics in stress-ng output:\n{out.stdout}{out.stderr}")


def bpf_cost(ids: set[int], start: dict[int, dict], end: dict[int, dict]) -> tuple[int, int]:
    """Run time of all the programs ``ids`` between two ``programs()``
    readings, and the runs of their sched_switch program(s)."""
    run_ns = sum(end[i].get("run_time_ns", 0) - start[i].get("run_time_ns", 0) for i in ids)
    switch_runs = sum(
        end[i].get("run_cnt", 0) - start[i].get("run_cnt", 0)
        for i in ids
        if "switch" in end[i].get("name", "")
    )
    return run_ns, switch_runs


def measure(tracer: list[str], workload: list[str], seconds: float) -> dict:
    with running_tracer(tracer) as (ids, report):
        start = {i: p for i, p in programs().items() if i in ids}
        ops = run_workload(workload, seconds)
        end = {i: p for i, p in programs().items() if i in ids}
    run_ns, switch_runs = bpf_cost(ids, start, end)
    return {
        "ops_per_s": ops,
        "ns_per_switch": run_ns / switch_runs if switch_runs else float("nan"),
        "switches": switch_runs,
        "report": dict(report),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workload", action="append", help="only these (repeatable)")
    parser.add_argument("--tracer", action="append", help="only these, besides bpftrace")
    parser.add_argument("--before", type=Path, help="also run this checkout's probe")
    args = parser.parse_args()
    workloads = {k: v for k, v in WORKLOADS.items() if not args.workload or k in args.workload}
    if os.geteuid() != 0:
        sys.exit("run as root: loading BPF and reading bpf_stats need it")
    if not os.path.ismount("/sys/kernel/tracing"):
        subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"], check=True)
    subprocess.run(["sysctl", "-q", "kernel.bpf_stats_enabled=1"], check=True)
    results: dict[tuple[str, str], list[dict]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            all_tracers = {
                name: argv
                for name, argv in tracers(runqlat_bt_without_headers(tmp), args.before).items()
                if not args.tracer or name in args.tracer or name == "bpftrace runqlat.bt"
            }
            for round_ in range(args.rounds):
                for wname, workload in workloads.items():
                    results.setdefault((wname, "none"), []).append(
                        {"ops_per_s": run_workload(workload, args.seconds)}
                    )
                    order = list(all_tracers.items())
                    if round_ % 2:
                        order.reverse()
                    for tname, tracer in order:
                        r = measure(tracer, workload, args.seconds)
                        results.setdefault((wname, tname), []).append(r)
                        print(f"round {round_} {wname} | {tname}: {r}", file=sys.stderr)
    finally:
        subprocess.run(["sysctl", "-q", "kernel.bpf_stats_enabled=0"], check=True)

    print(f"\nmedians of {args.rounds} rounds, {args.seconds:g} s each\n")
    print("| workload | tracer | ns per switch (all-in) | vs bpftrace | ops/s | vs no tracer |")
    print("|---|---|---:|---:|---:|---:|")
    for wname in workloads:
        base = statistics.median(r["ops_per_s"] for r in results[(wname, "none")])
        bt = statistics.median(r["ns_per_switch"] for r in results[(wname, "bpftrace runqlat.bt")])
        print(f"| {wname} | none | | | {base:,.0f} | 1.00 |")
        for tname in all_tracers:
            rs = results[(wname, tname)]
            ns = statistics.median(r["ns_per_switch"] for r in rs)
            ops = statistics.median(r["ops_per_s"] for r in rs)
            print(
                f"| {wname} | {tname} | {ns:,.0f} | {ns / bt:.2f} | {ops:,.0f} | {ops / base:.2f} |"
            )
    print("\nstreaming: events delivered to Python, and losses (median over rounds)\n")
    print("| workload | method | events/s into Python | dropped_ringbuf | dropped_batch_events |")
    print("|---|---|---:|---:|---:|")
    for wname in workloads:
        for method in ("sched_info", "wakeup"):
            key = (wname, f"noisy-neighbor streaming, {method}")
            if key not in results:
                continue
            reps = [r["report"] for r in results[key]]
            rate = statistics.median(r["streamed"] / r["elapsed_s"] for r in reps)
            ring = statistics.median(r["dropped_ringbuf"] for r in reps)
            batch = statistics.median(r["dropped_batch_events"] for r in reps)
            print(f"| {wname} | {method} | {rate:,.0f} | {ring:,.0f} | {batch:,.0f} |")


if __name__ == "__main__":
    main()
