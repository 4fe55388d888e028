"""Verified selection by expected improvement: spend a few target measurements where a
calibrated latency interval says the accuracy gain is most likely.

:func:`verify_candidates` bisects a candidate list ordered by predicted latency; it trusts the
order (performance monotonicity) and ignores how sure the prediction is. When the predictor
comes with a calibrated interval (:mod:`fleetnas.predict.interval`), each unmeasured candidate
``x`` has a probability of meeting the budget ``B``,

    ``P(x) = F((log B - log ŷ(x)) / s(x) - δ(x))``,

with ``F`` the calibrated distribution of normalized scores and ``s`` the interval scale. After
each measurement the scores of the designs *near* the measured ones shift by ``δ(x)``: the
kernel-weighted mean of the measured normalized residuals ``r_j = (log y_j - log ŷ_j) / s_j``,
``δ(x) = Σ w(x, j) r_j / (shift + Σ w(x, j))`` with ``w = exp(-hamming(x, x_j) / (D / 4))``
over the ``D`` decisions (``shift`` is the prior weight of "no correction"; 0 disables it). The
next design measured is the one with the largest expected improvement ``(a(x) - a*)+ · P(x)``
over the best design measured within the budget so far (``a*``; before one exists, the
expected accuracy ``a(x) · P(x)``). The first measurement is ``start`` (the network alone's
proposal, the most accurate design whose safe bound meets the budget). As in every verified
search, only a design *measured* within the budget is returned (:func:`choose_design`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from fleetnas.errors import InputError
from fleetnas.proxy.verify import (
    Selection,
    TraceStep,
    check_budgets,
    cost_mark,
    measured_selection,
)

if TYPE_CHECKING:
    from fleetnas.proxy.session import TargetSession
    from fleetnas.spaces import SearchSpace

#: Prior weight of "no local correction" (chosen on leave-hardware-out by
#: ``benchmarks/predict_heldout.py`` among 0, 1, 3).
DEFAULT_SHIFT = 1.0


def residual_shift(
    cand: np.ndarray, measured: np.ndarray, residuals: np.ndarray, shift: float
) -> np.ndarray:
    """``n`` score corrections ``δ`` of ``cand`` (``n x D``) from the normalized residuals of
    the ``measured`` designs (``m x D``), Hamming kernel of length ``D / 4``."""
    if shift <= 0 or len(measured) == 0:
        return np.zeros(len(cand))
    length = max(cand.shape[1] / 4.0, 1e-9)
    dist = (cand[:, None, :] != measured[None, :, :]).sum(axis=-1)
    w = np.exp(-dist / length)
    return (w * residuals[None, :]).sum(axis=1) / (shift + w.sum(axis=1))


def verify_by_improvement(
    space: SearchSpace,
    candidates: np.ndarray,
    session: TargetSession,
    latency_budget: float,
    accuracy: np.ndarray,
    latency: np.ndarray,
    scale: np.ndarray,
    score_cdf: Callable[[np.ndarray], np.ndarray],
    max_measurements: int = 3,
    start: int | None = None,
    shift: float = DEFAULT_SHIFT,
    phase: str = "hybrid",
    step0: int = 0,
) -> Selection:
    """Measure at most ``max_measurements`` of ``candidates`` (``n x D``) to find the most
    accurate one whose measured latency meets ``latency_budget``.

    ``accuracy``, ``latency`` (predicted mean, ms) and ``scale`` (the interval's log scale
    ``s``): ``n`` each; ``score_cdf(u)``: the calibrated probability that a normalized score is
    at most ``u`` (e.g. ``1 - calibration.exceed(u)``). ``start``: the first candidate to measure
    (default: the most accurate one with ``P >= 0.9``, else the likeliest feasible). Designs the
    session already knows cost nothing; an unmeasurable design is skipped and charged.
    """
    check_budgets(latency_budget, None)
    cand = space.check(candidates)
    n = len(cand)
    if n == 0:
        raise InputError("verify_by_improvement needs at least one candidate")
    acc, mean, s = (np.asarray(x, dtype=float).reshape(-1) for x in (accuracy, latency, scale))
    if not (len(acc) == len(mean) == len(s) == n):
        raise InputError(
            f"verify_by_improvement: {n} candidates but metric arrays of other lengths"
        )
    if max_measurements < 0:
        raise InputError(f"max_measurements must be >= 0, got {max_measurements}")
    if shift < 0:
        raise InputError(f"shift must be >= 0, got {shift}")
    if start is not None and not 0 <= start < n:
        raise InputError(f"start must index the {n} candidates, got {start}")
    lat = np.full(n, np.nan)
    measured, vals = session.lookup(cand)
    lost = measured & ~np.isfinite(vals[:, 0])
    measured &= ~lost
    lat[measured] = vals[measured, 0]
    base_u = (np.log(latency_budget) - np.log(np.maximum(mean, 1e-300))) / np.maximum(s, 1e-12)
    mark = cost_mark(session)
    trace: list[TraceStep] = []
    spent = 0
    while spent < max_measurements:
        known = np.flatnonzero(measured)
        resid = (np.log(lat[known]) - np.log(mean[known])) / np.maximum(s[known], 1e-12)
        p = np.clip(score_cdf(base_u - residual_shift(cand, cand[known], resid, shift)), 0, 1)
        ok = measured & (lat <= latency_budget)
        best = acc[ok].max() if ok.any() else None
        gain = acc * p if best is None else np.maximum(acc - best, 0.0) * p
        gain[measured | lost] = -np.inf
        if start is None:  # the default start: most accurate with P >= 0.9, else likeliest
            sure = np.flatnonzero((p >= 0.9) & ~measured & ~lost)
            start = int(sure[np.argmax(acc[sure])]) if len(sure) else int(np.argmax(p))
        if not trace and not (measured[start] or lost[start]):
            pick, why = int(start), "start"
        else:
            pick, why = int(np.argmax(gain)), "largest expected improvement"
            if not gain[pick] > 0:
                break
        before = session.cost.measurements
        li, _ = session.measure_one(cand[pick])
        new = session.cost.measurements > before
        feasible = bool(np.isfinite(li) and li <= latency_budget)
        if np.isfinite(li):
            measured[pick] = True
            lat[pick] = li
            spent += int(new)
            decision = f"{why} (P={p[pick]:.2f}): " + (
                "meets budget" if feasible else "violates budget"
            )
        else:
            lost[pick] = True
            spent += 1  # trying it may have cost device time
            decision = f"{why}: unmeasurable on the device, skipped"
        trace.append(
            TraceStep(
                step=step0 + len(trace) + 1,
                phase=phase,
                key=f"#{pick}",
                value=float(mean[pick]),
                arch=space.format(cand[pick]),
                latency=float(li),
                predicted=float(mean[pick]),
                new=bool(new) and np.isfinite(li),
                feasible=feasible,
                decision=decision,
            )
        )
    return measured_selection(
        cand, measured, acc, lat, None, latency_budget, None, trace, session, mark
    )


__all__ = ["DEFAULT_SHIFT", "residual_shift", "verify_by_improvement"]
