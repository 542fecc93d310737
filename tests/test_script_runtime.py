"""bpftrace-language scripts on the real kernel, through the Python API:
exact counts for events the test makes itself (execs, kill()s, opens,
reads), printf records as typed numpy columns, maps as pandas, the
lifecycle, and the pytest fixture. Events the test does not cause (other
processes' switches) are only checked for presence."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import noisy_neighbor as nn
from noisy_neighbor.errors import ProbeStateError, ScriptError
from noisy_neighbor.script.histograms import ScriptHistogram

pytestmark = [pytest.mark.needs_bpf, pytest.mark.usefixtures("private_plugin_cache")]


@pytest.fixture
def unique_binary(tmp_path: Path) -> Path:
    """A copy of /bin/true under a name no other process has (its comm)."""
    path = tmp_path / f"nnx{os.getpid() % 100000}"
    shutil.copy("/bin/true", path)
    return path


def test_begin_end_and_exit_print_as_bpftrace_prints() -> None:
    script = nn.bpftrace(
        'BEGIN { printf("hello %d\\n", 42); @n = count(); @s["x"] = sum(5); exit(); } '
        'END { printf("bye\\n"); }',
        keep_printf=True,
    )
    script.run(seconds=10)
    assert script.exit_requested
    assert script.text() == "hello 42\nbye\n"
    assert script.map("@n") == 1
    assert script.map("@s").to_dict() == {"x": 5}


def test_each_exec_of_a_known_binary_is_counted_once(unique_binary: Path) -> None:
    name = unique_binary.name
    with nn.bpftrace(
        f'tracepoint:sched:sched_process_exec /comm == "{name}"/ {{ @[comm] = count(); }}'
    ) as script:
        for _ in range(25):
            subprocess.run([unique_binary], check=True)
    assert script.map("@").to_dict() == {name: 25}


def test_each_kill_is_counted_with_its_signal_and_target() -> None:
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with nn.bpftrace(
            f"tracepoint:syscalls:sys_enter_kill /args->pid == {target.pid}/ "
            "{ @[args->sig] = count(); }"
        ) as script:
            for _ in range(7):
                os.kill(target.pid, 0)
            for _ in range(3):
                os.kill(target.pid, 18)  # SIGCONT: harmless to a running process
        assert script.map("@").to_dict() == {0: 7, 18: 3}
    finally:
        target.kill()
        target.wait()


def test_opens_of_a_file_are_counted_by_its_path() -> None:
    # str() reads 64 bytes, as bpftrace's does: a short path compares whole
    fd, name = tempfile.mkstemp(prefix="nn-open-", dir="/tmp")
    os.close(fd)
    path = Path(name)
    with nn.bpftrace(
        "tracepoint:syscalls:sys_enter_openat "
        f'/str(args->filename) == "{path}"/ {{ @opens = count(); @who[pid] = count(); }}'
    ) as script:
        for _ in range(11):
            with open(path):
                pass
    path.unlink()
    assert script.map("@opens") == 11
    assert script.map("@who").to_dict() == {os.getpid(): 11}


def test_printf_records_arrive_as_typed_columns(unique_binary: Path) -> None:
    name = unique_binary.name
    script = nn.bpftrace(
        f'tracepoint:sched:sched_process_exec /comm == "{name}"/ '
        '{ printf("%s %d %u\\n", comm, pid, (uint32)-1); }'
    )
    pids: list[int] = []
    with script:
        for _ in range(5):
            child = subprocess.Popen([unique_binary])
            pids.append(child.pid)
            child.wait()
        time.sleep(0.2)
    batches = list(script.batches(timeout=0.5))
    columns = {k: np.concatenate([b.columns()[k] for b in batches]) for k in batches[0].fields}
    assert sorted(columns["pid"].tolist()) == sorted(pids)
    assert set(columns["comm"].tolist()) == {name}
    # typed by the conversion, as C reads the argument: %d int32, %u uint32
    assert columns["pid"].dtype == np.int32
    assert columns["arg2"].dtype == np.uint32
    assert columns["arg2"].tolist() == [0xFFFFFFFF] * 5


def _kernel_loads_fentry() -> bool:
    """Whether BPF trampolines work here (some hardened kernels refuse
    every fentry/fexit program, as this project's CI VM does)."""
    out = subprocess.run(
        ["bpftool", "feature", "probe", "kernel"], capture_output=True, text=True, check=False
    ).stdout
    return "eBPF program_type tracing is available" in out


@pytest.mark.parametrize("kprobes_as_fentry", [False, True], ids=["kprobes", "as-fentry"])
def test_reads_counted_through_fentry_and_kprobe_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kprobes_as_fentry: bool
) -> None:
    # Where the kernel has kprobes, the second run makes kprobe:f take the
    # path it takes on kernels without them (fentry:f); make kernel-matrix
    # runs both on Debian's kernels, which load fentry programs.
    if kprobes_as_fentry:
        monkeypatch.setenv("NN_KPROBES_AS_FENTRY", "1")
    path = tmp_path / "data"
    path.write_bytes(b"a" * 4096)
    # This thread only: while the three probes attach one after another, the
    # host's own thread reads sysfs, which the first attached would count.
    me = threading.get_native_id()
    program = (
        f"kfunc:vfs_read /tid == {me}/ {{ @f = count(); }} "
        f"kprobe:vfs_read /tid == {me}/ {{ @k = count(); }} "
        f"kretfunc:vfs_read /tid == {me}/ {{ @bytes = sum(retval); }}"
    )
    kprobes = os.path.exists("/sys/bus/event_source/devices/kprobe") and not kprobes_as_fentry
    if not _kernel_loads_fentry():
        # No trampolines (kfunc refused): the refusal names the probe and says why.
        with pytest.raises((nn.ProbeLoadError, nn.AttachError)) as caught:
            nn.bpftrace(program).start()
        assert "the kernel refused probe" in str(caught.value)
        assert "fentry/fexit" in str(caught.value)
        if not kprobes:
            assert "kprobe:vfs_read" in nn.bpftrace(program).info.notes[0]
        return
    with nn.bpftrace(program) as script:
        fd = os.open(path, os.O_RDONLY)
        try:
            for _ in range(9):
                os.pread(fd, 100, 0)
        finally:
            os.close(fd)
    # pread64 goes through vfs_read once per call; the script's own reads of
    # its maps come after it stops.
    assert script.map("@f") == script.map("@k") == 9
    assert script.map("@bytes") == 900


