"""bpftrace 0.17's printf: which conversions a format holds, whether the
arguments fit them (with 0.17's messages), and the text of one event.

0.17 finds conversions with the regex ``%-?[0-9]*(\\.[0-9]+)?(token)``, the
tokens being s, c, r, rx, rh and d u o x X p after no length modifier or
after hh h l ll j z t. Anything else (``%i``, ``%f``, ``%+d``, ``%%``) is not
a conversion: it is text, and it counts no argument. The format is then cut
after each conversion; each piece goes through glibc's snprintf with its one
argument and the text after the last conversion is written as it is. Hence
``printf("%d%%\\n", 5)`` prints ``5%%`` but ``printf("%%%d\\n", 5)`` prints
``%5``, and ``%d`` of 2**33 prints 0 (it reads an int). We copy all of it.

Text is handled as bytes, as snprintf counts them (``%10s`` of ``é`` pads
8 spaces), and comes back as str with surrogate escapes for non-UTF-8 bytes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from .output_text import buffer_text, value_to_str
from .types import Kind, SizedType
from .values import TypedValue

__all__ = ["FormatString", "check_format", "parse_format", "render", "render_rows"]

_LENGTHS = ("hh", "h", "l", "ll", "j", "z", "t")
_INTEGER_TOKENS = tuple(length + conv for length in ("", *_LENGTHS) for conv in "duoxXp")
_TOKENS = ("s", "r", "rx", "rh", "c", *_INTEGER_TOKENS)
# Longest first: 0.17 reads %rx as the rx token, not %r and an x.
_TOKEN_RE = re.compile(
    r"%-?[0-9]*(?:\.[0-9]+)?(" + "|".join(sorted(_TOKENS, key=len, reverse=True)) + ")"
)
#: 0.17's search for the C type it casts an integer to before snprintf.
_CAST_RE = re.compile(rb"%-?[0-9.]*(hh|h|ll|l|j|z|t)?([cduoxXp])")
#: What glibc's printf parses after a ``%``.
_C_SPEC_RE = re.compile(rb"%([-+ #0]*)(\d+)?(?:\.(\d*))?(hh|h|ll|l|L|q|j|z|Z|t)?(.)", re.S)
_STRING_LIKE = (
    Kind.STRING, Kind.KSYM, Kind.USYM, Kind.PROBE, Kind.USERNAME, Kind.KSTACK, Kind.USTACK,
    Kind.INET, Kind.TIMESTAMP, Kind.MAC, Kind.CGROUP_PATH, Kind.STRERROR,
)  # fmt: skip
_BITS = {b"hh": 8, b"h": 16, b"": 32}  # every other length modifier reads 64 bits


@dataclass(frozen=True)
class CSpec:
    """One glibc conversion inside a piece of the format."""

    flags: bytes
    width: int
    precision: int | None
    length: bytes
    conv: str


@dataclass(frozen=True)
class Piece:
    """The format up to and including one bpftrace conversion: glibc's view
    of it (text and specs), the token, and the C type 0.17 casts to.
    ``python`` is the same piece as a Python %-format when Python prints
    exactly what glibc does (see :func:`_python_format`)."""

    text: str
    token: str
    segments: tuple[bytes | CSpec, ...]
    cast_bits: int  # 8, 16, 32 or 64: the C type 0.17 casts an integer to
    python: str | None = None

    @property
    def spec(self) -> CSpec | None:
        last = self.segments[-1] if self.segments else None
        return last if isinstance(last, CSpec) else None


@dataclass(frozen=True)
class FormatString:
    text: str
    pieces: tuple[Piece, ...]
    trailing: str  # after the last conversion: written raw, ``%%`` and all


def _segments(raw: bytes) -> tuple[bytes | CSpec, ...]:
    out: list[bytes | CSpec] = []
    pos = 0
    while (start := raw.find(b"%", pos)) != -1:
        match = _C_SPEC_RE.match(raw, start)
        if match is None:
            break
        flags, width, precision, length, conv = match.groups()
        out.append(raw[pos:start])
        if conv == b"%":
            out.append(b"%")
        elif conv.decode("latin-1") in "diouxXcspeEfFgGaA":
            prec = None if precision is None else int(precision or b"0")
            out.append(CSpec(flags, int(width or 0), prec, length or b"", conv.decode("latin-1")))
        else:
            out.append(match.group(0))  # glibc prints an unknown conversion as it is
        pos = match.end()
    out.append(raw[pos:])
    return tuple(s for s in out if s != b"")


def _python_format(piece: Piece) -> str | None:
    """The piece as a Python %-format that prints what glibc does, when there
    is one: plain text, then the one conversion, an integer or a string
    (strings only while ASCII: Python pads characters, C bytes)."""
    spec, text = piece.spec, piece.segments[:-1]
    if spec is None or any(isinstance(s, CSpec) for s in text) or piece.token.startswith("r"):
        return None
    if spec.conv not in "diuoxXs" or spec.precision == 0:
        return None
    if spec.conv != "s" and _BITS.get(spec.length, 64) != piece.cast_bits:
        return None
    flags = spec.flags.decode()
    if spec.precision is not None:
        flags = flags.replace("0", "")  # C ignores 0 when a precision is given
    if set(flags) - set("-0"):
        return None
    literal = b"".join(s for s in text if isinstance(s, bytes)).decode("utf-8", "surrogateescape")
    literal = literal.replace("%", "%%")
    prec = "" if spec.precision is None else f".{spec.precision}"
    conv = "d" if spec.conv in "diu" else spec.conv
    return f"{literal}%{flags}{spec.width or ''}{prec}{conv}"


def _piece(text: str, token: str) -> Piece:
    raw = text.encode("utf-8", "surrogateescape")
    if token in ("r", "rx", "rh") and raw[raw.rfind(b"%") :] in (b"%r", b"%rx", b"%rh"):
        # 0.17 swaps %r, %rx, %rh for %s only when the piece ends in exactly
        # that; %5r stays, and glibc prints it as text
        raw = re.sub(rb"%r[x|h]?", b"%s", raw)
    cast = _CAST_RE.search(raw)
    bits = 64
    if cast and cast.group(2) == b"c":
        bits = 8
    elif cast and cast.group(2) != b"p":
        bits = _BITS.get(cast.group(1) or b"", 64)
    piece = Piece(text, token, _segments(raw), bits)
    return replace(piece, python=_python_format(piece))


@lru_cache(maxsize=1024)
def parse_format(fmt: str) -> FormatString:
    pieces, last = [], 0
    for match in _TOKEN_RE.finditer(fmt):
        pieces.append(_piece(fmt[last : match.end()], match.group(1)))
        last = match.end()
    return FormatString(fmt, tuple(pieces), fmt[last:])


# -- checking ------------------------------------------------------------------------------------


def _type_name(ty: SizedType) -> str:
    """The name 0.17's Type enum prints for an argument."""
    if ty.kind in _STRING_LIKE:
        return "string"
    if ty.kind in (Kind.INT, Kind.POINTER, Kind.CTX):
        return "integer"
    return ty.kind.value


