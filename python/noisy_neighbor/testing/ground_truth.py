"""The kernel's own account of run-queue waits, as ground truth for the probe:
``/proc/<tid>/schedstat`` per thread, and a window over which the probe's
totals and the kernel's are compared (between two freezes, so both see the
same waits)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..runq.histogram import CgroupHistogram
from ..runq.probe import RunqProbe

__all__ = [
    "SCHED_INFO_TOLERANCE",
    "FreezableCgroup",
    "Schedstat",
    "Window",
    "measure_window",
    "read_schedstat",
]


class FreezableCgroup(Protocol):
    """What a window needs of a cgroup (a :class:`TestCgroup` is one)."""

    @property
    def id(self) -> int: ...
    def threads(self) -> list[int]: ...
    def freeze(self, timeout: float = 10.0) -> None: ...
    def thaw(self, timeout: float = 10.0) -> None: ...


@dataclass(frozen=True)
class Schedstat:
    """``/proc/<tid>/schedstat``: time on CPU, time waiting on a run queue
    (run_delay), and number of times the task got a CPU after waiting (pcount)."""

    cpu_ns: int
    run_delay_ns: int
    pcount: int


def read_schedstat(tid: int) -> Schedstat:
    with open(f"/proc/{tid}/schedstat") as f:
        cpu_ns, run_delay_ns, pcount = (int(v) for v in f.read().split()[:3])
    return Schedstat(cpu_ns, run_delay_ns, pcount)


#: How far the sched_info method's total may be from schedstat's over a
#: window: it reads the very values the kernel adds to run_delay, so only a
#: wait the task-storage bookkeeping cannot see (a migration before the task's
#: first switch-in under the probe) can differ. Measured: 0.0000% (BENCHMARKS.md).
SCHED_INFO_TOLERANCE = 0.005


@dataclass(frozen=True)
class Window:
    """What the probe and the kernel each saw of one cgroup over a window."""

    probe_wait_ns: int
    probe_count: int
    kernel_wait_ns: int
    kernel_pcount: int

    @property
    def relative_error(self) -> float:
        """|probe - kernel| / kernel, of the total wait.

        On an idle machine every wakeup can land on an idle CPU and the kernel
        books zero wait for the whole window: then agreement is exact (0.0) or
        the probe invented waits (inf), never a division by zero."""
        error = abs(self.probe_wait_ns - self.kernel_wait_ns)
        if self.kernel_wait_ns == 0:
            return 0.0 if error == 0 else float("inf")
        return error / self.kernel_wait_ns


def measure_window(
    probe: RunqProbe, cgroups: Sequence[FreezableCgroup], seconds: float
) -> list[Window]:
    """Runs the (frozen or running) cgroups for ``seconds`` between two frozen
    moments, and returns, per cgroup, the probe's and the kernel's accounts.

    A frozen cgroup has no task running or queued, so no wait is half-counted at
    either edge: the probe's histogram and the kernel's run_delay are both read
    when they cannot move, and their differences cover exactly the same waits.
    The cgroups are left frozen.
    """

    def kernel_view() -> dict[int, Schedstat]:
        view = {}
        for cgroup in cgroups:
            stats = [read_schedstat(tid) for tid in cgroup.threads()]
            view[cgroup.id] = Schedstat(
                cpu_ns=sum(s.cpu_ns for s in stats),
                run_delay_ns=sum(s.run_delay_ns for s in stats),
                pcount=sum(s.pcount for s in stats),
            )
        return view

    def snapshot() -> tuple[dict[int, CgroupHistogram], dict[int, Schedstat]]:
        for cgroup in cgroups:
            cgroup.freeze()
        # cgroup.events says "frozen" as soon as each task has committed to
        # stopping, which can be just before its last trip through the
        # scheduler; so read the probe between two equal kernel readings.
        for _ in range(100):
            before = kernel_view()
            hists = probe.histograms()
            if kernel_view() == before:
                return hists, before
            time.sleep(0.01)
        raise TimeoutError("frozen cgroups kept being scheduled")

    hists0, kernel0 = snapshot()
    for cgroup in cgroups:
        cgroup.thaw()
    time.sleep(seconds)
    hists1, kernel1 = snapshot()
    windows = []
    for cgroup in cgroups:
        after, before = hists1.get(cgroup.id), hists0.get(cgroup.id)
        windows.append(
            Window(
                probe_wait_ns=(after.total_ns if after else 0) - (before.total_ns if before else 0),
                probe_count=(after.count if after else 0) - (before.count if before else 0),
                kernel_wait_ns=kernel1[cgroup.id].run_delay_ns - kernel0[cgroup.id].run_delay_ns,
                kernel_pcount=kernel1[cgroup.id].pcount - kernel0[cgroup.id].pcount,
            )
        )
    return windows
