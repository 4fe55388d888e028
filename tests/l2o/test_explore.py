from __future__ import annotations

import numpy as np
import pytest

from fleetnas.errors import InputError
from fleetnas.l2o.explore import STRATEGIES, ExploreConfig, choose, explore
from fleetnas.measure import measurer_for
from fleetnas.predict import DeviceAwarePredictor
from fleetnas.sim import generate_fleet


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategies_return_distinct_new_designs(toy, strategy):
    space = toy.space
    seen = {a.tobytes() for a in space.sample(300, 4)}
    rng = np.random.default_rng(0)
    pred = toy.objective.latency
    out = choose(
        strategy, space, pred, toy.objective.accuracy, toy.train, seen, 25, rng, pool_size=2000
    )
    assert out.shape == (25, 6)
    assert len({a.tobytes() for a in out}) == 25
    assert not ({a.tobytes() for a in out} & seen)


def test_disagreement_picks_more_uncertain_designs_than_random(toy):
    space, pred = toy.space, toy.objective.latency
    rng = np.random.default_rng(1)
    feats = toy.train.probes
    rel = lambda a: (lambda m, s: (s / m).mean())(*pred.predict_dist(a, feats))  # noqa: E731
    dis = choose("disagreement", space, pred, toy.objective.accuracy, toy.train, set(), 30, rng)
    ran = choose("random", space, pred, toy.objective.accuracy, toy.train, set(), 30, rng)
    assert rel(dis) > rel(ran)


def test_algorithm2_grows_the_measured_set_through_measurers(toy):
    space = toy.space
    sims = generate_fleet(3, rng=4, families=["mobile_cpu", "desktop_gpu"])
    measurers = [measurer_for(s.device) for s in sims]
    seen_rounds = []

    def on_round(r, predictor, devices):
        seen_rounds.append(r)
        return {"devices": len(devices)}

    res = explore(
        space,
        measurers,
        toy.probes,
        lambda: DeviceAwarePredictor(space, probes=toy.probes, hidden=(16,), n_members=2, epochs=3),
        toy.objective.accuracy,
        ExploreConfig(strategy="optima", rounds=2, initial=20, per_round=15, pool=1500),
        on_round=on_round,
    )
    assert seen_rounds == [0, 1, 2]
    assert len(res.archs) == 10 + 20 + 2 * 15
    assert len({a.tobytes() for a in res.archs}) == len(res.archs)
    assert res.values.shape == (len(res.archs), 3)
    assert res.measurements == 3 * len(res.archs)
    assert [r.designs for r in res.rounds] == [30, 45, 60]
    assert res.rounds[-1].report == {"devices": 3}
    assert res.predictor.is_fitted


def test_unknown_strategy_is_an_input_error():
    with pytest.raises(InputError, match="strategy"):
        ExploreConfig(strategy="bayes").check()


def test_algorithm2_ends_with_a_trained_optimizer(toy):
    from fleetnas.l2o.explore import algorithm2
    from fleetnas.l2o.generate import generate

    space = toy.space
    sims = generate_fleet(3, rng=8, families=["mobile_cpu", "server_cpu"])
    measurers = [measurer_for(s.device) for s in sims]
    res, opt = algorithm2(
        space,
        measurers,
        toy.probes,
        lambda: DeviceAwarePredictor(space, probes=toy.probes, hidden=(16,), n_members=2, epochs=3),
        toy.objective.accuracy,
        ExploreConfig(strategy="random", rounds=1, initial=20, per_round=10),
        n_synthetic=6,
        hidden=(16,),
    )
    assert opt.objective.latency is res.predictor
    assert np.array_equal(opt.probes, toy.probes)
    g = generate(opt, res.devices, 1.0)
    space.check(g.archs)
    assert res.measurements == 3 * (10 + 20 + 10)
