"""pytest plugin for scheduler experiments (registered through ``pytest11``,
so installing noisy-neighbor is enough).

Fixtures:

- ``cgroup_factory(name=None, *, cpu_weight=None, cpu_quota_us=None,
  cpu_period_us=100_000, cpus=None)`` makes fresh :class:`TestCgroup`\\ s;
  ``cgroup`` is one with defaults. Everything is removed at teardown,
  processes killed first, also when the test fails; if pytest itself is
  interrupted, at session end or interpreter exit at the latest.
- ``cpu_hog(cgroup, n=1, *, cpus=None)`` starts busy loops in a cgroup.
- ``runq_probe``: a :class:`RunqProbe` running for the test's body;
  ``runq_probe.latency(cgroup)`` gives that cgroup's histogram so far.
- ``bpftrace(program, *args, **options)`` starts a bpftrace-language script
  for the test (stopped, END run, at teardown) and returns it, so an
  experiment asserts on its maps: ``bpftrace("...").map("@")``.

Marker: ``@pytest.mark.needs_bpf`` skips a test with the reason when this
process cannot load BPF, and fails it instead when ``NN_REQUIRE_BPF=1``.
A terminal summary lists the run-queue latency of each experiment's cgroups.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
from collections.abc import Iterable, Iterator
from typing import Any, Callable

import pytest

from ..host.privileges import bpf_unavailable_reason
from ..remote.client import AgentClient
from ..remote.via import runq_source
from ..runq.histogram import CgroupHistogram
from ..runq.probe import RunqProbe
from .workloads import CPU_HOG, TestCgroup

__all__ = ["bpf_unavailable_reason"]

# Every cgroup the fixtures made and have not removed yet: the last line of
# cleanup if teardown never runs (Ctrl-C during a test, a crash of pytest).
_LIVE_CGROUPS: dict[int, TestCgroup] = {}
# The cgroups each test made, for the summary of its experiment.
_CGROUPS_KEY = pytest.StashKey[list[TestCgroup]]()
_SUMMARY_KEY = pytest.StashKey[list[tuple[str, list[tuple[TestCgroup, CgroupHistogram]]]]]()


def _require_bpf() -> bool:
    return os.environ.get("NN_REQUIRE_BPF") == "1"


def _remove_live_cgroups() -> None:
    for cgroup in list(_LIVE_CGROUPS.values()):
        with contextlib.suppress(OSError):  # busy: nothing better to do at exit
            cgroup.remove()
        _LIVE_CGROUPS.pop(id(cgroup), None)


atexit.register(_remove_live_cgroups)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs_bpf: loads BPF into the running kernel; skipped without root or "
        "CAP_BPF+CAP_PERFMON, failed instead when NN_REQUIRE_BPF=1",
    )
    config.stash[_SUMMARY_KEY] = []


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("needs_bpf") is None:
        return
    reason = bpf_unavailable_reason()
    if reason is None:
        return
    if _require_bpf():
        pytest.fail(f"NN_REQUIRE_BPF=1 but this test cannot run: {reason}", pytrace=False)
    pytest.skip(f"{reason} (set NN_REQUIRE_BPF=1 to fail instead)")


def pytest_sessionfinish(session: pytest.Session) -> None:
    _remove_live_cgroups()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    experiments = config.stash.get(_SUMMARY_KEY, [])
    if not experiments:
        return
    terminalreporter.section("noisy-neighbor: run-queue latency per experiment")
    for nodeid, readings in experiments:
        terminalreporter.write_line(nodeid)
        for cgroup, hist in readings:
            p50, p99 = hist.percentile(50), hist.percentile(99)
            terminalreporter.write_line(
                f"  {cgroup.path:<40} waits={hist.count:<8} "
                f"p50={_us(p50)} p99={_us(p99)} total={hist.total_ns / 1e6:.1f} ms"
            )


def _us(ns: float) -> str:
    return "-" if ns != ns else f"{ns / 1000:.1f} us"


@pytest.fixture
def cgroup_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., TestCgroup]]:
    """Makes fresh cgroups under the cgroup2 mount (with v1 ``cpu``/``cpuset``
    companions on hybrid hosts when CPU settings are asked for)."""
    made: list[TestCgroup] = []

    def make(
        name: str | None = None,
        *,
        cpu_weight: int | None = None,
        cpu_quota_us: int | None = None,
        cpu_period_us: int = 100_000,
        cpus: Iterable[int] | None = None,
    ) -> TestCgroup:
        if name is not None and "/" not in name.strip("/"):
            # Unique per run, so parallel sessions and leftovers never clash.
            name = f"nn-test-{os.getpid()}-{len(made)}-{name}"
        cgroup = TestCgroup(
            name,
            cpu_weight=cpu_weight,
            cpu_quota_us=cpu_quota_us,
            cpu_period_us=cpu_period_us,
            cpus=cpus,
        )
        made.append(cgroup)
        _LIVE_CGROUPS[id(cgroup)] = cgroup
        request.node.stash.setdefault(_CGROUPS_KEY, []).append(cgroup)
        return cgroup

    yield make
    errors = []
    for cgroup in reversed(made):
        try:
            cgroup.remove()
        except OSError as err:
            errors.append(f"{cgroup.path}: {err}")
        _LIVE_CGROUPS.pop(id(cgroup), None)
    if errors:
        pytest.fail("could not remove test cgroups: " + "; ".join(errors), pytrace=False)


@pytest.fixture
def cgroup(cgroup_factory: Callable[..., TestCgroup]) -> TestCgroup:
    """A fresh cgroup with default settings."""
    return cgroup_factory()


@pytest.fixture
def cpu_hog() -> Iterator[Callable[..., list[subprocess.Popen[bytes]]]]:
    """``cpu_hog(cgroup, n=1, *, cpus=None)`` starts ``n`` busy loops in
    ``cgroup``, optionally pinned to ``cpus``; they are stopped at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def start(
        cgroup: TestCgroup, n: int = 1, *, cpus: Iterable[int] | None = None
    ) -> list[subprocess.Popen[bytes]]:
        cpu_list = None if cpus is None else list(cpus)
        hogs = [cgroup.run(CPU_HOG, cpus=cpu_list) for _ in range(n)]
        started.extend(hogs)
        return hogs

    yield start
    for hog in started:
        hog.kill()
        hog.wait()


@pytest.fixture
def runq_probe(request: pytest.FixtureRequest) -> Iterator[RunqProbe | AgentClient]:
    """A run-queue probe attached for the test's body and detached after it,
    with attribution on, so ``runq_probe.report()`` gives verdicts. Where
    this process may not load BPF, the node agent's probe over its socket
    (``$NN_AGENT_SOCKET``), read for the test's body alike."""
    probe, _ = runq_source("auto", stream=False, cgroups=None, attribution=True)
    probe.start()
    try:
        yield probe
    finally:
        probe.stop()
        cgroups = request.node.stash.get(_CGROUPS_KEY, [])
        if cgroups:
            readings = [(c, probe.latency(c)) for c in cgroups]
            request.config.stash[_SUMMARY_KEY].append((request.node.nodeid, readings))


@pytest.fixture
def bpftrace() -> Iterator[Callable[..., Any]]:
    """Starts bpftrace-language scripts for a test; each is stopped and
    closed at teardown, also when the test fails."""
    from ..script import bpftrace as compile_script

    started: list[Any] = []

    def start(program: str, *args: Any, **options: Any) -> Any:
        script = compile_script(program, *args, **options)
        script.start()
        started.append(script)
        return script

    yield start
    for script in started:
        with contextlib.suppress(Exception):
            script.close()
