"""What Approach 1 reuses across the targets and budgets of one space (:class:`Workspace`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.proxy.bisection import TCache
from fleetnas.proxy.pool import ProxyPool
from fleetnas.proxy.problem import ProxyProblem
from fleetnas.search import MetricFn, pareto_front
from fleetnas.spaces import SearchSpace
from fleetnas.spaces.base import MAX_ENUMERABLE


class Workspace:
    """What Approach 1 reuses across targets and budgets of one space: the candidate designs
    with their predicted accuracy, each proxy's problem (eqs. 5-7) over them, and each proxy's
    Algorithm 1 cache of ``t -> x*(t)``.

    ``candidates``: ``n x D`` (default: the whole space when it can be enumerated, else the
    union of the designs :meth:`ProxyProblem.from_search` finds for every proxy of the pool).
    """

    def __init__(
        self,
        space: SearchSpace,
        accuracy: MetricFn,
        pool: ProxyPool,
        candidates: np.ndarray | None = None,
        seed: int = 0,
    ) -> None:
        if pool.space.name != space.name:
            raise InputError(f"pool of space {pool.space.name!r} used for space {space.name!r}")
        self.space = space
        self.accuracy_fn = accuracy
        self.pool = pool
        self.seed = seed
        if candidates is None:
            if space.size <= MAX_ENUMERABLE:
                candidates = space.enumerate()
            else:
                parts = [
                    ProxyProblem.from_search(space, accuracy, e.latency, seed=seed).archs
                    for e in pool.entries
                ]
                if not parts:
                    raise InputError("an empty pool cannot propose candidates for this space")
                candidates = np.unique(np.concatenate(parts), axis=0)
        self.candidates = space.check(candidates)
        self.accuracy = np.asarray(accuracy(self.candidates), dtype=float).reshape(-1)
        if len(self.accuracy) != len(self.candidates):
            raise InputError("the accuracy function must return one value per design")
        self._problems: dict[tuple[str, bool], ProxyProblem] = {}
        self._tcaches: dict[str, TCache] = {}
        self._fronts: dict[tuple[str, str], tuple[Any, np.ndarray]] = {}

    def problem(self, name: str, with_energy: bool = False) -> ProxyProblem:
        """Eqs. (5)-(7) on proxy ``name`` over the candidates (cached)."""
        key = (name, with_energy)
        if key not in self._problems:
            entry = self.pool.get(name)
            lat = np.exp(self.pool.log_prediction(name, self.candidates, "latency"))
            en = None
            if with_energy:
                if entry.energy is None:
                    raise InputError(f"proxy {name!r} has no energy predictor (eq. 7 needs one)")
                en = np.exp(self.pool.log_prediction(name, self.candidates, "energy"))
            self._problems[key] = ProxyProblem(
                self.space, self.candidates, self.accuracy, lat, en, name=name
            )
        return self._problems[key]

    def tcache(self, name: str) -> TCache:
        """Algorithm 1's ``T, X*`` of proxy ``name`` (shared by all targets and budgets)."""
        return self._tcaches.setdefault(name, TCache())

    def front_union(self, pool: ProxyPool, metric: str = "latency") -> np.ndarray:
        """Candidate indices on the accuracy/``metric`` front of at least one proxy of ``pool``
        (the guided search's candidates: near every budget some proxy's front holds a design
        at least as good as the target's own optimum, in practice)."""
        parts = []
        for entry in pool.entries:
            key = (entry.name, metric)
            hit = self._fronts.get(key)
            if hit is None or hit[0] is not entry:  # a front belongs to the entry it came from
                z = pool.log_prediction(entry.name, self.candidates, metric)
                hit = self._fronts[key] = (entry, pareto_front(self.accuracy, z))
            parts.append(hit[1])
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def forget(self, name: str) -> None:
        """Drop cached problems of proxy ``name`` (after it was re-registered)."""
        self._problems = {k: v for k, v in self._problems.items() if k[0] != name}
        self._fronts = {k: v for k, v in self._fronts.items() if k[0] != name}
        self._tcaches.pop(name, None)


__all__ = ["Workspace"]
