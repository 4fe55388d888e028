"""``bitfusion``: the BitFusion accelerator as a measurable device of the ``apq`` space.

Latency and energy come from APQ's published per-layer table
(:class:`fleetnas.predict.BitFusionCost`, summed as APQ does), so a value is a table lookup
charged like ``table:DEVICE``: one measurement per distinct design in the session. A design the
table cannot price (4-bit activations of a 7x7 depth-wise convolution) is unmeasurable, never
free. Values are estimates (the table comes from BitFusion's simulator, not a meter).
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


class BitFusionMeasurer(Measurer):
    """BitFusion latency (ms) and energy (mJ) of ``apq`` designs from APQ's table."""

    method = "table:bitfusion"
    metrics = ("latency", "energy")
    writes_to_store = False
    estimated_metrics = frozenset({"latency", "energy"})

    def __init__(self, device: Device, store: Store | None = None) -> None:
        super().__init__(device, store=store, reuse=False)
        self._cost: dict[str, Any] = {}
        self._seen: set[bytes] = set()

    def _model(self, metric: str) -> Any:
        if metric not in self._cost:
            from fleetnas.predict.bitfusion import BitFusionCost

            self._cost[metric] = BitFusionCost.from_data(metric=metric)
        return self._cost[metric]

    def check_identity(self) -> None:
        self._identity_checked = True

    def _measure(
        self, space: SearchSpace, archs: np.ndarray, metrics: Sequence[str]
    ) -> MeasureResult:
        if space.name != "apq":
            raise InputError(
                f"bitfusion prices designs of the 'apq' space only (APQ's table), not "
                f"{space.name!r}"
            )
        n = len(archs)
        values = {m: np.asarray(self._model(m).predict(archs), dtype=float) for m in metrics}
        failures: dict[int, str] = {}
        for i in range(n):
            if not all(np.isfinite(values[m][i]) for m in metrics):
                keys = self._model(metrics[0]).missing_keys(archs[i])
                failures[i] = f"APQ's BitFusion table has no entry {', '.join(keys[:2])}"
                for m in metrics:
                    values[m][i] = np.nan
        ok = [i for i in range(n) if i not in failures]
        new = [k for k in dict.fromkeys(archs[i].tobytes() for i in ok) if k not in self._seen]
        self._seen.update(new)
        lat = {archs[i].tobytes(): values.get("latency", np.zeros(n))[i] for i in ok}
        return MeasureResult(
            archs=archs,
            values=values,
            units={m: {"latency": "ms", "energy": "mJ"}[m] for m in metrics},
            cost=MeasurementCost(
                measurements=len(new),
                device_seconds=float(sum(lat[k] for k in new)) * 1e-3,
                reused=n - len(new),
            ),
            is_estimate=dict.fromkeys(metrics, True),
            stats={m: {"n": np.ones(n, dtype=np.int64)} for m in metrics},
            failures=failures,
        )

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "replay_of": "apq/BitFusion_new.b1.dict"}


@MEASURERS.register("bitfusion")
def _bitfusion_factory(
    arg: str = "",
    store: Store | None = None,
    device: Device | None = None,
    **options: Any,
) -> BitFusionMeasurer:
    if arg or options:
        raise InputError("the bitfusion measurer takes no arguments or options")
    if device is None:
        from fleetnas.devices.catalog import get_catalog_device

        device = get_catalog_device("bitfusion")
    return BitFusionMeasurer(device, store)
