"""A script in a notebook: each map as a table, each histogram as a plot
(an inline PNG) beside bpftrace's own table."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

__all__ = ["script_html"]

#: Histogram plots shown per map at most (a map keyed by pid may hold thousands).
MAX_PLOTS = 12


def _plot_png(hist: Any) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.6))
    hist.plot(ax)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img src="data:image/png;base64,{data}"/>'


def _map_html(name: str, value: Any) -> str:
    from .histograms import ScriptHistogram

    title = f"<h4>{html.escape(name)}</h4>"
    if value is None:
        return title + "<p>(empty)</p>"
    if isinstance(value, ScriptHistogram):
        return title + _plot_png(value) + f"<pre>{html.escape(value.to_text())}</pre>"
    import pandas as pd

    if (
        isinstance(value, pd.Series)
        and value.dtype == object
        and len(value)
        and isinstance(value.iloc[0], ScriptHistogram)
    ):
        parts = [title]
        for key, hist in list(value.items())[:MAX_PLOTS]:
            parts.append(_plot_png(hist))
            del key
        if len(value) > MAX_PLOTS:
            parts.append(f"<p>... and {len(value) - MAX_PLOTS} more</p>")
        return "".join(parts)
    if isinstance(value, (pd.Series, pd.DataFrame)):
        table = value.to_frame() if isinstance(value, pd.Series) else value
        return title + table.to_html(max_rows=50)
    return title + f"<pre>{html.escape(str(value))}</pre>"


def script_html(script: Any) -> str:
    state = "running" if script.running else "stopped"
    name = html.escape(script.compiled.name)
    head = f"<p>bpftrace script {name}: {script.probe_count} probes, {state}</p>"
    try:
        maps = script.maps(resolve=getattr(script, "resolve", False))
    except Exception as err:
        return head + f"<p>{html.escape(str(err))}</p>"
    return head + "".join(_map_html(name, value) for name, value in maps.items())
