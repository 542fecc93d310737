"""The first thing a newcomer runs: `noisy-neighbor demo` catches the neighbor,
calls the capped cgroup self-throttled, and leaves nothing behind."""

from __future__ import annotations

import glob
import re
import signal
import subprocess
import sys
import time

import pytest

from noisy_neighbor.testing import interruptible, our_programs

pytestmark = pytest.mark.needs_bpf


def _leftovers() -> list[str]:
    """Demo cgroups in any hierarchy (v2 and the v1 controllers)."""
    return glob.glob("/sys/fs/cgroup/**/nn-demo-*", recursive=True)


def test_the_demo_names_the_neighbor_and_leaves_nothing_behind() -> None:
    demo = subprocess.run(
        [sys.executable, "-m", "noisy_neighbor", "demo", "--seconds", "4"],
        capture_output=True,
        text=True,
        timeout=120,  # bounds a hang, not a speed
    )
    out = demo.stdout
    assert demo.returncode == 0, out + demo.stderr
    rows = {m[1]: m[2] for m in re.finditer(r"^(victim|neighbor|capped)\s.*\s(\S+)$", out, re.M)}
    assert rows["victim"] == "noisy-neighbor", out
    assert rows["capped"] == "self-throttled", out
    # The reason under the victim's row names its culprit.
    reason = re.search(r"^victim\s.*\n(.*)$", out, re.M)[1]
    assert "neighbor" in reason, out
    assert "The victim's waits" in out and "usecs" in out
    assert "What to look at" in out
    assert not _leftovers()
    assert not our_programs()


def test_ctrl_c_ends_the_demo_and_removes_what_it_made() -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "noisy_neighbor", "demo", "--seconds", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )
    try:
        assert demo.stdout is not None
        assert demo.stdout.readline().startswith("Demo cgroups under")
        time.sleep(1.0)
        assert _leftovers()  # the demo's cgroups exist while it runs
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=60)
    finally:
        demo.kill()
    assert demo.returncode == 130, out + err
    assert not _leftovers()
    assert not our_programs()
