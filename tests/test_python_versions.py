"""The package says it runs on CPython 3.9 and later (pyproject.toml), and
its one wheel is built for the stable ABI from 3.9 on; this machine has no
3.9 to run it on, so the code is checked for what each construct needs
(vermin reads the syntax and the standard library calls)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_needs_nothing_newer_than_it_says() -> None:
    declared = re.search(r'requires-python = ">=(\d+\.\d+)"', (ROOT / "pyproject.toml").read_text())
    assert declared is not None
    vermin = shutil.which("vermin", path=str(Path(sys.executable).parent))
    if vermin is None:
        pytest.fail("vermin is not installed: make installs it into the venv")
    done = subprocess.run(
        [
            vermin,
            "--no-tips",
            "--violations",
            "--eval-annotations=no",
            f"-t={declared.group(1)}-",
            str(ROOT / "python" / "noisy_neighbor"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:]


def test_the_extension_is_built_for_the_stable_abi() -> None:
    """One wheel for every CPython: the module this interpreter loaded is the
    stable-ABI build (a version-specific one would be found first)."""
    from noisy_neighbor import _native

    assert Path(_native.__file__).name == "_native.abi3.so"
