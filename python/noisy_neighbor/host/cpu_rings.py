"""Streams of one ring buffer per CPU (see ``src/host/cpu_rings.rs``): an
object declares its stream as an ``ARRAY_OF_MAPS`` of ring buffers, the host
creates one ring per possible CPU, and ``max_entries`` of the stream sizes
each CPU's ring. Here: how many rings that makes, and how to split a memory
budget between them."""

from __future__ import annotations

__all__ = ["possible_cpus", "ring_bytes_per_cpu"]

_POSSIBLE = "/sys/devices/system/cpu/possible"
#: The smallest ring buffer the kernel takes: one page.
MIN_RING_BYTES = 4096


def possible_cpus(text: str | None = None) -> int:
    """CPUs the kernel may ever bring online (``0-127``, or ranges and single
    CPUs separated by commas): one ring each."""
    if text is None:
        with open(_POSSIBLE) as f:
            text = f.read()
    count = 0
    for part in text.strip().split(","):
        first, _, last = part.partition("-")
        count = max(count, int(last or first) + 1)
    return count


def ring_bytes_per_cpu(total: int, cpus: int) -> int:
    """Each CPU's ring when ``total`` bytes are split between ``cpus`` rings:
    a power of two (the kernel's rule), at least a page."""
    share = max(total // max(cpus, 1), MIN_RING_BYTES)
    return 1 << (share.bit_length() - 1)
