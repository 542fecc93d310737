"""What ``/metrics`` shows, built from the ledger at scrape time.

Names and labels are public: dashboards and alerts are written against them
(see ``deploy/prometheus/``). Every per-cgroup series carries ``cgroup`` (the
path relative to the cgroup2 mount, as ``/proc/<pid>/cgroup`` shows it) and,
where known, ``service``, ``container``, ``container_id``, ``pod`` and
``namespace``: the join keys of cAdvisor and kube-state-metrics. Never a pid
or a command: they would make a new series for every process.

The latency histogram counts wall-clock waits in the log2 table, summed
exactly from the kernel's fine buckets: bucket ``i`` counts waits of at most
``2**(i+1) - 1`` ns, so that is its ``le``, and each cumulative count is
exact. The first bucket shown gathers every wait under about a microsecond,
the last bound is about 34 s; ``+Inf`` holds the rest. Its ``_sum`` is the
wall-clock sum; ``noisy_neighbor_runqueue_wait_seconds_total`` is the
kernel's own account (schedstat's run_delay).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np

from .._native import __version__
from ..names.resolver import CgroupInfo
from ..runq.histogram import CgroupHistogram
from ..runq.throttling import ThrottleReader
from ..runq.verdicts import VERDICT_KINDS
from ..runq.wire import IDLE, SWITCH_OUT_CAUSES, UNTRACKED
from .bpf_stats import program_run_times
from .culprits import OTHER
from .exposition import Family, format_value, label_set

if TYPE_CHECKING:
    from .ledger import Ledger

__all__ = ["AGENT_ERRORS", "BUCKET_SLOTS", "LOSS_COUNTERS", "families"]

#: The kernel buckets shown, by slot: 2**10 - 1 ns (~1 us) to 2**35 - 1 ns (~34 s).
BUCKET_SLOTS = range(9, 35)
_LE = [format_value(((1 << (slot + 1)) - 1) / 1e9) for slot in BUCKET_SLOTS]
_BUCKET = "noisy_neighbor_runqueue_latency_seconds_bucket{"
#: ``stats()`` counters that count something lost (kernel and user side).
LOSS_COUNTERS = (
    "failed_updates",
    "failed_task_storage",
    "failed_attribution",
    "dropped_ringbuf",
    "rate_limited",
    "dropped_batches",
    "dropped_batch_events",
    "malformed_records",
    "undecoded_records",
    "ring_errors",
)
#: Where the agent counts its own failures (``noisy_neighbor_agent_errors_total``).
AGENT_ERRORS = ("recording", "tick")
_CULPRIT_NAMES = {IDLE: "idle", UNTRACKED: "untracked", OTHER: "other"}


def cgroup_labels(info: CgroupInfo | None, path: str | None, prefix: str = "") -> str:
    """The label pairs of a cgroup, inside the braces (no braces)."""
    pairs: list[tuple[str, str | None]] = [(prefix + "cgroup", path)]
    if info is not None:
        pairs += [
            (prefix + "service", info.service),
            (prefix + "container", info.container_name),
            (prefix + "container_id", info.container_id),
            (prefix + "pod", info.pod_name),
            (prefix + "namespace", info.pod_namespace),
        ]
    return label_set(pairs)[1:-1]


def families(
    ledger: Ledger,
    throttled: Callable[[str], int | None] | None = None,
    errors: Mapping[str, int] | None = None,
) -> list[Family]:
    """Every family, from the ledger's latest reading (call ``update()`` first).
    ``throttled`` reads a cgroup's throttled ns by path (a long-lived
    :class:`ThrottleReader` saves re-reading cgroups without a CPU controller);
    ``errors`` counts the agent's own failures by where they happened."""
    now = ledger.clock()
    if throttled is None:
        throttled = ThrottleReader(ledger.probe.cgroup_tree.mount)

    wait = Family(
        "noisy_neighbor_runqueue_wait_seconds",
        "counter",
        "Time tasks of the cgroup spent runnable, waiting for a CPU (schedstat's run_delay).",
        unit="seconds",
    )
    waits = Family("noisy_neighbor_runqueue_waits", "counter", "Waits for a CPU that ended.")
    latency = Family(
        "noisy_neighbor_runqueue_latency_seconds",
        "histogram",
        "Run-queue waits by length (wall clock), in log2 buckets summed from the kernel's.",
        unit="seconds",
    )
    culprit = Family(
        "noisy_neighbor_culprit_wait_seconds",
        "counter",
        "The cgroup's wait split by the cgroup that had the CPU meanwhile "
        "(idle: the CPU was idle; untracked: not split; other: culprits without a series).",
        unit="seconds",
    )
    outs = Family(
        "noisy_neighbor_switch_outs",
        "counter",
        "Times tasks of the cgroup left a CPU, by cause.",
    )
    throttle = Family(
        "noisy_neighbor_cpu_throttled_seconds",
        "counter",
        "Time the cgroup was throttled by its own CPU quota.",
        unit="seconds",
    )
    verdict = Family(
        "noisy_neighbor_verdict",
        "gauge",
        "1 for the cgroup's verdict over the last closed window, 0 for the other kinds.",
    )
    # A series is its labels: cgroups that share them (a service restarted:
    # same path, new id) are summed into one, which never goes back, as the
    # ledger keeps the old cgroup's counts while its path lives.
    series: dict[str, list[int]] = {}
    for cgroup_id, hist in ledger.reading.hists.items():
        if ledger.visible(cgroup_id, now):
            series.setdefault(_labels_of(hist), []).append(cgroup_id)
    window = ledger.last_window
    verdicts = window.report.verdicts if window is not None else None
    for labels, ids in sorted(series.items()):
        hists = [ledger.reading.hists[cid] for cid in ids]
        _histogram_samples(wait, waits, latency, labels, hists)
        live = [h.cgroup_path for h in hists if h.cgroup_path is not None]
        if live and (ns := throttled(live[0])) is not None:
            throttle.add("{" + labels + "}", ns / 1e9)
        switched = [o for cid in ids if (o := ledger.reading.outs.get(cid)) is not None]
        if switched:
            for cause in SWITCH_OUT_CAUSES:
                total = sum(getattr(o, cause) for o in switched)
                outs.add(f'{{{labels},cause="{cause}"}}', total)
        by_culprit: dict[str, int] = {}
        for cid in ids:
            if (counters := ledger.culprits.get(cid)) is not None:
                for key, ns in counters.counters.items():
                    name = _culprit_labels(ledger, key)
                    by_culprit[name] = by_culprit.get(name, 0) + ns
        for name, ns in sorted(by_culprit.items()):
            culprit.add("{" + labels + "," + name + "}", ns / 1e9)
        if verdicts is not None:
            # A cgroup that did not wait in the window gets "none": its
            # verdict series stay put rather than come and go with its waits.
            given = next((verdicts[c].kind for c in ids if c in verdicts), "none")
            for kind in VERDICT_KINDS:
                verdict.add(f'{{{labels},kind="{kind}"}}', int(kind == given))
    return [
        wait,
        waits,
        latency,
        culprit,
        outs,
        throttle,
        verdict,
        *_agent_families(ledger, errors or {}),
    ]


