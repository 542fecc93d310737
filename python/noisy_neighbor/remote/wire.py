"""What the node agent and its local clients say to each other over the
agent's Unix socket: a request is one line of JSON; every answer is one
Arrow IPC stream (schema, record batches, end-of-stream), so any Arrow
library reads it, and numpy columns cross without a copy per value.

An answer's schema metadata holds ``nn`` (JSON): ``{"ok": true, ...}`` with
small results, or ``{"ok": false, "error": "...", "kind": "..."}``. A stream
subscription's answer is one long Arrow stream of event batches, each
batch's metadata saying what this client lost so far.

Requests (``op``): ``hello``; ``reading`` (histograms, blame and
switch-outs at one moment); ``stats``; ``subscribe`` (``cgroups``: ids, or
none for every cgroup)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, BinaryIO

import numpy as np

from ..runq.histogram import CgroupHistogram
from ..runq.wire import Blame, SwitchOuts

__all__ = [
    "PROTOCOL",
    "WireError",
    "blame_table",
    "counters_of",
    "decode_blame",
    "decode_histograms",
    "decode_switch_outs",
    "event_columns",
    "histograms_table",
    "metadata_of",
    "open_answer",
    "pyarrow",
    "read_answer",
    "read_request",
    "switch_outs_table",
    "write_answer",
    "write_request",
]

#: Bumped when a request or an answer changes shape; the client names both
#: versions when they differ.
PROTOCOL = 1
#: Longest request line: a subscription naming 10,000 cgroups fits.
MAX_REQUEST_BYTES = 1 << 20


class WireError(Exception):
    """What came over the socket is not this protocol."""


def pyarrow() -> Any:
    """pyarrow, or an error that says how to install it."""
    try:
        import pyarrow as pa
    except ImportError:
        raise ImportError(
            "talking to the agent needs pyarrow: pip install 'noisy-neighbor[agent]'"
        ) from None
    return pa


# -- requests ------------------------------------------------------------------------


def write_request(out: BinaryIO, op: str, **fields: Any) -> None:
    out.write(json.dumps({"op": op, **fields}).encode() + b"\n")
    out.flush()


def read_request(source: BinaryIO) -> dict[str, Any] | None:
    """The next request, or None when the client has hung up."""
    line = source.readline(MAX_REQUEST_BYTES + 1)
    if not line:
        return None
    if len(line) > MAX_REQUEST_BYTES or not line.endswith(b"\n"):
        raise WireError(f"a request is one line of JSON of at most {MAX_REQUEST_BYTES} bytes")
    try:
        request = json.loads(line)
    except ValueError as err:
        raise WireError(f"a request is one line of JSON: {err}") from None
    if not isinstance(request, dict) or not isinstance(request.get("op"), str):
        raise WireError('a request is a JSON object with an "op"')
    return request


# -- answers -------------------------------------------------------------------------


def write_answer(out: BinaryIO, table: Any = None, **meta: Any) -> None:
    """One Arrow stream: ``table`` (or none) with ``meta`` in its schema."""
    pa = pyarrow()
    if table is None:
        table = pa.table({})
    meta.setdefault("ok", True)
    schema = table.schema.with_metadata({"nn": json.dumps(meta)})
    with pa.ipc.new_stream(out, schema) as writer:
        writer.write_table(table.replace_schema_metadata(schema.metadata))
    out.flush()


def open_answer(source: BinaryIO) -> tuple[Any, dict[str, Any]]:
    """A reader of the next answer's batches, and its metadata (all that a
    stream subscription's answer has before its batches)."""
    pa = pyarrow()
    try:
        reader = pa.ipc.open_stream(source)
    except (pa.ArrowInvalid, OSError) as err:
        raise WireError(f"the agent's answer is not an Arrow stream: {err}") from None
    return reader, metadata_of(reader.schema)


def read_answer(source: BinaryIO) -> tuple[Any, dict[str, Any]]:
    """The table and the metadata of the next answer."""
    pa = pyarrow()
    reader, meta = open_answer(source)
    try:
        table = reader.read_all()
    except (pa.ArrowInvalid, OSError) as err:
        raise WireError(f"the agent's answer is not an Arrow stream: {err}") from None
    return table, meta


