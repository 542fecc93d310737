"""noisy-neighbor: per-cgroup CPU run-queue latency from eBPF.

Find the container next door that makes yours wait::

    import noisy_neighbor as nn
    with nn.RunqProbe() as probe:
        time.sleep(5)
        for hist in probe.histograms().values():
            print(hist)
"""

from __future__ import annotations

from . import plots
from ._native import __version__
from .cgroupfs import CgroupTree, find_cgroup2_mount
from .collection import Collection, collect, load
from .errors import (
    AttachError,
    BtfUnavailableError,
    CgroupNotFoundError,
    KernelTooOldError,
    NoisyNeighborError,
    PrivilegeError,
    ProbeLoadError,
    ProbeStateError,
)
from .events import EventBatch
from .histogram import CgroupHistogram
from .probe import RunqProbe
from .report import NoisyNeighborReport, Thresholds, Verdict, report
from .resolver import CgroupInfo, CgroupResolver, resolve_cgroup

__all__ = [
    "AttachError",
    "BtfUnavailableError",
    "CgroupHistogram",
    "CgroupInfo",
    "CgroupNotFoundError",
    "CgroupResolver",
    "CgroupTree",
    "Collection",
    "EventBatch",
    "KernelTooOldError",
    "NoisyNeighborError",
    "NoisyNeighborReport",
    "PrivilegeError",
    "ProbeLoadError",
    "ProbeStateError",
    "RunqProbe",
    "Thresholds",
    "Verdict",
    "__version__",
    "collect",
    "find_cgroup2_mount",
    "load",
    "plots",
    "report",
    "resolve_cgroup",
]
