"""Type stubs of the Rust core (``noisy_neighbor._native``), checked against the
built module by ``mypy.stubtest`` in the test suite."""

from typing import Any, final

import numpy as np
import numpy.typing as npt
from typing_extensions import Self

__all__ = ["PluginCore", "RunqCore", "__version__", "inspect_object"]
__version__: str

@final
class RunqCore:
    """Loads, attaches and reads the run-queue latency probe."""

    def __new__(
        cls,
        method: str = "auto",
        cgroup_ids: list[int] | None = None,
        max_cgroups: int = 10240,
        stream: bool = False,
        ring_buffer_bytes: int = ...,
        batch_events: int = 65536,
        batch_ms: float = 100.0,
        rate_limit_ns: int | None = None,
        pending_batches: int = 16,
        synthetic: bool = False,
        attribution: bool = False,
        system_slice_id: int = 0,
    ) -> Self: ...
    @property
    def method(self) -> str: ...
    @property
    def running(self) -> bool: ...
    @property
    def streaming(self) -> bool: ...
    @property
    def stream_finished(self) -> bool: ...
    def stop(self) -> None: ...
    def next_batch(self, timeout: float | None = None) -> dict[str, npt.NDArray[Any]] | None: ...
    def histograms(
        self,
    ) -> list[tuple[int, npt.NDArray[np.uint64], int, int, int, str, str]]: ...
    def synthetic_burst(self, count: int) -> None: ...
    def blame(self) -> list[tuple[int, int, int, int]]: ...
    def switch_outs(self) -> list[tuple[int, int, int, int, int]]: ...
    def counters(self) -> dict[str, int]: ...

def inspect_object(path: str, records: dict[str, str] | None = None) -> dict[str, Any]:
    """Describes a BPF object without loading it: programs, maps, globals."""

@final
class PluginCore:
    """A loaded and attached plugin (a BPF object run by the host)."""

    def __new__(
        cls,
        path: str,
        patches: list[tuple[str, int, bytes]] = ...,
        programs: list[str] | None = None,
        rings: list[tuple[str, int | None]] = ...,
        batch_events: int = 65536,
        batch_ms: float = 100.0,
        pending_batches: int = 16,
        perf_hz: int = 99,
        max_entries: list[tuple[str, int]] = ...,
    ) -> Self: ...
    @property
    def running(self) -> bool: ...
    def stop(self) -> None: ...
    def ring_finished(self, map: str) -> bool: ...
    def next_batch(
        self, map: str, timeout: float | None = None
    ) -> npt.NDArray[np.uint8] | None: ...
    def read_map(
        self, name: str
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], int, int]: ...
    def run_program(self, name: str, ctx: bytes = ...) -> int: ...
    def read_section(self, section: str) -> npt.NDArray[np.uint8]: ...
    def counters(self) -> dict[str, dict[str, int]]: ...
