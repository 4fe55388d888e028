"""``fleetnas plan`` exit codes (issue 18, cases 2 and 3): 0 when every entry is ok, 3 with one
line saying how many entries are not ok and why, 2 with the root cause for input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetnas.cli.main import main
from fleetnas.devices import Device
from fleetnas.fleet import Budget, Fleet, FleetDevice, Limit, read_plan, write_fleet
from fleetnas.sim import generate_fleet


def _budget(ms: float) -> tuple[Budget, ...]:
    return (Budget(Limit(value=ms), None, f"{ms:g}ms"),)


def _fleet(tmp_path: Path, *devices: FleetDevice, name: str = "f") -> str:
    return str(write_fleet(Fleet(name, list(devices), source="test"), tmp_path / f"{name}.yaml"))


def _sim(i: int = 0, ms: float = 6.0) -> FleetDevice:
    return FleetDevice(generate_fleet(i + 1, rng=0)[i].device, _budget(ms))


def _plan(fleet: str, db: str, *extra: str) -> int:
    args = ["plan", fleet, "--space", "nb201", "--approach", "proxy", "--executor", "serial"]
    return main([*args, "--db", db, "-q", *extra])


def _one_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    return err[0]


@pytest.fixture(autouse=True)
def _agent_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETNAS_AGENT_TOKEN", "test-token")


def test_empty_store_says_import_data_first(tmp_path, capsys):
    assert _plan(_fleet(tmp_path, _sim()), str(tmp_path / "empty.db")) == 2
    line = _one_line(capsys)
    assert "import data first" in line and "optimizer" not in line


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (("--max-measurements", "3"), "--max-measurements 3 leaves Approach 1 no room"),
        (("--max-measurements", "1"), "give at least 4"),
        (("--proxy", "nosuch"), "--proxy 'nosuch': unknown device 'nosuch'"),
    ],
)
def test_options_that_would_fail_every_entry_are_usage_errors(
    help_db, tmp_path, capsys, extra, says
):
    assert _plan(_fleet(tmp_path, _sim()), help_db, *extra) == 2
    assert says in _one_line(capsys)


def test_empty_fleet_is_a_usage_error(help_db, tmp_path, capsys):
    path = tmp_path / "empty.yaml"
    path.write_text("name: nobody\ndevices: []\n")
    assert _plan(str(path), help_db) == 2
    assert "nothing to plan" in _one_line(capsys)


def test_failed_entries_exit_3_with_one_line_of_reasons(help_db, tmp_path, capsys):
    good = _sim()
    broken = [
        FleetDevice(Device("nosuch-table", "mobile_cpu", measurer="table:nosuch"), _budget(9)),
        FleetDevice(
            Device("dead", "mobile_cpu", measurer="agent:http://127.0.0.1:9#retries=0"),
            _budget(9),
        ),
        FleetDevice(Device("bogus", "mobile_cpu", measurer="sim:bogus=1"), _budget(9)),
    ]
    out = tmp_path / "plan.json"
    assert _plan(_fleet(tmp_path, good, *broken), help_db, "--out", str(out)) == 3
    line = _one_line(capsys)
    assert line.startswith("3 of 4 entries are not ok: 3 failed (")
    doc = read_plan(out)
    reasons = {e["device"]: e["reason"] for e in doc["devices"]}
    assert "nosuch" in reasons["nosuch-table"]
    assert "127.0.0.1:9" in reasons["dead"]
    assert "bogus" in reasons["bogus"]
    assert reasons[good.device.name] is None


def test_all_ok_exits_0(help_db, tmp_path, capsys):
    assert _plan(_fleet(tmp_path, _sim()), help_db, "--json") == 0
    assert json.loads(capsys.readouterr().out)["summary"]["ok"] == 1


def test_infeasible_entry_has_no_design_and_is_no_violation(help_db, tmp_path, capsys):
    out = tmp_path / "plan.json"
    fleet = _fleet(tmp_path, _sim(ms=1e-4), _sim(1, ms=8.0))
    assert _plan(fleet, help_db, "--out", str(out)) == 3
    assert "1 of 2 entries are not ok: 1 infeasible (1x no measured design" in _one_line(capsys)
    doc = read_plan(out)
    assert doc["format"] == "fleetnas-plan/2"
    bad, fine = doc["devices"]
    assert bad["status"] == "infeasible" and bad["design"] is None and bad["measured"] is None
    fastest = bad["fastest_measured"]
    assert fastest["design"] and fastest["latency_ms"] > 1e-4
    assert not (bad["truth"] or {}).get("violation")
    assert fine["status"] == "ok" and fine["design"]
    assert doc["summary"]["violations_known"] == 0 and doc["summary"]["infeasible"] == 1
