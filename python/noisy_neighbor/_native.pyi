"""Type stubs of the Rust core (``noisy_neighbor._native``)."""

import numpy as np
import numpy.typing as npt

__version__: str

class RunqCore:
    """Loads, attaches and reads the run-queue latency probe."""

    def __init__(
        self,
        method: str = "auto",
        cgroup_ids: list[int] | None = None,
        max_cgroups: int = 10240,
    ) -> None: ...
    @property
    def method(self) -> str: ...
    @property
    def running(self) -> bool: ...
    def stop(self) -> None: ...
    def histograms(
        self,
    ) -> list[tuple[int, npt.NDArray[np.uint64], int, int, int, str, str]]: ...
    def counters(self) -> dict[str, int]: ...
