"""Plots, drawn headless and checked for what they drew."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from noisy_neighbor.runq.histogram import CgroupHistogram
from noisy_neighbor.runq.verdicts import IDLE, CgroupWaits, NoisyNeighborReport
from noisy_neighbor.views.plots import (
    plot_culprit_matrix,
    plot_history,
    plot_latency_distribution,
    plot_latency_heatmap,
    plot_percentiles_over_time,
)


def hist(cgroup_id: int, counts: dict[int, int]) -> CgroupHistogram:
    slots = np.zeros(64, dtype=np.uint64)
    for slot, n in counts.items():
        slots[slot] = n
    return CgroupHistogram(
        cgroup_id=cgroup_id, slots=slots, count=int(slots.sum()), total_ns=cgroup_id, max_ns=1
    )


def events() -> pd.DataFrame:
    # cgroup 5: 1 us waits for 1 s, then 1 ms waits; cgroup 6: steady 10 us.
    n = 200
    ts = np.linspace(0, 2e9, n).astype(np.uint64) + 10**12
    return pd.DataFrame(
        {
            "ts_ns": np.concatenate([ts, ts]),
            "cgroup_id": np.repeat(np.array([5, 6], dtype=np.uint64), n),
            "latency_ns": np.concatenate(
                [np.where(ts < 10**12 + 10**9, 1_000, 1_000_000), np.full(n, 10_000)]
            ).astype(np.uint64),
        }
    )


def test_distribution_draws_one_curve_per_cgroup_in_the_right_buckets() -> None:
    hists = {1: hist(1, {10: 30, 20: 10}), 2: hist(2, {12: 5})}
    ax = plot_latency_distribution(hists, [1, 2], unit="us")
    assert ax.get_xscale() == "log"
    assert len(ax.patches) == 2  # one stairs artist per cgroup
    shares = ax.patches[0].get_data().values
    assert shares.max() == pytest.approx(0.75) and shares[-1] == pytest.approx(0.25)
    edges = ax.patches[0].get_data().edges
    assert edges[10] == pytest.approx(1.024)  # bucket 10 starts at 1024 ns = 1.024 us
    assert ax.get_legend() is not None and len(ax.get_legend().get_texts()) == 2
    cdf = plot_latency_distribution(hists, [1], kind="cdf", unit="ns")
    assert cdf.patches[0].get_data().values[-1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="kind"):
        plot_latency_distribution(hists, kind="pie")


def test_heatmap_counts_waits_in_time_and_latency_cells() -> None:
    ax = plot_latency_heatmap(events(), cgroup=5, bin_s=0.5)
    mesh = ax.collections[0]
    counts = np.asarray(mesh.get_array()).reshape(-1, 4)  # (latency rows, 4 time bins)
    assert counts.sum() == 200
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "time (s)"
    low, high = counts[0], counts[-1]  # 1 us row, 1 ms row
    assert low[:2].sum() == 100 and low[2:].sum() == 0
    assert high[2:].sum() == 100 and high[:2].sum() == 0


def test_percentiles_over_time_follow_the_jump() -> None:
    ax = plot_percentiles_over_time(events(), [5], percentiles=(99,), window_s=0.5)
    (line,) = ax.get_lines()
    y = line.get_ydata()
    assert y[0] == pytest.approx(1.0) and y[-1] == pytest.approx(1000.0)  # us
    assert "p99" in line.get_label()


def test_culprit_matrix_shows_each_victims_shares() -> None:
    report = NoisyNeighborReport(
        [
            CgroupWaits(10, "victim", 10, 1000, 1.0, 1.0, 1e6, 1, True, {20: 750, IDLE: 250}),
            CgroupWaits(20, "hog", 10, 500, 1.0, 1.0, 1e6, 1, True, {10: 500}),
        ],
        window_s=1.0,
    )
    ax = plot_culprit_matrix(report)
    matrix = np.asarray(ax.images[0].get_array())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["victim", "hog"]
    culprits = [t.get_text() for t in ax.get_xticklabels()]
    assert matrix[0, culprits.index("hog")] == pytest.approx(0.75)
    assert matrix[0, culprits.index("idle")] == pytest.approx(0.25)
    assert matrix[1, culprits.index("victim")] == pytest.approx(1.0)


def test_history_plot_draws_each_names_percentile_per_interval() -> None:
    def row(minute: int, name: str, slot: int) -> dict:
        slots = [0] * 64
        slots[slot] = 10
        return {
            "time": pd.Timestamp("2026-11-29 10:00", tz="UTC") + pd.Timedelta(minutes=minute),
            "name": name,
            "wait_ns": 10 << slot,
            "slots": slots,
        }

    frame = pd.DataFrame(
        [row(0, "web", 10), row(1, "web", 20), row(0, "batch", 12), row(1, "batch", 12)]
    )
    ax = plot_history(frame, "web")
    (line,) = ax.get_lines()
    y = line.get_ydata()
    # p99 inside slot 10 ([1024, 2047] ns) then slot 20 (~1-2 ms), in us.
    assert 1.0 < y[0] < 2.1 and 1000 < y[1] < 2100
    assert len(plot_history(frame, top=1).get_lines()) == 1  # the one that waited most
