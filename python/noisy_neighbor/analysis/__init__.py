"""Analysis of run-queue measurements over time: timed collections of every
wait saved to and loaded from Parquet (:class:`Collection`, :func:`collect`,
:func:`load`), reports from saved events (:func:`report`), and reports over
successive intervals of a running probe (:class:`IntervalReports`). Builds on
``runq``; never imports ``views``.
"""

from __future__ import annotations

from .collection import Collection, collect, load
from .intervals import IntervalReports
from .report import report, split_blame_from_events

__all__ = [
    "Collection",
    "IntervalReports",
    "collect",
    "load",
    "report",
    "split_blame_from_events",
]
