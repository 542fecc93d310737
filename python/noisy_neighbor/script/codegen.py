"""The C a checked script becomes: its maps, its event rings, one program per
concrete probe, for clang and the SDK (vmlinux.h and libbpf's headers), so
CO-RE relocates every kernel field and BTF describes every map and record
the runtime reads back.

:class:`Generator` writes the file; :class:`FunctionWriter` one program's
body (expressions in :mod:`.codegen_expr`, calls in :mod:`.codegen_calls`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from . import ast
from .codegen_base import WriterBase
from .codegen_calls import CallWriter
from .codegen_expr import ExprWriter
from .codegen_maps import MapWriter
from .codegen_records import declare_maps, declare_records, tracepoint_struct
from .codegen_types import SCALAR_KINDS, CTypes
from .kernel import Kernel
from .program_info import ProbeContext, ProgramInfo, Site
from .types import Kind, SizedType

__all__ = ["STATEMENT_MARK", "Generator", "generate"]

#: Marks the C of each statement with the statement's place in the script.
STATEMENT_MARK = "script"

_PROGRAM_ARGS = {
    "syscall": "void *ctx",
    "tp": "{ctx_struct} *args",
    "raw_tp": "u64 *ctx",
    "fentry": "u64 *ctx",
    "fexit": "u64 *ctx",
    "kprobe": "struct pt_regs *ctx",
    "kretprobe": "struct pt_regs *ctx",
    "uprobe": "struct pt_regs *ctx",
    "uretprobe": "struct pt_regs *ctx",
    "perf_event": "struct bpf_perf_event_data *ctx",
}


class Generator:
    def __init__(self, info: ProgramInfo, kernel: Kernel) -> None:
        self.info = info
        self.kernel = kernel
        self.types = CTypes()
        self.probe_names: list[str] = []
        self.sites_by_node: dict[int, Site] = {}
        self.stack_maps: dict[tuple[bool, int], str] = {}

    # -- shared lookups ------------------------------------------------------------------

    def var_name(self, name: str) -> str:
        return f"v_{name.lstrip('$')}"

    def probe_id(self, name: str) -> int:
        if name not in self.probe_names:
            self.probe_names.append(name)
        return self.probe_names.index(name)

    def site_of(self, e: ast.Call) -> Site:
        for site in self.info.sites:
            if site.loc == e.loc and (site.kind == e.name or site.kind.startswith(e.name)):
                return site
        raise AssertionError(f"no site for {e.name}() at {e.loc}")

    def stack_map(self, user: bool, depth: int) -> str:
        return f"nn_stack_{'u' if user else 'k'}_{depth}"

    def param_int(self, e: ast.Param) -> int:
        params = self.info.params
        if e.index == -1:
            return len(params)
        from .check_expr import param_int

        text = params[e.index - 1] if e.index <= len(params) else "0"
        return param_int(text or "0") or 0

    def info_const_int(self, e: ast.Expr) -> int:
        if isinstance(e, ast.Int):
            return e.value
        if isinstance(e, ast.Param):
            return self.param_int(e)
        raise AssertionError("not a constant")

    def enum_value(self, e: ast.Identifier) -> int:
        value = self.kernel.enum_value(e.name)
        assert value is not None
        return value

    def func_address(self, name: str) -> int:
        return self.kernel.kaddr(name) or 0

    def step(self, ty: SizedType | None) -> int:
        """What ``++`` and ``+= 1`` add: 1, or a pointer's target size."""
        if ty is not None and ty.kind is Kind.POINTER and ty.elem is not None:
            return max(self.sizeof(ty.elem), 1)
        return 1

    def sizeof(self, ty: SizedType) -> int:
        if ty.kind is Kind.RECORD:
            return self.kernel.sizeof(ty.struct) or 0
        if ty.kind is Kind.POINTER:
            return 8
        return ty.size

    def int_c(self, ty: SizedType, size: int) -> str:
        signed = ty.kind is Kind.INT and ty.signed
        return f"{'s' if signed else 'u'}{min(size, 8) * 8 if size in (1, 2, 4, 8) else 64}"

    def c_struct(self, name: str) -> str:
        return self.kernel.c_struct_name(name)

    def is_bitfield(self, record_or_pointer: SizedType, member: str) -> bool:
        record = (
            record_or_pointer.elem if record_or_pointer.kind is Kind.POINTER else record_or_pointer
        )
        return record is not None and self.kernel.is_bitfield(record.struct, member)

    @staticmethod
    def bucket_count(info) -> int:
        """Buckets of a hist or lhist map (what delete() must remove)."""
        from .types import HIST_BUCKETS

        if info.value.kind is Kind.HIST:
            return HIST_BUCKETS
        low, high, step = info.value.params
        return (high - low) // step + 2

    @staticmethod
    def mask(size: int) -> int:
        return (1 << max(size - 1, 1).bit_length()) - 1

    @staticmethod
    def c_string(data: bytes) -> str:
        out = []
        for byte in data:
            ch = chr(byte)
            if ch in '\\"':
                out.append("\\" + ch)
            elif 32 <= byte < 127:
                out.append(ch)
            else:
                out.append(f"\\{byte:03o}")
        return '"' + "".join(out) + '"'

    def arg_value(self, writer: WriterBase, e: ast.Field) -> str:
        arg = writer.context.args[e.name]  # type: ignore[index]
        ty = arg.type
        if arg.data_loc:
            return f"((u64)args + ({arg.c_expr} & 0xffff))"
        if ty.kind is Kind.INT:
            return f"(({'s64' if ty.signed else 'u64'}){arg.c_expr})"
        if (
            ty.kind in (Kind.ARRAY, Kind.RECORD, Kind.STRING)
            and writer.context.spec.provider == "tracepoint"
        ):
            return f"((u64)&{arg.c_expr})"
        return f"((u64){arg.c_expr})"

    def arg_is_data_loc(self, writer: WriterBase, e: ast.Field) -> bool:
        return writer.context.args[e.name].data_loc  # type: ignore[index]

    # -- the file ------------------------------------------------------------------------

    def generate(self) -> str:
        # Programs in reverse: libbpf attaches them in the object's order, and
        # a perf event runs the newest first; bpftrace attaches in reverse so
        # probes on one event run in the script's order.
        bodies = [self.program(context) for context in reversed(self.info.contexts)]
        for user, depth in sorted(self.info.stacks):
            self.stack_maps[(user, depth)] = self.stack_map(user, depth)
        records = declare_records(self)
        maps = declare_maps(self)
        head = [
            "/* Generated by noisy-neighbor from a bpftrace-language script. */",
            '#include "vmlinux.h"',
            "#include <bpf/bpf_helpers.h>",
            "#include <bpf/bpf_tracing.h>",
            "#include <bpf/bpf_core_read.h>",
            '#include "nn.bpf.h"',
            "",
            "const volatile u64 nn_start_ns = 0;",
            "const volatile u64 nn_cpid = 0;",
            f"u64 nn_map_errors[{max(len(self.info.maps), 1)}];",
            "u64 nn_lost_events;",
            "/* Set by exit(): every probe but END returns at once after it, so no",
            " * output follows exit() but END's. */",
            "u64 nn_exited;",
            '#include "nn_bpftrace.bpf.h"',
            "",
            *self.kernel.user_definitions(self.info.program.definitions),
            *self.types.declarations,
            *records,
            *maps,
            "",
            "static __always_inline void *nn_reserve(void)",
            "{",
            "\tu32 cpu = bpf_get_smp_processor_id();",
            "\tvoid *ring = bpf_map_lookup_elem(&nn_events, &cpu);",
            "\tvoid *record = ring ? bpf_ringbuf_reserve(ring, sizeof(struct nn_event), 0) : 0;",
            "",
            "\tif (!record)",
            "\t\t__sync_fetch_and_add(&nn_lost_events, 1);",
            "\treturn record;",
            "}",
            "",
        ]
        tail = ['char LICENSE[] SEC("license") = "GPL";', ""]
        return "\n".join([*head, *bodies, *tail])

    def program(self, context: ProbeContext) -> str:
        prefix = context.section.split("/")[0]
        params = _PROGRAM_ARGS[prefix]
        out = []
        if prefix == "tp":
            out.append(tracepoint_struct(self, context))
            params = params.format(ctx_struct=f"struct {context.ctx_struct}")
        writer = FunctionWriter(self, context)
        writer.body()
        out.append(f'SEC("{context.section}")')
        out.append(f"int {context.c_name}({params})")
        out.append("{")
        if prefix == "tp":
            out.append("\tvoid *ctx = args;")
        if context.spec.provider != "END":
            out.append("\tif (nn_exited)\n\t\treturn 0;")
        out.extend(writer.declarations)
        out.extend(writer.lines)
        out.append("\treturn 0;")
        out.append("}")
        out.append("")
        return "\n".join(out)


