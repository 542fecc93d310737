"""Values as the runtime hands them to the output formats: a map read from
the kernel (merged over CPUs, special values resolved), and one printed
value with its type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .types import SizedType

__all__ = ["MapSnapshot", "TypedValue"]


@dataclass(frozen=True)
class TypedValue:
    """One value and its type. Decoded as :mod:`.types` describes: int, str,
    bytes (buffers), tuple (of the fields' values), list[str] (a stack's
    frames, innermost first, already symbolised), str (ksym, usym, username,
    inet, probe, timestamp, cgroup_path, strerror, mac_address: as printed)."""

    type: SizedType
    value: Any


@dataclass(frozen=True)
class MapSnapshot:
    """A map as it is now. ``name`` is bpftrace's (``@``, ``@start``);
    ``key_types`` is empty for a map without keys, one type per key part
    otherwise (``@x[pid, comm]`` has two); ``entries`` holds (key, value)
    pairs, the key a tuple with one value per key part (``()`` without
    keys), the value decoded by ``value_type``'s kind (see
    :class:`~.types.Kind`)."""

    name: str
    key_types: tuple[SizedType, ...]
    value_type: SizedType
    entries: tuple[tuple[tuple[Any, ...], Any], ...]
