"""Streaming every wait into Python: reconciled with the histograms, losses
counted, the rate limiter limiting, Ctrl-C stopping cleanly. Real kernel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import noisy_neighbor as nn
from noisy_neighbor import fine_buckets
from noisy_neighbor.testing import CPU_HOG, interruptible, periodic_sleeper, ping_pong

pytestmark = pytest.mark.needs_bpf

LAST_CPU = (os.cpu_count() or 1) - 1


def collect(probe: nn.RunqProbe, seconds: float) -> dict[str, np.ndarray]:
    """Streams for ``seconds``, stops the probe, and takes every batch left."""
    parts: list[dict[str, np.ndarray]] = []
    deadline = time.monotonic() + seconds
    for batch in probe.batches():
        parts.append(batch.columns())
        if time.monotonic() >= deadline and probe.running:
            probe.stop()  # the loop still yields what was made before the stop
    assert not probe.running
    return {f: np.concatenate([p[f] for p in parts]) for f in parts[0]}


def log2_slots(latency_ns: np.ndarray) -> np.ndarray:
    slots = np.zeros(64, dtype=np.uint64)
    bits = np.zeros(len(latency_ns), dtype=np.int64)
    nonzero = latency_ns > 0
    bits[nonzero] = np.floor(np.log2(latency_ns[nonzero].astype(np.float64))).astype(np.int64)
    # float log2 can round up just below a power of two: fix with integer checks
    bits[nonzero] -= np.left_shift(1, bits[nonzero]).astype(np.uint64) > latency_ns[nonzero]
    np.add.at(slots, bits, 1)
    return slots


@pytest.mark.parametrize("method", ["sched_info", "wakeup"])
def test_streamed_events_reconcile_with_histograms(cgroup_factory, method: str) -> None:
    victims, neighbors = cgroup_factory(), cgroup_factory()
    victims.run(CPU_HOG, cpus={LAST_CPU})
    victims.run(periodic_sleeper(0.002), cpus={LAST_CPU})
    neighbors.run(CPU_HOG, cpus={LAST_CPU})
    with nn.RunqProbe(method=method, stream=True, batch_ms=50) as probe:
        events = collect(probe, 2.0)
    hists, stats = probe.histograms(), probe.stats()

    assert stats["dropped_ringbuf"] == stats["dropped_batch_events"] == 0
    assert stats["rate_limited"] == stats["malformed_records"] == 0
    assert len(events["ts_ns"]) == stats["events"] == stats["batched_events"]
    assert stats["events"] == stats["waits"] - stats["filtered"]
    # Per cgroup, the stream holds exactly the waits the histogram counted.
    for cgroup in (victims, neighbors):
        mine = events["cgroup_id"] == cgroup.id
        ours = events["latency_ns"][mine]
        hist = hists[cgroup.id]
        # Enough waits for the sums below to mean something: a pinned hog
        # waits a few hundred times in 2 s natively, but under the kernel
        # matrix's emulation (TCG, 15-25x slower) about a hundred, and a
        # window of 98 has been seen there.
        assert len(ours) == hist.count > 20
        # Wall-clock waits in the stream and the buckets; the kernel's own
        # account beside them, each event saying how far the two differ.
        assert int(ours.sum()) == hist.wall_ns
        kernel = ours.astype(np.int64) - events["clock_correction_ns"][mine]
        assert int(kernel.sum()) == hist.total_ns
        assert int(ours.max()) == hist.max_ns
        assert hist.buckets is not None
        np.testing.assert_array_equal(
            np.bincount(fine_buckets.bucket_of(ours), minlength=fine_buckets.BUCKETS),
            hist.buckets,
        )
        np.testing.assert_array_equal(log2_slots(ours), hist.slots)
        # Percentiles of at least 1 us from the kernel's buckets, against the
        # exact ones of the same waits: within half a bucket (4.4%).
        long = ours[ours >= 1024]
        long_buckets = hist.buckets.copy()
        long_buckets[: 1 + 9 * 10] = 0  # below 2**10 ns
        for q in (50, 90, 99):
            exact = float(np.percentile(long, q, method="inverted_cdf"))
            estimate = fine_buckets.percentile(long_buckets, q)
            assert abs(estimate / exact - 1) <= 2 ** (1 / 16) - 1 + 1e-9, (q, estimate, exact)
    # Every field is filled in: the victims' events name them and their CPU.
    mine = events["cgroup_id"] == victims.id
    assert set(np.unique(events["tgid"][mine])) <= set(victims.pids())
    assert set(np.unique(events["cpu"][mine])) == {LAST_CPU}
    assert np.all(np.diff(events["ts_ns"][events["cpu"] == LAST_CPU].astype(np.int64)) >= 0)
    # Who had the CPU: a real cgroup every time, ours among them. (How often
    # ours depends on the machine: the shared CPU runs three of our tasks and
    # whatever else the host puts there; under qemu's emulation the guest's
    # own tasks had it before two waits in three.)
    prev = events["prev_cgroup_id"][mine]
    tree = probe.cgroup_tree
    assert all(c == 1 or tree.last_known_path(int(c)) is not None for c in np.unique(prev))
    assert np.isin(prev, [victims.id, neighbors.id]).any()


@pytest.mark.parametrize("method", ["sched_info", "wakeup"])
def test_preempted_hogs_and_woken_sleepers_are_told_apart(cgroup_factory, method: str) -> None:
    hogs, sleepers = cgroup_factory(), cgroup_factory()
    hogs.run(CPU_HOG, cpus={LAST_CPU})
    hogs.run(CPU_HOG, cpus={LAST_CPU})
    sleepers.run(periodic_sleeper(0.005), cpus={LAST_CPU})
    time.sleep(0.3)  # tasks queued before the probe carry no reason yet
    with nn.RunqProbe(method=method, stream=True, batch_ms=50) as probe:
        events = collect(probe, 2.0)
    preempted = events["preempted"]
    assert preempted.dtype == np.bool_
    # A busy loop only ever waits after being preempted; a sleeper mostly
    # waits after a wakeup (it rarely runs long enough to be preempted).
    assert preempted[events["cgroup_id"] == hogs.id].mean() > 0.95
    assert preempted[events["cgroup_id"] == sleepers.id].mean() < 0.5


def test_a_tiny_ring_and_a_slow_reader_lose_events_but_count_every_one(cgroup_factory) -> None:
    busy = cgroup_factory()
    busy.run(ping_pong())
    busy.run(ping_pong())
    with nn.RunqProbe(
        stream=True, ring_buffer_bytes=4096, batch_events=64, batch_ms=5, pending_batches=1
    ) as probe:
        streamed = 0
        deadline = time.monotonic() + 2.0
        for batch in probe.batches():
            streamed += len(batch)
            time.sleep(0.2)  # a reader that cannot keep up
            if time.monotonic() >= deadline and probe.running:
                probe.stop()
    stats = probe.stats()
    assert stats["dropped_batch_events"] + stats["dropped_ringbuf"] > 0
    assert stats["dropped_batches"] > 0
    # Nothing vanished without a count.
    assert streamed + stats["dropped_batch_events"] == stats["events"]
    assert stats["events"] + stats["dropped_ringbuf"] == stats["waits"] - stats["filtered"]
    # The histograms counted every wait anyway.
    assert sum(h.count for h in probe.histograms().values()) == stats["waits"]


def test_the_rate_limiter_limits_the_stream_not_the_histograms(cgroup_factory) -> None:
    rate_limit_ns = 100_000_000
    busy = cgroup_factory()
    for _ in range(3):
        busy.run(CPU_HOG)
    busy.run(ping_pong())
    with nn.RunqProbe(stream=True, rate_limit_ns=rate_limit_ns, batch_ms=50) as probe:
        events = collect(probe, 2.0)
    stats = probe.stats()
    mine = events["cgroup_id"] == busy.id
    assert stats["rate_limited"] > 0
    for cpu in np.unique(events["cpu"][mine]):
        ts = np.sort(events["ts_ns"][mine & (events["cpu"] == cpu)].astype(np.int64))
        assert np.all(np.diff(ts) >= rate_limit_ns), f"two events within the limit on CPU {cpu}"
    assert probe.histograms()[busy.id].count > 10 * mine.sum()
    assert stats["events"] + stats["rate_limited"] + stats["dropped_ringbuf"] == (
        stats["waits"] - stats["filtered"]
    )


STREAM_UNTIL_INTERRUPTED = """
import json, os, sys, noisy_neighbor as nn
threads_before = len(os.listdir("/proc/self/task"))  # numpy's BLAS pool included
with nn.RunqProbe(stream=True, batch_ms=20) as probe:
    print("streaming", flush=True)
    sizes = [len(batch) for batch in probe.batches()]
    running = probe.running
