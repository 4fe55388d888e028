"""Performance networks (paper Sec. 4.1 and 5.2): accuracy, latency/energy, device-aware.

- :class:`MLPEnsemble`, :class:`GBTEnsemble`: learn ``Acc(x)`` or one device's
  ``latency_d0(x)`` / ``energy_d0(x)`` from (design, value) pairs; mean and spread.
- :class:`TableLookup`: exact values of a full table (NAS-Bench-201 accuracy).
- :class:`OFAAccuracyPredictor`: Once-for-All's released accuracy predictor.
- :class:`OFALatencyLUT`, :class:`ProxylessLatencyLUT`: per-operator latency tables (Note10,
  Pixel 1), the paper's proxy-device predictor.
- :class:`BitFusionCost`: APQ designs' latency or energy on BitFusion from APQ's table.
- :class:`DeviceAwarePredictor`: ``Latency(x; d)`` trained across a fleet; a new device is
  described by its values on ``K`` probe designs (and/or catalog spec features).
- :mod:`fleetnas.predict.interval`: split-conformal intervals of the device-aware predictor that
  widen when a device's probes fit the fleet poorly (:class:`IntervalCalibration`).
- :class:`FewShotLatency` (:mod:`fleetnas.predict.adapt`): one device's latency from all its
  measurements, device-aware prior + Bayesian correction; :func:`active_fit` chooses the next
  designs to measure.
- :mod:`fleetnas.predict.own_device`: the same for a stored device (``fleetnas predict``).
- :mod:`fleetnas.predict.metrics`: Spearman, Kendall, MAPE, share within ±5 % / ±10 %.

``get_predictor(name, space, **params)`` builds one by its registered name.
"""

from __future__ import annotations

from typing import Any

from fleetnas.predict.adapt import FewShotLatency, active_fit, next_designs
from fleetnas.predict.base import (
    ARTIFACT_KIND,
    DevicePredictor,
    EnsembleMixin,
    Persistable,
    Predictor,
    fingerprint,
    predictor_classes,
)
from fleetnas.predict.bitfusion import BitFusionCost, bitfusion_device
from fleetnas.predict.device_aware import DeviceAwarePredictor
from fleetnas.predict.gbt import GBTEnsemble
from fleetnas.predict.interval import IntervalCalibration, probe_misfit
from fleetnas.predict.lookup import TableLookup
from fleetnas.predict.lut import OFALatencyLUT, ProxylessLatencyLUT, proxylessnas_space
from fleetnas.predict.metrics import (
    kendall,
    mape,
    per_device_report,
    regression_report,
    spearman,
    within,
)
from fleetnas.predict.mlp import MLPEnsemble
from fleetnas.predict.ofa import OFAAccuracyPredictor
from fleetnas.registry import Registry
from fleetnas.spaces import SearchSpace

PREDICTORS: Registry[Persistable] = Registry("predictor")
for _cls in (
    MLPEnsemble,
    GBTEnsemble,
    TableLookup,
    OFAAccuracyPredictor,
    OFALatencyLUT,
    ProxylessLatencyLUT,
    DeviceAwarePredictor,
    BitFusionCost,
):
    PREDICTORS.add(_cls.name, _cls)


def get_predictor(name: str, space: SearchSpace | str, **params: Any) -> Persistable:
    """A new (unfitted) predictor registered as ``name`` on ``space``."""
    return PREDICTORS.create(name, space=space, **params)


def load_predictor(store: Any, name: str, space: SearchSpace | str | None = None) -> Persistable:
    """Any stored predictor artifact ``name``, whatever its class."""
    return Persistable.load(store, name, space)


__all__ = [
    "ARTIFACT_KIND",
    "PREDICTORS",
    "BitFusionCost",
    "DeviceAwarePredictor",
    "DevicePredictor",
    "EnsembleMixin",
    "FewShotLatency",
    "GBTEnsemble",
    "IntervalCalibration",
    "MLPEnsemble",
    "OFAAccuracyPredictor",
    "OFALatencyLUT",
    "Persistable",
    "Predictor",
    "ProxylessLatencyLUT",
    "TableLookup",
    "active_fit",
    "bitfusion_device",
    "fingerprint",
    "get_predictor",
    "kendall",
    "load_predictor",
    "mape",
    "next_designs",
    "per_device_report",
    "predictor_classes",
    "probe_misfit",
    "proxylessnas_space",
    "regression_report",
    "spearman",
    "within",
]
