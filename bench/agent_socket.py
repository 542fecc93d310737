"""What the agent's socket costs and carries: one agent serving notebooks
against each notebook loading its own probe, on ``stress-ng --switch 2``.

Scenes, in interleaved rounds (medians):

- ``no tracer``: the workload's own speed;
- ``agent``: the agent alone;
- ``agent + 3 readers``: three notebooks reading reports each second;
- ``agent + 3 readers + 1 streamer``: and one streaming every wait;
- ``in-process stream``: one notebook (root) streaming from its own probe.

Per scene: the kernel time of all our BPF programs per context switch
(bpf_stats), the workload's ops/s, the agent's CPU and RSS, and for the
streams, the waits a client received per second and what was lost.

    sudo .venv/bin/python bench/agent_socket.py --rounds 3 --seconds 5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from kernel_cost import programs, run_workload

from noisy_neighbor.testing import AgentProcess

HERE = Path(__file__).resolve().parent
WORKLOAD = ["stress-ng", "--switch", "2"]
SCENES = {
    "no tracer": (False, []),
    "agent": (True, []),
    "agent + 3 readers": (True, ["reader"] * 3),
    "agent + 3 readers + 1 streamer": (True, ["reader"] * 3 + ["streamer"]),
    "in-process stream": (False, ["inprocess"]),
}
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def clients(kinds: list[str], socket: str) -> Iterator[list[dict]]:
    """Starts the clients, waits until each is ready; yields the list their
    reports are put in once they are stopped."""
    procs = []
    reports: list[dict] = []
    for kind in kinds:
        argv = [sys.executable, str(HERE / "socket_clients.py"), kind]
        if kind != "inprocess":
            argv.append(socket)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{kind} client did not start")
    try:
        yield reports
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for kind, proc in zip(kinds, procs, strict=True):
            out, _ = proc.communicate(timeout=60)
            lines = [x for x in out.splitlines() if x.startswith("{")]
            reports.append({"kind": kind, **(json.loads(lines[-1]) if lines else {})})


def run_scene(name: str, seconds: float, socket: str) -> dict:
    with_agent, kinds = SCENES[name]
    before = set(programs())
    agent = None
    if with_agent:
        agent = AgentProcess("--socket", socket, "--socket-group", "root")
    try:
        with clients(kinds, socket) as reports:
            time.sleep(1.0)  # the streaming probe loads on the first subscription
            start = programs()
            agent_cpu = cpu_s(agent.process.pid) if agent else 0.0
            ops = run_workload(WORKLOAD, seconds)
            end = programs()
            agent_cpu = (cpu_s(agent.process.pid) - agent_cpu) / seconds if agent else 0.0
            rss = rss_mib(agent.process.pid) if agent else 0.0
    finally:
        if agent is not None:
            agent.stop()
    ours = (set(start) & set(end)) - before
    run_ns = sum(end[i].get("run_time_ns", 0) - start[i].get("run_time_ns", 0) for i in ours)
    # Context switches: the runs of one sched_switch program (with a
    # streaming probe beside the agent's, each runs on every switch).
    switches = max(
        (
            end[i].get("run_cnt", 0) - start[i].get("run_cnt", 0)
            for i in ours
            if "switch" in end[i].get("name", "")
        ),
        default=0,
    )
    streams = [r for r in reports if r["kind"] in ("streamer", "inprocess")]
    return {
        "ops_per_s": ops,
        "ns_per_switch": run_ns / switches if switches else float("nan"),
        "programs": len(ours),
        "agent_cpu": agent_cpu,
        "agent_rss_mib": rss,
        "stream_events_per_s": sum(r["received"] / r["elapsed_s"] for r in streams),
        "stream_lost": sum(
            r.get("dropped_batch_events", 0)
            + r.get("dropped_ringbuf", 0)
            + r.get("stream_dropped_ringbuf", 0)
            for r in streams
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", help="also write every round's figures here")
    args = parser.parse_args()
    with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
        f.write("1")
    results: dict[str, list[dict]] = {name: [] for name in SCENES}
    with tempfile.TemporaryDirectory(prefix="nn-bench-socket-") as tmp:
        socket = os.path.join(tmp, "agent.sock")
        for round_ in range(args.rounds):
            for name in SCENES:
                result = run_scene(name, args.seconds, socket)
                results[name].append(result)
                print(f"round {round_ + 1} {name}: {json.dumps(result)}", flush=True)
    print()
    print(
        "scene | ns/switch | workload speed | programs | agent CPU | agent RSS MiB "
        "| stream waits/s | lost"
    )
    bare = statistics.median(r["ops_per_s"] for r in results["no tracer"])
    for name, rounds in results.items():
        med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
        print(
            f"{name} | {med['ns_per_switch']:.0f} | {med['ops_per_s'] / bare:.2f} | "
            f"{med['programs']:.0f} | "
            f"{med['agent_cpu']:.1%} | {med['agent_rss_mib']:.0f} | "
            f"{med['stream_events_per_s']:,.0f} | {med['stream_lost']:,.0f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
