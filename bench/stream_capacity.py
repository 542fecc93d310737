"""How many events per second the streaming path takes into Python: ring
buffer -> drain thread -> columnar batches -> crossbeam channel -> numpy
EventBatch, with nothing dropped.

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
import threading
import time

from noisy_neighbor import _native
from noisy_neighbor.events import EventBatch


def one_run(events: int, batch_events: int) -> tuple[float, float, dict[str, int]]:
    ring = 1 << max(12, (events * 56).bit_length())  # room for the whole burst
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=8_000_000)
    parser.add_argument("--batch-events", type=int, default=65536)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rates, produced, drops = [], [], []
    for _ in range(args.runs):
        rate, producer_rate, stats = one_run(args.events, args.batch_events)
        rates.append(rate)
        produced.append(producer_rate)
        drops.append(stats["dropped_ringbuf"] + stats["dropped_batch_events"])
    print(f"events per run: {args.events:,}, batch_events: {args.batch_events:,}")
    print(
        f"into Python:   median {statistics.median(rates):,.0f} events/s "
        f"(min {min(rates):,.0f}, max {max(rates):,.0f})"
    )
    print(f"kernel writer: median {statistics.median(produced):,.0f} events/s")
    print(f"dropped: {drops}")


if __name__ == "__main__":
    main()
