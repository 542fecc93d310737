"""Who made whom wait: per-cgroup run-queue latency split by the cgroup that
had the CPU, CPU throttling told apart, and a verdict a person can act on.

Attribution: Netflix booked a wait to the cgroup of the task on the CPU at the
moment the waiting task got it, which misses everyone who ran earlier during
the same wait (a victim's own sleeper, woken last, would take the blame for a
neighbor's hogs). Here the kernel keeps, per CPU, the last 16 slices of CPU
time and whose they were, and splits each wait over the slices that ran while
it was queued, so every part goes to the cgroup that really had the CPU then.
What it cannot see is booked as ``untracked``: time queued on another CPU
before a migration, and waits longer than the last 16 slices. Time the CPU was
idle while a task waited had no one to blame and is booked as ``idle``: on
current kernels a cgroup throttled by its own quota waits exactly like that.
With the wakeup method a wait is split as if queued on the CPU that runs it.

Verdict rules, in order (the thresholds are :class:`Thresholds` fields):

1. ``none`` if the cgroup's total wait is below ``min_total_wait_ns`` or its
   p99 below ``min_p99_ns``: nothing worth a look.
2. ``self-throttled`` if its CPU quota throttled it for at least
   ``throttled_share`` of its total wait.
3. ``noisy-neighbor`` if waits behind *other* cgroups make up at least
   ``neighbor_share`` of its total wait; the culprits are those cgroups with at
   least ``min_culprit_share`` each, largest first.
4. ``self-contention`` if waits behind its own tasks make up at least
   ``self_share``.
5. ``none`` otherwise.

This module holds the model (:class:`Thresholds`, :class:`Verdict`,
:class:`NoisyNeighborReport`) and :func:`from_histograms`, which builds a
report from a probe's readings; reports from saved events are built by
:func:`noisy_neighbor.analysis.report.report`.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..units import format_ns
from .histogram import CgroupHistogram
from .wire import IDLE, SWITCH_OUT_CAUSES, UNTRACKED, Blame, SwitchOuts

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "IDLE",
    "SWITCH_OUT_CAUSES",
    "UNTRACKED",
    "VERDICT_KINDS",
    "CgroupWaits",
    "NoisyNeighborReport",
    "Thresholds",
    "Verdict",
    "from_histograms",
]

VERDICT_KINDS = ("noisy-neighbor", "self-throttled", "self-contention", "none")


@dataclass(frozen=True)
class Thresholds:
    """When a verdict is given; see the module docstring for the rules."""

    min_total_wait_ns: int = 10_000_000
    min_p99_ns: float = 100_000
    throttled_share: float = 0.25
    neighbor_share: float = 0.5
    self_share: float = 0.5
    min_culprit_share: float = 0.05


@dataclass(frozen=True)
class Verdict:
    """What made one cgroup wait."""

    cgroup_id: int
    kind: str
    #: (cgroup_id, share of this cgroup's wait), largest first
    culprits: list[tuple[int, float]]
    p99_ns: float
    total_wait_ns: int
    throttled_ns: int | None
    self_share: float = 0.0
    idle_share: float = 0.0
    name: str = ""
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.name}: {self.kind} ({self.reason})"


@dataclass
class CgroupWaits:
    """Everything known about one cgroup's waits over the window."""

    cgroup_id: int
    name: str
    count: int
    total_ns: int
    p50_ns: float
    p90_ns: float
    p99_ns: float
    max_ns: int
    exact_percentiles: bool
    blame: dict[int, int] = field(default_factory=dict)  # culprit -> wait ns
    switch_outs: dict[str, int] = field(default_factory=dict)
    throttled_ns: int | None = None


