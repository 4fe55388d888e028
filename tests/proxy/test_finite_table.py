"""Approach 1 on a space too large to enumerate, over a finite table of designs (HELP's 5,000
FBNet or OFA-MobileNetV3 designs in the benchmarks): the target replays the table, a design
outside it is unmeasurable, and every path (probes, search, fallback) stays inside it."""

from __future__ import annotations

import numpy as np
import pytest

from fleetnas.errors import InputError
from fleetnas.proxy import (
    Approach1Config,
    ProxyEntry,
    ProxyPool,
    ReplaySession,
    Workspace,
    optimize_device,
    spread_designs,
)
from fleetnas.spaces import get_space
from fleetnas.spaces.base import MAX_ENUMERABLE


@pytest.fixture(scope="module")
def table():
    """200 distinct FBNet designs, an accuracy-like score rising with their latency."""
    space = get_space("fbnet")
    assert space.size > MAX_ENUMERABLE
    rng = np.random.default_rng(2026)  # not the fallback's seed: its samples are not ours
    archs = np.unique(space.check(space.sample(220, rng)), axis=0)[:200]
    base = np.exp(rng.normal(0.0, 0.5, len(archs))) + 1.0
    acc = 70 + 5 * np.log(base) + rng.normal(0, 0.05, len(archs))
    return space, archs, base, acc


def _lookup(space, archs, values):
    rows = {a.tobytes(): i for i, a in enumerate(space.check(archs))}
    return lambda a: np.asarray(values)[[rows[r.tobytes()] for r in space.check(a)]]


def _workspace(space, archs, acc, proxies):
    pool = ProxyPool(space, [ProxyEntry(n, _lookup(space, archs, v)) for n, v in proxies.items()])
    return Workspace(space, _lookup(space, archs, acc), pool, candidates=archs)


def test_replay_over_a_finite_table_charges_rows_and_skips_the_rest(table):
    space, archs, base, _ = table
    s = ReplaySession(space, "t", 2 * base, archs=archs)
    outside = np.unique(space.check(space.sample(5, np.random.default_rng(9))), axis=0)
    assert not any(o.tobytes() in {a.tobytes() for a in archs} for o in outside)
    v = s.measure(np.concatenate([archs[:3], outside]))
    assert np.allclose(v[:3, 0], 2 * base[:3]) and np.isnan(v[3:, 0]).all()
    assert s.cost.measurements == 3 and len(s.unmeasurable) == len(outside)
    with pytest.raises(InputError, match="row of archs"):
        ReplaySession(space, "t", base[:-1], archs=archs)


def test_guided_default_on_a_finite_table_meets_the_budget_within_the_cap(table):
    space, archs, base, acc = table
    ws = _workspace(space, archs, acc, {"p1": base, "p2": base**1.1})
    target = 3 * base**0.9
    s = ReplaySession(space, "t", target, archs=archs)
    budgets = np.quantile(target, [0.1, 0.5, 0.9])
    for budget in budgets:
        before = s.cost.measurements
        r = optimize_device(ws, s, float(budget), probes=archs[:3])
        assert r.status == "ok" and r.latency <= budget
        assert s.cost.measurements - before <= Approach1Config().cap
        assert r.unmeasurable == 0
        best = acc[target <= budget].max()
        assert best - r.predicted_accuracy < 0.5


def test_fallback_on_a_finite_table_trains_on_table_designs(table):
    """A pool that orders the designs backwards fails the monotonicity check; with room under
    the cap the target's own predictor is trained on designs of the table (drawing them from
    the whole space would find none the target can measure)."""
    space, archs, base, acc = table
    ws = _workspace(space, archs, acc, {"backwards": 1.0 / base})
    s = ReplaySession(space, "t", base, archs=archs)
    cfg = Approach1Config(max_measurements=120, fallback_designs=40)
    budget = float(np.quantile(base, 0.5))
    r = optimize_device(ws, s, budget, config=cfg, probes=archs[:3])
    assert r.fell_back and r.registered == "t"
    assert r.unmeasurable == 0 and r.measurements <= 120
    assert r.status == "ok" and r.latency <= budget


def test_spread_designs_come_from_the_candidates_of_a_large_space(table):
    space, archs, _, _ = table
    got = spread_designs(space, 30, seed=1, candidates=archs)
    keys = {a.tobytes() for a in archs}
    assert len(got) == 30 and all(g.tobytes() in keys for g in got)
    assert len(spread_designs(space, 500, candidates=archs)) == len(archs)
