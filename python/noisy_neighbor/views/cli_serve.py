"""``noisy-neighbor serve``: the node agent's command line (the agent itself
is :mod:`noisy_neighbor.agent`)."""

from __future__ import annotations

import argparse
import logging
import math

from ..agent import AgentOptions, serve
from ..agent.socket_server import DEFAULT_SOCKET, DEFAULT_SOCKET_GROUP
from ..runq.probe import METHODS
from .cli_args import listen_address, positive_float, positive_int

__all__ = ["add_serve_parser", "run_serve"]

#: Longest a recording is kept: a year.
_MAX_RETAIN_HOURS = 24 * 366


def _retain_hours(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        hours = math.nan
    if not 0 < hours <= _MAX_RETAIN_HOURS:  # NaN fails too
        raise argparse.ArgumentTypeError(
            f"must be a number of hours in (0, {_MAX_RETAIN_HOURS}], got {text!r}"
        )
    return hours


def add_serve_parser(commands: argparse._SubParsersAction) -> None:
    serve_cmd = commands.add_parser(
        "serve",
        help="run as a node agent: Prometheus metrics on /metrics, health on /healthz",
        description=(
            "Measure every cgroup's run-queue latency and who caused it, for as long as it "
            "runs, and serve it to Prometheus. Each scrape reads the kernel's maps. SIGTERM "
            "or Ctrl-C detaches the probe, flushes the recording and exits 0."
        ),
    )
    serve_cmd.add_argument(
        "--listen",
        type=listen_address,
        default=("127.0.0.1", 9847),
        metavar="HOST:PORT",
        help="default 127.0.0.1:9847 (0.0.0.0:9847 to be scraped from elsewhere)",
    )
    serve_cmd.add_argument("--method", choices=METHODS, default="auto", help="default auto")
    serve_cmd.add_argument(
        "--cgroup",
        action="append",
        default=None,
        metavar="PATH",
        help="only this cgroup and those below it (path relative to the cgroup2 mount); repeatable",
    )
    serve_cmd.add_argument(
        "--max-cgroups",
        type=positive_int,
        default=10240,
        metavar="N",
        help="live cgroups the kernel's maps hold (default 10240; removed ones are reaped)",
    )
    serve_cmd.add_argument(
        "--forget-after",
        type=positive_float,
        default=300.0,
        metavar="S",
        help="seconds a removed cgroup's series stay on /metrics (default 300)",
    )
    serve_cmd.add_argument(
        "--window",
        type=positive_float,
        default=60.0,
        metavar="S",
        help="seconds of waits each verdict covers (default 60)",
    )
    serve_cmd.add_argument(
        "--culprits",
        type=positive_int,
        default=5,
        metavar="K",
        help="culprits named per cgroup, the rest counted as other (default 5)",
    )
    serve_cmd.add_argument(
        "--record",
        default=None,
        metavar="DIR",
        help="also write one row per cgroup per interval into hourly Parquet files in DIR "
        "(read them with noisy_neighbor.history(DIR))",
    )
    serve_cmd.add_argument(
        "--record-interval",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="seconds per recorded row (default 10)",
    )
    serve_cmd.add_argument(
        "--retain-hours",
        type=_retain_hours,
        default=24.0,
        metavar="H",
        help="hours of recording kept (default 24)",
    )
    serve_cmd.add_argument(
        "--socket",
        nargs="?",
        const=DEFAULT_SOCKET,
        default=None,
        metavar="PATH",
        help=f"also serve readings and event streams to local users on a Unix socket "
        f"(default path {DEFAULT_SOCKET}; mode 0660)",
    )
    serve_cmd.add_argument(
        "--socket-group",
        default=DEFAULT_SOCKET_GROUP,
        metavar="GROUP",
        help=f"the group whose members may use the socket (default {DEFAULT_SOCKET_GROUP})",
    )
    serve_cmd.add_argument(
        "--allow-programs",
        default=None,
        metavar="GROUP",
        help="also let this group load bpftrace scripts through the socket: root-equivalent "
        "for reading kernel memory (off by default)",
    )
    serve_cmd.add_argument(
        "--stream-queue",
        type=positive_int,
        default=256,
        metavar="N",
        help="batches a socket client's stream may have waiting before newer ones are "
        "dropped for that client alone, counted and reported to it (default 256, ~13 s)",
    )


def run_serve(args: argparse.Namespace) -> int:
    # Warnings on stderr (the journal, under systemd); and who used the
    # socket and for what, one line per request, for whoever audits it.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("noisy_neighbor.agent.socket_server", "noisy_neighbor.agent.streams"):
        logging.getLogger(name).setLevel(logging.INFO)
    host, port = args.listen
    return serve(
        AgentOptions(
            host=host,
            port=port,
            method=args.method,
            cgroups=args.cgroup,
            max_cgroups=args.max_cgroups,
            forget_after=args.forget_after,
            window=args.window,
            culprits=args.culprits,
            record=args.record,
            record_interval=args.record_interval,
            retain_hours=args.retain_hours,
            socket=args.socket,
            socket_group=args.socket_group,
            allow_programs=args.allow_programs,
            stream_queue_batches=args.stream_queue,
        ),
        restore_signals=False,  # the process exits next: a late SIGTERM must not kill it
    )
