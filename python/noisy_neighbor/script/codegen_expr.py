"""Expressions in C. A scalar (see :data:`~.codegen_types.SCALAR_KINDS`)
becomes a C expression (:meth:`ExprWriter.value`); a string, tuple or other
struct-held value becomes memory that can be copied from
(:meth:`ExprWriter.lvalue`), or is written straight where it goes
(:meth:`ExprWriter.store`): ``str(p)`` into a printf record reads the string
into the record, with no copy on the stack.

Kernel memory is read with CO-RE: vmlinux.h marks every kernel struct
``preserve_access_index``, so ``&((struct task_struct *)p)->pid`` is
relocated to this kernel's offset, and the read goes through
``bpf_probe_read_kernel`` (``_user`` for user pointers)."""

from __future__ import annotations

from . import ast
from .codegen_base import WriterBase
from .codegen_types import SCALAR_KINDS
from .types import Kind, SizedType

__all__ = ["ExprWriter"]

_COMPARISONS = {"==", "!=", "<", "<=", ">", ">="}


def _int_literal(value: int, signed: bool = True) -> str:
    if value < 0:
        return f"({value}LL)" if value != -(1 << 63) else "(-9223372036854775807LL - 1)"
    return f"{value}ULL" if (not signed or value > (1 << 63) - 1) else f"{value}LL"


def _anonymous(struct: str) -> bool:
    """Whether a record type has no name C can spell (BTF's anonymous
    members are named ``struct x::(unnamed ...)``)."""
    return "(unnamed" in struct or "::" in struct


def _record_of(ty: SizedType | None) -> str:
    """The struct a record or pointer-to-record type names ("" if none)."""
    if ty is not None and ty.kind is Kind.POINTER and ty.elem is not None:
        ty = ty.elem
    return ty.struct if ty is not None else ""


def _cast(ty: SizedType | None) -> str:
    return "s64" if ty is not None and ty.kind is Kind.INT and ty.signed else "u64"


