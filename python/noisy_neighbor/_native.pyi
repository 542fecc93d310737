"""Type stubs of the Rust core (``noisy_neighbor._native``), checked against the
built module by ``mypy.stubtest`` in the test suite."""

from typing import Any, final

import numpy as np
import numpy.typing as npt
from typing_extensions import Self

__all__ = ["RunqCore", "__version__"]
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
