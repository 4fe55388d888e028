from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fleetnas.data.exchange import (
    export_table,
    import_table,
    read_table,
    store_frame,
    write_table,
)
from fleetnas.devices.catalog import catalog_features
from fleetnas.errors import InputError
from fleetnas.store import SQLStore

NB201_A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"  # noqa: E501
NB201_B = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"  # noqa: E501


def _comparable(frame: pd.DataFrame, wide: bool) -> pd.DataFrame:
    drop = ["timestamp"] + (["method", "is_estimate", "n"] if wide else [])
    return frame.drop(columns=drop).sort_values(["device", "architecture"], ignore_index=True)


@pytest.mark.parametrize("shape", ["long", "wide"])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_is_exact(small_store, tmp_path: Path, shape: str, suffix: str):
    src = store_frame(small_store)
    keep = src["architecture"].drop_duplicates().iloc[::5]
    src = src[src["architecture"].isin(keep)].reset_index(drop=True)
    first, second = tmp_path / f"first{suffix}", tmp_path / f"second{suffix}"
    write_table(src, first, shape)
    a_store = SQLStore(f"sqlite:///{tmp_path / 'a.db'}")
    b_store = SQLStore(f"sqlite:///{tmp_path / 'b.db'}")
    assert import_table(a_store, first).rows == len(src) == 2 * len(keep)
    assert export_table(a_store, second, shape) == (len(src) if shape == "long" else len(keep))
    assert import_table(b_store, second).rows == len(src)
    pd.testing.assert_frame_equal(read_table(first), read_table(second), check_exact=True)
    wide = shape == "wide"
    for s in (a_store, b_store):
        pd.testing.assert_frame_equal(
            _comparable(src, wide), _comparable(store_frame(s), wide), check_exact=True
        )
    before = b_store.counts()
    assert import_table(b_store, second).skipped and import_table(b_store, first).skipped
    assert b_store.counts() == before
    a_store.close()
    b_store.close()


def test_acceptance_help_nb201_export_reproduces_upstream(nb201_store, data_dir, tmp_path):
    """Importing HELP's NB201 data then exporting it gives the upstream latencies exactly."""
    path = tmp_path / "nb201.csv"
    export_table(nb201_store, path, "wide", space="nb201", metrics=["latency"])
    wide = pd.read_csv(path)
    assert len(wide) == 15_625
    idx_of = torch.load(data_dir / "help/nasbench201/str_arch2idx.pt", weights_only=False)
    order = np.array([idx_of[s] for s in wide["architecture"]])
    devices = sorted(p.stem for p in (data_dir / "help/nasbench201/latency").glob("*.pt"))
    assert len(devices) == 27
    for dev in devices:
        upstream = torch.load(data_dir / f"help/nasbench201/latency/{dev}.pt", weights_only=False)
        exported = wide[f"{dev}[latency:ms:mean]"].to_numpy()
        assert (exported == np.asarray(upstream, dtype=float)[order]).all(), dev


def test_bare_wide_columns_use_defaults_and_blank_cells_are_skipped_on_request(
    store, tmp_path: Path
):
    path = tmp_path / "mine.csv"
    pd.DataFrame(
        {"architecture": [NB201_A, NB201_B], "my_board": [3.5, None], "pixel2": [12.0, 14.0]}
    ).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"line 3, column 'my_board': blank or NaN value"):
        import_table(store, path, space="nb201")
    assert store.counts()["runs"] == 0
    rep = import_table(
        store, path, space="nb201", unit="ms", statistic="median", method="lab", skip_missing=True
    )
    assert rep.rows == 3 and rep.missing == 1 and sorted(rep.devices) == ["my_board", "pixel2"]
    assert store.get_device("my_board").family == "other"
    assert store.get_device("pixel2").features == catalog_features("pixel2")
    frame = store.measurements_frame()
    assert set(frame["method"]) == {"lab"} and set(frame["statistic"]) == {"median"}


def test_long_defaults_and_booleans(store, tmp_path: Path):
    path = tmp_path / "long.csv"
    pd.DataFrame(
        {
            "space": ["nb201", "nb201"],
            "architecture": [NB201_A, NB201_B],
            "device": ["rig", "rig"],
            "metric": ["energy", "energy"],
            "value": [1.25, 2.5],
            "unit": ["mJ", "mJ"],
            "is_estimate": ["true", "0"],
        }
    ).to_csv(path, index=False)
    frame = read_table(path)
    assert frame["is_estimate"].tolist() == [True, False]
    assert frame["statistic"].tolist() == ["median", "median"]
    assert import_table(store, path).rows == 2


