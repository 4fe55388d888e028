"""Approach 2 on APQ's space: probes, repair and decoding to valid designs, a tiny training run."""

from __future__ import annotations

import numpy as np
import pytest

from fleetnas.errors import InputError
from fleetnas.l2o import (
    Decoder,
    FeatureSpec,
    L2OOptimizer,
    Method1Config,
    OptimizerNet,
    PredictedObjective,
    for_budget,
    pooled_labels,
    train_method1,
)
from fleetnas.l2o.bitwidth import bitflex_devices, fit_performance, probe_designs, stage1_designs
from fleetnas.predict.compressed_accuracy import ModelledAccuracy
from fleetnas.search import EvolutionConfig
from fleetnas.spaces import get_space
from fleetnas.spaces.apq import BITS, DW_A, KS, KS_COLS


@pytest.fixture(scope="module")
def space():
    return get_space("apq")


def test_probe_and_stage1_designs_are_feasible_and_distinct(space):
    p = probe_designs(space)
    assert p.shape == (10, space.n_decisions)
    assert space.feasible(p).all()
    assert len(np.unique(p, axis=0)) == 10
    s = stage1_designs(space, 60, 0)
    assert space.feasible(s).all()
    assert (space.canonicalize(s) == s).all()
    with pytest.raises(InputError, match="'apq' space"):
        probe_designs(get_space("nb201"))


def test_repair_makes_designs_feasible_and_follows_log_probs(space):
    a = space.sample(5, 0)
    a[:, KS_COLS] = KS.index(7)
    a[:, DW_A] = BITS.index(4)
    assert not space.feasible(a).any()
    fixed = space.repair(a)
    assert space.feasible(fixed).all()
    assert (fixed[:, KS_COLS][space.active_layers(fixed)] == KS.index(7)).all()
    lp = np.full((5, space.n_decisions, 49), -5.0)
    lp[:, KS_COLS, KS.index(5)] = 0.0  # the network prefers 5x5 kernels here
    swapped = space.repair(a, lp)
    assert space.feasible(swapped).all()
    assert (swapped[:, DW_A][space.active_layers(swapped)] == BITS.index(4)).all()
    ok = space.sample(4, 1)
    assert (space.repair(ok) == ok).all()
    with pytest.raises(InputError, match="log-probabilities"):
        space.repair(a, lp[:2])


def test_decoder_always_yields_valid_apq_designs(space):
    dec = Decoder(space)
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (300, space.n_features)).astype(np.float32)
    # push many layers toward the combination the BitFusion table cannot price
    logits[:100, np.asarray(space.offsets)[KS_COLS] + KS.index(7)] += 20
    logits[:100, np.asarray(space.offsets)[DW_A] + BITS.index(4)] += 20
    d = dec.argmax(logits)
    assert d.shape == (300, space.n_decisions)
    assert space.feasible(d).all()
    assert (space.canonicalize(d) == d).all()
    for row in d[:3]:
        assert (space.parse(space.format(row)) == row).all()


@pytest.fixture(scope="module")
def tiny(space):
    probes = probe_designs(space)
    fleet = bitflex_devices(space, probes, 12, rng=1)
    lat, en = fit_performance(
        space, probes, fleet, n_designs=200, seed=0, hidden=(64, 64), n_members=2, epochs=15
    )
    obj = PredictedObjective(space, ModelledAccuracy(space), lat, en, n_reference=256)
    lam = np.c_[np.zeros(5), np.linspace(0.0, 0.95, 5) / (1 - np.linspace(0.0, 0.95, 5))]
    cfg = EvolutionConfig(population=16, children=48, generations=4, patience=2)
    labels, pool = pooled_labels(obj, fleet.devices, lam, anchors=2, config=cfg, seed=0)
    spec = FeatureSpec("probes", n_lambda=2).fit(fleet.devices)
    net = OptimizerNet(space, spec, hidden=(32,), n_members=1, seed=0)
    train_method1(net, fleet.devices, lam, labels, Method1Config(epochs=40, seed=0))
    return L2OOptimizer(net, obj, probes=probes), fleet, labels, pool


