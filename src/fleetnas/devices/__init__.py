"""Devices: who runs a design. A device is a name, a family and spec features."""

from __future__ import annotations

from fleetnas.devices.device import FAMILIES, Device

__all__ = ["FAMILIES", "Device"]