class FunctionWriter(ExprWriter, CallWriter, MapWriter):
    """One program's body: its variables, then its predicate and statements,
    each statement in a block of its own so its temporaries are scoped."""

    def __init__(self, gen: Generator, context: ProbeContext) -> None:
        self.gen = gen
        self.context = context
        self.declarations: list[str] = []
        self.lines: list[str] = []
        self.depth = 1
        self.temps = 0

    def line(self, text: str) -> None:
        self.lines.append("\t" * self.depth + text)

    @contextlib.contextmanager
    def capture(self) -> Iterator[list[str]]:
        """Collects the lines a sub-expression writes, to place them under a
        condition (the right side of ``&&``, a branch of ``?:``)."""
        saved, self.lines = self.lines, []
        captured = self.lines
        self.depth += 1
        try:
            yield captured
        finally:
            self.depth -= 1
            self.lines = saved

    def temp(self, decl: str, init: str | None = None) -> str:
        """Declares a temporary (``decl`` is a C type, or a declarator with
        ``{}`` for the name) zeroed or set to ``init``; returns its name."""
        name = f"t{self.temps}"
        self.temps += 1
        declarator = decl.format(name) if "{}" in decl else f"{decl} {name}"
        if init is None:
            self.line(f"{declarator};")
            self.line(f"__builtin_memset(&{name}, 0, sizeof({name}));")
        else:
            self.line(f"{declarator} = {init};")
        return name

    def body(self) -> None:
        variables = self.gen.info.variables.get(self.context.probe.index, {})
        for name, ty in variables.items():
            c_name = self.gen.var_name(name)
            self.declarations.append(f"\t{self.gen.types.decl(ty, c_name)};")
            self.declarations.append(f"\t__builtin_memset(&{c_name}, 0, sizeof({c_name}));")
        predicate = self.context.probe.predicate
        if predicate is not None:
            loc = predicate.loc
            self.line(f"/* {STATEMENT_MARK} {loc.line}:{loc.column}-{loc.end_column} */")
            self.line("{")
            self.depth += 1
            test = self.truth(predicate)
            self.line(f"if (!({test}))")
            self.line("\treturn 0;")
            self.depth -= 1
            self.line("}")
        self.block(self.context.probe.body)

    def truth(self, e: ast.Expr) -> str:
        ty = e.type
        assert ty is not None
        if ty.kind is Kind.STRING:
            return f"{self.lvalue(e)}[0]"
        return self.value(e)

    def block(self, block: ast.Block) -> None:
        for stmt in block.stmts:
            # where the statement is in the script: a verifier complaint about
            # the C below names it (see load_errors.py)
            loc = stmt.loc
            self.line(f"/* {STATEMENT_MARK} {loc.line}:{loc.column}-{loc.end_column} */")
            self.line("{")
            self.depth += 1
            self.statement(stmt)
            self.depth -= 1
            self.line("}")

    def statement(self, stmt: ast.Stmt) -> None:
        if isinstance(stmt, ast.ExprStmt):
            e = stmt.expr
            if isinstance(e, ast.Ternary) and e.type is not None and e.type.kind is Kind.NONE:
                self.line(f"if ({self.truth(e.cond)}) {{")
                self.statement(ast.ExprStmt(e.then.loc, e.then))
                self.line("} else {")
                self.statement(ast.ExprStmt(e.otherwise.loc, e.otherwise))
                self.line("}")
                return
            if isinstance(e, ast.Call):
                self.call_statement(e)
            elif e.type is not None and e.type.kind in SCALAR_KINDS:
                self.line(f"(void)({self.value(e)});")
            else:
                self.lvalue(e)
        elif isinstance(stmt, ast.AssignVar):
            self.assign_var(stmt)
        elif isinstance(stmt, ast.AssignMap):
            self.assign_map(stmt)
        elif isinstance(stmt, ast.If):
            self.line(f"if ({self.truth(stmt.cond)}) {{")
            self.block(stmt.then)
            if stmt.otherwise is not None:
                self.line("} else {")
                self.block(stmt.otherwise)
            self.line("}")
        elif isinstance(stmt, ast.Unroll):
            for _ in range(self.gen.info_const_int(stmt.count)):
                self.line("{")
                self.block(stmt.body)
                self.line("}")
        elif isinstance(stmt, ast.While):
            self.line("for (;;) {")
            self.depth += 1
            self.line(f"if (!({self.truth(stmt.cond)}))")
            self.line("\tbreak;")
            self.depth -= 1
            self.block(stmt.body)
            self.line("}")
        elif isinstance(stmt, ast.Jump):
            self.line("return 0;" if stmt.kind == "return" else f"{stmt.kind};")

    def assign_var(self, stmt: ast.AssignVar) -> None:
        name = self.gen.var_name(stmt.var.name)
        ty = stmt.var.type
        assert ty is not None
        if stmt.op is not None:
            value = self.value(stmt.expr)
            if stmt.op in ("+", "-") and self.gen.step(ty) != 1:
                value = f"({value}) * {self.gen.step(ty)}"
            if stmt.op in ("/", "%"):
                self.line(f"{name} = (u64){name} {stmt.op} (u64)({value});")
            else:
                self.line(f"{name} {stmt.op}= {value};")
            return
        self.store(name, ty, stmt.expr)


def generate(info: ProgramInfo, kernel: Kernel) -> tuple[str, Generator]:
    """The C of a checked script, and the generator (for the names it chose)."""
    gen = Generator(info, kernel)
    return gen.generate(), gen
