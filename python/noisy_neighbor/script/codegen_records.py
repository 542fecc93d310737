"""Declarations of the generated C: the struct of each site's record, the
fixed-size record the event rings carry (the largest site's size: the host
drains records of one size), the rings themselves (one per CPU), the maps
with their key structs, the stack maps, and each tracepoint's context as
tracefs lays it out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .codegen_types import int_c_type
from .types import Kind, SizedType, int_type

if TYPE_CHECKING:
    from .codegen_state import Generator
    from .program_info import ProbeContext

__all__ = ["MAP_KEYS_MAX", "declare_maps", "declare_records", "tracepoint_struct"]

#: Entries of each map when nothing says otherwise (bpftrace's default).
MAP_KEYS_MAX = 4096
#: Entries of each stack map.
STACK_MAP_ENTRIES = 4096
#: Bytes of each CPU's event ring, unless the runtime resizes it.
RING_BYTES = 1 << 20


def site_members(gen: Generator, site) -> list[tuple[SizedType, str]]:
    members: list[tuple[SizedType, str]] = [(int_type(4, False), "nn_id")]
    if site.kind in ("printf", "system", "cat", "print_value", "helper_error"):
        members += [(ty, f"a{i}") for i, ty in enumerate(site.arg_types)]
    return members


def declare_records(gen: Generator) -> list[str]:
    out: list[str] = []
    largest = 8
    for site in gen.info.sites:
        if site.kind == "join":
            count, size = site.numbers
            body = (
                f"struct {site.c_struct} {{\n\tu32 nn_id;\n\tu32 count;\n"
                f"\tchar a0[{count}][{size}];\n}};"
            )
            out.append(body)
            largest = max(largest, 8 + count * size)
        else:
            members = site_members(gen, site)
            struct = gen.types.struct(site.c_struct, members)
            del struct
            largest = max(largest, 4 + sum(_padded(gen, ty) for ty, _ in members[1:]) + 8)
        # A global of each record type puts the type in the object's BTF,
        # where the runtime reads the record's layout back.
        out.append(f"struct {site.c_struct} nn_layout_{site.id};")
    words = (largest + 7) // 8
    out.append(f"struct nn_event {{\n\tu64 nn_words[{words}];\n}};")
    out.append("NN_RECORD(nn_events, struct nn_event);")
    out.append(
        "struct nn_event_ring {\n\t__uint(type, BPF_MAP_TYPE_RINGBUF);\n"
        f"\t__uint(max_entries, {RING_BYTES});\n}};"
    )
    out.append(
        "struct {\n\t__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);\n\t__uint(max_entries, 1);"
        '\n\t__type(key, u32);\n\t__array(values, struct nn_event_ring);\n} nn_events SEC(".maps");'
    )
    return out


def _padded(gen: Generator, ty: SizedType) -> int:
    from .codegen_types import storage_size

    return (storage_size(ty) + 7) // 8 * 8


def declare_maps(gen: Generator) -> list[str]:
    out: list[str] = []
    for info in gen.info.maps.values():
        value = info.value
        assert value is not None
        key_types = info.key_types or ()
        members = [(ty, f"k{i}") for i, ty in enumerate(key_types)]
        if info.is_bucketed:
            members.append((int_type(8, False), "bucket"))
        key_type = gen.types.struct(f"nn_key_{info.index}", members) if members else "u64"
        map_type = "BPF_MAP_TYPE_PERCPU_HASH" if value.is_aggregation else "BPF_MAP_TYPE_HASH"
        value_type = gen.types.type_name(value)
        out.append(
            f"struct {{\n\t__uint(type, {map_type});\n\t__uint(max_entries, {MAP_KEYS_MAX});\n"
            f"\t__type(key, {key_type});\n\t__type(value, {value_type});\n"
            f'}} {info.c_name} SEC(".maps");'
        )
    for (user, depth), name in sorted(gen.stack_maps.items()):
        del user
        out.append(
            "struct {\n\t__uint(type, BPF_MAP_TYPE_STACK_TRACE);\n"
            f"\t__uint(max_entries, {STACK_MAP_ENTRIES});\n\t__uint(key_size, sizeof(u32));\n"
            f'\t__uint(value_size, {depth} * sizeof(u64));\n}} {name} SEC(".maps");'
        )
    return out


def tracepoint_struct(gen: Generator, context: ProbeContext) -> str:
    """The tracepoint's record as tracefs lays it out, field by field at its
    offset (the common fields as bytes), padded where the format skips."""
    spec = context.spec
    fields = gen.kernel.tracepoint_fields(spec.target, spec.func)
    lines = [f"struct {context.ctx_struct} {{"]
    offset = 0
    packed = False
    for field in fields:
        if field.offset > offset:
            lines.append(f"\tu8 nn_pad_{offset}[{field.offset - offset}];")
            offset = field.offset
        if field.offset < offset:
            continue  # overlapping fields: keep the first
        lines.append(f"\t{_tracepoint_field(field)};")
        align = min(field.size // max(field.count, 1), 8)
        if align and field.offset % align:
            packed = True
        offset = field.offset + field.size
    lines.append("}" + (" __attribute__((packed))" if packed else "") + ";")
    return "\n".join(lines)


def _tracepoint_field(field) -> str:
    ty = field.type
    name = field.c_name
    if field.data_loc:
        return f"u32 {name}"
    if ty.kind is Kind.STRING:
        return f"char {name}[{ty.size}]"
    if field.count > 1:
        element = field.size // field.count
        return f"{int_c_type(element, field.signed)} {name}[{field.count}]"
    if field.size in (1, 2, 4, 8):
        return f"{int_c_type(field.size, field.signed)} {name}"
    return f"u8 {name}[{field.size}]"
