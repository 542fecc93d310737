"""The syntax tree of a script. Every node has its :class:`Location`; the
checker fills in each expression's ``type`` (a :class:`SizedType`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .diagnostics import Location
from .types import SizedType

__all__ = [
    "AssignMap",
    "AssignVar",
    "AttachPoint",
    "Binop",
    "Block",
    "Builtin",
    "CDefinition",
    "Call",
    "Cast",
    "Expr",
    "ExprStmt",
    "Field",
    "Identifier",
    "If",
    "Index",
    "Int",
    "Jump",
    "Map",
    "Node",
    "Param",
    "Probe",
    "Program",
    "Sizeof",
    "Stmt",
    "Str",
    "Ternary",
    "Tuple",
    "TypeSpec",
    "Unop",
    "Unroll",
    "Var",
    "While",
]


@dataclass(eq=False)
class Node:
    loc: Location


# -- expressions --------------------------------------------------------------------


@dataclass(eq=False)
class Expr(Node):
    type: SizedType | None = field(default=None, init=False)


@dataclass(eq=False)
class Int(Expr):
    value: int


@dataclass(eq=False)
class Str(Expr):
    value: str


@dataclass(eq=False)
class Builtin(Expr):
    """``pid``, ``comm``, ``args``, ``retval``, ``arg0``, ``sarg1``..."""

    name: str


@dataclass(eq=False)
class Identifier(Expr):
    """A bare name that is not a builtin: an enum constant or a macro."""

    name: str


@dataclass(eq=False)
class Param(Expr):
    """``$1`` (``index`` 1) or ``$#`` (``index`` -1)."""

    index: int

    @property
    def text(self) -> str:
        return "$#" if self.index == -1 else f"${self.index}"


@dataclass(eq=False)
class Var(Expr):
    name: str  # with its $


@dataclass(eq=False)
class Map(Expr):
    name: str  # with its @
    keys: list[Expr] = field(default_factory=list)


@dataclass(eq=False)
class Call(Expr):
    name: str
    args: list[Expr] = field(default_factory=list)
    #: the name's own location: bpftrace points there for an unknown function
    name_loc: Location | None = None


@dataclass(eq=False)
class Binop(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass(eq=False)
class Unop(Expr):
    """``op`` is one of ``! ~ - + * &`` (prefix), ``++``/``--`` with
    ``postfix`` telling which side."""

    op: str
    operand: Expr
    postfix: bool = False


@dataclass(eq=False)
class Ternary(Expr):
    cond: Expr
    then: Expr
    otherwise: Expr


@dataclass(eq=False)
class Field(Expr):
    """``expr.name`` or ``expr->name`` (``arrow``); a tuple's ``t.0`` has an
    integer ``name``."""

    expr: Expr
    name: str
    arrow: bool


@dataclass(eq=False)
class Index(Expr):
    expr: Expr
    index: Expr


@dataclass(eq=False)
class TypeSpec(Node):
    """A type as written in a cast or sizeof: ``uint32``, ``struct x *``,
    ``int8[4]``; ``pointers`` counts the stars."""

    name: str
    pointers: int = 0
    array: int | None = None


@dataclass(eq=False)
class Cast(Expr):
    to: TypeSpec
    expr: Expr


@dataclass(eq=False)
class Sizeof(Expr):
    of: TypeSpec | Expr


@dataclass(eq=False)
class Tuple(Expr):
    elems: list[Expr]


# -- statements -----------------------------------------------------------------------


@dataclass(eq=False)
class Stmt(Node):
    pass


@dataclass(eq=False)
class ExprStmt(Stmt):
    expr: Expr


@dataclass(eq=False)
class AssignMap(Stmt):
    """``@m[k] = e``, or with ``op`` (``+``, ``<<``...) ``@m[k] op= e``."""

    map: Map
    expr: Expr
    op: str | None = None


@dataclass(eq=False)
class AssignVar(Stmt):
    var: Var
    expr: Expr
    op: str | None = None


@dataclass(eq=False)
class Block(Node):
    stmts: list[Stmt]


@dataclass(eq=False)
class If(Stmt):
    cond: Expr
    then: Block
    otherwise: Block | None = None


@dataclass(eq=False)
class Unroll(Stmt):
    count: Expr
    body: Block


@dataclass(eq=False)
class While(Stmt):
    cond: Expr
    body: Block


@dataclass(eq=False)
class Jump(Stmt):
    """``return``, ``break`` or ``continue``."""

    kind: str


# -- the program ----------------------------------------------------------------------


@dataclass(eq=False)
class AttachPoint(Node):
    """One attach point as written (``tracepoint:sched:sched_switch``,
    ``BEGIN``); :mod:`.probes` splits it."""

    raw: str


@dataclass(eq=False)
class Probe(Node):
    attach_points: list[AttachPoint]
    predicate: Expr | None
    body: Block
    index: int = 0  # position in the script, for names in the generated C


@dataclass(eq=False)
class CDefinition(Node):
    """A C definition before the probes (``struct x { ... };``), passed to
    the generated C."""

    text: str


@dataclass(eq=False)
class Program(Node):
    definitions: list[CDefinition]
    probes: list[Probe]
    macros: dict[str, str] = field(default_factory=dict)
    includes: list[str] = field(default_factory=list)
