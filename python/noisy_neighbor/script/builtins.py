"""The builtin variables (``pid``, ``comm``, ``args``, ``retval``...): their
types, where each may be used, with bpftrace's messages."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from . import ast
from .types import Kind, SizedType, int_type, string_type

if TYPE_CHECKING:
    from .check_base import CheckerBase as Checker

__all__ = ["BUILTIN_NAMES", "DEFAULT_STACK_DEPTH", "builtin_type"]

_UINT64 = ("pid", "tid", "uid", "gid", "nsecs", "elapsed", "cpu", "numaid", "cgroup", "rand",
           "jiffies", "cpid")  # fmt: skip
BUILTIN_NAMES = frozenset(
    [
        *_UINT64,
        "comm",
        "curtask",
        "username",
        "kstack",
        "ustack",
        "probe",
        "func",
        "retval",
        "args",
        "ctx",
    ]
)
#: Frames of ``kstack``/``ustack`` without a depth (bpftrace's default).
DEFAULT_STACK_DEPTH = 127
_ARG = re.compile(r"(s?)arg([0-9]+)")
_KPROBES = ("kprobe", "kretprobe")
_UPROBES = ("uprobe", "uretprobe", "usdt")


def builtin_type(checker: Checker, e: ast.Builtin) -> SizedType:
    name = e.name
    ctx = checker.ctx
    provider = ctx.spec.provider
    if name in _UINT64:
        if name == "cpid" and not checker.has_child:
            raise checker.error(e.loc, "cpid cannot be used without child command")
        if name == "elapsed":
            checker.info.uses_elapsed = True
        if name == "cpid":
            checker.info.uses_cpid = True
        return int_type(8, False)
    if name == "comm":
        return string_type(16)
    if name == "curtask":
        return SizedType(Kind.POINTER, 8, elem=SizedType(Kind.RECORD, struct="struct task_struct"))
    if name == "username":
        return SizedType(Kind.USERNAME, 8)
    if name in ("kstack", "ustack"):
        user = name == "ustack"
        checker.info.stacks.add((user, DEFAULT_STACK_DEPTH))
        return SizedType(Kind.USTACK if user else Kind.KSTACK, 8, count=DEFAULT_STACK_DEPTH)
    if name == "probe":
        return SizedType(Kind.PROBE, 8)
    if name == "func":
        if provider in (*_KPROBES, "kfunc", "kretfunc"):
            return SizedType(Kind.KSYM, 8)
        if provider in _UPROBES:
            return SizedType(Kind.USYM, 16)
        raise checker.error(e.loc, f"The func builtin can not be used with '{provider}' probes")
    if name == "retval":
        if ctx.retval is None:
            raise checker.error(
                e.loc,
                "The retval builtin can only be used with 'kretprobe' and 'uretprobe' and "
                "'kfunc' probes"
                + (" (try to use args->ret instead)" if provider == "tracepoint" else ""),
            )
        if provider in _UPROBES:
            return SizedType(ctx.retval.kind, ctx.retval.size, ctx.retval.signed, user=True)
        return ctx.retval
    if name == "args":
        if ctx.args is None:
            raise checker.error(e.loc, f"The args builtin can not be used with '{provider}' probes")
        return SizedType(Kind.CTX)
    if name == "ctx":
        if provider == "tracepoint":
            raise checker.error(e.loc, "Use args instead of ctx in tracepoint")
        return SizedType(Kind.CTX)
    match = _ARG.fullmatch(name)
    if match:
        stack = match.group(1) == "s"
        if stack and provider not in (*_KPROBES, "uprobe", "uretprobe"):
            raise checker.error(
                e.loc, f"The {name} builtin can only be used with 'kprobes' and 'uprobes' probes"
            )
        if not stack and provider not in (*_KPROBES, *_UPROBES):
            raise checker.error(
                e.loc,
                f"The {name} builtin can only be used with 'kprobes', 'uprobes' and 'usdt' probes",
            )
        if provider in _UPROBES:
            return SizedType(Kind.INT, 8, False, user=True)  # addresses in the probed process
        if ctx.via_fentry and int(match.group(2)) >= ctx.nargs:
            raise checker.error(
                e.loc,
                f"{ctx.spec.func} has {ctx.nargs} arguments: {name} does not exist "
                "(kprobes run as fentry here, which sees only the declared arguments)",
            )
        return int_type(8, False)
    return checker.identifier(ast.Identifier(e.loc, name))
