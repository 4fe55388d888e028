from __future__ import annotations

import json

import pandas as pd

from fleetnas.cli.main import main


def test_import_export_list_round_trip(data_dir, tmp_path, capsys):
    db = str(tmp_path / "s.db")
    args = ["--db", db, "--data-dir", str(data_dir)]
    assert main(["data", "import", "nats", *args, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first[0]["rows"] == 3 * 15625 and first[0]["status"] == "imported"
    assert main(["data", "import", "nats", *args, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again[0]["rows"] == 0 and again[0]["status"] == "already imported"

    out = tmp_path / "acc.csv"
    assert main(["data", "export", str(out), "--metric", "accuracy_cifar10", "--db", db]) == 0
    frame = pd.read_csv(out)
    csv = pd.read_csv(data_dir / "nats" / "nats_bench.csv")
    got = frame.set_index("architecture")["value"]
    want = csv.set_index("ArchitectureString")["CIFAR10TestAccuracy200Epochs"]
    assert len(got) == 15625
    assert (got.loc[want.index].to_numpy() == want.to_numpy()).all()

    capsys.readouterr()
    assert main(["data", "list", "--db", db, "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)[0]
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
    assert json.loads(capsys.readouterr().out) == []


def test_missing_data_folder_is_one_line(tmp_path, capsys):
    code = main(["data", "import", "--db", str(tmp_path / "s.db"), "--data-dir", "/nonexistent"])
    assert code == 2
    err = capsys.readouterr().err
    assert "/nonexistent" in err and "fleetnas data download" in err
