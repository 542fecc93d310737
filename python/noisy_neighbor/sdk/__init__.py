"""The C SDK for writing BPF programs against this package: the vendored
CO-RE ``vmlinux.h`` and helper headers (``maps.bpf.h``: the
``bpf_map_lookup_or_try_init`` helper; ``bits.bpf.h``: ``log2``/``log2l``),
compatible with those of libbpf-bootstrap that eunomia's examples use.

``bpf/bpf_helpers.h`` and friends come from libbpf's headers (Debian:
``libbpf-dev``).
"""

from __future__ import annotations

import os
import platform

__all__ = ["clang_args", "include_dirs"]

_HERE = os.path.dirname(os.path.abspath(__file__))
# machine() name -> (vendored vmlinux directory, __TARGET_ARCH_ value)
_ARCHES = {"x86_64": ("x86_64", "x86"), "aarch64": ("aarch64", "arm64")}


def _arch() -> tuple[str, str]:
    machine = platform.machine()
    if machine not in _ARCHES:
        raise OSError(f"no vendored vmlinux.h for {machine}: supported are {', '.join(_ARCHES)}")
    return _ARCHES[machine]


def include_dirs() -> list[str]:
    """Directories to pass to clang with -I: the SDK headers and vmlinux.h."""
    return [os.path.join(_HERE, "include"), os.path.join(_HERE, "vmlinux", _arch()[0])]


def clang_args() -> list[str]:
    """clang arguments that build a CO-RE BPF object against the SDK."""
    return [
        "-g",
        "-O2",
        "-target",
        "bpf",
        f"-D__TARGET_ARCH_{_arch()[1]}",
        *(f"-I{d}" for d in include_dirs()),
    ]
