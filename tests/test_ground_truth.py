"""The ground-truth window's arithmetic (pure logic; the real-kernel windows are
in test_runq_probe.py)."""

import math

from noisy_neighbor.testing.ground_truth import Window


def test_relative_error_is_of_the_kernels_total() -> None:
    window = Window(probe_wait_ns=990, probe_count=10, kernel_wait_ns=1000, kernel_pcount=10)
    assert math.isclose(window.relative_error, 0.01)


def test_a_window_with_no_kernel_wait_is_exact_or_infinitely_wrong() -> None:
    # An idle machine: every wakeup lands on an idle CPU and the kernel books no
    # wait at all (seen in CI: 200 wakeups, 0 ns). That must not divide by zero.
    assert Window(0, 200, 0, 200).relative_error == 0.0
    assert Window(5, 200, 0, 200).relative_error == math.inf