def test_histograms_are_the_packages_histograms_with_percentiles() -> None:
    script = nn.bpftrace(
        "BEGIN { $i = 0; while ($i < 100) { @h = hist($i * 10); @l = lhist($i, 0, 100, 10); "
        "@s = stats($i); $i++; } exit(); }"
    )
    script.run(seconds=10)
    hist, linear = script.map("@h"), script.map("@l")
    assert isinstance(hist, ScriptHistogram) and hist.count == 100
    assert linear.count == 100 and linear.counts[1:11].tolist() == [10] * 10
    assert 400 <= linear.percentile(50) * 10 <= 600
    assert 256 <= hist.percentile(50) <= 512  # the median, 495, is in [256, 512)
    assert script.map("@s").to_dict() == {"count": 100, "total": 4950, "average": 49}
    assert hist.to_log2().count == 100  # 0 folds into slot 0 with the 1s; nothing negative


def test_interval_probes_clear_and_zero_maps_in_user_space() -> None:
    script = nn.bpftrace(
        "BEGIN { @c[1] = count(); @z[2] = count(); @z[3] = count(); } "
        "interval:ms:100 { clear(@c); zero(@z); exit(); }"
    )
    script.run(seconds=10)
    assert len(script.map("@c")) == 0
    assert script.map("@z").to_dict() == {2: 0, 3: 0}


def test_strings_tuples_and_casts_round_trip() -> None:
    script = nn.bpftrace(
        'BEGIN { @t = (1, "two", (int8)-3); @u = (uint16)70000; @neg = -5; '
        '@cmp = "abc" == "abc"; @nc = strncmp("abcd", "abxy", 2); @x = 0x10 | 1 << 8; exit(); }'
    )
    script.run(seconds=10)
    assert script.map("@t") == (1, "two", -3)
    assert script.map("@u") == 70000 % 65536
    assert script.map("@neg") == -5
    assert script.map("@cmp") == 1 and script.map("@nc") == 0
    assert script.map("@x") == 0x110


def test_lost_records_and_failed_updates_are_counted() -> None:
    script = nn.bpftrace("BEGIN { $i = 0; while ($i < 5000) { @m[$i] = 1; $i++; } exit(); }")
    script.run(seconds=10)
    stats = script.stats()
    # the map holds bpftrace's default of 4096 keys: the rest failed, counted
    assert len(script.map("@m")) == 4096
    assert stats["map_update_errors"] == 5000 - 4096
    assert script.map_errors() == {"@m": 5000 - 4096}
    assert stats["lost_events"] == 0


