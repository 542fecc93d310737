"""Log2 histograms as the kernel aggregates them: bucket ``i`` counts values
in ``[2**i, 2**(i+1))`` (bucket 0 also counts 0). Pure slot math and the
classic bcc/ecli text rendering, shared by the run-queue probe's per-cgroup
histograms and plugins' ``slots[]`` maps.
"""

from __future__ import annotations

import numpy as np

from .units import UNITS

__all__ = ["bucket_bounds_ns", "log2_percentile", "ranked_bucket", "render_log2_hist"]

_BAR_WIDTH = 40


def bucket_bounds_ns(slot: int) -> tuple[int, int]:
    """Inclusive [low, high] nanoseconds of a log2 bucket."""
    if slot == 0:
        return 0, 1
    return 1 << slot, (1 << (slot + 1)) - 1


def ranked_bucket(counts: np.ndarray, q: float) -> tuple[int, float] | None:
    """The bucket of a histogram that holds its q-th percentile (0-100), and
    how far into that bucket's count the rank falls (0 to 1); None when the
    histogram is empty. Raises ValueError for q outside 0-100."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {q}")
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    if total == 0:
        return None
    rank = q / 100.0 * total
    cumulative = np.cumsum(c)
    i = min(int(np.searchsorted(cumulative, rank, side="left")), len(c) - 1)
    while c[i] == 0:  # rank 0 lands before the first non-empty bucket
        i += 1
    return i, float((rank - (cumulative[i] - c[i])) / c[i])


def log2_percentile(slots: np.ndarray, q: float, max_ns: int | None = None) -> float:
    """The q-th percentile (0-100) of a log2 histogram, in nanoseconds.

    Finds the bucket holding the q-th ranked wait and interpolates linearly
    inside it, assuming waits spread evenly over the bucket. Error bound: the
    true value lies in the same bucket ``[2**i, 2**(i+1))``, so the estimate is
    off by less than the bucket's width, i.e. it is within a factor of two of the
    true value (both lie in one octave). When ``max_ns`` is known it caps the
    estimate, which makes the top bucket exact at q=100.
    """
    ranked = ranked_bucket(slots, q)
    if ranked is None:
        return float("nan")
    slot, fraction = ranked
    low, high = bucket_bounds_ns(slot)
    estimate = low + fraction * (high - low)
    if max_ns is not None:
        estimate = min(estimate, float(max_ns))
    return float(estimate)


def _format_bound(ns: int, per_unit: int) -> str:
    if per_unit == 1:
        return str(ns)
    value = ns / per_unit
    # Four significant digits below 1000, whole units above (never 1.6e+04).
    return f"{value:.0f}" if value >= 1000 else f"{value:.4g}"


def render_log2_hist(slots: np.ndarray, unit: str = "us", label: str | None = None) -> str:
    """The bcc/ecli table: ``(unit) : count distribution`` with a star bar.

    Rows run from the first to the last non-empty bucket; bounds are shown in
    ``unit`` (buckets stay log2 of nanoseconds, so other units show decimals).
    ``label`` replaces the unit's column label (a plugin's histogram counts
    in whatever unit its program chose: ``unit="ns", label="unit"``).
    """
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}: use one of {', '.join(UNITS)}")
    per_unit, unit_label = UNITS[unit]
    label = label or unit_label
    counts = np.asarray(slots, dtype=np.uint64)
    nonzero = np.flatnonzero(counts)
    if nonzero.size == 0:
        return f"{'(' + label + ')':>24} : count    distribution\n  (no waits)"
    first, last = int(nonzero[0]), int(nonzero[-1])
    peak = int(counts.max())
    rows = range(first, last + 1)
    bounds = [
        (_format_bound(lo, per_unit), _format_bound(hi, per_unit))
        for lo, hi in map(bucket_bounds_ns, rows)
    ]
    width_lo = max(10, max(len(lo) for lo, _ in bounds))
    width_hi = max(10, max(len(hi) for _, hi in bounds))
    label_width = width_lo + width_hi + 4
    lines = [f"{'(' + label + ')':>{label_width}} : count    distribution"]
    for slot, (lo, hi) in zip(rows, bounds):
        count = int(counts[slot])
        bar = "*" * (count * _BAR_WIDTH // peak)  # bcc's scaling: floor, longest = full
        lines.append(f"{lo:>{width_lo}} -> {hi:<{width_hi}} : {count:<8} |{bar:<{_BAR_WIDTH}}|")
    return "\n".join(lines)
