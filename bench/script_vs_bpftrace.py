"""bpftrace's language on the probe host (issue 21): the same programs through
`noisy-neighbor trace` / `nn.bpftrace()` and through bpftrace 0.17, measured
in one run, rounds interleaved (order reversed every other round), medians.

1. runqlat.bt under `stress-ng --switch 2`: kernel ns per context switch,
   summed over the script's programs (sched_switch's run time plus the
   sched_wakeup and sched_wakeup_new programs' run time, over the
   sched_switch program's runs, from kernel.bpf_stats_enabled), and the
   workload's ops/s against no tracer.
2. A printf of every context switch under the same workload: records per
   second delivered (into Python as numpy batches with nn.bpftrace; as text
   lines read from a pipe for bpftrace, written to a file for
   noisy-neighbor trace), losses,
   and the account: delivered + counted losses against the records written
   (the runs of the sched_switch program, which writes one per run, read
   once the tracer has exited from a descriptor this script holds). Each
   tracer runs twice: in this script's session, as the workload does, and
   in a session of its own (as from another terminal), which with
   CONFIG_SCHED_AUTOGROUP is a task group scheduled against the workload's.
3. Start-up of `trace -e 'BEGIN { exit(); }'` from command to exit: a fresh
   NN_CACHE_DIR (clang builds the precompiled vmlinux.h and compiles), a
   fresh one holding only the precompiled header (clang compiles), the same
   program again (cached), and bpftrace.

    sudo .venv/bin/python bench/script_vs_bpftrace.py --rounds 7 --seconds 5

Needs bpftrace and stress-ng (make bench installs them) and root.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kernel_cost import (
    WORKLOADS,
    programs,
    run_workload,
    running_tracer,
    runqlat_bt_without_headers,
)
from script_drivers import TRACE_CLI, held_stats, hold_program, my_tracepoints

HERE = Path(__file__).resolve().parent
WORKLOAD_NAME = "stress-ng --switch 2"
WORKLOAD = WORKLOADS[WORKLOAD_NAME]
DRIVER = [sys.executable, str(HERE / "script_drivers.py")]
SWITCH = "sched_switch"
STARTUP_PROGRAM = "BEGIN { exit(); }"
#: The drivers count from this long after "ready" (the workload starts
#: about 0.6 s after it) until `seconds` after it (the workload ends later).
WINDOW_START_S = 1.0


def runqlat_for_trace(directory: str) -> str:
    """runqlat.bt without its #include line: our trace knows TASK_RUNNING."""
    lines = Path("/usr/sbin/runqlat.bt").read_text().splitlines(keepends=True)
    path = Path(directory) / "runqlat_trace.bt"
    path.write_text("".join(line for line in lines if not line.startswith("#include")))
    return str(path)


def traced(argv: list[str], account: bool, seconds: float) -> dict:
    """Runs the workload under a tracer: per tracepoint, run time and runs of
    its programs during the workload; the workload's ops/s; the tracer's
    report; with ``account``, the sched_switch program's runs over its whole
    life, read after the tracer exited (holding it makes our host's stop()
    wait 2 s for the program to go, in vain: a cost outside every window)."""
    held: dict[int, int] = {}
    try:
        with running_tracer(argv) as (ids, report):
            points = my_tracepoints(ids)
            held = {p: hold_program(p) for p, tp in points.items() if account and tp == SWITCH}
            start = programs()
            ops = run_workload(WORKLOAD, seconds)
            end = programs()
        final_runs = sum(held_stats(fd)[1] for fd in held.values())
    finally:
        for fd in held.values():
            os.close(fd)
    by_tp: dict[str, list[int]] = {}
    for prog, tp in points.items():
        delta = [end[prog][k] - start[prog].get(k, 0) for k in ("run_time_ns", "run_cnt")]
        total = by_tp.setdefault(tp, [0, 0])
        total[0] += delta[0]
        total[1] += delta[1]
    return {"ops_per_s": ops, "by_tp": by_tp, "written": final_runs, "report": dict(report)}


def cost(r: dict) -> dict:
    """ns per switch: the switch program's own, the wakeup programs' (over
    the same switches), and their sum."""
    switch_ns, switches = r["by_tp"][SWITCH]
    wakeup_ns = sum(ns for tp, (ns, _) in r["by_tp"].items() if tp.startswith("sched_wakeup"))
    return {
        "switch": switch_ns / switches,
        "wakeup": wakeup_ns / switches,
        "all": (switch_ns + wakeup_ns) / switches,
        "other_tps": sorted(set(r["by_tp"]) - {SWITCH, "sched_wakeup", "sched_wakeup_new"}),
    }


