"""Type stubs of the Rust core (``noisy_neighbor._native``), checked against the
built module by ``mypy.stubtest`` in the test suite."""

import os
from typing import final

import numpy as np
import numpy.typing as npt
from typing_extensions import Self

__all__ = [
    "Field",
    "GlobalInfo",
    "HostCore",
    "Layout",
    "MapEntries",
    "MapInfo",
    "ObjectInfo",
    "PerfEvent",
    "ProgramInfo",
    "RingStats",
    "RunqPlan",
    "__version__",
    "inspect_object",
    "runq_object",
    "runq_plan",
]
__version__: str

@final
class Field:
    """One field of a flattened BTF type."""

    def __new__(
        cls,
        name: str,
        offset: int,
        kind: str,
        size: int,
        shape: list[int] = ...,
        enum_values: list[tuple[str, int]] | None = None,
    ) -> Self: ...
    @property
    def name(self) -> str: ...
    @property
    def offset(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def shape(self) -> list[int]: ...
    @property
    def enum_values(self) -> list[tuple[str, int]] | None: ...

@final
class Layout:
    """A BTF type flattened into fields at byte offsets."""

    def __new__(cls, type_name: str, size: int, fields: list[Field]) -> Self: ...
    @property
    def type_name(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def fields(self) -> list[Field]: ...

@final
class ProgramInfo:
    @property
    def name(self) -> str: ...
    @property
    def section(self) -> str: ...
    @property
    def attach(self) -> str: ...
    @property
    def why(self) -> str | None: ...

@final
class MapInfo:
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def per_cpu(self) -> bool: ...
    @property
    def ring_buffer(self) -> bool: ...
    @property
    def key_size(self) -> int: ...
    @property
    def value_size(self) -> int: ...
    @property
    def max_entries(self) -> int: ...
    @property
    def key(self) -> Layout | None: ...
    @property
    def value(self) -> Layout | None: ...
    @property
    def record(self) -> Layout | None: ...

@final
class GlobalInfo:
    @property
    def name(self) -> str: ...
    @property
    def section(self) -> str: ...
    @property
    def offset(self) -> int: ...
    @property
    def layout(self) -> Layout: ...
    @property
    def initial(self) -> bytes | None: ...

@final
class ObjectInfo:
    @property
    def programs(self) -> list[ProgramInfo]: ...
    @property
    def maps(self) -> list[MapInfo]: ...
    @property
    def globals(self) -> list[GlobalInfo]: ...

def inspect_object(
    source: str | os.PathLike[str] | bytes,
    records: dict[str, str] | None = None,
    name: str | None = None,
) -> ObjectInfo:
    """Describes a BPF object (a path, or its bytes) without loading it."""

@final
class MapEntries:
    @property
    def keys(self) -> npt.NDArray[np.uint8]: ...
    @property
    def values(self) -> npt.NDArray[np.uint8]: ...
    @property
    def count(self) -> int: ...
    @property
    def cpus(self) -> int: ...

@final
class RingStats:
    NAMES: list[str]
    @property
    def batches(self) -> int: ...
    @property
    def batched_events(self) -> int: ...
    @property
    def dropped_batches(self) -> int: ...
    @property
    def dropped_batch_events(self) -> int: ...
    @property
    def malformed_records(self) -> int: ...
    @property
    def undecoded_records(self) -> int: ...
    @property
    def ring_errors(self) -> int: ...
    def to_dict(self) -> list[tuple[str, int]]: ...

@final
class PerfEvent:
    """A software or hardware perf event that a ``perf_event`` program runs
    on: sampled at ``frequency`` a second or every ``period`` events (ns for
    the clocks), on every online CPU (``cpus="all"``) or the first one."""

    def __new__(
        cls,
        type: str,
        event: str,
        *,
        frequency: int | None = None,
        period: int | None = None,
        cpus: str = "all",
    ) -> Self: ...
    @property
    def type(self) -> str: ...
    @property
    def event(self) -> str: ...
    @property
    def frequency(self) -> int | None: ...
    @property
    def period(self) -> int | None: ...
    @property
    def cpus(self) -> str: ...

@final
class HostCore:
    """A loaded and attached BPF object (a plugin, or the run-queue probe)."""

    def __new__(
        cls,
        source: str | os.PathLike[str] | bytes,
        name: str | None = None,
        patches: list[tuple[str, int, bytes]] = ...,
        programs: list[str] | None = None,
        rings: list[tuple[str, int | None]] = ...,
        batch_events: int = 65536,
        batch_ms: float = 100.0,
        pending_batches: int = 16,
        perf_hz: int = 99,
        max_entries: list[tuple[str, int]] = ...,
        initial_entries: list[tuple[str, bytes, bytes]] = ...,
        perf_events: list[tuple[str, PerfEvent]] = ...,
        run_before_attach: list[str] = ...,
    ) -> Self: ...
    @property
    def running(self) -> bool: ...
    def stop(self) -> None: ...
    def ring_finished(self, map: str) -> bool: ...
    def next_batch(
        self, map: str, timeout: float | None = None
    ) -> npt.NDArray[np.uint8] | None: ...
    def read_map(self, name: str) -> MapEntries: ...
    def delete_keys(self, name: str, keys: bytes) -> int: ...
    def update_entries(self, name: str, keys: bytes, values: bytes) -> int: ...
    def clear_map(self, name: str) -> int: ...
    def zero_map(self, name: str) -> int: ...
    def run_program(self, name: str, ctx: bytes = ...) -> int: ...
    def read_section(self, section: str) -> npt.NDArray[np.uint8]: ...
    def counters(self) -> list[tuple[str, RingStats]]: ...

@final
class RunqPlan:
    @property
    def method(self) -> str: ...
    @property
    def programs(self) -> list[str]: ...
    @property
    def rcu_kfuncs(self) -> bool: ...

def runq_object() -> bytes:
    """The compiled run-queue probe (src/bpf/runq.bpf.c)."""

def runq_plan(method: str) -> RunqPlan:
    """Which programs measure waits by ``method`` on this kernel."""
