"""bpftrace 0.17's text and JSON output, compared byte for byte with what the
real binary printed: each tests/data/bpftrace/NAME.bt was run by capture.sh
into NAME.txt (and NAME.json), and each test builds the same maps by hand.

Entries are handed over in the kernel's iteration order where the capture
shows it (ties of value-sorted maps keep it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from noisy_neighbor.script.map_order import ordered_entries
from noisy_neighbor.script.output_json import (
    attached_probes_json,
    json_escape,
    map_json,
    maps_at_exit_json,
    message_json,
    value_line_json,
)
from noisy_neighbor.script.output_text import (
    Strftime,
    attached_probes_text,
    hist_bucket_index,
    join_text,
    lhist_bucket_index,
    map_text,
    maps_at_exit_text,
    strftime_text,
    time_text,
    value_text,
)
from noisy_neighbor.script.types import Kind, SizedType, int_type, string_type
from noisy_neighbor.script.values import MapSnapshot, TypedValue

DATA = Path(__file__).parent / "data" / "bpftrace"

I64 = int_type(8, True)
U64 = int_type(8, False)
STR = string_type(64)
COUNT = SizedType(Kind.COUNT, 8)
SUM = SizedType(Kind.SUM, 8, True)
MIN = SizedType(Kind.MIN, 8, True)
MAX = SizedType(Kind.MAX, 8, True)
AVG = SizedType(Kind.AVG, 8, True)
STATS = SizedType(Kind.STATS, 8, True)
HIST = SizedType(Kind.HIST, 8)


def captured(name: str) -> str:
    return (DATA / name).read_bytes().decode("utf-8", "surrogateescape")


def lhist_type(low: int, high: int, step: int) -> SizedType:
    return SizedType(Kind.LHIST, 8, params=(low, high, step))


def hist(*values: int) -> list[int]:
    counts = [0] * 66
    for value in values:
        counts[hist_bucket_index(value)] += 1
    return counts


def lhist(low: int, high: int, step: int, *values: int) -> list[int]:
    counts = [0] * ((high - low) // step + 2)
    for value in values:
        counts[lhist_bucket_index(value, low, high, step)] += 1
    return counts


def stats(*values: int) -> tuple[int, int]:
    return len(values), sum(values)


def scalar(name: str, ty: SizedType, value: object) -> MapSnapshot:
    return MapSnapshot(name, (), ty, (((), value),))


def keyed(name: str, key_types: tuple[SizedType, ...], ty: SizedType, entries: dict) -> MapSnapshot:
    rows = tuple((k if isinstance(k, tuple) else (k,), v) for k, v in entries.items())
    return MapSnapshot(name, key_types, ty, rows)


def tuple_type(*fields: SizedType) -> SizedType:
    return SizedType(Kind.TUPLE, fields=fields)


def both(name: str, snapshots: list[MapSnapshot], text_prefix: str = "", json_prefix: str = ""):
    """The fixture's text and JSON captures against our rendering."""
    text = attached_probes_text(1) + text_prefix + maps_at_exit_text(snapshots)
    assert text == captured(f"{name}.txt")
    if (DATA / f"{name}.json").exists():
        json = attached_probes_json(1) + json_prefix + maps_at_exit_json(snapshots)
        assert json == captured(f"{name}.json")


# -- every kind of map -----------------------------------------------------------------------------


def test_every_kind_of_map_prints_as_bpftrace_does_with_its_blank_lines():
    snapshots = [
        scalar("@a", I64, 1),
        keyed("@b", (I64, STR), I64, {(1, "x"): 5}),
        scalar("@c", HIST, hist(5)),
        scalar("@d", STATS, stats(10)),
        scalar("@e", AVG, stats(4)),
        scalar("@f", COUNT, 1),
        scalar("@g", SUM, -3),
        scalar("@h", MIN, -5),
        scalar("@i", MAX, 7),
        scalar("@j", lhist_type(0, 100, 10), lhist(0, 100, 10, 15)),
        scalar("@k", STR, "str"),
        scalar("@l", tuple_type(I64, string_type(4)), (1, "two")),
    ]
    both("every_kind", snapshots, "hello\n", message_json("printf", "hello\n"))


def test_maps_at_exit_are_in_byte_order_of_their_names():
    names = {"@": 1, "@B": 2, "@a1": 3, "@_x": 4, "@a": 5, "@Z9": 6}
    both("map_names", [scalar(name, I64, value) for name, value in names.items()])


