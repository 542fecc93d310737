"""Compiling plugin source with clang: within a memory and a time bound, with
errors that say which bound ended it and how to raise it, and with a
precompiled vmlinux.h that gives the same object as parsing the header."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

import noisy_neighbor as nn
from noisy_neighbor.host.clang import ClangBounds, ClangRun, failure_message, run_clang
from noisy_neighbor.host.compile import cache_dir, compile_source

PLUGINS = Path(__file__).parent / "data" / "plugins"


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A cache per test: each test sees only the precompiled headers it made.
    monkeypatch.setenv("NN_CACHE_DIR", str(tmp_path / "plugin-cache"))


#: Bounds for runs that must end on their own in these tests.
SMALL = ClangBounds(memory_mb=512, timeout_s=60)


def _blowup(monkeypatch: pytest.MonkeyPatch, memory_mb: int, timeout_s: float) -> str:
    """Compiles clz_blowup.bpf.c at -O0 within the bounds; the error it
    raises. Skips where this clang compiles it (the bug is clang's)."""
    monkeypatch.setenv("NN_CLANG_MEMORY_MB", str(memory_mb))
    monkeypatch.setenv("NN_CLANG_TIMEOUT", str(timeout_s))
    code = (PLUGINS / "clz_blowup.bpf.c").read_text()
    try:
        compile_source(code, name="clz_blowup", cflags=["-O0"])
    except nn.PluginCompileError as err:
        return str(err)
    pytest.skip("this clang compiles __builtin_clz for BPF without growing")


def _processes_running(path: str) -> list[int]:
    """Processes whose command line names ``path``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if path.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def test_a_clang_that_grows_without_limit_stops_at_the_memory_bound(monkeypatch) -> None:
    # 448 MiB: above the 300 an ordinary compile takes, reached in about a
    # second by the runaway expansion.
    message = _blowup(monkeypatch, memory_mb=448, timeout_s=60)
    assert "clang ran out of memory compiling plugin 'clz_blowup'" in message
    assert "448 MiB" in message and "NN_CLANG_MEMORY_MB" in message
    assert "__builtin_clz" in message
    # The LLVM stack dump's frames are left out; its summary stays.
    assert "BPF DAG->DAG Pattern Instruction Selection" in message
    assert " #0 0x" not in message


def test_a_compile_past_its_timeout_is_killed_with_its_process_group(monkeypatch) -> None:
    # 3 GiB takes the runaway several seconds to reach: the timeout comes first.
    message = _blowup(monkeypatch, memory_mb=3072, timeout_s=0.5)
    assert "did not finish compiling plugin 'clz_blowup' in 0.5 s" in message
    assert "NN_CLANG_TIMEOUT" in message
    assert _processes_running(str(cache_dir())) == []


def test_a_clang_killed_by_a_signal_is_named_with_the_memory_bound() -> None:
    run = run_clang(["/bin/sh", "-c", "kill -KILL $$"], SMALL)
    assert run.returncode == -signal.SIGKILL
    message = failure_message(run, SMALL, "plugin 'x'")
    assert "killed by SIGKILL while compiling plugin 'x'" in message
    assert "OOM killer" in message
    assert "512 MiB" in message and "NN_CLANG_MEMORY_MB" in message


def test_a_clang_that_says_nothing_is_reported_with_its_status_and_command() -> None:
    run = run_clang(["/bin/sh", "-c", "exit 3"], SMALL)
    message = failure_message(run, SMALL, "plugin 'x'")
    assert "exited with status 3 and printed nothing" in message
    assert "/bin/sh -c 'exit 3'" in message
    crash = ClangRun(
        ["clang"], 1, "PLEASE submit a bug report to x\n #0 0x00007f in f\nclang: error: boom"
    )
    assert (
        failure_message(crash, SMALL, "plugin 'x'")
        == "clang could not compile plugin 'x':\nclang: error: boom"
    )


def test_bounds_come_from_the_environment_and_bad_ones_are_refused(monkeypatch) -> None:
    monkeypatch.setenv("NN_CLANG_MEMORY_MB", "1024")
    monkeypatch.setenv("NN_CLANG_TIMEOUT", "2.5")
    assert ClangBounds.from_env() == ClangBounds(memory_mb=1024, timeout_s=2.5)
    monkeypatch.delenv("NN_CLANG_MEMORY_MB")
    monkeypatch.delenv("NN_CLANG_TIMEOUT")
    defaults = ClangBounds.from_env()
    assert 0 < defaults.memory_mb <= 4096 and defaults.timeout_s == 120
    for memory, timeout in (("lots", "1"), ("0", "1"), ("100", "-1")):
        monkeypatch.setenv("NN_CLANG_MEMORY_MB", memory)
        monkeypatch.setenv("NN_CLANG_TIMEOUT", timeout)
        with pytest.raises(ValueError, match="NN_CLANG_MEMORY_MB must be a whole number"):
            ClangBounds.from_env()


def test_the_precompiled_vmlinux_h_gives_the_same_object_as_parsing_it(monkeypatch) -> None:
    code = (PLUGINS / "exec_events.bpf.c").read_text()
    monkeypatch.setenv("NN_CLANG_PCH", "0")
    parsed = compile_source(code, name="execs")
    parsed_bytes = parsed.read_bytes()
    assert not (cache_dir() / "pch").exists()
    parsed.unlink()  # the same path again: the object names its source
    monkeypatch.setenv("NN_CLANG_PCH", "1")
    precompiled = compile_source(code, name="execs")
    assert precompiled.read_bytes() == parsed_bytes
    assert len(list((cache_dir() / "pch").glob("*/vmlinux.h.pch"))) == 1


def test_a_damaged_precompiled_header_falls_back_to_parsing_the_header() -> None:
    code = (PLUGINS / "exec_events.bpf.c").read_text()
    compile_source(code, name="first")
    (pch,) = (cache_dir() / "pch").glob("*/vmlinux.h.pch")
    pch.write_bytes(b"not a precompiled header")
    obj = compile_source(code + "\n// another source\n", name="second")
    assert nn.Plugin.load(obj).programs["on_exec"].attach == "auto"
    # It was let go, and the next compile builds it anew.
    assert not pch.exists()
    compile_source(code + "\n// a third source\n", name="third")
    assert pch.read_bytes().startswith(b"CPCH")
    # Errors in the code still come through, from the run without it.
    with pytest.raises(nn.PluginCompileError, match="undeclared identifier 'nope'"):
        compile_source('#include "vmlinux.h"\nint f(void) { return nope; }\n')
