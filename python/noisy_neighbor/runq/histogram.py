"""Per-cgroup run-queue latency histograms: log2 buckets of nanoseconds, as the
kernel aggregates them, with percentiles and the classic text rendering (the
math and rendering are in :mod:`noisy_neighbor.log2`).

Bucket ``i`` counts waits in ``[2**i, 2**(i+1))`` ns; bucket 0 also counts 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..log2 import log2_percentile, render_log2_hist
from ..units import format_ns

if TYPE_CHECKING:
    from ..names.resolver import CgroupInfo

__all__ = ["CgroupHistogram"]


#: Why a percentile reads "<1 us": see "How a wait is measured" in the README.
SUB_MICROSECOND_NOTE = (
    "(<1 us: most of these waits ended at a switch where the kernel did not re-read "
    "its run-queue clock after a preempting wakeup; totals stay exact)"
)


def _wait(ns: float) -> str:
    """A percentile of waits: below a microsecond the kernel's clock cannot
    tell (see :data:`SUB_MICROSECOND_NOTE`), so it says so."""
    return "<1 us" if ns < 1000 else format_ns(ns)


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

    @property
    def display_name(self) -> str:
        """Short and human: the name its runtime, pod or unit gives it, else
        its path, else the kernel's name for it."""
        info_name = self.info.display_name if self.info else None
        return info_name or self.last_known_path or self.cgroup_name

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
                f"waits = {self.count}  total = {format_ns(self.total_ns)}  "
                f"p50 = {_wait(self.percentile(50))}  "
                f"p99 = {_wait(self.percentile(99))}  max = {format_ns(self.max_ns)}"
            ),
        ]
        if self.percentile(50) < 1000:
            header.append(SUB_MICROSECOND_NOTE)
        header.append("")
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
            f"count={self.count}, p50={format_ns(self.percentile(50))}, "
            f"p99={format_ns(self.percentile(99))}, max={format_ns(self.max_ns)})"
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
