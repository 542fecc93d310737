"""The ``%%bpf`` cell magic: compile the cell's C with the SDK, load it as a
:class:`~noisy_neighbor.Plugin` and bind it in the notebook.

    %load_ext noisy_neighbor

    %%bpf execs --set target_cgroup=1234
    #include "vmlinux.h"
    ...

binds ``execs`` (default name: ``plugin``) and returns it; start it with
``with execs:`` or ``execs.start()``.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from ..host.plugin import Plugin
from .cli_run import parse_global

__all__ = ["bpf_magic", "load_ipython_extension"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="%%bpf", add_help=False, exit_on_error=False)
    parser.add_argument("name", nargs="?", default="plugin")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--program", action="append", default=None, metavar="NAME")
    return parser


def bpf_magic(line: str, cell: str, namespace: dict[str, Any] | None = None) -> Plugin:
    """Compiles ``cell``, loads it with the globals of ``--set`` and binds it
    to the name on the magic line in ``namespace``."""
    try:
        args = _parser().parse_args(shlex.split(line))
    except (argparse.ArgumentError, SystemExit) as err:
        raise ValueError(
            f"%%bpf [NAME] [--set NAME=VALUE ...] [--program NAME ...]: {err}"
        ) from None
    if not args.name.isidentifier():
        raise ValueError(f"%%bpf: {args.name!r} is not a Python name to bind the plugin to")
    plugin = Plugin.from_source(cell, name=args.name, programs=args.program)
    plugin.set(**dict(parse_global(plugin.globals, item) for item in args.set))
    if namespace is not None:
        namespace[args.name] = plugin
    return plugin


def load_ipython_extension(ipython: Any) -> None:
    """Registers ``%%bpf`` and ``%%bpftrace`` (``%load_ext noisy_neighbor``)."""
    from .bpftrace_magic import bpftrace_magic

    def bpf(line: str, cell: str) -> Plugin:
        return bpf_magic(line, cell, ipython.user_ns)

    def bpftrace(line: str, cell: str) -> Any:
        return bpftrace_magic(line, cell, ipython.user_ns)

    bpf.__doc__ = bpf_magic.__doc__
    bpftrace.__doc__ = bpftrace_magic.__doc__
    ipython.register_magic_function(bpf, magic_kind="cell", magic_name="bpf")
    ipython.register_magic_function(bpftrace, magic_kind="cell", magic_name="bpftrace")
