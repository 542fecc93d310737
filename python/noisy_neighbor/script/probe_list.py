"""What ``bpftrace -l PATTERN`` lists, and a probe's wildcard expanded into
the concrete targets the code generator makes one program each for.

The lists come from where bpftrace 0.17 takes them: tracepoints from tracefs'
available_events, kfunc/kretfunc from the BTF's functions (vmlinux's and
each module's, written ``kfunc:vmlinux:vfs_read``; only those of up to six
parameters, and only those in available_filter_functions when it can be
read), kprobes from available_filter_functions, software and hardware events
from bpftrace's fixed tables (``software:cpu-clock:``; aliases such as
``cs`` are accepted in probes but not listed), and the two BPF iterators.

As in bpftrace, only ``*`` is a wildcard, it also matches ':', and lines are
sorted within each provider, providers by name. A listing pattern without a
provider (``*sched_switch*``) searches every provider."""

from __future__ import annotations

import os
import re
from functools import cache

from .btf import KernelBtf
from .probes import HARDWARE_EVENTS, PROVIDERS, SOFTWARE_EVENTS
from .tracepoints import tracefs, tracepoints

__all__ = ["ITERATORS", "LISTED_PROVIDERS", "expand", "kprobe_functions", "list_probes"]

#: The BPF iterators bpftrace 0.17 knows.
ITERATORS = ("task", "task_file")
#: The providers a listing covers, as bpftrace 0.17's kernel_probe_list does
#: (no return probes, user-space probes, timers or watchpoints).
LISTED_PROVIDERS = ("hardware", "iter", "kfunc", "kprobe", "software", "tracepoint")
# fentry passes a program at most six arguments (x86-64's registers).
_MAX_FENTRY_PARAMS = 6


def _wildcard(pattern: str) -> re.Pattern[str]:
    """bpftrace's wildcard match: ``*`` is any text, everything else literal."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.S)


@cache
def _filter_functions() -> tuple[str, ...] | None:
    """available_filter_functions' names (module suffixes dropped); None if
    it cannot be read (a locked-down kernel refuses even root)."""
    try:
        with open(os.path.join(tracefs(), "available_filter_functions")) as functions:
            return tuple(sorted({line.split()[0] for line in functions if line.strip()}))
    except OSError:
        return None


def kprobe_functions() -> list[str]:
    """The functions kprobes can attach to: none without kprobes in the
    kernel (no /sys/bus/event_source/devices/kprobe) or a readable list.
    GCC's ``.part.N`` clones are left out, as bpftrace does."""
    if not os.path.isdir("/sys/bus/event_source/devices/kprobe"):
        return []
    return [name for name in _filter_functions() or () if ".part." not in name]


def _kernel_functions(btf: KernelBtf) -> list[tuple[str, str]]:
    """(module, function) for every function fentry can attach to."""
    traceable = _filter_functions()
    found = []
    for module in ("vmlinux", *btf.module_names()):
        module_btf = btf if module == "vmlinux" else btf.module(module)
        for name in module_btf.funcs(max_params=_MAX_FENTRY_PARAMS) if module_btf else ():
            found.append((module, name))
    if traceable is not None:
        allowed = set(traceable)
        found = [(module, name) for module, name in found if name in allowed]
    return found


def _candidates(provider: str, btf: KernelBtf | None) -> list[str]:
    """Every probe a provider has, as written after ``provider:``."""
    if provider == "tracepoint":
        return tracepoints("*:*")
    if provider in ("kfunc", "kretfunc"):
        return [f"{m}:{f}" for m, f in _kernel_functions(btf or KernelBtf.load())]
    if provider in ("kprobe", "kretprobe"):
        return kprobe_functions()
    if provider in ("software", "hardware"):
        events = SOFTWARE_EVENTS if provider == "software" else HARDWARE_EVENTS
        return sorted(f"{name}:" for name, (canonical, _) in events.items() if name == canonical)
    if provider == "iter":
        return list(ITERATORS)
    return []


def _search(provider: str, pattern: str, explicit: bool) -> str:
    """A listing's pattern for one provider, a missing part a wildcard as
    bpftrace fills it: ``tracepoint:irq*`` is ``*:irq*`` (events named irq*
    in any category), ``kfunc:vfs_*`` any module's, ``software:c*`` is
    ``c*:*``."""
    if not explicit or ":" in pattern:
        return pattern
    if provider in ("tracepoint", "kfunc", "kretfunc"):
        return "*:" + pattern
    if provider in ("software", "hardware"):
        return pattern + ":*"
    return pattern


def list_probes(pattern: str = "*", btf: KernelBtf | None = None) -> list[str]:
    """The lines ``bpftrace -l PATTERN`` prints: ``tracepoint:sched:sched_switch``,
    ``kfunc:vmlinux:vfs_read``, ``software:cpu-clock:``, ``iter:task``. A
    probe without a wildcard that lists nothing (``BEGIN``, ``profile:hz:99``)
    is given back as written, with its provider's alias resolved."""
    name, colon, rest = (pattern or "*").partition(":")
    if not colon and name not in PROVIDERS:
        name, rest = "*", name  # no provider: search them all
    explicit = name != "*"
    providers = [PROVIDERS[name]] if name in PROVIDERS else []
    if not providers:
        matcher = _wildcard(name)
        providers = [p for p in LISTED_PROVIDERS if matcher.fullmatch(p)]
    lines = []
    for provider in providers:
        if provider not in LISTED_PROVIDERS and provider not in ("kretfunc", "kretprobe"):
            lines.append(f"{provider}:{rest}" if rest else provider)
            continue
        matcher = _wildcard(_search(provider, rest or "*", explicit))
        if provider in ("kfunc", "kretfunc") and btf is None:
            btf = KernelBtf.load()
        lines += [f"{provider}:{c}" for c in _candidates(provider, btf) if matcher.fullmatch(c)]
    return lines


def expand(provider: str, pattern: str, btf: KernelBtf | None = None) -> list[tuple[str, ...]]:
    """The concrete targets of a probe's wildcard, sorted: ``(category,
    event)`` for a tracepoint (``syscalls:sys_enter_open*``), ``(module,
    function)`` for kfunc/kretfunc (``vfs_*`` or ``vmlinux:vfs_*``),
    ``(function,)`` for kprobes, ``(event,)`` for software and hardware
    events (aliases included, canonical names given), ``(iterator,)``."""
    provider = PROVIDERS.get(provider, provider)
    if provider == "tracepoint":  # as listed: "sched_*" is any category's
        matcher = _wildcard(pattern if ":" in pattern else "*:" + pattern)
        return [tuple(n.split(":", 1)) for n in tracepoints("*:*") if matcher.fullmatch(n)]
    if provider in ("kfunc", "kretfunc"):
        matcher = _wildcard(pattern if ":" in pattern else "*:" + pattern)
        found = _kernel_functions(btf or KernelBtf.load())
        return [(m, f) for m, f in found if matcher.fullmatch(f"{m}:{f}")]
    if provider in ("kprobe", "kretprobe"):
        matcher = _wildcard(pattern)
        return [(name,) for name in kprobe_functions() if matcher.fullmatch(name)]
    if provider in ("software", "hardware"):
        events = SOFTWARE_EVENTS if provider == "software" else HARDWARE_EVENTS
        matcher = _wildcard(pattern)
        return sorted({(canonical,) for name, (canonical, _) in events.items()
                       if matcher.fullmatch(name)})  # fmt: skip
    if provider == "iter":
        matcher = _wildcard(pattern)
        return [(name,) for name in ITERATORS if matcher.fullmatch(name)]
    return []
