"""Presentation of nanosecond durations: the units histograms are shown in,
and a short human-readable form (``1.5 ms``) for tables and reports."""

from __future__ import annotations

__all__ = ["UNITS", "format_ns"]

#: Presentation units: name -> (nanoseconds per unit, column label).
UNITS: dict[str, tuple[int, str]] = {
    "ns": (1, "nsecs"),
    "us": (1_000, "usecs"),
    "ms": (1_000_000, "msecs"),
}


def format_ns(ns: float) -> str:
    """``ns`` with three significant digits in the largest unit that fits
    (``s``, ``ms``, ``us``, ``ns``); ``-`` for NaN."""
    if ns != ns:  # NaN
        return "-"
    for scale, suffix in ((1e9, "s"), (1e6, "ms"), (1e3, "us")):
        if ns >= scale:
            return f"{ns / scale:.3g} {suffix}"
    return f"{ns:.0f} ns"
