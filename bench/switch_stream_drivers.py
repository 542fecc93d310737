"""The two tracers of bench/switch_stream.py, run until SIGINT; each prints
"ready" once attached and, at the end, a JSON line: events delivered to this
Python process, events lost, seconds, and the tracer's CPU time.

    switch_stream_drivers.py plugin     # noisy-neighbor's host: numpy batches
    switch_stream_drivers.py bpftrace   # bpftrace printf, lines read from a pipe
"""

from __future__ import annotations

import json
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

BPFTRACE = (
    'BEGIN { printf("ready\\n"); } '
    "tracepoint:sched:sched_switch { "
    'printf("%llu %u %d %d %d\\n", nsecs, cpu, args->prev_pid, args->next_pid, args->prev_state); }'
)


def cpu_seconds(children: bool) -> float:
    """CPU time of this process (all its threads, the Rust drain thread
    included) or of its waited-for children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_plugin() -> dict:
    import noisy_neighbor as nn
    from noisy_neighbor.host.compile import compile_file

    plugin = nn.Plugin.load(compile_file(HERE / "plugins" / "switch_events.bpf.c"))
    delivered = 0
    cpu_before = cpu_seconds(children=False)
    with plugin:
        print("ready", flush=True)
        started = time.monotonic()
        for batch in plugin.batches("events"):  # Ctrl-C stops the plugin, then ends
            delivered += len(batch)
        elapsed = time.monotonic() - started
        # every column arrived as numpy: batch.ts_ns, batch.prev_pid, ...
    stats = plugin.stats("events")
    lost = plugin.read_global("lost") + stats["dropped_batch_events"]
    return {
        "delivered": delivered,
        "lost": lost,
        "elapsed_s": elapsed,
        "cpu_s": cpu_seconds(children=False) - cpu_before,
    }


def run_bpftrace() -> dict:
    signal.signal(signal.SIGINT, lambda *_: None)  # let the child end first
    proc = subprocess.Popen(
        ["bpftrace", "-e", BPFTRACE],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        bufsize=0,
        start_new_session=True,
    )
    assert proc.stdout is not None
    delivered, lost, tail = 0, 0, b""
    ready = False
    started = time.monotonic()
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        proc.send_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, stop)
    while chunk := proc.stdout.read(1 << 20):
        text = tail + chunk
        lines = text.split(b"\n")
        tail = lines.pop()
        for line in lines:
            if not ready:
                if line == b"ready":
                    ready = True
                    print("ready", flush=True)
                    started = time.monotonic()
                continue
            if match := re.match(rb"Lost (\d+) events", line):
                lost += int(match.group(1))
            elif line:
                delivered += 1
    proc.wait()
    elapsed = time.monotonic() - started
    return {
        "delivered": delivered,
        "lost": lost,
        "elapsed_s": elapsed,
        "cpu_s": cpu_seconds(children=True) + cpu_seconds(children=False),
    }


def main() -> None:
    which = sys.argv[1]
    result = run_plugin() if which == "plugin" else run_bpftrace()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
