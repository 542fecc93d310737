"""How many events per second the streaming path takes into Python: ring
buffer -> drain thread -> columnar batches -> crossbeam channel -> numpy
EventBatch, with nothing dropped. Two paths, side by side in one run: the
run-queue probe's typed decoder (`runq`), and the probe host's generic one
(`plugin`: raw records of a BTF struct of the same shape, split into numpy
columns in Python), fed by the plugin `bench/plugins/burst.bpf.c`.

No workload on a 2-CPU machine makes millions of context switches a second, so
the kernel side is a synthetic burst: a benchmark-only BPF program writes N
events into the probe's own ring buffer as fast as it can (BPF_PROG_TEST_RUN),
while the probe's real drain thread and a Python loop take them. Real waits are
filtered out (cgroup filter on id 0), so only synthetic events flow.

    sudo .venv/bin/python bench/stream_capacity.py --events 8000000 --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import struct
import threading
import time
from pathlib import Path

import numpy as np

from noisy_neighbor import _native
from noisy_neighbor.btf_layout import decode
from noisy_neighbor.compile import compile_file
from noisy_neighbor.events import EventBatch
from noisy_neighbor.plugin import Plugin

BURST = Path(__file__).parent / "plugins" / "burst.bpf.c"


def _ring_bytes(events: int) -> int:
    return 1 << max(12, (events * 56).bit_length())  # room for the whole burst


def one_run(events: int, batch_events: int) -> tuple[float, float, dict[str, int]]:
    ring = _ring_bytes(events)
    core = _native.RunqCore(
        "auto",
        [0],  # no cgroup has id 0: real waits are filtered out
        stream=True,
        ring_buffer_bytes=ring,
        batch_events=batch_events,
        batch_ms=50.0,
        pending_batches=256,
        synthetic=True,
    )
    received = 0
    produced_in = 0.0

    def produce() -> None:
        nonlocal produced_in
        started = time.perf_counter()
        core.synthetic_burst(events)
        produced_in = time.perf_counter() - started

    started = time.perf_counter()
    producer = threading.Thread(target=produce)
    producer.start()
    while received < events:
        columns = core.next_batch(5.0)
        if columns is None:
            break
        batch = EventBatch(columns)
        received += len(batch)
    elapsed = time.perf_counter() - started
    producer.join()
    core.stop()
    stats = core.counters()
    assert received == events, (received, stats)
    return events / elapsed, events / produced_in, stats


def one_plugin_run(events: int, batch_events: int) -> tuple[float, float, int]:
    plugin = Plugin.load(
        compile_file(BURST),
        batch_events=batch_events,
        batch_ms=50.0,
        pending_batches=256,
        max_entries={"events": _ring_bytes(events)},
    ).start()
    received = 0
    produced_in = 0.0

    def produce() -> None:
        nonlocal produced_in
        started = time.perf_counter()
        plugin.run("burst", struct.pack("=Q", events))
        produced_in = time.perf_counter() - started

    started = time.perf_counter()
    producer = threading.Thread(target=produce)
    producer.start()
    while received < events:
        batch = plugin.next_batch("events", 5.0)  # decoded into numpy columns
        if batch is None:
            break
        received += len(batch)
    elapsed = time.perf_counter() - started
    producer.join()
    plugin.stop()
    stats = plugin.stats()["events"]
    assert received == events, (received, stats)
    return events / elapsed, events / produced_in, stats["dropped_records"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=8_000_000)
    parser.add_argument("--batch-events", type=int, default=65536)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rates, produced, drops = [], [], []
    plugin_rates, plugin_produced, plugin_drops = [], [], []
    for _ in range(args.runs):  # alternate, so host noise hits both paths alike
        rate, producer_rate, stats = one_run(args.events, args.batch_events)
        rates.append(rate)
        produced.append(producer_rate)
        drops.append(stats["dropped_ringbuf"] + stats["dropped_batch_events"])
        rate, producer_rate, dropped = one_plugin_run(args.events, args.batch_events)
        plugin_rates.append(rate)
        plugin_produced.append(producer_rate)
        plugin_drops.append(dropped)
    print(f"events per run: {args.events:,}, batch_events: {args.batch_events:,}")
    for name, got, made, lost in (
        ("runq probe (typed)", rates, produced, drops),
        ("plugin host (BTF)", plugin_rates, plugin_produced, plugin_drops),
    ):
        print(
            f"{name}: into Python median {statistics.median(got):,.0f} events/s "
            f"(min {min(got):,.0f}, max {max(got):,.0f}); kernel writer median "
            f"{statistics.median(made):,.0f} events/s; dropped {lost}"
        )
    ratio = statistics.median(plugin_rates) / statistics.median(rates)
    print(f"plugin / runq into Python: {ratio:.2f}")
    print(f"plugin decoding alone (raw records -> numpy columns): {decode_rate():,.0f} events/s")


def decode_rate(records: int = 1 << 20, rounds: int = 5) -> float:
    """The ceiling of the generic path's Python side: splitting a batch of raw
    records into columns, without the kernel or the channel."""
    layout = _native.inspect_object(str(compile_file(BURST)))["maps"]
    record = next(m["record"] for m in layout if m["name"] == "events")
    raw = np.random.default_rng(1).integers(0, 255, records * record["size"], dtype=np.uint8)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        decode(raw, record)
        times.append(time.perf_counter() - started)
    return records / statistics.median(times)


if __name__ == "__main__":
    main()
