"""Timed collections of every run-queue wait, for notebooks: ``nn.collect``
runs a streaming probe for a while and returns a :class:`Collection`, which
saves to and loads from one Parquet file, so an experiment can be analysed
later or on another machine."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import fine_buckets
from ..checks import check_seconds
from ..errors import CollectionFileError
from ..host.lifecycle import interrupt_stops
from ..runq.histogram import CgroupHistogram
from ..runq.wire import EVENT_DTYPES, IDLE, RUNQ_EVENT_FIELDS, UNTRACKED
from ..units import format_ns

if TYPE_CHECKING:
    import pandas as pd

    from ..runq.verdicts import NoisyNeighborReport

__all__ = ["Collection", "collect", "load"]

_METADATA_KEY = b"noisy_neighbor"


@dataclass
class Collection:
    """Every wait of a collection window, and the kernel's histograms of it.

    ``events`` has one row per wait (the fields of :data:`RUNQ_EVENT_FIELDS`);
    ``histograms`` the per-cgroup histograms; ``stats`` the probe's counters
    (losses included); ``start``/``end`` the window in UTC.
    """

    events: pd.DataFrame
    histograms: dict[int, CgroupHistogram]
    stats: dict[str, int]
    start: dt.datetime
    end: dt.datetime
    method: str = ""
    cgroup_paths: dict[int, str | None] = field(default_factory=dict)
    #: Each cgroup's name (service, container, pod...) as it was during the
    #: collection, for the cgroups that waited and those that had the CPU:
    #: saved with the events, so a file opened after the cgroups are gone, or
    #: on another machine, still names them.
    names: dict[int, str] = field(default_factory=dict)
    #: Where the waits came from: a probe in this process, or the node agent.
    source: str = ""

    def name_of(self, cgroup_id: int) -> str:
        """The name a cgroup had during the collection."""
        from ..names.resolver import resolve_cgroup

        return (
            self.names.get(cgroup_id)
            or resolve_cgroup(cgroup_id).display_name
            or (f"cgroup {cgroup_id}")
        )

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def report(self, **thresholds: Any) -> NoisyNeighborReport:
        """Who made whom wait, from the events (see :func:`nn.report`)."""
        from ..runq.verdicts import Thresholds
        from .report import report

        return report(
            self.events, Thresholds(**thresholds) if thresholds else None, names=self.names
        )

    def save(self, path: str) -> None:
        """Writes one Parquet file: the events as rows, everything else in the
        file's metadata."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(self.events, preserve_index=False)
        meta = {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "method": self.method,
            "source": self.source,
            "stats": self.stats,
            "histograms": [
                {
                    "cgroup_id": h.cgroup_id,
                    "slots": [int(c) for c in h.slots],
                    "buckets": fine_buckets.to_sparse(h.buckets),
                    "count": h.count,
                    "total_ns": h.total_ns,
                    "wall_ns": h.wall_ns,
                    "max_ns": h.max_ns,
                    "comm": h.comm,
                    "cgroup_name": h.cgroup_name,
                    "cgroup_path": h.cgroup_path,
                }
                for h in self.histograms.values()
            ],
            "cgroup_paths": {str(k): v for k, v in self.cgroup_paths.items()},
            "names": {str(k): v for k, v in self.names.items()},
        }
        schema_meta = dict(table.schema.metadata or {})
        schema_meta[_METADATA_KEY] = json.dumps(meta).encode()
        pq.write_table(table.replace_schema_metadata(schema_meta), path)

    def _repr_html_(self) -> str:
        n = len(self.events)
        busiest = sorted(self.histograms.values(), key=lambda h: -h.total_ns)[:5]
        rows = "".join(
            f"<tr><td>{h.cgroup_path or h.cgroup_name}</td><td>{h.count}</td>"
            f"<td>{format_ns(h.total_ns)}</td><td>{format_ns(h.percentile(99))}</td></tr>"
            for h in busiest
        )
        lost = {k: v for k, v in self.stats.items() if k.startswith(("dropped", "failed")) and v}
        return (
            f"<p><b>Collection</b>: {n:,} waits over {self.seconds:.1f} s "
            f"({self.method} method{', from ' + self.source if self.source else ''}), "
            f"{len(self.histograms)} cgroups; "
            f"losses: {lost or 'none'}</p>"
            "<table><tr><th>cgroup</th><th>waits</th><th>total wait</th><th>p99</th></tr>"
            f"{rows}</table>"
        )

    def __repr__(self) -> str:
        return (
            f"<Collection {len(self.events):,} waits, {len(self.histograms)} cgroups, "
            f"{self.seconds:.1f} s>"
        )


