"""The BTF reader: on a tiny BTF blob built here byte by byte (every kind the
reader types, a split module on top), and on this kernel's own BTF with facts
that hold on any kernel that has it."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from noisy_neighbor.errors import BtfUnavailableError
from noisy_neighbor.script.btf import VMLINUX, KernelBtf
from noisy_neighbor.script.btf_format import BtfFile, BtfKind

ROOT = Path(__file__).resolve().parents[1]
VMLINUX_H = ROOT / "python" / "noisy_neighbor" / "sdk" / "vmlinux" / "x86_64"


class BtfBlob:
    """Builds raw BTF as pahole writes it: a header, type records, strings.
    ``base`` makes it split BTF whose ids and string offsets continue the
    base's."""

    def __init__(self, base: BtfBlob | None = None) -> None:
        self.next_id = base.next_id if base else 1
        self.str_base = base.str_base + len(base.strings) if base else 0
        self.records: list[bytes] = []
        self.strings = b"\0"

    def name(self, text: str) -> int:
        if not text:
            return 0
        offset = self.str_base + len(self.strings)
        self.strings += text.encode() + b"\0"
        return offset

    def add(self, kind: BtfKind, name: str = "", size_or_type: int = 0, vlen: int = 0,
            kflag: bool = False, items: bytes = b"") -> int:  # fmt: skip
        info = kind << 24 | vlen | kflag << 31
        self.records.append(struct.pack("<III", self.name(name), info, size_or_type) + items)
        self.next_id += 1
        return self.next_id - 1

    def int(self, name: str, size: int, signed: bool) -> int:
        encoding = (1 << 24 if signed else 0) | size * 8
        return self.add(BtfKind.INT, name, size, items=struct.pack("<I", encoding))

    def members(self, *members: tuple[str, int, int]) -> bytes:
        return b"".join(struct.pack("<III", self.name(n), t, o) for n, t, o in members)

    def blob(self) -> bytes:
        types = b"".join(self.records)
        header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types),
                             len(self.strings))  # fmt: skip
        return header + types + self.strings


def _kernel_fixture() -> tuple[bytes, bytes, dict[str, int]]:
    """A vmlinux of one task struct and one function, a module, and the ids
    of the types the tests look at by id."""
    b = BtfBlob()
    int_ = b.int("int", 4, True)
    char = b.int("char", 1, False)  # pahole gives plain char no sign
    uint = b.int("unsigned int", 4, False)
    task_ptr = b.add(BtfKind.PTR, size_or_type=b.next_id + 1)
    comm = b.next_id + 1
    anon = comm + 1
    # struct task { int pid; char comm[16]; union { int a; unsigned int b; };
    #               unsigned int flag:1; struct task *parent; }
    task = b.add(BtfKind.STRUCT, "task", 40, vlen=5, kflag=True, items=b.members(
        ("pid", int_, 0), ("comm", comm, 32), ("", anon, 160), ("flag", uint, 1 << 24 | 192),
        ("parent", task_ptr, 256)))  # fmt: skip
    assert b.add(BtfKind.ARRAY, items=struct.pack("<III", char, int_, 16)) == comm
    assert b.add(BtfKind.UNION, "", 4, vlen=2, items=b.members(("a", int_, 0), ("b", uint, 0)))
    pid_t = b.add(BtfKind.TYPEDEF, "pid_t", int_)
    b.add(BtfKind.ENUM, "state", 4, vlen=2, kflag=True,
          items=struct.pack("<IiIi", b.name("RUNNING"), 0, b.name("DEAD"), -1))  # fmt: skip
    params = struct.pack("<IIII", b.name("t"), task_ptr, b.name("n"), pid_t)
    proto = b.add(BtfKind.FUNC_PROTO, "", int_, vlen=2, items=params)
    b.add(BtfKind.FUNC, "task_fn", proto, vlen=1)
    counter = b.add(BtfKind.TYPEDEF, "atomic_t", b.next_id + 1)
    b.add(BtfKind.STRUCT, "", 4, vlen=1, items=b.members(("counter", int_, 0)))
    const_char = b.add(BtfKind.CONST, size_or_type=char)
    const_char_ptr = b.add(BtfKind.PTR, size_or_type=const_char)
    b.add(BtfKind.ENUM64, "big", 8, vlen=1, items=struct.pack("<III", b.name("HUGE"), 0, 1 << 8))
    func_pointer = b.add(BtfKind.PTR, size_or_type=b.next_id + 1)
    b.add(BtfKind.FUNC_PROTO, "", 0)
    b.add(BtfKind.STRUCT, "holder", 4, vlen=1, items=b.members(("count", counter, 0)))

    module = BtfBlob(b)
    mod_t = module.add(BtfKind.TYPEDEF, "mod_t", uint)
    mod_proto = module.add(BtfKind.FUNC_PROTO, "", 0, vlen=3, items=struct.pack(
        "<IIIIII", module.name("task"), task, module.name("id"), mod_t, 0, 0))  # fmt: skip
    module.add(BtfKind.FUNC, "mod_fn", mod_proto)
    ids = {"const char *": const_char_ptr, "void (*)(void)": func_pointer}
    return b.blob(), module.blob(), ids


