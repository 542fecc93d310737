"""The agent's local socket: readings and live event streams of the agent's
one probe for analysts who are not root (``serve --socket``). The socket is
``0660``, owned by root and the socket group, so the kernel lets only that
group's members connect; the agent checks the caller's credentials again
(``SO_PEERCRED``) and logs each client's uid and what it asked for.

Loading programs (bpftrace scripts) through the agent is a separate grant
(``--allow-programs GROUP``): a tracing program can read any kernel memory,
so that grant is root-equivalent for reading.

Each client has a thread of its own; a stream subscription turns its
connection into one long Arrow stream fed from its own bounded queue."""

from __future__ import annotations

import contextlib
import grp
import json
import logging
import os
import queue
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from .._native import __version__
from ..remote import wire
from ..runq.probe import RunqProbe
from ..runq.wire import EVENT_DTYPES, RUNQ_EVENT_FIELDS
from .streams import StreamHub, Subscriber

__all__ = ["DEFAULT_SOCKET", "DEFAULT_SOCKET_GROUP", "SocketServer"]

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "/run/noisy-neighbor/agent.sock"
DEFAULT_SOCKET_GROUP = "noisy-neighbor"
#: Clients at once; the next one is told so and closed.
MAX_CLIENTS = 64
#: A client that sends no request for this long (outside a stream) is closed.
IDLE_TIMEOUT_S = 600.0
#: Longest script a program-granted client may run through the agent.
MAX_SCRIPT_SECONDS = 60.0


def group_id(name: str) -> int:
    """A group's id from its name, or a number as it is (a container's
    /etc/group does not know the node's groups)."""
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise ValueError(
            f"group {name!r} does not exist: create it (groupadd {name}) and add the "
            f"analysts who may read the agent (usermod -aG {name} USER), or name another "
            "with --socket-group (a name or a number)"
        ) from None


#: The peer's groups as it held them when it connected (Linux 4.13+).
_SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)


