"""Where a collection's waits come from: a probe loaded in this process, or
the node agent's, read over its socket. ``via="auto"`` loads a probe when
this process may load BPF and asks the agent otherwise, so one notebook
runs for root and for an analyst in the agent's group alike."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import AgentUnavailableError
from ..host.privileges import bpf_unavailable_reason
from ..runq.probe import RunqProbe
from .client import AgentClient

__all__ = ["VIAS", "runq_source"]

VIAS = ("auto", "probe", "agent")
#: Options that only shape how this process batches what it receives.
_LOCAL_OPTIONS = {"batch_ms", "pending_batches"}


def runq_source(
    via: str,
    *,
    socket: str | None = None,
    stream: bool,
    cgroups: Iterable[str | int] | None,
    **probe_options: Any,
) -> tuple[RunqProbe | AgentClient, str]:
    """A probe or an agent client (not started), and a phrase saying which."""
    if via not in VIAS:
        raise ValueError(f"via={via!r}: use one of {', '.join(VIAS)}")
    if via == "auto":
        reason = bpf_unavailable_reason()
        if reason is None:
            via = "probe"
        else:
            try:
                return _agent(socket, stream, cgroups, probe_options)
            except AgentUnavailableError as err:
                raise AgentUnavailableError(
                    f"this process cannot load a probe ({reason}), and the node agent "
                    f"cannot serve it either: {err}"
                ) from None
    if via == "probe":
        probe = RunqProbe(stream=stream, cgroups=cgroups, **probe_options)
        return probe, "a probe in this process"
    return _agent(socket, stream, cgroups, probe_options)


def _agent(
    socket: str | None,
    stream: bool,
    cgroups: Iterable[str | int] | None,
    probe_options: dict[str, Any],
) -> tuple[AgentClient, str]:
    # The agent's probe always splits waits by culprit: asking for that is fine.
    if probe_options.get("attribution") is True:
        probe_options = {k: v for k, v in probe_options.items() if k != "attribution"}
    foreign = sorted(set(probe_options) - _LOCAL_OPTIONS)
    if foreign:
        raise ValueError(
            f"{', '.join(foreign)} configure a probe of this process; the agent's probe is "
            "configured where it runs (noisy-neighbor serve): drop them, or use via='probe' "
            "as root"
        )
    client = AgentClient(socket, stream=stream, cgroups=cgroups)
    return client, f"the node agent on {client.path}"
