"""The pytest plugin, tested the way its users meet it: through pytester runs
of small experiment files."""

from __future__ import annotations

import json
import os
import sys
import time

import pytest

pytestmark = pytest.mark.needs_bpf

EXPERIMENT = """
import time
import pytest
from noisy_neighbor.testing import periodic_sleeper

@pytest.mark.needs_bpf
def test_victim_next_to_a_batch_job(cgroup_factory, cpu_hog, runq_probe):
    victim = cgroup_factory("victim")
    victim.run(periodic_sleeper(0.002), cpus=[{cpu}])
    cpu_hog(cgroup_factory("batch"), n=2, cpus=[{cpu}])
    time.sleep(1.0)
    assert runq_probe.latency(victim).count > 50
    assert runq_probe.latency(victim).percentile(99) < {bound_ns}
"""
LAST_CPU = (os.cpu_count() or 1) - 1


def test_a_passing_experiment_passes_and_is_summarised(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(EXPERIMENT.format(cpu=LAST_CPU, bound_ns=10_000_000_000))
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*noisy-neighbor: run-queue latency per experiment*",
            "*test_victim_next_to_a_batch_job*",
            "*/nn-test-*-victim*waits=* p50=* p99=* total=*",
            "*/nn-test-*-batch*waits=*",
        ]
    )


def test_an_impossible_bound_fails_showing_the_measured_value(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(EXPERIMENT.format(cpu=LAST_CPU, bound_ns=1))
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert * < 1", "*CgroupHistogram(cgroup_id=*p99=*"])


CRASHING = """
import json, os, pytest

@pytest.mark.needs_bpf
def test_breaks_half_way(cgroup_factory, cpu_hog):
    capped = cgroup_factory("capped", cpu_quota_us=20_000, cpus=[0])
    hogs = cpu_hog(capped, n=2)
    with open({record!r}, "w") as f:
        json.dump({{"paths": [capped.abspath, *capped.v1_paths.values()],
                   "pids": [h.pid for h in hogs]}}, f)
    raise {error}
"""


@pytest.mark.parametrize("error", ["RuntimeError('boom')", "KeyboardInterrupt"])
def test_a_test_that_breaks_leaves_no_cgroup_and_no_process(
    pytester: pytest.Pytester, error: str
) -> None:
    record = pytester.path / "made.json"
    pytester.makepyfile(CRASHING.format(record=str(record), error=error))
    result = pytester.runpytest_subprocess()
    assert result.ret != 0
    made = json.loads(record.read_text())
    assert len(made["paths"]) == 3  # v2 cgroup, and v1 cpu + cpuset on this host
    for path in made["paths"]:
        assert not os.path.exists(path), f"{path} left behind"
    for pid in made["pids"]:
        assert not os.path.exists(f"/proc/{pid}"), f"process {pid} left behind"


def test_needs_bpf_skips_without_privileges_or_fails_when_required(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.needs_bpf
        def test_probe(runq_probe):
            pass
        """
    )
    unprivileged = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]
    pytest_cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs"]
    monkeypatch.delenv("NN_REQUIRE_BPF", raising=False)
    skipped = pytester.run(*unprivileged, *pytest_cmd)
    skipped.assert_outcomes(skipped=1)
    skipped.stdout.fnmatch_lines(["*needs root or CAP_BPF+CAP_PERFMON*NN_REQUIRE_BPF=1*"])

    monkeypatch.setenv("NN_REQUIRE_BPF", "1")
    failed = pytester.run(*unprivileged, *pytest_cmd)
    failed.assert_outcomes(errors=1)  # failed in setup, before the body ran
    assert failed.ret != 0
    failed.stdout.fnmatch_lines(["*NN_REQUIRE_BPF=1 but this test cannot run*"])


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_spawned_functions_run_inside_the_cgroup(cgroup_factory) -> None:
    capped = cgroup_factory("spawned", cpus=[LAST_CPU])
    process = capped.spawn(_spin, 30.0)
    deadline = time.monotonic() + 5
    while process.pid not in capped.pids() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.pid in capped.pids()
    with open(f"/proc/{process.pid}/cgroup") as f:
        assert f":cpuset:{capped.path}" in f.read()  # joined the v1 cpuset too
    capped.remove()
    assert not process.is_alive()
