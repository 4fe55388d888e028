from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from fleetnas.data.help import (
    import_help,
    latency_file,
    read_archs,
    read_latencies,
    read_reference_indices,
    reference_archs,
)
from fleetnas.devices.catalog import catalog_features
from fleetnas.errors import DataError, UnknownNameError
from fleetnas.spaces import get_space
from fleetnas.spaces.nb201 import NB201Index
from fleetnas.store import InMemoryStore, SQLStore


def _pt(data_dir: Path, rel: str) -> np.ndarray:
    return np.asarray(torch.load(data_dir / rel, weights_only=False), dtype=float)


def test_import_two_devices(small_store, data_dir: Path):
    space = get_space("nb201")
    index = NB201Index.from_file(data_dir / "help/nasbench201/str_arch2idx.pt")
    for device, method, estimate in (("pixel2", "help", False), ("eyeriss", "hw-nas-bench", True)):
        archs, values = small_store.get_measurements(space, device, "latency", "mean")
        assert len(values) == 15_625
        upstream = _pt(data_dir, f"help/nasbench201/latency/{device}.pt")
        assert np.array_equal(values, upstream[index.index_of(archs)])
        frame = small_store.measurements_frame(space, [device])
        assert set(frame["method"]) == {method}
        assert set(frame["is_estimate"]) == {estimate}
        assert set(frame["unit"]) == {"ms"}
    dev = small_store.get_device("pixel2")
    assert dev.family == "mobile_cpu"
    assert dev.features == catalog_features("pixel2")


def test_reimport_adds_nothing_and_superset_adds_the_rest(small_store, data_dir: Path):
    before = small_store.counts()
    again = import_help(small_store, data_dir, "nb201", ["eyeriss", "pixel2"])
    assert again.skipped and again.rows == 0
    assert small_store.counts() == before
    more = import_help(small_store, data_dir, "nb201", ["pixel2", "fpga"])
    assert more.devices == ["fpga"] and more.rows == 15_625
    assert small_store.counts()["measurements"] == before["measurements"] + 15_625
    assert small_store.counts()["artifacts"] == before["artifacts"]


def test_reference_architectures(small_store, data_dir: Path):
    refs = reference_archs(small_store, "nb201")
    idx = torch.load(data_dir / "help/nasbench201/hardware_embedding_index.pt", weights_only=False)
    index = NB201Index.from_file(data_dir / "help/nasbench201/str_arch2idx.pt")
    assert refs.shape == (10, 6)
    assert index.index_of(refs).tolist() == list(idx)
    assert read_reference_indices(data_dir, "nb201") == list(idx)


def test_fbnet_and_ofa(store, data_dir: Path):
    rep = import_help(store, data_dir, "fbnet", ["raspi4"])
    assert rep.rows == 5000
    archs, values = store.get_measurements(get_space("fbnet"), "raspi4", "latency", "mean")
    order = {a.tobytes(): i for i, a in enumerate(read_archs(data_dir, "fbnet")[1])}
    upstream = _pt(data_dir, "help/fbnet/latency/raspi4.pt")
    assert np.array_equal(values, upstream[[order[a.tobytes()] for a in archs]])
    meta = torch.load(data_dir / "help/fbnet/metainfo.pt", weights_only=False)["arch"]
    fb = get_space("fbnet")
    assert fb.format(read_archs(data_dir, "fbnet")[1][7]) == "-".join(meta[7]["arch_str"])

    rep = import_help(store, data_dir, "ofa_mbv3", ["titanxp_1"])
    assert rep.rows == 5000
    assert latency_file("ofa_mbv3", "titanxp_1") == "help/ofa/latency/titan_xp_1.pt"
    ofa = get_space("ofa_mbv3")
    raw = torch.load(data_dir / "help/ofa/ofa_archs.pt", weights_only=False)["arch"][3]
    design = ofa.parse_dict({k: np.asarray(v).tolist() for k, v in raw.items()})
    archs, values = store.get_measurements(ofa, "titanxp_1", "latency", "mean")
    want = _pt(data_dir, "help/ofa/latency/titan_xp_1.pt")[3]
    assert values[np.flatnonzero((archs == design).all(axis=1))[0]] == want
    assert reference_archs(store, "ofa_mbv3").shape == (10, ofa.n_decisions)


def test_unknown_device_is_named(store, data_dir: Path):
    with pytest.raises(UnknownNameError, match="titanxp_64"):
        import_help(store, data_dir, "nb201", ["titanxp_64"])


def test_corrupt_file_changes_nothing(store, data_copy):
    rels = [
        "help/nasbench201/str_arch2idx.pt",
        "help/nasbench201/hardware_embedding_index.pt",
        "help/nasbench201/latency/pixel2.pt",
        "help/nasbench201/latency/pixel3.pt",
    ]
    root = data_copy(rels)
    bad = root / rels[3]
    bad.write_bytes(bad.read_bytes()[:-100])
    before = store.counts()
    with pytest.raises(DataError) as err:
        import_help(store, root, "nb201", ["pixel2", "pixel3"])
    msg = str(err.value)
    assert "pixel3.pt" in msg and "SHA-256" in msg and "\n" not in msg
    assert store.counts() == before


def test_missing_data_folder_changes_nothing(store, tmp_path: Path):
    with pytest.raises(DataError, match="FLEETNAS_DATA_DIR") as err:
        import_help(store, tmp_path / "absent", "nb201", ["pixel2"])
    assert "does not exist" in str(err.value)
    assert store.counts()["runs"] == 0


def test_wrong_content_is_reported(data_dir: Path):
    values = read_latencies(data_dir, "nb201", "pixel3")
    assert values.dtype == np.float64 and values.min() > 0


def test_kill_midway_leaves_no_partial_run(tmp_path: Path, data_dir: Path):
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    script = textwrap.dedent(
        f"""
        import os, signal
        from sqlalchemy import event
        from fleetnas.data.help import import_help
        from fleetnas.store import SQLStore

        store = SQLStore({url!r})
        seen = []

        @event.listens_for(store.engine, "after_cursor_execute")
        def kill(conn, cursor, statement, params, context, executemany):
            if statement.lstrip().upper().startswith("INSERT INTO MEASUREMENTS "):
                seen.append(1)
                if len(seen) == 2:
                    os.kill(os.getpid(), signal.SIGKILL)

        import_help(store, {str(data_dir)!r}, "nb201", ["pixel2", "pixel3", "fpga"])
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    store = SQLStore(url)
    counts = store.counts()
    assert counts["measurements"] == 0 and counts["runs"] == 0 and counts["devices"] == 0
    rep = import_help(store, data_dir, "nb201", ["pixel2", "pixel3", "fpga"])
    assert rep.rows == 3 * 15_625
    store.close()


def test_in_memory_store_backend(data_dir: Path):
    store = InMemoryStore()
    rep = import_help(store, data_dir, "fbnet", ["pixel3", "fpga"])
    assert rep.rows == 10_000
    fb = get_space("fbnet")
    _, archs = read_archs(data_dir, "fbnet")
    got, values = store.get_measurements(fb, "fpga", "latency", "mean", archs=archs[:100])
    assert np.array_equal(got, archs[:100])
    assert np.array_equal(values, _pt(data_dir, "help/fbnet/latency/fpga.pt")[:100])
    assert store.counts()["architectures"] == 5000
    assert import_help(store, data_dir, "fbnet", ["fpga"]).skipped
