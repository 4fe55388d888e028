from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fleetnas.data.nats import ACCURACY_DEVICE, get_accuracy, import_nats, read_nats
from fleetnas.errors import DataError
from fleetnas.spaces import get_space


def test_read_matches_the_csv_exactly(data_dir: Path):
    frame = read_nats(data_dir)
    raw = pd.read_csv(data_dir / "nats/nats_bench.csv")
    assert len(frame) == 15_625
    assert np.array_equal(frame["accuracy_cifar100"], raw["CIFAR100TestAccuracy200Epochs"])
    assert frame["architecture"].iloc[1] == raw["ArchitectureString"].iloc[1]


def test_import_is_idempotent_per_dataset(store, data_dir: Path):
    rep = import_nats(store, data_dir, ["cifar10"])
    assert rep.rows == 15_625 and rep.devices == [ACCURACY_DEVICE]
    assert import_nats(store, data_dir, ["cifar10"]).skipped
    rep = import_nats(store, data_dir)
    assert rep.rows == 2 * 15_625
    assert import_nats(store, data_dir).skipped
    raw = pd.read_csv(data_dir / "nats/nats_bench.csv")
    space = get_space("nb201")
    archs, acc = get_accuracy(store, "imagenet16")
    want = dict(zip(raw["ArchitectureString"], raw["ImageNetTestAccuracy200Epochs"], strict=True))
    assert [want[s] for s in space.format_many(archs[:50])] == acc[:50].tolist()
    frame = store.measurements_frame(space, [ACCURACY_DEVICE])
    assert set(frame["unit"]) == {"%"} and not frame["is_estimate"].any()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda df: df.drop(columns="CIFAR100TestAccuracy200Epochs"), "missing column"),
        (lambda df: df.iloc[:-3], "15622 rows, expected 15625"),
        (lambda df: df.assign(CIFAR10TestAccuracy200Epochs=["x"] + [1.0] * 15_624), "line 2"),
    ],
)
def test_bad_csv_changes_nothing(store, data_dir: Path, data_copy, damage, message):
    root = data_copy(["nats/nats_bench.csv"])
    damage(pd.read_csv(data_dir / "nats/nats_bench.csv")).to_csv(
        root / "nats/nats_bench.csv", index=False
    )
    with pytest.raises(DataError, match=message) as err:
        import_nats(store, root)
    assert "nats_bench.csv" in str(err.value) and "\n" not in str(err.value)
    assert store.counts()["runs"] == 0
