"""Timed collections: every wait into a DataFrame, saved to Parquet and back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import noisy_neighbor as nn
from noisy_neighbor.testing import CPU_HOG, interruptible, periodic_sleeper

pytestmark = pytest.mark.needs_bpf


def test_collect_save_and_load_keep_every_column_and_dtype(tmp_path, cgroup_factory) -> None:
    busy = cgroup_factory("busy")
    for _ in range(3):
        busy.run(CPU_HOG)
    collection = nn.collect(1.0, progress=False)
    events = collection.events
    assert len(events) == collection.stats["batched_events"] > 0
    assert collection.stats["dropped_ringbuf"] == collection.stats["dropped_batch_events"] == 0
    mine = events[events["cgroup_id"] == busy.id]
    assert len(mine) == collection.histograms[busy.id].count
    assert 0.9 < collection.seconds < 5
    assert "<table>" in collection._repr_html_()

    path = os.path.join(tmp_path, "run.parquet")
    collection.save(path)
    loaded = nn.load(path)
    assert list(loaded.events.columns) == list(events.columns)
    assert dict(loaded.events.dtypes) == dict(events.dtypes)
    pd.testing.assert_frame_equal(loaded.events, events)
    assert loaded.stats == collection.stats
    assert (loaded.start, loaded.end, loaded.method) == (
        collection.start,
        collection.end,
        collection.method,
    )
    again = loaded.histograms[busy.id]
    np.testing.assert_array_equal(again.slots, collection.histograms[busy.id].slots)
    assert again.cgroup_path == busy.path
    assert loaded.report().verdict(busy.id).total_wait_ns == int(mine["latency_ns"].sum())


def test_a_real_collection_draws_a_heat_map_of_the_victim(tmp_path, cgroup_factory) -> None:
    import matplotlib

    matplotlib.use("Agg")
    victim, neighbor = cgroup_factory("victim"), cgroup_factory("neighbor")
    victim.run(periodic_sleeper(0.002), cpus=[1])
    for _ in range(2):
        neighbor.run(CPU_HOG, cpus=[1])
    collection = nn.collect(2.0, progress=False)
    ax = nn.plots.plot_latency_heatmap(collection, cgroup=victim, bin_s=0.1)
    counts = np.asarray(ax.collections[0].get_array())
    assert counts.sum() == (collection.events["cgroup_id"] == victim.id).sum()
    path = tmp_path / "victim-heatmap.png"
    ax.figure.savefig(path, dpi=80)
    assert path.stat().st_size > 10_000
    print(f"heat map drawn to {path}")


def test_live_view_prints_updates_and_does_not_leak_the_probe(capsys) -> None:
    probe = nn.RunqProbe()
    nn.live(probe, interval=0.3, count=2)
    out = capsys.readouterr().out
    assert out.count("run-queue latency,") == 2
    assert not probe.running  # started for the view, stopped after it


def test_loading_anything_but_a_saved_collection_says_what_it_is(tmp_path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    foreign = tmp_path / "pandas.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(foreign)
    with pytest.raises(nn.CollectionFileError, match="without noisy-neighbor's metadata"):
        nn.load(str(foreign))
    for name, content in (("empty.parquet", b""), ("text.parquet", b"not parquet at all")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(nn.CollectionFileError, match="is not a Parquet file"):
            nn.load(str(tmp_path / name))
    with pytest.raises(nn.CollectionFileError, match="is not a Parquet file"):
        nn.load(str(tmp_path / "missing.parquet"))


COLLECT_UNTIL_INTERRUPTED = """
import json, noisy_neighbor as nn
print("collecting", flush=True)
collection = nn.collect(60, progress=False, cgroups=[{path!r}], batch_ms=20)
print(json.dumps({{"rows": len(collection.events), "seconds": collection.seconds,
                  "stats": collection.stats}}), flush=True)
"""


@pytest.mark.needs_bpf
def test_ctrl_c_ends_a_collection_early_and_keeps_every_wait(cgroup_factory) -> None:
    busy = cgroup_factory()
    for _ in range(3):
        busy.run(CPU_HOG)  # three hogs on two CPUs: waits all the time
    child = subprocess.Popen(
        [sys.executable, "-c", COLLECT_UNTIL_INTERRUPTED.format(path=busy.path)],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,  # gets Ctrl-C even from a background run
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "collecting"
        time.sleep(1.5)
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0  # the collection came back, not a traceback
    result = json.loads(out.strip().splitlines()[-1])
    stats = result["stats"]
    assert result["seconds"] < 60 and result["rows"] > 0
    # Every wait batched before or during the stop is in the collection.
    assert result["rows"] == stats["batched_events"]
    assert stats["events"] == stats["batched_events"] + stats["dropped_batch_events"]


def test_names_travel_with_a_saved_collection_after_its_cgroups_are_gone(
    tmp_path, cgroup_factory
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    victim, neighbor = cgroup_factory("victim"), cgroup_factory("neighbor")
    victim.run(periodic_sleeper(0.002), cpus=[1])
    for _ in range(2):
        neighbor.run(CPU_HOG, cpus=[1])
    collection = nn.collect(1.5, progress=False, cgroups=[victim.path, neighbor.path])
    path = tmp_path / "gone.parquet"
    collection.save(str(path))
    victim_name = victim.path.strip("/")  # as the resolver names a bare cgroup
    neighbor_name = neighbor.path.strip("/")
    assert collection.names[victim.id] == victim_name
    victim.remove()
    neighbor.remove()  # from here on, no live lookup can name them

    loaded = nn.load(str(path))
    assert loaded.name_of(victim.id) == victim_name
    assert loaded.name_of(neighbor.id) == neighbor_name
    ax = nn.plots.plot_latency_distribution(loaded, cgroups=[victim.id, neighbor.id])
    labels = {line.get_label() for line in ax.patches} | set(ax.get_legend_handles_labels()[1])
    assert {victim_name, neighbor_name} <= labels
    assert not [label for label in labels if label.startswith("cgroup ")]
    # The culprit the victim waited behind is named too, though it is gone.
    report = loaded.report()
    assert report.verdict(victim.id).culprits[0][0] == neighbor.id
    assert report.name_of(neighbor.id) == neighbor_name
