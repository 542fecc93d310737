"""What the checker's parts share: the state of one check and the methods
one part calls in another. :class:`~.check.Checker` puts the parts
together; each part (:mod:`.check_expr`, :mod:`.check_calls`) derives from
this base so every call between them is typed."""

from __future__ import annotations

from . import ast
from .diagnostics import Location, Source
from .kernel import Kernel
from .program_info import MapInfo, ProbeContext, ProgramInfo
from .types import SizedType

__all__ = ["CheckerBase"]


def _plural(n: int) -> str:
    return "argument" if n == 1 else "arguments"


class CheckerBase:
    source: Source
    kernel: Kernel
    info: ProgramInfo
    has_child: bool
    #: the first of the two passes, which learns the maps' types
    tentative: bool
    context: ProbeContext | None
    variables: dict[str, SizedType]
    constants: dict[int, int]
    byte_constants: dict[int, bytes]
    #: the maps' (keys, value) from the first pass
    learned: dict[str, tuple[tuple[SizedType, ...] | None, SizedType | None]]

    @property
    def ctx(self) -> ProbeContext:
        assert self.context is not None
        return self.context

    def error(self, loc: Location | None, message: str) -> Exception:
        raise NotImplementedError

    def expr(self, e: ast.Expr, statement: bool = False) -> SizedType:
        raise NotImplementedError

    def call(self, e: ast.Call, statement: bool) -> SizedType:
        raise NotImplementedError

    def constant_int(self, e: ast.Expr, what: str) -> int:
        raise NotImplementedError

    def map_info(self, node: ast.Map) -> MapInfo:
        raise NotImplementedError

    def variable(self, var: ast.Var) -> SizedType:
        raise NotImplementedError

    def identifier(self, e: ast.Identifier) -> SizedType:
        raise NotImplementedError

    # -- a call's arguments, checked alike by every part -------------------------

    def nargs(self, e: ast.Call, low: int, high: int | None = None) -> None:
        high = low if high is None else high
        n = len(e.args)
        if low <= n <= high:
            return
        if low == high:
            raise self.error(e.loc, f"{e.name}() requires {low} {_plural(low)} ({n} provided)")
        if n < low:
            raise self.error(
                e.loc, f"{e.name}() requires at least {low} {_plural(low)} ({n} provided)"
            )
        raise self.error(e.loc, f"{e.name}() takes up to {high} {_plural(high)} ({n} provided)")

    def int_arg(self, e: ast.Call, i: int) -> SizedType:
        ty = self.expr(e.args[i])
        if not ty.is_integer_like:
            raise self.error(
                e.args[i].loc,
                f"{e.name}() only supports integer arguments ({ty.name} provided)",
            )
        return ty

    def string_literal(self, e: ast.Call, i: int, what: str = "first") -> str:
        arg = e.args[i]
        self.expr(arg)
        if isinstance(arg, ast.Str):
            return arg.value
        if isinstance(arg, ast.Param) and 0 < arg.index <= len(self.info.params):
            return self.info.params[arg.index - 1]
        if isinstance(arg, ast.Call) and arg.name == "str" and isinstance(arg.args[0], ast.Str):
            return arg.args[0].value  # str($1), made a literal
        raise self.error(arg.loc, f"{e.name}() expects a string literal as the {what} argument")
