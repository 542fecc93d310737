"""Builtins and calls in C: the helpers behind ``pid``, ``comm``, ``kstack``;
``str()``, ``ntop()``, ``buf()``; and the calls whose effect happens in user
space, which write a record of their site to the event rings."""

from __future__ import annotations

from . import ast
from .builtins import DEFAULT_STACK_DEPTH
from .codegen_base import WriterBase
from .codegen_types import SCALAR_KINDS
from .types import Kind, SizedType

__all__ = ["CallWriter"]

_SIMPLE_BUILTINS = {
    "pid": "(bpf_get_current_pid_tgid() >> 32)",
    "tid": "(u64)(u32)bpf_get_current_pid_tgid()",
    "uid": "(u64)(u32)bpf_get_current_uid_gid()",
    "gid": "(bpf_get_current_uid_gid() >> 32)",
    "username": "(u64)(u32)bpf_get_current_uid_gid()",
    "nsecs": "bpf_ktime_get_ns()",
    "elapsed": "(bpf_ktime_get_ns() - nn_start_ns)",
    "cpu": "(u64)bpf_get_smp_processor_id()",
    "numaid": "(u64)bpf_get_numa_node_id()",
    "cgroup": "bpf_get_current_cgroup_id()",
    "rand": "(u64)bpf_get_prandom_u32()",
    "jiffies": "bpf_jiffies64()",
    "cpid": "nn_cpid",
    "curtask": "(u64)bpf_get_current_task()",
    "ctx": "(u64)ctx",
}
_REGS = "((struct pt_regs *)ctx)"


