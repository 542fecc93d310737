"""Naming cgroups as people know them: services, containers, pods."""

from __future__ import annotations

import os
import time

import pandas as pd
import pytest

import noisy_neighbor as nn
from noisy_neighbor.names.cgroupfs import CgroupTree
from noisy_neighbor.names.resolver import CgroupResolver, VarLogPods, classify_cgroup_path
from noisy_neighbor.testing import periodic_sleeper

CID = "200cc329c4c0857930a381b3efe07499cb5efd3a5fdb58753e48cc32d00da9bd"
CID2 = "3f2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a"
UID = "1b4c9e2a-6d3f-4a8b-9c7e-5f2d1a0b3c4e"
UID_ = UID.replace("-", "_")

# (path, kind, runtime, container_id, pod_uid, qos, display_name)
CASES = [
    ("/", "root", None, None, None, None, "/"),
    # Podman with its cgroupfs manager (no systemd)
    (f"/libpod_parent/libpod-{CID}", "container", "podman", CID, None, None, f"podman {CID[:12]}"),
    ("/init.scope", "system", None, None, None, None, "init.scope"),
    ("/system.slice", "system", None, None, None, None, "system.slice"),
    ("/system.slice/sshd.service", "service", None, None, None, None, "sshd.service"),
    (
        "/user.slice/user-1000.slice/session-3.scope",
        "user",
        None,
        None,
        None,
        None,
        "session-3.scope",
    ),
    # Docker, systemd and cgroupfs drivers
    (
        f"/system.slice/docker-{CID}.scope",
        "container",
        "docker",
        CID,
        None,
        None,
        f"docker {CID[:12]}",
    ),
    (f"/docker/{CID}", "container", "docker", CID, None, None, f"docker {CID[:12]}"),
    # Podman, rootful and rootless
    (
        f"/machine.slice/libpod-{CID}.scope",
        "container",
        "podman",
        CID,
        None,
        None,
        f"podman {CID[:12]}",
    ),
    (
        f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{CID}.scope",
        "container",
        "podman",
        CID,
        None,
        None,
        f"podman {CID[:12]}",
    ),
    (
        f"/machine.slice/libpod-conmon-{CID}.scope",
        "system",
        None,
        None,
        None,
        None,
        f"libpod-conmon-{CID}.scope",
    ),
    # Kubernetes, systemd driver: containerd and CRI-O, each QoS class
    (
        f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/"
        f"cri-containerd-{CID}.scope",
        "container",
        "containerd",
        CID,
        UID,
        "burstable",
        f"pod {UID[:8]}/{CID[:12]}",
    ),
    (
        f"/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{CID}.scope",
        "container",
        "containerd",
        CID,
        UID,
        "guaranteed",
        f"pod {UID[:8]}/{CID[:12]}",
    ),
    (
        f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice",
        "pod",
        None,
        None,
        UID,
        "besteffort",
        f"pod {UID[:8]}",
    ),
    (
        f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/"
        f"crio-{CID}.scope",
        "container",
        "cri-o",
        CID,
        UID,
        "burstable",
        f"pod {UID[:8]}/{CID[:12]}",
    ),
    (
        f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/"
        f"crio-conmon-{CID}.scope",
        "system",
        None,
        None,
        UID,
        "burstable",
        f"crio-conmon-{CID}.scope",
    ),
    (
        "/kubepods.slice/kubepods-burstable.slice",
        "system",
        None,
        None,
        None,
        "burstable",
        "kubepods-burstable.slice",
    ),
    # Kubernetes, cgroupfs driver
    (
        f"/kubepods/besteffort/pod{UID}/{CID}",
        "container",
        None,
        CID,
        UID,
        "besteffort",
        f"pod {UID[:8]}/{CID[:12]}",
    ),
    (
        f"/kubepods/pod{UID}/{CID}",
        "container",
        None,
        CID,
        UID,
        "guaranteed",
        f"pod {UID[:8]}/{CID[:12]}",
    ),
    (f"/kubepods/burstable/pod{UID}", "pod", None, None, UID, "burstable", f"pod {UID[:8]}"),
    # A kind node: a Docker container running systemd, kubelet and pods
    (
        f"/system.slice/docker-{CID}.scope/kubelet.slice/kubelet.service",
        "service",
        "docker",
        CID,
        None,
        None,
        f"kubelet.service (docker {CID[:12]})",
    ),
    (
        f"/system.slice/docker-{CID}.scope/kubelet.slice/kubelet-kubepods.slice/"
        f"kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{UID_}.slice/"
        f"cri-containerd-{CID2}.scope",
        "container",
        "containerd",
        CID2,
        UID,
        "besteffort",
        f"pod {UID[:8]}/{CID2[:12]}",
    ),
    (
        f"/system.slice/docker-{CID}.scope/kubepods/burstable/pod{UID}/{CID2}",
        "container",
        None,
        CID2,
        UID,
        "burstable",
        f"pod {UID[:8]}/{CID2[:12]}",
    ),
]


