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
    help, unit, and sample lines ``(suffix, labels, value)`` where ``suffix``
    is what follows the sample name's stem (``_bucket`` of a histogram, say)
    and ``labels`` comes from :func:`label_set`."""

    name: str
    type: str
    help: str
    unit: str = ""
    samples: list[tuple[str, str, float]] = field(default_factory=list)

    def add(self, labels: str, value: float, suffix: str | None = None) -> None:
        stem_suffix = _SAMPLE_SUFFIX[self.type] if suffix is None else suffix
        self.samples.append((stem_suffix, labels, value))


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
        stem = family.name
        out.extend(
            f"{stem}{suffix}{labels} {format_value(value)}"
            for suffix, labels, value in family.samples
        )
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
