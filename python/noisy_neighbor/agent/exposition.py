"""The two text formats Prometheus scrapes: its own (version 0.0.4) and
OpenMetrics 1.0.0, which Prometheus asks for first. They differ in how a
family is named in its ``# TYPE`` line (OpenMetrics drops a counter's
``_total`` and an info's ``_info``), in ``# UNIT`` and in the closing
``# EOF``; the samples are the same lines.

Label values come from cgroup paths and container names, which anyone who
can make a cgroup chooses: they are escaped, and bytes that are not UTF-8 are
replaced, so no name can break a line or the scrape.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "OPENMETRICS",
    "PROMETHEUS_TEXT",
    "Family",
    "content_type_for",
    "label_set",
    "render",
]

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

#: What a family's samples are called, after its name, per type.
_SAMPLE_SUFFIX = {"counter": "_total", "info": "_info", "gauge": "", "histogram": ""}


def _escape(value: str) -> str:
    # Surrogates stand for bytes of a path that were not UTF-8; a scraper
    # rejects them, so they become U+FFFD.
    value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def label_set(labels: Iterable[tuple[str, str | None]]) -> str:
    """``{name="value",...}``, empty values left out (as Prometheus treats
    an empty label as no label); ``""`` when none is left."""
    parts = [f'{name}="{_escape(value)}"' for name, value in labels if value]
    return "{" + ",".join(parts) + "}" if parts else ""


def format_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


@dataclass
class Family:
    """One metric family: its name (without ``_total``/``_info``), type,
    help, unit, and its sample lines, formatted as they are added (the same
    in both formats; a scrape of 10,000 cgroups makes ~650,000 of them)."""

    name: str
    type: str
    help: str
    unit: str = ""
    samples: list[str] = field(default_factory=list)

    def add(self, labels: str, value: float, suffix: str | None = None) -> None:
        """A sample: ``labels`` from :func:`label_set`; ``suffix`` follows
        the family's name (``_bucket`` of a histogram, say), by default the
        type's (``_total`` of a counter)."""
        stem_suffix = _SAMPLE_SUFFIX[self.type] if suffix is None else suffix
        self.samples.append(f"{self.name}{stem_suffix}{labels} {format_value(value)}")

    def add_lines(self, lines: Iterable[str]) -> None:
        """Samples formatted by the caller (a histogram's buckets, in bulk)."""
        self.samples.extend(lines)


def render(families: Iterable[Family], *, openmetrics: bool = False) -> bytes:
    """The exposition of ``families`` in one of the two formats."""
    out: list[str] = []
    for family in families:
        if openmetrics:
            out.append(f"# TYPE {family.name} {family.type}")
            if family.unit:
                out.append(f"# UNIT {family.name} {family.unit}")
            out.append(f"# HELP {family.name} {family.help}")
        else:
            name = family.name + _SAMPLE_SUFFIX[family.type]
            kind = "gauge" if family.type == "info" else family.type
            out.append(f"# HELP {name} {family.help}")
            out.append(f"# TYPE {name} {kind}")
        out.extend(family.samples)
    if openmetrics:
        out.append("# EOF")
    out.append("")
    return "\n".join(out).encode("utf-8")


def content_type_for(accept: str | None) -> str:
    """The format to answer a scrape in, from its ``Accept`` header:
    OpenMetrics when the scraper lists it (Prometheus does, first), else
    Prometheus' own text format."""
    if accept and "application/openmetrics-text" in accept:
        return OPENMETRICS
    return PROMETHEUS_TEXT
