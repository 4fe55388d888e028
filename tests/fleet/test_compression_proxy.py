"""Per-design estimates of compressed designs (issue 17): precision-aware table proxies matched
on probes, verification per policy, and the measurement cap on every path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fleetnas.data import import_table
from fleetnas.devices import Device
from fleetnas.fleet import Budget, Fleet, FleetDevice, Limit, PlanConfig, plan_fleet
from fleetnas.fleet.compression import CompressionPlanner, probes_per_group
from fleetnas.fleet.compression_proxy import match, proxies_for, runtime_of, table_sources
from fleetnas.predict import TableLookup
from fleetnas.spaces import get_space
from fleetnas.store import open_store

N = 40
BUDGET = 1.0


def _ptable(name: str, runtime: str, prefix: str) -> Device:
    spec = f"ptable:fp32={prefix}-fp32,int8={prefix}-int8"
    return Device(name, "local_runtime", {"runtime": runtime}, measurer=spec)


@pytest.fixture
def two_devices(tmp_path: Path, data_dir: Path) -> tuple[str, np.ndarray]:
    """A target and a peer of another runtime over ``N`` NB201 designs: fp32 latency grows
    with accuracy, int8 is 3x slower than fp32 except on the three most accurate designs,
    where it is 0.3x (the same pattern on both, the peer 1.7x slower throughout). Under
    :data:`BUDGET` only those int8 designs and the least accurate fp32 ones fit."""
    sp = get_space("nb201")
    archs = np.unique(sp.sample(400, 7), axis=0)[:N]
    acc = TableLookup.nb201_accuracy().predict(archs)
    rank = np.argsort(np.argsort(acc))
    fp32 = 0.5 + 2.0 * rank / (N - 1)
    ratio = np.where(rank >= N - 3, 0.3, 3.0)
    cols = {
        "tgt-fp32": fp32, "tgt-int8": fp32 * ratio,
        "peer-fp32": 1.7 * fp32, "peer-int8": 1.7 * fp32 * ratio,
    }  # fmt: skip
    lines = ["space,architecture," + ",".join(f"{d}[latency:ms:median]" for d in cols)]
    for i, a in enumerate(archs):
        lines.append(f"nb201,{sp.format(a)}," + ",".join(f"{v[i]:.6f}" for v in cols.values()))
    csv = tmp_path / "two.csv"
    csv.write_text("\n".join(lines) + "\n")
    db = str(tmp_path / "two.db")
    with open_store(db) as store:
        import_table(store, csv, space="nb201")
    best = archs[int(np.argmax(acc))]
    return db, best


def _plan(db: str, estimate: str, cap: int | None = None) -> list[dict]:
    tgt = _ptable("tgt", "rt-a", "tgt")
    peer = _ptable("peer", "rt-b", "peer")
    budget = (Budget(Limit(value=BUDGET), None, "1ms"),)
    fleet = Fleet("two", [FleetDevice(tgt, budget), FleetDevice(peer, budget)], source="test")
    config = PlanConfig(space="nb201+q", truth=False, max_measurements=cap)
    with open_store(db) as store:
        planner = CompressionPlanner(
            config, store, reuse=False, devices=[tgt, peer], estimate=estimate
        )
        run = plan_fleet(fleet, config, store, name=f"t-{estimate}-{cap}", planner=planner)
    return run.entries


def test_per_design_proxy_finds_the_int8_winner_one_factor_misses(two_devices):
    db, best = two_devices
    q = get_space("nb201+q")
    new = {e["device"]: e for e in _plan(db, "per-design")}["tgt"]
    old = {e["device"]: e for e in _plan(db, "one-factor")}["tgt"]
    assert new["status"] == "ok" and new["measured"]["latency_ms"] <= BUDGET
    assert new["compression"]["precision"] == "int8"
    base = q.split(q.parse(new["design"])[None])[0][0]
    assert np.array_equal(base, best)  # the most accurate design, at int8
    assert new["compression"]["proxies"]["int8"]["proxy"] == "table:peer"
    # one factor per precision prices every int8 design 3x fp32 and keeps to fp32
    assert old["compression"]["precision"] != "int8" or old["design"] != new["design"]
    assert old["predicted"]["accuracy"] < new["predicted"]["accuracy"]


@pytest.mark.parametrize("cap", [1, 3, 5])
@pytest.mark.parametrize("estimate", ["per-design", "one-factor"])
def test_max_measurements_holds_with_probes_counted(two_devices, cap, estimate):
    db, _ = two_devices
    for e in _plan(db, estimate, cap):
        assert e["measurements"] <= cap, (e["key"], e["measurements"])
        if e["status"] == "ok":
            assert e["measured"]["latency_ms"] <= BUDGET


def test_probes_leave_room_for_verification():
    assert probes_per_group(12, 2) == 2
    assert probes_per_group(5, 2) == 1
    assert probes_per_group(3, 2) == 0
    assert probes_per_group(1, 1) == 0


def test_a_stack_is_never_its_own_proxy_and_held_out_leaves_its_runtime_family_out():
    ort1 = _ptable("ort-t1", "onnxruntime", "ort1")
    ort2 = _ptable("ort-t2", "onnxruntime", "ort2")
    ov = _ptable("ov", "openvino", "ov")
    shares = Device("copy", "local_runtime", measurer="ptable:fp32=ov-fp32")
    helpdev = Device("pixel2", "mobile_cpu", measurer="table:pixel2")
    sources = table_sources([ort1, ort2, ov, shares, helpdev])
    held = {d.name: [s.device for s in proxies_for(d, sources, True)] for d in (ort1, ov)}
    assert held == {"ort-t1": ["ov", "copy", "pixel2"], "ov": ["ort-t1", "ort-t2", "pixel2"]}
    # a user's plan keeps the same runtime's other stacks (often the best proxies)
    assert [s.device for s in proxies_for(ort1, sources)] == ["ort-t2", "ov", "copy", "pixel2"]
    assert [s.device for s in proxies_for(ov, sources)] == ["ort-t1", "ort-t2", "pixel2"]
    assert runtime_of(shares) == "device:copy"


def test_match_prefers_the_proxy_whose_order_fits_and_the_simulator_on_a_tie():
    meas = np.array([1.0, 4.0])
    m = match("int8", meas, {"sim": np.array([2.0, 2.5]), "table:x": np.array([0.5, 2.0])})
    assert m is not None and m.proxy == "table:x" and m.scale == pytest.approx(2.0)
    one = match("int8", meas[:1], {"sim": np.array([2.0]), "table:x": np.array([0.5])})
    assert one is not None and one.proxy == "sim"
    assert match("int8", np.array([np.nan]), {"sim": np.array([1.0])}) is None


def test_table_options_skip_sources_without_stored_values(two_devices):
    from fleetnas.fleet.compression_proxy import table_options

    db, _ = two_devices
    peer = _ptable("peer", "rt-b", "peer")
    ghost = _ptable("ghost", "rt-c", "ghost")
    q = get_space("nb201+q")
    with open_store(db) as store:
        sp = get_space("nb201")
        base = store.get_measurements(sp, "tgt-fp32", "latency", statistic="median")[0]
        opts = table_options(store, q, base, "int8", table_sources([peer, ghost]))
        assert list(opts) == ["table:peer"] and np.all(opts["table:peer"] > 0)
        assert table_options(store, q, base, "fp16", table_sources([peer])) == {}
