"""Checks of arguments at the public boundary, shared by the Python API and
the CLI: each names the parameter and the range it takes, so a bad value
fails before anything loads, with a message that says what fits."""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["check_int", "check_seconds"]


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``; TypeError or ValueError naming
    ``name`` otherwise (bools are not ints here)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int in [{low}, {high}], got {value!r}")
    if not low <= int(value) <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return int(value)


def check_seconds(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """``value`` as a finite, positive number of seconds (or zero)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        least = "zero or more" if allow_zero else "positive"
        raise ValueError(f"{name} must be a finite, {least} number of seconds, got {value}")
    return seconds
