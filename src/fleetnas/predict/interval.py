"""Predictive intervals for a device's latency that stay honest on unseen stacks (split
conformal, normalized by a per-design spread and a per-device probe fit statistic).

A device-aware prediction ``ŷ(x; d)`` (:class:`~fleetnas.predict.DeviceAwarePredictor`) comes
with a log-space spread ``σ(x, d) = std / mean``. On a device whose probes the fleet explains
well that spread is about right; on a device of another measurement stack it is far too small,
and the probes say so: the Gaussian-process head's leave-one-out residuals on the ``K`` probe
values (:func:`probe_misfit`, log units) are large when no mix of the training devices fits the
probes. The nonconformity score of a measured value ``y`` is the signed, normalized log residual

    ``score = (log y - log ŷ) / s(x, d)``,   ``s(x, d) = sqrt(σ(x, d)^2 + (β · misfit_d)^2)``

Its distribution is calibrated on devices held out of the predictor's training by *group*
(hardware, source or family: a device is never scored by a predictor that saw its twins),
each device weighted equally (:meth:`IntervalCalibration.from_components`). A central interval
at level ``1 - α`` is ``ŷ · exp(s · [q(α/2), q(1 - α/2)])``; a one-sided safe bound at level
``1 - α`` is ``ŷ · exp(s · q(1 - α))``, and the probability that the true value exceeds a budget
``B`` is the share of calibration scores above ``log(B / ŷ) / s``. Since ``s`` grows with the
device's misfit, the interval widens exactly where the fleet fits the probes poorly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.errors import InputError

if TYPE_CHECKING:
    from fleetnas.predict.device_aware import DeviceAwarePredictor

#: Levels at which the calibration keeps the score distribution's quantiles.
_GRID = np.linspace(0.0, 1.0, 401)


def probe_misfit(predictor: DeviceAwarePredictor, probe_values: np.ndarray) -> np.ndarray:
    """``m`` RMS leave-one-out residuals (log units) of the GP head on each device's ``K``
    probe values: how badly the training fleet explains the device. Needs a fitted predictor
    with ``features="probes"``."""
    predictor._require_fitted()
    if predictor.features != "probes":
        raise InputError("probe_misfit needs a device-aware predictor with features='probes'")
    f = predictor._check_feats(probe_values, what="probe values", width=predictor.n_probes)
    probes, _ = predictor._split_feats(f)
    lp = np.log(probes).T  # K x m
    spread = np.maximum(lp.std(axis=0), 1e-3)
    t = (lp - lp.mean(axis=0)) / spread
    kinv = predictor._kinv  # M x K x K
    alpha = kinv @ t[None]  # M x K x m
    diag = np.einsum("mkk->mk", kinv)[:, :, None]
    loo = alpha / diag
    rms = np.sqrt((loo**2).mean(axis=1)).mean(axis=0)
    return rms * spread


@dataclass
class ScoreComponents:
    """What one held-out device contributes to a calibration: signed log residuals ``r``
    (``n``), the predictor's log spreads ``sigma`` (``n``) and the device's probe misfit."""

    device: str
    r: np.ndarray
    sigma: np.ndarray
    misfit: float
    group: str = ""

    def scores(self, beta: float) -> np.ndarray:
        return self.r / np.sqrt(self.sigma**2 + (beta * self.misfit) ** 2)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "group": self.group,
            "r": self.r.tolist(),
            "sigma": self.sigma.tolist(),
            "misfit": float(self.misfit),
        }


def components(
    predictor: DeviceAwarePredictor,
    archs: np.ndarray,
    values: np.ndarray,
    probe_values: np.ndarray,
    devices: Sequence[str],
    exclude: np.ndarray | None = None,
    groups: Sequence[str] | None = None,
) -> list[ScoreComponents]:
    """Score components of ``m`` held-out devices: ``values`` is ``n x m`` (NaN where not
    measured), ``probe_values`` ``m x K``; rows flagged in ``exclude`` (e.g. the probes) are
    left out."""
    a = predictor.space.check(archs)
    y = np.asarray(values, dtype=float).reshape(len(a), -1)
    feats = np.asarray(probe_values, dtype=float).reshape(y.shape[1], -1)
    mean, std = predictor.predict_dist(a, feats)
    sigma = std / np.maximum(mean, 1e-300)
    mis = probe_misfit(predictor, feats)
    keep = np.ones(len(a), dtype=bool) if exclude is None else ~np.asarray(exclude, dtype=bool)
    out = []
    for j, name in enumerate(devices):
        ok = keep & np.isfinite(y[:, j]) & (y[:, j] > 0)
        out.append(
            ScoreComponents(
                device=str(name),
                r=np.log(y[ok, j]) - np.log(mean[ok, j]),
                sigma=sigma[ok, j],
                misfit=float(mis[j]),
                group="" if groups is None else str(groups[j]),
            )
        )
    return out


@dataclass
class IntervalCalibration:
    """The calibrated distribution of normalized scores (quantiles on a fixed grid of levels),
    the misfit weight ``beta`` and what it was calibrated on."""

    beta: float
    quantiles: np.ndarray
    n_devices: int
    n_scores: int
    devices: tuple[str, ...] = ()

    @classmethod
    def from_components(
        cls, parts: Sequence[ScoreComponents], beta: float = 1.0
    ) -> IntervalCalibration:
        """Quantiles of the pooled scores, each device weighted equally (a device with many
        measured designs does not dominate)."""
        parts = [p for p in parts if len(p.r)]
        if len(parts) < 2:
            raise InputError(f"calibration needs at least 2 held-out devices, got {len(parts)}")
        if not beta >= 0:
            raise InputError(f"beta must be >= 0, got {beta}")
        s = np.concatenate([p.scores(beta) for p in parts])
        w = np.concatenate([np.full(len(p.r), 1.0 / len(p.r)) for p in parts])
        order = np.argsort(s, kind="stable")
        s, w = s[order], w[order]
        cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
        q = np.interp(_GRID, cdf, s)
        return cls(float(beta), q, len(parts), len(s), tuple(p.device for p in parts))

    def quantile(self, level: float | np.ndarray) -> np.ndarray:
        lv = np.asarray(level, dtype=float)
        if np.any((lv < 0) | (lv > 1)):
            raise InputError(f"levels must be in [0, 1], got {level}")
        return np.interp(lv, _GRID, self.quantiles)

    def central(self, level: float = 0.9) -> tuple[float, float]:
        """Score bounds ``(q(α/2), q(1 - α/2))`` of the central interval at ``level``."""
        _check_level(level)
        a = (1.0 - level) / 2.0
        return float(self.quantile(a)), float(self.quantile(1.0 - a))

    def exceed(self, u: np.ndarray) -> np.ndarray:
        """Share of calibration scores above ``u``."""
        return 1.0 - np.interp(np.asarray(u, dtype=float), self.quantiles, _GRID)

    def scale(self, sigma: np.ndarray, misfit: np.ndarray) -> np.ndarray:
        return np.sqrt(np.asarray(sigma) ** 2 + (self.beta * np.asarray(misfit)) ** 2)

    def to_dict(self) -> dict[str, Any]:
        return {
            "beta": self.beta,
            "quantiles": self.quantiles.tolist(),
            "n_devices": self.n_devices,
            "n_scores": self.n_scores,
            "devices": list(self.devices),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IntervalCalibration:
        q = np.asarray(d["quantiles"], dtype=float).reshape(-1)
        if len(q) != len(_GRID):
            raise InputError(f"calibration has {len(q)} quantiles, expected {len(_GRID)}")
        return cls(
            float(d["beta"]), q, int(d["n_devices"]), int(d["n_scores"]), tuple(d["devices"])
        )


def _check_level(level: float) -> None:
    if not 0.0 < float(level) < 1.0:
        raise InputError(f"interval level must be in (0, 1), got {level}")


def coverage(parts: Sequence[ScoreComponents], cal: IntervalCalibration, level: float) -> float:
    """Mean over devices of the share of their values inside the central interval."""
    lo, hi = cal.central(level)
    return float(
        np.mean([np.mean((p.scores(cal.beta) >= lo) & (p.scores(cal.beta) <= hi)) for p in parts])
    )


def cross_fit(
    fit: Callable[[list[str]], DeviceAwarePredictor],
    archs: np.ndarray,
    values: np.ndarray,
    names: Sequence[str],
    groups: Sequence[str],
    probe_rows: np.ndarray,
) -> list[ScoreComponents]:
    """Score components of every device, each from a predictor fitted (``fit(train_names)``)
    without the device's whole group; ``values`` is ``n x m`` over ``names``, ``probe_rows``
    the indices of the probe designs in ``archs`` (left out of the scores)."""
    names = [str(n) for n in names]
    if len(set(groups)) < 2:
        raise InputError("cross-fitted calibration needs devices of at least 2 groups")
    y = np.asarray(values, dtype=float)
    probe = np.zeros(len(archs), dtype=bool)
    probe[np.asarray(probe_rows, dtype=np.int64)] = True
    out: list[ScoreComponents] = []
    for g in sorted(set(groups)):
        held = [j for j, gg in enumerate(groups) if gg == g]
        train = [n for j, n in enumerate(names) if groups[j] != g]
        pred = fit(train)
        out += components(
            pred,
            archs,
            y[:, held],
            y[probe_rows][:, held].T,
            [names[j] for j in held],
            exclude=probe,
            groups=[g] * len(held),
        )
    return out


__all__ = [
    "IntervalCalibration",
    "ScoreComponents",
    "components",
    "coverage",
    "cross_fit",
    "probe_misfit",
]
