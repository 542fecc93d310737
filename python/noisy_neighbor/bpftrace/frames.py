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


def _index(snapshot: MapSnapshot) -> pd.Index | None:
    keys = [key for key, _ in snapshot.entries]
    parts = len(snapshot.key_types)
    if parts == 0:
        return None
    names = [f"key{i}" if parts > 1 else "key" for i in range(parts)]
    if parts == 1:
        return pd.Index([k[0] for k in keys], name=names[0])
    return pd.MultiIndex.from_tuples(keys, names=names)


def map_frame(snapshot: MapSnapshot) -> Any:
    kind = snapshot.value_type.kind
    index = _index(snapshot)
    values = [value for _, value in snapshot.entries]
    name = snapshot.name
    if kind in (Kind.HIST, Kind.LHIST):
        from .histograms import ScriptHistogram

        hists = [ScriptHistogram.from_snapshot(snapshot, key, counts) for key, counts in snapshot.entries]
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
