"""The benchmark's ReplaySession gives exactly what the table: measurer path gives."""

from __future__ import annotations

import numpy as np
import pytest

from fleetnas.proxy import (
    Approach1Config,
    MeasurerSession,
    ProxyPool,
    ReplaySession,
    Workspace,
    algorithm1,
    design_codes,
    front_variant,
    optimize_device,
)

PAIRS = [("titan_rtx_32", "pixel3"), ("raspi4", "gold_6226"), ("silver_4210r", "fpga")]


@pytest.fixture(scope="module")
def world(help_store):
    from fleetnas.predict import TableLookup
    from fleetnas.spaces import get_space

    space = get_space("nb201")
    pool = ProxyPool.from_store(help_store, space)
    ws = Workspace(space, TableLookup.nb201_accuracy(store=help_store).predict, pool)
    lat = {}
    for name in pool.names:
        a, v = help_store.get_measurements(space, name, "latency", statistic="mean")
        full = np.full(space.size, np.nan)
        full[design_codes(space, a)] = v
        lat[name] = full
    return space, ws, lat


def _sessions(help_store, space, lat, target):
    from fleetnas.measure import get_measurer

    real = MeasurerSession(get_measurer(f"table:{target}", store=help_store), space, ledger=False)
    return real, ReplaySession(space, target, lat[target])


def _same(a, b):
    assert [(s.arch, s.latency, s.new, s.decision) for s in a.trace] == [
        (s.arch, s.latency, s.new, s.decision) for s in b.trace
    ]


@pytest.mark.parametrize("proxy,target", PAIRS)
def test_algorithm1_and_front_are_identical_on_both_paths(help_store, world, proxy, target):
    space, ws, lat = world
    for q in (0.2, 0.7):
        budget = float(np.quantile(lat[target], q))
        for run in (
            lambda s, b=budget: algorithm1(ws.problem(proxy), s, b, 0.01 * b).selection,
            lambda s, b=budget: front_variant(ws.problem(proxy), s, b),
        ):
            real, replay = _sessions(help_store, space, lat, target)
            a, b = run(real), run(replay)
            _same(a, b)
            assert (a.index, a.status, a.latency) == (b.index, b.status, b.latency)
            assert real.cost.measurements == replay.cost.measurements
            assert real.measurer.total_cost.measurements == replay.cost.measurements
            assert real.cost.device_seconds == pytest.approx(replay.cost.device_seconds)


@pytest.mark.parametrize("target", ["pixel3", "fpga"])
def test_pool_search_is_identical_on_both_paths(help_store, world, target):
    from fleetnas.data import reference_archs

    space, ws, lat = world
    probes = reference_archs(help_store, space)[:3]
    budget = float(np.quantile(lat[target], 0.4))
    real, replay = _sessions(help_store, space, lat, target)
    cfg = Approach1Config()
    a = optimize_device(ws, real, budget, config=cfg, probes=probes)
    b = optimize_device(ws, replay, budget, config=cfg, probes=probes)
    assert a.arch_str == b.arch_str and a.measurements == b.measurements == 1 * a.measurements
    assert [s.to_dict() for s in a.trace] == [s.to_dict() for s in b.trace]
    assert a.measurements == real.measurer.total_cost.measurements <= cfg.cap
