"""``fleetnas search``: best design under a budget from an accuracy and a latency source."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fleetnas.cli.main import main


@pytest.fixture(scope="module")
def db(data_dir, tmp_path_factory):
    from fleetnas.data import import_help, import_nats
    from fleetnas.store import open_store

    path = str(tmp_path_factory.mktemp("search") / "s.db")
    with open_store(path) as store:
        import_help(store, data_dir, "nb201", ["pixel3"])
        import_nats(store, data_dir, ["cifar10"])
    return path


def test_nb201_search_finds_the_exact_optimum_under_the_budget(db, capsys):
    from fleetnas.data import get_accuracy
    from fleetnas.spaces import get_space
    from fleetnas.store import open_store

    args = ["search", "-s", "nb201", "--device", "pixel3", "--latency-ms", "12", "--db", db]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["format"] == "fleetnas-search/1" and out["method"] == "exhaustive"
    assert out["latency_source"] == "table:pixel3" and out["accuracy_source"] == "table:cifar10"
    sp = get_space("nb201")
    with open_store(db) as store:
        archs, lat = store.get_measurements(sp, "pixel3", "latency", "mean")
        a_archs, acc = get_accuracy(store, "cifar10")
    acc_of = dict(zip(map(sp.arch_hash, a_archs), acc, strict=True))
    ok = lat <= 12.0
    best = max(acc_of[sp.arch_hash(a)] for a in archs[ok])
    assert out["feasible"] and out["predicted_latency_ms"] <= 12.0
    assert out["predicted_accuracy"] == pytest.approx(best)
    assert acc_of[sp.arch_hash(sp.parse(out["design"]))] == pytest.approx(best)
    assert main(args) == 0
    assert out["design"] in capsys.readouterr().out


def test_ofa_search_with_the_note10_lut_and_ofa_predictor(data_dir, tmp_path, capsys):
    args = ["search", "-s", "ofa_mbv3", "--latency", "lut", "--latency-ms", "25",
            "--time-s", "1", "--seed", "1", "--db", str(tmp_path / "s.db"), "--json"]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] != "exhaustive" and out["accuracy_source"] == "ofa"
    assert out["feasible"] and out["predicted_latency_ms"] <= 25.0
    from fleetnas.predict import OFALatencyLUT
    from fleetnas.spaces import get_space

    sp = get_space("ofa_mbv3")
    lut = OFALatencyLUT.from_data(data_dir)
    again = float(lut.predict(sp.parse(out["design"])[None, :])[0])
    assert np.isclose(again, out["predicted_latency_ms"])


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--latency", "lut"], "published operator table"),
        (["--device", "ghost"], "unknown device 'ghost'"),
        (["--latency", "lut", "--device", "pixel3"], "--latency SOURCE or --device NAME"),
        (["--device", "pixel3", "--accuracy", "bogus"], "expected table, ofa or predictor:NAME"),
    ],
)
def test_search_mistakes_are_one_line(db, capsys, extra, needle):
    assert main(["search", "--latency-ms", "10", "--db", db, *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
