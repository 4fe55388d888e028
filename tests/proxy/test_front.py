"""The front variant reaches Pareto points that the weighted sum of eq. (6) cannot."""

from __future__ import annotations

import numpy as np

from fleetnas.proxy import algorithm1, front_variant


def test_front_variant_reaches_a_point_in_a_concave_dent(make_toy):
    lat = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    acc = np.array([10.0, 20.0, 22.0, 40.0, 45.0])  # (3, 22) lies under the hull of (2,20)-(4,40)
    toy = make_toy(acc, lat, 2 * lat)
    budget = 6.5  # the target admits the first three designs: the best is the dent point
    reached = set(toy.problem.solve_t(np.linspace(0, 1, 2001)).tolist())
    assert 2 not in reached and 3 in reached

    sel = front_variant(toy.problem, toy.session(), budget)
    assert sel.status == "ok" and sel.index == 2 and sel.latency == 6.0
    assert sel.measurements <= 3  # ceil(log2(5 + 1))

    a1 = algorithm1(toy.problem, toy.session(), budget, delta=0.05, max_iterate=10).selection
    assert a1.status == "ok" and a1.accuracy < sel.accuracy == 22.0


def test_front_variant_trace_names_the_proxy_bound(convex_toy):
    sel = front_variant(convex_toy.problem, convex_toy.session(), 20.0)
    assert sel.trace and all(s.key.startswith("L'=") for s in sel.trace)
    assert sel.latency == 19.0 and sel.status == "ok"
