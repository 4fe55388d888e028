from __future__ import annotations

import numpy as np
import pytest
import torch

from fleetnas.devices.catalog import get_catalog_device, numeric_feature_matrix
from fleetnas.errors import InputError, NotFittedError
from fleetnas.predict import DeviceAwarePredictor
from fleetnas.predict.metrics import spearman
from fleetnas.store import InMemoryStore

SMALL = dict(hidden=(32, 32), n_members=3, epochs=15, batch_size=128)
TRAIN, TEST = slice(0, 6), slice(6, 8)


def _probe_feats(values: np.ndarray, probe_idx: np.ndarray) -> np.ndarray:
    """``m x K`` device features from an ``m x n`` value matrix."""
    return values[:, probe_idx]


@pytest.fixture(scope="module")
def setup(sim_fleet, nb201):
    archs, lat, energy = sim_fleet
    probe_idx = np.arange(10)
    pred = DeviceAwarePredictor(nb201, probes=archs[probe_idx], **SMALL)
    pred.fit(archs, _probe_feats(lat[TRAIN], probe_idx), lat[TRAIN].T)
    return archs, lat, energy, probe_idx, pred


def test_adapts_to_unseen_devices_from_probes(setup):
    archs, lat, _, probe_idx, pred = setup
    feats = _probe_feats(lat[TEST], probe_idx)
    mean, std = pred.predict_dist(archs[10:], feats)
    assert mean.shape == std.shape == (len(archs) - 10, 2)
    assert (std > 0).all()
    for j in range(2):
        truth = lat[TEST][j, 10:]
        assert spearman(truth, mean[:, j]) > 0.9
        assert np.median(np.abs(mean[:, j] / truth - 1)) < 0.25


def test_paired_equals_matrix_and_torch_module(setup, nb201):
    archs, lat, _, probe_idx, pred = setup
    feats = _probe_feats(lat[TEST], probe_idx)
    x = archs[20:26]
    full = pred.predict(x, feats)
    rows = np.repeat(feats, 3, axis=0)
    xs = np.concatenate([x[:3], x[3:]])
    paired = pred.predict(xs, rows, paired=True)
    assert np.allclose(paired, np.concatenate([full[:3, 0], full[3:, 1]]))
    module = pred.torch_module()
    enc = torch.tensor(nb201.encode(xs), requires_grad=True)
    dev = torch.tensor(rows, dtype=torch.float32, requires_grad=True)
    out = module(enc, dev)
    assert np.allclose(out.detach().numpy(), paired, rtol=1e-3)
    out.sum().backward()
    assert enc.grad.abs().sum() > 0 and dev.grad.abs().sum() > 0


def test_design_terms_cache_keeps_recent_batches_and_never_pickles(setup):
    import pickle

    from fleetnas.predict.device_aware import CACHED_BATCHES

    archs, lat, _, probe_idx, pred = setup
    feats = _probe_feats(lat[TEST], probe_idx)
    batches = [archs[i * 7 : i * 7 + 5 + i] for i in range(CACHED_BATCHES + 2)]
    pred.clear_cache()
    fresh = [pred.predict(b, feats) for b in batches]
    assert len(pred._cache) == CACHED_BATCHES
    # alternating batches (evicted and kept ones) answer exactly as computed afresh
    for b, want in zip(batches[::-1] + batches, fresh[::-1] + fresh, strict=True):
        np.testing.assert_array_equal(pred.predict(b, feats), want)
    assert len(pred._cache) == CACHED_BATCHES
    back = pickle.loads(pickle.dumps(pred))
    assert back._cache is None
    np.testing.assert_allclose(back.predict(batches[0], feats), fresh[0])


def test_energy_is_just_another_metric(sim_fleet, nb201):
    archs, _, energy = sim_fleet
    probe_idx = np.arange(10)
    pred = DeviceAwarePredictor(nb201, probes=archs[probe_idx], **SMALL)
    pred.fit(archs, energy[TRAIN][:, probe_idx], energy[TRAIN].T)
    mean = pred.predict(archs[10:], energy[TEST][:, probe_idx])
    assert min(spearman(energy[TEST][j, 10:], mean[:, j]) for j in range(2)) > 0.9


def test_same_seed_same_result_and_store_roundtrip(setup, sim_fleet, nb201):
    archs, lat, _, probe_idx, pred = setup
    feats = _probe_feats(lat[TEST], probe_idx)
    twin = DeviceAwarePredictor(nb201, probes=archs[probe_idx], **SMALL)
    twin.fit(archs, _probe_feats(lat[TRAIN], probe_idx), lat[TRAIN].T)
    assert np.array_equal(twin.predict(archs[:50], feats), pred.predict(archs[:50], feats))
    store = InMemoryStore()
    pred.save(store, "lat-aware")
    back = DeviceAwarePredictor.load(store, "lat-aware")
    assert np.allclose(back.predict(archs[:50], feats), pred.predict(archs[:50], feats))
    assert store.list_artifacts("predictor")[0].meta["n_devices"] == 6