def test_the_lifecycle_is_the_plugins() -> None:
    script = nn.bpftrace("interval:ms:50 { @ticks = count(); }")
    with pytest.raises(ProbeStateError):
        script.map("@ticks")
    script.start()
    with pytest.raises(ProbeStateError):
        script.start()
    time.sleep(0.3)
    script.stop()
    script.stop()  # idempotent
    assert script.map("@ticks") >= 1  # readable after stop
    script.close()


def test_a_bad_script_raises_before_loading() -> None:
    with pytest.raises(ScriptError) as caught:
        nn.bpftrace("BEGIN { @x = undefined_thing; }")
    assert "Unknown identifier: 'undefined_thing'" in str(caught.value)


def test_the_pytest_fixture_stops_scripts_after_the_test(bpftrace, unique_binary: Path) -> None:
    script = bpftrace(
        f'tracepoint:sched:sched_process_exec /comm == "{unique_binary.name}"/ {{ @ = count(); }}'
    )
    subprocess.run([unique_binary], check=True)
    script.stop()
    assert script.map("@") == 1


def test_the_cell_magic_runs_and_binds_the_script() -> None:
    from noisy_neighbor.views.bpftrace_magic import bpftrace_magic

    namespace: dict[str, object] = {}
    script = bpftrace_magic("ticks --seconds 5", "BEGIN { @a[1] = 2; exit(); }", namespace)
    assert namespace["ticks"] is script
    assert script.map("@a").to_dict() == {1: 2}
    assert "@a" in script._repr_html_()


def _script_program_tags() -> set[str]:
    listed = subprocess.run(
        ["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True
    ).stdout
    import json

    return {p["tag"] for p in json.loads(listed) if p.get("name", "").startswith("nn_probe_")}


def test_no_program_of_a_script_stays_loaded() -> None:
    # A constant of its own gives this script's program a tag of its own, so
    # other tracers running on the machine do not count.
    before = _script_program_tags()
    marker = int.from_bytes(os.urandom(4), "little")
    with nn.bpftrace(f"tracepoint:sched:sched_switch {{ @ = count(); @m = {marker}; }}"):
        time.sleep(0.1)
        ours = _script_program_tags() - before
    assert ours, "the script's program was not listed while it ran"
    assert not ours & _script_program_tags()


def test_stacks_symbolise_as_bpftrace_prints_them() -> None:
    script = nn.bpftrace("profile:hz:99 { @[kstack] = count(); }")
    script.run(seconds=1)
    stacks = script.map("@")
    assert len(stacks) >= 1
    # a sample taken in user mode (another VM's qemu, say) has no kernel
    # stack: its key is None, printed by bpftrace as an empty stack
    frames = [frame for stack in stacks.index if stack is not None for frame in stack]
    # kernel frames as `function+offset`, the way bpftrace and bcc print them
    assert frames and all("+" in f or f.startswith("0x") for f in frames)


def test_a_uprobes_pointers_are_read_from_the_process() -> None:
    script = nn.bpftrace(
        "uretprobe:libc:getenv /pid == $1/ { @[str(retval)] = count(); }", os.getpid()
    )
    with script:
        os.environ["NN_TEST_VALUE"] = "from-the-process"
        import ctypes

        libc = ctypes.CDLL(None)
        libc.getenv.restype = ctypes.c_char_p
        for _ in range(3):
            assert libc.getenv(b"NN_TEST_VALUE") == b"from-the-process"
    assert script.map("@").to_dict().get("from-the-process") == 3


def test_conditions_that_need_code_short_circuit() -> None:
    script = nn.bpftrace(
        'BEGIN { if (comm == "nomatch" || strncmp(comm, "nn", 2) == 0) { @y = 1; } '
        'if (0 && str(0) == "x") { @n = 1; } @a = ntop(2, 0x0100007f); exit(); }'
    )
    script.run(seconds=10)
    assert script.map("@y") == 1
    assert "@n" in script.info.maps and len(script.snapshot("@n").entries) == 0
    assert script.map("@a") == "127.0.0.1"


def test_user_stacks_and_functions_are_symbolised() -> None:
    import ctypes

    libc = ctypes.CDLL(None)
    with nn.bpftrace(
        "uprobe:libc:getenv /pid == $1/ { @[ustack(2)] = count(); @f[func] = count(); }",
        os.getpid(),
    ) as script:
        for _ in range(4):
            libc.getenv(b"HOME")
    functions = script.map("@f").to_dict()
    assert sum(functions.values()) == 4
    assert all("getenv" in name for name in functions), functions
    frames = [frame for stack in script.map("@").index for frame in stack]
    assert any("getenv+" in frame for frame in frames), frames
