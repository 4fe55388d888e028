from __future__ import annotations

import numpy as np

from fleetnas.l2o import method2
from fleetnas.l2o.budget import for_budget
from fleetnas.l2o.features import DeviceSet, FeatureSpec
from fleetnas.l2o.generate import L2OOptimizer, generate
from fleetnas.l2o.network import OptimizerNet
from fleetnas.l2o.objective import PredictedObjective
from fleetnas.predict import DeviceAwarePredictor
from fleetnas.sim import energy_matrix, generate_fleet, latency_matrix


def test_energy_term_trains_and_meets_both_budgets(toy):
    space = toy.space
    sims = generate_fleet(8, rng=6, families=["mobile_cpu", "npu", "desktop_gpu"])
    models = [s.model for s in sims]
    designs = np.concatenate([toy.probes, space.sample(800, 1)])
    lat = latency_matrix(models, space, designs).T
    en = energy_matrix(models, space, designs).T
    k = len(toy.probes)
    kw = {"probes": toy.probes, "hidden": (16,), "n_members": 2, "epochs": 5}
    lat_p = DeviceAwarePredictor(space, **kw).fit(designs, lat[:k].T, lat)
    en_p = DeviceAwarePredictor(space, **kw).fit(designs, en[:k].T, en)
    obj = PredictedObjective(space, toy.objective.accuracy, lat_p, en_p, n_reference=512)
    devs = DeviceSet([s.name for s in sims], probes=lat[:k].T, energy_probes=en[:k].T)
    assert obj.n_lambda == 2
    net = OptimizerNet(space, FeatureSpec("probes", n_lambda=2).fit(devs), hidden=(32,))
    opt = L2OOptimizer(net, obj)
    lam = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    rows = devs.take([0, 0, 0])
    before = obj.score(generate(opt, rows, lam).archs, rows, lam)
    cfg = method2.Method2Config(steps=120, batch_size=128, relaxation="reinforce")
    method2.train_method2(net, obj, devs, config=cfg)
    after = obj.score(generate(opt, rows, lam).archs, rows, lam)
    assert after.mean() < before.mean()
    d = devs.take([1])
    m = obj.matrix(d, obj.reference)[:, 0]
    e = obj.matrix(d, obj.reference, "energy")[:, 0]
    res = for_budget(opt, d, np.quantile(m, 0.6), np.quantile(e, 0.6), margin=0.0)
    assert res.feasible[0]
    assert res.latency_bound[0] <= np.quantile(m, 0.6)
    assert res.energy is not None and res.energy[0] <= np.quantile(e, 0.6) * (1 + 1e-9)
    assert res.info["shares"] == [0.25, 0.5, 0.75]
