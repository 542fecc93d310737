"""The printf tracers of bench/script_vs_bpftrace.py, and its kernel-side
helpers.

Run as a tracer, each prints "ready" once attached, counts the records it is
handed over a fixed window (from --window-start to --window-start + --window
seconds after "ready") and over its whole life, stops on SIGINT and prints a
JSON line:

    script_drivers.py batches          # nn.bpftrace(PRINTF), script.batches(): numpy columns
    script_drivers.py text bpftrace    # bpftrace -e, its stdout lines counted from a pipe
    script_drivers.py text trace       # noisy-neighbor trace -e, the same
    script_drivers.py file             # noisy-neighbor trace -e > a file, counted at the end

With --own-session the driver and its tracer run in a session of their own.

The text readers count newlines in 1 MiB reads (no parsing per line: the
cheapest consumer text allows) and subtract what is not a record: blank
lines and "Lost N events" lines, whose N they add up.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from switch_stream_drivers import cpu_seconds

PRINTF = 'tracepoint:sched:sched_switch { printf("%d %d\\n", args->prev_pid, args->next_pid); }'
#: The text tracers say they are attached with a BEGIN probe (bpftrace runs
#: BEGIN once every probe is attached; noisy-neighbor trace prints BEGIN's
#: output on its first poll after attaching).
READY = 'BEGIN { printf("ready\\n"); } '
RECORD_LINE = re.compile(rb"(?m)^-?\d+ -?\d+$")
BLANK_LINE = re.compile(rb"(?<=\n)\n")
TRACE_CLI = str(Path(sys.executable).with_name("noisy-neighbor"))

_SYS_BPF = 321  # x86_64, the only machine these figures come from
_BPF_PROG_GET_FD_BY_ID = 13


# -- kernel side (used by script_vs_bpftrace.py) --------------------------------------------


def attach_points() -> dict[int, tuple[int, str]]:
    """prog id -> (pid holding the perf event, tracepoint) for every
    tracepoint program attached now (`bpftool perf show`)."""
    out = subprocess.run(
        ["bpftool", "perf", "show", "--json"], check=True, capture_output=True, text=True
    ).stdout
    return {
        entry["prog_id"]: (entry["pid"], entry["tracepoint"])
        for entry in json.loads(out or "[]")
        if entry.get("fd_type") == "tracepoint"
    }


def descends_from_me(pid: int) -> bool:
    """Whether ``pid`` is this process's child, grandchild...: programs
    another user of the machine attaches meanwhile are not ours to count."""
    while pid > 1:
        if pid == os.getpid():
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the ppid follows the state
    return False


def my_tracepoints(ids: set[int]) -> dict[int, str]:
    """prog id -> tracepoint of the programs in ``ids`` that a process
    started by this benchmark attached."""
    return {
        prog: tracepoint
        for prog, (pid, tracepoint) in attach_points().items()
        if prog in ids and descends_from_me(pid)
    }


def hold_program(prog_id: int) -> int:
    """A descriptor of program ``prog_id``: it keeps the program (and its
    bpf_stats) alive after its tracer detaches and exits, so its final run
    count can be read once every record it wrote has been delivered."""
    attr = (ctypes.c_uint32 * 3)(prog_id, 0, 0)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(_SYS_BPF, _BPF_PROG_GET_FD_BY_ID, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd < 0:
        raise OSError(ctypes.get_errno(), f"BPF_PROG_GET_FD_BY_ID {prog_id}")
    return fd


def held_stats(fd: int) -> tuple[int, int]:
    """(run_time_ns, run_cnt) of a held program, from /proc/self/fdinfo."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines()
    )
    return int(fields["run_time_ns"]), int(fields["run_cnt"])


# -- the tracers -----------------------------------------------------------------------------


class Window:
    """Records delivered between two instants after "ready". ``see(n)`` is
    called with the count so far as each delivery arrives, before adding
    it: the count at an instant is the count before the first delivery
    past it (so a stall across an instant counts nothing for the stall)."""

    def __init__(self, start_s: float, length_s: float) -> None:
        now = time.monotonic()
        self.instants = [now + start_s, now + start_s + length_s]
        self.counts: list[int] = []

    def see(self, delivered: int) -> None:
        now = time.monotonic()
        while len(self.counts) < 2 and now >= self.instants[len(self.counts)]:
            self.counts.append(delivered)

    def report(self, delivered: int) -> dict:
        self.see(delivered)  # a stall over the window's end
        if len(self.counts) < 2:
            return {"window_events": 0, "window_s": float("nan")}
        return {
            "window_events": self.counts[1] - self.counts[0],
            "window_s": self.instants[1] - self.instants[0],
        }


