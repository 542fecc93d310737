"""Real cgroups and workloads for experiments and tests.

:class:`TestCgroup` creates a cgroup under the cgroup2 mount, starts processes
inside it (optionally pinned to CPUs), freezes it so its tasks' counters can be
read at a quiet moment, and removes it, killing its processes first.
:func:`read_schedstat` reads the kernel's own per-task run-queue accounting,
the ground truth for accuracy checks.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.process import BaseProcess
from types import TracebackType

from ..errors import NoisyNeighborError
from ..names.cgroupfs import cgroup_v1_mount, find_cgroup2_mount
from .ground_truth import read_schedstat

__all__ = [
    "CPU_HOG",
    "TestCgroup",
    "interruptible",
    "periodic_sleeper",
    "ping_pong",
    "remove_leftover_cgroups",
    "request_loop",
]

#: A single-threaded busy loop.
CPU_HOG: list[str] = ["/bin/sh", "-c", "while :; do :; done"]


def interruptible() -> None:
    """A ``preexec_fn`` for a child that must get Ctrl-C (SIGINT) even when
    this process was started from a background shell, which ignores SIGINT
    for its children, and they inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def periodic_sleeper(period_s: float) -> list[str]:
    """A process that sleeps ``period_s`` seconds in a loop: one wakeup per period."""
    return [sys.executable, "-c", f"import time\nwhile True: time.sleep({period_s!r})"]


def request_loop(work_s: float = 0.001, wait_s: float = 0.001) -> list[str]:
    """A latency-sensitive worker: ``work_s`` of work, then ``wait_s`` of
    waiting for the next request, in a loop."""
    code = (
        "import time\n"
        "while True:\n"
        f"    end = time.perf_counter() + {work_s!r}\n"
        "    while time.perf_counter() < end: pass\n"
        f"    time.sleep({wait_s!r})\n"
    )
    return [sys.executable, "-c", code]


def ping_pong() -> list[str]:
    """Two processes bouncing a byte over pipes: a context switch per hop, the
    heaviest switch load a few lines of Python make."""
    code = (
        "import os\n"
        "a_r, a_w = os.pipe(); b_r, b_w = os.pipe()\n"
        "if os.fork() == 0:\n"
        "    while True: os.read(a_r, 1); os.write(b_w, b'x')\n"
        "while True: os.write(a_w, b'x'); os.read(b_r, 1)\n"
    )
    return [sys.executable, "-c", code]


