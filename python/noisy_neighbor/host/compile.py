"""Compiling plugin C source with the host's clang against the package's SDK,
cached by content: the same source, flags and clang give the same object
without running clang again. clang runs within a memory and time bound
(:mod:`.clang`) and, for sources that start by including ``vmlinux.h``,
with that header precompiled (:mod:`.vmlinux_pch`)."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from ..errors import PluginCompileError
from ..sdk import clang_args
from .clang import ClangBounds, ClangRun, clang_version, failure_message, find_clang, run_clang
from .vmlinux_pch import includes_vmlinux_first, precompiled_vmlinux

__all__ = ["cache_dir", "compile_file", "compile_source"]


def cache_dir() -> Path:
    """Where compiled plugins are kept: ``$NN_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/noisy-neighbor/plugins`` (``~/.cache`` by default)."""
    if os.environ.get("NN_CACHE_DIR"):
        return Path(os.environ["NN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "noisy-neighbor" / "plugins"


def _headers_fingerprint(args: list[str]) -> str:
    """Name, size and mtime of the headers in each ``-I`` directory (and its
    ``bpf/`` subdirectory): editing a plugin's own header, or upgrading the
    SDK, must not reuse an object built against the old one."""
    entries = []
    for arg in args:
        if not arg.startswith("-I"):
            continue
        for directory in (Path(arg[2:]), Path(arg[2:]) / "bpf"):
            for header in sorted(directory.glob("*.h")) if directory.is_dir() else []:
                stat = header.stat()
                entries.append(f"{header}:{stat.st_size}:{stat.st_mtime_ns}")
    return "\n".join(entries)


def compile_source(
    code: str,
    name: str = "plugin",
    *,
    clang: str | None = None,
    cflags: list[str] | None = None,
) -> Path:
    """The path of ``code`` compiled to a BPF object (``<name>.bpf.o`` in the
    cache). Raises :class:`ClangNotFoundError` without clang, and
    :class:`PluginCompileError` with clang's diagnostics when it fails, or
    saying which bound it met (``NN_CLANG_MEMORY_MB``, ``NN_CLANG_TIMEOUT``)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"plugin name {name!r} must be letters, digits, '_', '.' or '-'")
    compiler = find_clang(clang)
    bounds = ClangBounds.from_env()
    args = [*clang_args(), *(cflags or [])]
    version = clang_version(compiler)
    digest = hashlib.sha256(
        "\0".join([code, *args, version, _headers_fingerprint(args)]).encode()
    ).hexdigest()[:16]
    target = cache_dir() / digest / f"{name}.bpf.o"
    if target.is_file():
        return target
    source = target.parent / f"{name}.bpf.c"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(code)
        # Compile next to the target and rename: a concurrent or interrupted
        # compile never leaves a half-written object in the cache.
        with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".o", delete=False) as tmp:
            partial = Path(tmp.name)
    except OSError as err:
        raise PluginCompileError(
            f"cannot write compiled plugins to {target.parent} ({err.strerror}): set "
            "NN_CACHE_DIR to a writable directory"
        ) from None
    try:
        command = [compiler, *args, "-c", str(source), "-o", str(partial)]
        pch = (
            precompiled_vmlinux(compiler, version, args, bounds, cache_dir())
            if includes_vmlinux_first(code)
            else None
        )
        run = _compile(command, bounds, pch)
        if run.returncode != 0:
            raise PluginCompileError(failure_message(run, bounds, f"plugin {name!r}"))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _compile(command: list[str], bounds: ClangBounds, pch: Path | None) -> ClangRun:
    """Runs ``command`` with ``pch`` included first when given. A crash
    would otherwise leave a preprocessed copy of the source (vmlinux.h and
    all) in /tmp for a bug report: not here."""
    command = [command[0], "-fno-crash-diagnostics", *command[1:]]
    if pch is None:
        return run_clang(command, bounds)
    run = run_clang([command[0], "-include-pch", str(pch), *command[1:]], bounds)
    if run.returncode == 0 or run.hit_a_bound:
        return run
    # A precompiled header clang cannot use (damaged, or built by another
    # clang under the same version string) fails like bad code does: compile
    # again without it, and report that run's diagnostics. If that run
    # works, the header was at fault: the next compile builds it anew.
    plain = run_clang(command, bounds)
    if plain.returncode == 0:
        pch.unlink(missing_ok=True)
    return plain


def compile_file(
    path: str | os.PathLike[str], *, clang: str | None = None, cflags: list[str] | None = None
) -> Path:
    """Compiles a ``.bpf.c`` file (its directory on the include path, for its
    own headers) into the cache; see :func:`compile_source`."""
    source = Path(path)
    name = source.name.removesuffix(".c").removesuffix(".bpf")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "plugin"
    flags = [f"-I{source.resolve().parent}", *(cflags or [])]
    return compile_source(source.read_text(), name=name, clang=clang, cflags=flags)
