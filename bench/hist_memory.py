"""Kernel memory per histogram map entry, as the kernel allocates it: creates a
hash map like the probe's (16-byte key, BPF_F_NO_PREALLOC) with the value size
of `struct runq_hist`, fills it with N entries, and reads the growth of the
kernel's slab (/proc/meminfo "Slab"). Also for other value sizes, to show
where the kernel's 4 KiB slab ends.

    sudo .venv/bin/python bench/hist_memory.py --entries 3000 --value-size 4800
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import sys

from noisy_neighbor.runq import wire

SYS_BPF = 321  # x86_64
BPF_MAP_CREATE, BPF_MAP_UPDATE_ELEM = 0, 2
BPF_MAP_TYPE_HASH, BPF_F_NO_PREALLOC = 1, 1

_libc = ctypes.CDLL(None, use_errno=True)


class _CreateAttr(ctypes.Structure):
    _fields_ = [
        ("map_type", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("rest", ctypes.c_byte * 100),
    ]


class _ElemAttr(ctypes.Structure):
    _fields_ = [
        ("map_fd", ctypes.c_uint32),
        ("pad", ctypes.c_uint32),
        ("key", ctypes.c_uint64),
        ("value", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    ]


def _bpf(cmd: int, attr: ctypes.Structure) -> int:
    ret = _libc.syscall(SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def _slab_kib() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Slab:"):
                return int(line.split()[1])
    raise RuntimeError("no Slab line in /proc/meminfo")


def kib_per_entry(value_size: int, entries: int, keep: list[int]) -> float:
    """Slab growth per entry of a new map of ``entries`` entries. The map
    stays (its fd goes to ``keep``): freed entries would go back to the slab
    caches, where the next map would reuse them without growing the slab."""
    fd = _bpf(BPF_MAP_CREATE, _CreateAttr(BPF_MAP_TYPE_HASH, 16, value_size, entries, 1))
    keep.append(fd)
    value = ctypes.create_string_buffer(value_size)
    before = _slab_kib()
    for i in range(entries):
        key = ctypes.create_string_buffer(i.to_bytes(16, "little"), 16)
        _bpf(
            BPF_MAP_UPDATE_ELEM, _ElemAttr(fd, 0, ctypes.addressof(key), ctypes.addressof(value), 0)
        )
    return (_slab_kib() - before) / entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--value-size", type=int, action="append", help="besides runq_hist's")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: creating BPF maps needs it")
    sizes = {"struct runq_hist": wire.HIST_VALUE_SIZE}
    sizes.update({f"{n} bytes": n for n in args.value_size or ()})
    print("| value | bytes | KiB per entry (median) |")
    print("|---|---:|---:|")
    keep: list[int] = []
    try:
        for name, size in sizes.items():
            kib = statistics.median(
                kib_per_entry(size, args.entries, keep) for _ in range(args.rounds)
            )
            print(f"| {name} | {size} | {kib:.2f} |")
    finally:
        for fd in keep:
            os.close(fd)


if __name__ == "__main__":
    main()
