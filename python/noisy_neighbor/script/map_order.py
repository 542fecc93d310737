"""The order in which bpftrace 0.17 prints a map's entries, for the text and
the JSON output alike.

bpftrace reads a map with bpf_map_get_next_key and sorts what it read; the
runtime must hand :class:`~.values.MapSnapshot` entries in that same kernel
order, since ties of an unstable sort depend on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

from .types import Kind, SizedType
from .values import MapSnapshot

__all__ = ["average_of", "c_div", "ordered_entries", "top_entries"]

#: Value kinds bpftrace sorts by value; every other map is sorted by key.
_BY_VALUE = (Kind.COUNT, Kind.SUM, Kind.INT, Kind.MIN, Kind.MAX)


def c_div(value: int, div: int) -> int:
    """C's integer division, which truncates toward zero."""
    quotient = abs(value) // abs(div)
    return quotient if (value >= 0) == (div > 0) else -quotient


def _key_bytes(key_types: Sequence[SizedType], key: Sequence[Any]) -> bytes:
    """The key as the kernel stores it, for the std::map (memcmp) order 0.17
    gives hist, lhist, avg and stats maps before sorting them. Stacks,
    symbols and the like are stored as ids we never see: they compare equal
    and keep the order the runtime gave."""
    raw = b""
    for ty, part in zip(key_types, key):
        if ty.kind in (Kind.INT, Kind.POINTER, Kind.CTX):
            size = ty.size if ty.kind is Kind.INT and ty.size else 8
            raw += (part & ((1 << (size * 8)) - 1)).to_bytes(size, "little")
        elif ty.kind is Kind.STRING:
            raw += part.encode("utf-8", "surrogateescape").ljust(ty.size, b"\0")[: ty.size]
        elif ty.kind is Kind.BUFFER:
            raw += bytes([len(part)]) + bytes(part).ljust(ty.size, b"\0")
    return raw


def _sortable_key(key_types: Sequence[SizedType], key: Sequence[Any]) -> tuple[Any, ...]:
    """sort_by_key's order: integers as unsigned of their width, strings by
    bytes; other parts are not sorted, so -5 comes after 3 and pointers stay
    in the kernel's order."""
    parts: list[Any] = []
    for ty, part in zip(key_types, key):
        if ty.kind is Kind.INT:
            parts.append(part & ((1 << ((ty.size or 8) * 8)) - 1))
        elif ty.kind is Kind.STRING:
            parts.append(part.encode("utf-8", "surrogateescape"))
    return tuple(parts)


def average_of(value: tuple[int, int]) -> int:
    count, total = value
    return c_div(total, count) if count else 0


def ordered_entries(snapshot: MapSnapshot) -> list[tuple[tuple[Any, ...], Any]]:
    """A map's entries in the order bpftrace prints them, smallest first.

    Maps of counts, sums, ints, mins and maxes are ordered by value with
    std::sort, which is unstable: ties come out in the kernel's iteration
    order, itself seeded at random per map, so bpftrace's own tie order is
    random. Hist and lhist maps are ordered by their total count, avg and
    stats maps by their average, starting from memcmp order of the raw
    keys (a std::map): that is deterministic, and we follow libstdc++'s
    std::sort exactly to match it beyond 16 keys. Other maps are sorted by
    key with stable sorts."""
    entries = list(snapshot.entries)
    kind = snapshot.value_type.kind
    if kind in _BY_VALUE:
        return _libstdcxx_sort(entries, lambda entry: entry[1])
    if kind in (Kind.HIST, Kind.LHIST, Kind.AVG, Kind.STATS):
        entries.sort(key=lambda entry: _key_bytes(snapshot.key_types, entry[0]))
        rank = (
            (lambda e: sum(e[1]))
            if kind in (Kind.HIST, Kind.LHIST)
            else (lambda e: average_of(e[1]))
        )
        return _libstdcxx_sort(entries, rank)
    entries.sort(key=lambda entry: _sortable_key(snapshot.key_types, entry[0]))
    return entries


def _libstdcxx_sort(items: list[Any], rank: Callable[[Any], Any]) -> list[Any]:
    """libstdc++'s std::sort (introsort, median of three, insertion sort
    below 16 elements), comparing ``rank(a) < rank(b)``."""
    ranked = [(rank(item), item) for item in items]

    def less(i: int, j: int) -> bool:
        return bool(ranked[i][0] < ranked[j][0])

    def swap(i: int, j: int) -> None:
        ranked[i], ranked[j] = ranked[j], ranked[i]

    def linear_insert(last: int) -> None:
        moving = ranked[last]
        while last > 0 and moving[0] < ranked[last - 1][0]:
            ranked[last] = ranked[last - 1]
            last -= 1
        ranked[last] = moving

    def insertion_sort(first: int, last: int) -> None:
        for i in range(first + 1, last):
            if less(i, first):
                ranked[first + 1 : i + 1], ranked[first] = ranked[first:i], ranked[i]
            else:
                linear_insert(i)

    def sift(first: int, hole: int, length: int, value: Any) -> None:
        top, child = hole, hole
        while child < (length - 1) // 2:
            child = 2 * (child + 1)
            if ranked[first + child][0] < ranked[first + child - 1][0]:
                child -= 1
            ranked[first + hole] = ranked[first + child]
            hole = child
        if length % 2 == 0 and child == (length - 2) // 2:
            child = 2 * (child + 1)
            ranked[first + hole] = ranked[first + child - 1]
            hole = child - 1
        parent = (hole - 1) // 2
        while hole > top and ranked[first + parent][0] < value[0]:
            ranked[first + hole] = ranked[first + parent]
            hole, parent = parent, (parent - 1) // 2
        ranked[first + hole] = value

    def heap_sort(first: int, last: int) -> None:
        length = last - first
        for parent in range((length - 2) // 2, -1, -1):
            sift(first, parent, length, ranked[first + parent])
        while last - first > 1:
            last -= 1
            value, ranked[last] = ranked[last], ranked[first]
            sift(first, 0, last - first, value)

    def introsort(first: int, last: int, depth: int) -> None:
        while last - first > 16:
            if depth == 0:
                heap_sort(first, last)
                return
            depth -= 1
            a, b, c = first + 1, first + (last - first) // 2, last - 1
            if less(a, b):
                median = b if less(b, c) else c if less(a, c) else a
            else:
                median = a if less(a, c) else c if less(b, c) else b
            swap(first, median)
            lo, hi = first + 1, last
            while True:
                while less(lo, first):
                    lo += 1
                hi -= 1
                while less(first, hi):
                    hi -= 1
                if lo >= hi:
                    break
                swap(lo, hi)
                lo += 1
            introsort(lo, last, depth)
            last = lo

    n = len(ranked)
    if n > 1:
        introsort(0, n, 2 * (n.bit_length() - 1))
        insertion_sort(0, min(n, 16))
        for i in range(16, n):
            linear_insert(i)
    return [item for _, item in ranked]


def top_entries(entries: list[Any], top: int) -> list[Any]:
    """print()'s ``top``: the last ``top`` entries (the largest)."""
    return entries[len(entries) - top :] if top and len(entries) > top else entries
