"""bpftrace's grammar, by recursive descent: a script becomes a
:class:`~.ast.Program` whose every node knows its line and column.

Precedence, loosest first, as in C: ``?:``, ``||``, ``&&``, ``|``, ``^``,
``&``, ``== !=``, ``< <= > >=``, ``<< >>``, ``+ -``, ``* / %``, then the
unary operators and casts, then ``[] . -> ++ --``. Assignments are
statements, never expressions, as in bpftrace.
"""

from __future__ import annotations

from . import ast
from .diagnostics import Location, Source, fail
from .lexer import Lexer, Token
from .preprocess import preprocess

__all__ = ["INT_TYPE_NAMES", "parse"]

_BINARY_LEVELS = [
    ["||"],
    ["&&"],
    ["|"],
    ["^"],
    ["&"],
    ["==", "!="],
    ["<", "<=", ">", ">="],
    ["<<", ">>"],
    ["+", "-"],
    ["*", "/", "%"],
]
_COMPOUND = {"+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>="}
#: Integer types a cast may name, as bpftrace spells them.
INT_TYPE_NAMES = {
    f"{sign}int{bits}": (bits // 8, sign == "") for sign in ("", "u") for bits in (8, 16, 32, 64)
}
_C_TYPE_WORDS = {"unsigned", "signed", "char", "short", "int", "long", "void", "bool", "_Bool"}
_C_DEFINITION_WORDS = {"struct", "union", "enum", "typedef"}
_MACRO_DEPTH = 16


class Parser:
    def __init__(self, source: Source, text: str, macros: dict[str, str]) -> None:
        self.source = source
        self.lexer = Lexer(source, text)
        self.macros = macros
        self._peeked: Token | None = None
        self._in_predicate = False
        self._expanding: list[str] = []

    # -- tokens ---------------------------------------------------------------------

    def peek(self) -> Token:
        if self._peeked is None:
            self._peeked = self.lexer.next()
        return self._peeked

    def take(self) -> Token:
        token = self.peek()
        self._peeked = None
        return token

    def accept(self, text: str) -> Token | None:
        if self.peek().is_(text):
            return self.take()
        return None

    def expect(self, text: str) -> Token:
        token = self.peek()
        if not token.is_(text):
            raise self.unexpected(token, f"expecting {text}")
        return self.take()

    def unexpected(self, token: Token, expecting: str = "") -> Exception:
        what = "end of file" if token.kind == "eof" else token.text
        tail = f", {expecting}" if expecting else ""
        return fail(self.source, token.loc, f"syntax error, unexpected {what}{tail}")

    def _raw_mode(self) -> None:
        """Back to raw text: drop a peeked token (it is re-read raw)."""
        if self._peeked is not None:
            self.lexer.pos = self._offset_of(self._peeked)
            self._peeked = None

    def _offset_of(self, token: Token) -> int:
        return token.offset

    # -- program ----------------------------------------------------------------------

    def program(self) -> ast.Program:
        start = self.lexer.location(0, 1)
        definitions: list[ast.CDefinition] = []
        probes: list[ast.Probe] = []
        while not self.lexer.at_end():
            token = self.peek()
            if not probes and token.kind == "ident" and token.text in _C_DEFINITION_WORDS:
                self._raw_mode()
                raw = self.lexer.raw_until_semicolon_after_braces()
                definitions.append(ast.CDefinition(raw.loc, raw.text))
                continue
            probes.append(self.probe(len(probes)))
        if not probes:
            raise fail(self.source, None, "No probes were found in the program")
        return ast.Program(start, definitions, probes, dict(self.macros))

    def probe(self, index: int) -> ast.Probe:
        self._raw_mode()
        points = [self._attach_point()]
        while True:
            self.lexer.skip_space()
            if not self.lexer.text.startswith(",", self.lexer.pos):
                break
            self.lexer.pos += 1
            points.append(self._attach_point())
        predicate = None
        if self.accept("/"):
            self._in_predicate = True
            predicate = self.expr()
            self._in_predicate = False
            self.expect("/")
        body = self.block()
        return ast.Probe(points[0].loc, points, predicate, body, index)

    def _attach_point(self) -> ast.AttachPoint:
        token = self.lexer.attach_point()
        return ast.AttachPoint(token.loc, token.text)

    # -- statements -------------------------------------------------------------------

    def block(self) -> ast.Block:
        open_ = self.expect("{")
        stmts: list[ast.Stmt] = []
        while not self.peek().is_("}"):
            if self.peek().kind == "eof":
                raise self.unexpected(self.peek(), "expecting }")
            if self.accept(";"):
                continue
            stmt, needs_separator = self.statement()
            stmts.append(stmt)
            if needs_separator and not self.peek().is_("}"):
                self.expect(";")
        self.take()
        return ast.Block(open_.loc, stmts)

    def statement(self) -> tuple[ast.Stmt, bool]:
        """A statement, and whether a ``;`` must follow it (not after a
        block, as in C)."""
        token = self.peek()
        if token.kind == "ident":
            if token.text == "if":
                return self.if_statement(), False
            if token.text in ("unroll", "while"):
                self.take()
                self.expect("(")
                head = self.expr()
                self.expect(")")
                body = self.block()
                if token.text == "unroll":
                    return ast.Unroll(token.loc, head, body), False
                return ast.While(token.loc, head, body), False
            if token.text in ("return", "break", "continue"):
                self.take()
                return ast.Jump(token.loc, token.text), True
        if token.is_("{"):
            block = self.block()
            return ast.If(token.loc, ast.Int(token.loc, 1), block), False
        target = self.expr()
        op_token = self.peek()
        if op_token.is_("=") or (op_token.kind == "punct" and op_token.text in _COMPOUND):
            self.take()
            op = None if op_token.text == "=" else op_token.text[:-1]
            value = self.expr()
            if isinstance(target, ast.Map):
                return ast.AssignMap(target.loc, target, value, op), True
            if isinstance(target, ast.Var):
                return ast.AssignVar(target.loc, target, value, op), True
            raise fail(
                self.source,
                target.loc,
                "only maps (@name) and variables ($name) can be assigned to",
            )
        return ast.ExprStmt(target.loc, target), True

    def if_statement(self) -> ast.If:
        token = self.take()
        self.expect("(")
        cond = self.expr()
        self.expect(")")
        then = self.block()
        otherwise = None
        if self.peek().kind == "ident" and self.peek().text == "else":
            else_token = self.take()
            if self.peek().kind == "ident" and self.peek().text == "if":
                nested = self.if_statement()
                otherwise = ast.Block(else_token.loc, [nested])
            else:
                otherwise = self.block()
        return ast.If(token.loc, cond, then, otherwise)

    # -- expressions -------------------------------------------------------------------

    def expr(self) -> ast.Expr:
        cond = self.binary(0)
        if self.accept("?"):
            then = self.expr()
            self.expect(":")
            otherwise = self.expr()
            return ast.Ternary(cond.loc.span(otherwise.loc), cond, then, otherwise)
        return cond

    def binary(self, level: int) -> ast.Expr:
        if level == len(_BINARY_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while True:
            token = self.peek()
            if token.kind != "punct" or token.text not in _BINARY_LEVELS[level]:
                return left
            if token.text == "/" and self._in_predicate and self._ends_predicate():
                return left
            self.take()
            right = self.binary(level + 1)
            left = ast.Binop(left.loc.span(right.loc), token.text, left, right)

    def _ends_predicate(self) -> bool:
        """Whether the peeked ``/`` closes a predicate: the next thing after
        it is the probe's ``{``."""
        rest = self.lexer.text[self.lexer.pos :].lstrip()
        return rest.startswith("{")

    def unary(self) -> ast.Expr:
        token = self.peek()
        if token.kind == "punct" and token.text in ("!", "~", "-", "+", "*", "&", "++", "--"):
            self.take()
            operand = self.unary()
            if token.text == "-" and isinstance(operand, ast.Int) and operand.loc == token.loc:
                return operand
            return ast.Unop(token.loc.span(operand.loc), token.text, operand)
        if token.is_("(") and self._cast_ahead():
            self.take()
            to = self.type_spec()
            self.expect(")")
            operand = self.unary()
            return ast.Cast(token.loc.span(operand.loc), to, operand)
        return self.postfix(self.primary())

    def _cast_ahead(self) -> bool:
        """After a ``(``: does a type follow (a cast), not an expression?"""
        save_pos, save_step, save_peek = self.lexer.pos, self.lexer.step, self._peeked
        try:
            self.take()
            first = self.take()
            if first.kind != "ident":
                return False
            if first.text in INT_TYPE_NAMES or first.text in _C_TYPE_WORDS:
                return True
            if first.text in _C_DEFINITION_WORDS:
                return True
            following = self.take()
            return following.is_("*")  # `(pid_t *)x`: a typedef pointer
        except Exception:
            return False
        finally:
            self.lexer.pos, self.lexer.step, self._peeked = save_pos, save_step, save_peek

    def type_spec(self) -> ast.TypeSpec:
        first = self.take()
        if first.kind != "ident":
            raise self.unexpected(first, "expecting a type")
        words = [first.text]
        if first.text in ("struct", "union", "enum"):
            name = self.take()
            if name.kind != "ident":
                raise self.unexpected(name, "expecting a struct name")
            words.append(name.text)
        else:
            while self.peek().kind == "ident" and self.peek().text in _C_TYPE_WORDS:
                words.append(self.take().text)
        pointers = 0
        while self.accept("*"):
            pointers += 1
        array = None
        if self.accept("["):
            size = self.take()
            if size.kind != "int":
                raise self.unexpected(size, "expecting an array length")
            array = int(str(size.value))
            self.expect("]")
        return ast.TypeSpec(first.loc, " ".join(words), pointers, array)

    def postfix(self, expr: ast.Expr) -> ast.Expr:
        while True:
            token = self.peek()
            if token.is_("["):
                self.take()
                index = self.expr()
                end = self.expect("]")
                expr = ast.Index(expr.loc.span(end.loc), expr, index)
            elif token.is_(".") or token.is_("->"):
                self.take()
                name = self.take()
                if name.kind not in ("ident", "int"):
                    raise self.unexpected(name, "expecting a field name")
                expr = ast.Field(expr.loc.span(name.loc), expr, name.text, token.text == "->")
            elif token.is_("++") or token.is_("--"):
                self.take()
                expr = ast.Unop(expr.loc.span(token.loc), token.text, expr, postfix=True)
            else:
                return expr

    def primary(self) -> ast.Expr:
        token = self.take()
        kind = token.kind
        if kind == "int":
            return ast.Int(token.loc, int(str(token.value)))
        if kind == "string":
            return ast.Str(token.loc, str(token.value))
        if kind == "var":
            return ast.Var(token.loc, token.text)
        if kind == "param":
            return ast.Param(token.loc, -1 if token.value == "#" else int(str(token.value)))
        if kind == "map":
            keys: list[ast.Expr] = []
            loc = token.loc
            if self.accept("["):
                keys = self.expr_list("]")
                loc = loc.span(self.take().loc)
            return ast.Map(loc, token.text, keys)
        if token.is_("("):
            elems = self.expr_list(")")
            close = self.take()
            if len(elems) == 1 and not self._trailing_comma:
                return elems[0]
            return ast.Tuple(token.loc.span(close.loc), elems)
        if kind == "ident":
            return self.named(token)
        raise self.unexpected(token)

    _trailing_comma = False

    def expr_list(self, close: str) -> list[ast.Expr]:
        """Expressions separated by commas, up to (not taking) ``close``."""
        items: list[ast.Expr] = []
        self._trailing_comma = False
        while not self.peek().is_(close):
            items.append(self.expr())
            if not self.accept(","):
                break
            self._trailing_comma = True
        if not self.peek().is_(close):
            raise self.unexpected(self.peek(), f"expecting {close}")
        return items

    def named(self, token: Token) -> ast.Expr:
        name = token.text
        if name in ("sizeof", "offsetof") and self.peek().is_("("):
            self.take()
            of: ast.TypeSpec | ast.Expr
            of = self.type_spec() if self._type_follows() else self.expr()
            end = self.expect(")")
            return ast.Sizeof(token.loc.span(end.loc), of)
        if self.peek().is_("("):
            self.take()
            args = self.expr_list(")")
            end = self.take()
            return ast.Call(token.loc.span(end.loc), name, args, token.loc)
        if name in self.macros and name not in self._expanding:
            return self.expand_macro(token)
        return ast.Builtin(token.loc, name)

    def _type_follows(self) -> bool:
        token = self.peek()
        return token.kind == "ident" and (
            token.text in INT_TYPE_NAMES
            or token.text in _C_TYPE_WORDS
            or token.text in ("struct", "union", "enum")
        )

    def expand_macro(self, token: Token) -> ast.Expr:
        """A macro's value, parsed as an expression and placed where its name
        was (so errors inside point at the name)."""
        if len(self._expanding) >= _MACRO_DEPTH:
            raise fail(self.source, token.loc, f"macro {token.text} expands too deeply")
        body = self.macros[token.text]
        inner = Parser(self.source, body, self.macros)
        inner._expanding = [*self._expanding, token.text]
        try:
            expr = inner.expr()
            if inner.peek().kind != "eof":
                raise inner.unexpected(inner.peek())
        except Exception as err:
            raise fail(
                self.source, token.loc, f"cannot use macro {token.text} ({body!r}) here: {err}"
            ) from None
        _relocate(expr, token.loc)
        return expr


def _relocate(node: object, loc: Location) -> None:
    """Gives a macro's expansion the location of the macro's name."""
    if isinstance(node, ast.Node):
        node.loc = loc
        for value in vars(node).values():
            if isinstance(value, list):
                for item in value:
                    _relocate(item, loc)
            else:
                _relocate(value, loc)


def parse(
    text: str,
    name: str = "stdin",
    predefined: dict[str, str] | None = None,
    includes: list[str] | None = None,
) -> ast.Program:
    """The syntax tree of a script (``name`` names it in errors: ``stdin``
    for ``-e``, its path for a file). Numeric macros of the headers it
    includes (and of ``includes``) are constants; so are the kernel's
    constants of :data:`~.headers.KERNEL_MACROS`. Raises ScriptError."""
    from .headers import KERNEL_MACROS, HeaderNotFound, header_macros

    source = Source(text, name)
    pre = preprocess(source, predefined)
    wanted = [*(includes or []), *pre.includes]
    try:
        from_headers = header_macros(wanted)
    except HeaderNotFound as err:
        raise fail(source, None, str(err)) from None
    macros = {**KERNEL_MACROS, **from_headers, **pre.macros}
    program = Parser(source, pre.text, macros).program()
    program.includes = pre.includes
    return program
