"""Per-CPU histogram entries (real kernel): each CPU counts a cgroup's waits
in its own entry, a reading merges them, and a full per-CPU map falls back to
the cgroup's shared entry without losing a wait."""

from __future__ import annotations

import os

import numpy as np
import pytest

import noisy_neighbor as nn
from noisy_neighbor import fine_buckets
from noisy_neighbor.runq.hist_maps import CPU_MAP, SHARED_MAP
from noisy_neighbor.testing import CPU_HOG, periodic_sleeper
from noisy_neighbor.testing.ground_truth import SCHED_INFO_TOLERANCE, measure_window

pytestmark = [
    pytest.mark.needs_bpf,
    pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two CPUs"),
]


def busy_on_both_cpus(cgroup) -> None:
    """Waits of one cgroup on CPU 0 and on CPU 1: a hog and a sleeper on each."""
    for cpu in (0, 1):
        cgroup.run(CPU_HOG, cpus={cpu})
        cgroup.run(periodic_sleeper(0.002), cpus={cpu})


def streamed(probe: nn.RunqProbe) -> dict[str, np.ndarray]:
    probe.stop()
    parts = [b.columns() for b in probe.batches()]
    return {f: np.concatenate([p[f] for p in parts]) for f in parts[0]}


def check_merged(hist, events: dict[str, np.ndarray], cgroup_id: int) -> None:
    """The merged histogram holds exactly the cgroup's streamed waits."""
    mine = events["cgroup_id"] == cgroup_id
    wall = events["latency_ns"][mine]
    assert hist.count == len(wall)
    assert hist.wall_ns == int(wall.sum()) and hist.max_ns == int(wall.max())
    np.testing.assert_array_equal(
        hist.buckets, np.bincount(fine_buckets.bucket_of(wall), minlength=fine_buckets.BUCKETS)
    )


def test_each_cpu_counts_in_its_own_entry_and_a_reading_merges_them(cgroup_factory) -> None:
    busy = cgroup_factory()
    busy_on_both_cpus(busy)
    with nn.RunqProbe(stream=True, batch_ms=50, pending_batches=4096) as probe:
        (window,) = measure_window(probe, [busy], 2.0)
        per_cpu = probe._started().map(CPU_MAP)
        shared = probe._started().map(SHARED_MAP)
        hist = probe.latency(busy)
        events = streamed(probe)
    cpus = per_cpu.keys["cpu"][per_cpu.keys["cgroup_id"] == busy.id]
    assert set(cpus.tolist()) >= {0, 1}
    # The shared entry only names the cgroup: no CPU found the per-CPU map full.
    row = int(np.flatnonzero(shared.keys["cgroup_id"] == busy.id)[0])
    assert (
        shared.values["count"][row] == 0
        and shared.values["cgroup_name"][row] == busy.path.rsplit("/", 1)[-1]
    )
    assert probe.stats()["shared_updates"] == 0
    assert window.probe_count > 300 and window.relative_error <= SCHED_INFO_TOLERANCE
    check_merged(hist, events, busy.id)
    assert hist.cgroup_name == busy.path.rsplit("/", 1)[-1]


def test_a_full_per_cpu_map_sends_waits_to_the_shared_entry_and_loses_none(
    cgroup_factory,
) -> None:
    # Room for one (cgroup, CPU) entry: the other CPU's waits, and all of the
    # second cgroup's, go to the shared entries with atomic adds.
    first, second = cgroup_factory(), cgroup_factory()
    busy_on_both_cpus(first)
    busy_on_both_cpus(second)
    with nn.RunqProbe(stream=True, batch_ms=50, pending_batches=4096, max_cpu_hists=1) as probe:
        windows = measure_window(probe, [first, second], 2.0)
        hists = probe.histograms()
        events = streamed(probe)
    stats = probe.stats()
    assert stats["shared_updates"] > 0 and stats["failed_updates"] == 0
    for cgroup, window in zip((first, second), windows):
        assert window.relative_error <= SCHED_INFO_TOLERANCE, window
        check_merged(hists[cgroup.id], events, cgroup.id)


def test_max_cpu_hists_is_checked() -> None:
    with pytest.raises(ValueError, match="max_cpu_hists"):
        nn.RunqProbe(max_cpu_hists=0)
