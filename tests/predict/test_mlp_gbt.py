from __future__ import annotations

import numpy as np
import pytest
import torch

from fleetnas.errors import InputError, NotFittedError
from fleetnas.predict import GBTEnsemble, MLPEnsemble, get_predictor, load_predictor
from fleetnas.predict.metrics import spearman
from fleetnas.store import InMemoryStore

SMALL = dict(hidden=(32, 32), n_members=3, epochs=60, batch_size=64)


@pytest.fixture(scope="module")
def data(nb201, additive_target):
    archs = nb201.sample(600, 11)
    return archs[:400], additive_target(archs[:400]), archs[400:], additive_target(archs[400:])


@pytest.fixture(scope="module")
def mlp(nb201, data):
    return MLPEnsemble(nb201, target="log", **SMALL).fit(data[0], data[1])


def test_mlp_learns_and_reports_spread(mlp, data):
    mean, std = mlp.predict_dist(data[2])
    assert spearman(data[3], mean) > 0.9
    assert mean.shape == std.shape == (200,)
    assert (std >= 0).all() and std.max() > 0
    assert np.allclose(mlp.predict(data[2]), mean)


def test_mlp_same_seed_same_result(nb201, data):
    a = MLPEnsemble(nb201, target="log", seed=5, **{**SMALL, "epochs": 5}).fit(data[0], data[1])
    b = MLPEnsemble(nb201, target="log", seed=5, **{**SMALL, "epochs": 5}).fit(data[0], data[1])
    c = MLPEnsemble(nb201, target="log", seed=6, **{**SMALL, "epochs": 5}).fit(data[0], data[1])
    assert np.array_equal(a.predict(data[2]), b.predict(data[2]))
    assert not np.allclose(a.predict(data[2]), c.predict(data[2]))


def test_mlp_torch_module_matches_and_differentiates(mlp, nb201, data):
    module = mlp.torch_module()
    enc = torch.as_tensor(nb201.encode(data[2][:20]))
    assert np.allclose(module(enc).detach().numpy(), mlp.predict(data[2][:20]), rtol=1e-4)
    probs = torch.full((3, nb201.n_features), 0.2, requires_grad=True)
    module(nb201.encode(probs)).sum().backward()
    assert probs.grad is not None and probs.grad.abs().sum() > 0


def test_save_load_roundtrip_and_meta(mlp, nb201, data):
    store = InMemoryStore()
    sha = mlp.save(store, "lat-test")
    assert len(sha) == 64
    back = MLPEnsemble.load(store, "lat-test")
    assert np.allclose(back.predict(data[2]), mlp.predict(data[2]))
    art = store.list_artifacts("predictor")[0]
    assert art.meta["class"] == "MLPEnsemble"
    assert art.meta["space"] == "nb201"
    assert art.meta["data_fingerprint"] == mlp.meta["data_fingerprint"]
    assert art.meta["fleetnas_version"]
    assert isinstance(load_predictor(store, "lat-test"), MLPEnsemble)
    with pytest.raises(InputError, match="not a GBTEnsemble"):
        GBTEnsemble.load(store, "lat-test")


def test_loading_into_another_space_is_refused(mlp):
    with pytest.raises(InputError, match="trained on space 'nb201'"):
        MLPEnsemble.from_bytes(mlp.to_bytes(), "fbnet")


def test_unfitted_predictor_saves_nothing(nb201):
    store = InMemoryStore()
    with pytest.raises(NotFittedError):
        MLPEnsemble(nb201).save(store, "x")
    assert store.list_artifacts() == []
    with pytest.raises(NotFittedError):
        MLPEnsemble(nb201).predict(nb201.sample(2, 0))


@pytest.mark.parametrize(
    ("y", "msg"),
    [
        (lambda y: np.where(np.arange(len(y)) == 3, np.nan, y), "NaN"),
        (lambda y: np.where(np.arange(len(y)) == 2, -1.0, y), "must be positive"),
        (lambda y: np.where(np.arange(len(y)) == 2, 0.0, y), "must be positive"),
        (lambda y: y[:-1], "values for"),
    ],
)
def test_bad_targets(nb201, data, y, msg):
    for cls in (MLPEnsemble, GBTEnsemble):
        with pytest.raises(InputError, match=msg):
            cls(nb201, target="log").fit(data[0], y(data[1]))


def test_too_few_samples_and_wrong_space(nb201, data):
    with pytest.raises(InputError, match="at least 8 training samples"):
        MLPEnsemble(nb201).fit(data[0][:3], data[1][:3])
    with pytest.raises(InputError, match="expects architectures of shape"):
        MLPEnsemble(nb201).fit(np.zeros((20, 22), dtype=int), np.ones(20))


def test_gbt_matches_sklearn_and_roundtrips(nb201, data):
    from sklearn.ensemble import GradientBoostingRegressor

    gbt = GBTEnsemble(nb201, target="log", n_members=2, n_estimators=40, seed=3)
    gbt.fit(data[0], data[1])
    ref = GradientBoostingRegressor(
        n_estimators=40, learning_rate=0.05, max_depth=4, subsample=0.8, random_state=3
    ).fit(nb201.encode(data[0]).astype(float), np.log(data[1]))
    ours = gbt._members(data[2])[0]
    assert np.allclose(ours, ref.predict(nb201.encode(data[2]).astype(float)))
    mean, std = gbt.predict_dist(data[2])
    assert spearman(data[3], mean) > 0.8 and (std >= 0).all()
    back = GBTEnsemble.from_bytes(gbt.to_bytes())
    assert np.array_equal(back.predict(data[2]), mean)
    with pytest.raises(InputError, match="no differentiable"):
        gbt.torch_module()


def test_registry_builds_by_name(nb201):
    p = get_predictor("mlp", nb201, target="log")
    assert isinstance(p, MLPEnsemble) and p.target == "log"
    with pytest.raises(InputError, match="unknown predictor"):
        get_predictor("nope", nb201)
