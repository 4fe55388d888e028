"""The device simulator: an analytical model that prices a network's layers on a device.

- :class:`DeviceModel`: per-class throughput, bandwidth, per-layer overhead, utilization knee,
  batch, precision and energy parameters (:mod:`fleetnas.sim.model` has the formulas);
- :func:`latency_matrix` / :func:`energy_matrix`: ``m`` devices x ``n`` architectures at once;
- :func:`generate_fleet` / :func:`fleet_around`: synthetic devices by family or around
  calibrated real ones;
- :func:`calibrate`: fit a model to a real device's measured latencies (log least squares);
- the ``sim`` measurer (:class:`SimMeasurer`), registered in
  :data:`fleetnas.measure.MEASURERS`; its values are stored as estimates.
"""

from __future__ import annotations

from fleetnas.sim.calibrate import FitReport, calibrate, fit_report, prior_model
from fleetnas.sim.device import SimDevice, model_from_device
from fleetnas.sim.features import LayerTable, layer_table
from fleetnas.sim.generator import (
    DEFAULT_MIX,
    FAMILY_PRIORS,
    fleet_around,
    generate_fleet,
    sample_model,
)
from fleetnas.sim.measurer import SimMeasurer
from fleetnas.sim.model import FIT_PARAMS, PRECISIONS, DeviceModel
from fleetnas.sim.simulate import (
    METHOD,
    energy_matrix,
    latency_matrix,
    layer_costs,
    simulate_table,
)

__all__ = [
    "DEFAULT_MIX",
    "FAMILY_PRIORS",
    "FIT_PARAMS",
    "METHOD",
    "PRECISIONS",
    "DeviceModel",
    "FitReport",
    "LayerTable",
    "SimDevice",
    "SimMeasurer",
    "calibrate",
    "energy_matrix",
    "fit_report",
    "fleet_around",
    "generate_fleet",
    "latency_matrix",
    "layer_costs",
    "layer_table",
    "model_from_device",
    "prior_model",
    "sample_model",
    "simulate_table",
]
