"""A script's maps read back from the kernel: the host's snapshot of a map
(keys and per-CPU values decoded by their BTF layouts) merged over CPUs as
each aggregation merges (sums, the least of the minimums, totals and counts),
hist and lhist buckets gathered per key, into a :class:`~.values.MapSnapshot`."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from ..host.maps import MapView
from .decode import Resolver, column_values
from .program_info import MapInfo
from .types import HIST_BUCKETS, Kind
from .values import MapSnapshot

__all__ = ["snapshot"]


def _keys(info: MapInfo, view: MapView, resolver: Resolver) -> list[tuple[Any, ...]]:
    key_types = info.key_types or ()
    count = len(view)
    if not count:
        return []
    if not key_types:
        return [()] * count
    parts = [column_values(ty, view.keys, f"k{i}", resolver) for i, ty in enumerate(key_types)]
    return [tuple(row) for row in zip(*parts)]


def _per_cpu(view: MapView, column: str) -> np.ndarray:
    """A value column as (entries, CPUs)."""
    values = np.asarray(view.values[column])
    return values.reshape(len(view), max(view.cpus, 1))


def snapshot(info: MapInfo, view: MapView, resolver: Resolver) -> MapSnapshot:
    value = info.value
    assert value is not None
    keys = _keys(info, view, resolver)
    kind = value.kind
    entries: list[tuple[tuple[Any, ...], Any]]
    if not len(view):
        entries = []
    elif kind in (Kind.HIST, Kind.LHIST):
        entries = _buckets(info, view, keys)
    elif kind in (Kind.COUNT, Kind.SUM):
        totals = _per_cpu(view, "value").sum(axis=1)
        entries = list(zip(keys, (int(t) for t in totals)))
    elif kind in (Kind.MIN, Kind.MAX):
        values = _per_cpu(view, "value")
        seen = _per_cpu(view, "set").astype(bool)
        pick = np.min if kind is Kind.MIN else np.max
        fill = np.iinfo(np.int64).max if kind is Kind.MIN else np.iinfo(np.int64).min
        merged = pick(np.where(seen, values, fill), axis=1)
        any_cpu = np.asarray(seen.any(axis=1)).tolist()
        entries = [(k, int(m)) for k, m, any_seen in zip(keys, merged, any_cpu) if any_seen]
    elif kind in (Kind.AVG, Kind.STATS):
        totals = _per_cpu(view, "total").sum(axis=1)
        counts = _per_cpu(view, "count").sum(axis=1)
        entries = [(k, (int(c), int(t))) for k, t, c in zip(keys, totals, counts)]
    else:
        struct_held = kind in (Kind.TUPLE, Kind.BUFFER, Kind.INET, Kind.MAC, Kind.USYM, Kind.USTACK)
        decoded = column_values(value, view.values, "" if struct_held else "value", resolver)
        entries = list(zip(keys, decoded))
    return MapSnapshot(info.name, tuple(info.key_types or ()), value, tuple(entries))


def _buckets(
    info: MapInfo, view: MapView, keys: list[tuple[Any, ...]]
) -> list[tuple[tuple[Any, ...], Any]]:
    value = info.value
    assert value is not None
    if value.kind is Kind.HIST:
        size = HIST_BUCKETS
    else:
        low, high, step = value.params
        size = (high - low) // step + 2
    buckets = np.asarray(view.keys["bucket"]).tolist()
    counts = _per_cpu(view, "value").sum(axis=1).tolist()
    merged: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * size)
    for key, bucket, count in zip(keys, buckets, counts):
        if 0 <= bucket < size:
            merged[key][bucket] += int(count)
    return list(merged.items())
