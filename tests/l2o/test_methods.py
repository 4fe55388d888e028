from __future__ import annotations

import numpy as np
import pytest

from fleetnas.errors import InputError
from fleetnas.l2o import method1, method2
from fleetnas.l2o.features import FeatureSpec
from fleetnas.l2o.generate import L2OOptimizer, generate, grid
from fleetnas.l2o.network import OptimizerNet
from fleetnas.l2o.train import lambda_grid


def test_exhaustive_labels_are_argmins_of_the_predicted_objective(toy):
    obj, devs = toy.objective, toy.train.take([0, 3])
    lam = np.array([0.0, 0.5, 3.0])
    labels = method1.exhaustive_labels(obj, devs, lam)
    assert labels.shape == (2, 3, 6)
    sc = obj.scales(devs)
    for j in range(2):
        for k, lv in enumerate(lam):
            rows = np.full(len(toy.all_archs), j)
            scores = obj.score(toy.all_archs, devs.take(rows), lv, sc.take(rows))
            mine = obj.score(labels[j, k][None], devs.take([j]), lv, sc.take([j]))[0]
            assert mine == pytest.approx(scores.min())


def test_method1_learns_the_labels_and_reports_both_losses(toy):
    devs = toy.train
    lam = lambda_grid(12)
    labels = method1.exhaustive_labels(toy.objective, devs, lam)
    net = OptimizerNet(toy.space, FeatureSpec("probes").fit(devs), hidden=(64, 64), seed=0)
    before = method1.label_metrics(net, devs, lam, labels)
    hist = method1.train_method1(
        net, devs, lam, labels, method1.Method1Config(epochs=150, batch_size=32)
    )
    assert hist["design_accuracy"] > 0.9
    assert hist["mse_onehot"] < 0.3 * before["mse_onehot"]
    assert hist["cross_entropy"] < 0.3 * before["cross_entropy"]
    assert hist["loss"][-1] < hist["loss"][0]


def _mean_objective(opt, devs, lam):
    dv, lr, idx = grid(devs, lam)
    sc = opt.objective.scales(devs).take(idx)
    g = generate(opt, dv, lr, scales=sc)
    return float(np.mean(opt.objective.score(g.archs, dv, lr, sc) / (1 + lr[:, 1])))


@pytest.mark.parametrize("relaxation", ["reinforce", "softmax"])
def test_method2_lowers_the_predicted_objective_and_beats_random_designs(toy, relaxation):
    obj, devs = toy.objective, toy.train
    lam = lambda_grid(8, 0.9)
    net = OptimizerNet(toy.space, FeatureSpec("probes").fit(devs), hidden=(64,), seed=3)
    opt = L2OOptimizer(net, obj)
    untrained = _mean_objective(opt, devs, lam)
    cfg = method2.Method2Config(steps=150, batch_size=128, relaxation=relaxation, seed=0)
    hist = method2.train_method2(net, obj, devs, config=cfg)
    trained = _mean_objective(opt, devs, lam)
    dv, lr, idx = grid(devs, lam)
    sc = obj.scales(devs).take(idx)
    rand = toy.space.sample(len(dv), 5)
    random_mean = float(np.mean(obj.score(rand, dv, lr, sc) / (1 + lr[:, 1])))
    assert trained < untrained - 0.02
    assert trained < random_mean - 0.05
    assert len(hist["loss"]) >= 1


def test_method2_rejects_unknown_relaxation(toy):
    net = OptimizerNet(toy.space, FeatureSpec("probes").fit(toy.train), hidden=(8,))
    with pytest.raises(InputError, match="relaxation"):
        method2.train_method2(
            net, toy.objective, toy.train, config=method2.Method2Config(relaxation="x")
        )


def test_ensemble_selection_never_worse_than_its_first_member(toy):
    obj, devs = toy.objective, toy.test
    lam = lambda_grid(6, 0.9)
    labels = method1.exhaustive_labels(obj, toy.train, lambda_grid(10))
    net = OptimizerNet(toy.space, FeatureSpec("probes").fit(toy.train), (32,), n_members=3)
    method1.train_method1(net, toy.train, lambda_grid(10), labels, method1.Method1Config(epochs=20))
    dv, lr, idx = grid(devs, lam)
    sc = obj.scales(devs).take(idx)
    best = generate(L2OOptimizer(net, obj), dv, lr, scales=sc)
    first = generate(L2OOptimizer(net.subset([0]), obj), dv, lr, scales=sc)
    one = obj.score(first.archs, dv, lr, sc)
    assert np.all(best.score <= one + 1e-12)
    refined = generate(L2OOptimizer(net, obj), dv, lr, refine_rounds=2, scales=sc)
    assert np.all(refined.score <= best.score + 1e-12)
    assert refined.evaluations > best.evaluations
