"""The generic probe host: run any CO-RE BPF object as a :class:`Plugin`, with
its globals set from Python and its programs attached by section name, and
read its outputs through its BTF types: ring-buffer records as
:class:`EventBatch` columns, maps as :class:`MapView` dicts and DataFrames,
``slots[]`` maps as :class:`Log2Histogram`\\ s; plugin C source is compiled
with clang against the package's SDK. Knows nothing of run queues; imports
only the base modules (and, to name cgroup ids on request, ``names``).
"""

from __future__ import annotations

from .batches import EventBatch
from .compile import cache_dir, compile_file, compile_source
from .layout import Layout, decode, dtype_of, pack_global
from .maps import Log2Histogram, MapView, is_histogram_layout
from .perf_events import PerfEvent
from .plugin import Plugin

__all__ = [
    "EventBatch",
    "Layout",
    "Log2Histogram",
    "MapView",
    "PerfEvent",
    "Plugin",
    "cache_dir",
    "compile_file",
    "compile_source",
    "decode",
    "dtype_of",
    "is_histogram_layout",
    "pack_global",
]
