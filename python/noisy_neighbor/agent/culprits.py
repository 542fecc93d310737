"""Each victim's wait split by culprit, as counters a scraper can rate():
at most ``k`` named culprits per victim plus ``idle``, ``untracked`` and
``other``, every series monotonic.

A victim on a busy host waits behind hundreds of cgroups over a day; a series
each would swamp Prometheus. So the counters are kept here, in the agent,
and fed with the kernel's growth between readings: a named culprit's counter
grows with its own wait, and the growth of every culprit without a name goes
to ``other``. Names go to the culprits that made the victim wait most in the
latest reading; a newcomer takes the place of the named culprit that grew
least once it grew at least twice as much (so two culprits of the same size
do not swap places at every scrape). A culprit that loses its place keeps its
series, frozen, for ``forget_after`` seconds, so rates over that window stay
right; then the series ends. No counter ever goes down.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["OTHER", "CulpritCounters"]

#: The culprit key under which the growth of unnamed culprits is counted.
OTHER = -1

#: How much more a newcomer must have grown than the weakest named culprit to
#: take its place.
_PROMOTION_MARGIN = 2.0


@dataclass
class CulpritCounters:
    """One victim's wait (ns) behind each named culprit, and ``other``."""

    k: int
    #: Culprits always named, outside the ``k`` (idle, untracked).
    always: frozenset[int] = frozenset()
    #: Exported counters, ns: named culprits, ``always`` ones and OTHER.
    counters: dict[int, int] = field(default_factory=dict)
    #: Named culprits that lost their place, with when; still exported.
    frozen: dict[int, float] = field(default_factory=dict)
    _named: set[int] = field(default_factory=set)
    _last: dict[int, int] = field(default_factory=dict)

    def update(self, totals: dict[int, int], now: float, forget_after: float) -> None:
        """Feeds the kernel's cumulative wait per culprit (ns) as read now."""
        growth = {}
        for culprit, total in totals.items():
            grown = total - self._last.get(culprit, 0)
            if grown > 0:
                growth[culprit] = grown
        # Culprits no longer read are gone from the kernel's map for good
        # (their cgroup was removed and its rows reported).
        self._last = dict(totals)
        self._name(growth, now)
        for culprit, grown in growth.items():
            key = culprit if culprit in self._named or culprit in self.always else OTHER
            self.counters[key] = self.counters.get(key, 0) + grown
        for culprit, since in list(self.frozen.items()):
            if now - since >= forget_after:
                del self.frozen[culprit]
                self.counters.pop(culprit, None)

    def _name(self, growth: dict[int, int], now: float) -> None:
        newcomers = sorted(
            (c for c in growth if c not in self._named and c not in self.always),
            key=lambda c: growth[c],
            reverse=True,
        )
        for culprit in newcomers:
            if len(self._named) < self.k:
                self._promote(culprit)
                continue
            if not self._named:
                break  # k == 0: every culprit is "other"
            weakest = min(self._named, key=lambda c: growth.get(c, 0))
            if growth[culprit] < _PROMOTION_MARGIN * growth.get(weakest, 0):
                break  # newcomers are sorted: none later does better
            self._named.discard(weakest)
            self.frozen[weakest] = now
            self._promote(culprit)

    def _promote(self, culprit: int) -> None:
        self._named.add(culprit)
        # Named again before its frozen series ended: the series resumes.
        self.frozen.pop(culprit, None)
