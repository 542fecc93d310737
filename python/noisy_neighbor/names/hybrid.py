"""Hybrid hosts (cgroup v1 controllers beside a v2 mount): a runtime that
puts a container's tasks in v1 cgroups only leaves them in the v2 root
cgroup, where the probe (keyed by v2 cgroup) books their waits to ``/``.
This finds such tasks, so a report can say so rather than blame the root.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable

__all__ = ["v1_only_cgroups", "v1_only_note", "v1_paths"]


def v1_paths(proc_cgroup: str) -> set[str]:
    """The non-root v1 cgroup paths in a ``/proc/<pid>/cgroup`` text (the
    ``N:controllers:path`` lines; the v2 line is ``0::path``)."""
    paths = set()
    for line in proc_cgroup.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        # name=systemd is systemd's own bookkeeping, not a container's.
        if number != "0" and path not in ("", "/") and not controllers.startswith("name="):
            paths.add(path)
    return paths


def v1_only_cgroups(v2_mount: str, pids: Iterable[int] | None = None) -> Counter[str]:
    """Tasks in the v2 root cgroup that sit in a non-root v1 cgroup, counted
    by that v1 path. Empty on pure-v2 hosts (no task has v1 lines)."""
    if pids is None:
        try:
            with open(os.path.join(v2_mount, "cgroup.procs")) as f:
                pids = [int(line) for line in f if line.strip()]
        except (OSError, ValueError):
            return Counter()
    found: Counter[str] = Counter()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                paths = v1_paths(f.read())
        except OSError:
            continue  # exited meanwhile
        # One task in several controllers' cgroups of the same path counts once.
        for path in paths:
            found[path] += 1
    return found


def v1_only_note(found: Counter[str], most: int = 3) -> str:
    """What to tell a user whose root cgroup's waits include such tasks."""
    shown = ", ".join(
        f"{path if len(path) <= 40 else path[:37] + '...'} ({n} task{'s' if n > 1 else ''})"
        for path, n in found.most_common(most)
    )
    more = f" and {len(found) - most} more" if len(found) > most else ""
    return (
        f"The root cgroup's waits include tasks that are in cgroups of cgroup v1 only: "
        f"{shown}{more}. The probe keys waits by cgroup v2, where those tasks sit in the "
        "root, so it cannot tell them apart: have their runtime also place them in the "
        "unified hierarchy (Docker's and Podman's cgroupfs drivers do), or boot with cgroup v2 "
        "(systemd.unified_cgroup_hierarchy=1)."
    )
