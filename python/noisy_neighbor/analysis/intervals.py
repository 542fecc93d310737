"""Reports over successive intervals of a running probe, for ``noisy-neighbor
top``, live views and the agent's verdict windows: each one covers only the
waits between two readings."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..runq.histogram import CgroupHistogram
from ..runq.probe import RunqProbe
from ..runq.throttling import ThrottleBaseline
from ..runq.verdicts import NoisyNeighborReport, Thresholds, from_histograms
from ..runq.wire import Blame, SwitchOuts

__all__ = ["IntervalReports", "Reading"]


@dataclass(frozen=True)
class Reading:
    """A probe's cumulative counts at one moment: histograms, culprit splits
    and switch-outs, keyed as the kernel keys them."""

    hists: dict[int, CgroupHistogram]
    blame: dict[tuple[int, int], Blame]
    outs: dict[int, SwitchOuts]

    @classmethod
    def of(cls, probe: RunqProbe) -> Reading:
        """Reads the probe (which needs ``attribution=True``). Removed
        cgroups' last counts are in it; the caller forgets them once used."""
        return cls(
            hists=probe.histograms(),
            blame={(b.cgroup_id, b.culprit_cgroup_id): b for b in probe.blame()},
            outs={o.cgroup_id: o for o in probe.switch_outs()},
        )

    def since(self, earlier: Reading) -> Reading:
        """What happened between ``earlier`` and this reading. Entries that
        did not move are left out of the culprit splits."""
        hists = {
            cid: h - earlier.hists[cid] if cid in earlier.hists else h
            for cid, h in self.hists.items()
        }
        blame = {}
        for key, blamed in self.blame.items():
            before = earlier.blame.get(key)
            count, total_ns = (before.count, before.total_ns) if before else (0, 0)
            if blamed.total_ns > total_ns:
                blame[key] = Blame(
                    *key, count=blamed.count - count, total_ns=blamed.total_ns - total_ns
                )
        outs = {}
        for cgroup_id, switched in self.outs.items():
            counts = switched.by_cause()
            if (before_outs := earlier.outs.get(cgroup_id)) is not None:
                counts = {c: n - before_outs.by_cause()[c] for c, n in counts.items()}
            outs[cgroup_id] = SwitchOuts(cgroup_id, **counts)
        return Reading(hists, blame, outs)

    def report(
        self,
        throttled: Callable[[int, str | None], int | None],
        *,
        window_s: float | None,
        thresholds: Thresholds | None = None,
        names: Mapping[int, str] | None = None,
    ) -> NoisyNeighborReport:
        """The verdicts of these counts (of an interval: see :meth:`since`);
        ``names`` names culprits that did not wait in it."""
        return from_histograms(
            self.hists,
            list(self.blame.values()),
            list(self.outs.values()),
            throttled,
            window_s=window_s,
            thresholds=thresholds,
            names=names,
        )


class IntervalReports:
    """``next()`` gives the report of the interval since the last call (or
    since construction). The probe needs ``attribution=True``."""

    def __init__(self, probe: RunqProbe, thresholds: Thresholds | None = None) -> None:
        self.probe = probe
        self.thresholds = thresholds
        self._start_interval()
        self._reading = self._read()

    def _start_interval(self) -> None:
        tree = self.probe.cgroup_tree
        tree.rescan()
        self._throttle = ThrottleBaseline(tree.known_paths(), tree.mount)
        self._started = time.monotonic()

    def _read(self) -> Reading:
        reading = Reading.of(self.probe)
        self.probe.forget_removed()  # each removed cgroup's last interval is in this reading
        return reading

    def next(self) -> NoisyNeighborReport:
        window = time.monotonic() - self._started
        throttle = self._throttle
        earlier, self._reading = self._reading, self._read()
        self._start_interval()
        return self._reading.since(earlier).report(
            throttle.since_start, window_s=window, thresholds=self.thresholds
        )
