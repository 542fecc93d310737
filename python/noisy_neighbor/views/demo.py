"""``noisy-neighbor demo``: a noisy neighbor caught on this machine in a few
seconds. Three cgroups under one demo parent: ``victim`` (a latency-sensitive
worker: 1 ms bursts of work, 1 ms sleeps), ``neighbor`` (two CPU hogs pinned
to the victim's CPU) and ``capped`` (a CPU hog under a 20% quota, on another
CPU where there is one). The probe watches only the demo's cgroups, with
attribution; the report then names the neighbor as the victim's culprit and
calls ``capped`` self-throttled. Every cgroup and process it made is removed,
on Ctrl-C too."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import TextIO

from ..runq.probe import RunqProbe
from ..testing.workloads import CPU_HOG, TestCgroup, request_loop

__all__ = ["run_demo"]

#: The capped cgroup's quota: 20 ms of CPU per 100 ms.
CAPPED_QUOTA_US = 20_000
CAPPED_PERIOD_US = 100_000

WHAT_TO_LOOK_AT = """\
What to look at:
  victim   waited behind `neighbor` (its top culprit, with its share of the wait):
           a noisy neighbor, pinned to the same CPU, not the victim's own doing.
  capped   waited too, but behind its own CPU quota (throttled time): self-throttled.
Run `noisy-neighbor report` or `top` on your own workloads; `--help` lists more."""


def _progress(out: TextIO, seconds: float, stop_at: float) -> None:
    """Waits until ``stop_at``, showing the seconds collected so far."""
    live = out.isatty()
    while (left := stop_at - time.monotonic()) > 0:
        if live:
            print(
                f"\rcollecting {seconds - left:4.1f} / {seconds:g} s", end="", file=out, flush=True
            )
        time.sleep(min(left, 0.25))
    done = f"collected {seconds:g} s"
    print(f"\r{done}{' ' * 12}" if live else done, file=out, flush=True)


def run_demo(seconds: float = 8.0, out: TextIO = sys.stdout) -> int:
    """Runs the demo; returns 0 when the victim's verdict names the neighbor."""
    cpus = sorted(os.sched_getaffinity(0))
    shared_cpu, other_cpu = cpus[-1], cpus[0]
    parent_name = f"nn-demo-{os.getpid()}"
    with contextlib.ExitStack() as cleanup:
        # Children are removed before the parent: ExitStack unwinds in reverse.
        parent = cleanup.enter_context(TestCgroup(parent_name))
        victim = cleanup.enter_context(TestCgroup(f"{parent_name}/victim"))
        neighbor = cleanup.enter_context(TestCgroup(f"{parent_name}/neighbor"))
        capped = cleanup.enter_context(
            TestCgroup(
                f"{parent_name}/capped",
                cpu_quota_us=CAPPED_QUOTA_US,
                cpu_period_us=CAPPED_PERIOD_US,
            )
        )
        print(
            f"Demo cgroups under {parent.path}: victim (a request loop) and neighbor "
            f"(2 CPU hogs) share CPU {shared_cpu}; capped (a CPU hog at "
            f"{CAPPED_QUOTA_US * 100 // CAPPED_PERIOD_US}% quota) runs on CPU {other_cpu}.",
            file=out,
            flush=True,
        )
        victim.run(request_loop(), cpus=[shared_cpu])  # 1 ms of work, 1 ms of sleep
        for _ in range(2):
            neighbor.run(CPU_HOG, cpus=[shared_cpu])
        capped.run(CPU_HOG, cpus=[other_cpu])
        with RunqProbe(attribution=True, cgroups=[parent.path]) as probe:
            _progress(out, seconds, time.monotonic() + seconds)
        report = probe.report()
        hists = probe.histograms()
        print(f"\n{report}\n", file=out)
        if victim.id in hists:
            print(f"The victim's waits ({probe.method} method):", file=out)
            print(hists[victim.id].to_text("us"), file=out)
        print(f"\n{WHAT_TO_LOOK_AT}", file=out, flush=True)
        verdict = report.verdict(victim.id)
        caught = verdict.kind == "noisy-neighbor" and any(
            culprit == neighbor.id for culprit, _share in verdict.culprits
        )
    print(f"\nRemoved the demo's cgroups and processes ({parent.path}).", file=out, flush=True)
    if not caught:
        print(
            f"noisy-neighbor: error: the demo did not catch the neighbor this time (victim: "
            f"{verdict}); is another workload pinned to the same CPU? Try --seconds 15.",
            file=sys.stderr,
        )
    return 0 if caught else 1
