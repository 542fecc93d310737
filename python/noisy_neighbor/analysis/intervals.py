"""Reports over successive intervals of a running probe, for ``noisy-neighbor
top`` and live views: each one covers only the waits since the previous."""

from __future__ import annotations

import time

from ..runq.histogram import CgroupHistogram
from ..runq.probe import RunqProbe
from ..runq.throttling import ThrottleBaseline
from ..runq.verdicts import NoisyNeighborReport, Thresholds, from_histograms
from ..runq.wire import Blame, SwitchOuts

__all__ = ["IntervalReports"]


class IntervalReports:
    """``next()`` gives the report of the interval since the last call (or
    since construction). The probe needs ``attribution=True``."""

    def __init__(self, probe: RunqProbe, thresholds: Thresholds | None = None) -> None:
        self.probe = probe
        self.thresholds = thresholds
        self._hists: dict[int, CgroupHistogram] = {}
        self._blame: dict[tuple[int, int], Blame] = {}
        self._outs: dict[int, SwitchOuts] = {}
        self._start_interval()
        self._read()

    def _start_interval(self) -> None:
        tree = self.probe.cgroup_tree
        tree.rescan()
        self._throttle = ThrottleBaseline(tree.known_paths(), tree.mount)
        self._started = time.monotonic()

    def _read(self) -> tuple[dict, dict, dict]:
        hists = self.probe.histograms()
        blame = {(b.cgroup_id, b.culprit_cgroup_id): b for b in self.probe.blame()}
        outs = {o.cgroup_id: o for o in self.probe.switch_outs()}
        self.probe.forget_removed()  # each removed cgroup's last interval is in this reading
        previous = (self._hists, self._blame, self._outs)
        self._hists, self._blame, self._outs = hists, blame, outs
        return previous

    def next(self) -> NoisyNeighborReport:
        window = time.monotonic() - self._started
        throttle = self._throttle
        hists0, blame0, outs0 = self._read()
        hists = {cid: h - hists0[cid] if cid in hists0 else h for cid, h in self._hists.items()}
        blame = []
        for key, blamed in self._blame.items():
            earlier = blame0.get(key)
            count, total_ns = (earlier.count, earlier.total_ns) if earlier else (0, 0)
            if blamed.total_ns > total_ns:
                blame.append(
                    Blame(*key, count=blamed.count - count, total_ns=blamed.total_ns - total_ns)
                )
        outs = []
        for cgroup_id, switched in self._outs.items():
            counts = switched.by_cause()
            if (earlier_outs := outs0.get(cgroup_id)) is not None:
                counts = {c: n - earlier_outs.by_cause()[c] for c, n in counts.items()}
            outs.append(SwitchOuts(cgroup_id, **counts))
        self._start_interval()
        return from_histograms(
            hists, blame, outs, throttle.since_start, window_s=window, thresholds=self.thresholds
        )
