"""How many events per second the streaming path takes into Python: ring
buffer -> drain thread -> batches -> crossbeam channel -> numpy EventBatch
columns decoded by the record's BTF layout, with nothing dropped. This is the
one path every stream takes, the run-queue probe's included.

No workload on a 2-CPU machine makes millions of context switches a second, so
the kernel side is a burst: the plugin `bench/plugins/burst.bpf.c` writes N of
the run-queue probe's own records (`struct runq_event`) into its ring buffer
as fast as it can (BPF_PROG_TEST_RUN), while the host's drain thread and a
Python loop take them.

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

from noisy_neighbor.host.compile import compile_file
from noisy_neighbor.host.layout import decode
from noisy_neighbor.host.plugin import Plugin

ROOT = Path(__file__).resolve().parents[1]
BURST = ROOT / "bench" / "plugins" / "burst.bpf.c"


def burst_object() -> Path:
    return compile_file(BURST, cflags=[f"-I{ROOT / 'src' / 'bpf'}"])


def _ring_bytes(events: int) -> int:
    return 1 << max(12, (events * 64).bit_length())  # room for the whole burst


def one_run(events: int, batch_events: int) -> tuple[float, float, int]:
    """Events/s into Python, events/s written by the kernel, and losses."""
    plugin = Plugin.load(
        burst_object(),
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
    lost = plugin.stats()["dropped_batch_events"] + plugin.read_global("lost")
    assert received == events, (received, plugin.stats())
    return events / elapsed, events / produced_in, lost


def decode_rate(records: int = 1 << 20, rounds: int = 5) -> float:
    """The ceiling of the Python side: splitting a batch of raw records into
    columns, without the kernel or the channel."""
    record = Plugin.load(burst_object()).maps["events"].record
    assert record is not None
    raw = np.random.default_rng(1).integers(0, 255, records * record.size, dtype=np.uint8)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        decode(raw, record)
        times.append(time.perf_counter() - started)
    return records / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=8_000_000)
    parser.add_argument("--batch-events", type=int, default=65536)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rates, produced, lost = [], [], []
    for _ in range(args.runs):
        rate, producer_rate, dropped = one_run(args.events, args.batch_events)
        rates.append(rate)
        produced.append(producer_rate)
        lost.append(dropped)
    print(f"events per run: {args.events:,}, batch_events: {args.batch_events:,}")
    print(
        f"into Python: median {statistics.median(rates):,.0f} events/s "
        f"(min {min(rates):,.0f}, max {max(rates):,.0f}); kernel writer median "
        f"{statistics.median(produced):,.0f} events/s; lost {sum(lost)}"
    )
    print(f"decoding alone (raw records -> numpy columns): {decode_rate():,.0f} events/s")


if __name__ == "__main__":
    main()
