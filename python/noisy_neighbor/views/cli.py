"""The ``noisy-neighbor`` command."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from .._native import __version__
from ..analysis.intervals import IntervalReports
from ..errors import NoisyNeighborError
from ..names.hybrid import v1_only_cgroups, v1_only_note
from ..runq.histogram import CgroupHistogram
from ..runq.probe import METHODS, RunqProbe
from ..runq.verdicts import NoisyNeighborReport
from ..units import UNITS, format_ns
from .cli_args import Parser, positive_float, positive_int
from .cli_run import add_run_parser, run_plugin
from .cli_serve import add_serve_parser, run_serve
from .cli_trace import USAGE as TRACE_USAGE
from .cli_trace import add_trace_parser, run_trace
from .demo import run_demo
from .keys import quit_keys

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="noisy-neighbor",
        description="Per-cgroup CPU run-queue latency from eBPF (needs root).",
    )
    parser.add_argument("--version", action="version", version=f"noisy-neighbor {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="catch a noisy neighbor on this machine in a few seconds (start here)",
        description=(
            "Create a victim, a neighbor pinned to its CPU and a CPU-capped cgroup, collect "
            "with attribution, print the report and the victim's histogram, then remove "
            "everything the demo made (on Ctrl-C too)."
        ),
    )
    demo.add_argument("--seconds", type=positive_float, default=8.0, metavar="N", help="default 8")
    runqlat = commands.add_parser(
        "runqlat",
        help="print per-cgroup run-queue latency histograms, busiest first",
        description=(
            "Print, every interval, each cgroup's run-queue latency histogram (the waits "
            "of that interval), busiest cgroup first."
        ),
    )
    runqlat.add_argument(
        "--interval", type=positive_float, default=1.0, metavar="S", help="seconds (default 1)"
    )
    runqlat.add_argument(
        "--count", type=positive_int, default=None, metavar="N", help="intervals, then exit"
    )
    runqlat.add_argument("--unit", choices=list(UNITS), default="us", help="default us")
    runqlat.add_argument(
        "--cgroup",
        action="append",
        default=None,
        metavar="PATH",
        help="only this cgroup and those below it, path relative to the cgroup2 mount "
        "(e.g. /system.slice); repeatable",
    )
    runqlat.add_argument(
        "--top", type=positive_int, default=None, metavar="N", help="print only the N busiest"
    )
    runqlat.add_argument("--method", choices=METHODS, default="auto", help="default auto")
    add_max_cgroups(runqlat)
    runqlat.add_argument("--json", action="store_true", help="one JSON object per interval")

    report = commands.add_parser(
        "report",
        help="collect, then say which cgroups waited, behind whom, and why",
        description=(
            "Collect for a while, then print per cgroup its run-queue latency, the "
            "cgroups it waited behind, its CPU throttling and a verdict: noisy-neighbor, "
            "self-throttled, self-contention or none."
        ),
    )
    report.add_argument(
        "--seconds", type=positive_float, default=10.0, metavar="N", help="default 10"
    )
    report.add_argument("--method", choices=METHODS, default="auto", help="default auto")
    add_max_cgroups(report)
    report.add_argument("--json", action="store_true", help="print the report as JSON")

    top = commands.add_parser(
        "top",
        help="live table of cgroups by run-queue latency, culprits and throttling",
        description="A live table refreshed every interval; q or Ctrl-C quits.",
    )
    top.add_argument("--interval", type=positive_float, default=1.0, metavar="S", help="default 1")
    top.add_argument("--count", type=positive_int, default=None, metavar="N")
    top.add_argument("--rows", type=positive_int, default=20, metavar="N", help="default 20")
    top.add_argument("--method", choices=METHODS, default="auto", help="default auto")
    add_max_cgroups(top)
    add_run_parser(commands)
    add_serve_parser(commands)
    add_trace_parser(commands)
    return parser


ROOT_ONLY_HINT = (
    "Every task that waited runs in the root cgroup, so there is no neighbor to tell apart: "
    "put workloads in cgroups (`systemd-run --scope -p CPUWeight=100 CMD`, or a container), "
    "or run `noisy-neighbor demo`."
)


def _tell_v1_only(probe: RunqProbe, out: TextIO) -> None:
    """On a hybrid host, says which root-cgroup tasks are in v1-only cgroups
    (their waits are booked to the root)."""
    if found := v1_only_cgroups(probe.cgroup_tree.mount):
        print(f"\n{v1_only_note(found)}", file=out)


def add_max_cgroups(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--max-cgroups",
        type=positive_int,
        default=10240,
        metavar="N",
        help="live cgroups the kernel's maps hold (default 10240; removed ones are reaped)",
    )


def _interval_histograms(
    now: dict[int, CgroupHistogram], before: dict[int, CgroupHistogram]
) -> list[CgroupHistogram]:
    deltas = []
    for cgroup_id, hist in now.items():
        delta = hist - before[cgroup_id] if cgroup_id in before else hist
        if delta.count:
            deltas.append(delta)
    deltas.sort(key=lambda h: h.total_ns, reverse=True)
    return deltas


def _losses(stats: dict[str, int], before: dict[str, int]) -> str:
    """What was lost in the kernel since ``before`` (the last interval)."""
    lost = {k: v - before.get(k, 0) for k, v in stats.items() if k.startswith("failed")}
    return ", ".join(f"{k}={v}" for k, v in lost.items() if v)


def run_runqlat(args: argparse.Namespace) -> int:
    out = sys.stdout
    with RunqProbe(method=args.method, cgroups=args.cgroup, max_cgroups=args.max_cgroups) as probe:
        if not args.json:
            print(
                f"Tracing run-queue latency per cgroup ({probe.method} method)... "
                "Hit Ctrl-C to end.",
                file=out,
                flush=True,
            )
        before: dict[int, CgroupHistogram] = {}
        stats_before: dict[str, int] = {}
        told_v1_only = False
        interval = 0
        while args.count is None or interval < args.count:
            started = time.time()
            time.sleep(args.interval)
            now = probe.histograms()
            probe.forget_removed()  # reported in this interval's deltas, once
            hists = _interval_histograms(now, before)[: args.top]
            before = now
            interval += 1
            stats = probe.stats()
            if args.json:
                record = {
                    "time": time.time(),
                    "interval_s": time.time() - started,
                    "method": probe.method,
                    "stats": stats,
                    "cgroups": [h.to_dict() for h in hists],
                }
                print(json.dumps(record), file=out, flush=True)
                continue
            waited = f"{len(hists)} cgroup{'' if len(hists) == 1 else 's'} waited"
            print(f"\n{time.strftime('%H:%M:%S')}  {waited}", file=out)
            if hists and all(h.cgroup_path == "/" for h in hists):
                print(ROOT_ONLY_HINT, file=out)
            if not told_v1_only and any(h.cgroup_path == "/" for h in hists):
                _tell_v1_only(probe, out)  # once: which tasks is a property of the host
                told_v1_only = True
            for hist in hists:
                print("\n" + hist.to_text(args.unit), file=out)
            if lost := _losses(stats, stats_before):
                print(f"\nlost in this interval (counted in the kernel): {lost}", file=out)
            stats_before = stats
            out.flush()
    return 0


def run_report(args: argparse.Namespace) -> int:
    with RunqProbe(method=args.method, attribution=True, max_cgroups=args.max_cgroups) as probe:
        if not args.json:
            print(
                f"Collecting for {args.seconds:g} s ({probe.method} method); Ctrl-C reports "
                "early...",
                flush=True,
            )
        with contextlib.suppress(KeyboardInterrupt):  # report what was collected
            time.sleep(args.seconds)
    report = probe.report()
    print(json.dumps(report.to_dict()) if args.json else report, flush=True)
    if not args.json and any(h.cgroup_path == "/" for h in probe.histograms().values()):
        _tell_v1_only(probe, sys.stdout)
    return 0


def top_table(report: NoisyNeighborReport, rows: int) -> str:
    """The ``top`` screen: one line per cgroup, most waiting first."""
    window = report.window_s or 1.0
    lines = [
        f"{'CGROUP':<40} {'P99':>9} {'WAITS/S':>8} {'WAIT':>9} {'THROTTLED':>9} "
        f"{'TOP CULPRIT':<28} {'SHARE':>5}  VERDICT"
    ]
    for row in report.to_pandas_rows()[:rows]:
        throttled = "-" if row["throttled_ns"] is None else format_ns(row["throttled_ns"])
        culprit = row["top_culprit"] or ""
        share = f"{row['top_culprit_share']:.0%}" if culprit else ""
        lines.append(
            f"{row['name'][:40]:<40} {format_ns(row['p99_ns']):>9} "
            f"{row['waits'] / window:>8.0f} {format_ns(row['total_wait_ns']):>9} "
            f"{throttled:>9} {culprit[:28]:<28} {share:>5}  {row['verdict']}"
        )
    return "\n".join(lines)


def run_top(args: argparse.Namespace) -> int:
    probe = RunqProbe(method=args.method, attribution=True, max_cgroups=args.max_cgroups)
    with probe, quit_keys() as pressed:
        intervals = IntervalReports(probe)
        shown = 0
        while args.count is None or shown < args.count:
            if pressed(args.interval):
                break
            table = top_table(intervals.next(), args.rows)
            clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() else "\n"
            stamp = time.strftime("%H:%M:%S")
            print(f"{clear}noisy-neighbor top  {stamp}  (q or Ctrl-C quits)\n{table}", flush=True)
            shown += 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["trace"]:
        # trace takes bpftrace's flags, and answers a bad one with its usage.
        trace = Parser(prog="noisy-neighbor trace", usage=TRACE_USAGE)
        commands = trace.add_subparsers(dest="command")
        add_trace_parser(commands)
        args = trace.parse_args(words)
    else:
        args = parser.parse_args(words)
    try:
        if args.command == "demo":
            return run_demo(args.seconds)
        if args.command == "runqlat":
            return run_runqlat(args)
        if args.command == "report":
            return run_report(args)
        if args.command == "top":
            return run_top(args)
        if args.command == "run":
            return run_plugin(args)
        if args.command == "serve":
            return run_serve(args)
        if args.command == "trace":
            return run_trace(args)
    except (NoisyNeighborError, ValueError, TypeError, OSError) as err:
        # One line, whatever went wrong; a verifier log (ProbeLoadError)
        # follows it, indented, because it is the reason.
        first, *details = (str(err) or type(err).__name__).splitlines()
        print(f"noisy-neighbor: error: {first}", file=sys.stderr)
        for line in details:
            print(f"    {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
