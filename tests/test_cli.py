"""The noisy-neighbor command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import noisy_neighbor as nn
from noisy_neighbor.testing import CPU_HOG, interruptible, our_programs
from noisy_neighbor.views.cli import build_parser

CLI = [sys.executable, "-m", "noisy_neighbor"]


@pytest.mark.parametrize(
    "argv",
    [
        ["runqlat", "--interval", "0"],
        ["runqlat", "--interval", "nan"],
        ["runqlat", "--interval", "inf"],
        ["runqlat", "--interval", "1e300"],
        ["runqlat", "--count", "-1"],
        ["runqlat", "--count", "x"],
        ["runqlat", "--unit", "s"],
        ["demo", "--seconds", "-3"],
        ["bogus"],
        [],
    ],
)
def test_bad_arguments_are_one_line_and_exit_1(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("noisy-neighbor: error: ") and err.count("\n") == 1, err


def test_version_names_the_package() -> None:
    out = subprocess.run([*CLI, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"noisy-neighbor {nn.__version__}"


@pytest.mark.needs_bpf
def test_runqlat_json_gives_one_object_per_interval(cgroup_factory) -> None:
    busy = cgroup_factory()
    busy.run(CPU_HOG)
    busy.run(CPU_HOG)
    busy.run(CPU_HOG)  # three hogs on two CPUs always wait
    out = subprocess.run(
        [*CLI, "runqlat", "--interval", "0.5", "--count", "2", "--json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 2
    for record in records:
        assert record["method"] == "sched_info"
        assert record["stats"]["failed_updates"] == 0
        ours = [c for c in record["cgroups"] if c["cgroup_id"] == busy.id]
        assert ours and ours[0]["cgroup_path"] == busy.path and ours[0]["count"] > 0
        totals = [c["total_ns"] for c in record["cgroups"]]
        assert totals == sorted(totals, reverse=True)  # busiest first


@pytest.mark.needs_bpf
def test_runqlat_text_prints_the_seed_table(cgroup_factory) -> None:
    busy = cgroup_factory()
    busy.run(CPU_HOG)
    busy.run(CPU_HOG)
    busy.run(CPU_HOG)
    out = subprocess.run(
        [
            *CLI,
            "runqlat",
            "--interval",
            "0.5",
            "--count",
            "1",
            "--unit",
            "ms",
            "--cgroup",
            busy.path,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert f"key = {busy.id}\ncomm = sh\n" in out
    assert f"cgroup_path = {busy.path}" in out
    assert "(msecs)" in out and "|****" in out


@pytest.mark.needs_bpf
def test_runqlat_names_containers_and_pods(tmp_path, cgroup_factory) -> None:
    uid = "1b4c9e2a-6d3f-4a8b-9c7e-5f2d1a0b3c4e"
    cid = "3f2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a"
    (tmp_path / f"shop_checkout-7c9d_{uid}").mkdir()
    top = cgroup_factory()
    pod = cgroup_factory(f"{top.path}/kubepods-burstable-pod{uid.replace('-', '_')}.slice")
    container = cgroup_factory(f"{pod.path}/cri-containerd-{cid}.scope")
    for _ in range(3):
        container.run(CPU_HOG)
    out = subprocess.run(
        [*CLI, "runqlat", "--interval", "0.5", "--count", "1", "--cgroup", top.path],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NN_POD_LOG_DIR": str(tmp_path)},
    ).stdout
    assert f"name = shop/checkout-7c9d/{cid[:12]} (container)" in out


@pytest.mark.needs_bpf
def test_report_names_the_neighbor_and_top_shows_it_live(cgroup_factory) -> None:
    victim, neighbor = cgroup_factory("victim"), cgroup_factory("neighbor")
    victim.run(CPU_HOG, cpus=[1])
    for _ in range(2):
        neighbor.run(CPU_HOG, cpus=[1])
    out = subprocess.run(
        [*CLI, "report", "--seconds", "1.5", "--json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    rows = {row["cgroup_id"]: row for row in json.loads(out)["cgroups"]}
    assert rows[victim.id]["verdict"] == "noisy-neighbor"
    assert rows[victim.id]["culprits"][0]["cgroup_id"] == neighbor.id

    text = subprocess.run(
        [*CLI, "report", "--seconds", "1"], check=True, capture_output=True, text=True
    ).stdout
    assert "noisy-neighbor" in text and neighbor.path.strip("/") in text

    top = subprocess.run(
        [*CLI, "top", "--interval", "0.5", "--count", "2"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert top.count("noisy-neighbor top") == 2
    # The victim's own row (its name also shows up as the culprit of others).
    victim_line = next(line for line in top.splitlines()[::-1] if line.startswith(victim.path[1:]))
    assert neighbor.path[1:] in victim_line and "noisy-neighbor" in victim_line


@pytest.mark.needs_bpf
@pytest.mark.parametrize(
    ("command", "code"), [(["runqlat"], 130), (["top"], 130), (["report", "--seconds", "60"], 0)]
)
def test_ctrl_c_ends_a_command_and_leaves_nothing_loaded(command: list[str], code: int) -> None:
    child = subprocess.Popen(
        [*CLI, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        preexec_fn=interruptible,  # gets Ctrl-C even from a background run
    )
    try:
        time.sleep(2.0)  # loaded and attached by then; the exit code says if not
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    # runqlat and top end at once; report prints what it collected until then.
    assert child.returncode == code, err
    if command[0] == "report":
        assert "Run-queue latency per cgroup over" in out
    assert "Traceback" not in err
    assert not our_programs()
