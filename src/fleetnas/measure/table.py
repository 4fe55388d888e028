"""Replay a device recorded in the store (for example a HELP device) as if measuring it.

``table:DEVICE`` answers from DEVICE's stored values, but charges like a real device: every
distinct architecture looked up in this measurer's session counts as one measurement, and its
replayed latency counts as device seconds (one inference each, a lower bound of what measuring
it would have cost). The same architecture asked again in the same session is free, as a real
client would remember it. Nothing is written back, and stored values are never taken "for free"
the way :class:`~fleetnas.measure.base.Measurer` reuses its own results: that reuse would let a
benchmark charge Approach 1 nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.errors import InputError, MeasurementError
from fleetnas.measure.base import MEASURERS, MeasurementCost, Measurer, MeasureResult

if TYPE_CHECKING:
    from fleetnas.devices import Device
    from fleetnas.spaces import SearchSpace
    from fleetnas.store import Store

#: Statistics tried, in order, when the caller does not name one (HELP stores ``mean``).
STATISTICS = ("median", "mean")
_TO_SECONDS = {"ms": 1e-3, "s": 1.0, "us": 1e-6}


class _Table:
    def __init__(self, values: dict[bytes, float], unit: str, statistic: str, estimate: bool):
        self.values, self.unit, self.statistic, self.estimate = values, unit, statistic, estimate


class TableMeasurer(Measurer):
    """Replays the stored values of one device; see the module docstring for the charging."""

    method = "table"
    metrics = ("latency", "energy")
    writes_to_store = False

    def __init__(self, device: Device, store: Store, statistic: str | None = None) -> None:
        super().__init__(device, store=store, reuse=False)
        self.wanted_statistic = statistic
        self._tables: dict[tuple[str, str], _Table] = {}
        self._seen: dict[str, set[bytes]] = {}

    def _table(self, space: SearchSpace, metric: str) -> _Table:
        key = (space.name, metric)
        if key not in self._tables:
            self.check_identity()
            candidates = (self.wanted_statistic,) if self.wanted_statistic else STATISTICS
            for stat in candidates:
                archs, vals = self.store.get_measurements(
                    space, self.device.name, metric, statistic=stat
                )
                if len(vals):
                    break
            else:
                raise MeasurementError(
                    f"device {self.device.name!r} has no stored {metric} values for space "
                    f"{space.name!r} (statistic {' or '.join(candidates)}) to replay"
                )
            info = self.store.series_info(space, self.device.name, metric, stat)
            unit, estimate = info if info is not None else ("", True)
            values = {row.tobytes(): float(v) for row, v in zip(archs, vals, strict=True)}
            self._tables[key] = _Table(values, unit, stat, estimate)
        return self._tables[key]

    def _measure(
        self, space: SearchSpace, archs: np.ndarray, metrics: Sequence[str]
    ) -> MeasureResult:
        n = len(archs)
        values: dict[str, np.ndarray] = {}
        units: dict[str, str] = {}
        estimate: dict[str, bool] = {}
        rows = [a.tobytes() for a in archs]
        for m in metrics:
            table = self._table(space, m)
            missing = [i for i, r in enumerate(rows) if r not in table.values]
            if missing:
                raise MeasurementError(
                    f"device {self.device.name!r} has no stored {m} for {len(missing)} of {n} "
                    f"architectures, e.g. {space.format(archs[missing[0]])!r}"
                )
            values[m] = np.array([table.values[r] for r in rows], dtype=float)
            units[m] = table.unit
            estimate[m] = table.estimate
        seen = self._seen.setdefault(space.name, set())
        new_rows = [r for r in dict.fromkeys(rows) if r not in seen]
        seconds = 0.0
        if "latency" in values:
            lat = self._table(space, "latency")
            scale = _TO_SECONDS.get(lat.unit, 0.0)
            seconds = sum(lat.values[r] for r in new_rows) * scale
        seen.update(new_rows)
        cost = MeasurementCost(
            measurements=len(new_rows), device_seconds=seconds, reused=n - len(new_rows)
        )
        stats = {m: {"n": np.ones(n, dtype=np.int64)} for m in metrics}
        return MeasureResult(
            archs=archs, values=values, units=units, cost=cost, is_estimate=estimate, stats=stats
        )

    def _write(self, space: SearchSpace, archs: np.ndarray, fresh: MeasureResult) -> int:
        raise AssertionError("a replayed table is never written back")

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "replay_of": self.device.name}

    def check_identity(self) -> None:
        """A replay writes nothing and answers from whatever the store holds for its device;
        it refuses only a table whose values come from more than one identity."""
        if self._identity_checked:
            return
        found = self.store.device_identities(self.device.name)
        if len(found) > 1:
            from fleetnas.errors import IdentityError

            parts = ", ".join(f"{n} from {k or 'none'}" for k, n in sorted(found.items(), key=str))
            raise IdentityError(
                f"device {self.device.name!r}: its stored values come from {len(found)} "
                f"settings ({parts}); a replay of them would mix those settings. Keep one "
                "(fleetnas data verify lists such devices)"
            )
        self._identity_checked = True

    @property
    def looked_up(self) -> int:
        """Distinct architectures charged so far in this session."""
        return sum(len(s) for s in self._seen.values())

    def info(self) -> dict[str, Any]:
        return {**super().info(), "replay_of": self.device.name}


@MEASURERS.register("table")
def _table_factory(
    arg: str = "",
    store: Store | None = None,
    device: Device | None = None,
    statistic: str | None = None,
    **options: Any,
) -> TableMeasurer:
    if options:
        raise InputError(f"table measurer takes no options {', '.join(sorted(options))}")
    if store is None:
        raise InputError("table:DEVICE replays stored values and needs a store")
    name = arg or (device.name if device is not None else "")
    if not name:
        raise InputError("table measurer needs a device: 'table:DEVICE'")
    dev = store.get_device(name)
    return TableMeasurer(dev, store, statistic=statistic)
