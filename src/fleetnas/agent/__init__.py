"""The device agent: a small server that measures on the machine it runs on, for a remote
fleetnas (``fleetnas agent serve``), and its client (``agent:URL`` measurers)."""

from __future__ import annotations

from fleetnas.agent.app import AgentConfig, create_app
from fleetnas.agent.client import AgentMeasurer
from fleetnas.agent.queue import QueueFull, QueueTimeout, SerialQueue

__all__ = ["AgentConfig", "AgentMeasurer", "QueueFull", "QueueTimeout", "SerialQueue", "create_app"]
