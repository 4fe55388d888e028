from __future__ import annotations

import numpy as np
import pytest
import torch

from fleetnas.errors import InputError
from fleetnas.search.objectives import (
    INFEASIBLE_OFFSET,
    ConstrainedObjective,
    Metrics,
    Normalization,
    ProxyObjective,
    Scale,
    WeightedObjective,
    lambda_to_t,
    reference_set,
    t_to_lambda,
    weighted_objective_torch,
)


def test_scale_uses_quantiles_and_rejects_bad_ranges():
    v = np.arange(101, dtype=float)
    s = Scale.from_values(v, q=0.05)
    assert (s.lo, s.hi) == pytest.approx((5.0, 95.0))
    assert s.apply([5.0, 95.0]) == pytest.approx([0.0, 1.0])
    assert s.invert(s.apply([12.5])) == pytest.approx([12.5])
    const = Scale.from_values(np.full(10, 3.0))
    assert const.hi > const.lo
    with pytest.raises(InputError, match="hi > lo"):
        Scale(2.0, 1.0)
    with pytest.raises(InputError, match="quantile"):
        Scale.from_values(v, q=0.7)


def test_normalization_round_trips_and_names_missing_keys():
    n = Normalization.from_samples(np.arange(10.0), np.arange(10.0) * 2, np.arange(10.0) + 1)
    assert Normalization.from_dict(n.to_dict()) == n
    with pytest.raises(InputError, match="accuracy/latency"):
        Normalization.from_dict({"accuracy": {"lo": 0, "hi": 1}})


def test_reference_set_is_whole_space_when_small(nb201):
    ref = reference_set(nb201, n=100_000)
    assert len(ref) == 15_625
    small = reference_set(nb201, n=500, seed=3)
    assert small.shape == (500, 6)
    assert np.array_equal(small, reference_set(nb201, n=500, seed=3))


def test_normalized_t_optimum_is_invariant_to_affine_latency_change(flops_problem):
    """Same t on a 'device' whose latency is 7x slower plus 3 ms overhead -> same design."""
    p = flops_problem
    archs = p.space.enumerate()
    slow = lambda a: 7.0 * p.latency(a) + 3.0  # noqa: E731
    n_fast = Normalization.fit(p.space, p.accuracy, p.latency)
    n_slow = Normalization.fit(p.space, p.accuracy, slow)
    for t in (0.1, 0.4, 0.8):
        a = ProxyObjective(p.accuracy, p.latency, norm=n_fast, t=t).score(archs)
        b = ProxyObjective(p.accuracy, slow, norm=n_slow, t=t).score(archs)
        assert np.allclose(a, b)
        assert np.argmin(a) == np.argmin(b)


def test_proxy_objectives_match_equations_6_and_7():
    acc = np.array([90.0, 80.0, 70.0])
    lat = np.array([30.0, 20.0, 10.0])
    en = np.array([3.0, 1.0, 2.0])
    norm = Normalization(Scale(70, 90), Scale(10, 30), Scale(1, 3))
    m = Metrics(acc, lat, en)
    one = lambda a: a  # noqa: E731
    s6 = ProxyObjective(one, one, norm=norm, t=0.25).score_metrics(m)
    a_n, l_n, e_n = np.array([1, 0.5, 0]), np.array([1, 0.5, 0]), np.array([1, 0, 0.5])
    assert s6 == pytest.approx(-0.75 * a_n + 0.25 * l_n)
    s7 = ProxyObjective(one, one, one, norm=norm, t=(0.2, 0.3)).score_metrics(m)
    assert s7 == pytest.approx(-0.5 * a_n + 0.2 * l_n + 0.3 * e_n)
    w = WeightedObjective(one, one, one, norm=norm, lam=(0.5, 2.0)).score_metrics(m)
    assert w == pytest.approx(-a_n + 0.5 * e_n + 2.0 * l_n)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        ProxyObjective(one, one, norm=norm, t=1.5)
    with pytest.raises(InputError, match="t1 \\+ t2 <= 1"):
        ProxyObjective(one, one, one, norm=norm, t=(0.7, 0.6))
    with pytest.raises(InputError, match="non-negative"):
        WeightedObjective(one, one, norm=norm, lam=(0.0, -1.0))
    with pytest.raises(InputError, match="needs the latency"):
        ProxyObjective(one, None, norm=norm, t=0.3)
    no_energy_scale = Normalization(Scale(70, 90), Scale(10, 30))
    w0 = WeightedObjective(one, one, one, norm=no_energy_scale, lam=(0.0, 1.0))
    assert w0.needs == ("accuracy", "latency", "energy")  # evaluated for reporting only
    with pytest.raises(InputError, match="no energy scale"):
        WeightedObjective(one, one, one, norm=no_energy_scale, lam=(0.5, 1.0))


