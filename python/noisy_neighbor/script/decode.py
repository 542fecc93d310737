"""Decoded columns (one numpy column per field of a record or map entry, as
the host's BTF layouts give them) turned into the values the output formats
print: integers, strings, tuples, and the values only user space can name
(kernel symbols, user names, probe names, stacks, addresses, timestamps)."""

from __future__ import annotations

import os
import pwd
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .output_text import Strftime
from .types import Kind, SizedType
from .usyms import UserSymbols

__all__ = ["Resolver", "column_values"]


@dataclass
class Resolver:
    """What turns kernel-side numbers into names: the probe names the
    program was built with, its strftime() formats, its stack maps (read on
    demand), and kernel symbols."""

    probe_names: list[str] = field(default_factory=list)
    strftime_formats: list[str] = field(default_factory=list)
    #: (user?, depth) -> {stack id: [addresses]}
    read_stacks: Callable[[bool, int], Mapping[int, list[int]]] | None = None
    _stacks: dict[tuple[bool, int], Mapping[int, list[int]]] = field(default_factory=dict)
    _users: dict[int, str] = field(default_factory=dict)
    #: CLOCK_REALTIME minus CLOCK_MONOTONIC (what bpf_ktime_get_ns counts)
    epoch_offset_ns: int = field(default_factory=lambda: time.time_ns() - time.monotonic_ns())
    user_symbols: UserSymbols = field(default_factory=UserSymbols)

    def forget_stacks(self) -> None:
        self._stacks.clear()

    def ksym(self, address: int) -> str:
        from .kallsyms import ksym_text

        return ksym_text(address)

    def kstack(self, stack_id: int, ty: SizedType) -> list[str] | None:
        addresses = self._stack(False, ty.count, stack_id)
        if addresses is None:
            return None
        from .kallsyms import ksym_offset

        perf = ty.params[:1] == (1,)
        frames = []
        for address in addresses:
            name = ksym_offset(address) or f"0x{address:x}"
            frames.append(f"{address:x} {name}" if perf else name)
        return frames

    def ustack(self, stack_id: int, pid: int, ty: SizedType) -> list[str] | None:
        addresses = self._stack(True, ty.count, stack_id)
        if addresses is None:
            return None
        perf = ty.params[:1] == (1,)
        return [self.user_symbols.frame(pid, address, perf) for address in addresses]

    def _stack(self, user: bool, depth: int, stack_id: int) -> list[int] | None:
        if stack_id < 0 or self.read_stacks is None:
            return None
        key = (user, depth)
        if key not in self._stacks or stack_id not in self._stacks[key]:
            self._stacks[key] = self.read_stacks(user, depth)
        return self._stacks[key].get(stack_id)

    def username(self, uid: int) -> str:
        if uid not in self._users:
            try:
                self._users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                self._users[uid] = str(uid)
        return self._users[uid]

    def probe(self, index: int) -> str:
        return self.probe_names[index] if 0 <= index < len(self.probe_names) else f"probe{index}"

    def timestamp(self, ns: int, ty: SizedType) -> Strftime:
        fmt = self.strftime_formats[ty.params[0]] if ty.params else "%H:%M:%S"
        return Strftime(fmt, ns + self.epoch_offset_ns)


def _inet(family: int, raw: bytes) -> str:
    """As inet_ntop writes it (``::ffff:127.0.0.1`` for a mapped IPv4)."""
    if family == 2:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    if family == 10:
        return socket.inet_ntop(socket.AF_INET6, raw[:16])
    return ""


def _cgroup_path(cgroup_id: int) -> str:
    from ..names import CgroupTree

    try:
        paths = CgroupTree().paths([cgroup_id])
    except Exception:
        return str(cgroup_id)
    path = paths.get(cgroup_id) if isinstance(paths, dict) else None
    return f"unified:{path}" if path else str(cgroup_id)


def column_values(
    ty: SizedType, columns: Mapping[str, np.ndarray], name: str, resolver: Resolver
) -> list[Any]:
    """The values of field ``name`` (of type ``ty``) in every row."""
    kind = ty.kind
    if kind is Kind.TUPLE:
        parts = [
            column_values(f, columns, _sub(name, f"e{i}"), resolver)
            for i, f in enumerate(ty.fields)
        ]
        return [tuple(row) for row in zip(*parts)] if parts else []
    if kind is Kind.BUFFER:
        lengths = columns[_sub(name, "length")].tolist()
        data = columns[_sub(name, "data")]
        return [bytes(np.asarray(d).tobytes())[: min(n, ty.size)] for d, n in zip(data, lengths)]
    if kind is Kind.INET:
        families = columns[_sub(name, "family")].tolist()
        raw = columns[_sub(name, "addr")]
        return [_inet(f, np.asarray(a).tobytes()) for f, a in zip(families, raw)]
    if kind is Kind.MAC:
        raw = columns[_sub(name, "addr")]
        return [":".join(f"{b:02X}" for b in np.asarray(a).tobytes()) for a in raw]
    if kind in (Kind.USYM, Kind.USTACK):
        addresses = columns[_sub(name, "address")].tolist()
        pids = columns[_sub(name, "pid")].tolist()
        if kind is Kind.USYM:
            return [resolver.user_symbols.usym(p, a) for a, p in zip(addresses, pids)]
        return [resolver.ustack(_signed(a), p, ty) for a, p in zip(addresses, pids)]
    column = columns[name]
    if kind is Kind.STRING:
        return [str(v) for v in column.tolist()]
    if kind is Kind.INT:
        # the type's own width and sign, in one numpy cast (a 64-bit slot
        # holding an int32 reads as the int32)
        width = ty.size if ty.size in (1, 2, 4, 8) else 8
        dtype = f"{'i' if ty.signed else 'u'}{width}"
        return (
            np.asarray(column)
            .astype(np.int64 if column.dtype.kind == "i" else np.uint64)
            .astype(dtype)
            .tolist()
        )
    values = column.tolist()
    if kind is Kind.KSYM:
        return [resolver.ksym(v) for v in values]
    if kind is Kind.KSTACK:
        return [resolver.kstack(_signed(v), ty) for v in values]
    if kind is Kind.USERNAME:
        return [resolver.username(v) for v in values]
    if kind is Kind.PROBE:
        return [resolver.probe(v) for v in values]
    if kind is Kind.TIMESTAMP:
        return [resolver.timestamp(v, ty) for v in values]
    if kind is Kind.CGROUP_PATH:
        return [_cgroup_path(v) for v in values]
    if kind is Kind.STRERROR:
        return [os.strerror(v) for v in values]
    if kind is Kind.RECORD:
        # a struct is kept by its address, not its bytes: shown without fields
        return [{} for _ in values]
    return values


def _sub(name: str, member: str) -> str:
    """A struct member's column: ``a0.e1`` in a record, ``e1`` in a map's
    struct-held value (whose members are the columns)."""
    return f"{name}.{member}" if name else member


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value
