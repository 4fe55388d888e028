from __future__ import annotations

import json

import numpy as np
import pytest

from fleetnas.cli.main import main
from fleetnas.errors import InputError
from fleetnas.l2o import artifact
from fleetnas.l2o.features import FeatureSpec
from fleetnas.l2o.generate import L2OOptimizer
from fleetnas.l2o.network import OptimizerNet
from fleetnas.store import SQLStore


@pytest.fixture
def toy_db(toy, tmp_path):
    path = tmp_path / "store.db"
    net = OptimizerNet(toy.space, FeatureSpec("probes").fit(toy.train), hidden=(16,), seed=2)
    with SQLStore(f"sqlite:///{path}") as store:
        artifact.save_optimizer(
            store, "toy", L2OOptimizer(net, toy.objective, probes=toy.probes),
            {"accuracy": "toy/acc", "latency": "toy/lat"},
        )  # fmt: skip
    return str(path)


def _features(toy) -> str:
    return ",".join(f"{v:.6g}" for v in toy.test.probes[0])


def test_generate_json_for_raw_features_weight_and_budget(toy, toy_db, capsys):
    args = ["l2o", "generate", "toy", "--features", _features(toy), "--db", toy_db, "--json"]
    assert main([*args, "--lambda", "0.5"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "fleetnas-l2o-generate/1" and doc["optimizer"] == "toy"
    # the toy optimizer is on nb201: its calibrated margin, as `plan` would take
    assert doc["margin"] == 0.5
    rows = doc["designs"]
    assert len(rows) == 1 and rows[0]["lambda"] == [0.0, 0.5]
    toy.space.parse(rows[0]["arch"])
    assert rows[0]["predicted_latency_ms"] > 0
    assert main([*args, "--latency-ms", "1e9"]) == 0
    row = json.loads(capsys.readouterr().out)["designs"][0]
    assert row["feasible"] is True and row["latency_bound_ms"] <= 1e9
    toy.space.parse(row["arch"])


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (
            ["l2o", "generate", "nope", "--features", "1,2", "--lambda", "1"],
            "unknown optimizer 'nope'",
        ),
        (
            ["l2o", "generate", "toy", "--features", "1,2", "--lambda", "1", "--latency-ms", "3"],
            "not both",
        ),
        (["l2o", "generate", "toy", "--lambda", "1"], "exactly one of --device"),
        (
            ["l2o", "generate", "toy", "--features", "1,x", "--lambda", "1"],
            "comma-separated numbers",
        ),
        (
            ["l2o", "generate", "toy", "--features", "1,2", "--lambda", "1"],
            "10 transformed device features",
        ),
        (["l2o", "generate", "toy", "--device", "ghost", "--lambda", "1"], "unknown device"),
        (["l2o", "train", "nb999", "--name", "x"], "unknown space"),
    ],
)
def test_mistakes_are_one_line_exit_2(toy_db, capsys, argv, needle):
    assert main([*argv, "--db", toy_db]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err
    assert "Traceback" not in err and len(err.splitlines()) <= 2


def test_margin_default_is_one_per_space_for_every_verb():
    from fleetnas.cli.common import margin_for
    from fleetnas.l2o.budget import default_margin

    assert (default_margin("nb201"), default_margin("ofa_mbv3"), default_margin("fbnet")) == (
        0.5,
        2.5,
        1.0,
    )
    assert margin_for("nb201", None) == 0.5 and margin_for("nb201", 2.0) == 2.0


def test_train_from_the_store_then_generate_for_a_help_device(help_store, capsys):
    from fleetnas.l2o.query import Query, answer
    from fleetnas.l2o.train import TrainConfig, train_optimizer

    cfg = TrainConfig(
        space="nb201", name="tiny", devices=["pixel3", "gold_6240", "titanx_32"], synthetic=6,
        hidden=(32,), epochs=5, n_lambda=6, predictor_epochs=2,
    )  # fmt: skip
    trained, report = train_optimizer(help_store, cfg)
    assert report["designs"] == 15625 and report["predictors"]["latency"] == "tiny/latency"
    back = artifact.load_optimizer(help_store, "tiny")
    x = trained.net.inputs(trained.devices(np.arange(1.0, 11.0)), np.zeros((1, 2)))
    np.testing.assert_allclose(back.net.logits(x), trained.net.logits(x), rtol=1e-6)
    rows = answer(
        help_store,
        back,
        [Query(device=help_store.get_device("raspi4"), lam=(0.0, 1.0)),
         Query(device=help_store.get_device("raspi4"), latency_quantile=50.0)],
    )  # fmt: skip
    assert [r["device"] for r in rows] == ["raspi4", "raspi4"]
    assert rows[1]["feasible"] in (True, False) and rows[1]["latency_budget_ms"] > 0
    assert np.isfinite(rows[0]["predicted_accuracy"])
    # a replayed HELP device pays for its ten probes once, as the real device would
    assert [r["probe_measurements"] for r in rows] == [10, 0]
    raspi = help_store.get_device("raspi4")
    budget = Query(device=raspi, latency_quantile=50.0)
    verified = answer(help_store, back, [budget], verify=True, max_measurements=2)
    row = verified[0]
    assert row["hybrid_rule"] == "bisection" and 1 <= row["measurements"] <= 2
    if row["feasible"]:
        assert row["measured_latency_ms"] <= row["latency_budget_ms"]
    with pytest.raises(InputError, match="interval calibration"):
        answer(help_store, back, [budget], verify=True, rule="improvement")


def test_fleet_file_batch_mode_measures_probes_of_new_devices(toy_db, tmp_path, capsys):
    from fleetnas.fleet import sim_fleet, write_fleet

    path = write_fleet(sim_fleet(2, seed=3, budgets=("p30", "p70")), tmp_path / "fleet.yaml")
    argv = ["l2o", "generate", "toy", "--fleet", str(path), "--db", toy_db, "--json"]
    assert main(argv) == 2
    assert "--measure" in capsys.readouterr().err
    assert main([*argv, "--measure"]) == 0
    rows = json.loads(capsys.readouterr().out)["designs"]
    assert len(rows) == 4 and [r["label"] for r in rows] == ["p30", "p70", "p30", "p70"]
    # the probes are measured once per device (then stored), the embedding for both budgets
    assert [r["probe_measurements"] for r in rows] == [10, 0, 10, 0]
    assert rows[0]["latency_budget_ms"] < rows[1]["latency_budget_ms"]
    assert all(r["predicted_latency_ms"] > 0 for r in rows)