# -- histograms ------------------------------------------------------------------------------------


def test_hist_labels_bars_and_zero_buckets_between_counted_ones():
    snapshots = [
        scalar("@small", HIST, hist(0, 1, 2, 3, 4, 1023, 1024, -1, -100)),
        # 0.17 puts everything from 2**31 up into [2G, 4G)
        scalar("@large", HIST, hist(2**20, 2**30, 2**31 - 1, 2**31, 2**32, 2**40, -(2**63) + 1)),
        scalar("@bars", HIST, hist(1, 2, 2, 2, *[8] * 7)),
    ]
    both("hist_buckets", snapshots)


def test_lhist_labels_with_k_and_m_suffixes_and_both_open_ends():
    def lh(low, high, step, *values):
        return scalar("", lhist_type(low, high, step), lhist(low, high, step, *values))

    snapshots = []
    for name, snap in [
        ("@a", lh(0, 100, 10, -5, 55, 100, 1000)),
        ("@c", lh(0, 4096, 1024, 2048, 5000)),
        ("@d", lh(1048576, 4194304, 1048576, 3145728, 0)),
        ("@e", lh(0, 10, 3, 5, 11, 9)),  # 9 lands in [10, ...): 3 does not divide 10
        ("@f", lh(1024, 3072, 512, 1536)),
        ("@g", lh(5, 10, 1, 7, 4)),
    ]:
        snapshots.append(MapSnapshot(name, (), snap.value_type, snap.entries))
    both("lhist_buckets", snapshots)


# -- order -----------------------------------------------------------------------------------------


def test_maps_of_other_values_sort_by_key_integers_unsigned():
    def ints(size: int, signed: bool) -> SizedType:
        return int_type(size, signed)

    snapshots = [
        keyed("@a", (I64,), STR, {-5: "v", 3: "v", -1: "v", 0: "v"}),
        keyed("@b", (STR,), STR, {"zz": "v", "a": "v", "B": "v", "": "v", "ab": "v"}),
        keyed("@c", (I64, STR), STR, {(2, "b"): "v", (1, "z"): "v", (2, "a"): "v", (-1, "q"): "v"}),
        keyed("@d", (ints(1, True),), STR, {-3: "v", 2: "v"}),
        keyed("@e", (ints(2, True),), STR, {-3: "v", 2: "v"}),
        keyed("@f", (ints(4, True),), STR, {-3: "v", 2: "v"}),
        keyed("@g", (ints(1, False),), STR, {200: "v", 3: "v"}),
        keyed("@h", (ints(2, False),), STR, {65535: "v", 256: "v", 1: "v"}),
        keyed("@i", (ints(4, False),), STR, {4294967295: "v", 5: "v"}),
        # 0.17 prints an 8-byte key as signed whatever its type
        keyed("@j", (U64,), STR, {2**64 - 1: "v", 1: "v"}),
        keyed("@k", (ints(4, False), STR), STR, {(5, "b"): "v", (4, "c"): "v"}),
    ]
    both("key_order", snapshots)


def test_maps_of_numbers_sort_by_value_with_their_sign():
    snapshots = [
        keyed("@count", (I64,), COUNT, {1: 1, 2: 2, 3: 3}),
        keyed("@sum", (I64,), SUM, {1: -7, 2: 9, 3: 20}),
        keyed("@usum", (I64,), SizedType(Kind.SUM, 8, False), {1: 2**64 - 1, 2: 5}),
        keyed("@int", (I64,), I64, {1: -1, 2: 5, 3: -9}),
        keyed("@u64", (I64,), U64, {1: 2**64 - 1, 2: 5}),
        keyed("@u32", (I64,), int_type(4, False), {1: 2**32 - 1, 2: 3}),
        keyed("@i32", (I64,), int_type(4, True), {1: -5, 2: 3, 3: -1}),
        keyed("@i8", (I64,), int_type(1, True), {1: -5, 2: 3, 3: -1}),
        keyed("@i16", (I64,), int_type(2, True), {1: -2, 2: 1}),
        keyed("@min", (I64,), MIN, {1: -1, 2: 3}),
        keyed("@max", (I64,), MAX, {1: 15, 2: 4}),
        keyed("@avg", (I64,), AVG, {1: stats(-10), 2: stats(20, -31), 3: stats(31)}),
        keyed("@stats", (I64,), STATS, {1: stats(-7), 2: stats(-8, 1)}),
    ]
    both("value_order", snapshots)


