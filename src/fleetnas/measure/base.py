"""The Measurer protocol: how a number is obtained, and what it cost.

A measurer is bound to one device. ``measure(space, archs, metrics)`` returns one value per
architecture and metric, writes every value to the store (when it has one) inside one run, and
counts its cost: the number of real measurements it took and the device seconds they used.
Values already in the store for that device are reused and cost nothing (``reuse=True``).

A design the device's runtime cannot convert, load or run is *unmeasurable*: the call goes on
with the others, its values are NaN, :attr:`MeasureResult.failures` holds the runtime's
message, and the store records it (statistic :data:`UNMEASURABLE`, value 1, the message in the
row's extra and in the run's config), so later calls that reuse stored values do not try again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.registry import Registry

if TYPE_CHECKING:
    from fleetnas.devices import Device
    from fleetnas.spaces import SearchSpace
    from fleetnas.store import Store


#: Statistic under which an unmeasurable design is recorded (value 1, message in ``extra``).
UNMEASURABLE = "unmeasurable"


@dataclass
class MeasurementCost:
    """What measuring cost on the device: counted, never estimated. ``reused`` counts values
    that cost nothing (already stored, or already looked up in the same session)."""

    measurements: int = 0
    device_seconds: float = 0.0
    reused: int = 0

    def add(self, other: MeasurementCost) -> None:
        self.measurements += other.measurements
        self.device_seconds += other.device_seconds
        self.reused += other.reused


@dataclass
class MeasureResult:
    """Values per metric (each an ``n`` float array aligned with the requested ``archs``),
    with per-value spread statistics where the measurer has them (``stats[metric][name]``,
    e.g. ``p90``, ``iqr``, ``min``; ``n`` holds the repeat counts), and the call's cost."""

    archs: np.ndarray
    values: dict[str, np.ndarray]
    units: dict[str, str]
    cost: MeasurementCost = field(default_factory=MeasurementCost)
    is_estimate: dict[str, bool] = field(default_factory=dict)
    stats: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    run_id: int | None = None
    #: Unmeasurable designs: row of ``archs`` -> the runtime's message (their values are NaN).
    failures: dict[int, str] = field(default_factory=dict)

    def __getitem__(self, metric: str) -> np.ndarray:
        return self.values[metric]


