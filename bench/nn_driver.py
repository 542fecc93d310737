"""Runs a noisy-neighbor probe for the kernel-cost benchmark until SIGINT, then
prints its stats as JSON. With --stream it consumes every batch (the way an
analyst's loop would, minus the analysis)."""

from __future__ import annotations

import argparse
import json
import time

import noisy_neighbor as nn


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", default="auto")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--attribution", action="store_true")
    args = parser.parse_args()
    streamed = 0
    with nn.RunqProbe(
        method=args.method, stream=args.stream, attribution=args.attribution
    ) as probe:
        print("ready", flush=True)
        started = time.monotonic()
        if args.stream:
            for batch in probe.batches():  # Ctrl-C ends it
                streamed += len(batch)
        else:
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        elapsed = time.monotonic() - started
    stats = probe.stats()
    print(json.dumps({"elapsed_s": elapsed, "streamed": streamed, **stats}), flush=True)


if __name__ == "__main__":
    main()
