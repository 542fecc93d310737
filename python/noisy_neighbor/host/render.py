"""A plugin shown in a notebook: its programs, maps and globals as tables."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from .._native import GlobalInfo, MapInfo, ProgramInfo
from .maps import is_histogram_layout

__all__ = ["html_table", "plugin_html"]


def html_table(header: list[str], rows: list[list[Any]]) -> str:
    """An HTML table, every cell escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def plugin_html(
    title: str,
    running: bool,
    programs: Mapping[str, ProgramInfo],
    maps: Mapping[str, MapInfo],
    globals: Mapping[str, GlobalInfo],
    global_values: Mapping[str, Any],
) -> str:
    """The object's programs, maps (and how to read each) and globals."""
    program_rows = [
        [p.name, p.section, p.attach if p.why is None else f"{p.attach}: {p.why}"]
        for p in programs.values()
    ]
    map_rows = []
    for name, info in maps.items():
        shape = info.record if info.ring_buffer else info.value
        if info.ring_buffer:
            output = "batches"
        elif is_histogram_layout(info.value):
            output = "histograms"
        else:
            output = "map"
        map_rows.append([name, info.type, shape.type_name if shape else "?", output])
    global_rows = [
        [n, g.section, g.layout.type_name, global_values.get(n, "")] for n, g in globals.items()
    ]
    state = "running" if running else "stopped"
    return (
        f"<p><b>{html.escape(title)}</b> ({state})</p>"
        + html_table(["program", "section", "attach"], program_rows)
        + html_table(["map", "type", "holds", "read with"], map_rows)
        + html_table(["global", "section", "type", "set to"], global_rows)
    )
