"""The live view of a running probe: the busiest cgroups of each interval (with
culprits and verdicts when the probe attributes waits), as a table updated in
place in a notebook or printed in a terminal."""

from __future__ import annotations

import html
import time
from collections.abc import Callable

from ..analysis.intervals import IntervalReports
from ..checks import check_seconds
from ..remote.client import AgentClient
from ..runq.histogram import CgroupHistogram
from ..runq.probe import RunqProbe
from ..runq.verdicts import NoisyNeighborReport
from ..units import format_ns

__all__ = ["live_view"]


def _histogram_table(hists: dict[int, CgroupHistogram], window_s: float, rows: int) -> list[dict]:
    busiest = sorted(hists.values(), key=lambda h: -h.total_ns)[:rows]
    return [
        {
            "cgroup": (h.info.display_name if h.info else None) or h.cgroup_path or h.cgroup_name,
            "waits/s": f"{h.count / window_s:.0f}",
            "wait": format_ns(h.total_ns),
            "p50": format_ns(h.percentile(50)),
            "p99": format_ns(h.percentile(99)),
        }
        for h in busiest
        if h.count
    ]


def _report_table(report: NoisyNeighborReport, rows: int) -> list[dict]:
    window = report.window_s or 1.0
    return [
        {
            "cgroup": r["name"],
            "waits/s": f"{r['waits'] / window:.0f}",
            "wait": format_ns(r["total_wait_ns"]),
            "p99": format_ns(r["p99_ns"]),
            "top culprit": (f"{r['top_culprit']} {r['top_culprit_share']:.0%}")
            if r["top_culprit"]
            else "",
            "verdict": r["verdict"],
        }
        for r in report.to_pandas_rows()[:rows]
    ]


def _html(rows: list[dict], title: str) -> str:
    if not rows:
        return f"<p>{html.escape(title)}: no waits</p>"
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>"
        for r in rows
    )
    return f"<p>{html.escape(title)}</p><table><tr>{head}</tr>{body}</table>"


def _text(rows: list[dict], title: str) -> str:
    if not rows:
        return f"{title}: no waits"
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in rows[0]}
    lines = [title, "  ".join(k.ljust(w) for k, w in widths.items())]
    lines += ["  ".join(str(r[k]).ljust(w) for k, w in widths.items()) for r in rows]
    return "\n".join(lines)


def live_view(
    probe: RunqProbe | AgentClient, interval: float = 1.0, count: int | None = None, rows: int = 10
) -> None:
    """Shows the busiest cgroups of each interval, updated in place in a
    notebook (printed otherwise), until ``count`` updates or Ctrl-C (with
    ``attribution=True``, with culprits and verdicts). Starts the probe if it
    is not running, and then stops it again on the way out. Exported as
    ``noisy_neighbor.live``."""
    if not isinstance(probe, (RunqProbe, AgentClient)):
        raise TypeError(
            f"live() shows a RunqProbe or an agent's client, got {probe!r}: "
            "nn.live(nn.RunqProbe()), or nn.live(nn.connect()) without root"
        )
    interval = check_seconds("interval", interval)
    started_here = not probe.running
    if started_here:
        probe.start()
    try:
        display = _display_handle()
        reports = IntervalReports(probe) if probe.attribution else None
        before = probe.histograms()
        last = time.monotonic()
        shown = 0
        while count is None or shown < count:
            time.sleep(interval)
            now = time.monotonic()
            stamp = time.strftime("%H:%M:%S")
            if reports is not None:
                table = _report_table(reports.next(), rows)
            else:
                hists = probe.histograms()
                deltas = {i: h - before[i] if i in before else h for i, h in hists.items()}
                table = _histogram_table(deltas, now - last, rows)
                before = hists
            last = now
            title = f"run-queue latency, {stamp}, last {interval:g} s"
            if display is not None:
                display(_html(table, title))
            else:
                print(_text(table, title), flush=True)
            shown += 1
    except KeyboardInterrupt:
        pass
    finally:
        if started_here:
            probe.stop()


def _display_handle() -> Callable[[str], None] | None:
    """An updater of one notebook output, or None outside IPython kernels."""
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return None
    handle = display(HTML("<p>starting...</p>"), display_id=True)

    def update(markup: str) -> None:
        handle.update(HTML(markup))

    return update
