"""An experiment as users write them with the plugin: does a CPU-hungry
neighbor pinned to our CPU make our latency-sensitive worker wait?"""

from __future__ import annotations

import os
import sys
import time

import pytest

from noisy_neighbor.testing import TestCgroup

CPU = (os.cpu_count() or 1) - 1
# A request loop: 1 ms of work, then 1 ms of waiting for the next request.
WORKER = [
    sys.executable,
    "-c",
    "import time\n"
    "while True:\n"
    "    end = time.perf_counter() + 0.001\n"
    "    while time.perf_counter() < end: pass\n"
    "    time.sleep(0.001)\n",
]


def waits_over(runq_probe, cgroup: TestCgroup, seconds: float):
    before = runq_probe.latency(cgroup)
    time.sleep(seconds)
    return runq_probe.latency(cgroup) - before


@pytest.mark.needs_bpf
def test_a_pinned_neighbor_makes_the_worker_wait(cgroup_factory, cpu_hog, runq_probe) -> None:
    worker = cgroup_factory("worker")
    worker.run(WORKER, cpus=[CPU])
    time.sleep(0.3)
    alone = waits_over(runq_probe, worker, 1.5)

    cpu_hog(cgroup_factory("neighbor"), n=2, cpus=[CPU])
    crowded = waits_over(runq_probe, worker, 1.5)

    # Alone, the worker waits only for stray system tasks; beside two busy
    # loops on its CPU it queues behind them after most preemptions. Factors
    # are far below what this machine shows (10x-1000x), to stay robust.
    assert crowded.mean_ns > 3 * alone.mean_ns
    assert crowded.percentile(99) > 2 * alone.percentile(99)
    assert crowded.total_ns > 10 * alone.total_ns
    # And the report says who: most of the worker's wait was behind the neighbor.
    verdict = runq_probe.report().verdict(worker)
    assert verdict.kind == "noisy-neighbor", verdict
