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


class IncompleteType(ValueError):
    """A member of a struct the script declares has a struct type nobody
    declares (clang's "incomplete type")."""


def _split_members(body: str) -> list[str]:
    """Member declarations at the body's top level (nested braces kept)."""
    out, depth, start = [], 0, 0
    for i, c in enumerate(body):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == ";" and depth == 0:
            out.append(body[start:i].strip())
            start = i + 1
    if body[start:].strip():
        out.append(body[start:].strip())
    return [m for m in out if m]


def _name_anonymous(text: str) -> str:
    """Gives each anonymous struct or union inside a definition a name
    (``struct foo__anon0``), so the generated C can cast to it."""
    first = text.find("{")
    match = None if first < 0 else re.match(r"\s*(?:struct|union)\s+(\w+)", text)
    if match is None:
        return text
    outer = match.group(1)
    count = iter(range(1 << 30))
    head, body = text[: first + 1], text[first + 1 :]
    body = re.sub(
        r"\b(struct|union)(\s*)\{", lambda m: f"{m.group(1)} {outer}__anon{next(count)} {{", body
    )
    return head + body


class UserTypes:
    def __init__(self, definitions: list[ast.CDefinition], known=None) -> None:
        self.texts = [d.text for d in definitions]
        #: tells whether the kernel's BTF has a struct (``struct x``)
        self.known = known or (lambda name: False)
        #: "struct x" -> [(member, type, offset)], size
        self.records: dict[str, tuple[list[tuple[str, SizedType, int]], int]] = {}
        self.declared: list[str] = []
        self.texts = [_name_anonymous(text) for text in self.texts]
        for text in self.texts:
            match = _STRUCT.search(text)
            if match:
                name = f"{match.group(1)} {match.group(2)}"
                self.declared.append(name)
                self._parse(name, match.group(3), match.group(1) == "union")

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
        elif words.startswith(("struct ", "union ")):
            if not self.known(words):
                raise IncompleteType(f"field has incomplete type '{words}'")
            return None
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
        for decl in _split_members(body):
            decl = " ".join(decl.split())
            nested = re.match(r"^(struct|union)\s*(\w+)\s*\{(.*)\}\s*(\w+)$", decl, re.S)
            if nested:
                inner = f"{nested.group(1)} {nested.group(2)}"
                self.declared.append(inner)
                self._parse(inner, nested.group(3), nested.group(1) == "union")
                ty: SizedType | None = SizedType(Kind.RECORD, self.records[inner][1], struct=inner)
                member = nested.group(4)
            else:
                match = _MEMBER.match(decl)
                if not match:
                    continue
                ty = self._member_type(
                    match.group("type"), match.group("stars"), match.group("count")
                )
                member = match.group("name")
            if ty is None:
                continue
            element = ty.elem if ty.kind is Kind.ARRAY and ty.elem is not None else ty
            if ty.kind is Kind.RECORD:
                align = 8 if ty.size >= 8 else 4
            else:
                align = 1 if ty.kind is Kind.STRING else min(max(element.size, 1), 8)
            align_max = max(align_max, align)
            if union:
                members.append((member, ty, 0))
                size = max(size, ty.size)
                continue
            offset = (offset + align - 1) // align * align
            members.append((member, ty, offset))
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
            for name in self.declared:
                kind, _, tag = name.partition(" ")
                text = re.sub(rf"\b{kind}\s+{tag}\b", self.c_name(name), text)
            out.append(text)
        return out
