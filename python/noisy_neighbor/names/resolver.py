"""From cgroup id to what a person knows: systemd service, container, and
Kubernetes pod.

A cgroup path is classified by its components, outermost first, so nesting is
understood: a kind node (a Docker container running systemd and kubelet) holds
pods, and a pod holds containers. Pod names and namespaces come from
:class:`PodNameSource` plug-ins; the default reads the directories kubelet
keeps under ``/var/log/pods/<namespace>_<name>_<uid>/``, which needs no API
server. Container names and images come from the runtimes' own state
(:mod:`noisy_neighbor.names.runtimes`: Docker, containerd/CRI, CRI-O), which
also names the pod and namespace of a CRI container.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Protocol

from ..checks import check_int
from .cgroupfs import CgroupTree
from .runtimes import RuntimeNames

__all__ = [
    "CgroupInfo",
    "CgroupResolver",
    "PodNameSource",
    "VarLogPods",
    "classify_cgroup_path",
    "resolve_cgroup",
]

_HEX_ID = r"[0-9a-f]{12,64}"
# Container scopes of the systemd cgroup driver, by runtime.
_CONTAINER_SCOPES = [
    (re.compile(rf"^docker-({_HEX_ID})\.scope$"), "docker"),
    (re.compile(rf"^cri-containerd-({_HEX_ID})\.scope$"), "containerd"),
    (re.compile(rf"^crio-({_HEX_ID})\.scope$"), "cri-o"),
    (re.compile(rf"^libpod-({_HEX_ID})\.scope$"), "podman"),
]
# Runtime helpers beside containers (conmon), which are not containers.
_CONMON_SCOPE = re.compile(rf"^(?:crio|libpod)-conmon-({_HEX_ID})\.scope$")
_BARE_CONTAINER = re.compile(rf"^({_HEX_ID})$")
_LIBPOD_CGROUPFS = re.compile(rf"^libpod-({_HEX_ID})$")
_UID = r"[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}"
# systemd driver: kubepods[-<qos>]-pod<uid>.slice, possibly prefixed as kind
# does (kubelet-kubepods-...); cgroupfs driver: pod<uid>.
_POD_SLICE = re.compile(rf"^(?:.*-)?kubepods(?:-(besteffort|burstable))?-pod({_UID})\.slice$")
_POD_DIR = re.compile(rf"^pod({_UID})$")
_QOS_SLICE = re.compile(r"^(?:.*-)?kubepods-(besteffort|burstable)\.slice$")
_KUBEPODS = re.compile(r"^(?:.*-)?kubepods(?:\.slice)?$")


@dataclass(frozen=True)
class CgroupInfo:
    """What a cgroup is. Fields are None where unknown.

    ``kind`` is one of ``root``, ``system``, ``user``, ``service``, ``pod``,
    ``container``. ``container_id``/``runtime`` name the innermost container
    the cgroup is (or is inside of); ``pod_*`` and ``qos`` the pod it belongs
    to. ``display_name`` is short and human: ``kube-system/coredns-5d78c9869d-x
    /3f2a1b9c8d7e`` rather than a 200-character path.
    """

    id: int | None
    path: str | None
    kind: str | None = None
    runtime: str | None = None
    container_id: str | None = None
    pod_uid: str | None = None
    pod_name: str | None = None
    pod_namespace: str | None = None
    qos: str | None = None
    display_name: str | None = None
    #: The container's name and image, as its runtime keeps them.
    container_name: str | None = None
    image: str | None = None

    @property
    def service(self) -> str | None:
        """The systemd unit a ``service`` cgroup is (its leaf), else None."""
        return self.path.rsplit("/", 1)[-1] if self.kind == "service" and self.path else None


def classify_cgroup_path(path: str) -> CgroupInfo:
    """Classifies a cgroup path (relative to the cgroup2 mount) on its own:
    no id, no pod names. Pure; see the module docstring for the forms."""
    parts = [p for p in path.strip("/").split("/") if p]
    if not parts:
        return CgroupInfo(id=None, path="/", kind="root", display_name="/")
    kind: str | None = None
    runtime = container_id = pod_uid = qos = None
    in_kubepods = False
    for i, part in enumerate(parts):
        parent = parts[i - 1] if i else ""
        pod_slice = _POD_SLICE.match(part)
        pod_dir = _POD_DIR.match(part) if in_kubepods else None
        qos_slice = _QOS_SLICE.match(part)
        container = next(
            ((m, rt) for pattern, rt in _CONTAINER_SCOPES if (m := pattern.match(part))), None
        )
        if pod_slice:  # systemd driver
            pod_uid, qos = pod_slice.group(2), pod_slice.group(1) or "guaranteed"
            kind, runtime, container_id = "pod", None, None
        elif pod_dir:  # cgroupfs driver; QoS from the parent directory, if any
            pod_uid, qos = pod_dir.group(1), qos or "guaranteed"
            kind, runtime, container_id = "pod", None, None
        elif qos_slice:
            qos, in_kubepods, kind = qos_slice.group(1), True, "system"
        elif _KUBEPODS.match(part):
            in_kubepods, kind = True, "system"
        elif in_kubepods and part in ("besteffort", "burstable") and _KUBEPODS.match(parent):
            qos = part
        elif container:
            kind, runtime, container_id = "container", container[1], container[0].group(1)
        elif _CONMON_SCOPE.match(part):
            kind = "system"
        elif _BARE_CONTAINER.match(part) and (parent == "docker" or kind == "pod"):
            # cgroupfs drivers: /docker/<id>, and kubepods/.../pod<uid>/<id>
            kind, container_id = "container", part
            runtime = "docker" if parent == "docker" else None
        elif (libpod := _LIBPOD_CGROUPFS.match(part)) and parent == "libpod_parent":
            # Podman's cgroupfs manager: /libpod_parent/libpod-<id>
            kind, runtime, container_id = "container", "podman", libpod.group(1)
        elif part.endswith(".service"):
            kind = "service"
        elif part == "user.slice" or part.startswith("user-"):
            kind = "user"
        elif kind not in ("user", "service", "container", "pod"):
            kind = "system"
    if pod_uid:
        pod_uid = pod_uid.replace("_", "-")  # the systemd driver escapes dashes
    info = CgroupInfo(
        id=None,
        path="/" + "/".join(parts),
        kind=kind,
        runtime=runtime,
        container_id=container_id,
        pod_uid=pod_uid,
        qos=qos,
    )
    return replace(info, display_name=_display_name(info, parts[-1]))


def _display_name(info: CgroupInfo, leaf: str) -> str:
    pod = None
    if info.pod_uid:
        pod = (
            f"{info.pod_namespace}/{info.pod_name}" if info.pod_name else f"pod {info.pod_uid[:8]}"
        )
    short_id = info.container_id[:12] if info.container_id else None
    if info.kind == "container" and pod:
        return f"{pod}/{info.container_name or short_id}"
    if info.kind == "container" and info.container_name:
        return info.container_name
    if info.kind == "container":
        return f"{info.runtime or 'container'} {short_id}"
    if info.kind == "pod" and pod:
        return pod
    if short_id and info.kind == "service":  # e.g. kubelet inside a kind node
        return f"{leaf} ({info.runtime} {short_id})"
    return leaf


class PodNameSource(Protocol):
    """Finds a pod's namespace and name from its uid."""

    def lookup(self, pod_uid: str) -> tuple[str, str] | None: ...


