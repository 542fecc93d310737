"""A plugin shown in a notebook: its programs, maps and globals as tables."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from .maps import is_histogram_layout

if TYPE_CHECKING:
    from .plugin import Plugin

__all__ = ["html_table", "plugin_html"]


def html_table(header: list[str], rows: list[list[Any]]) -> str:
    """An HTML table, every cell escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def plugin_html(plugin: Plugin) -> str:
    programs = [
        [p.name, p.section, p.attach if p.why is None else f"{p.attach}: {p.why}"]
        for p in plugin.programs.values()
    ]
    maps = []
    for name, info in plugin.maps.items():
        shape = info.record if info.ring_buffer else info.value
        if info.ring_buffer:
            output = "batches"
        elif is_histogram_layout(info.value):
            output = "histograms"
        else:
            output = "map"
        maps.append([name, info.type, shape.type_name if shape else "?", output])
    globals_ = [
        [n, g.section, g.layout.type_name, plugin.global_values.get(n, "")]
        for n, g in plugin.globals.items()
    ]
    state = "running" if plugin.running else "stopped"
    return (
        f"<p><b>{html.escape(plugin.path.name)}</b> ({state})</p>"
        + html_table(["program", "section", "attach"], programs)
        + html_table(["map", "type", "holds", "read with"], maps)
        + html_table(["global", "section", "type", "set to"], globals_)
    )
