"""Writing the maps of a running plugin on the real kernel: entries updated
from Python and seen by the program, per-CPU values written to every CPU or
one by one, maps cleared and zeroed as bpftrace's clear() and zero() do, and
refusals that name the map and the kernel's reason."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

import noisy_neighbor as nn
from noisy_neighbor.host.compile import compile_file
from noisy_neighbor.host.cpu_rings import possible_cpus

PLUGINS = Path(__file__).parent / "data" / "plugins"

pytestmark = [pytest.mark.needs_bpf, pytest.mark.usefixtures("private_plugin_cache")]


@pytest.fixture
def plugin() -> Iterator[nn.Plugin]:
    with nn.Plugin.load(compile_file(PLUGINS / "writable_maps.bpf.c")) as running:
        yield running


def _limit_seen_by_the_program(plugin: nn.Plugin, key: int) -> int:
    return plugin.run("lookup_limit", struct.pack("=I", key))


def test_updated_entries_are_what_the_running_program_reads(plugin) -> None:
    assert plugin.update("limits", {7: 70, 9: 90}) == 2
    assert _limit_seen_by_the_program(plugin, 7) == 70
    assert _limit_seen_by_the_program(plugin, 8) == 0xFFFFFFFF
    assert plugin.update("limits", {7: 71}) == 1  # overwrites
    assert plugin.map("limits").to_dict() == {7: 71, 9: 90}
    assert _limit_seen_by_the_program(plugin, 7) == 71


def test_a_full_hash_or_an_index_past_an_array_says_which_map_and_why(plugin) -> None:
    with pytest.raises(
        nn.MapAccessError,
        match=r'writing map "limits" failed after writing 4 of 5 entries: '
        r"Argument list too long.*full \(4 entries\).*max_entries",
    ):
        plugin.update("limits", {key: key for key in range(5)})
    assert len(plugin.map("limits")) == 4  # the first four stay written
    with pytest.raises(nn.MapAccessError, match=r'map "slots".*indexes, 0 to 3'):
        plugin.update("slots", {4: 1})
    # Values that do not fit the BTF types fail before anything is written.
    with pytest.raises(nn.PluginObjectError, match=r"a key of map 'slots' is a uint32.*fit"):
        plugin.update("slots", {-1: 1})
    with pytest.raises(nn.PluginObjectError, match="update names 'nope'"):
        plugin.update("nope", {1: 1})


def test_per_cpu_values_go_to_every_cpu_or_one_per_cpu(plugin) -> None:
    cpus = possible_cpus()
    assert plugin.update("per_cpu_counts", {1: 5}) == 1
    assert plugin.map("per_cpu_counts").to_dict() == {1: [5] * cpus}
    plugin.update("per_cpu_counts", {2: list(range(cpus))}, per_cpu=True)
    snapshot = plugin.map("per_cpu_counts").to_dict()
    assert snapshot[2] == list(range(cpus))
    # What a snapshot gives, written back, is the same map.
    plugin.clear("per_cpu_counts")
    assert plugin.update("per_cpu_counts", snapshot, per_cpu=True) == 2
    assert plugin.map("per_cpu_counts").to_dict() == snapshot
    with pytest.raises(nn.PluginObjectError, match=f"a list of {cpus} values, one per"):
        plugin.update("per_cpu_counts", {3: [1] * (cpus + 1)}, per_cpu=True)
    with pytest.raises(nn.PluginObjectError, match="one value per key: leave out per_cpu"):
        plugin.update("limits", {1: [1] * cpus}, per_cpu=True)


def test_struct_keys_and_values_are_written_as_tuples_and_dicts(plugin) -> None:
    plugin.update("flows", {(42, "curl"): {"packets": 3, "drops": 1}, (7, "sshd"): (9, 0)})
    assert plugin.map("flows").to_dict() == {
        (42, "curl"): {"packets": 3, "drops": 1},
        (7, "sshd"): {"packets": 9, "drops": 0},
    }
    assert plugin.delete("flows", [(7, "sshd")]) == 1
    with pytest.raises(nn.PluginObjectError, match=r"no fields \['bytes'\]"):
        plugin.update("flows", {(1, "x"): {"bytes": 1}})
    with pytest.raises(nn.PluginObjectError, match="field 'comm', is a char\\[16\\] string"):
        plugin.update("flows", {(1, "x" * 16): {"packets": 1}})


def test_clear_deletes_every_key_and_empties_an_array(plugin) -> None:
    plugin.update("limits", {1: 10, 2: 20, 3: 30})
    plugin.update("per_cpu_counts", {1: 1, 2: 2})
    plugin.update("slots", {0: 5, 3: 8})
    assert plugin.clear("limits") == 3
    assert plugin.map("limits").to_dict() == {}
    assert plugin.clear("per_cpu_counts") == 2
    assert len(plugin.map("per_cpu_counts")) == 0
    # An array's entries cannot be deleted: all four are zeroed instead.
    assert plugin.clear("slots") == 4
    assert plugin.map("slots").to_dict() == {0: 0, 1: 0, 2: 0, 3: 0}
    assert _limit_seen_by_the_program(plugin, 1) == 0xFFFFFFFF


def test_zero_keeps_the_keys_and_sets_every_value_to_zero(plugin) -> None:
    cpus = possible_cpus()
    plugin.update("limits", {1: 10, 2: 20})
    plugin.update("per_cpu_counts", {5: list(range(1, cpus + 1))}, per_cpu=True)
    plugin.update("slots", {2: 9})
    plugin.update("flows", {(1, "a"): {"packets": 4, "drops": 2}})
    assert plugin.zero("limits") == 2
    assert plugin.map("limits").to_dict() == {1: 0, 2: 0}
    assert _limit_seen_by_the_program(plugin, 2) == 0
    assert plugin.zero("per_cpu_counts") == 1
    assert plugin.map("per_cpu_counts").to_dict() == {5: [0] * cpus}
    assert plugin.zero("slots") == 4
    assert plugin.map("slots").to_dict() == dict.fromkeys(range(4), 0)
    assert plugin.zero("flows") == 1
    assert plugin.map("flows").to_dict() == {(1, "a"): {"packets": 0, "drops": 0}}
    with pytest.raises(nn.PluginObjectError, match="no map 'nope'"):
        plugin.zero("nope")


def test_the_host_checks_the_sizes_of_raw_entries(plugin) -> None:
    core = plugin._started()
    with pytest.raises(ValueError, match=r'map "limits" takes keys of 4 bytes and values of 8'):
        core.update_entries("limits", bytes(4), bytes(4))
    cpus = possible_cpus()
    with pytest.raises(ValueError, match=f"values of {8 * cpus} bytes \\({cpus} CPUs of 8"):
        core.update_entries("per_cpu_counts", bytes(4), bytes(8))
    assert core.update_entries("per_cpu_counts", bytes(4), bytes(8 * cpus)) == 1


def test_map_entries_fill_a_per_cpu_map_before_attach() -> None:
    obj = compile_file(PLUGINS / "writable_maps.bpf.c")
    with nn.Plugin.load(obj, map_entries={"per_cpu_counts": {3: 7}, "limits": {1: 2}}) as plugin:
        assert plugin.map("per_cpu_counts").to_dict() == {3: [7] * possible_cpus()}
        assert _limit_seen_by_the_program(plugin, 1) == 2
