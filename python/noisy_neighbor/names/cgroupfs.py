"""Where cgroup v2 is mounted, and the mapping between cgroup ids and paths.

A cgroup's id (what BPF reads from ``kn->id``) is the inode number of its
directory in the cgroup2 filesystem. Paths are given relative to the cgroup2
mount with a leading slash, as ``/proc/<pid>/cgroup`` shows them (``/`` is the
root cgroup).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import CgroupNotFoundError

__all__ = [
    "CgroupTree",
    "cgroup2_mounts",
    "cgroup_v1_mount",
    "find_cgroup2_mount",
    "parse_mountinfo",
]


@dataclass(frozen=True)
class Mount:
    """One line of ``/proc/self/mountinfo``."""

    root: str
    mount_point: str
    fs_type: str
    super_options: tuple[str, ...] = ()


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    out, i = [], 0
    while i < len(field):
        octal = field[i + 1 : i + 4]
        if field[i] == "\\" and len(octal) == 3 and all(c in "01234567" for c in octal):
            out.append(chr(int(octal, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[Mount]:
    """Parses ``/proc/<pid>/mountinfo`` (see proc(5)); skips malformed lines."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        try:
            separator = fields.index("-")
        except ValueError:
            continue
        if separator < 5 or separator + 1 >= len(fields):
            continue
        mounts.append(
            Mount(
                root=_unescape(fields[3]),
                mount_point=_unescape(fields[4]),
                fs_type=fields[separator + 1],
                super_options=tuple(fields[separator + 3].split(","))
                if separator + 3 < len(fields)
                else (),
            )
        )
    return mounts


def cgroup2_mounts(mountinfo_path: str = "/proc/self/mountinfo") -> list[str]:
    """Mount points of every cgroup2 filesystem, in mount order."""
    with open(mountinfo_path) as f:
        return [m.mount_point for m in parse_mountinfo(f.read()) if m.fs_type == "cgroup2"]


def find_cgroup2_mount(mountinfo_path: str = "/proc/self/mountinfo") -> str:
    """The cgroup2 mount point (``/sys/fs/cgroup`` on pure v2 hosts,
    ``/sys/fs/cgroup/unified`` on hybrid ones), read from mountinfo."""
    mounts = cgroup2_mounts(mountinfo_path)
    if not mounts:
        raise CgroupNotFoundError(
            "no cgroup2 filesystem is mounted: mount one with "
            "`mount -t cgroup2 none /sys/fs/cgroup/unified` (or boot with systemd's unified "
            "hierarchy)"
        )
    # Prefer the shortest path: a container may see extra bind mounts below it.
    return min(mounts, key=len)


def cgroup_v1_mount(controller: str, mountinfo_path: str = "/proc/self/mountinfo") -> str | None:
    """Mount point of a cgroup v1 controller (``cpu``, ``cpuset``...) on hybrid
    hosts, or None where it is not mounted as v1."""
    with open(mountinfo_path) as f:
        for mount in parse_mountinfo(f.read()):
            if mount.fs_type == "cgroup" and controller in mount.super_options:
                return mount.mount_point
    return None