@pytest.fixture(scope="module")
def fixture_btf() -> KernelBtf:
    return KernelBtf.from_bytes(_kernel_fixture()[0])


def test_a_struct_lists_members_with_anonymous_unions_lifted(fixture_btf: KernelBtf) -> None:
    task = fixture_btf.struct("struct task")
    assert task is not None and task.size == 40 and not task.is_union
    assert [m.name for m in task.members] == ["pid", "comm", "a", "b", "flag", "parent"]
    assert task.member("a").offset == task.member("b").offset == 20  # type: ignore[union-attr]
    assert fixture_btf.struct("task") == task
    assert fixture_btf.struct("union task") is None and fixture_btf.struct("struct nope") is None


def test_members_are_typed_as_bpftrace_types_them(fixture_btf: KernelBtf) -> None:
    task = fixture_btf.struct("struct task")
    assert task is not None
    names = {m.name: m.type.name for m in task.members}
    assert names == {"pid": "int32", "comm": "string[16]", "a": "int32", "b": "unsigned int32",
                     "flag": "unsigned int32", "parent": "struct task *"}  # fmt: skip
    flag = task.member("flag")
    assert flag is not None and flag.bitfield_size == 1 and flag.bit_offset == 192


def test_typedefs_of_anonymous_structs_keep_the_typedef_name(fixture_btf: KernelBtf) -> None:
    holder = fixture_btf.struct("struct holder")
    assert holder is not None and holder.member("count").type.name == "atomic_t"  # type: ignore[union-attr]
    atomic = fixture_btf.struct("atomic_t")
    assert atomic is not None and atomic.name == "atomic_t" and atomic.members[0].name == "counter"


def test_pointers_to_functions_are_none_pointers_and_char_is_unsigned(
    fixture_btf: KernelBtf,
) -> None:
    ids = _kernel_fixture()[2]
    const_char_ptr, func_pointer = ids["const char *"], ids["void (*)(void)"]
    assert fixture_btf.sized_type(func_pointer).name == "none *"
    assert fixture_btf.c_type(func_pointer) == "void *"
    assert fixture_btf.sized_type(const_char_ptr).name == "unsigned int8 *"
    assert fixture_btf.c_type(const_char_ptr) == "char *"  # qualifiers dropped for casts


def test_enumerators_and_enums_as_unsigned_integers(fixture_btf: KernelBtf) -> None:
    assert fixture_btf.enum_value("RUNNING") == 0
    assert fixture_btf.enum_value("DEAD") == -1
    assert fixture_btf.enum_value("HUGE") == 1 << 40
    assert fixture_btf.enum_value("NOPE") is None
    # bpftrace 0.17 calls every enum unsigned, even one with negative values.
    assert fixture_btf.named_type("enum state").name == "unsigned int32"  # type: ignore[union-attr]


def test_a_function_gives_its_parameters_and_return_type(fixture_btf: KernelBtf) -> None:
    func = fixture_btf.func("task_fn")
    assert func is not None and func.module == "vmlinux" and not func.variadic
    assert [(p.name, p.type.name, p.c_type, p.slot) for p in func.params] == [
        ("t", "struct task *", "struct task *", 0),
        ("n", "int32", "pid_t", 1),
    ]
    assert func.return_type.name == "int32" and func.return_c_type == "int"
    assert fixture_btf.funcs("task_*") == ["task_fn"] and fixture_btf.funcs("x*") == []
    assert fixture_btf.func("no_such_function") is None


def test_c_spellings_and_sizes(fixture_btf: KernelBtf) -> None:
    assert fixture_btf.sizeof("struct task") == 40
    assert fixture_btf.sizeof("pid_t") == 4 and fixture_btf.sizeof("struct task *") == 8
    assert fixture_btf.sizeof("int") == 4 and fixture_btf.sizeof("struct nope") is None
    assert fixture_btf.named_type("pid_t *").name == "int32 *"  # type: ignore[union-attr]


