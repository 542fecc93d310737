"""Typing calls: the aggregations (``count()``, ``hist(n)``...), the
functions that act in user space (``printf``, ``print``, ``exit``...), and
those that compute a value (``str``, ``ksym``, ``ntop``...)."""

from __future__ import annotations

from . import ast
from .check_base import CheckerBase
from .program_info import MapInfo, Site, expression_name
from .types import Kind, SizedType, int_type, none_type

__all__ = ["CallChecker"]

_AGGREGATIONS = {
    "count": (Kind.COUNT, 0),
    "sum": (Kind.SUM, 1),
    "avg": (Kind.AVG, 1),
    "min": (Kind.MIN, 1),
    "max": (Kind.MAX, 1),
    "stats": (Kind.STATS, 1),
    "hist": (Kind.HIST, 1),
    "lhist": (Kind.LHIST, 4),
}
#: Calls that only make sense as statements (their value is none).
_STATEMENTS = {"debugf", "printf", "print", "clear", "zero", "delete", "exit", "time", "join",
               "system", "cat", "signal", "override", "unwatch"}  # fmt: skip
_UNSAFE = {"system", "signal", "override"}
#: join(): at most this many arguments, each of at most this many bytes
#: with its NUL (bpftrace 0.17's, measured: it prints 1023 characters).
JOIN_ARGS = 16
JOIN_ARG_BYTES = 1024


