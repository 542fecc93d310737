"""The node agent (``noisy-neighbor serve``): a long-running probe whose
per-cgroup run-queue latency, culprits and verdicts Prometheus scrapes, with
an optional recording to Parquet. Builds on ``runq`` and ``analysis``."""

from .server import AgentOptions, serve

__all__ = ["AgentOptions", "serve"]
