"""Shared test set-up: real-kernel tests carry the ``bpf`` marker; they are
skipped without the privileges to load BPF, and fail instead when
NN_REQUIRE_BPF=1 (as in CI), so that a skip can never pass for a result."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Callable

import pytest

from noisy_neighbor.testing import TestCgroup

REQUIRE_BPF = os.environ.get("NN_REQUIRE_BPF") == "1"

# include/uapi/linux/capability.h
_CAP_SYS_ADMIN, _CAP_PERFMON, _CAP_BPF = 21, 38, 39


def bpf_unavailable_reason() -> str | None:
    """Why this process cannot load BPF and create cgroups, or None if it can."""
    with open("/proc/self/status") as f:
        caps = next((int(line.split()[1], 16) for line in f if line.startswith("CapEff:")), 0)

    def has(cap: int) -> bool:
        return bool(caps & (1 << cap))

    if not (has(_CAP_SYS_ADMIN) or (has(_CAP_BPF) and has(_CAP_PERFMON))):
        return "needs root or CAP_BPF+CAP_PERFMON"
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "the kernel has no BTF (/sys/kernel/btf/vmlinux)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = bpf_unavailable_reason()
    if reason is None or REQUIRE_BPF:
        return
    for item in items:
        if item.get_closest_marker("bpf"):
            item.add_marker(pytest.mark.skip(reason=f"{reason} (set NN_REQUIRE_BPF=1 to fail)"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = bpf_unavailable_reason()
    if REQUIRE_BPF and reason and item.get_closest_marker("bpf"):
        pytest.fail(f"NN_REQUIRE_BPF=1 but this test cannot run: {reason}")


@pytest.fixture
def make_cgroup() -> Iterator[Callable[..., TestCgroup]]:
    """Creates fresh cgroups; removes them (processes killed first) at teardown,
    also when the test fails."""
    created: list[TestCgroup] = []

    def make(name: str | None = None) -> TestCgroup:
        cgroup = TestCgroup(name)
        created.append(cgroup)
        return cgroup

    yield make
    for cgroup in reversed(created):
        cgroup.remove()
