from __future__ import annotations

import numpy as np
import pytest

from fleetnas.errors import InputError
from fleetnas.search.baselines import OFAEvolutionConfig, ofa_evolution, ofa_mutation_groups
from fleetnas.spaces import get_space

RES = [160, 176, 192, 208, 224]


def test_ofa_groups_pair_kernel_and_expansion_per_layer():
    space = get_space("ofa_mbv3")
    groups = ofa_mutation_groups(space)
    names = [d.name for d in space.decisions]
    pairs = [[names[j] for j in cols] for cols, r in groups if len(cols) == 2]
    assert pairs == [[f"ks_{i}", f"e_{i}"] for i in range(20)]
    singles = [names[cols[0]] for cols, r in groups if len(cols) == 1]
    assert singles == [f"d_{s}" for s in range(5)] + ["r"]
    assert [r for _, r in groups].count(True) == 1 and groups[-1][1]
    nb = ofa_mutation_groups(get_space("nb201"))
    assert len(nb) == 6 and not any(r for _, r in nb)


def test_ofa_evolution_respects_budget_granularity_and_seed():
    space = get_space("ofa_mbv3")
    sizes = {"acc": [], "lat": []}

    def acc(a):
        sizes["acc"].append(len(a))
        return np.log(space.params(a))

    def lat(a):
        sizes["lat"].append(len(a))
        return space.flops(a) / 1e6

    budget = 500.0
    cfg = OFAEvolutionConfig(population_size=20, max_time_budget=6)
    r = ofa_evolution(space, acc, lat, budget, cfg, seed=3, allowed={"r": RES})
    assert set(sizes["lat"]) == {1}  # one design per latency call, as OFA does
    assert sizes["acc"] == [20] * 7  # initial population + one batch per generation
    assert r.calls["latency"] == len(sizes["lat"]) >= 20 * 7
    assert r.feasible and lat(r.best[None])[0] <= budget
    assert space.decisions[-1].choices[r.best[-1]] in RES
    assert r.metrics["accuracy"] == pytest.approx(acc(r.best[None])[0])
    assert len(r.history) == 6
    acc_curve = [h.best_accuracy for h in r.history]
    assert acc_curve == sorted(acc_curve)
    again = ofa_evolution(space, acc, lat, budget, cfg, seed=3, allowed={"r": RES})
    assert np.array_equal(again.best, r.best)
    with pytest.raises(InputError, match="too tight"):
        ofa_evolution(space, acc, lat, 1.0, OFAEvolutionConfig(max_rejections=50), seed=0)


def test_batched_search_beats_random_on_ofa_with_the_released_predictors(data_dir):
    from fleetnas.predict import OFAAccuracyPredictor, OFALatencyLUT
    from fleetnas.search import (
        ConstrainedObjective,
        EvolutionConfig,
        Normalization,
        evolve,
        random_search,
    )

    acc = OFAAccuracyPredictor.from_data(data_dir)
    lat = OFALatencyLUT.from_data(data_dir)
    space = acc.space
    allowed = {"r": RES}
    norm = Normalization.fit(space, acc.predict, lat.predict, n=1024)
    mk = lambda: ConstrainedObjective(acc.predict, lat.predict, norm=norm, latency_budget=25.0)  # noqa: E731
    cfg = EvolutionConfig(
        population=50, children=200, generations=10**6, mutation_prob=0.1, max_evaluations=3000
    )
    ours = evolve(space, mk(), cfg, seed=0, allowed=allowed)
    rnd = random_search(space, mk(), n=3000, seed=0, allowed=allowed)
    base = ofa_evolution(
        space,
        acc.predict,
        lat.predict,
        25.0,
        OFAEvolutionConfig(max_time_budget=5),
        seed=0,
        allowed=allowed,
    )
    for r in (ours, rnd, base):
        assert r.feasible and lat.predict(r.best[None])[0] <= 25.0
        assert acc.predict(r.best[None])[0] == pytest.approx(r.metrics["accuracy"], abs=1e-6)
    assert ours.evaluations == 3000
    assert ours.metrics["accuracy"] > rnd.metrics["accuracy"]
    assert ours.metrics["accuracy"] > 0.80
    assert np.all(np.diff(ours.front_metrics.latency) > 0)
    assert ours.front_metrics.latency.max() <= 25.0
