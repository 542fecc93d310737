"""bpftrace 0.17's text output, byte for byte: maps for ``print(@x, top, div)``
and the end of a run, single values for ``print(v)``, and the runtime's
messages (probe count, ``time()``, ``join()``).

Where 0.17 is odd we copy the oddity, each marked ``0.17:``; the fixtures in
tests/data/bpftrace/ were captured from the real binary. Strings are ``str``;
bytes that are not UTF-8 travel as surrogate escapes, so write the output with
``errors="surrogateescape"``.

The order of a map's entries is :mod:`.map_order`'s.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .map_order import average_of, c_div, ordered_entries, top_entries
from .types import Kind, SizedType
from .values import MapSnapshot, TypedValue

__all__ = [
    "STACK_MODE_PERF",
    "Strftime",
    "attached_probes_text",
    "buffer_text",
    "hist_bucket_index",
    "join_text",
    "joined_args",
    "lhist_bucket_index",
    "lost_events_text",
    "map_text",
    "maps_at_exit_text",
    "stack_text",
    "strftime_text",
    "time_text",
    "value_text",
    "value_to_str",
]

#: ``params[0]`` of a kstack/ustack type in perf mode (bpftrace=0, perf=1).
STACK_MODE_PERF = 1
#: bpftrace pads a stack's frames by 8 spaces as a value, by 4 inside a map key.
VALUE_STACK_INDENT = 8
KEY_STACK_INDENT = 4
#: 0.17 formats strftime() and time() into a char[64].
STRFTIME_BUFFER = 64
_BAR_WIDTH = 52
#: 0.17 joins these maps' entries with nothing at all, not a newline, so
#: ``@d[1]: _text@d[2]: _text`` comes out on one line.
_UNDELIMITED = (Kind.KSTACK, Kind.USTACK, Kind.KSYM, Kind.USYM, Kind.INET)
#: Kinds printed as the runtime resolved them.
_RESOLVED = (
    Kind.KSYM, Kind.USYM, Kind.USERNAME, Kind.INET, Kind.PROBE,
    Kind.CGROUP_PATH, Kind.STRERROR, Kind.MAC, Kind.STRING,
)  # fmt: skip


@dataclass(frozen=True)
class Strftime:
    """A ``strftime()`` value not yet formatted: the format and the wall
    clock in ns since the epoch (0.17 adds the boot time to the BPF
    ``nsecs`` argument). A TIMESTAMP value may also arrive as a ready str."""

    fmt: str
    epoch_ns: int


# -- runtime messages -------------------------------------------------------------------------


def attached_probes_text(count: int) -> str:
    return f"Attaching {count} probe...\n" if count == 1 else f"Attaching {count} probes...\n"


def lost_events_text(count: int) -> str:
    return f"Lost {count} events\n"


def joined_args(args: Iterable[str], delim: str = " ") -> str:
    """``join()``'s text. 0.17 stops at the first empty argument (it tests
    the first byte for NUL), so ``true a "" b`` joins as ``true a``."""
    joined: list[str] = []
    for arg in args:
        if not arg:
            break
        joined.append(arg)
    return delim.join(joined)


def join_text(args: Iterable[str], delim: str = " ") -> str:
    return joined_args(args, delim) + "\n"


class _Tm(ctypes.Structure):
    _fields_ = [
        *((name, ctypes.c_int) for name in ("sec", "min", "hour", "mday", "mon", "year", "wday")),
        ("yday", ctypes.c_int),
        ("isdst", ctypes.c_int),
        ("gmtoff", ctypes.c_long),
        ("zone", ctypes.c_char_p),
    ]


_libc = ctypes.CDLL(None)


def _c_strftime(fmt: str, seconds: int) -> str | None:
    """glibc's own localtime_r + strftime, so every conversion, the locale
    and the 63-character limit behave as in bpftrace; None when strftime
    returns 0 (too long, or an empty result)."""
    tm = _Tm()
    _libc.localtime_r(ctypes.byref(ctypes.c_long(seconds)), ctypes.byref(tm))
    out = ctypes.create_string_buffer(STRFTIME_BUFFER)
    raw = fmt.encode("utf-8", "surrogateescape")
    size = _libc.strftime(out, STRFTIME_BUFFER, raw, ctypes.byref(tm))
    return out.raw[:size].decode("utf-8", "surrogateescape") if size else None


def time_text(fmt: str, epoch_seconds: int) -> str | None:
    """``time(fmt)``'s output (no newline added). None means bpftrace prints
    nothing and logs ``ERROR: strftime returned 0`` to stderr."""
    return _c_strftime(fmt, epoch_seconds)


def strftime_text(fmt: str, epoch_ns: int) -> str:
    """A ``strftime()`` value. 0.17 first replaces every ``%f`` (even the one
    in ``%%f``) with the microseconds, then calls strftime; on failure it
    prints ``(?)`` and logs ``ERROR: strftime returned 0``."""
    seconds, ns = divmod(epoch_ns, 1_000_000_000)
    text = _c_strftime(fmt.replace("%f", f"{ns // 1000:06d}"), seconds)
    return "(?)" if text is None else text


# -- single values ------------------------------------------------------------------------------


def buffer_text(data: bytes, keep_ascii: bool = True, escape_hex: bool = True) -> str:
    """bpftrace's hex_format_buffer: printable ASCII as is, other bytes
    ``\\xNN`` (``%r``); all bytes ``\\xNN`` (``%rx``); ``61 01 62`` (``%rh``)."""
    if not escape_hex:
        return " ".join(f"{b:02x}" for b in data)
    return "".join(chr(b) if keep_ascii and 32 <= b <= 126 else f"\\x{b:02x}" for b in data)


def stack_text(
    frames: Sequence[str] | None, ty: SizedType, indent: int = VALUE_STACK_INDENT
) -> str:
    """A kstack/ustack: a newline, then one line per frame. Frames come
    symbolised (``do_syscall_64+113``); in perf mode as ``<hex addr> <sym>``
    and printed after a tab. None (the stack id lookup failed) prints ""."""
    if frames is None:
        return ""
    pad = "\t" if ty.params[:1] == (STACK_MODE_PERF,) else " " * indent
    return "\n" + "".join(f"{pad}{frame}\n" for frame in frames)


def _wrap(value: int, bits: int, signed: bool) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if signed and value >> (bits - 1) else value


def _int_text(value: int, ty: SizedType, div: int) -> str:
    bits = (ty.size or 8) * 8
    if ty.signed:
        # 0.17 divides in the value's own width: int8 by (int8_t)div.
        return str(c_div(_wrap(value, bits, True), _wrap(div, bits, True) or 1))
    return str(_wrap(value, bits, False) // div)


def value_to_str(ty: SizedType, value: Any, div: int = 1) -> str:
    """bpftrace's Output::value_to_str for one value of any printable kind;
    ``div`` divides numbers (print()'s third argument), tuples included."""
    kind = ty.kind
    if kind in (Kind.KSTACK, Kind.USTACK):
        return stack_text(value, ty)
    if kind is Kind.BUFFER:
        return buffer_text(bytes(value))
    if kind is Kind.TIMESTAMP:
        return value if isinstance(value, str) else strftime_text(value.fmt, value.epoch_ns)
    if kind in _RESOLVED:
        return str(value)
    if kind is Kind.TUPLE:
        return "(" + ", ".join(value_to_str(f, v, div) for f, v in zip(ty.fields, value)) + ")"
    if kind is Kind.ARRAY:
        assert ty.elem is not None
        return "[" + ",".join(value_to_str(ty.elem, v, div) for v in value) + "]"
    if kind is Kind.RECORD:
        # value: field name -> value in the struct's order (0.17 itself fails
        # to compile a record print; this is the shape its code means)
        fields = (
            f".{n} = {value_to_str(f, v, div)}" for (n, v), f in zip(value.items(), ty.fields)
        )
        return "{ " + ", ".join(fields) + " }"
    if kind is Kind.COUNT:
        return str(value // div)
    if kind in (Kind.INT, Kind.SUM, Kind.MIN, Kind.MAX):
        return _int_text(value, ty, div)
    # 0.17: pointers (and anything else) print as a signed decimal int64
    return str(c_div(_wrap(value, 64, True), div))


def value_text(value: TypedValue) -> str:
    """``print(value)`` for a non-map value: the value and a newline."""
    return value_to_str(value.type, value.value) + "\n"


def key_part_to_str(ty: SizedType, value: Any) -> str:
    """One part of a map key as MapKey::argument_value prints it."""
    kind = ty.kind
    if kind is Kind.INT:
        # 0.17 reads an 8-byte key as int64 whatever its sign: (uint64)-1 is -1
        size = ty.size or 8
        return str(_wrap(value, size * 8, ty.signed or size == 8))
    if kind in (Kind.POINTER, Kind.CTX):
        return f"0x{value & (2**64 - 1):x}"
    if kind in (Kind.KSTACK, Kind.USTACK):
        return stack_text(value, ty, KEY_STACK_INDENT)
    return value_to_str(ty, value)


# -- histograms -----------------------------------------------------------------------------------


def hist_bucket_index(value: int) -> int:
    """Where 0.17's hist() counts a value: 0 for negatives, 1 for zero, else
    2 + floor(log2). 0.17's log2 shifts by 16, 8, 4, 2, 1 only, so it stops
    at 31: every value from 2**31 up lands in [2G, 4G) (index 33)."""
    if value < 0:
        return 0
    if value == 0:
        return 1
    return 2 + min(value.bit_length() - 1, 31)


def lhist_bucket_index(value: int, low: int, high: int, step: int) -> int:
    """Where lhist(value, low, high, step) counts: 0 below ``low``, the last
    bucket ((high-low)//step + 1) at or above ``high``, else 1 + (value-low)//step.
    With a step that does not divide the range, a value just below high lands
    in the last bucket, labelled ``[high, ...)``, as in 0.17."""
    if value < low:
        return 0
    if value >= high:
        return (high - low) // step + 1
    return 1 + (value - low) // step


def as_int32(value: int) -> int:
    return _wrap(value, 32, True)


def hist_span(counts: Sequence[int]) -> tuple[int, int, int]:
    """(first, last, max) of the buckets to print, as hist_prepare finds them:
    it reads each count into an int, so a count of 2**31 or more wraps."""
    first = last = -1
    peak = 0
    for i, count in enumerate(counts):
        v = as_int32(count)
        if v > 0:
            first = i if first == -1 else first
            last = i
        peak = max(peak, v)
    return first, last, peak


def lhist_span(counts: Sequence[int], low: int, high: int, step: int) -> tuple[int, int, int]:
    """(first, last, max) as lhist_prepare finds them; last is -1 when empty."""
    nonzero = [i for i, count in enumerate(counts) if as_int32(count) != 0]
    peak = max([0, *(as_int32(c) for c in counts)])
    if not nonzero:
        return -1, -1, peak
    inner = [i for i in range((high - low) // step + 2) if i < len(counts) and counts[i] > 0]
    return (inner[0], inner[-1], peak) if inner else (0, 0, peak)


def _power_label(power: int) -> str:
    for floor, suffix in ((40, "T"), (30, "G"), (20, "M"), (10, "K")):
        if power >= floor:
            return f"{1 << (power - floor)}{suffix}"
    return str(1 << power)


def _linear_label(number: int) -> str:
    if number and number % 1048576 == 0:
        return f"{number // 1048576}M"
    if number and number % 1024 == 0:
        return f"{number // 1024}K"
    return str(number)


def _bar(count: int, peak: int) -> str:
    # C computes count/(float)max*52 in single precision, then truncates
    if peak <= 0:
        return ""
    width = np.float32(count) / np.float32(peak) * np.float32(_BAR_WIDTH)
    return "@" * int(width)


def _row(label: str, shown: int, count: int, peak: int) -> str:
    return f"{label:<16}{shown:>8} |{_bar(count, peak):<{_BAR_WIDTH}}|\n"


def hist_text(counts: Sequence[int], div: int = 1) -> str:
    first, last, peak = hist_span(counts)
    if last == -1:
        return ""
    rows = []
    for i in range(first, last + 1):
        if i < 3:
            label = ("(..., 0)", "[0]", "[1]")[i]
        else:
            label = f"[{_power_label(i - 2)}, {_power_label(i - 1)})"
        rows.append(_row(label, counts[i] // div, counts[i], peak))
    return "".join(rows)


def lhist_text(counts: Sequence[int], low: int, high: int, step: int) -> str:
    """0.17 ignores print()'s div for lhist maps."""
    first, last, peak = lhist_span(counts, low, high, step)
    if last == -1:
        return ""
    buckets = (high - low) // step
    rows = []
    for i in range(first, last + 1):
        if i == 0:
            label = f"(..., {_linear_label(low)})"
        elif i == buckets + 1:
            label = f"[{_linear_label(high)}, ...)"
        else:
            label = f"[{_linear_label((i - 1) * step + low)}, {_linear_label(i * step + low)})"
        rows.append(_row(label, counts[i], counts[i], peak))
    return "".join(rows)


# -- maps ------------------------------------------------------------------------------------------


def map_key_text(snapshot: MapSnapshot, key: Sequence[Any]) -> str:
    if not snapshot.key_types:
        return snapshot.name
    parts = (key_part_to_str(ty, part) for ty, part in zip(snapshot.key_types, key))
    return f"{snapshot.name}[{', '.join(parts)}]"


def map_text(snapshot: MapSnapshot, top: int = 0, div: int = 0) -> str:
    """What ``print(@x, top, div)`` writes, the trailing newline(s) included.
    An empty map still prints its newline(s): "\\n", or "\\n\\n" for avg and
    stats. Stats maps ignore top and div; lhist maps ignore div."""
    div = div or 1
    ty = snapshot.value_type
    kind = ty.kind
    entries = top_entries(ordered_entries(snapshot), 0 if kind is Kind.STATS else top)
    elems = []
    for key, value in entries:
        head = map_key_text(snapshot, key) + ": "
        if kind is Kind.HIST:
            elems.append(head + "\n" + hist_text(value, div))
        elif kind is Kind.LHIST:
            elems.append(head + "\n" + lhist_text(value, *ty.params[:3]))
        elif kind is Kind.STATS:
            count, total = value
            elems.append(head + f"count {count}, average {average_of(value)}, total {total}")
        elif kind is Kind.AVG:
            elems.append(head + str(c_div(average_of(value), div)))
        else:
            elems.append(head + value_to_str(ty, value, div))
    text = ("" if kind in _UNDELIMITED else "\n").join(elems) + "\n"
    return text + "\n" if kind in (Kind.AVG, Kind.STATS) else text


def maps_at_exit_text(snapshots: Iterable[MapSnapshot]) -> str:
    """What bpftrace writes once the probes are detached: two newlines (also
    after printf output and with no maps at all), then every map in byte
    order of its name (``@`` < ``@B`` < ``@_x`` < ``@a``)."""
    ordered = sorted(snapshots, key=lambda snap: snap.name.encode())
    return "\n\n" + "".join(map_text(snap) for snap in ordered)
