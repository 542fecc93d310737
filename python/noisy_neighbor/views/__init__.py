"""What a person looks at: the ``noisy-neighbor`` command (``runqlat``,
``report``, ``top``, ``run``), the live notebook/terminal view
(:func:`live_view`), matplotlib plots (:mod:`noisy_neighbor.views.plots`) and
the ``%%bpf`` cell magic. The top layer: it imports ``analysis``, ``runq``,
``host``, ``names`` and the base modules, and nothing imports it but the
package's ``__init__`` and ``__main__``.
"""

from __future__ import annotations

from . import plots
from .cli import main
from .cli_args import positive_float, positive_int
from .cli_run import add_run_parser, parse_global, run_plugin
from .keys import quit_keys
from .live import live_view
from .magic import bpf_magic, load_ipython_extension
from .plots import (
    plot_culprit_matrix,
    plot_latency_distribution,
    plot_latency_heatmap,
    plot_percentiles_over_time,
)

__all__ = [
    "add_run_parser",
    "bpf_magic",
    "live_view",
    "load_ipython_extension",
    "main",
    "parse_global",
    "plot_culprit_matrix",
    "plot_latency_distribution",
    "plot_latency_heatmap",
    "plot_percentiles_over_time",
    "plots",
    "positive_float",
    "positive_int",
    "quit_keys",
    "run_plugin",
]
