"""Attach points: ``tracepoint:sched:sched_switch``, ``t:syscalls:sys_enter_*``,
``kfunc:vfs_read``, ``profile:hz:99``... split into a :class:`ProbeSpec`,
aliases resolved, and wildcards expanded into the concrete probes the code
generator makes one program each for, as bpftrace does."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "HARDWARE_EVENTS",
    "PROVIDERS",
    "SOFTWARE_EVENTS",
    "ProbeSpec",
    "UnknownProbe",
    "expand",
    "split",
]

#: Every provider and the aliases bpftrace accepts for it.
PROVIDERS = {
    "BEGIN": "BEGIN",
    "END": "END",
    "kprobe": "kprobe",
    "k": "kprobe",
    "kretprobe": "kretprobe",
    "kr": "kretprobe",
    "uprobe": "uprobe",
    "u": "uprobe",
    "uretprobe": "uretprobe",
    "ur": "uretprobe",
    "usdt": "usdt",
    "U": "usdt",
    "tracepoint": "tracepoint",
    "t": "tracepoint",
    "rawtracepoint": "rawtracepoint",
    "rt": "rawtracepoint",
    "profile": "profile",
    "p": "profile",
    "interval": "interval",
    "i": "interval",
    "software": "software",
    "s": "software",
    "hardware": "hardware",
    "h": "hardware",
    "watchpoint": "watchpoint",
    "w": "watchpoint",
    "kfunc": "kfunc",
    "f": "kfunc",
    "fentry": "kfunc",
    "kretfunc": "kretfunc",
    "fr": "kretfunc",
    "fexit": "kretfunc",
    "iter": "iter",
    "it": "iter",
}

#: Software events: name -> (perf config name, bpftrace's default count), with aliases.
SOFTWARE_EVENTS = {
    "cpu-clock": ("cpu-clock", 1_000_000),
    "cpu": ("cpu-clock", 1_000_000),
    "task-clock": ("task-clock", 1_000_000),
    "page-faults": ("page-faults", 100),
    "faults": ("page-faults", 100),
    "context-switches": ("context-switches", 1_000),
    "cs": ("context-switches", 1_000),
    "cpu-migrations": ("cpu-migrations", 1),
    "minor-faults": ("minor-faults", 100),
    "major-faults": ("major-faults", 1),
    "alignment-faults": ("alignment-faults", 1),
    "emulation-faults": ("emulation-faults", 1),
    "dummy": ("dummy", 1),
    "bpf-output": ("bpf-output", 1),
}
HARDWARE_EVENTS = {
    "cpu-cycles": ("cpu-cycles", 1_000_000),
    "cycles": ("cpu-cycles", 1_000_000),
    "instructions": ("instructions", 1_000_000),
    "cache-references": ("cache-references", 1_000_000),
    "cache-misses": ("cache-misses", 1_000_000),
    "branch-instructions": ("branch-instructions", 100_000),
    "branches": ("branch-instructions", 100_000),
    "branch-misses": ("branch-misses", 100_000),
    "bus-cycles": ("bus-cycles", 100_000),
    "frontend-stalls": ("frontend-stalls", 1_000_000),
    "backend-stalls": ("backend-stalls", 1_000_000),
    "ref-cycles": ("ref-cycles", 1_000_000),
}
#: Time units of profile and interval probes, in ns per unit (hz is a rate).
_UNITS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "hz": 0}


class UnknownProbe(ValueError):
    """An attach point that names nothing; the text is bpftrace's message."""


@dataclass(frozen=True)
class ProbeSpec:
    """One concrete probe. ``provider`` is canonical (``tracepoint``,
    ``kfunc``...); ``target`` is the tracepoint's category, the uprobe's
    binary, a module; ``func`` the event, function or symbol; ``unit`` and
    ``count`` the rate of profile, interval, software and hardware probes
    (``unit`` is ``hz`` or a time unit, or the perf event's name)."""

    provider: str
    target: str = ""
    func: str = ""
    unit: str = ""
    count: int = 0

    @property
    def name(self) -> str:
        """The name the ``probe`` builtin gives, as bpftrace writes it."""
        if self.provider in ("BEGIN", "END"):
            return self.provider
        if self.provider in ("profile", "interval", "software", "hardware"):
            return f"{self.provider}:{self.unit}:{self.count}"
        if self.provider in ("tracepoint", "uprobe", "uretprobe", "usdt") or (
            self.target and self.provider in ("kfunc", "kretfunc")
        ):
            return f"{self.provider}:{self.target}:{self.func}"
        return f"{self.provider}:{self.func}"

    @property
    def has_wildcard(self) -> bool:
        return any(c in part for part in (self.target, self.func) for c in "*?[")


