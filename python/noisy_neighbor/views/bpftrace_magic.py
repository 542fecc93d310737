"""The ``%%bpftrace`` cell magic: run the cell as a bpftrace program, then
show its maps (tables, and histograms as plots) and bind the finished
script in the notebook.

    %load_ext noisy_neighbor

    %%bpftrace execs --seconds 5
    tracepoint:sched:sched_process_exec { @[comm] = count(); }

runs for 5 s (or until ``exit()``, or the kernel is interrupted), prints
printf output as it comes, and binds ``execs`` (default name: ``script``):
``execs.map("@")`` is a Series. Words after the options are ``$1``, ``$2``...
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from ..script.runtime import Script

__all__ = ["bpftrace_magic"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="%%bpftrace", add_help=False, exit_on_error=False)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--resolve", action="store_true")
    parser.add_argument("--unsafe", action="store_true")
    parser.add_argument("words", nargs="*")
    return parser


def bpftrace_magic(line: str, cell: str, namespace: dict[str, Any] | None = None) -> Script:
    """Runs ``cell`` until ``exit()``, ``--seconds`` or an interrupt; binds
    and returns the stopped script, which shows its maps."""
    try:
        args = _parser().parse_intermixed_args(shlex.split(line))
    except (argparse.ArgumentError, SystemExit, ValueError) as err:
        raise ValueError(
            f"%%bpftrace [NAME] [--seconds S] [--resolve] [--unsafe] [ARGS...]: {err}"
        ) from None
    words = list(args.words)
    name = "script"
    if words and words[0].isidentifier() and not words[0].isdigit():
        name = words.pop(0)
    script = Script(cell, *words, name=f"%%bpftrace {name}", unsafe=args.unsafe, stream=sys.stdout)
    script.resolve = args.resolve
    script.run(args.seconds)
    if namespace is not None:
        namespace[name] = script
    return script
