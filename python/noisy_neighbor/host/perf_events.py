"""The perf event each ``perf_event`` program of a plugin runs on, from
``perf_events={"program": spec}``: a spec is a :class:`PerfEvent` or a dict
of its arguments, ``{"type": "software", "event": "cpu-clock", "period":
100_000_000, "cpus": "first"}``. Checked before anything loads: the program
must be a ``perf_event`` program the plugin loads, and the spec must name a
known event with exactly one of ``frequency`` and ``period``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._native import PerfEvent, ProgramInfo
from ..errors import PluginObjectError

__all__ = ["PerfEvent", "perf_events_by_program"]

#: The arguments of PerfEvent a dict spec may give.
SPEC_KEYS = ("type", "event", "frequency", "period", "cpus")


def _perf_event(program: str, spec: PerfEvent | Mapping[str, Any]) -> PerfEvent:
    if isinstance(spec, PerfEvent):
        return spec
    if not isinstance(spec, Mapping):
        raise TypeError(
            f"perf_events[{program!r}] must be a PerfEvent or a dict with keys "
            f"{', '.join(SPEC_KEYS)}; got {type(spec).__name__}"
        )
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    missing = [key for key in ("type", "event") if key not in spec]
    if unknown or missing:
        wrong = f"unknown keys {unknown}" if unknown else f"no {' or '.join(missing)}"
        raise ValueError(
            f"perf_events[{program!r}] has {wrong}: a spec takes type ('software' or "
            "'hardware'), event, one of frequency and period, and cpus ('all' or 'first')"
        )
    try:
        return PerfEvent(**spec)
    except ValueError as err:
        raise ValueError(f"perf_events[{program!r}]: {err}") from None


def perf_events_by_program(
    plugin: str,
    programs: Mapping[str, ProgramInfo],
    selected: list[str] | None,
    specs: Mapping[str, PerfEvent | Mapping[str, Any]],
) -> list[tuple[str, PerfEvent]]:
    """``specs`` checked against the programs of plugin ``plugin`` (those in
    ``selected`` when given), as the host takes them."""
    perf_programs = [name for name, info in programs.items() if info.attach == "perf_event"]
    checked = []
    for program, spec in specs.items():
        if program not in perf_programs:
            what = (
                f"SEC({programs[program].section!r}), not SEC('perf_event')"
                if program in programs
                else "not a program of it"
            )
            raise PluginObjectError(
                f"perf_events names {program!r}, {what} in {plugin}; its perf_event "
                f"programs: {', '.join(perf_programs) or 'none'}"
            )
        if selected is not None and program not in selected:
            raise PluginObjectError(
                f"perf_events names {program!r}, which programs={selected} leaves out"
            )
        checked.append((program, _perf_event(program, spec)))
    return checked
