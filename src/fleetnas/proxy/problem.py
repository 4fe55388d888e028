"""The design problem on a proxy device (eqs. 5-7) over a finite set of candidate designs.

Algorithm 1 "solves (6)" many times for different ``t``; the front variant walks the proxy's
Pareto front. Both only need the predicted accuracy and proxy latency (and energy) of a candidate
set: the whole space when it can be enumerated (NAS-Bench-201: every one of the 15,625 cells, so
``x*(t)`` is exact), otherwise the designs an evolutionary search visits while solving eq. (6)
on a grid of ``t`` (:meth:`ProxyProblem.from_search`). Metrics are evaluated once; each
``x*(t)`` is then an argmin over the cached front (:class:`~fleetnas.search.ExhaustiveSolver`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fleetnas.errors import InputError
from fleetnas.search import (
    EvolutionConfig,
    ExhaustiveSolver,
    MetricFn,
    Normalization,
    ProxyObjective,
    evolve,
)
from fleetnas.spaces import SearchSpace
from fleetnas.spaces.base import MAX_ENUMERABLE


class ProxyProblem:
    """Candidates (``n x D``) with predicted accuracy and proxy latency (and energy).

    ``norm``: the normalization of eqs. (6)-(7) (default: quantile scales over the candidates,
    which for an enumerated space is the space itself).
    """

    def __init__(
        self,
        space: SearchSpace,
        archs: np.ndarray,
        accuracy: np.ndarray,
        latency: np.ndarray,
        energy: np.ndarray | None = None,
        norm: Normalization | None = None,
        name: str = "proxy",
    ) -> None:
        self.space = space
        self.name = name
        self.archs = space.check(archs)
        self.solver = ExhaustiveSolver(self.archs, accuracy, latency, energy, norm)
        self.accuracy = self.solver.metrics.accuracy
        self.latency = self.solver.metrics.latency
        self.energy = self.solver.metrics.energy

    @classmethod
    def enumerate(
        cls,
        space: SearchSpace,
        accuracy: MetricFn | np.ndarray,
        latency: MetricFn | np.ndarray,
        energy: MetricFn | np.ndarray | None = None,
        name: str = "proxy",
    ) -> ProxyProblem:
        """Every design of an enumerable space; metrics are callables or ``size`` arrays in
        :meth:`SearchSpace.enumerate` order."""
        if space.size > MAX_ENUMERABLE:
            raise InputError(
                f"space {space.name!r} has {space.size:.3g} designs; use ProxyProblem.from_search"
            )
        archs = space.enumerate()

        def values(m: MetricFn | np.ndarray | None) -> np.ndarray | None:
            if m is None:
                return None
            return np.asarray(m(archs) if callable(m) else m, dtype=float)

        return cls(space, archs, values(accuracy), values(latency), values(energy), name=name)

    @classmethod
    def from_search(
        cls,
        space: SearchSpace,
        accuracy: MetricFn,
        latency: MetricFn,
        energy: MetricFn | None = None,
        ts: Sequence[float] = (0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95),
        config: EvolutionConfig | None = None,
        seed: int = 0,
        name: str = "proxy",
    ) -> ProxyProblem:
        """Candidates of a space too large to enumerate: the Pareto fronts of the designs that
        :func:`~fleetnas.search.evolve` evaluates while solving eq. (6) at each ``t`` in ``ts``
        (eq. 7 with ``t2 = t1`` when ``energy`` is given), pooled and de-duplicated."""
        norm = Normalization.fit(space, accuracy, latency, energy, seed=seed)
        cfg = config or EvolutionConfig(population=64, children=128, generations=40)
        parts = []
        for k, t in enumerate(ts):
            tt: float | tuple[float, float] = float(t)
            if energy is not None:
                tt = (float(t) / 2, float(t) / 2)
            obj = ProxyObjective(accuracy, latency, energy, norm=norm, t=tt)
            res = evolve(space, obj, cfg, seed=seed + k)
            parts.append(res.front)
        archs = np.unique(np.concatenate(parts), axis=0)
        e = None if energy is None else np.asarray(energy(archs), dtype=float)
        return cls(
            space,
            archs,
            np.asarray(accuracy(archs), dtype=float),
            np.asarray(latency(archs), dtype=float),
            e,
            norm=norm,
            name=name,
        )

    def __len__(self) -> int:
        return len(self.archs)

    @property
    def norm(self) -> Normalization:
        return self.solver.norm

    def solve_t(self, t: float | np.ndarray) -> np.ndarray:
        """Eq. (6): candidate index of ``x*(t)`` for a scalar or an array of ``t``."""
        return self.solver.solve_proxy(t)

    def solve_t2(self, t: np.ndarray) -> np.ndarray:
        """Eq. (7): candidate index of ``x*(t1, t2)`` (``2`` or ``m x 2``)."""
        return self.solver.solve_proxy_energy(t)

    def front(self, with_energy: bool = False) -> np.ndarray:
        """Candidate indices of the proxy's Pareto front by proxy latency ascending."""
        return self.solver.front(with_energy=with_energy)


__all__ = ["ProxyProblem"]
