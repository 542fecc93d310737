"""Reading the agent's recording back (pure: files written here in the
agent's layout; the agent writing them for real is in test_agent.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from noisy_neighbor.analysis.history import COLUMNS, history
from noisy_neighbor.errors import CollectionFileError


def _rows(*minutes: int) -> pd.DataFrame:
    base = pd.Timestamp("2026-11-29 10:00", tz="UTC")
    rows = [
        {name: None for name in COLUMNS}
        | {"time": base + pd.Timedelta(minutes=m), "cgroup_id": 7, "waits": m, "wait_ns": m}
        for m in minutes
    ]
    return pd.DataFrame(rows)


def test_hourly_files_and_parts_are_read_once_each_in_time_order(tmp_path) -> None:
    _rows(0, 1, 2).to_parquet(tmp_path / "nn-20261129T10.parquet")
    parts = tmp_path / "parts" / "20261129T10"
    parts.mkdir(parents=True)
    # A part merged into the hourly file and not yet removed (an agent killed
    # between the two): its row is read once.
    _rows(2).to_parquet(parts / "a.parquet")
    _rows(3).to_parquet(parts / "b.parquet")
    frame = history(str(tmp_path))
    assert list(frame["waits"]) == [0, 1, 2, 3]
    between = history(str(tmp_path), since="2026-11-29 10:01", until="2026-11-29T10:03Z")
    assert list(between["waits"]) == [1, 2]
    assert history(str(tmp_path), since="2026-11-29 12:00").empty


def test_no_recording_says_how_to_make_one(tmp_path) -> None:
    with pytest.raises(CollectionFileError, match="serve --record"):
        history(str(tmp_path / "missing"))
    (tmp_path / "nn-20261129T10.parquet").write_text("not parquet")
    with pytest.raises(CollectionFileError, match="not a readable recording"):
        history(str(tmp_path))


def test_the_recorder_merges_finished_hours_and_drops_expired_ones(tmp_path) -> None:
    from datetime import datetime, timezone

    from noisy_neighbor.agent.recorder import Recorder

    recorder = Recorder(str(tmp_path), retain_hours=3)
    # An hour with a merged file from before a restart, and two new parts.
    _rows(0).to_parquet(tmp_path / "nn-20261129T10.parquet")
    parts = tmp_path / "parts" / "20261129T10"
    parts.mkdir(parents=True)
    _rows(1).to_parquet(parts / "a.parquet")
    _rows(2).to_parquet(parts / "b.parquet")
    # The current hour's part stays a part; an hour past retention goes.
    current = tmp_path / "parts" / "20261129T13"
    current.mkdir(parents=True)
    _rows(3).to_parquet(current / "c.parquet")
    _rows(4).to_parquet(tmp_path / "nn-20261129T09.parquet")
    now = datetime(2026, 11, 29, 13, 30, tzinfo=timezone.utc)
    recorder._merge(before=now.replace(minute=0))
    recorder._expire(now)
    assert not parts.exists() and (current / "c.parquet").exists()
    assert not (tmp_path / "nn-20261129T09.parquet").exists()  # its hour ended 3.5 h ago
    merged = pd.read_parquet(tmp_path / "nn-20261129T10.parquet")
    assert sorted(merged["waits"]) == [0, 1, 2]
    recorder.close()  # at exit, the current hour is merged too
    assert not current.exists()
    assert sorted(history(str(tmp_path))["waits"]) == [0, 1, 2, 3]
