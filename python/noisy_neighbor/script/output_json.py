"""bpftrace 0.17's ``-f json`` output: one JSON object per line (NDJSON).

0.17's JSON is not always valid JSON, and we copy it: timestamps, strerror,
cgroup_path and mac_address values are not quoted (``{"@i": 2026}``,
``{"@l": No such file or directory}``), bytes >= 0x80 escape as
``\\uffffffc3`` (a signed char printed in hex), and the two newlines that end
a run are written bare between the JSON lines. The order of entries is
:mod:`.map_order`'s and the numbers those of :mod:`.output_text`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .map_order import average_of, c_div, ordered_entries, top_entries
from .output_text import (
    as_int32,
    hist_span,
    joined_args,
    key_part_to_str,
    lhist_span,
    time_text,
    value_to_str,
)
from .types import Kind, SizedType
from .values import MapSnapshot, TypedValue

__all__ = [
    "attached_probes_json",
    "join_json",
    "json_escape",
    "lost_events_json",
    "map_json",
    "maps_at_exit_json",
    "message_json",
    "time_json",
    "value_json",
    "value_line_json",
]

#: The kinds JsonOutput puts in quotes (is_quoted_type in 0.17).
_QUOTED = (
    Kind.KSTACK, Kind.USTACK, Kind.KSYM, Kind.USYM, Kind.INET, Kind.USERNAME,
    Kind.STRING, Kind.BUFFER, Kind.PROBE,
)  # fmt: skip


def _escape_byte(byte: int) -> str:
    special = {0x22: '\\"', 0x5C: "\\\\", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}
    if byte in special:
        return special[byte]
    if byte < 0x20:
        return f"\\u{byte:04x}"
    if byte >= 0x80:
        # 0.17 tests a signed char for <= 0x1f, so every byte from 0x80 up
        # goes out as (int)c in hex: 0xc3 becomes \uffffffc3
        return f"\\u{byte | 0xFFFFFF00:x}"
    return chr(byte)


_ESCAPES = [_escape_byte(b) for b in range(256)]


def json_escape(text: str) -> str:
    """JsonOutput::json_escape, byte by byte over the UTF-8 text."""
    raw = text.encode("utf-8", "surrogateescape")
    return "".join(_ESCAPES[b] for b in raw)


def value_json(ty: SizedType, value: Any, div: int = 1) -> str:
    """One value as JsonOutput::value_to_str writes it."""
    kind = ty.kind
    if kind is Kind.TUPLE:
        return "[" + ",".join(value_json(f, v, div) for f, v in zip(ty.fields, value)) + "]"
    if kind is Kind.ARRAY:
        assert ty.elem is not None
        return "[" + ",".join(value_json(ty.elem, v, div) for v in value) + "]"
    if kind is Kind.RECORD:
        fields = (f'"{n}": {value_json(f, v, div)}' for (n, v), f in zip(value.items(), ty.fields))
        return "{ " + ", ".join(fields) + " }"
    text = value_to_str(ty, value, div)
    return f'"{json_escape(text)}"' if kind in _QUOTED else text


# -- messages ----------------------------------------------------------------------------------


def message_json(kind: str, text: str) -> str:
    """printf, time, join, cat and syscall (system) output: the text escaped."""
    return f'{{"type": "{kind}", "data": "{json_escape(text)}"}}\n'


def attached_probes_json(count: int) -> str:
    return f'{{"type": "attached_probes", "data": {{"probes": {count}}}}}\n'


def lost_events_json(count: int) -> str:
    return f'{{"type": "lost_events", "data": {{"events": {count}}}}}\n'


def time_json(fmt: str, epoch_seconds: int) -> str | None:
    """None when strftime fails (bpftrace then writes nothing to stdout)."""
    text = time_text(fmt, epoch_seconds)
    return None if text is None else message_json("time", text)


def join_json(args: Iterable[str], delim: str = " ") -> str:
    return message_json("join", joined_args(args, delim))


def value_line_json(value: TypedValue) -> str:
    """``print(value)`` for a non-map value."""
    return f'{{"type": "value", "data": {value_json(value.type, value.value)}}}\n'


# -- maps ---------------------------------------------------------------------------------------


def _hist_json(counts: Sequence[int], div: int) -> str:
    first, last, _ = hist_span(counts)
    if last == -1:
        return "[]"
    buckets = []
    for i in range(first, last + 1):
        if i == 0:
            bounds = '"max": -1, '
        elif i < 3:
            bounds = f'"min": {i - 1}, "max": {i - 1}, '
        else:
            # 0.17 computes the bounds in a 32-bit int: [2G, 4G) comes out
            # as min -2147483648, max 0
            low = as_int32(1 << ((i - 2) & 31))
            high = as_int32((1 << ((i - 1) & 31)) - 1)
            bounds = f'"min": {low}, "max": {high}, '
        buckets.append(f'{{{bounds}"count": {counts[i] // div}}}')
    return "[" + ", ".join(buckets) + "]"


def _lhist_json(counts: Sequence[int], low: int, high: int, step: int) -> str:
    first, last, _ = lhist_span(counts, low, high, step)
    if last == -1:
        return "[]"
    top_bucket = (high - low) // step + 1
    buckets = []
    for i in range(first, last + 1):
        if i == 0:
            bounds = f'"max": {low - 1}, '
        elif i == top_bucket:
            bounds = f'"min": {high}, '
        else:
            bounds = f'"min": {(i - 1) * step + low}, "max": {i * step + low - 1}, '
        buckets.append(f'{{{bounds}"count": {counts[i]}}}')
    return "[" + ", ".join(buckets) + "]"


def _entry_json(snapshot: MapSnapshot, value: Any, div: int) -> str:
    ty = snapshot.value_type
    if ty.kind is Kind.HIST:
        return _hist_json(value, div)
    if ty.kind is Kind.LHIST:
        return _lhist_json(value, *ty.params[:3])
    if ty.kind is Kind.STATS:
        count, total = value
        return f'{{"count": {count}, "average": {average_of(value)}, "total": {total}}}'
    if ty.kind is Kind.AVG:
        return str(c_div(average_of(value), div))
    return value_json(ty, value, div)


def map_json(snapshot: MapSnapshot, top: int = 0, div: int = 0) -> str:
    """``print(@x, top, div)`` in JSON; "" for a map with no entries.
    Several key parts join with a comma: ``{"1,x": 5}``."""
    if not snapshot.entries:
        return ""
    div = div or 1
    kind = snapshot.value_type.kind
    entries = top_entries(ordered_entries(snapshot), 0 if kind is Kind.STATS else top)
    message = {Kind.HIST: "hist", Kind.LHIST: "hist", Kind.AVG: "stats", Kind.STATS: "stats"}
    elems = []
    for key, value in entries:
        text = _entry_json(snapshot, value, div)
        if snapshot.key_types:
            parts = (key_part_to_str(ty, part) for ty, part in zip(snapshot.key_types, key))
            text = f'"{json_escape(",".join(parts))}": {text}'
        elems.append(text)
    body = ", ".join(elems)
    if snapshot.key_types:
        body = "{" + body + "}"
    name = json_escape(snapshot.name)
    return f'{{"type": "{message.get(kind, "map")}", "data": {{"{name}": {body}}}}}\n'


def maps_at_exit_json(snapshots: Iterable[MapSnapshot]) -> str:
    """The end of a run: 0.17 writes the same two bare newlines as in text
    mode, then one line per map that has entries, by name."""
    ordered = sorted(snapshots, key=lambda snap: snap.name.encode())
    return "\n\n" + "".join(map_json(snap) for snap in ordered)
