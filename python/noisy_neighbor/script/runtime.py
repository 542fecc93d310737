"""A script, running: compiled once (:mod:`.compile_script`), loaded and
attached by the host like every plugin, its ``BEGIN`` and ``END`` programs
run on demand, its event records acted on in order (printf text, ``print``,
``clear``, ``exit``...), its printf records also handed to Python as
columns, and its maps read back as bpftrace prints them or as pandas."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import AttachError, ProbeLoadError, ProbeStateError
from ..host.batches import EventBatch
from ..host.lifecycle import Lifecycle, interrupt_stops
from .compile_script import CompiledScript, compile_script
from .decode import Resolver, column_values
from .diagnostics import Diagnostic, Source
from .load_errors import locate_load_error
from .map_read import snapshot
from .printf import parse_format, render_rows
from .records import RecordSplitter
from .sinks import Sink, sink_for
from .values import MapSnapshot, TypedValue

if TYPE_CHECKING:
    pass

__all__ = ["Script"]


def _is_keyless_count(info: Any) -> bool:
    return not info.key_types and info.value is not None and info.value.kind.value == "count"


_RING = "nn_events"
#: How long a batch of records may wait in the host before Python sees it.
BATCH_MS = 5.0
#: Records in one batch at most, and batches waiting for Python at most:
#: a reader that pauses for a second and more (a busy notebook, a slow
#: terminal) loses nothing at a million records a second, in at most
#: 128 x 16384 records of memory.
BATCH_EVENTS = 16384
PENDING_BATCHES = 128


class Script(Lifecycle):
    """A bpftrace-language script on the probe host.

    ``program`` is the script's text; ``params`` its ``$1``, ``$2``...;
    ``output`` (``"text"`` or ``"json"``) with ``stream`` writes bpftrace's
    output as it comes (the command line does); without a stream, ``print``,
    ``time`` and ``join`` text is kept for :meth:`text`."""

    def __init__(
        self,
        program: str,
        *params: Any,
        name: str = "stdin",
        unsafe: bool = False,
        cpid: int | None = None,
        output: str = "text",
        stream: Any = None,
        keep_printf: bool = False,
        includes: list[str] | None = None,
        helper_errors: int = 0,
        **options: Any,
    ) -> None:
        self.compiled: CompiledScript = compile_script(
            program,
            [str(p) for p in params],
            name=name,
            unsafe=unsafe,
            has_child=cpid is not None,
            includes=includes,
            helper_errors=helper_errors,
        )
        self.info = self.compiled.info
        self.source = Source(program, name)
        options.setdefault("batch_events", BATCH_EVENTS)
        options.setdefault("pending_batches", PENDING_BATCHES)
        self.plugin = self.compiled.plugin(cpid=cpid, batch_ms=BATCH_MS, **options)
        self.sink: Sink = sink_for(output, stream, keep=stream is None)
        self.keep_printf = keep_printf or stream is not None
        self.sites = {site.id: site for site in self.info.sites}
        layouts = {
            site.id: self.plugin.globals[f"nn_layout_{site.id}"].layout for site in self.info.sites
        }
        self.splitter = RecordSplitter(self.compiled.record_size, self.info.sites, layouts)
        self.resolver = Resolver(
            probe_names=self.compiled.probe_names,
            strftime_formats=self.info.strftime_formats,
            read_stacks=self._read_stacks,
        )
        self.exit_requested = False
        self._skipping = False
        self._pending: list[EventBatch] = []
        self.after_exit_records = 0
        #: resolve cgroup ids to names when showing maps in a notebook
        self.resolve = False

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def probe_count(self) -> int:
        """Programs attached (BEGIN and END count, as in bpftrace's message)."""
        return len(self.info.contexts)

    @property
    def running(self) -> bool:
        return self.plugin.running

    def start(self) -> Script:
        self.plugin.set(nn_start_ns=time.monotonic_ns())
        self.exit_requested = False
        self._skipping = False
        try:
            self.plugin.start()  # BEGIN runs between load and attach
        except (ProbeLoadError, AttachError) as err:
            located = locate_load_error(str(err), self.compiled.code, self.info, self.source)
            if located is None:
                raise
            raise type(err)(f"{located}\n{err}") from None
        return self

    def stop(self) -> None:
        """Runs ``END``, detaches, and acts on every record still in the
        rings (``END``'s printf too). Maps stay readable."""
        if not self.running:
            return
        # What came before END (and, after exit(), nothing more but what
        # other CPUs had in flight: skipped, so not waited for), then END's
        # own output.
        self._drain(wait=not self.exit_requested)
        self._skipping = False
        for name in self.compiled.end_programs:
            self.plugin.run(name)
        self.plugin.stop()
        self._drain(wait=False)

    def close(self) -> None:
        self.stop()
        self.plugin.close()

    def _core(self):
        return self.plugin._started()

    # -- records ------------------------------------------------------------------------

    def poll(self, timeout: float | None = 0.1) -> bool:
        """Takes one batch of records (waiting up to ``timeout``) and acts on
        it; False if none came."""
        raw = self._core().next_batch(_RING, timeout)
        if raw is None:
            return False
        self._process(raw)
        return True

    def _drain(self, wait: bool) -> None:
        core = self._core()
        if wait:
            time.sleep(2 * BATCH_MS / 1000 + 0.012)  # the host polls every 10 ms
        while (raw := core.next_batch(_RING, 0)) is not None:
            self._process(raw)

    def _process(self, raw: np.ndarray) -> None:
        batch = self.splitter.split(raw)
        order = batch.order.tolist()
        if self._skipping:
            self.after_exit_records += len(order)
            return
        site_kinds = {site_id: self.sites[site_id].kind for site_id in batch.columns}
        printf_texts: dict[int, list[str]] = {}
        for site_id, columns in batch.columns.items():
            site = self.sites[site_id]
            if site.kind == "printf":
                self._pending.append(self._printf_batch(site, columns))
                if self.keep_printf:
                    printf_texts[site_id] = self._render(site, columns)
        if len(site_kinds) == 1 and next(iter(site_kinds.values())) == "printf":
            (texts,) = printf_texts.values() if printf_texts else ([],)
            self.sink.printf(texts)
            return
        cursor = dict.fromkeys(batch.columns, 0)
        for position, site_id in enumerate(order):
            if site_id not in cursor:
                continue
            row = cursor[site_id]
            cursor[site_id] = row + 1
            self._act(self.sites[site_id], batch.columns[site_id], row, printf_texts)
            if self.exit_requested:
                self._skipping = True
                self.after_exit_records += len(order) - position - 1
                return

    def _act(
        self, site, columns: dict[str, np.ndarray], row: int, texts: dict[int, list[str]]
    ) -> None:
        kind = site.kind
        if kind == "printf":
            if site.id in texts:
                self.sink.printf([texts[site.id][row]])
        elif kind in ("system", "cat"):
            values = self._values(site, columns, row)
            from .unsafe import run_cat, run_system

            command = render_rows(site.text, site.arg_types, [[v] for v in values], 1)[0]
            if kind == "system":
                self.sink.printf([run_system(command)], "syscall")  # bpftrace's JSON name
            else:
                self.sink.printf([run_cat(command)], "cat")
        elif kind == "print_map":
            info = self.info.maps[site.map]
            top, div = ([*list(site.numbers), 0, 0])[:2]
            self.sink.map(self.snapshot(info.name), top, div)
        elif kind == "print_value":
            (value,) = self._values(site, columns, row)
            self.sink.value(TypedValue(site.arg_types[0], value))
        elif kind == "clear":
            info = self.info.maps[site.map]
            if _is_keyless_count(info):
                self.plugin.zero(info.c_name)  # bpftrace 0.17 keeps it: @x: 0
            else:
                self.plugin.clear(info.c_name)
        elif kind == "zero":
            self.plugin.zero(self.info.maps[site.map].c_name)
        elif kind == "exit":
            self.exit_requested = True
        elif kind == "time":
            self.sink.time(site.text)
        elif kind == "helper_error":
            retcode = int(columns["a0"][row])
            reason = f"{os.strerror(-retcode)} ({retcode})" if retcode < 0 else str(retcode)
            where = Diagnostic(self.source, site.loc, f"Failed to {site.text}: {reason}", "WARNING")
            self.sink.helper_error(site.text, retcode, where)
        elif kind == "join":
            count = int(columns["count"][row])
            strings = columns["a0"][row][:count]
            self.sink.join([str(s) for s in strings], site.text)

    def _values(self, site, columns: dict[str, np.ndarray], row: int) -> list[Any]:
        one = {name: column[row : row + 1] for name, column in columns.items()}
        return [
            column_values(ty, one, f"a{i}", self.resolver)[0] for i, ty in enumerate(site.arg_types)
        ]

    def _render(self, site, columns: dict[str, np.ndarray]) -> list[str]:
        values = [
            column_values(ty, columns, f"a{i}", self.resolver)
            for i, ty in enumerate(site.arg_types)
        ]
        count = len(columns["nn_id"])
        return render_rows(site.text, site.arg_types, values, count)

    def _printf_batch(self, site, columns: dict[str, np.ndarray]) -> EventBatch:
        """One column per printf argument, typed by its conversion as C
        reads it: ``%d`` of an int64 is int32, ``%lu`` uint64, ``%c`` uint8."""
        pieces = parse_format(site.text).pieces
        named: dict[str, np.ndarray] = {}
        for i, (ty, name) in enumerate(zip(site.arg_types, site.arg_names)):
            key = name if name not in named else f"{name}_{i}"
            if ty.kind.value == "int" and i < len(pieces) and pieces[i].token[-1] in "duoxXpc":
                token = pieces[i].token
                signed = token[-1] in "d"
                dtype = f"{'i' if signed else 'u'}{pieces[i].cast_bits // 8}"
                named[key] = columns[f"a{i}"].astype(dtype)
            elif ty.kind.value in ("int", "string"):
                named[key] = columns[f"a{i}"]
            else:
                named[key] = np.array(
                    column_values(ty, columns, f"a{i}", self.resolver), dtype=object
                )
        if not named:
            named["count"] = np.ones(len(columns["nn_id"]), dtype=np.int64)
        batch = EventBatch(named)
        return batch

    # -- Python ---------------------------------------------------------------------------

    def batches(self, timeout: float | None = None) -> Iterator[EventBatch]:
        """printf records as batches of columns, one per argument, until the
        script exits or stops (or, with ``timeout``, no record comes for
        that long). Ctrl-C stops the script and yields what was made."""
        waited = 0.0
        while True:
            while self._pending:
                waited = 0.0
                yield self._pending.pop(0)
            if not self.running:
                return
            if self.exit_requested:
                self.stop()
                continue
            with interrupt_stops(self.stop):
                if not self.running:
                    continue
                got = self.poll(0.1)
            if not got:
                waited += 0.1
                if timeout is not None and waited >= timeout:
                    return

    def next_batch(self, timeout: float | None = None) -> EventBatch | None:
        for batch in self.batches(timeout):
            return batch
        return None

    def run(self, seconds: float | None = None) -> Script:
        """Runs until ``exit()``, Ctrl-C or ``seconds``; then stops (END runs)."""
        if not self.running:
            self.start()
        deadline = None if seconds is None else time.monotonic() + seconds
        with interrupt_stops(self.stop):
            while self.running and not self.exit_requested:
                if deadline is not None and time.monotonic() >= deadline:
                    break
                self.poll(0.1)
        self.stop()
        return self

    def text(self) -> str:
        """The output kept so far (print, time, join; printf too with keep_printf)."""
        return "".join(self.sink.kept or [])

    # -- maps ------------------------------------------------------------------------------

    def snapshot(self, name: str) -> MapSnapshot:
        """Map ``name`` (``@x``, or ``x``) as it is now."""
        info = self.info.maps.get(name) or self.info.maps.get(f"@{name}")
        if info is None:
            raise ProbeStateError(
                f"the script has no map {name}; its maps: {', '.join(self.info.maps)}"
            )
        view = self.plugin.map(info.c_name)
        self.resolver.forget_stacks()
        return snapshot(info, view, self.resolver)

    def snapshots(self) -> list[MapSnapshot]:
        return [self.snapshot(name) for name in self.info.maps]

    def maps(self, resolve: bool = False) -> dict[str, Any]:
        """Every map as pandas (see :meth:`map`)."""
        return {name: self.map(name, resolve) for name in self.info.maps}

    def map(self, name: str, resolve: bool = False) -> Any:
        """Map ``name`` as data: a Series keyed by its key (a DataFrame with
        a MultiIndex for several key parts; levels named after what the key
        read: ``comm``, ``pid``, ``cgroup_id``); the value itself for a map
        without keys; :class:`ScriptHistogram` values for hist and lhist;
        count/total/average columns for avg and stats. ``resolve=True`` adds
        the cgroup's path, container and pod for a ``cgroup_id`` key."""
        from .frames import map_frame

        info = self.info.maps.get(name) or self.info.maps.get(f"@{name}")
        snap = self.snapshot(name)
        return map_frame(snap, info.key_names if info else (), resolve)

    def _read_stacks(self, user: bool, depth: int) -> dict[int, list[int]]:
        """Every stack a stack map holds: its frames' addresses, innermost
        first, up to the first empty slot."""
        view = self.plugin.map(f"nn_stack_{'u' if user else 'k'}_{depth}")
        out: dict[int, list[int]] = {}
        for key, frames in view.to_dict().items():
            raw = frames if isinstance(frames, (bytes, bytearray)) else bytes(frames)
            addresses = np.frombuffer(raw[: len(raw) // 8 * 8], dtype=np.uint64).tolist()
            if 0 in addresses:
                addresses = addresses[: addresses.index(0)]
            out[int(key)] = addresses
        return out

    # -- accounting ----------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """What was lost, counted: the rings' user-space counters (see
        ``Plugin.stats``), ``lost_events`` (records the kernel had no ring
        room for), ``map_update_errors`` (updates of a full map), and
        ``after_exit_records`` (records that came after ``exit()``)."""
        counters = dict(self.plugin.stats())
        counters["lost_events"] = int(self.plugin.read_global("nn_lost_events"))
        errors = self.plugin.read_global("nn_map_errors")
        counters["map_update_errors"] = int(sum(errors if isinstance(errors, list) else [errors]))
        counters["after_exit_records"] = self.after_exit_records
        counters["undecoded_records"] = counters.get("undecoded_records", 0) + self.splitter.unknown
        return counters

    def map_errors(self) -> dict[str, int]:
        errors = self.plugin.read_global("nn_map_errors")
        errors = errors if isinstance(errors, list) else [errors]
        return {
            info.name: int(errors[info.index])
            for info in self.info.maps.values()
            if errors[info.index]
        }

    def _repr_html_(self) -> str:
        from .render import script_html

        return script_html(self)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Script {self.compiled.name}: {self.probe_count} probes, {state}>"
