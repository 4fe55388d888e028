from __future__ import annotations

import numpy as np
import pytest

from fleetnas.errors import InputError
from fleetnas.l2o import method1
from fleetnas.l2o.budget import candidate_list, for_budget, for_budget_verified
from fleetnas.l2o.embed import stored_values
from fleetnas.l2o.features import DeviceSet, FeatureSpec
from fleetnas.l2o.generate import L2OOptimizer
from fleetnas.l2o.network import OptimizerNet
from fleetnas.l2o.train import lambda_grid


@pytest.fixture(scope="module")
def trained(toy):
    lam = lambda_grid(16)
    labels = method1.exhaustive_labels(toy.objective, toy.train, lam)
    net = OptimizerNet(toy.space, FeatureSpec("probes").fit(toy.train), hidden=(64, 64))
    method1.train_method1(
        net, toy.train, lam, labels, method1.Method1Config(epochs=100, batch_size=32)
    )
    return L2OOptimizer(net, toy.objective)


def test_budget_bisection_is_monotone_and_meets_the_predicted_budget(toy, trained):
    dev = toy.test.take([0])
    ref_lat = toy.objective.matrix(dev, toy.objective.reference)[:, 0]
    budgets = np.quantile(ref_lat, [0.1, 0.2, 0.35, 0.5, 0.7, 0.9])
    res = for_budget(trained, dev.take([0] * len(budgets)), budgets, margin=0.5)
    assert res.feasible.all()
    assert np.all(res.latency_bound <= budgets)
    assert np.all(np.diff(res.t) <= 1e-12)  # looser budget -> smaller λ
    assert np.all(np.diff(res.accuracy) >= -1e-9)  # and at least as accurate
    safer = for_budget(trained, dev.take([0] * len(budgets)), budgets, margin=2.0)
    assert np.all(safer.latency <= res.latency + 1e-9)
    refined = for_budget(
        trained, dev.take([0] * len(budgets)), budgets, margin=0.5, refine_rounds=2
    )
    assert np.all(refined.latency_bound <= budgets)
    assert np.all(refined.accuracy >= res.accuracy - 1e-9)


def test_impossible_budget_is_reported_not_hidden(toy, trained):
    res = for_budget(trained, toy.test.take([1]), [1e-6])
    assert not res.feasible[0]
    assert res.latency_bound[0] > 1e-6


def test_budget_errors_are_input_errors(toy, trained):
    with pytest.raises(InputError, match="budgets must be positive"):
        for_budget(trained, toy.test.take([0]), [-1.0])
    with pytest.raises(InputError, match="energy"):
        for_budget(trained, toy.test.take([0]), [5.0], energy_mj=[1.0])


def test_candidate_list_keeps_a_front_around_the_start():
    acc = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 2.5])
    lat = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 5.5])  # the last one is dominated
    bound = lat * 1.2
    idx, start = candidate_list(acc, lat, bound, 6.5, 5)
    assert 9 not in idx
    assert list(lat[idx]) == sorted(lat[idx])
    assert lat[idx][start] == 5.0  # most accurate with bound <= budget
    assert lat[idx][0] == 1.0  # the fastest proposal stays as a fallback
    assert len(idx) == 5


def test_hybrid_never_returns_a_violation_with_the_table_measurer(toy, trained, help_store):
    from fleetnas.measure import get_measurer

    space = toy.space
    name = "pixel3"
    probes = stored_values(help_store, space, name, toy.probes)
    dev = DeviceSet([name], probes=probes[None])
    all_lat = stored_values(help_store, space, name, toy.all_archs)
    budgets = np.quantile(all_lat, [0.05, 0.2, 0.5, 0.8])
    measurers = [get_measurer(f"table:{name}", help_store) for _ in budgets]
    res = for_budget_verified(
        trained, dev.take([0] * len(budgets)), budgets, measurers, max_measurements=3, margin=0.0
    )
    assert np.all(res.measurements <= 3)
    assert res.feasible.any()
    true = stored_values(help_store, space, name, res.archs)
    for k in range(len(budgets)):
        if res.feasible[k]:
            assert res.measured[k] == pytest.approx(true[k])
            assert true[k] <= budgets[k]
    assert sum(m.total_cost.measurements for m in measurers) == int(res.measurements.sum())


