"""Turning BTF layouts into numpy columns and globals into bytes: pure logic,
checked against records packed by hand with ``struct``."""

from __future__ import annotations

import struct
from types import SimpleNamespace

import numpy as np
import pytest

from noisy_neighbor.errors import PluginGlobalError
from noisy_neighbor.host.layout import Field, Layout, decode, dtype_of, pack_global
from noisy_neighbor.host.maps import Log2Histogram, MapView, is_histogram_layout


def layout(spec: dict) -> Layout:
    """A layout as the Rust core describes one, from a compact spec."""
    return Layout(spec["type_name"], spec["size"], [Field(*f) for f in spec["fields"]])


def map_info(**info: object) -> SimpleNamespace:
    """What a MapView needs to know of its map."""
    return SimpleNamespace(**info)


# struct event { u64 ts; s32 delta; char comm[8]; bool ok; enum state st; u16 pair[2]; }
EVENT_SPEC = {
    "type_name": "struct event",
    "size": 32,
    "fields": [
        ("ts", 0, "uint", 8, [], None),
        ("delta", 8, "int", 4, [], None),
        ("comm", 12, "char", 1, [8], None),
        ("ok", 20, "bool", 1, [], None),
        ("st", 24, "enum", 4, [], [("IDLE", 0), ("BUSY", 1)]),
        ("pair", 28, "uint", 2, [2], None),
    ],
}
EVENT = layout(EVENT_SPEC)


def _event(ts: int, delta: int, comm: bytes, ok: bool, st: int, pair: tuple[int, int]) -> bytes:
    return struct.pack("=Qi8s?3xIHH", ts, delta, comm, ok, st, *pair)


def test_records_split_into_typed_columns() -> None:
    raw = np.frombuffer(
        _event(1, -2, b"nginx\0\0\0", True, 1, (3, 4))
        + _event(5, 6, b"sh\0junk\0", False, 0, (7, 8)),
        dtype=np.uint8,
    )
    columns = decode(raw, EVENT)
    assert columns["ts"].tolist() == [1, 5] and columns["ts"].dtype == np.uint64
    assert columns["delta"].tolist() == [-2, 6] and columns["delta"].dtype == np.int32
    # C strings end at the first NUL: "junk" after it is a leftover.
    assert columns["comm"].tolist() == ["nginx", "sh"]
    assert columns["ok"].tolist() == [True, False]
    assert columns["st"].tolist() == [1, 0]
    assert columns["pair"].tolist() == [[3, 4], [7, 8]]
    assert all(c.flags.c_contiguous for c in columns.values())


def test_a_full_width_string_has_no_terminator_and_keeps_every_byte() -> None:
    raw = np.frombuffer(_event(1, 0, b"12345678", False, 0, (0, 0)), dtype=np.uint8)
    assert decode(raw, EVENT)["comm"].tolist() == ["12345678"]


def test_partial_records_are_refused() -> None:
    with pytest.raises(ValueError, match="not whole struct event records"):
        decode(np.zeros(40, dtype=np.uint8), EVENT)


def test_a_scalar_type_is_one_column_named_by_the_caller() -> None:
    u32 = layout({"type_name": "u32", "size": 4, "fields": [("", 0, "uint", 4, [], None)]})
    assert dtype_of(u32, "key").names == ("key",)
    raw = np.array([7, 9], dtype=np.uint32).view(np.uint8)
    assert decode(raw, u32, "key")["key"].tolist() == [7, 9]


def _scalar(kind: str, size: int, shape: list[int] | None = None, values=None) -> Layout:
    return Layout("t", size, [Field("", 0, kind, size, shape or [], values)])


@pytest.mark.parametrize(
    ("layout", "value", "expected"),
    [
        (_scalar("bool", 1), True, b"\x01"),
        (_scalar("bool", 1), 0, b"\x00"),
        (_scalar("uint", 8), 2**64 - 1, b"\xff" * 8),
        (_scalar("int", 4), -1, b"\xff" * 4),
        (_scalar("char", 1, [6]), "abc", b"abc\0\0\0"),
        (_scalar("uint", 2, [3]), [1, 2], struct.pack("=HHH", 1, 2, 0)),
        (_scalar("enum", 4, values=[("A", 0), ("B", 5)]), "B", struct.pack("=I", 5)),
        (_scalar("float", 8), 0.25, struct.pack("=d", 0.25)),
    ],
)
def test_globals_pack_to_their_c_representation(layout, value, expected) -> None:
    assert pack_global("g", layout, value) == expected


