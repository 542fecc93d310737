"""Map entries packed from Python values into the bytes the host writes, for
``map_entries=`` before attach and ``update()``/``delete()`` while running:
keys and values checked against the map's BTF types (scalars, enums,
strings, integer arrays, and structs as dicts or tuples of their fields); a
per-CPU map's value written to every possible CPU, or given one per CPU."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._native import Layout, MapInfo
from ..errors import PluginObjectError
from .cpu_rings import possible_cpus
from .layout import pack_record

__all__ = ["pack_entry", "pack_key", "writable_map"]


def writable_map(plugin: str, maps: Mapping[str, MapInfo], name: str, asked_by: str) -> MapInfo:
    """Map ``name`` of plugin ``plugin``, which must have BTF key and value
    types for its entries to be packed; ``asked_by`` names the option or
    method in the error."""
    info = maps.get(name)
    if info is None or info.key is None or info.value is None:
        raise PluginObjectError(
            f"{asked_by} names {name!r}, which is not a map of {plugin} with BTF key and "
            f"value types (its maps: {', '.join(maps)})"
        )
    return info


def pack_key(map_name: str, layout: Layout, key: Any) -> bytes:
    """A key of map ``map_name``, checked against its BTF type."""
    return pack_record(f"a key of map {map_name!r}", layout, key, PluginObjectError)


def pack_entry(
    info: MapInfo, key: Any, value: Any, *, per_cpu: bool = False
) -> tuple[bytes, bytes]:
    """The key and value bytes of one entry of map ``info``. A per-CPU map
    takes ``value`` for every possible CPU, or with ``per_cpu`` a sequence of
    one value per possible CPU (as :meth:`MapView.to_dict` gives them)."""
    assert info.key is not None and info.value is not None
    what = f"a value of map {info.name!r}"
    key_bytes = pack_key(info.name, info.key, key)
    if not info.per_cpu:
        if per_cpu:
            raise PluginObjectError(
                f"map {info.name!r} is a {info.type} map, one value per key: leave out per_cpu"
            )
        return key_bytes, pack_record(what, info.value, value, PluginObjectError)
    cpus = possible_cpus()
    if not per_cpu:
        return key_bytes, pack_record(what, info.value, value, PluginObjectError) * cpus
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != cpus:
        raise PluginObjectError(
            f"{what} with per_cpu=True is a list of {cpus} values, one per possible CPU; "
            f"got {value!r}"
        )
    return key_bytes, b"".join(
        pack_record(f"{what} (CPU {cpu})", info.value, v, PluginObjectError)
        for cpu, v in enumerate(value)
    )
