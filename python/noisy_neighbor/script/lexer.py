"""Tokens of bpftrace's language, each with its location. The parser asks for
one token at a time; a probe's attach points are read as raw text instead
(:meth:`Lexer.attach_point`), since ``uprobe:/bin/bash:readline`` or
``tracepoint:syscalls:sys_enter_*`` are not made of ordinary tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .diagnostics import Location, Source, fail

__all__ = ["Lexer", "Token"]

# Longest first, so `<<=` wins over `<<` and `<`.
_PUNCTUATION = sorted(
    [
        "<<=", ">>=", "==", "!=", "<=", ">=", "<<", ">>", "&&", "||", "++", "--", "->",
        "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=",
        "+", "-", "*", "/", "%", "&", "|", "^", "!", "~", "<", ">", "=", "?", ":",
        ";", ",", ".", "(", ")", "[", "]", "{", "}",
    ],
    key=len,
    reverse=True,
)  # fmt: skip
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAP = re.compile(r"@[A-Za-z0-9_]*")
_VAR = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*")
_PARAM = re.compile(r"\$([0-9]+|#)")
# 1e6 is an integer in bpftrace (execsnoop.bt divides by it); so are 1_000 and 0x1f.
_INT = re.compile(r"0[xX][0-9a-fA-F]+|[0-9][0-9_]*(?:[eE][0-9]+)?|[0-9]")
_INT_SUFFIX = re.compile(r"(?:[uU](?:ll|LL|l|L)?|(?:ll|LL|l|L)[uU]?)\b")
_SPACE = re.compile(r"\s+")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'", "a": "\a",
            "b": "\b", "f": "\f", "v": "\v", "e": "\x1b"}  # fmt: skip


@dataclass(frozen=True)
class Token:
    """``kind`` is ``ident``, ``map``, ``var``, ``param``, ``int``, ``string``,
    ``punct`` or ``eof``; ``text`` is as written, ``value`` the decoded
    value of an int or string; ``offset`` is where the text starts (``loc``
    may start earlier, see :meth:`Lexer.token_location`)."""

    kind: str
    text: str
    loc: Location
    value: object = None
    offset: int = 0

    def is_(self, text: str) -> bool:
        return self.kind == "punct" and self.text == text


class Lexer:
    def __init__(self, source: Source, text: str) -> None:
        self.source = source
        self.text = text
        self.pos = 0
        # bpftrace's lexer starts a new location only at whitespace (its
        # `loc.step()`): a token right after another one, as `pdi` in
        # `printf("%d\n",pdi)`, is located from the first of them.
        self.step = 0
        # start offset of each line, for locations
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    # -- positions ----------------------------------------------------------------

    def location(self, start: int, end: int) -> Location:
        line = self._line_of(start)
        column = start - self._line_starts[line - 1] + 1
        end_line = self._line_of(max(end - 1, start))
        end_column = end - self._line_starts[line - 1] + 1 if end_line == line else column + 1
        return Location(line, column, max(end_column, column + 1))

    def token_location(self, start: int, end: int) -> Location:
        """Where bpftrace 0.17 says a token from ``start`` to ``end`` is:
        from the end of the last whitespace before it (``loc.step()`` runs
        only there), so it can begin at an earlier token; at the end of the
        text after whitespace, it is empty."""
        begin = min(self.step, start)
        line = self._line_of(begin)
        column = begin - self._line_starts[line - 1] + 1
        end_line = self._line_of(max(end - 1, begin))
        if end_line == line:
            return Location(line, column, max(end - self._line_starts[line - 1] + 1, column))
        return Location(line, column, end - self._line_starts[end_line - 1] + 1, end_line)

    def _line_of(self, offset: int) -> int:
        lo, hi = 0, len(self._line_starts)
        while lo + 1 < hi:
            mid = (lo + hi) // 2
            if self._line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid
        return lo + 1

    def skip_space(self) -> None:
        text = self.text
        while True:
            match = _SPACE.match(text, self.pos)
            if match:
                self.pos = self.step = match.end()
            if text.startswith("//", self.pos):
                newline = text.find("\n", self.pos)
                self.pos = len(text) if newline < 0 else newline
            elif text.startswith("/*", self.pos):
                close = text.find("*/", self.pos + 2)
                if close < 0:
                    where = self.location(self.pos, self.pos + 2)
                    raise fail(self.source, where, "unterminated comment")
                newline = text.rfind("\n", self.pos, close)
                if newline >= 0:
                    self.step = newline + 1
                self.pos = close + 2
            else:
                return

    def at_end(self) -> bool:
        self.skip_space()
        return self.pos >= len(self.text)

    # -- tokens ---------------------------------------------------------------------

    def next(self) -> Token:
        self.skip_space()
        text, start = self.text, self.pos
        if start >= len(text):
            return Token("eof", "", self.token_location(start, start), offset=start)
        c = text[start]
        if c == '"':
            return self._string(start)
        for kind, pattern in (("var", _VAR), ("map", _MAP)):
            match = pattern.match(text, start)
            if match:
                return self._token(kind, match.end())
        match = _PARAM.match(text, start)
        if match:
            return self._token("param", match.end(), match.group(1))
        if c.isdigit():
            return self._int(start)
        match = _IDENT.match(text, start)
        if match:
            return self._token("ident", match.end())
        for punct in _PUNCTUATION:
            if text.startswith(punct, start):
                return self._token("punct", start + len(punct))
        raise fail(
            self.source,
            self.location(start, start + 1),
            f"syntax error, unexpected character '{c}'",
        )

    def _token(self, kind: str, end: int, value: object = None) -> Token:
        start, self.pos = self.pos, end
        return Token(kind, self.text[start:end], self.token_location(start, end), value, start)

    def _int(self, start: int) -> Token:
        match = _INT.match(self.text, start)
        assert match is not None  # a digit starts every integer
        end = match.end()
        digits = match.group(0).replace("_", "")
        suffix = _INT_SUFFIX.match(self.text, end)
        if suffix:
            end = suffix.end()
        elif end < len(self.text) and (self.text[end].isalnum() or self.text[end] == "_"):
            bad = re.match(r"\w+", self.text[start:]).group(0)  # type: ignore[union-attr]
            raise fail(
                self.source, self.location(start, start + len(bad)), f"invalid integer: {bad}"
            )
        if re.fullmatch(r"[0-9]+[eE][0-9]+", digits):
            mantissa, exponent = re.split("[eE]", digits)
            value = int(mantissa) * 10 ** int(exponent)
        elif digits.lower().startswith("0x"):
            value = int(digits, 16)
        elif len(digits) > 1 and digits.startswith("0"):
            try:
                value = int(digits, 8)
            except ValueError:
                raise fail(
                    self.source, self.location(start, end), f"invalid octal integer: {digits}"
                ) from None
        else:
            value = int(digits)
        if value >= 1 << 64:
            raise fail(self.source, self.location(start, end), f"integer too large: {digits}")
        return self._token("int", end, value)

    def _string(self, start: int) -> Token:
        text, i = self.text, start + 1
        chars: list[str] = []
        while True:
            if i >= len(text) or text[i] == "\n":
                raise fail(self.source, self.location(start, i), "unterminated string")
            c = text[i]
            if c == '"':
                break
            if c != "\\":
                chars.append(c)
                i += 1
                continue
            escape = text[i + 1 : i + 2]
            octal = re.match(r"[0-7]{1,3}", text[i + 1 : i + 4])
            hexa = re.match(r"x([0-9a-fA-F]{1,2})", text[i + 1 : i + 4])
            if escape in _ESCAPES:
                chars.append(_ESCAPES[escape])
                i += 2
            elif octal:
                chars.append(chr(int(octal.group(0), 8) & 0xFF))
                i += 1 + len(octal.group(0))
            elif hexa:
                chars.append(chr(int(hexa.group(1), 16)))
                i += 1 + len(hexa.group(0))
            else:
                raise fail(
                    self.source,
                    self.location(i, i + 2),
                    f"invalid escape character '\\{escape}'",
                )
        self.pos = i + 1
        location = self.token_location(start, i + 1)
        return Token("string", text[start : i + 1], location, "".join(chars), start)

    # -- probe headers ------------------------------------------------------------

    def attach_point(self) -> Token:
        """The raw text of one attach point: everything up to whitespace, a
        ``,`` or a ``{`` (quoted parts may hold those)."""
        self.skip_space()
        text, start = self.text, self.pos
        i = start
        while i < len(text):
            c = text[i]
            if c == '"':
                close = text.find('"', i + 1)
                if close < 0:
                    raise fail(self.source, self.location(i, i + 1), "unterminated string")
                i = close + 1
                continue
            if c.isspace() or c in ",{" or text.startswith("//", i) or text.startswith("/*", i):
                break
            i += 1
        if i == start:
            c = text[start : start + 1] or "end of file"
            raise fail(
                self.source, self.location(start, start + 1), f"syntax error, unexpected {c}"
            )
        self.pos = i
        return Token("attach", text[start:i], self.location(start, i), offset=start)

    def raw_until_semicolon_after_braces(self) -> Token:
        """A C definition at the top of a script (``struct x { ... };``):
        everything up to the ``;`` after its braces close."""
        start, depth, i = self.pos, 0, self.pos
        text = self.text
        while i < len(text):
            c = text[i]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0 and not re.match(r"\s*[;A-Za-z_*]", text[i + 1 :]):
                    # bpftrace takes `struct x { ... }` without the `;` too
                    self.pos = i + 1
                    return Token("c", text[start : i + 1] + ";", self.location(start, i + 1))
                if depth == 0 and re.match(r"\s*(BEGIN|END|[a-z]+:)", text[i + 1 :]):
                    self.pos = i + 1
                    return Token("c", text[start : i + 1] + ";", self.location(start, i + 1))
            elif c == ";" and depth == 0:
                self.pos = i + 1
                return Token("c", text[start : i + 1], self.location(start, i + 1))
            i += 1
        raise fail(self.source, self.location(start, start + 1), "C definition without a final ';'")