class TestCgroup:
    """A fresh cgroup v2 directory for an experiment; removed by :meth:`remove`
    or on leaving a ``with`` block, processes killed first.

    CPU settings go to the cgroup v2 ``cpu``/``cpuset`` controllers where they
    are enabled, and otherwise (hybrid hosts) to v1 ``cpu``/``cpuset`` cgroups
    of the same name, which the cgroup's processes also join:

    - ``cpu_weight`` (1-10000, default 100): v2 ``cpu.weight``, v1
      ``cpu.shares = weight * 1024 / 100``;
    - ``cpu_quota_us`` per ``cpu_period_us``: v2 ``cpu.max``, v1
      ``cpu.cfs_quota_us``/``cpu.cfs_period_us``;
    - ``cpus``: the CPUs the cgroup may use (``cpuset.cpus``).
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        name: str | None = None,
        *,
        mount: str | None = None,
        cpu_weight: int | None = None,
        cpu_quota_us: int | None = None,
        cpu_period_us: int = 100_000,
        cpus: Iterable[int] | None = None,
    ) -> None:
        self.mount = mount or find_cgroup2_mount()
        name = name or f"nn-test-{os.getpid()}-{time.monotonic_ns()}"
        self.path = "/" + name.strip("/")
        self.abspath = os.path.join(self.mount, name.strip("/"))
        try:
            os.mkdir(self.abspath)
        except PermissionError:
            raise NoisyNeighborError(
                f"cannot create cgroup {self.abspath}: run as root (or delegate a subtree)"
            ) from None
        self.id = os.stat(self.abspath).st_ino
        self._children: list[subprocess.Popen[bytes]] = []
        self._spawned: list[BaseProcess] = []
        #: v1 controller directories the cgroup's processes also join.
        self.v1_paths: dict[str, str] = {}
        #: v1 parent directories created for them (deepest first).
        self.v1_parents: list[str] = []
        try:
            self._apply_cpu_settings(cpu_weight, cpu_quota_us, cpu_period_us, cpus)
        except BaseException:
            self.remove()
            raise

    def _controllers(self) -> set[str]:
        with open(os.path.join(self.abspath, "cgroup.controllers")) as f:
            return set(f.read().split())

    def _v1_dir(self, controller: str) -> str:
        """The v1 cgroup of the same name under ``controller``, created."""
        if controller in self.v1_paths:
            return self.v1_paths[controller]
        mount = cgroup_v1_mount(controller)
        if mount is None:
            raise NoisyNeighborError(
                f"no {controller} controller: enable it for cgroup v2 with "
                f"`echo +{controller} > {os.path.dirname(self.abspath)}/cgroup.subtree_control`"
            )
        path = os.path.join(mount, self.path.strip("/"))
        # A nested cgroup (`demo/capped`) needs its v1 parents too; they are
        # removed with it, deepest first.
        missing = []
        directory = path
        while not os.path.isdir(directory):
            missing.append(directory)
            directory = os.path.dirname(directory)
        for directory in reversed(missing):
            os.mkdir(directory)
        self.v1_parents.extend(missing[1:])
        self.v1_paths[controller] = path
        return path

    @staticmethod
    def _write(directory: str, file: str, value: str) -> None:
        with open(os.path.join(directory, file), "w") as f:
            f.write(value)

    def _apply_cpu_settings(
        self,
        cpu_weight: int | None,
        cpu_quota_us: int | None,
        cpu_period_us: int,
        cpus: Iterable[int] | None,
    ) -> None:
        v2 = self._controllers()
        if cpu_weight is not None:
            if not 1 <= cpu_weight <= 10_000:
                raise ValueError(f"cpu_weight must be 1-10000, got {cpu_weight}")
            if "cpu" in v2:
                self._write(self.abspath, "cpu.weight", str(cpu_weight))
            else:
                self._write(self._v1_dir("cpu"), "cpu.shares", str(cpu_weight * 1024 // 100))
        if cpu_quota_us is not None:
            if cpu_quota_us < 1000 or cpu_period_us < 1000:
                raise ValueError("cpu_quota_us and cpu_period_us must be at least 1000")
            if "cpu" in v2:
                self._write(self.abspath, "cpu.max", f"{cpu_quota_us} {cpu_period_us}")
            else:
                v1 = self._v1_dir("cpu")
                self._write(v1, "cpu.cfs_period_us", str(cpu_period_us))
                self._write(v1, "cpu.cfs_quota_us", str(cpu_quota_us))
        if cpus is not None:
            cpu_list = ",".join(str(c) for c in sorted(set(cpus)))
            if "cpuset" in v2:
                self._write(self.abspath, "cpuset.cpus", cpu_list)
            else:
                v1 = self._v1_dir("cpuset")
                # A v1 cpuset takes no task before it has memory nodes.
                with open(os.path.join(os.path.dirname(v1), "cpuset.mems")) as f:
                    self._write(v1, "cpuset.mems", f.read().strip())
                self._write(v1, "cpuset.cpus", cpu_list)

    def cpu_stat(self) -> dict[str, int]:
        """CPU throttling so far, in v2 terms: ``nr_periods``, ``nr_throttled``
        and ``throttled_usec`` (from v2 ``cpu.stat``, or the v1 ``cpu``
        cgroup's ``throttled_time`` in ns on hybrid hosts)."""
        directory = self.v1_paths.get("cpu", self.abspath)
        with open(os.path.join(directory, "cpu.stat")) as f:
            stat = {k: int(v) for k, v in (line.split() for line in f if line.strip())}
        if "throttled_time" in stat:
            stat["throttled_usec"] = stat["throttled_time"] // 1000
        return stat

    # -- processes ---------------------------------------------------------

    def run(
        self, argv: Sequence[str], *, cpus: Iterable[int] | None = None
    ) -> subprocess.Popen[bytes]:
        """Starts ``argv`` inside this cgroup (it is moved in before exec, so
        it never runs elsewhere), optionally pinned to ``cpus``."""
        procs = self._procs_files()
        cpu_set = None if cpus is None else set(cpus)

        def enter() -> None:
            _join_cgroups(procs)
            if cpu_set is not None:
                os.sched_setaffinity(0, cpu_set)

        child = subprocess.Popen(
            list(argv),
            preexec_fn=enter,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._children.append(child)
        return child

    def spawn(self, fn: Callable[..., object], *args: object) -> BaseProcess:
        """Runs ``fn(*args)`` in a new (forked) process inside this cgroup; it
        joins the cgroup before ``fn`` starts."""
        procs = self._procs_files()
        process = multiprocessing.get_context("fork").Process(
            target=_run_in_cgroups, args=(procs, fn, args), daemon=True
        )
        process.start()
        self._spawned.append(process)
        return process

    def _procs_files(self) -> list[str]:
        """``cgroup.procs`` of this cgroup and of its v1 companions."""
        return [os.path.join(d, "cgroup.procs") for d in (self.abspath, *self.v1_paths.values())]

    def _read_ids(self, file: str) -> list[int]:
        with open(os.path.join(self.abspath, file)) as f:
            return [int(line) for line in f.read().split()]

    def pids(self) -> list[int]:
        """Processes in this cgroup."""
        return self._read_ids("cgroup.procs")

    def threads(self) -> list[int]:
        """Thread ids in this cgroup."""
        return self._read_ids("cgroup.threads")

    def run_delay_ns(self) -> int:
        """Sum of the kernel's run_delay over this cgroup's threads."""
        return sum(read_schedstat(tid).run_delay_ns for tid in self.threads())

    # -- freezing ----------------------------------------------------------

    def _events(self) -> dict[str, str]:
        with open(os.path.join(self.abspath, "cgroup.events")) as f:
            return dict(line.split() for line in f if line.strip())

    def _set_frozen(self, frozen: bool, timeout: float) -> None:
        with open(os.path.join(self.abspath, "cgroup.freeze"), "w") as f:
            f.write("1" if frozen else "0")
        deadline = time.monotonic() + timeout
        while self._events().get("frozen") != ("1" if frozen else "0"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"cgroup {self.path} did not {'freeze' if frozen else 'thaw'}")
            time.sleep(0.005)

    def freeze(self, timeout: float = 10.0) -> None:
        """Stops every task of the cgroup and waits until all are frozen: then
        none is running or waiting, so per-task counters are stable."""
        self._set_frozen(True, timeout)

    def thaw(self, timeout: float = 10.0) -> None:
        self._set_frozen(False, timeout)

    # -- teardown ----------------------------------------------------------

    def kill(self, timeout: float = 10.0) -> None:
        """Kills every process in the cgroup and reaps the ones we started."""
        kill_file = os.path.join(self.abspath, "cgroup.kill")
        if os.path.exists(kill_file):  # Linux >= 5.14
            with open(kill_file, "w") as f:
                f.write("1")
        else:
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for child in self._children:
            try:
                child.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self._children.clear()
        for process in self._spawned:
            process.join(timeout)
        self._spawned.clear()
        deadline = time.monotonic() + timeout
        while self.pids():
            if time.monotonic() > deadline:
                raise TimeoutError(f"processes of {self.path} did not exit")
            time.sleep(0.01)

    def remove(self) -> None:
        """Kills the processes and removes the cgroup (and its v1 companions);
        safe to call twice."""
        if os.path.isdir(self.abspath):
            self.kill()
        for directory in [*self.v1_paths.values(), self.abspath]:
            _rmdir_when_empty(directory)
        for directory in self.v1_parents:
            # Still holding a sibling's v1 cgroup: that sibling's to remove.
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        self.v1_paths.clear()
        self.v1_parents.clear()

    def __enter__(self) -> TestCgroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<TestCgroup {self.path} id={self.id}>"


def _join_cgroups(procs: list[str]) -> None:
    """Moves the calling process into each cgroup of ``procs``."""
    for path in procs:
        with open(path, "w") as f:
            f.write(str(os.getpid()))


def _run_in_cgroups(procs: list[str], fn: Callable[..., object], args: tuple) -> None:
    _join_cgroups(procs)
    fn(*args)


def _rmdir_when_empty(directory: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(directory)
            return
        except FileNotFoundError:
            return
        except OSError:  # EBUSY while the last exits are accounted
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def remove_leftover_cgroups(prefix: str) -> list[str]:
    """Kills the processes of, and removes, the cgroups named ``prefix...`` at
    the top of the cgroup2 mount (and their v1 ``cpu``/``cpuset`` companions):
    what an experiment leaves when it dies before its cleanup runs (a notebook
    kernel shut down after a failed cell, say). Returns the v2 paths removed."""
    mount = find_cgroup2_mount()
    removed = []
    for name in sorted(os.listdir(mount)):
        directory = os.path.join(mount, name)
        if not name.startswith(prefix) or not os.path.isdir(directory):
            continue
        kill_file = os.path.join(directory, "cgroup.kill")
        if os.path.exists(kill_file):
            with open(kill_file, "w") as f:
                f.write("1")
        _rmdir_when_empty(directory)
        removed.append("/" + name)
    for controller in ("cpu", "cpuset"):
        v1 = cgroup_v1_mount(controller)
        for name in os.listdir(v1) if v1 else []:
            if name.startswith(prefix) and v1 and os.path.isdir(os.path.join(v1, name)):
                _rmdir_when_empty(os.path.join(v1, name))
    return removed
