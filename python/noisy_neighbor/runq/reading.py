"""A probe's cumulative counts at one moment, and what happened between two
such moments: the unit every windowed view is made of (``top``, the
agent's verdict windows, a socket client's window)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from .histogram import CgroupHistogram
from .verdicts import NoisyNeighborReport, Thresholds, from_histograms
from .wire import Blame, SwitchOuts

__all__ = ["Readable", "Reading"]


class Readable(Protocol):
    """What can be read: a :class:`RunqProbe`, or the node agent's probe
    through a socket client."""

    def histograms(self) -> dict[int, CgroupHistogram]: ...
    def blame(self) -> list[Blame]: ...
    def switch_outs(self) -> list[SwitchOuts]: ...


@dataclass(frozen=True)
class Reading:
    """A probe's cumulative counts at one moment: histograms, culprit splits
    and switch-outs, keyed as the kernel keys them."""

    hists: dict[int, CgroupHistogram]
    blame: dict[tuple[int, int], Blame]
    outs: dict[int, SwitchOuts]

    @classmethod
    def of(cls, probe: Readable) -> Reading:
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
