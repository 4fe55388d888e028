from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from fleetnas.data.ofa_assets import (
    import_ofa_assets,
    lut_from_artifact,
    read_acc_predictor,
    read_lut,
    read_specialized_subnets,
)
from fleetnas.errors import DataError, UnknownNameError


def test_acc_predictor_shapes_and_runs(data_dir: Path):
    sd = read_acc_predictor(data_dir)
    assert [tuple(v.shape) for v in sd.values()] == [
        (400, 128), (400,), (400, 400), (400,), (400, 400), (400,), (1, 400), (1,),
    ]  # fmt: skip
    mlp = torch.nn.Sequential(
        torch.nn.Linear(128, 400), torch.nn.ReLU(), torch.nn.Linear(400, 400), torch.nn.ReLU(),
        torch.nn.Linear(400, 400), torch.nn.ReLU(), torch.nn.Linear(400, 1),
    )  # fmt: skip
    mlp.load_state_dict(sd)
    assert mlp(torch.zeros(2, 128)).shape == (2, 1)


def test_note10_and_pixel1_tables(data_dir: Path):
    note10 = read_lut(data_dir, "note10")
    assert sorted(note10["tables"]) == [160, 176, 192, 208, 224]
    t160 = note10["tables"][160]
    assert len(t160) == 96
    raw = yaml.safe_load((data_dir / "ofa/note10/160_lookup_table.yaml").read_text())
    key = "Conv-input:160x160x3-output:80x80x24"
    assert t160[key] == {k: raw[key][k] for k in ("count", "mean", "std")}
    pixel1 = read_lut(data_dir, "pixel1")["tables"][224]
    raw = yaml.safe_load((data_dir / "proxylessnas/mobile_trim.yaml").read_text())
    key = "Conv-input:224x224x3-output:112x112x32"
    assert pixel1[key]["mean"] == raw[key]["mean"]
    assert pixel1[key]["std"] == math.sqrt(raw[key]["var"])
    with pytest.raises(UnknownNameError, match="note10"):
        read_lut(data_dir, "note8")


def test_specialized_subnets(data_dir: Path):
    subnets = {s["name"]: s for s in read_specialized_subnets(data_dir)}
    assert len(subnets) == 50
    s = subnets["note10_lat-64ms_top1-80.2_finetune-75"]
    assert (s["device"], s["latency_ms"], s["top1"], s["finetune_epochs"]) == (
        "note10",
        64,
        80.2,
        75,
    )
    s = subnets["1080ti_gpu64-27ms_top1-76.4_finetune-25"]
    assert (s["device"], s["batch"], s["latency_ms"]) == ("1080ti", 64, 27.0)
    s = subnets["flops-482M_top1-79.6_finetune-75"]
    assert s["device"] is None and s["mflops"] == 482


def test_import_stores_artifacts_once(store, data_dir: Path):
    rep = import_ofa_assets(store, data_dir)
    assert len(rep.artifacts) == 4
    art = store.load_artifact("ofa_mbv3", "accuracy_predictor")
    assert art.payload == (data_dir / "ofa/acc_predictor.pth").read_bytes()
    assert art.meta["layers"] == [128, 400, 400, 400, 1]
    assert lut_from_artifact(store.load_artifact("note10", "latency_lut")) == read_lut(
        data_dir, "note10"
    )
    subnets = json.loads(store.load_artifact("ofa_mbv3", "specialized_subnets").payload)
    assert len(subnets) == 50
    before = store.counts()
    assert import_ofa_assets(store, data_dir).skipped
    assert store.counts() == before


def test_corrupt_table_changes_nothing(store, data_copy):
    rels = [
        "ofa/acc_predictor.pth",
        "ofa/ofa_specialized_subnet_names.txt",
        "proxylessnas/mobile_trim.yaml",
        *[f"ofa/note10/{r}_lookup_table.yaml" for r in (160, 176, 192, 208, 224)],
    ]
    root = data_copy(rels)
    (root / rels[4]).write_text("Conv-input:1x1x1-output:1x1x1:\n  count: 3\n  mean: fast\n")
    with pytest.raises(DataError, match=r"176_lookup_table\.yaml.*must have count, mean and std"):
        import_ofa_assets(store, root)
    assert store.counts()["artifacts"] == 0
