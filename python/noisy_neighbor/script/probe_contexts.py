"""From a probe block's attach points to the programs the code generator
writes: each attach point split and its wildcards expanded, and for each
concrete probe the section libbpf attaches it by, what ``args`` and
``retval`` are, and how a profile or interval probe's perf event is set.

Where the kernel has no kprobes, ``kprobe:f`` and ``kretprobe:f`` run as
``fentry:f`` and ``fexit:f``: the same function, entered and returned from,
with its arguments from BTF (one line says so)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from . import ast
from .probes import UnknownProbe, expand, split
from .program_info import ArgInfo, ProbeContext
from .types import Kind, SizedType, int_type

if TYPE_CHECKING:
    from .check_base import CheckerBase as Checker

__all__ = ["make_contexts"]

_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000}
_UNSUPPORTED = {
    "usdt": "USDT probes are not supported yet",
    "watchpoint": "watchpoint probes are not supported",
    "iter": "iter probes are not supported",
}


def make_contexts(checker: Checker, probe: ast.Probe, start: int) -> list[ProbeContext]:
    contexts: list[ProbeContext] = []
    kernel = checker.kernel
    params = checker.info.params
    for point in probe.attach_points:
        raw = re.sub(
            r"\$(\d+|#)",
            lambda m: (
                str(len(params))
                if m.group(1) == "#"
                else (params[int(m.group(1)) - 1] if 0 < int(m.group(1)) <= len(params) else "")
            ),
            point.raw,
        )
        try:
            spec = split(raw)
            if spec.provider in _UNSUPPORTED:
                raise UnknownProbe(_UNSUPPORTED[spec.provider])
            concrete = expand(spec, kernel.tracepoints, kernel.functions)
        except UnknownProbe as err:
            raise checker.error(point.loc, str(err)) from None
        for one in concrete:
            context = ProbeContext(probe, one, start + len(contexts), section="")
            try:
                _describe(checker, context, point)
            except UnknownProbe as err:
                if spec.has_wildcard:
                    continue  # a wildcard skips what it cannot attach, as bpftrace does
                raise checker.error(point.loc, str(err)) from None
            contexts.append(context)
    if not contexts:
        raise checker.error(probe.loc, "No probes to attach")
    return contexts


def _describe(checker: Checker, context: ProbeContext, point: ast.AttachPoint) -> None:
    spec = context.spec
    kernel = checker.kernel
    provider = spec.provider
    if provider in ("BEGIN", "END"):
        context.section = "syscall"
    elif provider == "tracepoint":
        fields = kernel.tracepoint_args(spec.target, spec.func)
        if fields is None:
            raise UnknownProbe(f"tracepoint not found: {spec.target}:{spec.func}")
        context.section = f"tp/{spec.target}/{spec.func}"
        context.args = {
            f.name: ArgInfo(f.name, f.type, f"args->{f.c_name}", f.data_loc) for f in fields
        }
    elif provider == "rawtracepoint":
        context.section = f"raw_tp/{spec.func}"
    elif provider in ("kfunc", "kretfunc"):
        _fentry(checker, context, spec.func, provider == "kretfunc")
    elif provider in ("kprobe", "kretprobe"):
        if kernel.has_kprobes:
            context.section = f"{provider}/{spec.func}"
            if provider == "kretprobe":
                context.retval = int_type(8, False)
                context.retval_c = "PT_REGS_RC((struct pt_regs *)ctx)"
        else:
            _fentry(checker, context, spec.func, provider == "kretprobe")
            context.via_fentry = True
            note = (
                f"{spec.name} runs as {'fexit' if provider == 'kretprobe' else 'fentry'}:"
                f"{spec.func} (this kernel has no kprobes)"
            )
            if note not in checker.info.notes:
                checker.info.notes.append(note)
    elif provider in ("uprobe", "uretprobe"):
        context.section = f"{provider}/{_binary(spec.target)}:{spec.func}"
        if provider == "uretprobe":
            context.retval = int_type(8, False)
            context.retval_c = "PT_REGS_RC((struct pt_regs *)ctx)"
    elif provider == "profile":
        context.section = "perf_event"
        rate = (
            {"frequency": spec.count}
            if spec.unit == "hz"
            else {"period": spec.count * _NS[spec.unit]}
        )
        context.perf_event = {"type": "software", "event": "cpu-clock", **rate}
    elif provider == "interval":
        context.section = "perf_event"
        period = 1000000000 // spec.count if spec.unit == "hz" else spec.count * _NS[spec.unit]
        context.perf_event = {
            "type": "software",
            "event": "cpu-clock",
            "period": period,
            "cpus": "first",
        }
    elif provider in ("software", "hardware"):
        from .probes import HARDWARE_EVENTS, SOFTWARE_EVENTS

        events = SOFTWARE_EVENTS if provider == "software" else HARDWARE_EVENTS
        context.section = "perf_event"
        context.perf_event = {"type": provider, "event": events[spec.unit][0], "period": spec.count}
    else:
        raise UnknownProbe(f"{provider} probes are not supported")


def _binary(target: str) -> str:
    """A uprobe's binary: a path as given, or a library's name (``libc``,
    ``libssl``) found as the dynamic linker finds it, as bpftrace does."""
    if "/" in target:
        return target
    import subprocess

    try:
        listed = subprocess.run(
            ["ldconfig", "-p"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        listed = ""
    stem = target if target.startswith("lib") else f"lib{target}"
    for line in listed.splitlines():
        name, _, path = line.strip().partition(" => ")
        if name.split(" ", 1)[0].startswith(f"{stem}.so") and path:
            return path.strip()
    raise UnknownProbe(f"uprobe target {target!r}: no such library or file (give its path)")


def _fentry(checker: Checker, context: ProbeContext, func: str, exit_: bool) -> None:
    function = checker.kernel.function(func)
    if function is None:
        raise UnknownProbe(
            f"{func} is not a traceable kernel function: it is not in the kernel's BTF "
            "(it may be inlined, static or renamed, e.g. .isra.0)"
        )
    context.section = f"{'fexit' if exit_ else 'fentry'}/{func}"
    context.nargs = len(function.params)
    context.args = {
        param.name: ArgInfo(param.name, param.type, f"(({param.c_type})ctx[{i}])")
        for i, param in enumerate(function.params)
    }
    if exit_:
        ret = function.ret
        if ret is None or ret.type.kind is Kind.NONE:
            context.retval = int_type(8, False)
            context.retval_c = f"ctx[{len(function.params)}]"
        else:
            context.retval = ret.type
            context.retval_c = f"(({ret.c_type})ctx[{len(function.params)}])"
    if context.retval is not None and context.retval.kind is Kind.INT:
        context.retval = SizedType(Kind.INT, 8, context.retval.signed)