def _labels_of(hist: CgroupHistogram, prefix: str = "") -> str:
    """A cgroup's labels; one removed before the agent learnt its path is
    named by the kernel's name for it, under ``.../``."""
    return cgroup_labels(hist.info, hist.last_known_path or f".../{hist.cgroup_name}", prefix)


def _histogram_samples(
    wait: Family, waits: Family, latency: Family, labels: str, hists: list[CgroupHistogram]
) -> None:
    braces = "{" + labels + "}"
    slots = hists[0].slots if len(hists) == 1 else np.sum([h.slots for h in hists], axis=0)
    total_ns = sum(h.total_ns for h in hists)
    # The buckets count wall-clock waits: their sum goes with them.
    wall_ns = sum(h.total_ns if h.wall_ns is None else h.wall_ns for h in hists)
    cumulative = np.cumsum(slots, dtype=np.uint64)
    # The count from the buckets themselves: the kernel bumps a bucket and the
    # count one after the other, and a reading between the two must still
    # give buckets that never exceed +Inf.
    count = int(cumulative[-1])
    wait.add(braces, total_ns / 1e9)
    waits.add(braces, count)
    head = _BUCKET + labels + ("," if labels else "") + 'le="'
    counts = cumulative[BUCKET_SLOTS.start : BUCKET_SLOTS.stop].tolist()
    latency.add_lines(f'{head}{le}"}} {n}' for le, n in zip(_LE, counts))
    latency.add_lines([f'{head}+Inf"}} {count}'])
    latency.add(braces, wall_ns / 1e9, "_sum")
    latency.add(braces, count, "_count")


def _culprit_labels(ledger: Ledger, culprit: int) -> str:
    if culprit in _CULPRIT_NAMES:
        return f'culprit_cgroup="{_CULPRIT_NAMES[culprit]}"'
    hist = ledger.reading.hists.get(culprit)
    if hist is not None:
        return _labels_of(hist, "culprit_")
    info = ledger.probe.cgroup_info(culprit)
    return cgroup_labels(info, info.path or f"cgroup {culprit}", "culprit_")


def _agent_families(ledger: Ledger, errors: Mapping[str, int]) -> Iterator[Family]:
    failures = Family(
        "noisy_neighbor_agent_errors",
        "counter",
        "The agent's own failures, by where: a recording not written (a full disk; "
        "the next one covers its interval), a tick that could not read the probe.",
    )
    for where in AGENT_ERRORS:
        failures.add(f'{{where="{where}"}}', errors.get(where, 0))
    yield failures
    lost = Family(
        "noisy_neighbor_lost",
        "counter",
        "Measurements lost, by reason (a full map, a full ring buffer, a slow reader...).",
    )
    for reason in LOSS_COUNTERS:
        lost.add(f'{{reason="{reason}"}}', ledger.stats.get(reason, 0))
    yield lost
    run_time = Family(
        "noisy_neighbor_bpf_run_seconds",
        "counter",
        "Time the kernel spent in each of the agent's BPF programs "
        "(only while sysctl kernel.bpf_stats_enabled=1).",
        unit="seconds",
    )
    runs = Family("noisy_neighbor_bpf_runs", "counter", "Runs of each of the agent's BPF programs.")
    for program in program_run_times():
        labels = label_set([("program", program.name)])
        run_time.add(labels, program.run_time_ns / 1e9)
        runs.add(labels, program.run_cnt)
    if run_time.samples:
        yield run_time
        yield runs
    info = Family("noisy_neighbor_build", "info", "The agent's version, method and kernel.")
    info.add(
        label_set(
            [
                ("version", __version__),
                ("method", ledger.probe.method),
                ("kernel", os.uname().release),
            ]
        ),
        1,
    )
    yield info
