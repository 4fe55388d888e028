from __future__ import annotations

import numpy as np
import pytest
import torch

from fleetnas.errors import InputError
from fleetnas.l2o.decode import Decoder, neighbors, refine
from fleetnas.l2o.features import DeviceSet, FeatureSpec
from fleetnas.l2o.generate import L2OOptimizer, generate
from fleetnas.l2o.network import OptimizerNet
from fleetnas.spaces import get_space


def _devices(n: int, k: int = 10, seed: int = 0) -> DeviceSet:
    rng = np.random.default_rng(seed)
    return DeviceSet([f"d{i}" for i in range(n)], probes=np.exp(rng.normal(1, 1, (n, k))))


@pytest.mark.parametrize("name", ["nb201", "fbnet", "ofa_mbv3"])
def test_untrained_network_decodes_valid_canonical_designs(name):
    space = get_space(name)
    devs = _devices(12)
    spec = FeatureSpec("probes").fit(devs)
    net = OptimizerNet(space, spec, hidden=(16,), n_members=3, seed=1)
    lam = np.c_[np.zeros(12), np.linspace(0, 5, 12)]
    logits = net.logits(net.inputs(devs, lam))
    assert logits.shape == (3, 12, space.n_features)
    designs = Decoder(space).argmax(logits)
    assert designs.shape == (3, 12, space.n_decisions)
    flat = designs.reshape(-1, space.n_decisions)
    space.check(flat)
    np.testing.assert_array_equal(space.canonicalize(flat), flat)
    # argmax per decision block, before canonicalization
    off = space.offsets
    j = space.n_decisions - 1
    np.testing.assert_array_equal(designs[..., j], logits[..., off[j] : off[j + 1]].argmax(-1))
    g = generate(L2OOptimizer(net), devs, lam, select="vote")
    space.check(g.archs)
    assert g.archs.shape == (12, space.n_decisions)


def test_segment_softmax_is_a_distribution_per_decision():
    space = get_space("ofa_mbv3")
    net = OptimizerNet(space, FeatureSpec("probes").fit(_devices(3)), hidden=(8,))
    p = net.softmax(torch.randn(5, space.n_features) * 3)
    for j in range(space.n_decisions):
        block = p[:, space.offsets[j] : space.offsets[j + 1]]
        torch.testing.assert_close(block.sum(dim=1), torch.ones(5))


def test_refine_reaches_the_optimum_of_an_additive_score():
    space = get_space("fbnet")
    rng = np.random.default_rng(0)
    cost = rng.normal(size=(space.n_decisions, 9))
    target = cost.argmin(axis=1)

    def score(a, rows):
        return cost[np.arange(space.n_decisions)[None, :], a].sum(axis=1) + 0.0 * rows

    start = space.sample(4, 1)
    res = refine(space, start, score, rounds=space.n_decisions + 1)
    np.testing.assert_array_equal(res.archs, np.repeat(target[None], 4, axis=0))
    assert np.all(res.scores <= score(start, np.arange(4)))
    limited = refine(space, start, score, rounds=1)
    assert limited.rounds == 1
    assert np.all(limited.scores >= res.scores)
    assert limited.evaluations == 4 + 4 * int((space.cardinalities - 1).sum())


def test_neighbors_change_exactly_one_decision():
    space = get_space("nb201")
    a = space.sample(3, 2)
    cand, rows = neighbors(space, a)
    assert len(cand) == 3 * 6 * 4
    diff = (cand != a[rows]).sum(axis=1)
    assert np.all(diff == 1)


def test_bad_logits_width_is_an_input_error():
    with pytest.raises(InputError, match="logits"):
        Decoder(get_space("nb201")).argmax(np.zeros((2, 7)))
