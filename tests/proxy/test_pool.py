"""The proxy pool: choice by similarity on simulated devices, the blend, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from fleetnas.errors import InputError, UnknownNameError
from fleetnas.proxy import BlendConfig, ProxyEntry, ProxyPool


def sim_pool(w, names=range(6)):
    return ProxyPool(
        w.space,
        [
            ProxyEntry(w.devices[i].name, w.fn(w.lat[i]), w.fn(w.en[i]), w.devices[i].device)
            for i in names
        ],
    )


def test_pool_picks_the_device_the_target_was_drawn_around(nb201, sim_world):
    from fleetnas.sim import fleet_around, latency_matrix

    devs = sim_world.devices
    pool = sim_pool(sim_world)
    probes = sim_world.archs[np.random.default_rng(2).choice(len(sim_world.archs), 5)]
    for k in (0, 2, 4):
        twin = fleet_around([devs[k]], 1, rng=10 + k, spread=0.05)[0]
        values = latency_matrix(twin.model, nb201, probes)[0]
        ranking = pool.rank(probes, values, twin.device)
        assert ranking[0].name == devs[k].name
        assert ranking[0].weight > 0.5 and ranking[0].kendall > 0.5


def test_blend_calibrates_scale_and_widens_when_the_fit_is_poor(sim_world):
    w = sim_world
    pool = sim_pool(w, [1])
    rng = np.random.default_rng(3)
    archs, other = w.archs[rng.choice(len(w.archs), 8)], w.archs[rng.choice(len(w.archs), 20)]
    blend = pool.blend()
    truth = 7.0 * w.fn(w.lat[1])(archs) ** 0.9
    blend.fit(archs, truth)
    mu, sd = blend.predict_log(other)
    want = np.log(7.0 * w.fn(w.lat[1])(other) ** 0.9)
    assert np.max(np.abs(mu - want)) < 0.02 and np.all(sd < 0.2)
    noisy = truth * np.exp(np.random.default_rng(0).normal(0, 0.5, len(truth)))
    _, sd_noisy = blend.fit(archs, noisy).predict_log(other)
    assert np.median(sd_noisy) > 2 * np.median(sd)


def test_register_persists_and_reloads_in_one_run(nb201, sim_world):
    from fleetnas.predict import GBTEnsemble
    from fleetnas.store import open_store

    devs = sim_world.devices
    store = open_store("memory://")
    archs = sim_world.archs[:60]
    gbt = GBTEnsemble(nb201, n_members=1, n_estimators=50).fit(archs, sim_world.lat[6][:60])
    pool = ProxyPool(nb201, [])
    runs = len(store.list_runs())
    name = devs[6].name
    pool.register(name, gbt, store, devs[6].device)
    assert len(store.list_runs()) == runs + 1
    again = ProxyPool.from_store(store, nb201)
    assert again.names == [name] and again.get(name).source == "fallback"
    np.testing.assert_allclose(again.get(name).latency(archs), gbt.predict(archs))
    assert store.get_device(name).features == devs[6].device.features


def test_pool_errors_are_clear(sim_world):
    pool = sim_pool(sim_world, [0])
    with pytest.raises(UnknownNameError, match="unknown proxy 'nope'"):
        pool.get("nope")
    with pytest.raises(InputError, match="empty"):
        pool.without(pool.names[0]).blend()
    with pytest.raises(InputError, match="noise"):
        BlendConfig(noise=(0.1, -1.0))


def test_a_partial_table_is_a_proxy_with_its_gaps_filled_and_flagged(nb201):
    from fleetnas.devices import Device
    from fleetnas.proxy import Approach1Config, ReplaySession, Workspace, optimize_device
    from fleetnas.store import MeasurementBatch, open_store

    every = nb201.enumerate()
    lat = 1.0 + nb201.flops(every) / 1e7
    rng = np.random.default_rng(0)
    keep = rng.random(len(every)) > 0.02  # 98 % of the designs
    sparse = rng.random(len(every)) > 0.5  # 50 %: too few to be a proxy
    store = open_store("memory://")
    with store.run("t") as run:
        for name, mask in (("partial", keep), ("sparse", sparse)):
            run.add_device(Device(name, measurer=f"table:{name}"))
            run.add_measurements(
                MeasurementBatch(nb201, every[mask], name, "latency", lat[mask], "ms")
            )
    pool = ProxyPool.from_store(store, nb201)
    assert pool.names == ["partial"]
    e = pool.get("partial")
    assert e.source == "partial-table" and 0.01 < e.filled < 0.03
    pred = e.latency(every)
    assert np.all(np.isfinite(pred)) and np.all(pred > 0)
    np.testing.assert_allclose(pred[keep], lat[keep])
    gap_err = np.abs(np.log(pred[~keep] / lat[~keep]))
    assert np.median(gap_err) < 0.2  # the model fills the gaps near the truth

    ws = Workspace(nb201, lambda a: np.log(nb201.flops(a)), pool)
    target = ReplaySession(nb201, "user", 3.0 * lat)
    budget = float(np.quantile(3.0 * lat, 0.5))
    r = optimize_device(ws, target, budget, config=Approach1Config(), probes=every[[0, 100, 9000]])
    assert r.proxy == "partial" and r.status == "ok" and r.latency <= budget
