"""Budget decisions on one target's predictions, for ``predict_heldout.py``: the network alone's
rule (the most accurate design whose safe bound meets the budget) and two hybrids that verify
that proposal on the target with the library's own verifications, the target's table as its
measurer: bisection (:func:`fleetnas.proxy.verify_candidates` over
:func:`fleetnas.l2o.budget.candidate_list`) and expected improvement under the calibrated
interval (:func:`fleetnas.proxy.verify_by_improvement`).

Regret = best true accuracy among the designs whose true latency meets the budget minus the
true accuracy of the returned design; a returned design over budget is a violation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fleetnas.l2o.budget import candidate_list
from fleetnas.proxy import ReplaySession, verify_by_improvement, verify_candidates
from fleetnas.spaces import SearchSpace

#: Budgets at these quantiles of the target's true latency.
BUDGET_Q = (10, 30, 50, 70, 90)
#: Hybrid: real measurements per budget at most, and candidates handed to the verification.
HYBRID_MEASUREMENTS = 3
HYBRID_CANDIDATES = 7
#: Hybrid proposal windows tried on leave-hardware-out: designs predicted at most this many
#: margins (``log(bound / mean)``) under the budget enter the candidate list (an exhaustive
#: search proposes the whole space; the optimizer network's proposals lie near the budget).
HYBRID_WINDOWS = (1.0, 2.0, 4.0, float("inf"))
#: Prior weights of "no local correction" of the expected-improvement hybrid tried on LHO.
IMPROVEMENT_SHIFTS = (0.0, 1.0, 3.0)


def budgets(y: np.ndarray) -> list[tuple[int, float]]:
    ok = np.isfinite(y)
    return [(q, float(np.percentile(y[ok], q))) for q in BUDGET_Q]


def _true_best(acc: np.ndarray, y: np.ndarray, b: float) -> float:
    ok = np.isfinite(y)
    return float(acc[ok & (y <= b)].max())


def budget_rule(
    acc: np.ndarray, y: np.ndarray, bound: np.ndarray, p_exceed: np.ndarray | None = None
) -> dict[str, Any]:
    """Network alone's decision rule on predicted bounds: per budget quantile, violation and
    regret of the most accurate design whose bound meets the budget (and its claimed
    probability of violating it, when given)."""
    ok_y = np.isfinite(y)
    out = []
    for q, b in budgets(y):
        feas = ok_y & (bound <= b)
        if not feas.any():
            out.append({"q": q, "found": False, "violation": False, "regret": None})
            continue
        i = int(np.argmax(np.where(feas, acc, -np.inf)))
        row = {
            "q": q,
            "found": True,
            "violation": bool(y[i] > b),
            "regret": max(0.0, _true_best(acc, y, b) - float(acc[i])),
        }
        if p_exceed is not None:
            row["p_violation"] = float(p_exceed[i])
        out.append(row)
    return {"per_budget": out}


def hybrid_rule(
    space: SearchSpace,
    archs: np.ndarray,
    acc: np.ndarray,
    y: np.ndarray,
    mean: np.ndarray,
    bound: np.ndarray,
    device: str,
    window: float = float("inf"),
    max_measurements: int = HYBRID_MEASUREMENTS,
    n_candidates: int = HYBRID_CANDIDATES,
) -> dict[str, Any]:
    """The hybrid per budget quantile: the predicted Pareto set of the designs the target has
    a value for, ``candidate_list`` around the network alone's proposal (the most accurate one
    whose safe ``bound`` meets the budget) among those predicted at most ``window`` margins
    under the budget, then ``verify_candidates`` measuring at most
    ``max_measurements`` of them on a fresh replay of the target's table. Only a design
    *measured* within the budget is returned; none is "not found", never a violation."""
    ok_y = np.isfinite(y)
    margin = np.log(bound / mean)
    out = []
    for q, b in budgets(y):
        ok = np.flatnonzero(ok_y & (np.log(mean) >= np.log(b) - window * margin))
        if len(ok) == 0:
            ok = np.flatnonzero(ok_y)
        idx, start = candidate_list(acc[ok], mean[ok], bound[ok], b, n_candidates)
        rows = ok[idx]
        session = ReplaySession(space, device, y, archs=archs)
        sel = verify_candidates(
            space, archs[rows], session, b, accuracy=acc[rows], proxy_latency=mean[rows],
            max_measurements=max_measurements, start=start, phase="hybrid",
        )  # fmt: skip
        out.append(_decision(q, b, acc, y, session, rows, sel))
    return {"per_budget": out}


def improvement_rule(
    space: SearchSpace,
    archs: np.ndarray,
    acc: np.ndarray,
    y: np.ndarray,
    mean: np.ndarray,
    bound: np.ndarray,
    scale: np.ndarray,
    score_cdf: Callable[[np.ndarray], np.ndarray],
    device: str,
    shift: float,
    max_measurements: int = HYBRID_MEASUREMENTS,
) -> dict[str, Any]:
    """The expected-improvement hybrid per budget quantile: the network alone's proposal first
    (the most accurate design whose safe ``bound`` meets the budget), then
    ``verify_by_improvement`` over every design the target has a value for (``scale`` and
    ``score_cdf``: the calibrated interval), at most ``max_measurements`` on a fresh replay."""
    ok = np.flatnonzero(np.isfinite(y))
    out = []
    for q, b in budgets(y):
        safe = ok[bound[ok] <= b]
        start = int(np.argmax(np.where(bound[ok] <= b, acc[ok], -np.inf))) if len(safe) else None
        session = ReplaySession(space, device, y, archs=archs)
        sel = verify_by_improvement(
            space, archs[ok], session, b, acc[ok], mean[ok], scale[ok], score_cdf,
            max_measurements=max_measurements, start=start, shift=shift,
        )  # fmt: skip
        out.append(_decision(q, b, acc, y, session, ok, sel))
    return {"per_budget": out}


def _decision(
    q: int, b: float, acc: np.ndarray, y: np.ndarray, session: Any, rows: np.ndarray, sel: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {"q": q, "measurements": int(session.n_new), "found": bool(sel.ok)}
    if sel.ok:
        i = int(rows[sel.index])
        row |= {
            "violation": bool(y[i] > b),
            "regret": max(0.0, _true_best(acc, y, b) - float(acc[i])),
        }
    else:
        row |= {"violation": False, "regret": None}
    return row


def summarize_rule(per_budget: list[dict[str, Any]]) -> dict[str, Any]:
    """Tasks, violation share, not found, mean regret, regret at the tightest budget and
    (where recorded) the mean claimed violation probability and extra measurements."""
    reg = [b["regret"] for b in per_budget if b["regret"] is not None]
    q10 = [b["regret"] for b in per_budget if b["q"] == BUDGET_Q[0] and b["regret"] is not None]
    out: dict[str, Any] = {
        "tasks": len(per_budget),
        "violations": float(np.mean([b["violation"] for b in per_budget])),
        "not_found": int(sum(not b["found"] for b in per_budget)),
        "regret_mean": float(np.mean(reg)) if reg else None,
        "regret_q10": float(np.mean(q10)) if q10 else None,
        "regret_max": float(np.max(reg)) if reg else None,
    }
    pv = [b["p_violation"] for b in per_budget if "p_violation" in b]
    if pv:
        out["claimed_p_violation_mean"] = float(np.mean(pv))
    ms = [b["measurements"] for b in per_budget if "measurements" in b]
    if ms:
        out["measurements_mean"] = float(np.mean(ms))
        out["measurements_max"] = int(np.max(ms))
    return out


__all__ = [
    "BUDGET_Q",
    "HYBRID_WINDOWS",
    "IMPROVEMENT_SHIFTS",
    "budget_rule",
    "budgets",
    "hybrid_rule",
    "improvement_rule",
    "summarize_rule",
]
