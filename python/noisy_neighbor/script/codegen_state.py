"""What every part of the C generator shares while writing one script:
the checked program, the kernel, the C types declared so far, the probe
names the runtime resolves, and the small lookups (a variable's C name, a
site, a stack map, a constant) each part asks for."""

from __future__ import annotations

from . import ast
from .codegen_types import CTypes
from .kernel import Kernel
from .program_info import ProbeContext, ProgramInfo, Site
from .types import Kind, SizedType

__all__ = ["Generator"]


class Generator:
    def __init__(self, info: ProgramInfo, kernel: Kernel) -> None:
        self.info = info
        self.kernel = kernel
        self.types = CTypes()
        self.probe_names: list[str] = []
        self.sites_by_node: dict[int, Site] = {}
        self.stack_maps: dict[tuple[bool, int], str] = {}

    # -- shared lookups ------------------------------------------------------------------

    def helper_error_site(self, helper: str, loc: object) -> Site | None:
        """The site that reports ``helper``'s failures at ``loc`` (``-k``:
        writes and deletes; ``-kk``: reads and lookups too), or None when
        the script was not asked to report them."""
        level = self.info.helper_errors
        if level == 0 or (level == 1 and helper in ("probe_read", "map_lookup_elem")):
            return None
        from .types import int_type

        site = Site(len(self.info.sites) + 1, "helper_error", loc, text=helper)  # type: ignore[arg-type]
        site.arg_types = [int_type()]
        site.arg_names = ["retcode"]
        self.info.sites.append(site)
        return site

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

    def arg_value(self, context: ProbeContext, e: ast.Field) -> str:
        arg = context.args[e.name]  # type: ignore[index]
        ty = arg.type
        if arg.data_loc:
            return f"((u64)args + ({arg.c_expr} & 0xffff))"
        if ty.kind is Kind.INT:
            return f"(({'s64' if ty.signed else 'u64'}){arg.c_expr})"
        if (
            ty.kind in (Kind.ARRAY, Kind.RECORD, Kind.STRING)
            and context.spec.provider == "tracepoint"
        ):
            return f"((u64)&{arg.c_expr})"
        return f"((u64){arg.c_expr})"

    def arg_is_data_loc(self, context: ProbeContext, e: ast.Field) -> bool:
        return context.args[e.name].data_loc  # type: ignore[index]

    # -- the file ------------------------------------------------------------------------