def _groups_of(conn: socket.socket, pid: int, gid: int) -> set[int]:
    """The groups a connected process holds, as the kernel saw them at
    connect(); from /proc if the socket cannot say (more than 255 groups),
    which a unit with ProtectProc=invisible hides."""
    groups = {gid}
    with contextlib.suppress(OSError):
        raw = conn.getsockopt(socket.SOL_SOCKET, _SO_PEERGROUPS, 1024)
        groups.update(struct.unpack(f"{len(raw) // 4}I", raw[: len(raw) // 4 * 4]))
        return groups
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Groups:"):
                groups.update(int(g) for g in line.split()[1:])
    return groups


class SocketServer:
    """Serves ``probe`` (read under ``lock``, which its owner holds while
    it reads too) and the streams of ``hub`` on the socket at ``path``."""

    def __init__(
        self,
        probe: RunqProbe,
        lock: threading.Lock,
        hub: StreamHub,
        path: str,
        group: str,
        programs_group: str | None = None,
    ) -> None:
        self.probe = probe
        self.lock = lock
        self.hub = hub
        self.path = path
        self.gid = group_id(group)
        self.programs_gid = None if programs_group is None else group_id(programs_group)
        self.clients = 0
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._closing = threading.Event()

    # -- listening ----------------------------------------------------------------------

    def start(self) -> None:
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, mode=0o755, exist_ok=True)
        self._remove_stale()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o117)  # never, even for a moment, wider than 0660
        try:
            listener.bind(self.path)
        finally:
            os.umask(old_umask)
        try:
            os.chown(self.path, -1, self.gid)
        except PermissionError:
            listener.close()
            os.unlink(self.path)
            raise PermissionError(
                f"cannot give {self.path} to group {self.gid}: the agent needs CAP_CHOWN, or "
                "to be a member of that group (SupplementaryGroups= in a systemd unit, "
                "supplementalGroups in a pod)"
            ) from None
        os.chmod(self.path, 0o660)
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, name="nn-socket", daemon=True).start()
        log.info("serving readings and streams on %s (group %d)", self.path, self.gid)

    def _remove_stale(self) -> None:
        """A socket file another agent left behind (no one listening) goes;
        a live one is an error: two agents would each load a probe."""
        if not os.path.exists(self.path):
            return
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(self.path)
        except OSError:
            os.unlink(self.path)
            return
        finally:
            probe.close()
        raise OSError(f"another agent is listening on {self.path}: stop it, or use --socket PATH")

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError as err:
                if self._closing.is_set():
                    return
                # Out of descriptors or memory: the agent goes on, the
                # socket answers again once clients leave.
                log.warning("cannot accept a client now: %s", err)
                time.sleep(1.0)
                continue
            with self._lock:
                full = self.clients >= MAX_CLIENTS
                if not full:
                    self.clients += 1
            if full:
                busy = f"the agent serves {MAX_CLIENTS} clients at most: try again later"
                with contextlib.suppress(OSError):
                    wire.write_answer(conn.makefile("wb"), ok=False, kind="busy", error=busy)
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self._closing.set()
        if self._listener is not None:
            self._listener.close()
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        self.hub.close()

    # -- one client -----------------------------------------------------------------------

    def _serve(self, conn: socket.socket) -> None:
        try:
            pid, uid, gid = struct.unpack(
                "3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            )
            groups = _groups_of(conn, pid, gid)
            client = f"uid {uid} (pid {pid})"
            conn.settimeout(IDLE_TIMEOUT_S)
            reader, writer = conn.makefile("rb"), conn.makefile("wb")
            if uid != 0 and self.gid not in groups:
                log.warning("refused %s: not in the socket's group", client)
                wire.write_answer(
                    writer,
                    ok=False,
                    kind="permission",
                    error="you are not in the agent's socket group",
                )
                return
            may_load = uid == 0 or (self.programs_gid is not None and self.programs_gid in groups)
            while (request := wire.read_request(reader)) is not None:
                op = request["op"]
                log.info("%s asked for %s", client, op)
                if op == "subscribe":
                    self._stream(request, writer, client)
                    return
                self._answer(op, request, writer, may_load)
        except wire.WireError as err:
            with contextlib.suppress(OSError):
                wire.write_answer(conn.makefile("wb"), ok=False, kind="protocol", error=str(err))
        except (OSError, ValueError):
            pass  # the client went away or timed out: nothing to tell it
        finally:
            conn.close()
            with self._lock:
                self.clients -= 1

    def _answer(self, op: str, request: dict[str, Any], writer: Any, may_load: bool) -> None:
        probe = self.probe
        if op == "hello":
            wire.write_answer(
                writer,
                protocol=wire.PROTOCOL,
                version=__version__,
                method=probe.method,
                node=socket.gethostname(),
                programs=may_load,
            )
        elif op == "reading":
            with self.lock:
                hists = probe.histograms()
                blame = probe.blame()
                outs = probe.switch_outs()
            wire.write_answer(writer, wire.histograms_table(hists.values()))
            wire.write_answer(writer, wire.blame_table(blame))
            wire.write_answer(writer, wire.switch_outs_table(outs))
        elif op == "stats":
            with self.lock:
                stats = probe.stats()
            wire.write_answer(writer, stats={**stats, **self.hub.stats()})
        elif op == "trace":
            self._trace(request, writer, may_load)
        else:
            wire.write_answer(writer, ok=False, kind="protocol", error=f"unknown request {op!r}")

    def _trace(self, request: dict[str, Any], writer: Any, may_load: bool) -> None:
        if not may_load:
            wire.write_answer(
                writer,
                ok=False,
                kind="permission",
                error="loading programs through the agent needs its --allow-programs group",
            )
            return
        from ..errors import NoisyNeighborError
        from ..script.runtime import Script

        seconds = min(float(request.get("seconds", 1.0)), MAX_SCRIPT_SECONDS)
        try:
            script = Script(
                str(request.get("program", "")),
                *map(str, request.get("params", [])),
                keep_printf=True,
            )
            script.run(seconds)
            script.sink.at_exit(script.snapshots())
            text = script.text()
            script.close()
        except NoisyNeighborError as err:
            wire.write_answer(writer, ok=False, kind="script", error=str(err))
            return
        wire.write_answer(writer, text=text)

    def _stream(self, request: dict[str, Any], writer: Any, client: str) -> None:
        cgroups = request.get("cgroups")
        if cgroups is not None and not all(isinstance(c, int) and c > 0 for c in cgroups):
            wire.write_answer(writer, ok=False, kind="protocol", error="cgroups are positive ids")
            return
        subscriber = self.hub.subscribe(cgroups)
        try:
            _send_events(subscriber, writer, self._closing)
        finally:
            self.hub.unsubscribe(subscriber)
            log.info("%s unsubscribed: %s", client, subscriber.counters())


def _event_schema() -> Any:
    pa = wire.pyarrow()
    fields = [pa.field(name, pa.from_numpy_dtype(EVENT_DTYPES[name])) for name in RUNQ_EVENT_FIELDS]
    return pa.schema(fields, metadata={"nn": '{"ok": true, "stream": true}'})


def _send_events(subscriber: Subscriber, writer: Any, closing: threading.Event) -> None:
    """The subscriber's batches, as one Arrow stream; an empty batch each
    second when there is nothing, so a client that has gone is noticed."""
    pa = wire.pyarrow()
    schema = _event_schema()
    with pa.ipc.new_stream(writer, schema) as stream:
        while not closing.is_set():
            try:
                columns = subscriber.queue.get(timeout=1.0)
            except queue.Empty:
                columns = {name: np.zeros(0, EVENT_DTYPES[name]) for name in RUNQ_EVENT_FIELDS}
            batch = pa.record_batch(
                [pa.array(columns[n]) for n in RUNQ_EVENT_FIELDS], schema=schema
            )
            subscriber.delivered_events += batch.num_rows
            meta = {"nn": json.dumps(subscriber.counters())}
            stream.write_batch(batch, custom_metadata=meta)
            writer.flush()
