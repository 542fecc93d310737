"""When the kernel refuses a script's program: which probe it was (the
program's name in the log) and, for a verifier rejection, which statement
(the C line the verifier last annotated, traced back to the statement whose
mark precedes it), in bpftrace's located form, with the log's tail."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .codegen import STATEMENT_MARK
from .diagnostics import Diagnostic, Location, Source

if TYPE_CHECKING:
    from .program_info import ProgramInfo

__all__ = ["locate_compile_error", "locate_load_error"]

_PROGRAM = re.compile(r"prog '(nn_probe_(\d+))'")
_C_LINE = re.compile(r"@ [\w.-]+\.bpf\.c:(\d+)")
_MARK = re.compile(rf"/\* {STATEMENT_MARK} (\d+):(\d+)-(\d+) \*/")
#: verifier lines that say what went wrong (not the instruction trace)
_TRACE = re.compile(
    r"^\s*(\d+: \(|;|from \d+ to|processed \d+|libbpf:|--|R\d+=|old state:|cur state:"
    r"|verification time|stack depth|\d+: R\d|$)"
)


def _statement(code: str, c_line: int) -> Location | None:
    lines = code.split("\n")
    for text in reversed(lines[: max(c_line, 0)]):
        mark = _MARK.search(text)
        if mark:
            return Location(*(int(g) for g in mark.groups()))
        if text.startswith("SEC("):
            return None
    return None


_CLANG_ERROR = re.compile(r"[\w.-]+\.bpf\.c:(\d+):\d+: error: (.*)")


def _probe_at(code: str, c_line: int, info: ProgramInfo) -> Location | None:
    """The probe whose program holds C line ``c_line``."""
    for text in reversed(code.split("\n")[: max(c_line, 0)]):
        program = re.match(r"int nn_probe_(\d+)\(", text)
        if program:
            index = int(program.group(1))
            for context in info.contexts:
                if context.index == index:
                    return context.probe.loc
            return None
    return None


def locate_compile_error(
    message: str, code: str, source: Source, info: ProgramInfo
) -> Diagnostic | None:
    """clang's first complaint about the generated C, at the statement (or
    else the probe) it came from; None if it names neither."""
    match = _CLANG_ERROR.search(message)
    if match is None:
        return None
    c_line = int(match.group(1))
    where = _statement(code, c_line) or _probe_at(code, c_line, info)
    if where is None:
        return None
    reason = match.group(2)
    if "stack limit" in reason:
        reason = (
            "this probe needs more than the 512 bytes of stack BPF allows: use fewer "
            "strings at once, or shorter ones (str(x, N))"
        )
    else:
        reason = f"clang rejected the C this statement became: {reason}"
    return Diagnostic(source, where, reason)


def locate_load_error(message: str, code: str, info: ProgramInfo, source: Source) -> str | None:
    """The refusal in the script's terms, or None if the log names none of
    the script's programs."""
    program = _PROGRAM.search(message)
    if program is None:
        return None
    index = int(program.group(2))
    context = next((c for c in info.contexts if c.index == index), None)
    if context is None:
        return None
    c_lines = _C_LINE.findall(message)
    where = _statement(code, int(c_lines[-1])) if c_lines else None
    reasons = [
        line.strip()
        for line in message.splitlines()
        if line.strip() and not _TRACE.match(line) and "---" not in line
    ]
    reason = reasons[-1] if reasons else "the kernel refused it"
    if "BPF trampolines" in message and context.section.startswith(("fentry", "fexit")):
        reason = "this kernel does not load fentry/fexit programs (no BPF trampolines here)"
        if context.via_fentry:
            reason += ", and it has no kprobes"
    elif reasons and "os error" in reason:
        reason = reason.split(" (os error")[0].split(": ")[-1]
    if where is None:
        where = context.probe.loc
        what = f"the kernel refused probe {context.spec.name}: {reason}"
    else:
        what = (
            f"the kernel's verifier rejected probe {context.spec.name} at this statement: {reason}"
        )
    return str(Diagnostic(source, where, what))
