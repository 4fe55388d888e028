"""Guided verification: spend each target measurement where it can still raise accuracy.

With a calibrated, probabilistic prediction of the target's latency (a
:class:`~fleetnas.proxy.pool.ProxyBlend` fitted to what was measured so far), the next design to
measure is the candidate with the largest *expected improvement*: its predicted accuracy above
the best design already verified within the budget, times the probability that it meets the
budget(s). The blend is refitted after every measurement, so measurements near the budget
calibrate the prediction exactly where it matters. The search stops when no candidate's expected
improvement reaches ``min_gain``, when nothing better is left, or at ``max_measurements``; it
returns only a measured design within the budget (:func:`~fleetnas.proxy.verify.choose_design`).
A design the target cannot measure is skipped (and counted against ``max_measurements``, since
trying it may have cost device time).

This replaces the blind halving of Algorithm 1 once absolute predictions exist: a bisection step
halves an interval whatever the prediction says, while here the first measurement is already
expected to land near the budget.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import norm

from fleetnas.errors import InputError
from fleetnas.proxy.blend import ProxyBlend
from fleetnas.proxy.session import TargetSession
from fleetnas.proxy.verify import (
    Selection,
    TraceStep,
    check_budgets,
    choose_design,
    cost_mark,
    feasible_mask,
    spent_since,
)
from fleetnas.spaces import SearchSpace

#: ``check(archs m x D, values m x k) -> True`` when the search must stop (monotonicity failed).
Check = Callable[[np.ndarray, np.ndarray], bool]


def guided_search(
    space: SearchSpace,
    candidates: np.ndarray,
    accuracy: np.ndarray,
    accuracy_fn: Callable[[np.ndarray], np.ndarray],
    session: TargetSession,
    latency_blend: ProxyBlend,
    latency_budget: float,
    energy_blend: ProxyBlend | None = None,
    energy_budget: float | None = None,
    max_measurements: int = 7,
    min_gain: float = 0.0,
    check: Check | None = None,
    phase: str = "search",
    step0: int = 0,
    extend_to: int = 0,
    extend_gain: float = np.inf,
) -> tuple[Selection, str]:
    """Expected-improvement verification over ``candidates`` (``n x D``, predicted accuracies
    ``accuracy``); ``accuracy_fn`` scores measured designs that are not candidates (probes).
    Returns the selection over every design the session has measured, and why it stopped:
    ``"nothing left"``, ``"gain below min_gain"``, ``"measurement cap"``, ``"extended cap"`` or
    ``"monotonicity"``. ``extend_to`` > ``max_measurements``: past ``max_measurements`` the
    search goes on, up to ``extend_to``, while the best expected gain is at least
    ``extend_gain`` (the pool fits the target too poorly to stop there); the reason then
    starts with ``"extended"``.
    """
    check_budgets(latency_budget, energy_budget)
    use_e = energy_budget is not None
    if use_e and (energy_blend is None or "energy" not in session.metrics):
        raise InputError("an energy budget needs an energy blend and a session measuring energy")
    cand = space.check(candidates)
    acc = np.asarray(accuracy, dtype=float)
    if len(acc) != len(cand):
        raise InputError(f"{len(cand)} candidates but {len(acc)} accuracies")
    u_lat = latency_blend.log_pred(cand)
    u_en = energy_blend.log_pred(cand) if use_e and energy_blend is not None else None
    span = float(np.nanmax(acc) - np.nanmin(acc)) if len(acc) else 1.0
    floor = float(np.nanmin(acc)) - max(span, 1e-9)
    acc_memo: dict[bytes, float] = {}
    start = cost_mark(session)
    trace: list[TraceStep] = []
    spent = 0
    extended = False
    reason = "nothing left"
    while True:
        archs_m, vals_m = session.measured
        if len(archs_m):
            latency_blend.fit(archs_m, vals_m[:, 0])
            if use_e and energy_blend is not None:
                energy_blend.fit(archs_m, vals_m[:, 1])
        if check is not None and len(archs_m) and check(archs_m, vals_m):
            reason = "monotonicity"
            break
        acc_m = _acc(archs_m, accuracy_fn, acc_memo)
        ok_m = (
            feasible_mask(
                vals_m[:, 0], vals_m[:, 1] if use_e else None, latency_budget, energy_budget
            )
            if len(archs_m)
            else np.zeros(0, bool)
        )
        best = float(acc_m[ok_m].max()) if ok_m.any() else -np.inf
        known, _ = session.lookup(cand)
        open_ = ~known & (acc > best)
        if not open_.any():
            reason = "nothing left"
            break
        if spent >= max(max_measurements, extend_to):
            reason = "extended cap" if extended else "measurement cap"
            break
        idx = np.flatnonzero(open_)
        mu, sd = latency_blend.predict_log(u=u_lat[:, idx])
        p = norm.cdf((np.log(latency_budget) - mu) / sd)
        if use_e and energy_blend is not None and u_en is not None:
            mu_e, sd_e = energy_blend.predict_log(u=u_en[:, idx])
            p = p * norm.cdf((np.log(energy_budget) - mu_e) / sd_e)
        gain = acc[idx] - (best if np.isfinite(best) else floor)
        ei = gain * p
        j = int(np.argmax(ei))
        if np.isfinite(best) and ei[j] < min_gain:
            reason = "extended, then gain below min_gain" if extended else "gain below min_gain"
            break
        if spent >= max_measurements:
            if ei[j] < extend_gain:
                reason = (
                    "extended, then gain below the extension's" if extended else ("measurement cap")
                )
                break
            extended = True
        pick = int(idx[j])
        before = session.cost.measurements
        lat, en = session.measure_one(cand[pick])
        new = session.cost.measurements > before
        lost = not np.isfinite(lat)  # the device could not measure it: skipped, but it counts
        spent += int(new or lost)
        feas = lat <= latency_budget and (not use_e or (en is not None and en <= energy_budget))
        trace.append(
            TraceStep(
                step=step0 + len(trace) + 1,
                phase=phase,
                key=f"L'={np.exp(mu[j]):.4g}",
                value=float(np.exp(mu[j])),
                arch=space.format(cand[pick]),
                latency=lat,
                energy=en,
                predicted=float(np.exp(mu[j])),
                new=new,
                feasible=bool(feas),
                decision=f"expected gain {ei[j]:.3g} (P(meets budget) {p[j]:.2f}): "
                + (
                    "unmeasurable, skipped"
                    if lost
                    else "meets budget"
                    if feas
                    else "violates budget"
                ),
            )
        )
    archs_m, vals_m = session.measured
    acc_m = _acc(archs_m, accuracy_fn, acc_memo)
    k, status = choose_design(
        acc_m, vals_m[:, 0], vals_m[:, 1] if use_e else None, latency_budget, energy_budget
    )
    common = {"trace": trace, **spent_since(session, start)}
    if k < 0:
        return Selection(None, "infeasible", np.nan, None, np.nan, **common), reason
    hit = np.flatnonzero((cand == archs_m[k]).all(axis=1))
    sel = Selection(
        arch=archs_m[k].copy(),
        status=status,
        latency=float(vals_m[k, 0]),
        energy=float(vals_m[k, 1]) if vals_m.shape[1] > 1 else None,
        accuracy=float(acc_m[k]),
        index=int(hit[0]) if len(hit) else -1,
        **common,
    )
    return sel, reason


def _acc(archs: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], memo: dict) -> np.ndarray:
    keys = [a.tobytes() for a in archs]
    todo = [i for i, k in enumerate(keys) if k not in memo]
    if todo:
        vals = np.asarray(fn(archs[todo]), dtype=float).reshape(-1)
        for i, v in zip(todo, vals, strict=True):
            memo[keys[i]] = float(v)
    return np.array([memo[k] for k in keys], dtype=float)


__all__ = ["guided_search"]
