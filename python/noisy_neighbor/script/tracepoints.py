"""Tracepoints from tracefs: which exist (available_events) and the layout
of each one's record (events/<category>/<event>/format), typed as bpftrace
0.17 types ``args->field``.

bpftrace 0.17 pastes the format into a C struct that clang types, and these
rules follow what it shows on a real kernel:

- ``char name[N]`` is ``string[N]``; other arrays stay arrays
  (``unsigned long args[6]`` is ``unsigned int64[6]``);
- ``const char *filename`` is ``int8 *`` (clang's char is signed): read it
  with ``str()``;
- ``__data_loc char[] filename`` is ``int64``: the address of the data (the
  record's start plus the low 16 bits of the field), for ``str()``;
- an ``int`` (or ``unsigned int``, ``u32``, ``pid_t``, ``uid_t``,
  ``gid_t``) the format says is 8 bytes wide, as syscalls' arguments are,
  becomes a 64-bit integer; other typedefs keep their own width even then
  (``umode_t mode``, size 8, is ``unsigned int16``);
- enums are unsigned, structs by pointer keep their name; a type neither C
  nor BTF knows falls back to the format's size and signedness.

The common_* fields come first in every record and bpftrace refuses to read
them ("BPF does not support accessing common tracepoint fields"). A field
named like a C keyword breaks bpftrace's generated struct (clang: "expected
member name"); none exists on 6.18, and :attr:`TracepointField.c_name` gives
such a field a name C accepts."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from dataclasses import dataclass, replace
from functools import cache

from ..errors import AttachError, BtfUnavailableError, PrivilegeError
from .btf import KernelBtf, c_integer
from .types import Kind, SizedType, int_type, none_type

__all__ = [
    "TracepointField",
    "TracepointFormat",
    "parse_format",
    "tracefs",
    "tracepoint_format",
    "tracepoints",
]

_ROOTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
_FIELD = re.compile(
    r"field:(?P<decl>[^;]*);\s*offset:(?P<offset>\d+);\s*size:(?P<size>\d+);"
    r"(?:\s*signed:(?P<signed>-?\d+);)?"
)
# bpftrace's adjust_integer_types: these, when the format says 8 bytes.
_WIDENED = {"int": True, "unsigned int": False, "unsigned": False, "u32": False,
            "pid_t": False, "uid_t": False, "gid_t": False}  # fmt: skip
_QUALIFIERS = frozenset({"const", "volatile", "restrict", "__user", "__rcu", "__percpu"})
_C_KEYWORDS = frozenset(
    {
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
        "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
        "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch",
        "typedef", "union", "unsigned", "void", "volatile", "while", "_Bool", "_Atomic",
    }
)  # fmt: skip


@dataclass(frozen=True)
class TracepointField:
    """One field of a tracepoint's record. ``c_type`` is the format's text
    (``const char *``, ``__data_loc char[]``); ``count`` an array's length
    (1 otherwise)."""

    name: str
    offset: int
    size: int
    signed: bool
    c_type: str
    type: SizedType
    data_loc: bool = False
    count: int = 1

    @property
    def c_name(self) -> str:
        """The name for a generated C struct: a C keyword gets a '_'."""
        return self.name + "_" if self.name in _C_KEYWORDS else self.name


@dataclass(frozen=True)
class TracepointFormat:
    """A tracepoint's record: ``fields`` are what ``args`` shows, after the
    ``common`` ones; ``size`` is where the last field ends."""

    category: str
    event: str
    id: int
    common: tuple[TracepointField, ...]
    fields: tuple[TracepointField, ...]

    @property
    def all_fields(self) -> tuple[TracepointField, ...]:
        return self.common + self.fields

    @property
    def size(self) -> int:
        return max((f.offset + f.size for f in self.all_fields), default=0)

    def field(self, name: str) -> TracepointField | None:
        return next((f for f in self.fields if f.name == name), None)


def tracefs() -> str:
    """Where tracefs is mounted, mounting it at /sys/kernel/tracing when it
    is not and we are root."""
    for root in _ROOTS:
        if os.path.isfile(os.path.join(root, "available_events")):
            return root
    how = "mount it with 'mount -t tracefs nodev /sys/kernel/tracing'"
    if os.geteuid() != 0:
        raise PrivilegeError(f"tracepoints need tracefs, which is not mounted: as root, {how}")
    mount = ["mount", "-t", "tracefs", "nodev", _ROOTS[0]]
    done = subprocess.run(mount, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not os.path.isfile(os.path.join(_ROOTS[0], "available_events")):
        raise AttachError(
            f"tracepoints need tracefs, and mounting it failed ({done.stderr.strip()}): {how}, "
            "in a kernel built with CONFIG_FTRACE"
        )
    return _ROOTS[0]


@cache
def _available_events() -> tuple[str, ...]:
    with open(os.path.join(tracefs(), "available_events")) as events:
        return tuple(sorted({line.strip() for line in events if ":" in line}))


def tracepoints(pattern: str = "*:*") -> list[str]:
    """``category:event`` names matching a shell glob (``sched:*``,
    ``syscalls:sys_enter_open*``), sorted; a pattern without ':' matches
    events of any category, as ``bpftrace -l tracepoint:irq*`` does."""
    if ":" not in pattern:
        pattern = "*:" + pattern
    return [name for name in _available_events() if fnmatch.fnmatchcase(name, pattern)]


def tracepoint_format(category: str, event: str) -> TracepointFormat | None:
    """A tracepoint's format; None if there is no such tracepoint."""
    if not re.fullmatch(r"[\w.-]+", category) or not re.fullmatch(r"[\w.-]+", event):
        return None
    return _read_format(tracefs(), category, event)


