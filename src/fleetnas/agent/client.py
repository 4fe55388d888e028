"""The agent's client: :class:`AgentMeasurer` (``get_measurer("agent:http://host:port")``).

It lives in :mod:`fleetnas.measure.remote` so that ``measure`` never imports the server side;
this module re-exports it next to the server it talks to.
"""

from __future__ import annotations

from fleetnas.measure.remote import TOKEN_ENV, AgentMeasurer

__all__ = ["TOKEN_ENV", "AgentMeasurer"]
