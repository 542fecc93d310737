"""What the node agent (``noisy-neighbor serve``) costs: the time and CPU of
one scrape with 100, 1,000 and 10,000 cgroups that waited, and a soak of
context switches and cgroup churn at a 15 s scrape interval, watching the
agent's RSS and CPU.

    sudo .venv/bin/python bench/agent.py scrape --scrapes 15
    sudo .venv/bin/python bench/agent.py soak --minutes 10

Cgroups are made under /nn-bench-<pid>/ and removed at the end. Each gets a
wait by moving one sleeping process through it, so each has series. The soak
runs ``stress-ng --switch`` (a context-switch storm, in its own cgroup) and a
loop that makes, uses and removes a cgroup every 50 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from noisy_neighbor.names.cgroupfs import find_cgroup2_mount
from noisy_neighbor.testing import AgentProcess, periodic_sleeper

TICKS = os.sysconf("SC_CLK_TCK")


class BenchAgent(AgentProcess):
    """The agent, with what a benchmark reads of it."""

    def scrape(self) -> tuple[float, int]:
        started = time.perf_counter()
        body = self.get(timeout=120)
        return time.perf_counter() - started, len(body.encode())

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024


@contextlib.contextmanager
def bench_parent() -> Iterator[Path]:
    parent = Path(find_cgroup2_mount()) / f"nn-bench-{os.getpid()}"
    parent.mkdir()
    try:
        yield parent
    finally:
        # A cgroup is busy until its last task is reaped: retry for a while.
        deadline = time.monotonic() + 10
        while True:
            try:
                for child in sorted(parent.iterdir(), reverse=True):
                    if child.is_dir():
                        child.rmdir()
                parent.rmdir()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def visit(pid: int, cgroup: Path, seconds: float = 0.003) -> None:
    """Moves ``pid`` (a sleeper) into ``cgroup`` long enough to wait there."""
    (cgroup / "cgroup.procs").write_text(str(pid))
    time.sleep(seconds)


def run_scrape(args: argparse.Namespace) -> None:
    print(f"machine: {os.cpu_count()} CPUs, kernel {os.uname().release}")
    print(f"{'cgroups':>8} {'median scrape':>14} {'agent CPU/scrape':>17} {'body':>9} {'RSS':>8}")
    with bench_parent() as parent:
        sleeper = subprocess.Popen(periodic_sleeper(0.0005))
        agent = BenchAgent("--max-cgroups", str(max(args.cgroups) + 1024))
        made = 0
        try:
            for target in args.cgroups:
                while made < target:
                    child = parent / f"c{made}"
                    child.mkdir()
                    visit(sleeper.pid, child)
                    made += 1
                (parent / "cgroup.procs").write_text(str(sleeper.pid))
                agent.scrape()  # the first reading names the new cgroups
                times, cpu0 = [], agent.cpu_s()
                for _ in range(args.scrapes):
                    seconds, size = agent.scrape()
                    times.append(seconds)
                per_scrape = (agent.cpu_s() - cpu0) / args.scrapes
                print(
                    f"{target:>8} {statistics.median(times) * 1000:>11.1f} ms "
                    f"{per_scrape * 1000:>14.1f} ms {size / 1e6:>6.2f} MB "
                    f"{agent.rss_mib():>5.0f} MiB",
                    flush=True,
                )
        finally:
            agent.stop()
            sleeper.kill()
            sleeper.wait()


def context_switches() -> int:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("ctxt "):
            return int(line.split()[1])
    raise RuntimeError("no ctxt line in /proc/stat")


def run_soak(args: argparse.Namespace) -> None:
    print(f"machine: {os.cpu_count()} CPUs, kernel {os.uname().release}")
    with bench_parent() as parent:
        storm = parent / "storm"
        storm.mkdir()
        stress = subprocess.Popen(
            [
                "stress-ng",
                "--switch",
                str(args.switchers),
                "--timeout",
                f"{args.minutes * 60 + 30}s",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: (storm / "cgroup.procs").write_text(str(os.getpid())),
        )
        sleeper = subprocess.Popen(periodic_sleeper(0.001))
        agent = BenchAgent("--max-cgroups", "1024", "--forget-after", "60")
        started = time.monotonic()
        end = started + args.minutes * 60
        ctxt0, cpu0 = context_switches(), agent.cpu_s()
        next_scrape = started
        churned = 0
        rss: list[float] = []
        scrapes: list[float] = []
        try:
            while time.monotonic() < end:
                child = parent / f"churn{churned}"
                child.mkdir()
                visit(sleeper.pid, child, 0.01)
                (parent / "cgroup.procs").write_text(str(sleeper.pid))
                child.rmdir()
                churned += 1
                time.sleep(0.04)
                if time.monotonic() >= next_scrape:
                    next_scrape += args.interval
                    scrapes.append(agent.scrape()[0])
                    rss.append(agent.rss_mib())
                    print(
                        f"{time.monotonic() - started:6.0f} s  RSS {rss[-1]:6.1f} MiB  "
                        f"scrape {scrapes[-1] * 1000:6.1f} ms  churned {churned}",
                        flush=True,
                    )
            wall = time.monotonic() - started
            cpu = agent.cpu_s() - cpu0
            switches = (context_switches() - ctxt0) / wall
            lost = agent.get()
        finally:
            agent.stop()
            stress.terminate()  # SIGTERM: stress-ng stops its workers too
            stress.wait()
            sleeper.kill()
            sleeper.wait()
    losses = re.findall(r'noisy_neighbor_lost_total\{reason="(\w+)"\} (\S+)', lost)
    third = max(1, len(rss) // 3)
    print(
        f"\n{wall:.0f} s, {switches / 1000:.0f}k context switches/s, {churned} cgroups churned, "
        f"scrape every {args.interval:g} s\n"
        f"agent CPU: {cpu:.1f} s = {100 * cpu / wall:.2f}% of one core\n"
        f"RSS: first third median {statistics.median(rss[:third]):.1f} MiB, last third median "
        f"{statistics.median(rss[-third:]):.1f} MiB, max {max(rss):.1f} MiB\n"
        f"scrape: median {statistics.median(scrapes) * 1000:.1f} ms\n"
        f"lost: {', '.join(f'{k}={v}' for k, v in losses)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    scrape = commands.add_parser("scrape")
    scrape.add_argument("--cgroups", type=int, nargs="+", default=[100, 1000, 10000])
    scrape.add_argument("--scrapes", type=int, default=15)
    soak = commands.add_parser("soak")
    soak.add_argument("--minutes", type=float, default=10)
    soak.add_argument("--interval", type=float, default=15, help="scrape interval, s")
    soak.add_argument("--switchers", type=int, default=2, help="stress-ng --switch workers")
    args = parser.parse_args()
    (run_scrape if args.command == "scrape" else run_soak)(args)


if __name__ == "__main__":
    main()
