"""The run-queue probe's two histogram maps read as one histogram per cgroup.

Each CPU counts a cgroup's waits in its own entry of ``runq_cpu_hists``
(written by that CPU alone, so no cache line is shared between CPUs on the
per-switch path), and each cgroup has one shared entry in ``runq_hists`` with
its name and the waits of CPUs that found ``runq_cpu_hists`` full (see
``struct runq_hist_key`` in ``src/bpf/runq.h``). A reading sums them: entries
only ever grow and never move between the maps, so readings never go back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import fine_buckets
from ..host.maps import MapView

__all__ = ["CPU_MAP", "HIST_MAPS", "SHARED_MAP", "HistReading"]

#: One shared entry per cgroup (its name, and waits of CPUs that found the
#: per-CPU map full).
SHARED_MAP = "runq_hists"
#: One entry per cgroup per CPU it waited on.
CPU_MAP = "runq_cpu_hists"
HIST_MAPS = (SHARED_MAP, CPU_MAP)
#: Fields summed over a cgroup's entries; ``max_ns`` is their maximum and
#: ``comm`` the one of the newest entry (``last_ns``).
_SUMMED = ("buckets", "count", "total_ns", "wall_ns")


@dataclass
class HistReading:
    """One reading of both maps: ``rows`` is each cgroup's merged
    ``struct runq_hist`` (as numpy values by field, plus ``slots``, its log2
    table), ``views`` the raw maps."""

    rows: dict[int, dict[str, Any]]
    views: dict[str, MapView]

    @classmethod
    def read(cls, views: dict[str, MapView]) -> HistReading:
        return cls(_merge(views), views)

    def keys_of(self, map_name: str, cgroup_ids: set[int]) -> dict[str, list[int]]:
        """The keys of ``map_name`` that belong to these cgroups, one list per
        key field (what :meth:`Plugin.delete` takes)."""
        view = self.views[map_name]
        if not len(view):
            return {"cgroup_id": [], "cpu": [], "pad": []}
        ids = view.keys["cgroup_id"]
        mine = np.isin(ids, np.fromiter(cgroup_ids, dtype=np.uint64, count=len(cgroup_ids)))
        return {name: [int(v) for v in column[mine]] for name, column in view.keys.items()}


def _merge(views: dict[str, MapView]) -> dict[int, dict[str, Any]]:
    present = [views[name] for name in HIST_MAPS if len(views[name])]
    if not present:
        return {}
    ids = np.concatenate([v.keys["cgroup_id"] for v in present])
    values = {name: np.concatenate([v.values[name] for v in present]) for name in present[0].values}
    # Grouped by cgroup, newest entry last within each group.
    order = np.lexsort((values["last_ns"], ids))
    ids = ids[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)] - 1
    merged: dict[str, Any] = {
        name: np.add.reduceat(values[name][order], starts, axis=0) for name in _SUMMED
    }
    # The log2 table of every cgroup at once: one numpy call, not one each.
    merged["slots"] = fine_buckets.log2_slots(merged["buckets"])
    merged["max_ns"] = np.maximum.reduceat(values["max_ns"][order], starts)
    merged["last_ns"] = values["last_ns"][order][ends]
    merged["comm"] = values["comm"][order][ends]
    # Only the shared entry has the name; the others' is empty.
    names = values["cgroup_name"][order]
    named = np.flatnonzero(names != "")
    merged["cgroup_name"] = np.full(len(starts), "", dtype=object)
    merged["cgroup_name"][np.searchsorted(starts, named, side="right") - 1] = names[named]
    return {
        int(cgroup_id): {name: column[i] for name, column in merged.items()}
        for i, cgroup_id in enumerate(ids[starts])
    }