@pytest.mark.parametrize(
    ("path", "kind", "runtime", "container_id", "pod_uid", "qos", "display_name"),
    CASES,
    ids=[c[0][:60] for c in CASES],
)
def test_classifies_real_world_paths(
    path: str, kind, runtime, container_id, pod_uid, qos, display_name
) -> None:
    info = classify_cgroup_path(path)
    got = (info.kind, info.runtime, info.container_id, info.pod_uid, info.qos)
    assert got == (kind, runtime, container_id, pod_uid, qos)
    assert info.display_name == display_name
    assert info.path == path


def test_pod_names_come_from_var_log_pods(tmp_path) -> None:
    (tmp_path / f"kube-system_coredns-5d78c9869d-x7k2p_{UID}").mkdir()
    (tmp_path / "not-a-pod-dir").mkdir()
    source = VarLogPods(str(tmp_path))
    assert source.lookup(UID) == ("kube-system", "coredns-5d78c9869d-x7k2p")
    assert source.lookup("00000000-0000-0000-0000-000000000000") is None
    assert VarLogPods(str(tmp_path / "missing")).lookup(UID) is None


@pytest.mark.needs_bpf  # real cgroupfs: needs root
def test_resolves_real_nested_cgroups_and_remembers_removed_ones(tmp_path, cgroup_factory) -> None:
    (tmp_path / f"shop_checkout-7c9d_{UID}").mkdir()
    top = cgroup_factory()
    names = [
        "kubepods.slice",
        "kubepods-burstable.slice",
        f"kubepods-burstable-pod{UID_}.slice",
        f"cri-containerd-{CID}.scope",
    ]
    path = top.path
    for name in names:
        path = f"{path}/{name}"
        os.mkdir(top.abspath + path[len(top.path) :])
    resolver = CgroupResolver(CgroupTree(rescan_interval=0), VarLogPods(str(tmp_path)))
    info = resolver.resolve(path)
    assert info.id == os.stat(top.abspath + path[len(top.path) :]).st_ino
    assert (info.kind, info.runtime, info.container_id) == ("container", "containerd", CID)
    assert (info.pod_namespace, info.pod_name, info.qos) == ("shop", "checkout-7c9d", "burstable")
    assert info.display_name == f"shop/checkout-7c9d/{CID[:12]}"
    assert resolver.resolve(info.id) == info
    # Removed: the id still resolves to its last known path and names.
    for depth in range(len(names), 0, -1):
        os.rmdir(top.abspath + "/" + "/".join(names[:depth]))
    assert resolver.tree.path(info.id) is None
    assert resolver.resolve(info.id) == info


@pytest.mark.needs_bpf
def test_histograms_and_events_carry_resolved_names(tmp_path, cgroup_factory) -> None:
    top = cgroup_factory()
    pod_dir = f"kubepods-besteffort-pod{UID_}.slice"
    os.mkdir(f"{top.abspath}/{pod_dir}")
    container = nn.testing.TestCgroup(f"{top.path}/{pod_dir}/crio-{CID}.scope")
    try:
        container.run(periodic_sleeper(0.005))
        with nn.RunqProbe(stream=True, batch_ms=50) as probe:
            frames = []
            deadline = time.monotonic() + 1.0
            for batch in probe.batches():
                frames.append(batch.to_pandas(resolve=True))
                if time.monotonic() >= deadline and probe.running:
                    probe.stop()
            hist = probe.histograms()[container.id]
        assert hist.info.kind == "container" and hist.info.runtime == "cri-o"
        assert hist.info.container_id == CID and hist.info.pod_uid == UID
        events = pd.concat(frames)
        ours = events[events["cgroup_id"] == container.id]
        assert len(ours) > 0
        assert set(ours["container_id"]) == {CID}
        assert set(ours["pod"]) == {f"pod {UID[:8]}"}
        assert set(ours["cgroup"]) == {container.path}
        assert {"prev_cgroup", "prev_container_id", "prev_pod"} <= set(events.columns)
    finally:
        container.remove()
        os.rmdir(f"{top.abspath}/{pod_dir}")


@pytest.mark.needs_bpf
def test_a_cgroup_removed_during_a_collection_keeps_its_last_known_path(cgroup_factory) -> None:
    doomed, unseen = cgroup_factory(), cgroup_factory()
    doomed.run(periodic_sleeper(0.005))
    with nn.RunqProbe() as probe:
        time.sleep(0.5)
        assert probe.histograms()[doomed.id].info.path == doomed.path
        # One removed after being seen, one created and removed between readings.
        unseen_leaf = f"cri-containerd-{CID}.scope"
        nested = nn.testing.TestCgroup(f"{unseen.path}/{unseen_leaf}")
        nested.run(periodic_sleeper(0.005))
        time.sleep(0.3)
        nested.remove()
        doomed.remove()
        hists = probe.histograms()
    gone = hists[doomed.id]
    assert gone.cgroup_path is None  # it no longer exists...
    assert gone.info.path == doomed.path  # ...but it is still named
    assert "cgroup_path = (removed)" in gone.to_text()
    never_seen = hists[nested.id]
    assert never_seen.info.path is None
    assert never_seen.info.container_id == CID  # classified from the kernel's name
    assert never_seen.info.display_name == f"{unseen_leaf} (gone)"
