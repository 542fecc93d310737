"""Per-cgroup run-queue latency histograms as the kernel aggregates them: fine
buckets of wall-clock waits (Prometheus schema 3 boundaries, see
:mod:`noisy_neighbor.fine_buckets`), percentiles from them, and the classic
log2 table summed from them (:mod:`noisy_neighbor.log2`).

Slot ``i`` of the log2 table counts waits in ``[2**i, 2**(i+1))`` ns; slot 0
also counts 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import fine_buckets
from ..log2 import log2_percentile, render_log2_hist
from ..units import format_ns

if TYPE_CHECKING:
    from ..names.resolver import CgroupInfo

__all__ = ["CgroupHistogram"]


@dataclass
class CgroupHistogram:
    """Run-queue latency of one cgroup, aggregated in the kernel.

    ``slots`` is the log2 table and ``buckets`` the fine buckets it is summed
    from (None in collections saved before there were fine buckets; then
    percentiles come from the log2 table). Both count wall-clock waits, as
    do ``max_ns`` and ``wall_ns``, their sum. ``total_ns`` is the kernel's own
    account of the same waits, the sum of what ``/proc/<pid>/schedstat`` adds
    to each task's run delay: the two sums differ by the run-queue clock's
    lag at the switches (see "How a wait is measured" in the README).

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
    buckets: np.ndarray | None = field(default=None, repr=False)
    wall_ns: int | None = None

    @classmethod
    def from_buckets(cls, cgroup_id: int, buckets: np.ndarray, **fields: Any) -> CgroupHistogram:
        """A histogram whose log2 table is summed from its fine ``buckets``."""
        buckets = np.asarray(buckets, dtype=np.uint64)
        return cls(cgroup_id, fine_buckets.log2_slots(buckets), buckets=buckets, **fields)

    @classmethod
    def empty(cls, cgroup_id: int, **fields: Any) -> CgroupHistogram:
        """A cgroup that never waited: no waits, percentiles NaN."""
        zeros = np.zeros(fine_buckets.BUCKETS, dtype=np.uint64)
        return cls.from_buckets(
            cgroup_id, zeros, count=0, total_ns=0, wall_ns=0, max_ns=0, **fields
        )

    def bucket_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)`` ns of each fine bucket: see
        :func:`noisy_neighbor.fine_buckets.bucket_bounds`."""
        return fine_buckets.bucket_bounds()

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
        """q-th percentile (0-100) of the wall-clock waits in ns, within half
        a fine bucket (about 4.4%, :func:`noisy_neighbor.fine_buckets.percentile`);
        from a log2 table alone, within a factor of two. NaN when there were
        no waits."""
        if self.buckets is not None:
            return fine_buckets.percentile(self.buckets, q, self.max_ns)
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
            buckets=(
                None
                if self.buckets is None or earlier.buckets is None
                else self.buckets - earlier.buckets
            ),
            wall_ns=(
                None
                if self.wall_ns is None or earlier.wall_ns is None
                else self.wall_ns - earlier.wall_ns
            ),
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
                f"p50 = {format_ns(self.percentile(50))}  "
                f"p99 = {format_ns(self.percentile(99))}  max = {format_ns(self.max_ns)}"
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
            "wall_ns": self.wall_ns,
            "max_ns": self.max_ns,
            "p50_ns": None if p50 != p50 else p50,
            "p99_ns": None if p99 != p99 else p99,
            "slots": [int(c) for c in slots],
            # Fine buckets by index (see noisy_neighbor.fine_buckets), non-empty only.
            "buckets": fine_buckets.to_sparse(self.buckets),
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
