"""Plans that choose compression per device (issue 17 item 4) and their bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fleetnas.cli.main import main
from fleetnas.data import import_table
from fleetnas.devices.catalog import get_catalog_device
from fleetnas.measure import get_measurer
from fleetnas.spaces import get_space
from fleetnas.store import open_store

REPO = Path(__file__).resolve().parents[2]
STACKS = REPO / "benchmarks" / "results" / "stacks" / "nb201.csv"
ORT = "ptable:fp32=local-ort-t1-b1-fp32-optall,int8=local-ort-t1-b1-int8-optall"
FLEET = f"""
name: mixed-q
devices:
  - name: bitfusion
    catalog: bitfusion
    budgets: [{{latency_ms: 12, energy_mj: 30, label: tight}}]
  - name: ort-t1
    family: local_runtime
    measurer: {ORT}
    budgets: [0.8, {{latency_ms: 1.5, label: mid}}]
  - name: npu-sim
    measurer: sim:family=npu,peak_gflops=500,mem_bandwidth_gbs=20,overhead_us=20,knee=1000
    budgets: [3]
  - name: pixel2
    catalog: pixel2
    budgets: [15]
"""


@pytest.fixture
def stacks_db(help_db: str) -> str:
    with open_store(help_db) as store:
        import_table(store, STACKS, space="nb201")
    return help_db


def _fleet(tmp_path: Path) -> Path:
    p = tmp_path / "mixed.yaml"
    p.write_text(FLEET)
    return p


def _plan(fleet: Path, db: str, out: Path, *extra: str) -> int:
    args = ["plan", str(fleet), "--space", "nb201+q", "--executor", "serial", "--db", db]
    return main([*args, "-q", "--out", str(out), *extra])


def test_ptable_maps_a_uniform_int8_design_to_the_int8_table(stacks_db):
    sp = get_space("nb201+q")
    with open_store(stacks_db) as store:
        m = get_measurer(ORT, store)
        base = m.base_designs(sp)
        assert len(base) > 0
        text = sp.base.format(base[0])
        a = np.stack([sp.parse(f"{text}@q={p}") for p in ("fp32", "int8", "int8,fp32,fp32")])
        a = np.concatenate([a, sp.parse(f"{text}@q=fp32;w=0.5")[None]])
        res = m.measure(sp, a)
        _, fp32 = store.get_measurements(sp.base, "local-ort-t1-b1-fp32-optall", "latency",
                                         statistic="median", archs=base[:1])  # fmt: skip
        _, int8 = store.get_measurements(sp.base, "local-ort-t1-b1-int8-optall", "latency",
                                         statistic="median", archs=base[:1])  # fmt: skip
    lat = res["latency"]
    assert lat[0] == pytest.approx(fp32[0]) and lat[1] == pytest.approx(int8[0])
    assert np.isnan(lat[2:]).all() and set(res.failures) == {2, 3}
    assert res.cost.measurements == 2


def test_bitfusion_is_a_catalog_device_of_the_apq_space(data_dir):
    from fleetnas.predict import BitFusionCost

    dev = get_catalog_device("bitfusion")
    assert dev.features["space"] == "apq" and dev.measurer == "bitfusion"
    sp = get_space("apq")
    a = sp.sample(3, 0)
    res = get_measurer("bitfusion", None, dev).measure(sp, a, ("latency", "energy"))
    assert np.allclose(res["latency"], BitFusionCost.from_data(data_dir).predict(a))
    assert res.cost.measurements == 3


def test_plan_chooses_architecture_and_policy_per_device(stacks_db, tmp_path):
    out = tmp_path / "plan.json"
    assert _plan(_fleet(tmp_path), stacks_db, out) == 0
    plan = json.loads(out.read_text())
    by = {e["key"]: e for e in plan["devices"]}
    assert len(by) == 5 and all(e["status"] == "ok" for e in by.values())
    for e in by.values():
        assert e["accuracy_source"] in ("modelled", "table")
        assert e["measured"]["latency_ms"] <= e["budget"]["latency_ms"]  # 0 violations
        assert "compression" in e
    assert by["pixel2@15ms"]["design"].endswith("@q=fp32;w=1")  # HELP: architecture only
    assert by["pixel2@15ms"]["accuracy_source"] == "table"
    assert by["bitfusion@tight"]["space"] == "apq"
    assert by["bitfusion@tight"]["measured"]["energy_mj"] <= 30
    assert by["ort-t1@mid"]["compression"]["widths"] == [1.0]
    assert set(by["npu-sim@3ms"]["compression"]["calibration"]) == {"fp32", "fp16", "int8"}


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (("--precisions", "int4"), "unknown precision int4"),
        (("--widths", "0.3"), "width ratio 0.3 is not in 'nb201+q'"),
        (("--accuracy-source", "cmd:true"), "accuracy"),
    ],
)
def test_bad_compression_input_is_one_line_exit_2_nothing_written(
    stacks_db, tmp_path, capsys, extra, says
):
    out = tmp_path / "plan.json"
    with open_store(stacks_db) as store:
        plans_before = len(store.list_runs())
    assert _plan(_fleet(tmp_path), stacks_db, out, *extra) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and says in err[0], err
    assert not out.exists()
    with open_store(stacks_db) as store:
        assert len(store.list_runs()) == plans_before


OV = {"fp32": "local-ov-t1-b1-fp32-latency", "int8": "local-ov-t1-b1-int8-latency"}
ORT_T = {"fp32": "local-ort-t1-b1-fp32-optall", "int8": "local-ort-t1-b1-int8-optall"}


def test_monotonicity_over_the_joint_space_is_weaker_than_over_fp32(stacks_db):
    from fleetnas.proxy.monotonicity import device_values, joint_values, pair_stats

    sp = get_space("nb201+q")
    with open_store(stacks_db) as store:
        archs, joint = joint_values(store, sp, {"ort": ORT_T, "ov": OV})
        _, fp32 = device_values(store, sp.base, [ORT_T["fp32"], OV["fp32"]])
    assert len(archs) == 2 * len(fp32) and {a[-6] for a in archs} == {0, 2}
    assert pair_stats(joint[:, 0], joint[:, 1]).kendall < pair_stats(fp32[:, 0], fp32[:, 1]).kendall


def test_report_heatmap_of_a_compressed_plan_covers_the_joint_designs(stacks_db):
    from fleetnas.report.sources import monotonicity_from_store

    plan = {
        "space": "nb201+q",
        "devices": [
            {"key": f"{d}@x", "device": d, "family": "local_runtime", "status": "ok",
             "measurer": "ptable:" + ",".join(f"{k}={v}" for k, v in t.items())}
            for d, t in (("ort", ORT_T), ("ov", OV))
        ],
    }  # fmt: skip
    with open_store(stacks_db) as store:
        data = monotonicity_from_store(plan, store)
    assert data is not None and data.devices == ["ort", "ov"] and data.n_designs >= 90
