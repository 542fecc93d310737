"""Real cgroups and workloads for experiments and tests: :class:`TestCgroup`
(create a cgroup, run pinned workloads in it, freeze it, remove it), workload
commands (:data:`CPU_HOG`, :func:`periodic_sleeper`, :func:`ping_pong`), the
kernel's own per-task accounting (:func:`read_schedstat`), probe-vs-kernel
windows (:func:`measure_window`), :func:`remove_leftover_cgroups` and
:func:`our_programs` (what of ours the kernel still holds), and the agent
as a child process (:class:`AgentProcess`). The
pytest plugin (fixtures and the ``needs_bpf`` marker) is
:mod:`noisy_neighbor.testing.pytest_plugin`, loaded by pytest, not imported
here. Builds on ``runq`` and ``names``.
"""

from __future__ import annotations

from .agent import AgentProcess
from .ground_truth import Schedstat, Window, measure_window, read_schedstat
from .programs import our_programs, programs_left
from .workloads import (
    CPU_HOG,
    TestCgroup,
    interruptible,
    periodic_sleeper,
    ping_pong,
    remove_leftover_cgroups,
    request_loop,
)

__all__ = [
    "CPU_HOG",
    "AgentProcess",
    "Schedstat",
    "TestCgroup",
    "Window",
    "interruptible",
    "measure_window",
    "our_programs",
    "periodic_sleeper",
    "ping_pong",
    "programs_left",
    "read_schedstat",
    "remove_leftover_cgroups",
    "request_loop",
]
