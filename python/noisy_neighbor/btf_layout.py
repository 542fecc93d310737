"""BTF layouts, as the Rust core describes them, turned into numpy: a dtype per
layout, columns from raw records, and bytes from Python values for globals.

A layout is ``{"type_name", "size", "fields"}``; each field is a tuple
``(name, offset, kind, size, shape, enum_values)`` with ``kind`` one of
``int``, ``uint``, ``bool``, ``char``, ``float``, ``enum``, ``enum_signed``,
``bytes``. A field named ``""`` is the whole type (a ``u32`` key, say).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import PluginGlobalError

__all__ = ["Layout", "decode", "dtype_of", "pack_global"]

Layout = dict[str, Any]


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
    names, formats, offsets = [], [], []
    for field_name, offset, kind, size, shape, _values in layout["fields"]:
        names.append(field_name or name)
        formats.append(_format(kind, size, shape))
        offsets.append(offset)
    return np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": layout["size"]}
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


def decode(raw: np.ndarray, layout: Layout, name: str = "value") -> dict[str, np.ndarray]:
    """Splits records (uint8, back to back) into one contiguous column per
    field: char arrays become str, arrays become 2-D (n, len) columns."""
    size = layout["size"]
    raw = np.ascontiguousarray(raw, dtype=np.uint8)
    if size == 0 or raw.size % size:
        raise ValueError(f"{raw.size} bytes are not whole {layout['type_name']} records")
    records = raw.view(dtype_of(layout, name))
    columns: dict[str, np.ndarray] = {}
    for field_name, _offset, kind, _size, shape, _values in layout["fields"]:
        key = field_name or name
        column = records[key]
        if kind == "char" and shape:
            columns[key] = _c_strings(column)
        else:
            columns[key] = np.ascontiguousarray(column)
    return columns


def _describe(field: tuple, type_name: str) -> str:
    _name, _offset, kind, size, shape, _values = field
    if kind == "char" and shape:
        return f"char[{shape[-1]}] string"
    if shape:
        return f"{kind}{size * 8}[{']['.join(map(str, shape))}] array"
    if kind in ("enum", "enum_signed"):
        return type_name
    return {"bool": "bool", "float": f"float{size * 8}"}.get(
        kind, f"{kind}{size * 8} ({type_name})"
    )


def _int_bytes(value: Any, size: int, signed: bool, what: str) -> bytes:
    low, high = (
        (-(1 << (size * 8 - 1)), (1 << (size * 8 - 1)) - 1)
        if signed
        else (0, (1 << (size * 8)) - 1)
    )
    if not low <= value <= high:
        raise PluginGlobalError(f"{what}: {value} does not fit (range {low}..{high})")
    return int(value).to_bytes(size, "little" if np.little_endian else "big", signed=signed)


def pack_global(name: str, layout: Layout, value: Any) -> bytes:
    """The bytes of global ``name`` holding ``value``, checked against its BTF
    type; raises :class:`PluginGlobalError` saying what would fit."""
    fields = layout["fields"]
    if len(fields) != 1 or fields[0][0] != "":
        raise PluginGlobalError(
            f"global {name!r} is a {layout['type_name']}: only scalars, enums, char arrays "
            "and integer arrays can be set from Python; set it in the C source"
        )
    field = fields[0]
    _fname, _offset, kind, size, shape, values = field
    described = _describe(field, layout["type_name"])
    what = f"global {name!r} is a {described}"
    is_bool = isinstance(value, (bool, np.bool_))
    is_int = isinstance(value, (int, np.integer)) and not is_bool

    if kind == "char" and shape and len(shape) == 1:
        data = value.encode() if isinstance(value, str) else value
        if not isinstance(data, (bytes, bytearray)):
            raise PluginGlobalError(f"{what}: pass a str, got {type(value).__name__}")
        if len(data) >= shape[0]:
            raise PluginGlobalError(f"{what}: {len(data)} bytes leave no room for the NUL")
        return bytes(data).ljust(shape[0], b"\0")
    if shape:
        if kind not in ("int", "uint") or len(shape) != 1:
            raise PluginGlobalError(f"{what}: set it in the C source")
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise PluginGlobalError(f"{what}: pass a list of at most {shape[0]} ints")
        items = list(value)
        if len(items) > shape[0] or not all(isinstance(v, (int, np.integer)) for v in items):
            raise PluginGlobalError(f"{what}: pass a list of at most {shape[0]} ints")
        padded = items + [0] * (shape[0] - len(items))
        return b"".join(_int_bytes(v, size, kind == "int", what) for v in padded)
    if kind == "bool":
        if is_bool or (is_int and value in (0, 1)):
            return _int_bytes(int(value), size, False, what)
        raise PluginGlobalError(f"{what}: pass True or False, got {value!r}")
    if kind in ("int", "uint"):
        if not is_int:
            raise PluginGlobalError(f"{what}: pass an int, got {value!r} ({type(value).__name__})")
        return _int_bytes(value, size, kind == "int", what)
    if kind in ("enum", "enum_signed"):
        names = dict(values or [])
        if isinstance(value, str):
            if value not in names:
                raise PluginGlobalError(f"{what}: {value!r} is not one of {', '.join(names)}")
            value = names[value]
        elif not is_int:
            raise PluginGlobalError(f"{what}: pass one of {', '.join(names)} or an int")
        return _int_bytes(value, size, kind == "enum_signed", what)
    if kind == "float":
        if not (is_int or isinstance(value, (float, np.floating))):
            raise PluginGlobalError(f"{what}: pass a number, got {value!r}")
        return np.array(value, dtype=f"=f{size}").tobytes()
    raise PluginGlobalError(f"{what}: set it in the C source")
