"""``fleetnas plan`` and ``fleetnas fleet generate|check`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from fleetnas.cli.main import main
from fleetnas.fleet import read_fleet, read_plan

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "fleets"


def test_generate_then_check(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sim.csv"
    args = ["fleet", "generate", "--sim", "7", "--out", str(out), "--budgets", "4.5,p50"]
    assert main([*args, "--seed", "3", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["format"] == "fleetnas-fleet-generate/1"
    assert made["devices"] == 7 and sum(r["devices"] for r in made["families"]) == 7
    fleet = read_fleet(out)
    assert [b.label for b in fleet.devices[0].budgets] == ["4.5ms", "p50"]
    assert main(["fleet", "check", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tasks"] == 14


def test_bad_fleet_is_one_line_exit_2(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("devices:\n  - name: a\n    budgets: [fast]\n")
    assert main(["plan", str(bad), "--space", "nb201", "--executor", "serial"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and "budgets[0]" in err and len(err.splitlines()) == 1


def test_plan_example_fleet_json(help_db: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "plan.json"
    args = [
        "plan", str(EXAMPLES / "help_nb201.yaml"), "--space", "nb201", "--approach", "proxy",
        "--executor", "serial", "--db", help_db, "--out", str(out), "--json",
    ]  # fmt: skip
    assert main(args) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["format"] == "fleetnas-plan-run/1" and res["wall_s"] > 0
    assert res["computed"] == 12 and res["reused"] == 0 and res["out"] == str(out)
    assert res["summary"]["ok"] == 12 and res["summary"]["violations_known"] == 0
    doc = read_plan(out)
    assert doc["plan"] == "help-nb201-nb201" and len(doc["devices"]) == 12
    # one margin default for `plan` and `l2o generate`: the space's calibrated one
    assert doc["config"]["margin"] == 0.5
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["computed"] == 0 and again["reused"] == 12


def test_margin_reaches_the_plan_config_and_a_negative_one_is_refused(
    help_db: str, tmp_path: Path, capsys
) -> None:
    args = [
        "plan", str(EXAMPLES / "help_nb201.yaml"), "--space", "nb201", "--approach", "proxy",
        "--executor", "serial", "--db", help_db, "--json",
    ]  # fmt: skip
    assert main([*args, "--margin", "-1"]) == 2
    assert "--margin" in capsys.readouterr().err
    out = tmp_path / "plan.json"
    assert main([*args, "--margin", "2.5", "--out", str(out), "--name", "m25"]) == 0
    capsys.readouterr()
    assert read_plan(out)["config"]["margin"] == 2.5
