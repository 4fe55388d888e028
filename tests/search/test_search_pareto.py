from __future__ import annotations

import numpy as np
import pytest

from fleetnas.errors import InputError
from fleetnas.search.pareto import best_under_budgets, pareto_front, pareto_mask


def brute_front(costs: np.ndarray) -> set[int]:
    """Non-dominated rows of a cost matrix (minimize all), keeping one of identical rows."""
    out = set()
    for i, c in enumerate(costs):
        le = np.all(costs <= c, axis=1)
        lt = np.any(costs < c, axis=1)
        if np.any(le & lt):
            continue
        same = np.flatnonzero(np.all(costs == c, axis=1))
        if same[0] == i:
            out.add(i)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_two_metric_front_matches_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = 400
    acc = rng.integers(0, 30, n).astype(float)  # many ties
    lat = rng.integers(0, 30, n).astype(float)
    front = pareto_front(acc, lat)
    assert set(front.tolist()) == brute_front(np.stack([lat, -acc], axis=1))
    assert np.all(np.diff(lat[front]) > 0)  # ordered by latency, strictly improving accuracy
    assert np.all(np.diff(acc[front]) > 0)


@pytest.mark.parametrize("seed", range(4))
def test_three_metric_front_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 700  # more than one sweep block
    acc = rng.integers(0, 15, n).astype(float)
    lat = rng.integers(0, 15, n).astype(float)
    en = rng.integers(0, 15, n).astype(float)
    front = pareto_front(acc, lat, en)
    assert set(front.tolist()) == brute_front(np.stack([lat, -acc, en], axis=1))
    assert np.all(np.diff(lat[front]) >= 0)
    full = pareto_front(acc, lat, en, unique=False)
    assert set(full.tolist()) >= set(front.tolist())
    dup = len(full) - len(front)
    rows = np.stack([lat, -acc, en], axis=1)[front]
    copies = sum(int(np.all(np.stack([lat, -acc, en], 1) == r, axis=1).sum()) - 1 for r in rows)
    assert dup == copies


def test_budgets_restrict_the_front_and_nan_rows_are_ignored():
    acc = np.array([1.0, 2.0, 3.0, np.nan, 4.0])
    lat = np.array([1.0, 2.0, 3.0, 0.5, 9.0])
    en = np.array([5.0, 1.0, 1.0, 0.1, 1.0])
    assert pareto_front(acc, lat).tolist() == [0, 1, 2, 4]
    assert pareto_front(acc, lat, latency_budget=3.0).tolist() == [0, 1, 2]
    assert pareto_front(acc, lat, en, energy_budget=2.0).tolist() == [1, 2, 4]
    assert pareto_mask(acc, lat, latency_budget=2.5).tolist() == [True, True, False, False, False]
    assert pareto_front(acc, lat, latency_budget=0.1).size == 0
    with pytest.raises(InputError, match="energy budget needs energy"):
        pareto_front(acc, lat, energy_budget=1.0)
    with pytest.raises(InputError, match="one length"):
        pareto_front(acc, lat[:3])


def test_best_under_budgets_matches_masking():
    rng = np.random.default_rng(3)
    acc = rng.integers(0, 50, 2000).astype(float)
    lat = rng.uniform(1, 100, 2000)
    budgets = np.concatenate([[0.5], rng.uniform(0, 110, 300)])
    got = best_under_budgets(acc, lat, budgets)
    for b, g in zip(budgets, got, strict=True):
        ok = lat <= b
        if not ok.any():
            assert g == -1
            continue
        best = acc[ok].max()
        assert acc[g] == best and lat[g] <= b
        assert lat[g] == lat[ok & (acc == best)].min()  # ties: the fastest
    assert best_under_budgets(acc, lat, 50.0).shape == ()


def test_budget_index_answers_repeated_queries_like_the_one_shot_form():
    from fleetnas.search.pareto import BudgetIndex

    rng = np.random.default_rng(5)
    acc = rng.normal(size=500)
    lat = rng.uniform(0, 10, 500)
    idx = BudgetIndex(acc, lat)
    b = rng.uniform(-1, 11, (4, 7))
    assert np.array_equal(idx.query(b), best_under_budgets(acc, lat, b))
    assert idx.query(b).shape == (4, 7)
    assert BudgetIndex(np.array([np.nan]), np.array([1.0])).query([5.0]).tolist() == [-1]
