"""A fleet device priced by an operator look-up table (``measurer: lut:NAME|FILE``): the
measurer itself, a plan end to end on a tiny fleet with a LUT file, and the one-line refusals of
an unknown table or a table of another space."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fleetnas.cli.main import main
from fleetnas.devices import Device
from fleetnas.measure import get_measurer
from fleetnas.predict import OFALatencyLUT
from fleetnas.spaces import get_space
from fleetnas.store import open_store

SIM = "sim:family=desktop_cpu,peak_gflops=50,mem_bandwidth_gbs=20,overhead_us=5,knee=1"


@pytest.fixture
def lut_store(tmp_path: Path, capsys) -> tuple[str, Path]:
    """A store with a simulated device's OFA-MobileNetV3 table (160 and 224 px) and OFA's
    Note10 table registered as the one proxy of Approach 1; the table also as a file."""
    from fleetnas.proxy import ProxyPool

    db = str(tmp_path / "s.db")
    out = tmp_path / "phone.yaml"
    with open_store(db) as store:
        store.add_device(Device("sim-a", family="desktop_cpu", measurer=SIM))
    args = ["predict", "lut", "--db", db, "--device", "sim-a", "--space", "ofa_mbv3"]
    assert main([*args, "--resolutions", "160,224", "--check", "3", "--out", str(out)]) == 0
    capsys.readouterr()
    sp = get_space("ofa_mbv3")
    with open_store(db) as store:
        ProxyPool(sp, []).register("note10", OFALatencyLUT.from_data(), store=store)
    return db, out


def test_the_lut_measurer_prices_designs_as_the_tables_sum(lut_store):
    db, out = lut_store
    sp = get_space("ofa_mbv3")
    x = sp.sample(5, 1)
    with open_store(db) as store:
        before = store.counts()
        meter = get_measurer(f"lut:{out}", store, Device("phone"))
        res = meter.measure(sp, np.concatenate([x, x[:2]]), ("latency",))
        by_name = get_measurer("lut:sim-a/ofa_mbv3/lut", store, Device("p2")).measure(sp, x)
        assert store.counts() == before  # estimates, never written
    want = OFALatencyLUT.from_file(out).predict(x)
    np.testing.assert_allclose(res["latency"][:5], want)
    np.testing.assert_allclose(by_name["latency"], want)
    assert res.is_estimate["latency"] and res.cost.measurements == 5 and res.cost.reused == 2


def test_plan_uses_a_lut_file_as_the_devices_latency(lut_store, tmp_path, capsys, one_device_fleet):
    db, out = lut_store
    sp = get_space("ofa_mbv3")
    lut = OFALatencyLUT.from_file(out)
    budget = float(np.quantile(lut.predict(sp.sample(200, 0)), 0.5))
    fleet = one_device_fleet(f"lut:{out}", round(budget, 3))
    plan = tmp_path / "plan.json"
    args = ["plan", str(fleet), "--space", "ofa_mbv3", "--approach", "proxy"]
    args += ["--executor", "serial", "--db", db, "--out", str(plan), "--json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["ok"] == 1
    (entry,) = json.loads(plan.read_text())["devices"]
    assert entry["measurer"] == f"lut:{out}" and entry["status"] == "ok"
    design = sp.parse(entry["design"])[None, :]
    priced = float(lut.predict(design)[0])
    assert entry["measured"]["latency_ms"] == pytest.approx(priced)
    assert priced <= round(budget, 3) and entry["measurements"] >= 1


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("lut:nope", "no stored latency table 'nope'"),
        ("lut:{missing}", "no latency table file"),
        ("lut:{proxyless}", "of space 'proxylessnas', not 'ofa_mbv3'"),
    ],
)
def test_a_bad_lut_source_is_one_line_exit_2_and_plans_nothing(
    lut_store, tmp_path, capsys, source, needle, one_device_fleet
):
    db, _ = lut_store
    proxyless = tmp_path / "px.json"
    px = {"space": "proxylessnas", "device": "x", "tables": {224: {"Conv-input:224x224x3-o": {
        "count": 1, "mean": 1.0, "std": 0.0}}}}  # fmt: skip
    proxyless.write_text(json.dumps(px))
    spec = source.format(missing=tmp_path / "missing.yaml", proxyless=proxyless)
    fleet = one_device_fleet(spec, 10.0)
    plan = tmp_path / "plan.json"
    with open_store(db) as store:
        before = store.counts(), len(store.list_runs())
    args = ["plan", str(fleet), "--space", "ofa_mbv3", "--approach", "proxy"]
    assert main([*args, "--executor", "serial", "--db", db, "--out", str(plan)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "'phone'" in err and len(err.splitlines()) == 1
    assert not plan.exists()
    with open_store(db) as store:
        assert (store.counts(), len(store.list_runs())) == before
