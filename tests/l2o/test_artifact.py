from __future__ import annotations

import numpy as np
import pytest

from fleetnas.errors import DataError, UnknownNameError
from fleetnas.l2o import artifact
from fleetnas.l2o.features import FeatureSpec
from fleetnas.l2o.generate import L2OOptimizer, generate
from fleetnas.l2o.network import OptimizerNet
from fleetnas.store import InMemoryStore


def test_optimizer_round_trips_through_the_store(toy):
    spec = FeatureSpec("both").fit(toy.train)
    net = OptimizerNet(toy.space, spec, hidden=(16, 8), n_members=2, seed=5)
    net.info["method"] = "method1"
    opt = L2OOptimizer(net, toy.objective, name="toy", probes=toy.probes)
    store = InMemoryStore()
    names = {"accuracy": "toy/accuracy", "latency": "toy/latency"}
    sha = artifact.save_optimizer(store, "toy", opt, names)
    assert len(sha) == 64
    kinds = {(a.kind, a.name) for a in store.list_artifacts()}
    assert {
        ("l2o-optimizer", "toy"),
        ("predictor", "toy/accuracy"),
        ("predictor", "toy/latency"),
    } <= kinds
    back = artifact.load_optimizer(store, "toy")
    lam = np.linspace(0, 3, len(toy.test))
    x = net.inputs(toy.test, np.c_[np.zeros(len(lam)), lam])
    np.testing.assert_allclose(back.net.logits(x), net.logits(x), rtol=1e-6)
    a = generate(opt, toy.test, lam)
    b = generate(back, toy.test, lam)
    np.testing.assert_array_equal(a.archs, b.archs)
    np.testing.assert_allclose(a.score, b.score, rtol=1e-6)
    np.testing.assert_array_equal(back.probes, toy.probes)
    assert back.net.spec.mode == "both" and back.net.info["method"] == "method1"
    bare = artifact.load_optimizer(store, "toy", with_objective=False)
    assert bare.objective is None


def test_missing_and_corrupt_artifacts_fail_clearly():
    with pytest.raises(UnknownNameError, match="unknown optimizer 'nope'"):
        artifact.load_optimizer(InMemoryStore(), "nope")
    with pytest.raises(DataError, match="not a fleetnas optimizer"):
        artifact.from_bytes(b"garbage")
