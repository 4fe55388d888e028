from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fleetnas.devices import FAMILIES, Device
from fleetnas.devices.catalog import (
    NUMERIC_KEYS,
    catalog_devices,
    catalog_features,
    get_catalog_device,
    help_devices,
    help_file_names,
    help_split,
    numeric_feature_matrix,
)
from fleetnas.errors import InputError, UnknownNameError

GPUS = ("1080ti", "2080ti", "titan_rtx", "titanx", "titanxp")
OTHERS = ("gold_6226", "gold_6240", "silver_4114", "silver_4210r", "pixel2", "pixel3")
OTHERS += ("samsung_a50", "samsung_s7", "essential_ph_1", "raspi4", "eyeriss", "fpga")
NB201 = [f"{g}_{b}" for g in GPUS for b in (1, 32, 256)] + list(OTHERS)


def test_all_27_nb201_settings_have_numeric_features():
    devices = help_devices("nb201")
    assert sorted(d.name for d in devices) == sorted(NB201)
    x = numeric_feature_matrix(devices, impute="nan")
    assert x.shape == (27, len(NUMERIC_KEYS))
    for key in ("cores", "clock_ghz", "peak_gflops", "batch_size", "release_year"):
        col = x[:, NUMERIC_KEYS.index(key)]
        assert np.isfinite(col).all() and (col > 0).all(), key
    assert all(d.family in FAMILIES for d in devices)


def test_help_file_names_cover_the_files_of_each_space(data_dir: Path):
    cases = (("nb201", "nasbench201", 27), ("fbnet", "fbnet", 27), ("ofa_mbv3", "ofa", 12))
    for space, folder, n in cases:
        stems = {p.stem for p in (data_dir / "help" / folder / "latency").glob("*.pt")}
        names = help_file_names(space)
        assert len(names) == n
        assert set(names.values()) == stems


def test_one_device_per_setting_across_spaces():
    assert help_file_names("ofa_mbv3")["titanxp_32"] == "titan_xp_32"
    assert "titanxp_32" in help_file_names("nb201")
    assert len(catalog_devices()) == 38
    a, b = get_catalog_device("titan_rtx_1"), get_catalog_device("titan_rtx_256")
    assert a.features["batch_size"] == 1 and b.features["batch_size"] == 256
    assert a.fingerprint != b.fingerprint
    assert get_catalog_device("gold_6226").family == "server_cpu"
    assert get_catalog_device("pixel2").family == "mobile_cpu"
    assert get_catalog_device("raspi4").family == "embedded_cpu"


def test_simulated_and_estimated_are_marked():
    assert catalog_features("eyeriss")["simulated"] is True
    assert catalog_features("fpga")["simulated"] is True
    assert catalog_features("pixel2")["simulated"] is False
    assert "runtime" in catalog_features("pixel2")["estimated"]
    assert "runtime" not in catalog_features("pixel3")["estimated"]
    assert catalog_features("pixel3")["runtime"] == "tflite"
    assert catalog_features("1080ti_1")["estimated"] == []


def test_unknown_catalog_device():
    with pytest.raises(UnknownNameError, match="unknown catalog device 'pixel9'"):
        catalog_features("pixel9")
    with pytest.raises(UnknownNameError, match="HELP space"):
        help_devices("nb301")


def test_help_splits_are_catalog_devices():
    split = help_split("nb201")
    assert len(split["test"]) == 6
    names = {d.name for d in help_devices("nb201")}
    assert {n for part in split.values() for n in part} <= names
    with pytest.raises(InputError):
        help_split("ofa_mbv3")


def test_imputation_strategies():
    devs = [
        Device("a", "mobile_cpu", {"cores": 8, "tdp_w": 4.0}),
        Device("b", "mobile_cpu", {"cores": 4}),
        Device("c", "desktop_gpu", {"cores": 3000, "tdp_w": 250.0}),
        Device("d", "fpga", {"cores": 900}),
    ]
    keys = ("cores", "tdp_w")
    fam = numeric_feature_matrix(devs, keys)
    assert fam[1, 1] == 4.0  # same family has 4 W
    assert fam[3, 1] == np.median([4.0, 250.0])  # no fpga value: overall median
    assert numeric_feature_matrix(devs, keys, impute="median")[1, 1] == 127.0
    assert numeric_feature_matrix(devs, keys, impute="zero")[1, 1] == 0.0
    assert np.isnan(numeric_feature_matrix(devs, keys, impute="nan")[1, 1])
    assert numeric_feature_matrix(devs, ("memory_gb",))[:, 0].tolist() == [0.0] * 4
    with pytest.raises(InputError, match="feature 'kind' must be a number"):
        numeric_feature_matrix([Device("x", "other", {"kind": "gpu"})], ("kind",))
    with pytest.raises(InputError, match="impute"):
        numeric_feature_matrix(devs, keys, impute="mean")
