"""Live streams of run-queue events for the agent's socket clients, from one
streaming probe loaded only while someone subscribes, and measuring only
the cgroups some subscriber asked for (the union, followed as subscribers
come and go, without reloading while every subscriber names cgroups).

Each subscriber has its own bounded queue: a slow or stalled client loses
batches of its own, counted and told to it, and never slows the probe or
another client."""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..runq.probe import RunqProbe

__all__ = ["StreamHub", "Subscriber"]

log = logging.getLogger(__name__)

#: Batches a subscriber may have waiting before new ones are dropped for it.
QUEUE_BATCHES = 256
#: How often the pump looks for a batch (and whether to stop).
_POLL_S = 0.1


@dataclass(eq=False)
class Subscriber:
    """One client's stream: the cgroups it wants (None: all) and its queue."""

    cgroups: np.ndarray | None
    queue: queue.Queue[dict[str, np.ndarray]] = field(
        default_factory=lambda: queue.Queue(QUEUE_BATCHES)
    )
    delivered_events: int = 0
    dropped_batches: int = 0
    dropped_events: int = 0
    #: times the streaming probe was reloaded while this one listened: waits
    #: in the moment between two probes reached nobody
    gaps: int = 0

    def offer(self, columns: dict[str, np.ndarray]) -> None:
        if self.cgroups is not None:
            mine = np.isin(columns["cgroup_id"], self.cgroups)
            if not mine.any():
                return
            if not mine.all():
                columns = {name: column[mine] for name, column in columns.items()}
        try:
            self.queue.put_nowait(columns)
        except queue.Full:
            self.dropped_batches += 1
            self.dropped_events += len(columns["cgroup_id"])

    def counters(self) -> dict[str, int]:
        return {
            "delivered_events": self.delivered_events,
            "dropped_batches": self.dropped_batches,
            "dropped_events": self.dropped_events,
            "gaps": self.gaps,
        }


class StreamHub:
    def __init__(
        self,
        method: str,
        max_cgroups: int,
        *,
        queue_batches: int = QUEUE_BATCHES,
        probe_options: dict[str, Any] | None = None,
    ):
        self.method = method
        self.max_cgroups = max_cgroups
        self.queue_batches = queue_batches
        self.probe_options = probe_options or {}
        self.lock = threading.Lock()
        self.subscribers: list[Subscriber] = []
        self.probe: RunqProbe | None = None
        self._pump: threading.Thread | None = None
        #: times the probe was reloaded to measure every cgroup
        self.reloads = 0
        #: the streaming probe's counters, summed over the probes it ran
        self.totals: dict[str, int] = {}

    # -- subscribers -----------------------------------------------------------------

    def subscribe(self, cgroups: list[int] | None) -> Subscriber:
        wanted = None if cgroups is None else np.asarray(sorted(set(cgroups)), dtype=np.uint64)
        subscriber = Subscriber(wanted, queue.Queue(self.queue_batches))
        with self.lock:
            self.subscribers.append(subscriber)
            self._retune()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self.lock:
            if subscriber in self.subscribers:
                self.subscribers.remove(subscriber)
            self._retune()

    def _union(self) -> set[int] | None:
        union: set[int] = set()
        for subscriber in self.subscribers:
            if subscriber.cgroups is None:
                return None
            union.update(int(c) for c in subscriber.cgroups)
        return union

    def _retune(self) -> None:
        """The probe the subscribers need, under the lock."""
        if not self.subscribers:
            self._stop_probe()
            return
        union = self._union()
        probe = self.probe
        if probe is not None and probe.running:
            measures_all = not probe.filtered
            if union is None and not measures_all:
                # A subscriber wants every cgroup: reload unfiltered. Those
                # already listening are told of the gap.
                self.reloads += 1
                for subscriber in self.subscribers:
                    subscriber.gaps += subscriber.cgroups is not None
                self._stop_probe()
            elif union is not None and not measures_all:
                probe.refilter(union)
                return
            else:
                return
        self._start_probe(union)

    def _start_probe(self, union: set[int] | None) -> None:
        probe = RunqProbe(
            method=self.method,
            stream=True,
            cgroups=None if union is None else sorted(union),
            filter_capacity=self.max_cgroups,
            max_cgroups=self.max_cgroups,
            batch_ms=50.0,
            pending_batches=256,
            **self.probe_options,
        )
        probe.start()
        self.probe = probe
        self._pump = threading.Thread(target=self._pump_batches, args=(probe,), daemon=True)
        self._pump.start()
        log.info("streaming probe loaded for %d subscriber(s)", len(self.subscribers))

    def _stop_probe(self) -> None:
        probe, pump = self.probe, self._pump
        self.probe, self._pump = None, None
        if probe is None:
            return
        probe.stop()
        if pump is not None and pump is not threading.current_thread():
            # its last batches still go out, before the probe's counters are kept
            self.lock.release()
            try:
                pump.join(timeout=10)
            finally:
                self.lock.acquire()
        for name, value in probe.stats().items():
            self.totals[name] = self.totals.get(name, 0) + value
        probe.close()
        log.info("streaming probe unloaded")

    def _pump_batches(self, probe: RunqProbe) -> None:
        """Hands each batch to every subscriber's queue; never blocks on one."""
        while True:
            batch = probe.next_batch(timeout=_POLL_S)
            if batch is None:
                if not probe.running and probe.next_batch(timeout=0) is None:
                    return
                continue
            columns = batch.columns()
            with self.lock:
                subscribers = list(self.subscribers)
            for subscriber in subscribers:
                subscriber.offer(columns)

    def stats(self) -> dict[str, int]:
        with self.lock:
            totals = dict(self.totals)
            if self.probe is not None and self.probe.running:
                for name, value in self.probe.stats().items():
                    totals[name] = totals.get(name, 0) + value
            return {
                **{f"stream_{k}": v for k, v in totals.items()},
                "stream_subscribers": len(self.subscribers),
                "stream_reloads": self.reloads,
            }

    def close(self) -> None:
        with self.lock:
            self.subscribers.clear()
            self._stop_probe()
