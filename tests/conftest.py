"""The suite's real-kernel tests use the project's own pytest plugin
(``noisy_neighbor.testing.pytest_plugin``: ``needs_bpf``, ``cgroup_factory``...),
which the package registers through ``pytest11``. Plugin tests need pytester."""

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def private_plugin_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plugins compile into this test session's own cache: results never
    come from an object a previous run left behind."""
    monkeypatch.setenv("NN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "plugin-cache"))


@pytest.fixture(scope="session")
def burst_object() -> Path:
    """bench/plugins/burst.bpf.c compiled: on demand, it writes N run-queue
    events (the probe's own struct runq_event) into its ring buffer."""
    from noisy_neighbor.host.compile import compile_file

    source = ROOT / "bench" / "plugins" / "burst.bpf.c"
    return compile_file(source, cflags=[f"-I{ROOT / 'src' / 'bpf'}"])
