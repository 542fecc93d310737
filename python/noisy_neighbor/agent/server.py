"""``noisy-neighbor serve``: the node agent. One probe with attribution, read
by a ledger; ``GET /metrics`` reads the kernel's maps at scrape time and
answers in the format the scraper asked for; ``GET /healthz`` says whether
the probe is attached. A tick reads the probe between scrapes when a
verdict window closes, a recording is due, or removed cgroups need reaping.
SIGTERM, SIGINT and SIGHUP detach the probe, flush the recording and exit 0;
one that comes again during the flush changes nothing.

One lock serialises every reading of the probe (scrapes, ticks, shutdown):
the ledger turns successive readings into counters, so two must never
interleave. A scrape that arrives during shutdown waits for it, then gets 503.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import NoisyNeighborError
from ..runq.probe import RunqProbe
from ..runq.reading import Reading
from ..runq.throttling import ThrottleReader
from .exposition import OPENMETRICS, content_type_for, render
from .ledger import Ledger
from .metrics import families
from .recorder import Recorder

__all__ = ["AgentOptions", "serve"]

log = logging.getLogger(__name__)

#: How often the main loop looks whether a window or a recording is due.
_TICK_S = 1.0
#: Connections served at once, and how long one may stay silent.
_MAX_CONNECTIONS = 64
_CONNECTION_TIMEOUT_S = 5.0
#: Signals that end the agent, each with a last reading and recording.
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
#: Longest time between two readings of the probe, scraped or not: each
#: reading reaps removed cgroups from the kernel's maps, so --max-cgroups
#: must hold the live cgroups plus those made in this many seconds. A
#: reading costs about as much as a scrape, so this is Prometheus' usual
#: scrape interval: scraped that often, the agent never reads on its own.
REAP_INTERVAL_S = 15.0


@dataclass(frozen=True)
class AgentOptions:
    """What ``noisy-neighbor serve`` was asked for (checked by the CLI)."""

    host: str = "127.0.0.1"
    port: int = 9847
    method: str = "auto"
    cgroups: list[str] | None = None
    max_cgroups: int = 10240
    forget_after: float = 300.0
    window: float = 60.0
    culprits: int = 5
    record: str | None = None
    record_interval: float = 10.0
    retain_hours: float = 24.0
    #: a Unix socket for local clients (None: none), its group, and the group
    #: that may load programs through it (None: nobody)
    socket: str | None = None
    socket_group: str = "noisy-neighbor"
    allow_programs: str | None = None
    #: batches a socket client's stream may have waiting before the newest
    #: are dropped for it (counted and reported to it)
    stream_queue_batches: int = 256


class Agent:
    """The probe, its ledger and recorder, behind one lock."""

    def __init__(self, options: AgentOptions) -> None:
        self.options = options
        self.lock = threading.Lock()
        self.recorder = Recorder(options.record, options.retain_hours) if options.record else None
        self.probe = RunqProbe(
            method=options.method,
            cgroups=options.cgroups,
            max_cgroups=options.max_cgroups,
            attribution=True,
        )
        self.ledger: Ledger | None = None
        self._recorded: Reading | None = None
        self._recorded_at = 0.0
        #: the agent's own failures by where (noisy_neighbor_agent_errors_total)
        self.errors: dict[str, int] = {}
        self._last_error: dict[str, str] = {}

    def start(self) -> None:
        self.probe.start()
        self.ledger = Ledger(
            self.probe,
            culprits=self.options.culprits,
            forget_after=self.options.forget_after,
            window=self.options.window,
        )
        self.throttled = ThrottleReader(self.probe.cgroup_tree.mount)
        self._recorded = self.ledger.update()
        self._recorded_at = time.time()
        if self.recorder is not None:
            self.recorder.start_interval(self.ledger)

    def metrics(self, accept: str | None) -> tuple[bytes, str] | None:
        """The exposition and its content type; None once stopped."""
        content_type = content_type_for(accept)
        with self.lock:
            if self.ledger is None or not self.probe.running:
                return None
            self.ledger.update()
            body = render(
                families(self.ledger, self.throttled, self.errors),
                openmetrics=content_type == OPENMETRICS,
            )
        return body, content_type

    @property
    def healthy(self) -> bool:
        return self.probe.running

    def tick(self) -> None:
        """Closes a verdict window, writes the recording, when due."""
        with self.lock:
            ledger = self.ledger
            if ledger is None:
                return
            now = ledger.clock()
            window_due = now - ledger.window_started >= ledger.window
            reap_due = now - ledger.updated_at >= REAP_INTERVAL_S
            record_due = time.time() - self._recorded_at >= self.options.record_interval
            if window_due or reap_due or (self.recorder is not None and record_due):
                ledger.update()
            if self.recorder is not None and record_due:
                self._record()

    def failed(self, where: str, err: BaseException) -> None:
        """Counts one of the agent's own failures; logs it when it is new
        (a full disk fails every interval: one line, not one a second)."""
        self.errors[where] = self.errors.get(where, 0) + 1
        kind = f"{type(err).__name__} {getattr(err, 'errno', '')}"  # not the file named
        if self._last_error.get(where) != kind:
            self._last_error[where] = kind
            log.warning("%s failed (counted in noisy_neighbor_agent_errors_total): %s", where, err)

    def _record(self) -> None:
        """Writes the interval since the last written one. A write that fails
        (a full disk) fails alone: the next one covers both intervals."""
        assert self.ledger is not None and self.recorder is not None
        now = time.time()
        reading = self.ledger.reading
        if self._recorded is not None:
            interval = reading.since(self._recorded)
            try:
                self.recorder.write(self.ledger, interval, now - self._recorded_at, now)
            except OSError as err:
                self.failed("recording", err)
                return
            if self._last_error.pop("recording", None) is not None:
                log.warning("recording again after %d failures", self.errors["recording"])
        self._recorded, self._recorded_at = reading, now

    def stop(self) -> None:
        """Reads one last time, writes what was not recorded, and detaches."""
        with self.lock:
            if self.ledger is not None and self.probe.running:
                self.ledger.update()
                if self.recorder is not None:
                    self._record()
                    try:
                        self.recorder.close()
                    except OSError as err:
                        self.failed("recording", err)
            self.probe.close()


def _handler(agent: Agent) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "noisy-neighbor"
        # A connection that sends no request, or reads no answer, for this
        # long is closed: idle connections cannot pile up.
        timeout = _CONNECTION_TIMEOUT_S

        def do_HEAD(self) -> None:  # the name http.server calls
            self._head_only = True
            self.do_GET()

        def do_GET(self) -> None:  # the name http.server calls
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                try:
                    answer = agent.metrics(self.headers.get("Accept"))
                except (NoisyNeighborError, OSError) as err:
                    # A failed reading fails this scrape (Prometheus marks the
                    # target down), not the agent.
                    log.warning("scrape failed: %s", err)
                    self._send(500, f"reading the probe failed: {err}\n".encode(), "text/plain")
                    return
                if answer is None:
                    self._send(503, b"the probe is not attached\n", "text/plain")
                else:
                    self._send(200, *answer)
            elif path == "/healthz":
                ok = agent.healthy
                self._send(200 if ok else 503, b"ok\n" if ok else b"probe detached\n", "text/plain")
            elif path == "/":
                self._send(200, b'<a href="/metrics">/metrics</a>\n', "text/html")
            else:
                self._send(404, b"not found: try /metrics or /healthz\n", "text/plain")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            try:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not getattr(self, "_head_only", False):
                    self.wfile.write(body)
            except (ConnectionError, TimeoutError):
                pass  # the scraper left (or stalled): nothing to tell it

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

    return Handler


class _Server(ThreadingHTTPServer):
    """At most _MAX_CONNECTIONS handled at once; the next ones wait in the
    kernel's listen backlog (not refused) until one ends. So a flood of
    idle connections holds threads for _CONNECTION_TIMEOUT_S at most, and
    never the agent's file descriptors."""

    # A scrape in flight never holds up the exit.
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._slots = threading.BoundedSemaphore(_MAX_CONNECTIONS)
        self.closing = threading.Event()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        while not self._slots.acquire(timeout=0.5):
            if self.closing.is_set():
                self.shutdown_request(request)
                return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up or stalls is routine, not a traceback.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _StopRequest:
    """Set by a signal handler, waited on by the main loop. The handler takes
    no lock: Python runs a handler between any two bytecodes, a second
    signal's handler inside the first's, and one that took a lock (as
    ``threading.Event.set`` does) deadlocked there on the lock the first
    held (SIGTERM twice, 10 ms apart, hung the agent). It sets a flag and
    writes a byte to a pipe, both safe to repeat at any point."""

    def __init__(self) -> None:
        self.requested = False
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def __call__(self, *_: Any) -> None:
        self.requested = True
        with suppress(OSError):  # a full pipe already says it
            os.write(self._write, b"x")

    def wait(self, timeout: float) -> bool:
        """True once requested; else after ``timeout`` s (sooner if it is)."""
        if not self.requested:
            with suppress(InterruptedError):
                select.select([self._read], [], [], timeout)
        return self.requested

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