def _count(text: str, raw: str) -> int:
    if not re.fullmatch(r"[0-9]+", text or ""):
        raise UnknownProbe(f"{raw}: expected a positive integer, got '{text}'")
    value = int(text)
    if value <= 0:
        raise UnknownProbe(f"{raw}: the rate must be positive")
    return value


def split(raw: str) -> ProbeSpec:
    """An attach point as written, parsed but not yet expanded."""
    text = raw.replace('"', "")
    provider_name, _, rest = text.partition(":")
    provider = PROVIDERS.get(provider_name)
    if provider is None:
        raise UnknownProbe(f"Invalid probe type: {provider_name}")
    parts = rest.split(":") if rest else []
    if provider in ("BEGIN", "END"):
        if parts:
            raise UnknownProbe(f"{provider} takes no arguments")
        return ProbeSpec(provider)
    if provider in ("profile", "interval"):
        if len(parts) != 2 or parts[0] not in _UNITS:
            raise UnknownProbe(
                f"{provider} probe type requires 2 arguments: {provider}:<s|ms|us|hz>:<count>"
            )
        return ProbeSpec(provider, unit=parts[0], count=_count(parts[1], raw))
    if provider in ("software", "hardware"):
        events = SOFTWARE_EVENTS if provider == "software" else HARDWARE_EVENTS
        if not 1 <= len(parts) <= 2 or parts[0] not in events:
            known = ", ".join(sorted(events))
            raise UnknownProbe(f"{raw}: unknown {provider} event; known: {known}")
        count = _count(parts[1], raw) if len(parts) == 2 and parts[1] else events[parts[0]][1]
        return ProbeSpec(provider, unit=parts[0], count=count)
    if provider == "tracepoint":
        if len(parts) != 2 or not all(parts):
            raise UnknownProbe(f"tracepoint probe type requires 2 arguments: {raw}")
        return ProbeSpec(provider, target=parts[0], func=parts[1])
    if provider in ("kprobe", "kretprobe", "rawtracepoint"):
        if len(parts) == 2:  # a module-qualified function: module:function
            return ProbeSpec(provider, target=parts[0], func=parts[1])
        if len(parts) != 1 or not parts[0]:
            raise UnknownProbe(f"{provider} probe type requires 1 argument: {raw}")
        return ProbeSpec(provider, func=parts[0])
    if provider in ("kfunc", "kretfunc"):
        if len(parts) == 2:
            return ProbeSpec(provider, target=parts[0], func=parts[1])
        if len(parts) != 1 or not parts[0]:
            raise UnknownProbe(f"{provider} probe type requires 1 argument: {raw}")
        return ProbeSpec(provider, func=parts[0])
    if provider in ("uprobe", "uretprobe", "usdt"):
        if len(parts) < 2 or not parts[0]:
            raise UnknownProbe(f"{provider} probe type requires a binary and a function: {raw}")
        return ProbeSpec(provider, target=parts[0], func=":".join(parts[1:]))
    return ProbeSpec(provider, target=parts[0] if parts else "", func=":".join(parts[1:]))


def expand(
    spec: ProbeSpec,
    tracepoints: Callable[[str], list[str]],
    functions: Callable[[str], list[str]],
) -> list[ProbeSpec]:
    """The concrete probes a spec stands for. ``tracepoints(glob)`` lists
    ``category:event`` names, ``functions(glob)`` kernel functions; an
    empty expansion is bpftrace's error for a probe that matches nothing."""
    if not spec.has_wildcard:
        return [spec]
    if spec.provider == "tracepoint":
        names = tracepoints(f"{spec.target}:{spec.func}")
        found = [ProbeSpec(spec.provider, *name.split(":", 1)[:2]) for name in names]  # type: ignore[arg-type]
    elif spec.provider in ("kprobe", "kretprobe", "kfunc", "kretfunc"):
        found = [
            ProbeSpec(spec.provider, spec.target, name)
            for name in functions(spec.func)
            if fnmatch.fnmatchcase(name, spec.func)
        ]
    else:
        raise UnknownProbe(f"{spec.name}: wildcards are not supported for {spec.provider} probes")
    if not found:
        raise UnknownProbe(f"No probes matched {spec.name}")
    return found
