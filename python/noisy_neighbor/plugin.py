"""The probe host: run any CO-RE BPF object as a plugin, with its globals set
from Python, its programs attached by section name, and its outputs found in
its BTF: ring buffers as batches of numpy columns, maps as dicts and
DataFrames, ``slots[]`` maps as log2 histograms.

    plug = nn.Plugin.load("my.bpf.o", ms=True)     # or Plugin.from_source(...)
    with plug:
        for batch in plug.batches("events", timeout=1.0): ...
        plug.histograms("hists")
        plug.map("counts").to_pandas()
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from . import _native
from .btf_layout import decode, pack_global
from .errors import PluginGlobalError, PluginObjectError, ProbeStateError
from .events import EventBatch
from .plugin_maps import Log2Histogram, MapView, is_histogram_layout, row_value

__all__ = ["Plugin"]


class Plugin:
    """A BPF object, inspected and ready to run; ``start()`` (or ``with``)
    loads and attaches it, ``stop()`` detaches. Maps stay readable after stop.

    Create it with :meth:`load` or :meth:`from_source`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        programs: list[str] | None = None,
        records: dict[str, str] | None = None,
        batch_events: int = 65536,
        batch_ms: float = 100.0,
        pending_batches: int = 16,
        perf_hz: int = 99,
        max_entries: dict[str, int] | None = None,
        **globals: Any,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise PluginObjectError(f"{self.path} does not exist: pass the path of a .bpf.o file")
        self._info = _native.inspect_object(str(self.path), records)
        self.programs: list[tuple[str, str, str, str | None]] = self._info["programs"]
        self.maps: dict[str, dict[str, Any]] = {m["name"]: m for m in self._info["maps"]}
        self.globals: dict[str, dict[str, Any]] = {g["name"]: g for g in self._info["globals"]}
        self._selected = programs
        unknown = sorted(set(max_entries or {}) - set(self.maps))
        if unknown:
            raise PluginObjectError(
                f"max_entries names maps {unknown} that {self.path.name} does not have "
                f"(its maps: {', '.join(self.maps)})"
            )
        self._core: _native.PluginCore | None = None
        self._patches: dict[str, tuple[str, int, bytes]] = {}
        self.global_values: dict[str, Any] = {}
        self.set(**globals)
        self._options: dict[str, Any] = dict(
            batch_events=batch_events,
            batch_ms=batch_ms,
            pending_batches=pending_batches,
            perf_hz=perf_hz,
            max_entries=list((max_entries or {}).items()),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], **options: Any) -> Plugin:
        """A plugin from a compiled object. Keyword arguments that are not
        options (``programs``, ``records``, ``batch_events``, ``batch_ms``,
        ``pending_batches``, ``perf_hz``, ``max_entries``: map capacities by
        name, bytes for ring buffers) set the object's globals by name."""
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

    def set(self, **globals: Any) -> Plugin:
        """Sets globals by name before start; each value is checked against the
        variable's BTF type (:class:`PluginGlobalError` says what fits)."""
        if self.running:
            raise ProbeStateError("globals are read at load: stop() the plugin before set()")
        for name, value in globals.items():
            self._patches[name] = self._patch(name, value)
            self.global_values[name] = value
        return self

    def _global(self, name: str, hint: str = "") -> dict[str, Any]:
        info = self.globals.get(name)
        if info is None:
            known = ", ".join(sorted(self.globals)) or "none"
            raise PluginGlobalError(
                f"{self.path.name} has no global {name!r} (its globals: {known}){hint}"
            )
        return info

    def _patch(self, name: str, value: Any) -> tuple[str, int, bytes]:
        hint = f"; declare it as `const volatile <type> {name} = ...;`"
        info = self._global(name, hint)
        return info["section"], info["offset"], pack_global(name, info["layout"], value)

    # -- lifecycle ------------------------------------------------------------

    @property
    def ring_buffers(self) -> list[str]:
        return [name for name, info in self.maps.items() if info["ring_buffer"]]

    def start(self) -> Plugin:
        """Loads and attaches the programs. Errors name the cause: the
        verifier's log tail, an unsupported section, missing privileges."""
        if self._core is not None and self._core.running:
            return self
        rings = [
            (name, self.maps[name]["record"]["size"] if self.maps[name]["record"] else None)
            for name in self.ring_buffers
        ]
        self._core = _native.PluginCore(
            str(self.path),
            patches=list(self._patches.values()),
            programs=self._selected,
            rings=rings,
            **self._options,
        )
        return self

    def stop(self) -> None:
        """Detaches and unloads; waits until the kernel has freed the programs."""
        if self._core is not None:
            self._core.stop()

    close = stop

    def __enter__(self) -> Plugin:
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

    def _started(self) -> _native.PluginCore:
        if self._core is None:
            raise ProbeStateError(
                "the plugin was never started: call start() or use `with plugin:`"
            )
        return self._core

    # -- outputs --------------------------------------------------------------

    def _ring(self, map_name: str | None) -> str:
        rings = self.ring_buffers
        if map_name is None:
            if len(rings) != 1:
                raise PluginObjectError(f"name the ring buffer: this plugin has {rings or 'none'}")
            return rings[0]
        if map_name not in rings:
            raise PluginObjectError(
                f"{map_name!r} is not a ring buffer of this plugin; its ring buffers: {rings}"
            )
        return map_name

    def next_batch(
        self, map_name: str | None = None, timeout: float | None = None
    ) -> EventBatch | None:
        """The next batch of records of a ring buffer, as columns named after
        the record's fields; None on timeout or once the ring has finished."""
        ring = self._ring(map_name)
        layout = self.maps[ring]["record"]
        if layout is None:
            raise PluginObjectError(
                f"the record type of ring buffer {ring!r} is unknown, so its records are "
                f"counted, not decoded: declare NN_RECORD({ring}, struct <type>) from nn.bpf.h, "
                f"or pass records={{{ring!r}: '<struct name>'}}"
            )
        raw = self._started().next_batch(ring, timeout)
        if raw is None:
            return None
        return EventBatch(decode(raw, layout))

    def batches(
        self, map_name: str | None = None, timeout: float | None = None
    ) -> Iterator[EventBatch]:
        """Yields batches of a ring buffer until the plugin stops (then the
        batches made before the stop) or, with ``timeout``, until none arrives
        for that many seconds. Ctrl-C ends the loop and stops the plugin."""
        ring = self._ring(map_name)
        core = self._started()
        try:
            while True:
                batch = self.next_batch(ring, timeout)
                if batch is not None:
                    yield batch
                elif core.ring_finished(ring) or timeout is not None:
                    return
        except KeyboardInterrupt:
            self.stop()

    def map(self, name: str) -> MapView:
        """A snapshot of map ``name``, decoded by its BTF types."""
        if name not in self.maps:
            raise PluginObjectError(
                f"{self.path.name} has no map {name!r}; its maps: {', '.join(self.maps)}"
            )
        keys, values, count, cpus = self._started().read_map(name)
        return MapView(name, self.maps[name], keys, values, count, cpus)

    @property
    def histogram_maps(self) -> list[str]:
        """Maps whose value type holds a ``slots[]`` integer array."""
        return [name for name, info in self.maps.items() if is_histogram_layout(info["value"])]

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
        section = self._started().read_section(info["section"])
        layout = info["layout"]
        raw = section[info["offset"] : info["offset"] + layout["size"]]
        return row_value(decode(raw, layout, "value"), 0)

    def run(self, program: str, ctx: bytes = b"") -> int:
        """Runs the ``SEC("syscall")`` program ``program`` once (the kernel's
        BPF_PROG_TEST_RUN), with ``ctx`` as its context struct; returns its
        return value. Such programs load with the others and attach nowhere."""
        return self._started().run_program(program, bytes(ctx))

    def stats(self) -> dict[str, dict[str, int]]:
        """Per ring buffer: records shipped, and every one dropped or not
        decoded (``dropped_records``, ``malformed_records``, ``undecoded_records``)."""
        return self._started().counters() if self._core is not None else {}

    def _repr_html_(self) -> str:
        """Programs, maps and globals as tables, for notebooks."""
        import html

        def table(header: list[str], rows: list[list[Any]]) -> str:
            head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                for row in rows
            )
            return f"<table><tr>{head}</tr>{body}</table>"

        programs = [[n, s, a if w is None else f"{a}: {w}"] for n, s, a, w in self.programs]
        maps = []
        for name, info in self.maps.items():
            shape = info["record"] if info["ring_buffer"] else info["value"]
            output = (
                "histograms"
                if name in self.histogram_maps
                else ("batches" if info["ring_buffer"] else "map")
            )
            maps.append([name, info["type"], shape["type_name"] if shape else "?", output])
        globals_ = [
            [n, g["section"], g["layout"]["type_name"], self.global_values.get(n, "")]
            for n, g in self.globals.items()
        ]
        state = "running" if self.running else "stopped"
        return (
            f"<p><b>{html.escape(self.path.name)}</b> ({state})</p>"
            + table(["program", "section", "attach"], programs)
            + table(["map", "type", "holds", "read with"], maps)
            + table(["global", "section", "type", "set to"], globals_)
        )

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        programs = ", ".join(f"{name} ({section})" for name, section, _a, _w in self.programs)
        return f"<Plugin {self.path.name} {state}: {programs}>"