def test_ties_of_hist_and_stats_maps_follow_libstdcxx_sort_beyond_16_keys():
    counts = {i: hist(*[1] * (2 if i in (5, 7, 11, 13, 30) else 1)) for i in range(40)}
    averages = {i: stats(1, 100) if i in (39, 3) else stats(1) for i in range(40)}
    snapshots = [keyed("@hist", (I64,), HIST, counts), keyed("@stats", (I64,), STATS, averages)]
    both("ties", snapshots)


def test_value_ties_keep_the_kernel_order_they_were_read_in():
    snap = keyed("@k", (I64,), I64, {2: 0, 1: 0, 3: -1})
    assert [key for key, _ in ordered_entries(snap)] == [(3,), (2,), (1,)]
    # 0.17 does not sort pointer or buffer keys: three runs gave three orders
    pointer = SizedType(Kind.POINTER, 8, elem=int_type(1, True))
    snap = keyed("@p", (pointer,), STR, {9: "v", 1: "v", 5: "v"})
    assert [key for key, _ in ordered_entries(snap)] == [(9,), (1,), (5,)]


# -- print(@x, top, div), zero() and clear() -------------------------------------------------------


def test_print_with_top_and_div_then_cleared_maps_print_bare_newlines():
    c = keyed("@c", (I64,), COUNT, {1: 1, 2: 2, 3: 3})
    h = keyed("@h", (I64,), HIST, {1: hist(3), 2: hist(5, 5, 100, 100, 100), 3: hist(1)})
    lh = keyed(
        "@l", (I64,), lhist_type(0, 10, 1), {1: lhist(0, 10, 1, 3, 3, 3), 2: lhist(0, 10, 1, 4)}
    )
    a = keyed("@a", (I64,), AVG, {1: stats(-10), 2: stats(20), 3: stats(31)})
    calls = [
        (c, 2, 2),
        (keyed("@s", (I64,), SUM, {1: -7, 2: 9, 3: 20}), 2, 2),
        (h, 1, 2),  # counts divided, bars from the undivided counts
        (lh, 1, 2),  # lhist ignores div
        (keyed("@st", (I64,), STATS, {1: stats(10), 2: stats(20)}), 1, 2),  # stats ignore both
        (a, 2, 2),
        (a, 0, 3),
        (keyed("@m", (I64,), MIN, {1: -9, 2: 10}), 0, 2),
        (keyed("@x", (I64,), MAX, {1: 15, 2: 4}), 1, 3),
        (keyed("@i", (I64,), I64, {1: -9, 2: 7}), 0, 2),
        (c, 0, 0),
        (c, 5, 0),
    ]
    text = attached_probes_text(1) + "".join(map_text(s, top, div) for s, top, div in calls)
    json = attached_probes_json(1) + "".join(map_json(s, top, div) for s, top, div in calls)
    cleared = {s.name: MapSnapshot(s.name, s.key_types, s.value_type, ()) for s, _, _ in calls}
    assert text + maps_at_exit_text(cleared.values()) == captured("top_div.txt")
    assert json + maps_at_exit_json(cleared.values()) == captured("top_div.json")


def test_zeroed_and_cleared_maps():
    multi = (I64, STR)
    h = keyed("@h", multi, HIST, {(1, "a"): hist(3), (2, "b"): hist(40, 40), (3, "c"): hist(0)})
    zeroed = [
        scalar("@z", HIST, [0] * 66),
        scalar("@y", COUNT, 0),
        scalar("@x", STATS, (0, 0)),
        scalar("@w", AVG, (0, 0)),
        scalar("@l", lhist_type(0, 10, 1), [0] * 12),
    ]
    cleared = [
        MapSnapshot("@cleared_hist", (), HIST, ()),
        MapSnapshot("@cleared_stats", (), STATS, ()),
        scalar("@cleared_count", COUNT, 0),  # 0.17 keeps a keyless count() map through clear()
    ]
    # the two zeroed @k entries tie; each capture read them in its own order
    k_text = keyed("@k", (I64,), I64, {2: 0, 1: 0})
    k_json = keyed("@k", (I64,), I64, {1: 0, 2: 0})
    text = attached_probes_text(1) + maps_at_exit_text([h, *zeroed, *cleared, k_text])
    assert text == captured("zero_clear.txt")
    json = attached_probes_json(1) + maps_at_exit_json([h, *zeroed, *cleared, k_json])
    assert json == captured("zero_clear.json")


# -- values ----------------------------------------------------------------------------------------


