"""An experiment as users write them with the plugin: does a CPU-hungry
neighbor pinned to our CPU make our latency-sensitive worker wait?"""

from __future__ import annotations

import os
import time

import pytest

from noisy_neighbor.runq import IDLE, UNTRACKED
from noisy_neighbor.testing import TestCgroup, request_loop

CPU = (os.cpu_count() or 1) - 1
# A request loop: 1 ms of work, then 1 ms of waiting for the next request.
WORKER = request_loop(work_s=0.001, wait_s=0.001)


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

    neighbor = cgroup_factory("neighbor")
    cpu_hog(neighbor, n=2, cpus=[CPU])
    crowded = waits_over(runq_probe, worker, 1.5)

    # Alone, the worker waits only for whatever else runs on its CPU (stray
    # system tasks; on a busy machine, everything else). Two busy loops pinned
    # beside it add their share on top: it waits more, whatever the noise.
    assert crowded.total_ns > alone.total_ns
    assert crowded.mean_ns > alone.mean_ns
    # Against the noise of the same window: the worker waited longer behind the
    # neighbor than behind every other cgroup together (its two loops hold
    # two of the CPU's shares; the rest of the machine, at most the others).
    behind = {
        row.culprit_cgroup_id: row.total_ns
        for row in runq_probe.blame()
        if row.cgroup_id == worker.id
    }
    others = sum(
        ns
        for cgroup, ns in behind.items()
        if cgroup not in (neighbor.id, worker.id, IDLE, UNTRACKED)
    )
    assert behind.get(neighbor.id, 0) > others
    # And the report says who: most of the worker's wait was behind the neighbor.
    verdict = runq_probe.report().verdict(worker)
    assert verdict.kind == "noisy-neighbor", verdict
    assert verdict.culprits[0][0] == neighbor.id
