"""Running clang with a bound on its memory and on its time, and saying how a
run ended when it did not produce an object.

clang's BPF backend has bugs that make it grow without limit: Debian 12's
clang 14 expands ``__builtin_clz`` (BPF has no count-leading-zeros
instruction) at -O0 into a loop that takes memory until something stops it;
once that was the kernel's OOM killer, after 24 GiB, and all the user saw
was an empty error. So each run gets an address-space limit (RLIMIT_AS, in
the child before exec) and a wall-clock timeout after which the whole
process group is killed, and a failure says which bound it met and how to
raise it.

``NN_CLANG_MEMORY_MB`` (default: 4 GiB or half the RAM, whichever is
smaller) and ``NN_CLANG_TIMEOUT`` (seconds, default 120) set the bounds.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import ClangNotFoundError

__all__ = ["ClangBounds", "ClangRun", "clang_version", "failure_message", "find_clang", "run_clang"]

#: The most memory a compile may take by default, if the RAM allows.
DEFAULT_MEMORY_MB = 4096
#: Address space an ordinary compile may need, clang's own libraries
#: included, with room to spare (Debian's clang 14 needs 300 MiB for the
#: run-queue probe): less than that is a bound set too low.
ORDINARY_COMPILE_MB = 384
#: How long a compile may take by default: compiles take well under a second.
DEFAULT_TIMEOUT_S = 120.0

_INSTALL_CLANG = (
    "install clang (Debian/Ubuntu: apt-get install clang; Fedora: dnf install clang), "
    "or pass clang='/path/to/clang'"
)
#: What clang, LLVM or the loader print when an allocation fails.
_OUT_OF_MEMORY = re.compile(
    r"LLVM ERROR: out of memory|std::bad_alloc|Allocation failed|"
    r"failed to map segment|Cannot allocate memory"
)
#: Lines of an LLVM crash report that help no one reading the error: the
#: frames of the stack dump and the plea to file a bug.
_CRASH_NOISE = re.compile(r"^\s*#\d+ 0x[0-9a-f]+ |^PLEASE submit a bug report")


def find_clang(clang: str | None) -> str:
    """The path of ``clang`` (or ``$NN_CLANG``, or ``clang``) on PATH."""
    found = shutil.which(clang or os.environ.get("NN_CLANG", "clang"))
    if not found:
        raise ClangNotFoundError(
            f"compiling BPF C needs clang, which was not found: {_INSTALL_CLANG}"
        )
    return found


def clang_version(clang: str) -> str:
    """The first line of ``clang --version``, asked once per clang binary
    (by path, size and mtime): asking takes 20 ms, a compile with the
    precompiled vmlinux.h not many more."""
    stat = os.stat(clang)
    return _version(clang, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _version(clang: str, size: int, mtime_ns: int) -> str:
    # Remembered on disk too: every `trace` is a new process, and 20 ms is
    # a tenth of its start-up.
    remembered = _version_file(clang, size, mtime_ns)
    with contextlib.suppress(OSError):
        return remembered.read_text()
    out = subprocess.run([clang, "--version"], capture_output=True, text=True, check=False)
    version = out.stdout.splitlines()[0] if out.stdout else clang
    with contextlib.suppress(OSError):
        remembered.parent.mkdir(parents=True, exist_ok=True)
        partial = remembered.with_suffix(f".{os.getpid()}")
        partial.write_text(version)
        partial.replace(remembered)
    return version


def _version_file(clang: str, size: int, mtime_ns: int) -> Path:
    base = os.environ.get("NN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "noisy-neighbor",
    )
    key = hashlib.sha256(f"{clang}\0{size}\0{mtime_ns}".encode()).hexdigest()[:16]
    return Path(base) / "clang-version" / key


def _half_the_ram_mb() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2 // (1 << 20)
    except (ValueError, OSError):
        return DEFAULT_MEMORY_MB


@dataclass(frozen=True)
class ClangBounds:
    """How much memory (MiB of address space) and time (seconds) one clang
    run may take."""

    memory_mb: int
    timeout_s: float

    @classmethod
    def from_env(cls) -> ClangBounds:
        """The bounds ``NN_CLANG_MEMORY_MB`` and ``NN_CLANG_TIMEOUT`` set, or
        the defaults."""
        memory = os.environ.get("NN_CLANG_MEMORY_MB", "").strip()
        timeout = os.environ.get("NN_CLANG_TIMEOUT", "").strip()
        try:
            memory_mb = int(memory) if memory else min(DEFAULT_MEMORY_MB, _half_the_ram_mb())
            timeout_s = float(timeout) if timeout else DEFAULT_TIMEOUT_S
        except ValueError:
            memory_mb = timeout_s = 0
        if memory_mb <= 0 or not 0 < timeout_s < float("inf"):
            raise ValueError(
                "NN_CLANG_MEMORY_MB must be a whole number of MiB and NN_CLANG_TIMEOUT a "
                f"number of seconds, both above zero; got {memory!r} and {timeout!r}"
            )
        return cls(memory_mb, timeout_s)


@dataclass(frozen=True)
class ClangRun:
    """How one clang run ended: its exit status (negative: the signal that
    killed it), what it printed on stderr, and whether the timeout ended it."""

    argv: list[str]
    returncode: int
    stderr: str
    timed_out: bool = False

    @property
    def ran_out_of_memory(self) -> bool:
        return bool(_OUT_OF_MEMORY.search(self.stderr))

    @property
    def hit_a_bound(self) -> bool:
        """Whether the run ended on a bound or a signal, not on its own
        diagnostics: running it again would fail the same way."""
        return self.timed_out or self.returncode < 0 or self.ran_out_of_memory


def run_clang(argv: list[str], bounds: ClangBounds) -> ClangRun:
    """Runs ``argv`` (clang and its arguments) within ``bounds``. On timeout,
    or if this thread is interrupted, every process of its group is killed."""
    limit = bounds.memory_mb << 20

    def bound_memory() -> None:
        # In the child, before exec: only setrlimit, which takes no lock.
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    child = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        preexec_fn=bound_memory,
        # A group of its own, so the timeout also ends the processes clang
        # starts (the cc1 frontend, when it does not run in-process).
        start_new_session=True,
    )
    timed_out = False
    try:
        _, stderr = child.communicate(timeout=bounds.timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(child)
        _, stderr = child.communicate()
    finally:
        if child.returncode is None or child.returncode < 0:
            _kill_group(child)
            child.wait()
    return ClangRun(argv, child.returncode, stderr or "", timed_out)


def _kill_group(child: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group has exited
        os.killpg(child.pid, signal.SIGKILL)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _diagnostics(stderr: str) -> str:
    """What clang printed, without the frames of a crash's stack dump."""
    lines = [line for line in stderr.strip().splitlines() if not _CRASH_NOISE.search(line)]
    return "\n".join(lines)


