"""How the generated C holds each type: scalars (integers, and everything
the kernel side keeps as a number: pointers, records by address, kernel
symbols, stack ids, uids, timestamps) as 64-bit integers; strings as char
arrays; tuples, buffers, addresses as structs declared once per shape."""

from __future__ import annotations

from .types import Kind, SizedType

__all__ = ["SCALAR_KINDS", "CTypes"]

#: Kinds the generated C keeps in one 64-bit integer.
SCALAR_KINDS = frozenset(
    {
        Kind.INT,
        Kind.POINTER,
        Kind.RECORD,
        Kind.ARRAY,
        Kind.CTX,
        Kind.KSYM,
        Kind.KSTACK,
        Kind.USERNAME,
        Kind.PROBE,
        Kind.TIMESTAMP,
        Kind.CGROUP_PATH,
        Kind.STRERROR,
    }
)
_FIXED_STRUCTS = {
    Kind.INET: ("struct nn_inet", "struct nn_inet {\n\tu64 family;\n\tu8 addr[16];\n};"),
    Kind.MAC: ("struct nn_mac", "struct nn_mac {\n\tu8 addr[6];\n};"),
    Kind.USYM: ("struct nn_uaddr", "struct nn_uaddr {\n\tu64 address;\n\tu64 pid;\n};"),
    Kind.USTACK: ("struct nn_uaddr", "struct nn_uaddr {\n\tu64 address;\n\tu64 pid;\n};"),
}


def int_c_type(size: int, signed: bool) -> str:
    return f"{'s' if signed else 'u'}{size * 8}"


class CTypes:
    """The structs a script's types need, declared in first-use order."""

    def __init__(self) -> None:
        self._names: dict[object, str] = {}
        self.declarations: list[str] = []

    def _declare(self, key: object, name: str, body: str) -> str:
        if key not in self._names:
            self._names[key] = name
            self.declarations.append(body)
        return self._names[key]

    def parts(self, ty: SizedType) -> tuple[str, str]:
        """(base, suffix) to declare a variable of ``ty``: ``base name suffix``."""
        kind = ty.kind
        if kind is Kind.INT:
            return int_c_type(ty.size if ty.size in (1, 2, 4, 8) else 8, ty.signed), ""
        if kind in SCALAR_KINDS:
            return "u64", ""
        if kind is Kind.STRING:
            return "char", f"[{ty.size}]"
        if kind is Kind.BUFFER:
            name = f"struct nn_buf_{ty.size}"
            body = f"{name} {{\n\tu32 length;\n\tu8 data[{ty.size}];\n}};"
            return self._declare(("buf", ty.size), name, body), ""
        if kind is Kind.TUPLE:
            key = ("tuple", ty.fields)
            if key not in self._names:
                # members first: a nested tuple is declared (and numbered) before this one
                members = "".join(f"\t{self.decl(f, f'e{i}')};\n" for i, f in enumerate(ty.fields))
                tuples = [k for k in self._names if isinstance(k, tuple) and k[0] == "tuple"]
                name = f"struct nn_tuple_{len(tuples)}"
                self._declare(key, name, f"{name} {{\n{members}}};")
            return self._names[key], ""
        if kind in _FIXED_STRUCTS:
            name, body = _FIXED_STRUCTS[kind]
            return self._declare(name, name, body), ""
        if kind in (Kind.COUNT, Kind.SUM, Kind.HIST, Kind.LHIST):
            return "s64", ""
        if kind in (Kind.MIN, Kind.MAX):
            return "struct nn_minmax", ""
        if kind in (Kind.AVG, Kind.STATS):
            return "struct nn_stats", ""
        raise ValueError(f"no C storage for {ty.name}")

    def decl(self, ty: SizedType, name: str) -> str:
        base, suffix = self.parts(ty)
        return f"{base} {name}{suffix}"

    def type_name(self, ty: SizedType) -> str:
        """The type as a C type name (``char[16]``), for sizeof and __type."""
        base, suffix = self.parts(ty)
        return f"{base}{suffix}"

    def struct(self, name: str, members: list[tuple[SizedType, str]]) -> str:
        """Declares ``struct name`` with these members (once) and returns it."""
        body = "".join(f"\t{self.decl(ty, member)};\n" for ty, member in members)
        return self._declare(("struct", name), f"struct {name}", f"struct {name} {{\n{body}}};")


def alignment(ty: SizedType) -> int:
    """The C alignment of how the generated C holds ``ty``."""
    kind = ty.kind
    if kind is Kind.INT:
        return ty.size if ty.size in (1, 2, 4, 8) else 8
    if kind in SCALAR_KINDS or kind in (Kind.INET, Kind.USYM, Kind.USTACK):
        return 8
    if kind is Kind.BUFFER:
        return 4
    if kind is Kind.TUPLE:
        return max((alignment(f) for f in ty.fields), default=1)
    return 1


def storage_size(ty: SizedType) -> int:
    """Bytes the generated C's struct or variable of ``ty`` takes, padding
    included (C's layout rules, which bpftrace's tuples follow too)."""
    kind = ty.kind
    if kind is Kind.INT:
        return ty.size if ty.size in (1, 2, 4, 8) else 8
    if kind in SCALAR_KINDS:
        return 8
    if kind is Kind.STRING:
        return ty.size
    if kind is Kind.BUFFER:
        return (4 + ty.size + 3) // 4 * 4
    if kind is Kind.TUPLE:
        offset = 0
        for f in ty.fields:
            align = alignment(f)
            offset = (offset + align - 1) // align * align + storage_size(f)
        align = alignment(ty)
        return (offset + align - 1) // align * align
    if kind is Kind.INET:
        return 24
    if kind is Kind.MAC:
        return 6
    return 16