@pytest.mark.parametrize(
    ("layout", "value", "message"),
    [
        (_scalar("bool", 1), 2, "pass True or False"),
        (_scalar("uint", 1), 256, r"does not fit \(range 0..255\)"),
        (_scalar("int", 2), -40000, "does not fit"),
        (_scalar("uint", 4), True, "pass an int"),
        (_scalar("uint", 4), 1.5, "pass an int"),
        (_scalar("char", 1, [4]), "abcd", "no room for the NUL"),
        (_scalar("char", 1, [4]), 7, "pass a str"),
        (_scalar("uint", 4, [2]), [1, 2, 3], "at most 2 ints"),
        (_scalar("enum", 4, values=[("A", 0)]), "Z", "not one of A"),
        (_scalar("enum", 4, values=[("A", 0)]), 7, r"pass one of A \(0\), got 7"),
        (_scalar("char", 1, [8]), "a\x00b", "without NUL bytes"),
        (_scalar("uint", 2, [2]), [True, 1], "at most 2 ints"),
        (EVENT, 0, "struct event.*set it in the C source"),
    ],
)
def test_wrong_global_values_say_what_fits(layout, value, message) -> None:
    with pytest.raises(PluginGlobalError, match=message):
        pack_global("g", layout, value)


# struct hist { u32 slots[4]; char comm[4]; }, keyed by u32
HIST = layout(
    {
        "type_name": "struct hist",
        "size": 20,
        "fields": [("slots", 0, "uint", 4, [4], None), ("comm", 16, "char", 1, [4], None)],
    }
)
HIST_MAP = map_info(
    type="hash",
    key=layout({"type_name": "u32", "size": 4, "fields": [("", 0, "uint", 4, [], None)]}),
    value=HIST,
    key_size=4,
    value_size=20,
)


def test_a_slots_map_reads_as_histograms_printed_like_the_seed() -> None:
    assert is_histogram_layout(HIST) and not is_histogram_layout(EVENT)
    keys = np.array([42, 43], dtype=np.uint32).view(np.uint8)
    values = np.frombuffer(
        struct.pack("=4I4s", 0, 3, 1, 0, b"sh\0\0") + struct.pack("=4I4s", 2, 0, 0, 0, b"top\0"),
        dtype=np.uint8,
    )
    view = MapView("hists", HIST_MAP, keys, values, count=2, cpus=1)
    hists = view.histograms()
    assert set(hists) == {42, 43}
    assert hists[42].labels == {"comm": "sh"}
    assert hists[42].count == 4
    assert hists[42].to_text().splitlines()[:3] == [
        "key = 42",
        "comm = sh",
        "                  (unit) : count    distribution",
    ]
    assert "         2 -> 3          : 3        |****************************************|" in (
        hists[42].to_text()
    )
    assert view.to_dict()[43] == {"slots": [2, 0, 0, 0], "comm": "top"}


def test_per_cpu_values_sum_or_stay_per_cpu() -> None:
    info = map_info(type="percpu_hash", key=None, value=None, key_size=8, value_size=8)
    keys = np.array([10], dtype=np.uint64).view(np.uint8)
    values = np.array([1, 2], dtype=np.uint64).view(np.uint8)  # CPU 0, CPU 1
    view = MapView("counts", info, keys, values, count=1, cpus=2)
    assert view.to_dict() == {10: [1, 2]}
    pd = pytest.importorskip("pandas")
    assert view.to_pandas().to_dict("records") == [{"key": 10, "value": 3}]
    per_cpu = view.to_pandas(per_cpu=True)
    assert per_cpu.to_dict("records") == [
        {"key": 10, "cpu": 0, "value": 1},
        {"key": 10, "cpu": 1, "value": 2},
    ]
    assert isinstance(per_cpu, pd.DataFrame)


def test_a_histogram_percentile_stays_in_its_bucket() -> None:
    hist = Log2Histogram("h", 1, np.array([0, 0, 0, 10], dtype=np.uint64))
    assert 8 <= hist.percentile(50) <= 15


def test_an_empty_histogram_map_has_no_histograms() -> None:
    view = MapView("hists", HIST_MAP, np.zeros(0, np.uint8), np.zeros(0, np.uint8), count=0, cpus=1)
    assert view.histograms() == {}
    assert view.to_dict() == {}


def test_a_flexible_char_array_decodes_as_empty_strings() -> None:
    msg = layout(
        {
            "type_name": "struct msg",
            "size": 4,
            "fields": [("len", 0, "uint", 4, [], None), ("data", 4, "char", 1, [0], None)],
        }
    )
    columns = decode(np.array([3, 0, 0, 0, 5, 0, 0, 0], dtype=np.uint8), msg)
    assert columns["len"].tolist() == [3, 5]
    assert columns["data"].tolist() == ["", ""]


def test_per_cpu_histogram_labels_come_from_a_cpu_that_counted() -> None:
    info = map_info(**{**vars(HIST_MAP), "type": "percpu_hash"})
    keys = np.array([42], dtype=np.uint32).view(np.uint8)
    values = np.frombuffer(
        struct.pack("=4I4s", 0, 0, 0, 0, b"\0\0\0\0") + struct.pack("=4I4s", 1, 2, 0, 0, b"sh\0\0"),
        dtype=np.uint8,
    )  # CPU 0 never wrote its copy
    hist = MapView("hists", info, keys, values, count=1, cpus=2).histograms()[42]
    assert hist.slots.tolist() == [1, 2, 0, 0]
    assert hist.labels == {"comm": "sh"}