def counters_of(custom_metadata: Any) -> dict[str, int]:
    """A stream batch's counters (what this client was sent and lost)."""
    return {str(k): int(v) for k, v in json.loads(custom_metadata[b"nn"]).items()}


def event_columns(batch: Any) -> dict[str, np.ndarray]:
    """A stream batch as numpy columns, sharing the received buffers; only
    booleans, which Arrow packs eight to a byte, are unpacked (a copy)."""
    pa = pyarrow()
    return {
        name: column.to_numpy(zero_copy_only=not pa.types.is_boolean(column.type))
        for name, column in zip(batch.schema.names, batch.columns)
    }


def metadata_of(schema: Any) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(b"nn")
    if raw is None:
        raise WireError("the agent's answer carries no noisy-neighbor metadata")
    return dict(json.loads(raw))


# -- histograms, blame, switch-outs as tables ----------------------------------------------


def histograms_table(hists: Iterable[CgroupHistogram]) -> Any:
    pa = pyarrow()
    rows = list(hists)
    buckets = [h.buckets.tolist() if h.buckets is not None else None for h in rows]
    return pa.table(
        {
            "cgroup_id": pa.array([h.cgroup_id for h in rows], pa.uint64()),
            "count": pa.array([h.count for h in rows], pa.uint64()),
            "total_ns": pa.array([h.total_ns for h in rows], pa.uint64()),
            "max_ns": pa.array([h.max_ns for h in rows], pa.uint64()),
            "wall_ns": pa.array([h.wall_ns for h in rows], pa.uint64()),
            "comm": pa.array([h.comm for h in rows], pa.string()),
            "cgroup_name": pa.array([h.cgroup_name for h in rows], pa.string()),
            "cgroup_path": pa.array([h.cgroup_path for h in rows], pa.string()),
            "slots": pa.array([h.slots.tolist() for h in rows], pa.list_(pa.uint64())),
            "buckets": pa.array(buckets, pa.list_(pa.uint64())),
        }
    )


def decode_histograms(table: Any) -> dict[int, CgroupHistogram]:
    columns = table.to_pydict()
    out: dict[int, CgroupHistogram] = {}
    for i, cgroup_id in enumerate(columns.get("cgroup_id", [])):
        buckets = columns["buckets"][i]
        out[cgroup_id] = CgroupHistogram(
            cgroup_id,
            np.asarray(columns["slots"][i], dtype=np.uint64),
            columns["count"][i],
            columns["total_ns"][i],
            columns["max_ns"][i],
            comm=columns["comm"][i],
            cgroup_name=columns["cgroup_name"][i],
            cgroup_path=columns["cgroup_path"][i],
            buckets=None if buckets is None else np.asarray(buckets, dtype=np.uint64),
            wall_ns=columns["wall_ns"][i],
        )
    return out


def _uint64_rows_table(cls: Any, rows: Iterable[Any]) -> Any:
    """Rows of a dataclass of unsigned counters as one column per field."""
    pa = pyarrow()
    rows = list(rows)
    return pa.table(
        {name: pa.array([getattr(r, name) for r in rows], pa.uint64()) for name in _fields(cls)}
    )


def _rows_of(cls: Any, table: Any) -> list[Any]:
    columns = table.to_pydict()
    names = _fields(cls)
    return [cls(*(columns[n][i] for n in names)) for i in range(table.num_rows)]


def _fields(cls: Any) -> list[str]:
    return list(cls.__dataclass_fields__)


def blame_table(rows: Iterable[Blame]) -> Any:
    return _uint64_rows_table(Blame, rows)


def decode_blame(table: Any) -> list[Blame]:
    return _rows_of(Blame, table)


def switch_outs_table(rows: Iterable[SwitchOuts]) -> Any:
    return _uint64_rows_table(SwitchOuts, rows)


def decode_switch_outs(table: Any) -> list[SwitchOuts]:
    return _rows_of(SwitchOuts, table)
