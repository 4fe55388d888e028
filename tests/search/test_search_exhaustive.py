from __future__ import annotations

import numpy as np
import pytest

from fleetnas.errors import InputError
from fleetnas.search.exhaustive import ExhaustiveSolver, exhaustive_search
from fleetnas.search.objectives import (
    ConstrainedObjective,
    ProxyObjective,
    WeightedObjective,
)


@pytest.fixture(params=["flops", "nats"])
def problem(request):
    return request.getfixturevalue("flops_problem" if request.param == "flops" else "nats_help")


@pytest.fixture
def solver(problem):
    return ExhaustiveSolver.from_space(
        problem.space, problem.accuracy, problem.latency, problem.energy
    )


def test_eq6_matches_brute_force_for_many_t(solver):
    ts = np.linspace(0, 1, 201)
    got = solver.solve_proxy(ts)
    assert got.shape == ts.shape
    scores = -(1 - ts[:, None]) * solver.acc_n[None, :] + ts[:, None] * solver.lat_n[None, :]
    assert np.array_equal(scores[np.arange(len(ts)), got], scores.min(axis=1))
    assert isinstance(int(solver.solve_proxy(0.3)), int)
    # larger t never gives a slower design
    assert np.all(np.diff(solver.metrics.latency[got]) <= 0)


def test_eq7_and_eq4_match_brute_force(solver):
    rng = np.random.default_rng(0)
    t = rng.dirichlet([1, 1, 1], size=100)[:, :2]
    got = solver.solve_proxy_energy(t)
    a, lat, e = solver.acc_n, solver.lat_n, solver.energy_n
    sc = -(1 - t.sum(1))[:, None] * a + t[:, :1] * lat + t[:, 1:] * e
    assert np.allclose(sc[np.arange(100), got], sc.min(axis=1))
    lam = rng.exponential(1.0, size=(100, 2))
    lam[:10, 0] = 0.0
    got = solver.solve_weighted(lam)
    sc = -a + lam[:, :1] * e + lam[:, 1:] * lat
    assert np.allclose(sc[np.arange(100), got], sc.min(axis=1))
    top = solver.solve_weighted([0.0, 0.0])
    assert solver.metrics.accuracy[top] == solver.metrics.accuracy.max()


def test_constrained_optimum_for_many_budgets(solver):
    lat, acc, en = solver.metrics.latency, solver.metrics.accuracy, solver.metrics.energy
    budgets = np.quantile(lat, [0.0, 0.01, 0.1, 0.3, 0.6, 1.0])
    got = solver.solve_constrained(budgets)
    for b, g in zip(budgets, got, strict=True):
        assert lat[g] <= b and acc[g] == acc[lat <= b].max()
    assert solver.solve_constrained(lat.min() / 2) == -1
    eb = np.quantile(en, [0.2, 0.5, 0.9])
    got = solver.solve_constrained(budgets[2:5], eb)
    for b, e, g in zip(budgets[2:5], eb, got, strict=True):
        ok = (lat <= b) & (en <= e)
        if ok.any():
            assert ok[g] and acc[g] == acc[ok].max()
        else:
            assert g == -1


def test_exhaustive_search_agrees_with_solver_and_reports_front(problem, solver):
    budget = float(np.median(solver.metrics.latency))
    obj = ConstrainedObjective(
        problem.accuracy, problem.latency, norm=solver.norm, latency_budget=budget
    )
    r = exhaustive_search(problem.space, obj)
    best = solver.solve_constrained(budget)
    assert r.feasible and r.metrics["accuracy"] == solver.metrics.accuracy[best]
    assert r.front_metrics.latency.max() <= budget
    assert np.all(np.diff(r.front_metrics.latency) > 0)
    assert r.metrics["accuracy"] == r.front_metrics.accuracy.max()
    assert r.calls["latency"] == 15_625 and r.calls["accuracy"] == r.evaluations < 15_625
    p = ProxyObjective(problem.accuracy, problem.latency, norm=solver.norm, t=0.35)
    assert solver.solve(p) == np.argmin(p.score(solver.archs))
    w = WeightedObjective(problem.accuracy, problem.latency, norm=solver.norm, lam=(0, 0.5))
    res = solver.result(int(solver.solve_weighted([0.0, 0.5])))
    assert w.score(res.best[None])[0] == pytest.approx(w.score(solver.archs).min())
    assert res.evaluations == 15_625 and len(res.front) == len(solver.front2)


def test_solver_rejects_energy_questions_without_energy(flops_problem):
    p = flops_problem
    s = ExhaustiveSolver.from_space(p.space, p.accuracy, p.latency)
    with pytest.raises(InputError, match="no energy"):
        s.solve_proxy_energy([0.1, 0.2])
    with pytest.raises(InputError, match="no energy"):
        s.solve_weighted([0.5, 0.5])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        s.solve_proxy(-0.1)
    with pytest.raises(InputError, match="designs but metric arrays"):
        ExhaustiveSolver(s.archs, s.metrics.accuracy[:10], s.metrics.latency)
