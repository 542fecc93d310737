"""The exception hierarchy: every error noisy-neighbor raises on purpose is a
:class:`NoisyNeighborError`, and its message says what to do next."""

from __future__ import annotations

__all__ = [
    "AgentUnavailableError",
    "AttachError",
    "BtfUnavailableError",
    "CgroupNotFoundError",
    "ClangNotFoundError",
    "CollectionFileError",
    "KernelTooOldError",
    "MapAccessError",
    "NoisyNeighborError",
    "PluginCompileError",
    "PluginGlobalError",
    "PluginObjectError",
    "PrivilegeError",
    "ProbeLoadError",
    "ProbeStateError",
    "RingBufferError",
    "ScriptError",
    "UnsupportedSectionError",
]


class NoisyNeighborError(Exception):
    """Base class of every noisy-neighbor error."""


class PrivilegeError(NoisyNeighborError, PermissionError):
    """Loading BPF needs root, or CAP_BPF and CAP_PERFMON."""


class BtfUnavailableError(NoisyNeighborError):
    """The kernel exposes no BTF (/sys/kernel/btf/vmlinux), which CO-RE needs."""


class KernelTooOldError(NoisyNeighborError):
    """The kernel lacks a feature the probe needs (a kfunc, sched_info)."""


class ProbeLoadError(NoisyNeighborError):
    """The kernel (usually the verifier) rejected a BPF program."""


class AttachError(NoisyNeighborError):
    """A BPF program loaded but could not be attached to its hook."""


class MapAccessError(NoisyNeighborError):
    """The kernel refused to read or write a map, or to run a program on
    demand; the message quotes its reason."""


class RingBufferError(NoisyNeighborError):
    """Setting up or reading a ring buffer failed."""


class ProbeStateError(NoisyNeighborError, RuntimeError):
    """A call that needs a started probe was made on one that is not."""


class CgroupNotFoundError(NoisyNeighborError, LookupError):
    """A cgroup given by path or id does not exist under the cgroup2 mount."""


class CollectionFileError(NoisyNeighborError, ValueError):
    """A file given to ``nn.load`` is not a Collection that ``save()`` wrote."""


class PluginObjectError(NoisyNeighborError, ValueError):
    """A plugin file is not a BPF object the host can use (not ELF, no BTF,
    a record type it cannot find)."""


class UnsupportedSectionError(NoisyNeighborError):
    """A plugin program's SEC() names a hook the host cannot attach."""


class PluginGlobalError(NoisyNeighborError, TypeError):
    """A global set from Python does not exist, or its value does not fit the
    variable's BTF type."""


class ClangNotFoundError(NoisyNeighborError, FileNotFoundError):
    """Compiling a plugin from C source needs clang, which is not installed."""


class PluginCompileError(NoisyNeighborError):
    """clang rejected a plugin's C source; the message holds its diagnostics."""


class AgentUnavailableError(NoisyNeighborError, ConnectionError):
    """The node agent's socket cannot serve this client: no agent, a socket
    this user may not use, or an agent of another protocol version."""


class AgentRequestError(NoisyNeighborError):
    """The node agent answered a request with an error (``kind``: why,
    e.g. ``"script"`` for a script that does not compile or load)."""

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


class ScriptError(NoisyNeighborError, ValueError):
    """A bpftrace-language script is wrong: each of ``diagnostics`` says
    where (file, line, column, with the line and a caret) and what, as
    bpftrace says it."""

    def __init__(self, diagnostics: list) -> None:  # list[Diagnostic]
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))
