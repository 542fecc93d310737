"""Batches of records as columns: one numpy array per field, straight from the
Rust core without a copy. The run-queue probe's events and plugins' ring-buffer
records both arrive as :class:`EventBatch` objects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EventBatch"]


def _pod_name(info: Any) -> str | None:
    if info.pod_uid is None:
        return None
    if info.pod_name:
        return f"{info.pod_namespace}/{info.pod_name}"
    return f"pod {info.pod_uid[:8]}"


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

    def to_pandas(self, resolve: bool = False) -> pd.DataFrame:
        """A DataFrame with one row per event (needs pandas).

        With ``resolve=True``, adds what each cgroup id is: ``cgroup`` (path,
        the last known one for removed cgroups), ``container_id``,
        ``container_name`` and ``image`` (as the runtime keeps them), and
        ``pod`` (display name), and the same for the cgroup that had the CPU
        (``prev_cgroup``, ``prev_container_id``, ...).
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "EventBatch.to_pandas() needs pandas: pip install 'noisy-neighbor[pandas]'"
            ) from None
        # A fixed array field (a plugin's ``u16 marks[2]``) is a 2-D column:
        # one array per cell.
        columns = {k: list(v) if v.ndim > 1 else v for k, v in self._columns.items()}
        frame = pd.DataFrame(columns, copy=False)
        if resolve:
            from ..names.resolver import resolve_cgroup

            for id_column, prefix in (("cgroup_id", ""), ("prev_cgroup_id", "prev_")):
                if id_column not in frame:
                    continue
                infos = {int(i): resolve_cgroup(int(i)) for i in np.unique(frame[id_column])}
                ids = frame[id_column]
                frame[f"{prefix}cgroup"] = ids.map({i: n.path for i, n in infos.items()})
                for field in ("container_id", "container_name", "image"):
                    frame[f"{prefix}{field}"] = ids.map(
                        {i: getattr(n, field) for i, n in infos.items()}
                    )
                frame[f"{prefix}pod"] = ids.map({i: _pod_name(n) for i, n in infos.items()})
        return frame

    def __repr__(self) -> str:
        summary: list[str] = [f"{len(self)} events"]
        if len(self) and "latency_ns" in self._columns:
            latency = self._columns["latency_ns"]
            summary.append(f"latency p50={np.median(latency):.0f} ns max={latency.max()} ns")
        if len(self) and "cgroup_id" in self._columns:
            summary.append(f"{len(np.unique(self._columns['cgroup_id']))} cgroups")
        return f"<EventBatch {', '.join(summary)}>"

    def _repr_html_(self) -> str:
        # A summary: a batch can hold a million rows.
        import html

        fields = ", ".join(f"{f} ({c.dtype})" for f, c in self._columns.items())
        return f"<p>{html.escape(repr(self))}</p><p>fields: {html.escape(fields)}</p>"

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, EventBatch) or self.fields != other.fields:
            return NotImplemented
        return all(np.array_equal(self._columns[f], other._columns[f]) for f in self.fields)

    __hash__ = None  # type: ignore[assignment]
