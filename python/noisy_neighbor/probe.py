"""The run-queue latency probe as analysts use it: a context manager that loads
the BPF probe on enter and unloads it on exit, and hands back per-cgroup
histograms with their cgroup paths."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

import numpy as np

from . import _native
from .cgroupfs import CgroupTree
from .errors import ProbeStateError
from .events import EventBatch
from .histogram import CgroupHistogram
from .report import NoisyNeighborReport, Thresholds, from_histograms
from .resolver import CgroupResolver
from .throttling import ThrottleBaseline

__all__ = ["METHODS", "RunqProbe"]

#: Ways of measuring a wait; see ``src/bpf/runq.bpf.c``.
METHODS = ("auto", "sched_info", "wakeup")


class RunqProbe:
    """Per-cgroup CPU run-queue latency, measured in the kernel.

    >>> with RunqProbe() as probe:          # doctest: +SKIP
    ...     time.sleep(5)
    ...     hists = probe.histograms()      # {cgroup_id: CgroupHistogram}

    Args:
        method: ``"sched_info"`` reads the kernel's own enqueue stamps (exact,
            same meaning as /proc/<pid>/schedstat); ``"wakeup"`` times wakeups
            itself (for kernels without CONFIG_SCHED_INFO); ``"auto"`` picks the
            first the kernel supports.
        cgroups: only record waits of tasks in these cgroups (paths relative to
            the cgroup2 mount, or ids) and of the cgroups below them that exist
            when the probe starts. The filter tests the task that waited.
        max_cgroups: capacity of the kernel's per-cgroup map; waits of cgroups
            beyond it are counted in ``stats()["failed_updates"]``.
        stream: also stream one event per wait (see :meth:`batches`); the
            histograms keep counting every wait either way.
        ring_buffer_bytes: size of the kernel's event ring buffer (a power of
            two, at least 4096). Records that find it full are counted in
            ``stats()["dropped_ringbuf"]``.
        batch_events, batch_ms: a batch is shipped to Python when it holds
            ``batch_events`` events or its first event is ``batch_ms`` old.
        rate_limit_ns: stream at most one event per cgroup per CPU per this
            many ns (Netflix's sampling); skipped events are counted in
            ``stats()["rate_limited"]``. None: every event.
        pending_batches: batches kept waiting for a slow reader before new
            ones are dropped (counted in ``stats()["dropped_batches"]``).
        attribution: also split each cgroup's waits by the cgroup that had the
            CPU and count switch-outs by cause, for :meth:`report`.
    """

    def __init__(
        self,
        *,
        method: str = "auto",
        cgroups: Iterable[str | int] | None = None,
        max_cgroups: int = 10240,
        stream: bool = False,
        ring_buffer_bytes: int = 16 << 20,
        batch_events: int = 65536,
        batch_ms: float = 100.0,
        rate_limit_ns: int | None = None,
        pending_batches: int = 16,
        attribution: bool = False,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
        if max_cgroups < 1:
            raise ValueError(f"max_cgroups must be at least 1, got {max_cgroups}")
        self.requested_method = method
        self.max_cgroups = max_cgroups
        self.stream = stream
        self.attribution = attribution
        self._throttle_baseline: ThrottleBaseline | None = None
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self._stream_options = dict(
            ring_buffer_bytes=ring_buffer_bytes,
            batch_events=batch_events,
            batch_ms=batch_ms,
            rate_limit_ns=rate_limit_ns,
            pending_batches=pending_batches,
        )
        self._cgroups = None if cgroups is None else list(cgroups)
        self._tree: CgroupTree | None = None
        self._resolver: CgroupResolver | None = None
        self._core: _native.RunqCore | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> RunqProbe:
        """Loads and attaches the probe. Raises a :class:`NoisyNeighborError`
        subclass that says what to do when that is not possible."""
        if self._core is not None and self._core.running:
            raise ProbeStateError("the probe is already running; stop() it first")
        self._tree = CgroupTree()
        self._resolver = CgroupResolver(self._tree)
        cgroup_ids = None if self._cgroups is None else self._filter_ids(self._cgroups)
        system_slice_id = 0
        if self.attribution:
            self._tree.rescan()
            paths = self._tree.known_paths()
            system_slice_id = next((i for i, p in paths.items() if p == "/system.slice"), 0)
            self._throttle_baseline = ThrottleBaseline(paths, self._tree.mount)
        self._core = _native.RunqCore(
            self.requested_method,
            cgroup_ids,
            self.max_cgroups,
            stream=self.stream,
            attribution=self.attribution,
            system_slice_id=system_slice_id,
            **self._stream_options,  # type: ignore[arg-type]
        )
        self._started_at = time.monotonic()
        self._stopped_at = None
        return self

    def stop(self) -> None:
        """Detaches and unloads the probe. Readings stay available."""
        if self._core is not None and self._core.running:
            self._core.stop()
            self._stopped_at = time.monotonic()

    def __enter__(self) -> RunqProbe:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._core is not None and self._core.running

    @property
    def method(self) -> str:
        """The method in use once started (``"sched_info"`` or ``"wakeup"``)."""
        return self._core.method if self._core is not None else self.requested_method

    # -- readings ----------------------------------------------------------

    def _started_core(self) -> _native.RunqCore:
        if self._core is None:
            raise ProbeStateError("the probe was never started: use `with RunqProbe() as p:`")
        return self._core

    def histograms(self) -> dict[int, CgroupHistogram]:
        """Every cgroup's histogram since start, keyed by cgroup id."""
        core = self._started_core()
        assert self._tree is not None and self._resolver is not None
        return {
            cgroup_id: CgroupHistogram(
                cgroup_id=cgroup_id,
                slots=slots,
                count=count,
                total_ns=total_ns,
                max_ns=max_ns,
                comm=comm,
                cgroup_name=cgroup_name,
                cgroup_path=self._tree.path(cgroup_id),
                info=self._resolver.resolve(cgroup_id, name_hint=cgroup_name),
            )
            for cgroup_id, slots, count, total_ns, max_ns, comm, cgroup_name in core.histograms()
        }

    def batches(self, timeout: float | None = None) -> Iterator[EventBatch]:
        """Yields batches of events until the probe stops (then every batch
        made before the stop is still yielded). With ``timeout``, also ends when
        no batch arrives for that many seconds. Ctrl-C ends the loop and stops
        the probe. Waiting releases the GIL."""
        core = self._started_core()
        if not core.streaming:
            raise ProbeStateError("this probe does not stream: create it with stream=True")
        try:
            while True:
                columns = core.next_batch(timeout)
                if columns is not None:
                    yield EventBatch(columns)
                elif core.stream_finished or timeout is not None:
                    return
        except KeyboardInterrupt:
            self.stop()

    def latency(self, cgroup: Any) -> CgroupHistogram:
        """The histogram so far of one cgroup, given as an object with an ``id``
        (a :class:`~noisy_neighbor.testing.TestCgroup`), an id, or a path. A
        cgroup that never waited gets an empty histogram (percentiles NaN)."""
        self._started_core()  # raises if never started
        assert self._tree is not None and self._resolver is not None
        if isinstance(cgroup, str):
            cgroup_id = self._tree.id_of(cgroup)
        else:
            cgroup_id = int(getattr(cgroup, "id", cgroup))
        hist = self.histograms().get(cgroup_id)
        if hist is not None:
            return hist
        return CgroupHistogram(
            cgroup_id=cgroup_id,
            slots=np.zeros(64, dtype=np.uint64),
            count=0,
            total_ns=0,
            max_ns=0,
            cgroup_path=self._tree.path(cgroup_id),
            info=self._resolver.resolve(cgroup_id),
        )

    def live(self, interval: float = 1.0, count: int | None = None, rows: int = 10) -> None:
        """Shows the busiest cgroups of each interval, updated in place in a
        notebook, until ``count`` updates or Ctrl-C (with ``attribution=True``,
        with culprits and verdicts). A probe not yet running is started for
        the view and stopped after it."""
        from .live import live_view

        live_view(self, interval=interval, count=count, rows=rows)

    def blame(self) -> list[tuple[int, int, int, int]]:
        """Raw attribution so far: ``(cgroup_id, culprit_cgroup_id, waits,
        wait_ns)`` (culprit 0: the CPU was idle; 2**64-1: not split). Needs
        ``attribution=True``."""
        return self._started_core().blame()

    def switch_outs(self) -> list[tuple[int, int, int, int, int]]:
        """Raw switch-outs so far: ``(cgroup_id, voluntary, preempted_same,
        preempted_other, preempted_system)``. Needs ``attribution=True``."""
        return self._started_core().switch_outs()

    @property
    def cgroup_tree(self) -> CgroupTree:
        """The id-to-path map this probe names cgroups with."""
        if self._tree is None:
            raise ProbeStateError("the probe was never started: use `with RunqProbe() as p:`")
        return self._tree

    def report(self, thresholds: Thresholds | None = None) -> NoisyNeighborReport:
        """Who made whom wait so far, with a verdict per cgroup (needs
        ``attribution=True``); see :mod:`noisy_neighbor.report` for the rules."""
        core = self._started_core()
        if not self.attribution or self._throttle_baseline is None:
            raise ProbeStateError(
                "this probe does not attribute waits: create it with attribution=True"
            )
        assert self._started_at is not None
        end = self._stopped_at or time.monotonic()
        return from_histograms(
            self.histograms(),
            core.blame(),
            core.switch_outs(),
            self._throttle_baseline.since_start,
            window_s=end - self._started_at,
            thresholds=thresholds,
        )

    def stats(self) -> dict[str, int]:
        """Counters of everything measured and everything lost.

        Kernel side (summed over CPUs): ``switches`` seen, ``waits`` measured,
        waits ``filtered`` out, ``failed_updates`` (a map was full),
        ``failed_task_storage`` (per-task state could not be created),
        ``events`` streamed, ``dropped_ringbuf`` (ring buffer full),
        ``rate_limited``. User side: ``batches`` and ``batched_events`` handed
        to Python, ``dropped_batches`` and ``dropped_batch_events`` (Python was
        not keeping up), ``malformed_records``, ``ring_errors``.

        Every streamed wait is accounted for: ``events + dropped_ringbuf +
        rate_limited == waits - filtered`` while streaming, and ``events ==
        batched_events + dropped_batch_events`` once the probe has stopped.
        """
        return dict(self._started_core().counters())

    def _filter_ids(self, cgroups: list[str | int]) -> list[int]:
        assert self._tree is not None
        ids: list[int] = []
        for cgroup in cgroups:
            if isinstance(cgroup, int):
                ids.append(cgroup)
            else:
                ids.extend(self._tree.subtree_ids(cgroup))
        return sorted(set(ids))

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RunqProbe method={self.method!r} {state}>"
