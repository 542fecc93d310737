"""Where a script's output goes: bpftrace's text or its NDJSON, written to a
stream as the records arrive, or kept as text for Python."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import TextIO

from . import output_json, output_text
from .diagnostics import Diagnostic
from .values import MapSnapshot, TypedValue

__all__ = ["JsonSink", "Sink", "TextSink", "sink_for"]


class Sink:
    """bpftrace's text. ``stream`` may be None: the text is then only kept
    (``keep=True``) for :meth:`Script.text`."""

    def __init__(self, stream: TextIO | None, keep: bool = False, keep_max: int = 100_000) -> None:
        self.stream = stream
        self.kept: list[str] | None = [] if keep else None
        self.keep_max = keep_max

    def write(self, text: str) -> None:
        if not text:
            return
        if self.stream is not None:
            self.stream.write(text)
        if self.kept is not None:
            self.kept.append(text)
            if len(self.kept) > self.keep_max:
                del self.kept[: len(self.kept) - self.keep_max]

    def flush(self) -> None:
        if self.stream is not None:
            self.stream.flush()

    def attached(self, count: int) -> None:
        self.write(output_text.attached_probes_text(count))

    def printf(self, texts: Iterable[str], kind: str = "printf") -> None:
        self.write("".join(texts))  # one write for a batch

    def map(self, snapshot: MapSnapshot, top: int = 0, div: int = 0) -> None:
        self.write(output_text.map_text(snapshot, top, div))

    def value(self, value: TypedValue) -> None:
        self.write(output_text.value_text(value))

    def time(self, fmt: str) -> None:
        self.write(output_text.time_text(fmt, int(time.time())) or "")

    def join(self, args: Iterable[str], delim: str) -> None:
        self.write(output_text.join_text(args, delim))

    def lost(self, count: int) -> None:
        self.write(output_text.lost_events_text(count))

    def at_exit(self, snapshots: Iterable[MapSnapshot]) -> None:
        self.write(output_text.maps_at_exit_text(snapshots))

    def helper_error(self, helper: str, retcode: int, where: Diagnostic) -> None:
        """A helper that failed (``-k``): a warning on stderr, as bpftrace's."""
        print(where, file=sys.stderr)
        del helper, retcode


TextSink = Sink


class JsonSink(Sink):
    """bpftrace's ``-f json``: one JSON object a line."""

    def attached(self, count: int) -> None:
        self.write(output_json.attached_probes_json(count))

    def printf(self, texts: Iterable[str], kind: str = "printf") -> None:
        self.write("".join(output_json.message_json(kind, text) for text in texts))

    def map(self, snapshot: MapSnapshot, top: int = 0, div: int = 0) -> None:
        self.write(output_json.map_json(snapshot, top, div))

    def value(self, value: TypedValue) -> None:
        self.write(output_json.value_line_json(value))

    def time(self, fmt: str) -> None:
        self.write(output_json.time_json(fmt, int(time.time())) or "")

    def join(self, args: Iterable[str], delim: str) -> None:
        self.write(output_json.join_json(args, delim))

    def lost(self, count: int) -> None:
        self.write(output_json.lost_events_json(count))

    def at_exit(self, snapshots: Iterable[MapSnapshot]) -> None:
        self.write(output_json.maps_at_exit_json(snapshots))

    def helper_error(self, helper: str, retcode: int, where: Diagnostic) -> None:
        loc = where.location
        line, column = (loc.line, loc.column) if loc is not None else (0, 0)
        self.write(
            f'{{"type": "helper_error", "helper": "{helper}", "retcode": {retcode}, '
            f'"line": {line}, "col": {column}}}\n'
        )


def sink_for(fmt: str, stream: TextIO | None, keep: bool = False) -> Sink:
    if fmt == "json":
        return JsonSink(stream, keep)
    if fmt == "text":
        return Sink(stream, keep)
    raise ValueError(f"output format {fmt!r}: choose text or json")
