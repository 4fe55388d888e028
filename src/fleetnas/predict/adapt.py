"""Few-shot latency model of one device from every design measured on it, and the active
choice of the next designs to measure.

The device-aware predictor (:class:`~fleetnas.predict.DeviceAwarePredictor`) describes a device
by ``K`` probe values only. :class:`FewShotLatency` uses all of a device's measurements: its
log-latency is the device-aware prediction (given the probes) as a prior mean plus a Bayesian
linear correction on the design's features

    ``log y(x) = log ŷ(x; probes) + b + z(x)·w_z + e(x)·w_e + ε``

where ``z(x)`` are the fleet trunk's profiles (each training device's standardized
log-latency, and log-FLOPs, as the trunk learned them: the pool's latencies for any design) and
``e(x)`` the centered one-hot encoding; ``b ~ N(0, τ_b²)``, ``w_z ~ N(0, τ_z²/m)``,
``w_e ~ N(0, τ_e²/D)``, ``ε ~ N(0, σ²)``. The four scales are chosen at every refit by the
marginal likelihood over a small grid (empirical Bayes), so few measurements lean on the prior
and many let the correction speak. Refitting is closed form (``p x p`` with ``p`` features),
milliseconds.

Intervals (:mod:`fleetnas.predict.conformal`): the fleet's split-conformal interval of the
prior (calibrated on held-out devices; the probes alone cannot calibrate anything) blended with
cross-conformal intervals on the device's own measurements (normalized leave-one-out scores of
this model, closed form), the device's own weighing ``n_own / (n_own + prior_strength)`` after
``n_own`` measurements beyond the probes. A prior without a calibration falls back to the
posterior spread inflated to cover the leave-one-out scores.

Active learning (:func:`next_designs`, :func:`active_fit`): the next design to measure is the
unmeasured candidate that shrinks the posterior variance summed over the whole candidate set the
most (``"ivr"``, the default: the ranking is over that set), or the one of largest posterior
variance (``"variance"``, greedy D-optimal: it prefers corner designs, and on held-out devices its
curve can fall as measurements are added); the model is refitted after each measurement.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Self

import numpy as np
from scipy.stats import norm

from fleetnas.errors import InputError
from fleetnas.predict.base import Predictor, check_targets, fingerprint, predictor_classes, to_numpy
from fleetnas.predict.conformal import blend_offsets, conformal_quantile, own_weight
from fleetnas.predict.device_aware import DeviceAwarePredictor
from fleetnas.spaces import SearchSpace

#: Prior scales tried for (bias, trunk profiles, encoding) and the noise (log units).
BIAS_GRID = (0.1, 0.3, 1.0)
TRUNK_GRID = (0.03, 0.1, 0.3, 1.0)
ENC_GRID = (0.03, 0.1, 0.3)
NOISE_GRID = (0.01, 0.03, 0.1, 0.3)
#: Standardized leave-one-out residual beyond which a value is down-weighted (Huber).
HUBER = 3.0
#: Measurements beyond the probes at which the device's own cross-conformal calibration weighs
#: as much as the fleet's (``prior_strength``), chosen on leave-hardware-out in
#: ``benchmarks/predict_heldout.py``.
DEFAULT_PRIOR_STRENGTH = 80.0


class FewShotLatency(Predictor):
    """``latency(x)`` on one device: device-aware prior + Bayesian correction fitted on every
    measured design of the device (see the module docstring).

    Build it with :meth:`on` (a fitted device-aware predictor and the device's ``K`` probe
    values); ``fit(X, y)`` takes all of the device's measured designs and values (probes
    included or not), ``predict_dist(X)`` gives ``(mean, std)`` in ms and
    :meth:`predict_interval` a central interval.
    """

    name = "few-shot"
    #: At least this many measured designs are needed to fit.
    min_samples = 3

    def __init__(
        self,
        space: SearchSpace | str,
        level: float = 0.9,
        seed: int = 0,
        prior_strength: float = DEFAULT_PRIOR_STRENGTH,
    ) -> None:
        super().__init__(space)
        if not 0.0 < float(level) < 1.0:
            raise InputError(f"level must be in (0, 1), got {level}")
        if not float(prior_strength) >= 0.0:
            raise InputError(f"prior_strength must be >= 0, got {prior_strength}")
        self.level = float(level)
        self.seed = int(seed)
        self.prior_strength = float(prior_strength)

    @classmethod
    def on(
        cls, base: DeviceAwarePredictor, probe_values: Sequence[float] | np.ndarray, **params: Any
    ) -> FewShotLatency:
        """A few-shot model of the device whose probe values are ``probe_values``."""
        if not isinstance(base, DeviceAwarePredictor) or base.features != "probes":
            raise InputError("the prior must be a fitted DeviceAwarePredictor(features='probes')")
        base._require_fitted()
        pv = base._check_feats(probe_values, what="probe values", width=base.n_probes)[0]
        if (pv <= 0).any():
            raise InputError("probe values must be positive")
        obj = cls(base.space, **params)
        obj._base, obj._probe_values = base, pv
        return obj

    @property
    def base(self) -> DeviceAwarePredictor:
        base = getattr(self, "_base", None)
        if base is None:
            raise InputError("FewShotLatency needs its prior: build it with FewShotLatency.on()")
        return base

    # ---- features -------------------------------------------------------------------------
    def _features(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(prior log mean n, features n x p, prior variances p)``."""
        base = self.base
        mean = base.predict(a, self._probe_values[None])[:, 0]
        zx = base._design_terms(a)[0].mean(axis=0)
        ex = base.space.encode(a).astype(np.float64) - base._enc_mean
        phi = np.c_[np.ones(len(a)), zx, ex]
        return np.log(mean), phi, np.array([zx.shape[1], ex.shape[1]])

    def _prior(self, widths: np.ndarray, tb: float, tz: float, te: float) -> np.ndarray:
        d = self.space.n_decisions
        return np.r_[tb**2, np.full(widths[0], tz**2 / widths[0]), np.full(widths[1], te**2 / d)]

    # ---- fitting --------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Fit on all measured designs ``X`` (``n x D``) and their values ``y`` (``n``)."""
        a, t = self._check_fit(X, y, positive=True, min_samples=self.min_samples, what="latencies")
        a, inv = np.unique(a, axis=0, return_inverse=True)
        t = np.exp(np.bincount(inv.reshape(-1), np.log(t)) / np.bincount(inv.reshape(-1)))
        mu, phi, widths = self._features(a)
        r = np.log(t) - mu

        def prior(tb: float, tz: float, te: float) -> np.ndarray:
            return self._prior(widths, tb, tz, te)

        first = _fit_weights(phi, r, np.ones(len(r)), prior)
        # Huber reweighting: a value the model cannot explain (a degenerate cell timed at a
        # thousandth of the others) gets a larger noise instead of bending the fit
        v = np.maximum(1.0, np.abs(first["loo_z"]) / HUBER)
        fit = _fit_weights(phi, r, v, prior) if (v > 1.0).any() else first
        self._w, self._cov, self._noise = fit["w"], fit["cov"], fit["noise"]
        self._scales = fit["scales"]
        inlier = v <= 1.0
        z = np.abs(fit["loo_z"][inlier] if inlier.any() else fit["loo_z"])
        self._inflation = _inflation(z, self.level)
        # cross-conformal scores of every measured design (outliers included: an interval that
        # leaves them out would over-promise), at the model's own noise level
        lat_var = np.maximum(fit["loo_var"] - fit["noise_var"], 0.0)
        self._scores = fit["loo_r"] / np.sqrt(lat_var + self._noise**2)
        probe_keys = {row.tobytes() for row in np.asarray(self.base.probes, dtype=np.int64)}
        self._n_own = int(sum(row.tobytes() not in probe_keys for row in a))
        tb, tz, te = self._scales
        loo_rmse = float(np.sqrt(np.mean(fit["loo_r"][inlier] ** 2))) if inlier.any() else 0.0
        self._archs = a
        self._mark_fitted(
            data_fingerprint=fingerprint(a, t),
            n_train=len(a),
            evidence=fit["evidence"],
            scales={"bias": tb, "trunk": tz, "encoding": te, "noise": self._noise},
            inflation=self._inflation,
            loo_rmse_log=loo_rmse,
            outliers=int((~inlier).sum()),
            n_own=self._n_own,
        )
        return self

    # ---- prediction -----------------------------------------------------------------------
    def _posterior(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(log mean, latent variance of the correction)``, ``n`` each."""
        self._require_fitted()
        a = self.space.check(X)
        mu, phi, _ = self._features(a)
        return mu + phi @ self._w, np.einsum("ij,jk,ik->i", phi, self._cov, phi)

    def _log_bounds(self, a: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(log mean, lower offset, upper offset)`` of the central interval at ``level``."""
        m, v = self._posterior(a)
        sd = np.sqrt(v + self._noise**2)
        zq = float(norm.ppf(0.5 + level / 2.0))
        cal = self.base.calibration
        if cal is None:  # no fleet calibration: the spread inflated by the device's own scores
            half = zq * self._inflation * sd
            return m, -half, half
        iv = self.base.predict_interval(a, self._probe_values[None], level)
        fleet = (np.log(iv["lower"][:, 0] / iv["mean"][:, 0]),
                 np.log(iv["upper"][:, 0] / iv["mean"][:, 0]))  # fmt: skip
        q = conformal_quantile(self._scores, level)
        w = own_weight(self._n_own, self.prior_strength) if np.isfinite(q) else 0.0
        lo, hi = blend_offsets(fleet, (-q * sd, q * sd), w)
        return m, lo, hi

    def _log_scale(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(log mean, log centre, log-space standard deviation)`` implied by the interval at
        the model's level (a Gaussian through its bounds)."""
        m, lo, hi = self._log_bounds(a, self.level)
        zq = float(norm.ppf(0.5 + self.level / 2.0))
        return m, m + 0.5 * (lo + hi), np.maximum((hi - lo) / (2.0 * zq), 1e-9)

    def predict_dist(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` in ms: the geometric-mean prediction and the delta-method spread of
        the calibrated interval at the model's level."""
        m, _, sd = self._log_scale(self.space.check(X))
        mean = np.exp(m)
        return mean, mean * sd

    def predict(self, X: np.ndarray) -> np.ndarray:
        m, _ = self._posterior(X)
        return np.exp(m)

    def predict_interval(self, X: np.ndarray, level: float | None = None) -> dict[str, np.ndarray]:
        """``mean``, ``lower``, ``upper`` (central interval at ``level``, default the
        model's; see the module docstring) and ``scale`` (its log-space standard deviation)."""
        lv = self.level if level is None else float(level)
        if not 0.0 < lv < 1.0:
            raise InputError(f"interval level must be in (0, 1), got {level}")
        m, lo, hi = self._log_bounds(self.space.check(X), lv)
        zq = float(norm.ppf(0.5 + lv / 2.0))
        return {"mean": np.exp(m), "lower": np.exp(m + lo), "upper": np.exp(m + hi),
                "scale": (hi - lo) / (2.0 * zq)}  # fmt: skip

    def exceed_probability(self, X: np.ndarray, budget: Any) -> np.ndarray:
        """Probability that the true latency exceeds ``budget`` (Gaussian in log space through
        the calibrated interval's bounds at the model's level)."""
        _, c, sd = self._log_scale(self.space.check(X))
        b = np.broadcast_to(np.asarray(budget, dtype=float), c.shape)
        return norm.sf((np.log(b) - c) / sd)

    def variance(self, X: np.ndarray) -> np.ndarray:
        """``n`` posterior variances of the correction (log units): what a measurement of
        each design would teach."""
        return self._posterior(X)[1]

    # ---- state ----------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        base = self.base
        return {
            "base_class": type(base).__name__,
            "base_params": json.dumps(base.get_params(), sort_keys=True),
            "base_state": base._get_state(),
            "probe_values": self._probe_values,
            "w": self._w,
            "cov": self._cov,
            "noise": self._noise,
            "scales": list(self._scales),
            "inflation": self._inflation,
            "archs": self._archs,
            "scores": self._scores,
            "n_own": self._n_own,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        klass = predictor_classes().get(str(state["base_class"]))
        if klass is None or not issubclass(klass, DeviceAwarePredictor):
            raise InputError(f"few-shot prior of unknown class {state['base_class']!r}")
        base = klass(self.space, **json.loads(state["base_params"]))
        base._set_state(state["base_state"])
        base._fitted = True
        self._base = base
        self._probe_values = to_numpy(state["probe_values"]).astype(float)
        self._w = to_numpy(state["w"]).astype(float)
        self._cov = to_numpy(state["cov"]).astype(float)
        self._noise = float(state["noise"])
        self._scales = tuple(float(x) for x in state["scales"])
        self._inflation = float(state["inflation"])
        self._archs = to_numpy(state["archs"]).astype(np.int64)
        self._scores = to_numpy(state["scores"]).astype(float) if "scores" in state else np.zeros(0)
        self._n_own = int(state.get("n_own", 0))


def _inflation(z: np.ndarray, level: float) -> float:
    """Factor on the predictive spread so the interval at ``level`` covers the leave-one-out
    standardized residuals ``|z|`` as split conformal would: their ``ceil((n + 1) level)``-th
    smallest value over the Gaussian quantile (the largest when ``n`` is small), never below 1."""
    z = np.sort(np.asarray(z, dtype=float))
    if len(z) == 0:
        return 1.0
    k = min(len(z), int(np.ceil((len(z) + 1) * level)))
    return float(max(1.0, z[k - 1] / norm.ppf(0.5 + level / 2.0)))


def _fit_weights(
    phi: np.ndarray, r: np.ndarray, v: np.ndarray, prior: Callable[..., np.ndarray]
) -> dict[str, Any]:
    """Empirical-Bayes fit of the correction with per-point noise multipliers ``v``: the grid
    point of highest evidence, its weight posterior and leave-one-out residuals."""
    best: tuple[float, tuple[float, ...]] | None = None
    for tb in BIAS_GRID:
        for tz in TRUNK_GRID:
            for te in ENC_GRID:
                gram = (phi * prior(tb, tz, te)) @ phi.T
                for s in NOISE_GRID:
                    ll = _log_evidence(gram, r, s**2 * v)
                    if best is None or ll > best[0]:
                        best = (ll, (tb, tz, te, s))
    assert best is not None
    tb, tz, te, s = best[1]
    lam = prior(tb, tz, te)
    noise = s**2 * v
    cov = np.linalg.inv((phi / noise[:, None]).T @ phi + np.diag(1.0 / lam))
    cov = 0.5 * (cov + cov.T)
    kinv = np.linalg.inv((phi * lam) @ phi.T + np.diag(noise))
    dg = np.diag(kinv)
    return {
        "w": cov @ (phi / noise[:, None]).T @ r,
        "cov": cov,
        "noise": float(s),
        "scales": (float(tb), float(tz), float(te)),
        "evidence": float(best[0]),
        "loo_r": (kinv @ r) / dg,
        "loo_z": (kinv @ r) / np.sqrt(dg),
        "loo_var": 1.0 / dg,
        "noise_var": noise,
    }


def _log_evidence(gram: np.ndarray, r: np.ndarray, noise_var: np.ndarray) -> float:
    k = gram + np.diag(noise_var)
    try:
        c = np.linalg.cholesky(k)
    except np.linalg.LinAlgError:
        return -np.inf
    alpha = np.linalg.solve(c, r)
    return float(-0.5 * alpha @ alpha - np.log(np.diag(c)).sum() - 0.5 * len(r) * np.log(2 * np.pi))


#: Acquisition rules of :func:`next_designs`.
ACQUISITIONS = ("ivr", "variance")


def next_designs(
    model: FewShotLatency,
    candidates: np.ndarray,
    k: int = 1,
    exclude: np.ndarray | None = None,
    acquisition: str = "ivr",
) -> np.ndarray:
    """Indices of the ``k`` candidates (``n x D``) most worth measuring, skipping rows flagged
    in ``exclude`` and the designs the model was fitted on.

    ``"ivr"`` (integrated variance reduction): the design whose measurement would shrink the
    posterior variance summed over all candidates the most,
    ``Σ_x' cov(x, x')^2 / (var(x) + σ^2)``; it picks designs representative of the candidate
    set, which is what a ranking over that set needs. ``"variance"``: the largest posterior
    variance (greedy D-optimal; prefers unusual, corner designs).
    """
    if acquisition not in ACQUISITIONS:
        raise InputError(
            f"acquisition must be one of {', '.join(ACQUISITIONS)}, got {acquisition!r}"
        )
    a = model.space.check(candidates)
    _, phi, _ = model._features(a)
    var = np.einsum("ij,jk,ik->i", phi, model._cov, phi)
    if acquisition == "ivr":
        m = model._cov @ (phi.T @ phi) @ model._cov
        gain = np.einsum("ij,jk,ik->i", phi, m, phi) / (var + model._noise**2)
    else:
        gain = var
    skip = np.zeros(len(a), dtype=bool) if exclude is None else np.asarray(exclude, bool).copy()
    if getattr(model, "_archs", None) is not None:
        seen = {row.tobytes() for row in model._archs}
        skip |= np.array([row.tobytes() in seen for row in a], dtype=bool)
    gain = np.where(skip, -np.inf, gain)
    k = min(int(k), int((~skip).sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.argsort(-gain, kind="stable")[:k]


def active_fit(
    model: FewShotLatency,
    candidates: np.ndarray,
    measure: Callable[[np.ndarray], np.ndarray],
    n: int,
    archs: np.ndarray,
    values: np.ndarray,
    on_step: Callable[[int, FewShotLatency], None] | None = None,
    acquisition: str = "ivr",
) -> tuple[FewShotLatency, np.ndarray, np.ndarray]:
    """Measure ``n`` more designs chosen one at a time among ``candidates`` (refitting after
    each), starting from the measured ``archs``/``values``; ``measure(designs k x D) -> k``
    values. Returns the fitted model and all measured designs and values. ``on_step(i, model)``
    is called after each refit (``i`` = designs measured so far)."""
    a = model.space.check(archs)
    y = check_targets(values, len(a), positive=True, what="latencies")
    model.fit(a, y)
    if on_step is not None:
        on_step(len(a), model)
    cand = model.space.check(candidates)
    for _ in range(int(n)):
        pick = next_designs(model, cand, 1, acquisition=acquisition)
        if len(pick) == 0:
            break
        new = cand[pick]
        v = check_targets(measure(new), 1, positive=True, what="measured latencies")
        a, y = np.concatenate([a, new]), np.concatenate([y, v])
        model.fit(a, y)
        if on_step is not None:
            on_step(len(a), model)
    return model, a, y


__all__ = ["ACQUISITIONS", "DEFAULT_PRIOR_STRENGTH", "FewShotLatency", "active_fit", "next_designs"]
