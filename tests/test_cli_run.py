"""``noisy-neighbor run``: any BPF program, from source or object, printed
the way ``ecli run`` prints it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from noisy_neighbor.errors import PluginGlobalError, PluginObjectError
from noisy_neighbor.host.layout import Field, Layout
from noisy_neighbor.host.plugin import Plugin
from noisy_neighbor.views.cli_run import parse_global

CLI = [sys.executable, "-m", "noisy_neighbor", "run"]
DATA = Path(__file__).parent / "data"


def _global(kind: str, size: int, shape: list[int], values=None) -> SimpleNamespace:
    """What the CLI reads of a global: its layout."""
    return SimpleNamespace(layout=Layout("t", size, [Field("", 0, kind, size, shape, values)]))


def test_set_values_are_read_as_the_globals_type() -> None:
    globals_ = {
        "ms": _global("bool", 1, []),
        "pid": _global("int", 4, []),
        "mask": _global("uint", 8, []),
        "name": _global("char", 1, [16]),
        "ids": _global("uint", 4, [4]),
        "mode": _global("enum", 4, [], [("FAST", 1)]),
        "ratio": _global("float", 8, []),
    }
    assert parse_global(globals_, "ms=true") == ("ms", True)
    assert parse_global(globals_, "ms=0") == ("ms", False)
    assert parse_global(globals_, "pid=-5") == ("pid", -5)
    assert parse_global(globals_, "mask=0xff") == ("mask", 255)
    assert parse_global(globals_, "name=nginx") == ("name", "nginx")
    assert parse_global(globals_, "ids=1,2,3") == ("ids", [1, 2, 3])
    assert parse_global(globals_, "mode=FAST") == ("mode", "FAST")
    assert parse_global(globals_, "mode=1") == ("mode", 1)
    assert parse_global(globals_, "ratio=0.5") == ("ratio", 0.5)
    for bad, message in [
        ("ms=maybe", "use true or false"),
        ("pid=x", "not a valid int"),
        ("nope=1", "no global 'nope'"),
        ("pid", "NAME=VALUE"),
    ]:
        with pytest.raises(PluginGlobalError, match=message):
            parse_global(globals_, bad)


@pytest.mark.needs_bpf
def test_run_prints_the_seed_histograms_like_ecli(tmp_path) -> None:
    out = subprocess.run(
        [*CLI, str(DATA / "seed" / "noisy_neighbor.bpf.c"), "--interval", "0.5", "--count", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"NN_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert "Running noisy_neighbor.bpf.o: tp_sched_wakeup (tp_btf/sched_wakeup)" in out.stdout
    assert "\nkey = 1\ncomm = " in out.stdout  # the root cgroup, where this host's tasks run
    assert "(unit) : count    distribution" in out.stdout


@pytest.mark.needs_bpf
def test_run_prints_ring_buffer_records_as_rows(tmp_path, cgroup) -> None:
    run = subprocess.Popen(
        [*CLI, str(DATA / "plugins" / "exec_events.bpf.c"), "--interval", "1", "--count", "2",
         "--set", f"target_cgroup={cgroup.id}", "--map", "counts"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"NN_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    try:
        assert run.stdout is not None
        assert run.stdout.readline().startswith("Running exec_events.bpf.o")  # attached
        pids = []
        for _ in range(3):
            child = cgroup.run(["/bin/true"])
            child.wait()
            pids.append(child.pid)
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 0, err
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("TIME"))
    assert header.split() == ["TIME", "CGROUP_ID", "PID", "COMM", "IN_TARGET", "KIND"]
    rows = [row for row in map(str.split, lines) if row[3:4] == ["true"]]
    assert sorted(int(r[2]) for r in rows) == sorted(pids)
    assert f"  {cgroup.id}: 3" in out


@pytest.mark.needs_bpf
def test_run_reports_bad_input_in_one_line(tmp_path) -> None:
    cases = [
        ([str(tmp_path / "missing.bpf.o")], "does not exist"),
        ([str(DATA / "seed" / "noisy_neighbor.bpf.c"), "--set", "ms=3"], "is a bool"),
        ([str(DATA / "plugins" / "rejected.bpf.c")], "invalid mem access"),
    ]
    for argv, message in cases:
        out = subprocess.run(
            [*CLI, *argv], capture_output=True, text=True, timeout=120,
            env={"NN_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        assert out.returncode == 1, (argv, out.stderr)
        assert out.stderr.startswith("noisy-neighbor: error:"), out.stderr
        assert message in out.stderr
        assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("argv", "cache_is_a_file", "message"),
    [
        (["--map", "nosuch", "--interval", "3600"], False, r"--map nosuch: .* no such map"),
        ([], True, "NN_CACHE_DIR to a writable directory"),
    ],
)
def test_run_refuses_bad_input_before_loading_in_one_line(
    tmp_path, argv: list[str], cache_is_a_file: bool, message: str
) -> None:
    cache = tmp_path / "cache"
    if cache_is_a_file:
        cache.write_text("not a directory")
    out = subprocess.run(
        [*CLI, str(DATA / "seed" / "noisy_neighbor.bpf.c"), *argv],
        capture_output=True,
        text=True,
        timeout=60,  # bounds a hang: an error must not wait out the interval
        env={"NN_CACHE_DIR": str(cache), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith("noisy-neighbor: error: ") and "Traceback" not in out.stderr
    assert re.search(message, out.stderr), out.stderr


def test_a_directory_is_not_a_plugin(tmp_path) -> None:
    with pytest.raises(PluginObjectError, match="is a directory"):
        Plugin.load(tmp_path)
