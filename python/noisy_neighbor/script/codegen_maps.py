"""Maps in C: a key built from an access's key expressions (zeroed first:
the kernel hashes every byte), reads that give zero for a missing key,
assignments and compound assignments, aggregations (count, sum, min, max,
avg, stats, hist and lhist, each CPU adding to its own copy), and delete.
Every update that fails is counted per map."""

from __future__ import annotations

from . import ast
from .codegen_base import WriterBase
from .program_info import MapInfo
from .types import Kind, SizedType

__all__ = ["MapWriter"]


class MapWriter(WriterBase):
    def key(self, node: ast.Map, bucket: str | None = None) -> str:
        """A zeroed key of the map (padding too: the kernel hashes every
        byte), filled from the access's key expressions."""
        info = self.gen.info.maps[node.name]
        key_types = info.key_types or ()
        if not key_types and not info.is_bucketed:
            return self.temp("u64", init="0")
        key = self.temp(f"struct nn_key_{info.index}")
        for i, (expr, ty) in enumerate(zip(node.keys, key_types)):
            self.store(f"{key}.k{i}", ty, expr, fresh=True)
        if bucket is not None:
            self.line(f"{key}.bucket = {bucket};")
        return key

    def map_read(self, node: ast.Map) -> str:
        info = self.gen.info.maps[node.name]
        value = info.value
        assert value is not None
        key = self.key(node)
        pointer = self.temp(
            self.value_pointer(value),
            init=f"bpf_map_lookup_elem(&{info.c_name}, &{key})",
        )
        self.checked("map_lookup_elem", f"(long){pointer}", node.loc, failed="== 0")
        if value.kind in (Kind.MIN, Kind.MAX):
            return f"(s64)({pointer} && {pointer}->set ? {pointer}->value : 0)"
        if value.kind is Kind.AVG:
            average = f"(u64){pointer}->total / {pointer}->count"
            return f"(s64)({pointer} && {pointer}->count ? {average} : 0)"
        cast = "s64" if value.kind is not Kind.INT or value.signed else "u64"
        return f"(({cast})({pointer} ? *{pointer} : 0))"

    def value_pointer(self, value: SizedType) -> str:
        """A C pointer type to a map's value (``char *`` for a string)."""
        if value.kind is Kind.STRING:
            return "char *"
        return f"{self.gen.types.type_name(value)} *"

    def map_read_into(self, dest: str, dest_type: str, node: ast.Map, fresh: bool) -> None:
        """Copies the value under the key into ``dest`` (of C type
        ``dest_type``); zero if the key is absent."""
        info = self.gen.info.maps[node.name]
        value = info.value
        assert value is not None
        key = self.key(node)
        pointer = self.temp(
            self.value_pointer(value),
            init=f"bpf_map_lookup_elem(&{info.c_name}, &{key})",
        )
        if not fresh:
            self.line(f"__builtin_memset(&{dest}, 0, sizeof({dest}));")
        self.line(f"if ({pointer}) {{")
        if value.kind is Kind.STRING:
            size = int(dest_type.split("[")[1].rstrip("]")) if "[" in dest_type else value.size
            self.copy_string(dest, size, pointer, value.size, True)
        else:
            self.line(f"\t__builtin_memcpy(&{dest}, {pointer}, sizeof({dest}));")
        self.line("}")

    def assign_map(self, stmt: ast.AssignMap) -> None:
        info = self.gen.info.maps[stmt.map.name]
        value = info.value
        assert value is not None
        e = stmt.expr
        if stmt.op is not None:
            delta = self.value(e)
            if stmt.op in ("+", "-") and self.gen.step(value) != 1:
                delta = f"({delta}) * {self.gen.step(value)}"
            key = self.key(stmt.map)
            if stmt.op == "+":
                self.line(f"nn_map_fetch_add(&{info.c_name}, &{key}, {delta}, {info.index});")
                return
            current = self.temp(
                self.value_pointer(value),
                init=f"bpf_map_lookup_elem(&{info.c_name}, &{key})",
            )
            new = self.temp("s64", init=f"{current} ? *{current} : 0")
            op = "-" if stmt.op == "-" else stmt.op
            if op in ("/", "%"):
                self.line(f"{new} = (u64){new} {op} (u64)({delta});")
            else:
                self.line(f"{new} = {new} {op} ({delta});")
            self.update(info, key, new)
            return
        if value.is_aggregation and isinstance(e, ast.Call):
            self.aggregate(info, stmt.map, e)
            return
        key = self.key(stmt.map)
        holder = self.temp(self.gen.types.decl(value, "{}"))
        self.store(holder, value, e, fresh=True)
        self.update(info, key, holder)

    def update(self, info: MapInfo, key: str, holder: str) -> None:
        self.line(f"if (bpf_map_update_elem(&{info.c_name}, &{key}, &{holder}, BPF_ANY))")
        self.line(f"\tnn_map_error({info.index});")

    def aggregate(self, info: MapInfo, node: ast.Map, call: ast.Call) -> None:
        value = info.value
        assert value is not None
        kind = value.kind
        arg = self.value(call.args[0]) if call.args else "1"
        if kind is Kind.HIST:
            key = self.key(node, f"nn_log2_bucket((s64)({arg}))")
            self.line(f"nn_map_add(&{info.c_name}, &{key}, 1, {info.index});")
        elif kind is Kind.LHIST:
            low, high, step = value.params
            bucket = f"nn_linear_bucket((s64)({arg}), {low}, {high}, {step})"
            key = self.key(node, bucket)
            self.line(f"nn_map_add(&{info.c_name}, &{key}, 1, {info.index});")
        else:
            key = self.key(node)
            if kind in (Kind.COUNT, Kind.SUM):
                self.line(f"nn_map_add(&{info.c_name}, &{key}, (s64)({arg}), {info.index});")
            elif kind in (Kind.MIN, Kind.MAX):
                want_max = 1 if kind is Kind.MAX else 0
                update = f"nn_map_minmax(&{info.c_name}, &{key}, (s64)({arg}), {want_max}"
                self.line(f"{update}, {info.index});")
            else:
                self.line(f"nn_map_stats(&{info.c_name}, &{key}, (s64)({arg}), {info.index});")

    def delete(self, node: ast.Expr, loc: object = None) -> None:
        assert isinstance(node, ast.Map)
        info = self.gen.info.maps[node.name]
        if info.is_bucketed:
            buckets = self.gen.bucket_count(info)
            key = self.key(node, "0")
            self.line(f"for (u32 nn_b = 0; nn_b < {buckets}; nn_b++) {{")
            self.line(f"\t{key}.bucket = nn_b;")
            self.line(f"\tbpf_map_delete_elem(&{info.c_name}, &{key});")
            self.line("}")
            return
        key = self.key(node)
        if not info.key_types and value_kind(info) == "count":
            # bpftrace 0.17 keeps a keyless count: delete() zeroes it
            zero = self.temp("s64", init="0")
            self.line(f"bpf_map_update_elem(&{info.c_name}, &{key}, &{zero}, BPF_EXIST);")
            return
        where = loc if loc is not None else node.loc
        self.checked("map_delete_elem", f"bpf_map_delete_elem(&{info.c_name}, &{key})", where)


def value_kind(info: MapInfo) -> str:
    return info.value.kind.value if info.value is not None else ""
