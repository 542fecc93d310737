"""Batches of run-queue events: one numpy array per field, straight from the
Rust core without a copy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RUNQ_EVENT_FIELDS", "EventBatch"]

#: Fields of a run-queue event (``struct runq_event`` in ``src/bpf/runq.h``).
RUNQ_EVENT_FIELDS: dict[str, str] = {
    "ts_ns": "CLOCK_MONOTONIC ns when the wait ended (comparable to time.monotonic_ns())",
    "cpu": "CPU the task got",
    "pid": "thread id of the task that waited",
    "tgid": "its process id",
    "prev_pid": "thread id of the task that had the CPU (0: the CPU was idle)",
    "cgroup_id": "cgroup v2 id of the task that waited",
    "prev_cgroup_id": "cgroup v2 id of the task that had the CPU",
    "latency_ns": "the wait, in ns",
    "preempted": "True if the task had been preempted, False if it was woken (or new)",
}


class EventBatch:
    """A batch of events as columns: ``batch.latency_ns`` is a numpy array, as
    is every other field; ``len(batch)`` is the number of events."""

    __slots__ = ("_columns",)

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        lengths = {len(column) for column in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of an EventBatch must have one length, got {lengths}")
        self._columns = columns

    def __len__(self) -> int:
        return len(next(iter(self._columns.values()))) if self._columns else 0

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self._columns[name]
        except KeyError:
            raise AttributeError(
                f"EventBatch has no field {name!r}; fields: {', '.join(self._columns)}"
            ) from None

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self._columns]

    @property
    def fields(self) -> list[str]:
        return list(self._columns)

    def columns(self) -> dict[str, np.ndarray]:
        """The columns by field name (the arrays themselves, not copies)."""
        return dict(self._columns)

    def to_pandas(self) -> pd.DataFrame:
        """A DataFrame with one row per event (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "EventBatch.to_pandas() needs pandas: pip install 'noisy-neighbor[pandas]'"
            ) from None
        return pd.DataFrame(self._columns, copy=False)

    def __repr__(self) -> str:
        summary: list[str] = [f"{len(self)} events"]
        if len(self) and "latency_ns" in self._columns:
            latency = self._columns["latency_ns"]
            summary.append(f"latency p50={np.median(latency):.0f} ns max={latency.max()} ns")
        if len(self) and "cgroup_id" in self._columns:
            summary.append(f"{len(np.unique(self._columns['cgroup_id']))} cgroups")
        return f"<EventBatch {', '.join(summary)}>"

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, EventBatch) or self.fields != other.fields:
            return NotImplemented
        return all(np.array_equal(self._columns[f], other._columns[f]) for f in self.fields)

    __hash__ = None  # type: ignore[assignment]
