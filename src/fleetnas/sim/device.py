"""A simulated device: its record (name, family, spec features, ``sim:`` measurer spec) and the
analytical model behind it, rebuilt from a device record's ``sim:`` spec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fleetnas.devices import Device
from fleetnas.errors import InputError
from fleetnas.measure.spec import parse_options, split_spec
from fleetnas.sim.model import DeviceModel
from fleetnas.sim.precision import is_compressed, simulate_compressed
from fleetnas.sim.simulate import METHOD, energy_matrix, latency_matrix

if TYPE_CHECKING:
    from fleetnas.spaces import SearchSpace

#: Measurer options that may also be written inside the ``sim:`` spec.
MEASURER_OPTIONS = ("noise", "seed", "repeats", "name")


@dataclass(frozen=True)
class SimDevice:
    """A simulated device: its record (name, family, spec features, ``sim:`` measurer spec) and
    the model that gives its ground-truth latency and energy."""

    name: str
    model: DeviceModel

    @property
    def device(self) -> Device:
        return Device(
            name=self.name,
            family=self.model.family,
            features=self.model.to_features(),
            measurer=f"sim:{self.model.to_spec()}",
            description=f"simulated ({METHOD})",
        )

    @classmethod
    def from_device(cls, device: Device) -> SimDevice:
        """Rebuild from a device record whose measurer is a ``sim:`` spec."""
        return cls(device.name, model_from_device(device))

    def latency(self, space: SearchSpace, archs: np.ndarray) -> np.ndarray:
        """``n`` float array: latency in ms (per batch of ``batch_size``); a compressed
        design's precision is priced by :mod:`fleetnas.sim.precision`."""
        if is_compressed(space):
            return simulate_compressed(self.model, space, space.check(archs), energy=False)[0]
        return latency_matrix(self.model, space, archs)[0]

    def energy(self, space: SearchSpace, archs: np.ndarray) -> np.ndarray:
        """``n`` float array: energy in mJ (per batch of ``batch_size``)."""
        if is_compressed(space):
            return simulate_compressed(self.model, space, space.check(archs))[1]  # type: ignore[return-value]
        return energy_matrix(self.model, space, archs)[0]


def model_from_device(device: Device) -> DeviceModel:
    """The model in a device's ``sim:`` measurer spec; :class:`InputError` if it has none."""
    spec = device.measurer or ""
    kind, arg = split_spec(spec) if spec else ("", "")
    if kind != "sim" or not arg:
        raise InputError(
            f"device {device.name!r} is not a simulated device (measurer {device.measurer!r}; "
            "expected 'sim:<model parameters>')"
        )
    opts = parse_options(arg, f"sim measurer spec of device {device.name!r}")
    return DeviceModel.from_dict({k: v for k, v in opts.items() if k not in MEASURER_OPTIONS})


__all__ = ["MEASURER_OPTIONS", "SimDevice", "model_from_device"]
