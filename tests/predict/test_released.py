"""Released predictors: NAS-Bench-201 lookup, OFA accuracy MLP, Note10 and Pixel 1 tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fleetnas.data import import_nats, import_ofa_assets, read_lut
from fleetnas.data.nats import read_nats
from fleetnas.errors import InputError
from fleetnas.predict import (
    OFAAccuracyPredictor,
    OFALatencyLUT,
    ProxylessLatencyLUT,
    TableLookup,
    proxylessnas_space,
)
from fleetnas.spaces import get_space
from fleetnas.spaces.ofa_mbv3 import R_COL, RESOLUTIONS
from fleetnas.store import InMemoryStore


@pytest.fixture(scope="module")
def ofa():
    return get_space("ofa_mbv3")


@pytest.fixture(scope="module")
def ofa_store(data_dir):
    store = InMemoryStore()
    import_ofa_assets(store, data_dir)
    return store


@pytest.fixture(scope="module")
def note10(data_dir):
    return OFALatencyLUT.from_data(data_dir)


def test_nb201_lookup_is_exact(data_dir, nb201):
    table = TableLookup.nb201_accuracy("cifar10", data_dir=data_dir)
    frame = read_nats(data_dir)
    archs = nb201.parse_many(frame["architecture"].tolist()[:50])
    assert np.allclose(table.predict(archs), frame["accuracy_cifar10"].to_numpy()[:50])
    assert table.complete
    module = table.torch_module()
    enc = torch.as_tensor(nb201.encode(archs))
    assert np.allclose(module(enc).numpy(), table.predict(archs), atol=1e-3)
    uniform = torch.full((1, nb201.n_features), 0.2)
    assert float(module(uniform)) == pytest.approx(frame["accuracy_cifar10"].mean(), rel=1e-4)


def test_nb201_lookup_from_store_and_missing_design(data_dir, nb201):
    store = InMemoryStore()
    import_nats(store, data_dir, ["cifar100"])
    table = TableLookup.nb201_accuracy("cifar100", store=store)
    ref = TableLookup.nb201_accuracy("cifar100", data_dir=data_dir)
    x = nb201.sample(30, 1)
    assert np.allclose(table.predict(x), ref.predict(x))
    partial = TableLookup(nb201).fit(x[:10], np.arange(10.0))
    assert np.array_equal(partial.predict(x[:10]), np.arange(10.0))
    with pytest.raises(InputError, match="has no value in the lookup table"):
        partial.predict(x[10:12])


def test_ofa_accuracy_predictor(data_dir, ofa, ofa_store):
    acc = OFAAccuracyPredictor.from_data(data_dir)
    x = ofa.sample(300, 0)
    y = acc.predict(x)
    assert y.min() > 0.70 and y.max() < 0.86
    biggest = ofa.parse_dict({"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224})
    smallest = ofa.parse_dict({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 160})
    assert acc.predict(biggest)[0] > acc.predict(smallest)[0] + 0.03
    module = acc.torch_module()
    assert np.allclose(module(torch.as_tensor(ofa.encode(x))).detach().numpy(), y, atol=1e-5)
    probs = torch.rand(4, ofa.n_features, requires_grad=True)
    module(ofa.encode(probs)).sum().backward()
    assert probs.grad.abs().sum() > 0
    pct = OFAAccuracyPredictor.from_data(data_dir, percent=True)
    assert np.allclose(pct.predict(x[:5]), 100 * y[:5], rtol=1e-5)
    assert np.allclose(OFAAccuracyPredictor.from_store(ofa_store).predict(x), y)
    tuned = OFAAccuracyPredictor.from_data(data_dir, epochs=30, lr=1e-3).fit(x[:64], y[:64] + 0.05)
    assert np.mean(tuned.predict(x[:64]) - y[:64]) > 0.025
    with pytest.raises(InputError, match="defined on space 'ofa_mbv3'"):
        OFAAccuracyPredictor("ofa_mbv3_w1.0")


def test_note10_keys_exist_and_sum(data_dir, note10, ofa):
    tables = read_lut(data_dir, "note10")["tables"]
    x = ofa.sample(1000, 2)
    table_res = [RESOLUTIONS.index(r) for r in sorted(tables)]
    x[:, R_COL] = np.random.default_rng(2).choice(table_res, size=len(x))
    pred = note10.predict(x)
    for a, p in zip(x, pred, strict=True):
        r = ofa.to_dict(a)["r"]
        keys = note10.op_keys(a)
        missing = [k for k in keys if k not in tables[r]]
        assert not missing
        assert p == pytest.approx(sum(tables[r][k]["mean"] for k in keys))
    assert note10.exact_resolutions == [160, 176, 192, 208, 224]


def test_note10_resolution_rule_and_torch(note10, ofa, ofa_store):
    d = {"ks": [5] * 20, "e": [4] * 20, "d": [3] * 5}
    lat = {r: note10.predict(ofa.parse_dict({**d, "r": r}))[0] for r in (128, 160, 168, 176, 224)}
    assert lat[160] < lat[168] < lat[176] < lat[224]
    assert 0 < lat[128] < lat[160]
    x = ofa.sample(50, 3)
    module = note10.torch_module()
    assert np.allclose(module(torch.as_tensor(ofa.encode(x))).numpy(), note10.predict(x), rtol=1e-5)
    assert np.array_equal(OFALatencyLUT.from_store(ofa_store).predict(x), note10.predict(x))
    back = OFALatencyLUT.from_bytes(note10.to_bytes())
    assert np.array_equal(back.predict(x), note10.predict(x))
    with pytest.raises(InputError, match="built from its measured operator table"):
        note10.fit(x, np.ones(len(x)))


def test_pixel1_table_covers_proxylessnas_space(data_dir, ofa_store):
    lut = ProxylessLatencyLUT.from_data(data_dir)
    table = read_lut(data_dir, "pixel1")["tables"][224]
    space = proxylessnas_space()
    x = space.sample(300, 0)
    for a, p in zip(x, lut.predict(x), strict=True):
        keys = lut.op_keys(a)
        assert all(k in table for k in keys)
        assert p == pytest.approx(sum(table[k]["mean"] for k in keys))
    module = lut.torch_module()
    assert np.allclose(module(torch.as_tensor(space.encode(x))).detach().numpy(), lut.predict(x))
    assert np.allclose(ProxylessLatencyLUT.from_store(ofa_store).predict(x), lut.predict(x))
    assert np.allclose(ProxylessLatencyLUT.from_bytes(lut.to_bytes()).predict(x), lut.predict(x))