class VarLogPods:
    """Pod names from kubelet's log directories, ``<namespace>_<name>_<uid>``,
    under ``root`` (default: ``$NN_POD_LOG_DIR``, else ``/var/log/pods``)."""

    def __init__(self, root: str | None = None) -> None:
        self.root = root or os.environ.get("NN_POD_LOG_DIR", "/var/log/pods")
        self._pods: dict[str, tuple[str, str]] = {}

    def _scan(self) -> None:
        try:
            entries = os.listdir(self.root)
        except OSError:
            return
        for entry in entries:
            namespace, sep, rest = entry.partition("_")
            name, sep2, uid = rest.rpartition("_")
            if sep and sep2:
                self._pods[uid] = (namespace, name)

    def lookup(self, pod_uid: str) -> tuple[str, str] | None:
        if pod_uid not in self._pods:
            self._scan()
        return self._pods.get(pod_uid)


class CgroupResolver:
    """Resolves cgroup ids and paths to :class:`CgroupInfo`, caching."""

    def __init__(
        self,
        tree: CgroupTree | None = None,
        pod_names: PodNameSource | None = None,
        container_names: RuntimeNames | None = None,
    ) -> None:
        self.tree = tree or CgroupTree()
        self.pod_names = pod_names or VarLogPods()
        self.container_names = container_names or RuntimeNames()
        self._cache: dict[str, CgroupInfo] = {}

    def resolve(
        self, id_or_path: int | str, name_hint: str | None = None, path: str | None = None
    ) -> CgroupInfo:
        """Info of a cgroup by id or by path. A removed cgroup keeps the path it
        had when last seen. An id never seen gives ``path=None``, classified
        from ``name_hint`` (the kernfs name the probe read) when given.
        ``path``: the id's live path, when the caller has just looked it up."""
        if isinstance(id_or_path, str):
            path, full = self.tree.locate(id_or_path)
            cgroup_id: int | None = os.stat(full).st_ino
        else:
            cgroup_id = check_int("a cgroup id", id_or_path, 0, 2**64 - 1)
            path = path or self.tree.last_known_path(cgroup_id)
        if path is None:
            if name_hint:
                leaf = classify_cgroup_path(name_hint)
                return replace(leaf, id=cgroup_id, path=None, display_name=f"{name_hint} (gone)")
            return CgroupInfo(id=cgroup_id, path=None, display_name=f"cgroup {cgroup_id}")
        info = self._cache.get(path)
        if info is None:
            info = self._named(classify_cgroup_path(path), path.rsplit("/", 1)[-1])
            # A container whose runtime has not said its name yet is asked
            # again later (the runtime lookup rate-limits itself).
            if not (info.container_id and info.container_name is None):
                self._cache[path] = info
        return replace(info, id=cgroup_id)

    def forget(self, cgroup_ids: Iterable[int]) -> None:
        """Lets go of removed cgroups: their last known paths, cached names
        and their containers' names."""
        cgroup_ids = list(cgroup_ids)
        for cgroup_id in cgroup_ids:
            path = self.tree.last_known_path(cgroup_id)
            info = self._cache.pop(path, None) if path is not None else None
            if info is not None and info.container_id:
                self.container_names.forget([info.container_id])
        self.tree.forget(cgroup_ids)

    def _named(self, info: CgroupInfo, leaf: str) -> CgroupInfo:
        """``info`` with the names the runtimes and kubelet know."""
        named = info
        if info.container_id and (
            found := self.container_names.lookup(info.runtime, info.container_id)
        ):
            named = replace(
                named,
                container_name=found.name,
                image=found.image,
                pod_name=named.pod_name or found.pod_name,
                pod_namespace=named.pod_namespace or found.pod_namespace,
            )
        if info.pod_uid and not named.pod_name and (names := self.pod_names.lookup(info.pod_uid)):
            named = replace(named, pod_namespace=names[0], pod_name=names[1])
        if named is info:
            return info
        return replace(named, display_name=_display_name(named, leaf))


_default_resolver: CgroupResolver | None = None


def resolve_cgroup(id_or_path: int | str) -> CgroupInfo:
    """Resolves a cgroup id or path with a process-wide cached resolver."""
    global _default_resolver
    if _default_resolver is None:
        _default_resolver = CgroupResolver()
    return _default_resolver.resolve(id_or_path)