@contextlib.contextmanager
def on_sigint(action: Callable[[], object]) -> Iterator[None]:
    """SIGINT calls ``action`` instead of raising, wherever the loop is."""
    previous = signal.signal(signal.SIGINT, lambda *_: action())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_batches(window_start: float, window: float) -> dict:
    """nn.bpftrace(PRINTF): every batch of its printf records, counted."""
    import noisy_neighbor as nn

    script = nn.bpftrace(PRINTF)
    cpu_before = cpu_seconds(children=False)
    stopping: list[int] = []
    delivered = batches = 0
    with on_sigint(lambda: stopping.append(1)):
        script.start()
        print("ready", flush=True)
        marks = Window(window_start, window)
        # timeout: a safety net only; every CPU switches many times a second
        for batch in script.batches(timeout=5.0):
            marks.see(delivered)
            delivered += len(batch)  # columns: batch.prev_pid, batch.next_pid (numpy)
            batches += 1
            if stopping:
                break
        counted = marks.report(delivered)
        script.stop()  # detaches; what the rings still held becomes batches
        for batch in script.batches(timeout=0):
            delivered += len(batch)
            batches += 1
    stats = script.stats()
    script.close()
    return {
        "delivered": delivered,
        "batches": batches,
        **counted,
        "stats": stats,
        "lost": stats["lost_events"] + stats["dropped_batch_events"],
        "cpu_s": cpu_seconds(children=False) - cpu_before,
    }


class LineCounter:
    """Records in a text stream: newlines, less blank lines and "Lost N
    events" lines (N added to ``lost``). Lines split across reads are
    carried over."""

    LOST = re.compile(rb"Lost (\d+) events")

    def __init__(self) -> None:
        self.records = self.lost = 0
        self.tail = b""

    def feed(self, chunk: bytes) -> None:
        text = self.tail + chunk
        cut = text.rfind(b"\n") + 1
        body, self.tail = text[:cut], text[cut:]
        if not body:
            return
        lines = body.count(b"\n")
        blank = body.startswith(b"\n")
        if b"\n\n" in body:  # bytes.count would miss overlapping ones ("\n\n\n")
            blank += len(BLANK_LINE.findall(body))
        lost_lines = 0
        if b"Lost " in body:
            for match in self.LOST.finditer(body):
                self.lost += int(match.group(1))
                lost_lines += 1
        self.records += lines - blank - lost_lines


def run_text(tool: str, window_start: float, window: float) -> dict:
    """bpftrace or noisy-neighbor trace running READY + PRINTF, its stdout
    (and stderr) read from a pipe by this process."""
    argv = ["bpftrace", "-e", READY + PRINTF]
    if tool == "trace":
        argv = [TRACE_CLI, "trace", "-e", READY + PRINTF]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0)
    assert proc.stdout is not None
    counter = LineCounter()
    head = b""
    marks = None
    # SIGINT goes on to the tracer, which ends itself; we read to EOF
    with on_sigint(lambda: proc.send_signal(signal.SIGINT)):
        while chunk := proc.stdout.read(1 << 20):
            if marks is None:
                head += chunk
                if b"ready\n" not in head:
                    continue
                print("ready", flush=True)
                marks = Window(window_start, window)
                before, chunk = head.split(b"ready\n", 1)
                # records of a CPU whose switches came before BEGIN's line
                counter.records += len(RECORD_LINE.findall(before))
            marks.see(counter.records)
            counter.feed(chunk)
    proc.wait()
    return {
        "delivered": counter.records,
        **(marks.report(counter.records) if marks else {}),
        "lost": counter.lost,
        "cpu_s": cpu_seconds(children=True) + cpu_seconds(children=False),
        "exit_status": proc.returncode,
    }


def run_to_file(window_start: float, window: float) -> dict:
    """noisy-neighbor trace running READY + PRINTF with its output in a
    file (no reader competing for the CPUs); the window's records are those
    between the file's sizes at its two instants, counted once it exits."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.out"
        with path.open("wb") as out:
            proc = subprocess.Popen(
                [TRACE_CLI, "trace", "-e", READY + PRINTF],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        marks = None
        with on_sigint(lambda: proc.send_signal(signal.SIGINT)):
            while proc.poll() is None:
                time.sleep(0.01)
                if marks is None and b"ready\n" in path.read_bytes()[:4096]:
                    print("ready", flush=True)
                    marks = Window(window_start, window)
                if marks is not None:
                    marks.see(path.stat().st_size)
        text = path.read_bytes()
    offsets = marks.counts if marks and len(marks.counts) == 2 else [0, 0]
    return {
        "delivered": len(RECORD_LINE.findall(text)),
        "window_events": len(RECORD_LINE.findall(text, *offsets)),
        "window_s": window,
        "lost": sum(int(n) for n in LineCounter.LOST.findall(text)),
        "cpu_s": cpu_seconds(children=True) + cpu_seconds(children=False),
        "exit_status": proc.returncode,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["batches", "text", "file"])
    parser.add_argument("tool", nargs="?", choices=["bpftrace", "trace"])
    parser.add_argument("--window-start", type=float, default=1.0)
    parser.add_argument("--window", type=float, default=4.0)
    parser.add_argument(
        "--own-session", action="store_true", help="setsid(): its own scheduler autogroup"
    )
    args = parser.parse_args()
    if args.own_session:
        # As from another terminal: with CONFIG_SCHED_AUTOGROUP a new session
        # is a new task group, scheduled as one entity against the workload's.
        os.setsid()
    if args.kind == "batches":
        result = run_batches(args.window_start, args.window)
    elif args.kind == "file":
        result = run_to_file(args.window_start, args.window)
    else:
        result = run_text(args.tool, args.window_start, args.window)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
