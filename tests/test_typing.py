"""The type stubs match the built extension module, and the package type-checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "noisy_neighbor"


def test_stubs_match_the_native_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "noisy_neighbor._native"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_type_checks() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", str(PACKAGE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
