"""The suite's real-kernel tests use the project's own pytest plugin
(``noisy_neighbor.pytest_plugin``: ``needs_bpf``, ``cgroup_factory``...),
which the package registers through ``pytest11``. Plugin tests need pytester."""

pytest_plugins = ["pytester"]
