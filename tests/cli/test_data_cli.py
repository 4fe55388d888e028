from __future__ import annotations

import json

import pandas as pd

from fleetnas.cli.main import main


def test_import_export_list_round_trip(data_dir, tmp_path, capsys):
    db = str(tmp_path / "s.db")
    args = ["--db", db, "--data-dir", str(data_dir)]
    assert main(["data", "import", "nats", *args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "fleetnas-data-import/1"
    first = doc["parts"]
    assert first[0]["rows"] == 3 * 15625 and first[0]["status"] == "imported"
    assert main(["data", "import", "nats", *args, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)["parts"]
    assert again[0]["rows"] == 0 and again[0]["status"] == "already imported"

    out = tmp_path / "acc.csv"
    args = ["data", "export", str(out), "--metric", "accuracy_cifar10", "--db", db, "--json"]
    assert main(args) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["format"] == "fleetnas-data-export/1" and exported["rows"] == 15625
    assert exported["out"] == str(out)
    frame = pd.read_csv(out)
    csv = pd.read_csv(data_dir / "nats" / "nats_bench.csv")
    got = frame.set_index("architecture")["value"]
    want = csv.set_index("ArchitectureString")["CIFAR10TestAccuracy200Epochs"]
    assert len(got) == 15625
    assert (got.loc[want.index].to_numpy() == want.to_numpy()).all()

    capsys.readouterr()
    assert main(["data", "list", "--db", db, "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["format"] == "fleetnas-data-list/1"
    metrics = {row["metric"] for row in listing["series"]}
    assert {"accuracy_cifar10", "accuracy_cifar100", "accuracy_imagenet16"} == metrics


def test_user_file_with_bad_value_names_row_and_changes_nothing(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    bad = tmp_path / "mine.csv"
    arch = (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
        "skip_connect~2|"
    )
    bad.write_text(f"architecture,my_phone\n{arch},12.5\n{arch.replace('3x3~0|+', '1x1~0|+')},-3\n")
    assert main(["data", "import", "--file", str(bad), "--space", "nb201", "--db", db]) == 2
    err = capsys.readouterr().err
    assert "mine.csv" in err and "Traceback" not in err
    assert main(["devices", "list", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["devices"] == []


def test_missing_data_folder_is_one_line(tmp_path, capsys):
    code = main(["data", "import", "--db", str(tmp_path / "s.db"), "--data-dir", "/nonexistent"])
    assert code == 2
    err = capsys.readouterr().err
    assert "/nonexistent" in err and "fleetnas data download" in err


def test_error_messages_print_verbatim_with_their_brackets(tmp_path, capsys):
    wide = tmp_path / "wide.csv"
    wide.write_text("design,my_phone\nx,1.0\n")
    args = ["data", "import", "--file", str(wide), "--shape", "wide", "--space", "nb201"]
    assert main([*args, "--db", str(tmp_path / "s.db")]) == 2
    err = capsys.readouterr().err
    assert "needs columns [space,] architecture" in err
    assert "<device>[<metric>:<unit>]" in err


def test_ray_hint_keeps_its_brackets(tmp_path, capsys, monkeypatch):
    from pathlib import Path

    from fleetnas.fleet import executors

    monkeypatch.setattr(executors, "ray_available", lambda: False)
    fleet = Path(__file__).resolve().parents[2] / "examples" / "fleets" / "help_nb201.yaml"
    args = ["plan", str(fleet), "-s", "nb201", "--executor", "ray", "--db", str(tmp_path / "s.db")]
    assert main(args) == 2
    assert "pip install 'fleetnas[ray]'" in capsys.readouterr().err


def test_default_data_folder_is_the_makefiles(monkeypatch):
    import re
    from pathlib import Path

    from fleetnas import paths

    monkeypatch.delenv("FLEETNAS_DATA_DIR", raising=False)
    repo = Path(__file__).resolve().parents[2]
    makefile = (repo / "Makefile").read_text()
    assert re.search(r"^FLEETNAS_DATA_DIR \?= \$\(abspath \.\./shared/data\)$", makefile, re.M)
    shared = (repo.parent / "shared" / "data").resolve()
    if shared.is_dir():
        assert paths.data_dir().resolve() == shared
    else:
        assert paths.data_dir() == paths.default_download_dir()


def test_devices_list_json_lists_features_not_a_count(tmp_path, capsys):
    from fleetnas.devices import Device
    from fleetnas.store import open_store

    db = str(tmp_path / "s.db")
    with open_store(db) as store:
        store.add_device(
            Device("phone", "mobile_cpu", {"cores": 8, "clock_ghz": 2.4}, measurer="table:phone")
        )
    assert main(["devices", "list", "--db", db, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "fleetnas-devices-list/1"
    (row,) = doc["devices"]
    assert row["features"] == {"clock_ghz": 2.4, "cores": 8} and row["measurer"] == "table:phone"
    assert main(["devices", "show", "phone", "--db", db, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["format"] == "fleetnas-devices-show/1" and shown["features"]["cores"] == 8


def test_version_flag(capsys):
    from fleetnas import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"fleetnas {__version__}"


def test_shell_completion_is_offered(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--install-completion" in out and "--show-completion" in out
