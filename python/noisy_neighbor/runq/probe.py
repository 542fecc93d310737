"""The run-queue latency probe as analysts use it: a context manager that loads
the BPF probe on enter and unloads it on exit, and hands back per-cgroup
histograms with their cgroup paths.

It is the probe host's first plugin: the embedded object is loaded through
:class:`~noisy_neighbor.host.plugin.Plugin`, with ``method`` choosing its
programs, the options as its globals and map sizes, and ``cgroups`` as the
initial entries of its filter map. Its lifecycle is the plugin's."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from .._native import runq_plan
from ..checks import check_int
from ..errors import CgroupNotFoundError, ProbeStateError
from ..host.batches import EventBatch
from ..host.cpu_rings import possible_cpus, ring_bytes_per_cpu
from ..host.lifecycle import Lifecycle
from ..host.plugin import MAX_BATCH_EVENTS, MAX_PENDING_BATCHES, Plugin
from ..names.cgroupfs import CgroupTree
from ..names.resolver import CgroupInfo, CgroupResolver
from . import wire
from .hist_maps import CPU_MAP, HIST_MAPS, SHARED_MAP, HistReading
from .histogram import CgroupHistogram
from .removed import RemovedCgroups
from .throttling import ThrottleBaseline
from .verdicts import NoisyNeighborReport, Thresholds, from_histograms
from .wire import Blame, SwitchOuts

__all__ = ["METHODS", "RunqProbe"]

#: Ways of measuring a wait; see ``src/bpf/runq.bpf.c``.
METHODS = ("auto", "sched_info", "wakeup")
#: Largest max_cgroups. The histogram maps take 4 KiB per entry, as
#: used; the other per-cgroup maps, preallocated, about 0.3 KiB per cgroup.
MAX_CGROUPS = 1 << 20
#: Ring buffer bytes of one streamed wait: the record and the ring's 8-byte
#: header, rounded to 8.
RECORD_BYTES = (wire.EVENT_SIZE + 8 + 7) // 8 * 8


def wakeup_check_mask(ring_buffer_bytes: int) -> int:
    """How often (a power of two minus one, in events per CPU) the probe asks
    whether the reader needs waking: a sixteenth of a quarter ring's events,
    at most every 64 events, so the reader is still woken long before the
    ring fills."""
    quarter_events = ring_buffer_bytes // 4 // RECORD_BYTES
    every = min(64, max(1, quarter_events // 16))
    return (1 << (every.bit_length() - 1)) - 1


class RunqProbe(Lifecycle):
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
        max_cgroups: capacity of the kernel's per-cgroup maps; waits of cgroups
            beyond it are counted in ``stats()["failed_updates"]`` (1 to 2**20).
        max_cpu_hists: capacity of the per-CPU histogram map, one entry per
            cgroup per CPU it waits on (default ``2 * max_cgroups``). Beyond
            it, waits are counted in the cgroup's shared entry with atomic
            adds, which costs more on a busy cgroup spread over many CPUs but
            loses nothing (``stats()["shared_updates"]`` counts them).
        stream: also stream one event per wait (see :meth:`batches`); the
            histograms keep counting every wait either way.
        ring_buffer_bytes: size of the kernel's event ring buffers (a power of
            two from 4096 to 2**30), split evenly between the rings, one per
            possible CPU (each a power of two, at least 4096 bytes). Records
            that find their CPU's ring full are counted in
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
        max_cpu_hists: int | None = None,
        stream: bool = False,
        ring_buffer_bytes: int = 16 << 20,
        batch_events: int = 65536,
        batch_ms: float = 100.0,
        rate_limit_ns: int | None = None,
        pending_batches: int = 16,
        attribution: bool = False,
        filter_capacity: int | None = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
        self.requested_method = method
        self.max_cgroups = check_int("max_cgroups", max_cgroups, 1, MAX_CGROUPS)
        self.max_cpu_hists = (
            2 * self.max_cgroups
            if max_cpu_hists is None
            else check_int("max_cpu_hists", max_cpu_hists, 1, 64 * MAX_CGROUPS)
        )
        ring_buffer_bytes = check_int("ring_buffer_bytes", ring_buffer_bytes, 4096, 1 << 30)
        if ring_buffer_bytes & (ring_buffer_bytes - 1):
            raise ValueError(
                f"ring_buffer_bytes must be a power of two, got {ring_buffer_bytes} (e.g. 16 << 20)"
            )
        if rate_limit_ns is not None:
            check_int("rate_limit_ns", rate_limit_ns, 1, 2**64 - 1)
        self.stream = bool(stream)
        self.attribution = bool(attribution)
        self._batch_events = check_int("batch_events", batch_events, 1, MAX_BATCH_EVENTS)
        self._batch_ms = batch_ms  # its range is checked where batches are made
        self._pending_batches = check_int(
            "pending_batches", pending_batches, 1, MAX_PENDING_BATCHES
        )
        self._ring_buffer_bytes = ring_buffer_bytes
        #: Each CPU's ring (the stream has one ring per possible CPU).
        self._cpu_ring_bytes = ring_bytes_per_cpu(ring_buffer_bytes, possible_cpus())
        self._rate_limit_ns = rate_limit_ns or 0
        if isinstance(cgroups, (str, bytes)):
            raise TypeError(
                f"cgroups takes a list of paths or ids, got the string {cgroups!r}: "
                f"write cgroups=[{cgroups!r}]"
            )
        self._cgroups = None if cgroups is None else list(cgroups)
        #: Room for cgroups added to the filter while running (refilter()).
        self._filter_capacity = (
            None
            if filter_capacity is None
            else check_int("filter_capacity", filter_capacity, 1, MAX_CGROUPS)
        )
        if self._cgroups == []:
            raise ValueError("cgroups=[] would measure nothing: pass None for every cgroup")
        self._throttle_baseline: ThrottleBaseline | None = None
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self._method: str | None = None
        self._tree: CgroupTree | None = None
        self._resolver: CgroupResolver | None = None
        self._plugin: Plugin | None = None
        self._removed = RemovedCgroups()

    # -- lifecycle (the plugin's: see Plugin) ------------------------------------

    def start(self) -> RunqProbe:
        """Loads and attaches the probe. Raises a :class:`NoisyNeighborError`
        subclass that says what to do when that is not possible, and
        :class:`ProbeStateError` if it is already running."""
        if self.running:
            raise ProbeStateError("the probe is already running; stop() it first")
        plan = runq_plan(self.requested_method)
        self._tree = CgroupTree()
        self._resolver = CgroupResolver(self._tree)
        cgroup_ids = None if self._cgroups is None else self._filter_ids(self._cgroups)
        system_slice_id = 0
        if self.attribution:
            self._tree.rescan()
            paths = self._tree.known_paths()
            system_slice_id = next((i for i, p in paths.items() if p == "/system.slice"), 0)
            self._throttle_baseline = ThrottleBaseline(paths, self._tree.mount)
        max_entries = {
            SHARED_MAP: self.max_cgroups,
            CPU_MAP: self.max_cpu_hists,
            "last_event_ns": self.max_cgroups,
            "runq_blame": 4 * self.max_cgroups,  # a few culprits per cgroup
            "switch_outs": self.max_cgroups,
            "cgroup_filter": max(1, len(cgroup_ids or ()), self._filter_capacity or 0),
        }
        if self.stream:
            max_entries[wire.EVENTS_RING] = self._cpu_ring_bytes
        plugin = Plugin(
            wire.OBJECT,
            name=wire.OBJECT_NAME,
            programs=plan.programs,
            rings=[wire.EVENTS_RING] if self.stream else [],
            max_entries=max_entries,
            map_entries={"cgroup_filter": dict.fromkeys(cgroup_ids, 1)} if cgroup_ids else None,
            filter_cgroups=cgroup_ids is not None,
            stream_events=self.stream,
            rate_limit_ns=self._rate_limit_ns,
            # Wake the reader once a quarter of a ring holds unread data:
            # early enough that a burst never fills it between two polls.
            wakeup_bytes=self._cpu_ring_bytes // 4,
            wakeup_check_mask=wakeup_check_mask(self._cpu_ring_bytes),
            attribute_waits=self.attribution,
            use_rcu_kfuncs=plan.rcu_kfuncs,
            system_slice_id=system_slice_id,
            batch_events=self._batch_events,
            batch_ms=self._batch_ms,
            pending_batches=self._pending_batches,
        )
        self._plugin = plugin.start()
        self._removed = RemovedCgroups()
        self._method = plan.method
        self._started_at = time.monotonic()
        self._stopped_at = None
        return self

    @property
    def filtered(self) -> bool:
        """Whether the probe measures only chosen cgroups (``cgroups=``)."""
        return self._cgroups is not None

    def refilter(self, cgroup_ids: Iterable[int]) -> None:
        """Measures these cgroups from now on, and no others, without
        reloading (a probe created with ``cgroups=``; ``filter_capacity``
        bounds how many). How the agent follows its subscribers."""
        plugin = self._started()
        if self._cgroups is None:
            raise ProbeStateError(
                "this probe measures every cgroup: create it with cgroups=[...] to refilter"
            )
        wanted = {check_int("a cgroup id", c, 1, 2**64 - 1) for c in cgroup_ids}
        if not wanted:
            raise ValueError("refilter([]) would measure nothing")
        present = set(plugin.map("cgroup_filter").to_dict())
        if present - wanted:
            plugin.delete("cgroup_filter", sorted(present - wanted))
        if wanted - present:
            plugin.update("cgroup_filter", dict.fromkeys(sorted(wanted - present), 1))

    def stop(self) -> None:
        """Detaches and unloads the probe. Readings and batches already made
        stay available. Does nothing if not running."""
        if self.running:
            assert self._plugin is not None
            self._plugin.stop()
            self._stopped_at = time.monotonic()

    def close(self) -> None:
        """Stops, and lets go of the maps and pending batches: readings raise
        :class:`ProbeStateError` until the next ``start()``."""
        self.stop()
        if self._plugin is not None:
            self._plugin.close()
        self._plugin = None

    @property
    def running(self) -> bool:
        return self._plugin is not None and self._plugin.running

    @property
    def method(self) -> str:
        """The method in use once started (``"sched_info"`` or ``"wakeup"``)."""
        return self._method or self.requested_method

    def _started(self) -> Plugin:
        if self._plugin is None:
            raise ProbeStateError(
                "the probe is not started (or was closed): use `with RunqProbe() as p:`"
            )
        return self._plugin

    # -- readings ----------------------------------------------------------------

    def histograms(self) -> dict[int, CgroupHistogram]:
        """Every cgroup's histogram since start, keyed by cgroup id, removed
        cgroups included (``cgroup_path`` None, named by ``last_known_path``
        or the kernel's name) until :meth:`forget_removed`.
        Reading moves removed cgroups' entries out of the kernel's maps, so
        ``max_cgroups`` bounds the live cgroups only."""
        plugin = self._started()
        reading = HistReading.read({name: plugin.map(name) for name in HIST_MAPS})
        # Each path looked up once per reading, and the tree walked at most
        # once for all the cgroups it has not seen.
        paths = self.cgroup_tree.paths(reading.rows)
        gone = self._removed.reap(plugin, paths, reading)
        hists = {
            cgroup_id: self._histogram(cgroup_id, row, None)
            for cgroup_id, row in self._removed.hist_rows.items()
        }
        for cgroup_id, row in reading.rows.items():
            if cgroup_id not in gone:
                hists[cgroup_id] = self._histogram(cgroup_id, row, paths[cgroup_id])
        return hists

    def _histogram(self, cgroup_id: int, row: dict[str, Any], path: str | None) -> CgroupHistogram:
        """A histogram from one merged ``struct runq_hist`` of a cgroup whose
        path is ``path`` (None: removed)."""
        assert self._tree is not None and self._resolver is not None
        cgroup_name = str(row["cgroup_name"])
        return CgroupHistogram(
            cgroup_id,
            slots=row["slots"],
            buckets=row["buckets"],
            count=int(row["count"]),
            total_ns=int(row["total_ns"]),
            wall_ns=int(row["wall_ns"]),
            max_ns=int(row["max_ns"]),
            comm=str(row["comm"]),
            cgroup_name=cgroup_name,
            cgroup_path=path,
            info=self._resolver.resolve(cgroup_id, name_hint=cgroup_name, path=path),
        )

    def forget_removed(self) -> set[int]:
        """Drops what is kept of removed cgroups (once reported, say), so a
        long-lived reader's memory follows the live cgroups; returns their ids."""
        forgotten = self._removed.forget()
        if self._resolver is not None:
            self._resolver.forget(forgotten)
        return forgotten

    def next_batch(self, timeout: float | None = None) -> EventBatch | None:
        """The next batch of events; None on timeout or once the stream has
        finished. Needs ``stream=True``."""
        return self._stream().next_batch(wire.EVENTS_RING, timeout)

    def batches(self, timeout: float | None = None) -> Iterator[EventBatch]:
        """Yields batches of events until the probe stops (then every batch
        made before the stop is still yielded). With ``timeout``, also ends when
        no batch arrives for that many seconds. Ctrl-C stops the probe, yields
        what was already batched, and ends the loop. Waiting releases the GIL."""
        return self._stream().batches(wire.EVENTS_RING, timeout)

    def _stream(self) -> Plugin:
        plugin = self._started()
        if not self.stream:
            raise ProbeStateError("this probe does not stream: create it with stream=True")
        return plugin

    def latency(self, cgroup: Any) -> CgroupHistogram:
        """The histogram so far of one cgroup, given as an object with an ``id``
        (a :class:`~noisy_neighbor.testing.TestCgroup`), an id, or a path. A
        cgroup that never waited gets an empty histogram (percentiles NaN)."""
        self._started()  # raises if never started
        assert self._tree is not None and self._resolver is not None
        cgroup_id = self._tree.id_of_any(cgroup)
        hist = self.histograms().get(cgroup_id)
        if hist is not None:
            return hist
        info = self._resolver.resolve(cgroup_id)
        return CgroupHistogram.empty(cgroup_id, cgroup_path=self._tree.path(cgroup_id), info=info)

    def _attribution(self) -> Plugin:
        plugin = self._started()
        if not self.attribution:
            raise ProbeStateError(
                "this probe does not attribute waits: create it with attribution=True"
            )
        return plugin

    def blame(self) -> list[Blame]:
        """Attribution so far: each cgroup's waits split by the culprit cgroup
        that had the CPU (:data:`~noisy_neighbor.runq.wire.IDLE`: the CPU was
        idle; :data:`~noisy_neighbor.runq.wire.UNTRACKED`: not split). Needs
        ``attribution=True``."""
        plugin = self._attribution()
        rows = wire.blame_rows(plugin.map("runq_blame"))
        rows = self._removed.reap_culprits(plugin, self.cgroup_tree, rows)
        return [*rows, *self._removed.blame]

    def switch_outs(self) -> list[SwitchOuts]:
        """Switch-outs so far, per cgroup, by cause. Needs ``attribution=True``."""
        rows = wire.switch_out_rows(self._attribution().map("switch_outs"))
        return [*rows, *self._removed.switch_outs]

    @property
    def cgroup_tree(self) -> CgroupTree:
        """The id-to-path map this probe names cgroups with."""
        if self._tree is None:
            raise ProbeStateError("the probe was never started: use `with RunqProbe() as p:`")
        return self._tree

    def cgroup_info(self, cgroup_id: int) -> CgroupInfo:
        """What a cgroup is (names from its path and container runtime), for
        cgroups with no histogram of their own, such as a culprit that never
        waited."""
        if self._resolver is None:
            raise ProbeStateError("the probe was never started: use `with RunqProbe() as p:`")
        return self._resolver.resolve(cgroup_id)

    def report(self, thresholds: Thresholds | None = None) -> NoisyNeighborReport:
        """Who made whom wait so far, with a verdict per cgroup (needs
        ``attribution=True``); see :mod:`noisy_neighbor.runq.verdicts` for the rules."""
        self._attribution()
        assert self._throttle_baseline is not None and self._started_at is not None
        end = self._stopped_at or time.monotonic()
        return from_histograms(
            self.histograms(),
            self.blame(),
            self.switch_outs(),
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
        ``rate_limited``, ``failed_attribution``. User side, as for every
        plugin: ``batches`` and ``batched_events`` handed to Python,
        ``dropped_batches`` and ``dropped_batch_events`` (Python was not
        keeping up), ``malformed_records``, ``undecoded_records``, ``ring_errors``.

        Every streamed wait is accounted for: ``events + dropped_ringbuf +
        rate_limited == waits - filtered`` while streaming, and ``events ==
        batched_events + dropped_batch_events`` once the probe has stopped.
        """
        plugin = self._started()
        counters = plugin.map("counters")
        kernel = {name: int(counters.values[name].sum()) for name in wire.COUNTER_NAMES}
        return {**kernel, **plugin.stats()}

    def _filter_ids(self, cgroups: list[str | int]) -> list[int]:
        assert self._tree is not None
        ids: list[int] = []
        for cgroup in cgroups:
            if isinstance(cgroup, bool) or not isinstance(cgroup, (int, str)):
                raise TypeError(f"cgroups takes paths (str) or ids (int), got {cgroup!r}")
            if isinstance(cgroup, int):
                cgroup_id = check_int("a cgroup id", cgroup, 1, 2**64 - 1)
                if self._tree.path(cgroup_id) is None:
                    raise CgroupNotFoundError(
                        f"no cgroup has id {cgroup_id} (a cgroup's id is the inode number of "
                        f"its directory under {self._tree.mount})"
                    )
                ids.append(cgroup_id)
            else:
                ids.extend(self._tree.subtree_ids(cgroup))
        return sorted(set(ids))

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RunqProbe method={self.method!r} {state}>"
