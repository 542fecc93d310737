"""Finding the cgroup2 mount and mapping ids to paths."""

from __future__ import annotations

import os
import subprocess
from collections import Counter

import pytest

import noisy_neighbor as nn
from noisy_neighbor.errors import CgroupNotFoundError
from noisy_neighbor.names.cgroupfs import (
    CgroupTree,
    cgroup_v1_mount,
    find_cgroup2_mount,
    parse_mountinfo,
)
from noisy_neighbor.names.hybrid import v1_only_cgroups, v1_only_note, v1_paths

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
PURE_V2 = """\
25 30 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
"""
ESCAPED = "50 1 0:40 / /mnt/my\\040cgroups rw - cgroup2 none rw\nmalformed line\n"


def test_finds_v1_controller_mounts_by_super_option(tmp_path) -> None:
    path = tmp_path / "mountinfo"
    path.write_text(HYBRID)
    assert cgroup_v1_mount("cpu", str(path)) == "/sys/fs/cgroup/cpu"
    assert cgroup_v1_mount("cpuset", str(path)) is None


def test_parses_optional_fields_and_escapes() -> None:
    (mount,) = parse_mountinfo(PURE_V2)
    assert (mount.mount_point, mount.fs_type) == ("/sys/fs/cgroup", "cgroup2")
    (escaped,) = parse_mountinfo(ESCAPED)
    assert escaped.mount_point == "/mnt/my cgroups"


@pytest.mark.parametrize(
    ("mountinfo", "expected"),
    [(HYBRID, "/sys/fs/cgroup/unified"), (PURE_V2, "/sys/fs/cgroup")],
)
def test_finds_the_cgroup2_mount(tmp_path, mountinfo: str, expected: str) -> None:
    path = tmp_path / "mountinfo"
    path.write_text(mountinfo)
    assert find_cgroup2_mount(str(path)) == expected


def test_no_cgroup2_mount_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "mountinfo"
    path.write_text(HYBRID.replace("cgroup2 cgroup2", "cgroup cgroup"))
    with pytest.raises(CgroupNotFoundError, match="mount -t cgroup2"):
        find_cgroup2_mount(str(path))


@pytest.mark.needs_bpf  # creates real cgroups: needs root
def test_ids_are_inodes_and_removed_cgroups_keep_their_last_path(cgroup_factory) -> None:
    cgroup = cgroup_factory()
    tree = CgroupTree(rescan_interval=0)
    assert tree.path(1) == "/"
    assert tree.id_of(cgroup.path) == cgroup.id == os.stat(cgroup.abspath).st_ino
    assert tree.path(cgroup.id) == cgroup.path
    assert cgroup.id in tree.subtree_ids("/")
    cgroup.remove()
    assert tree.path(cgroup.id) is None
    assert tree.last_known_path(cgroup.id) == cgroup.path
    with pytest.raises(CgroupNotFoundError, match="relative to the cgroup2"):
        tree.id_of(cgroup.path)


@pytest.mark.needs_bpf  # creates real cgroups: needs root
def test_a_cgroup_made_after_the_last_scan_is_found_at_once(cgroup_factory) -> None:
    tree = CgroupTree(rescan_interval=3600)  # no time-based rescans
    tree.rescan()
    cgroup = cgroup_factory()
    assert tree.path(cgroup.id) == cgroup.path  # a newer id triggers a rescan
    assert tree.path(10**15) is None  # unknown ids rescan once, then not again
    assert 10**15 in tree._missed


@pytest.mark.needs_bpf  # creates real cgroups: needs root
def test_many_lookups_walk_the_tree_once(cgroup_factory, monkeypatch) -> None:
    """A churning host: many cgroups made and removed since the last scan are
    looked up together (a probe reading); one walk serves them all."""
    tree = CgroupTree(rescan_interval=3600)
    tree.rescan()
    made = [cgroup_factory() for _ in range(3)]
    gone = made.pop()
    gone.remove()
    scans = []
    rescan = tree.rescan
    monkeypatch.setattr(tree, "rescan", lambda: scans.append(1) or rescan())
    unknown = [10**15 + i for i in range(50)]  # newer than any: each would rescan
    found = tree.paths([*(c.id for c in made), gone.id, *unknown])
    assert len(scans) == 1
    assert [found[c.id] for c in made] == [c.path for c in made]
    assert found[gone.id] is None and all(found[i] is None for i in unknown)
    assert tree.paths(unknown) == dict.fromkeys(unknown) and len(scans) == 1  # missed: not again


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../../../../etc", "outside the cgroup2 mount"),
        ("../..", "outside the cgroup2 mount"),
        ("/a/../../..", "outside the cgroup2 mount"),
        ("/cgroup.procs", "no cgroup '/cgroup.procs'"),
        ("/no/such/cgroup", "no cgroup"),
        ("x" * 5000, "no cgroup 'xxx"),
        ("a\x00b", "NUL byte"),
    ],
)
def test_cgroup_paths_stay_inside_the_mount(path: str, reason: str) -> None:
    tree = CgroupTree()
    with pytest.raises(nn.CgroupNotFoundError, match=reason):
        tree.locate(path)
    with pytest.raises(nn.CgroupNotFoundError):
        nn.resolve_cgroup(path)


def test_paths_inside_the_mount_normalise_to_what_proc_shows() -> None:
    tree = CgroupTree()
    assert tree.locate("/")[0] == "/"
    assert tree.locate(tree.mount)[0] == "/"
    assert tree.locate("//./")[0] == "/"


@pytest.mark.parametrize(
    ("cgroup_id", "error"),
    [(None, TypeError), (1.5, TypeError), (-1, ValueError), (2**64, ValueError)],
)
def test_cgroup_ids_are_checked(cgroup_id, error) -> None:
    with pytest.raises(error, match="a cgroup id"):
        nn.resolve_cgroup(cgroup_id)


def test_v1_paths_are_the_non_root_controller_lines() -> None:
    text = "12:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n1:name=systemd:/init.scope\n0::/\n"
    assert v1_paths(text) == {"/docker/abc"}
    assert v1_paths("0::/system.slice/x.service\n") == set()


def test_the_note_names_the_v1_only_cgroups_and_what_to_do() -> None:
    note = v1_only_note(Counter({"/docker/abc": 3, "/docker/def": 1, "/a": 1, "/b": 1}))
    assert "/docker/abc (3 tasks)" in note and "/docker/def (1 task)" in note
    assert "and 1 more" in note and "unified" in note


@pytest.mark.needs_bpf  # root, to make a cgroup
def test_a_task_in_a_v1_only_cgroup_is_found_in_the_v2_root() -> None:
    v1_cpu = cgroup_v1_mount("cpu")
    if v1_cpu is None:
        pytest.skip("a pure cgroup v2 host: no v1 hierarchy to hide a task in")
    mount = find_cgroup2_mount()
    v1_only = os.path.join(v1_cpu, f"nn-test-v1only-{os.getpid()}")
    os.mkdir(v1_only)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        # Into the v1 cpu hierarchy only: in v2 it stays where it was.
        with open(os.path.join(v1_only, "cgroup.procs"), "w") as f:
            f.write(str(sleeper.pid))
        with open(os.path.join(mount, "cgroup.procs"), "w") as f:
            f.write(str(sleeper.pid))  # the v2 root
        found = v1_only_cgroups(mount)
        assert found[f"/nn-test-v1only-{os.getpid()}"] == 1
    finally:
        sleeper.kill()
        sleeper.wait()
        os.rmdir(v1_only)
