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
    ClangNotFoundError,
    KernelTooOldError,
    NoisyNeighborError,
    PluginCompileError,
    PluginGlobalError,
    PluginObjectError,
    PrivilegeError,
    ProbeLoadError,
    ProbeStateError,
    UnsupportedSectionError,
)
from .events import EventBatch
from .histogram import CgroupHistogram
from .magic import load_ipython_extension
from .plugin import Plugin
from .plugin_maps import Log2Histogram, MapView
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
    "ClangNotFoundError",
    "Collection",
    "EventBatch",
    "KernelTooOldError",
    "Log2Histogram",
    "MapView",
    "NoisyNeighborError",
    "NoisyNeighborReport",
    "Plugin",
    "PluginCompileError",
    "PluginGlobalError",
    "PluginObjectError",
    "PrivilegeError",
    "ProbeLoadError",
    "ProbeStateError",
    "RunqProbe",
    "Thresholds",
    "UnsupportedSectionError",
    "Verdict",
    "__version__",
    "collect",
    "find_cgroup2_mount",
    "load",
    "load_ipython_extension",
    "plots",
    "report",
    "resolve_cgroup",
]