def load(path: str | os.PathLike[str]) -> Collection:
    """Reads a Collection written by :meth:`Collection.save`; raises
    :class:`CollectionFileError` for any other file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"nn.load takes the path of a file Collection.save() wrote, got {path!r}")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        raise CollectionFileError(
            f"{path} is not a Parquet file that Collection.save() wrote ({err})"
        ) from None
    raw = (table.schema.metadata or {}).get(_METADATA_KEY)
    if raw is None:
        raise CollectionFileError(
            f"{path} is a Parquet file without noisy-neighbor's metadata, so not a saved "
            "Collection: read it with pandas.read_parquet()"
        )
    try:
        meta = json.loads(raw)
    except ValueError as err:
        raise CollectionFileError(
            f"{path}: its noisy-neighbor metadata is damaged ({err})"
        ) from None
    histograms = {
        h["cgroup_id"]: CgroupHistogram(
            cgroup_id=h["cgroup_id"],
            slots=np.array(h["slots"], dtype=np.uint64),
            count=h["count"],
            total_ns=h["total_ns"],
            max_ns=h["max_ns"],
            comm=h["comm"],
            cgroup_name=h["cgroup_name"],
            cgroup_path=h["cgroup_path"],
            # Absent from collections saved before fine buckets existed.
            buckets=fine_buckets.from_sparse(h.get("buckets")),
            wall_ns=h.get("wall_ns"),
        )
        for h in meta["histograms"]
    }
    return Collection(
        events=table.to_pandas(),
        histograms=histograms,
        stats=meta["stats"],
        start=dt.datetime.fromisoformat(meta["start"]),
        end=dt.datetime.fromisoformat(meta["end"]),
        method=meta["method"],
        cgroup_paths={int(k): v for k, v in meta["cgroup_paths"].items()},
        names={int(k): v for k, v in meta.get("names", {}).items()},
        source=meta.get("source", ""),
    )


def _names_now(histograms: dict[int, CgroupHistogram], events: pd.DataFrame) -> dict[int, str]:
    """Names of every cgroup in a collection, while they can still be read:
    those that waited (as the probe named them) and those that had the CPU."""
    from ..names.resolver import resolve_cgroup

    names = {cid: h.info.display_name for cid, h in histograms.items() if h.info}
    for cid in map(int, np.unique(events["prev_cgroup_id"])):
        if cid not in names and cid not in (IDLE, UNTRACKED):
            names[cid] = resolve_cgroup(cid).display_name
    return {cid: name for cid, name in names.items() if name}


def _empty_events() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({f: np.array([], dtype=t) for f, t in EVENT_DTYPES.items()})


def collect(
    seconds: float,
    *,
    cgroups: list[str | int] | None = None,
    progress: bool = True,
    via: str = "auto",
    socket: str | None = None,
    **probe_options: Any,
) -> Collection:
    """Streams every run-queue wait for ``seconds`` (Ctrl-C ends it early,
    keeping every wait batched so far) and
    returns them with the histograms. ``probe_options`` go to
    :class:`RunqProbe` (``method``, ``rate_limit_ns``, ``ring_buffer_bytes``...).
    Shows a progress bar (tqdm, notebook-aware) unless ``progress=False``.

    ``via``: ``"probe"`` loads a probe in this process (root, or CAP_BPF and
    CAP_PERFMON); ``"agent"`` reads the node agent's over its socket
    (``socket``, default ``/run/noisy-neighbor/agent.sock``), for users who
    are not root; ``"auto"`` (the default) chooses the probe when this
    process may load one. ``Collection.source`` says which was used."""
    import pandas as pd

    from ..remote.via import runq_source

    seconds = check_seconds("seconds", seconds)
    probe_options.setdefault("batch_ms", 100.0)
    parts: list[dict[str, np.ndarray]] = []
    bar = None
    source, via_phrase = runq_source(
        via, socket=socket, stream=True, cgroups=cgroups, **probe_options
    )
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=round(seconds, 1), unit="s", desc="collecting", leave=False)
    start = dt.datetime.now(dt.timezone.utc)
    with source as probe:
        began = time.monotonic()
        shown = 0.0
        # Ctrl-C stops the probe (no KeyboardInterrupt): the loop ends, and
        # every batch already made is still taken below.
        with interrupt_stops(probe.stop):
            while probe.running and (left := seconds - (time.monotonic() - began)) > 0:
                batch = probe.next_batch(timeout=min(left, 0.1))
                if batch is not None:
                    parts.append(batch.columns())
                elapsed = min(time.monotonic() - began, seconds)
                if bar is not None and elapsed - shown >= 0.1:
                    bar.update(round(elapsed - shown, 1))
                    shown += round(elapsed - shown, 1)
            probe.stop()
            while (batch := probe.next_batch()) is not None:
                parts.append(batch.columns())
        end = dt.datetime.now(dt.timezone.utc)
    if bar is not None:
        bar.close()
    events = (
        pd.DataFrame({f: np.concatenate([p[f] for p in parts]) for f in RUNQ_EVENT_FIELDS})
        if parts
        else _empty_events()
    )
    histograms = probe.histograms()
    return Collection(
        events=events,
        histograms=histograms,
        stats=probe.stats(),
        start=start,
        end=end,
        method=probe.method,
        cgroup_paths={cid: h.last_known_path for cid, h in histograms.items()},
        names=_names_now(histograms, events),
        source=via_phrase,
    )
