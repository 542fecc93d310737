"""Typing the functions that compute a value: ``str()``, ``buf()``,
``ksym()``, ``kaddr()`` and ``cgroupid()`` (known when checking), ``ntop()``
and ``pton()``, string comparison, stacks, ``strftime()``, ``bswap()``."""

from __future__ import annotations

import os

from . import ast
from .builtins import DEFAULT_STACK_DEPTH
from .check_base import CheckerBase
from .types import DEFAULT_STRLEN, Kind, SizedType, int_type

__all__ = ["ValueChecker"]

#: Frames kept by kstack(n)/ustack(n) at most.
MAX_STACK_DEPTH = 1024


class ValueChecker(CheckerBase):
    def call_str(self, e: ast.Call) -> SizedType:
        self.nargs(e, 1, 2)
        first = e.args[0]
        if (
            isinstance(first, ast.Binop)
            and first.op == "+"
            and isinstance(first.left, ast.Param)
            and isinstance(first.right, ast.Int)
            and first.left.index > 0
        ):
            # str($1 + n): the parameter's text from byte n on, as bpftrace
            # reads a word given for a number as a string's address
            params = self.info.params
            index = first.left.index
            text = params[index - 1] if index <= len(params) else ""
            e.args[0] = ast.Str(first.loc, text[first.right.value :])
            return self.expr(e.args[0])
        if isinstance(first, ast.Param) and first.index > 0:
            # str($1): the parameter's text, whatever it is
            params = self.info.params
            text = params[first.index - 1] if first.index <= len(params) else ""
            e.args[0] = ast.Str(first.loc, text)
            return self.expr(e.args[0])
        ty = self.expr(first)
        if isinstance(first, ast.Str):
            return ty  # str($1), already made a literal by the first pass
        if not ty.is_integer_like and ty.kind is not Kind.ARRAY:
            raise self.error(
                e.loc,
                "str() expects an integer or a pointer type as first argument "
                f"({ty.name} provided)",
            )
        size = DEFAULT_STRLEN
        if len(e.args) == 2:
            if isinstance(e.args[1], (ast.Int, ast.Param)):
                size = min(self.constant_int(e.args[1], "str()") + 1, DEFAULT_STRLEN)
            else:
                self.int_arg(e, 1)
        return SizedType(Kind.STRING, size)

    def call_buf(self, e: ast.Call) -> SizedType:
        self.nargs(e, 1, 2)
        ty = self.expr(e.args[0])
        if len(e.args) == 2:
            self.int_arg(e, 1)
            length = (
                self.constant_int(e.args[1], "buf()")
                if isinstance(e.args[1], ast.Int)
                else DEFAULT_STRLEN
            )
        elif ty.kind is Kind.ARRAY or ty.kind is Kind.STRING:
            length = ty.size
        else:
            raise self.error(e.loc, "buf() expects a length argument for non-array type")
        return SizedType(Kind.BUFFER, min(length, DEFAULT_STRLEN))

    def call_ksym(self, e: ast.Call) -> SizedType:
        self.nargs(e, 1)
        self.int_arg(e, 0)
        return SizedType(Kind.KSYM, 8)

    def call_usym(self, e: ast.Call) -> SizedType:
        self.nargs(e, 1)
        self.int_arg(e, 0)
        return SizedType(Kind.USYM, 16)

    def call_kaddr(self, e: ast.Call) -> SizedType:
        self.nargs(e, 1)
        name = self.string_literal(e, 0)
        address = self.kernel.kaddr(name)
        if address is None:
            raise self.error(e.loc, f"Failed to resolve kernel symbol: {name}")
        self.constants[id(e)] = address
        return int_type(8, False)

    def call_cgroupid(self, e: ast.Call) -> SizedType:
        self.nargs(e, 1)
        path = self.string_literal(e, 0)
        try:
            self.constants[id(e)] = os.stat(path).st_ino
        except OSError as err:
            raise self.error(e.loc, f"cgroupid(): cannot stat {path}: {err.strerror}") from None
        return int_type(8, False)

    def call_ntop(self, e: ast.Call) -> SizedType:
        self.nargs(e, 1, 2)
        for i, arg in enumerate(e.args):
            ty = self.expr(arg)
            last = i == len(e.args) - 1
            if not (ty.is_integer_like or (last and ty.kind in (Kind.ARRAY, Kind.STRING))):
                raise self.error(
                    arg.loc, f"ntop() expects an integer or array argument, got {ty.name}"
                )
        return SizedType(Kind.INET, 24)

    def call_strncmp(self, e: ast.Call) -> SizedType:
        self.nargs(e, 3)
        for i in (0, 1):
            ty = self.expr(e.args[i])
            if ty.kind is not Kind.STRING:
                raise self.error(
                    e.args[i].loc, f"strncmp() expects a string argument ({ty.name} provided)"
                )
        self.constant_int(e.args[2], "strncmp()")
        return int_type(8, False)

    def call_strftime(self, e: ast.Call) -> SizedType:
        self.nargs(e, 2)
        fmt = self.string_literal(e, 0)
        self.int_arg(e, 1)
        formats = self.info.strftime_formats
        if fmt not in formats:
            formats.append(fmt)
        return SizedType(Kind.TIMESTAMP, 8, params=(formats.index(fmt),))

    def call_kstack(self, e: ast.Call) -> SizedType:
        return self.stack(e, user=False)

    def call_ustack(self, e: ast.Call) -> SizedType:
        return self.stack(e, user=True)

    def stack(self, e: ast.Call, user: bool) -> SizedType:
        self.nargs(e, 0, 2)
        depth, mode = DEFAULT_STACK_DEPTH, 0
        for arg in e.args:
            if isinstance(arg, ast.Builtin) and arg.name in ("bpftrace", "perf", "raw"):
                mode = ("bpftrace", "perf", "raw").index(arg.name)
                arg.type = int_type()
            else:
                depth = self.constant_int(arg, e.name)
                if not 1 <= depth <= MAX_STACK_DEPTH:
                    raise self.error(
                        arg.loc, f"{e.name}() depth must be between 1 and {MAX_STACK_DEPTH}"
                    )
        self.info.stacks.add((user, depth))
        return SizedType(Kind.USTACK if user else Kind.KSTACK, 8, count=depth, params=(mode,))

    def call_strcontains(self, e: ast.Call) -> SizedType:
        self.nargs(e, 2)
        for arg in e.args:
            ty = self.expr(arg)
            if ty.kind is not Kind.STRING:
                raise self.error(
                    arg.loc, f"strcontains() expects string arguments ({ty.name} provided)"
                )
        return int_type(8, False)

    def call_pton(self, e: ast.Call) -> SizedType:
        """An address written as text, as its bytes (known when checking)."""
        import ipaddress

        self.nargs(e, 1)
        text = self.string_literal(e, 0)
        try:
            packed = ipaddress.ip_address(text).packed
        except ValueError:
            raise self.error(
                e.loc, f"pton() expects a valid IPv4 or IPv6 address: {text!r}"
            ) from None
        self.byte_constants[id(e)] = packed
        return SizedType(Kind.ARRAY, len(packed), elem=int_type(1, False), count=len(packed))

    def call_bswap(self, e: ast.Call) -> SizedType:
        self.nargs(e, 1)
        ty = self.expr(e.args[0])
        if ty.kind is not Kind.INT:
            raise self.error(e.loc, f"bswap() only supports integer arguments ({ty.name} provided)")
        return ty

    def call_macaddr(self, e: ast.Call) -> SizedType:
        self.nargs(e, 1)
        ty = self.expr(e.args[0])
        if not (ty.is_integer_like or ty.kind is Kind.ARRAY):
            raise self.error(
                e.loc, f"macaddr() expects an array or pointer argument ({ty.name} provided)"
            )
        return SizedType(Kind.MAC, 6)

    def call_cgroup_path(self, e: ast.Call) -> SizedType:
        self.nargs(e, 1, 2)
        self.int_arg(e, 0)
        return SizedType(Kind.CGROUP_PATH, 8)

    def call_strerror(self, e: ast.Call) -> SizedType:
        self.nargs(e, 1)
        self.int_arg(e, 0)
        return SizedType(Kind.STRERROR, 8)

    def call_uptr(self, e: ast.Call) -> SizedType:
        self.nargs(e, 1)
        ty = self.expr(e.args[0])
        return SizedType(ty.kind, ty.size, ty.signed, ty.elem, ty.count, user=True)

    def call_kptr(self, e: ast.Call) -> SizedType:
        self.nargs(e, 1)
        ty = self.expr(e.args[0])
        return SizedType(ty.kind, ty.size, ty.signed, ty.elem, ty.count)
