"""BTF layouts, as the Rust core describes them, turned into numpy: a dtype per
layout, columns from raw records, and bytes from Python values for globals
and map entries.

A :class:`Layout` has ``type_name``, ``size`` and ``fields``; each
:class:`Field` has ``name``, ``offset``, ``kind`` (one of ``int``, ``uint``,
``bool``, ``char``, ``float``, ``enum``, ``enum_signed``, ``bytes``), ``size``
(per element), ``shape`` and ``enum_values``. A field named ``""`` is the
whole type (a ``u32`` key, say).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._native import Field, Layout
from ..errors import PluginGlobalError

__all__ = [
    "Field",
    "Layout",
    "RecordDecoder",
    "decode",
    "dtype_of",
    "pack_global",
    "pack_record",
    "pack_rows",
    "pack_value",
]


def _element_format(kind: str, size: int) -> str:
    if kind in ("int", "enum_signed"):
        return f"=i{size}"
    if kind in ("uint", "enum"):
        return f"=u{size}"
    if kind == "bool":
        return "?" if size == 1 else f"=u{size}"
    if kind == "char":
        return "S1"
    if kind == "float":
        return f"=f{size}"
    return "V1"


def _format(kind: str, size: int, shape: Sequence[int]) -> Any:
    shape = tuple(shape)
    if kind in ("char", "bytes") and shape:
        # A char or byte array is one string / blob per row (per inner row).
        base = f"S{shape[-1]}" if kind == "char" else f"V{shape[-1] * size}"
        return (base, shape[:-1]) if len(shape) > 1 else base
    element = _element_format(kind, size)
    return (element, shape) if shape else element


def dtype_of(layout: Layout, name: str = "value") -> np.dtype:
    """A structured dtype with one field per layout field (``""`` -> ``name``),
    at the BTF offsets and with the type's full size, so it views raw records
    directly."""
    fields = layout.fields
    return np.dtype(
        {
            "names": [f.name or name for f in fields],
            "formats": [_format(f.kind, f.size, f.shape) for f in fields],
            "offsets": [f.offset for f in fields],
            "itemsize": layout.size,
        }
    )


def _c_strings(column: np.ndarray) -> np.ndarray:
    """Fixed char arrays to str, each cut at its first NUL (C semantics: bytes
    after the terminator are leftovers, not text)."""
    width = column.dtype.itemsize
    if width == 0 or column.size == 0:  # a flexible `char data[]` tail
        return np.full(column.shape, "", dtype="U1")
    raw = np.ascontiguousarray(column).view(np.uint8).reshape(-1, width)
    after_nul = np.cumsum(raw == 0, axis=1) > 0
    cleaned = np.where(after_nul, 0, raw).astype(np.uint8)
    strings = cleaned.view(f"S{width}").reshape(column.shape)
    return np.char.decode(strings, "utf-8", errors="replace")


class RecordDecoder:
    """Splits records of one layout into columns; the dtype is built once, so
    a stream of batches pays for it once."""

    def __init__(self, layout: Layout, name: str = "value") -> None:
        self.layout = layout
        self.dtype = dtype_of(layout, name)
        # (column, is a C string) per field
        self._columns = [
            (f.name or name, f.kind == "char" and bool(f.shape)) for f in layout.fields
        ]

    def __call__(self, raw: np.ndarray) -> dict[str, np.ndarray]:
        """One contiguous column per field: char arrays become str, arrays
        become 2-D (n, len) columns."""
        size = self.layout.size
        raw = np.ascontiguousarray(raw, dtype=np.uint8)
        if size == 0 or raw.size % size:
            raise ValueError(f"{raw.size} bytes are not whole {self.layout.type_name} records")
        records = raw.view(self.dtype)
        return {
            key: _c_strings(records[key]) if is_string else np.ascontiguousarray(records[key])
            for key, is_string in self._columns
        }


def decode(raw: np.ndarray, layout: Layout, name: str = "value") -> dict[str, np.ndarray]:
    """Splits records (uint8, back to back) into one contiguous column per
    field: char arrays become str, arrays become 2-D (n, len) columns."""
    return RecordDecoder(layout, name)(raw)


def _describe(field: Field, type_name: str) -> str:
    kind, size, shape = field.kind, field.size, field.shape
    if kind == "char" and shape:
        return f"char[{shape[-1]}] string"
    if shape:
        return f"{kind}{size * 8}[{']['.join(map(str, shape))}] array"
    if kind in ("enum", "enum_signed"):
        return type_name
    return {"bool": "bool", "float": f"float{size * 8}"}.get(
        kind, f"{kind}{size * 8} ({type_name})"
    )


def _int_bytes(
    value: Any, size: int, signed: bool, what: str, error: type[Exception] = PluginGlobalError
) -> bytes:
    low, high = (
        (-(1 << (size * 8 - 1)), (1 << (size * 8 - 1)) - 1)
        if signed
        else (0, (1 << (size * 8)) - 1)
    )
    if not low <= value <= high:
        raise error(f"{what}: {value} does not fit (range {low}..{high})")
    return int(value).to_bytes(size, "little" if np.little_endian else "big", signed=signed)


def pack_rows(layout: Layout, columns: Mapping[str, Sequence[Any]], name: str = "key") -> bytes:
    """Records of ``layout`` back to back, from one sequence of values per
    field (a struct map key, say); ``name`` names a single unnamed field."""
    dtype = dtype_of(layout, name)
    assert dtype.names is not None
    missing = set(dtype.names) - set(columns)
    if missing:
        raise ValueError(f"{layout.type_name} needs the fields {sorted(missing)}")
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"fields of {layout.type_name} given with lengths {sorted(lengths)}")
    records = np.zeros(lengths.pop() if lengths else 0, dtype=dtype)
    for field_name in dtype.names:
        records[field_name] = columns[field_name]
    return records.tobytes()


def pack_global(name: str, layout: Layout, value: Any) -> bytes:
    """The bytes of global ``name`` holding ``value``, checked against its BTF
    type; raises :class:`PluginGlobalError` saying what would fit."""
    return pack_value(f"global {name!r}", layout, value, PluginGlobalError)


def pack_record(what: str, layout: Layout, value: Any, error: type[Exception]) -> bytes:
    """The bytes of ``value`` as type ``layout``: what :func:`pack_value`
    takes, or for a struct a dict of its fields (those left out are zero) or
    a tuple of them in order (as :meth:`MapView.to_dict` gives struct keys),
    each field checked as :func:`pack_value` checks a scalar."""
    fields = layout.fields
    if len(fields) == 1 and fields[0].name == "":
        return pack_value(what, layout, value, error)
    names = [f.name for f in fields]
    if isinstance(value, tuple) and len(value) == len(names):
        value = dict(zip(names, value))
    if not isinstance(value, Mapping):
        raise error(
            f"{what} is a {layout.type_name}: pass a dict of its fields or a tuple of "
            f"them in order ({', '.join(names)}), got {value!r}"
        )
    unknown = sorted(set(value) - set(names))
    if unknown:
        raise error(f"{what} is a {layout.type_name}, which has no fields {unknown}")
    record = bytearray(layout.size)
    for field in fields:
        if field.name not in value:
            continue
        alone = Field("", 0, field.kind, field.size, field.shape, field.enum_values)
        size = field.size * math.prod(field.shape)
        data = pack_value(
            f"{what}, field {field.name!r},",
            Layout(f"{layout.type_name}.{field.name}", size, [alone]),
            value[field.name],
            error,
        )
        record[field.offset : field.offset + len(data)] = data
    return bytes(record)


def pack_value(
    what: str, layout: Layout, value: Any, error: type[Exception] = PluginGlobalError
) -> bytes:
    """The bytes of a scalar, enum, string or integer array of type
    ``layout`` holding ``value`` (``what`` names it in errors); raises
    ``error`` saying what would fit."""
    fields = layout.fields
    if len(fields) != 1 or fields[0].name != "":
        raise error(
            f"{what} is a {layout.type_name}: only scalars, enums, char arrays "
            "and integer arrays can be set from Python; set it in the C source"
        )
    field = fields[0]
    kind, size, shape = field.kind, field.size, field.shape
    what = f"{what} is a {_describe(field, layout.type_name)}"
    is_bool = isinstance(value, (bool, np.bool_))
    is_int = isinstance(value, (int, np.integer)) and not is_bool

    if kind == "char" and shape and len(shape) == 1:
        data = value.encode() if isinstance(value, str) else value
        if not isinstance(data, (bytes, bytearray)):
            raise error(f"{what}: pass a str, got {type(value).__name__}")
        if b"\0" in data:
            raise error(f"{what}: a C string ends at its first NUL; pass one without NUL bytes")
        if len(data) >= shape[0]:
            raise error(f"{what}: {len(data)} bytes leave no room for the NUL")
        return bytes(data).ljust(shape[0], b"\0")
    if shape:
        if kind not in ("int", "uint") or len(shape) != 1:
            raise error(f"{what}: set it in the C source")
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise error(f"{what}: pass a list of at most {shape[0]} ints")
        items = list(value)
        if len(items) > shape[0] or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items
        ):
            raise error(f"{what}: pass a list of at most {shape[0]} ints")
        padded = items + [0] * (shape[0] - len(items))
        return b"".join(_int_bytes(v, size, kind == "int", what, error) for v in padded)
    if kind == "bool":
        if is_bool or (is_int and value in (0, 1)):
            return _int_bytes(int(value), size, False, what, error)
        raise error(f"{what}: pass True or False, got {value!r}")
    if kind in ("int", "uint"):
        if not is_int:
            raise error(f"{what}: pass an int, got {value!r} ({type(value).__name__})")
        return _int_bytes(value, size, kind == "int", what, error)
    if kind in ("enum", "enum_signed"):
        names = dict(field.enum_values or [])
        choices = ", ".join(f"{n} ({v})" for n, v in names.items())
        if isinstance(value, str):
            if value not in names:
                raise error(f"{what}: {value!r} is not one of {choices}")
            value = names[value]
        elif not is_int or int(value) not in names.values():
            raise error(f"{what}: pass one of {choices}, got {value!r}")
        return _int_bytes(value, size, kind == "enum_signed", what, error)
    if kind == "float":
        if not (is_int or isinstance(value, (float, np.floating))):
            raise error(f"{what}: pass a number, got {value!r}")
        return np.array(value, dtype=f"=f{size}").tobytes()
    raise error(f"{what}: set it in the C source")
