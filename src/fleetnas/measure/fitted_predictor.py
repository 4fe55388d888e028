"""``predictor:NAME[,bound=mean|upper]``: a device priced by its own fitted latency predictor.

``NAME`` is a latency predictor in the store, usually the one ``fleetnas predict fit`` built for
the device (``<device>/<space>/latency``): a few-shot model fitted to the device's own
measurements, with a calibrated interval. A plan then treats the device as measurable without
running a network on it. ``bound=mean`` (default) prices a design at the prediction,
``bound=upper`` at the upper end of the model's interval (its fitted level, 90 % by default),
so budgets the plan meets on the predictor hold on the device with about that probability.
Values are estimates, charged like ``table:DEVICE`` (:mod:`fleetnas.measure.estimate`). An
unknown name, a predictor of another space, a fleet predictor (it needs probe values) or an
unknown bound is one
:class:`~fleetnas.errors.InputError` naming the device and the source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.errors import FleetnasError, InputError, UnknownNameError
from fleetnas.measure.base import MEASURERS
from fleetnas.measure.estimate import EstimateMeasurer
from fleetnas.measure.spec import parse_options

if TYPE_CHECKING:
    from fleetnas.devices import Device
    from fleetnas.spaces import SearchSpace
    from fleetnas.store import Store

BOUNDS = ("mean", "upper")


class FittedPredictorMeasurer(EstimateMeasurer):
    """Latency (ms) of designs from a stored latency predictor."""

    method = "predictor"

    def __init__(
        self, device: Device, source: str, store: Store | None = None, bound: str = "mean"
    ) -> None:
        super().__init__(device, source, store)
        self.bound = bound

    def load(self, space: SearchSpace) -> Any:
        from fleetnas.predict.base import Persistable

        what = f"device {self.device.name!r}: measurer predictor:{self.source}"
        if self.store is None:
            raise InputError(f"{what}: a stored predictor needs a store (--db)")
        try:
            model = Persistable.load(self.store, self.source, space)
        except UnknownNameError:
            raise InputError(
                f"{what}: no stored latency predictor {self.source!r}; build one with "
                f"fleetnas predict fit --device DEVICE --space {space.name}"
            ) from None
        except FleetnasError as exc:
            raise InputError(f"{what}: {exc}") from None
        from fleetnas.predict.device_aware import DeviceAwarePredictor

        if isinstance(model, DeviceAwarePredictor):
            raise InputError(
                f"{what}: {self.source!r} is a fleet predictor that needs a device's probe "
                "values; name the device's own model (fleetnas predict fit stores "
                f"DEVICE/{space.name}/latency)"
            )
        if self.bound == "upper" and not hasattr(model, "predict_interval"):
            raise InputError(f"{what}: {type(model).__name__} has no interval for bound=upper")
        return model

    def price(self, model: Any, archs: np.ndarray) -> np.ndarray:
        if self.bound == "upper":
            return np.asarray(model.predict_interval(archs)["upper"], dtype=float)
        return np.asarray(model.predict(archs), dtype=float)

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "bound": self.bound}

    def info(self) -> dict[str, Any]:
        return {**super().info(), "bound": self.bound}


@MEASURERS.register("predictor")
def _predictor_factory(
    arg: str = "",
    store: Store | None = None,
    device: Device | None = None,
    **options: Any,
) -> FittedPredictorMeasurer:
    if options:
        raise InputError(f"predictor measurer takes no options {', '.join(sorted(options))}")
    name, _, rest = arg.partition(",")
    name = name.strip()
    if not name:
        raise InputError(
            "predictor measurer needs a stored predictor: 'predictor:NAME' (fleetnas predict "
            "fit stores DEVICE/SPACE/latency), optionally ',bound=mean|upper'"
        )
    opts = parse_options(rest, f"measurer predictor:{arg}")
    unknown_keys = sorted(set(opts) - {"bound"})
    if unknown_keys:
        raise InputError(f"unknown predictor measurer option {unknown_keys[0]!r}; expected bound")
    bound = opts.get("bound", "mean")
    if bound not in BOUNDS:
        raise InputError(
            f"measurer predictor:{arg}: bound={bound!r} is not one of {', '.join(BOUNDS)}"
        )
    if device is None:
        from fleetnas.devices import Device

        device = Device(f"predictor:{name}", family="other")
    return FittedPredictorMeasurer(device, name, store, bound=bound)


__all__ = ["BOUNDS", "FittedPredictorMeasurer"]
