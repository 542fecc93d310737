"""``nn.connect()``: the node agent's one probe, read over its local socket
by a user who is not root. A client has the reading half of
:class:`~noisy_neighbor.RunqProbe` and the same lifecycle: ``start()`` (or
``with``) begins its window, and its histograms, culprit splits,
switch-outs and report cover that window, as a probe started then would;
with ``stream=True`` it also receives every wait as batches of numpy
columns, from the agent's streaming probe, loaded while someone listens.

So ``nn.collect``, the plots, ``nn.live`` and the pytest plugin work on a
client as on a probe."""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import AgentRequestError, AgentUnavailableError, ProbeStateError
from ..host.batches import EventBatch
from ..host.lifecycle import Lifecycle, interrupt_stops
from ..names import CgroupInfo, CgroupResolver, CgroupTree
from ..runq.histogram import CgroupHistogram
from ..runq.reading import Reading
from ..runq.throttling import ThrottleBaseline
from ..runq.verdicts import NoisyNeighborReport, Thresholds, from_histograms
from ..runq.wire import Blame, SwitchOuts
from . import wire

__all__ = ["DEFAULT_SOCKET", "AgentClient", "connect"]

DEFAULT_SOCKET = os.environ.get("NN_AGENT_SOCKET", "/run/noisy-neighbor/agent.sock")
#: Batches received but not yet taken, before the oldest are dropped (counted).
_LOCAL_BATCHES = 1024


def _dial(path: str, timeout: float) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        conn.connect(path)
    except FileNotFoundError:
        conn.close()
        raise AgentUnavailableError(
            f"no agent is listening on {path}: start one as root with "
            "`noisy-neighbor serve --socket` (or the systemd unit), or pass its path"
        ) from None
    except PermissionError:
        conn.close()
        raise AgentUnavailableError(
            f"{path} refuses you: the agent serves the members of its socket group "
            "(ask an administrator: usermod -aG noisy-neighbor $USER, then log in again)"
        ) from None
    except ConnectionRefusedError:
        conn.close()
        raise AgentUnavailableError(
            f"nothing answers on {path}: the agent that made it has stopped"
        ) from None
    return conn


def _raise_if_refused(op: str, meta: dict[str, Any]) -> None:
    """The agent's refusal as the error a user acts on: this client may not
    be served at all (unavailable), or this one request failed."""
    if meta.get("ok", False):
        return
    kind = str(meta.get("kind", ""))
    message = f"the agent refused {op}: {meta.get('error')}"
    if kind in ("permission", "busy", "protocol"):
        raise AgentUnavailableError(message)
    raise AgentRequestError(message, kind)


class _Channel:
    """One connection: requests out, Arrow answers in."""

    def __init__(self, path: str, timeout: float) -> None:
        self.sock = _dial(path, timeout)
        self.reader = self.sock.makefile("rb")
        self.writer = self.sock.makefile("wb")

    def ask(self, op: str, answers: int = 1, **fields: Any) -> list[tuple[Any, dict[str, Any]]]:
        wire.write_request(self.writer, op, **fields)
        out = []
        for _ in range(answers):
            table, meta = wire.read_answer(self.reader)
            _raise_if_refused(op, meta)
            out.append((table, meta))
        return out

    def close(self) -> None:
        for closable in (self.reader, self.writer, self.sock):
            with contextlib.suppress(OSError):
                closable.close()


