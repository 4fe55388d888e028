"""The front variant of Approach 1: bisect along the proxy's Pareto front.

Eq. (5) with the proxy-latency bound ``L'`` as the search variable: for each ``L'`` its optimum
is the most accurate design with proxy latency ``<= L'``, i.e. a point of the proxy's
accuracy/latency Pareto front, and the front ordered by proxy latency is ordered by accuracy too.
Bisecting over the front's points therefore reaches *every* Pareto point, while the weighted sum
of eq. (6) only reaches the points on the front's convex hull: a point in a concave dent of the
front is never ``x*(t)`` for any ``t``. Under monotonicity the search needs
``ceil(log2(n + 1))`` measurements for a front of ``n`` designs; the budget guarantee of
:func:`~fleetnas.proxy.verify.verify_candidates` applies unchanged.
"""

from __future__ import annotations

import numpy as np

from fleetnas.proxy.problem import ProxyProblem
from fleetnas.proxy.session import TargetSession
from fleetnas.proxy.verify import Selection, verify_candidates


def front_variant(
    problem: ProxyProblem,
    session: TargetSession,
    latency_budget: float,
    energy_budget: float | None = None,
    max_measurements: int = 64,
    start: int | None = None,
    phase: str = "search",
    step0: int = 0,
) -> Selection:
    """Bisection along ``problem``'s front (the 3-metric front when ``energy_budget`` is given,
    with energy inferred from the proxy's energy); ``start`` is a position on that front.
    The returned :attr:`Selection.index` is a candidate index of ``problem``."""
    use_e = energy_budget is not None
    f = problem.front(with_energy=use_e)
    sel = verify_candidates(
        problem.space,
        problem.archs[f],
        session,
        latency_budget,
        energy_budget,
        accuracy=problem.accuracy[f],
        proxy_latency=problem.latency[f],
        proxy_energy=problem.energy[f] if use_e and problem.energy is not None else None,
        max_measurements=max_measurements,
        start=start,
        phase=phase,
        step0=step0,
        label="L'",
    )
    if sel.index >= 0:
        sel.index = int(f[sel.index])
    return sel


def front_start(problem: ProxyProblem, predicted_target_latency: np.ndarray, budget: float) -> int:
    """Position on ``problem``'s front of the most accurate design whose *predicted target*
    latency (``n`` values over the candidates, e.g. a calibrated proxy) meets ``budget``."""
    f = problem.front()
    ok = np.flatnonzero(np.asarray(predicted_target_latency)[f] <= budget)
    return int(ok[-1]) if len(ok) else 0


__all__ = ["front_start", "front_variant"]
