"""CPU throttling of cgroups by their own quota, read from cgroup files.

cgroup v2 reports it in ``cpu.stat`` (``throttled_usec``) where the cpu
controller is enabled; hybrid hosts (v2 mounted beside v1 controllers) keep it
in the v1 ``cpu`` controller's ``cpu.stat`` (``throttled_time``, ns) of the
cgroup with the same path.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ..names.cgroupfs import cgroup_v1_mount

__all__ = ["ThrottleBaseline", "ThrottleReader", "throttled_ns"]


def _read_stat(path: str) -> dict[str, int] | None:
    try:
        with open(path) as f:
            return {k: int(v) for k, v in (line.split() for line in f if line.strip())}
    except (OSError, ValueError):
        return None


def throttled_ns(cgroup_path: str, v2_mount: str, v1_cpu_mount: str | None) -> int | None:
    """Total time the cgroup has been throttled, in ns, or None if unknown."""
    relative = cgroup_path.strip("/")
    stat = _read_stat(os.path.join(v2_mount, relative, "cpu.stat"))
    if stat and "throttled_usec" in stat:
        return stat["throttled_usec"] * 1000
    if v1_cpu_mount:
        stat = _read_stat(os.path.join(v1_cpu_mount, relative, "cpu.stat"))
        if stat and "throttled_time" in stat:
            return stat["throttled_time"]
    return None


class ThrottleBaseline:
    """Throttled time of every cgroup when a collection starts, so a report
    can give each cgroup's throttling over the collection window."""

    def __init__(self, paths: dict[int, str], v2_mount: str) -> None:
        self.v2_mount = v2_mount
        self.v1_cpu_mount = cgroup_v1_mount("cpu")
        self._start = {
            cid: throttled_ns(p, v2_mount, self.v1_cpu_mount) for cid, p in paths.items()
        }

    def since_start(self, cgroup_id: int, path: str | None) -> int | None:
        """Throttled ns since the baseline (all of it for cgroups made since)."""
        if path is None:
            return None
        now = throttled_ns(path, self.v2_mount, self.v1_cpu_mount)
        if now is None:
            return None
        return now - (self._start.get(cgroup_id) or 0)


class ThrottleReader:
    """Throttled time by cgroup path, for a reader that asks often (the
    agent, at each scrape). Most cgroups have no CPU controller, so nothing
    to read, and reading that costs two failed opens each time: a cgroup that
    had none is asked again only ``recheck`` seconds later."""

    def __init__(
        self, v2_mount: str, recheck: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.v2_mount = v2_mount
        self.v1_cpu_mount = cgroup_v1_mount("cpu")
        self.recheck = recheck
        self.clock = clock
        self._none_since: dict[str, float] = {}

    def __call__(self, cgroup_path: str) -> int | None:
        now = self.clock()
        since = self._none_since.get(cgroup_path)
        if since is not None and now - since < self.recheck:
            return None
        value = throttled_ns(cgroup_path, self.v2_mount, self.v1_cpu_mount)
        if value is None:
            self._none_since[cgroup_path] = now
            if len(self._none_since) > 4096:  # churned paths: forget the stale ones
                self._none_since = {
                    p: t for p, t in self._none_since.items() if now - t < self.recheck
                }
        else:
            self._none_since.pop(cgroup_path, None)
        return value