class AgentClient(Lifecycle):
    """The agent's probe, read from here. Connects at once (so a missing
    agent, or a socket you may not use, is an error now); ``start()``
    begins the window."""

    def __init__(
        self,
        path: str | None = None,
        *,
        stream: bool = False,
        cgroups: Iterable[str | int] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.path = path or DEFAULT_SOCKET
        self.stream = bool(stream)
        self.attribution = True
        self._cgroups = None if cgroups is None else list(cgroups)
        self._timeout = timeout
        self._channel = _Channel(self.path, timeout)
        (_, hello), *_ = self._channel.ask("hello")
        if hello.get("protocol") != wire.PROTOCOL:
            self._channel.close()
            raise AgentUnavailableError(
                f"the agent on {self.path} speaks protocol {hello.get('protocol')}, this "
                f"package {wire.PROTOCOL}: upgrade the older of the two (agent "
                f"{hello.get('version')})"
            )
        self.hello = hello
        self._tree: CgroupTree | None = None
        self._resolver: CgroupResolver | None = None
        self._baseline: Reading | None = None
        self._final: Reading | None = None
        self._throttle: ThrottleBaseline | None = None
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self._stream_channel: _Channel | None = None
        self._batches: queue.Queue[EventBatch | None] = queue.Queue(_LOCAL_BATCHES)
        self._stream_counters: dict[str, int] = {}
        self._local_dropped = 0
        self._stream_error: str | None = None
        self._receiver: threading.Thread | None = None
        self._running = False

    # -- lifecycle -------------------------------------------------------------------

    @property
    def method(self) -> str:
        return str(self.hello.get("method", ""))

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> AgentClient:
        if self._running:
            raise ProbeStateError("the client's window is open already; stop() it first")
        self._tree = CgroupTree()
        self._resolver = CgroupResolver(self._tree)
        self._tree.rescan()
        self._throttle = ThrottleBaseline(self._tree.known_paths(), self._tree.mount)
        self._baseline = self._read()
        self._final = None
        self._started_at, self._stopped_at = time.monotonic(), None
        if self.stream:
            self._subscribe()
        self._running = True
        return self

    def stop(self) -> None:
        """Closes the window (readings stay those of the window) and the
        stream; batches already received stay available."""
        if not self._running:
            return
        self._final = self._read()
        self._stopped_at = time.monotonic()
        self._running = False
        if self._stream_channel is not None:
            self._stream_channel.close()  # the agent sees us go and unsubscribes
        if self._receiver is not None:
            self._receiver.join(timeout=self._timeout)

    def close(self) -> None:
        self.stop()
        self._channel.close()

    def _ask(self, op: str, answers: int = 1, **fields: Any) -> list[tuple[Any, dict[str, Any]]]:
        """A request, on a new connection if the agent closed the old one
        (it closes connections idle for 10 minutes; a notebook's window may
        be longer). Requests carry no state, so asking again is safe."""
        try:
            return self._channel.ask(op, answers, **fields)
        except (OSError, wire.WireError):
            self._channel.close()
            self._channel = _Channel(self.path, self._timeout)
            return self._channel.ask(op, answers, **fields)

    # -- readings --------------------------------------------------------------------

    def _read(self) -> Reading:
        answers = self._ask("reading", answers=3)
        hists = wire.decode_histograms(answers[0][0])
        blame = wire.decode_blame(answers[1][0])
        outs = wire.decode_switch_outs(answers[2][0])
        for hist in hists.values():
            if self._resolver is not None:
                hist.info = self._resolver.resolve(hist.cgroup_id)
        return Reading(
            hists,
            {(b.cgroup_id, b.culprit_cgroup_id): b for b in blame},
            {o.cgroup_id: o for o in outs},
        )

    def _window(self) -> Reading:
        if self._baseline is None:
            raise ProbeStateError("the client's window is not open: call start() or use `with`")
        now = self._final if self._final is not None else self._read()
        return now.since(self._baseline)

    def histograms(self) -> dict[int, CgroupHistogram]:
        """Each cgroup's waits in this client's window, as a probe started
        then would have counted them."""
        hists = self._window().hists
        return {cid: h for cid, h in hists.items() if h.count}

    def latency(self, cgroup: Any) -> CgroupHistogram:
        """One cgroup's histogram in this window, given as an object with an
        ``id`` (a :class:`~noisy_neighbor.testing.TestCgroup`), an id, or a
        path; empty if it never waited (as :meth:`RunqProbe.latency`)."""
        tree = self.cgroup_tree
        cgroup_id = tree.id_of_any(cgroup)
        hist = self.histograms().get(cgroup_id)
        if hist is not None:
            return hist
        info = self.cgroup_info(cgroup_id)
        return CgroupHistogram.empty(cgroup_id, cgroup_path=tree.path(cgroup_id), info=info)

    def forget_removed(self) -> set[int]:
        """Nothing to forget here: the agent keeps removed cgroups' last
        counts for its own readers and drops them on its own schedule."""
        return set()

    def blame(self) -> list[Blame]:
        return list(self._window().blame.values())

    def switch_outs(self) -> list[SwitchOuts]:
        return list(self._window().outs.values())

    def report(self, thresholds: Thresholds | None = None) -> NoisyNeighborReport:
        window = self._window()
        assert self._throttle is not None and self._started_at is not None
        end = self._stopped_at or time.monotonic()
        return from_histograms(
            {cid: h for cid, h in window.hists.items() if h.count},
            list(window.blame.values()),
            list(window.outs.values()),
            self._throttle.since_start,
            window_s=end - self._started_at,
            thresholds=thresholds,
        )

    @property
    def cgroup_tree(self) -> CgroupTree:
        if self._tree is None:
            raise ProbeStateError("the client was never started: use `with nn.connect() as c:`")
        return self._tree

    def cgroup_info(self, cgroup_id: int) -> CgroupInfo:
        if self._resolver is None:
            raise ProbeStateError("the client was never started: use `with nn.connect() as c:`")
        return self._resolver.resolve(cgroup_id)

    def stats(self) -> dict[str, int]:
        """The agent's counters (its probe's, and its streaming probe's as
        ``stream_*``), and this client's: ``batched_events`` received,
        ``dropped_batch_events`` the agent dropped for this client (it was
        not keeping up) and those dropped here (``batches()`` not called)."""
        (_, meta), *_ = self._ask("stats")
        counters = dict(meta.get("stats", {}))
        agent_dropped = self._stream_counters.get("dropped_events", 0)
        counters.update(
            batched_events=self._stream_counters.get("delivered_events", 0),
            dropped_batch_events=agent_dropped + self._local_dropped,
            dropped_batches=self._stream_counters.get("dropped_batches", 0),
        )
        return counters

    def trace(self, program: str, *params: str, seconds: float = 1.0) -> str:
        """Runs a bpftrace-language script in the agent for ``seconds`` (at
        most 60) and returns its text as bpftrace prints it. Needs the
        agent's ``--allow-programs`` group: a tracing program can read any
        kernel memory, so that grant is root-equivalent for reading."""
        (_, meta), *_ = self._ask("trace", program=program, params=list(params), seconds=seconds)
        return str(meta.get("text", ""))

    # -- the stream ----------------------------------------------------------------------

    def _subscribe(self) -> None:
        ids = None
        if self._cgroups is not None:
            assert self._tree is not None
            ids = []
            for cgroup in self._cgroups:
                ids.extend([cgroup] if isinstance(cgroup, int) else self._tree.subtree_ids(cgroup))
        channel = _Channel(self.path, self._timeout)
        wire.write_request(channel.writer, "subscribe", cgroups=ids)
        try:
            reader, meta = wire.open_answer(channel.reader)
            _raise_if_refused("subscribe", meta)
        except wire.WireError as err:
            channel.close()
            raise AgentUnavailableError(f"the agent did not open a stream: {err}") from None
        except (AgentUnavailableError, AgentRequestError):
            channel.close()
            raise
        self._stream_channel = channel
        self._receiver = threading.Thread(
            target=self._receive, args=(reader,), name="nn-agent-stream", daemon=True
        )
        self._receiver.start()

    def _receive(self, reader: Any) -> None:
        pa = wire.pyarrow()
        try:
            while True:
                batch, custom = reader.read_next_batch_with_custom_metadata()
                if custom is not None and b"nn" in custom:
                    self._stream_counters = wire.counters_of(custom)
                if batch.num_rows == 0:
                    continue  # the agent's keep-alive
                try:
                    self._batches.put_nowait(EventBatch(wire.event_columns(batch)))
                except queue.Full:
                    self._local_dropped += batch.num_rows
        except StopIteration:
            if self._running:
                self._stream_error = "the agent ended the stream (it is stopping?)"
        except (OSError, ValueError, pa.ArrowException) as err:
            if self._running:  # not our own stop() closing the socket
                self._stream_error = f"the agent's stream broke: {err}"
        finally:
            with contextlib.suppress(queue.Full):
                self._batches.put_nowait(None)

    def next_batch(self, timeout: float | None = None) -> EventBatch | None:
        if not self.stream:
            raise ProbeStateError("this client does not stream: connect with stream=True")
        try:
            batch = (
                self._batches.get(timeout=timeout) if timeout != 0 else self._batches.get_nowait()
            )
        except queue.Empty:
            return None
        if batch is None:
            self._batches.put_nowait(None)  # the end stays the end
            if self._stream_error is not None:
                raise AgentUnavailableError(self._stream_error)
        return batch

    def batches(self, timeout: float | None = None) -> Iterator[EventBatch]:
        """Batches until stop() (then those already received) or, with
        ``timeout``, until none comes for that long. Ctrl-C stops."""
        while True:
            with interrupt_stops(self.stop):
                batch = self.next_batch(timeout=0.1 if self.running else 0)
            if batch is not None:
                yield batch
                continue
            if not self.running:
                return
            if timeout is not None:
                deadline = time.monotonic() + timeout
                while self.running and time.monotonic() < deadline:
                    if (batch := self.next_batch(timeout=0.1)) is not None:
                        yield batch
                        break
                else:
                    return

    def __repr__(self) -> str:
        state = "open" if self._running else "closed"
        return f"<AgentClient {self.path} {self.method!r} window {state}>"


def connect(path: str | None = None, **options: Any) -> AgentClient:
    """A client of the node agent's socket (``path``: ``$NN_AGENT_SOCKET`` or
    ``/run/noisy-neighbor/agent.sock``). ``stream=True`` subscribes to every
    wait (``cgroups=[...]``: of these only) once started. Raises
    :class:`~noisy_neighbor.AgentUnavailableError` saying what to do when
    there is no agent, the socket refuses you, or versions differ."""
    return AgentClient(path, **options)
