"""A script's maps as pandas: a map without keys is one value; a map with
keys a Series (one key part) or a DataFrame indexed by its key parts; hist
and lhist maps become the package's log2/linear histogram objects per key,
stats and avg their count, total and average."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .types import Kind
from .values import MapSnapshot

__all__ = ["map_frame"]


def _names(snapshot: MapSnapshot, key_names: tuple[str, ...]) -> list[str]:
    parts = len(snapshot.key_types)
    names = list(key_names[:parts]) + [f"key{i}" for i in range(len(key_names), parts)]
    # two parts read from the same name (@[pid, pid]) stay apart
    return [n if names.count(n) == 1 else f"{n}_{i}" for i, n in enumerate(names)]


def _index(snapshot: MapSnapshot, key_names: tuple[str, ...]) -> pd.Index | None:
    keys = [key for key, _ in snapshot.entries]
    parts = len(snapshot.key_types)
    if parts == 0:
        return None
    names = _names(snapshot, key_names)
    if parts == 1:
        return pd.Index([k[0] for k in keys], name=names[0])
    return pd.MultiIndex.from_tuples(keys, names=names)


def map_frame(snapshot: MapSnapshot, key_names: tuple[str, ...] = (), resolve: bool = False) -> Any:
    """The map as pandas; with ``resolve``, a ``cgroup_id`` key level gains
    the cgroup's path, container and pod (as ``EventBatch.to_pandas`` does)."""
    frame = _frame(snapshot, key_names)
    if (
        resolve
        and "cgroup_id" in _names(snapshot, key_names)
        and isinstance(frame, (pd.Series, pd.DataFrame))
    ):
        frame = _resolved(frame)
    return frame


def _resolved(frame: Any) -> pd.DataFrame:
    from ..host.batches import EventBatch

    table = frame.to_frame() if isinstance(frame, pd.Series) else frame
    table = table.reset_index()
    ids = table["cgroup_id"].to_numpy()
    names = EventBatch({"cgroup_id": ids}).to_pandas(resolve=True).drop(columns=["cgroup_id"])
    return pd.concat([table, names], axis=1)


def _frame(snapshot: MapSnapshot, key_names: tuple[str, ...]) -> Any:
    kind = snapshot.value_type.kind
    index = _index(snapshot, key_names)
    values = [value for _, value in snapshot.entries]
    name = snapshot.name
    if kind in (Kind.HIST, Kind.LHIST):
        from .histograms import ScriptHistogram

        hists = [
            ScriptHistogram.from_snapshot(snapshot, key, counts) for key, counts in snapshot.entries
        ]
        if index is None:
            return hists[0] if hists else ScriptHistogram.empty(snapshot)
        return pd.Series(hists, index=index, name=name, dtype=object)
    if kind in (Kind.AVG, Kind.STATS):
        rows = [
            {"count": count, "total": total, "average": int(total / count) if count else 0}
            for count, total in values
        ]
        frame = pd.DataFrame(rows, index=index, columns=["count", "total", "average"])
        if index is None:
            return frame.iloc[0] if len(frame) else None
        return frame
    if index is None:
        return values[0] if values else None
    return pd.Series(values, index=index, name=name)
