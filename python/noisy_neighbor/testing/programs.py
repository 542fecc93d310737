"""Which of our BPF programs the kernel holds: after a test, an agent's exit
or a crash, none may remain (``bpftool prog`` is the kernel's own list)."""

from __future__ import annotations

import json
import subprocess
import time

__all__ = ["our_programs", "programs_left"]

#: Every program of ours is named with this prefix (see src/bpf/).
PREFIX = "nn_"


def our_programs() -> list[str]:
    """Names of loaded BPF programs that are ours, from ``bpftool prog``."""
    listed = subprocess.run(
        ["bpftool", "prog", "show", "--json"], check=True, capture_output=True, text=True
    ).stdout
    return [p["name"] for p in json.loads(listed) if p.get("name", "").startswith(PREFIX)]


def programs_left(timeout: float = 5.0) -> list[str]:
    """Our programs still loaded once ``timeout`` seconds have passed, or
    none sooner. A process that exits frees its programs a moment later
    (the kernel releases them after an RCU grace period), so a check right
    after another process's exit polls."""
    deadline = time.monotonic() + timeout
    while (left := our_programs()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left
