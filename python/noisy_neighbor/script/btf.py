"""The kernel's types from its BTF, as bpftrace 0.17 sees them: structs and
their members, functions' parameters for fentry/fexit, enumerators, each type
as a :class:`SizedType` (bpftrace's name and kind) and as C spells it against
the vendored vmlinux.h. The binary format and its on-disk index are in
:mod:`.btf_format`.

Module BTF (/sys/kernel/btf/<module>) is split BTF on vmlinux's:
:meth:`KernelBtf.func` looks there when vmlinux has no such function, and
reads each module's BTF on first use."""

from __future__ import annotations

import fnmatch
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from .btf_format import BtfFile, BtfKind, TypeRecord
from .types import Kind, SizedType, int_type, none_type

__all__ = ["VMLINUX", "BtfFunc", "BtfMember", "BtfParam", "BtfRecord", "KernelBtf", "c_integer"]

VMLINUX = "/sys/kernel/btf/vmlinux"
_QUALIFIERS = frozenset({BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT, BtfKind.TYPE_TAG})
_RECORDS = frozenset({BtfKind.STRUCT, BtfKind.UNION})
_UNNAMED = re.compile(r"\(unnamed #(\d+)\)$")
_INT_WORDS = frozenset({"signed", "unsigned", "short", "long", "int", "char"})


@dataclass(frozen=True)
class BtfMember:
    """A struct member; members of anonymous structs and unions are lifted
    into their parent, as C lets ``task->__state`` reach through them."""

    name: str
    type_id: int
    bit_offset: int  # from the start of the outermost record
    bitfield_size: int  # 0 unless a bitfield
    type: SizedType

    @property
    def offset(self) -> int:
        return self.bit_offset // 8


@dataclass(frozen=True)
class BtfRecord:
    """A struct or union, ``name`` as bpftrace prints it."""

    name: str
    type_id: int
    size: int
    is_union: bool
    members: tuple[BtfMember, ...]

    def member(self, name: str) -> BtfMember | None:
        return next((m for m in self.members if m.name == name), None)


@dataclass(frozen=True)
class BtfParam:
    """A function parameter; ``slot`` is its index in fentry's u64 array."""

    name: str
    type_id: int
    type: SizedType
    c_type: str
    slot: int


@dataclass(frozen=True)
class BtfFunc:
    """A kernel function (FUNC -> FUNC_PROTO) in ``module`` (``vmlinux`` or
    a module's name); ``return_type`` is none for void."""

    name: str
    module: str
    params: tuple[BtfParam, ...]
    return_type: SizedType
    return_c_type: str
    variadic: bool

    def param(self, name: str) -> BtfParam | None:
        return next((p for p in self.params if p.name == name), None)


def _gcc_int_name(spelling: str) -> str | None:
    """C's many spellings of an integer (``unsigned long``, ``long unsigned
    int``) as gcc names it in BTF, or None if it is not one."""
    words = spelling.split()
    if not words or not _INT_WORDS.issuperset(words):
        return None
    unsigned, longs = "unsigned" in words, words.count("long")
    if "char" in words:
        return "unsigned char" if unsigned else "signed char" if "signed" in words else "char"
    size = "short " if "short" in words else "long " * longs
    return f"{size}{'unsigned ' if unsigned else ''}int"


def c_integer(spelling: str) -> SizedType | None:
    """An integer type spelled in C (``unsigned long``, ``short int``,
    ``char``) as clang types it on a 64-bit kernel, plain char signed as on
    x86; None if the spelling is no integer."""
    name = _gcc_int_name(spelling)
    if name is None:
        return None
    size = 1 if "char" in name else 2 if "short" in name else 8 if "long" in name else 4
    return int_type(size, "unsigned" not in name)


