"""optimize_device end to end: pool choice, energy, monotonicity fallback, reuse across runs."""

from __future__ import annotations

import numpy as np
import pytest

from fleetnas.devices import Device
from fleetnas.errors import InputError, UnknownNameError
from fleetnas.proxy import (
    Approach1Config,
    ProxyEntry,
    ProxyPool,
    ReplaySession,
    Workspace,
    algorithm1_energy,
    front_variant,
    optimize_device,
)


def workspace(w, names=range(6)) -> Workspace:
    entries = [
        ProxyEntry(w.devices[i].name, w.fn(w.lat[i]), w.fn(w.en[i]), w.devices[i].device)
        for i in names
    ]
    return Workspace(w.space, w.accuracy, ProxyPool(w.space, entries), candidates=w.archs)


def probes(w, k=3):
    return w.archs[np.random.default_rng(9).choice(len(w.archs), k, replace=False)]


def oracle(w, j, lb, eb=None):
    ok = w.lat[j] <= lb
    if eb is not None:
        ok &= w.en[j] <= eb
    return w.acc[ok].max()


@pytest.mark.parametrize("method", ["guided", "front", "algorithm1"])
def test_pool_auto_meets_the_budget_on_a_new_simulated_device(sim_world, method):
    w, j = sim_world, 6
    ws = workspace(w)
    for q in (0.2, 0.5, 0.8):
        lb = float(np.quantile(w.lat[j], q))
        s = ReplaySession(w.space, w.devices[j].name, w.full(w.lat[j]))
        cfg = Approach1Config(method=method)
        r = optimize_device(
            ws, s, lb, config=cfg, probes=probes(w), target_device=w.devices[j].device
        )
        assert r.status == "ok" and r.latency <= lb
        assert r.measurements == s.cost.measurements and r.probes == 3
        assert r.proxy in ws.pool.names and not r.fell_back
        assert oracle(w, j, lb) - r.predicted_accuracy < {"guided": 0.5, "front": 1.0}.get(
            method, 3
        )
        if method == "guided":
            assert r.measurements <= cfg.cap


def test_latency_and_energy_budgets_are_both_met(sim_world):
    w, j = sim_world, 6
    ws = workspace(w)
    lb, eb = float(np.quantile(w.lat[j], 0.6)), float(np.quantile(w.en[j], 0.3))
    s = ReplaySession(w.space, w.devices[j].name, w.full(w.lat[j]), w.full(w.en[j]))
    r = optimize_device(ws, s, lb, eb, probes=probes(w), target_device=w.devices[j].device)
    assert r.status == "ok" and r.latency <= lb and r.energy <= eb
    assert oracle(w, j, lb, eb) - r.predicted_accuracy < 1.0
    for i in range(3):
        prob = ws.problem(w.devices[i].name, with_energy=True)
        for sel in (
            algorithm1_energy(
                prob, ReplaySession(w.space, "t", w.full(w.lat[j]), w.full(w.en[j])), lb, eb
            ),
            front_variant(
                prob, ReplaySession(w.space, "t", w.full(w.lat[j]), w.full(w.en[j])), lb, eb
            ),
        ):
            if sel.status == "ok":
                assert sel.latency <= lb and sel.energy <= eb
            assert sel.measurements <= 2 * 10


def test_fallback_on_a_non_monotone_target_registers_a_new_proxy(sim_world):
    from fleetnas.measure import get_measurer
    from fleetnas.store import MeasurementBatch, open_store

    w = sim_world
    space = w.space
    every = space.enumerate()
    contrary = 50.0 / np.sqrt(space.flops(every) / 1e6)  # slower when the pool says faster
    store = open_store("memory://")
    dev = Device("contrarian", "other", {"cores": 4}, measurer="table:contrarian")
    with store.run("test") as run:
        run.add_device(dev)
        run.add_measurements(
            MeasurementBatch(space, every, "contrarian", "latency", contrary, "ms", method="synth")
        )
    ws = workspace(w)
    budget = float(np.quantile(contrary, 0.5))
    m = get_measurer("table:contrarian", store=store)
    cfg = Approach1Config(fallback_designs=60, max_measurements=80)
    r = optimize_device(ws, m, budget, config=cfg, probes=probes(w, 4), store=store)
    assert r.fell_back and r.registered == "contrarian" and r.proxy == "contrarian"
    assert r.measurements <= 80
    assert r.monotonicity is not None and r.monotonicity.failed
    assert r.fallback_measurements >= 60
    assert r.measurements == m.total_cost.measurements
    assert r.status == "ok" and r.latency <= budget
    assert "contrarian" in ws.pool.names
    assert ProxyPool.from_store(store, space, tables=False).names == ["contrarian"]
    assert any(s.phase == "fallback" for s in r.trace)


