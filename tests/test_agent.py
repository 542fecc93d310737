"""The node agent for real: ``noisy-neighbor serve`` as a child process, with
its probe in the kernel, real cgroups and workloads, and a real Prometheus
(Debian's ``prometheus`` package) scraping it every second and answering
PromQL. Also: its counters against the kernel's own schedstat, thousands of
short-lived cgroups through a small map, and SIGTERM in the middle of scrapes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import noisy_neighbor as nn
from noisy_neighbor.testing import (
    CPU_HOG,
    AgentProcess,
    periodic_sleeper,
    programs_left,
    read_schedstat,
    request_loop,
)

pytestmark = pytest.mark.needs_bpf

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
#: Every counter of losses the agent exports.
_LOST = re.compile(r'^noisy_neighbor_lost_total\{reason="(\w+)"\} (\S+)$', re.M)


def _require(tool: str | None, name: str) -> str:
    if tool is None:
        if os.environ.get("NN_REQUIRE_BPF") == "1":
            pytest.fail(f"{name} is not installed (make deps installs Debian's prometheus)")
        pytest.skip(f"{name} is not installed: apt-get install prometheus")
    return tool


@pytest.fixture
def agent() -> Iterator[Callable[..., AgentProcess]]:
    started: list[AgentProcess] = []

    def start(*args: str) -> AgentProcess:
        started.append(AgentProcess(*args))
        return started[-1]

    yield start
    for each in started:
        killed = each.process.returncode == -signal.SIGKILL
        code, err = each.stop()
        assert code == 0 or killed, err[-2000:]
        assert "Traceback" not in err, err[-2000:]
    assert not programs_left()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """Debian's Prometheus on loopback, scraping one target every second,
    with its data under a temporary directory."""

    def __init__(self, root: Path, target_port: int) -> None:
        binary = _require(PROMETHEUS, "prometheus")
        self.port = _free_port()
        config = root / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: noisy-neighbor\n"
            "    scrape_interval: 1s\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n"
        )
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(root / "prometheus.log").open("w"),
        )
        self.log = root / "prometheus.log"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2)
                return
            assert self.process.poll() is None, self.log.read_text()[-2000:]
            time.sleep(0.2)
        raise AssertionError(f"prometheus never got ready: {self.log.read_text()[-2000:]}")

    def query(self, promql: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": promql}
        )
        with urllib.request.urlopen(url, timeout=30) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def wait_for(self, promql: str, timeout: float = 60.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if result := self.query(promql):
                return result
            time.sleep(0.5)
        raise AssertionError(f"no result for {promql} in {timeout} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _sample(exposition: str, name: str, **labels: str) -> float | None:
    """The value of the one series of ``name`` whose labels include ``labels``."""
    for line in exposition.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def _slot(seconds: float) -> int:
    """The kernel's log2 bucket of a wait."""
    return max(int(seconds * 1e9), 1).bit_length() - 1


def test_prometheus_names_the_neighbor_and_its_p99_matches_the_exact_one(
    agent, cgroup_factory, tmp_path
) -> None:
    """Victim and neighbor pinned to one CPU; a streaming probe beside the
    agent keeps every wait of the victim, for the exact p99."""
    victim = cgroup_factory("victim")
    neighbor = cgroup_factory("neighbor")
    serving = agent("--window", "3")
    prometheus = Prometheus(tmp_path, serving.port)
    try:
        # Batches of a second, kept until read after the stop: none dropped.
        with nn.RunqProbe(
            stream=True, cgroups=[victim.path], batch_ms=1000, pending_batches=64
        ) as stream:
            neighbor.run(CPU_HOG, cpus=[1])
            neighbor.run(CPU_HOG, cpus=[1])
            victim.run(request_loop(), cpus=[1])  # 1 ms of work, 1 ms of sleep
            # The verdict of a window the victim spent behind the hog.
            verdict = prometheus.wait_for(
                f'noisy_neighbor_verdict{{cgroup="{victim.path}",kind="noisy-neighbor"}} == 1'
            )
            victim.freeze()
            # Two scrapes after the freeze: Prometheus holds the final counts.
            time.sleep(2.5)
            stream.stop()
            waits = np.concatenate(
                [b.latency_ns[b.cgroup_id == victim.id] for b in stream.batches(timeout=1)]
            )
            assert stream.stats()["dropped_batch_events"] == 0
        culprits = prometheus.wait_for(
            f'topk(1, noisy_neighbor_culprit_wait_seconds_total{{cgroup="{victim.path}",'
            'culprit_cgroup!~"idle|untracked|other"})'
        )
        assert culprits[0]["metric"]["culprit_cgroup"] == neighbor.path
        assert verdict[0]["metric"]["cgroup"] == victim.path
        quantile = prometheus.query(
            "histogram_quantile(0.99, noisy_neighbor_runqueue_latency_seconds_bucket"
            f'{{cgroup="{victim.path}"}})'
        )
        count = prometheus.query(f'noisy_neighbor_runqueue_waits_total{{cgroup="{victim.path}"}}')
    finally:
        prometheus.stop()
    # Both probes saw every wait of the victim since its first task started.
    assert int(float(count[0]["value"][1])) == len(waits)
    exact = float(np.percentile(waits, 99, method="inverted_cdf")) / 1e9
    estimate = float(quantile[0]["value"][1])
    assert math.isfinite(estimate)
    # Prometheus interpolates inside the bucket that holds the 99th wait; its
    # upper bound is inclusive (2**(i+1) - 1 ns), so the estimate may sit on
    # the next bucket's lower edge: one bucket either way.
    assert abs(_slot(estimate) - _slot(exact)) <= 1, (estimate, exact)