@cache
def _read_format(root: str, category: str, event: str) -> TracepointFormat | None:
    try:
        with open(os.path.join(root, "events", category, event, "format")) as fmt:
            text = fmt.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        btf: KernelBtf | None = KernelBtf.load()
    except BtfUnavailableError:
        btf = None  # the format's own sizes and signedness still type the fields
    return parse_format(text, category, event, btf)


def parse_format(
    text: str, category: str = "", event: str = "", btf: KernelBtf | None = None
) -> TracepointFormat:
    """A format file's text, parsed; ``btf`` resolves typedefs and structs."""
    event_id = re.search(r"^ID:\s*(\d+)", text, re.M)
    common: list[TracepointField] = []
    fields: list[TracepointField] = []
    for match in _FIELD.finditer(text):
        signed = match["signed"] not in (None, "0")
        field = _field(match["decl"].strip(), int(match["offset"]), int(match["size"]), signed, btf)
        # Syscalls' pointer arguments point into the calling process.
        if category == "syscalls" and field.type.kind is Kind.POINTER:
            field = replace(field, type=replace(field.type, user=True))
        (common if field.name.startswith("common_") else fields).append(field)
    return TracepointFormat(
        category, event, int(event_id[1]) if event_id else 0, tuple(common), tuple(fields)
    )


def _field(
    decl: str, offset: int, size: int, signed: bool, btf: KernelBtf | None
) -> TracepointField:
    c_type, _, name = decl.rpartition(" ")
    c_type = c_type.strip()
    if c_type.startswith("__data_loc"):
        return TracepointField(name, offset, size, signed, c_type, int_type(8, True), data_loc=True)
    dims = re.findall(r"\[([^\]]*)\]", name)
    name = name.split("[", 1)[0]
    if not dims:
        if size == 8 and c_type in _WIDENED:
            return TracepointField(
                name, offset, size, signed, c_type, int_type(8, _WIDENED[c_type])
            )
        scalar = _c_type(c_type, btf) or _fallback(size, signed)
        return TracepointField(name, offset, size, signed, c_type, scalar)
    elem = _c_type(c_type, btf)
    count = int(dims[0]) if dims[0].isdigit() else 0
    if elem is not None and not count and elem.size:
        count = size // elem.size  # a length spelled as a macro (TASK_COMM_LEN)
    if c_type in ("char", "signed char", "const char"):  # bpftrace's strings
        count = count or size
        return TracepointField(
            name, offset, size, signed, c_type, SizedType(Kind.STRING, count), count=count
        )
    if elem is None or not elem.size:
        elem, count = int_type(1, False), size
    array = SizedType(Kind.ARRAY, elem.size * count, elem=elem, count=count)
    return TracepointField(name, offset, size, signed, c_type, array, count=count)


def _c_type(text: str, btf: KernelBtf | None) -> SizedType | None:
    """A type spelled in a format file, as clang would type it for bpftrace;
    None if neither C nor the kernel's BTF knows it."""
    words = [w for w in text.replace("*", " * ").split() if w not in _QUALIFIERS]
    words = [w for w in words if not w.startswith("__seg_")]  # x86 address spaces
    target = _base_type(" ".join(w for w in words if w != "*"), btf)
    stars = words.count("*")
    if target is None:
        return none_type() if stars else None
    for _ in range(stars):
        target = SizedType(Kind.POINTER, 8, elem=target)
    return target


def _base_type(base: str, btf: KernelBtf | None) -> SizedType | None:
    integer = c_integer(base)
    if integer is not None:
        return integer
    if base == "void":
        return none_type()
    if base.startswith("enum ") or base in ("bool", "_Bool"):
        size = btf.sizeof(base) if btf is not None else None
        return int_type(size or (1 if "bool" in base else 4), False)
    found = btf.named_type(base) if btf is not None else None
    if found is None and base.startswith(("struct ", "union ")):
        return SizedType(Kind.RECORD, 0, struct=base)  # a pointer to it still reads
    return found


def _fallback(size: int, signed: bool) -> SizedType:
    if size in (1, 2, 4, 8):
        return int_type(size, signed)
    return SizedType(Kind.ARRAY, size, elem=int_type(1, False), count=size)