class CallChecker(CheckerBase):
    def call(self, e: ast.Call, statement: bool) -> SizedType:
        name = e.name
        if name in _AGGREGATIONS:
            return self.aggregation(e)
        if name in _STATEMENTS and not statement and name not in ("print",):
            raise self.error(e.loc, f"{name}() should not be used in an assignment or as a map key")
        if name in _UNSAFE and not self.info.unsafe:
            raise self.error(e.loc, f"{name}() is an unsafe function being used in safe mode")
        handler = getattr(self, f"call_{name}", None)
        if handler is None:
            raise self.error(e.name_loc or e.loc, f"Unknown function: {name}")
        return handler(e)

    def site(self, e: ast.Call, kind: str, **fields) -> Site:
        """The call's site, made once however many probes share the call."""
        sites = self.__dict__.setdefault("_sites_by_node", {})
        site = sites.get(id(e))
        if site is None or site not in self.info.sites:
            site = Site(len(self.info.sites) + 1, kind, e.loc, **fields)
            sites[id(e)] = site
            self.info.sites.append(site)
        return site

    # -- aggregations ------------------------------------------------------------------

    def aggregation(self, e: ast.Call) -> SizedType:
        kind, count = _AGGREGATIONS[e.name]
        self.nargs(e, count)
        signed = True
        if count:
            signed = self.int_arg(e, 0).signed
        params: tuple[int, ...] = ()
        if kind is Kind.LHIST:
            low, high, step = (self.constant_int(e.args[i], "lhist()") for i in (1, 2, 3))
            if step <= 0:
                raise self.error(e.args[3].loc, "lhist() step must be >= 1")
            if low < 0:
                raise self.error(e.args[1].loc, "lhist() min must be non-negative")
            if high <= low:
                raise self.error(e.args[2].loc, "lhist() max must be greater than min")
            if (high - low) // step > 1000:
                raise self.error(e.loc, "lhist() too many buckets, must be <= 1000 (max-min)/step")
            params = (low, high, step)
        return SizedType(kind, 8, signed, params=params)

    # -- user-space actions ----------------------------------------------------------------

    def call_printf(self, e: ast.Call) -> SizedType:
        return self.formatted(e, "printf")

    def call_system(self, e: ast.Call) -> SizedType:
        return self.formatted(e, "system")

    def call_cat(self, e: ast.Call) -> SizedType:
        return self.formatted(e, "cat")

    def formatted(self, e: ast.Call, kind: str) -> SizedType:
        if not e.args:
            raise self.error(e.loc, f"{kind}() requires at least 1 argument (0 provided)")
        fmt = self.string_literal(e, 0)
        types = [self.printable(arg) for arg in e.args[1:]]
        self.check_format(e, kind, fmt, types)
        site = self.site(e, kind, text=fmt)
        site.arg_types = self.merge_types(site.arg_types, types)
        site.arg_names = [expression_name(arg, i) for i, arg in enumerate(e.args[1:])]
        return none_type()

    def printable(self, arg: ast.Expr) -> SizedType:
        ty = self.expr(arg)
        if ty.is_aggregation and isinstance(arg, ast.Map):
            raise self.error(arg.loc, f"Map {arg.name} holding {ty.name} cannot be printed here")
        if ty.kind is Kind.NONE:
            raise self.error(arg.loc, "Value of type none cannot be printed")
        if ty.kind is Kind.CTX or ty.kind is Kind.RECORD:
            raise self.error(arg.loc, f"Value of type {ty.name} cannot be printed")
        return ty

    def merge_types(self, old: list[SizedType], new: list[SizedType]) -> list[SizedType]:
        """A site's argument types over every probe that shares it: strings
        as long as the longest."""
        if not old:
            return new
        merged = []
        for a, b in zip(old, new):
            if a.kind is Kind.STRING and b.kind is Kind.STRING:
                merged.append(a if a.size >= b.size else b)
            else:
                merged.append(a)
        return merged

    def check_format(self, e: ast.Call, kind: str, fmt: str, types: list[SizedType]) -> None:
        from .printf import check_format

        problem = check_format(kind, fmt, types)
        if problem:
            raise self.error(e.loc, problem)

    def call_print(self, e: ast.Call) -> SizedType:
        self.nargs(e, 1, 3)
        target = e.args[0]
        if isinstance(target, ast.Map) and not target.keys:
            info = self.whole(target)
            numbers = tuple(self.constant_int(arg, "print()") for arg in e.args[1:])
            self.site(e, "print_map", map=info.name, numbers=numbers)
            return none_type()
        if isinstance(target, ast.Map):
            raise self.error(e.loc, "The map passed to print() should not be indexed by a key")
        if len(e.args) > 1:
            raise self.error(e.loc, "Non-map print() only takes 1 argument")
        ty = self.printable(target)
        site = self.site(e, "print_value")
        site.arg_types = self.merge_types(site.arg_types, [ty])
        site.arg_names = [expression_name(target, 0)]
        return none_type()

    def whole(self, target: ast.Map) -> MapInfo:
        """A map named whole (``print(@x)``, ``clear(@x)``): its keys are not
        this use's business."""
        info = self.info.maps.get(target.name)
        if info is None:
            info = MapInfo(target.name, len(self.info.maps), target.loc)
            self.info.maps[target.name] = info
            info.key_types, info.value = self.learned.get(target.name, (None, None))
        return info

    def whole_map(self, e: ast.Call) -> None:
        self.nargs(e, 1)
        target = e.args[0]
        if not isinstance(target, ast.Map) or target.keys:
            raise self.error(e.loc, f"{e.name}() expects a map to be provided")
        info = self.whole(target)
        self.site(e, e.name, map=info.name)

    def call_clear(self, e: ast.Call) -> SizedType:
        self.whole_map(e)
        return none_type()

    def call_zero(self, e: ast.Call) -> SizedType:
        self.whole_map(e)
        return none_type()

    def call_delete(self, e: ast.Call) -> SizedType:
        self.nargs(e, 1)
        target = e.args[0]
        if not isinstance(target, ast.Map):
            raise self.error(e.loc, "delete() expects a map to be provided")
        self.map_info(target)
        return none_type()

    def call_exit(self, e: ast.Call) -> SizedType:
        self.nargs(e, 0)
        self.site(e, "exit")
        return none_type()

    def call_time(self, e: ast.Call) -> SizedType:
        self.nargs(e, 0, 1)
        fmt = self.string_literal(e, 0) if e.args else "%H:%M:%S\n"
        self.site(e, "time", text=fmt)
        return none_type()

    def call_join(self, e: ast.Call) -> SizedType:
        self.nargs(e, 1, 2)
        ty = self.expr(e.args[0])
        if not ty.is_integer_like:
            raise self.error(
                e.args[0].loc, f"join() only supports int or pointer arguments ({ty.name} provided)"
            )
        delim = self.string_literal(e, 1, "second") if len(e.args) == 2 else " "
        self.site(e, "join", text=delim, numbers=(JOIN_ARGS, JOIN_ARG_BYTES), arg_types=[ty])
        return none_type()

    def call_signal(self, e: ast.Call) -> SizedType:
        self.nargs(e, 1)
        arg = e.args[0]
        if isinstance(arg, ast.Str):
            import signal as signals

            name = arg.value if arg.value.startswith("SIG") else f"SIG{arg.value}"
            if not hasattr(signals, name):
                raise self.error(arg.loc, f"{arg.value} is not a valid signal")
            arg.type = int_type()
            e.args[0] = ast.Int(arg.loc, int(getattr(signals, name)))
        self.int_arg(e, 0)
        return none_type()

    def call_debugf(self, e: ast.Call) -> SizedType:
        if not e.args:
            raise self.error(e.loc, "debugf() requires at least 1 argument (0 provided)")
        self.string_literal(e, 0)
        if len(e.args) > 4:
            raise self.error(e.loc, "debugf() takes at most 3 arguments after the format")
        for arg in e.args[1:]:
            ty = self.expr(arg)
            if not (ty.is_integer_like or ty.kind is Kind.STRING):
                raise self.error(arg.loc, f"debugf() prints integers and strings ({ty.name} given)")
        return none_type()
