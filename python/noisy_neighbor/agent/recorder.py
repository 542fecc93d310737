"""The agent's recording: every interval, one row per cgroup that waited, in
the layout :mod:`noisy_neighbor.analysis.history` reads (see there for the
files and why they are written as they are)."""

from __future__ import annotations

import glob
import os
import shutil
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ..analysis.history import COLUMNS, HOUR_FORMAT, hour_file, parts_dir
from ..errors import NoisyNeighborError
from ..runq.reading import Reading
from ..runq.throttling import ThrottleBaseline

if TYPE_CHECKING:
    from .ledger import Ledger

__all__ = ["Recorder"]

#: Culprits kept per row.
_TOP_CULPRITS = 3


def _pyarrow() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet  # makes pa.parquet
    except ImportError:
        raise NoisyNeighborError(
            "--record writes Parquet, which needs pyarrow: pip install 'noisy-neighbor[agent]'"
        ) from None
    return pa


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


class Recorder:
    """Writes rows under ``directory``, keeping ``retain_hours`` of them."""

    def __init__(self, directory: str, retain_hours: float) -> None:
        self.pa = _pyarrow()
        self.directory = directory
        self.retain = timedelta(hours=retain_hours)
        os.makedirs(os.path.join(directory, "parts"), exist_ok=True)
        self._written = 0
        self._throttle: ThrottleBaseline | None = None

    def start_interval(self, ledger: Ledger) -> None:
        """Takes the throttling baseline the next interval is measured from."""
        tree = ledger.probe.cgroup_tree
        self._throttle = ThrottleBaseline(tree.known_paths(), tree.mount)

    def write(self, ledger: Ledger, interval: Reading, interval_s: float, now: float) -> int:
        """Writes the interval ending at ``now`` (epoch seconds); returns the
        rows written. Merges finished hours and drops expired ones."""
        moment = datetime.fromtimestamp(now, timezone.utc)
        rows = self._rows(ledger, interval, interval_s, moment)
        self.start_interval(ledger)
        if rows:
            table = self.pa.Table.from_pylist(rows, schema=_schema(self.pa))
            part_dir = parts_dir(self.directory, _hour(moment))
            os.makedirs(part_dir, exist_ok=True)
            self._written += 1
            _write_whole(
                self.pa, table, os.path.join(part_dir, f"{now:.6f}-{self._written}.parquet")
            )
        self._merge(before=_hour(moment))
        self._expire(moment)
        return len(rows)

    def close(self) -> None:
        """Merges every hour, the current one included (a restarted agent
        merges its hour's new parts into the same file)."""
        self._merge(before=None)

    def _rows(
        self, ledger: Ledger, interval: Reading, interval_s: float, moment: datetime
    ) -> list[dict[str, Any]]:
        throttle = self._throttle
        throttled = throttle.since_start if throttle else (lambda cid, path: None)
        report = interval.report(
            throttled, window_s=interval_s, thresholds=ledger.thresholds, names=ledger.names()
        )
        rows = []
        for cgroup_id, hist in sorted(interval.hists.items()):
            if not hist.count:
                continue
            info = hist.info
            waits = report.cgroups.get(cgroup_id)
            blame = sorted((waits.blame if waits else {}).items(), key=lambda kv: -kv[1])
            top = blame[:_TOP_CULPRITS]
            path = hist.last_known_path
            rows.append(
                {
                    "time": moment,
                    "interval_s": float(interval_s),
                    "cgroup_id": cgroup_id,
                    "cgroup": path,
                    "name": hist.display_name,
                    "service": info.service if info else None,
                    "container": info.container_name if info else None,
                    "container_id": info.container_id if info else None,
                    "image": info.image if info else None,
                    "pod": info.pod_name if info else None,
                    "namespace": info.pod_namespace if info else None,
                    "waits": hist.count,
                    "wait_ns": hist.total_ns,
                    "throttled_ns": waits.throttled_ns if waits else None,
                    "p50_ns": hist.percentile(50),
                    "p99_ns": hist.percentile(99),
                    "max_ns": hist.max_ns,
                    "slots": [int(c) for c in hist.slots],
                    "culprits": [report.name_of(c) for c, _ in top],
                    "culprit_shares": [ns / max(hist.total_ns, 1) for _, ns in top],
                    "verdict": report.verdicts[cgroup_id].kind,
                }
            )
        return rows

    def _merge(self, before: datetime | None) -> None:
        """Merges the parts of every hour before ``before`` (all: None)."""
        pq = self.pa.parquet
        for part_dir in sorted(glob.glob(os.path.join(self.directory, "parts", "*"))):
            try:
                hour = datetime.strptime(os.path.basename(part_dir), HOUR_FORMAT)
            except ValueError:
                continue
            hour = hour.replace(tzinfo=timezone.utc)
            if before is not None and hour >= before:
                continue
            parts = sorted(glob.glob(os.path.join(part_dir, "*.parquet")))
            target = hour_file(self.directory, hour)
            tables = [pq.read_table(p) for p in ([target] if os.path.exists(target) else [])]
            tables += [pq.read_table(p) for p in parts]
            if tables:
                _write_whole(self.pa, self.pa.concat_tables(tables), target)
            # Only now: a kill before this line leaves rows twice, which the
            # reader drops, never none.
            shutil.rmtree(part_dir, ignore_errors=True)

    def _expire(self, moment: datetime) -> None:
        oldest = _hour(moment - self.retain)
        for path in glob.glob(os.path.join(self.directory, "nn-*.parquet")):
            try:
                hour = datetime.strptime(os.path.basename(path)[3:-8], HOUR_FORMAT)
            except ValueError:
                continue
            if hour.replace(tzinfo=timezone.utc) < oldest:
                os.remove(path)


def _write_whole(pa: Any, table: Any, path: str) -> None:
    temporary = f"{path}.tmp-{os.getpid()}"
    pa.parquet.write_table(table, temporary)
    os.replace(temporary, path)


def _schema(pa: Any) -> Any:
    text = pa.string()
    types = {
        "time": pa.timestamp("us", tz="UTC"),
        "interval_s": pa.float64(),
        "cgroup_id": pa.uint64(),
        "waits": pa.int64(),
        "wait_ns": pa.int64(),
        "throttled_ns": pa.int64(),
        "p50_ns": pa.float64(),
        "p99_ns": pa.float64(),
        "max_ns": pa.int64(),
        "slots": pa.list_(pa.uint64()),
        "culprits": pa.list_(text),
        "culprit_shares": pa.list_(pa.float64()),
    }
    return pa.schema([(name, types.get(name, text)) for name in COLUMNS])
