"""Calibrated intervals of the device-aware predictor and the few-shot model of one device."""

from __future__ import annotations

import numpy as np
import pytest

from fleetnas.errors import InputError, NotFittedError
from fleetnas.predict import DeviceAwarePredictor
from fleetnas.predict.adapt import FewShotLatency, active_fit, next_designs
from fleetnas.predict.base import Persistable
from fleetnas.predict.interval import (
    IntervalCalibration,
    components,
    coverage,
    cross_fit,
    probe_misfit,
)
from fleetnas.predict.metrics import spearman
from fleetnas.store import InMemoryStore

SMALL = dict(hidden=(32, 32), n_members=2, epochs=10, batch_size=128)
PROBES = np.arange(10)


@pytest.fixture(scope="module")
def fleet(sim_fleet, nb201):
    archs, lat, _ = sim_fleet
    names = [f"d{j}" for j in range(len(lat))]
    groups = ["a", "a", "b", "b", "c", "c", "d", "d"]

    def fit(train: list[str]) -> DeviceAwarePredictor:
        idx = [names.index(n) for n in train]
        p = DeviceAwarePredictor(nb201, probes=archs[PROBES], seed=0, **SMALL)
        return p.fit(archs, lat[idx][:, PROBES], lat[idx].T)

    parts = cross_fit(fit, archs, lat.T, names, groups, PROBES)
    return archs, lat, names, fit, parts


def test_misfit_grows_when_the_fleet_cannot_explain_the_probes(fleet):
    _, lat, names, fit, _ = fleet
    pred = fit(names[:6])
    rng = np.random.default_rng(0)
    scrambled = rng.permutation(lat[6, PROBES])
    mis = probe_misfit(pred, np.stack([lat[6, PROBES], scrambled]))
    assert mis.shape == (2,)
    assert mis[1] > 2 * mis[0]


def test_cross_fit_scores_every_device_without_its_group(fleet):
    archs, _, names, _, parts = fleet
    assert sorted(p.device for p in parts) == sorted(names)
    assert {p.group for p in parts} == {"a", "b", "c", "d"}
    assert all(len(p.r) == len(archs) - len(PROBES) for p in parts)


def test_calibration_covers_held_out_devices_near_nominal(fleet):
    _, _, _, _, parts = fleet
    # calibrate on three groups, read the coverage on the fourth's devices
    for held in ("a", "b", "c", "d"):
        cal = IntervalCalibration.from_components([p for p in parts if p.group != held], 1.0)
        test = [p for p in parts if p.group == held]
        assert 0.5 < coverage(test, cal, 0.9) <= 1.0
    cal = IntervalCalibration.from_components(parts, 1.0)
    assert coverage(parts, cal, 0.9) == pytest.approx(0.9, abs=0.02)
    lo, hi = cal.central(0.9)
    assert lo < 0 < hi
    assert float(cal.exceed(cal.quantile(0.95))) == pytest.approx(0.05, abs=0.01)
    assert (np.diff(cal.quantiles) >= 0).all()
    with pytest.raises(InputError):
        IntervalCalibration.from_components(parts[:1])
    with pytest.raises(InputError):
        cal.central(1.5)


def test_interval_widens_with_misfit_and_survives_the_store(fleet, nb201):
    archs, lat, names, fit, parts = fleet
    pred = fit(names[:6])
    with pytest.raises(NotFittedError):
        pred.predict_interval(archs[:5], lat[6, PROBES])
    pred.set_calibration(IntervalCalibration.from_components(parts, 1.0))
    rng = np.random.default_rng(0)
    feats = np.stack([lat[6, PROBES], rng.permutation(lat[6, PROBES])])
    iv = pred.predict_interval(archs[10:200], feats, level=0.9)
    assert (iv["lower"] < iv["mean"]).all() and (iv["mean"] < iv["upper"]).all()
    width = np.log(iv["upper"] / iv["lower"]).mean(axis=0)
    assert width[1] > width[0]
    p = pred.exceed_probability(archs[10:12], feats[[0, 0]], [1e-9, 1e9])
    assert p[0] > 0.99 and p[1] < 0.01
    store = InMemoryStore()
    pred.save(store, "da")
    back = Persistable.load(store, "da")
    again = back.predict_interval(archs[10:200], feats, level=0.9)
    assert np.allclose(again["upper"], iv["upper"], rtol=1e-5)
    assert back.calibration.devices == pred.calibration.devices
    assert pred.with_kernel(noise=0.2).calibration is None


def test_few_shot_uses_every_measurement(fleet, nb201):
    archs, lat, names, fit, _ = fleet
    pred = fit(names[:6])
    y = lat[7]
    prior = pred.predict(archs, y[PROBES][None])[:, 0]
    model = FewShotLatency.on(pred, y[PROBES])
    seen: list[int] = []
    lookup = {row.tobytes(): i for i, row in enumerate(archs)}
    model, a, _ = active_fit(
        model,
        archs,
        lambda d: y[[lookup[r.tobytes()] for r in d]],
        30,
        archs[PROBES],
        y[PROBES],
        on_step=lambda n, m: seen.append(n),
    )
    assert seen == list(range(10, 41))
    assert len(a) == 40 and len(np.unique(a, axis=0)) == 40
    rest = np.ones(len(archs), dtype=bool)
    rest[[lookup[r.tobytes()] for r in a]] = False
    mean = model.predict(archs[rest])
    assert spearman(y[rest], mean) > spearman(y[rest], prior[rest])
    err = np.median(np.abs(np.log(mean / y[rest])))
    assert err < np.median(np.abs(np.log(prior[rest] / y[rest])))
    iv = model.predict_interval(archs[rest])
    inside = np.mean((y[rest] >= iv["lower"]) & (y[rest] <= iv["upper"]))
    assert inside > 0.6
    nxt = next_designs(model, archs, 5)
    assert not set(nxt.tolist()) & {lookup[r.tobytes()] for r in a}
    store = InMemoryStore()
    model.save(store, "dev7")
    back = Persistable.load(store, "dev7")
    assert isinstance(back, FewShotLatency)
    assert np.allclose(back.predict(archs[:50]), model.predict(archs[:50]), rtol=1e-6)


def test_few_shot_bad_input(fleet):
    archs, lat, names, fit, _ = fleet
    pred = fit(names[:6])
    model = FewShotLatency.on(pred, lat[7, PROBES])
    with pytest.raises(InputError):
        model.fit(archs[:2], lat[7, :2])
    with pytest.raises(InputError):
        model.fit(archs[:5], -lat[7, :5])
    with pytest.raises(InputError):
        FewShotLatency.on(pred, lat[7, :3])
    with pytest.raises(InputError):
        next_designs(model.fit(archs[:10], lat[7, :10]), archs, 1, acquisition="guess")
    with pytest.raises(InputError):
        components(pred, archs, lat[6:7].T, lat[6:7, :3], ["x"])