def test_split_module_btf_numbers_on_from_its_base() -> None:
    vmlinux_blob, module_blob, _ = _kernel_fixture()
    vmlinux = KernelBtf.from_bytes(vmlinux_blob)
    module = KernelBtf.from_bytes(module_blob, base=vmlinux, name="mod")
    func = module.func("mod_fn")
    assert func is not None and func.module == "mod" and func.variadic
    task, ident = func.params
    # A struct by value takes as many u64 slots as its size needs.
    assert (task.type.name, task.slot) == ("struct task", 0) and ident.slot == 5
    # The module's typedefs are not in vmlinux.h: they are spelled out.
    assert ident.c_type == "unsigned int" and ident.type.name == "unsigned int32"
    assert module.struct("struct task") is not None  # the base's types are seen
    assert vmlinux.func("mod_fn") is None  # no module of that name is loaded here


def test_bytes_that_are_not_btf_are_refused() -> None:
    with pytest.raises(BtfUnavailableError, match="not BTF"):
        KernelBtf.from_bytes(b"\x7fELF" + bytes(40))


def test_the_index_is_cached_on_disk_and_a_bad_cache_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NN_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "vmlinux"
    path.write_bytes(_kernel_fixture()[0])
    first = KernelBtf(BtfFile.read(str(path)))
    (cached,) = (tmp_path / "cache" / "btf").iterdir()
    assert KernelBtf(BtfFile.read(str(path))).func("task_fn") == first.func("task_fn")
    cached.write_bytes(b"garbage")
    assert KernelBtf(BtfFile.read(str(path))).struct("struct task") == first.struct("struct task")


# -- this kernel's BTF -------------------------------------------------------------

needs_btf = pytest.mark.skipif(not os.access(VMLINUX, os.R_OK), reason="no readable kernel BTF")


@needs_btf
def test_task_struct_as_bpftrace_types_it() -> None:
    task = KernelBtf.load().struct("struct task_struct")
    assert task is not None and task.size > 1000
    names = {m: task.member(m).type.name for m in ("pid", "comm", "parent", "se", "mm")}  # type: ignore[union-attr]
    assert names == {"pid": "int32", "comm": "string[16]", "parent": "struct task_struct *",
                     "se": "struct sched_entity", "mm": "struct mm_struct *"}  # fmt: skip


@needs_btf
def test_vfs_read_takes_a_file_a_buffer_a_count_and_a_position() -> None:
    func = KernelBtf.load().func("vfs_read")
    assert func is not None and func.module == "vmlinux"
    assert [p.name for p in func.params] == ["file", "buf", "count", "pos"]
    assert func.params[0].c_type == "struct file *" and func.params[3].c_type == "loff_t *"
    assert func.return_type.name == "int64"
    assert "vfs_read" in KernelBtf.load().funcs("vfs_*")


@needs_btf
def test_made_up_names_are_not_found() -> None:
    btf = KernelBtf.load()
    assert btf.struct("struct no_such_struct_xyz") is None
    assert btf.func("no_such_function_xyz") is None
    assert btf.enum_value("NO_SUCH_ENUMERATOR_XYZ") is None
    assert btf.type_id("no_such_typedef_xyz") is None


@needs_btf
def test_enumerators_of_the_kernel() -> None:
    assert KernelBtf.load().enum_value("TASK_COMM_LEN") == 16


@needs_btf
@pytest.mark.skipif(shutil.which("clang") is None, reason="no clang")
def test_parameter_spellings_compile_against_the_vendored_vmlinux_h(tmp_path: Path) -> None:
    btf = KernelBtf.load()
    casts = []
    for name in ("vfs_read", "do_sys_openat2", "tcp_sendmsg", "schedule_timeout", "kfree"):
        func = btf.func(name)
        if func is not None:
            casts += [f"(void)({p.c_type})ctx[{p.slot}];" for p in func.params]
    source = tmp_path / "casts.c"
    source.write_text('#include "vmlinux.h"\nvoid f(unsigned long long *ctx) {\n'
                      + "\n".join(casts) + "\n}\n")  # fmt: skip
    compiled = subprocess.run(
        ["clang", "-target", "bpf", "-fsyntax-only", f"-I{VMLINUX_H}", str(source)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stderr
