"""How a number is obtained: measurers bound to one device, and energy meters."""

from __future__ import annotations

from fleetnas.measure.base import MEASURERS, MeasurementCost, Measurer, MeasureResult

__all__ = ["MEASURERS", "MeasureResult", "MeasurementCost", "Measurer"]
