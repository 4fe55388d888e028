"""Exact search for spaces that can be enumerated (NAS-Bench-201: 15,625 cells).

:class:`ExhaustiveSolver` evaluates every design once and then answers many objectives by
vectorized argmin: eq. (6) for a vector of ``t`` (Approach 1's bisection), eq. (7) for ``(t1, t2)``
pairs, eq. (4)/(8) for many ``λ`` (Method 1's labels) and eqs. (1)-(3) for many budgets.

Every linear objective with non-negative weights attains its minimum on the Pareto front, so the
solver scores only the (precomputed) front. Ties are broken the same way everywhere: lowest
score, then lowest latency, then highest accuracy, then lowest energy, then lowest index -- the
front is stored in exactly that order and the first minimum is taken.
"""

from __future__ import annotations

import time

import numpy as np

from fleetnas.errors import InputError
from fleetnas.search.objectives import (
    MetricFn,
    Metrics,
    Normalization,
    Objective,
    check_t,
    check_t_pair,
)
from fleetnas.search.pareto import BudgetIndex, pareto_front
from fleetnas.search.results import SearchResult
from fleetnas.spaces.base import SearchSpace

_CHUNK = 1 << 22  # elements per temporary score matrix


class ExhaustiveSolver:
    """Cached metrics of all designs of a space; many objectives solved without re-evaluation.

    ``archs``: ``n x D`` int array; ``accuracy``, ``latency``, ``energy``: ``n`` float arrays
    (raw units); ``norm`` defaults to quantile scales over these ``n`` designs (the reference
    set of an enumerable space is the space itself).
    """

    def __init__(
        self,
        archs: np.ndarray,
        accuracy: np.ndarray,
        latency: np.ndarray,
        energy: np.ndarray | None = None,
        norm: Normalization | None = None,
    ) -> None:
        self.archs = np.asarray(archs, dtype=np.int64)
        acc = np.asarray(accuracy, dtype=float).reshape(-1)
        lat = np.asarray(latency, dtype=float).reshape(-1)
        e = None if energy is None else np.asarray(energy, dtype=float).reshape(-1)
        n = self.archs.shape[0]
        if acc.shape[0] != n or lat.shape[0] != n or (e is not None and e.shape[0] != n):
            raise InputError(
                f"exhaustive solver: {n} designs but metric arrays of lengths "
                f"{acc.shape[0]}, {lat.shape[0]}" + ("" if e is None else f", {e.shape[0]}")
            )
        self.metrics = Metrics(acc, lat, e)
        self.norm = norm or Normalization.from_samples(acc, lat, e)
        if e is not None and self.norm.energy is None:
            raise InputError("energy values given but the normalization has no energy scale")
        self.acc_n = self.norm.accuracy.apply(acc)
        self.lat_n = self.norm.latency.apply(lat)
        self.energy_n = None if e is None else self.norm.energy.apply(e)  # type: ignore[union-attr]
        #: indices of the accuracy/latency front, by latency ascending
        self.front2 = pareto_front(acc, lat)
        #: indices of the accuracy/latency/energy front (``front2`` when there is no energy)
        self.front3 = self.front2 if e is None else pareto_front(acc, lat, e)
        self._budgets = BudgetIndex(acc, lat)

    @classmethod
    def from_space(
        cls,
        space: SearchSpace,
        accuracy: MetricFn,
        latency: MetricFn,
        energy: MetricFn | None = None,
        norm: Normalization | None = None,
        canonical: bool = False,
    ) -> ExhaustiveSolver:
        """Enumerate ``space`` (all index vectors, or one per canonical form if ``canonical``)
        and evaluate each metric with one batched call."""
        archs = space.enumerate()
        if canonical:
            archs = np.unique(space.canonicalize(archs), axis=0)
        acc = np.asarray(accuracy(archs), dtype=float)
        lat = np.asarray(latency(archs), dtype=float)
        e = None if energy is None else np.asarray(energy(archs), dtype=float)
        return cls(archs, acc, lat, e, norm)

    def __len__(self) -> int:
        return self.archs.shape[0]

    # ---- solvers ---------------------------------------------------------------------------
    def solve_proxy(self, t: float | np.ndarray) -> np.ndarray:
        """Eq. (6) for each ``t`` (scalar or ``m`` array): index of the optimal design."""
        tt = check_t(t)
        w = np.stack([1.0 - tt.reshape(-1), tt.reshape(-1)], axis=1)
        return self._argmin_linear(self.front2, w, energy=False).reshape(tt.shape)

    def solve_proxy_energy(self, t: np.ndarray) -> np.ndarray:
        """Eq. (7) for ``(t1, t2)`` pairs (``2`` or ``m x 2``): index of the optimal design."""
        self._need_energy()
        tt = check_t_pair(t)
        p = tt.reshape(-1, 2)
        w = np.stack([1.0 - p[:, 0] - p[:, 1], p[:, 0], p[:, 1]], axis=1)
        out = self._argmin_linear(self.front3, w, energy=True)
        return out.reshape(tt.shape[:-1])

    def solve_weighted(self, lam: np.ndarray) -> np.ndarray:
        """Eq. (4)/(8) for ``λ = (λ1 energy, λ2 latency)`` (``2`` or ``m x 2``, non-negative)."""
        lam_a = np.asarray(lam, dtype=float)
        if lam_a.shape[-1:] != (2,) or lam_a.ndim > 2:
            raise InputError(f"λ must have shape (2,) or (m, 2), got {lam_a.shape}")
        if not np.all(np.isfinite(lam_a)) or np.any(lam_a < 0):
            raise InputError(f"λ must be finite and non-negative, got {lam_a}")
        p = lam_a.reshape(-1, 2)
        if self.energy_n is None:
            if np.any(p[:, 0] > 0):
                raise InputError("λ1 (energy) > 0 but the solver has no energy values")
            w = np.stack([np.ones(len(p)), p[:, 1]], axis=1)
            out = self._argmin_linear(self.front2, w, energy=False)
        else:
            w = np.stack([np.ones(len(p)), p[:, 1], p[:, 0]], axis=1)
            out = self._argmin_linear(self.front3, w, energy=True)
        return out.reshape(lam_a.shape[:-1])

    def solve_constrained(
        self, latency_budget: float | np.ndarray, energy_budget: float | np.ndarray | None = None
    ) -> np.ndarray:
        """Eqs. (1)-(3) for one or many budgets: index of the most accurate feasible design
        (``-1`` where none is feasible). Latency-only budgets use prefix maxima over the latency
        order; with energy budgets each ``(L, E)`` pair is checked on the 3-metric front."""
        lb = np.asarray(latency_budget, dtype=float)
        if energy_budget is None:
            return self._budgets.query(lb)
        self._need_energy()
        lb, eb = np.broadcast_arrays(lb, np.asarray(energy_budget, dtype=float))
        f = self.front3
        acc = self.metrics.accuracy[f]
        lat, en = self.metrics.latency[f], self.metrics.energy[f]  # type: ignore[index]
        flat_l, flat_e = lb.reshape(-1), eb.reshape(-1)
        out = np.full(flat_l.shape[0], -1, dtype=np.int64)
        step = max(1, _CHUNK // max(len(f), 1))
        for s in range(0, len(flat_l), step):
            ok = (lat[None, :] <= flat_l[s : s + step, None]) & (
                en[None, :] <= flat_e[s : s + step, None]
            )
            masked = np.where(ok, acc[None, :], -np.inf)
            j = masked.argmax(axis=1)
            any_ok = ok.any(axis=1)
            out[s : s + step] = np.where(any_ok, f[j] if len(f) else -1, -1)
        return out.reshape(lb.shape)

    def solve(self, objective: Objective) -> int:
        """Index of the design minimizing any :class:`Objective` over the cached metrics."""
        score = objective.score_metrics(self.metrics)
        return int(np.argmin(score))

    def _argmin_linear(self, front: np.ndarray, w: np.ndarray, energy: bool) -> np.ndarray:
        """Per row of ``w`` (``-acc'``, ``lat'``, [``energy'``] weights): argmin on ``front``."""
        out = np.empty(len(w), dtype=np.int64)
        if len(front) == 0:
            raise InputError("no design has finite metrics")
        a = self.acc_n[front]
        lat = self.lat_n[front]
        e = self.energy_n[front] if energy else None  # type: ignore[index]
        step = max(1, _CHUNK // len(front))
        for s in range(0, len(w), step):
            ws = w[s : s + step]
            sc = -ws[:, 0:1] * a[None, :] + ws[:, 1:2] * lat[None, :]
            if e is not None:
                sc += ws[:, 2:3] * e[None, :]
            out[s : s + step] = front[np.argmin(sc, axis=1)]
        return out

    def _need_energy(self) -> None:
        if self.energy_n is None:
            raise InputError(
                "this solver has no energy values (eq. 7 and energy budgets need them)"
            )

    # ---- results ---------------------------------------------------------------------------
    def front(
        self,
        latency_budget: float | None = None,
        energy_budget: float | None = None,
        with_energy: bool = False,
    ) -> np.ndarray:
        """Indices of the (feasible-only under budgets) Pareto front, by latency ascending."""
        m = self.metrics
        if (with_energy or energy_budget is not None) and m.energy is None:
            self._need_energy()
        if latency_budget is None and energy_budget is None:
            return self.front3 if with_energy else self.front2
        e = m.energy if (with_energy or energy_budget is not None) else None
        return pareto_front(m.accuracy, m.latency, e, latency_budget, energy_budget)

    def result(
        self,
        index: int,
        score: float = float("nan"),
        method: str = "exhaustive",
        feasible: bool = True,
        wall_time_s: float = 0.0,
        front: np.ndarray | None = None,
    ) -> SearchResult:
        """A :class:`SearchResult` for design ``index`` (``front`` defaults to :attr:`front2`)."""
        f = self.front2 if front is None else front
        return SearchResult(
            method=method,
            best=self.archs[index].copy(),
            score=float(score),
            metrics=self.metrics.row(index),
            feasible=feasible,
            evaluations=len(self),
            wall_time_s=wall_time_s,
            front=self.archs[f],
            front_metrics=self.metrics.take(f),
        )


def exhaustive_search(
    space: SearchSpace, objective: Objective, canonical: bool = False
) -> SearchResult:
    """Score every design of ``space`` with one batched call per metric; return the optimum.

    The result's front is the Pareto front of the evaluated designs, restricted to feasible ones
    when the objective has budgets.
    """
    t0 = time.perf_counter()
    archs = space.enumerate()
    if canonical:
        archs = np.unique(space.canonicalize(archs), axis=0)
    m = objective.evaluate(archs)
    score = objective.score_metrics(m)
    i = int(np.argmin(score))
    ok = objective.feasible(m)
    wall = time.perf_counter() - t0
    front = _front_of(m, ok)
    return SearchResult(
        method="exhaustive",
        best=archs[i].copy(),
        score=float(score[i]),
        metrics=m.row(i),
        feasible=bool(ok[i]),
        evaluations=int(np.isfinite(m.accuracy).sum()) if m.accuracy is not None else len(archs),
        wall_time_s=wall,
        front=archs[front],
        front_metrics=m.take(front),
        calls=dict(objective.calls),
    )


def _front_of(m: Metrics, feasible: np.ndarray) -> np.ndarray:
    if m.accuracy is None or m.latency is None:
        return np.zeros(0, dtype=np.int64)
    acc = np.where(feasible, m.accuracy, np.nan)
    return pareto_front(acc, m.latency, m.energy)
