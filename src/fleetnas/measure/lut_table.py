"""``lut:NAME|FILE``: a device priced by an operator look-up table instead of measured.

The table is one that ``fleetnas predict lut`` measured on the device (stored under ``NAME``, or
the file its ``--out`` wrote), or a published one (``pixel1``, ``note10`` after ``fleetnas data
import ofa``; ProxylessNAS's ``mobile_trim.yaml`` as a file). A design's latency is the sum of
its operators (:mod:`fleetnas.predict.lut`), so a plan can treat a device whose operators were
measured once as measurable without running a whole network again. Values are estimates and
are never written to the store; a lookup is charged like ``table:DEVICE`` (one measurement per
distinct design in the session, its priced latency as device seconds), so plans report the
same counts as on the device itself. A table of another space than the one asked for, an
unknown name or a missing file is one :class:`~fleetnas.errors.InputError` naming the source.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.measure.base import MEASURERS, MeasurementCost, Measurer, MeasureResult

if TYPE_CHECKING:
    from fleetnas.devices import Device
    from fleetnas.spaces import SearchSpace
    from fleetnas.store import Store


class LUTMeasurer(Measurer):
    """Latency (ms) of designs as the sum of a look-up table's operators."""

    method = "lut"
    metrics = ("latency",)
    writes_to_store = False
    estimated_metrics = frozenset({"latency"})

    def __init__(self, device: Device, source: str, store: Store | None = None) -> None:
        super().__init__(device, store=store, reuse=False)
        self.source = source
        self._luts: dict[str, Any] = {}
        self._seen: dict[str, set[bytes]] = {}

    def table(self, space: SearchSpace) -> Any:
        """The fitted table predictor for ``space`` (loaded once per space)."""
        if space.name not in self._luts:
            from fleetnas.predict.lut import load_lut

            what = f"device {self.device.name!r}: measurer lut:{self.source}"
            self._luts[space.name] = load_lut(self.store, space, self.source, what=what)
        return self._luts[space.name]

    def check_identity(self) -> None:
        self._identity_checked = True

    def _measure(
        self, space: SearchSpace, archs: np.ndarray, metrics: Sequence[str]
    ) -> MeasureResult:
        n = len(archs)
        values = np.asarray(self.table(space).predict(archs), dtype=float)
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
        return {**super().identity(), "lut": self.source}

    def info(self) -> dict[str, Any]:
        return {**super().info(), "lut": self.source}


@MEASURERS.register("lut")
def _lut_factory(
    arg: str = "",
    store: Store | None = None,
    device: Device | None = None,
    **options: Any,
) -> LUTMeasurer:
    if options:
        raise InputError(f"lut measurer takes no options {', '.join(sorted(options))}")
    if not arg:
        raise InputError(
            "lut measurer needs a table: 'lut:NAME' (stored by fleetnas predict lut) or "
            "'lut:FILE' (.yaml/.yml/.json)"
        )
    if device is None:
        from fleetnas.devices import Device

        device = Device(f"lut:{arg}", family="other")
    return LUTMeasurer(device, arg, store)
