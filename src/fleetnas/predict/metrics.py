"""Prediction quality: rank correlation and relative error, overall and per device.

Latency and energy predictions are judged in their own units (ms, mJ) even when a predictor
works in log space; accuracy predictions likewise in their own units.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from fleetnas.errors import InputError

#: Keys of :func:`regression_report`, in order.
METRIC_NAMES = ("spearman", "kendall", "mape", "within5", "within10", "n")


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=float).reshape(-1)
    p = np.asarray(y_pred, dtype=float).reshape(-1)
    if t.shape != p.shape:
        raise InputError(f"metrics need equal lengths, got {t.size} true and {p.size} predicted")
    if t.size < 2:
        raise InputError(f"metrics need at least 2 values, got {t.size}")
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise InputError("metrics got NaN or infinite values")
    return t, p


def spearman(y_true: Any, y_pred: Any) -> float:
    """Spearman rank correlation (ties get average ranks)."""
    t, p = _pair(y_true, y_pred)
    return float(stats.spearmanr(t, p)[0])


def kendall(y_true: Any, y_pred: Any) -> float:
    """Kendall's tau-b."""
    t, p = _pair(y_true, y_pred)
    return kendall_tau_b(t, p)


#: Up to this many values :func:`kendall_tau_b` compares all pairs itself.
_PAIRWISE_MAX = 1500


@functools.cache
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, 1)


def kendall_tau_b(x: Any, y: Any) -> float:
    """Kendall's tau-b of two equal-length vectors, NaN where either is constant: the same
    pair counts and formula as :func:`scipy.stats.kendalltau`, without its per-call overhead
    (Approach 1 scores its proxies on a dozen measured designs thousands of times a plan).
    Long or non-finite inputs go to scipy."""
    a = np.asarray(x, dtype=float).reshape(-1)
    b = np.asarray(y, dtype=float).reshape(-1)
    if a.shape != b.shape:
        raise InputError(f"kendall needs equal lengths, got {a.size} and {b.size}")
    n = a.size
    if n > _PAIRWISE_MAX or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float(stats.kendalltau(a, b)[0])
    if n < 2:
        return float("nan")
    i, j = _pairs(n)
    dx, dy = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    tot = n * (n - 1) // 2
    xtie, ytie = int((dx == 0).sum()), int((dy == 0).sum())
    if xtie == tot or ytie == tot:
        return float("nan")
    ntie = int(((dx == 0) & (dy == 0)).sum())
    dis = int((dx * dy < 0).sum())
    con_minus_dis = tot - xtie - ytie + ntie - 2 * dis
    tau = con_minus_dis / np.sqrt(tot - xtie) / np.sqrt(tot - ytie)
    return float(min(1.0, max(-1.0, tau)))


def mape(y_true: Any, y_pred: Any) -> float:
    """Mean absolute percentage error, in percent of the true value."""
    t, p = _pair(y_true, y_pred)
    if (t == 0).any():
        raise InputError("MAPE is undefined when a true value is 0")
    return float(100.0 * np.mean(np.abs(p - t) / np.abs(t)))


def within(y_true: Any, y_pred: Any, tol: float = 0.10) -> float:
    """Share (0..1) of predictions within ``±tol`` relative error of the true value."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p - t) <= tol * np.abs(t)))


def regression_report(y_true: Any, y_pred: Any) -> dict[str, float]:
    """All of :data:`METRIC_NAMES` for one set of predictions."""
    t, p = _pair(y_true, y_pred)
    return {
        "spearman": spearman(t, p),
        "kendall": kendall(t, p),
        "mape": mape(t, p),
        "within5": within(t, p, 0.05),
        "within10": within(t, p, 0.10),
        "n": int(t.size),
    }


def per_device_report(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    devices: Sequence[str],
    mask: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per device plus a ``mean`` row.

    ``y_true`` and ``y_pred`` are ``n x m`` arrays (architectures x devices); ``mask`` (``n x m``
    bool or ``n`` bool) selects the rows each device is judged on, e.g. excluding its probes.
    """
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    if t.ndim != 2 or t.shape != p.shape or t.shape[1] != len(devices):
        raise InputError(
            f"per_device_report needs n x {len(devices)} arrays of equal shape, "
            f"got {t.shape} and {p.shape}"
        )
    if mask is None:
        m = np.ones(t.shape, dtype=bool)
    else:
        m = np.asarray(mask, dtype=bool)
        m = np.broadcast_to(m[:, None] if m.ndim == 1 else m, t.shape)
    rows = [
        {"device": d, **regression_report(t[m[:, j], j], p[m[:, j], j])}
        for j, d in enumerate(devices)
    ]
    frame = pd.DataFrame(rows)
    mean = {"device": "mean", **{k: float(frame[k].mean()) for k in METRIC_NAMES}}
    mean["n"] = int(frame["n"].sum())
    return pd.concat([frame, pd.DataFrame([mean])], ignore_index=True)


__all__ = [
    "METRIC_NAMES",
    "kendall",
    "kendall_tau_b",
    "mape",
    "per_device_report",
    "regression_report",
    "spearman",
    "within",
]
