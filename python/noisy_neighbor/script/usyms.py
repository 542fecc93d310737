"""User-space symbols for ``ustack`` and ``usym()``: a process's executable
mappings (``/proc/<pid>/maps``) and each file's ELF function symbols
(``.symtab``, else ``.dynsym``), read once per file. An address maps to the
file offset in its mapping, then to the ELF virtual address of the segment
holding that offset, then to the function around it: ``readline+21``. A
process gone by the time its stack is printed keeps its addresses."""

from __future__ import annotations

import bisect
import functools
import struct
from dataclasses import dataclass

__all__ = ["UserSymbols"]

_PT_LOAD = 1
_STT_FUNC = 2
_SHT_SYMTAB, _SHT_DYNSYM = 2, 11


@dataclass(frozen=True)
class _Mapping:
    start: int
    end: int
    offset: int
    path: str


@dataclass(frozen=True)
class _Elf:
    #: (file offset, size, virtual address) of each PT_LOAD segment
    segments: tuple[tuple[int, int, int], ...]
    addresses: tuple[int, ...]  # sorted function starts
    ends: tuple[int, ...]
    names: tuple[str, ...]


def _read_elf(path: str) -> _Elf | None:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit ELF only
        return None
    e = "<" if data[5] == 1 else ">"
    phoff, shoff = struct.unpack_from(e + "QQ", data, 0x20)
    phentsize, phnum, shentsize, shnum = struct.unpack_from(e + "HHHH", data, 0x36)
    segments = []
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
            e + "IIQQQQ", data, phoff + i * phentsize
        )
        if p_type == _PT_LOAD:
            segments.append((p_offset, p_filesz, p_vaddr))
    sections = [
        struct.unpack_from(e + "IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)
    ]
    symbols: dict[int, tuple[int, str]] = {}
    for wanted in (_SHT_SYMTAB, _SHT_DYNSYM):
        for sh in sections:
            if sh[1] != wanted:
                continue
            offset, size, link, entsize = sh[4], sh[5], sh[6], sh[9] or 24
            strtab = sections[link][4]
            for at in range(offset, offset + size, entsize):
                name_off, info, _, _, value, sym_size = struct.unpack_from(e + "IBBHQQ", data, at)
                if info & 0xF != _STT_FUNC or not value:
                    continue
                end = data.find(b"\0", strtab + name_off)
                name = data[strtab + name_off : end].decode(errors="replace")
                symbols.setdefault(value, (sym_size, name))
        if symbols:
            break
    ordered = sorted(symbols.items())
    return _Elf(
        tuple(segments),
        tuple(v for v, _ in ordered),
        tuple(v + max(s, 1) for v, (s, _) in ordered),
        tuple(n for _, (_, n) in ordered),
    )


_elf = functools.lru_cache(maxsize=64)(_read_elf)


def _mappings(pid: int) -> list[_Mapping]:
    out = []
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                parts = line.split(maxsplit=5)
                if len(parts) < 6 or "x" not in parts[1] or not parts[5].startswith("/"):
                    continue
                start, end = (int(x, 16) for x in parts[0].split("-"))
                out.append(_Mapping(start, end, int(parts[2], 16), parts[5].strip()))
    except OSError:
        pass
    return out


class UserSymbols:
    """Symbols of the processes seen, each process's mappings read once."""

    def __init__(self) -> None:
        self._maps: dict[int, list[_Mapping]] = {}

    def lookup(self, pid: int, address: int) -> tuple[str, int, str] | None:
        """(function, offset into it, file) for an address in ``pid``."""
        if pid not in self._maps:
            self._maps[pid] = _mappings(pid)
        for mapping in self._maps[pid]:
            if not mapping.start <= address < mapping.end:
                continue
            elf = _elf(mapping.path)
            if elf is None:
                return None
            file_offset = address - mapping.start + mapping.offset
            for seg_offset, seg_size, seg_vaddr in elf.segments:
                if seg_offset <= file_offset < seg_offset + seg_size:
                    vaddr = file_offset - seg_offset + seg_vaddr
                    break
            else:
                return None
            i = bisect.bisect_right(elf.addresses, vaddr) - 1
            if i < 0 or (vaddr >= elf.ends[i] and i + 1 < len(elf.addresses)):
                return None
            return elf.names[i], vaddr - elf.addresses[i], mapping.path
        return None

    def usym(self, pid: int, address: int) -> str:
        """``usym()``'s text: the function's name, or the address in hex."""
        if not address:
            return "0"
        found = self.lookup(pid, address)
        return found[0] if found else f"0x{address:x}"

    def frame(self, pid: int, address: int, perf: bool) -> str:
        """A ``ustack`` frame: ``func+off``, in perf mode ``addr func+off (file)``."""
        found = self.lookup(pid, address)
        if found is None:
            return f"{address:x} [unknown]" if perf else f"0x{address:x}"
        name, offset, path = found
        return f"{address:x} {name}+{offset} ({path})" if perf else f"{name}+{offset}"
