"""Tracepoint formats and probe listings: a format file's text parsed as
bpftrace 0.17 types ``args``, and this kernel's tracefs (mounted by the
module when it is not), with facts that hold on any kernel."""

from __future__ import annotations

import os

import pytest

from noisy_neighbor.script.btf import VMLINUX, KernelBtf
from noisy_neighbor.script.probe_list import expand, list_probes
from noisy_neighbor.script.tracepoints import parse_format, tracepoint_format, tracepoints

# A syscall's format as 6.x kernels write it (ints 8 bytes wide, a user
# pointer), with a __data_loc string and a char array added.
FORMAT = """name: sys_enter_demo
ID: 782
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;
\tfield:unsigned int flags;\toffset:32;\tsize:8;\tsigned:0;
\tfield:__data_loc char[] path;\toffset:40;\tsize:4;\tsigned:0;
\tfield:char comm[16];\toffset:44;\tsize:16;\tsigned:0;
\tfield:unsigned long args[2];\toffset:64;\tsize:16;\tsigned:0;
\tfield:long if;\toffset:80;\tsize:8;\tsigned:1;

print fmt: "dfd: 0x%08lx", ((unsigned long)(REC->dfd))
"""


def test_a_format_is_split_into_common_fields_and_args() -> None:
    fmt = parse_format(FORMAT, "syscalls", "sys_enter_demo")
    assert fmt.id == 782 and fmt.size == 88
    assert [f.name for f in fmt.common] == ["common_type", "common_flags",
                                            "common_preempt_count", "common_pid"]  # fmt: skip
    assert [f.name for f in fmt.fields] == ["__syscall_nr", "dfd", "filename", "flags", "path",
                                            "comm", "args", "if"]  # fmt: skip
    dfd = fmt.field("dfd")
    assert dfd is not None and (dfd.offset, dfd.size, dfd.signed) == (16, 8, False)


def test_fields_are_typed_as_bpftrace_017_types_args() -> None:
    fmt = parse_format(FORMAT, "syscalls", "sys_enter_demo")
    types = {f.name: f.type.name for f in fmt.fields}
    assert types == {
        "__syscall_nr": "int32",
        "dfd": "int64",  # an 8-byte int is widened, signed as its C type says
        "filename": "int8 *",  # read it with str()
        "flags": "unsigned int64",
        "path": "int64",  # __data_loc: the data's address
        "comm": "string[16]",
        "args": "unsigned int64[2]",
        "if": "int64",
    }
    assert fmt.field("path").data_loc and fmt.field("args").count == 2  # type: ignore[union-attr]
    assert fmt.field("filename").type.user  # type: ignore[union-attr]
    # A C keyword would break a generated struct: its C name avoids it.
    assert fmt.field("if").c_name == "if_" and fmt.field("comm").c_name == "comm"  # type: ignore[union-attr]


def test_without_btf_unknown_types_fall_back_to_the_formats_size() -> None:
    text = "\tfield:dev_t dev;\toffset:8;\tsize:4;\tsigned:0;\n"
    (dev,) = parse_format(text).fields
    assert dev.type.name == "unsigned int32" and dev.c_type == "dev_t"


# -- this kernel's tracefs ---------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="tracefs needs root")


@needs_root
def test_sched_switch_names_both_tasks() -> None:
    fmt = tracepoint_format("sched", "sched_switch")
    assert fmt is not None
    names = [f.name for f in fmt.fields]
    assert names[:3] == ["prev_comm", "prev_pid", "prev_prio"] and "next_pid" in names
    assert fmt.field("prev_comm").type.name == "string[16]"  # type: ignore[union-attr]
    assert fmt.field("next_pid").type.name == "int32"  # type: ignore[union-attr]
    assert all(f.name.startswith("common_") for f in fmt.common)


@needs_root
@pytest.mark.skipif(not os.access(VMLINUX, os.R_OK), reason="typedefs need BTF")
def test_sched_process_exec_gives_its_filename_as_data_loc() -> None:
    fmt = tracepoint_format("sched", "sched_process_exec")
    assert fmt is not None and KernelBtf.load() is not None
    filename = fmt.field("filename")
    assert filename is not None and filename.data_loc and filename.type.name == "int64"
    assert fmt.field("pid").type.name == "int32"  # pid_t, through BTF  # type: ignore[union-attr]


@needs_root
def test_made_up_tracepoints_are_not_found() -> None:
    assert tracepoint_format("no_such_category", "no_such_event") is None
    assert tracepoint_format("sched", "../../../etc") is None
    assert tracepoints("no_such_category:*") == []


@needs_root
def test_tracepoints_match_a_glob() -> None:
    assert "sched:sched_switch" in tracepoints("sched:*")
    opens = tracepoints("syscalls:sys_enter_open*")
    assert "syscalls:sys_enter_openat" in opens
    assert all(name.startswith("syscalls:sys_enter_open") for name in opens)


@needs_root
def test_listing_prints_what_bpftrace_l_prints() -> None:
    assert list_probes("tracepoint:sched:sched_switch") == ["tracepoint:sched:sched_switch"]
    assert "tracepoint:sched:sched_switch" in list_probes("t:*sched_sw*")
    assert list_probes("tracepoint:sched:nope") == []
    assert list_probes("iter:*") == ["iter:task", "iter:task_file"]
    software = list_probes("software:*")
    assert "software:cpu-clock:" in software and "software:cs:" not in software
    assert list_probes("hardware:cpu-c*") == ["hardware:cpu-cycles:"]


@needs_root
def test_expansion_gives_the_concrete_targets() -> None:
    opens = expand("tracepoint", "syscalls:sys_enter_open*")
    assert ("syscalls", "sys_enter_openat") in opens
    assert expand("software", "cs") == [("context-switches",)]
    assert expand("iter", "task*") == [("task",), ("task_file",)]


@needs_root
@pytest.mark.skipif(not os.access(VMLINUX, os.R_OK), reason="kfunc needs BTF")
def test_kfuncs_are_listed_with_their_module() -> None:
    assert "kfunc:vmlinux:vfs_read" in list_probes("kfunc:vfs_read*")
    assert list_probes("kfunc:vmlinux:vfs_read") == ["kfunc:vmlinux:vfs_read"]
    assert ("vmlinux", "vfs_read") in expand("kfunc", "vfs_*")