def test_print_of_single_values():
    ksym, probe = SizedType(Kind.KSYM, 8), SizedType(Kind.PROBE, 8)
    inet, user = SizedType(Kind.INET, 24), SizedType(Kind.USERNAME, 8)
    values = [
        TypedValue(I64, 1),
        TypedValue(I64, -5),
        TypedValue(string_type(4), "str"),
        TypedValue(tuple_type(I64, string_type(2), tuple_type(I64, I64)), (1, "a", (2, -3))),
        TypedValue(ksym, "0x1"),
        TypedValue(probe, "BEGIN"),
        TypedValue(SizedType(Kind.BUFFER, 2), b"a\x02"),
        TypedValue(int_type(4, False), 2**32 - 1),
        TypedValue(inet, "1.0.0.0"),
        TypedValue(inet, "127.0.0.1"),
        TypedValue(user, "root"),
        TypedValue(tuple_type(int_type(1, True), int_type(1, False)), (-1, 255)),
        TypedValue(SizedType(Kind.USYM, 16), "0x1"),
        TypedValue(int_type(2, True), -7),
    ]
    text = attached_probes_text(1) + "".join(value_text(v) for v in values) + "\n\n"
    assert text == captured("print_values.txt")
    json = attached_probes_json(1) + "".join(value_line_json(v) for v in values) + "\n\n"
    assert json == captured("print_values.json")


def test_symbol_and_address_maps_including_the_ones_0_17_prints_on_one_line():
    def resolved(kind: Kind) -> SizedType:
        return SizedType(kind, 8)

    pointer = SizedType(Kind.POINTER, 8, elem=int_type(1, True))
    task = SizedType(Kind.POINTER, 8, elem=SizedType(Kind.RECORD, struct="struct task_struct"))
    nested = tuple_type(I64, string_type(2), tuple_type(I64, string_type(2)))
    snapshots = [
        keyed("@ksym", (I64,), resolved(Kind.KSYM), {1: "0x1234", 2: "0x10"}),
        keyed("@usym", (I64,), resolved(Kind.USYM), {1: "0x1", 2: "0x2"}),
        keyed("@inet", (I64,), resolved(Kind.INET), {1: "1.0.0.0", 2: "2.0.0.0"}),
        keyed("@user", (I64,), resolved(Kind.USERNAME), {1: "root", 2: "root"}),
        keyed("@probe", (I64,), resolved(Kind.PROBE), {1: "BEGIN", 2: "BEGIN"}),
        keyed("@buf", (I64,), SizedType(Kind.BUFFER, 8), {1: b'\x00\xff\x7f\x80 ~\\"'}),
        keyed("@bufkey", (SizedType(Kind.BUFFER, 2),), I64, {b"a\x01": 1}),
        scalar("@ptr", task, 1),  # 0.17 prints pointer values in decimal...
        scalar("@nullptr", pointer, 0),
        scalar("@ptrtuple", tuple_type(I64, task), (1, 16)),
        keyed("@ptrkey", (pointer,), I64, {5: 1}),  # ...and pointer keys in hex
        keyed("@ptrzero", (pointer,), I64, {0: 1}),
        keyed("@tuples", (I64,), nested, {1: (1, "a", (2, "b")), 2: (-3, "", (4, "c"))}),
    ]
    both("special_maps", snapshots)


def test_stacks_as_values_keys_and_in_perf_mode():
    # the frames of this capture (kernel addresses differ on every run)
    frames = "bpf_prog_b741932002969697_sys_exit_newlst+{}", "__bpf_prog_test_run_raw_tp+106"
    kstack = SizedType(Kind.KSTACK, 8, count=2, params=(0,))
    perf = SizedType(Kind.KSTACK, 8, count=2, params=(1,))

    def stack(offset: int) -> list[str]:
        return [frames[0].format(offset), frames[1]]

    def perf_stack(address: int, offset: int) -> list[str]:
        return [f"{address:x} {frames[0].format(offset)}", f"ffffffff81f5e20a {frames[1]}"]

    printf = f"[{value_text(TypedValue(kstack, stack(599)))[:-1]}]\n"
    printf += f"[{value_text(TypedValue(perf, perf_stack(0xFFFFFFFFC0027FC1, 669)))[:-1]}]\n"
    snapshots = [
        MapSnapshot("@key", (kstack,), I64, (((tuple(stack(788)),), 1),)),
        scalar("@perf", perf, perf_stack(0xFFFFFFFFC0028073, 847)),
        keyed("@two", (I64,), kstack, {1: stack(906), 2: stack(965)}),
        scalar("@value", kstack, stack(729)),
    ]
    assert attached_probes_text(1) + printf + maps_at_exit_text(snapshots) == captured("stacks.txt")


