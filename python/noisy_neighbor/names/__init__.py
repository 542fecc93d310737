"""Who a cgroup is: where cgroup v2 (and v1 controllers) are mounted, the
mapping between cgroup ids and paths (:class:`CgroupTree`), and what a person
knows a cgroup as (systemd service, container, Kubernetes pod:
:class:`CgroupInfo` from :func:`resolve_cgroup`). Imports only the base
modules.
"""

from __future__ import annotations

from .cgroupfs import (
    CgroupTree,
    cgroup2_mounts,
    cgroup_v1_mount,
    find_cgroup2_mount,
    parse_mountinfo,
)
from .resolver import (
    CgroupInfo,
    CgroupResolver,
    PodNameSource,
    VarLogPods,
    classify_cgroup_path,
    resolve_cgroup,
)
from .runtimes import (
    ContainerdBundles,
    ContainerNames,
    ContainerNameSource,
    ContainersStorage,
    CrioState,
    DockerEngineApi,
    DockerStateDir,
    RuntimeNames,
)

__all__ = [
    "CgroupInfo",
    "CgroupResolver",
    "CgroupTree",
    "ContainerNameSource",
    "ContainerNames",
    "ContainerdBundles",
    "ContainersStorage",
    "CrioState",
    "DockerEngineApi",
    "DockerStateDir",
    "PodNameSource",
    "RuntimeNames",
    "VarLogPods",
    "cgroup2_mounts",
    "cgroup_v1_mount",
    "classify_cgroup_path",
    "find_cgroup2_mount",
    "parse_mountinfo",
    "resolve_cgroup",
]
