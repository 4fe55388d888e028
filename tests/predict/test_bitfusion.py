"""BitFusion cost of APQ designs: the published table, summed as APQ sums it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fleetnas.data.apq import parse_bitfusion, read_bitfusion
from fleetnas.errors import DataError, InputError
from fleetnas.predict import BitFusionCost, get_predictor
from fleetnas.spaces import get_space
from fleetnas.spaces.apq import BITS, DW_A, KS_COLS, MID_CHOICES


def _reference(spec: dict, table: dict, col: int) -> float:
    """APQ's summation written from its description: 224 px, stage geometry, three convs."""
    sz_in, sz_out = [224], [112]
    for i in range(6):
        sz_in.append(sz_out[-1])
        sz_out.append(sz_in[-1] if i in (3, 5) else (sz_in[-1] + 1) // 2)
    cin_list, cout_list = [16, 24, 40, 80, 96, 192], [24, 40, 80, 96, 192, 320]
    total = table["head"][col] + table["tail"][col]
    for layer in range(21):
        stg, pos = layer // 4, layer % 4
        src = stg if pos == 0 else stg + 1
        hw, c_in = sz_in[src + 1], cin_list[src]
        hw_o, c_out = sz_out[stg + 1], cout_list[stg]
        stride = 1 if hw == hw_o else 2
        if pos >= spec["d"][stg]:
            continue
        k, mid = spec["ks"][layer], round(spec["e"][layer] * c_in / 8) * 8
        pw = (spec["pw_w_bits_setting"][layer], spec["pw_a_bits_setting"][layer])
        dw = (spec["dw_w_bits_setting"][layer], spec["dw_a_bits_setting"][layer])
        for shape, q in (
            ((c_in, mid, hw, 1, 1, 0, 1), pw),
            ((mid, mid, hw, k, stride, k // 2, mid), dw),
            ((mid, c_out, hw // stride, 1, 1, 0, 1), pw),
        ):
            total += table[f"{shape}-W{q[0]}A{q[1]}"][col]
    return total


@pytest.fixture(scope="module")
def table(data_dir):
    return read_bitfusion(data_dir)


@pytest.fixture(scope="module")
def costs(table):
    return BitFusionCost(metric="latency").from_table(table), BitFusionCost(
        metric="energy"
    ).from_table(table)


def test_table_is_read_and_pinned(table, tmp_path) -> None:
    assert len(table) == 6569 and table["head"][0] > 0
    copy = tmp_path / "apq"
    copy.mkdir()
    (copy / "BitFusion_new.b1.dict").write_text("{}")
    with pytest.raises(DataError, match="SHA-256 mismatch"):
        read_bitfusion(tmp_path)
    with pytest.raises(DataError, match="is not '"):
        parse_bitfusion({"head": {"latency": 1, "energy": 1}, "bad key": {}})
    with pytest.raises(DataError, match="no 'tail'"):
        parse_bitfusion({"head": {"latency": 1, "energy": 1}})


def test_sum_equals_apq_summation_for_latency_and_energy(costs, table) -> None:
    apq = get_space("apq")
    a = apq.sample(40, rng=5)
    lat, energy = costs
    got_lat, got_energy = lat.predict(a), energy.predict(a)
    for i, arch in enumerate(a):
        spec = json.loads(apq.format(arch))
        assert got_lat[i] == pytest.approx(_reference(spec, table, 0), rel=1e-12)
        assert got_energy[i] == pytest.approx(_reference(spec, table, 1), rel=1e-12)
    assert len(set(np.round(got_lat, 9))) == len(a) and (got_energy > 0).all()


def test_missing_keys_are_infeasible_not_zero(costs) -> None:
    lat, energy = costs
    apq = get_space("apq")
    a = apq.sample(3, rng=1)
    a[0, KS_COLS.start] = 2
    a[0, DW_A.start] = BITS.index(4)
    assert np.isinf(lat.predict(a)[0]) and np.isinf(energy.predict(a)[0])
    assert np.isfinite(lat.predict(a)[1:]).all()
    mid = int(apq.middle_widths(a[:1])[0, 0])
    w = apq.bits(a[:1])["dw_w_bits_setting"][0, 0]
    assert lat.missing_keys(a[0]) == [f"({mid}, {mid}, 112, 7, 2, 3, {mid})-W{w}A4"]
    assert lat.missing_keys(a[1]) == [] and not lat.feasible(a[:1])[0]
    # the only missing entries are 4-bit activations of 7x7 depth-wise convolutions
    assert lat.meta["missing_entries"] == 3 * sum(len(c) for c in MID_CHOICES)


def test_registry_bytes_and_bad_arguments(costs) -> None:
    lat, _ = costs
    a = get_space("apq").sample(50, rng=2)
    back = BitFusionCost.from_bytes(lat.to_bytes())
    np.testing.assert_array_equal(back.predict(a), lat.predict(a))
    assert isinstance(get_predictor("bitfusion", "apq", metric="energy"), BitFusionCost)
    with pytest.raises(InputError, match="latency or energy"):
        BitFusionCost(metric="power")
    with pytest.raises(InputError, match="'apq' space"):
        BitFusionCost("nb201")
    with pytest.raises(InputError, match="not fitted"):
        lat.fit(a, np.ones(len(a)))