def _long(tmp_path: Path, name: str = "bad.csv", **cols) -> Path:
    base = {
        "space": ["nb201", "nb201", "nb201"],
        "architecture": [NB201_A, NB201_B, NB201_A],
        "device": ["d1", "d1", "d2"],
        "metric": ["latency"] * 3,
        "value": [1.0, 2.0, 3.0],
        "unit": ["ms"] * 3,
    }
    base.update(cols)
    path = tmp_path / name
    df = pd.DataFrame({k: v for k, v in base.items() if v is not None})
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize(
    "cols, message",
    [
        ({"space": ["nb201", "nb999", "nb201"]}, r"line 3, column 'space': unknown space 'nb999'"),
        (
            {"architecture": [NB201_A, "|nor_conv_3x3~0|+|oops|", NB201_A]},
            r"line 3, column 'architecture': architecture .* is not a valid nb201 design",
        ),
        ({"value": ["1.0", "fast", "3"]}, r"line 3, column 'value': 'fast' is not a finite number"),
        (
            {"value": [1.0, -2.0, 3.0]},
            r"line 3, column 'value': d1/latency value -2.0 ms is out of range; expected a "
            r"latency in \(0, ",
        ),
        ({"unit": None}, r"missing column 'unit'; the long shape needs columns"),
        ({"device": ["d1", "d1", "d1"]}, r"lines? 2 and line 4 both give d1/latency"),
        (
            {"metric": ["memory"] * 3, "unit": ["MB", "GB", "MB"]},
            r"d1/memory is given in several units",
        ),
        ({"device": ["d1", "", "d2"]}, r"line 3, column 'device': empty device"),
    ],
)
def test_bad_input_names_the_problem_and_changes_nothing(store, tmp_path, cols, message):
    path = _long(tmp_path, **cols)
    before = store.counts()
    with pytest.raises(InputError, match=message) as err:
        import_table(store, path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert store.counts() == before


def test_parquet_rows_are_numbered_from_one(store, tmp_path: Path):
    path = _long(tmp_path, "bad.parquet", value=[1.0, 2.0, 0.0])
    with pytest.raises(InputError, match=r"row 3, column 'value'"):
        import_table(store, path)


def test_bad_wide_input(store, tmp_path: Path):
    path = tmp_path / "w.csv"
    pd.DataFrame({"architecture": [NB201_A], "pixel2[latency]": [1.0]}).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"header 'pixel2\[latency\]' is not"):
        import_table(store, path, space="nb201")
    pd.DataFrame({"architecture": [NB201_A], "d[latency:ms]": ["x"]}).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"line 2, column 'd\[latency:ms\]': 'x'"):
        import_table(store, path, space="nb201")
    pd.DataFrame({"architecture": [NB201_A], "d": [1.0]}).to_csv(path, index=False)
    with pytest.raises(InputError, match="missing column 'space'"):
        import_table(store, path)
    assert store.counts()["runs"] == 0


def test_missing_and_corrupt_files(store, tmp_path: Path):
    with pytest.raises(InputError, match="does not exist; expected a csv file"):
        import_table(store, tmp_path / "nope.csv")
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match="cannot read it as parquet"):
        import_table(store, bad)
    with pytest.raises(InputError, match=r"expected \.csv, \.parquet or \.pq"):
        import_table(store, tmp_path / "data.xlsx")
    assert store.counts()["runs"] == 0


def test_write_table_is_atomic_and_checks_shape(small_store, tmp_path: Path):
    frame = store_frame(small_store)
    with pytest.raises(InputError, match="shape must be"):
        write_table(frame, tmp_path / "out" / "x.csv", "tall")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "cols, message",
    [
        ({"value": [1.0, None, 3.0]}, r"line 3, column 'value': blank or NaN value"),
        ({"value": ["1", "nan", "3"]}, r"line 3, column 'value': blank or NaN value"),
        ({"value": [1.0, 1e308, 3.0]}, r"line 3, .*d1/latency value 1e\+308 ms is out of range"),
        ({"value": [1.0, float("inf"), 3.0]}, r"line 3, column 'value': inf is not a finite"),
        ({"unit": ["ms", "parsecs", "ms"]}, r"line 3, column 'unit': unit 'parsecs' is not a"),
        (
            {"metric": ["accuracy_cifar10"] * 3, "value": [50.0, 101.0, 3.0], "unit": ["%"] * 3},
            r"line 3, .*accuracy_cifar10 value 101.0 % is out of range; expected an accuracy",
        ),
        (
            {"metric": ["accuracy"] * 3, "value": [0.5, 1.5, 0.3], "unit": ["fraction"] * 3},
            r"line 3, .*value 1.5 fraction \(150.0 %\) is out of range",
        ),
        ({"device": ["d1", "../../etc", "d2"]}, r"line 3, column 'device': .*contains '/'"),
        ({"device": ["d1", "a..b", "d2"]}, r"line 3, column 'device': .*contains '\.\.'"),
        ({"device": ["d1", "d 1", "d2"]}, r"line 3, column 'device': .*contains ' '"),
        ({"metric": ["memory"] * 3, "unit": ["MB", "M B;", "MB"]}, r"not a short unit token"),
    ],
)
def test_values_units_and_names_are_checked(store, tmp_path, cols, message):
    """Case 4 of issue 18: these were stored as given (or dropped silently)."""
    path = _long(tmp_path, **cols)
    before = store.counts()
    with pytest.raises(InputError, match=message) as err:
        import_table(store, path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert store.counts() == before


def test_units_are_converted_to_the_stores(store, tmp_path: Path):
    path = _long(
        tmp_path,
        device=["d1", "d1", "d2"],
        metric=["latency", "latency", "energy"],
        value=[0.0015, 250.0, 2.0],
        unit=["s", "us", "J"],
    )
    assert import_table(store, path).rows == 3
    frame = store.measurements_frame().sort_values(["device", "value"], ignore_index=True)
    assert frame["unit"].tolist() == ["ms", "ms", "mJ"]
    np.testing.assert_allclose(frame["value"], [0.25, 1.5, 2000.0])
    acc = _long(
        tmp_path, "acc.csv", metric=["accuracy"] * 3, value=[0.5, 0.25, 1.0], unit=["fraction"] * 3
    )
    frame = read_table(acc)
    assert set(frame["unit"]) == {"%"} and frame["value"].tolist() == [50.0, 25.0, 100.0]


def test_skip_missing_counts_what_it_leaves_out(store, tmp_path: Path):
    path = _long(tmp_path, value=[1.0, None, "nan"])
    rep = import_table(store, path, skip_missing=True)
    assert rep.rows == 1 and rep.missing == 2
    assert store.counts()["measurements"] == 1
