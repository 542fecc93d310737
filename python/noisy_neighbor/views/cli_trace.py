"""``noisy-neighbor trace``: bpftrace's command line over the probe host.

    noisy-neighbor trace -e 'tracepoint:sched:sched_process_exec { @[comm] = count(); }'
    noisy-neighbor trace /usr/sbin/runqlat.bt
    noisy-neighbor trace -f json -c 'ls /' \\
        -e 'tracepoint:syscalls:sys_enter_openat /pid == cpid/ { @++; }'

It prints what bpftrace 0.17 prints (``Attaching N probes...``, printf
output, and every map at exit) or bpftrace's NDJSON with ``-f json``; it
exits on ``exit()``, Ctrl-C, SIGTERM, or when ``-c``'s command or ``-p``'s
process ends, running ``END`` first."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

__all__ = ["USAGE", "add_trace_parser", "run_trace"]

USAGE = """
USAGE:
    noisy-neighbor trace [options] filename [ARGS...]
    noisy-neighbor trace [options] - < filename
    noisy-neighbor trace [options] -e 'program' [ARGS...]

OPTIONS:
    -e 'program'   the program's text
    -f FORMAT      output format: text (default) or json (bpftrace's NDJSON)
    -o FILE        write the output to FILE
    -c 'CMD'       run CMD, and exit when it does ($cpid is its pid)
    -p PID         exit when PID does
    -q             keep quiet: no 'Attaching N probes...' line
    -l [PATTERN]   list the probes that match PATTERN
    -B MODE        output buffering: line (default), full or none
    -d             print the generated C and exit
    -k, -kk        warn when a BPF helper fails (-kk: reads and lookups too)
    --include H    take the numeric macros of header H (repeatable)
    --unsafe       allow system() and signal()
    --info         what this kernel supports
    -h, --help     this text
    -V, --version  the version

EXAMPLES:
    noisy-neighbor trace -l '*sleep*'
    noisy-neighbor trace -e 'tracepoint:sched:sched_process_exec { @[comm] = count(); }'
    noisy-neighbor trace /usr/sbin/runqlat.bt
"""

#: The largest pid the kernel hands out (PID_MAX_LIMIT on 64-bit).
PID_MAX = 4_194_304

#: The runtime test harness of bpftrace waits for this line before it
#: starts the workload (bpftrace prints it when the variable is set).
_NOTIFY = "__BPFTRACE_NOTIFY_PROBES_ATTACHED"


def add_trace_parser(commands: Any) -> None:
    trace = commands.add_parser(
        "trace",
        add_help=False,
        usage=USAGE,
        help="run a bpftrace program (one-liner or .bt file) on the probe host",
        description=(
            "Run a program in bpftrace's language: print what bpftrace prints, or its "
            "NDJSON with -f json. Ctrl-C ends it (END runs, maps are printed)."
        ),
    )
    trace.add_argument("-h", "--help", action="store_true", help="show this help")
    trace.add_argument("-V", "--version", action="store_true", help="show the version")
    trace.add_argument("-e", dest="program", metavar="PROGRAM", help="the program's text")
    trace.add_argument("args", nargs="*", metavar="FILE|ARG", help="a .bt file, then $1, $2...")
    trace.add_argument("-f", dest="format", default="text", metavar="FORMAT")
    trace.add_argument("-o", dest="output", metavar="FILE", help="write the output to FILE")
    trace.add_argument("-c", dest="child_command", metavar="CMD", help="run CMD; exit when it does")
    trace.add_argument("-p", dest="pid", metavar="PID", help="exit when PID does")
    trace.add_argument("-q", dest="quiet", action="store_true", help="no 'Attaching' line")
    trace.add_argument("-l", dest="list", action="store_true", help="list probes (PATTERN)")
    trace.add_argument("-B", dest="buffering", choices=["line", "full", "none"], default="line")
    trace.add_argument("--unsafe", action="store_true", help="allow system() and signal()")
    trace.add_argument("-v", dest="verbose", action="store_true", help="say more")
    trace.add_argument(
        "-d", dest="dump", action="store_true", help="print the generated C and exit"
    )
    trace.add_argument(
        "-k", dest="helper_errors", action="count", default=0, help=argparse.SUPPRESS
    )
    trace.add_argument("--no-warnings", action="store_true", help="no warnings")
    trace.add_argument(
        "-I", "--include", dest="include", action="append", default=[], help=argparse.SUPPRESS
    )
    trace.add_argument("--btf", action="store_true", help=argparse.SUPPRESS)
    trace.add_argument("--info", action="store_true", help="what this kernel supports")


class UsageError(Exception):
    """A bad command line: the text is bpftrace's ERROR line."""


def _program(args: argparse.Namespace) -> tuple[str, str, list[str]]:
    """(text, name in messages, positional parameters)."""
    if args.program is not None:
        return args.program, "stdin", list(args.args)
    if not args.args:
        raise UsageError("ERROR: give a program with -e 'PROGRAM' or a .bt file")
    path, *params = args.args
    if path == "-":
        return sys.stdin.read(), "stdin", params
    try:
        return Path(path).read_text(errors="surrogateescape"), path, params
    except OSError as err:
        raise UsageError(f"ERROR: failed to open file '{path}': {err.strerror}") from None


def _pid(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit():
        raise UsageError(f"ERROR: pid '{text}' is not a valid decimal number")
    pid = int(text)
    if not 1 <= pid <= PID_MAX:
        raise UsageError(f"ERROR: pid '{text}' out of valid pid range [1,{PID_MAX}]")
    if _pid_gone(pid):
        raise UsageError(f"ERROR: pid {pid}: No such process")
    return pid


def _list(args: argparse.Namespace, out: TextIO) -> int:
    from ..script.probe_list import list_probes

    pattern = args.program or (args.args[0] if args.args else "*")
    if not re.fullmatch(r"[A-Za-z0-9_:*?.\-\[\]/+,!@$ ]*", pattern):
        raise UsageError("ERROR: invalid character in search expression")
    for name in list_probes(pattern):
        out.write(name + "\n")
        if args.verbose:
            out.writelines(f"    {line}\n" for line in _probe_arguments(name))
    return 0


def _probe_arguments(name: str) -> list[str]:
    """What ``-lv`` prints under a probe: a function's parameters (and
    its return value), a tracepoint's fields."""
    provider, _, rest = name.partition(":")
    if provider in ("kfunc", "kretfunc"):
        from ..script.btf import KernelBtf

        func = KernelBtf.load().func(rest.rpartition(":")[2])
        if func is None:
            return []
        lines = [f"{p.c_type} {p.name}" for p in func.params]
        if func.return_type.kind.value != "none":
            lines.append(f"{func.return_c_type} retval")
        return lines
    if provider == "tracepoint":
        from ..script.tracepoints import tracepoint_format

        category, _, event = rest.partition(":")
        fmt = tracepoint_format(category, event)
        return [_field_text(f) for f in fmt.fields] if fmt else []
    return []


def _info(out: TextIO) -> int:
    """The features bpftrace's ``--info`` reports, in its words (scripts
    and test harnesses read these lines)."""
    import platform

    btf = os.path.exists("/sys/kernel/btf/vmlinux")
    kprobes = os.path.exists("/sys/bus/event_source/devices/kprobe")
    uprobes = os.path.exists("/sys/bus/event_source/devices/uprobe")
    kfunc = btf and _kernel_loads_tracing_programs()

    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    lines = [
        "System",
        f"  OS: {platform.system()} {platform.release()}",
        "",
        "Build",
        "  btf: yes",
        "",
        "Kernel features",
        f"  btf (depends on Build:libbpf): {yes(btf)}",
        "  Loop support: yes",
        "  probe_read_kernel: yes",
        f"  kfunc: {yes(kfunc)}",
        "  send_signal: yes",
        "  get_current_cgroup_id: yes",
        "",
        "Map types",
        "  hash: yes",
        "  percpu hash: yes",
        "  array: yes",
        "  percpu array: yes",
        "  stack_trace: yes",
        "  perf_event_array: yes",
        "  ringbuf: yes",
        "",
        "Probe types",
        f"  kprobe: {yes(kprobes)}" + ("" if kprobes or not kfunc else " (fentry stands in)"),
        "  tracepoint: yes",
        "  perf_event: yes",
        f"  uprobe: {yes(uprobes)}",
    ]
    out.write("\n".join(lines) + "\n")
    return 0


def _kernel_loads_tracing_programs() -> bool:
    """Whether fentry/fexit programs load here (BPF trampolines): some
    hardened kernels refuse the whole program type."""
    import subprocess

    try:
        probed = subprocess.run(
            ["bpftool", "feature", "probe", "kernel"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "eBPF program_type tracing is available" in probed


class _Child:
    """``-c CMD``: started before the probes attach but held until they
    have (so its first instruction is traced), then released. CMD runs as
    bpftrace runs it: split into words and executed, no shell, so ``cpid``
    is the command's own pid."""

    def __init__(self, command: str) -> None:
        words = shlex.split(command)
        if not words:
            raise UsageError("ERROR: -c needs a command")
        read_end, self._gate = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: wait for the probes, then become CMD
            try:
                os.close(self._gate)
                os.read(read_end, 1)
                os.execvp(words[0], words)
            except OSError as err:
                print(f"ERROR: failed to run {words[0]}: {err.strerror}", file=sys.stderr)
            finally:
                os._exit(127)
        os.close(read_end)
        self.pid = pid
        self._status: int | None = None

    def release(self) -> None:
        os.write(self._gate, b"x")
        os.close(self._gate)

    def done(self) -> bool:
        if self._status is None:
            finished, status = os.waitpid(self.pid, os.WNOHANG)
            if finished:
                self._status = status
        return self._status is not None

    def kill(self) -> None:
        if not self.done():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            os.waitpid(self.pid, 0)
            self._status = 0


def _pid_gone(pid: int) -> bool:
    """Whether the process of ``-p`` has ended (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in ("Z", "X")


def run_trace(args: argparse.Namespace) -> int:
    from .._native import __version__

    if args.help:
        print(USAGE.strip("\n"))
        return 0
    if args.version:
        print(f"noisy-neighbor trace {__version__} (the language of bpftrace v0.17)")
        return 0
    try:
        if args.format not in ("text", "json"):
            raise UsageError(f'ERROR: Invalid output format "{args.format}"')
        args.pid = _pid(args.pid)
        out: TextIO = (
            open(args.output, "w", errors="surrogateescape")  # noqa: SIM115
            if args.output
            else sys.stdout
        )
    except UsageError as err:
        print(err, file=sys.stderr)
        return 1
    except OSError as err:
        print(f"ERROR: cannot write {args.output}: {err.strerror}", file=sys.stderr)
        return 1
    try:
        if args.list:
            return _list(args, out)
        if args.info:
            return _info(out)
        return _trace(args, out)
    except UsageError as err:
        print(err, file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (`| head`): done, as any filter would be
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - no flush error at exit
        return 0
    finally:
        if out is not sys.stdout:
            out.close()


def _trace(args: argparse.Namespace, out: TextIO) -> int:
    from ..errors import AttachError, ProbeLoadError, ScriptError
    from ..script.runtime import Script

    text, name, params = _program(args)
    child = _Child(args.child_command) if args.child_command else None
    try:
        script = Script(
            text,
            *params,
            name=name,
            unsafe=args.unsafe,
            output=args.format,
            stream=out,
            cpid=child.pid if child else None,
            includes=args.include,
            helper_errors=min(args.helper_errors, 2),
        )
    except ScriptError as err:
        if child:
            child.kill()
        print(str(err), file=sys.stderr)
        return 1
    except BaseException:
        if child:
            child.kill()
        raise
    if args.dump:
        out.write(script.compiled.code)
        return 0
    for note in script.info.notes:
        print(note, file=sys.stderr)
    if not args.quiet:
        script.sink.attached(script.probe_count)
    out.flush()
    stopping = []

    def on_signal(signum: int, frame: object) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    print_maps = []
    previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, lambda *_: print_maps.append(1))
    try:
        try:
            script.start()  # BEGIN runs before the other probes attach
        except (ProbeLoadError, AttachError) as err:
            print(err, file=sys.stderr)
            return 1
        if os.environ.get(_NOTIFY):
            print(_NOTIFY, file=sys.stderr, flush=True)
        if child:
            child.release()
        while not script.exit_requested and not stopping:
            script.poll(0.1)
            if print_maps:  # SIGUSR1: every map now, as bpftrace prints them
                print_maps.clear()
                script.sink.at_exit(script.snapshots())
            if args.buffering != "full":
                out.flush()
            if child and child.done():
                break
            if args.pid and _pid_gone(args.pid):
                break
        script.stop()
        script.sink.at_exit(script.snapshots())
        _report_losses(script)
        out.flush()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        script.close()
        if child:
            child.kill()
    return 0


def _report_losses(script: Any) -> None:
    stats = script.stats()
    lost = stats["lost_events"] + stats["dropped_batch_events"]
    if lost:
        script.sink.lost(lost)
    for name, count in script.map_errors().items():
        print(
            f"WARNING: {count} updates of {name} failed: the map was full "
            f"(raise BPFTRACE_MAP_KEYS_MAX)",
            file=sys.stderr,
        )


def _field_text(field: Any) -> str:
    """A tracepoint field as its format declares it (``char prev_comm[16]``)."""
    if field.type.kind.value == "string" or field.count > 1:
        count = field.type.size if field.type.kind.value == "string" else field.count
        return f"{field.c_type} {field.name}[{count}]"
    return f"{field.c_type} {field.name}"
