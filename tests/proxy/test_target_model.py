"""TargetModel: the blend plus a GP residual fitted on the target's own measurements."""

from __future__ import annotations

import numpy as np
import pytest

from fleetnas.devices import Device
from fleetnas.errors import InputError
from fleetnas.proxy import ProxyEntry, ProxyPool, TargetModel, TargetModelConfig, design_codes


@pytest.fixture(scope="module")
def world(nb201):
    every = nb201.enumerate()
    lat = 1.0 + nb201.flops(every) / 1e7
    return nb201, every, lat


def _lookup(space, values: np.ndarray):
    return lambda a: values[design_codes(space, a)]


def _pool(space, tables: dict[str, np.ndarray], devices=None) -> ProxyPool:
    devices = devices or {}
    entries = [ProxyEntry(n, _lookup(space, v), device=devices.get(n)) for n, v in tables.items()]
    return ProxyPool(space, entries)


def test_the_residual_learns_what_no_proxy_knows(world):
    space, every, lat = world
    # the target runs one operation on the first edge 60 % slower than the proxy suggests
    slow_op = every[:, 0] == 3
    target = 2.0 * lat * np.where(slow_op, 1.6, 1.0)
    pool = _pool(space, {"p": lat})
    rng = np.random.default_rng(0)
    seen = rng.choice(len(every), 60, replace=False)
    test = np.setdiff1d(np.flatnonzero(slow_op), seen)[:200]
    model = TargetModel(pool, space, reference=every).fit(every[seen], target[seen])
    blend = pool.blend().fit(every[seen], target[seen])
    err_model = np.abs(model.predict_log(every[test])[0] - np.log(target[test])).mean()
    err_blend = np.abs(blend.predict_log(every[test])[0] - np.log(target[test])).mean()
    assert err_model < 0.8 * err_blend, (err_model, err_blend)
    assert model.residual_weight > 0.5


def test_uncertainty_widens_when_the_pool_fits_poorly(world):
    space, every, lat = world
    rng = np.random.default_rng(1)
    pool = _pool(space, {"p": lat})
    seen = rng.choice(len(every), 25, replace=False)
    good = TargetModel(pool, space, reference=every).fit(every[seen], 3 * lat[seen])
    shuffled = 3 * lat[rng.permutation(len(lat))]
    bad = TargetModel(pool, space, reference=every).fit(every[seen], shuffled[seen])
    probe = every[rng.choice(len(every), 300, replace=False)]
    assert np.median(bad.predict_log(probe)[1]) > 3 * np.median(good.predict_log(probe)[1])
    assert bad.noise > good.noise
    # and a model without the residual equals the blend's calibration (s = 0 is the blend)
    flat = TargetModel(pool, space, config=TargetModelConfig(residual=(0.0,), noise=(0.1,)))
    flat.fit(every[seen], 3 * lat[seen])
    mu = flat.predict_log(probe)[0]
    np.testing.assert_allclose(mu, np.log(3 * lat[design_codes(space, probe)]), atol=0.01)


def test_a_proxy_of_the_targets_own_stack_is_preferred_when_both_fit(world):
    space, every, lat = world
    devices = {
        "public": Device("public", features={"runtime": "tensorrt"}),
        "peer": Device("peer", features={"runtime": "tflite"}),
    }
    pool = _pool(space, {"public": lat, "peer": lat * 1.01}, devices)
    target = Device("mine", features={"runtime": "TFLite"})
    seen = np.random.default_rng(2).choice(len(every), 5, replace=False)
    model = TargetModel(pool, space, target, reference=every).fit(every[seen], 2 * lat[seen])
    assert model.names[model.top] == "peer"
    blend = pool.blend(None, "latency", target).fit(every[seen], 2 * lat[seen])
    assert blend.names[blend.top] == "peer"
    off = pool.blend(None, "latency", None).fit(every[seen], 2 * lat[seen])
    assert off.weights[1] < blend.weights[1]


def test_bad_parameters_are_refused(world):
    with pytest.raises(InputError, match="target model"):
        TargetModelConfig(noise=(0.0,))
    space, _, _ = world
    with pytest.raises(InputError, match="at least one proxy"):
        TargetModel(ProxyPool(space, []), space)
