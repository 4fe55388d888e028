"""How a simulated device prices a compressed design: a per-family factor per precision.

A compressed design (:mod:`fleetnas.spaces.compression`) says per layer at which precision it
runs (``space.layer_precisions(arch)``) and, through its pruned channel counts, how much work
each layer does (``space.layers(arch)`` already lists the pruned layers, so the width effect is
the roofline's own: fewer MACs, fewer bytes, a smaller feature map that fills fewer lanes).

Precision is priced as a multiplicative factor on a layer's time and dynamic energy relative to
the device's own precision (``DeviceModel.precision``, usually fp32), one factor per family and
precision (:data:`PRECISION_FACTORS`)::

    t(arch) = fixed + sum_p factor[family][p] * sum_{layers l at p} t_l

The factors are **assumptions** stated here, not fits: they encode the direction each family is
known for and leave the magnitude to a device's own measurements (a plan calibrates per
precision on the probes it measures, :mod:`fleetnas.fleet.compression`):

- NPUs, DSPs, ASICs, FPGAs and microcontrollers run int8 natively (Edge TPU, Hexagon, CMSIS-NN):
  int8 takes 0.25-0.35 of the fp32 time;
- mobile CPUs with dot-product instructions (TFLite/XNNPACK int8): 0.45; embedded CPUs 0.5;
  server CPUs with VNNI 0.6, desktop CPUs 0.7; GPUs 0.5 (int8 tensor cores);
- fp16 pays on GPUs and NPUs (0.55-0.6), not on CPUs without native fp16 arithmetic (1.0-1.2:
  converted or emulated);
- ``local_runtime`` (a runtime stack on a generic x86 CPU): int8 through static QDQ graphs is
  *slower* than fp32 (1.15, the ratio measured by the digits check in ``docs/compression.md``),
  fp16 1.1.

Families without an entry take :data:`DEFAULT_FACTORS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fleetnas.errors import InputError
from fleetnas.sim.features import layer_table
from fleetnas.sim.simulate import simulate_table

if TYPE_CHECKING:
    from fleetnas.sim.model import DeviceModel
    from fleetnas.spaces import SearchSpace

#: Time factor of a layer at ``precision`` against fp32, per device family.
PRECISION_FACTORS: dict[str, dict[str, float]] = {
    "desktop_gpu": {"fp32": 1.0, "fp16": 0.55, "int8": 0.5},
    "server_cpu": {"fp32": 1.0, "fp16": 1.1, "int8": 0.6},
    "desktop_cpu": {"fp32": 1.0, "fp16": 1.1, "int8": 0.7},
    "mobile_cpu": {"fp32": 1.0, "fp16": 0.7, "int8": 0.45},
    "mobile_gpu": {"fp32": 1.0, "fp16": 0.6, "int8": 0.8},
    "npu": {"fp32": 1.0, "fp16": 0.6, "int8": 0.25},
    "asic": {"fp32": 1.0, "fp16": 0.6, "int8": 0.3},
    "fpga": {"fp32": 1.0, "fp16": 0.6, "int8": 0.35},
    "embedded_cpu": {"fp32": 1.0, "fp16": 1.0, "int8": 0.5},
    "microcontroller": {"fp32": 1.0, "fp16": 1.2, "int8": 0.3},
    "local_runtime": {"fp32": 1.0, "fp16": 1.1, "int8": 1.15},
}
#: Factors of a family without its own entry.
DEFAULT_FACTORS: dict[str, float] = {"fp32": 1.0, "fp16": 0.8, "int8": 0.6}


def precision_factors(family: str) -> dict[str, float]:
    """The time factors of ``family`` (a copy)."""
    return dict(PRECISION_FACTORS.get(family, DEFAULT_FACTORS))


def is_compressed(space: SearchSpace) -> bool:
    """Whether ``space`` says per layer at which precision it runs."""
    return hasattr(space, "layer_precisions") and hasattr(space, "precisions")


class _PrecisionView:
    """The layers of a compressed space's designs that run at one precision (featurized
    apart, so each distinct layer is priced once as elsewhere in the simulator)."""

    def __init__(self, space: SearchSpace, precision: str) -> None:
        self.space, self.precision = space, precision
        self.name = f"{space.name}~{precision}"

    def check(self, archs: np.ndarray) -> np.ndarray:
        return self.space.check(archs)

    def layers(self, arch: np.ndarray) -> list:
        keep = self.space.layer_precisions(arch)
        return [lay for lay, p in zip(self.space.layers(arch), keep, strict=True)
                if p == self.precision]  # fmt: skip


_VIEWS: dict[tuple[int, str], _PrecisionView] = {}


def simulate_compressed(
    model: DeviceModel, space: SearchSpace, archs: np.ndarray, energy: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(latency ms, energy mJ or None)``, each an ``n`` array, of compressed designs on one
    simulated device (see the module docstring)."""
    factors = precision_factors(model.family)
    unknown = sorted(set(space.precisions) - set(factors))  # type: ignore[attr-defined]
    if unknown:
        raise InputError(
            f"the simulator has no factor for precision(s) {', '.join(unknown)} "
            f"(family {model.family!r} knows {', '.join(factors)})"
        )
    n = len(archs)
    lat = np.full(n, float(model.fixed_ms))
    dyn = np.zeros(n)
    for p in space.precisions:  # type: ignore[attr-defined]
        view = _VIEWS.setdefault((id(space), p), _PrecisionView(space, p))
        t, e = simulate_table(model, layer_table(view, archs), energy=energy)  # type: ignore[arg-type]
        part = t[0] - model.fixed_ms
        lat += factors[p] * part
        if energy and e is not None:
            dyn += factors[p] * (e[0] - model.static_power_w * t[0])
    if not energy:
        return lat, None
    return lat, dyn + model.static_power_w * lat


__all__ = [
    "DEFAULT_FACTORS",
    "PRECISION_FACTORS",
    "is_compressed",
    "precision_factors",
    "simulate_compressed",
]
