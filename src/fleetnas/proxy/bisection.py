"""Algorithm 1 of the paper (DNN optimization on a new device), exactly as written, plus the
budget guarantee.

Bisection on ``t`` in ``[0, 1]``: ``t = (t_min + t_max) / 2``; if ``t`` was not considered
before, solve eq. (6) on the proxy and add ``(t, x*(t))`` to the cache ``T, X*``; measure
``x*(t)`` on the target; latency ``>= L + δ`` -> ``t_min = t`` (weigh latency more), ``<= L - δ``
-> ``t_max = t``, otherwise stop; at most ``Max_Iterate`` iterations; return ``x*(t)``.

The cache does not depend on the target or the budget (``x*(t)`` is a property of the proxy), so
one :class:`TCache` serves every budget and every target of a proxy. Each design is measured
once per session: an ``x*(t)`` seen before is answered from the session's memory.

As written, the algorithm may return a design within ``δ`` above the budget, or the last one
tried when ``Max_Iterate`` runs out. :func:`algorithm1` reports that design
(:attr:`Algorithm1Result.paper_index`) and, separately, the guaranteed choice: the most accurate
design measured within the budget (:func:`~fleetnas.proxy.verify.choose_design`). When the
algorithm stopped on a design within ``δ`` *above* the budget and nothing measured meets the
budget, the bisection continues from there (``t_min = t``) for the iterations left, traced as
phase ``guarantee``, so the stop rule does not turn a reachable budget into "infeasible".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fleetnas.errors import InputError
from fleetnas.proxy.problem import ProxyProblem
from fleetnas.proxy.session import TargetSession
from fleetnas.proxy.verify import (
    Selection,
    TraceStep,
    check_budgets,
    choose_design,
    cost_mark,
    spent_since,
)


class TCache:
    """The already considered ``T`` and their optimal designs ``X* = {x*(t)}`` (candidate
    indices of one :class:`ProxyProblem`); :attr:`solved` counts the solves of eq. (6)."""

    def __init__(self) -> None:
        self._x: dict[float, int] = {}
        self.solved = 0

    def __contains__(self, t: float) -> bool:
        return float(t) in self._x

    def __len__(self) -> int:
        return len(self._x)

    def get(self, problem: ProxyProblem, t: float) -> tuple[int, bool]:
        """``(x*(t), hit)``: from the cache, else solved now and cached."""
        key = float(t)
        if key in self._x:
            return self._x[key], True
        x = int(problem.solve_t(key))
        self._x[key] = x
        self.solved += 1
        return x, False

    def items(self) -> list[tuple[float, int]]:
        return sorted(self._x.items())


@dataclass
class Algorithm1Result:
    """``selection``: the guaranteed choice among the designs Algorithm 1 measured;
    ``paper_index``: the candidate index Algorithm 1 returns as written (``x*(t)`` of the last
    iteration); ``t``: that ``t``; ``iterations``: loop iterations run."""

    selection: Selection
    paper_index: int
    t: float
    iterations: int
    trace: list[TraceStep] = field(default_factory=list)


def algorithm1(
    problem: ProxyProblem,
    session: TargetSession,
    latency_budget: float,
    delta: float | None = None,
    max_iterate: int = 10,
    cache: TCache | None = None,
    phase: str = "search",
    step0: int = 0,
) -> Algorithm1Result:
    """Algorithm 1 with ``δ`` in the budget's units (default 1 % of the budget) on the proxy
    ``problem``; measurements through ``session`` (one per new design). See the module
    docstring for what is returned."""
    check_budgets(latency_budget)
    if delta is None:
        delta = 0.01 * latency_budget
    if not np.isfinite(delta) or delta <= 0:
        raise InputError(f"δ must be a positive number, got {delta!r}")
    if int(max_iterate) < 1:
        raise InputError(f"Max_Iterate must be >= 1, got {max_iterate!r}")
    cache = TCache() if cache is None else cache
    start = cost_mark(session)
    t_min, t_max = 0.0, 1.0
    t = 0.5
    tried: dict[int, float] = {}
    trace: list[TraceStep] = []
    paper_x, paper_t, paper_it = -1, t, 0
    it = 0
    ph = phase
    while it < int(max_iterate):
        it += 1
        t = (t_min + t_max) / 2
        x, hit = cache.get(problem, t)
        before = session.cost.measurements
        lat, _ = session.measure_one(problem.archs[x])
        tried[x] = lat
        stop = False
        over = lat >= latency_budget + delta if ph == phase else lat > latency_budget
        if not np.isfinite(lat):
            t_min, decision = t, "unmeasurable on the target: treated as over, t_min <- t"
        elif over:
            t_min, decision = t, f"latency {'>= L + δ' if ph == phase else '> L'}: t_min <- t"
        elif lat <= latency_budget - delta:
            t_max, decision = t, "latency <= L - δ: t_max <- t"
        else:
            decision, stop = "|latency - L| < δ: stop", True
        trace.append(
            TraceStep(
                step=step0 + it,
                phase=ph,
                key=f"t={t:.6g}",
                value=t,
                arch=problem.space.format(problem.archs[x]),
                latency=lat,
                predicted=float(problem.latency[x]),
                new=session.cost.measurements > before,
                feasible=bool(lat <= latency_budget),
                decision=decision + (" (x*(t) cached)" if hit else ""),
            )
        )
        if ph == phase:
            paper_x, paper_t, paper_it = x, t, it
        if stop:
            if ph != phase or any(v <= latency_budget for v in tried.values()):
                break
            ph, t_min = "guarantee", t
            trace[-1].decision += "; nothing measured meets the budget: continue"
    idx = np.array(list(tried), dtype=np.int64)
    lats = np.array([tried[i] for i in idx])
    k, status = choose_design(problem.accuracy[idx], lats, None, latency_budget)
    c = int(idx[k])
    sel = Selection(
        arch=problem.archs[c].copy(),
        status=status,
        latency=float(lats[k]),
        energy=None,
        accuracy=float(problem.accuracy[c]),
        index=c,
        trace=trace,
        **spent_since(session, start),
    )
    return Algorithm1Result(sel, paper_index=paper_x, t=paper_t, iterations=paper_it, trace=trace)


__all__ = ["Algorithm1Result", "TCache", "algorithm1"]