def _token_type(token: str) -> str:
    return "string" if token == "s" else "buffer" if token.startswith("r") else "integer"


def check_format(call_func: str, fmt: str, arg_types: Sequence[SizedType]) -> str | None:
    """0.17's validate_format_string: None when the arguments fit, else its
    message, e.g. ``printf: %d specifier expects a value of type integer
    (string supplied)``. ``call_func`` is printf, system or cat."""
    tokens = parse_format(fmt).pieces
    if len(arg_types) != len(tokens):
        problem = "Not enough" if len(arg_types) < len(tokens) else "Too many"
        return (
            f"{call_func}: {problem} arguments for format string "
            f"({len(arg_types)} supplied, {len(tokens)} expected)"
        )
    for piece, ty in zip(tokens, arg_types):
        expected, supplied = _token_type(piece.token), _type_name(ty)
        if expected != supplied:
            return (
                f"{call_func}: %{piece.token} specifier expects a value of type {expected} "
                f"({supplied} supplied)"
            )
    return None


# -- rendering -----------------------------------------------------------------------------------


def _pad(body: bytes, spec: CSpec, zero_from: int = -1) -> bytes:
    if len(body) >= spec.width:
        return body
    if b"-" in spec.flags:
        return body.ljust(spec.width)
    if zero_from >= 0:  # zero padding goes after the sign and 0x
        return body[:zero_from] + body[zero_from:].rjust(spec.width - zero_from, b"0")
    return body.rjust(spec.width)


