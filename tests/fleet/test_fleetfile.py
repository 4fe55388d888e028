"""Fleet files: YAML and CSV reading, validation messages, writing and generated sim fleets."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetnas.errors import InputError
from fleetnas.fleet.fleetfile import (
    Budget,
    Limit,
    parse_budgets,
    read_fleet,
    sim_fleet,
    write_fleet,
)
from fleetnas.sim import SimDevice

YAML = """
name: mixed
defaults:
  budgets: [p25, {latency_ms: p50, label: mid}]
  proxy: titan_rtx_1
devices:
  - name: pixel2
    catalog: pixel2
    budgets: [{latency_ms: 25}, {latency_ms: 40, energy_mj: 90, label: loose}]
  - name: board
    family: embedded_cpu
    features: {cores: 4, clock_ghz: 1.5}
    measurer: agent:http://127.0.0.1:9
    proxy: pixel3
  - name: blind
    family: mobile_cpu
    features: {cores: 8}
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_yaml_catalog_defaults_and_budgets(tmp_path: Path) -> None:
    fleet = read_fleet(_write(tmp_path, "f.yaml", YAML))
    assert fleet.name == "mixed" and len(fleet) == 3 and fleet.n_tasks == 6
    pixel = fleet.get("pixel2")
    assert pixel.device.family == "mobile_cpu" and pixel.device.measurer == "table:pixel2"
    assert pixel.device.features["cores"] > 0 and pixel.proxy == "titan_rtx_1"
    assert [b.label for b in pixel.budgets] == ["25ms", "loose"]
    assert pixel.budgets[1].energy == Limit(value=90.0)
    board = fleet.get("board")
    assert board.proxy == "pixel3" and board.device.measurer.startswith("agent:")
    assert [b.label for b in board.budgets] == ["p25", "mid"]
    assert board.budgets[0].latency == Limit(quantile=25.0) and board.budgets[0].relative
    assert fleet.get("blind").device.measurer is None
    assert fleet.get("blind").keys() == ["blind@p25", "blind@mid"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "devices:\n  - name: a\n    family: toaster\n    budgets: [5]\n",
            "devices[0].family (device 'a'): expected 'desktop_gpu'",
        ),
        (
            "devices:\n  - name: a\n    budgets: [fast]\n",
            "devices[0].budgets[0] (device 'a'): expected",
        ),
        ("devices:\n  - name: a\n    budgets: [-3]\n", "expected a number > 0"),
        ("devices:\n  - name: a\n    budgets: [p150]\n", "between p0 and p100"),
        ("devices:\n  - name: a\n", "no budgets given"),
        ("devices:\n  - name: a\n    budgets: [5, 5]\n", "repeat"),
        (
            "devices:\n  - name: a\n    measurer: warp:9\n    budgets: [5]\n",
            "unknown measurer kind",
        ),
        ("devices:\n  - name: a\n    colour: red\n    budgets: [5]\n", "unknown key(s) colour"),
        ("devices:\n  - {name: a, budgets: [5]}\n  - {name: a, budgets: [6]}\n", "appears twice"),
        ("devices:\n  - name: a\n    catalog: nokia3310\n    budgets: [5]\n", "catalog"),
        ("devices: [\n", "not valid YAML"),
        ("fleet: []\n", "'devices' list"),
    ],
)
def test_yaml_errors_name_file_device_and_key(tmp_path: Path, text: str, needle: str) -> None:
    path = _write(tmp_path, "bad.yaml", text)
    with pytest.raises(InputError) as err:
        read_fleet(path)
    msg = str(err.value)
    assert str(path) in msg and needle in msg and "\n" not in msg


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "devices:\n  - {name: a, budgets: [5]}\n  - name: b\n    budgets: [5, fast]\n",
            "devices[1].budgets[1] (device 'b'): expected a number > 0 or a percentile like p50, "
            "got 'fast'",
        ),
        (
            "devices:\n  - name: a\n    budgets: [{latency_ms: 5, energy_mj: p200}]\n",
            "devices[0].budgets[0].energy_mj (device 'a'): percentile must be between p0 and "
            "p100, got 'p200'",
        ),
        (
            "devices:\n  - name: a\n    budgets: [{latency_ms: 5, lat: 3, x: 1}]\n",
            "devices[0].budgets[0] (device 'a'): unknown key(s) lat, x; expected some of "
            "energy_mj, label, latency_ms",
        ),
        (
            "defaults:\n  budgets: [p150]\ndevices:\n  - name: a\n",
            "defaults.budgets[0]: percentile must be between p0 and p100, got 'p150'",
        ),
        (
            "defaults:\n  colour: red\ndevices: []\n",
            "defaults: unknown key(s) colour; expected some of budgets, family, measurer, proxy",
        ),
        (
            "devices:\n  - name: a\n    measurer: onnxruntime:threads=two\n    budgets: [5]\n",
            "devices[0].measurer (device 'a'): ",
        ),
        (
            "devices:\n  - name: a\n    features: [4]\n    budgets: [5]\n",
            "devices[0].features (device 'a'): expected a mapping, got [4]",
        ),
        ("devices:\n  - budgets: [5]\n", "devices[0].name: a required key is missing"),
        ("devices: [pixel2]\n", "devices[0]: expected a mapping, got 'pixel2'"),
        (
            "devices:\n  - name: a\n    budgets: [{latency_ms: 5, label: 'a b'}]\n",
            "devices[0].budgets[0].label (device 'a'): labels use letters, digits and _.+- only, "
            "got 'a b'",
        ),
    ],
)
def test_yaml_messages_give_the_key_path_the_value_and_what_is_expected(
    tmp_path: Path, text: str, line: str
) -> None:
    path = _write(tmp_path, "fleet.yaml", text)
    with pytest.raises(InputError) as err:
        read_fleet(path)
    assert str(err.value).startswith(f"fleet file {path}: {line}"), str(err.value)
    assert "\n" not in str(err.value)


