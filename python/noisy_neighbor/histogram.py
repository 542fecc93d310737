"""Per-cgroup run-queue latency histograms: log2 buckets of nanoseconds, as the
kernel aggregates them, with percentiles and the classic text rendering.

Bucket ``i`` counts waits in ``[2**i, 2**(i+1))`` ns; bucket 0 also counts 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .resolver import CgroupInfo

__all__ = ["UNITS", "CgroupHistogram", "bucket_bounds_ns", "log2_percentile", "render_log2_hist"]

#: Presentation units: name -> (nanoseconds per unit, column label).
UNITS: dict[str, tuple[int, str]] = {
    "ns": (1, "nsecs"),
    "us": (1_000, "usecs"),
    "ms": (1_000_000, "msecs"),
}

_BAR_WIDTH = 40


def bucket_bounds_ns(slot: int) -> tuple[int, int]:
    """Inclusive [low, high] nanoseconds of a log2 bucket."""
    if slot == 0:
        return 0, 1
    return 1 << slot, (1 << (slot + 1)) - 1


def log2_percentile(slots: np.ndarray, q: float, max_ns: int | None = None) -> float:
    """The q-th percentile (0-100) of a log2 histogram, in nanoseconds.

    Finds the bucket holding the q-th ranked wait and interpolates linearly
    inside it, assuming waits spread evenly over the bucket. Error bound: the
    true value lies in the same bucket ``[2**i, 2**(i+1))``, so the estimate is
    off by less than the bucket's width, i.e. it is within a factor of two of the
    true value (both lie in one octave). When ``max_ns`` is known it caps the
    estimate, which makes the top bucket exact at q=100.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {q}")
    counts = np.asarray(slots, dtype=np.float64)
    total = counts.sum()
    if total == 0:
        return float("nan")
    rank = q / 100.0 * total
    cumulative = np.cumsum(counts)
    slot = int(np.searchsorted(cumulative, rank, side="left"))
    slot = min(slot, len(counts) - 1)
    while counts[slot] == 0:  # rank 0 lands before the first non-empty bucket
        slot += 1
    below = cumulative[slot] - counts[slot]
    fraction = (rank - below) / counts[slot]
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


def _format_ns(ns: float) -> str:
    if ns != ns:  # NaN
        return "-"
    for scale, suffix in ((1e9, "s"), (1e6, "ms"), (1e3, "us")):
        if ns >= scale:
            return f"{ns / scale:.3g} {suffix}"
    return f"{ns:.0f} ns"


@dataclass
class CgroupHistogram:
    """Run-queue latency of one cgroup, aggregated in the kernel.

    ``cgroup_path`` is relative to the cgroup2 mount (``/`` is the root cgroup),
    or None when the cgroup no longer exists. ``comm`` is the command of the last
    task of this cgroup that waited; ``cgroup_name`` the cgroup's own directory
    name as the kernel knows it.
    """

    cgroup_id: int
    slots: np.ndarray
    count: int
    total_ns: int
    max_ns: int
    comm: str = ""
    cgroup_name: str = ""
    cgroup_path: str | None = None
    #: What the cgroup is (service, container, pod...), when resolved.
    info: CgroupInfo | None = field(default=None, repr=False, compare=False)
    unit: str = field(default="us", repr=False)

    @property
    def last_known_path(self) -> str | None:
        """The path now or, for a removed cgroup, when it was last seen."""
        return self.info.path if self.info else self.cgroup_path

    def percentile(self, q: float) -> float:
        """q-th percentile (0-100) in ns, within a factor of two (see
        :func:`log2_percentile`). NaN when there were no waits."""
        return log2_percentile(self.slots, q, self.max_ns)

    @property
    def mean_ns(self) -> float:
        return self.total_ns / self.count if self.count else float("nan")

    def __sub__(self, earlier: CgroupHistogram) -> CgroupHistogram:
        """The waits recorded since ``earlier`` (a previous reading of the same
        cgroup). ``max_ns`` stays the maximum since the probe started."""
        if earlier.cgroup_id != self.cgroup_id:
            raise ValueError("can only subtract readings of the same cgroup")
        return CgroupHistogram(
            cgroup_id=self.cgroup_id,
            slots=self.slots - earlier.slots,
            count=self.count - earlier.count,
            total_ns=self.total_ns - earlier.total_ns,
            max_ns=self.max_ns,
            comm=self.comm,
            cgroup_name=self.cgroup_name,
            cgroup_path=self.cgroup_path,
            info=self.info,
            unit=self.unit,
        )

    def to_text(self, unit: str | None = None) -> str:
        """Header (key, comm, cgroup name and path, summary) and the table."""
        unit = unit or self.unit
        header = [
            f"key = {self.cgroup_id}",
            f"comm = {self.comm}",
            f"cgroup_name = {self.cgroup_name}",
            f"cgroup_path = {self.cgroup_path if self.cgroup_path is not None else '(removed)'}",
            *([f"name = {self.info.display_name} ({self.info.kind})"] if self.info else []),
            (
                f"waits = {self.count}  total = {_format_ns(self.total_ns)}  "
                f"p50 = {_format_ns(self.percentile(50))}  "
                f"p99 = {_format_ns(self.percentile(99))}  max = {_format_ns(self.max_ns)}"
            ),
            "",
        ]
        return "\n".join(header) + render_log2_hist(self.slots, unit)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.to_text())}</pre>"

    def __repr__(self) -> str:
        # Short, so a failed assertion in an experiment reads well.
        return (
            f"CgroupHistogram(cgroup_id={self.cgroup_id}, cgroup_path={self.cgroup_path!r}, "
            f"count={self.count}, p50={_format_ns(self.percentile(50))}, "
            f"p99={_format_ns(self.percentile(99))}, max={_format_ns(self.max_ns)})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (nanoseconds; slots trimmed after the last non-empty)."""
        nonzero = np.flatnonzero(self.slots)
        slots = self.slots[: int(nonzero[-1]) + 1] if nonzero.size else self.slots[:0]
        p50, p99 = self.percentile(50), self.percentile(99)
        return {
            "cgroup_id": self.cgroup_id,
            "cgroup_path": self.cgroup_path,
            "cgroup_name": self.cgroup_name,
            "comm": self.comm,
            "count": self.count,
            "total_ns": self.total_ns,
            "max_ns": self.max_ns,
            "p50_ns": None if p50 != p50 else p50,
            "p99_ns": None if p99 != p99 else p99,
            "slots": [int(c) for c in slots],
            **(
                {}
                if self.info is None
                else {
                    "display_name": self.info.display_name,
                    "kind": self.info.kind,
                    "runtime": self.info.runtime,
                    "container_id": self.info.container_id,
                    "pod_uid": self.info.pod_uid,
                    "pod_namespace": self.info.pod_namespace,
                    "pod_name": self.info.pod_name,
                    "qos": self.info.qos,
                }
            ),
        }