def as_a_user_runs_it(tmp: str) -> None:
    """Python as a user's shell runs it: bytecode cached (here outside the
    tree) and stdout buffered. Some shells and CI set PYTHONDONTWRITEBYTECODE
    (every start compiles the modules again) or PYTHONUNBUFFERED (a write
    system call per printf line). Inherited by every tracer started here."""
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"):
        os.environ.pop(name, None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")


def startup_env(cache: Path) -> dict[str, str]:
    return {**os.environ, "NN_CACHE_DIR": str(cache)}


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


class Startup:
    """Start-up of `trace -e 'BEGIN { exit(); }'` and of bpftrace's, each
    case once per call (interleaved with the other scenes)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.warm = tmp / "warm"
        self.argv = [TRACE_CLI, "trace", "-e", STARTUP_PROGRAM]
        self.runs = 0
        self.btf_cache_written = False
        # untimed: bytecode compiled, precompiled header built, object cached
        timed(self.argv, startup_env(self.warm))
        timed(["bpftrace", "-e", STARTUP_PROGRAM])
        self.pch = next((self.warm / "pch").iterdir())

    def fresh(self, with_pch: bool) -> Path:
        self.runs += 1
        cache = self.tmp / f"fresh-{self.runs}"
        cache.mkdir()
        if with_pch:
            shutil.copytree(self.pch, cache / "pch" / self.pch.name)
        return cache

    def measure(self) -> dict[str, float]:
        cold, pch_only = self.fresh(with_pch=False), self.fresh(with_pch=True)
        out = {
            "trace, fresh NN_CACHE_DIR": timed(self.argv, startup_env(cold)),
            "trace, fresh but its PCH": timed(self.argv, startup_env(pch_only)),
            "trace, cached": timed(self.argv, startup_env(self.warm)),
            "bpftrace": timed(["bpftrace", "-e", STARTUP_PROGRAM]),
        }
        self.btf_cache_written |= (cold / "btf").exists() or (pch_only / "btf").exists()
        shutil.rmtree(cold)
        shutil.rmtree(pch_only)
        return out


def med(values) -> float:
    return statistics.median(list(values))


def report(args: argparse.Namespace, results: dict[str, list], startup: Startup) -> None:
    base = med(r["ops_per_s"] for r in results["none"])
    print(f"\n{WORKLOAD_NAME}: medians of {args.rounds} rounds, {args.seconds:g} s each\n")
    print("### 1. runqlat.bt: kernel ns per context switch\n")
    print("| tracer | sched_switch ns/run | wakeups ns/switch | sum ns/switch | vs bpftrace "
          "| ops/s | vs no tracer |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| none | | | | | {base:,.0f} | 1.00 |")
    costs = {name: [cost(r) for r in results[name]] for name in ("rq trace", "rq bpftrace")}
    bt_all = med(c["all"] for c in costs["rq bpftrace"])
    for name, label in (("rq trace", "noisy-neighbor trace"), ("rq bpftrace", "bpftrace")):
        cs = costs[name]
        ops = med(r["ops_per_s"] for r in results[name])
        total = med(c["all"] for c in cs)
        print(f"| {label} | {med(c['switch'] for c in cs):,.0f} | "
              f"{med(c['wakeup'] for c in cs):,.0f} | {total:,.0f} | {total / bt_all:.2f} | "
              f"{ops:,.0f} | {ops / base:.2f} |")  # fmt: skip
    per_round = [t["all"] / b["all"] for t, b in zip(costs["rq trace"], costs["rq bpftrace"])]
    print(f"\nsum ns/switch, trace / bpftrace per round: {', '.join(f'{x:.2f}' for x in per_round)}"
          f" (median {med(per_round):.2f})")  # fmt: skip
    others = {tp for cs in costs.values() for c in cs for tp in c["other_tps"]}
    print(f"programs on other tracepoints during the workload: {sorted(others) or 'none'}")

    print("\n### 2. printf of every context switch\n")
    print("| path | records/s delivered | lost (counted) | unaccounted | kernel ns/record "
          "| ops/s | vs no tracer | tracer CPU s per M records |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| none | | | | | {base:,.0f} | 1.00 | |")
    rates = {}
    for name in (*PRINTF_SCENES, *(f"{name} own" for name in PRINTF_SCENES)):
        rs = results[name]
        rate = med(r["report"]["window_events"] / r["report"]["window_s"] for r in rs)
        rates[name] = rate
        lost = med(r["report"]["lost"] for r in rs)
        unaccounted = [r["written"] - r["report"]["delivered"] - r["report"]["lost"] for r in rs]
        ns = med(r["by_tp"][SWITCH][0] / r["by_tp"][SWITCH][1] for r in rs)
        ops = med(r["ops_per_s"] for r in rs)
        cpu = med(r["report"]["cpu_s"] / r["report"]["delivered"] * 1e6 for r in rs)
        label = LABELS[name.removesuffix(" own")] + (", own session" if "own" in name else "")
        print(f"| {label} | {rate:,.0f} | {lost:,.0f} | {med(unaccounted):,.0f} "
              f"(max {max(unaccounted, key=abs):,}) | {ns:,.0f} | {ops:,.0f} | {ops / base:.2f} "
              f"| {cpu:.3f} |")  # fmt: skip
    ratio = [b["report"]["window_events"] / b["report"]["window_s"]
             / (t["report"]["window_events"] / t["report"]["window_s"])
             for b, t in zip(results["pf batches"], results["pf bpftrace"])]  # fmt: skip
    overall = rates["pf batches"] / rates["pf bpftrace"]
    rounds = ", ".join(f"{x:.1f}" for x in ratio)
    print(f"\nrecords/s, nn.bpftrace batches / bpftrace: {overall:.1f} (per round: {rounds})")
    print(
        "\nthe account of nn.bpftrace, per round: written = delivered + lost_events "
        "+ dropped_batch_events"
    )
    for r in results["pf batches"] + results["pf batches own"]:
        s, rep = r["report"]["stats"], r["report"]
        print(f"  {r['written']:,} = {rep['delivered']:,} + {s['lost_events']:,} + "
              f"{s['dropped_batch_events']:,}  (window {rep['window_events']:,} in "
              f"{rep['window_s']:.2f} s)")  # fmt: skip

    print(f"\n### 3. start-up, command to exit, {len(results['startup'])} runs each\n")
    print("| command | median | min | max |\n|---|---:|---:|---:|")
    for case in results["startup"][0]:
        xs = [run[case] for run in results["startup"]]
        print(f"| {case} | {med(xs) * 1000:.0f} ms | {min(xs) * 1000:.0f} | "
              f"{max(xs) * 1000:.0f} |")  # fmt: skip
    print(f"\nBTF index written to a fresh NN_CACHE_DIR: {startup.btf_cache_written}")


PRINTF_SCENES = ("pf batches", "pf trace", "pf bpftrace")
LABELS = {
    "pf batches": "nn.bpftrace, script.batches() into Python",
    "pf trace": "noisy-neighbor trace, text into a file",
    "pf bpftrace": "bpftrace, text lines from a pipe",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--startup-runs", type=int, default=2, help="per round")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: loading BPF and reading bpf_stats need it")
    if not os.path.ismount("/sys/kernel/tracing"):
        subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"], check=True)
    window = ["--window-start", str(WINDOW_START_S), "--window", str(args.seconds - 1.0)]
    results: dict[str, list] = {}
    subprocess.run(["sysctl", "-q", "kernel.bpf_stats_enabled=1"], check=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            as_a_user_runs_it(tmp)
            tracers = {  # name: (argv, whether to account for every record)
                "rq trace": ([TRACE_CLI, "trace", runqlat_for_trace(tmp)], False),
                "rq bpftrace": (["bpftrace", runqlat_bt_without_headers(tmp)], False),
                "pf batches": ([*DRIVER, "batches", *window], True),
                "pf trace": ([*DRIVER, "file", *window], True),
                "pf bpftrace": ([*DRIVER, "text", "bpftrace", *window], True),
            }
            for name in PRINTF_SCENES:
                argv = tracers[name][0]
                tracers[f"{name} own"] = ([*argv, "--own-session"], True)
            startup = Startup(Path(tmp))
            for round_ in range(args.rounds):
                order = ["none", *tracers, "startup"]
                if round_ % 2:
                    order.reverse()
                for name in order:
                    if name == "startup":
                        for _ in range(args.startup_runs):
                            results.setdefault(name, []).append(startup.measure())
                        print(f"round {round_} | startup: {results[name][-1]}", file=sys.stderr)
                        continue
                    if name == "none":
                        r = {"ops_per_s": run_workload(WORKLOAD, args.seconds)}
                    else:
                        r = traced(*tracers[name], seconds=args.seconds)
                    results.setdefault(name, []).append(r)
                    print(f"round {round_} | {name}: {r}", file=sys.stderr)
            report(args, results, startup)
    finally:
        subprocess.run(["sysctl", "-q", "kernel.bpf_stats_enabled=0"], check=True)


if __name__ == "__main__":
    main()