threads_after = len(os.listdir("/proc/self/task"))
print(json.dumps({"batches": len(sizes), "received": sum(sizes), "running": running,
                  "stats": probe.stats(),
                  "new_threads": threads_after - threads_before}), flush=True)
"""


def test_ctrl_c_ends_the_loop_detaches_and_leaves_no_thread() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", STREAM_UNTIL_INTERRUPTED],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,  # gets Ctrl-C even from a background run
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "streaming"
        time.sleep(0.5)
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 0
    result = json.loads(out)
    assert result["batches"] > 0
    assert result["running"] is False
    assert result["new_threads"] == 0  # the drain thread was joined
    # Nothing batched before or during the stop was lost to the interrupt.
    stats = result["stats"]
    assert result["received"] == stats["batched_events"]
    assert stats["events"] == stats["batched_events"] + stats["dropped_batch_events"]
    listed = subprocess.run(
        ["bpftool", "prog", "show", "--json"], check=True, capture_output=True, text=True
    ).stdout
    assert not [p for p in json.loads(listed) if p.get("name", "").startswith("nn_")]


def test_stop_from_another_thread_ends_a_blocked_batches_loop(cgroup) -> None:
    # A notebook pattern: one thread consumes, another cell stops the probe.
    cgroup.run(periodic_sleeper(0.001), cpus=[1])
    probe = nn.RunqProbe(stream=True, cgroups=[cgroup.path]).start()
    seen: list[int] = []
    consumer = threading.Thread(target=lambda: seen.extend(len(b) for b in probe.batches()))
    consumer.start()
    time.sleep(0.5)
    probe.stop()
    consumer.join(timeout=30)  # bounds a hang, not a speed
    assert not consumer.is_alive(), "batches() kept waiting after stop()"
    assert sum(seen) == probe.stats()["events"] > 0


def test_stream_options_are_checked() -> None:
    with pytest.raises(ValueError, match="power of two"):
        nn.RunqProbe(stream=True, ring_buffer_bytes=5000).start()
    with pytest.raises(ValueError, match="rate_limit_ns"):
        nn.RunqProbe(stream=True, rate_limit_ns=0).start()
    with nn.RunqProbe() as probe, pytest.raises(nn.ProbeStateError, match="stream=True"):
        next(probe.batches())


def test_a_burst_bigger_than_a_batch_arrives_whole_and_in_order(burst_object) -> None:
    # The benchmark's kernel-side source (bench/stream_capacity.py) writes the
    # probe's own records through the same host: every one reaches Python
    # once, in order, in batches of the run-queue event's columns.
    count = 200_000
    plugin = nn.Plugin.load(burst_object, batch_events=65536, pending_batches=64)
    with plugin:
        plugin.run("burst", np.uint64(count).tobytes())
        parts = []
        while sum(len(p) for p in parts) < count:
            batch = plugin.next_batch("events", 5.0)
            assert batch is not None, "the burst did not arrive"
            assert batch.fields == list(nn.runq.RUNQ_EVENT_FIELDS)
            parts.append(batch.latency_ns)
    np.testing.assert_array_equal(np.concatenate(parts), np.arange(count, dtype=np.uint64))
    stats = plugin.stats()
    assert stats["batched_events"] == count
    assert stats["dropped_batch_events"] == plugin.read_global("lost") == 0