def _c_integer(spec: CSpec, register: int) -> bytes:
    conv = spec.conv
    if conv == "p":
        if register == 0:
            return _pad(b"(nil)", spec)
        value, bits, conv = register, 64, "x"
    else:
        bits = _BITS.get(spec.length, 64)
        value = register & ((1 << bits) - 1)
    if conv in "di" and value >> (bits - 1):
        value -= 1 << bits
    digits = {"o": "%o", "x": "%x", "X": "%X"}.get(conv, "%d") % abs(value)
    if spec.precision is not None:
        digits = "" if spec.precision == 0 and value == 0 else digits.zfill(spec.precision)
    if b"#" in spec.flags and conv == "o" and not digits.startswith("0"):
        digits = "0" + digits
    prefix = "0x" if spec.conv == "p" or (b"#" in spec.flags and conv == "x" and value) else ""
    prefix = "0X" if b"#" in spec.flags and conv == "X" and value else prefix
    if value < 0:
        prefix = "-" + prefix
    elif b"+" in spec.flags and conv in "dip":
        prefix = "+" + prefix
    elif b" " in spec.flags and conv in "dip":
        prefix = " " + prefix
    zero = len(prefix) if b"0" in spec.flags and spec.precision is None else -1
    return _pad((prefix + digits).encode(), spec, zero)


def _c_string(spec: CSpec, text: bytes) -> bytes:
    return _pad(text if spec.precision is None else text[: spec.precision], spec)


def _c_float(spec: CSpec) -> bytes:
    # A float conversion reads an XMM register bpftrace never sets: undefined,
    # we print 0.0 the C way.
    if spec.conv in "aA":  # Python's %a is ascii(), not hex floats
        return _pad(b"0x0p+0" if spec.conv == "a" else b"0X0P+0", spec)
    flags = spec.flags.decode()
    prec = "" if spec.precision is None else f".{spec.precision}"
    return (f"%{flags}{spec.width or ''}{prec}{spec.conv}" % 0.0).encode()


def _argument(arg: TypedValue, bits: int) -> int | bytes:
    """The argument as snprintf receives it: bytes for %s, else the
    register: the value cast to the C type 0.17 chose, promoted to int."""
    ty, value = arg.type, arg.value
    if ty.kind in _STRING_LIKE:
        return value_to_str(ty, value).encode("utf-8", "surrogateescape")
    value = int(value) & ((1 << 64) - 1)
    if bits < 64:
        value &= (1 << bits) - 1
        if ty.signed and value >> (bits - 1):  # a signed char/short promotes by sign
            value = (value - (1 << bits)) & 0xFFFFFFFF
    return value


def _render_piece(piece: Piece, arg: TypedValue) -> bytes:
    mode = piece.token if piece.token in ("rx", "rh") else ""
    if arg.type.kind is Kind.BUFFER:
        raw = bytes(arg.value)
        value: int | bytes = buffer_text(raw, not mode, mode != "rh").encode()
    else:
        value = _argument(arg, piece.cast_bits)
    out = []
    for segment in piece.segments:
        if isinstance(segment, bytes):
            out.append(segment)
            continue
        if segment.conv in "eEfFgGaA":
            out.append(_c_float(segment))
            continue
        # the first conversion takes the argument; any other reads a
        # register bpftrace never set (undefined in 0.17): we give it 0
        current, value = value, 0
        if segment.conv == "s":
            out.append(_c_string(segment, current if isinstance(current, bytes) else b"(null)"))
        elif segment.conv == "c":
            out.append(_pad(bytes([current & 0xFF if isinstance(current, int) else 0]), segment))
        else:
            out.append(_c_integer(segment, current if isinstance(current, int) else 0))
    text = b"".join(out)
    # 0.17 writes the piece as a C string: a %c of 0 ends it
    return text.split(b"\0", 1)[0]


