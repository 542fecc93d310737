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


class CheckerBase:
    source: Source
    kernel: Kernel
    info: ProgramInfo
    has_child: bool
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