class CallWriter(WriterBase):
    # -- builtins ------------------------------------------------------------------------

    def builtin(self, e: ast.Builtin) -> str:
        name = e.name
        context = self.context
        if name in _SIMPLE_BUILTINS:
            return _SIMPLE_BUILTINS[name]
        if name == "probe":
            return f"{self.gen.probe_id(context.spec.name)}ULL"
        if name in ("kstack", "ustack"):
            return self.stack_id(name == "ustack", DEFAULT_STACK_DEPTH)
        if name == "func":
            if context.spec.provider in ("kfunc", "kretfunc") or context.via_fentry:
                return f"{self.gen.func_address(context.spec.func)}ULL"
            return f"PT_REGS_IP({_REGS})"
        if name == "retval":
            return f"(({'s64' if e.type and e.type.signed else 'u64'}){context.retval_c})"
        if name.startswith("arg") or name.startswith("sarg"):
            n = int(name.lstrip("sarg"))
            if name.startswith("sarg"):
                return self.read("u64", f"PT_REGS_SP({_REGS}) + {8 * (n + 1)}")
            if context.via_fentry or context.spec.provider in ("kfunc", "kretfunc"):
                return f"ctx[{n}]"
            if n >= 6:
                return self.read("u64", f"PT_REGS_SP({_REGS}) + {8 * (n - 5)}")
            return f"(u64)PT_REGS_PARM{n + 1}({_REGS})"
        value = self.gen.kernel.enum_value(name)  # an enumerator, as the checker found
        if value is None:
            raise AssertionError(f"builtin {name} has no C")
        return f"{value}LL"

    def stack_id(self, user: bool, depth: int) -> str:
        flags = "BPF_F_USER_STACK" if user else "0"
        return f"(u64)bpf_get_stackid(ctx, &{self.gen.stack_map(user, depth)}, {flags})"

    # -- value calls -----------------------------------------------------------------------

    def call_value(self, e: ast.Call) -> str:
        name = e.name
        args = e.args
        constants = self.gen.info.constants
        if id(e) in constants:
            return f"{constants[id(e)]}ULL"
        if name in ("kstack", "ustack"):
            ty = e.type
            assert ty is not None
            return self.stack_id(name == "ustack", ty.count)
        if name in ("ksym", "cgroup_path", "strerror", "uptr", "kptr", "strftime"):
            return self.value(args[-1] if name == "strftime" else args[0])
        if name == "strcontains":
            a, b = self.lvalue(args[0]), self.lvalue(args[1])
            sizes = [arg.type.size if arg.type else 1 for arg in args]
            return f"(u64)nn_strcontains({a}, {sizes[0]}, {b}, {sizes[1]})"
        if name == "strncmp":
            a, b = self.lvalue(args[0]), self.lvalue(args[1])
            sizes = [arg.type.size if arg.type else 1 for arg in args[:2]]
            n = min(self.gen.info_const_int(args[2]), *sizes)
            return f"(u64)nn_strncmp({a}, {b}, {n})"
        if name == "bswap":
            ty = args[0].type
            assert ty is not None
            bits = ty.size * 8
            inner = self.value(args[0])
            if bits == 8:
                return inner
            return f"(({'s64' if ty.signed else 'u64'})(__builtin_bswap{bits}((u{bits})({inner}))))"
        raise AssertionError(f"call {name}() has no scalar C")

    def store_special(self, dest: str, ty: SizedType, e: ast.Expr) -> bool:
        """Writes struct-held call results (ntop, buf, usym, ustack, macaddr)
        and builtins (``ustack``, a uprobe's ``func``) into ``dest``; False
        if ``e`` is not one."""
        if isinstance(e, ast.Builtin) and e.name in ("ustack", "func"):
            if e.name == "ustack":
                address = self.stack_id(True, ty.count or DEFAULT_STACK_DEPTH)
            else:
                address = f"PT_REGS_IP({_REGS})"
            self.line(f"{dest}.address = {address};")
            self.line(f"{dest}.pid = bpf_get_current_pid_tgid() >> 32;")
            return True
        if not isinstance(e, ast.Call):
            return False
        args = e.args
        if e.name == "ntop":
            self.ntop(dest, args)
            return True
        if e.name == "buf":
            self.buf(dest, ty, args)
            return True
        if e.name == "usym" or (e.name == "ustack"):
            value = (
                self.value(args[0])
                if e.name == "usym"
                else self.stack_id(True, (e.type.count if e.type else DEFAULT_STACK_DEPTH))
            )
            self.line(f"{dest}.address = {value};")
            self.line(f"{dest}.pid = bpf_get_current_pid_tgid() >> 32;")
            return True
        if e.name == "macaddr":
            source = args[0]
            source_ty = source.type
            assert source_ty is not None
            address = self.value(source)
            helper = "bpf_probe_read_user" if source_ty.user else "bpf_probe_read_kernel"
            self.line(f"{helper}({dest}.addr, 6, (const void *)({address}));")
            return True
        return False

    def ntop(self, dest: str, args: list[ast.Expr]) -> None:
        addr = args[-1]
        packed = self.gen.info.byte_constants.get(id(addr))
        if packed is not None:  # ntop(pton("::1")): bytes known when compiling
            family = self.value(args[0]) if len(args) == 2 else ("10" if len(packed) == 16 else "2")
            self.line(f"{dest}.family = {family};")
            for i, byte in enumerate(packed):
                self.line(f"{dest}.addr[{i}] = {byte};")
            return
        addr_ty = addr.type
        assert addr_ty is not None
        if len(args) == 2:
            self.line(f"{dest}.family = {self.value(args[0])};")
        if addr_ty.kind is Kind.INT:  # an IPv4 address by value, as bpftrace takes it
            if len(args) == 1:
                self.line(f"{dest}.family = 2;")
            v4 = self.temp("u32", init=f"(u32)({self.value(addr)})")
            self.line(f"__builtin_memcpy({dest}.addr, &{v4}, 4);")
            return
        size = min(addr_ty.size if addr_ty.kind is Kind.ARRAY else 16, 16)
        if len(args) == 1:
            self.line(f"{dest}.family = {'10' if size == 16 else '2'};")
        if addr_ty.kind is Kind.STRING:
            source = self.lvalue(addr)
            self.line(f"__builtin_memcpy({dest}.addr, {source}, {min(size, addr_ty.size)});")
            return
        address = self.value(addr)
        helper = "bpf_probe_read_user" if addr_ty.user else "bpf_probe_read_kernel"
        self.line(f"{helper}({dest}.addr, {size}, (const void *)({address}));")

    def buf(self, dest: str, ty: SizedType, args: list[ast.Expr]) -> None:
        source = args[0]
        source_ty = source.type
        assert source_ty is not None
        if len(args) == 2:
            length = self.value(args[1])
            self.line(f"{dest}.length = ({length}) < {ty.size} ? ({length}) : {ty.size};")
        else:
            self.line(f"{dest}.length = {ty.size};")
        if source_ty.kind is Kind.STRING:
            data = self.lvalue(source)
            self.line(f"__builtin_memcpy({dest}.data, {data}, {min(ty.size, source_ty.size)});")
            return
        address = self.value(source)
        helper = "bpf_probe_read_user" if source_ty.user else "bpf_probe_read_kernel"
        length = f"{dest}.length & {self.gen.mask(ty.size)}"
        self.line(f"{helper}({dest}.data, {length}, (const void *)({address}));")

    def read_string(self, dest: str, size: int, e: ast.Call, fresh: bool) -> None:
        """``str(p[, n])`` read straight into ``dest``."""
        source = e.args[0]
        source_ty = source.type
        ty = e.type
        assert source_ty is not None and ty is not None
        n = min(size, ty.size)
        if not fresh:
            self.line(f"__builtin_memset({dest}, 0, {size});")
        if source_ty.kind is Kind.ARRAY:
            address = self.value(source)
        elif (
            isinstance(source, ast.Field)
            and source.expr.type is not None
            and source.expr.type.kind is Kind.CTX
        ):
            address = self.gen.arg_value(self.context, source)
        else:
            address = self.value(source)
        helper = "bpf_probe_read_user_str" if source_ty.user else "bpf_probe_read_kernel_str"
        if len(e.args) == 2 and not isinstance(e.args[1], (ast.Int, ast.Param)):
            limit = self.value(e.args[1])
            count = self.temp("u32", init=f"(u32)({limit}) + 1")
            self.line(f"if ({count} > {n}) {count} = {n};")
            self.line(f"{helper}({dest}, {count}, (const void *)({address}));")
        else:
            self.line(f"{helper}({dest}, {n}, (const void *)({address}));")

    # -- calls that act in user space ------------------------------------------------------

    def call_statement(self, e: ast.Call) -> None:
        name = e.name
        if name in ("printf", "system", "cat", "print", "clear", "zero", "exit", "time", "join"):
            self.emit_site(e)
            if name == "exit":
                # exit() ends the probe too: nothing after it runs
                self.line("nn_exited = 1;")
                self.line("return 0;")
            return
        if name == "delete":
            self.delete(e.args[0], e.loc)
            return
        if name == "debugf":
            self.debugf(e)
            return
        if name == "signal":
            self.line(f"bpf_send_signal({self.value(e.args[0])});")
            return
        if e.type is not None and e.type.kind in SCALAR_KINDS:
            self.line(f"(void)({self.value(e)});")
            return
        raise AssertionError(f"{name}() has no statement form")

    def debugf(self, e: ast.Call) -> None:
        """``debugf(fmt, ...)``: the kernel's trace_printk, into tracefs's trace."""
        fmt = e.args[0]
        assert isinstance(fmt, ast.Str)
        values = []
        for arg in e.args[1:]:
            ty = arg.type
            assert ty is not None
            values.append(self.lvalue(arg) if ty.kind is Kind.STRING else self.value(arg))
        literal = self.gen.c_string(fmt.value.encode())
        self.line(f"bpf_printk({', '.join([literal, *values])});")

    def emit_site(self, e: ast.Call) -> None:
        site = self.gen.site_of(e)
        struct = site.c_struct
        self.line(f"{{ struct {struct} *nn_r = nn_reserve();")
        self.line("if (nn_r) {")
        self.line(f"\tnn_r->nn_id = {site.id};")
        if site.kind in ("printf", "system", "cat"):
            for i, (arg, ty) in enumerate(zip(e.args[1:], site.arg_types)):
                self.store(f"nn_r->a{i}", ty, arg)
        elif site.kind == "print_value":
            self.store("nn_r->a0", site.arg_types[0], e.args[0])
        elif site.kind == "join":
            self.join(e)
        self.line("\tbpf_ringbuf_submit(nn_r, BPF_RB_NO_WAKEUP);")
        self.line("} }")

    def join(self, e: ast.Call) -> None:
        site = self.gen.site_of(e)
        count, size = site.numbers
        arg_ty = e.args[0].type
        assert arg_ty is not None
        address = self.value(e.args[0])
        base = self.temp("u64", init=f"(u64)({address})")
        user = arg_ty.user
        read = "bpf_probe_read_user" if user else "bpf_probe_read_kernel"
        read_str = f"{read}_str"
        self.line(f"for (int nn_i = 0; nn_i < {count}; nn_i++) {{")
        self.line("\tu64 nn_p = 0;")
        self.line(f"\t{read}(&nn_p, sizeof(nn_p), (const void *)({base} + nn_i * 8));")
        self.line("\tif (!nn_p) break;")
        self.line(f"\t{read_str}(nn_r->a0[nn_i], {size}, (const void *)nn_p);")
        self.line("\tnn_r->count = nn_i + 1;")
        self.line("}")