class ExprWriter(WriterBase):
    # -- scalars -------------------------------------------------------------------------

    def value(self, e: ast.Expr) -> str:
        """A C expression of a scalar-held expression's value."""
        ty = e.type
        assert ty is not None, f"unchecked expression at {e.loc}"
        if ty.kind not in SCALAR_KINDS:
            raise AssertionError(f"{ty.name} is not a scalar ({type(e).__name__} at {e.loc})")
        if isinstance(e, ast.Int):
            return _int_literal(e.value, ty.signed)
        if isinstance(e, ast.Param):
            return _int_literal(self.gen.param_int(e))
        if isinstance(e, ast.Builtin):
            return self.builtin(e)
        if isinstance(e, ast.Identifier):
            return _int_literal(self.gen.enum_value(e))
        if isinstance(e, ast.Var):
            return self.gen.var_name(e.name)
        if isinstance(e, ast.Map):
            return self.map_read(e)
        if isinstance(e, ast.Call):
            return self.call_value(e)
        if isinstance(e, ast.Binop):
            return self.binop(e)
        if isinstance(e, ast.Unop):
            return self.unop(e)
        if isinstance(e, ast.Ternary):
            return self.ternary_value(e)
        if isinstance(e, ast.Field):
            return self.field_value(e)
        if isinstance(e, ast.Index):
            return self.index_value(e)
        if isinstance(e, ast.Cast):
            return self.cast_value(e)
        if isinstance(e, ast.Sizeof):
            return _int_literal(self.gen.info.constants[id(e)], False)
        raise AssertionError(f"no C for {type(e).__name__}")

    def binop(self, e: ast.Binop) -> str:
        op = e.op
        left_ty, right_ty = e.left.type, e.right.type
        assert left_ty is not None and right_ty is not None
        if left_ty.kind is Kind.STRING:
            a, b = self.lvalue(e.left), self.lvalue(e.right)
            n = min(left_ty.size, right_ty.size)
            test = f"nn_strncmp({a}, {b}, {n})"
            return f"({test} {'==' if op == '==' else '!='} 0)"
        if left_ty.kind in (Kind.TUPLE, Kind.BUFFER) or right_ty.kind in (Kind.TUPLE, Kind.BUFFER):
            a, b = self.lvalue(e.left), self.lvalue(e.right)
            test = f"__builtin_memcmp(&{a}, &{b}, sizeof({a}))"
            return f"({test} {'==' if op == '==' else '!='} 0)"
        if op in ("&&", "||"):
            left = self.value(e.left)
            with self.capture() as right_lines:
                right = self.value(e.right)
            if not right_lines:
                return f"((s64)(({left}) {op} ({right})))"
            result = self.temp("s64", init="0")
            test = f"({left})" if op == "&&" else f"(!({left}))"
            self.line(f"if {test} {{")
            self.lines.extend(right_lines)
            self.line(f"\t{result} = !!({right});")
            self.line("} else {")
            self.line(f"\t{result} = {'0' if op == '&&' else '1'};")
            self.line("}")
            return result
        left, right = self.value(e.left), self.value(e.right)
        if op in _COMPARISONS:
            both_signed = _cast(left_ty) == "s64" and _cast(right_ty) == "s64"
            t = "s64" if both_signed else "u64"
            return f"((s64)(({t})({left}) {op} ({t})({right})))"
        result = _cast(e.type)
        if op in ("/", "%"):
            # BPF divides unsigned (bpftrace warns of signed operands too).
            return f"(({result})((u64)({left}) {op} (u64)({right})))"
        if op == ">>":
            t = _cast(left_ty)
            return f"(({result})(({t})({left}) >> ({right})))"
        if left_ty.kind is Kind.POINTER and op in ("+", "-") and left_ty.elem is not None:
            scale = max(self.gen.sizeof(left_ty.elem), 1)
            return f"((u64)({left}) {op} (u64)({right}) * {scale})"
        return f"(({result})(({result})({left}) {op} ({result})({right})))"

    def unop(self, e: ast.Unop) -> str:
        op = e.op
        if op in ("++", "--"):
            return self.increment(e)
        operand_ty = e.operand.type
        assert operand_ty is not None
        if op == "*":
            address = self.value(e.operand)
            target = e.type
            assert target is not None
            if target.kind is Kind.RECORD:
                return address
            size = 8 if operand_ty.kind is Kind.INT else self.gen.sizeof(target)
            c_type = self.gen.int_c(target, size)
            return self.read(c_type, address, operand_ty.user, e.loc)
        inner = self.value(e.operand)
        result = _cast(e.type)
        if op == "!":
            return f"(({result})!({inner}))"
        if op == "+":
            return inner
        return f"(({result})({op}({result})({inner})))"

    def increment(self, e: ast.Unop) -> str:
        step = self.gen.step(e.operand.type)
        delta = str(step) if e.op == "++" else str(-step)
        target = e.operand
        if isinstance(target, ast.Var):
            name = self.gen.var_name(target.name)
            if step == 1:
                return f"({name}{e.op})" if e.postfix else f"({e.op}{name})"
            old = self.temp("u64", init=name)
            self.line(f"{name} += {delta};")
            return old if e.postfix else name
        assert isinstance(target, ast.Map)
        info = self.gen.info.maps[target.name]
        key = self.key(target)
        old = self.temp(
            "s64", init=f"nn_map_fetch_add(&{info.c_name}, &{key}, {delta}, {info.index})"
        )
        return old if e.postfix else f"({old} + {delta})"

    def ternary_value(self, e: ast.Ternary) -> str:
        cond = self.value(e.cond)
        with self.capture() as then_lines:
            then = self.value(e.then)
        with self.capture() as else_lines:
            otherwise = self.value(e.otherwise)
        if not then_lines and not else_lines:
            return f"(({cond}) ? ({then}) : ({otherwise}))"
        result = self.temp(_cast(e.type), init="0")
        self.line(f"if ({cond}) {{")
        self.lines.extend(then_lines)
        self.line(f"\t{result} = {then};")
        self.line("} else {")
        self.lines.extend(else_lines)
        self.line(f"\t{result} = {otherwise};")
        self.line("}")
        return result

    def cast_value(self, e: ast.Cast) -> str:
        inner = self.value(e.expr)
        ty = e.type
        assert ty is not None
        if ty.kind is Kind.INT:
            c_type = f"{'s' if ty.signed else 'u'}{ty.size * 8}"
            return f"(({_cast(ty)})({c_type})({inner}))"
        return f"((u64)({inner}))"

    # -- kernel memory ---------------------------------------------------------------------

    def read(self, c_type: str, address: str, user: bool | None = False, loc: object = None) -> str:
        """A value of ``c_type`` read at ``address`` (a fault reads 0);
        ``user`` None: memory of no known space (a struct the script
        declared), read by the helper that tries both, as bpftrace does."""
        tmp = self.temp(c_type, init="0")
        if user is None:
            helper = "bpf_probe_read"
        else:
            helper = "bpf_probe_read_user" if user else "bpf_probe_read_kernel"
        self.checked(
            "probe_read", f"{helper}(&{tmp}, sizeof({tmp}), (const void *)({address}))", loc
        )
        return tmp

    def member_address(self, e: ast.Field) -> tuple[str, str, bool]:
        """(C lvalue of the member through its struct pointer, struct name,
        user memory?) for ``expr->name`` and ``expr.name`` on kernel records."""
        path = [e.name]
        base_expr = e.expr
        # A struct or union without a name (`in6_u` of struct in6_addr) has
        # no C type to cast to: reach its members from the named one above.
        while (
            isinstance(base_expr, ast.Field)
            and base_expr.type is not None
            and base_expr.type.kind is Kind.RECORD
            and _anonymous(base_expr.type.struct)
        ):
            path.insert(0, base_expr.name)
            base_expr = base_expr.expr
        base_ty = base_expr.type
        assert base_ty is not None
        record = base_ty.elem if base_ty.kind is Kind.POINTER else base_ty
        assert record is not None
        struct = self.gen.c_struct(record.struct)
        base = self.value(base_expr)
        return f"((({struct} *)({base}))->{'.'.join(path)})", struct, base_ty.user

    def field_value(self, e: ast.Field) -> str:
        ty = e.type
        assert ty is not None
        base_ty = e.expr.type
        assert base_ty is not None
        if base_ty.kind is Kind.CTX:
            return self.gen.arg_value(self.context, e)
        if base_ty.kind is Kind.TUPLE:
            return f"({self.lvalue(e.expr)}.e{e.name})"
        member, struct, user = self.member_address(e)
        if ty.kind in (Kind.RECORD, Kind.ARRAY):
            return f"((u64)&{member})"
        if self.gen.is_bitfield(base_ty, e.name):
            base = self.value(e.expr)
            tmp = self.temp(_cast(ty), init="0")
            self.line(f"{tmp} = BPF_CORE_READ_BITFIELD_PROBED((({struct} *)({base})), {e.name});")
            return tmp
        space: bool | None = user
        if not user and self.gen.kernel.user.has(_record_of(e.expr.type)):
            space = None
        read = self.read(f"__typeof__({member})", f"&{member}", space, e.loc)
        if ty.kind is Kind.INT:
            return f"(({_cast(ty)}){read})"
        return f"((u64){read})"

    def index_value(self, e: ast.Index) -> str:
        ty = e.type
        base_ty = e.expr.type
        assert ty is not None and base_ty is not None
        base = self.value(e.expr)
        index = self.value(e.index)
        size = self.gen.sizeof(ty) if ty.kind is not Kind.POINTER else 8
        address = f"((u64)({base}) + (u64)({index}) * {size})"
        if ty.kind in (Kind.RECORD, Kind.ARRAY):
            return address
        value = self.read(self.gen.int_c(ty, size), address, base_ty.user, e.loc)
        return f"(({_cast(ty)}){value})"

    # -- memory-held values ----------------------------------------------------------------

    def lvalue(self, e: ast.Expr) -> str:
        """Memory holding a string, tuple or struct-held value (a variable,
        a field of the probe's context, or a temporary)."""
        ty = e.type
        assert ty is not None
        if isinstance(e, ast.Var):
            return self.gen.var_name(e.name)
        if isinstance(e, ast.Field) and e.expr.type is not None and e.expr.type.kind is Kind.TUPLE:
            return f"{self.lvalue(e.expr)}.e{e.name}"
        if ty.kind in SCALAR_KINDS:
            tmp = self.temp(self.gen.types.decl(ty, "{}"))
            self.line(f"{tmp} = {self.value(e)};")
            return tmp
        tmp = self.temp(self.gen.types.decl(ty, "{}"))
        self.store(tmp, ty, e, fresh=True)
        return tmp

    def store(self, dest: str, dest_ty: SizedType, e: ast.Expr, fresh: bool = False) -> None:
        """Writes ``e``'s value into ``dest`` (memory of type ``dest_ty``).
        ``fresh``: ``dest`` is already zeroed."""
        ty = e.type
        assert ty is not None
        if dest_ty.kind in SCALAR_KINDS:
            self.line(f"{dest} = {self.value(e)};")
            return
        if dest_ty.kind is Kind.STRING:
            self.store_string(dest, dest_ty.size, e, fresh)
            return
        if dest_ty.kind is Kind.TUPLE and isinstance(e, ast.Tuple):
            for i, (field_ty, elem) in enumerate(zip(dest_ty.fields, e.elems)):
                self.store(f"{dest}.e{i}", field_ty, elem, fresh)
            return
        if dest_ty.kind is Kind.TUPLE and ty.kind is Kind.TUPLE and ty != dest_ty:
            source = self.lvalue(e)
            for i, field_ty in enumerate(dest_ty.fields):
                self.copy_typed(f"{dest}.e{i}", field_ty, f"{source}.e{i}", ty.fields[i], fresh)
            return
        if self.store_special(dest, dest_ty, e):
            return
        if isinstance(e, ast.Map):
            self.map_read_into(dest, self.gen.types.type_name(dest_ty), e, fresh)
            return
        if isinstance(e, ast.Ternary):
            cond = self.value(e.cond)
            self.line(f"if ({cond}) {{")
            self.store(dest, dest_ty, e.then)
            self.line("} else {")
            self.store(dest, dest_ty, e.otherwise)
            self.line("}")
            return
        source = self.lvalue(e)
        self.line(f"__builtin_memcpy(&{dest}, &{source}, sizeof({dest}));")

    def copy_typed(
        self,
        dest: str,
        dest_ty: SizedType,
        src: str,
        src_ty: SizedType,
        fresh: bool,
    ) -> None:
        if dest_ty.kind is Kind.STRING:
            self.copy_string(dest, dest_ty.size, src, src_ty.size, fresh)
        elif dest_ty.kind in SCALAR_KINDS:
            self.line(f"{dest} = {src};")
        else:
            self.line(f"__builtin_memcpy(&{dest}, &{src}, sizeof({dest}));")

    def copy_string(self, dest: str, dest_size: int, src: str, src_size: int, fresh: bool) -> None:
        n = min(dest_size, src_size)
        self.line(f"__builtin_memcpy({dest}, {src}, {n});")
        if n < dest_size and not fresh:
            self.line(f"__builtin_memset((char *){dest} + {n}, 0, {dest_size - n});")
        if src_size > dest_size:
            self.line(f"((char *){dest})[{dest_size - 1}] = 0;")

    def store_string(self, dest: str, size: int, e: ast.Expr, fresh: bool) -> None:
        ty = e.type
        assert ty is not None
        if isinstance(e, ast.Str):
            data = e.value.encode()[: size - 1]
            literal = self.gen.c_string(data)
            self.line(f"__builtin_memcpy({dest}, {literal}, {len(data) + 1});")
            if len(data) + 1 < size and not fresh:
                rest = size - len(data) - 1
                self.line(f"__builtin_memset((char *){dest} + {len(data) + 1}, 0, {rest});")
            return
        if isinstance(e, ast.Builtin) and e.name == "comm":
            if not fresh:
                self.line(f"__builtin_memset({dest}, 0, {size});")
            self.line(f"bpf_get_current_comm({dest}, {min(size, 16)});")
            return
        if isinstance(e, ast.Call) and e.name == "str" and not isinstance(e.args[0], ast.Str):
            self.read_string(dest, size, e, fresh)
            return
        if isinstance(e, ast.Ternary):
            cond = self.value(e.cond)
            self.line(f"if ({cond}) {{")
            self.store_string(dest, size, e.then, False)
            self.line("} else {")
            self.store_string(dest, size, e.otherwise, False)
            self.line("}")
            return
        if isinstance(e, ast.Map):
            self.map_read_into(dest, f"char[{size}]", e, fresh)
            return
        if isinstance(e, ast.Field) and e.expr.type is not None and e.expr.type.kind is Kind.CTX:
            self.read_arg_string(dest, size, e, fresh)
            return
        if (
            isinstance(e, ast.Field)
            and e.expr.type is not None
            and e.expr.type.kind in (Kind.POINTER, Kind.RECORD)
        ):
            member, _, user = self.member_address(e)
            helper = "bpf_probe_read_user" if user else "bpf_probe_read_kernel"
            n = min(size, ty.size)
            if not fresh:
                self.line(f"__builtin_memset({dest}, 0, {size});")
            self.line(f"{helper}({dest}, {n}, (const void *)&{member});")
            if n == size:
                self.line(f"((char *){dest})[{size - 1}] = 0;")
            return
        if isinstance(e, ast.Call) and e.name == "str":
            self.store_string(dest, size, e.args[0], fresh)
            return
        source = self.lvalue(e)
        self.copy_string(dest, size, source, ty.size, fresh)

    def read_arg_string(self, dest: str, size: int, e: ast.Field, fresh: bool) -> None:
        """A string field of the probe's context, read through the helper: a
        tracepoint program may not load from its context at a moved offset."""
        ty = e.type
        assert ty is not None
        address = self.gen.arg_value(self.context, e)
        if not fresh:
            self.line(f"__builtin_memset({dest}, 0, {size});")
        n = min(size, ty.size)
        if self.gen.arg_is_data_loc(self.context, e):
            self.line(f"bpf_probe_read_kernel_str({dest}, {n}, (const void *)({address}));")
            return
        self.line(f"bpf_probe_read_kernel({dest}, {n}, (const void *)({address}));")
        if n == size:
            self.line(f"((char *){dest})[{size - 1}] = 0;")
