"""A precompiled ``vmlinux.h``: parsing the vendored 134k-line header is most
of what compiling a small plugin costs (about 0.33 s of 0.36 s here), and
clang loads it precompiled in a few milliseconds. It is built once per clang
version, compile flags and header (path, size, mtime) into the compile
cache, and used only for sources whose first line of code includes
``vmlinux.h``: there, including it first changes nothing (its include guard
makes the source's own ``#include`` a no-op), and the object comes out the
same byte for byte. ``NN_CLANG_PCH=0`` turns it off."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from .clang import ClangBounds, run_clang

__all__ = ["includes_vmlinux_first", "precompiled_vmlinux"]

_HEADER = "vmlinux.h"
#: Blank lines and comments, then `#include "vmlinux.h"` (or <vmlinux.h>).
_FIRST_INCLUDE = re.compile(
    r'(?:\s+|//[^\n]*|/\*.*?\*/)*#[ \t]*include[ \t]*[<"]vmlinux\.h[>"]', re.S
)


def includes_vmlinux_first(code: str) -> bool:
    """Whether the first thing ``code`` does is include ``vmlinux.h``."""
    return _FIRST_INCLUDE.match(code) is not None


def _header(args: list[str]) -> Path | None:
    """The ``vmlinux.h`` clang finds first on the ``-I`` path of ``args``."""
    for arg in args:
        if arg.startswith("-I") and (Path(arg[2:]) / _HEADER).is_file():
            return Path(arg[2:]) / _HEADER
    return None


def precompiled_vmlinux(
    compiler: str, version: str, args: list[str], bounds: ClangBounds, cache: Path
) -> Path | None:
    """The precompiled ``vmlinux.h`` for compiles with ``args``, built into
    ``cache`` if it is not there yet; None when there is none to use: turned
    off, no ``vmlinux.h`` on the include path, or clang could not build it
    (remembered, so a failing build is not tried on every compile)."""
    if os.environ.get("NN_CLANG_PCH", "1").strip() == "0":
        return None
    header = _header(args)
    if header is None:
        return None
    stat = header.stat()
    key = "\0".join(
        [version, *args, str(header.resolve()), str(stat.st_size), str(stat.st_mtime_ns)]
    )
    directory = cache / "pch" / hashlib.sha256(key.encode()).hexdigest()[:16]
    pch, failed = directory / f"{_HEADER}.pch", directory / "failed.txt"
    if pch.is_file():
        return pch
    if failed.is_file():
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, suffix=".pch", delete=False) as tmp:
            partial = Path(tmp.name)
    except OSError:
        return None  # the compile itself will say the cache is not writable
    try:
        run = run_clang(
            [
                compiler,
                *args,
                "-fno-crash-diagnostics",
                "-x",
                "c-header",
                str(header),
                "-o",
                str(partial),
            ],
            bounds,
        )
        if run.returncode == 0:
            # Renamed into place whole: a concurrent compile sees all or nothing.
            partial.replace(pch)
            return pch
        if not run.hit_a_bound:  # a bound may be raised for the next try
            failed.write_text(run.stderr)
        return None
    finally:
        partial.unlink(missing_ok=True)
