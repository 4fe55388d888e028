"""Batched evolutionary search and random search over any :class:`SearchSpace`.

Every generation is scored with *one* call of the objective (one batched call per metric
callable), so the cost per design is that of the predictors' batched path rather than Python
overhead. The loop is a (μ + λ) evolution with elitism:

1. parents are drawn from the population by tournament (or truncation) on the score;
2. children come from mutation (per-decision probabilities, at least one decision changed, then
   :meth:`SearchSpace.canonicalize`), from uniform crossover of two parents followed by a light
   mutation, and from single-decision *local moves* around the best designs;
3. children already seen (64-bit row hashes) or repeated are dropped before scoring, so no design
   is scored twice and :attr:`SearchResult.evaluations` counts distinct designs;
4. population and children are merged and the best ``population`` designs survive.

Constraints are handled by the objective's score: :class:`ConstrainedObjective` ranks every
feasible design before every infeasible one and infeasible ones by relative violation
(feasibility-first), and with ``lazy_accuracy`` the accuracy callable only sees feasible children.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fleetnas.errors import InputError, unknown
from fleetnas.search.objectives import Metrics, Objective
from fleetnas.search.pareto import pareto_front
from fleetnas.search.results import HistoryPoint, SearchResult
from fleetnas.spaces.base import MAX_ENUMERABLE, SearchSpace

#: ``on_generation(point) -> stop?``: called after every generation / batch.
Callback = Callable[[HistoryPoint], bool | None]


@dataclass
class EvolutionConfig:
    """Settings of :func:`evolve`.

    ``population``: survivors per generation; ``children``: new designs proposed per generation
    (before dedup), split into ``mutation_ratio`` mutants, ``local_ratio`` local moves around the
    ``local_top`` best designs, and crossovers for the rest; ``mutation_prob``: per-decision
    resampling probability (scalar or ``D`` array; default ``1/D``); ``init_samples``: random
    designs scored to seed the population (default ``max(population, children)``);
    ``parent_selection``: ``"tournament"`` (size ``tournament_size``) or ``"truncation"`` (the
    best ``truncation_ratio`` of the population). Stops after ``generations``, or earlier at
    ``time_budget_s`` seconds, ``max_evaluations`` designs, ``target_score`` or after
    ``patience`` generations without improvement. When fewer than ``min_fresh * children``
    proposals are unseen (a small space, a converged population), stronger mutations and then
    random designs top the generation up, so the search keeps making progress.
    """

    population: int = 100
    children: int = 400
    generations: int = 100
    mutation_ratio: float = 0.4
    local_ratio: float = 0.2
    local_top: int = 5
    mutation_prob: float | Sequence[float] | None = None
    crossover_mutation_prob: float | None = None
    init_samples: int | None = None
    parent_selection: str = "tournament"
    tournament_size: int = 2
    truncation_ratio: float = 0.25
    time_budget_s: float | None = None
    max_evaluations: int | None = None
    target_score: float | None = None
    patience: int | None = None
    min_fresh: float = 0.25

    def check(self, n_decisions: int) -> None:
        if self.population < 1 or self.children < 1 or self.generations < 0:
            raise InputError(
                "evolution needs population >= 1, children >= 1 and generations >= 0, got "
                f"{self.population}, {self.children}, {self.generations}"
            )
        if not (0 <= self.mutation_ratio <= 1 and 0 <= self.local_ratio <= 1) or (
            self.mutation_ratio + self.local_ratio > 1
        ):
            raise InputError(
                "mutation_ratio and local_ratio must be in [0, 1] with a sum <= 1, got "
                f"{self.mutation_ratio} and {self.local_ratio}"
            )
        if self.parent_selection not in ("tournament", "truncation"):
            raise InputError(
                f"parent_selection must be 'tournament' or 'truncation', got "
                f"{self.parent_selection!r}"
            )
        if self.mutation_prob is not None:
            p = np.asarray(self.mutation_prob, dtype=float)
            if p.ndim > 1 or (p.ndim == 1 and p.shape[0] != n_decisions):
                raise InputError(
                    f"mutation_prob must be a scalar or one value per decision ({n_decisions}), "
                    f"got shape {p.shape}"
                )
            if np.any(p < 0) or np.any(p > 1):
                raise InputError(f"mutation_prob must lie in [0, 1], got {self.mutation_prob}")


# ---- variation operators -----------------------------------------------------------------------
class Domain:
    """The part of a space a search may visit: per decision, the allowed choices.

    ``allowed`` maps decision names to allowed choice *values* (e.g. ``{"r": [160, 176, 192,
    208, 224]}`` for the resolutions a latency table covers); other decisions allow every
    choice. Sampling and the variation operators below stay inside the domain and return
    canonical designs.
    """

    def __init__(
        self, space: SearchSpace, allowed: Mapping[str, Sequence[Any]] | None = None
    ) -> None:
        self.space = space
        card = space.cardinalities
        lists = [np.arange(c) for c in card]
        names = {dec.name: j for j, dec in enumerate(space.decisions)}
        for name, values in (allowed or {}).items():
            if name not in names:
                raise unknown("decision", name, list(names))
            dec = space.decisions[names[name]]
            idx = []
            for v in values:
                if v not in dec.choices:
                    raise InputError(
                        f"decision {name!r} of space {space.name!r} has no choice {v!r}; "
                        f"expected some of {list(dec.choices)}"
                    )
                idx.append(dec.choices.index(v))
            if not idx:
                raise InputError(f"decision {name!r}: the allowed choices are empty")
            lists[names[name]] = np.unique(idx)
        self.k = np.array([len(x) for x in lists], dtype=np.int64)
        kmax = int(self.k.max()) if len(self.k) else 1
        self.table = np.zeros((len(card), kmax), dtype=np.int64)
        self.pos = np.zeros((len(card), int(card.max()) if len(card) else 1), dtype=np.int64)
        for j, x in enumerate(lists):
            self.table[j, : len(x)] = x
            self.pos[j, x] = np.arange(len(x))
        self.cols = np.arange(len(card))
        self.movable = self.k > 1
        self.restricted = bool(np.any(self.k < card))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n x D`` uniformly random canonical designs of the domain."""
        if not self.restricted:
            return self.space.sample(n, rng)
        p = (rng.random((n, len(self.k))) * self.k[None, :]).astype(np.int64)
        return self.space.canonicalize(self.table[self.cols[None, :], p])

    @property
    def size(self) -> int:
        """Number of index vectors in the domain (before canonicalization)."""
        return int(np.prod(self.k.astype(object)))

    def enumerate(self) -> np.ndarray:
        """All distinct canonical designs of the domain (``m x D``); only for small domains."""
        if self.size > MAX_ENUMERABLE:
            raise InputError(
                f"the domain of space {self.space.name!r} has {self.size:.3g} designs; "
                f"enumerate() is limited to {MAX_ENUMERABLE:,}"
            )
        flat = np.zeros((1, 0), dtype=np.int64)
        for j, k in enumerate(self.k):
            vals = self.table[j, :k]
            flat = np.concatenate(
                [np.repeat(flat, k, axis=0), np.tile(vals, len(flat))[:, None]], axis=1
            )
        return np.unique(self.space.canonicalize(flat), axis=0)

    def contains(self, archs: np.ndarray) -> np.ndarray:
        """``n`` bool: rows whose every decision is allowed."""
        a = self.space.check(archs)
        return np.all(self.table[self.cols[None, :], self.pos[self.cols[None, :], a]] == a, axis=1)

    def _shift(self, archs: np.ndarray, hit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Move the ``hit`` entries of ``archs`` to a different allowed choice."""
        rows, cols = np.nonzero(hit)
        k = self.k[cols]
        pos = self.pos[cols, archs[rows, cols]]
        step = 1 + (rng.random(len(cols)) * np.maximum(k - 1, 1)).astype(np.int64)
        out = archs.copy()
        out[rows, cols] = self.table[cols, (pos + step) % k]
        return out

    def mutate(self, archs: np.ndarray, prob: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Change each decision with probability ``prob`` (``D``) to a *different* allowed
        choice, forcing at least one change per row (``n x D`` -> ``n x D``, canonical)."""
        n, d = archs.shape
        p = np.where(self.movable, prob, 0.0)
        hit = rng.random((n, d)) < p[None, :]
        none = ~hit.any(axis=1)
        if none.any() and self.movable.any():
            cols = np.flatnonzero(self.movable)
            pick = cols[rng.integers(0, len(cols), size=int(none.sum()))]
            hit[np.flatnonzero(none), pick] = True
        return self.space.canonicalize(self._shift(archs, hit, rng))

    def crossover(self, a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Uniform crossover of paired rows of ``a`` and ``b`` (``n x D`` each)."""
        return self.space.canonicalize(np.where(rng.random(a.shape) < 0.5, a, b))

    def local_moves(self, archs: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` random single-decision neighbours of the rows of ``archs`` (round robin)."""
        cols = np.flatnonzero(self.movable)
        if n <= 0 or len(archs) == 0 or cols.size == 0:
            return np.zeros((0, len(self.k)), dtype=np.int64)
        base = archs[np.arange(n) % len(archs)]
        hit = np.zeros(base.shape, dtype=bool)
        hit[np.arange(n), cols[rng.integers(0, len(cols), size=n)]] = True
        return self.space.canonicalize(self._shift(base, hit, rng))


class _Hasher:
    """64-bit row hashes for dedup (random odd multipliers, wrapping arithmetic)."""

    def __init__(self, d: int, seed: int = 0x5EED) -> None:
        r = np.random.default_rng(seed).integers(1, 2**62, size=d, dtype=np.int64)
        self.mult = (r.astype(np.uint64) << np.uint64(1)) | np.uint64(1)

    def __call__(self, archs: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            x = (archs.astype(np.uint64) + np.uint64(1)) * self.mult[None, :]
            h = np.bitwise_xor.reduce(x ^ (x >> np.uint64(29)), axis=1) + x.sum(axis=1)
        return h


class _Archive:
    """Designs scored so far (hash set) and the best one."""

    def __init__(self, space: SearchSpace) -> None:
        self.hash = _Hasher(space.n_decisions)
        self.seen: set[int] = set()

    def fresh(self, archs: np.ndarray) -> np.ndarray:
        """Rows of ``archs`` not seen before and not repeated (first occurrence kept)."""
        if len(archs) == 0:
            return archs
        h = self.hash(archs)
        _, first = np.unique(h, return_index=True)
        first.sort()
        seen = self.seen
        keep = first[[int(x) not in seen for x in h[first].tolist()]]
        self.seen.update(h[keep].tolist())
        return archs[keep]


class _Tracker:
    """Best design, anytime history and stopping."""

    def __init__(self, objective: Objective, on_step: Callback | None) -> None:
        self.objective = objective
        self.on_step = on_step
        self.t0 = time.perf_counter()
        self.best_score = np.inf
        self.best_arch: np.ndarray | None = None
        self.best_metrics: dict[str, float] = {}
        self.best_feasible = False
        self.evaluations = 0
        self.history: list[HistoryPoint] = []
        self.archs: list[np.ndarray] = []
        self.metrics: list[Metrics] = []
        self.feasible: list[np.ndarray] = []

    def add(self, archs: np.ndarray, m: Metrics, score: np.ndarray, keep: bool) -> None:
        self.evaluations += len(archs)
        if len(archs) == 0:
            return
        ok = self.objective.feasible(m)
        if keep:
            self.archs.append(archs)
            self.metrics.append(m)
            self.feasible.append(ok)
        i = int(np.argmin(score))
        if score[i] < self.best_score:
            self.best_score = float(score[i])
            self.best_arch = archs[i].copy()
            self.best_metrics = m.row(i)
            self.best_feasible = bool(ok[i])

    def step(self, k: int) -> bool:
        acc = self.best_metrics.get("accuracy", float("nan"))
        p = HistoryPoint(
            step=k,
            elapsed_s=time.perf_counter() - self.t0,
            evaluations=self.evaluations,
            best_score=self.best_score,
            best_accuracy=acc,
            best_feasible=self.best_feasible,
        )
        self.history.append(p)
        return bool(self.on_step(p)) if self.on_step is not None else False

    def result(self, method: str, keep_front: bool, info: dict) -> SearchResult:
        if self.best_arch is None:
            raise InputError("the search evaluated no design")
        front = np.zeros((0, len(self.best_arch)), dtype=np.int64)
        fm = Metrics()
        if keep_front and self.archs:
            archs = np.concatenate(self.archs)
            m = Metrics.concat(self.metrics)
            ok = np.concatenate(self.feasible)
            if m.accuracy is not None and m.latency is not None:
                acc = np.where(ok, m.accuracy, np.nan)
                idx = pareto_front(acc, m.latency, m.energy)
                front, fm = archs[idx], m.take(idx)
        return SearchResult(
            method=method,
            best=self.best_arch,
            score=self.best_score,
            metrics=self.best_metrics,
            feasible=self.best_feasible,
            evaluations=self.evaluations,
            wall_time_s=time.perf_counter() - self.t0,
            front=front,
            front_metrics=fm,
            calls=dict(self.objective.calls),
            history=self.history,
            info=info,
        )


def _select(
    scores: np.ndarray, n: int, cfg: EvolutionConfig, rng: np.random.Generator
) -> np.ndarray:
    """``n`` parent indices into a population sorted by score (best first)."""
    size = len(scores)
    if cfg.parent_selection == "truncation":
        k = max(1, round(cfg.truncation_ratio * size))
        return rng.integers(0, k, size=n)
    cand = rng.integers(0, size, size=(n, max(1, cfg.tournament_size)))
    return cand.min(axis=1)  # population is sorted: lower index = better score


def _merge(
    pop: np.ndarray, pop_s: np.ndarray, kids: np.ndarray, kid_s: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    archs = np.concatenate([pop, kids])
    s = np.concatenate([pop_s, kid_s])
    order = np.argsort(s, kind="stable")[:size]
    return archs[order], s[order]


def evolve(
    space: SearchSpace,
    objective: Objective,
    config: EvolutionConfig | None = None,
    seed: int | np.random.Generator | None = None,
    on_generation: Callback | None = None,
    initial: np.ndarray | None = None,
    keep_front: bool = True,
    allowed: Mapping[str, Sequence[Any]] | None = None,
) -> SearchResult:
    """Batched (μ + λ) evolutionary search minimizing ``objective.score``.

    ``initial``: optional ``m x D`` designs added to the random initial sample (e.g. the optimum
    for a neighbouring ``t``). ``on_generation`` gets a :class:`HistoryPoint` after the initial
    batch (step 0) and after every generation; returning ``True`` stops the search.
    ``keep_front=False`` skips collecting the Pareto front of all evaluated designs.
    ``allowed`` restricts decisions to some choice values (see :class:`Domain`).
    """
    cfg = config or EvolutionConfig()
    cfg.check(space.n_decisions)
    rng = np.random.default_rng(seed)
    d = space.n_decisions
    prob = np.broadcast_to(
        np.asarray(1.0 / max(d, 1) if cfg.mutation_prob is None else cfg.mutation_prob, float),
        (d,),
    )
    xprob = (
        prob * 0.5
        if cfg.crossover_mutation_prob is None
        else np.broadcast_to(np.asarray(cfg.crossover_mutation_prob, float), (d,))
    )
    dom = Domain(space, allowed)
    archive = _Archive(space)
    track = _Tracker(objective, on_generation)

    def score(archs: np.ndarray) -> np.ndarray:
        m = objective.evaluate(archs)
        s = objective.score_metrics(m)
        track.add(archs, m, s, keep_front)
        return s

    init_n = cfg.init_samples if cfg.init_samples is not None else max(cfg.population, cfg.children)
    if cfg.max_evaluations is not None:
        init_n = min(init_n, cfg.max_evaluations)
    parts = [dom.sample(init_n, rng)]
    if initial is not None:
        parts.insert(0, space.canonicalize(space.check(initial)))
    pop = archive.fresh(np.concatenate(parts))
    pop_s = score(pop)
    order = np.argsort(pop_s, kind="stable")[: cfg.population]
    pop, pop_s = pop[order], pop_s[order]
    stop = track.step(0)
    stale = dry = 0
    n_mut = round(cfg.mutation_ratio * cfg.children)
    n_loc = round(cfg.local_ratio * cfg.children)
    n_x = cfg.children - n_mut - n_loc
    for gen in range(1, cfg.generations + 1):
        if stop or _done(cfg, track):
            break
        kids = []
        if n_mut:
            kids.append(dom.mutate(pop[_select(pop_s, n_mut, cfg, rng)], prob, rng))
        if n_x:
            a = pop[_select(pop_s, n_x, cfg, rng)]
            b = pop[_select(pop_s, n_x, cfg, rng)]
            child = dom.crossover(a, b, rng)
            if np.any(xprob > 0):
                hit = rng.random(n_x) < 0.5
                if hit.any():
                    child[hit] = dom.mutate(child[hit], xprob, rng)
            kids.append(child)
        if n_loc:
            kids.append(dom.local_moves(pop[: max(1, cfg.local_top)], n_loc, rng))
        new = archive.fresh(np.concatenate(kids))
        if len(new) < cfg.children * cfg.min_fresh:
            new = _top_up(new, pop, pop_s, cfg, prob, dom, archive, rng)
        if cfg.max_evaluations is not None:
            new = new[: max(0, cfg.max_evaluations - track.evaluations)]
        before = track.best_score
        if len(new):
            pop, pop_s = _merge(pop, pop_s, new, score(new), cfg.population)
            dry = 0
        else:
            dry += 1
        stale = stale + 1 if track.best_score >= before else 0
        stop = track.step(gen) or dry >= 3  # three empty generations: the domain is exhausted
        if cfg.patience is not None and stale >= cfg.patience:
            break
    info = {"config": asdict(cfg), "generations": len(track.history) - 1}
    return track.result("evolution", keep_front, info)


def _top_up(
    new: np.ndarray,
    pop: np.ndarray,
    pop_s: np.ndarray,
    cfg: EvolutionConfig,
    prob: np.ndarray,
    dom: Domain,
    archive: _Archive,
    rng: np.random.Generator,
) -> np.ndarray:
    """When the population's neighbourhood is used up (small spaces), propose unseen designs by
    mutations of doubling strength, then by random immigrants."""
    want = round(cfg.children * cfg.min_fresh)
    parts = [new]
    have = len(new)
    strength = 2.0
    for _ in range(4):
        if have >= want:
            break
        p = np.minimum(prob * strength, 1.0)
        extra = archive.fresh(dom.mutate(pop[_select(pop_s, cfg.children, cfg, rng)], p, rng))
        parts.append(extra)
        have += len(extra)
        strength *= 2.0
    if have < want:
        extra = archive.fresh(dom.sample(cfg.children, rng))
        parts.append(extra)
    return np.concatenate(parts)


def _done(cfg: EvolutionConfig, track: _Tracker) -> bool:
    if cfg.time_budget_s is not None and time.perf_counter() - track.t0 >= cfg.time_budget_s:
        return True
    if cfg.max_evaluations is not None and track.evaluations >= cfg.max_evaluations:
        return True
    return cfg.target_score is not None and track.best_score <= cfg.target_score


def random_search(
    space: SearchSpace,
    objective: Objective,
    n: int = 10_000,
    batch_size: int = 1000,
    seed: int | np.random.Generator | None = None,
    time_budget_s: float | None = None,
    on_batch: Callback | None = None,
    keep_front: bool = True,
    allowed: Mapping[str, Sequence[Any]] | None = None,
) -> SearchResult:
    """Baseline: score ``n`` distinct uniformly random designs in batches of ``batch_size``."""
    if n < 1 or batch_size < 1:
        raise InputError(f"random search needs n >= 1 and batch_size >= 1, got {n}, {batch_size}")
    rng = np.random.default_rng(seed)
    dom = Domain(space, allowed)
    archive = _Archive(space)
    track = _Tracker(objective, on_batch)
    # a domain not much larger than n is drawn as a random permutation (without replacement)
    pool = dom.enumerate() if dom.size <= max(4 * n, 10_000) else None
    if pool is not None:
        pool = pool[rng.permutation(len(pool))]
    k = cursor = 0
    tries = 0
    while track.evaluations < n:
        if time_budget_s is not None and time.perf_counter() - track.t0 >= time_budget_s:
            break
        want = min(batch_size, n - track.evaluations)
        if pool is not None:
            if cursor >= len(pool):
                break
            new = archive.fresh(pool[cursor : cursor + want])
            cursor += want
        else:
            new = archive.fresh(dom.sample(want, rng))
        tries = tries + 1 if len(new) == 0 else 0
        if tries > 20:  # the space is exhausted
            break
        if len(new):
            m = objective.evaluate(new)
            track.add(new, m, objective.score_metrics(m), keep_front)
        k += 1
        if track.step(k):
            break
    return track.result("random", keep_front, {"n": n, "batch_size": batch_size})
