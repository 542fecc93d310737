"""The socket's wire and a subscriber's queue, without a kernel: requests are
one line of JSON, answers Arrow streams that round-trip the probe's
readings, and a full queue drops (counted) instead of blocking."""

from __future__ import annotations

import io

import numpy as np
import pytest

from noisy_neighbor.agent.streams import Subscriber
from noisy_neighbor.remote import wire
from noisy_neighbor.runq.histogram import CgroupHistogram
from noisy_neighbor.runq.wire import Blame, SwitchOuts

pytest.importorskip("pyarrow")


def test_a_request_is_one_json_line() -> None:
    out = io.BytesIO()
    wire.write_request(out, "subscribe", cgroups=[1, 2])
    assert wire.read_request(io.BytesIO(out.getvalue())) == {"op": "subscribe", "cgroups": [1, 2]}
    assert wire.read_request(io.BytesIO(b"")) is None  # the client hung up


@pytest.mark.parametrize(
    "line", [b"not json\n", b"[1, 2]\n", b'{"no": "op"}\n', b'{"op": "hello"}', b"x" * 2_000_000]
)
def test_what_is_not_a_request_is_refused(line: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.read_request(io.BytesIO(line))


def test_readings_cross_the_wire_unchanged() -> None:
    slots = np.zeros(27, np.uint64)
    slots[[3, 10]] = [5, 2]
    buckets = np.arange(200, dtype=np.uint64)
    hist = CgroupHistogram(
        42, slots, 7, 1_000, 900, comm="app", cgroup_name="svc", buckets=buckets, wall_ns=1_200
    )
    blame = [Blame(42, 7, count=3, total_ns=600)]
    outs = [SwitchOuts(42, voluntary=1, preempted_same=2, preempted_other=3, preempted_system=4)]
    out = io.BytesIO()
    wire.write_answer(out, wire.histograms_table([hist]))
    wire.write_answer(out, wire.blame_table(blame))
    wire.write_answer(out, wire.switch_outs_table(outs), note="x")
    source = io.BytesIO(out.getvalue())
    (back,) = wire.decode_histograms(wire.read_answer(source)[0]).values()
    assert (back.cgroup_id, back.count, back.total_ns, back.max_ns, back.wall_ns) == (
        42,
        7,
        1_000,
        900,
        1_200,
    )
    assert np.array_equal(back.slots, slots) and np.array_equal(back.buckets, buckets)
    assert (back.comm, back.cgroup_name) == ("app", "svc")
    assert wire.decode_blame(wire.read_answer(source)[0]) == blame
    table, meta = wire.read_answer(source)
    assert wire.decode_switch_outs(table) == outs and meta == {"note": "x", "ok": True}


def test_a_refusal_carries_its_kind_and_words() -> None:
    out = io.BytesIO()
    wire.write_answer(out, ok=False, kind="permission", error="not in the group")
    _, meta = wire.read_answer(io.BytesIO(out.getvalue()))
    assert meta == {"ok": False, "kind": "permission", "error": "not in the group"}


def _events(cgroups: list[int]) -> dict[str, np.ndarray]:
    n = len(cgroups)
    return {
        "cgroup_id": np.asarray(cgroups, np.uint64),
        "latency_ns": np.arange(n, dtype=np.uint64),
    }


def test_a_subscriber_gets_only_its_cgroups() -> None:
    subscriber = Subscriber(np.asarray([2], np.uint64))
    subscriber.offer(_events([1, 2, 3, 2]))
    subscriber.offer(_events([1, 3]))  # nothing of its own: nothing queued
    (got,) = [subscriber.queue.get_nowait() for _ in range(subscriber.queue.qsize())]
    assert got["cgroup_id"].tolist() == [2, 2] and got["latency_ns"].tolist() == [1, 3]


def test_a_full_queue_drops_and_counts_instead_of_waiting() -> None:
    import queue

    subscriber = Subscriber(None, queue.Queue(2))
    for _ in range(5):
        subscriber.offer(_events([1, 2, 3]))
    assert subscriber.queue.qsize() == 2
    assert subscriber.counters() == {
        "delivered_events": 0,
        "dropped_batches": 3,
        "dropped_events": 9,
        "gaps": 0,
    }
