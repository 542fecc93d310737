"""One lifecycle for everything that loads programs: the run-queue probe and
a plugin answer start, stop, close, with, stats and batches the same way
(the table in ``noisy_neighbor.host.lifecycle``)."""

from __future__ import annotations

import json
import subprocess

import pytest

import noisy_neighbor as nn
from noisy_neighbor import _native


def _our_programs() -> set[str]:
    listed = subprocess.run(
        ["bpftool", "prog", "show", "--json"], check=True, capture_output=True, text=True
    ).stdout
    return {p.get("name", "") for p in json.loads(listed)} & {
        "nn_switch_si",
        "nn_switch_si_pc",
        "nn_switch_wk",
        "burst",
    }


@pytest.fixture(params=["runq", "plugin"])
def probe(request, burst_object):
    """A streaming probe of each kind, not started."""
    if request.param == "runq":
        return nn.RunqProbe(stream=True, method="sched_info")
    return nn.Plugin.load(burst_object)


@pytest.mark.needs_bpf
def test_before_start_readings_say_to_start(probe) -> None:
    assert not probe.running
    for reading in (probe.stats, probe.next_batch, lambda: next(probe.batches())):
        with pytest.raises(nn.ProbeStateError, match="not started"):
            reading()
    probe.stop()  # nothing to stop: no error
    probe.close()


@pytest.mark.needs_bpf
def test_start_twice_is_refused_and_stop_twice_is_harmless(probe) -> None:
    with probe:
        assert probe.running and _our_programs()
        with pytest.raises(nn.ProbeStateError, match="already running"):
            probe.start()
    assert not probe.running and not _our_programs()
    probe.stop()
    # Counters and batches already made stay readable after stop, with one
    # set of names.
    assert set(_native.RingStats.NAMES) <= set(probe.stats())
    taken = 0
    while (batch := probe.next_batch(timeout=0)) is not None:
        taken += len(batch)
    assert taken == probe.stats()["batched_events"]


@pytest.mark.needs_bpf
def test_close_lets_go_and_a_restart_starts_afresh(probe) -> None:
    with probe:
        pass
    probe.close()
    with pytest.raises(nn.ProbeStateError, match="closed"):
        probe.stats()
    with probe:
        assert probe.running
    assert probe.stats()["batched_events"] >= 0
    assert not _our_programs()


@pytest.mark.needs_bpf
def test_a_plugin_map_is_filled_before_its_programs_run() -> None:
    source = (
        '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n'
        "struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4);"
        ' __type(key, u32); __type(value, u64); } wanted SEC(".maps");\n'
        'SEC("syscall") int noop(void *ctx) { return 0; }\n'
        'char LICENSE[] SEC("license") = "GPL";\n'
    )
    plugin = nn.Plugin.from_source(source, name="filled", map_entries={"wanted": {7: 70, 9: 90}})
    with plugin:
        assert plugin.map("wanted").to_dict() == {7: 70, 9: 90}
    with pytest.raises(
        nn.PluginObjectError, match=r"a key of map 'wanted' is a uint32 \(u32\): -1 does not fit"
    ):
        nn.Plugin.from_source(source, name="filled", map_entries={"wanted": {-1: 1}})
    with pytest.raises(nn.PluginObjectError, match="map_entries names 'nope'"):
        nn.Plugin.from_source(source, name="filled", map_entries={"nope": {1: 1}})
