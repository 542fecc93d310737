"""Kernel symbols from /proc/kallsyms, for ``ksym()``, ``kaddr()`` and the
frames of ``kstack``, resolved the way bpftrace 0.17 (through bcc) does:

- an address takes the nearest symbol at or below it, with no upper bound
  (bcc keeps no sizes), among the text symbols: bcc skips data symbols
  (types b, B, d, D, r, R), so an address in rodata names the code before it;
- a frame reads ``name+offset``, the offset in decimal (``vfs_write+668``);
  an address below every symbol is printed in hex (``0x3039``), and 0 as
  ``0`` (C++'s way of printing a null pointer);
- ``kaddr(name)`` is the first line of that name in vmlinux (module symbols
  are not found), data symbols included.

Several names can share an address (``__x64_sys_rt_sigreturn`` and
``__ia32_sys_rt_sigreturn``): bcc's unstable sort picks one at random; we
take the one listed last, which is bcc's pick for the syscall aliases.

Reading /proc/kallsyms costs ~40 ms (the kernel formats ~120,000 lines) and
sorting it ~80 ms more, so each is done once, when first needed: ``kaddr``
at compile time needs only the text, ``ksym`` when output is printed."""

from __future__ import annotations

import bisect
import re
from array import array
from functools import cache

__all__ = ["KALLSYMS", "kaddr", "ksym", "ksym_offset", "ksym_text"]

KALLSYMS = "/proc/kallsyms"
# A text symbol's line: 16 hex digits, the type, the name (a module's name
# follows after a tab). Data symbol types are left out, as bcc does.
_TEXT_SYMBOL = re.compile(rb"\n(\w{16}) [^bBdDrR\n] (\S+)")


@cache
def _kallsyms() -> bytes:
    """The file's text, with a newline before its first line for the
    patterns; empty if it cannot be read."""
    try:
        with open(KALLSYMS, "rb") as symbols:
            return b"\n" + symbols.read()
    except OSError:
        return b""


@cache
def _sorted_text_symbols() -> tuple[array, list[str]]:
    found = _TEXT_SYMBOL.findall(_kallsyms())
    # 16 hex digits are 8 big-endian bytes: convert them all at C speed.
    addresses = array("Q", bytes.fromhex(b"".join(a for a, _ in found).decode()))
    if array("Q", [1]).tobytes()[0] == 1:
        addresses.byteswap()
    # A stable sort keeps the listing's order among names at one address.
    order = sorted(range(len(found)), key=addresses.__getitem__)
    keep = [i for i in order if addresses[i]]  # zeros: kallsyms hides addresses from non-root
    names = b"\n".join([found[i][1] for i in keep]).decode(errors="replace").split("\n")
    return array("Q", (addresses[i] for i in keep)), names


def _lookup(address: int) -> tuple[str, int] | None:
    addresses, names = _sorted_text_symbols()
    index = bisect.bisect_right(addresses, address) - 1
    if index < 0 or address <= 0:
        return None
    return names[index], address - addresses[index]


def ksym(address: int) -> str | None:
    """The name of the kernel function holding ``address``; None if no
    symbol is at or below it (or kallsyms shows no addresses: not root)."""
    found = _lookup(address)
    return found[0] if found else None


def ksym_offset(address: int) -> str | None:
    """``name+offset`` (decimal), as a kstack frame reads; None if unknown."""
    found = _lookup(address)
    return f"{found[0]}+{found[1]}" if found else None


def ksym_text(address: int, offset: bool = False) -> str:
    """What bpftrace prints for an address: its symbol (with ``+offset``
    for stack frames), else the address in hex, ``0`` for null."""
    name = ksym_offset(address) if offset else ksym(address)
    if name is not None:
        return name
    return f"{address:#x}" if address else "0"


def kaddr(name: str) -> int | None:
    """The address of vmlinux's symbol ``name`` (the first line listing it);
    None if vmlinux has none or kallsyms hides addresses (not root)."""
    text, needle = _kallsyms(), b" " + name.encode() + b"\n"
    pos = text.find(needle)
    while pos >= 0:
        # A whole line: newline, 16 hex digits, a space, the type, the needle.
        if text[pos - 19 : pos - 18] == b"\n" and text[pos - 2 : pos - 1] == b" ":
            return int(text[pos - 18 : pos - 2], 16) or None
        pos = text.find(needle, pos + 1)
    return None
