"""Operator look-up tables measured on a device (``fleetnas predict lut``): the operator space,
the table format read back by the search's reader, the CLI end to end on a simulated device and
on this machine's ONNX Runtime, and the bad-input lines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fleetnas.cli.main import main
from fleetnas.devices import Device
from fleetnas.predict import OFALatencyLUT
from fleetnas.predict import lut_build as lb
from fleetnas.spaces import get_space
from fleetnas.store import open_store

SIM = "sim:family=desktop_cpu,peak_gflops=50,mem_bandwidth_gbs=20,overhead_us=5,knee=1"
ORT_FAST = "onnxruntime:threads=1,warmup=1,repeats=3,processes=1,retries=0"


@pytest.fixture
def db(tmp_path):
    path = str(tmp_path / "s.db")
    with open_store(path) as store:
        store.add_device(Device("sim-a", family="desktop_cpu", measurer=SIM))
        store.add_device(Device("no-meter", family="desktop_cpu"))
    return path


def _state(db: str) -> tuple[int, int, int]:
    with open_store(db) as store:
        c = store.counts()
        return len(store.list_artifacts()), len(store.list_runs()), sum(c.values())


def test_operator_space_covers_every_key_a_design_sums():
    ops = get_space("ofa_mbv3.ops")
    sp = get_space("ofa_mbv3")
    all_keys = set(ops.keys_of(ops.operators()))
    assert len(ops.operators([224])) == 96 and len(all_keys) == len(ops.operators())
    lut = OFALatencyLUT()
    for design in sp.sample(40, 1):
        assert set(lut.op_keys(design)) <= all_keys
    one = ops.operators([224])[5]
    assert (ops.parse(ops.format(one)) == ops.canonicalize(one)).all()


def test_operator_keys_are_those_of_ofas_note10_tables(data_dir):
    from fleetnas.data import read_lut

    ops = get_space("ofa_mbv3.ops")
    tables = read_lut(data_dir, "note10")["tables"]
    for r, table in tables.items():
        assert set(ops.keys_of(ops.operators([r]))) == set(table)


def test_operator_modules_are_the_subnets_blocks():
    import torch

    ops = get_space("ofa_mbv3.ops")
    for arch in ops.operators([160])[[0, 1, 7, -4, -3, -2, -1]]:
        y = ops.to_torch(arch).eval()(torch.randn(*ops.input_shape(arch)))
        key = ops.format(arch)
        out = key.split("output:")[1].split("-")[0].split("x")
        assert y.numel() == int(np.prod([int(v) for v in out]))


def test_table_round_trips_through_the_searchs_reader(db, tmp_path, capsys):
    out = tmp_path / "t.yaml"
    args = ["predict", "lut", "--db", db, "--device", "sim-a", "--space", "ofa_mbv3"]
    assert main([*args, "--resolutions", "160,224", "--check", "8", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "stored latency table 'sim-a/ofa_mbv3/lut'" in text and "Spearman" in text
    sp = get_space("ofa_mbv3")
    designs = sp.sample(20, 3)
    with open_store(db) as store:
        stored = OFALatencyLUT.from_store(store, "sim-a/ofa_mbv3/lut")
        art = store.load_artifact("sim-a/ofa_mbv3/lut", "latency_lut")
    from_file = OFALatencyLUT.from_file(out)
    assert stored.exact_resolutions == [160, 224]
    np.testing.assert_allclose(stored.predict(designs), from_file.predict(designs))
    check = art.meta["check"]
    assert check["n"] == 8 and -1 <= check["spearman"] <= 1 and check["median_rel_error"] >= 0
    # the sum of the stored table is what the check compared with the measured networks
    doc = json.loads(art.payload)
    picked = sp.parse_many(doc["check"]["designs"])
    np.testing.assert_allclose(stored.predict(picked), doc["check"]["predicted_ms"])
    # fleetnas search reads it by name and by file, unchanged
    search = ["search", "--db", db, "--space", "ofa_mbv3", "--latency-ms", "50"]
    search += ["--time-s", "0.2", "--resolutions", "160,224", "--json"]
    for source in ("lut:sim-a/ofa_mbv3/lut", f"lut:{out}"):
        assert main([*search, "--latency", source]) == 0
        res = json.loads(capsys.readouterr().out)
        assert res["latency_source"] == source and res["predicted_latency_ms"] > 0


def test_a_capped_build_resumes_where_it_stopped(db, capsys):
    args = ["predict", "lut", "--db", db, "--device", "sim-a", "--space", "ofa_mbv3"]
    args += ["--resolutions", "224", "--check", "3", "--json"]
    assert main([*args, "--max-measurements", "40"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["complete"] is False and first["measured"] == 40 and "table" not in first
    with open_store(db) as store:
        assert not store.list_artifacts("latency_lut")
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["complete"] and second["reused"] == 40 and second["measured"] == 56


def test_end_to_end_on_this_machines_onnx_runtime(db, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    with open_store(db) as store:
        store.add_device(Device("ort", family="desktop_cpu", measurer=ORT_FAST))
        meter_ops = get_space("ofa_mbv3.ops")
    args = ["predict", "lut", "--db", db, "--device", "ort", "--space", "ofa_mbv3"]
    assert main([*args, "--resolutions", "128", "--check", "3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["complete"] and doc["measured"] == doc["operators"] == 96
    c = doc["check"]
    assert c["n"] == 3 and all(m > 0 for m in c["measured_ms"])
    # real, positive sums within an order of magnitude of the real networks (a loaded machine
    # slows the long network runs far more than the short operator runs)
    ratio = np.array(c["predicted_ms"]) / np.array(c["measured_ms"])
    assert np.all(ratio > 0.05) and np.all(ratio < 20)
    with open_store(db) as store:  # operators and networks are stored under the device
        a, v = store.get_measurements(meter_ops, "ort", "latency", "median")
        assert len(a) == 96 and np.all(v > 0)
        a, _ = store.get_measurements(get_space("ofa_mbv3"), "ort", "latency", "median")
        assert len(a) == 3


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--device", "nope", "--space", "ofa_mbv3"], "nope"),
        (["--device", "sim-a", "--space", "nb201"], "no operator decomposition"),
        (["--device", "sim-a", "--space", "ofa_mbv3", "--resolutions", "225"], "225"),
        (["--device", "sim-a", "--space", "ofa_mbv3", "--resolutions", "x"], "--resolutions"),
        (["--device", "no-meter", "--space", "ofa_mbv3"], "no measurer"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(db, tmp_path, capsys, extra, needle):
    out = tmp_path / "never.yaml"
    before = _state(db)
    assert main(["predict", "lut", "--db", db, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert _state(db) == before and not out.exists()


def test_lut_error_reports_relative_errors_and_rank():
    rep = lb.lut_error(np.array([11.0, 18.0, 33.0]), np.array([10.0, 20.0, 30.0]))
    assert rep["median_rel_error"] == pytest.approx(0.1)
    assert rep["mean_signed_rel_error"] == pytest.approx((0.1 - 0.1 + 0.1) / 3)
    assert rep["spearman"] == pytest.approx(1.0)
