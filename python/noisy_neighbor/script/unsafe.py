"""``system()`` and ``cat()``: what they do in user space when their record
arrives. ``system`` runs a shell command (only with ``--unsafe``, as in
bpftrace), ``cat`` prints a file."""

from __future__ import annotations

import os
import subprocess

__all__ = ["run_cat", "run_system"]

#: Bytes of a file cat() prints at most (bpftrace reads it whole; a bound
#: keeps /dev/zero from filling memory).
CAT_LIMIT = 1 << 20


def run_system(command: str) -> str:
    """The command's standard output (its errors go to ours, as bpftrace's do)."""
    result = subprocess.run(
        command,
        shell=True,
        stdout=subprocess.PIPE,
        text=True,
        errors="surrogateescape",
        check=False,
    )
    return result.stdout


def run_cat(path: str) -> str:
    limit = CAT_LIMIT
    if os.environ.get("BPFTRACE_CAT_BYTES_MAX", "").isdigit():
        limit = int(os.environ["BPFTRACE_CAT_BYTES_MAX"])  # bpftrace's knob
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode("utf-8", "surrogateescape")
    except OSError as err:
        return f"ERROR: failed to open file '{path}': {err.strerror}\n"
