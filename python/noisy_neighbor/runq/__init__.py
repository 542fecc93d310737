"""The run-queue probe: :class:`RunqProbe` loads the kernel's per-cgroup
run-queue latency probe and hands back :class:`CgroupHistogram`\\ s, streamed
events (fields in :data:`RUNQ_EVENT_FIELDS`), CPU throttling read from cgroup
files, and, with attribution, a :class:`NoisyNeighborReport` of who made whom
wait with a :class:`Verdict` per cgroup (the rules are in
:mod:`noisy_neighbor.runq.verdicts`). Imports ``host``, ``names`` and the base
modules, never ``analysis`` or ``views``.
"""

from __future__ import annotations

from .histogram import CgroupHistogram
from .probe import METHODS, RunqProbe
from .throttling import ThrottleBaseline, throttled_ns
from .verdicts import (
    VERDICT_KINDS,
    CgroupWaits,
    NoisyNeighborReport,
    Thresholds,
    Verdict,
    from_histograms,
)
from .wire import IDLE, RUNQ_EVENT_FIELDS, SWITCH_OUT_CAUSES, UNTRACKED, Blame, SwitchOuts

__all__ = [
    "IDLE",
    "METHODS",
    "RUNQ_EVENT_FIELDS",
    "SWITCH_OUT_CAUSES",
    "UNTRACKED",
    "VERDICT_KINDS",
    "Blame",
    "CgroupHistogram",
    "CgroupWaits",
    "NoisyNeighborReport",
    "RunqProbe",
    "SwitchOuts",
    "Thresholds",
    "ThrottleBaseline",
    "Verdict",
    "from_histograms",
    "throttled_ns",
]
