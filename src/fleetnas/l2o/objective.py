"""The predicted objective of Approach 2, eq. (8), for many devices at once.

``f̂(x; d, λ) = -Acc'(x) + λ1 Energy'(x; d) + λ2 Latency'(x; d)`` where each metric is mapped by
the affine :class:`~fleetnas.search.Scale` of :mod:`fleetnas.search.objectives`: accuracy once
per space, latency and energy per device, from the ``q`` / ``1 - q`` quantiles of that device's
*predicted* values over a fixed reference set of designs. So ``λ`` means the same on every device
(a uniformly faster device has the same optimum), and ``t = λ2 / (1 + λ2)`` is eq. (6)'s ``t``.

The same objective labels Method 1 (exhaustive or evolutionary argmin), is the loss of Method 2
(through the frozen networks' torch modules), ranks an ensemble's proposals and drives the local
refinement of the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.l2o.features import DeviceSet, lambda_array
from fleetnas.predict.base import DevicePredictor, Predictor
from fleetnas.search.objectives import Scale, reference_set
from fleetnas.spaces import SearchSpace

#: Devices priced per chunk when computing scales (bounds temporary memory).
_CHUNK = 64


@dataclass(frozen=True)
class DeviceScales:
    """Per-device latency (and energy) scales: ``lo``/``hi`` are ``m`` arrays."""

    latency: Scale
    energy: Scale | None = None

    def take(self, idx: np.ndarray) -> DeviceScales:
        i = np.asarray(idx, dtype=np.int64)

        def pick(s: Scale | None) -> Scale | None:
            if s is None:
                return None
            return Scale(np.asarray(s.lo)[i], np.asarray(s.hi)[i])

        return DeviceScales(pick(self.latency), pick(self.energy))  # type: ignore[arg-type]


def _quantile_scale(values: np.ndarray, q: float) -> Scale:
    """Column-wise quantile scale of an ``n x m`` matrix (``m`` devices)."""
    lo, hi = np.quantile(values, [q, 1.0 - q], axis=0)
    bad = ~(hi > lo)
    if bad.any():
        lo[bad] = values[:, bad].min(axis=0)
        hi[bad] = np.maximum(values[:, bad].max(axis=0), lo[bad] + np.maximum(np.abs(lo[bad]), 1.0))
    return Scale(lo, hi)


class PredictedObjective:
    """Eq. (8) on a space with an accuracy :class:`Predictor` and device-aware latency (and
    energy) :class:`DevicePredictor` s; see the module docstring.

    ``reference``: the designs the per-device scales are computed on (default
    :func:`~fleetnas.search.objectives.reference_set` with ``n_reference`` and ``seed``).
    """

    def __init__(
        self,
        space: SearchSpace,
        accuracy: Predictor,
        latency: DevicePredictor,
        energy: DevicePredictor | None = None,
        reference: np.ndarray | None = None,
        n_reference: int = 4096,
        q: float = 0.05,
        seed: int = 0,
        acc_scale: Scale | None = None,
    ) -> None:
        self.space = space
        self.accuracy = accuracy
        self.latency = latency
        self.energy = energy
        for what, p in (("accuracy", accuracy), ("latency", latency), ("energy", energy)):
            if p is not None and p.space.name != space.name:
                raise InputError(
                    f"the {what} predictor is on space {p.space.name!r}, the objective on "
                    f"{space.name!r}"
                )
        if not 0 <= q < 0.5:
            raise InputError(f"normalization quantile q must be in [0, 0.5), got {q}")
        self.q = float(q)
        self.reference = (
            reference_set(space, n=n_reference, seed=seed)
            if reference is None
            else space.check(reference)
        )
        self.acc_scale = acc_scale or Scale.from_values(self.accuracy.predict(self.reference), q)

    # ---- shapes ---------------------------------------------------------------------------
    @property
    def n_lambda(self) -> int:
        """1 (latency weight only) or 2 (energy and latency weights)."""
        return 1 if self.energy is None else 2

    @staticmethod
    def _mode(p: DevicePredictor) -> str:
        return str(getattr(p, "features", "probes"))

    def predictor_features(self, devices: DeviceSet, metric: str = "latency") -> np.ndarray:
        """Device features the ``metric`` predictor reads (``m x G``)."""
        p = self.latency if metric == "latency" else self.energy
        if p is None:
            raise InputError(f"the objective has no {metric} predictor")
        mode = self._mode(p)
        if metric == "energy" and mode in ("probes", "both"):
            if devices.energy_probes is None:
                raise InputError("the energy predictor needs the devices' energy probe values")
            probes = devices.energy_probes
            return probes if mode == "probes" else np.c_[probes, devices.block("spec")]
        return devices.block(mode)

    def describe(self) -> dict[str, Any]:
        return {
            "space": self.space.name,
            "accuracy": type(self.accuracy).__name__,
            "latency": type(self.latency).__name__,
            "latency_features": self._mode(self.latency),
            "energy": None if self.energy is None else type(self.energy).__name__,
            "q": self.q,
            "n_reference": len(self.reference),
            "acc_scale": self.acc_scale.to_dict(),
        }

    # ---- values ---------------------------------------------------------------------------
    def accuracy_of(self, archs: np.ndarray) -> np.ndarray:
        """``n`` predicted accuracies; ``-inf`` for designs the space calls infeasible (a
        ``feasible`` method, e.g. ``apq``'s), so no argmin, bisection or refinement picks them."""
        a = self.space.check(archs)
        acc = np.asarray(self.accuracy.predict(a), dtype=float).reshape(-1)
        feasible = getattr(self.space, "feasible", None)
        if feasible is not None:
            acc = np.where(feasible(a), acc, -np.inf)
        return acc

    def scales(self, devices: DeviceSet) -> DeviceScales:
        """Latency (and energy) scales of each device from its predicted values on the
        reference set (computed once per distinct device)."""
        keys = [self.predictor_features(devices, "latency")]
        if self.energy is not None:
            keys.append(self.predictor_features(devices, "energy"))
        _, first, inv = np.unique(
            np.concatenate(keys, axis=1), axis=0, return_index=True, return_inverse=True
        )
        uniq = devices.take(first)
        lat = self.matrix(uniq, self.reference, "latency")
        en = None if self.energy is None else self.matrix(uniq, self.reference, "energy")
        sc = DeviceScales(
            _quantile_scale(lat, self.q), None if en is None else _quantile_scale(en, self.q)
        )
        return sc.take(inv.reshape(-1))

    def matrix(self, devices: DeviceSet, archs: np.ndarray, metric: str = "latency") -> np.ndarray:
        """``n x m`` predicted ``metric`` of ``archs`` on every device (chunked by device)."""
        p = self.latency if metric == "latency" else self.energy
        if p is None:
            raise InputError(f"the objective has no {metric} predictor")
        feats = self.predictor_features(devices, metric)
        a = self.space.check(archs)
        out = np.empty((len(a), len(feats)))
        for s in range(0, len(feats), _CHUNK):
            out[:, s : s + _CHUNK] = p.predict(a, feats[s : s + _CHUNK])
        return out

    def metrics(
        self, archs: np.ndarray, devices: DeviceSet, with_std: bool = False
    ) -> dict[str, np.ndarray]:
        """Predicted raw metrics of paired rows (design ``i`` on device row ``i``): ``accuracy``,
        ``latency`` (and ``latency_std`` with ``with_std``), ``energy`` when there is an
        energy predictor."""
        a = self.space.check(archs)
        if len(devices) != len(a):
            raise InputError(f"{len(a)} designs but {len(devices)} device rows")
        out = {"accuracy": self.accuracy_of(a)}
        feats = self.predictor_features(devices, "latency")
        mean, std = self.latency.predict_dist(a, feats, paired=True)
        out["latency"] = np.asarray(mean, dtype=float)
        if with_std:
            out["latency_std"] = np.asarray(std, dtype=float)
        if self.energy is not None:
            ef = self.predictor_features(devices, "energy")
            out["energy"] = np.asarray(self.energy.predict(a, ef, paired=True), dtype=float)
        return out

    def score_metrics(
        self, m: dict[str, np.ndarray], lam: np.ndarray, scales: DeviceScales
    ) -> np.ndarray:
        """Eq. (8), normalized, from :meth:`metrics` output; ``lam`` ``n x 2`` and ``scales``
        of the same ``n`` rows."""
        s = -self.acc_scale.apply(m["accuracy"]) + lam[:, 1] * scales.latency.apply(m["latency"])
        if self.energy is not None and scales.energy is not None:
            s = s + lam[:, 0] * scales.energy.apply(m["energy"])
        return s

    def score(
        self,
        archs: np.ndarray,
        devices: DeviceSet,
        lam: Any,
        scales: DeviceScales | None = None,
    ) -> np.ndarray:
        """``n`` values of eq. (8) for paired rows (lower is better)."""
        a = self.space.check(archs)
        lam_a = lambda_array(lam, self.n_lambda, len(a))
        sc = scales if scales is not None else self.scales(devices)
        return self.score_metrics(self.metrics(a, devices), lam_a, sc)

    # ---- differentiable parts (Method 2) ---------------------------------------------------
    def torch_modules(self) -> tuple[Any, Any, Any]:
        """``(accuracy, latency, energy or None)`` torch modules of the frozen predictors:
        ``acc(enc)``, ``lat(enc, feats)``; :class:`InputError` when a predictor has none
        (e.g. a spec-feature latency predictor: use Method 1). The modules are frozen copies,
        so the predictors themselves stay trainable."""
        import copy

        acc = copy.deepcopy(self.accuracy.torch_module())
        lat = copy.deepcopy(self.latency.torch_module())
        en = None if self.energy is None else copy.deepcopy(self.energy.torch_module())
        for mod in (acc, lat, en):
            if mod is not None:
                for prm in mod.parameters():
                    prm.requires_grad_(False)
                mod.eval()
        return acc, lat, en


__all__ = ["DeviceScales", "PredictedObjective"]
