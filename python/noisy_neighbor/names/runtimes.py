"""Container names from the runtimes' own state, offline: what the user typed
(`docker run --name web`), the image, and for Kubernetes the container, pod
and namespace names, with no API server and no socket.

- Docker: ``<data root>/containers/<id>/config.v2.json`` (``Name``,
  ``Config.Image``, Compose's project and service labels); data root
  ``$NN_DOCKER_ROOT``, else ``/var/lib/docker``; or, where only the socket is
  reachable, the Engine API's ``/containers/<id>/json`` on ``$DOCKER_HOST``
  or ``/var/run/docker.sock``.
- Podman (and CRI-O's storage): containers/storage's ``containers.json`` and
  ``images.json``.
- containerd, Kubernetes through CRI included: the OCI bundle of each task,
  ``<state>/<namespace>/<id>/config.json``, whose annotations the CRI plugin
  writes (``io.kubernetes.cri.container-name``, ``sandbox-name``,
  ``sandbox-namespace``, ``image-name``); state ``$NN_CONTAINERD_STATE``, else
  ``/run/containerd/io.containerd.runtime.v2.task``.
- CRI-O: ``<storage>/overlay-containers/<id>/userdata/config.json``
  annotations (``io.kubernetes.container.name``, ``io.kubernetes.pod.name``,
  ``io.kubernetes.pod.namespace``); storage ``$NN_CRIO_STORAGE``, else
  ``/run/containers/storage``.

Files that are missing, unreadable or not what they should be give no name
(the id-based name stays); they never raise.
"""

from __future__ import annotations

import glob
import json
import os
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "ContainerNameSource",
    "ContainerNames",
    "ContainerdBundles",
    "ContainersStorage",
    "CrioState",
    "DockerEngineApi",
    "DockerStateDir",
    "RuntimeNames",
]


@dataclass(frozen=True)
class ContainerNames:
    """What a runtime knows of one container; None where it does not say."""

    name: str | None = None
    image: str | None = None
    pod_name: str | None = None
    pod_namespace: str | None = None
    compose_project: str | None = None
    compose_service: str | None = None


class ContainerNameSource(Protocol):
    """Finds a container's names from its full id."""

    def lookup(self, container_id: str) -> ContainerNames | None: ...


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _docker_names(state: dict[str, Any]) -> ContainerNames:
    """Names from Docker's view of a container (its state file, or the Engine
    API's ``/containers/<id>/json``, which have the same shape)."""
    config = _mapping(state.get("Config"))
    labels = _mapping(config.get("Labels"))
    name = _text(state.get("Name"))
    return ContainerNames(
        name=name.lstrip("/") if name else None,
        image=_text(config.get("Image")),
        compose_project=_text(labels.get("com.docker.compose.project")),
        compose_service=_text(labels.get("com.docker.compose.service")),
    )


class DockerStateDir:
    """Docker's per-container state under its data root."""

    def __init__(self, root: str | None = None) -> None:
        self.root = root or os.environ.get("NN_DOCKER_ROOT", "/var/lib/docker")

    def lookup(self, container_id: str) -> ContainerNames | None:
        state = _read_json(os.path.join(self.root, "containers", container_id, "config.v2.json"))
        return None if state is None else _docker_names(state)


class DockerEngineApi:
    """The Docker Engine API on its local socket (``$DOCKER_HOST`` when it is
    ``unix://...``, else ``/var/run/docker.sock``), for hosts where the data
    root is not readable but the socket is (an agent in a container, say)."""

    #: Seconds one request may take: names are never worth a stalled reader.
    TIMEOUT = 0.5

    def __init__(self, socket_path: str | None = None) -> None:
        host = os.environ.get("DOCKER_HOST", "")
        default = host[len("unix://") :] if host.startswith("unix://") else "/var/run/docker.sock"
        self.socket_path = socket_path or default

    def lookup(self, container_id: str) -> ContainerNames | None:
        if not os.path.exists(self.socket_path):
            return None
        request = (f"GET /containers/{container_id}/json HTTP/1.0\r\nHost: docker\r\n\r\n").encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(self.TIMEOUT)
                conn.connect(self.socket_path)
                conn.sendall(request)
                response = b"".join(iter(lambda: conn.recv(65536), b""))
        except OSError:
            return None
        head, _, body = response.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n", 1)[0]:
            return None
        try:
            state = json.loads(body)
        except ValueError:
            return None
        return _docker_names(state) if isinstance(state, dict) else None


