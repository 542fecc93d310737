"""bpftrace's language on the probe host: a script is parsed, checked against
the kernel's BTF, generated as C for the SDK, compiled by clang, and loaded
by the same host as every plugin; its maps and printf records come back as
numpy columns, pandas objects and bpftrace's own text and NDJSON.

Passes, one file each: :mod:`.preprocess` and :mod:`.lexer` ->
:mod:`.parser` (the syntax tree, :mod:`.ast`) -> the checker (types, map
kinds) -> the C generator -> clang -> the host -> the output formats.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .runtime import Script

__all__ = ["Script", "bpftrace"]


def bpftrace(program: str | os.PathLike[str], *args: Any, **options: Any) -> Script:
    """A bpftrace program, compiled and ready: ``program`` is its text, or
    the path of a ``.bt`` file; ``args`` are ``$1``, ``$2``... Options:
    ``unsafe=True`` allows ``system()`` and ``signal()``; plugin options
    (``batch_events``, ``pending_batches``...) pass through.

        with nn.bpftrace("tracepoint:sched:sched_process_exec { @[comm] = count(); }") as s:
            time.sleep(5)
        s.map("@")            # a Series: exec count by comm

    Start it with ``start()`` or ``with`` (``BEGIN`` runs), read
    ``maps()``/``map("@name")`` any time, iterate ``batches()`` for printf
    records as numpy columns; ``stop()`` runs ``END``."""
    if isinstance(program, os.PathLike) or (
        isinstance(program, str)
        and "\n" not in program
        and program.endswith(".bt")
        and Path(program).is_file()
    ):
        path = Path(program)
        options.setdefault("name", str(path))
        program = path.read_text(errors="surrogateescape")
    return Script(str(program), *args, **options)
