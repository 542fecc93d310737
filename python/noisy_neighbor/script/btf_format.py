"""The BTF binary format (the kernel's Documentation/bpf/btf.rst and
include/uapi/linux/btf.h): the header, the type records, split BTF, and an
index of the records that is cached on disk. :mod:`.btf` gives the records
their meaning for bpftrace.

One walk over vmlinux's ~126,000 type records costs ~90 ms in Python and a
script must compile and attach within seconds, so the walk runs once per
kernel: each type's record offset, kind and name offset are cached on disk,
keyed by the file's size and mtime and the kernel release, and a record is
decoded only when asked for. A name is found at C speed: ``bytes.find`` in
the string section gives its offset, then in the table of name offsets, the
ids that carry it."""

from __future__ import annotations

import bisect
import enum
import marshal
import os
import struct
import tempfile
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from ..errors import BtfUnavailableError

__all__ = ["BtfFile", "BtfKind", "TypeRecord"]

_CACHE_FORMAT = 2
_MAGIC = 0xEB9F


class BtfKind(enum.IntEnum):
    """BTF_KIND_* of include/uapi/linux/btf.h; 0 stands for void."""

    VOID = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


# Bytes after the 12-byte btf_type header, by kind: fixed, and per vlen item.
_EXTRA = (0, 4, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 4, 0, 0)
_PER_ITEM = (0, 0, 0, 0, 12, 12, 8, 0, 0, 0, 0, 0, 0, 8, 0, 12, 0, 0, 0, 12)
_ENUM_ITEM = {BtfKind.ENUM: 8, BtfKind.ENUM64: 12}


class TypeRecord(NamedTuple):
    """One type's btf_type header, decoded; ``size_or_type`` is a size or a
    type id depending on the kind, as in the kernel's struct."""

    kind: BtfKind
    name: str
    vlen: int
    kflag: bool
    size_or_type: int
    data: bytes  # the BTF object holding the record (vmlinux or a module)
    pos: int  # where the items after the header start


class _Index(NamedTuple):
    """One walk's result, per type (local index): record offset, name offset
    and kind; and the FUNC names, sorted and newline-joined, with the (first)
    id of each."""

    offsets: array
    name_offs: array
    kinds: bytes
    func_names: str
    func_ids: array


def _walk(data: bytes, start: int, end: int, endian: str, name_of: Callable[[int], str]) -> _Index:
    offsets, name_offs, kinds = array("I"), array("I"), bytearray()
    unpack = struct.Struct(endian + "III").unpack_from
    funcs: dict[str, int] = {}
    pos = start
    while pos < end:
        name_off, info, _ = unpack(data, pos)
        kind = (info >> 24) & 0x1F
        if kind >= len(_EXTRA):
            raise BtfUnavailableError(
                f"BTF type kind {kind} (at byte {pos}) is newer than this reader: "
                "upgrade noisy-neighbor"
            )
        offsets.append(pos)
        name_offs.append(name_off)
        kinds.append(kind)
        if kind == BtfKind.FUNC:
            funcs.setdefault(name_of(name_off), len(offsets) - 1)
        pos += 12 + _EXTRA[kind] + _PER_ITEM[kind] * (info & 0xFFFF)
    names = sorted(funcs)
    ids = array("I", (funcs[n] for n in names))  # local indexes, made ids by the caller
    return _Index(offsets, name_offs, bytes(kinds), "\n".join(names), ids)


def _cache_dir() -> Path:
    if os.environ.get("NN_CACHE_DIR"):
        return Path(os.environ["NN_CACHE_DIR"]) / "btf"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "noisy-neighbor" / "btf"


def _cached_index(key: tuple, build: Callable[[], _Index]) -> _Index:
    """The walk's result from the disk cache, else built and saved by an
    atomic rename (a concurrent run never reads half a file). Any trouble
    with the cache (no home, a corrupt file) only means walking again."""
    path = _cache_dir() / f"{key[0].strip('/').replace('/', '_')}.idx"
    try:
        stored_key, offsets, name_offs, kinds, funcs, func_ids = marshal.loads(path.read_bytes())
        if stored_key == key:
            return _Index(
                array("I", offsets), array("I", name_offs), kinds, funcs, array("I", func_ids)
            )
    except (OSError, ValueError, EOFError, TypeError):
        pass
    index = build()
    blob = (key, index.offsets.tobytes(), index.name_offs.tobytes(), index.kinds,
            index.func_names, index.func_ids.tobytes())  # fmt: skip
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
            tmp.write(marshal.dumps(blob))
        os.replace(tmp.name, path)
    except OSError:
        pass
    return index


