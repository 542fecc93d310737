"""Who made whom wait: attribution, throttling and verdicts, on the real
kernel with real cgroups and workloads, plus the verdict rules on their own."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

import noisy_neighbor as nn
from noisy_neighbor.runq.verdicts import (
    IDLE,
    UNTRACKED,
    CgroupWaits,
    NoisyNeighborReport,
    Thresholds,
)
from noisy_neighbor.testing import CPU_HOG, periodic_sleeper

CPU = 1


def waits(cgroup_id: int, total_ns: int, blame: dict[int, int], **kw) -> CgroupWaits:
    defaults = dict(name=f"cg{cgroup_id}", count=100, p50_ns=1e5, p90_ns=1e6, p99_ns=2e6)
    defaults.update(kw)
    return CgroupWaits(
        cgroup_id=cgroup_id,
        total_ns=total_ns,
        max_ns=int(3e6),
        exact_percentiles=True,
        blame=blame,
        **defaults,  # type: ignore[arg-type]
    )


def test_verdict_rules_in_order() -> None:
    report = NoisyNeighborReport(
        [
            waits(10, 10**9, {20: 7 * 10**8, 10: 10**8, IDLE: 2 * 10**8}),
            waits(11, 10**9, {IDLE: 9 * 10**8, 11: 10**8}, throttled_ns=8 * 10**8),
            waits(12, 10**9, {12: 9 * 10**8, 20: 10**8}),
            waits(13, 10**9, {UNTRACKED: 9 * 10**8, 20: 10**8}),
            waits(14, 10**6, {20: 10**6}),
            waits(15, 10**9, {20: 9 * 10**8}, p99_ns=50_000),
        ],
        window_s=1.0,
    )
    kinds = {cid: v.kind for cid, v in report.verdicts.items()}
    assert kinds == {
        10: "noisy-neighbor",
        11: "self-throttled",
        12: "self-contention",
        13: "none",  # what cannot be split is nobody's fault
        14: "none",  # too little wait to matter
        15: "none",  # p99 too small to matter
    }
    assert report.verdict(10).culprits == [(20, pytest.approx(0.7))]
    assert report.verdict(10).idle_share == pytest.approx(0.2)
    stricter = NoisyNeighborReport(
        [waits(10, 10**9, {20: 7 * 10**8, 10: 3 * 10**8})],
        window_s=1.0,
        thresholds=Thresholds(neighbor_share=0.8),
    )
    assert stricter.verdict(10).kind == "none"
    with pytest.raises(KeyError, match="did not wait"):
        report.verdict(99)


def run_scenario(cgroup_factory, seconds: float = 3.0, **probe_options):
    victim, neighbor = cgroup_factory("victim"), cgroup_factory("neighbor")
    victim.run(periodic_sleeper(0.002), cpus=[CPU])
    victim.run(CPU_HOG, cpus=[CPU])
    for _ in range(2):
        neighbor.run(CPU_HOG, cpus=[CPU])
    with nn.RunqProbe(attribution=True, **probe_options) as probe:
        time.sleep(seconds)
    return probe, victim, neighbor


@pytest.mark.needs_bpf
def test_a_neighbor_on_our_cpu_is_named_as_the_culprit(cgroup_factory) -> None:
    probe, victim, neighbor = run_scenario(cgroup_factory)
    report = probe.report()
    verdict = report.verdict(victim)
    assert verdict.kind == "noisy-neighbor", str(report)
    top_culprit, share = verdict.culprits[0]
    assert top_culprit == neighbor.id
    assert share > 0.5  # the neighbor holds most of the victim's wait
    assert verdict is report.verdict(victim.path)
    # The victim's hog leaves the CPU preempted, mostly to the other cgroup;
    # its sleeper leaves voluntarily.
    outs = report.cgroups[victim.id].switch_outs
    assert outs["preempted_other"] > outs["preempted_system"]
    assert outs["voluntary"] > 100
    text = str(report)
    assert "noisy-neighbor" in text and neighbor.path.strip("/") in text
    assert "<table>" in report._repr_html_()
    table = report.to_pandas()
    row = table[table["cgroup_id"] == victim.id].iloc[0]
    assert row["verdict"] == "noisy-neighbor" and row["top_culprit_id"] == neighbor.id


@pytest.mark.needs_bpf
def test_each_wait_is_split_exactly_among_culprits(cgroup_factory) -> None:
    probe, _victim, _neighbor = run_scenario(cgroup_factory, seconds=2.0)
    hists = probe.histograms()
    blamed: dict[int, int] = {}
    for row in probe.blame():
        blamed[row.cgroup_id] = blamed.get(row.cgroup_id, 0) + row.total_ns
    for cgroup_id, hist in hists.items():
        assert blamed[cgroup_id] == hist.total_ns  # shares add up to the wait
    assert probe.stats()["failed_attribution"] == 0


@pytest.mark.needs_bpf
def test_a_cgroup_over_its_own_quota_is_self_throttled(cgroup_factory) -> None:
    capped = cgroup_factory("capped", cpu_quota_us=20_000, cpu_period_us=100_000)
    capped.run(CPU_HOG, cpus=[0])
    with nn.RunqProbe(attribution=True) as probe:
        time.sleep(2.0)
    verdict = probe.report().verdict(capped)
    assert verdict.kind == "self-throttled", verdict
    assert verdict.throttled_ns > 0.5 * verdict.total_wait_ns
    # It waited for its quota, not behind its own (single) task: meanwhile the
    # CPU sat idle or, on a busy machine, ran others.
    assert verdict.self_share < 0.1


@pytest.mark.needs_bpf
def test_an_idle_host_has_no_noisy_neighbor() -> None:
    with nn.RunqProbe(attribution=True) as probe:
        time.sleep(1.5)
    report = probe.report()
    assert not [v for v in report.verdicts.values() if v.kind == "noisy-neighbor"], str(report)


@pytest.mark.needs_bpf
def test_saved_events_give_the_same_verdict_with_exact_percentiles(cgroup_factory) -> None:
    victim, neighbor = cgroup_factory("victim"), cgroup_factory("neighbor")
    victim.run(periodic_sleeper(0.002), cpus=[CPU])
    victim.run(CPU_HOG, cpus=[CPU])
    for _ in range(2):
        neighbor.run(CPU_HOG, cpus=[CPU])
    frames = []
    with nn.RunqProbe(stream=True, batch_ms=50) as probe:
        deadline = time.monotonic() + 2.0
        for batch in probe.batches():
            frames.append(batch.to_pandas())
            if time.monotonic() >= deadline and probe.running:
                probe.stop()
    events = pd.concat(frames)
    report = nn.report(events)
    verdict = report.verdict(victim.id)
    assert verdict.kind == "noisy-neighbor", str(report)
    assert verdict.culprits[0][0] == neighbor.id
    mine = events[events["cgroup_id"] == victim.id]["latency_ns"].to_numpy()
    assert verdict.p99_ns == pytest.approx(np.percentile(mine, 99))
    assert report.cgroups[victim.id].exact_percentiles
    # Every event's wait is split in full.
    victim_blame = sum(report.cgroups[victim.id].blame.values())
    assert victim_blame == report.cgroups[victim.id].total_ns


def test_splitting_saved_events_follows_each_cpu_timeline() -> None:
    # CPU 0: A runs 0-100, B waits from 50 and gets the CPU at 100 (from A);
    # B runs 100-300, C waits from 150 and gets it at 300 (from B).
    frame = pd.DataFrame(
        {
            "cpu": [0, 0, 0],
            "ts_ns": [0, 100, 300],
            "latency_ns": [0, 50, 150],
            "cgroup_id": [7, 8, 9],
            "prev_cgroup_id": [1, 7, 8],
            "prev_pid": [0, 11, 12],
        }
    )
    from noisy_neighbor.analysis.report import split_blame_from_events

    assert dict(split_blame_from_events(frame)) == {(8, 7): 50, (9, 8): 150}
