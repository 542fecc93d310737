"""The agent's account of a running probe: every cgroup's cumulative counts,
kept after the cgroup is removed for ``forget_after`` seconds, its culprit
counters, the verdicts of the last window, and the probe's losses.

The probe reaps a removed cgroup's entries from the kernel's maps when it is
read and hands their last counts over once; the ledger keeps them ("final"),
so its counters never go back and the cgroup's series leave ``/metrics`` only
``forget_after`` seconds later. A long-running agent thus holds live cgroups
plus those removed in the last ``forget_after`` seconds, whatever the churn.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..runq.histogram import CgroupHistogram
from ..runq.probe import RunqProbe
from ..runq.reading import Reading
from ..runq.throttling import ThrottleBaseline
from ..runq.verdicts import NoisyNeighborReport, Thresholds
from ..runq.wire import IDLE, UNTRACKED, Blame, SwitchOuts
from .culprits import CulpritCounters

__all__ = ["Ledger", "Window"]


@dataclass
class Window:
    """A closed verdict window: its report and when it closed."""

    report: NoisyNeighborReport
    closed_at: float


@dataclass
class _Final:
    """Counts that left the probe's reading for good, and since when."""

    hists: dict[int, tuple[float, CgroupHistogram]] = field(default_factory=dict)
    blame: dict[tuple[int, int], tuple[float, Blame]] = field(default_factory=dict)
    outs: dict[int, tuple[float, SwitchOuts]] = field(default_factory=dict)

    def keep(self, earlier: Reading, now_read: Reading, now: float) -> None:
        """Keeps what ``earlier`` had and ``now_read`` has not."""
        for cid, hist in earlier.hists.items():
            if cid not in now_read.hists and cid not in self.hists:
                self.hists[cid] = (now, hist)
        for key, row in earlier.blame.items():
            if key not in now_read.blame and key not in self.blame:
                self.blame[key] = (now, row)
        for cid, outs in earlier.outs.items():
            if cid not in now_read.outs and cid not in self.outs:
                self.outs[cid] = (now, outs)

    def expire(self, now: float, after: float, live_paths: set[str]) -> set[int]:
        """Drops what is older than ``after`` seconds, except the counts of a
        cgroup whose path lives again (a restarted service: its series sums
        both, and must not go back); returns the cgroups whose histograms went."""
        gone = {
            cid
            for cid, (since, hist) in self.hists.items()
            if now - since >= after and hist.last_known_path not in live_paths
        }
        for cid in gone:
            del self.hists[cid]
        for key in [k for k, (since, _) in self.blame.items() if now - since >= after]:
            if key[0] not in self.hists:
                del self.blame[key]
        for cid in [c for c, (since, _) in self.outs.items() if now - since >= after]:
            if cid not in self.hists:
                del self.outs[cid]
        return gone


class Ledger:
    """Reads ``probe`` (started, with ``attribution=True``) on :meth:`update`."""

    def __init__(
        self,
        probe: RunqProbe,
        *,
        culprits: int = 5,
        forget_after: float = 300.0,
        window: float = 60.0,
        thresholds: Thresholds | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.probe = probe
        self.k = culprits
        self.forget_after = forget_after
        self.window = window
        self.thresholds = thresholds
        self.clock = clock
        self.stats: dict[str, int] = {}
        self.culprits: dict[int, CulpritCounters] = {}
        #: Cgroups removed, by id, with when the ledger learnt it.
        self.removed_at: dict[int, float] = {}
        self.last_window: Window | None = None
        #: When the probe was last read (``clock()`` time).
        self.updated_at = float("-inf")
        self._live_paths: set[str] = set()
        self._final = _Final()
        self._read = Reading({}, {}, {})
        self.reading = Reading({}, {}, {})
        self._open_window(self.reading)

    def _open_window(self, reading: Reading) -> None:
        tree = self.probe.cgroup_tree
        #: When the verdict window being counted opened (``clock()`` time).
        self.window_started = self.clock()
        self._window_reading = reading
        self._window_throttle = ThrottleBaseline(tree.known_paths(), tree.mount)

    def update(self) -> Reading:
        """Reads the probe, and returns every cgroup's cumulative counts:
        live ones and those removed in the last ``forget_after`` seconds."""
        now = self.updated_at = self.clock()
        read = Reading.of(self.probe)
        for cid, hist in read.hists.items():
            if hist.cgroup_path is None:
                self.removed_at.setdefault(cid, now)
        # The probe hands removed cgroups' last counts over once: from here
        # on the ledger keeps them.
        self.probe.forget_removed()
        self._final.keep(self._read, read, now)
        self._read = read
        live_paths = {h.cgroup_path for h in read.hists.values() if h.cgroup_path is not None}
        self._live_paths = live_paths
        for cid in self._final.expire(now, max(self.forget_after, self.window), live_paths):
            self.removed_at.pop(cid, None)
            self.culprits.pop(cid, None)
        self.reading = Reading(
            hists={**{c: h for c, (_, h) in self._final.hists.items()}, **read.hists},
            blame={**{k: b for k, (_, b) in self._final.blame.items()}, **read.blame},
            outs={**{c: o for c, (_, o) in self._final.outs.items()}, **read.outs},
        )
        self._count_culprits(now)
        self.stats = self.probe.stats()
        if now - self.window_started >= self.window:
            self._close_window(now)
        return self.reading

    def _count_culprits(self, now: float) -> None:
        totals: dict[int, dict[int, int]] = {}
        for (victim, culprit), row in self.reading.blame.items():
            totals.setdefault(victim, {})[culprit] = row.total_ns
        for victim, by_culprit in totals.items():
            if self.removed_at.get(victim, now) < now:
                continue  # final since an earlier reading: its counters stay as they are
            counters = self.culprits.get(victim)
            if counters is None:
                counters = CulpritCounters(self.k, always=frozenset({IDLE, UNTRACKED}))
                self.culprits[victim] = counters
            counters.update(by_culprit, now, self.forget_after)

    def _close_window(self, now: float) -> None:
        report = self.reading.since(self._window_reading).report(
            self._window_throttle.since_start,
            window_s=now - self.window_started,
            thresholds=self.thresholds,
            names=self.names(),
        )
        self.last_window = Window(report, now)
        self._open_window(self.reading)

    def names(self) -> dict[int, str]:
        """A name for every cgroup in the reading, so reports name culprits
        from what the ledger holds (a lookup elsewhere would cache names of
        cgroups long gone)."""
        return {cid: h.display_name for cid, h in self.reading.hists.items()}

    def visible(self, cgroup_id: int, now: float | None = None) -> bool:
        """Whether a cgroup's counts are still shown: live, removed less than
        ``forget_after`` seconds ago, or kept because its path lives again."""
        removed = self.removed_at.get(cgroup_id)
        if removed is None or (now or self.clock()) - removed < self.forget_after:
            return True
        hist = self.reading.hists.get(cgroup_id)
        return hist is not None and hist.last_known_path in self._live_paths