class BtfFile:
    """One BTF object: vmlinux, or a module's split BTF, whose type ids and
    string offsets continue its base's."""

    first_id: int
    _str_base: int
    _index: _Index

    def __init__(
        self,
        data: bytes,
        *,
        base: BtfFile | None = None,
        name: str = "vmlinux",
        cache_key: tuple | None = None,
    ) -> None:
        endian = "<" if data[:2] == b"\x9f\xeb" else ">"
        if len(data) < 24 or struct.unpack_from(endian + "H", data)[0] != _MAGIC:
            raise BtfUnavailableError(f"{name} is not BTF (no magic {_MAGIC:#x} at its start)")
        hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(endian + "5I", data, 4)
        self.name, self.base, self.endian, self._data = name, base, endian, data
        self._str_start, self._str_end = hdr_len + str_off, hdr_len + str_off + str_len
        self._type_start, self._type_end = hdr_len + type_off, hdr_len + type_off + type_len
        self.first_id = base.first_id + len(base._index.kinds) if base else 0
        self._str_base = base._str_base + base._str_end - base._str_start if base else 0

        def build() -> _Index:
            index = _walk(data, self._type_start, self._type_end, endian, self.str_at)
            func_ids = array("I", (self.first_id + i + (base is None) for i in index.func_ids))
            if base is not None:
                return index._replace(func_ids=func_ids)
            # Type id 0 is void, which has no record.
            zero = array("I", [0])
            return _Index(zero + index.offsets, zero + index.name_offs, b"\0" + index.kinds,
                          index.func_names, func_ids)  # fmt: skip

        self._index = _cached_index(cache_key, build) if cache_key else build()
        self._names_raw = self._index.name_offs.tobytes()
        self._func_names: list[str] | None = None

    @classmethod
    def read(cls, path: str, base: BtfFile | None = None, name: str = "vmlinux") -> BtfFile:
        """A BTF file, its index from the disk cache when it is current."""
        try:
            data = Path(path).read_bytes()
            stat = os.stat(path)
        except OSError as err:
            raise BtfUnavailableError(
                f"cannot read the kernel's BTF at {path} ({err.strerror}): it needs a kernel "
                "built with CONFIG_DEBUG_INFO_BTF=y (5.8 or later), read as root"
            ) from None
        key = (path, _CACHE_FORMAT, stat.st_size, stat.st_mtime_ns, os.uname().release)
        return cls(data, base=base, name=name, cache_key=key)

    @property
    def func_names(self) -> list[str]:
        """This object's own FUNC names, sorted, without duplicates."""
        if self._func_names is None:
            text = self._index.func_names
            self._func_names = text.split("\n") if text else []
        return self._func_names

    def func_id(self, name: str) -> int | None:
        """The id of this object's (first) FUNC called ``name``, or None."""
        names = self.func_names
        at = bisect.bisect_left(names, name)
        return self._index.func_ids[at] if at < len(names) and names[at] == name else None

    def owns(self, type_id: int) -> bool:
        return type_id >= self.first_id

    def str_at(self, off: int) -> str:
        if off < self._str_base and self.base is not None:
            return self.base.str_at(off)
        start = self._str_start + off - self._str_base
        return self._data[start : self._data.index(b"\0", start)].decode("utf-8", "replace")

    def record(self, type_id: int) -> TypeRecord:
        btf = self
        while type_id < btf.first_id and btf.base is not None:
            btf = btf.base
        local = type_id - btf.first_id
        if not 0 <= local < len(btf._index.kinds):
            raise KeyError(f"no BTF type {type_id} in {self.name}")
        kind = BtfKind(btf._index.kinds[local])
        if kind is BtfKind.VOID:
            return TypeRecord(kind, "void", 0, False, 0, btf._data, 0)
        pos = btf._index.offsets[local]
        name_off, info, size_or_type = struct.unpack_from(btf.endian + "III", btf._data, pos)
        name = btf.str_at(name_off) if name_off else ""
        return TypeRecord(kind, name, info & 0xFFFF, info >> 31 == 1, size_or_type, btf._data,
                          pos + 12)  # fmt: skip

    def items(self, record: TypeRecord, fmt: str, count: int | None = None) -> list[tuple]:
        """The items after a record's header: members, params, enumerators,
        an array's (type, index type, count)."""
        end = record.pos + struct.calcsize(fmt) * (record.vlen if count is None else count)
        return list(struct.iter_unpack(self.endian + fmt, record.data[record.pos : end]))

    def _string_offsets(self, name: str) -> Iterator[int]:
        """Where ``name`` is in this object's own string section."""
        needle, end = b"\0" + name.encode() + b"\0", self._str_end
        if self._data.startswith(needle[1:], self._str_start):  # split BTF may not start with ""
            yield self._str_base
        pos = self._data.find(needle, self._str_start, end)
        while pos >= 0:
            yield pos + 1 - self._str_start + self._str_base
            pos = self._data.find(needle, pos + 1, end)

    def ids_named(self, name: str, kinds: frozenset[BtfKind]) -> list[int]:
        """The ids of the types of these kinds called ``name``, the base's first."""
        found = self.base.ids_named(name, kinds) if self.base is not None else []
        for off in self._string_offsets(name):
            packed = array("I", [off]).tobytes()
            hit = self._names_raw.find(packed)
            while hit >= 0:
                if hit % 4 == 0 and self._index.kinds[hit // 4] in kinds:
                    found.append(self.first_id + hit // 4)
                hit = self._names_raw.find(packed, hit + 1)
        return found

    def enum_value(self, name: str) -> int | None:
        """An enumerator's value, found where its name's offset sits at the
        start of an item of an ENUM or ENUM64 record; None if none has it."""
        if self.base is not None and (value := self.base.enum_value(name)) is not None:
            return value
        offsets, kinds = self._index.offsets, self._index.kinds
        for off in self._string_offsets(name):
            packed = array("I", [off]).tobytes()
            hit = self._data.find(packed, self._type_start, self._type_end)
            while hit >= 0:
                local = bisect.bisect_right(offsets, hit) - 1
                start, step = offsets[local] + 12, _ENUM_ITEM.get(BtfKind(kinds[local]))
                if step and hit >= start and (hit - start) % step == 0:
                    signed = self.record(self.first_id + local).kflag
                    if step == 8:
                        value = struct.unpack_from(self.endian + "I", self._data, hit + 4)[0]
                        return value - (1 << 32) if signed and value >> 31 else value
                    low, high = struct.unpack_from(self.endian + "II", self._data, hit + 4)
                    value = high << 32 | low
                    return value - (1 << 64) if signed and value >> 63 else value
                hit = self._data.find(packed, hit + 1, self._type_end)
        return None
