"""Ground truth of plan entries against brute force over the simulator and a replayed table."""

from __future__ import annotations

import numpy as np
import pytest

from fleetnas.devices import Device
from fleetnas.fleet.ground_truth import GroundTruth, summarize_truth
from fleetnas.predict import TableLookup
from fleetnas.sim import SimDevice, generate_fleet
from fleetnas.spaces import get_space
from fleetnas.store import MeasurementBatch, open_store


@pytest.fixture(scope="module")
def nb201_truth(data_dir) -> GroundTruth:
    truth = GroundTruth.for_space("nb201", "accuracy_cifar10", None)
    assert truth is not None and truth.exact and len(truth.pool) == 15625
    return truth


def _entry(device: Device, design: str | None, budget: float, status: str = "ok") -> dict:
    return {
        "device": device.name,
        "status": status,
        "design": design,
        "budget": {"latency_ms": budget, "energy_mj": None},
    }


def test_sim_truth_matches_brute_force(nb201_truth: GroundTruth, data_dir) -> None:
    space = get_space("nb201")
    acc = TableLookup.nb201_accuracy("cifar10").predict(space.enumerate())
    sims = generate_fleet(4, rng=3)
    devices = {s.name: s.device for s in sims}
    rng = np.random.default_rng(0)
    entries, expect = [], []
    for s in sims:
        lat_all = s.latency(space, space.enumerate())
        for q in (20, 60):
            budget = float(np.percentile(lat_all, q))
            pick = int(rng.integers(len(lat_all)))
            entries.append(_entry(s.device, space.format(space.enumerate()[pick]), budget))
            oracle = acc[lat_all <= budget].max()
            expect.append((lat_all[pick], acc[pick], oracle, lat_all[pick] > budget))
    entries.append(_entry(sims[0].device, None, 1.0, status="failed"))
    nb201_truth.attach(entries, devices)
    for e, (lat, a, oracle, viol) in zip(entries, expect, strict=False):
        t = e["truth"]
        assert t["latency_ms"] == pytest.approx(lat, rel=1e-9)
        assert t["accuracy"] == pytest.approx(a) and t["violation"] == viol
        if viol:
            assert t["regret_pp"] is None and t["oracle_accuracy"] == pytest.approx(oracle)
        else:
            assert t["regret_pp"] == pytest.approx(oracle - a)
    assert entries[-1]["truth"]["accuracy"] is None and entries[-1]["truth"]["regret_pp"] is None
    s = summarize_truth(entries)
    assert s["checked"] == len(entries) and s["violations"] == sum(x[3] for x in expect)


def test_replayed_table_truth_and_unknown_devices(nb201_truth: GroundTruth) -> None:
    space = get_space("nb201")
    archs = space.sample(300, 1)
    lat = np.random.default_rng(2).uniform(1, 10, len(archs))
    dev = Device("replayed", "mobile_cpu", {}, measurer="table:replayed")
    other = Device("blind", "mobile_cpu", {}, measurer=None)
    with open_store("memory://") as store:
        with store.run("import") as run:
            run.add_device(dev)
            run.add_measurements(MeasurementBatch(space, archs, "replayed", "latency", lat, "ms"))
        acc = nb201_truth.accuracy(archs)
        budget = float(np.median(lat))
        i = int(np.flatnonzero(lat <= budget)[0])
        entries = [
            _entry(dev, space.format(archs[i]), budget),
            _entry(other, space.format(archs[i]), budget),
        ]
        nb201_truth.attach(entries, {"replayed": dev, "blind": other}, store)
    t = entries[0]["truth"]
    assert t["latency_ms"] == pytest.approx(lat[i]) and not t["violation"]
    assert t["oracle_accuracy"] == pytest.approx(acc[lat <= budget].max())
    assert t["regret_pp"] == pytest.approx(acc[lat <= budget].max() - acc[i])
    assert entries[1]["truth"] is None


def test_sampled_pool_regret_is_never_negative(data_dir) -> None:
    truth = GroundTruth.for_space("ofa_mbv3", None, None, pool_size=300, seed=1)
    assert truth is not None and not truth.exact
    space = get_space("ofa_mbv3")
    sims = generate_fleet(3, rng=5)
    designs = space.sample(3, 9)
    entries = []
    for s, d in zip(sims, designs, strict=True):
        lat = s.latency(space, d[None, :])[0]
        entries.append(_entry(s.device, space.format(d), float(lat) * 1.01))
    truth.attach(entries, {s.name: s.device for s in sims})
    for e in entries:
        assert e["truth"]["regret_pp"] >= 0 and not e["truth"]["violation"]
        assert e["truth"]["oracle_accuracy"] >= e["truth"]["accuracy"]
    assert SimDevice.from_device(sims[0].device).model == sims[0].model