def _verdict(w: CgroupWaits, t: Thresholds, name_of: Callable[[int], str]) -> Verdict:
    total = w.total_ns
    share = {c: ns / total for c, ns in w.blame.items()} if total else {}
    self_share = share.get(w.cgroup_id, 0.0)
    idle_share = share.get(IDLE, 0.0)
    others = sorted(
        ((c, s) for c, s in share.items() if c not in (w.cgroup_id, IDLE, UNTRACKED)),
        key=lambda cs: cs[1],
        reverse=True,
    )
    neighbor_share = sum(s for _, s in others)
    culprits = [(c, s) for c, s in others if s >= t.min_culprit_share]
    if total < t.min_total_wait_ns or not w.p99_ns >= t.min_p99_ns:
        kind = "none"
        reason = f"waited {format_ns(total)} in all, p99 {format_ns(w.p99_ns)}"
    elif w.throttled_ns is not None and w.throttled_ns >= t.throttled_share * total:
        kind = "self-throttled"
        reason = (
            f"throttled by its own CPU quota for {format_ns(w.throttled_ns)} "
            f"of {format_ns(total)} waiting"
        )
    elif neighbor_share >= t.neighbor_share:
        kind = "noisy-neighbor"
        named = ", ".join(f"{name_of(c)} {s:.0%}" for c, s in culprits) or "many small ones"
        reason = f"{neighbor_share:.0%} of its wait was behind other cgroups: {named}"
    elif self_share >= t.self_share:
        kind = "self-contention"
        reason = f"{self_share:.0%} of its wait was behind its own tasks"
    else:
        kind = "none"
        reason = (
            f"no dominant cause: others {neighbor_share:.0%}, own {self_share:.0%}, "
            f"idle {idle_share:.0%}"
        )
    return Verdict(
        cgroup_id=w.cgroup_id,
        kind=kind,
        culprits=culprits,
        p99_ns=w.p99_ns,
        total_wait_ns=total,
        throttled_ns=w.throttled_ns,
        self_share=self_share,
        idle_share=idle_share,
        name=w.name,
        reason=reason,
    )


