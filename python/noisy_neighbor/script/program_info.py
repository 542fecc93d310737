"""What the checker learns of a script and the code generator and runtime
use: its maps, the contexts its probes run in, and the call sites whose
records come back to user space (printf, print, exit...)."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import ast
from .diagnostics import Location
from .probes import ProbeSpec
from .types import SizedType

__all__ = ["ArgInfo", "MapInfo", "ProbeContext", "ProgramInfo", "Site", "expression_name"]


def expression_name(expr: ast.Expr, index: int) -> str:
    """A name for what an expression reads, for a printf column or a map's
    key level: the builtin, variable, map or field it names (``cgroup``
    becomes ``cgroup_id``, the column name the package resolves), else
    ``arg<index>``."""
    if isinstance(expr, ast.Builtin):
        return "cgroup_id" if expr.name == "cgroup" else expr.name
    if isinstance(expr, ast.Var):
        return expr.name.lstrip("$")
    if isinstance(expr, ast.Field):
        return expr.name if not expr.name.isdigit() else f"arg{index}"
    if isinstance(expr, ast.Map) and expr.name != "@":
        return expr.name.lstrip("@")
    if isinstance(expr, ast.Call) and expr.args:
        inner = expression_name(expr.args[0], index)
        return inner if not inner.startswith("arg") else f"arg{index}"
    return f"arg{index}"


@dataclass
class MapInfo:
    """One ``@map``. ``key_types`` is empty for a map without keys; ``value``
    is an aggregation (count, hist...) or the type of assigned values."""

    name: str
    index: int
    loc: Location
    key_types: tuple[SizedType, ...] | None = None
    value: SizedType | None = None
    #: a name per key part, from the expression first used for it
    key_names: tuple[str, ...] = ()

    @property
    def c_name(self) -> str:
        return f"nn_map_{self.index}"

    @property
    def is_bucketed(self) -> bool:
        """hist and lhist: one map entry per (key, bucket), as bpftrace keeps them."""
        return self.value is not None and self.value.kind.value in ("hist", "lhist")


@dataclass(frozen=True)
class ArgInfo:
    """One field of ``args``: its type and how the generated C reads it."""

    name: str
    type: SizedType
    c_expr: str
    data_loc: bool = False


@dataclass
class ProbeContext:
    """One concrete probe of a script's probe block (a block with three
    attach points, or one wildcard, makes several): the program the code
    generator writes for it."""

    probe: ast.Probe
    spec: ProbeSpec
    index: int
    section: str
    #: what ``args.x`` can name, in order; None where the probe has no args
    args: dict[str, ArgInfo] | None = None
    retval: SizedType | None = None
    retval_c: str = ""
    #: kprobe/kretprobe attached as fentry/fexit (a kernel without kprobes)
    via_fentry: bool = False
    #: how many arguments the function has (for fexit's return value and argN)
    nargs: int = 0
    #: perf event settings of profile, interval, software and hardware probes
    perf_event: dict[str, object] | None = None

    @property
    def c_name(self) -> str:
        return f"nn_probe_{self.index}"

    @property
    def ctx_struct(self) -> str:
        """The C struct a tracepoint's context is read through."""
        return f"nn_tp_args_{self.index}"


@dataclass
class Site:
    """A call whose effect happens in user space: the kernel writes a record
    (``id``, then ``arg_types``) to the event rings and the runtime acts on
    it. ``kind`` is printf, print_map, print_value, clear, zero, exit, time,
    system, cat, join; ``text`` a format; ``map`` a map's name."""

    id: int
    kind: str
    loc: Location
    text: str = ""
    map: str = ""
    arg_types: list[SizedType] = field(default_factory=list)
    arg_names: list[str] = field(default_factory=list)
    numbers: tuple[int, ...] = ()  # print's top and div, join's (count, string size)

    @property
    def c_struct(self) -> str:
        return f"nn_site_{self.id}"


@dataclass
class ProgramInfo:
    program: ast.Program
    contexts: list[ProbeContext] = field(default_factory=list)
    maps: dict[str, MapInfo] = field(default_factory=dict)
    sites: list[Site] = field(default_factory=list)
    #: a variable's type, per probe block (its index)
    variables: dict[int, dict[str, SizedType]] = field(default_factory=dict)
    #: stack maps needed: (user space?, depth)
    stacks: set[tuple[bool, int]] = field(default_factory=set)
    #: notes to print once (e.g. a kprobe run as fentry)
    notes: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    #: report failing helpers: 0 no, 1 (-k) writes and deletes, 2 (-kk) reads too
    helper_errors: int = 0
    #: values known when checking (sizeof, kaddr(), cgroupid()), by id() of their node
    constants: dict[int, int] = field(default_factory=dict)
    #: byte strings known when checking (pton()), by id() of their node
    byte_constants: dict[int, bytes] = field(default_factory=dict)
    #: the formats of strftime() calls; a timestamp's params[0] indexes them
    strftime_formats: list[str] = field(default_factory=list)
    unsafe: bool = False
    uses_elapsed: bool = False
    uses_cpid: bool = False