class CgroupTree:
    """Maps cgroup ids to paths under one cgroup2 mount.

    Walks the tree once and caches; a miss triggers a rescan at most every
    ``rescan_interval`` seconds. A cgroup removed since it was seen keeps its
    last known path in :meth:`last_known_path`.
    """

    def __init__(self, mount: str | None = None, *, rescan_interval: float = 1.0) -> None:
        self.mount = mount or find_cgroup2_mount()
        self.rescan_interval = rescan_interval
        self._paths: dict[int, str] = {}
        self._gone: dict[int, str] = {}
        self._max_id = 0
        self._missed: set[int] = set()  # ids not found by a rescan since the last
        self._scanned_at = float("-inf")

    def rescan(self) -> None:
        """Walks the whole tree again."""
        paths: dict[int, str] = {}
        for directory, subdirs, _files in os.walk(self.mount):
            try:
                ino = os.stat(directory).st_ino
            except FileNotFoundError:
                continue  # removed while walking
            rel = os.path.relpath(directory, self.mount)
            paths[ino] = "/" if rel == "." else "/" + rel
            subdirs.sort()
        for cgroup_id, path in self._paths.items():
            if cgroup_id not in paths:
                self._gone[cgroup_id] = path
        self._paths = paths
        self._max_id = max(paths, default=0)
        self._missed.clear()
        self._scanned_at = time.monotonic()

    def path(self, cgroup_id: int) -> str | None:
        """Path of a live cgroup, or None if it does not exist (any more).

        A miss rescans when the last scan is ``rescan_interval`` old, or at once
        when the id is above every id seen so far: kernfs hands out ids in
        increasing order, so such a cgroup was made since the last scan."""
        return self.paths([cgroup_id])[cgroup_id]

    def paths(self, cgroup_ids: Iterable[int]) -> dict[int, str | None]:
        """:meth:`path` of many cgroups, with one rescan at most for all the
        ids not found (one per id would walk the tree once per cgroup that a
        churning host made and removed since the last scan). A rescan comes
        when one was removed since seen, one is newer than every id seen and
        not missed before, or the last scan is ``rescan_interval`` old."""
        found: dict[int, str | None] = {}
        unknown = []
        for cgroup_id in cgroup_ids:
            path = self._paths.get(cgroup_id)
            if path is not None and os.path.isdir(self.abspath(path)):
                found[cgroup_id] = path
            else:
                unknown.append(cgroup_id)
        if unknown:
            stale = time.monotonic() - self._scanned_at >= self.rescan_interval
            newer = any(c > self._max_id and c not in self._missed for c in unknown)
            known = any(c in self._paths for c in unknown)  # removed since seen
            if stale or newer or known:
                self.rescan()
            for cgroup_id in unknown:
                found[cgroup_id] = self._paths.get(cgroup_id)
                if found[cgroup_id] is None:
                    self._missed.add(cgroup_id)
        return found

    def known_paths(self) -> dict[int, str]:
        """Every live cgroup as of the last scan, by id."""
        return dict(self._paths)

    def last_known_path(self, cgroup_id: int) -> str | None:
        """Path of the cgroup now or, if it has been removed, when last seen."""
        return self.path(cgroup_id) or self._gone.get(cgroup_id)

    def forget(self, cgroup_ids: Iterable[int]) -> None:
        """Drops the last known paths of removed cgroups (once reported), so a
        tree watched for months does not keep every cgroup it ever saw."""
        for cgroup_id in cgroup_ids:
            self._gone.pop(cgroup_id, None)

    def abspath(self, path: str) -> str:
        return os.path.join(self.mount, path.lstrip("/"))

    def locate(self, path: str) -> tuple[str, str]:
        """A cgroup path as ``(relative, absolute)``: ``relative`` as
        /proc/<pid>/cgroup shows it, ``absolute`` under the mount. The path
        (relative to the mount, or absolute under it) must stay under the
        mount once normalised and name a cgroup directory; otherwise
        :class:`CgroupNotFoundError` says why. Never follows a path out."""
        if not isinstance(path, str):
            raise TypeError(f"a cgroup path is a str, got {path!r}")
        mount = os.path.realpath(self.mount)
        prefix = self.mount.rstrip("/") + "/"
        relative = path[len(prefix) - 1 :] if (path + "/").startswith(prefix) else path
        full = os.path.normpath(os.path.join(mount, relative.lstrip("/")))
        hint = "give a path relative to the cgroup2 mount, as /proc/<pid>/cgroup shows it"
        shown = repr(path if len(path) <= 120 else path[:100] + "...")
        if "\0" in path:
            raise CgroupNotFoundError(f"no cgroup path holds a NUL byte, as {shown} does")
        if not (full == mount or full.startswith(mount.rstrip("/") + "/")):
            raise CgroupNotFoundError(
                f"{shown} is outside the cgroup2 mount {self.mount}: {hint} (e.g. /system.slice)"
            )
        try:
            is_cgroup = os.path.isfile(os.path.join(full, "cgroup.procs"))
            real = os.path.realpath(full)
        except OSError as err:  # a name too long, say
            raise CgroupNotFoundError(f"no cgroup {shown} ({err.strerror}): {hint}") from None
        if not is_cgroup or not (real == mount or real.startswith(mount.rstrip("/") + "/")):
            raise CgroupNotFoundError(
                f"no cgroup {shown} under {self.mount}: {hint} (e.g. /system.slice)"
            )
        rel = os.path.relpath(full, mount)
        return ("/" if rel == "." else "/" + rel), full

    def id_of(self, path: str) -> int:
        """Cgroup id of a path relative to the mount (or absolute under it)."""
        return os.stat(self.locate(path)[1]).st_ino

    def id_of_any(self, cgroup: Any) -> int:
        """Cgroup id of a path, an id, or an object with an ``id`` (a
        :class:`~noisy_neighbor.testing.TestCgroup`)."""
        if isinstance(cgroup, str):
            return self.id_of(cgroup)
        return int(getattr(cgroup, "id", cgroup))

    def subtree_ids(self, path: str) -> list[int]:
        """Ids of a cgroup and every cgroup below it, as they exist now."""
        top = self.locate(path)[1]
        ids = []
        for directory, _subdirs, _files in os.walk(top):
            try:
                ids.append(os.stat(directory).st_ino)
            except FileNotFoundError:
                continue
        return ids
