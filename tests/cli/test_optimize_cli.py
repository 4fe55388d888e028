"""``fleetnas optimize`` and ``fleetnas monotonicity`` on replayed HELP devices."""

from __future__ import annotations

import json

import pytest

from fleetnas.cli.main import main


@pytest.fixture(scope="module")
def db(data_dir, tmp_path_factory):
    from fleetnas.data import import_help, import_nats
    from fleetnas.store import open_store

    path = str(tmp_path_factory.mktemp("a1") / "s.db")
    with open_store(path) as store:
        import_help(store, data_dir, "nb201", ["pixel3", "raspi4", "gold_6226", "titan_rtx_32"])
        import_nats(store, data_dir, ["cifar10"])
    return path


def test_json_run_on_a_help_device(db, capsys):
    assert main(["optimize", "--db", db, "--device", "pixel3", "--latency-ms", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["format"] == "fleetnas-optimize/1"
    assert out["status"] == "ok" and out["latency_ms"] <= 8.0 and out["device"] == "pixel3"
    assert out["latency_budget_ms"] == 8.0 and out["latency"] == out["latency_ms"]
    assert out["deprecated_keys"]["latency"] == "use latency_ms"
    assert out["proxy"] in {"raspi4", "gold_6226", "titan_rtx_32"}
    assert 3 <= out["measurements"] <= (20 if out["cap_extended"] else 10)
    assert out["probes"] == 3 and out["cap"] == 20
    assert out["trace"][0]["phase"] == "probe" and out["design"].startswith("|")
    steps = [s for s in out["trace"] if s["phase"] == "search"]
    assert all(s["key"].startswith("L'=") for s in steps)


def test_table_output_and_algorithm1_trace(db, capsys):
    args = ["optimize", "--db", db, "--device", "gold_6226", "--latency-ms", "9"]
    assert main([*args, "--proxy", "titan_rtx_32", "--method", "algorithm1"]) == 0
    text = capsys.readouterr().out
    assert "t=0.5" in text and "ok" in text and "measured latency" in text


@pytest.mark.parametrize(
    "args,message",
    [
        (["--device", "nope", "--latency-ms", "8"], "unknown device 'nope'"),
        (["--device", "pixel3", "--latency-ms", "-1"], "latency budget must be a positive"),
        (["--device", "pixel3", "--latency-ms", "8", "--proxy", "nope"], "unknown proxy 'nope'"),
        (["--device", "pixel3", "--latency-ms", "8", "--method", "x"], "method must be one of"),
        (["--device", "pixel3", "--latency-ms", "8", "--energy-mj", "5"], "energy"),
    ],
)
def test_user_mistakes_are_one_line(db, capsys, args, message):
    assert main(["optimize", "--db", db, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2


def test_monotonicity_stats_and_figure4(db, tmp_path, capsys):
    png = tmp_path / "fig4.png"
    args = ["monotonicity", "raspi4", "pixel3", "--db", db, "--plot", str(png), "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 15625 and 0.9 < out["spearman"] <= 1.0
    assert 0 < out["flip_share"] < 0.2 and png.exists()
    assert main(["monotonicity", "raspi4", "nope", "--db", db]) == 2
    assert "unknown device 'nope'" in capsys.readouterr().err