@pytest.fixture(scope="module")
def calibrated(toy, trained):
    """The trained optimizer with a copy of its latency network calibrated on 6 simulated
    devices it never saw."""
    from fleetnas.l2o.objective import PredictedObjective
    from fleetnas.predict.interval import IntervalCalibration, components
    from fleetnas.sim import generate_fleet, latency_matrix

    lat = toy.objective.latency.with_kernel()
    sims = generate_fleet(6, rng=5, families=["mobile_cpu", "server_cpu", "npu"])
    designs = np.concatenate([toy.probes, toy.space.sample(400, 9)])
    y = latency_matrix([s.model for s in sims], toy.space, designs).T
    parts = components(lat, designs, y, y[: len(toy.probes)].T, [s.name for s in sims])
    lat.set_calibration(IntervalCalibration.from_components(parts, 1.0))
    obj = PredictedObjective(toy.space, toy.objective.accuracy, lat, n_reference=1024)
    return L2OOptimizer(trained.net, obj)


def test_interval_margin_and_violation_probability(toy, trained, calibrated):
    dev = toy.test.take([0, 0, 0])
    ref_lat = calibrated.objective.matrix(dev.take([0]), calibrated.objective.reference)[:, 0]
    budgets = np.quantile(ref_lat, [0.2, 0.5, 0.8])
    plain = for_budget(trained, dev, budgets)
    assert plain.p_violation is None  # the latency network has no calibration
    with pytest.raises(InputError, match="interval calibration"):
        for_budget(trained, dev, budgets, max_violation=0.05)
    strict = for_budget(calibrated, dev, budgets, max_violation=0.02)
    loose = for_budget(calibrated, dev, budgets, max_violation=0.4)
    assert strict.p_violation is not None and strict.p_violation.shape == (3,)
    ok = strict.feasible
    assert ok.any()
    assert np.all(strict.p_violation[ok] <= 0.02 + 1e-6)
    assert np.all(strict.latency <= loose.latency + 1e-9)
    assert np.all(loose.p_violation[loose.feasible] <= 0.4 + 1e-6)
    old = for_budget(calibrated, dev, budgets, margin=0.5)  # the old margin still works
    assert old.info["max_violation"] is None and old.p_violation is not None
    with pytest.raises(InputError, match="max_violation"):
        for_budget(calibrated, dev, budgets, max_violation=1.5)


def test_hybrid_rules_auto_improvement_and_errors(toy, trained, calibrated, help_store):
    """With a calibrated latency network ``auto`` verifies by expected improvement; both rules
    keep the guarantee and the cap; impossible choices are one clear error."""
    from fleetnas.l2o.budget import hybrid_rule_for
    from fleetnas.measure import get_measurer

    assert hybrid_rule_for(calibrated.objective, "auto", energy=False) == "improvement"
    assert hybrid_rule_for(calibrated.objective, "auto", energy=True) == "bisection"
    assert hybrid_rule_for(trained.objective, "auto", energy=False) == "bisection"
    name = "pixel3"
    space = toy.space
    probes = stored_values(help_store, space, name, toy.probes)
    dev = DeviceSet([name], probes=probes[None])
    all_lat = stored_values(help_store, space, name, toy.all_archs)
    budgets = np.quantile(all_lat, [0.1, 0.5, 0.9])
    for rule in ("improvement", "bisection"):
        measurers = [get_measurer(f"table:{name}", help_store) for _ in budgets]
        res = for_budget_verified(
            calibrated, dev.take([0] * len(budgets)), budgets, measurers, max_measurements=3,
            rule=rule,
        )  # fmt: skip
        assert np.all(res.measurements <= 3) and res.feasible.any()
        true = stored_values(help_store, space, name, res.archs)
        assert np.all(true[res.feasible] <= budgets[res.feasible])
    m = [get_measurer(f"table:{name}", help_store)]
    with pytest.raises(InputError, match="interval calibration"):
        for_budget_verified(trained, dev, budgets[:1], m, rule="improvement")
    with pytest.raises(InputError, match="unknown hybrid rule"):
        for_budget_verified(calibrated, dev, budgets[:1], m, rule="gallop")