def test_t_and_lambda_give_the_same_argmin(flops_problem):
    p = flops_problem
    archs = p.space.enumerate()
    norm = Normalization.fit(p.space, p.accuracy, p.latency)
    for t in (0.0, 0.2, 0.5, 0.9):
        lam2 = float(t_to_lambda(t))
        assert float(lambda_to_t(lam2)) == pytest.approx(t)
        a = ProxyObjective(p.accuracy, p.latency, norm=norm, t=t).score(archs)
        b = WeightedObjective(p.accuracy, p.latency, norm=norm, lam=(0.0, lam2)).score(archs)
        assert a[np.argmin(b)] == pytest.approx(a.min())
    assert float(t_to_lambda(1.0)) == np.inf


def test_constrained_ranks_every_feasible_first_and_skips_infeasible_accuracy():
    seen: list[int] = []

    def acc(a):
        seen.append(len(a))
        return a[:, 0].astype(float)

    lat = lambda a: a[:, 1].astype(float)  # noqa: E731
    archs = np.array([[1, 5], [9, 30], [3, 9], [8, 12], [2, 10]])
    obj = ConstrainedObjective(acc, lat, norm=Normalization(), latency_budget=10.0)
    m = obj.evaluate(archs)
    assert seen == [3]  # only the feasible rows reached the accuracy function
    assert np.isnan(m.accuracy[[1, 3]]).all()
    s = obj.score_metrics(m)
    feasible = obj.feasible(m)
    assert feasible.tolist() == [True, False, True, False, True]
    assert s[feasible].max() < s[~feasible].min()
    assert s[3] < s[1]  # 12 ms violates less than 30 ms
    assert s[3] == pytest.approx(INFEASIBLE_OFFSET + 0.2)
    assert np.argmin(s) == 2
    assert obj.calls == {"accuracy": 3, "latency": 5, "energy": 0}
    with pytest.raises(InputError, match="budget"):
        ConstrainedObjective(acc, lat)


def test_metric_function_returning_wrong_length_is_named():
    obj = ProxyObjective(lambda a: np.zeros(1), lambda a: np.zeros(len(a)), t=0.5)
    with pytest.raises(InputError, match="accuracy function returned 1 values for 3"):
        obj.score(np.zeros((3, 2), dtype=int))


def test_weighted_objective_torch_matches_numpy_and_has_gradients():
    rng = np.random.default_rng(0)
    acc, lat, en = rng.uniform(60, 90, 8), rng.uniform(5, 50, 8), rng.uniform(1, 9, 8)
    norm = Normalization.from_samples(acc, lat, en)
    lam = np.array([0.3, 1.7])
    ref = WeightedObjective(lambda a: a, lambda a: a, lambda a: a, norm=norm, lam=tuple(lam))
    expect = ref.score_metrics(Metrics(acc, lat, en))
    ta = torch.tensor(acc, requires_grad=True)
    out = weighted_objective_torch(ta, torch.tensor(lat), lam, norm, energy=torch.tensor(en))
    assert out.detach().numpy() == pytest.approx(expect)
    out.sum().backward()
    assert ta.grad is not None and torch.all(ta.grad < 0)
    # per-row λ and per-row (per-device) latency scales
    lam_rows = np.tile(lam, (8, 1))
    per_dev = Normalization(
        norm.accuracy, Scale(np.full(8, norm.latency.lo), np.full(8, norm.latency.hi)), norm.energy
    )
    out2 = weighted_objective_torch(
        torch.tensor(acc), torch.tensor(lat), torch.tensor(lam_rows), per_dev, torch.tensor(en)
    )
    assert out2.numpy() == pytest.approx(expect)
