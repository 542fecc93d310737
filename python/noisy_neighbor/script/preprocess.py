"""The C preprocessor lines of a script, as bpftrace honours them: ``#define``
(object-like macros, expanded in the program), ``#include`` (recorded; the
kernel's types come from BTF instead of headers) and conditionals, with
``BPFTRACE_HAVE_BTF`` defined as bpftrace defines it when the kernel has BTF.

Directive lines, and lines a conditional leaves out, become blank lines, so
every line and column of what is left is where it was in the script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .diagnostics import Location, Source, fail

__all__ = ["Preprocessed", "preprocess"]

_DIRECTIVE = re.compile(r"^\s*#\s*(\w+)\s*(.*?)\s*$")
_DEFINE = re.compile(r"([A-Za-z_]\w*)(\([^)]*\))?\s*(.*)$")
_DEFINED = re.compile(r"defined\s*\(\s*(\w+)\s*\)|defined\s+(\w+)")


@dataclass
class Preprocessed:
    """The script without its directives, the macros it defined, and the
    headers it named (``<linux/sched.h>`` style, as written)."""

    text: str
    macros: dict[str, str] = field(default_factory=dict)
    includes: list[str] = field(default_factory=list)


def _condition(expr: str, macros: dict[str, str]) -> bool:
    """A ``#if`` expression: ``defined(X)``, integers, ``!``, ``&&``, ``||``
    and macros that expand to integers; anything else counts as 0, as an
    unknown identifier does in C."""
    expr = _DEFINED.sub(lambda m: "1" if (m.group(1) or m.group(2)) in macros else "0", expr)
    expr = re.sub(r"[A-Za-z_]\w*", lambda m: macros.get(m.group(0), "0") or "0", expr)
    expr = expr.replace("&&", " and ").replace("||", " or ")
    expr = re.sub(r"!(?!=)", " not ", expr)
    if not re.fullmatch(r"[\d\s()a-z<>=!+\-*/%]*", expr):
        return False
    try:
        return bool(eval(expr, {"__builtins__": {}}, {}))
    except Exception:
        return False


def _commented_offsets(text: str) -> set[int]:
    """Line-start offsets that lie inside a ``/* */`` comment (a ``#`` there
    is prose, not a directive). Strings and ``//`` comments are skipped so
    that a ``/*`` inside them opens nothing."""
    inside: set[int] = set()
    i, n, in_comment = 0, len(text), False
    while i < n:
        if in_comment:
            close = text.find("*/", i)
            end = n if close < 0 else close + 2
            line = text.find("\n", i, end)
            while line >= 0:
                inside.add(line + 1)
                line = text.find("\n", line + 1, end)
            i, in_comment = end, False
        elif text.startswith("/*", i):
            i, in_comment = i + 2, True
        elif text.startswith("//", i):
            newline = text.find("\n", i)
            i = n if newline < 0 else newline
        elif text[i] == '"':
            close = i + 1
            while close < n and text[close] not in '"\n':
                close += 2 if text[close] == "\\" else 1
            i = close + 1
        else:
            i += 1
    return inside


def preprocess(source: Source, predefined: dict[str, str] | None = None) -> Preprocessed:
    macros = {"BPFTRACE_HAVE_BTF": "1", **(predefined or {})}
    result = Preprocessed(text="", macros={})
    # one entry per open conditional: (taking this branch, some branch taken, parent active)
    stack: list[tuple[bool, bool, bool]] = []
    active = True
    out: list[str] = []
    lines = source.text.split("\n")
    commented = _commented_offsets(source.text)
    offset = 0
    continued = False
    for number, line in enumerate(lines, 1):
        line_start, offset = offset, offset + len(line) + 1
        if number == 1 and line.startswith("#!"):  # an executable script's interpreter line
            out.append("")
            continue
        if continued:  # a directive continued with a backslash
            continued = line.rstrip().endswith("\\")
            out.append("")
            continue
        match = None if line_start in commented else _DIRECTIVE.match(line)
        if not match:
            out.append(line if active else "")
            continue
        out.append("")
        continued = line.rstrip().endswith("\\")
        name, rest = match.group(1), match.group(2).rstrip("\\").strip()
        where = Location(number, line.index("#") + 1, len(line) + 1)
        if name in ("ifdef", "ifndef", "if"):
            if name == "if":
                taken = _condition(rest, macros)
            else:
                taken = (rest.split()[0] in macros if rest else False) == (name == "ifdef")
            stack.append((active and taken, taken, active))
            active = active and taken
        elif name in ("elif", "else"):
            if not stack:
                raise fail(source, where, f"#{name} without #if")
            _, done, parent = stack.pop()
            taken = not done and (name == "else" or _condition(rest, macros))
            stack.append((parent and taken, done or taken, parent))
            active = parent and taken
        elif name == "endif":
            if not stack:
                raise fail(source, where, "#endif without #if")
            active = stack.pop()[2]
        elif not active:
            continue
        elif name == "define":
            definition = _DEFINE.match(rest)
            if not definition:
                raise fail(source, where, f"#define needs a name: {line.strip()}")
            if definition.group(2):
                raise fail(source, where, "function-like macros are not supported: define a value")
            macros[definition.group(1)] = definition.group(3).split("//")[0].strip()
            result.macros[definition.group(1)] = macros[definition.group(1)]
        elif name == "undef":
            macros.pop(rest, None)
            result.macros.pop(rest, None)
        elif name == "include":
            result.includes.append(rest)
        elif name in ("pragma", "line", "warning"):
            pass
        elif name == "error":
            raise fail(source, where, f"#error {rest}")
        else:
            raise fail(source, where, f"unknown preprocessor directive #{name}")
    if stack:
        raise fail(source, None, "#if without #endif")
    result.text = "\n".join(out)
    return result
