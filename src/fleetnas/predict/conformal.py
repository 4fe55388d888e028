"""Intervals of a few-shot model that stay honest at every number of measurements.

Two sources of calibration are combined:

- the *fleet's*: the device-aware predictor's split-conformal interval, calibrated on devices
  held out by group (:mod:`fleetnas.predict.interval`). It is the only honest source with the
  ``K`` probes alone, but it knows nothing about the device beyond them;
- the *device's own*: cross-conformal (jackknife+ in its normalized, closed-form version for a
  linear-Gaussian model) on the device's measured designs. Each measured design's
  leave-one-out residual over its leave-one-out predictive standard deviation is a
  nonconformity score ``u_i``; the interval at ``x`` is ``mean(x) ± q̂ · sd(x)`` with ``q̂`` the
  ``ceil((n + 1) level)``-th smallest ``u_i`` (infinite when ``n`` is too small for the level).

The two are blended in log space with the weight ``w = n_own / (n_own + n0)`` on the
device's own, where ``n_own`` counts the measurements beyond the probes and ``n0`` (the prior
strength) is chosen on leave-hardware-out in ``benchmarks/predict_heldout.py``: with the probes
alone the interval is the fleet's, and as measurements accumulate it becomes the device's own.
"""

from __future__ import annotations

import numpy as np

from fleetnas.errors import InputError


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """``ceil((n + 1) level)``-th smallest of the ``n`` absolute ``scores`` (``inf`` when that
    rank exceeds ``n``: too few scores to cover at ``level``)."""
    if not 0.0 < float(level) < 1.0:
        raise InputError(f"interval level must be in (0, 1), got {level}")
    u = np.sort(np.abs(np.asarray(scores, dtype=float).reshape(-1)))
    k = int(np.ceil((len(u) + 1) * float(level)))
    return float(u[k - 1]) if 0 < k <= len(u) else float("inf")


def own_weight(n_own: int, prior_strength: float) -> float:
    """Weight of the device's own calibration after ``n_own`` measurements beyond the probes."""
    if prior_strength < 0:
        raise InputError(f"prior strength must be >= 0, got {prior_strength}")
    n = max(0, int(n_own))
    if n == 0:
        return 0.0
    return n / (n + float(prior_strength))


def blend_offsets(
    fleet: tuple[np.ndarray, np.ndarray], own: tuple[np.ndarray, np.ndarray], w: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(lower, upper)`` log offsets from the centre: ``(1 - w)`` of the fleet's plus ``w`` of
    the device's own (an infinite own offset counts only when ``w`` is 1)."""
    if not 0.0 <= w <= 1.0:
        raise InputError(f"blend weight must be in [0, 1], got {w}")
    if w == 0.0:
        return np.asarray(fleet[0], float), np.asarray(fleet[1], float)
    lo = (1.0 - w) * np.asarray(fleet[0], float) + w * np.asarray(own[0], float)
    hi = (1.0 - w) * np.asarray(fleet[1], float) + w * np.asarray(own[1], float)
    return lo, hi


__all__ = ["blend_offsets", "conformal_quantile", "own_weight"]
