"""Kernel symbols as bpftrace 0.17 resolves them (through bcc): on a small
kallsyms written here, and on this kernel's /proc/kallsyms."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from noisy_neighbor.script import kallsyms
from noisy_neighbor.script.kallsyms import kaddr, ksym, ksym_offset, ksym_text

KALLSYMS = """\
ffffffff81000000 T _stext
ffffffff81000000 T _text
ffffffff81000100 t helper
ffffffff81000200 T vfs_read
ffffffff81000300 R vfs_read_table
ffffffff81000400 D some_data
ffffffff81000500 W weak_func
ffffffffc0001000 t mod_func\t[some_module]
"""


@pytest.fixture
def fake_kallsyms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    path = tmp_path / "kallsyms"
    path.write_text(KALLSYMS)
    monkeypatch.setattr(kallsyms, "KALLSYMS", str(path))
    kallsyms._kallsyms.cache_clear()
    kallsyms._sorted_text_symbols.cache_clear()
    yield
    kallsyms._kallsyms.cache_clear()
    kallsyms._sorted_text_symbols.cache_clear()


@pytest.mark.usefixtures("fake_kallsyms")
def test_an_address_takes_the_nearest_text_symbol_below_it() -> None:
    assert ksym(0xFFFFFFFF81000200) == "vfs_read"
    assert ksym_offset(0xFFFFFFFF81000203) == "vfs_read+3"
    # Data symbols are skipped, as bcc does: rodata names the code before it.
    assert ksym_offset(0xFFFFFFFF81000310) == "vfs_read+272"
    assert ksym(0xFFFFFFFF81000510) == "weak_func"
    # No upper bound: past the last symbol is still the last symbol.
    assert ksym_offset(0xFFFFFFFFC0001010) == "mod_func+16"


@pytest.mark.usefixtures("fake_kallsyms")
def test_names_sharing_an_address_resolve_to_the_last_listed() -> None:
    assert ksym(0xFFFFFFFF81000000) == "_text"


@pytest.mark.usefixtures("fake_kallsyms")
def test_unknown_addresses_print_in_hex_and_null_as_zero() -> None:
    assert ksym(0x3039) is None and ksym_offset(0x3039) is None
    assert ksym_text(0x3039) == "0x3039" and ksym_text(0) == "0"
    assert ksym_text(0xFFFFFFFF81000204, offset=True) == "vfs_read+4"


@pytest.mark.usefixtures("fake_kallsyms")
def test_kaddr_finds_vmlinux_symbols_of_any_type_but_not_modules() -> None:
    assert kaddr("vfs_read") == 0xFFFFFFFF81000200
    assert kaddr("vfs_read_table") == 0xFFFFFFFF81000300
    assert kaddr("_stext") == 0xFFFFFFFF81000000
    assert kaddr("mod_func") is None and kaddr("vfs") is None and kaddr("no_such") is None


def test_hidden_addresses_resolve_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "kallsyms"
    # What a process without CAP_SYSLOG reads: every address zero.
    path.write_text(re.sub(r"(?m)^[0-9a-f]{16}", "0" * 16, KALLSYMS))
    monkeypatch.setattr(kallsyms, "KALLSYMS", str(path))
    kallsyms._kallsyms.cache_clear()
    kallsyms._sorted_text_symbols.cache_clear()
    try:
        assert ksym(0x200) is None and kaddr("vfs_read") is None
    finally:
        kallsyms._kallsyms.cache_clear()
        kallsyms._sorted_text_symbols.cache_clear()


# -- this kernel's kallsyms --------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="kallsyms shows addresses to root only")
def test_this_kernels_vfs_read_round_trips() -> None:
    address = kaddr("vfs_read")
    assert address is not None and address > 0xFFFF_0000_0000_0000
    assert ksym(address) == "vfs_read"
    assert ksym_offset(address + 3) == "vfs_read+3"
    assert kaddr("no_such_kernel_symbol_xyz") is None
