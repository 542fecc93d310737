"""A plugin's maps read into Python: plain maps as dicts and DataFrames, and
maps whose value holds a ``slots[]`` array as log2 histograms, printed the way
the seed experiment's ``ecli`` printed them."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import PluginObjectError
from ..log2 import log2_percentile, render_log2_hist
from .layout import Field, Layout, decode

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Log2Histogram", "MapShape", "MapView", "is_histogram_layout"]


class MapShape(Protocol):
    """What a map view needs to know of its map (a :class:`~noisy_neighbor._native.MapInfo`
    is one): its type, and its key and value layouts (None without BTF)."""

    @property
    def type(self) -> str: ...
    @property
    def key(self) -> Layout | None: ...
    @property
    def value(self) -> Layout | None: ...
    @property
    def key_size(self) -> int: ...
    @property
    def value_size(self) -> int: ...


_SLOTS = "slots"


def _raw_layout(size: int) -> Layout:
    """A layout for a key or value without BTF: an integer if the size is one,
    bytes otherwise."""
    if size in (1, 2, 4, 8):
        return Layout(f"u{size * 8}", size, [Field("", 0, "uint", size)])
    return Layout("bytes", size, [Field("", 0, "bytes", 1, [size])])


def is_histogram_layout(layout: Layout | None) -> bool:
    """Whether a value type is a log2 histogram: a struct with a one-dimensional
    integer array named ``slots`` (eunomia's ``log2_hist`` convention)."""
    if not layout:
        return False
    return any(
        f.name == _SLOTS and f.kind in ("int", "uint") and len(f.shape) == 1 for f in layout.fields
    )


def _scalar(value: Any) -> Any:
    """A numpy element as a plain Python value (arrays as lists)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value


def row_value(columns: dict[str, np.ndarray], index: int) -> Any:
    """One decoded row as plain Python: a bare value for a single unnamed
    column (decoded as "key" or "value"), else a dict by field."""
    if list(columns) in (["key"], ["value"]):
        return _scalar(next(iter(columns.values()))[index])
    return {name: _scalar(column[index]) for name, column in columns.items()}


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(_hashable(v) for v in value.values())
    if isinstance(value, list):
        return tuple(value)
    return value


@dataclass
class Log2Histogram:
    """One entry of a log2 histogram map: ``slots[i]`` counts values in
    ``[2**i, 2**(i+1))`` of whatever unit the program chose (slot 0 also counts
    0). ``labels`` holds the value's other fields (``comm``, ``cgroup_name``...)."""

    map_name: str
    key: Any
    slots: np.ndarray
    labels: dict[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return int(self.slots.sum())

    def percentile(self, q: float) -> float:
        """The q-th percentile (0-100), interpolated inside its bucket (within a
        factor of two of the true value), in the program's unit."""
        return log2_percentile(self.slots, q)

    def to_text(self) -> str:
        """``key = ...``, one ``name = value`` line per label, then the table."""
        lines = [f"key = {self.key}"]
        lines += [f"{name} = {value}" for name, value in self.labels.items()]
        lines.append(render_log2_hist(self.slots, unit="ns", label="unit"))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.to_text())}</pre>"

    def __repr__(self) -> str:
        return f"<Log2Histogram {self.map_name}[{self.key}] count={self.count}>"


class MapView:
    """A snapshot of a map's entries, decoded by its BTF key and value types.

    Per-CPU maps hold one value per CPU: ``to_pandas()`` sums numeric fields
    over CPUs unless ``per_cpu=True``, which gives one row per key and CPU."""

    def __init__(
        self,
        name: str,
        info: MapShape,
        keys: np.ndarray,
        values: np.ndarray,
        count: int,
        cpus: int,
    ) -> None:
        self.name = name
        self.info = info
        self.cpus = cpus
        self._key_layout = info.key or _raw_layout(info.key_size)
        self._value_layout = info.value or _raw_layout(info.value_size)
        self.keys = decode(keys, self._key_layout, "key") if count else {}
        self.values = decode(values, self._value_layout, "value") if count else {}
        self._count = count

    def __len__(self) -> int:
        return self._count

    def _key(self, index: int) -> Any:
        return _hashable(row_value(self.keys, index))

    def to_dict(self) -> dict[Any, Any]:
        """{key: value}: bare ints for single-field keys and values, tuples
        for struct keys, dicts for struct values; per-CPU maps give a list of
        values, one per CPU."""
        out: dict[Any, Any] = {}
        for i in range(self._count):
            if self.cpus > 1:
                out[self._key(i)] = [
                    row_value(self.values, i * self.cpus + c) for c in range(self.cpus)
                ]
            else:
                out[self._key(i)] = row_value(self.values, i)
        return out

    def __getitem__(self, key: Any) -> Any:
        return self.to_dict()[key]

    def to_pandas(self, per_cpu: bool = False) -> pd.DataFrame:
        """One row per entry: key columns, then value columns (arrays stay
        arrays, one per cell)."""
        import pandas as pd

        keys = {k: list(v) if v.ndim > 1 else v for k, v in self.keys.items()}
        values: dict[str, Any] = {}
        for name, column in self.values.items():
            if self.cpus > 1:
                shaped = column.reshape(self._count, self.cpus, *column.shape[1:])
                if per_cpu:
                    values[name] = shaped.reshape(self._count * self.cpus, *column.shape[1:])
                elif np.issubdtype(column.dtype, np.number):
                    values[name] = shaped.sum(axis=1)
                else:
                    values[name] = shaped[:, 0]
            else:
                values[name] = column
        if self.cpus > 1 and per_cpu:
            keys = {k: np.repeat(np.asarray(v), self.cpus, axis=0) for k, v in keys.items()}
            keys["cpu"] = np.tile(np.arange(self.cpus), self._count)
        values = {k: list(v) if np.ndim(v) > 1 else v for k, v in values.items()}
        return pd.DataFrame({**keys, **values})

    def histograms(self) -> dict[Any, Log2Histogram]:
        """The entries as log2 histograms (per-CPU slots summed), by key."""
        if not is_histogram_layout(self._value_layout):
            raise PluginObjectError(
                f"map {self.name!r} holds no histograms: its value type "
                f"{self._value_layout.type_name} has no integer array named 'slots'"
            )
        if not self._count:
            return {}
        per_cpu_slots = self.values[_SLOTS].reshape(self._count, self.cpus, -1)
        slots = per_cpu_slots.sum(axis=1)
        labels = [n for n in self.values if n != _SLOTS]
        out = {}
        for i in range(self._count):
            # Labels from the first CPU whose copy counted anything (a per-CPU
            # map's other copies may never have been written).
            written = np.flatnonzero(per_cpu_slots[i].any(axis=1))
            row = i * self.cpus + (int(written[0]) if written.size else 0)
            out[self._key(i)] = Log2Histogram(
                map_name=self.name,
                key=self._key(i),
                slots=slots[i].astype(np.uint64),
                labels={n: _scalar(self.values[n][row]) for n in labels},
            )
        return out

    def __repr__(self) -> str:
        return f"<MapView {self.name} ({self.info.type}): {self._count} entries>"