def test_pooled_labels_are_feasible_optima_over_the_pool(space, tiny):
    opt, fleet, labels, pool = tiny
    assert labels.shape == (12, 5, space.n_decisions)
    assert space.feasible(labels.reshape(-1, space.n_decisions)).all()
    keys = {r.tobytes() for r in pool}
    assert all(r.tobytes() in keys for r in labels.reshape(-1, space.n_decisions))
    # a larger latency weight never gives a slower label (exact optima over one pool)
    lat = opt.objective.matrix(fleet.devices, labels[0], "latency")[:, 0]
    assert lat[-1] <= lat[0]


def test_tiny_network_trades_accuracy_for_latency_on_unseen_devices(space, tiny):
    opt, _, _, _ = tiny
    probes = probe_designs(space)
    unseen = bitflex_devices(space, probes, 3, rng=42, prefix="unseen")
    lam = np.array([[0.0, 0.0], [0.0, 19.0]])
    dev = unseen.devices.take(np.repeat(np.arange(3), 2))
    d, _ = opt.proposals(dev, np.tile(lam, (3, 1)))
    d = d[0]
    assert space.feasible(d).all()
    true_lat, _ = unseen.cost(space, d)
    lat = true_lat[np.arange(6), np.repeat(np.arange(3), 2)].reshape(3, 2)
    acc = opt.objective.accuracy.predict(d).reshape(3, 2)
    assert (lat[:, 1] < lat[:, 0]).all() and lat[:, 1].sum() < 0.8 * lat[:, 0].sum()
    assert (acc[:, 0] > acc[:, 1]).all()
    # a loose budget (above the most accurate proposal's true latency) is met, with energy too
    budget = 1.5 * lat[:, 0]
    res = for_budget(opt, unseen.devices, budget, margin=1.0)
    true_res, true_en = unseen.cost(space, res.archs)
    assert res.feasible.all() and space.feasible(res.archs).all()
    assert (np.diag(true_res) <= budget).all()
    both = for_budget(opt, unseen.devices, budget, 1.5 * np.diag(true_en), margin=1.0)
    assert both.energy is not None and space.feasible(both.archs).all()


def test_hybrid_with_energy_budget_on_bitfusion_never_returns_a_violation(
    space, tiny, data_dir, monkeypatch
):
    from fleetnas.l2o import DeviceSet, for_budget_verified
    from fleetnas.measure.bitfusion import BitFusionMeasurer
    from fleetnas.predict import BitFusionCost
    from fleetnas.predict.bitfusion import bitfusion_device

    monkeypatch.setenv("FLEETNAS_DATA_DIR", str(data_dir))
    opt, _, _, _ = tiny
    probes = probe_designs(space)
    meter = BitFusionMeasurer(bitfusion_device())
    got = meter.measure(space, probes, ("latency", "energy"))
    dev = DeviceSet(
        ["bitfusion"], probes=got.values["latency"][None], energy_probes=got.values["energy"][None]
    )
    res = for_budget_verified(
        opt, dev, 11.0, [BitFusionMeasurer(bitfusion_device())], energy_mj=25.0, margin=1.0
    )
    assert res.measurements[0] <= 3
    lat = BitFusionCost.from_data(data_dir, "latency").predict(res.archs)[0]
    en = BitFusionCost.from_data(data_dir, "energy").predict(res.archs)[0]
    if res.feasible[0]:
        assert lat <= 11.0 and en <= 25.0
        assert res.measured[0] == pytest.approx(lat)
        assert res.info["measured_energy"][0] == pytest.approx(en)
    with pytest.raises(InputError, match="energy budget"):
        for_budget_verified(
            opt.__class__(
                opt.net,
                PredictedObjective(
                    space, opt.objective.accuracy, opt.objective.latency, n_reference=64
                ),
            ),
            DeviceSet(["b"], probes=dev.probes),
            11.0,
            [meter],
            energy_mj=25.0,
        )
