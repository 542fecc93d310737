"""Cgroups removed while the probe runs: their final readings are folded out
of the kernel's maps into Python, and their map entries freed, so a
long-lived probe's maps hold live cgroups only (``max_cgroups`` bounds those)
while nothing they measured is lost. A removed cgroup's id is never reused
(kernfs ids only grow) and it has no tasks left, so its readings are final."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..host.plugin import Plugin
from ..names.cgroupfs import CgroupTree
from .hist_maps import HIST_MAPS, HistReading
from .wire import IDLE, UNTRACKED, Blame, SwitchOuts, blame_rows, switch_out_rows

__all__ = ["RemovedCgroups"]

#: Maps keyed by the cgroup of the task that waited (or switched out); the
#: histogram maps' keys also name a CPU (see hist_maps).
PER_CGROUP_MAPS = ("switch_outs", "last_event_ns")


@dataclass
class RemovedCgroups:
    """Final readings of removed cgroups: raw histogram rows by cgroup id,
    and their attribution rows."""

    hist_rows: dict[int, dict[str, object]] = field(default_factory=dict)
    blame: list[Blame] = field(default_factory=list)
    switch_outs: list[SwitchOuts] = field(default_factory=list)

    def reap(self, plugin: Plugin, paths: dict[int, str | None], hists: HistReading) -> set[int]:
        """Moves the entries of removed cgroups out of the maps; ``hists`` is
        a fresh reading of the histogram maps and ``paths`` its cgroups' paths
        now (None: removed). Returns the ids reaped."""
        gone = {cgroup_id for cgroup_id, path in paths.items() if path is None}
        if not gone:
            return gone
        for cgroup_id in gone:
            # Copies: a view would keep the whole reading alive.
            self.hist_rows[cgroup_id] = {
                name: np.array(value) for name, value in hists.rows[cgroup_id].items()
            }
        blame = [b for b in blame_rows(plugin.map("runq_blame")) if b.cgroup_id in gone]
        outs = [o for o in switch_out_rows(plugin.map("switch_outs")) if o.cgroup_id in gone]
        self.blame.extend(blame)
        self.switch_outs.extend(outs)
        for name in PER_CGROUP_MAPS:
            plugin.delete(name, sorted(gone))
        for name in HIST_MAPS:
            plugin.delete(name, hists.keys_of(name, gone))
        _delete_blame(plugin, blame)
        return gone

    def reap_culprits(self, plugin: Plugin, tree: CgroupTree, rows: list[Blame]) -> list[Blame]:
        """Moves the culprit splits of live cgroups behind removed culprits
        out of ``runq_blame`` (a host that churns short-lived neighbors would
        fill it otherwise); ``rows`` is a fresh reading of it. Returns the
        rows that stay in the kernel."""
        culprits = {b.culprit_cgroup_id for b in rows} - {IDLE, UNTRACKED}
        gone = {c for c, path in tree.paths(culprits).items() if path is None}
        if not gone:
            return rows
        moved = [b for b in rows if b.culprit_cgroup_id in gone]
        self.blame.extend(moved)
        _delete_blame(plugin, moved)
        return [b for b in rows if b.culprit_cgroup_id not in gone]

    def forget(self) -> set[int]:
        """Drops the readings kept so far (once reported, say); returns their ids."""
        ids = set(self.hist_rows)
        self.hist_rows.clear()
        self.blame.clear()
        self.switch_outs.clear()
        return ids


def _delete_blame(plugin: Plugin, rows: list[Blame]) -> None:
    if rows:
        plugin.delete(
            "runq_blame",
            {
                "cgroup_id": [b.cgroup_id for b in rows],
                "culprit_cgroup_id": [b.culprit_cgroup_id for b in rows],
            },
        )
