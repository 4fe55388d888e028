"""``fleetnas predict lut --space proxylessnas``: the operator space (count, keys in the layout
of ProxylessNAS's ``mobile_trim.yaml``), the table read back by the search's reader and by
``lut:NAME|FILE``, real operators on this machine's ONNX Runtime, and the bad-input lines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fleetnas.cli.main import main
from fleetnas.devices import Device
from fleetnas.errors import InputError
from fleetnas.predict import ProxylessLatencyLUT
from fleetnas.predict.lut import load_lut
from fleetnas.spaces import get_space
from fleetnas.store import open_store

SIM = "sim:family=desktop_cpu,peak_gflops=50,mem_bandwidth_gbs=20,overhead_us=5,knee=1"
ORT_FAST = "onnxruntime:threads=1,warmup=1,repeats=3,processes=1,retries=0"
NAME = "sim-a/proxylessnas/lut"


@pytest.fixture
def db(tmp_path):
    path = str(tmp_path / "s.db")
    with open_store(path) as store:
        store.add_device(Device("sim-a", family="desktop_cpu", measurer=SIM))
    return path


def _state(db: str) -> tuple[int, int, int]:
    with open_store(db) as store:
        return len(store.list_artifacts()), len(store.list_runs()), sum(store.counts().values())


def test_operators_are_the_70_distinct_blocks_with_mobile_trim_keys(data_dir):
    from fleetnas.data import read_lut

    ops, sp = get_space("proxylessnas.ops"), get_space("proxylessnas")
    archs = ops.operators()
    keys = ops.keys_of(archs)
    assert len(archs) == 70 and len(set(keys)) == 70
    # every key is one of the Pixel 1 table's, in its notation
    assert set(keys) <= set(read_lut(data_dir, "pixel1")["tables"][224])
    # every design sums operators of this space only, and each operator occurs in a network
    every = set()
    for design in sp.sample(60, 2):
        every |= set(sp.op_keys(design))
    assert every <= set(keys)
    for a in archs:
        assert ops.format(a) in sp.op_keys(ops.host_design(a))
    assert (ops.parse(keys[9]) == archs[9]).all()
    with pytest.raises(InputError, match="not an operator of proxylessnas"):
        ops.parse("Conv-input:1x1x3")


def test_operator_modules_give_their_keys_output_shape():
    import torch

    ops = get_space("proxylessnas.ops")
    for arch in ops.operators()[[1, 2, 9, 40, -2, -1]]:
        y = ops.to_torch(arch).eval()(torch.randn(*ops.input_shape(arch)))
        out = ops.format(arch).split("output:")[1].split("-")[0].split("x")
        assert y.numel() == int(np.prod([int(v) for v in out]))


def test_table_round_trips_through_the_store_the_file_and_lut_sources(db, tmp_path, capsys):
    out = tmp_path / "t.yaml"
    args = ["predict", "lut", "--db", db, "--device", "sim-a", "--space", "proxylessnas"]
    assert main([*args, "--check", "6", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"stored latency table {NAME!r}" in text and "70 operators" in text
    sp = get_space("proxylessnas")
    designs = sp.sample(30, 4)
    with open_store(db) as store:
        stored = ProxylessLatencyLUT.from_store(store, NAME)
        art = store.load_artifact(NAME, "latency_lut")
        by_name = load_lut(store, sp, NAME)
    doc = json.loads(art.payload)
    assert doc["space"] == "proxylessnas" and list(doc["tables"]) == ["224"]
    table = doc["tables"]["224"]
    assert set(table) == set(get_space("proxylessnas.ops").table_keys(224))
    assert all(set(e) == {"count", "mean", "std"} and e["mean"] > 0 for e in table.values())
    from_file = load_lut(None, sp, str(out))
    np.testing.assert_allclose(stored.predict(designs), from_file.predict(designs))
    np.testing.assert_allclose(stored.predict(designs), by_name.predict(designs))
    # the check compared the stored table's sums with the measured networks
    picked = sp.parse_many(doc["check"]["designs"])
    np.testing.assert_allclose(stored.predict(picked), doc["check"]["predicted_ms"])
    assert art.meta["check"]["n"] == 6 and -1 <= art.meta["check"]["spearman"] <= 1
    with open_store(db) as store:  # the sim's networks: their sum is what the check measured
        a, v = store.get_measurements(sp, "sim-a", "latency")
        assert len(a) == 6 and np.all(v > 0)


def test_a_flat_mobile_trim_file_reads_as_the_pixel1_table(data_dir):
    sp = get_space("proxylessnas")
    x = sp.sample(20, 0)
    flat = load_lut(None, sp, str(data_dir / "proxylessnas" / "mobile_trim.yaml"))
    np.testing.assert_allclose(flat.predict(x), ProxylessLatencyLUT.from_data(data_dir).predict(x))


def test_lut_sources_of_another_space_or_unknown_are_one_clear_error(db, tmp_path, capsys):
    args = ["predict", "lut", "--db", db, "--device", "sim-a", "--space", "ofa_mbv3"]
    ofa_file = tmp_path / "ofa.json"
    assert main([*args, "--resolutions", "224", "--check", "3", "--out", str(ofa_file)]) == 0
    capsys.readouterr()
    sp = get_space("proxylessnas")
    with open_store(db) as store:
        with pytest.raises(InputError, match="of space 'ofa_mbv3', not 'proxylessnas'"):
            load_lut(store, sp, str(ofa_file))
        with pytest.raises(InputError, match="of space 'ofa_mbv3', not 'proxylessnas'"):
            load_lut(store, sp, "sim-a/ofa_mbv3/lut")
        with pytest.raises(InputError, match="no stored latency table 'nope'"):
            load_lut(store, sp, "nope")
    with pytest.raises(InputError, match="no latency table file"):
        load_lut(None, sp, str(tmp_path / "missing.yaml"))
    with pytest.raises(InputError, match="no operator latency table"):
        load_lut(None, get_space("nb201"), str(ofa_file))


def test_operators_run_on_this_machines_onnx_runtime(tmp_path):
    pytest.importorskip("onnxruntime")
    from fleetnas.measure import get_measurer

    ops = get_space("proxylessnas.ops")
    with open_store(str(tmp_path / "o.db")) as store:
        store.add_device(Device("ort", family="desktop_cpu", measurer=ORT_FAST))
        meter = get_measurer(ORT_FAST, store, store.get_device("ort"))
        picked = ops.operators()[[0, 1, 9, -1]]
        out = meter.measure(ops, picked, ("latency",))
    assert not out.failures and np.all(np.asarray(out["latency"]) > 0)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--device", "nope", "--space", "proxylessnas"], "nope"),
        (["--device", "sim-a", "--space", "nope"], "nope"),
        (["--device", "sim-a", "--space", "nb201"], "no operator decomposition"),
        (["--device", "sim-a", "--space", "proxylessnas", "--resolutions", "160"], "224"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(db, tmp_path, capsys, extra, needle):
    out = tmp_path / "never.yaml"
    before = _state(db)
    assert main(["predict", "lut", "--db", db, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _state(db) == before and not out.exists()
