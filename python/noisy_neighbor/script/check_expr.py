"""Typing expressions, with bpftrace's rules: integer arithmetic is 64-bit
(unsigned if either side is), comparisons give int64, string literals are
``string[len+1]``, a ternary of strings is ``string[64]``, ``->`` and ``.``
follow the kernel's BTF, casts keep their size."""

from __future__ import annotations

import dataclasses

from . import ast
from .builtins import builtin_type
from .check_base import CheckerBase
from .parser import INT_TYPE_NAMES
from .types import DEFAULT_STRLEN, Kind, SizedType, int_type, string_type

__all__ = ["ExprChecker"]

_COMPARISONS = {"==", "!=", "<", "<=", ">", ">="}
_ARITHMETIC = {"+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>"}
_INT64_MAX = (1 << 63) - 1


class ExprChecker(CheckerBase):
    def expr(self, e: ast.Expr, statement: bool = False) -> SizedType:
        ty = self._expr(e, statement)
        e.type = ty
        return ty

    def _expr(self, e: ast.Expr, statement: bool) -> SizedType:
        if isinstance(e, ast.Int):
            return int_type(8, e.value <= _INT64_MAX)
        if isinstance(e, ast.Str):
            return string_type(len(e.value.encode()) + 1)
        if isinstance(e, ast.Builtin):
            return builtin_type(self, e)
        if isinstance(e, ast.Identifier):
            return self.identifier(e)
        if isinstance(e, ast.Param):
            return self.param(e)
        if isinstance(e, ast.Var):
            return self.variable(e)
        if isinstance(e, ast.Map):
            return self.map_read(e)
        if isinstance(e, ast.Call):
            return self.call(e, statement)
        if isinstance(e, ast.Binop):
            return self.binop(e)
        if isinstance(e, ast.Unop):
            return self.unop(e)
        if isinstance(e, ast.Ternary):
            return self.ternary(e)
        if isinstance(e, ast.Field):
            return self.field(e)
        if isinstance(e, ast.Index):
            return self.index(e)
        if isinstance(e, ast.Cast):
            return self.cast(e)
        if isinstance(e, ast.Sizeof):
            if isinstance(e.of, ast.TypeSpec):
                self.constants[id(e)] = self.type_size(self.spec_type(e.of), e.loc)
            else:
                self.constants[id(e)] = self.type_size(self.expr(e.of), e.loc)
            return int_type(8, False)
        if isinstance(e, ast.Tuple):
            fields = []
            for elem in e.elems:
                ty = self.expr(elem)
                if ty.is_aggregation or ty.kind is Kind.NONE:
                    raise self.error(elem.loc, f"{ty.name} cannot be part of a tuple")
                fields.append(ty)
            return SizedType(Kind.TUPLE, fields=tuple(fields))
        raise self.error(e.loc, f"unexpected expression {type(e).__name__}")

    # -- names ----------------------------------------------------------------------

    def identifier(self, e: ast.Identifier) -> SizedType:
        value = self.kernel.enum_value(e.name)
        if value is None:
            raise self.error(e.loc, f"Unknown identifier: '{e.name}'")
        return int_type()

    def param(self, e: ast.Param) -> SizedType:
        """``$N`` is an integer (0 if not given); a word given for it must be
        read through ``str($N)``, as bpftrace says."""
        params = self.info.params
        if e.index == -1:
            return int_type()
        if e.index == 0:
            raise self.error(e.loc, "$0 is not a positional parameter: they start at $1")
        text = params[e.index - 1] if e.index <= len(params) else ""
        if text and not _is_integer(text):
            raise self.error(
                e.loc, f'{e.text} used numerically but given "{text}". Try using str({e.text}).'
            )
        return int_type()

    def map_read(self, e: ast.Map) -> SizedType:
        info = self.map_info(e)
        value = info.value
        if value is None and not self.tentative:  # read, but never written anywhere
            raise self.error(e.loc, f"Undefined map: {e.name}")
        if value is None:
            return int_type()
        if value.kind in (Kind.COUNT, Kind.SUM, Kind.MIN, Kind.MAX, Kind.AVG):
            return int_type(8, value.kind is not Kind.COUNT)
        if value.kind in (Kind.HIST, Kind.LHIST, Kind.STATS):
            raise self.error(
                e.loc, f"The map {e.name} holds a {value.name}: it cannot be read here"
            )
        return value

    # -- operators --------------------------------------------------------------------

    def binop(self, e: ast.Binop) -> SizedType:
        left, right = self.expr(e.left), self.expr(e.right)
        op = e.op
        if op in ("&&", "||"):
            for side, ty in ((e.left, left), (e.right, right)):
                if not ty.is_integer_like:
                    raise self.error(
                        side.loc, f"The {op} operator needs integers ({ty.name} given)"
                    )
            return int_type()
        if left.kind is Kind.STRING or right.kind is Kind.STRING:
            if left.kind is not right.kind:
                raise self.error(
                    e.loc,
                    f"Type mismatch for '{op}': comparing '{left.name}' with '{right.name}'",
                )
            if op not in ("==", "!="):
                raise self.error(e.loc, f"The {op} operator can not be used on strings")
            return int_type(8, False)
        aggregate = left.kind in (Kind.BUFFER, Kind.TUPLE) or right.kind in (
            Kind.BUFFER,
            Kind.TUPLE,
        )
        if aggregate and op in ("==", "!=") and left.kind is right.kind:
            return int_type(8, False)
        if not (left.is_integer_like and right.is_integer_like):
            bad = left if not left.is_integer_like else right
            raise self.error(
                e.loc,
                f"Type mismatch for '{op}': comparing '{left.name}' with '{right.name}'"
                if op in _COMPARISONS
                else f"The {op} operator can not be used on expressions of type {bad.name}",
            )
        if op in _COMPARISONS:
            return int_type()
        return self.arithmetic(op, left, right, e.loc)

    def arithmetic(self, op: str, left: SizedType, right: SizedType, loc) -> SizedType:
        if not (left.is_integer_like and right.is_integer_like):
            raise self.error(
                loc, f"The {op} operator needs integers ({left.name} and {right.name} given)"
            )
        if left.is_pointer and op in ("+", "-") and right.kind is Kind.INT:
            return left
        signed = left.signed and right.signed and not left.is_pointer
        return int_type(8, signed)

    def unop(self, e: ast.Unop) -> SizedType:
        op = e.op
        if op in ("++", "--"):
            target = e.operand
            if isinstance(target, ast.Var):
                ty = self.variables.get(target.name)
                if ty is None:
                    raise self.error(target.loc, f"Undefined or undeclared variable: {target.name}")
                target.type = ty
            elif isinstance(target, ast.Map):
                info = self.map_info(target)
                if info.value is None:
                    info.value = int_type()
                ty = info.value
                target.type = ty
            else:
                raise self.error(e.loc, f"The {op} operator must be applied to a map or variable")
            if ty.kind not in (Kind.INT, Kind.POINTER):
                raise self.error(e.loc, f"The {op} operator can not be used on {ty.name}")
            return ty
        operand = self.expr(e.operand)
        if op == "*":
            return self.deref(e, operand)
        if op == "&":
            raise self.error(e.loc, "The & (address-of) operator is not supported")
        if not operand.is_integer_like:
            raise self.error(
                e.loc, f"The {op} operator can not be used on expressions of type {operand.name}"
            )
        if op == "!":
            return int_type(8, operand.signed)
        return int_type(8, operand.signed)

    def deref(self, e: ast.Unop, operand: SizedType) -> SizedType:
        if operand.kind is Kind.INT:
            return int_type()  # an address read as a 64-bit value (loads.bt)
        if operand.kind is Kind.POINTER and operand.elem is not None:
            target = operand.elem
            if target.kind is Kind.NONE:
                raise self.error(e.loc, "Can not dereference a void pointer")
            if operand.user and target.kind in (Kind.POINTER, Kind.RECORD, Kind.ARRAY):
                return dataclasses.replace(target, user=True)  # still the process's memory
            return target
        raise self.error(e.loc, f"Can not dereference type {operand.name}")

    def ternary(self, e: ast.Ternary) -> SizedType:
        cond = self.expr(e.cond)
        if not cond.is_integer_like:
            raise self.error(e.cond.loc, f"Invalid condition in ternary: {cond.name}")
        then, otherwise = self.expr(e.then), self.expr(e.otherwise)
        if then.kind is Kind.INT and otherwise.kind is Kind.INT:
            return int_type(8, then.signed and otherwise.signed)
        if then.kind is Kind.STRING and otherwise.kind is Kind.STRING:
            return string_type(max(DEFAULT_STRLEN, then.size, otherwise.size))
        if then.kind is Kind.NONE and otherwise.kind is Kind.NONE:
            return then
        if then.kind is not otherwise.kind:
            raise self.error(
                e.loc,
                f"Ternary operator must return the same type: have '{then.name}' "
                f"and '{otherwise.name}'",
            )
        return then

    # -- fields, indexes, casts ----------------------------------------------------------

    def field(self, e: ast.Field) -> SizedType:
        if isinstance(e.expr, ast.Builtin) and e.expr.name == "args":
            return self.args_field(e)
        base = self.expr(e.expr)
        if base.kind is Kind.TUPLE:
            if not e.name.isdigit():
                raise self.error(e.loc, f"Tuples are indexed by numbers: {e.name} is not one")
            index = int(e.name)
            if index >= len(base.fields):
                raise self.error(
                    e.loc,
                    f"Invalid tuple index: {index}. Found {len(base.fields)} elements in tuple.",
                )
            return base.fields[index]
        record = base
        if base.kind is Kind.POINTER and base.elem is not None:
            record = base.elem
        if record.kind is not Kind.RECORD:
            raise self.error(
                e.loc,
                f"Can not access field '{e.name}' on type '{base.name}'. "
                "Try dereferencing it first, or using '->'",
            )
        member = self.kernel.member(record.struct, e.name)
        if member is None:
            raise self.error(
                e.loc,
                f"Struct/union of type '{record.struct}' does not contain a field named '{e.name}'",
            )
        if base.user and member.kind in (Kind.POINTER, Kind.RECORD, Kind.ARRAY):
            return dataclasses.replace(member, user=True)  # inside user memory, still user memory
        return member

    def args_field(self, e: ast.Field) -> SizedType:
        args = self.ctx.args
        if args is None:
            raise self.error(
                e.loc, f"The args builtin can not be used with '{self.ctx.spec.provider}' probes"
            )
        arg = args.get(e.name)
        if arg is None:
            what = (
                f"tracepoint {self.ctx.spec.target}:{self.ctx.spec.func}"
                if self.ctx.spec.provider == "tracepoint"
                else f"function {self.ctx.spec.func}"
            )
            raise self.error(e.loc, f"Can't find a field {e.name} in {what}")
        e.expr.type = SizedType(Kind.CTX)
        return arg.type

    def index(self, e: ast.Index) -> SizedType:
        base = self.expr(e.expr)
        index = self.expr(e.index)
        if index.kind is not Kind.INT:
            raise self.error(e.index.loc, f"The array index must be an integer, not {index.name}")
        if base.kind is Kind.ARRAY and base.elem is not None:
            if isinstance(e.index, ast.Int) and not 0 <= e.index.value < base.count:
                raise self.error(
                    e.index.loc,
                    f"the index {e.index.value} is out of bounds for array of size {base.count}",
                )
            return base.elem
        if base.kind is Kind.POINTER and base.elem is not None and base.elem.kind is not Kind.NONE:
            elem = base.elem
            return (
                SizedType(
                    elem.kind,
                    elem.size,
                    elem.signed,
                    elem.elem,
                    elem.count,
                    elem.fields,
                    elem.struct,
                    user=base.user,
                )
                if elem.kind is Kind.POINTER
                else elem
            )
        raise self.error(
            e.loc, f"The array index operator [] can not be used on expressions of type {base.name}"
        )

    def spec_type(self, spec: ast.TypeSpec) -> SizedType:
        name = spec.name
        if name in INT_TYPE_NAMES:
            size, signed = INT_TYPE_NAMES[name]
            ty = int_type(size, signed)
        elif name.split()[0] in ("struct", "union", "enum"):
            if name.startswith("enum"):
                ty = int_type(4, False)
            else:
                record = self.kernel.record(name)
                if record is None:
                    raise self.error(spec.loc, f"Unknown struct/union: '{name}'")
                ty = record
        else:
            c_type = self.kernel.c_int_type(name)
            if c_type is None:
                raise self.error(spec.loc, f"Unknown type: '{name}'")
            ty = c_type
        for _ in range(spec.pointers):
            ty = SizedType(Kind.POINTER, 8, elem=ty)
        if spec.array is not None:
            ty = SizedType(Kind.ARRAY, ty.size * spec.array, elem=ty, count=spec.array)
        return ty

    def cast(self, e: ast.Cast) -> SizedType:
        operand = self.expr(e.expr)
        target = self.spec_type(e.to)
        if target.kind is Kind.RECORD:
            raise self.error(e.loc, f'Cannot cast to "{target.name}"')
        if target.kind is Kind.ARRAY:
            if (
                operand.kind is not Kind.INT
                or target.elem is None
                or target.elem.kind is not Kind.INT
            ):
                raise self.error(e.loc, f'Cannot cast from "{operand.name}" to "{target.name}"')
            if target.size != operand.size and operand.size != 8:
                raise self.error(e.loc, f'Cannot cast from "{operand.name}" to "{target.name}"')
            return target
        if not operand.is_integer_like:
            raise self.error(e.loc, f'Cannot cast from "{operand.name}" to "{target.name}"')
        if target.kind is Kind.POINTER and operand.user:
            return SizedType(target.kind, target.size, elem=target.elem, user=True)
        return target

    def type_size(self, ty: SizedType, loc) -> int:
        if ty.kind is Kind.RECORD:
            size = self.kernel.sizeof(ty.struct)
            if size is None:
                raise self.error(loc, f"Unknown struct/union: '{ty.struct}'")
            return size
        if ty.kind is Kind.TUPLE:
            from .codegen_types import storage_size

            return storage_size(ty)
        return ty.size

    def constant_int(self, e: ast.Expr, what: str) -> int:
        """The value of an integer literal or an integer positional parameter."""
        self.expr(e)
        if isinstance(e, ast.Int):
            return e.value
        if isinstance(e, ast.Unop) and e.op == "-" and isinstance(e.operand, ast.Int):
            return -e.operand.value
        if isinstance(e, ast.Param) and e.index > 0:
            text = self.info.params[e.index - 1] if e.index <= len(self.info.params) else "0"
            value = param_int(text)
            if value is not None:
                return value
        raise self.error(e.loc, f"{what}: expected an integer literal")


def param_int(text: str) -> int | None:
    """A positional parameter as bpftrace reads a number: decimal, 0x hex,
    or octal with a leading 0; None if it is not a number."""
    text = text.strip()
    try:
        if len(text) > 1 and text[0] == "0" and text[1].isdigit():
            return int(text, 8)
        return int(text, 0)
    except ValueError:
        return None


def _is_integer(text: str) -> bool:
    return param_int(text) is not None
