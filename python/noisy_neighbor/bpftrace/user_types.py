"""The C structs a script declares before its probes (``struct x { int a;
char name[16]; };``): read well enough to type ``((struct x *)p)->name``,
and renamed in the generated C so they never clash with vmlinux.h's."""

from __future__ import annotations

import re

from . import ast
from .parser import INT_TYPE_NAMES
from .types import Kind, SizedType, int_type, string_type

__all__ = ["UserTypes"]

_STRUCT = re.compile(r"\b(struct|union)\s+([A-Za-z_]\w*)\s*\{(.*)\}\s*;?\s*$", re.S)
_MEMBER = re.compile(
    r"^(?P<type>.*?)(?P<stars>\**)\s*(?P<name>[A-Za-z_]\w*)\s*(?:\[(?P<count>\d+)\])?$"
)
_C_INTS = {
    "char": (1, True), "signed char": (1, True), "unsigned char": (1, False),
    "short": (2, True), "short int": (2, True), "unsigned short": (2, False),
    "int": (4, True), "signed": (4, True), "unsigned": (4, False), "unsigned int": (4, False),
    "long": (8, True), "long int": (8, True), "unsigned long": (8, False),
    "long long": (8, True), "unsigned long long": (8, False),
    "u8": (1, False), "u16": (2, False), "u32": (4, False), "u64": (8, False),
    "s8": (1, True), "s16": (2, True), "s32": (4, True), "s64": (8, True),
    "__u8": (1, False), "__u16": (2, False), "__u32": (4, False), "__u64": (8, False),
    "__s8": (1, True), "__s16": (2, True), "__s32": (4, True), "__s64": (8, True),
    "bool": (1, False), "_Bool": (1, False),
    "int8_t": (1, True), "int16_t": (2, True), "int32_t": (4, True), "int64_t": (8, True),
    "uint8_t": (1, False), "uint16_t": (2, False), "uint32_t": (4, False), "uint64_t": (8, False),
    **{name: spec for name, spec in INT_TYPE_NAMES.items()},
}  # fmt: skip


class UserTypes:
    def __init__(self, definitions: list[ast.CDefinition]) -> None:
        self.texts = [d.text for d in definitions]
        #: "struct x" -> [(member, type, offset)], size
        self.records: dict[str, tuple[list[tuple[str, SizedType, int]], int]] = {}
        for text in self.texts:
            match = _STRUCT.search(text)
            if match:
                self._parse(
                    f"{match.group(1)} {match.group(2)}", match.group(3), match.group(1) == "union"
                )

    def has(self, name: str) -> bool:
        return name in self.records

    def c_name(self, name: str) -> str:
        kind, _, tag = name.partition(" ")
        return f"{kind} nn_user_{tag}"

    def _member_type(self, type_text: str, stars: str, count: str | None) -> SizedType | None:
        words = " ".join(w for w in type_text.split() if w not in ("const", "volatile"))
        if stars:
            target: SizedType
            if words in _C_INTS:
                target = int_type(*_C_INTS[words])
            elif words.startswith(("struct ", "union ")):
                target = SizedType(Kind.RECORD, struct=words)
            else:
                target = SizedType(Kind.NONE)
            ty = SizedType(Kind.POINTER, 8, elem=target)
            for _ in stars[1:]:
                ty = SizedType(Kind.POINTER, 8, elem=ty)
        elif words in _C_INTS:
            ty = int_type(*_C_INTS[words])
        elif words in self.records:
            ty = SizedType(Kind.RECORD, self.records[words][1], struct=words)
        else:
            return None
        if count is not None:
            n = int(count)
            if ty.kind is Kind.INT and ty.size == 1 and words in ("char", "signed char"):
                return string_type(n)
            return SizedType(Kind.ARRAY, ty.size * n, elem=ty, count=n)
        return ty

    def _parse(self, name: str, body: str, union: bool) -> None:
        members: list[tuple[str, SizedType, int]] = []
        offset = size = 0
        align_max = 1
        for raw in body.split(";"):
            decl = " ".join(raw.split())
            if not decl:
                continue
            match = _MEMBER.match(decl)
            if not match:
                continue
            ty = self._member_type(match.group("type"), match.group("stars"), match.group("count"))
            if ty is None:
                continue
            element = ty.elem if ty.kind is Kind.ARRAY and ty.elem is not None else ty
            align = 1 if ty.kind is Kind.STRING else min(max(element.size, 1), 8)
            align_max = max(align_max, align)
            if union:
                members.append((match.group("name"), ty, 0))
                size = max(size, ty.size)
                continue
            offset = (offset + align - 1) // align * align
            members.append((match.group("name"), ty, offset))
            offset += ty.size
            size = offset
        size = (size + align_max - 1) // align_max * align_max
        self.records[name] = (members, size)

    def member(self, struct: str, name: str) -> SizedType | None:
        for member, ty, _ in self.records[struct][0]:
            if member == name:
                return ty
        return None

    def sizeof(self, struct: str) -> int | None:
        record = self.records.get(struct)
        return record[1] if record else None

    def c_text(self) -> list[str]:
        """The definitions with every declared struct renamed."""
        out = []
        for text in self.texts:
            for name in self.records:
                kind, _, tag = name.partition(" ")
                text = re.sub(rf"\b{kind}\s+{tag}\b", self.c_name(name), text)
            out.append(text)
        return out
