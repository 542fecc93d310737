"""Plots of run-queue latency with matplotlib (an optional dependency). Each
function draws on ``ax`` (a new figure if None) and returns the Axes; all work
headless."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..log2 import log2_percentile
from ..runq.histogram import CgroupHistogram
from ..units import UNITS

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from ..runq.verdicts import NoisyNeighborReport

__all__ = [
    "plot_culprit_matrix",
    "plot_history",
    "plot_latency_distribution",
    "plot_latency_heatmap",
    "plot_percentiles_over_time",
]


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install matplotlib") from None
    return plt.subplots(figsize=(8, 4.5))[1]


def _namer(source: Any) -> Callable[[int], str]:
    """Names cgroups as ``source`` saw them (a Collection keeps its names, so
    a plot of one made after its cgroups are gone still names them), else as
    they resolve now."""
    from ..names.resolver import resolve_cgroup
    from ..runq.wire import IDLE, UNTRACKED

    kept: dict[int, str] = getattr(source, "names", None) or {}

    def name(cgroup_id: int) -> str:
        if cgroup_id == IDLE:
            return "idle"
        if cgroup_id == UNTRACKED:
            return "untracked"
        return (
            kept.get(cgroup_id) or resolve_cgroup(cgroup_id).display_name or (f"cgroup {cgroup_id}")
        )

    return name


def _histograms(source: Any) -> dict[int, CgroupHistogram]:
    if isinstance(source, dict):
        return source
    if hasattr(source, "histograms"):
        hists = source.histograms
        return hists() if callable(hists) else hists
    raise TypeError("give a Collection, a RunqProbe or a dict of CgroupHistogram")


def _events(source: Any) -> pd.DataFrame:
    if hasattr(source, "events"):
        return source.events
    if hasattr(source, "to_pandas") and not hasattr(source, "verdicts"):
        return source.to_pandas()
    return source


def _pick(ids_by_weight: dict[int, float], cgroups: Any, top: int) -> list[int]:
    if cgroups is None:
        return sorted(ids_by_weight, key=lambda i: -ids_by_weight[i])[:top]
    return [int(getattr(c, "id", c)) for c in cgroups]


def plot_latency_distribution(
    source: Any,
    cgroups: Any = None,
    *,
    kind: str = "hist",
    top: int = 5,
    unit: str = "us",
    ax: Axes | None = None,
) -> Axes:
    """Per-cgroup latency distributions overlaid, on a log time axis: the share
    of waits per log2 bucket (``kind="hist"``) or the cumulative share
    (``"cdf"``). ``source``: a Collection, RunqProbe or dict of histograms;
    ``cgroups``: ids (or objects with ``id``), default the ``top`` busiest."""
    if kind not in ("hist", "cdf"):
        raise ValueError(f"kind must be 'hist' or 'cdf', got {kind!r}")
    per_unit, label = UNITS[unit]
    hists = _histograms(source)
    ax = _axes(ax)
    name = _namer(source)
    for cgroup_id in _pick({i: h.total_ns for i, h in hists.items()}, cgroups, top):
        hist = hists[cgroup_id]
        counts = hist.slots.astype(np.float64)
        if not counts.sum():
            continue
        share = counts / counts.sum()
        y = np.cumsum(share) if kind == "cdf" else share
        edges = np.concatenate([[1.0], 2.0 ** np.arange(1, len(counts) + 1)]) / per_unit
        last = int(np.flatnonzero(counts)[-1]) + 1
        ax.stairs(y[:last], edges[: last + 1], label=name(cgroup_id))
    ax.set_xscale("log")
    ax.set_xlabel(f"run-queue latency ({label})")
    ax.set_ylabel("share of waits" if kind == "hist" else "cumulative share of waits")
    ax.set_title("Run-queue latency per cgroup")
    ax.legend(fontsize="small")
    return ax


def plot_latency_heatmap(
    source: Any, cgroup: Any = None, *, bin_s: float = 0.1, ax: Axes | None = None
) -> Axes:
    """Brendan Gregg's latency heat map: time on x, log2 latency buckets on y,
    the number of waits as colour. ``source``: events (Collection, DataFrame
    or EventBatch); ``cgroup``: only this one's waits."""
    events = _events(source)
    if cgroup is not None:
        events = events[events["cgroup_id"] == int(getattr(cgroup, "id", cgroup))]
    if not len(events):
        raise ValueError("no waits to draw")
    ts = events["ts_ns"].to_numpy(dtype=np.int64)
    seconds = (ts - ts.min()) / 1e9
    latency = np.maximum(events["latency_ns"].to_numpy(dtype=np.float64), 1.0)
    slots = np.floor(np.log2(latency))
    time_edges = np.arange(0.0, seconds.max() + bin_s, bin_s)
    if len(time_edges) < 2:
        time_edges = np.array([0.0, bin_s])
    slot_edges = np.arange(slots.min(), slots.max() + 2)
    counts, _, _ = np.histogram2d(seconds, slots, bins=[time_edges, slot_edges])
    ax = _axes(ax)
    mesh = ax.pcolormesh(time_edges, 2.0**slot_edges / 1000, counts.T, cmap="inferno_r")
    ax.set_yscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("run-queue latency (usecs)")
    ax.set_title(
        "Latency heat map"
        + (f": {_namer(source)(int(events['cgroup_id'].iloc[0]))}" if cgroup is not None else "")
    )
    ax.figure.colorbar(mesh, ax=ax, label="waits")
    return ax


