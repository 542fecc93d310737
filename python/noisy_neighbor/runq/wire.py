"""The run-queue probe's object and wire types. ``src/bpf/runq.h`` is their
one definition: everything here is read from the BTF of the object embedded
in the extension (record fields, histogram slots, counter names, culprit
ids), and the typed rows of its attribution maps are built here, once."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .. import fine_buckets
from .._native import inspect_object, runq_object
from ..host.layout import Layout, RecordDecoder
from ..host.maps import MapView

__all__ = [
    "COUNTER_NAMES",
    "EVENTS_RING",
    "EVENT_DTYPES",
    "EVENT_SIZE",
    "HIST_BUCKETS",
    "HIST_SLOTS",
    "HIST_VALUE_SIZE",
    "IDLE",
    "OBJECT",
    "OBJECT_NAME",
    "RUNQ_EVENT_FIELDS",
    "SWITCH_OUT_CAUSES",
    "UNTRACKED",
    "Blame",
    "SwitchOuts",
    "blame_rows",
    "switch_out_rows",
]

#: The compiled probe (``src/bpf/runq.bpf.c``), and the name it loads under.
OBJECT: bytes = runq_object()
OBJECT_NAME = "runq"
_INFO = inspect_object(OBJECT, name=OBJECT_NAME)
_MAPS = {m.name: m for m in _INFO.maps}
_GLOBALS = {g.name: g for g in _INFO.globals}

#: The ring buffer that streams one ``struct runq_event`` per wait.
EVENTS_RING = "events"


def _layout(layout: Layout | None, what: str) -> Layout:
    if layout is None:  # the object is built with BTF: this is a build defect
        raise ImportError(f"the embedded run-queue probe has no BTF layout for {what}")
    return layout


def _constant(name: str) -> int:
    initial = _GLOBALS[name].initial
    if initial is None:
        raise ImportError(f"the embedded run-queue probe holds no value of {name}")
    return int.from_bytes(initial, "little" if np.little_endian else "big")


_EVENT = _layout(_MAPS[EVENTS_RING].record, "struct runq_event")
#: Fields of a streamed wait, in ``struct runq_event`` order (see runq.h and
#: the README for their meaning).
RUNQ_EVENT_FIELDS: tuple[str, ...] = tuple(f.name for f in _EVENT.fields)
#: Their numpy types, for empty frames and saved collections.
_EVENT_DTYPE = RecordDecoder(_EVENT).dtype
EVENT_DTYPES: dict[str, np.dtype] = {name: _EVENT_DTYPE[name] for name in RUNQ_EVENT_FIELDS}
#: Bytes of one ``struct runq_event``.
EVENT_SIZE: int = _EVENT.size
#: Fine buckets of a cgroup's histogram (``buckets[]`` of ``struct runq_hist``;
#: see :mod:`noisy_neighbor.fine_buckets`).
HIST_BUCKETS: int = next(
    f.shape[0]
    for f in _layout(_MAPS["runq_hists"].value, "runq_hist").fields
    if f.name == "buckets"
)
if HIST_BUCKETS != fine_buckets.BUCKETS:
    raise ImportError(f"runq.h has {HIST_BUCKETS} buckets, fine_buckets {fine_buckets.BUCKETS}")
#: Bytes of one histogram map value (``struct runq_hist``).
HIST_VALUE_SIZE: int = _layout(_MAPS["runq_hists"].value, "runq_hist").size
#: Slots of the log2 table summed from them.
HIST_SLOTS: int = fine_buckets.LOG2_SLOTS
#: Kernel-side counters (``struct runq_counters``), summed over CPUs by ``stats()``.
COUNTER_NAMES: tuple[str, ...] = tuple(
    f.name for f in _layout(_MAPS["counters"].value, "runq_counters").fields
)
#: Why tasks of a cgroup left the CPU (``struct runq_switch_outs``).
SWITCH_OUT_CAUSES: tuple[str, ...] = tuple(
    f.name for f in _layout(_MAPS["switch_outs"].value, "runq_switch_outs").fields
)
#: Culprit id of wait time during which the CPU was idle.
IDLE: int = _constant("idle_culprit")
#: Culprit id of wait time the probe could not split (spent on another CPU
#: before a migration, or older than the CPU's last slices).
UNTRACKED: int = _constant("untracked_culprit")


@dataclass(frozen=True)
class Blame:
    """Waits of one cgroup that spent time behind one culprit cgroup (or
    :data:`IDLE`, :data:`UNTRACKED`)."""

    cgroup_id: int
    culprit_cgroup_id: int
    count: int
    total_ns: int


@dataclass(frozen=True)
class SwitchOuts:
    """Why tasks of one cgroup left the CPU."""

    cgroup_id: int
    voluntary: int
    preempted_same: int
    preempted_other: int
    preempted_system: int

    def by_cause(self) -> dict[str, int]:
        return {cause: getattr(self, cause) for cause in SWITCH_OUT_CAUSES}


if tuple(f.name for f in fields(SwitchOuts))[1:] != SWITCH_OUT_CAUSES:
    raise ImportError(f"SwitchOuts does not match runq.h's causes {SWITCH_OUT_CAUSES}")


def blame_rows(view: MapView) -> list[Blame]:
    """The ``runq_blame`` map as rows."""
    keys, values = view.keys, view.values
    return [
        Blame(
            cgroup_id=int(keys["cgroup_id"][i]),
            culprit_cgroup_id=int(keys["culprit_cgroup_id"][i]),
            count=int(values["count"][i]),
            total_ns=int(values["total_ns"][i]),
        )
        for i in range(len(view))
    ]


def switch_out_rows(view: MapView) -> list[SwitchOuts]:
    """The ``switch_outs`` map as rows."""
    keys, values = view.keys, view.values
    return [
        SwitchOuts(int(keys["key"][i]), **{c: int(values[c][i]) for c in SWITCH_OUT_CAUSES})
        for i in range(len(view))
    ]