class NoisyNeighborReport:
    """Per-cgroup waits, their culprits, throttling, and a verdict each.

    ``verdicts`` maps cgroup id to :class:`Verdict`; :meth:`verdict` looks one
    up by id or path; :meth:`to_pandas` gives the per-cgroup table.
    """

    def __init__(
        self,
        waits: list[CgroupWaits],
        *,
        window_s: float | None,
        thresholds: Thresholds | None = None,
        path_of: Callable[[int], str | None] | None = None,
        names: Mapping[int, str] | None = None,
    ) -> None:
        self.thresholds = thresholds or Thresholds()
        self.window_s = window_s
        self.cgroups = {w.cgroup_id: w for w in waits}
        self._path_of = path_of
        #: Names kept with saved data, for culprits that are gone now.
        self._names = dict(names or {})
        self.verdicts: dict[int, Verdict] = {
            w.cgroup_id: _verdict(w, self.thresholds, self.name_of) for w in waits
        }

    def name_of(self, cgroup_id: int) -> str:
        if cgroup_id == IDLE:
            return "idle"
        if cgroup_id == UNTRACKED:
            return "untracked"
        if cgroup_id in self.cgroups:
            return self.cgroups[cgroup_id].name
        if cgroup_id in self._names:
            return self._names[cgroup_id]
        from ..names.resolver import resolve_cgroup

        return resolve_cgroup(cgroup_id).display_name or f"cgroup {cgroup_id}"

    def verdict(self, path_or_id: int | str | Any) -> Verdict:
        """The verdict of a cgroup given by id, path, or an object with ``id``."""
        if isinstance(path_or_id, str):
            wanted = "/" + path_or_id.strip("/") if path_or_id.strip("/") else "/"
            for cgroup_id in self.verdicts:
                if self._path_of and self._path_of(cgroup_id) == wanted:
                    return self.verdicts[cgroup_id]
            raise KeyError(f"no cgroup with path {path_or_id!r} waited in this report")
        cgroup_id = int(getattr(path_or_id, "id", path_or_id))
        try:
            return self.verdicts[cgroup_id]
        except KeyError:
            raise KeyError(f"cgroup {cgroup_id} did not wait in this report") from None

    def to_pandas_rows(self) -> list[dict[str, Any]]:
        """The rows of :meth:`to_pandas`, without needing pandas."""
        return self._rows()

    def _rows(self) -> list[dict[str, Any]]:
        rows = []
        for cgroup_id, w in sorted(self.cgroups.items(), key=lambda kv: -kv[1].total_ns):
            v = self.verdicts[cgroup_id]
            top = v.culprits[0] if v.culprits else (None, 0.0)
            rows.append(
                {
                    "cgroup_id": cgroup_id,
                    "name": w.name,
                    "verdict": v.kind,
                    "waits": w.count,
                    "total_wait_ns": w.total_ns,
                    "p50_ns": w.p50_ns,
                    "p90_ns": w.p90_ns,
                    "p99_ns": w.p99_ns,
                    "max_ns": w.max_ns,
                    "throttled_ns": w.throttled_ns,
                    "top_culprit": None if top[0] is None else self.name_of(top[0]),
                    "top_culprit_id": top[0],
                    "top_culprit_share": top[1],
                    "self_share": v.self_share,
                    "idle_share": v.idle_share,
                    **{c: w.switch_outs.get(c, 0) for c in SWITCH_OUT_CAUSES},
                }
            )
        return rows

    def to_pandas(self) -> pd.DataFrame:
        """One row per cgroup that waited, most total wait first."""
        import pandas as pd

        return pd.DataFrame(self._rows())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: window, thresholds, and per cgroup its figures, verdict,
        reason and culprits."""
        rows = self._rows()
        for row in rows:
            v = self.verdicts[row["cgroup_id"]]
            row["reason"] = v.reason
            row["culprits"] = [
                {"cgroup_id": c, "name": self.name_of(c), "share": s} for c, s in v.culprits
            ]
            for k, val in row.items():
                if isinstance(val, float) and math.isnan(val):
                    row[k] = None
        return {"window_s": self.window_s, "thresholds": self.thresholds.__dict__, "cgroups": rows}

    def __str__(self) -> str:
        window = f" over {self.window_s:.1f} s" if self.window_s else ""
        lines = [f"Run-queue latency per cgroup{window}, most waiting first:"]
        header = f"{'cgroup':<44} {'waits':>7} {'total':>9} {'p99':>9} {'throttled':>9}  verdict"
        lines.append(header)
        for row in self._rows():
            v = self.verdicts[row["cgroup_id"]]
            throttled = "-" if v.throttled_ns is None else format_ns(v.throttled_ns)
            lines.append(
                f"{row['name'][:44]:<44} {row['waits']:>7} {format_ns(row['total_wait_ns']):>9} "
                f"{format_ns(row['p99_ns']):>9} {throttled:>9}  {v.kind}"
            )
            if v.kind != "none":
                lines.append(f"{'':<44}   {v.reason}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cells = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(x))}</td>"
                for x in (
                    r["name"],
                    r["verdict"],
                    r["waits"],
                    format_ns(r["total_wait_ns"]),
                    format_ns(r["p99_ns"]),
                    r["top_culprit"] or "",
                    f"{r['top_culprit_share']:.0%}" if r["top_culprit"] else "",
                )
            )
            + "</tr>"
            for r in self._rows()
        )
        head = "".join(
            f"<th>{h}</th>"
            for h in ("cgroup", "verdict", "waits", "total wait", "p99", "top culprit", "share")
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>"

    def __repr__(self) -> str:
        kinds: dict[str, int] = defaultdict(int)
        for v in self.verdicts.values():
            kinds[v.kind] += 1
        return f"<NoisyNeighborReport {len(self.verdicts)} cgroups {dict(kinds)}>"


def from_histograms(
    hists: dict[int, CgroupHistogram],
    blame: list[Blame],
    switch_outs: list[SwitchOuts],
    throttled: Callable[[int, str | None], int | None],
    *,
    window_s: float | None,
    thresholds: Thresholds | None = None,
    names: Mapping[int, str] | None = None,
) -> NoisyNeighborReport:
    """A report from a probe's readings (percentiles from fine buckets: within
    4.4%, see :func:`~noisy_neighbor.fine_buckets.percentile`); ``names``
    names culprits that did not wait themselves."""
    blame_by: dict[int, dict[int, int]] = defaultdict(dict)
    for row in blame:
        blame_by[row.cgroup_id][row.culprit_cgroup_id] = row.total_ns
    outs = {row.cgroup_id: row.by_cause() for row in switch_outs}
    paths = {cid: h.last_known_path for cid, h in hists.items()}
    waits = []
    for cgroup_id, h in hists.items():
        if not h.count:
            continue
        path = paths[cgroup_id]
        waits.append(
            CgroupWaits(
                cgroup_id=cgroup_id,
                name=h.display_name,
                count=h.count,
                total_ns=h.total_ns,
                p50_ns=h.percentile(50),
                p90_ns=h.percentile(90),
                p99_ns=h.percentile(99),
                max_ns=h.max_ns,
                exact_percentiles=False,
                blame=blame_by.get(cgroup_id, {}),
                switch_outs=outs.get(cgroup_id, {}),
                throttled_ns=throttled(cgroup_id, path),
            )
        )
    return NoisyNeighborReport(
        waits, window_s=window_s, thresholds=thresholds, path_of=paths.get, names=names
    )
