"""What the parts of a program's writer share: the state of one program
and the methods one part calls in another. :class:`~.codegen.FunctionWriter`
puts the parts together (:mod:`.codegen_expr`, :mod:`.codegen_calls`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from . import ast
from .program_info import ProbeContext
from .types import SizedType

if TYPE_CHECKING:
    from .codegen_state import Generator

__all__ = ["WriterBase"]


class WriterBase:
    gen: Generator
    context: ProbeContext
    lines: list[str]

    def line(self, text: str) -> None:
        raise NotImplementedError

    def capture(self) -> contextlib.AbstractContextManager[list[str]]:
        raise NotImplementedError

    def temp(self, decl: str, init: str | None = None) -> str:
        raise NotImplementedError

    def value(self, e: ast.Expr) -> str:
        raise NotImplementedError

    def lvalue(self, e: ast.Expr) -> str:
        raise NotImplementedError

    def store(self, dest: str, dest_ty: SizedType, e: ast.Expr, fresh: bool = False) -> None:
        raise NotImplementedError

    def read(self, c_type: str, address: str, user: bool | None = False, loc: object = None) -> str:
        raise NotImplementedError

    def checked(self, helper: str, call: str, loc: object, failed: str = "< 0") -> None:
        """Writes ``call``; with ``-k``/``-kk`` a result ``failed`` reports
        the helper's failure at ``loc`` (a record the runtime prints)."""
        site = self.gen.helper_error_site(helper, loc) if loc is not None else None
        if site is None:
            self.line(f"{call};")
            return
        self.line("{")
        self.line(f"\tlong nn_rc = {call};")
        self.line(f"\tif (nn_rc {failed}) {{ struct {site.c_struct} *nn_e = nn_reserve();")
        self.line(f"\t\tif (nn_e) {{ nn_e->nn_id = {site.id}; nn_e->a0 = nn_rc;")
        self.line("\t\t\tbpf_ringbuf_submit(nn_e, BPF_RB_NO_WAKEUP); } }")
        self.line("}")

    def copy_string(self, dest: str, dest_size: int, src: str, src_size: int, fresh: bool) -> None:
        raise NotImplementedError

    def key(self, node: ast.Map, bucket: str | None = None) -> str:
        raise NotImplementedError

    def map_read(self, node: ast.Map) -> str:
        raise NotImplementedError

    def map_read_into(self, dest: str, dest_type: str, node: ast.Map, fresh: bool) -> None:
        raise NotImplementedError

    def delete(self, node: ast.Expr, loc: object = None) -> None:
        raise NotImplementedError

    def builtin(self, e: ast.Builtin) -> str:
        raise NotImplementedError

    def call_value(self, e: ast.Call) -> str:
        raise NotImplementedError

    def store_special(self, dest: str, ty: SizedType, e: ast.Expr) -> bool:
        raise NotImplementedError

    def read_string(self, dest: str, size: int, e: ast.Call, fresh: bool) -> None:
        raise NotImplementedError


_ = Iterator  # the capture() context yields the captured lines