def failure_message(run: ClangRun, bounds: ClangBounds, what: str) -> str:
    """Why ``run`` produced no object (``what`` names what was compiled,
    ``plugin 'x'``), and what to do about it."""
    memory = (
        f"clang may use {bounds.memory_mb} MiB of address space (raise it with "
        "NN_CLANG_MEMORY_MB=<MiB>)"
    )
    diagnostics = _diagnostics(run.stderr)
    printed = f"\nclang said:\n{diagnostics}" if diagnostics else ""
    if run.timed_out:
        return (
            f"clang did not finish compiling {what} in {bounds.timeout_s:g} s, so it was "
            "killed with every process it started: it may be caught in a BPF backend bug "
            "(builtins BPF has no instruction for, such as __builtin_clz, are known "
            f"triggers); change that code, or raise the bound with NN_CLANG_TIMEOUT=<seconds>"
            f"{printed}"
        )
    if run.ran_out_of_memory:
        if bounds.memory_mb < ORDINARY_COMPILE_MB:
            why = (
                f"that is less than an ordinary compile may need ({ORDINARY_COMPILE_MB} MiB, "
                "clang's own libraries included)"
            )
        else:
            why = (
                "a BPF program needs a few hundred MiB, so this is likely a BPF backend bug "
                "(Debian's clang 14 grows without limit on __builtin_clz at -O0): change that "
                "code, or raise the bound if the program really is that large"
            )
        return f"clang ran out of memory compiling {what}: {memory}; {why}{printed}"
    if run.returncode < 0:
        name = _signal_name(-run.returncode)
        oom = (
            " (a SIGKILL nobody sent is the kernel's OOM killer: the machine ran out of "
            "memory first)"
            if -run.returncode == signal.SIGKILL
            else ""
        )
        return f"clang was killed by {name} while compiling {what}{oom}; {memory}{printed}"
    if not diagnostics:
        return (
            f"clang exited with status {run.returncode} and printed nothing while compiling "
            f"{what}; {memory}. Run it by hand to see more: {shlex.join(run.argv)}"
        )
    return f"clang could not compile {what}:\n{diagnostics}"
