from __future__ import annotations

import numpy as np
import pytest

from fleetnas.errors import InputError, UnknownNameError
from fleetnas.search.evolution import Domain, EvolutionConfig, evolve, random_search
from fleetnas.search.exhaustive import ExhaustiveSolver
from fleetnas.search.objectives import ConstrainedObjective, Normalization, ProxyObjective
from fleetnas.spaces import get_space


def test_domain_keeps_searches_inside_allowed_choices():
    space = get_space("ofa_mbv3")
    dom = Domain(space, {"r": [160, 176, 192, 208, 224]})
    rng = np.random.default_rng(0)
    x = dom.sample(500, rng)
    r_col = [d.name for d in space.decisions].index("r")
    allowed = {space.decisions[r_col].choices.index(v) for v in (160, 176, 192, 208, 224)}
    assert set(x[:, r_col].tolist()) == allowed
    assert dom.contains(x).all()
    assert np.array_equal(space.canonicalize(x), x)
    y = dom.mutate(x, np.full(space.n_decisions, 0.05), rng)
    assert dom.contains(y).all()
    assert np.all(np.any(y != x, axis=1) | np.all(space.canonicalize(y) == y, axis=1))
    z = dom.local_moves(x[:3], 30, rng)
    assert dom.contains(z).all()
    assert not Domain(space, {"r": [224]}).movable[r_col]
    with pytest.raises(UnknownNameError, match="unknown decision 'res'"):
        Domain(space, {"res": [224]})
    with pytest.raises(InputError, match="no choice 225"):
        Domain(space, {"r": [225]})


def test_mutation_changes_at_least_one_decision(nb201):
    dom = Domain(nb201)
    rng = np.random.default_rng(1)
    x = dom.sample(2000, rng)
    y = dom.mutate(x, np.zeros(6), rng)
    assert np.all((y != x).sum(axis=1) == 1)
    y = dom.mutate(x, np.full(6, 1.0), rng)
    assert np.all(y != x)


def test_evolution_scores_each_generation_in_one_call_and_never_twice(flops_problem):
    p = flops_problem
    calls: list[np.ndarray] = []

    def acc(a):
        calls.append(a.copy())
        return p.accuracy(a)

    norm = Normalization.fit(p.space, p.accuracy, p.latency)
    obj = ProxyObjective(acc, p.latency, norm=norm, t=0.3)
    cfg = EvolutionConfig(population=20, children=60, generations=8)
    r = evolve(p.space, obj, cfg, seed=0)
    assert len(calls) == 9  # initial batch + one per generation
    every = np.concatenate(calls)
    assert len(np.unique(every, axis=0)) == len(every) == r.evaluations
    assert [h.step for h in r.history] == list(range(9))
    curve = [h.best_score for h in r.history]
    assert curve == sorted(curve, reverse=True)
    r2 = evolve(p.space, ProxyObjective(p.accuracy, p.latency, norm=norm, t=0.3), cfg, seed=0)
    assert np.array_equal(r.best, r2.best) and r.evaluations == r2.evaluations


@pytest.mark.parametrize("budget_q", [0.05, 0.3, 0.7])
def test_evolution_finds_the_exact_constrained_optimum_on_nb201(nats_help, budget_q):
    p = nats_help
    solver = ExhaustiveSolver.from_space(p.space, p.accuracy, p.latency)
    budget = float(np.quantile(solver.metrics.latency, budget_q))
    best = solver.metrics.accuracy[solver.solve_constrained(budget)]
    obj = ConstrainedObjective(p.accuracy, p.latency, norm=solver.norm, latency_budget=budget)
    cfg = EvolutionConfig(population=50, children=200, generations=60, local_ratio=0.3)
    hits = 0
    for seed in range(3):
        r = evolve(p.space, obj, cfg, seed=seed)
        assert r.feasible and r.metrics["latency"] <= budget
        assert r.front_metrics.latency.max() <= budget
        hits += r.metrics["accuracy"] == best
    assert hits >= 2


