"""Reports from saved events: the kernel's split of each wait over the cgroups
that had the CPU, rebuilt from a DataFrame of run-queue events, and a
:class:`~noisy_neighbor.runq.verdicts.NoisyNeighborReport` with exact
percentiles. The attribution and verdict rules are those of
:mod:`noisy_neighbor.runq.verdicts`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from ..runq.verdicts import CgroupWaits, NoisyNeighborReport, Thresholds
from ..runq.wire import IDLE, UNTRACKED

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["report", "split_blame_from_events"]


def split_blame_from_events(frame: pd.DataFrame) -> dict[tuple[int, int], int]:
    """Rebuilds the kernel's split of waits from saved events.

    On each CPU, consecutive events are consecutive switch-ins, so the stretch
    between two of them belongs to the cgroup that the later one names as
    ``prev`` (idle when ``prev_pid`` is 0). Each wait is split over the
    stretches it overlaps. Switch-ins the stream does not hold (rate-limited,
    dropped or filtered events, tasks that never queued) merge stretches, and a
    wait that began on another CPU is split as if queued on this one.
    """
    blame: dict[tuple[int, int], int] = defaultdict(int)
    for _cpu, group in frame.groupby("cpu"):
        group = group.sort_values("ts_ns", kind="stable")
        ts = group["ts_ns"].to_numpy(dtype=np.int64)
        latency = group["latency_ns"].to_numpy(dtype=np.int64)
        victims = group["cgroup_id"].to_numpy(dtype=np.uint64)
        culprits = np.where(
            group["prev_pid"].to_numpy() == 0, IDLE, group["prev_cgroup_id"].to_numpy()
        ).astype(np.uint64)
        for j in range(len(ts)):
            victim, start, end, i = int(victims[j]), ts[j] - latency[j], ts[j], j
            while end > start and i > 0:
                stretch_start = max(ts[i - 1], start)
                blame[(victim, int(culprits[i]))] += int(end - stretch_start)
                end, i = stretch_start, i - 1
            if end > start:
                blame[(victim, UNTRACKED)] += int(end - start)
    return blame


def report(
    frame: pd.DataFrame,
    thresholds: Thresholds | None = None,
    names: Mapping[int, str] | None = None,
) -> NoisyNeighborReport:
    """A report from saved events (a DataFrame with ``cgroup_id``, ``cpu``,
    ``ts_ns``, ``latency_ns``, ``prev_cgroup_id`` and ``prev_pid``, as
    ``EventBatch.to_pandas()`` gives). Percentiles are exact; waits are split
    as :func:`split_blame_from_events` says; throttling is not in events, so
    no ``self-throttled`` verdict comes from a frame. ``names`` (a saved
    collection's) name cgroups that may be gone; others are resolved now."""
    from ..names.resolver import resolve_cgroup

    blame_by: dict[int, dict[int, int]] = defaultdict(dict)
    for (victim, culprit), ns in split_blame_from_events(frame).items():
        blame_by[victim][culprit] = ns
    waits = []
    for cgroup_id, group in frame.groupby("cgroup_id"):
        latency = group["latency_ns"].to_numpy()
        p50, p90, p99 = np.percentile(latency, [50, 90, 99])
        cid = int(cgroup_id)
        waits.append(
            CgroupWaits(
                cgroup_id=cid,
                name=(names or {}).get(cid) or resolve_cgroup(cid).display_name or f"cgroup {cid}",
                count=len(latency),
                total_ns=int(latency.sum()),
                p50_ns=float(p50),
                p90_ns=float(p90),
                p99_ns=float(p99),
                max_ns=int(latency.max()),
                exact_percentiles=True,
                blame=blame_by.get(cid, {}),
            )
        )
    ts = frame.get("ts_ns")
    window = float(ts.max() - ts.min()) / 1e9 if ts is not None and len(ts) else None
    return NoisyNeighborReport(
        waits,
        window_s=window,
        thresholds=thresholds,
        path_of=lambda cid: resolve_cgroup(cid).path,
        names=names,
    )
