"""bpftrace 0.17's printf: the text of events and the checker's messages,
against what the real binary printed (tests/data/bpftrace/, see capture.sh),
and glibc's snprintf as the oracle of single conversions."""

from __future__ import annotations

import ctypes
import random
from pathlib import Path

import numpy as np
import pytest

from noisy_neighbor.script.printf import check_format, parse_format, render, render_rows
from noisy_neighbor.script.types import Kind, SizedType, int_type, string_type
from noisy_neighbor.script.values import TypedValue

DATA = Path(__file__).parent / "data" / "bpftrace"
I64 = int_type(8, True)
STR = string_type(64)


def captured_lines(name: str) -> list[str]:
    text = (DATA / name).read_bytes().decode("utf-8", "surrogateescape")
    return text.splitlines(keepends=True)


def ints(*values: int) -> list[TypedValue]:
    return [TypedValue(I64, v) for v in values]


def strs(*values: str) -> list[TypedValue]:
    return [TypedValue(STR, v) for v in values]


def buf(data: bytes) -> TypedValue:
    return TypedValue(SizedType(Kind.BUFFER, len(data)), data)


def test_integer_conversions_print_as_0_17_including_its_32_bit_d():
    events = [
        ("%d|%u|%x|%X|%o|%ld|%lu|%lx|%hd|%hu|%hhd|%hhu|%c|\n", ints(*[-1] * 12, 65)),
        ("[%5d][%-5d][%05d][%.3d][%8.3d][%-8.3d][%3d]\n", ints(*[42] * 6, 123456)),
        ("[%p][%p][%lp][%20p][%-20p|\n", ints(0, 1, 4096, 255, 255)),
        (
            "%d %d %ld %lld %jd %zd %td\n",
            ints(8589934592, 2147483648, 8589934592, -8589934592, -1, -1, -1),
        ),
        (
            "%hhx %hx %llX %jo %zu %tu %05x|%-5x|%.0d|\n",
            ints(300, 70000, 255, 8, -1, -1, 255, 255, 0),
        ),
        ("[%c][%5c][%-3c]\n", ints(66, 67, 68)),
        ("a%cb|%cc|%c\n", ints(65, 200, 0)),  # a %c of 0 ends its piece
        ("x%cy\n", ints(0)),
    ]
    lines = "".join(render(fmt, args) for fmt, args in events)
    assert ["Attaching 1 probe...\n", *lines.splitlines(True), "\n", "\n"] == captured_lines(
        "printf_ints.txt"
    )


def test_strings_buffers_and_percent_signs_print_as_0_17():
    events = [
        ("[%5s][%-5s][%.2s][%8.2s][%-8.2s][%05s]\n", strs(*["abc"] * 6)),
        ("%s|%10s|%-3s|%.1s|\n", strs(*["é"] * 4)),  # widths count bytes
        ("100%% done %d %%\n", ints(5)),  # after the last conversion %% stays
        ("100%% done\n", []),
        ("%d%%\n", ints(5)),
        ("%%%d %i %f %e %+d\n", ints(5)),  # %i %f %e %+d are not conversions in 0.17
        ("%%d %s\n", [*ints(7), *strs("x")]),  # %d is one, glibc prints it as %d
        (
            "%r|%rx|%rh|%5r|%-6rh|\n",
            [buf(b"a\x01b"), buf(b"a\x01b"), buf(b"a\x01b"), buf(b"ab"), buf(b"a")],
        ),
        (
            "%s|%s|%s\n",
            [
                TypedValue(SizedType(Kind.INET, 24), "1.0.0.0"),
                TypedValue(SizedType(Kind.PROBE, 8), "BEGIN"),
                TypedValue(SizedType(Kind.KSYM, 8), "0x1"),
            ],
        ),
    ]
    lines = "".join(render(fmt, args) for fmt, args in events)
    expected = captured_lines("printf_text.txt")
    assert ["Attaching 1 probe...\n", *lines.splitlines(True), "\n", "\n"] == expected


# -- the checker's messages ------------------------------------------------------------------------

