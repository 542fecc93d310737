"""A script's ``hist()`` and ``lhist()`` entries as histogram objects: the
counts with their bucket bounds, percentiles (interpolated in the ranked
bucket, as the package's other histograms are), bpftrace's own table as
text, a plot, and for ``hist()`` the package's :class:`Log2Histogram`."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..host.maps import Log2Histogram
from ..log2 import ranked_bucket
from .output_text import hist_text, lhist_text
from .types import Kind
from .values import MapSnapshot

__all__ = ["ScriptHistogram"]


@dataclass
class ScriptHistogram:
    """``counts[i]`` values fell in ``[lows[i], highs[i])``; the first
    bucket of a hist holds negative values, an lhist's first and last hold
    those below its min and at or above its max (their open ends are
    -inf/inf)."""

    map_name: str
    key: Any
    kind: str  # "hist" or "lhist"
    counts: np.ndarray
    lows: np.ndarray
    highs: np.ndarray
    params: tuple[int, ...] = ()

    @classmethod
    def from_snapshot(
        cls, snapshot: MapSnapshot, key: tuple[Any, ...], counts: list[int]
    ) -> ScriptHistogram:
        value = snapshot.value_type
        n = len(counts)
        if value.kind is Kind.HIST:
            lows = [-math.inf, 0.0, 1.0] + [float(1 << (k - 2)) for k in range(3, n)]
            highs = [0.0, 1.0, 2.0] + [float(1 << (k - 1)) for k in range(3, n)]
            kind = "hist"
        else:
            low, high, step = value.params
            lows = [-math.inf] + [float(low + step * i) for i in range(n - 1)]
            highs = (
                [float(low)]
                + [float(min(low + step * (i + 1), high)) for i in range(n - 2)]
                + [math.inf]
            )
            kind = "lhist"
        shown_key = key[0] if len(key) == 1 else key
        return cls(snapshot.name, shown_key, kind, np.asarray(counts, dtype=np.int64),
                   np.asarray(lows[:n]), np.asarray(highs[:n]), value.params)  # fmt: skip

    @classmethod
    def empty(cls, snapshot: MapSnapshot) -> ScriptHistogram:
        value = snapshot.value_type
        if value.kind is Kind.HIST:
            return cls.from_snapshot(snapshot, (), [0] * 66)
        low, high, step = value.params
        return cls.from_snapshot(snapshot, (), [0] * ((high - low) // step + 2))

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    def percentile(self, q: float) -> float:
        """The q-th percentile (0-100), interpolated linearly inside the
        bucket holding the ranked value (so within that bucket's bounds);
        NaN when empty. An open-ended bucket gives its finite bound."""
        ranked = ranked_bucket(self.counts, q)
        if ranked is None:
            return float("nan")
        i, fraction = ranked
        low, high = self.lows[i], self.highs[i]
        if not math.isfinite(low):
            return float(high)
        if not math.isfinite(high):
            return float(low)
        return float(low + fraction * (high - low))

    def to_log2(self) -> Log2Histogram:
        """A hist() as the package's log2 histogram (slot 0 holds 0 and 1;
        negative values are left out)."""
        if self.kind != "hist":
            raise ValueError("only a hist() converts to a log2 histogram")
        counts = np.zeros(64, dtype=np.int64)
        counts[0] = self.counts[1] + (self.counts[2] if len(self.counts) > 2 else 0)
        for k in range(3, len(self.counts)):
            if k - 2 < 64:
                counts[k - 2] = self.counts[k]
        return Log2Histogram(self.map_name, self.key, counts)

    def to_text(self) -> str:
        """The table bpftrace prints for this entry."""
        if self.kind == "hist":
            return hist_text(self.counts.tolist())
        low, high, step = self.params
        return lhist_text(self.counts.tolist(), low, high, step)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        title = f"{self.map_name}[{self.key}]" if self.key not in ((), None) else self.map_name
        return f"<b>{html.escape(title)}</b><pre>{html.escape(self.to_text())}</pre>"

    def plot(self, ax: Any = None) -> Any:
        """A bar per non-empty stretch of buckets, labelled as bpftrace labels them."""
        import matplotlib.pyplot as plt

        ax = ax or plt.gca()
        nonzero = np.flatnonzero(self.counts)
        if len(nonzero):
            first, last = nonzero[0], nonzero[-1]
            shown = range(first, last + 1)
            labels = [_label(self.lows[i], self.highs[i]) for i in shown]
            ax.bar(range(len(labels)), self.counts[first : last + 1])
            ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        title = f"{self.map_name}[{self.key}]" if self.key not in ((), None) else self.map_name
        ax.set_title(title)
        ax.set_ylabel("count")
        return ax

    def __repr__(self) -> str:
        return f"<ScriptHistogram {self.map_name}[{self.key}] {self.kind} count={self.count}>"


def _label(low: float, high: float) -> str:
    if not math.isfinite(low):
        return f"< {high:g}"
    if not math.isfinite(high):
        return f">= {low:g}"
    return f"[{low:g}, {high:g})"
