"""The C SDK: its headers build the seed experiment's program unchanged, and
the kernel's verifier accepts the result."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from noisy_neighbor import sdk

SEED = Path(__file__).parent / "data" / "seed"


def test_include_dirs_hold_the_headers() -> None:
    headers = {name for d in sdk.include_dirs() for name in os.listdir(d)}
    assert {"maps.bpf.h", "bits.bpf.h", "vmlinux.h"} <= headers
    args = sdk.clang_args()
    assert "-target" in args and any(a.startswith("-D__TARGET_ARCH_") for a in args)


@pytest.mark.needs_bpf
def test_the_seed_program_builds_with_the_sdk_and_passes_the_verifier(tmp_path) -> None:
    clang = shutil.which("clang")
    assert clang, "clang is installed by the Makefile"
    obj = tmp_path / "seed.bpf.o"
    subprocess.run(
        [clang, *sdk.clang_args(), "-c", str(SEED / "noisy_neighbor.bpf.c"), "-o", str(obj)],
        check=True,
        capture_output=True,
        text=True,
    )
    pins = Path("/sys/fs/bpf") / f"nn-test-seed-{uuid.uuid4().hex[:8]}"
    try:
        loaded = subprocess.run(
            ["bpftool", "prog", "loadall", str(obj), str(pins)], capture_output=True, text=True
        )
        assert loaded.returncode == 0, loaded.stderr[-2000:]
        assert sorted(os.listdir(pins)) == ["tp_sched_switch", "tp_sched_wakeup"]
    finally:
        shutil.rmtree(pins, ignore_errors=True)  # unpinned programs are freed
