"""``fleetnas predict`` and ``fleetnas predict fit`` end to end: a HELP device stored in the
store, a user's table-backed device (HELP replay) and this machine's ONNX Runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fleetnas.cli.main import main
from fleetnas.devices import Device
from fleetnas.spaces import get_space
from fleetnas.store import open_store

POOL = ["1080ti_1", "titanx_32", "gold_6240", "silver_4114", "samsung_a50", "essential_ph_1"]


@pytest.fixture(scope="module")
def db(data_dir, tmp_path_factory):
    from fleetnas.data import import_help
    from fleetnas.predict.own_device import fleet_predictor

    path = str(tmp_path_factory.mktemp("predict") / "s.db")
    with open_store(path) as store:
        import_help(store, data_dir, "nb201", [*POOL, "pixel3"])
        store.add_device(Device("my-pixel3", family="mobile_cpu", measurer="table:pixel3"))
        store.add_device(Device("no-meter", family="mobile_cpu"))
        # a small fleet predictor (the CLI builds the full one on first use)
        fleet_predictor(store, get_space("nb201"), pool=POOL, epochs=2, max_designs=1500)
    return path


def _state(db: str) -> tuple[int, int, int]:
    with open_store(db) as store:
        c = store.counts()
        return len(store.list_artifacts()), len(store.list_runs()), sum(c.values())


def test_predict_a_stored_device_with_interval(db, tmp_path, capsys):
    out_csv = tmp_path / "p.csv"
    args = ["predict", "--db", db, "--device", "pixel3", "--space", "nb201", "--sample", "6"]
    assert main([*args, "--json", "--csv", str(out_csv)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == "fleet" and len(out["rows"]) == 6
    assert out["in_pool"] is False  # pixel3 is not one of the predictor's pool devices
    for r in out["rows"]:
        assert 0 < r["lower_ms"] < r["latency_ms"] < r["upper_ms"]
        assert r["measured_ms"] is not None and r["measured_ms"] > 0  # HELP measured them all
    lines = out_csv.read_text().splitlines()
    assert lines[0].startswith("architecture,latency_ms,lower_ms,upper_ms") and len(lines) == 7
    assert main(args) == 0
    assert "fleet model, 90 % interval" in capsys.readouterr().out


def test_fit_a_table_backed_device_then_predict_with_it(db, tmp_path, capsys):
    args = ["predict", "fit", "--db", db, "--device", "my-pixel3", "--space", "nb201"]
    assert main([*args, "--budget-measurements", "20", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["measurements"] == 20  # 10 probes (replayed), 4 held out, 6 chosen
    assert rep["heldout"]["n"] == 4 and rep["designs_fitted"] == 20
    assert -1.0 <= rep["heldout"]["spearman"] <= 1.0 and rep["heldout"]["mape"] >= 0
    assert rep["predictor"] == "my-pixel3/nb201/latency"
    sp = get_space("nb201")
    designs = tmp_path / "d.txt"
    designs.write_text("architecture\n" + "\n".join(sp.format_many(sp.sample(4, 3))) + "\n")
    pred = ["predict", "--db", db, "--device", "my-pixel3", "--space", "nb201"]
    assert main([*pred, "--designs", str(designs), "--json", "--level", "0.8"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == "few-shot" and out["level"] == 0.8 and len(out["rows"]) == 4
    assert all(r["lower_ms"] < r["latency_ms"] < r["upper_ms"] for r in out["rows"])
    assert (
        main([*args, "--budget-measurements", "14"]) == 0
    )  # table output; replays its probes again
    text = capsys.readouterr().out
    assert "held-out" in text and "Spearman" in text


def test_fit_a_fully_stored_device_uses_its_measurements(db, capsys):
    args = ["predict", "fit", "--db", db, "--device", "pixel3", "--space", "nb201", "-N", "6"]
    assert main([*args, "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    # HELP measured every design: nothing new is measured, a sample of the stored ones is
    # fitted and three of them are held out
    assert rep["measurements"] == 0 and rep["heldout"]["n"] == 3
    assert rep["designs_fitted"] == 10 + 300
    assert rep["heldout"]["mape"] < 100


@pytest.mark.parametrize(
    "args,message",
    [
        (["--device", "nope", "--space", "nb201", "--sample", "3"], "unknown device 'nope'"),
        (["--device", "pixel3", "--space", "nb201"], "exactly one of --designs"),
        (["--device", "pixel3", "--space", "nope", "--all"], "unknown space 'nope'"),
        (["--device", "no-meter", "--space", "nb201", "--all"], "probe designs"),
        (["--device", "pixel3", "--space", "nb201", "--all", "--level", "2"], "--level"),
        (["fit", "--device", "nope", "--space", "nb201", "-N", "20"], "unknown device 'nope'"),
        (["fit", "--device", "my-pixel3", "--space", "nb201", "-N", "8"], "too few"),
        (["fit", "--device", "no-meter", "--space", "nb201", "-N", "30"], "no measurer"),
    ],
)
def test_user_mistakes_are_one_line_and_write_nothing(db, capsys, args, message):
    before = _state(db)
    assert main(["predict", "--db", db, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert _state(db) == before


def test_designs_outside_the_space_are_one_line(db, tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("|nor_conv_3x3~0|+|not_an_op~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|\n")
    before = _state(db)
    args = ["predict", "--db", db, "--device", "pixel3", "--space", "nb201"]
    assert main([*args, "--designs", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.txt" in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert _state(db) == before


def test_fit_on_this_machines_onnx_runtime(db, capsys):
    pytest.importorskip("onnxruntime")
    with open_store(db) as store:
        store.add_device(
            Device("local-ort", family="desktop_cpu", measurer="onnxruntime:threads=1")
        )
    args = ["predict", "fit", "--db", db, "--device", "local-ort", "--space", "nb201"]
    assert main([*args, "--budget-measurements", "14", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["measurements"] == 14 and rep["heldout"]["n"] == 3
    with open_store(db) as store:  # the real measurements were stored with the device
        a, v = store.get_measurements(get_space("nb201"), "local-ort", "latency", "median")
    assert len(a) == 14 and np.all(v > 0)
    pred = ["predict", "--db", db, "--device", "local-ort", "--space", "nb201", "--sample", "3"]
    assert main([*pred, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == "few-shot" and len(out["rows"]) == 3
