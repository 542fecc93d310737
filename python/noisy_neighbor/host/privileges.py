"""Whether this process may load BPF: the one question that decides between
loading a probe here and asking the node agent (``nn.collect(via="auto")``),
and whether real-kernel tests run."""

from __future__ import annotations

import os

__all__ = ["bpf_unavailable_reason"]

# Capability numbers from linux/capability.h.
_CAP_SYS_ADMIN, _CAP_PERFMON, _CAP_BPF = 21, 38, 39


def bpf_unavailable_reason() -> str | None:
    """Why this process cannot load BPF and create cgroups, or None if it can."""
    with open("/proc/self/status") as f:
        caps = next((int(line.split()[1], 16) for line in f if line.startswith("CapEff:")), 0)

    def has(cap: int) -> bool:
        return bool(caps & (1 << cap))

    if not (has(_CAP_SYS_ADMIN) or (has(_CAP_BPF) and has(_CAP_PERFMON))):
        return "needs root or CAP_BPF+CAP_PERFMON"
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "the kernel has no BTF (/sys/kernel/btf/vmlinux)"
    return None
