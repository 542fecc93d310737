"""Container names from the runtimes' own state files: Docker's
config.v2.json, containerd's OCI bundles (CRI annotations), CRI-O's
container config; real cgroups named as the runtimes name them resolve to
what the user typed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from noisy_neighbor.names.cgroupfs import CgroupTree
from noisy_neighbor.names.resolver import CgroupResolver, VarLogPods
from noisy_neighbor.names.runtimes import (
    ContainerdBundles,
    ContainerNames,
    ContainersStorage,
    CrioState,
    DockerStateDir,
    RuntimeNames,
)

DOCKER_ID = "7338092c19f7" + "a" * 52
CRI_ID = "d2a346b009a7" + "b" * 52
CRIO_ID = "e943ccb29246" + "c" * 52
POD_UID = "3f2a1b9c-8d7e-4f60-9a1b-2c3d4e5f6a7b"


def _write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)


@pytest.fixture
def states(tmp_path: Path) -> dict[str, Path]:
    """State directories as the runtimes leave them, one container each."""
    docker, containerd, crio = tmp_path / "docker", tmp_path / "containerd", tmp_path / "crio"
    _write(
        docker / "containers" / DOCKER_ID / "config.v2.json",
        {
            "Name": "/web-victim",
            "Config": {
                "Image": "busybox:latest",
                "Labels": {
                    "com.docker.compose.project": "shop",
                    "com.docker.compose.service": "web",
                },
            },
        },
    )
    _write(
        containerd / "k8s.io" / CRI_ID / "config.json",
        {
            "annotations": {
                "io.kubernetes.cri.container-name": "app",
                "io.kubernetes.cri.sandbox-name": "checkout-7c9d",
                "io.kubernetes.cri.sandbox-namespace": "shop",
                "io.kubernetes.cri.image-name": "registry.local/checkout:1.2",
            }
        },
    )
    _write(
        crio / "overlay-containers" / CRIO_ID / "userdata" / "config.json",
        {
            "annotations": {
                "io.kubernetes.container.name": "db",
                "io.kubernetes.pod.name": "db-0",
                "io.kubernetes.pod.namespace": "data",
            }
        },
    )
    return {"docker": docker, "containerd": containerd, "crio": crio}


def _names(states: dict[str, Path]) -> RuntimeNames:
    return RuntimeNames(
        {
            "docker": DockerStateDir(str(states["docker"])),
            "containerd": ContainerdBundles(str(states["containerd"])),
            "crio": CrioState(str(states["crio"])),
        }
    )


def test_each_runtime_state_gives_the_names_the_user_knows(states) -> None:
    assert DockerStateDir(str(states["docker"])).lookup(DOCKER_ID) == ContainerNames(
        name="web-victim", image="busybox:latest", compose_project="shop", compose_service="web"
    )
    assert ContainerdBundles(str(states["containerd"])).lookup(CRI_ID) == ContainerNames(
        name="app",
        image="registry.local/checkout:1.2",
        pod_name="checkout-7c9d",
        pod_namespace="shop",
    )
    assert CrioState(str(states["crio"])).lookup(CRIO_ID) == ContainerNames(
        name="db", pod_name="db-0", pod_namespace="data"
    )


def test_missing_or_damaged_state_gives_no_name_and_never_raises(states, tmp_path) -> None:
    _write(states["docker"] / "containers" / CRI_ID / "config.v2.json", "{not json")
    _write(states["docker"] / "containers" / CRIO_ID / "config.v2.json", "[1, 2]")
    docker = DockerStateDir(str(states["docker"]))
    assert docker.lookup(CRI_ID) is None
    assert docker.lookup(CRIO_ID) is None
    assert DockerStateDir(str(tmp_path / "nowhere")).lookup(DOCKER_ID) is None
    names = _names(states)
    assert names.lookup(None, "../../../etc") is None  # ids only, never a path
    assert names.lookup("docker", "f" * 64) is None


def test_a_miss_is_asked_again_only_after_a_while(states) -> None:
    names = _names(states)
    names.retry_after = 3600.0
    later_id = "f" * 64
    assert names.lookup("docker", later_id) is None
    _write(states["docker"] / "containers" / later_id / "config.v2.json", {"Name": "/late"})
    assert names.lookup("docker", later_id) is None  # within the retry interval
    names.retry_after = 0.0
    assert names.lookup("docker", later_id).name == "late"
    # The runtime the path names is asked first, but any may answer: a
    # cgroupfs-driver path (/kubepods/.../<id>) names none.
    assert names.lookup(None, CRI_ID).name == "app"


@pytest.mark.needs_bpf  # real cgroupfs: needs root
def test_real_container_cgroups_resolve_to_container_names(
    states, tmp_path, cgroup_factory
) -> None:
    top = cgroup_factory()
    paths = {
        "docker": f"{top.path}/docker-{DOCKER_ID}.scope",
        "cri": f"{top.path}/kubepods.slice/kubepods-burstable.slice/"
        f"kubepods-burstable-pod{POD_UID.replace('-', '_')}.slice/cri-containerd-{CRI_ID}.scope",
    }
    for path in paths.values():
        os.makedirs(top.abspath + path[len(top.path) :])
    resolver = CgroupResolver(
        CgroupTree(rescan_interval=0), VarLogPods(str(tmp_path / "no-logs")), _names(states)
    )
    web = resolver.resolve(paths["docker"])
    assert (web.container_name, web.image, web.display_name) == (
        "web-victim",
        "busybox:latest",
        "web-victim",
    )
    app = resolver.resolve(paths["cri"])
    # Pod and namespace from the CRI annotations: no API server, no /var/log/pods.
    assert (app.pod_namespace, app.pod_name, app.container_name) == ("shop", "checkout-7c9d", "app")
    assert app.display_name == "shop/checkout-7c9d/app"
    assert resolver.resolve(app.id) == app
    # The container cgroups hold no tasks: remove them deepest first, so the
    # fixture can remove the top.
    for directory, _subdirs, _files in os.walk(top.abspath, topdown=False):
        if directory != top.abspath:
            os.rmdir(directory)


def test_podman_containers_are_named_from_containers_storage(tmp_path) -> None:
    podman_id = "1a2b3c4d5e6f" + "d" * 52
    _write(
        tmp_path / "overlay-containers" / "containers.json",
        [{"id": "0" * 64, "names": ["other"]}, {"id": podman_id, "names": ["api"], "image": "i1"}],
    )
    _write(
        tmp_path / "overlay-images" / "images.json", [{"id": "i1", "names": ["localhost/api:2"]}]
    )
    storage = ContainersStorage(str(tmp_path))
    assert storage.lookup(podman_id) == ContainerNames(name="api", image="localhost/api:2")
    assert storage.lookup("e" * 64) is None
    assert ContainersStorage(str(tmp_path / "none")).lookup(podman_id) is None
    names = RuntimeNames({"containers-storage": storage})
    assert names.lookup("podman", podman_id).name == "api"
