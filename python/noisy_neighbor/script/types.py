"""The types of bpftrace's language, as the checker assigns them, the code
generator lays them out in C, and the output formats print them.

A type is a frozen :class:`SizedType`. Its ``name`` is the one bpftrace uses
in its messages (``int64``, ``unsigned int32``, ``string[16]``,
``(int64,string[2])``, ``struct task_struct *``, ``hist``), so errors read as
bpftrace's do.

Values reach the output formats decoded (see :mod:`.values`): integers as
int, strings as str, buffers as bytes, tuples as tuples, stacks as lists of
frames, and the aggregations as described on :class:`Kind`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_STRLEN",
    "HIST_BUCKETS",
    "Kind",
    "SizedType",
    "int_type",
    "none_type",
    "string_type",
]

#: Bytes of a string when nothing says otherwise (bpftrace's BPFTRACE_STRLEN).
DEFAULT_STRLEN = 64
#: Buckets of a ``hist()``: negative values, 0, 1, then one per power of two
#: up to 2**63 (bpftrace's log2 bucket index: ``floor(log2(n)) + 2`` for n >= 1).
HIST_BUCKETS = 66


class Kind(enum.Enum):
    """What a value is. Aggregations decode as: COUNT, SUM, MIN, MAX -> int;
    AVG and STATS -> (count, total); HIST -> list of HIST_BUCKETS counts;
    LHIST -> list of counts, (max - min) // step + 2 of them (below min,
    one per step, at or above max)."""

    NONE = "none"
    INT = "int"
    STRING = "string"
    BUFFER = "buffer"
    POINTER = "pointer"
    RECORD = "record"  # a struct or union by value
    ARRAY = "array"
    TUPLE = "tuple"
    CTX = "ctx"  # the probe's context pointer
    # values the runtime resolves before printing
    KSYM = "ksym"
    USYM = "usym"
    KSTACK = "kstack"
    USTACK = "ustack"
    USERNAME = "username"
    INET = "inet"
    PROBE = "probe"
    TIMESTAMP = "timestamp"
    CGROUP_PATH = "cgroup_path"
    STRERROR = "strerror"
    MAC = "mac_address"
    # map aggregations
    COUNT = "count"
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    AVG = "avg"
    STATS = "stats"
    HIST = "hist"
    LHIST = "lhist"


AGGREGATIONS = frozenset(
    {Kind.COUNT, Kind.SUM, Kind.MIN, Kind.MAX, Kind.AVG, Kind.STATS, Kind.HIST, Kind.LHIST}
)


@dataclass(frozen=True)
class SizedType:
    """One type. ``size`` is in bytes: of an integer (1, 2, 4, 8), a string
    (with its NUL) or a buffer (its data). ``elem`` is a pointer's target or
    an array's element, ``count`` an array's length or a stack's depth,
    ``fields`` a tuple's elements, ``struct`` a record's (or a pointer's
    target record's) C name such as ``struct task_struct``. ``params`` holds
    an lhist's (min, max, step) and a timestamp's format id. Types compare
    equal when all of this is equal."""

    kind: Kind
    size: int = 0
    signed: bool = False
    elem: SizedType | None = None
    count: int = 0
    fields: tuple[SizedType, ...] = ()
    struct: str = ""
    params: tuple[int, ...] = field(default=())
    #: A pointer into user memory (syscall and uprobe arguments): read with
    #: the user-space probe helpers.
    user: bool = False

    # -- predicates ------------------------------------------------------------

    @property
    def is_int(self) -> bool:
        return self.kind is Kind.INT

    @property
    def is_string(self) -> bool:
        return self.kind is Kind.STRING

    @property
    def is_pointer(self) -> bool:
        return self.kind in (Kind.POINTER, Kind.CTX)

    @property
    def is_aggregation(self) -> bool:
        return self.kind in AGGREGATIONS

    @property
    def is_integer_like(self) -> bool:
        """Usable in arithmetic: integers and pointers (bpftrace allows
        arithmetic on pointers, in bytes of their target)."""
        return self.kind in (Kind.INT, Kind.POINTER, Kind.CTX)

    # -- bpftrace's names ------------------------------------------------------

    @property
    def name(self) -> str:
        kind = self.kind
        if kind is Kind.INT:
            bits = self.size * 8
            return f"int{bits}" if self.signed else f"unsigned int{bits}"
        if kind is Kind.STRING:
            return f"string[{self.size}]"
        if kind is Kind.BUFFER:
            return f"buffer[{self.size}]"
        if kind is Kind.POINTER:
            target = self.elem.name if self.elem is not None else "void"
            return f"{target} *"
        if kind is Kind.RECORD:
            return self.struct
        if kind is Kind.ARRAY:
            element = self.elem.name if self.elem is not None else "?"
            return f"{element}[{self.count}]"
        if kind is Kind.TUPLE:
            return "(" + ",".join(f.name for f in self.fields) + ")"
        if kind is Kind.CTX:
            return "ctx"
        return kind.value

    def __str__(self) -> str:
        return self.name


def int_type(size: int = 8, signed: bool = True) -> SizedType:
    return SizedType(Kind.INT, size, signed)


def string_type(size: int = DEFAULT_STRLEN) -> SizedType:
    return SizedType(Kind.STRING, size)


def none_type() -> SizedType:
    return SizedType(Kind.NONE)