KSTACK = SizedType(Kind.KSTACK, 8, count=127)
TUPLE = SizedType(Kind.TUPLE, fields=(I64, I64))
TASK = SizedType(Kind.POINTER, 8, elem=SizedType(Kind.RECORD, struct="struct task_struct"))
#: (call, format, argument types) of each line of printf_errors.in
CALLS = [
    ("printf", "%d %s\n", [STR, I64]),
    ("printf", "%s\n", [TUPLE]),
    ("printf", "%d\n", [TUPLE]),
    ("printf", "%d\n", [KSTACK]),
    ("printf", "%d\n", [SizedType(Kind.BUFFER, 3)]),
    ("printf", "%s\n", [SizedType(Kind.BUFFER, 3)]),
    ("printf", "%s\n", [TASK]),
    ("printf", "%s\n", [SizedType(Kind.RECORD, struct="struct task_struct")]),
    *(
        ("printf", "%d\n", [SizedType(kind, 8)])
        for kind in (Kind.PROBE, Kind.KSYM, Kind.USYM, Kind.USERNAME, Kind.INET, Kind.TIMESTAMP)
    ),
    ("printf", "%d\n", [SizedType(Kind.CGROUP_PATH, 16)]),
    ("printf", "%d\n", [SizedType(Kind.STRERROR, 8)]),
    ("printf", "%d\n", [string_type(16)]),
    ("printf", "%s %d\n", []),
    ("printf", "%d\n", [I64, I64]),
    ("printf", "%i %f\n", [I64]),
    ("printf", "%r\n", [I64]),
    ("printf", "%rx\n", [STR]),
    ("printf", "%-10.3lld\n", [STR]),
    *(("printf", "%d\n", [SizedType(kind, 8)]) for kind in (Kind.COUNT, Kind.HIST, Kind.STATS)),
    *(
        ("printf", "%s\n", [SizedType(kind, 8)])
        for kind in (Kind.SUM, Kind.AVG, Kind.MIN, Kind.MAX, Kind.LHIST)
    ),
    ("system", "%d\n", [STR]),
    ("cat", "%s\n", []),
]


def test_check_format_gives_0_17_messages_word_for_word():
    rows = [line.rstrip("\n").split("\t") for line in captured_lines("printf_errors.tsv")]
    assert len(rows) == len(CALLS)
    for (program, message), (call, fmt, types) in zip(rows, CALLS):
        assert check_format(call, fmt, types) == message, program


def test_check_format_accepts_what_0_17_runs():
    string_like = [SizedType(k, 8) for k in (Kind.KSYM, Kind.USERNAME, Kind.TIMESTAMP)]
    assert check_format("printf", "%s %s %s\n", string_like) is None
    assert check_format("printf", "%d %x %p\n", [I64, TASK, TASK]) is None
    assert check_format("printf", "%s %c %rh\n", [KSTACK, I64, SizedType(Kind.BUFFER, 4)]) is None
    assert check_format("printf", "100%% %%s\n", [STR]) is None  # %s after %% still counts


# -- glibc as the oracle ---------------------------------------------------------------------------

_libc = ctypes.CDLL(None)


def glibc(fmt: str, value: int) -> str:
    out = ctypes.create_string_buffer(256)
    _libc.snprintf(out, 256, fmt.encode(), ctypes.c_long(value))
    return out.value.decode()


FLAGS = ["", "-", "0", "-0"]
WIDTHS = ["", "1", "7", "12"]
PRECISIONS = ["", ".0", ".3", ".15"]
CONVERSIONS = [
    "d",
    "u",
    "x",
    "o",
    "hd",
    "hhu",
    "hX",
    "ld",
    "lu",
    "lx",
    "lX",
    "lo",
    "lld",
    "jx",
    "zu",
    "p",
]
VALUES = [0, 1, -1, 42, -42, 255, 2**31, -(2**31), 2**63 - 1, -(2**63), 2**40 + 7]


@pytest.mark.parametrize("conversion", CONVERSIONS)
def test_integer_conversions_match_glibc(conversion: str):
    for flags in FLAGS:
        for width in WIDTHS:
            for precision in PRECISIONS:
                fmt = f"%{flags}{width}{precision}{conversion}"
                for value in VALUES:
                    assert render(fmt, ints(value)) == glibc(fmt, value), (fmt, value)


# -- many events at once ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt",
    [
        "%d %d\n",
        "pid %-8u %05x|%lx %hhd %hu\n",
        "%.3d %8.3lld %%\n",
        "%c %d\n",
        "%p %.0d|%lld\n",
    ],
)
def test_render_rows_matches_render_event_by_event(fmt: str):
    rng = random.Random(7)
    n_args = len(parse_format(fmt).pieces)
    edge = [0, 1, -1, 2**31, -(2**31), 2**63 - 1, -(2**63), 65]
    columns = [
        np.array(edge + [rng.randrange(-(2**63), 2**63) for _ in range(200)], dtype=np.int64)
        for _ in range(n_args)
    ]
    rows = render_rows(fmt, [I64] * n_args, columns)
    events = zip(*[[TypedValue(I64, int(v)) for v in column] for column in columns])
    assert rows == [render(fmt, list(event)) for event in events]


def test_render_rows_with_strings_and_without_arguments():
    comms = ["bash", "é-wide", "kworker/0:1"]
    pids = np.array([1, -2, 3])
    rows = render_rows("%-10s|%5s|%d\n", [STR, STR, I64], [comms, comms, pids])
    assert rows == [
        render("%-10s|%5s|%d\n", [*strs(c, c), *ints(int(p))]) for c, p in zip(comms, pids)
    ]
    assert render_rows("tick %%\n", [], [], count=2) == ["tick %%\n", "tick %%\n"]