def test_cli_budget_messages_name_the_value() -> None:
    with pytest.raises(InputError, match=r"^--budgets\[1\]: expected a number > 0 .*got 'fast'$"):
        parse_budgets(["p50", "fast"])
    with pytest.raises(InputError, match=r"^--budgets: label\(s\) 5ms repeat"):
        parse_budgets(["5", "5"])
    assert [b.label for b in parse_budgets(["p50", 12.5])] == ["p50", "12.5ms"]


def test_fleet_generate_names_the_bad_budget(tmp_path: Path, capsys) -> None:
    from fleetnas.cli.main import main

    out = tmp_path / "f.yaml"
    assert main(["fleet", "generate", "--sim", "2", "--budgets", "p50,p2x", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --budgets[1]: expected a number > 0 or a percentile like p50, got 'p2x'"
    assert not out.exists()


def test_csv_rows_features_and_budget_cells(tmp_path: Path) -> None:
    text = (
        "name,family,measurer,latency_ms,energy_mj,feature.cores,feature.kind\n"
        "a,mobile_cpu,,p25;p50;p75,,4,mobile\n"
        "b,npu,table:pixel3,12;20,80,2.5,npu\n"
    )
    fleet = read_fleet(_write(tmp_path, "f.csv", text))
    a, b = fleet.get("a"), fleet.get("b")
    assert a.device.measurer is None and a.device.features == {"cores": 4, "kind": "mobile"}
    assert [x.label for x in a.budgets] == ["p25", "p50", "p75"]
    assert [x.energy for x in b.budgets] == [Limit(value=80.0)] * 2
    assert b.device.features["cores"] == 2.5


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("device,latency_ms\nx,5\n", "'name' column"),
        ("name,colour\nx,red\n", "unknown column(s) colour"),
        (
            "name,latency_ms\nx,5\ny,slow\n",
            "row 3 (device 'y'): budgets[0].latency_ms: expected a number > 0 or a percentile "
            "like p50, got 'slow'",
        ),
        ("name,latency_ms\nx,5,6\n", "row 2 (device 'x'): more cells than header columns"),
        ("name,latency_ms\n,5\n", "row 2: name: a required key is missing"),
        ("name,latency_ms,energy_mj\nx,1;2;3,4;5\n", "row 2 (device 'x'): energy_mj"),
        ("name,family,latency_ms\nx,toaster,5\n", "row 2 (device 'x'): family"),
    ],
)
def test_csv_errors_name_row_and_key(tmp_path: Path, text: str, needle: str) -> None:
    path = _write(tmp_path, "bad.csv", text)
    with pytest.raises(InputError, match="fleet file") as err:
        read_fleet(path)
    assert needle in str(err.value)


def test_missing_or_unknown_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_fleet(tmp_path / "none.yaml")
    with pytest.raises(InputError, match=r"\.yaml, \.yml or \.csv"):
        read_fleet(_write(tmp_path, "f.txt", "x"))


@pytest.mark.parametrize("suffix", [".yaml", ".csv"])
def test_generated_sim_fleet_round_trips(tmp_path: Path, suffix: str) -> None:
    fleet = sim_fleet(30, seed=4, budgets=("p25", "p75", 12.5))
    path = write_fleet(fleet, tmp_path / f"sim{suffix}")
    back = read_fleet(path)
    assert [d.device for d in back] == [d.device for d in fleet]
    assert [d.budgets for d in back] == [d.budgets for d in fleet]
    models = [SimDevice.from_device(d.device).model for d in back]
    assert models == [SimDevice.from_device(d.device).model for d in fleet]
    assert sim_fleet(30, seed=4).devices[7].device == fleet.devices[7].device
    assert sim_fleet(30, seed=5).devices[7].device != fleet.devices[7].device


def test_budget_labels_default_to_limits() -> None:
    assert Budget(Limit(value=20.0), Limit(value=90.0)).default_label() == "20ms+90mJ"
    assert Budget(None, Limit(quantile=50.0)).default_label() == "ep50"