class Measurer(ABC):
    """Measures designs on one device. Subclasses implement :meth:`_measure`."""

    #: Method name written with every measurement (e.g. ``"onnxruntime"``, ``"sim:analytic"``).
    method: str = ""
    #: Metrics this measurer can produce.
    metrics: tuple[str, ...] = ("latency",)

    def __init__(self, device: Device, store: Store | None = None, reuse: bool = True) -> None:
        self.device = device
        self.store = store
        self.reuse = reuse
        self.total_cost = MeasurementCost()

    @abstractmethod
    def _measure(
        self, space: SearchSpace, archs: np.ndarray, metrics: Sequence[str]
    ) -> MeasureResult:
        """Measure every row of ``archs`` (``n x D``) for ``metrics``; no store access here."""

    #: Statistic under which the main value is stored and looked up.
    statistic: str = "median"
    #: Whether values come from a real clock or meter (False) or a model (True), per metric.
    estimated_metrics: frozenset[str] = frozenset()
    #: Unit per metric, reported for values reused from the store.
    default_units: dict[str, str] = {"latency": "ms", "energy": "mJ"}  # noqa: RUF012

    def measure(
        self, space: SearchSpace, archs: np.ndarray, metrics: Sequence[str] = ("latency",)
    ) -> MeasureResult:
        """Measure ``archs`` (``n x D``), reusing values the store already holds for this
        device, write the new values in one run, and add the cost to :attr:`total_cost`."""
        from fleetnas.errors import InputError

        archs = space.check(archs)
        metrics = tuple(metrics)
        missing = [m for m in metrics if m not in self.metrics]
        if missing:
            raise InputError(
                f"measurer {self.method!r} on {self.device.name!r} cannot measure "
                f"{', '.join(missing)}; it offers {', '.join(self.metrics)}"
            )
        if self.strict_identity and self.store is not None:
            self._check_identity()
        n = len(archs)
        values = {m: np.full(n, np.nan) for m in metrics}
        reused = np.zeros(n, dtype=bool)
        if self.reuse and self.store is not None and n:
            known = [self._stored(space, archs, m) for m in metrics]
            for m, v in zip(metrics, known, strict=True):
                values[m] = v
            reused = np.all([np.isfinite(v) for v in known], axis=0)
        known_bad = np.zeros(n, dtype=bool)
        if self.reuse and self.store is not None and n and self.writes_to_store:
            rest = np.flatnonzero(~reused)
            if len(rest):
                flag = self._stored(space, archs[rest], metrics[0], UNMEASURABLE)
                known_bad[rest[np.isfinite(flag)]] = True
        todo = np.flatnonzero(~reused & ~known_bad)
        result = MeasureResult(
            archs=archs,
            values=values,
            units={m: self.default_units.get(m, "") for m in metrics},
            is_estimate={m: m in self.estimated_metrics for m in metrics},
            stats={},
        )
        result.cost.reused = int(reused.sum() + known_bad.sum())
        for i in np.flatnonzero(known_bad):
            result.failures[int(i)] = "recorded as unmeasurable on this device by an earlier run"
        if len(todo):
            fresh = self._measure(space, archs[todo], metrics)
            for j, why in fresh.failures.items():
                result.failures[int(todo[j])] = why
            for m in metrics:
                values[m][todo] = fresh.values[m]
                for stat, arr in fresh.stats.get(m, {}).items():
                    full = result.stats.setdefault(m, {}).setdefault(stat, np.full(n, np.nan))
                    full[todo] = arr
            result.units.update(fresh.units)
            result.is_estimate.update(fresh.is_estimate)
            result.cost.measurements = fresh.cost.measurements
            result.cost.device_seconds = fresh.cost.device_seconds
            result.cost.reused += fresh.cost.reused
            if self.store is not None and self.writes_to_store:
                result.run_id = self._write(space, archs[todo], fresh)
        self.total_cost.add(result.cost)
        return result

    #: Whether new values are written to the store (a replayed table is not re-written).
    writes_to_store: bool = True
    #: Refuse to measure when the store holds a device of this name with another fingerprint
    #: (another machine, runtime version or setting): its values must not be mixed with ours.
    strict_identity: bool = False

    def _check_identity(self) -> None:
        from fleetnas.errors import MeasurementError, UnknownNameError

        try:
            stored = self.store.get_device(self.device.name)
        except UnknownNameError:
            return
        if stored.fingerprint != self.device.fingerprint:
            changed = sorted(
                k
                for k in set(stored.features) | set(self.device.features)
                if stored.features.get(k) != self.device.features.get(k)
            )
            raise MeasurementError(
                f"the store already holds device {self.device.name!r} with other features "
                f"({', '.join(changed) or 'family'} differ); measure under another device name"
            )

    def _stored(
        self, space: SearchSpace, archs: np.ndarray, metric: str, statistic: str | None = None
    ) -> np.ndarray:
        """Stored values of ``metric`` (``statistic``, default the main one) for ``archs`` on
        this device (NaN where none)."""
        from fleetnas.errors import UnknownNameError

        try:
            found, vals = self.store.get_measurements(
                space,
                self.device.name,
                metric,
                statistic=statistic or self.statistic,
                archs=archs,
            )
        except UnknownNameError:  # a device the store has never seen has nothing stored
            return np.full(len(archs), np.nan)
        lookup = {row.tobytes(): v for row, v in zip(found, vals, strict=True)}
        return np.array([lookup.get(row.tobytes(), np.nan) for row in archs], dtype=float)

    def _write(self, space: SearchSpace, archs: np.ndarray, fresh: MeasureResult) -> int:
        from fleetnas.store import MeasurementBatch

        bad = np.zeros(len(archs), dtype=bool)
        bad[list(fresh.failures)] = True
        ok = ~bad
        info = self.info()
        if fresh.failures:
            info[UNMEASURABLE] = {
                space.format(archs[i]): why for i, why in sorted(fresh.failures.items())
            }
        with self.store.run("measure", info) as run:
            run.add_device(self.device)
            for metric, vals in fresh.values.items():
                est = fresh.is_estimate.get(metric, metric in self.estimated_metrics)
                extra = {k: v for k, v in fresh.stats.get(metric, {}).items() if k != "n"}
                n_all = np.broadcast_to(
                    np.asarray(fresh.stats.get(metric, {}).get("n", 1)), (len(archs),)
                )
                for stat, arr in {self.statistic: vals, **extra}.items() if ok.any() else ():
                    run.add_measurements(
                        MeasurementBatch(
                            space=space,
                            archs=archs[ok],
                            device=self.device.name,
                            metric=metric,
                            values=np.asarray(arr, dtype=float)[ok],
                            unit=fresh.units.get(metric, ""),
                            statistic=stat,
                            n=n_all[ok],
                            method=self.method,
                            is_estimate=est,
                        )
                    )
                if bad.any():
                    rows = np.flatnonzero(bad)
                    run.add_measurements(
                        MeasurementBatch(
                            space=space,
                            archs=archs[rows],
                            device=self.device.name,
                            metric=metric,
                            values=np.ones(len(rows)),
                            unit="",
                            statistic=UNMEASURABLE,
                            n=0,
                            method=self.method,
                            is_estimate=False,
                            extra=[{"error": fresh.failures[int(i)]} for i in rows],
                        )
                    )
            return run.info.id

    def info(self) -> dict[str, Any]:
        """Run metadata recorded with the measurements (settings, versions, host)."""
        return {"method": self.method, "device": self.device.name}


MEASURERS: Registry[Measurer] = Registry("measurer")
