"""The kernel's own account of what our BPF programs cost: run time and run
count per program, which the kernel keeps only while
``kernel.bpf_stats_enabled`` is 1 (it costs two clock reads per run, so it is
off by default and the agent never turns it on).

Read from the agent's own program descriptors: ``/proc/self/fdinfo`` has
``run_time_ns`` and ``run_cnt``; the program's name comes from the kernel
with ``BPF_OBJ_GET_INFO_BY_FD`` (the name sits at offset 64 of ``struct
bpf_prog_info``, stable UAPI since Linux 4.15). Anything unexpected gives no
figures rather than an error: this is a nicety beside the measurements.
"""

from __future__ import annotations

import ctypes
import os
import platform
from dataclasses import dataclass

__all__ = ["ProgramRunTime", "program_run_times", "stats_enabled"]

_SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(platform.machine())
_BPF_OBJ_GET_INFO_BY_FD = 15
_NAME_OFFSET, _NAME_LEN = 64, 16


@dataclass(frozen=True)
class ProgramRunTime:
    name: str
    run_time_ns: int
    run_cnt: int


def stats_enabled() -> bool:
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


class _InfoAttr(ctypes.Structure):
    _fields_ = [
        ("bpf_fd", ctypes.c_uint32),
        ("info_len", ctypes.c_uint32),
        ("info", ctypes.c_uint64),
    ]


def _name(fd: int) -> str | None:
    if _SYS_BPF is None:
        return None
    info = ctypes.create_string_buffer(_NAME_OFFSET + _NAME_LEN)
    attr = _InfoAttr(fd, len(info), ctypes.addressof(info))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(_SYS_BPF, _BPF_OBJ_GET_INFO_BY_FD, ctypes.byref(attr), ctypes.sizeof(attr)):
        return None
    raw = info.raw[_NAME_OFFSET : _NAME_OFFSET + _NAME_LEN]
    return raw.split(b"\0", 1)[0].decode("ascii", "replace") or None


def program_run_times(prefix: str = "nn_") -> list[ProgramRunTime]:
    """Run time and count of this process's BPF programs named ``prefix``*;
    empty while the kernel does not keep them."""
    if not stats_enabled():
        return []
    found: dict[str, ProgramRunTime] = {}
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return []
    for entry in fds:
        try:
            if os.readlink(f"/proc/self/fd/{entry}") != "anon_inode:bpf-prog":
                continue
            with open(f"/proc/self/fdinfo/{entry}") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            name = _name(int(entry))
        except (OSError, ValueError):
            continue  # closed meanwhile, or not what we thought
        if name is None or not name.startswith(prefix):
            continue
        run_time = int(fields.get("run_time_ns", "0").strip() or 0)
        runs = int(fields.get("run_cnt", "0").strip() or 0)
        # A program held twice (a duplicated descriptor) is counted once.
        found[name] = ProgramRunTime(name, run_time, runs)
    return sorted(found.values(), key=lambda p: p.name)