@contextmanager
def _stopping_on(
    signals: Iterable[signal.Signals], *, restore: bool = True
) -> Iterator[_StopRequest]:
    """A stop request made by any of ``signals`` while inside; after, the
    handlers before are restored, or (``restore=False``, for a process about
    to exit) the signals ignored, so one that comes late cannot kill it
    between its last recording and its exit status."""
    stop = _StopRequest()
    previous = {sig: signal.signal(sig, stop) for sig in signals}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if restore else signal.SIG_IGN)
        stop.close()


def serve(options: AgentOptions, *, out: Any = None, restore_signals: bool = True) -> int:
    """Runs the agent until SIGTERM, SIGINT or SIGHUP; returns the exit
    status. ``restore_signals=False`` (the command line) leaves those
    signals ignored after, for a process that exits next."""
    out = out or sys.stdout
    agent = Agent(options)
    kind = _Server6 if ":" in options.host else _Server
    try:
        server = kind((options.host, options.port), _handler(agent))
    except OSError as err:
        raise NoisyNeighborError(
            f"cannot listen on {options.host}:{options.port}: {err.strerror or err} "
            "(another agent on that port? pick another --listen)"
        ) from None
    sockets = None
    # The handlers stay until the last recording is written: a second
    # SIGTERM (or SIGHUP) during the flush only repeats the request.
    with _stopping_on(_STOP_SIGNALS, restore=restore_signals) as stop:
        try:
            agent.start()
            if options.socket:
                from .socket_server import SocketServer
                from .streams import StreamHub

                hub = StreamHub(
                    options.method,
                    options.max_cgroups,
                    queue_batches=options.stream_queue_batches,
                )
                sockets = SocketServer(
                    agent.probe,
                    agent.lock,
                    hub,
                    options.socket,
                    options.socket_group,
                    options.allow_programs,
                )
                sockets.start()
            host, port = str(server.server_address[0]), int(server.server_address[1])
            shown = f"[{host}]" if ":" in str(host) else host
            local = f", local clients on {options.socket}" if options.socket else ""
            print(
                f"noisy-neighbor serve: http://{shown}:{port}/metrics ({agent.probe.method} "
                f"method, verdicts over {options.window:g} s{local}); SIGTERM or Ctrl-C stops",
                file=out,
                flush=True,
            )
            threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
            while not stop.wait(_TICK_S):
                try:
                    agent.tick()
                except (OSError, NoisyNeighborError) as err:
                    # Out of descriptors, a cgroup read that failed: this
                    # tick fails, the agent goes on.
                    agent.failed("tick", err)
            server.closing.set()
            server.shutdown()
        finally:
            server.closing.set()
            if sockets is not None:
                sockets.close()
            agent.stop()
            server.server_close()
    return 0
