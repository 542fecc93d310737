"""Reports over successive intervals of a running probe, for ``noisy-neighbor
top`` and live views: each one covers only the waits since the previous."""

from __future__ import annotations

import time

from .histogram import CgroupHistogram
from .probe import RunqProbe
from .report import NoisyNeighborReport, Thresholds, from_histograms
from .throttling import ThrottleBaseline

__all__ = ["IntervalReports"]


class IntervalReports:
    """``next()`` gives the report of the interval since the last call (or
    since construction). The probe needs ``attribution=True``."""

    def __init__(self, probe: RunqProbe, thresholds: Thresholds | None = None) -> None:
        self.probe = probe
        self.thresholds = thresholds
        self._hists: dict[int, CgroupHistogram] = {}
        self._blame: dict[tuple[int, int], tuple[int, int]] = {}
        self._outs: dict[int, tuple[int, int, int, int]] = {}
        self._start_interval()
        self._read()

    def _start_interval(self) -> None:
        tree = self.probe.cgroup_tree
        tree.rescan()
        self._throttle = ThrottleBaseline(tree.known_paths(), tree.mount)
        self._started = time.monotonic()

    def _read(self) -> tuple[dict, dict, dict]:
        hists = self.probe.histograms()
        blame = {(v, c): (n, ns) for v, c, n, ns in self.probe.blame()}
        outs = {row[0]: row[1:] for row in self.probe.switch_outs()}
        previous = (self._hists, self._blame, self._outs)
        self._hists, self._blame, self._outs = hists, blame, outs
        return previous

    def next(self) -> NoisyNeighborReport:
        window = time.monotonic() - self._started
        throttle = self._throttle
        hists0, blame0, outs0 = self._read()
        hists = {cid: h - hists0[cid] if cid in hists0 else h for cid, h in self._hists.items()}
        blame = []
        for (victim, culprit), (n, ns) in self._blame.items():
            n0, ns0 = blame0.get((victim, culprit), (0, 0))
            if ns > ns0:
                blame.append((victim, culprit, n - n0, ns - ns0))
        zeros = (0, 0, 0, 0)
        outs = [
            (cid, *(a - b for a, b in zip(row, outs0.get(cid, zeros))))
            for cid, row in self._outs.items()
        ]
        self._start_interval()
        return from_histograms(
            hists, blame, outs, throttle.since_start, window_s=window, thresholds=self.thresholds
        )
