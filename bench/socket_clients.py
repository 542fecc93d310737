"""One client for bench/agent_socket.py, until SIGINT; then one JSON line.

reader SOCKET     a notebook that reads the agent: a report each second
streamer SOCKET   a notebook that streams every wait through the agent
inprocess         the same stream from a probe of its own (root)
"""

from __future__ import annotations

import json
import signal
import sys
import time

import noisy_neighbor as nn

stopping = False


def stop(*_: object) -> None:
    global stopping
    stopping = True


def main() -> None:
    signal.signal(signal.SIGINT, stop)
    mode = sys.argv[1]
    if mode == "reader":
        source = nn.connect(sys.argv[2])
    elif mode == "streamer":
        source = nn.connect(sys.argv[2], stream=True)
    else:
        source = nn.RunqProbe(stream=True, batch_ms=50.0, pending_batches=256)
    events = readings = 0
    with source:
        print("ready", flush=True)
        started = time.monotonic()
        while not stopping:
            if mode == "reader":
                source.report()
                readings += 1
                time.sleep(1)
            elif (batch := source.next_batch(timeout=0.1)) is not None:
                events += len(batch)
        elapsed = time.monotonic() - started
        stats = source.stats()
    # after the stats: theirs have an "events" counter of their own
    print(json.dumps({**stats, "elapsed_s": elapsed, "received": events, "readings": readings}))


if __name__ == "__main__":
    main()
