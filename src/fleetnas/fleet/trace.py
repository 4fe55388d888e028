"""Trace assembly: the plan format's ``trace`` steps of an entry (probes, the hybrid's verified
proposals, Approach 1's bisection) and the small numeric helpers entries share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fleetnas.spaces import SearchSpace


def p_within(mean: float, std: float, budget: float | None) -> float:
    """Probability that a log-normal latency with this mean and spread meets ``budget``."""
    from scipy.stats import norm

    if budget is None or not (np.isfinite(mean) and mean > 0):
        return 0.0
    sigma = float(std) / float(mean) if np.isfinite(std) and std > 0 else 1e-9
    return float(norm.cdf(np.log(budget / mean) / sigma))


def probe_trace(designs: Sequence[str], values: np.ndarray) -> list[dict[str, Any]]:
    return [
        {
            "step": k + 1,
            "phase": "probe",
            "t": None,
            "proxy_latency": None,
            "design": d,
            "measured_latency_ms": num(v),
            "decision": "probe for the optimizer's device features",
        }
        for k, (d, v) in enumerate(zip(designs, values, strict=True))
    ]


def hybrid_trace(
    space: SearchSpace,
    new: Sequence[np.ndarray],
    session: Any,
    opt: Any,
    devset: Any,
    budget: float,
    step0: int,
) -> list[dict[str, Any]]:
    if not new:
        return []
    a = np.stack(new)
    pred = opt.objective.metrics(a, devset.take(np.zeros(len(a), dtype=int)))["latency"]
    out = []
    for k, arch in enumerate(a):
        lat = session.known(arch)[0]
        out.append(
            {
                "step": step0 + k + 1,
                "phase": "l2o-hybrid",
                "t": None,
                "proxy_latency": num(pred[k]),
                "design": space.format(arch),
                "measured_latency_ms": num(lat),
                "decision": "meets budget" if lat <= budget else "violates budget",
            }
        )
    return out


def num(x: Any) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def approach1_trace(steps: Sequence[Any], step0: int = 0) -> list[dict[str, Any]]:
    """Approach 1 trace steps in the plan format's trace shape, numbered after ``step0``."""
    out = []
    for s in steps:
        out.append(
            {
                "step": step0 + s.step,
                "phase": s.phase,
                "t": num(s.value) if s.key.startswith("t=") else None,
                "key": s.key,
                "proxy_latency": num(s.predicted),
                "design": s.arch,
                "measured_latency_ms": num(s.latency),
                "measured_energy_mj": num(s.energy),
                "new": bool(s.new),
                "feasible": bool(s.feasible),
                "decision": s.decision,
            }
        )
    return out


__all__ = ["approach1_trace", "hybrid_trace", "num", "p_within", "probe_trace"]
