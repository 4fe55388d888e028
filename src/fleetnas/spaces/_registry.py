"""The registry of built-in spaces, in its own module so space modules can import it freely."""

from __future__ import annotations

from fleetnas.registry import Registry
from fleetnas.spaces.base import SearchSpace

SPACES: Registry[SearchSpace] = Registry("space")