def contrarian_store(space):
    """A table-backed target slower where the simulated pool says faster (non-monotone), with
    every tenth design missing from its table."""
    from fleetnas.store import MeasurementBatch, open_store

    every = space.enumerate()
    contrary = 50.0 / np.sqrt(space.flops(every) / 1e6)
    keep = np.arange(len(every)) % 10 != 3
    store = open_store("memory://")
    dev = Device("contrarian", "other", {"cores": 4}, measurer="table:contrarian")
    with store.run("test") as run:
        run.add_device(dev)
        run.add_measurements(
            MeasurementBatch(
                space, every[keep], "contrarian", "latency", contrary[keep], "ms", method="synth"
            )
        )
    return store, contrary, keep


@pytest.mark.parametrize("method", ["guided", "model", "front", "algorithm1"])
@pytest.mark.parametrize("cap", [4, 10])
def test_the_cap_bounds_every_path_on_a_non_monotone_table_with_gaps(sim_world, method, cap):
    from fleetnas.measure import get_measurer

    w = sim_world
    store, contrary, keep = contrarian_store(w.space)
    ws = workspace(w)
    m = get_measurer("table:contrarian", store=store)
    cfg = Approach1Config(method=method, max_measurements=cap, n_probes=3)
    missing = w.space.enumerate()[~keep]
    pr = np.concatenate([missing[:1], probes(w, 2)])  # one probe is not in the table
    for q in (0.1, 0.5, 0.9):
        budget = float(np.quantile(contrary, q))
        r = optimize_device(ws, m, budget, config=cfg, probes=pr, store=None)
        assert r.measurements <= cap
        assert r.registered is None  # no room under the cap for a per-device predictor
        if r.status == "ok":
            assert r.latency <= budget
        assert r.unmeasurable >= 1


def test_measurements_are_reused_from_the_store_across_runs(sim_world):
    from fleetnas.sim import SimMeasurer
    from fleetnas.store import open_store

    w, j = sim_world, 6
    store = open_store("memory://")
    ws = workspace(w)
    lb = float(np.quantile(w.lat[j], 0.5))

    def run():
        m = SimMeasurer(w.devices[j].device, w.devices[j].model, store=store)
        return optimize_device(ws, m, lb, probes=probes(w), store=store), m

    first, _ = run()
    second, m2 = run()
    assert first.measurements >= 4 and first.probes == 3
    assert second.probes == 0 and second.reused >= first.measurements
    assert second.measurements < first.measurements
    assert second.measurements == m2.total_cost.measurements
    assert second.predicted_accuracy >= first.predicted_accuracy


def test_table_replays_keep_a_ledger_across_runs(help_store):
    from fleetnas.measure import get_measurer
    from fleetnas.predict import TableLookup
    from fleetnas.spaces import get_space

    space = get_space("nb201")
    pool = ProxyPool.from_store(help_store, space)
    ws = Workspace(space, TableLookup.nb201_accuracy(store=help_store).predict, pool)
    counts = []
    for _ in range(2):
        m = get_measurer("table:pixel3", store=help_store)
        r = optimize_device(ws, m, 8.0, store=help_store)
        counts.append((r.measurements, m.total_cost.measurements, r.reused))
    assert counts[0][0] == counts[0][1] > 0
    assert counts[1][0] == counts[1][1] < counts[0][0]
    assert counts[1][2] >= 3  # the probes, charged in the first run, come from the ledger


def test_errors_are_one_clear_line(sim_world):
    w = sim_world
    ws = workspace(w)
    s = ReplaySession(w.space, w.devices[6].name, w.full(w.lat[6]))
    with pytest.raises(UnknownNameError, match="unknown proxy 'nope'"):
        optimize_device(ws, s, 1.0, proxy="nope")
    with pytest.raises(InputError, match="same device"):
        optimize_device(
            ws,
            ReplaySession(w.space, w.devices[0].name, w.full(w.lat[0])),
            1.0,
            proxy=w.devices[0].name,
        )
    with pytest.raises(InputError, match="energy"):
        optimize_device(ws, s, 1.0, 2.0)
    with pytest.raises(InputError, match="budget"):
        optimize_device(ws, s, 0.0)
    with pytest.raises(InputError, match="method"):
        Approach1Config(method="magic")
