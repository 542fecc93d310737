"""The agent's recording (``noisy-neighbor serve --record DIR``), read back
as one pandas DataFrame: a row per cgroup that waited per recording
interval.

On disk: one Parquet file per hour, ``DIR/nn-YYYYMMDDTHH.parquet`` (UTC),
and, for the hour being written, one small file per interval under
``DIR/parts/YYYYMMDDTHH/``. Every file is written whole, under a temporary
name, then renamed: a reader never sees half a file, and an agent killed
with SIGKILL loses at most the interval it was in. When an hour is over, its
parts are merged into its hourly file. A row written twice (an agent killed
between writing an hourly file and removing its parts) is read once.
"""

from __future__ import annotations

import glob
import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..errors import CollectionFileError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COLUMNS", "HOUR_FORMAT", "history", "hour_file", "parts_dir"]

#: ``strftime`` of an hour in file names (UTC).
HOUR_FORMAT = "%Y%m%dT%H"

#: The columns of a recording, in order, with what each holds.
COLUMNS = {
    "time": "end of the interval (UTC)",
    "interval_s": "length of the interval, seconds",
    "cgroup_id": "the cgroup's id (its directory's inode number)",
    "cgroup": "its path relative to the cgroup2 mount, as last known",
    "name": "a short human name (container, pod or unit)",
    "service": "systemd unit, where the cgroup is one",
    "container": "container name, as its runtime keeps it",
    "container_id": "container id",
    "image": "container image",
    "pod": "Kubernetes pod name",
    "namespace": "Kubernetes namespace",
    "waits": "waits that ended in the interval",
    "wait_ns": "their total, ns (the kernel's own account)",
    "throttled_ns": "time throttled by its own CPU quota in the interval, ns (None: unknown)",
    "p50_ns": "median wait, ns (from the log2 buckets: within 2x)",
    "p99_ns": "99th percentile wait, ns (within 2x)",
    "max_ns": "longest wait since the agent started, ns",
    "slots": "the interval's log2 histogram: slot i counts waits of [2**i, 2**(i+1)) ns",
    "culprits": "the cgroups it waited behind most, largest first (idle, untracked included)",
    "culprit_shares": "their shares of its wait",
    "verdict": "noisy-neighbor, self-throttled, self-contention or none, over the interval",
}


def hour_file(directory: str, hour: datetime) -> str:
    return os.path.join(directory, f"nn-{hour.strftime(HOUR_FORMAT)}.parquet")


def parts_dir(directory: str, hour: datetime) -> str:
    return os.path.join(directory, "parts", hour.strftime(HOUR_FORMAT))


def _as_utc(moment: Any) -> Any:
    import pandas as pd

    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def history(directory: str, since: Any = None, until: Any = None) -> pd.DataFrame:
    """Every recorded row with ``since <= time < until`` (datetimes, pandas
    timestamps or ISO strings; naive ones are UTC), oldest first. Raises
    :class:`CollectionFileError` if ``directory`` holds no recording."""
    import pandas as pd
    import pyarrow.parquet as pq

    if not os.path.isdir(directory):
        raise CollectionFileError(
            f"no recording at {directory!r}: start the agent with `noisy-neighbor serve "
            f"--record {directory}`"
        )
    files = sorted(glob.glob(os.path.join(directory, "nn-*.parquet")))
    files += sorted(glob.glob(os.path.join(directory, "parts", "*", "*.parquet")))
    start = None if since is None else _as_utc(since)
    end = None if until is None else _as_utc(until)
    frames = []
    for path in files:
        if not _may_hold(path, start, end):
            continue
        try:
            frames.append(pq.read_table(path).to_pandas())
        except FileNotFoundError:
            continue  # merged into its hourly file meanwhile: read there
        except Exception as err:  # a file that is not Parquet, or broken
            raise CollectionFileError(f"{path} is not a readable recording: {err}") from err
    if not frames:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in COLUMNS})
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.drop_duplicates(subset=["time", "cgroup_id"])
    if start is not None:
        frame = frame[frame["time"] >= start]
    if end is not None:
        frame = frame[frame["time"] < end]
    return frame.sort_values(["time", "cgroup_id"], kind="stable").reset_index(drop=True)


def _may_hold(path: str, start: Any, end: Any) -> bool:
    """Whether a file's hour can hold rows in ``[start, end)``, from its name."""
    name = os.path.basename(path)
    stamp = name[3:-8] if name.startswith("nn-") else os.path.basename(os.path.dirname(path))
    try:
        hour = datetime.strptime(stamp, HOUR_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return True  # not ours to judge: read it
    import pandas as pd

    hour_start = pd.Timestamp(hour)
    hour_end = hour_start + pd.Timedelta(hours=1)
    return (start is None or hour_end > start) and (end is None or hour_start < end)
