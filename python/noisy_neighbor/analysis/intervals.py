"""Reports over successive intervals of a running probe, for ``noisy-neighbor
top``, live views and the agent's verdict windows: each one covers only the
waits between two readings."""

from __future__ import annotations

import time

from ..remote.client import AgentClient
from ..runq.probe import RunqProbe
from ..runq.reading import Reading
from ..runq.throttling import ThrottleBaseline
from ..runq.verdicts import NoisyNeighborReport, Thresholds

__all__ = ["IntervalReports", "Reading"]


class IntervalReports:
    """``next()`` gives the report of the interval since the last call (or
    since construction). The probe needs ``attribution=True``."""

    def __init__(
        self, probe: RunqProbe | AgentClient, thresholds: Thresholds | None = None
    ) -> None:
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
