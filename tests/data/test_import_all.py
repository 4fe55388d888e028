from __future__ import annotations

from pathlib import Path

import pytest

from fleetnas.data import PARTS, available_parts, datasets, import_all, part_files
from fleetnas.errors import DataError


def test_every_part_is_available_in_the_shared_folder(data_dir: Path):
    assert available_parts(data_dir) == list(PARTS)
    assert len(part_files("help-nasbench201")) == 27 + 2


def test_import_all_takes_what_is_there_once(store, data_copy):
    root = data_copy([*part_files("nats"), *part_files("ofa")])
    assert available_parts(root) == ["nats", "ofa"]
    seen = []
    reports = import_all(store, root, progress=lambda part, rep: seen.append(part))
    assert seen == ["nats", "ofa"]
    assert reports["nats"].rows == 3 * 15_625 and len(reports["ofa"].artifacts) == 4
    before = store.counts()
    again = import_all(store, root)
    assert all(r.skipped for r in again.values())
    assert store.counts() == before
    with pytest.raises(DataError, match=r"has no help/fbnet/arch\.pt"):
        import_all(store, root, parts=["help-fbnet"])
    assert store.counts() == before


def test_empty_folder_is_refused(store, tmp_path: Path):
    with pytest.raises(DataError, match="holds none of the datasets"):
        import_all(store, tmp_path)
    assert store.counts()["runs"] == 0


def test_datasets_listing(nb201_store):
    listing = datasets(nb201_store)
    rows = listing.series.set_index(["space", "metric"])
    lat = rows.loc[("nb201", "latency")]
    assert (lat["devices"], lat["rows"], lat["archs"]) == (27, 421_875, 15_625)
    assert lat["estimate_share"] == pytest.approx(2 / 27)
    assert rows.loc[("nb201", "accuracy_cifar10"), "rows"] == 15_625
    assert listing.artifacts[["kind", "name"]].values.tolist() == [["reference_archs", "nb201"]]
