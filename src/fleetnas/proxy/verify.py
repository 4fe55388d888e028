"""Verified selection: the budget guarantee and bisection over an ordered candidate list.

Every search of Approach 1 ends the same way: among the designs *measured* on the target, return
the most accurate one whose measured latency (and energy) meets the budget; when none does, say
``infeasible`` and return the fastest measured design with its numbers (:func:`choose_design`).
A predicted value never decides feasibility, so no search returns a violation.

:func:`verify_candidates` is the reusable primitive behind the front variant, the 2-D energy
front and Approach 2's hybrid mode: given candidates ordered by predicted (proxy) latency, it
measures as few of them as it can to find the most accurate one that meets the budgets. Under
performance monotonicity (Sec. 4.2) feasibility is a prefix of the order in each metric, so a
measured feasible design makes every design predicted faster *known feasible* and a measured
violation makes every design predicted slower *known infeasible*; each step measures the median
of the still-uncertain candidates that would beat the best verified one, which is bisection
(``ceil(log2(n + 1))`` measurements for ``n`` candidates on a front). Contradictions (a design
predicted faster than a feasible one measured infeasible) shrink what is inferred, never what is
measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.errors import InputError

if TYPE_CHECKING:
    from fleetnas.proxy.session import TargetSession
    from fleetnas.spaces import SearchSpace

STATUSES = ("ok", "infeasible")


@dataclass
class TraceStep:
    """One step of a search on the target: what was tried and what was decided.

    ``key``: the search variable in words (``t=0.5``, ``L'=3.21``, ``(t1,t2)=...``, ``probe 3``);
    ``value``: that variable as a number where it is one; ``predicted``: the candidate's proxy (or
    calibrated) latency; ``latency``/``energy``: measured on the target; ``new``: whether the
    value was charged now (``False``: known from earlier in the session or from the store).
    """

    step: int
    phase: str
    key: str
    arch: str
    latency: float
    energy: float | None = None
    predicted: float | None = None
    value: float | None = None
    new: bool = True
    feasible: bool = True
    decision: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Selection:
    """Outcome of a verified search. ``arch`` is a ``D`` int array (``None`` only when nothing
    was measured); ``index`` its position in the candidate list (``-1`` if it is not one);
    ``latency``/``energy`` are *measured* values; ``accuracy`` the predicted accuracy used to
    rank; ``measurements`` the designs charged during the search."""

    arch: np.ndarray | None
    status: str
    latency: float
    energy: float | None
    accuracy: float
    index: int = -1
    trace: list[TraceStep] = field(default_factory=list)
    measurements: int = 0
    reused: int = 0
    device_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def cost_mark(session: TargetSession) -> tuple[int, int, float]:
    """The session's running cost now, so a search can report what it spent
    (:func:`spent_since`)."""
    c = session.cost
    return c.measurements, c.reused, c.device_seconds


def spent_since(session: TargetSession, mark: tuple[int, int, float]) -> dict[str, Any]:
    """``measurements``, ``reused`` and ``device_seconds`` charged to ``session`` since
    :func:`cost_mark` gave ``mark`` (the cost fields of :class:`Selection`)."""
    c = session.cost
    return {
        "measurements": c.measurements - mark[0],
        "reused": c.reused - mark[1],
        "device_seconds": c.device_seconds - mark[2],
    }


def check_budgets(latency_budget: float, energy_budget: float | None = None) -> None:
    """:class:`InputError` unless the budgets are positive finite numbers."""
    for name, b in (("latency", latency_budget), ("energy", energy_budget)):
        if b is None and name == "energy":
            continue
        if b is None or not np.isfinite(b) or b <= 0:
            raise InputError(f"the {name} budget must be a positive number, got {b!r}")


def feasible_mask(
    latency: np.ndarray,
    energy: np.ndarray | None,
    latency_budget: float,
    energy_budget: float | None,
) -> np.ndarray:
    """``n`` bool: measured values within the budgets."""
    ok = np.asarray(latency, dtype=float) <= latency_budget
    if energy_budget is not None:
        if energy is None:
            raise InputError("an energy budget needs measured energy values")
        ok &= np.asarray(energy, dtype=float) <= energy_budget
    return ok


def choose_design(
    accuracy: np.ndarray,
    latency: np.ndarray,
    energy: np.ndarray | None,
    latency_budget: float,
    energy_budget: float | None = None,
) -> tuple[int, str]:
    """The budget guarantee over measured designs: ``(index, "ok")`` of the most accurate one
    whose measured values meet the budgets (ties: lower latency, then lower energy, then first),
    else ``(index, "infeasible")`` of the fastest (ties: lower energy). ``(-1, "infeasible")``
    when nothing was measured."""
    lat = np.asarray(latency, dtype=float)
    if len(lat) == 0:
        return -1, "infeasible"
    acc = np.asarray(accuracy, dtype=float)
    en = np.zeros_like(lat) if energy is None else np.asarray(energy, dtype=float)
    ok = feasible_mask(lat, None if energy is None else en, latency_budget, energy_budget)
    order = np.arange(len(lat))
    if ok.any():
        i = np.lexsort((order, en, lat, -np.nan_to_num(acc, nan=-np.inf)))
        i = i[ok[i]][0]
        return int(i), "ok"
    return int(np.lexsort((order, en, lat))[0]), "infeasible"


def _bounds(pm: np.ndarray, measured: np.ndarray, ok: np.ndarray) -> tuple[float, float]:
    """``(largest proxy value measured feasible, smallest measured infeasible)`` in one metric."""
    feas = pm[measured & ok]
    bad = pm[measured & ~ok]
    return (feas.max() if len(feas) else -np.inf), (bad.min() if len(bad) else np.inf)


def verify_candidates(
    space: SearchSpace,
    candidates: np.ndarray,
    session: TargetSession,
    latency_budget: float,
    energy_budget: float | None = None,
    accuracy: np.ndarray | None = None,
    proxy_latency: np.ndarray | None = None,
    proxy_energy: np.ndarray | None = None,
    max_measurements: int = 10,
    start: int | None = None,
    phase: str = "search",
    step0: int = 0,
    label: str | None = None,
) -> Selection:
    """Measure few of ``candidates`` to find the most accurate one meeting the budgets.

    ``candidates``: ``n x D`` designs ordered by predicted latency ascending (a Pareto front is
    also ordered by accuracy). ``accuracy``: ``n`` predicted accuracies (default: the list order
    is the order of merit). ``proxy_latency``/``proxy_energy``: ``n`` predicted values on any
    monotone scale (proxy device, calibrated prediction); latency defaults to the list order,
    energy inference is off without it. ``session`` measures on the target and caches, so
    designs it already knows cost nothing. ``max_measurements`` caps the designs charged here;
    ``start`` is the first candidate to measure (e.g. the one a calibrated prediction puts just
    under the budget; default: the middle); from there the search gallops (steps 1, 2, 4, ...)
    away from it until the boundary is bracketed, then bisects. ``label`` names the proxy
    value in the trace (e.g. ``"L'"``; default: the candidate's position ``#i``). Returns a
    :class:`Selection` over the candidates (status ``ok`` only for a design measured within
    the budgets).
    """
    check_budgets(latency_budget, energy_budget)
    if energy_budget is not None and "energy" not in session.metrics:
        raise InputError("an energy budget needs a session that measures energy")
    cand = space.check(candidates)
    n = len(cand)
    if n == 0:
        raise InputError("verify_candidates needs at least one candidate")
    acc = np.arange(n, dtype=float) if accuracy is None else np.asarray(accuracy, float)
    pl = np.arange(n, dtype=float) if proxy_latency is None else np.asarray(proxy_latency, float)
    pe = None if proxy_energy is None else np.asarray(proxy_energy, float)
    if len(acc) != n or len(pl) != n or (pe is not None and len(pe) != n):
        raise InputError(f"verify_candidates: {n} candidates but metric arrays of other lengths")
    if max_measurements < 0:
        raise InputError(f"max_measurements must be >= 0, got {max_measurements}")
    use_e = energy_budget is not None
    lat = np.full(n, np.nan)
    en = np.full(n, np.nan)
    measured, vals = session.lookup(cand)  # what the session knows already costs nothing
    lost = measured & ~np.isfinite(vals[:, 0])  # unmeasurable on the target: skipped
    measured &= ~lost
    lat[measured] = vals[measured, 0]
    if vals.shape[1] > 1:
        en[measured] = vals[measured, 1]
    start_cost = cost_mark(session)
    trace: list[TraceStep] = []
    spent = 0
    first = start
    gallop = start is not None
    gallop_step = 0
    while True:
        ok_l = lat <= latency_budget
        ok_e = en <= energy_budget if use_e else np.ones(n, dtype=bool)
        ok = measured & ok_l & ok_e
        best_acc = acc[ok].max() if ok.any() else -np.inf
        fl, il = _bounds(pl, measured, ok_l)
        inf_l = (pl >= il) & (pl > fl)
        known_l = pl <= fl
        inf_e = np.zeros(n, dtype=bool)
        known_e = np.ones(n, dtype=bool)
        if use_e and pe is not None:
            fe, ie = _bounds(pe, measured, ok_e)
            inf_e = (pe >= ie) & (pe > fe)
            known_e = pe <= fe
        elif use_e:
            known_e = np.zeros(n, dtype=bool)
        open_ = ~measured & ~lost & (acc > best_acc) & ~inf_l & ~inf_e
        if not open_.any() or spent >= max_measurements:
            break
        idx = np.flatnonzero(open_)
        top = idx[np.lexsort((pl[idx], -acc[idx]))[0]]
        if first is not None and 0 <= first < n and open_[first]:
            pick, why = int(first), "start"
        elif known_l[top] and known_e[top]:
            pick, why = int(top), "verify the best design inferred feasible"
        else:
            unc_l = idx[~known_l[idx]]
            unc_e = idx[~known_e[idx]] if use_e else idx[:0]
            pool, metric = (
                (unc_e, pe)
                if len(unc_e) > len(unc_l) and pe is not None
                else (
                    unc_l,
                    pl,
                )
            )
            if len(pool) == 0:
                pool, metric = idx, pl
            order = pool[np.argsort(metric[pool], kind="stable")]
            has_ok, has_bad = bool(np.any(measured & ok_l)), bool(np.any(measured & ~ok_l))
            if gallop and has_ok != has_bad:
                g = min(2**gallop_step - 1, len(order) - 1)
                pick = int(order[g] if has_ok else order[len(order) - 1 - g])
                why = f"gallop {'up' if has_ok else 'down'} {g + 1}"
                gallop_step += 1
            else:
                pick, why = int(order[(len(order) - 1) // 2]), f"bisect {len(order)} uncertain"
        first = None
        before = session.cost.measurements
        li, ei = session.measure_one(cand[pick])
        new = session.cost.measurements > before
        if not np.isfinite(li):
            lost[pick] = True
            spent += 1  # trying it may have cost device time
            trace.append(
                TraceStep(
                    step=step0 + len(trace) + 1,
                    phase=phase,
                    key=f"{label}={pl[pick]:.4g}" if label else f"#{pick}",
                    value=float(pl[pick]),
                    arch=space.format(cand[pick]),
                    latency=float("nan"),
                    new=False,
                    feasible=False,
                    decision=f"{why}: unmeasurable on the device, skipped",
                )
            )
            continue
        spent += int(new)
        measured[pick] = True
        lat[pick] = li
        en[pick] = np.nan if ei is None else ei
        feas = li <= latency_budget and (not use_e or (ei is not None and ei <= energy_budget))
        trace.append(
            TraceStep(
                step=step0 + len(trace) + 1,
                phase=phase,
                key=f"{label}={pl[pick]:.4g}" if label else f"#{pick}",
                value=float(pl[pick]),
                arch=space.format(cand[pick]),
                latency=li,
                energy=ei,
                predicted=float(pl[pick]) if proxy_latency is not None else None,
                new=new,
                feasible=bool(feas),
                decision=f"{why}: " + ("meets budget" if feas else "violates budget"),
            )
        )
    return measured_selection(
        cand, measured, acc, lat, en if use_e else None, latency_budget, energy_budget, trace,
        session, start_cost,
    )  # fmt: skip


def measured_selection(
    cand: np.ndarray,
    measured: np.ndarray,
    acc: np.ndarray,
    lat: np.ndarray,
    en: np.ndarray | None,
    latency_budget: float,
    energy_budget: float | None,
    trace: list[TraceStep],
    session: TargetSession,
    mark: tuple[int, int, float],
) -> Selection:
    """The :class:`Selection` a verified search ends with: :func:`choose_design` over the
    ``measured`` candidates, with the trace and what the session was charged since ``mark``."""
    pos = np.flatnonzero(measured)
    i, status = choose_design(
        acc[pos], lat[pos], None if en is None else en[pos], latency_budget, energy_budget
    )
    if i < 0:
        return Selection(None, "infeasible", np.nan, None, np.nan, trace=trace)
    k = int(pos[i])
    return Selection(
        arch=cand[k].copy(),
        status=status,
        latency=float(lat[k]),
        energy=None if en is None or not np.isfinite(en[k]) else float(en[k]),
        accuracy=float(acc[k]),
        index=k,
        trace=trace,
        **spent_since(session, mark),
    )


__all__ = [
    "STATUSES",
    "Selection",
    "TraceStep",
    "check_budgets",
    "choose_design",
    "feasible_mask",
    "verify_candidates",
]
