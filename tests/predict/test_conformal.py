"""Few-shot intervals honest at every N (fleet calibration blended with cross-conformal on the
device's own measurements) and a few-shot mean that does not get worse with more data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fleetnas.errors import InputError
from fleetnas.predict import DeviceAwarePredictor
from fleetnas.predict.adapt import FewShotLatency
from fleetnas.predict.conformal import blend_offsets, conformal_quantile, own_weight
from fleetnas.predict.interval import IntervalCalibration, components

SMALL = dict(hidden=(32, 32), n_members=2, epochs=10, batch_size=128)
PROBES = np.arange(10)


@pytest.fixture(scope="module")
def prior(sim_fleet, nb201):
    """A device-aware predictor of devices 0-5, calibrated on held-out devices 6 and 7."""
    archs, lat, _ = sim_fleet
    pred = DeviceAwarePredictor(nb201, probes=archs[PROBES], seed=0, **SMALL)
    pred.fit(archs, lat[:6][:, PROBES], lat[:6].T)
    exclude = np.zeros(len(archs), dtype=bool)
    exclude[PROBES] = True
    parts = components(pred, archs, lat[6:].T, lat[6:, PROBES], ["d6", "d7"], exclude=exclude)
    return pred.set_calibration(IntervalCalibration.from_components(parts, beta=1.0))


def test_conformal_quantile_takes_the_finite_sample_rank():
    scores = np.arange(1.0, 20.0)  # 19 scores: rank ceil(20 * 0.9) = 18
    assert conformal_quantile(-scores, 0.9) == 18.0
    assert conformal_quantile(scores[:5], 0.9) == float("inf")
    with pytest.raises(InputError):
        conformal_quantile(scores, 1.0)


def test_blend_moves_from_the_fleet_to_the_device_with_measurements():
    assert own_weight(0, 20.0) == 0.0
    ws = [own_weight(n, 20.0) for n in (1, 10, 40, 200)]
    assert all(a < b for a, b in itertools.pairwise(ws)) and ws[-1] < 1.0
    assert own_weight(5, 0.0) == 1.0
    fleet = (np.array([-1.0]), np.array([2.0]))
    own = (np.array([-3.0]), np.array([3.0]))
    assert blend_offsets(fleet, own, 0.0) == fleet
    lo, hi = blend_offsets(fleet, own, 0.5)
    assert lo[0] == -2.0 and hi[0] == 2.5
    lo, _ = blend_offsets(fleet, (np.array([-np.inf]), np.array([np.inf])), 0.0)
    assert np.isfinite(lo).all()
    with pytest.raises(InputError):
        own_weight(3, -1.0)


def test_probes_alone_give_the_fleet_interval(prior, sim_fleet):
    archs, lat, _ = sim_fleet
    y = lat[7]
    model = FewShotLatency.on(prior, y[PROBES]).fit(archs[PROBES], y[PROBES])
    assert model.meta["n_own"] == 0
    iv = model.predict_interval(archs[100:300])
    fleet = prior.predict_interval(archs[100:300], y[PROBES][None])
    assert np.allclose(
        np.log(iv["upper"] / iv["mean"]), np.log(fleet["upper"] / fleet["mean"])[:, 0]
    )


def test_cross_conformal_covers_near_nominal_on_the_device(prior, sim_fleet, additive_target):
    """A device the fleet does not explain (an additive cost, far from every simulated device):
    with the device's own calibration only, the 90 % interval covers about 90 % of the
    unmeasured designs."""
    archs, _, _ = sim_fleet
    y = additive_target(archs)
    rng = np.random.default_rng(0)
    pick = np.r_[PROBES, rng.choice(np.arange(10, len(archs)), 70, replace=False)]
    model = FewShotLatency.on(prior, y[PROBES], prior_strength=0.0).fit(archs[pick], y[pick])
    rest = np.setdiff1d(np.arange(len(archs)), pick)
    iv = model.predict_interval(archs[rest], 0.9)
    inside = float(np.mean((y[rest] >= iv["lower"]) & (y[rest] <= iv["upper"])))
    assert 0.82 <= inside <= 0.98
    # the device's own calibration, not the fleet's: far narrower on a device it has learned
    fleet = prior.predict_interval(archs[rest], y[PROBES][None], 0.9)
    own_width = np.log(iv["upper"] / iv["lower"]).mean()
    assert own_width < 0.5 * np.log(fleet["upper"] / fleet["lower"]).mean()


def test_more_measurements_do_not_make_the_model_worse(prior, sim_fleet, additive_target):
    archs, _, _ = sim_fleet
    y = additive_target(archs)
    rng = np.random.default_rng(1)
    order = np.r_[PROBES, rng.permutation(np.arange(10, len(archs)))]
    test = order[-500:]
    errs = []
    for n in (10, 20, 40, 80, 160):
        model = FewShotLatency.on(prior, y[PROBES]).fit(archs[order[:n]], y[order[:n]])
        errs.append(float(np.median(np.abs(np.log(model.predict(archs[test]) / y[test])))))
    assert all(b <= 1.05 * a for a, b in itertools.pairwise(errs)), errs
    assert errs[-1] < 0.5 * errs[0], errs


def test_prior_strength_is_checked(prior, sim_fleet):
    _, lat, _ = sim_fleet
    with pytest.raises(InputError):
        FewShotLatency.on(prior, lat[7, PROBES], prior_strength=-1.0)
