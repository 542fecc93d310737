"""``noisy-neighbor run FILE.bpf.o|FILE.bpf.c``: run any BPF program as a
plugin and print what it outputs, as eunomia's ``ecli run`` does: ring-buffer
records as rows as they arrive, and every interval each histogram map (and
each map named with ``--map``)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .._native import GlobalInfo
from ..errors import PluginGlobalError, PluginObjectError
from ..host.batches import EventBatch
from ..host.plugin import LOSS_COUNTERS, Plugin
from .cli_args import positive_float, positive_int

__all__ = ["add_run_parser", "parse_global", "run_plugin"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def add_run_parser(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="run a BPF program (.bpf.o, or .bpf.c compiled with clang) as a plugin",
        description=(
            "Load FILE, set its globals, attach its programs by section name, and print "
            "ring-buffer records as they arrive and histogram maps every interval. "
            "Ctrl-C ends it."
        ),
    )
    run.add_argument("file", metavar="FILE", help="a .bpf.o object, or .bpf.c source")
    run.add_argument("--interval", type=positive_float, default=1.0, metavar="S", help="default 1")
    run.add_argument(
        "--count", type=positive_int, default=None, metavar="N", help="intervals, then exit"
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a global (const volatile) before load; repeatable",
    )
    run.add_argument(
        "--program", action="append", default=None, metavar="NAME", help="load only these"
    )
    run.add_argument(
        "--map", action="append", default=[], metavar="NAME", help="also print this map"
    )
    run.add_argument(
        "--record",
        action="append",
        default=[],
        metavar="MAP=STRUCT",
        help="decode ring buffer MAP's records as STRUCT (when the object does not say)",
    )


def parse_global(plugin_globals: Mapping[str, GlobalInfo], assignment: str) -> tuple[str, Any]:
    """``NAME=VALUE`` with VALUE read as the global's BTF type."""
    name, sep, text = assignment.partition("=")
    if not sep or not name:
        raise PluginGlobalError(f"--set takes NAME=VALUE, got {assignment!r}")
    info = plugin_globals.get(name)
    if info is None:
        known = ", ".join(sorted(plugin_globals)) or "none"
        raise PluginGlobalError(f"no global {name!r} (the program's globals: {known})")
    fields = info.layout.fields
    kind, shape = (fields[0].kind, fields[0].shape) if len(fields) == 1 else ("struct", [])
    try:
        if kind == "char" and shape:
            return name, text
        if shape:
            return name, [int(v, 0) for v in text.split(",") if v]
        if kind == "bool":
            lowered = text.lower()
            if lowered not in _TRUE | _FALSE:
                raise PluginGlobalError(
                    f"global {name!r} is a bool: use true or false, got {text!r}"
                )
            return name, lowered in _TRUE
        if kind == "float":
            return name, float(text)
        if kind.startswith("enum") and not text.lstrip("-").isdigit():
            return name, text
        return name, int(text, 0)
    except ValueError:
        raise PluginGlobalError(f"global {name!r}: {text!r} is not a valid {kind}") from None


def _open_plugin(args: argparse.Namespace) -> Plugin:
    path = Path(args.file)
    if not path.is_file():
        raise PluginObjectError(f"{path} does not exist")
    records = {}
    for item in args.record:
        ring, sep, struct = item.partition("=")
        if not sep:
            raise PluginObjectError(f"--record takes MAP=STRUCT, got {item!r}")
        records[ring] = struct
    if path.suffix == ".c":
        from ..host.compile import compile_file

        path = compile_file(path)
    plugin = Plugin.load(path, programs=args.program, records=records or None)
    plugin.set(**dict(parse_global(plugin.globals, a) for a in args.set))
    for name in args.map:  # checked before anything loads, not after an interval
        if name not in plugin.maps or plugin.maps[name].ring_buffer:
            readable = [m for m, info in plugin.maps.items() if not info.ring_buffer]
            raise PluginObjectError(
                f"--map {name}: {plugin.path.name} has no such map to read "
                f"(its maps: {', '.join(readable) or 'none'})"
            )
    return plugin


def _print_rows(batch: EventBatch, ring: str, header_done: set[str], out: TextIO) -> None:
    columns = batch.columns()
    names = [n for n, c in columns.items() if c.ndim == 1]
    if ring not in header_done:
        print(f"{'TIME':<8} " + " ".join(f"{n.upper():<12}" for n in names), file=out)
        header_done.add(ring)
    stamp = time.strftime("%H:%M:%S")
    for i in range(len(batch)):
        cells = []
        for n in names:
            value = columns[n][i]
            cells.append(f"{value.item() if isinstance(value, np.generic) else value!s:<12}")
        print(f"{stamp:<8} " + " ".join(cells), file=out)


def run_plugin(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    plugin = _open_plugin(args)
    rings = [r for r in plugin.ring_buffers if plugin.maps[r].record is not None]
    with plugin:
        programs = ", ".join(f"{p.name} ({p.section})" for p in plugin.programs.values())
        print(f"Running {plugin.path.name}: {programs}. Hit Ctrl-C to end.", file=out, flush=True)
        headers: set[str] = set()
        shown = 0
        while args.count is None or shown < args.count:
            deadline = time.monotonic() + args.interval
            while (left := deadline - time.monotonic()) > 0:
                if not rings:
                    time.sleep(left)
                    break
                for ring in rings:
                    batch = plugin.next_batch(ring, timeout=min(left, 0.05) / len(rings))
                    if batch is not None:
                        _print_rows(batch, ring, headers, out)
            shown += 1
            for name in plugin.histogram_maps:
                for hist in plugin.histograms(name).values():
                    print("\n" + hist.to_text(), file=out)
            for name in args.map:
                entries = plugin.map(name).to_dict()
                print(f"\n{name}: {len(entries)} entries", file=out)
                for key, value in entries.items():
                    print(f"  {key}: {value}", file=out)
            out.flush()
    for ring in plugin.ring_buffers:
        stats = plugin.stats(ring)
        lost = {k: stats[k] for k in LOSS_COUNTERS if stats[k]}
        if lost:
            print(
                f"ring buffer {ring}: " + ", ".join(f"{k}={v}" for k, v in lost.items()), file=out
            )
    return 0
