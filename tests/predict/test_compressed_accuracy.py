"""Accuracy sources for compressed designs: measured (exchange), evaluator, modelled."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from fleetnas.data import export_table, import_table
from fleetnas.errors import InputError
from fleetnas.predict.compressed_accuracy import (
    EvaluatorAccuracy,
    MeasuredAccuracy,
    ModelledAccuracy,
    SensitivityModel,
    _apq_macs,
)
from fleetnas.spaces import get_space
from fleetnas.spaces.apq import BIT_START, BITS, KS_COLS
from fleetnas.store import InMemoryStore

NB = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|none~1|avg_pool_3x3~2|"


def _apq_total(apq) -> np.ndarray:
    m = _apq_macs(apq, apq.sample(5, rng=1))
    return m["fixed"] + m["pw"].sum(axis=1) + m["dw"].sum(axis=1)


def _flat_base(archs: np.ndarray) -> np.ndarray:
    return np.full(len(archs), 90.0)


@pytest.fixture(scope="module")
def nbq():
    return get_space("nb201+q")


def test_modelled_nb201_follows_the_sensitivity_model(nbq) -> None:
    acc = ModelledAccuracy(nbq, base=_flat_base)
    assert acc.accuracy_source == "modelled"
    designs = [f"{NB}@q=fp32", f"{NB}@q=fp16", f"{NB}@q=int8", f"{NB}@q=int8;w=0.5"]
    a = nbq.parse_many(designs)
    y = acc.predict(a)
    assert y[0] == y[1] == 90.0

    def quantized_share(arch: np.ndarray) -> float:
        fixed = sum(layer.macs for b, layer in nbq.block_layers(arch) if b < 0)
        return 1 - fixed / sum(layer.macs for layer in nbq.layers(arch))

    assert y[2] == pytest.approx(90.0 - 0.3 * quantized_share(a[2]))
    ratio = nbq.flops(a[3:4])[0] / nbq.flops(a[2:3])[0]
    assert 0.2 < ratio < 0.4
    assert y[3] == pytest.approx(90.0 - 0.3 * quantized_share(a[3]) - 6.0 * -np.log(ratio))


def test_modelled_apq_orders_bits_and_uses_macs() -> None:
    apq = get_space("apq")
    acc = ModelledAccuracy(apq)
    np.testing.assert_allclose(_apq_total(apq), apq.flops(apq.sample(5, rng=1)) / 2)
    a = apq.sample(50, rng=3)
    y = acc.predict(a)
    assert np.isfinite(y).all() and y.min() > 55 and y.max() < 82
    eight, four = a[:1].copy(), a[:1].copy()
    eight[0, BIT_START:] = BITS.index(8)
    four[0, BIT_START:] = BITS.index(4)
    four[0, KS_COLS] = 0  # keep it feasible (no 7x7 at A4)
    eight[0, KS_COLS] = 0
    e8, e4 = acc.predict(np.concatenate([eight, four]))
    float_acc = SensitivityModel().macs_accuracy(apq.flops(eight)[0] / 2)
    assert float_acc - 0.3 < e8 < float_acc
    assert e8 - e4 == pytest.approx(10.4 * (e8 - float_acc) / -0.3, rel=1e-9)


def test_modelled_needs_a_base_and_a_compressed_space(nbq) -> None:
    with pytest.raises(InputError, match="needs the uncompressed accuracy"):
        ModelledAccuracy(nbq)
    with pytest.raises(InputError, match="compressed space"):
        ModelledAccuracy(get_space("nb201"), base=_flat_base)
    bad = ModelledAccuracy(nbq, base=lambda archs: np.full(len(archs), np.nan))
    with pytest.raises(InputError, match="no finite value"):
        bad.predict(nbq.parse_many([NB]))
    with pytest.raises(InputError, match="no penalty for 3-bit"):
        SensitivityModel().drop_of_bits(np.array([3]))


def test_measured_accuracy_round_trips_through_the_exchange_format(nbq, tmp_path) -> None:
    designs = [f"{NB}@q=int8;w=1,0.5,1", f"{NB}@q=fp16,int8,fp32;w=0.75", NB]
    frame = pd.DataFrame(
        {
            "space": "nb201+q",
            "architecture": designs,
            "device": "none",
            "metric": "accuracy",
            "value": [91.25, 90.5, 93.0],
            "unit": "%",
        }
    )
    src = tmp_path / "acc.csv"
    frame.to_csv(src, index=False)
    store = InMemoryStore()
    import_table(store, src)
    out = tmp_path / "out.csv"
    assert export_table(store, out, space="nb201+q") == 3
    back = pd.read_csv(out)
    assert sorted(back["architecture"]) == sorted(nbq.format(nbq.parse(d)) for d in designs)
    measured = MeasuredAccuracy.from_store(store, nbq, metric="accuracy", statistic="median")
    assert measured.accuracy_source == "measured" and len(measured) == 3
    np.testing.assert_array_equal(measured.predict(nbq.parse_many(designs)), [91.25, 90.5, 93.0])
    with pytest.raises(InputError, match="no measured accuracy for 1 design"):
        measured.predict(nbq.parse_many([f"{NB}@q=int8"]))
    with pytest.raises(InputError, match="holds no 'accuracy'"):
        MeasuredAccuracy.from_store(InMemoryStore(), nbq)


def test_python_evaluator(nbq, tmp_path, monkeypatch) -> None:
    (tmp_path / "my_eval.py").write_text(
        "def acc(design):\n    return 80.0 + design.count('int8')\n"
        "def nothing(design):\n    return None\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ev = EvaluatorAccuracy(nbq, "my_eval:acc")
    assert ev.accuracy_source == "evaluator:my_eval:acc"
    a = nbq.parse_many([f"{NB}@q=int8,fp32,int8", NB])
    np.testing.assert_array_equal(ev.predict(a), [82.0, 80.0])
    with pytest.raises(InputError, match="returned None"):
        EvaluatorAccuracy(nbq, "my_eval:nothing").predict(a)
    with pytest.raises(InputError, match="cannot load accuracy evaluator"):
        EvaluatorAccuracy(nbq, "my_eval:absent")
    with pytest.raises(InputError, match=r"should be 'package\.module:function'"):
        EvaluatorAccuracy(nbq, "just-a-name")


def test_command_evaluator(nbq) -> None:
    py = sys.executable
    ev = EvaluatorAccuracy(
        nbq, f"cmd:{py} -c \"import sys; print('log'); print(len(sys.stdin.read()) % 7 + 70)\""
    )
    a = nbq.parse_many([NB, f"{NB}@q=int8"])
    got = ev.predict(a)
    assert got.tolist() == [len(nbq.format(x)) % 7 + 70 for x in a]
    arg = EvaluatorAccuracy(nbq, f'cmd:{py} -c "import sys; print(len(sys.argv[1]))" {{design}}')
    assert arg.predict(a[:1])[0] == len(nbq.format(a[0]))
    with pytest.raises(InputError, match="returned ''"):
        EvaluatorAccuracy(nbq, f'cmd:{py} -c "pass"').predict(a[:1])
    with pytest.raises(InputError, match="exited with 3"):
        EvaluatorAccuracy(nbq, f'cmd:{py} -c "raise SystemExit(3)"').predict(a[:1])


@pytest.mark.parametrize("name", ["ofa_mbv3+q", "apq"])
def test_json_designs_round_trip_through_the_exchange_format(name, tmp_path) -> None:
    space = get_space(name)
    designs = space.format_many(space.sample(4, rng=8))
    pd.DataFrame(
        {
            "space": name,
            "architecture": designs,
            "device": "none",
            "metric": "accuracy",
            "value": [70.0, 71.0, 72.0, 73.0],
            "unit": "%",
        }
    ).to_csv(tmp_path / "in.csv", index=False)
    store = InMemoryStore()
    import_table(store, tmp_path / "in.csv")
    export_table(store, tmp_path / "out.csv", space=name)
    back = pd.read_csv(tmp_path / "out.csv")
    assert sorted(back["architecture"]) == sorted(designs)
    measured = MeasuredAccuracy.from_store(store, space)
    np.testing.assert_array_equal(
        measured.predict(space.parse_many(designs)), [70.0, 71.0, 72.0, 73.0]
    )
