"""``noisy-neighbor trace`` as a command: bpftrace's flags and exits (-e,
files, -c with cpid, -p, -o, -l, -f json, Ctrl-C and SIGTERM running END),
errors on stderr with the script's line and column, and nothing left
running or loaded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.needs_bpf, pytest.mark.usefixtures("private_plugin_cache")]

TRACE = [sys.executable, "-m", "noisy_neighbor", "trace"]


def trace(*args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TRACE, *args], capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


def test_a_one_liner_prints_what_bpftrace_prints() -> None:
    done = trace("-e", 'BEGIN { printf("hi %d\\n", 1 + 2); @c[1] = count(); exit(); }')
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Attaching 1 probe...\nhi 3\n\n\n@c[1]: 1\n"


def test_a_file_with_parameters(tmp_path: Path) -> None:
    script = tmp_path / "params.bt"
    script.write_text('BEGIN { printf("%d %s %d\\n", $1, str($2), $#); exit(); }\n')
    done = trace("-q", str(script), "7", "word")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("7 word 2\n")


def test_a_bad_script_fails_with_its_line_and_column(tmp_path: Path) -> None:
    script = tmp_path / "bad.bt"
    script.write_text("BEGIN {\n  @x = nosuch(1);\n}\n")
    done = trace(str(script))
    assert done.returncode == 1
    assert done.stderr.splitlines()[:3] == [
        f"{script}:2:8-14: ERROR: Unknown function: nosuch",
        "  @x = nosuch(1);",
        "       ~~~~~~",
    ]
    assert done.stdout == ""


def test_the_child_of_minus_c_is_traced_from_its_first_instruction() -> None:
    # str() reads 64 bytes: a short path compares whole
    fd, name = tempfile.mkstemp(prefix="nn-c-", dir="/tmp")
    os.close(fd)
    target = Path(name)
    command = f"{sys.executable} -c '[open(\"{target}\").close() for _ in range(6)]'"
    done = trace(
        "-c",
        command,
        "-e",
        f'tracepoint:syscalls:sys_enter_openat /pid == cpid && str(args->filename) == "{target}"/ '
        "{ @opens = count(); }",
    )
    target.unlink()
    assert done.returncode == 0, done.stderr
    assert "@opens: 6" in done.stdout


def test_minus_p_ends_when_the_process_does() -> None:
    sleeper = subprocess.Popen(["sleep", "1"])
    started = time.monotonic()
    done = trace("-p", str(sleeper.pid), "-e", "interval:ms:100 { @ticks = count(); }")
    sleeper.wait()
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 30
    assert "@ticks:" in done.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_runs_end_and_prints_the_maps(sig: signal.Signals) -> None:
    process = subprocess.Popen(
        [*TRACE, "-e", 'interval:ms:20 { @n = count(); } END { printf("end ran\\n"); }'],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "__BPFTRACE_NOTIFY_PROBES_ATTACHED": "1"},
    )
    assert process.stderr is not None
    assert process.stderr.readline().strip() == "__BPFTRACE_NOTIFY_PROBES_ATTACHED"
    time.sleep(0.3)
    process.send_signal(sig)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert "end ran\n" in out and "@n: " in out


def test_json_output_and_an_output_file(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = trace("-f", "json", "-o", str(out), "-e", 'BEGIN { @x["a"] = 2; exit(); }')
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == '{"type": "attached_probes", "data": {"probes": 1}}'
    assert '{"type": "map", "data": {"@x": {"a": 2}}}' in lines


def test_listing_probes() -> None:
    done = trace("-l", "tracepoint:sched:sched_switch")
    assert done.stdout == "tracepoint:sched:sched_switch\n"
    verbose = trace("-lv", "tracepoint:sched:sched_switch").stdout
    assert "    pid_t next_pid" in verbose


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "12ab", "-e", "BEGIN {}"], "ERROR: pid '12ab' is not a valid decimal number"),
        (["-f", "xml", "-e", "BEGIN {}"], 'ERROR: Invalid output format "xml"'),
        (["/no/such/file.bt"], "ERROR: failed to open file '/no/such/file.bt'"),
        (["--no-such-flag"], "USAGE:"),
    ],
)
def test_bad_command_lines_say_what_is_wrong(args: list[str], message: str) -> None:
    done = trace(*args)
    assert done.returncode == 1
    assert message in done.stderr


def test_a_verifier_rejection_names_the_probe_and_the_statement() -> None:
    done = trace("-e", "BEGIN {\n  $i = 0;\n  while (1) { $i++; }\n}")
    assert done.returncode == 1
    first = done.stderr.splitlines()[0]
    assert first.startswith("stdin:3:3-")
    assert "verifier rejected probe BEGIN at this statement" in first


def test_minus_k_reports_failing_helpers_where_they_failed() -> None:
    done = trace("-k", "-e", "BEGIN { @[1] = 1; delete(@[2]); exit(); }")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[:2] == [
        "stdin:1:19-31: WARNING: Failed to map_delete_elem: No such file or directory (-2)",
        "BEGIN { @[1] = 1; delete(@[2]); exit(); }",
    ]
    quiet = trace("-e", "BEGIN { @[1] = 1; delete(@[2]); exit(); }")
    assert "WARNING" not in quiet.stderr  # without -k a missing key is no news