# -- JSON ------------------------------------------------------------------------------------------


def test_json_escapes_bytes_as_0_17_does():
    line = 'é\x01\x08\x0c\r\t\\ / \x7f"\n'
    snapshots = [
        keyed("@m", (STR,), I64, {'é"x': 1}),
        scalar("@s", STR, 'q"\n'),
        scalar("@b", SizedType(Kind.BUFFER, 2), b"\x01\\"),
        scalar(
            "@t",
            tuple_type(I64, string_type(3), tuple_type(I64, string_type(2))),
            (1, 'a"', (2, "b")),
        ),
    ]
    both("json_escape", snapshots, line, message_json("printf", line))
    assert json_escape("\u00e9") == "\\uffffffc3\\uffffffa9"


def test_json_quirks_unquoted_strerror_keys_joined_by_commas_and_empty_maps():
    strerror = SizedType(Kind.STRERROR, 8)
    st = keyed("@stats", (I64,), STATS, {1: stats(3), 2: stats(5)})
    avg = keyed("@avg", (I64,), AVG, {3: stats(4)})
    snapshots = [
        scalar("@strerror", strerror, "Operation not permitted"),
        scalar("@tuple", tuple_type(strerror, I64), ("Operation not permitted", 1)),
        keyed("@hist", (I64, STR), HIST, {(1, "a"): hist(3), (2, "b"): hist(4, 4)}),
        st,
        avg,
        keyed("@keys", (int_type(1, False), I64, STR), COUNT, {(1, -1, "s"): 1}),
        MapSnapshot("@empty", (), I64, ()),
        MapSnapshot("@emptyhist", (), HIST, ()),
        scalar("@zerohist", HIST, [0] * 66),
    ]
    values = [TypedValue(I64, 1), TypedValue(STR, "s"), TypedValue(tuple_type(I64, STR), (1, "a"))]
    year_2026 = 1_780_000_000  # mid 2026 in every time zone
    text = attached_probes_text(1) + "".join(value_text(v) for v in values)
    text += map_text(st, 1, 2) + map_text(avg, 0, 2) + time_text("%Y-never-%%\n", year_2026)
    assert text + maps_at_exit_text(snapshots) == captured("json_quirks.txt")
    json = attached_probes_json(1) + "".join(value_line_json(v) for v in values)
    json += map_json(st, 1, 2) + map_json(avg, 0, 2)
    json += message_json("time", time_text("%Y-never-%%\n", year_2026) or "")
    assert json + maps_at_exit_json(snapshots) == captured("json_quirks.json")


# -- clocks and join -------------------------------------------------------------------------------


def test_strftime_fails_as_0_17_does_past_63_characters_or_when_empty():
    text = attached_probes_text(1)
    text += f"[{strftime_text('%c %c %c', 0)}]\n"
    text += f"[{strftime_text('', 0)}]\n"
    text += f"[{strftime_text('%c %c %Y%Y%Y%m', 0)}]\n"
    assert time_text("%c %c %Y%Y%Y%m", 0) is None  # bpftrace prints nothing
    assert text + "|\n\n\n" == captured("strftime.txt")


def test_strftime_replaces_every_percent_f_with_microseconds_first():
    timestamp = SizedType(Kind.TIMESTAMP, 8, params=(0,))
    ns = 1_500_000_000 * 10**9 + 123_456_789
    value = value_text(TypedValue(timestamp, Strftime("%H:%M:%S.%f|%f", ns)))
    assert value == f"{time_text('%H:%M:%S', 1_500_000_000)}.123456|123456\n"
    # %%f becomes %123456, which strftime rejects: 0.17 printed (?) for it too
    assert strftime_text("%%f %s", ns) == "(?)"


def test_join_stops_at_the_first_empty_argument():
    assert join_text(["/bin/true", "a", "", "b"]) == "/bin/true a\n"
    assert join_text(["a", "b c"], ",") == "a,b c\n"


@pytest.mark.parametrize(
    ("value", "index"), [(-1, 0), (0, 1), (1, 2), (3, 3), (2**31, 33), (2**62, 33)]
)
def test_hist_bucket_index_matches_0_17_capped_log2(value: int, index: int):
    assert hist_bucket_index(value) == index
