"""The checker: names, types and map kinds of a parsed script, with
bpftrace's rules and messages. It walks each probe block once per concrete
probe (a block with several attach points, or a wildcard, is several
programs), types every expression, and records what the code generator and
the runtime need in a :class:`~.program_info.ProgramInfo`.

Expressions are typed in :mod:`.check_expr`, calls in :mod:`.check_calls`;
here are probes, statements, variables and maps.
"""

from __future__ import annotations

import contextlib

from ..errors import ScriptError
from . import ast
from .check_calls import CallChecker
from .check_expr import ExprChecker
from .check_values import ValueChecker
from .diagnostics import Location, Source, fail
from .kernel import Kernel
from .probe_contexts import make_contexts
from .program_info import MapInfo, ProbeContext, ProgramInfo, expression_name
from .types import AGGREGATIONS, Kind, SizedType, int_type

__all__ = ["check"]


class Checker(ExprChecker, CallChecker, ValueChecker):
    def __init__(
        self,
        program: ast.Program,
        source: Source,
        kernel: Kernel,
        params: list[str],
        unsafe: bool,
        has_child: bool,
    ) -> None:
        self.program = program
        self.source = source
        self.kernel = kernel
        self.info = ProgramInfo(program, params=list(params), unsafe=unsafe)
        self.has_child = has_child
        self.context: ProbeContext | None = None
        self.variables: dict[str, SizedType] = {}
        self.assigned: set[str] = set()
        self.loop_depth = 0
        #: values known when checking: sizeof, kaddr(), cgroupid(), by node id
        self.constants = self.info.constants
        self.byte_constants = self.info.byte_constants
        self.tentative = False
        #: the maps' (keys, value) from the first pass
        self.learned: dict[str, tuple[tuple[SizedType, ...] | None, SizedType | None]] = {}

    def error(self, loc: Location | None, message: str) -> Exception:
        return fail(self.source, loc, message)

    # -- probes ------------------------------------------------------------------------

    def run(self) -> ProgramInfo:
        # A map may be read in one probe and assigned in a later one, so a
        # first pass learns the maps' types (its errors may come from types
        # not yet known, and are left to the second pass to raise).
        contexts = {p.index: make_contexts(self, p, 0) for p in self.program.probes}
        self.tentative = True
        for probe in self.program.probes:
            with contextlib.suppress(ScriptError):
                self.check_probe(probe, contexts[probe.index])
        learned = {name: (m.key_types, m.value) for name, m in self.info.maps.items()}
        self.info.maps.clear()
        self.info.sites.clear()
        self.info.variables.clear()
        self.info.stacks.clear()
        self.tentative = False
        self.learned = learned
        index = 0
        for probe in self.program.probes:
            for context in contexts[probe.index]:
                context.index = index
                index += 1
            self.check_probe(probe, contexts[probe.index])
            self.info.contexts.extend(contexts[probe.index])
        self.context = None
        for info in self.info.maps.values():
            if info.value is None:
                # A map only read or deleted from holds integers, as in bpftrace.
                info.value = int_type()
            if info.key_types is None:
                info.key_types = ()
        return self.info

    def check_probe(self, probe: ast.Probe, contexts: list[ProbeContext]) -> None:
        self.variables = self.info.variables.setdefault(probe.index, {})
        for context in contexts:
            self.context = context
            self.assigned = set()
            if probe.predicate is not None:
                self.condition(probe.predicate, "predicate")
            self.block(probe.body)

    @property
    def ctx(self) -> ProbeContext:
        assert self.context is not None
        return self.context

    # -- statements ----------------------------------------------------------------------

    def block(self, block: ast.Block) -> None:
        for stmt in block.stmts:
            self.statement(stmt)

    def statement(self, stmt: ast.Stmt) -> None:
        if isinstance(stmt, ast.ExprStmt):
            if isinstance(stmt.expr, ast.Ternary):
                # `c ? printf("a") : printf("b")`: both sides are statements
                ternary = stmt.expr
                self.condition(ternary.cond, "ternary condition")
                then = self.expr(ternary.then, statement=True)
                otherwise = self.expr(ternary.otherwise, statement=True)
                ternary.type = then if then.kind is otherwise.kind else otherwise
                return
            self.expr(stmt.expr, statement=True)
        elif isinstance(stmt, ast.AssignVar):
            self.assign_var(stmt)
        elif isinstance(stmt, ast.AssignMap):
            self.assign_map(stmt)
        elif isinstance(stmt, ast.If):
            self.condition(stmt.cond, "if condition")
            self.block(stmt.then)
            if stmt.otherwise is not None:
                self.block(stmt.otherwise)
        elif isinstance(stmt, ast.Unroll):
            count = self.constant_int(stmt.count, "unroll")
            if count > 100:
                raise self.error(stmt.loc, "unroll maximum value is 100")
            if count < 1:
                raise self.error(stmt.loc, "unroll minimum value is 1")
            self.block(stmt.body)
        elif isinstance(stmt, ast.While):
            self.condition(stmt.cond, "while condition")
            self.loop_depth += 1
            self.block(stmt.body)
            self.loop_depth -= 1
        elif isinstance(stmt, ast.Jump) and stmt.kind != "return" and not self.loop_depth:
            raise self.error(stmt.loc, f"{stmt.kind} statement is not allowed outside a loop")

    def condition(self, expr: ast.Expr, what: str) -> None:
        ty = self.expr(expr)
        if not (ty.is_integer_like or (ty.kind is Kind.STRING and what == "predicate")):
            raise self.error(expr.loc, f"Invalid type for {what}: {ty.name}")

    def assign_var(self, stmt: ast.AssignVar) -> None:
        name = stmt.var.name
        if stmt.op is not None:
            current = self.variable(stmt.var)
            value = self.expr(stmt.expr)
            self.arithmetic(stmt.op, current, value, stmt.loc)
            stmt.var.type = current
            return
        value = self.expr(stmt.expr)
        if value.kind is Kind.NONE:
            raise self.error(stmt.expr.loc, f"Value of type none cannot be assigned to {name}")
        if value.is_aggregation:
            raise self.error(
                stmt.expr.loc,
                f"{value.name}() should be assigned to a map, not a variable",
            )
        previous = self.variables.get(name)
        merged = self.unify(previous, value, stmt.loc, f"Type mismatch for {name}", "variable")
        self.variables[name] = merged
        self.assigned.add(name)
        stmt.var.type = merged

    def variable(self, var: ast.Var) -> SizedType:
        ty = self.variables.get(var.name)
        if ty is None:
            raise self.error(var.loc, f"Undefined or undeclared variable: {var.name}")
        var.type = ty
        return ty

    def unify(
        self, previous: SizedType | None, value: SizedType, loc: Location, prefix: str, holder: str
    ) -> SizedType:
        """The type a variable or map keeps when ``value`` is stored where
        ``previous`` was: integers stay integers, strings grow to the longest,
        tuples field by field; anything else must match."""
        if previous is None:
            if value.kind is Kind.INT and holder == "map":
                return int_type(8, value.signed)  # map values are 64-bit
            return value  # a variable keeps its integer's size (bpftrace's $x = (uint8)255)
        if previous.kind is Kind.INT and value.kind is Kind.INT:
            return previous
        if previous.kind is Kind.STRING and value.kind is Kind.STRING:
            return previous if previous.size >= value.size else value
        if (
            previous.kind is Kind.TUPLE
            and value.kind is Kind.TUPLE
            and len(previous.fields) == len(value.fields)
        ):
            fields = tuple(
                self.unify(p, v, loc, prefix, holder) for p, v in zip(previous.fields, value.fields)
            )
            return SizedType(Kind.TUPLE, fields=fields)
        if previous.kind is Kind.BUFFER and value.kind is Kind.BUFFER:
            return previous if previous.size >= value.size else value
        if previous.is_pointer and value.kind is Kind.INT:
            return previous
        if previous == value or (
            previous.kind is value.kind and previous.kind not in (Kind.POINTER, Kind.RECORD)
        ):
            return previous
        if previous.kind is Kind.POINTER and value.kind is Kind.POINTER:
            return previous
        # bpftrace's own words, its missing quote after a map's type included.
        close = "'" if holder == "variable" else ""
        raise self.error(
            loc,
            f"{prefix}: trying to assign value of type '{value.name}' when {holder} already "
            f"contains a value of type '{previous.name}{close}",
        )

    # -- maps --------------------------------------------------------------------------

    def map_info(self, node: ast.Map) -> MapInfo:
        info = self.info.maps.get(node.name)
        if info is None:
            info = MapInfo(node.name, len(self.info.maps), node.loc)
            self.info.maps[node.name] = info
            info.value = self.learned.get(node.name, (None, None))[1]
        keys = tuple(self.key_type(key) for key in node.keys)
        if info.key_types is None:
            info.key_types = keys
            info.key_names = tuple(expression_name(key, i) for i, key in enumerate(node.keys))
        elif len(info.key_types) != len(keys) or not all(
            self.same_key_kind(a, b) for a, b in zip(info.key_types, keys)
        ):
            have = ", ".join(t.name for t in keys)
            want = ", ".join(t.name for t in info.key_types)
            raise self.error(
                node.loc,
                f"Argument mismatch for {node.name}: trying to access with arguments: [{have}] "
                f"when map expects arguments: [{want}]",
            )
        else:
            info.key_types = tuple(
                self.unify(a, b, node.loc, f"Key type mismatch for {node.name}", "map")
                for a, b in zip(info.key_types, keys)
            )
        return info

    def key_type(self, key: ast.Expr) -> SizedType:
        ty = self.expr(key)
        if ty.is_aggregation or ty.kind in (Kind.NONE, Kind.RECORD, Kind.CTX):
            raise self.error(key.loc, f"{ty.name} cannot be used as a map key")
        if ty.kind is Kind.INT:
            return int_type(8, ty.signed)
        if ty.kind is Kind.POINTER:
            return int_type(8, False)
        return ty

    @staticmethod
    def same_key_kind(a: SizedType, b: SizedType) -> bool:
        return a.kind is b.kind

    def assign_map(self, stmt: ast.AssignMap) -> None:
        info = self.map_info(stmt.map)
        if stmt.op is not None:
            value = self.expr(stmt.expr)
            current = info.value or int_type()
            if current.is_aggregation or current.kind not in (Kind.INT, Kind.POINTER):
                raise self.error(
                    stmt.loc, f"{stmt.map.name} holds {current.name}: cannot use {stmt.op}="
                )
            self.arithmetic(stmt.op, current, value, stmt.loc)
            info.value = current
            stmt.map.type = current
            return
        value = self.expr(stmt.expr)
        if value.kind is Kind.NONE:
            raise self.error(stmt.expr.loc, f"Value of type none cannot be assigned to {info.name}")
        if value.is_aggregation:
            if info.value is not None and (
                info.value.kind is not value.kind or info.value.params != value.params
            ):
                raise self.error(
                    stmt.map.loc,
                    f"Type mismatch for {info.name}: trying to assign value of type "
                    f"'{value.name}' when map already contains a value of type '{info.value.name}",
                )
            info.value = value
        else:
            if info.value is not None and info.value.kind in AGGREGATIONS:
                raise self.error(
                    stmt.map.loc,
                    f"Type mismatch for {info.name}: trying to assign value of type "
                    f"'{value.name}' when map already contains a value of type '{info.value.name}",
                )
            info.value = self.unify(
                info.value, value, stmt.map.loc, f"Type mismatch for {info.name}", "map"
            )
        stmt.map.type = info.value


def check(
    program: ast.Program,
    source: Source,
    kernel: Kernel,
    params: list[str] | None = None,
    unsafe: bool = False,
    has_child: bool = False,
) -> ProgramInfo:
    """Types a parsed script; raises ScriptError with bpftrace's messages."""
    return Checker(program, source, kernel, params or [], unsafe, has_child).run()
