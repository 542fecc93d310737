"""A script's passes up to an object the host can load: parse, check
against this kernel, generate C, compile with clang (bounded in time and
memory, cached by content like every plugin)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PluginCompileError, ScriptError
from ..host.compile import compile_source
from ..host.plugin import Plugin
from .check import check
from .codegen import generate
from .diagnostics import Source, fail
from .kernel import Kernel
from .load_errors import locate_compile_error
from .parser import parse
from .program_info import ProgramInfo
from .user_types import IncompleteType

__all__ = ["CompiledScript", "compile_script"]


@dataclass
class CompiledScript:
    name: str
    info: ProgramInfo
    code: str
    object_path: Path
    probe_names: list[str]

    @property
    def begin_programs(self) -> list[str]:
        return [c.c_name for c in self.info.contexts if c.spec.provider == "BEGIN"]

    @property
    def end_programs(self) -> list[str]:
        return [c.c_name for c in self.info.contexts if c.spec.provider == "END"]

    @property
    def perf_events(self) -> dict[str, dict[str, object]]:
        return {c.c_name: c.perf_event for c in self.info.contexts if c.perf_event is not None}

    @property
    def record_size(self) -> int:
        return self._record_size

    def plugin(
        self,
        cpid: int | None = None,
        ring_bytes: int | None = None,
        map_keys_max: int | None = None,
        **options: Any,
    ) -> Plugin:
        """The host's plugin of this script. ``ring_bytes``: each CPU's event
        ring (a power of two; bpftrace's BPFTRACE_PERF_RB_PAGES pages when
        not given); ``map_keys_max``: entries of every map
        (BPFTRACE_MAP_KEYS_MAX, else bpftrace's 4096)."""
        attached = [c.c_name for c in self.info.contexts]
        sizes = dict(options.pop("max_entries", None) or {})
        pages = os.environ.get("BPFTRACE_PERF_RB_PAGES", "")
        if ring_bytes is None and pages.isdigit() and int(pages) > 0:
            ring_bytes = int(pages) * 4096
        if ring_bytes is not None:
            sizes["nn_events"] = 1 << max(int(ring_bytes) - 1, 4095).bit_length()
        keys = os.environ.get("BPFTRACE_MAP_KEYS_MAX", "")
        if map_keys_max is None and keys.isdigit() and int(keys) > 0:
            map_keys_max = int(keys)
        if map_keys_max is not None:
            sizes.update({info.c_name: int(map_keys_max) for info in self.info.maps.values()})
        if sizes:
            options["max_entries"] = sizes
        perf = self.perf_events
        if perf:
            options.setdefault("perf_events", perf)
        plugin = Plugin(
            self.object_path,
            name=self.name,
            programs=attached,
            rings=["nn_events"],
            # BEGIN runs before the probes attach, as in bpftrace
            run_before_attach=self.begin_programs,
            nn_cpid=cpid or 0,
            **options,
        )
        record = plugin.maps["nn_events"].record
        assert record is not None, "the event rings' record type is missing from the object's BTF"
        self._record_size = record.size
        return plugin


def compile_script(
    program: str,
    params: list[str],
    name: str = "stdin",
    unsafe: bool = False,
    has_child: bool = False,
    includes: list[str] | None = None,
    helper_errors: int = 0,
) -> CompiledScript:
    """Raises ScriptError for a bad script, PluginCompileError if clang
    fails on the generated C (a bug here: the message says so)."""
    source = Source(program, name)
    tree = parse(program, name, includes=includes)
    try:
        kernel = Kernel(tree.definitions)
    except IncompleteType as err:
        raise fail(
            source, tree.definitions[0].loc if tree.definitions else None, str(err)
        ) from None
    info = check(tree, source, kernel, params, unsafe=unsafe, has_child=has_child)
    info.helper_errors = helper_errors
    code, gen = generate(info, kernel)
    if os.environ.get("NN_BPFTRACE_DUMP_C"):
        Path(os.environ["NN_BPFTRACE_DUMP_C"]).write_text(code)
    try:
        obj = compile_source(code, name="bpftrace_script")
    except PluginCompileError as err:
        located = locate_compile_error(str(err), code, source, info)
        if located is None:
            raise
        raise ScriptError([located]) from None
    return CompiledScript(name, info, code, obj, gen.probe_names)
