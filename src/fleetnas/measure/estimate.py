"""Devices priced by a model instead of measured: the charging rule the ``lut`` and
``predictor`` measurers share.

A subclass loads its model for a space (:meth:`EstimateMeasurer.load`, once per space) and
returns latency in ms (:meth:`EstimateMeasurer.price`). Values are estimates and never written
to the store; a lookup is charged like ``table:DEVICE``: one measurement per distinct design in
the session, its priced latency as device seconds, so plans report the same counts as on the
device itself.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.measure.base import MeasurementCost, Measurer, MeasureResult

#: Measurer kinds built on :class:`EstimateMeasurer` (their models load before a plan runs).
ESTIMATE_KINDS = frozenset({"lut", "predictor"})

if TYPE_CHECKING:
    from fleetnas.devices import Device
    from fleetnas.spaces import SearchSpace
    from fleetnas.store import Store


class EstimateMeasurer(Measurer):
    """Latency (ms) of designs from a model named by ``source``."""

    metrics = ("latency",)
    writes_to_store = False
    estimated_metrics = frozenset({"latency"})

    def __init__(self, device: Device, source: str, store: Store | None = None) -> None:
        super().__init__(device, store=store, reuse=False)
        self.source = source
        self._models: dict[str, Any] = {}
        self._seen: dict[str, set[bytes]] = {}

    @abstractmethod
    def load(self, space: SearchSpace) -> Any:
        """The model for ``space``; :class:`~fleetnas.errors.InputError` naming the device and
        the source when there is none."""

    @abstractmethod
    def price(self, model: Any, archs: np.ndarray) -> np.ndarray:
        """Latency in ms of ``archs`` under ``model``."""

    def model(self, space: SearchSpace) -> Any:
        """The model for ``space``, loaded once."""
        if space.name not in self._models:
            self._models[space.name] = self.load(space)
        return self._models[space.name]

    def check_identity(self) -> None:
        self._identity_checked = True

    def _measure(
        self, space: SearchSpace, archs: np.ndarray, metrics: Sequence[str]
    ) -> MeasureResult:
        n = len(archs)
        values = np.asarray(self.price(self.model(space), archs), dtype=float)
        seen = self._seen.setdefault(space.name, set())
        rows = [a.tobytes() for a in archs]
        priced = dict(zip(rows, values, strict=True))
        new = [r for r in dict.fromkeys(rows) if r not in seen]
        seen.update(new)
        return MeasureResult(
            archs=archs,
            values={"latency": values},
            units={"latency": "ms"},
            cost=MeasurementCost(
                measurements=len(new),
                device_seconds=float(sum(priced[r] for r in new)) * 1e-3,
                reused=n - len(new),
            ),
            is_estimate={"latency": True},
            stats={"latency": {"n": np.ones(n, dtype=np.int64)}},
        )

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), self.method: self.source}

    def info(self) -> dict[str, Any]:
        return {**super().info(), self.method: self.source}


__all__ = ["ESTIMATE_KINDS", "EstimateMeasurer"]
