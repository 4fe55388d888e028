"""Our re-implementation of Once-for-All's published evolutionary search, as a baseline.

It follows the algorithm of ``ofa/nas/search_algorithm/evolution.py`` in the public
once-for-all repository (read, not copied) with its published settings: population 100, 500
generations, mutation probability 0.1 per layer (kernel size and expansion of a layer resampled
together) and per stage depth, 0.5 for the resolution, mutation ratio 0.5, parent ratio 0.25.
The latency constraint is enforced by rejection sampling (a child is redrawn until its latency
fits) and the work is done at OFA's granularity: designs are Python lists, each candidate's
latency is one call of the latency function on a single design, and the accuracy function is
called once per generation on the 100 new children. Inactive layers keep their values, as in
OFA. The best design is the best parent seen at the start of a generation, as OFA reports it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.search.evolution import Domain
from fleetnas.search.objectives import MetricFn
from fleetnas.search.results import HistoryPoint, SearchResult
from fleetnas.spaces.base import SearchSpace


@dataclass
class OFAEvolutionConfig:
    """OFA's published evolution settings (``EvolutionFinder`` defaults)."""

    population_size: int = 100
    max_time_budget: int = 500
    arch_mutate_prob: float = 0.1
    resolution_mutate_prob: float = 0.5
    parent_ratio: float = 0.25
    mutation_ratio: float = 0.5
    max_rejections: int = 1_000_000


def ofa_mutation_groups(space: SearchSpace) -> list[tuple[list[int], bool]]:
    """Decision groups resampled together, and whether each is the resolution.

    OFA-MobileNetV3 (decisions ``ks_i``, ``e_i``, ``d_s``, ``r``): ``[ks_i, e_i]`` per layer,
    ``[d_s]`` per stage, ``[r]``; any other space: one group per decision, a decision named ``r``
    or ``resolution`` being the resolution.
    """
    names = [d.name for d in space.decisions]
    col = {n: j for j, n in enumerate(names)}
    groups: list[tuple[list[int], bool]] = []
    used: set[int] = set()
    for j, n in enumerate(names):
        if n.startswith("ks_") and f"e_{n[3:]}" in col:
            groups.append(([j, col[f"e_{n[3:]}"]], False))
            used.update(groups[-1][0])
    for j, n in enumerate(names):
        if j not in used and n not in ("r", "resolution"):
            groups.append(([j], False))
    for j, n in enumerate(names):
        if n in ("r", "resolution"):
            groups.append(([j], True))
    return groups


def ofa_evolution(
    space: SearchSpace,
    accuracy: MetricFn,
    latency: MetricFn,
    latency_budget: float,
    config: OFAEvolutionConfig | None = None,
    seed: int | None = None,
    allowed: Mapping[str, Sequence[Any]] | None = None,
    on_generation: Callable[[HistoryPoint], bool | None] | None = None,
) -> SearchResult:
    """OFA's evolution (see the module docstring) maximizing ``accuracy`` s.t.
    ``latency <= latency_budget``. ``allowed`` restricts choices as in :class:`Domain`
    (OFA's tutorial searches resolutions 160..224 step 16)."""
    cfg = config or OFAEvolutionConfig()
    if cfg.population_size < 1 or cfg.max_time_budget < 0:
        raise InputError("OFA evolution needs population_size >= 1 and max_time_budget >= 0")
    rnd = random.Random(seed)
    dom = Domain(space, allowed)
    choices = [dom.table[j, : dom.k[j]].tolist() for j in range(space.n_decisions)]
    groups = [
        (cols, cfg.resolution_mutate_prob if is_r else cfg.arch_mutate_prob)
        for cols, is_r in ofa_mutation_groups(space)
    ]
    calls = {"accuracy": 0, "latency": 0}
    t0 = time.perf_counter()

    def lat_of(sample: list[int]) -> float:
        calls["latency"] += 1
        return float(np.asarray(latency(np.array([sample], dtype=np.int64))).reshape(-1)[0])

    def acc_of(samples: list[list[int]]) -> list[float]:
        calls["accuracy"] += len(samples)
        return np.asarray(accuracy(np.array(samples, dtype=np.int64)), float).reshape(-1).tolist()

    def valid(make: Callable[[], list[int]]) -> tuple[list[int], float]:
        for _ in range(cfg.max_rejections):
            s = make()
            e = lat_of(s)
            if e <= latency_budget:
                return s, e
        raise InputError(
            f"OFA evolution: no design with latency <= {latency_budget} after "
            f"{cfg.max_rejections} draws; the budget is too tight"
        )

    def random_sample() -> list[int]:
        return [rnd.choice(c) for c in choices]

    def mutated(parent: list[int]) -> Callable[[], list[int]]:
        def make() -> list[int]:
            s = list(parent)
            for cols, p in groups:
                if rnd.random() < p:
                    for j in cols:
                        s[j] = rnd.choice(choices[j])
            return s

        return make

    def crossed(p1: list[int], p2: list[int]) -> Callable[[], list[int]]:
        def make() -> list[int]:
            return [rnd.choice((x, y)) for x, y in zip(p1, p2, strict=True)]

        return make

    n_pop = cfg.population_size
    n_mut = round(cfg.mutation_ratio * n_pop)
    n_par = max(1, round(cfg.parent_ratio * n_pop))
    history: list[HistoryPoint] = []

    children, lats = zip(*(valid(random_sample) for _ in range(n_pop)), strict=True)
    accs = acc_of(list(children))
    population = list(zip(accs, children, lats, strict=True))
    best_acc, best = -np.inf, population[0]
    for gen in range(cfg.max_time_budget):
        parents = sorted(population, key=lambda x: x[0], reverse=True)[:n_par]
        if parents[0][0] > best_acc:
            best_acc, best = parents[0][0], parents[0]
        point = HistoryPoint(
            step=gen,
            elapsed_s=time.perf_counter() - t0,
            evaluations=calls["accuracy"],
            best_score=-best_acc,
            best_accuracy=best_acc,
            best_feasible=True,
        )
        history.append(point)
        if on_generation is not None and on_generation(point):
            break
        kids: list[tuple[list[int], float]] = []
        for _ in range(n_mut):
            kids.append(valid(mutated(parents[rnd.randrange(n_par)][1])))
        for _ in range(n_pop - n_mut):
            p1 = parents[rnd.randrange(n_par)][1]
            p2 = parents[rnd.randrange(n_par)][1]
            kids.append(valid(crossed(p1, p2)))
        accs = acc_of([k[0] for k in kids])
        population = parents + [(a, k[0], k[1]) for a, k in zip(accs, kids, strict=True)]
    wall = time.perf_counter() - t0
    arch = space.canonicalize(np.array([best[1]], dtype=np.int64))[0]
    return SearchResult(
        method="ofa_evolution",
        best=arch,
        score=-float(best[0]),
        metrics={"accuracy": float(best[0]), "latency": float(best[2])},
        feasible=bool(best[2] <= latency_budget),
        evaluations=calls["accuracy"],
        wall_time_s=wall,
        calls=dict(calls),
        history=history,
        info={"config": asdict(cfg), "latency_budget": latency_budget},
    )