def test_stopping_rules_and_callback(flops_problem):
    p = flops_problem
    norm = Normalization.fit(p.space, p.accuracy, p.latency)
    obj = ProxyObjective(p.accuracy, p.latency, norm=norm, t=0.5)
    r = evolve(
        p.space,
        obj,
        EvolutionConfig(population=10, children=50, generations=1000, max_evaluations=300),
        seed=2,
    )
    assert r.evaluations == 300
    seen = []
    r = evolve(
        p.space,
        obj,
        EvolutionConfig(population=10, children=50, generations=1000),
        seed=2,
        on_generation=lambda h: seen.append(h) or h.step >= 4,
    )
    assert len(seen) == 5 and r.info["generations"] == 4
    r = evolve(
        p.space,
        obj,
        EvolutionConfig(population=10, children=50, generations=10**6, time_budget_s=0.2),
        seed=2,
    )
    assert r.wall_time_s < 2.0
    with pytest.raises(InputError, match="mutation_ratio"):
        evolve(p.space, obj, EvolutionConfig(mutation_ratio=0.9, local_ratio=0.5))
    with pytest.raises(InputError, match="one value per decision"):
        evolve(p.space, obj, EvolutionConfig(mutation_prob=[0.1, 0.2]))


def test_initial_designs_seed_the_population(flops_problem):
    p = flops_problem
    norm = Normalization.fit(p.space, p.accuracy, p.latency)
    obj = ProxyObjective(p.accuracy, p.latency, norm=norm, t=0.2)
    solver = ExhaustiveSolver.from_space(p.space, p.accuracy, p.latency, norm=norm)
    opt = solver.archs[solver.solve_proxy(0.2)]
    r = evolve(
        p.space,
        obj,
        EvolutionConfig(population=5, children=5, generations=0, init_samples=5),
        seed=0,
        initial=opt[None],
    )
    assert np.array_equal(r.best, opt)


def test_random_search_counts_distinct_designs(flops_problem):
    p = flops_problem
    norm = Normalization.fit(p.space, p.accuracy, p.latency)
    budget = float(np.quantile(p.latency(p.space.enumerate()), 0.2))
    obj = ConstrainedObjective(p.accuracy, p.latency, norm=norm, latency_budget=budget)
    r = random_search(p.space, obj, n=2500, batch_size=1000, seed=0)
    assert r.evaluations == 2500 and 3 <= len(r.history) <= 8
    assert r.feasible and r.metrics["latency"] <= budget
    whole = random_search(p.space, obj, n=20_000, batch_size=5000, seed=0)
    assert whole.evaluations == 15_625  # a random permutation of the space, no design twice
    assert whole.score == pytest.approx(obj.score_metrics(obj.evaluate(p.space.enumerate())).min())
    ofa = get_space("ofa_mbv3")
    fixed = {f"ks_{i}": [3] for i in range(5, 20)} | {f"e_{i}": [3] for i in range(20)}
    dom = Domain(ofa, fixed | {f"d_{s}": [2] for s in range(5)} | {"r": [224]})
    small = dom.enumerate()  # 3^5 index vectors; layers 2 and 3 are inactive at depth 2
    assert dom.size == 3**5 and len(small) == 3**3 and dom.contains(small).all()


def test_search_never_stalls_on_a_small_space(flops_problem):
    """Once the population's neighbourhood is used up, stronger mutations and immigrants keep
    proposing unseen designs until (nearly) the whole space has been scored, then it stops."""
    p = flops_problem
    norm = Normalization.fit(p.space, p.accuracy, p.latency)
    obj = ProxyObjective(p.accuracy, p.latency, norm=norm, t=0.4)
    cfg = EvolutionConfig(population=5, children=200, generations=10**6)
    r = evolve(p.space, obj, cfg, seed=0, keep_front=False)
    assert 0.99 * p.space.size <= r.evaluations <= p.space.size
    solver = ExhaustiveSolver.from_space(p.space, p.accuracy, p.latency, norm=norm)
    opt = solver.solve_proxy(0.4)
    assert r.score == pytest.approx(obj.score(solver.archs[opt][None])[0])
