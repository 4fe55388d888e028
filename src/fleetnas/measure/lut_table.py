"""``lut:NAME|FILE``: a device priced by an operator look-up table instead of measured.

The table is one that ``fleetnas predict lut`` measured on the device (stored under ``NAME``, or
the file its ``--out`` wrote), or a published one (``pixel1``, ``note10`` after ``fleetnas data
import ofa``; ProxylessNAS's ``mobile_trim.yaml`` as a file). A design's latency is the sum of
its operators (:mod:`fleetnas.predict.lut`), so a plan can treat a device whose operators were
measured once as measurable without running a whole network again. Values are estimates,
never written to the store and charged like ``table:DEVICE``
(:mod:`fleetnas.measure.estimate`). A table of another space than the one asked for, an
unknown name or a missing file is one :class:`~fleetnas.errors.InputError` naming the source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.measure.base import MEASURERS
from fleetnas.measure.estimate import EstimateMeasurer

if TYPE_CHECKING:
    from fleetnas.devices import Device
    from fleetnas.spaces import SearchSpace
    from fleetnas.store import Store


class LUTMeasurer(EstimateMeasurer):
    """Latency (ms) of designs as the sum of a look-up table's operators."""

    method = "lut"

    def load(self, space: SearchSpace) -> Any:
        from fleetnas.predict.lut import load_lut

        what = f"device {self.device.name!r}: measurer lut:{self.source}"
        return load_lut(self.store, space, self.source, what=what)

    def price(self, model: Any, archs: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(archs), dtype=float)


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
