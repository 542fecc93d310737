"""The node agent's local socket, from the client side: ``nn.connect()``,
and the wire both sides speak (JSON requests, Arrow IPC answers)."""

from __future__ import annotations

from .client import DEFAULT_SOCKET, AgentClient, connect

__all__ = ["DEFAULT_SOCKET", "AgentClient", "connect"]