def plot_percentiles_over_time(
    source: Any,
    cgroups: Any = None,
    *,
    percentiles: tuple[float, ...] = (50, 99),
    window_s: float = 0.5,
    top: int = 3,
    ax: Axes | None = None,
) -> Axes:
    """Latency percentiles (exact, from events) per time window, per cgroup."""
    events = _events(source)
    totals = events.groupby("cgroup_id")["latency_ns"].sum().to_dict()
    ax = _axes(ax)
    t0 = int(events["ts_ns"].min())
    name = _namer(source)
    for cgroup_id in _pick(totals, cgroups, top):
        mine = events[events["cgroup_id"] == cgroup_id]
        if not len(mine):
            continue
        window = ((mine["ts_ns"].to_numpy(dtype=np.int64) - t0) / 1e9 // window_s).astype(int)
        latency = mine["latency_ns"].to_numpy(dtype=np.float64) / 1000
        windows = np.unique(window)
        x = (windows + 0.5) * window_s
        for q in percentiles:
            y = [np.percentile(latency[window == w], q) for w in windows]
            ax.plot(x, y, marker=".", label=f"{name(cgroup_id)} p{q:g}")
    ax.set_yscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("run-queue latency (usecs)")
    ax.set_title("Latency percentiles over time")
    ax.legend(fontsize="small")
    return ax


def plot_history(
    frame: pd.DataFrame,
    names: Any = None,
    *,
    percentile: float = 99,
    top: int = 5,
    ax: Axes | None = None,
) -> Axes:
    """A percentile of run-queue latency over time per name (container, pod
    or unit), from the agent's recording (:func:`noisy_neighbor.history`).
    Cgroups that share a name (a container restarted) are merged; each
    point is the percentile of that interval's log2 buckets (within 2x).
    ``names`` picks whom to draw; else the ``top`` that waited most."""
    ax = _axes(ax)
    if names is None:
        totals = frame.groupby("name")["wait_ns"].sum().sort_values(ascending=False)
        names = list(totals.index[:top])
    elif isinstance(names, str):
        names = [names]
    for name in names:
        mine = frame[frame["name"] == name]
        if not len(mine):
            continue
        x, y = [], []
        for moment, rows in mine.groupby("time"):
            slots = np.sum(np.stack([np.asarray(s, dtype=np.float64) for s in rows["slots"]]), 0)
            x.append(moment)
            y.append(log2_percentile(slots, percentile) / 1000)
        ax.plot(x, y, marker=".", label=f"{name} p{percentile:g}")
    ax.set_yscale("log")
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("run-queue latency (usecs)")
    ax.set_title(f"p{percentile:g} run-queue latency over time")
    ax.legend(fontsize="small")
    ax.figure.autofmt_xdate()
    return ax


def plot_culprit_matrix(
    report: NoisyNeighborReport, *, top: int = 10, ax: Axes | None = None
) -> Axes:
    """Victims (rows) by culprits (columns): the share of each victim's wait
    spent behind each culprit (idle and untracked included)."""
    victims = sorted(report.cgroups, key=lambda i: -report.cgroups[i].total_ns)[:top]
    culprit_wait: dict[int, int] = {}
    for v in victims:
        for culprit, ns in report.cgroups[v].blame.items():
            culprit_wait[culprit] = culprit_wait.get(culprit, 0) + ns
    culprits = sorted(culprit_wait, key=lambda c: -culprit_wait[c])[:top]
    matrix = np.array(
        [
            [
                report.cgroups[v].blame.get(c, 0) / max(report.cgroups[v].total_ns, 1)
                for c in culprits
            ]
            for v in victims
        ]
    )
    ax = _axes(ax)
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="Reds", aspect="auto")
    ax.set_xticks(
        range(len(culprits)), [report.name_of(c) for c in culprits], rotation=30, ha="right"
    )
    ax.set_yticks(range(len(victims)), [report.name_of(v) for v in victims])
    ax.set_xlabel("had the CPU (culprit)")
    ax.set_ylabel("waited (victim)")
    ax.set_title("Share of each cgroup's wait, by who had the CPU")
    for (i, j), share in np.ndenumerate(matrix):
        if share >= 0.01:
            ax.text(j, i, f"{share:.0%}", ha="center", va="center", fontsize="small")
    ax.figure.colorbar(image, ax=ax, label="share of wait")
    return ax