def render(fmt: str | FormatString, args: Sequence[TypedValue]) -> str:
    """The text one printf event prints (no newline added)."""
    parsed = parse_format(fmt) if isinstance(fmt, str) else fmt
    if not parsed.pieces:
        return parsed.text
    raw = b"".join(_render_fast(p, a) for p, a in zip(parsed.pieces, args))
    return raw.decode("utf-8", "surrogateescape") + parsed.trailing


def _render_fast(piece: Piece, arg: TypedValue) -> bytes:
    spec, kind = piece.spec, arg.type.kind
    if piece.python is None or spec is None:
        return _render_piece(piece, arg)
    if spec.conv == "s":
        if kind is not Kind.STRING or (spec.width or spec.precision is not None):
            return _render_piece(piece, arg)
        return (piece.python % arg.value).encode("utf-8", "surrogateescape")
    if kind not in (Kind.INT, Kind.POINTER):
        return _render_piece(piece, arg)
    bits = _BITS.get(spec.length, 64)
    value = int(arg.value) & ((1 << bits) - 1)
    if spec.conv in "di" and value >> (bits - 1):
        value -= 1 << bits
    return (piece.python % value).encode()


# -- many events at once ------------------------------------------------------------------------


def _integer_column(column: Any, spec: CSpec) -> list[int]:
    """A column as the conversion reads it: wrapped to its width and sign."""
    bits = _BITS.get(spec.length, 64)
    signed = spec.conv in "di"
    dtype = np.dtype(f"{'i' if signed else 'u'}{bits // 8}")
    return np.asarray(column).astype(dtype).tolist()  # type: ignore[no-any-return]


def _string_column(column: Any, exact: bool) -> list[str] | None:
    texts = [v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else v for v in column]
    return texts if exact or all(t.isascii() for t in texts) else None


def render_rows(
    fmt: str | FormatString,
    arg_types: Sequence[SizedType],
    columns: Sequence[Any],
    count: int | None = None,
) -> list[str]:
    """Many events of one printf call site at once: one column per argument
    (a numpy array of integers, or a sequence of str/bytes for strings),
    one text per event; ``count`` events when there are no arguments.
    Formats Python prints exactly as glibc go through one %-format per row;
    any other takes the per-event path."""
    parsed = parse_format(fmt) if isinstance(fmt, str) else fmt
    if not parsed.pieces:
        return [parsed.text] * (count or 0)
    prepared: list[list[Any]] = []
    for piece, ty, column in zip(parsed.pieces, arg_types, columns):
        spec = piece.spec
        if piece.python is None or spec is None:
            break
        if ty.kind in (Kind.INT, Kind.POINTER) and spec.conv != "s":
            prepared.append(_integer_column(column, spec))
            continue
        texts = None
        if ty.kind is Kind.STRING and spec.conv == "s":
            texts = _string_column(column, not spec.width and spec.precision is None)
        if texts is None:
            break
        prepared.append(texts)
    else:
        whole = "".join(p.python or "" for p in parsed.pieces)
        whole += parsed.trailing.replace("%", "%%")
        return [whole % row for row in zip(*prepared)]
    values = [
        [TypedValue(ty, v) for v in (c.tolist() if isinstance(c, np.ndarray) else c)]
        for ty, c in zip(arg_types, columns)
    ]
    return [render(parsed, event) for event in zip(*values)]
