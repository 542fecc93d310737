"""What the checker and the code generator ask of this kernel, in one place:
tracepoint formats (tracefs), functions and types (BTF), symbols
(kallsyms), whether kprobes exist, and the C structs a script declares
itself (which shadow the kernel's of the same name)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

from . import ast
from .tracepoints import TracepointField
from .types import Kind, SizedType
from .user_types import UserTypes

__all__ = ["FunctionInfo", "Kernel"]


@dataclass(frozen=True)
class Param:
    name: str
    type: SizedType
    c_type: str


@dataclass(frozen=True)
class FunctionInfo:
    params: tuple[Param, ...]
    ret: Param | None


class Kernel:
    def __init__(self, definitions: list[ast.CDefinition] | None = None) -> None:
        self._definitions = list(definitions or [])
        # A struct a script declares holds other structs by value only if it
        # declares them too (bpftrace compiles its definitions without the
        # kernel's: clang calls the rest incomplete).
        self.user = UserTypes(definitions or [], known=self._btf_complete)
        self._tracepoints: dict[tuple[str, str], list[TracepointField] | None] = {}

    def _btf_complete(self, name: str) -> bool:
        """Whether a struct the script's definitions hold by value is
        complete: the kernel's BTF has it, and the script does not redefine
        one of the kernel's own structs (bpftrace then leaves BTF aside)."""
        import re

        texts = " ".join(d.text for d in self._definitions)
        redefined = any(
            self.btf.struct(f"{kind} {tag}") is not None
            for kind, tag in re.findall(r"\b(struct|union)\s+(\w+)\s*\{", texts)
        )
        return not redefined and self.btf.struct(name) is not None

    # -- BTF -------------------------------------------------------------------------------

    @cached_property
    def btf(self):
        from .btf import KernelBtf

        return KernelBtf.load()

    def struct_info(self, name: str):
        return self.btf.struct(name)

    def record(self, name: str) -> SizedType | None:
        """``struct x``/``union x`` as a record type, if the script or the
        kernel declares it."""
        if self.user.has(name):
            return SizedType(Kind.RECORD, self.user.sizeof(name) or 0, struct=name)
        info = self.btf.struct(name)
        if info is None:
            return None
        return SizedType(Kind.RECORD, info.size, struct=info.name)

    def member(self, struct: str, name: str) -> SizedType | None:
        if self.user.has(struct):
            return self.user.member(struct, name)
        info = self.btf.struct(struct)
        if info is None:
            return None
        member = info.member(name)
        if member is None:
            return None
        return self.btf.sized_type(member.type_id)

    def is_bitfield(self, struct: str, name: str) -> bool:
        if self.user.has(struct):
            return False
        info = self.btf.struct(struct)
        member = info.member(name) if info is not None else None
        return bool(member is not None and member.bitfield_size)

    def sizeof(self, struct: str) -> int | None:
        if self.user.has(struct):
            return self.user.sizeof(struct)
        info = self.btf.struct(struct)
        return info.size if info is not None else None

    def c_int_type(self, name: str) -> SizedType | None:
        """A C integer type or typedef named in a cast: ``unsigned int``,
        ``pid_t``."""
        ty = self.btf.named_type(name)
        if ty is not None and ty.kind is Kind.INT:
            return ty
        return None

    def enum_value(self, name: str) -> int | None:
        return self.btf.enum_value(name)

    def function(self, name: str) -> FunctionInfo | None:
        func = self.btf.func(name)
        if func is None:
            return None
        params = tuple(Param(p.name, p.type, p.c_type) for p in func.params)
        ret = None
        if func.return_type.kind is not Kind.NONE:
            ret = Param("retval", func.return_type, func.return_c_type)
        return FunctionInfo(params, ret)

    def functions(self, glob: str) -> list[str]:
        return list(self.btf.funcs(glob))

    def c_struct_name(self, name: str) -> str:
        """How the generated C names ``struct x``: the script's own
        declarations are renamed so they do not clash with vmlinux.h."""
        return self.user.c_name(name) if self.user.has(name) else name

    def user_definitions(self, definitions: list[ast.CDefinition]) -> list[str]:
        return self.user.c_text()

    # -- tracefs -------------------------------------------------------------------------

    def tracepoints(self, glob: str) -> list[str]:
        from .tracepoints import tracepoints

        return list(tracepoints(glob))

    def tracepoint_fields(self, category: str, event: str) -> list[TracepointField]:
        fields = self._tracepoint(category, event)
        assert fields is not None
        return fields

    def tracepoint_args(self, category: str, event: str) -> list[TracepointField] | None:
        fields = self._tracepoint(category, event)
        if fields is None:
            return None
        return [f for f in fields if not f.name.startswith("common_")]

    def _tracepoint(self, category: str, event: str) -> list[TracepointField] | None:
        key = (category, event)
        if key not in self._tracepoints:
            from .tracepoints import tracepoint_format

            fmt = tracepoint_format(category, event)
            if fmt is None:
                self._tracepoints[key] = None
            else:
                self._tracepoints[key] = list(fmt.all_fields)
        return self._tracepoints[key]

    # -- symbols and hooks ---------------------------------------------------------------

    def kaddr(self, name: str) -> int | None:
        from .kallsyms import kaddr

        return kaddr(name)

    @cached_property
    def has_kprobes(self) -> bool:
        """Whether kprobes exist here; NN_KPROBES_AS_FENTRY=1 says no, so
        tests can take the fentry path on kernels that have both."""
        if os.environ.get("NN_KPROBES_AS_FENTRY") == "1":
            return False
        return os.path.exists("/sys/bus/event_source/devices/kprobe")
