"""Latency plus energy budgets (Remark "Energy constraint", eq. 7).

Two searches, both returning only designs measured within *both* budgets:

- :func:`algorithm1_energy`: Algorithm 1 over ``t = (t1, t2)`` as two successive 1-D
  bisections. Phase 1 bisects ``t1`` with ``t2 = 0`` on the latency budget (eq. 7 reduces to
  eq. 6). If its design also meets the energy budget, energy does not bind and the search ends.
  Otherwise phase 2 keeps ``t1`` at the smallest value found feasible for latency and bisects
  ``t2`` in ``[0, 1 - t1]`` on both budgets: a violation of either moves ``t2`` up (more weight on
  energy, which also lowers latency), a design within both budgets by more than ``δ`` moves it
  down. Every measurement returns latency and energy, so the count is at most the sum of the
  two 1-D bisections.
- :func:`~fleetnas.proxy.front.front_variant` with an energy budget: bisection along the proxy's
  accuracy/latency/energy front, inferring feasibility in each metric from its own proxy order
  (each measurement halves the uncertain set of one metric, so again about the sum of two
  1-D bisections).

No public per-architecture energy data exists: these are evaluated on simulated devices
(:mod:`fleetnas.sim`) and on real meters (RAPL, NVML) where a local measurer offers ``energy``.
"""

from __future__ import annotations

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


def algorithm1_energy(
    problem: ProxyProblem,
    session: TargetSession,
    latency_budget: float,
    energy_budget: float,
    delta: float = 0.01,
    max_iterate: int = 10,
    phase: str = "search",
    step0: int = 0,
) -> Selection:
    """Two-phase bisection over ``(t1, t2)`` of eq. (7) (see the module docstring); ``delta`` is
    relative to each budget; ``max_iterate`` bounds each phase."""
    check_budgets(latency_budget, energy_budget)
    if problem.energy is None:
        raise InputError("eq. (7) needs the proxy's energy predictions")
    if "energy" not in session.metrics:
        raise InputError("an energy budget needs a session that measures energy")
    if not 0 < delta < 1 or int(max_iterate) < 1:
        raise InputError(
            f"need 0 < δ < 1 (relative) and Max_Iterate >= 1, got {delta}, {max_iterate}"
        )
    start = cost_mark(session)
    cache: dict[tuple[float, float], int] = {}
    tried: dict[int, tuple[float, float]] = {}
    trace: list[TraceStep] = []
    dl, de = delta * latency_budget, delta * energy_budget

    def step(t1: float, t2: float, ph: str) -> tuple[float, float]:
        key = (t1, t2)
        if key not in cache:
            cache[key] = int(problem.solve_t2(np.array([t1, t2])))
        x = cache[key]
        before = session.cost.measurements
        lat, en = session.measure_one(problem.archs[x])
        tried[x] = (lat, float(en))
        ok = lat <= latency_budget and en <= energy_budget
        trace.append(
            TraceStep(
                step=step0 + len(trace) + 1,
                phase=ph,
                key=f"(t1,t2)=({t1:.4g},{t2:.4g})",
                value=t2 if ph.endswith("t2") else t1,
                arch=problem.space.format(problem.archs[x]),
                latency=lat,
                energy=float(en),
                predicted=float(problem.latency[x]),
                new=session.cost.measurements > before,
                feasible=bool(ok),
                decision="",
            )
        )
        return lat, float(en)

    lo, hi = 0.0, 1.0
    t1_ok = None
    for _ in range(int(max_iterate)):
        t = (lo + hi) / 2
        lat, _ = step(t, 0.0, f"{phase}:t1")
        if lat >= latency_budget + dl:
            lo, trace[-1].decision = t, "latency >= L + δ: t1_min <- t1"
        elif lat <= latency_budget - dl:
            hi, trace[-1].decision = t, "latency <= L - δ: t1_max <- t1"
            t1_ok = t
        else:
            trace[-1].decision = "|latency - L| < δ: stop"
            if lat <= latency_budget:
                t1_ok = t
            break
    idx = np.array(list(tried))
    vals = np.array([tried[i] for i in idx])
    k, status = choose_design(
        problem.accuracy[idx], vals[:, 0], vals[:, 1], latency_budget, energy_budget
    )
    if status != "ok":
        t1 = hi if t1_ok is None else t1_ok
        lo, hi = 0.0, 1.0 - t1
        for _ in range(int(max_iterate)):
            t2 = (lo + hi) / 2
            lat, en = step(t1, t2, f"{phase}:t2")
            if lat > latency_budget or en > energy_budget:
                lo, trace[-1].decision = t2, "over a budget: t2_min <- t2"
            elif lat <= latency_budget - dl and en <= energy_budget - de:
                hi, trace[-1].decision = t2, "both within budget - δ: t2_max <- t2"
            else:
                trace[-1].decision = "within δ of a budget: stop"
                break
        idx = np.array(list(tried))
        vals = np.array([tried[i] for i in idx])
        k, status = choose_design(
            problem.accuracy[idx], vals[:, 0], vals[:, 1], latency_budget, energy_budget
        )
    c = int(idx[k])
    return Selection(
        arch=problem.archs[c].copy(),
        status=status,
        latency=float(vals[k, 0]),
        energy=float(vals[k, 1]),
        accuracy=float(problem.accuracy[c]),
        index=c,
        trace=trace,
        **spent_since(session, start),
    )


__all__ = ["algorithm1_energy"]