def test_the_exposition_passes_promtool_with_hostile_cgroup_names(agent, cgroup_factory) -> None:
    promtool = _require(PROMTOOL, "promtool")
    parent = cgroup_factory("names")
    # Anything kernfs takes as a directory name (it refuses "/" and newlines).
    hostile = [
        'quote"and\\backslash',
        b"not-utf8-\xff".decode("utf-8", "surrogateescape"),
        '{le="1"} 9',
    ]
    made = []
    try:
        for name in hostile:
            path = os.path.join(parent.abspath, name)
            os.mkdir(path)
            made.append(path)
        serving = agent()
        for path in made:  # a task in each, so each has series
            child = subprocess.Popen(
                [*periodic_sleeper(0.01)],
                preexec_fn=lambda p=path: Path(p, "cgroup.procs").write_text(str(os.getpid())),
            )
            time.sleep(0.3)
            child.kill()
            child.wait()
        for accept in (None, "application/openmetrics-text;version=1.0.0"):
            exposition = serving.get(accept=accept)
            assert exposition.count("\ufffd") >= 1  # the byte that is not UTF-8
            if accept is None:
                checked = subprocess.run(
                    [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True
                )
                assert checked.returncode == 0, checked.stdout + checked.stderr
            for line in exposition.splitlines():
                assert line.startswith("#") or re.fullmatch(r"[a-z_]+(\{.*\})? \S+", line), line
    finally:
        for path in made:
            with contextlib.suppress(OSError):
                os.rmdir(path)


def test_counters_match_schedstat_over_a_frozen_window(agent, cgroup_factory) -> None:
    victim = cgroup_factory("victim")
    neighbor = cgroup_factory("neighbor")
    serving = agent()
    neighbor.run(CPU_HOG, cpus=[0])
    victim.run(request_loop(), cpus=[0])
    time.sleep(0.5)

    def frozen_readings() -> tuple[float, int]:
        exposition = serving.get()
        seconds = _sample(
            exposition, "noisy_neighbor_runqueue_wait_seconds_total", cgroup=victim.path
        )
        assert seconds is not None, exposition[:2000]
        kernel = sum(read_schedstat(tid).run_delay_ns for tid in victim.threads())
        return seconds, kernel

    victim.freeze()
    probe0, kernel0 = frozen_readings()
    victim.thaw()
    time.sleep(2)
    victim.freeze()
    probe1, kernel1 = frozen_readings()
    probe_ns = (probe1 - probe0) * 1e9
    kernel_ns = kernel1 - kernel0
    assert kernel_ns > 1_000_000  # the hog made the victim wait: a real window
    # 0.1% is the bound; the probe reads the kernel's own stamps, so
    # the only slack is the float seconds of the exposition (ns resolution).
    assert abs(probe_ns - kernel_ns) <= 0.001 * kernel_ns, (probe_ns, kernel_ns)


def test_thousands_of_short_lived_cgroups_pass_through_a_small_map(agent, cgroup_factory) -> None:
    parent = cgroup_factory("churn")
    serving = agent("--max-cgroups", "1024", "--forget-after", "3")
    sleeper = subprocess.Popen(periodic_sleeper(0.001), stdin=subprocess.DEVNULL)
    churned = 3000
    # A churned cgroup is named by its path, or by ".../c<i>" when it was
    # gone before the agent could learn its path (it lives 4 ms).
    churn_series = re.compile(
        r'^noisy_neighbor_runqueue_waits_total\{cgroup="(?:'
        + re.escape(parent.path)
        + r'|\.\.\.)/(c\d+)"',
        re.M,
    )
    seen: set[str] = set()
    try:
        for i in range(churned):
            path = os.path.join(parent.abspath, f"c{i}")
            os.mkdir(path)
            Path(path, "cgroup.procs").write_text(str(sleeper.pid))
            time.sleep(0.004)  # a few wakeups: a few waits in this cgroup
            Path(parent.abspath, "cgroup.procs").write_text(str(sleeper.pid))
            os.rmdir(path)
            if i % 200 == 199:  # well within --forget-after of each other
                seen.update(churn_series.findall(serving.get()))
    finally:
        sleeper.kill()
        sleeper.wait()
    seen.update(churn_series.findall(exposition := serving.get()))
    lost = {reason: float(value) for reason, value in _LOST.findall(exposition)}
    assert lost and not any(lost.values()), lost
    # More cgroups than the map holds went through it, each with its series.
    assert len(seen) > 1024, len(seen)
    time.sleep(4)  # past --forget-after
    assert not churn_series.findall(serving.get())


def test_sigterm_in_the_middle_of_scrapes_exits_cleanly_with_the_recording(
    agent, cgroup_factory, tmp_path
) -> None:
    victim = cgroup_factory("victim")
    record = tmp_path / "record"
    serving = agent("--record", str(record), "--record-interval", "1")
    victim.run(CPU_HOG, cpus=[0])
    victim.run(periodic_sleeper(0.002), cpus=[0])
    time.sleep(2.5)
    scraped: list[int] = []
    stop = threading.Event()

    def scrape() -> None:
        while not stop.is_set():
            try:
                scraped.append(len(serving.get()))
            except OSError:
                return  # the agent has gone: what SIGTERM is for

    scraper = threading.Thread(target=scrape)
    scraper.start()
    time.sleep(0.5)
    code, err = serving.stop()
    stop.set()
    scraper.join(timeout=30)
    assert code == 0, err
    assert scraped
    assert not programs_left()
    rows = nn.history(str(record))
    mine = rows[rows["cgroup_id"] == victim.id]
    assert len(mine) >= 2  # the 1 s intervals, and the last part-interval at exit
    assert mine["waits"].sum() > 0
    assert (mine["slots"].map(sum) == mine["waits"]).all()
    assert not list(record.glob("parts/*/*.parquet"))  # merged into the hourly file at exit


def test_bpf_run_time_is_exported_while_the_kernel_keeps_it(agent) -> None:
    sysctl = Path("/proc/sys/kernel/bpf_stats_enabled")
    before = sysctl.read_text().strip()
    serving = agent()
    try:
        sysctl.write_text("1")
        time.sleep(0.5)  # switches happen all the time: the program runs
        exposition = serving.get()
        programs = re.findall(
            r'^noisy_neighbor_bpf_runs_total\{program="(nn_\w+)"\} (\d+)', exposition, re.M
        )
        assert programs and all(int(runs) > 0 for _, runs in programs), exposition[-3000:]
        seconds = _sample(
            exposition, "noisy_neighbor_bpf_run_seconds_total", program=programs[0][0]
        )
        assert seconds is not None and seconds > 0
        sysctl.write_text("0")
        assert "noisy_neighbor_bpf_run_seconds_total" not in serving.get()  # off: not exported
    finally:
        sysctl.write_text(before)


def test_a_sigkilled_agent_loses_at_most_its_last_interval(agent, cgroup_factory, tmp_path) -> None:
    victim = cgroup_factory("victim")
    record = tmp_path / "record"
    serving = agent("--record", str(record), "--record-interval", "1")
    victim.run(periodic_sleeper(0.002), cpus=[0])
    time.sleep(3.5)
    serving.process.kill()
    serving.process.wait(timeout=30)
    # Every interval written before the kill is whole and readable, not yet
    # merged into an hourly file; no half-written file is read.
    rows = nn.history(str(record))
    mine = rows[rows["cgroup_id"] == victim.id]
    assert len(mine) >= 2, rows
    assert (mine["interval_s"] < 2).all()
    assert list(record.glob("parts/*/*.parquet"))