class KernelBtf:
    """The types of vmlinux, or of a module (split on vmlinux's)."""

    _loaded: ClassVar[dict[str, KernelBtf]] = {}

    def __init__(self, btf: BtfFile) -> None:
        self.file, self.name = btf, btf.name
        self._modules: dict[str, KernelBtf | None] = {}
        self._records: dict[tuple[int, str], BtfRecord] = {}

    @classmethod
    def load(cls, path: str = VMLINUX) -> KernelBtf:
        """The kernel's BTF, read once per process. Raises
        BtfUnavailableError when the kernel has none."""
        if path not in cls._loaded:
            cls._loaded[path] = cls(BtfFile.read(path))
        return cls._loaded[path]

    @classmethod
    def from_bytes(
        cls, data: bytes, base: KernelBtf | None = None, name: str = "vmlinux"
    ) -> KernelBtf:
        """BTF held in memory (a test's fixture), not cached."""
        return cls(BtfFile(data, base=base.file if base else None, name=name))

    def module(self, name: str) -> KernelBtf | None:
        """A loaded module's BTF; None if it has none."""
        if name not in self._modules:
            path = os.path.join(os.path.dirname(VMLINUX), name)
            found = name != "vmlinux" and "/" not in name and os.path.isfile(path)
            self._modules[name] = KernelBtf(BtfFile.read(path, self.file, name)) if found else None
        return self._modules[name]

    @staticmethod
    def module_names() -> list[str]:
        """The modules that have BTF (/sys/kernel/btf/*), loaded or not yet read."""
        try:
            return sorted(n for n in os.listdir(os.path.dirname(VMLINUX)) if n != "vmlinux")
        except OSError:
            return []

    def _raw(self, type_id: int) -> TypeRecord:
        return self.file.record(type_id)

    def _items(self, raw: TypeRecord, fmt: str, count: int | None = None) -> list[tuple]:
        return self.file.items(raw, fmt, count)

    def _unqualified(self, type_id: int) -> int:
        while (raw := self._raw(type_id)).kind in _QUALIFIERS:
            type_id = raw.size_or_type
        return type_id

    def resolve(self, type_id: int) -> int:
        """The type under its typedefs and const/volatile/restrict/type tags."""
        while (raw := self._raw(type_id)).kind in _QUALIFIERS or raw.kind is BtfKind.TYPEDEF:
            type_id = raw.size_or_type
        return type_id

    # -- bpftrace's view of a type ------------------------------------------------

    def _record_name(self, type_id: int, scope: str = "") -> str:
        raw = self._raw(type_id)
        if raw.name:
            union = raw.kind is BtfKind.UNION or (raw.kind is BtfKind.FWD and raw.kflag)
            return f"{'union' if union else 'struct'} {raw.name}"
        # bpftrace says 'struct restart_block::(unnamed at <header>:255:3)';
        # the id makes ours resolvable by struct() again.
        return f"{scope}::(unnamed #{type_id})" if scope else f"(unnamed #{type_id})"

    def sized_type(self, type_id: int, scope: str = "") -> SizedType:
        """The type as bpftrace 0.17 types it; ``scope`` is the record an
        anonymous nested struct belongs to, for its name."""
        type_id = self._unqualified(type_id)
        raw = self._raw(type_id)
        if raw.kind is BtfKind.TYPEDEF:
            target = self._unqualified(raw.size_or_type)
            inner = self._raw(target)
            if inner.kind in _RECORDS and not inner.name:  # typedef struct {...} atomic_t;
                return SizedType(Kind.RECORD, inner.size_or_type, struct=raw.name)
            return self.sized_type(target, scope)
        if raw.kind is BtfKind.INT:
            # Signed as BTF says: pahole gives plain char no sign, and bpftrace
            # 0.17 calls a kernel struct's char 'unsigned int8' too.
            (encoding,) = struct.unpack_from(self.file.endian + "I", raw.data, raw.pos)
            return int_type(raw.size_or_type, bool(encoding >> 24 & 1))
        if raw.kind in (BtfKind.ENUM, BtfKind.ENUM64):
            # bpftrace 0.17 makes every enum unsigned, even one with negative values.
            return int_type(raw.size_or_type, False)
        if raw.kind in _RECORDS or raw.kind is BtfKind.FWD:
            size = 0 if raw.kind is BtfKind.FWD else raw.size_or_type
            return SizedType(Kind.RECORD, size, struct=self._record_name(type_id, scope))
        if raw.kind is BtfKind.PTR:
            return SizedType(Kind.POINTER, 8, elem=self.sized_type(raw.size_or_type, scope))
        if raw.kind is BtfKind.ARRAY:
            elem_id, _, count = self._items(raw, "III", 1)[0]
            elem = self._raw(self.resolve(elem_id))
            if elem.kind is BtfKind.INT and elem.name == "char":  # as bpftrace: a string
                return SizedType(Kind.STRING, count)
            elem_type = self.sized_type(elem_id, scope)
            return SizedType(Kind.ARRAY, elem_type.size * count, elem=elem_type, count=count)
        return none_type()  # void, function prototypes (so 'none *'), floats

    def record(self, type_id: int, name: str = "") -> BtfRecord | None:
        """The struct or union ``type_id`` (through typedefs), its anonymous
        members' members lifted into it; None if it is no record."""
        key = (type_id, name)
        if key not in self._records:
            target = self.resolve(type_id)
            raw = self._raw(target)
            if raw.kind not in _RECORDS:
                return None
            name = name or self._record_name(target)
            members = tuple(self._members(raw, 0, name))
            union = raw.kind is BtfKind.UNION
            self._records[key] = BtfRecord(name, target, raw.size_or_type, union, members)
        return self._records[key]

    def _members(self, raw: TypeRecord, base_bits: int, scope: str) -> Iterator[BtfMember]:
        for name_off, type_id, offset in self._items(raw, "III"):
            # With kind_flag, the top byte of the offset is a bitfield's size.
            bits, bit_offset = (offset >> 24, offset & 0xFFFFFF) if raw.kflag else (0, offset)
            if not name_off:
                inner = self._raw(self._unqualified(type_id))
                if inner.kind in _RECORDS:
                    yield from self._members(inner, base_bits + bit_offset, scope)
                continue
            if not raw.kflag and (target := self._raw(self.resolve(type_id))).kind is BtfKind.INT:
                # Old-style bitfields live in the INT: its bit offset and width.
                (encoding,) = struct.unpack_from(self.file.endian + "I", target.data, target.pos)
                width, shift = encoding & 0xFF, encoding >> 16 & 0xFF
                if width != target.size_or_type * 8:
                    bits, bit_offset = width, bit_offset + shift
            member_type = self.sized_type(type_id, scope)
            yield BtfMember(
                self.file.str_at(name_off), type_id, base_bits + bit_offset, bits, member_type
            )

    def struct(self, name: str) -> BtfRecord | None:
        """``struct X``, ``union X``, a bare ``X`` naming either, or a
        typedef of one (``atomic_t``); None if the kernel has none."""
        name = " ".join(name.split())
        if unnamed := _UNNAMED.search(name):
            return self.record(int(unnamed[1]), name)
        keyword, _, tag = name.partition(" ")
        if keyword in ("struct", "union") and tag:
            wanted = BtfKind.STRUCT if keyword == "struct" else BtfKind.UNION
            ids = self.file.ids_named(tag, frozenset({wanted}))
            return self.record(ids[0]) if ids else None
        for type_id in self.file.ids_named(name, frozenset(_RECORDS | {BtfKind.TYPEDEF})):
            record_type = self.sized_type(type_id)
            if record_type.kind is Kind.RECORD:
                return self.record(type_id, record_type.struct)
        return None

    # -- functions, enumerators, sizes ------------------------------------------

    def func(self, name: str) -> BtfFunc | None:
        """A kernel function's parameters and return type, from vmlinux or
        else a loaded module's BTF; None if none has it."""
        func_id = self.file.func_id(name)
        if func_id is None:
            modules = self.module_names() if self.file.base is None else []
            found = (module.func(name) for m in modules if (module := self.module(m)))
            return next((f for f in found if f is not None), None)
        proto = self._raw(self._raw(func_id).size_or_type)
        params: list[BtfParam] = []
        slot, variadic = 0, False
        for name_off, type_id in self._items(proto, "II"):
            if type_id == 0:  # a trailing '...'
                variadic = True
                continue
            arg = self.file.str_at(name_off) if name_off else f"arg{len(params)}"
            sized = self.sized_type(type_id)
            params.append(BtfParam(arg, type_id, sized, self.c_type(type_id), slot))
            # fentry's context is an array of u64; a struct by value takes several.
            slot += max(1, -(-(self.sizeof(type_id) or 8) // 8))
        returns = proto.size_or_type
        return BtfFunc(name, self.name, tuple(params), self.sized_type(returns),
                       self.c_type(returns), variadic)  # fmt: skip

    def funcs(self, pattern: str = "*", max_params: int | None = None) -> list[str]:
        """This object's function names matching a shell glob, sorted; with
        ``max_params``, only those taking no more (bpftrace lists only
        functions of up to 6 parameters, the most fentry passes)."""
        names = fnmatch.filter(self.file.func_names, pattern)
        if max_params is None:
            return names
        protos = (self._raw(self._raw(self.file.func_id(n) or 0).size_or_type) for n in names)
        return [n for n, proto in zip(names, protos) if proto.vlen <= max_params]

    def enum_value(self, name: str) -> int | None:
        """An enumerator's value (``TASK_COMM_LEN``, ``BPF_ANY``), or None."""
        return self.file.enum_value(name)

    def type_id(self, spelling: str) -> int | None:
        """The id of a type spelled in C (``struct file``, ``unsigned long``,
        ``pid_t``, ``enum pid_type``), qualifiers ignored; None if unknown.
        Pointers have no id of their own: ask for their target."""
        words = [w for w in spelling.split() if w not in ("const", "volatile", "restrict")]
        if words[:1] in (["struct"], ["union"], ["enum"]) and len(words) == 2:
            kinds = {"struct": {BtfKind.STRUCT}, "union": {BtfKind.UNION}}
            wanted = kinds.get(words[0], {BtfKind.ENUM, BtfKind.ENUM64})
            ids = self.file.ids_named(words[1], frozenset(wanted))
        else:
            text = " ".join(words)
            text = _gcc_int_name(text) or {"bool": "_Bool"}.get(text, text)
            if text == "void":
                return 0
            named = {BtfKind.INT, BtfKind.TYPEDEF, BtfKind.FLOAT}
            ids = self.file.ids_named(text, frozenset(named))
        return ids[0] if ids else None

    def sizeof(self, type_: int | str) -> int | None:
        """Bytes of a type given by id or C spelling; None if unknown."""
        if isinstance(type_, str) and type_.rstrip().endswith("*"):
            return 8
        type_id = self.type_id(type_) if isinstance(type_, str) else type_
        return (self.sized_type(type_id).size or None) if type_id is not None else None

    def named_type(self, spelling: str) -> SizedType | None:
        """A type spelled in C, as bpftrace types it; None if unknown."""
        if spelling.rstrip().endswith("*"):
            target = self.named_type(spelling.rstrip()[:-1])
            return SizedType(Kind.POINTER, 8, elem=target) if target is not None else None
        type_id = self.type_id(spelling)
        return self.sized_type(type_id) if type_id is not None else None

    # -- C's spelling -------------------------------------------------------------

    def c_type(self, type_id: int) -> str:
        """The type spelled for a cast in C against vmlinux.h: typedef names
        kept (``loff_t``), qualifiers dropped, function pointers ``void *``."""
        raw = self._raw(self._unqualified(type_id))
        if raw.kind is BtfKind.PTR:
            target = self._unqualified(raw.size_or_type)
            if self._raw(target).kind is BtfKind.FUNC_PROTO:
                return "void *"
            inner = self.c_type(target)
            return inner + ("*" if inner.endswith("*") else " *")
        if raw.kind is BtfKind.TYPEDEF:
            # A module's own typedefs are not in vmlinux.h: spell what they stand for.
            in_vmlinux = self.file.base is None or not self.file.owns(self._unqualified(type_id))
            return raw.name if in_vmlinux else self.c_type(raw.size_or_type)
        if raw.kind in (BtfKind.INT, BtfKind.FLOAT, BtfKind.VOID):
            return raw.name
        if raw.kind in (BtfKind.ENUM, BtfKind.ENUM64):
            if raw.name:
                return f"enum {raw.name}"
            unsigned = "" if raw.kflag else "unsigned "
            return unsigned + {1: "char", 2: "short", 4: "int"}.get(raw.size_or_type, "long long")
        if raw.kind is BtfKind.ARRAY:  # decays to a pointer in a cast
            return self.c_type(self._items(raw, "III", 1)[0][0]) + " *"
        if raw.name and (raw.kind in _RECORDS or raw.kind is BtfKind.FWD):
            return self._record_name(self._unqualified(type_id))
        return "void *"  # an anonymous struct by value, or a bare prototype: no spelling