class ContainersStorage:
    """containers/storage, which Podman and CRI-O keep their containers in:
    ``overlay-containers/containers.json`` names each container (Podman's
    ``--name``), ``overlay-images/images.json`` its image. Root
    ``$NN_CONTAINERS_STORAGE``, else ``/var/lib/containers/storage``."""

    def __init__(self, root: str | None = None) -> None:
        self.root = root or os.environ.get("NN_CONTAINERS_STORAGE", "/var/lib/containers/storage")

    def _entries(self, kind: str) -> list[dict[str, Any]]:
        data = None
        try:
            with open(os.path.join(self.root, f"overlay-{kind}s", f"{kind}s.json"), "rb") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return []
        return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []

    def lookup(self, container_id: str) -> ContainerNames | None:
        entry = next((e for e in self._entries("container") if e.get("id") == container_id), None)
        if entry is None:
            return None
        names = entry.get("names")
        image_id = entry.get("image")
        image = next((i for i in self._entries("image") if i.get("id") == image_id), {})
        image_names = image.get("names")
        return ContainerNames(
            name=_text(names[0]) if isinstance(names, list) and names else None,
            image=_text(image_names[0]) if isinstance(image_names, list) and image_names else None,
        )


def _annotations(path: str) -> dict[str, Any] | None:
    spec = _read_json(path)
    if spec is None:
        return None
    annotations = spec.get("annotations")
    return annotations if isinstance(annotations, dict) else {}


class ContainerdBundles:
    """The OCI bundles of containerd's running tasks, in every namespace."""

    def __init__(self, state: str | None = None) -> None:
        self.state = state or os.environ.get(
            "NN_CONTAINERD_STATE", "/run/containerd/io.containerd.runtime.v2.task"
        )

    def lookup(self, container_id: str) -> ContainerNames | None:
        for config in glob.glob(
            os.path.join(glob.escape(self.state), "*", container_id, "config.json")
        ):
            annotations = _annotations(config)
            if annotations is None:
                continue
            return ContainerNames(
                name=_text(annotations.get("io.kubernetes.cri.container-name")),
                image=_text(annotations.get("io.kubernetes.cri.image-name")),
                pod_name=_text(annotations.get("io.kubernetes.cri.sandbox-name")),
                pod_namespace=_text(annotations.get("io.kubernetes.cri.sandbox-namespace")),
            )
        return None


class CrioState:
    """CRI-O's per-container state in its container storage."""

    def __init__(self, storage: str | None = None) -> None:
        self.storage = storage or os.environ.get("NN_CRIO_STORAGE", "/run/containers/storage")

    def lookup(self, container_id: str) -> ContainerNames | None:
        path = os.path.join(
            self.storage, "overlay-containers", container_id, "userdata", "config.json"
        )
        annotations = _annotations(path)
        if annotations is None:
            return None
        return ContainerNames(
            name=_text(annotations.get("io.kubernetes.container.name")),
            image=_text(annotations.get("io.kubernetes.cri-o.ImageName")),
            pod_name=_text(annotations.get("io.kubernetes.pod.name")),
            pod_namespace=_text(annotations.get("io.kubernetes.pod.namespace")),
        )


_CONTAINER_ID = re.compile(r"[0-9a-f]{12,64}")
#: Which sources to ask first, by the runtime the cgroup path names.
_PREFERRED = {
    "docker": "docker",
    "containerd": "containerd",
    "cri-o": "crio",
    "podman": "containers-storage",
}


class RuntimeNames:
    """Asks each runtime's state for a container's names: the one the cgroup
    path names first, then the others (a cgroupfs-driver path names none).
    Found names are kept; a miss is asked again at most every
    ``retry_after`` seconds, so a busy reader never hammers the runtime's
    files and a container whose state appears later still gets its name."""

    def __init__(
        self,
        sources: dict[str, ContainerNameSource] | None = None,
        *,
        retry_after: float = 10.0,
    ) -> None:
        default: dict[str, ContainerNameSource] = {
            "docker": DockerStateDir(),
            "docker-api": DockerEngineApi(),
            "containerd": ContainerdBundles(),
            "crio": CrioState(),
            "containers-storage": ContainersStorage(),
        }
        self.sources = sources if sources is not None else default
        self.retry_after = retry_after
        self._found: dict[str, ContainerNames] = {}
        self._missed: dict[str, float] = {}

    def lookup(self, runtime: str | None, container_id: str) -> ContainerNames | None:
        if not _CONTAINER_ID.fullmatch(container_id):  # ids only: never a path
            return None
        if container_id in self._found:
            return self._found[container_id]
        missed_at = self._missed.get(container_id)
        if missed_at is not None and time.monotonic() - missed_at < self.retry_after:
            return None
        first = _PREFERRED.get(runtime or "")
        order = sorted(self.sources, key=lambda name: name != first)
        for name in order:
            names = self.sources[name].lookup(container_id)
            if names is not None:
                self._found[container_id] = names
                self._missed.pop(container_id, None)
                return names
        self._missed[container_id] = time.monotonic()
        return None

    def forget(self, container_ids: Iterable[str]) -> None:
        """Lets go of containers that are gone, so a long-lived reader's
        memory follows the live containers."""
        for container_id in container_ids:
            self._found.pop(container_id, None)
            self._missed.pop(container_id, None)
