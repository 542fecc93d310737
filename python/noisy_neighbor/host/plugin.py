"""The probe host: run any CO-RE BPF object as a plugin, with its globals set
from Python, its maps sized and filled before attach, its programs attached by
section name, and its outputs found in its BTF: ring buffers as batches of
numpy columns, maps as dicts and DataFrames, ``slots[]`` maps as log2
histograms. The run-queue probe is a plugin too (:class:`~noisy_neighbor.RunqProbe`).

    plug = nn.Plugin.load("my.bpf.o", ms=True)     # or Plugin.from_source(...)
    with plug:
        for batch in plug.batches("events", timeout=1.0): ...
        plug.histograms("hists")
        plug.map("counts").to_pandas()

Every plugin keeps one lifecycle (see "Lifecycle" in the README): ``start``,
``stop``, ``close``, ``with``, ``stats``, ``next_batch`` and ``batches``
behave the same for a plugin and for the run-queue probe.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._native import GlobalInfo, HostCore, RingStats, inspect_object
from ..checks import check_int
from ..errors import PluginGlobalError, PluginObjectError, ProbeStateError
from .batches import EventBatch
from .layout import RecordDecoder, decode, pack_global, pack_rows
from .lifecycle import Lifecycle, interrupt_stops
from .map_entries import pack_entry, pack_key, writable_map
from .maps import Log2Histogram, MapView, is_histogram_layout, row_value
from .perf_events import PerfEvent, perf_events_by_program
from .render import plugin_html

__all__ = ["Plugin"]

#: Most records in one batch: a batch is one buffer of that many records.
MAX_BATCH_EVENTS = 1 << 24
#: Most batches waiting for Python before new ones are dropped (and counted).
MAX_PENDING_BATCHES = 1 << 16
#: Counters of ``stats()`` that say a record was lost or not decoded.
LOSS_COUNTERS = ("dropped_batch_events", "malformed_records", "undecoded_records", "ring_errors")


class Plugin(Lifecycle):
    """A BPF object, inspected and ready to run; ``start()`` (or ``with``)
    loads and attaches it, ``stop()`` detaches. Maps stay readable after stop.

    Create it with :meth:`load` or :meth:`from_source`. ``source`` is a path
    to a ``.bpf.o`` file or the object's bytes (named ``name``).
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes,
        *,
        name: str | None = None,
        programs: list[str] | None = None,
        records: dict[str, str] | None = None,
        rings: list[str] | None = None,
        batch_events: int = 65536,
        batch_ms: float = 100.0,
        pending_batches: int = 16,
        perf_hz: int = 99,
        max_entries: dict[str, int] | None = None,
        map_entries: Mapping[str, Mapping[Any, Any]] | None = None,
        perf_events: Mapping[str, PerfEvent | Mapping[str, Any]] | None = None,
        run_before_attach: list[str] | None = None,
        **globals: Any,
    ) -> None:
        if isinstance(source, bytes):
            self.path = Path(name or "plugin")
            self._source: str | bytes = source
        else:
            self.path = Path(source)
            if not self.path.is_file():
                if self.path.is_dir():
                    what = "is a directory"
                elif self.path.exists():
                    what = "is not a regular file"
                else:
                    what = "does not exist"
                raise PluginObjectError(f"{self.path} {what}: pass the path of a .bpf.o file")
            self._source = str(self.path)
        self._name = name
        self.info = inspect_object(self._source, records, name)
        self.programs = {p.name: p for p in self.info.programs}
        self.maps = {m.name: m for m in self.info.maps}
        self.globals = {g.name: g for g in self.info.globals}
        self._selected = programs
        self._streamed = self._check_rings(rings)
        unknown = sorted(set(max_entries or {}) - set(self.maps))
        if unknown:
            raise PluginObjectError(
                f"max_entries names maps {unknown} that {self.path.name} does not have "
                f"(its maps: {', '.join(self.maps)})"
            )
        self._initial_entries = self._pack_entries(map_entries or {})
        self._core: HostCore | None = None
        self._patches: dict[str, tuple[str, int, bytes]] = {}
        self.global_values: dict[str, Any] = {}
        self.set(**globals)
        self._decoders = {
            ring: RecordDecoder(layout)
            for ring in self._streamed
            if (layout := self.maps[ring].record) is not None
        }
        self._options: dict[str, Any] = dict(
            batch_events=check_int("batch_events", batch_events, 1, MAX_BATCH_EVENTS),
            batch_ms=batch_ms,  # its range is checked where batches are made
            pending_batches=check_int("pending_batches", pending_batches, 1, MAX_PENDING_BATCHES),
            perf_hz=check_int("perf_hz", perf_hz, 1, 100_000),
            perf_events=perf_events_by_program(
                self.path.name, self.programs, programs, perf_events or {}
            ),
            max_entries=[
                (map_name, check_int(f"max_entries[{map_name!r}]", entries, 1, 2**32 - 1))
                for map_name, entries in (max_entries or {}).items()
            ],
            run_before_attach=self._check_run_first(run_before_attach or []),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str] | bytes, **options: Any) -> Plugin:
        """A plugin from a compiled object. Keyword arguments that are not
        options (``programs``, ``records``, ``rings``: the ring buffers to
        stream, all by default; ``batch_events``, ``batch_ms``,
        ``pending_batches``, ``perf_hz``: the CPU-clock sampling rate of
        ``perf_event`` programs; ``perf_events``: ``{program: PerfEvent or
        dict}``, another event for a ``perf_event`` program; ``max_entries``:
        map capacities by name, bytes for ring buffers; ``map_entries``:
        ``{map: {key: value}}`` written before attach; ``run_before_attach``:
        ``SEC("syscall")`` programs run once after load, before the others
        attach) set the object's globals by name."""
        return cls(path, **options)

    @classmethod
    def from_source(
        cls,
        code: str,
        name: str = "plugin",
        *,
        clang: str | None = None,
        cflags: list[str] | None = None,
        **options: Any,
    ) -> Plugin:
        """Compiles C source with clang against the package's SDK (cached by
        content) and loads it; ``options`` as for :meth:`load`."""
        from .compile import compile_source

        obj = compile_source(code, name=name, clang=clang, cflags=cflags)
        return cls(obj, **options)

    # -- configuration before start ---------------------------------------------

    def set(self, **globals: Any) -> Plugin:
        """Sets globals by name before start; each value is checked against the
        variable's BTF type (:class:`PluginGlobalError` says what fits)."""
        if self.running:
            raise ProbeStateError("globals are read at load: stop() the plugin before set()")
        for name, value in globals.items():
            hint = f"; declare it as `const volatile <type> {name} = ...;`"
            info = self._global(name, hint)
            self._patches[name] = (info.section, info.offset, pack_global(name, info.layout, value))
            self.global_values[name] = value
        return self

    def _global(self, name: str, hint: str = "") -> GlobalInfo:
        info = self.globals.get(name)
        if info is None:
            known = ", ".join(sorted(self.globals)) or "none"
            raise PluginGlobalError(
                f"{self.path.name} has no global {name!r} (its globals: {known}){hint}"
            )
        return info

    def _check_run_first(self, names: list[str]) -> list[str]:
        """``SEC("syscall")`` programs to run once between load and attach."""
        for name in names:
            info = self.programs.get(name)
            if info is None or info.section != "syscall":
                raise PluginObjectError(
                    f'run_before_attach names {name!r}, which is not a SEC("syscall") '
                    f"program of {self.path.name}"
                )
        return list(names)

    def _check_rings(self, rings: list[str] | None) -> list[str]:
        if rings is None:
            return self.ring_buffers
        for ring in rings:
            self._ring(ring, self.ring_buffers)
        return list(rings)

    def _pack_entries(
        self, entries: Mapping[str, Mapping[Any, Any]]
    ) -> list[tuple[str, bytes, bytes]]:
        packed = []
        for map_name, items in entries.items():
            info = writable_map(self.path.name, self.maps, map_name, "map_entries")
            for key, value in items.items():
                packed.append((map_name, *pack_entry(info, key, value)))
        return packed

    # -- lifecycle ----------------------------------------------------------------

    @property
    def ring_buffers(self) -> list[str]:
        return [name for name, info in self.maps.items() if info.ring_buffer]

    def start(self) -> Plugin:
        """Loads and attaches the programs. Errors name the cause: the
        verifier's log tail, an unsupported section, missing privileges.
        Raises :class:`ProbeStateError` if it is already running; after
        ``stop()`` it starts afresh (maps and counters from zero)."""
        if self.running:
            raise ProbeStateError(f"{self.path.name} is already running; stop() it first")
        rings = [
            (ring, layout.size if (layout := self.maps[ring].record) else None)
            for ring in self._streamed
        ]
        self._core = HostCore(
            self._source,
            name=self._name,
            patches=list(self._patches.values()),
            programs=self._selected,
            rings=rings,
            initial_entries=self._initial_entries,
            **self._options,
        )
        return self

    def stop(self) -> None:
        """Detaches and unloads; waits until the kernel has freed the programs.
        Maps, counters and batches already made stay readable. Does nothing
        if not running."""
        if self._core is not None:
            self._core.stop()

    def close(self) -> None:
        """Stops, and lets go of the maps and the batches not taken: readings
        raise :class:`ProbeStateError` until the next ``start()``."""
        self.stop()
        self._core = None

    @property
    def running(self) -> bool:
        return self._core is not None and self._core.running

    def _started(self) -> HostCore:
        if self._core is None:
            raise ProbeStateError(
                f"{self.path.name} is not started (or was closed): call start() or use `with`"
            )
        return self._core

    def stats(self, ring: str | None = None) -> dict[str, int]:
        """What happened to streamed records in user space, summed over the
        streamed ring buffers (or of ``ring`` only): ``batches`` and
        ``batched_events`` handed to Python, ``dropped_batches`` and
        ``dropped_batch_events`` (Python was not keeping up),
        ``malformed_records``, ``undecoded_records`` (record type unknown),
        ``ring_errors``. Once stopped, every record the rings delivered is in
        ``batched_events + dropped_batch_events + malformed_records +
        undecoded_records``."""
        per_ring = dict(self._started().counters())
        if ring is not None:
            per_ring = {ring: per_ring[self._ring(ring, list(per_ring))]}
        totals = dict.fromkeys(RingStats.NAMES, 0)
        for counters in per_ring.values():
            for name, value in counters.to_dict():
                totals[name] += value
        return totals

    # -- outputs ------------------------------------------------------------------

    def _ring(self, map_name: str | None, rings: list[str] | None = None) -> str:
        rings = self._streamed if rings is None else rings
        if map_name is None:
            if len(rings) != 1:
                raise PluginObjectError(
                    f"name the ring buffer: this plugin streams {rings or 'none'}"
                )
            return rings[0]
        if map_name not in rings:
            raise PluginObjectError(
                f"{map_name!r} is not a streamed ring buffer of {self.path.name}; "
                f"its streamed ring buffers: {rings}"
            )
        return map_name

    def next_batch(
        self, map_name: str | None = None, timeout: float | None = None
    ) -> EventBatch | None:
        """The next batch of records of a ring buffer, as columns named after
        the record's fields; None on timeout or once the ring has finished."""
        ring = self._ring(map_name)
        decoder = self._decoders.get(ring)
        if decoder is None:
            raise PluginObjectError(
                f"the record type of ring buffer {ring!r} is unknown, so its records are "
                f"counted, not decoded: declare NN_RECORD({ring}, struct <type>) from nn.bpf.h, "
                f"or pass records={{{ring!r}: '<struct name>'}}"
            )
        raw = self._started().next_batch(ring, timeout)
        if raw is None:
            return None
        return EventBatch(decoder(raw))

    def batches(
        self, map_name: str | None = None, timeout: float | None = None
    ) -> Iterator[EventBatch]:
        """Yields batches of a ring buffer until the plugin stops (then the
        batches made before the stop) or, with ``timeout``, until none arrives
        for that many seconds. Ctrl-C stops the plugin, yields every batch
        already made, and ends the loop: nothing is lost. Waiting releases
        the GIL."""
        ring = self._ring(map_name)
        core = self._started()
        while True:
            with interrupt_stops(self.stop):
                batch = self.next_batch(ring, None if not self.running else timeout)
            if batch is not None:
                yield batch
            elif core.ring_finished(ring) or (timeout is not None and self.running):
                return

    def map(self, name: str) -> MapView:
        """A snapshot of map ``name``, decoded by its BTF types."""
        entries = self._started().read_map(self._map_name(name))
        return MapView(
            name, self.maps[name], entries.keys, entries.values, entries.count, entries.cpus
        )

    @property
    def histogram_maps(self) -> list[str]:
        """Maps whose value type holds a ``slots[]`` integer array."""
        return [name for name, info in self.maps.items() if is_histogram_layout(info.value)]

    def histograms(self, name: str | None = None) -> dict[Any, Log2Histogram]:
        """The log2 histograms of map ``name`` (the only histogram map if not
        given), by key."""
        if name is None:
            candidates = self.histogram_maps
            if len(candidates) != 1:
                raise PluginObjectError(
                    f"name the histogram map: this plugin has {candidates or 'none'}"
                )
            name = candidates[0]
        return self.map(name).histograms()

    def read_global(self, name: str) -> Any:
        """The value global ``name`` holds now (a counter in ``.bss``, say),
        read from the kernel's copy; arrays come back as lists."""
        info = self._global(name)
        section = self._started().read_section(info.section)
        raw = section[info.offset : info.offset + info.layout.size]
        return row_value(decode(raw, info.layout, "value"), 0)

    def delete(self, name: str, keys: Sequence[Any] | Mapping[str, Sequence[Any]]) -> int:
        """Deletes entries of map ``name``: ``keys`` is a list of keys (a
        struct key as a dict or tuple of its fields), or, for a struct key,
        one list of values per field. Returns how many were there (keys
        already gone are skipped)."""
        info = self.maps.get(name)
        if info is None or info.key is None:
            raise PluginObjectError(
                f"{self.path.name} has no map {name!r} with a BTF key type "
                f"(its maps: {', '.join(self.maps)})"
            )
        if isinstance(keys, Mapping):
            packed = pack_rows(info.key, keys)
        else:
            packed = b"".join(pack_key(name, info.key, key) for key in keys)
        return self._started().delete_keys(name, packed)

    def update(self, name: str, entries: Mapping[Any, Any], *, per_cpu: bool = False) -> int:
        """Writes ``entries`` ({key: value}, packed as ``map_entries=`` packs
        them) into map ``name`` of the running plugin, creating keys or
        overwriting their values. A per-CPU map gets each value on every
        possible CPU, or, with ``per_cpu=True``, a list of one value per
        possible CPU (what ``map(name).to_dict()`` gives). Returns how many
        were written; a refusal (a full map, an index past an array's end)
        raises :class:`MapAccessError` with the kernel's reason."""
        info = writable_map(self.path.name, self.maps, name, "update")
        packed = [pack_entry(info, key, value, per_cpu=per_cpu) for key, value in entries.items()]
        keys = b"".join(key for key, _ in packed)
        values = b"".join(value for _, value in packed)
        return self._started().update_entries(name, keys, values)

    def clear(self, name: str) -> int:
        """Empties map ``name``, as bpftrace's ``clear()``: deletes every key,
        or, for an array (whose entries cannot be deleted), zeroes every
        value. Returns how many entries it emptied."""
        return self._started().clear_map(self._map_name(name))

    def zero(self, name: str) -> int:
        """Sets every value of map ``name`` to zero and keeps its keys, as
        bpftrace's ``zero()``. Returns how many values it zeroed."""
        return self._started().zero_map(self._map_name(name))

    def _map_name(self, name: str) -> str:
        if name not in self.maps:
            raise PluginObjectError(
                f"{self.path.name} has no map {name!r}; its maps: {', '.join(self.maps)}"
            )
        return name

    def run(self, program: str, ctx: bytes = b"") -> int:
        """Runs the ``SEC("syscall")`` program ``program`` once (the kernel's
        BPF_PROG_TEST_RUN), with ``ctx`` as its context struct; returns its
        return value. Such programs load with the others and attach nowhere."""
        return self._started().run_program(program, bytes(ctx))

    def _repr_html_(self) -> str:
        return plugin_html(
            self.path.name, self.running, self.programs, self.maps, self.globals, self.global_values
        )

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        programs = ", ".join(f"{p.name} ({p.section})" for p in self.programs.values())
        return f"<Plugin {self.path.name} {state}: {programs}>"
