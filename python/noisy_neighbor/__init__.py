"""noisy-neighbor: per-cgroup CPU run-queue latency from eBPF.

Find the container next door that makes yours wait::

    import noisy_neighbor as nn
    with nn.RunqProbe() as probe:
        time.sleep(5)
        for hist in probe.histograms().values():
            print(hist)

The package is layered, imports running one way: ``views`` (CLI, live view,
plots, ``%%bpf``) and ``agent`` (``serve``, for Prometheus) -> ``analysis``
(collections, reports from events, interval reports, recordings) -> ``runq``
(the run-queue probe and its verdicts) -> ``host`` (any BPF object as a
plugin) and ``names`` (who a cgroup is) -> the base modules (``errors``,
``units``, ``log2``, ``sdk``) -> ``_native``. ``script`` (bpftrace's
language: ``nn.bpftrace(...)``) sits beside ``runq``: a face of ``host``.
``testing`` holds cgroups and workloads for experiments, and the pytest
plugin.
"""

from __future__ import annotations

from ._native import __version__
from .analysis import Collection, collect, load, report
from .analysis.history import history
from .errors import (
    AgentUnavailableError,
    AttachError,
    BtfUnavailableError,
    CgroupNotFoundError,
    ClangNotFoundError,
    CollectionFileError,
    KernelTooOldError,
    MapAccessError,
    NoisyNeighborError,
    PluginCompileError,
    PluginGlobalError,
    PluginObjectError,
    PrivilegeError,
    ProbeLoadError,
    ProbeStateError,
    RingBufferError,
    ScriptError,
    UnsupportedSectionError,
)
from .host import EventBatch, Log2Histogram, MapView, PerfEvent, Plugin
from .names import CgroupInfo, CgroupResolver, CgroupTree, find_cgroup2_mount, resolve_cgroup
from .remote import AgentClient, connect
from .runq import CgroupHistogram, NoisyNeighborReport, RunqProbe, Thresholds, Verdict
from .script import Script, bpftrace
from .views import live_view as live
from .views import load_ipython_extension, plots

__all__ = [
    "AgentClient",
    "AgentUnavailableError",
    "AttachError",
    "BtfUnavailableError",
    "CgroupHistogram",
    "CgroupInfo",
    "CgroupNotFoundError",
    "CgroupResolver",
    "CgroupTree",
    "ClangNotFoundError",
    "Collection",
    "CollectionFileError",
    "EventBatch",
    "KernelTooOldError",
    "Log2Histogram",
    "MapAccessError",
    "MapView",
    "NoisyNeighborError",
    "NoisyNeighborReport",
    "PerfEvent",
    "Plugin",
    "PluginCompileError",
    "PluginGlobalError",
    "PluginObjectError",
    "PrivilegeError",
    "ProbeLoadError",
    "ProbeStateError",
    "RingBufferError",
    "RunqProbe",
    "Script",
    "ScriptError",
    "Thresholds",
    "UnsupportedSectionError",
    "Verdict",
    "__version__",
    "bpftrace",
    "collect",
    "connect",
    "find_cgroup2_mount",
    "history",
    "live",
    "load",
    "load_ipython_extension",
    "plots",
    "report",
    "resolve_cgroup",
]