def test_probe_choice(setup):
    archs, lat, _, _, pred = setup
    chosen = pred.suggest_probes(archs, k=10)
    assert chosen.shape == (10, 6)
    prof = pred.profile(chosen)
    assert np.all(np.diff(prof) >= 0)
    idx = [int(np.flatnonzero((archs == c).all(axis=1))[0]) for c in chosen]
    other = pred.with_probes(chosen)
    mean = other.predict(archs, lat[TEST][:, idx])
    assert spearman(lat[TEST][0], mean[:, 0]) > 0.9


def test_spec_and_both_modes(sim_fleet, nb201):
    archs, lat, _ = sim_fleet
    names = [
        "1080ti_1",
        "titanx_32",
        "gold_6226",
        "silver_4114",
        "pixel3",
        "samsung_a50",
        "titan_rtx_1",
        "gold_6240",
    ]
    spec = numeric_feature_matrix([get_catalog_device(n) for n in names])
    probe_idx = np.arange(10)
    feats = np.c_[lat[:, probe_idx], spec]
    both = DeviceAwarePredictor(nb201, probes=archs[probe_idx], features="both", **SMALL)
    both.fit(archs, feats[TRAIN], lat[TRAIN].T)
    assert both.n_device_features == 10 + spec.shape[1]
    mean = both.predict(archs, feats[TEST])
    assert spearman(lat[TEST][0], mean[:, 0]) > 0.8
    zero_shot = DeviceAwarePredictor(nb201, features="spec", **SMALL)
    zero_shot.fit(archs, spec[TRAIN], lat[TRAIN].T)
    m, s = zero_shot.predict_dist(archs, spec[TEST])
    assert np.isfinite(m).all() and (m > 0).all() and (s >= 0).all()
    with pytest.raises(InputError, match="differentiable module is defined"):
        zero_shot.torch_module()
    with pytest.raises(NotFittedError):
        _ = DeviceAwarePredictor(nb201, features="spec").n_device_features


def test_bad_input(setup, sim_fleet, nb201):
    archs, lat, _, probe_idx, pred = setup
    feats = _probe_feats(lat[TEST], probe_idx)
    with pytest.raises(InputError, match="must have 10 columns"):
        pred.predict(archs, feats[:, :5])
    bad = feats.copy()
    bad[1, 3] = np.nan
    with pytest.raises(InputError, match="device row 1 has a missing"):
        pred.predict(archs, bad)
    bad[1, 3] = -2.0
    with pytest.raises(InputError, match="must be positive"):
        pred.predict(archs, bad)
    with pytest.raises(InputError, match="no device features"):
        pred.predict(archs, np.zeros((0, 10)))
    fresh = DeviceAwarePredictor(nb201, probes=archs[probe_idx], **SMALL)
    y = lat[TRAIN].T.copy()
    y[5, 2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        fresh.fit(archs, lat[TRAIN][:, probe_idx], y)
    with pytest.raises(InputError, match="at least 2 devices"):
        fresh.fit(archs, lat[:1, probe_idx], lat[:1].T)
    with pytest.raises(InputError, match="needs at least 10"):
        fresh.fit(archs[:8], lat[TRAIN][:, probe_idx], lat[TRAIN][:, :8].T)
    with pytest.raises(InputError, match="needs the probe designs"):
        DeviceAwarePredictor(nb201)
    with pytest.raises(InputError, match="paired prediction needs"):
        pred.predict(archs[:5], feats, paired=True)
    assert not fresh.is_fitted


def test_long_format_fit(sim_fleet, nb201):
    archs, lat, _ = sim_fleet
    probe_idx = np.arange(10)
    n = 300
    rows = np.concatenate([archs[:n], archs[:n]])
    feats = np.repeat(lat[:2, probe_idx], n, axis=0)
    y = np.concatenate([lat[0, :n], lat[1, :n]])
    pred = DeviceAwarePredictor(nb201, probes=archs[probe_idx], **SMALL).fit(rows, feats, y)
    distinct = len(np.unique(archs[:n], axis=0))
    assert pred.meta["n_devices"] == 2 and pred.meta["n_train"] == 2 * distinct


def test_flops_profile_is_one_more_trunk_output(sim_fleet, nb201, setup):
    archs, lat, _ = sim_fleet
    probe_idx = np.arange(10)
    plain = DeviceAwarePredictor(nb201, probes=archs[probe_idx], flops_profile=False, **SMALL)
    plain.fit(archs, lat[TRAIN][:, probe_idx], lat[TRAIN].T)
    assert plain.profile(archs[:3]).shape == (3,)
    assert plain._zp.shape[-1] == 6 and setup[4]._zp.shape[-1] == 7
    mean = plain.predict(archs[10:], lat[TEST][:, probe_idx])
    assert spearman(lat[TEST][0, 10:], mean[:, 0]) > 0.9
