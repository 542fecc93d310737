"""Histogram math and rendering (pure logic, no kernel)."""

from __future__ import annotations

import numpy as np
import pytest

from noisy_neighbor.log2 import bucket_bounds_ns, log2_percentile, render_log2_hist
from noisy_neighbor.runq.histogram import CgroupHistogram


def log2_hist(waits_ns: np.ndarray) -> np.ndarray:
    """The kernel's bucketing, done in numpy: slot = floor(log2(wait)), 0 for 0."""
    slots = np.zeros(64, dtype=np.uint64)
    idx = np.where(waits_ns > 0, np.floor(np.log2(np.maximum(waits_ns, 1))), 0).astype(int)
    np.add.at(slots, idx, 1)
    return slots


def make_hist(slots: np.ndarray, **kw: object) -> CgroupHistogram:
    defaults: dict[str, object] = dict(
        cgroup_id=42, count=int(slots.sum()), total_ns=0, max_ns=0, comm="app", cgroup_name="a"
    )
    defaults.update(kw)
    return CgroupHistogram(slots=slots, **defaults)  # type: ignore[arg-type]


def test_bucket_bounds_are_octaves() -> None:
    assert bucket_bounds_ns(0) == (0, 1)
    assert bucket_bounds_ns(1) == (2, 3)
    assert bucket_bounds_ns(10) == (1024, 2047)


def test_percentile_interpolates_inside_the_bucket() -> None:
    slots = np.zeros(64, dtype=np.uint64)
    slots[10] = 100  # all waits in [1024, 2048)
    assert log2_percentile(slots, 50) == pytest.approx(1024 + 0.5 * 1023)
    assert log2_percentile(slots, 100) == pytest.approx(2047)
    assert log2_percentile(slots, 100, max_ns=1500) == 1500


def test_percentile_picks_the_bucket_of_the_ranked_wait() -> None:
    slots = np.zeros(64, dtype=np.uint64)
    slots[3], slots[20] = 99, 1
    assert 8 <= log2_percentile(slots, 50) < 16
    assert 8 <= log2_percentile(slots, 99) < 16
    assert 1 << 20 <= log2_percentile(slots, 99.5) < 1 << 21


@pytest.mark.parametrize("q", [1, 10, 50, 90, 99, 99.9])
def test_percentile_is_within_a_factor_of_two(q: float) -> None:
    # The documented bound, checked against exact percentiles of a skewed sample.
    rng = np.random.default_rng(7)
    waits = rng.lognormal(mean=9, sigma=2, size=20_000).astype(np.uint64) + 1
    estimate = log2_percentile(log2_hist(waits), q, max_ns=int(waits.max()))
    exact = float(np.percentile(waits, q, method="inverted_cdf"))
    assert exact / 2 <= estimate <= exact * 2


def test_percentile_of_empty_histogram_is_nan_and_bad_q_raises() -> None:
    assert np.isnan(log2_percentile(np.zeros(64, dtype=np.uint64), 50))
    with pytest.raises(ValueError, match="between 0 and 100"):
        log2_percentile(np.ones(64, dtype=np.uint64), 101)


def test_render_shows_rows_from_first_to_last_nonempty_bucket_with_scaled_stars() -> None:
    slots = np.zeros(64, dtype=np.uint64)
    slots[9], slots[10], slots[11] = 234, 117, 0
    slots[12] = 10
    lines = render_log2_hist(slots, "ns").splitlines()
    assert lines[0].split() == ["(nsecs)", ":", "count", "distribution"]
    assert len(lines) == 1 + 4  # header + buckets 9..12
    row9 = lines[1]
    assert row9.split()[:5] == ["512", "->", "1023", ":", "234"]
    assert row9.count("*") == 40  # the largest bucket fills the bar
    assert lines[2].count("*") == 20
    assert lines[4].count("*") == 1  # floor(10 * 40 / 234)
    assert lines[3].count("*") == 0


def test_render_in_microseconds_labels_bounds_in_that_unit() -> None:
    slots = np.zeros(64, dtype=np.uint64)
    slots[10] = 5
    text = render_log2_hist(slots, "us")
    assert "(usecs)" in text
    assert "1.024 -> 2.047" in text
    with pytest.raises(ValueError, match="unknown unit"):
        render_log2_hist(slots, "weeks")


def test_text_has_the_seed_header_and_summary() -> None:
    slots = np.zeros(64, dtype=np.uint64)
    slots[13] = 4
    hist = make_hist(slots, total_ns=40_000, max_ns=12_000, cgroup_path="/kubelet.slice")
    text = str(hist)
    assert text.startswith("key = 42\ncomm = app\ncgroup_name = a\ncgroup_path = /kubelet.slice\n")
    assert "waits = 4" in text and "total = 40 us" in text
    assert "cgroup_path = (removed)" in make_hist(slots).to_text()


def test_subtracting_readings_gives_the_interval() -> None:
    early = make_hist(np.array([1, 2] + [0] * 62, dtype=np.uint64), total_ns=5, max_ns=3)
    late = make_hist(np.array([4, 2] + [0] * 62, dtype=np.uint64), total_ns=9, max_ns=3)
    delta = late - early
    assert delta.count == 3 and delta.total_ns == 4
    assert delta.slots[:2].tolist() == [3, 0]
    with pytest.raises(ValueError):
        late - make_hist(early.slots, cgroup_id=7)


def test_to_dict_trims_slots_and_is_json_ready() -> None:
    slots = np.zeros(64, dtype=np.uint64)
    slots[5] = 2
    d = make_hist(slots, total_ns=70, max_ns=40).to_dict()
    assert d["slots"] == [0, 0, 0, 0, 0, 2]
    assert d["count"] == 2 and d["p99_ns"] <= 40
    assert make_hist(np.zeros(64, dtype=np.uint64)).to_dict()["p50_ns"] is None
