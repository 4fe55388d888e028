"""Algorithm 1 exactly as written, and the budget guarantee around it."""

from __future__ import annotations

import numpy as np
import pytest

from fleetnas.errors import InputError
from fleetnas.proxy import TCache, algorithm1


def reference_path(problem, target, budget, delta, max_iterate):
    """Algorithm 1 re-derived in a few lines: x*(t) by brute force over the candidates."""
    a = problem.norm.accuracy.apply(problem.accuracy)
    lat = problem.norm.latency.apply(problem.latency)
    t_min, t_max, path = 0.0, 1.0, []
    for _ in range(max_iterate):
        t = (t_min + t_max) / 2
        x = int(np.argmin(-(1 - t) * a + t * lat))
        y = float(target[x])
        path.append((t, x, y))
        if y >= budget + delta:
            t_min = t
        elif y <= budget - delta:
            t_max = t
        else:
            break
    return path


def test_bisection_path_matches_the_paper(convex_toy):
    toy = convex_toy
    target = toy.target[:10]
    res = algorithm1(toy.problem, toy.session(), 14.5, delta=0.1, max_iterate=8)
    want = reference_path(toy.problem, target, 14.5, 0.1, 8)
    got = [(s.value, toy.space.parse(s.arch), s.latency) for s in res.trace]
    assert len(got) == len(want) == 8  # 13 and 16 bracket 14.5: never within δ, Max_Iterate ends it
    for (t, arch, y), (tw, xw, yw) in zip(got, want, strict=True):
        assert t == tw and y == yw
        assert (arch == toy.problem.archs[xw]).all()
    assert res.iterations == 8 and res.t == want[-1][0]
    assert res.paper_index == want[-1][1]
    # one measurement per distinct design, however many iterations revisit it
    assert res.selection.measurements == len({x for _, x, _ in want})
    assert res.selection.reused == 8 - res.selection.measurements
    assert res.selection.status == "ok" and res.selection.latency == 13.0


def test_delta_stop_and_the_guarantee_against_a_violation_as_written(convex_toy):
    toy = convex_toy
    res = algorithm1(toy.problem, toy.session(), 15.95, delta=0.1, max_iterate=10)
    assert res.trace[res.iterations - 1].decision.startswith("|latency - L| < δ: stop")
    assert res.iterations < 10
    assert toy.target[res.paper_index] == 16.0  # within δ but over the budget
    assert res.selection.status == "ok"
    assert res.selection.latency <= 15.95
    assert res.selection.latency == max(s.latency for s in res.trace if s.latency <= 15.95)
    assert res.selection.latency == 13.0


def test_tcache_is_reused_across_budgets(convex_toy):
    toy = convex_toy
    cache = TCache()
    first = algorithm1(toy.problem, toy.session(), 14.5, 0.1, 6, cache)
    solved = cache.solved
    assert solved == len({s.value for s in first.trace})
    second = algorithm1(toy.problem, toy.session(), 25.0, 0.1, 6, cache)
    assert second.trace[0].value == 0.5 and "cached" in second.trace[0].decision
    new_ts = {s.value for s in second.trace} - {s.value for s in first.trace}
    assert cache.solved == solved + len(new_ts)


def test_infeasible_returns_the_fastest_measured(convex_toy):
    toy = convex_toy
    res = algorithm1(toy.problem, toy.session(), 3.5, 0.01, 10)
    sel = res.selection
    assert sel.status == "infeasible"
    assert sel.latency == min(s.latency for s in res.trace) == 4.0


def test_bad_parameters_are_one_clear_error(convex_toy):
    with pytest.raises(InputError, match="budget"):
        algorithm1(convex_toy.problem, convex_toy.session(), -1.0)
    with pytest.raises(InputError, match="Max_Iterate"):
        algorithm1(convex_toy.problem, convex_toy.session(), 10.0, max_iterate=0)


def test_guarantee_continues_after_a_stop_over_the_budget(convex_toy):
    toy = convex_toy
    res = algorithm1(toy.problem, toy.session(), 15.95, delta=0.1, max_iterate=10)
    assert res.paper_index == int(np.flatnonzero(toy.target[:10] == 16.0)[0])
    phases = [s.phase for s in res.trace]
    assert phases[: res.iterations] == ["search"] * res.iterations
    assert "guarantee" in phases and res.selection.status == "ok"
