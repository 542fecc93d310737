"""The ``noisy-neighbor`` command."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from .errors import NoisyNeighborError
from .histogram import UNITS, CgroupHistogram
from .probe import METHODS, RunqProbe

__all__ = ["main"]


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="noisy-neighbor",
        description="Per-cgroup CPU run-queue latency from eBPF (needs root).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    runqlat = commands.add_parser(
        "runqlat",
        help="print per-cgroup run-queue latency histograms, busiest first",
        description=(
            "Print, every interval, each cgroup's run-queue latency histogram (the waits "
            "of that interval), busiest cgroup first."
        ),
    )
    runqlat.add_argument(
        "--interval", type=_positive_float, default=1.0, metavar="S", help="seconds (default 1)"
    )
    runqlat.add_argument(
        "--count", type=_positive_int, default=None, metavar="N", help="intervals, then exit"
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
        "--top", type=_positive_int, default=None, metavar="N", help="print only the N busiest"
    )
    runqlat.add_argument("--method", choices=METHODS, default="auto", help="default auto")
    runqlat.add_argument("--json", action="store_true", help="one JSON object per interval")
    return parser


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


def _losses(stats: dict[str, int]) -> str:
    lost = {k: v for k, v in stats.items() if k.startswith("failed") and v}
    return ", ".join(f"{k}={v}" for k, v in lost.items())


def run_runqlat(args: argparse.Namespace) -> int:
    out = sys.stdout
    with RunqProbe(method=args.method, cgroups=args.cgroup) as probe:
        if not args.json:
            print(
                f"Tracing run-queue latency per cgroup ({probe.method} method)... "
                "Hit Ctrl-C to end.",
                file=out,
                flush=True,
            )
        before: dict[int, CgroupHistogram] = {}
        interval = 0
        while args.count is None or interval < args.count:
            started = time.time()
            time.sleep(args.interval)
            now = probe.histograms()
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
            print(f"\n{time.strftime('%H:%M:%S')}  {len(hists)} cgroups waited", file=out)
            for hist in hists:
                print("\n" + hist.to_text(args.unit), file=out)
            if _losses(stats):
                print(f"\nlost (counted in the kernel): {_losses(stats)}", file=out)
            out.flush()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "runqlat":
            return run_runqlat(args)
    except NoisyNeighborError as err:
        print(f"noisy-neighbor: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
