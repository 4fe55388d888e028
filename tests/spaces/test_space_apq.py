"""APQ's joint space: strings in APQ's spec format, activity, feasibility, network."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fleetnas.errors import InputError
from fleetnas.spaces import get_space
from fleetnas.spaces.apq import BITS, DW_A, KS_COLS, MID_CHOICES


@pytest.fixture(scope="module")
def apq():
    return get_space("apq")


def _spec(**over):
    spec = {
        "ks": [3] * 21,
        "e": [4] * 21,
        "d": [4, 4, 4, 4, 4, 1],
        "pw_w_bits_setting": [8] * 21,
        "pw_a_bits_setting": [8] * 21,
        "dw_w_bits_setting": [8] * 21,
        "dw_a_bits_setting": [8] * 21,
    }
    spec.update(over)
    return spec


def test_decisions_follow_apq_encoding(apq) -> None:
    assert apq.n_decisions == 21 * 2 + 5 + 4 * 21
    # 4x..6x the input width in steps of 8 (APQ's converter): 16 -> 64..96, 192 -> 768..1152
    assert MID_CHOICES[0] == (64, 72, 80, 88, 96)
    assert MID_CHOICES[20][0] == 768 and MID_CHOICES[20][-1] == 1152 and len(MID_CHOICES[20]) == 49
    assert len(MID_CHOICES[4]) == 7 and MID_CHOICES[5][0] == 160


def test_apq_spec_round_trip_with_ratio_e(apq) -> None:
    e = [5.5] + [4 + 1 / 3] * 4 + [4.2] * 16
    a = apq.parse(json.dumps(_spec(e=e, d=[2, 3, 4, 2, 3, 1])))
    back = apq.to_dict(a)
    assert back["d"] == [2, 3, 4, 2, 3, 1]
    assert apq.middle_widths(a[None, :])[0, :2].tolist() == [88, 104]
    assert apq.parse(apq.format(a)).tolist() == a.tolist()
    # inactive layers (stage 0 depth 2 -> layers 2, 3) are canonical as APQ's feature2spec
    assert back["ks"][2] == 3 and back["e"][2] == 4.0 and back["dw_a_bits_setting"][2] == 8
    assert apq.active_layers(a[None, :])[0].sum() == 2 + 3 + 4 + 2 + 3 + 1


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"ks": [4] + [3] * 20}, r"ks\[0\] = 4 is not one of 3, 5, 7"),
        ({"e": [7.0] + [4] * 20}, r"e\[0\] = 7.0 gives a middle width of 112"),
        ({"pw_w_bits_setting": [5] * 21}, r"pw_w_bits_setting\[0\] = 5"),
        ({"d": [4, 4]}, "5 or 6 depths"),
        ({"q": 1}, "unknown: q"),
    ],
)
def test_bad_specs_are_one_clear_error(apq, over, needle) -> None:
    with pytest.raises(InputError, match=needle):
        apq.parse(json.dumps(_spec(**over)))


def test_feasibility_and_sampling(apq) -> None:
    a = apq.sample(500, rng=0)
    assert apq.feasible(a).all()
    np.testing.assert_array_equal(a, apq.sample(500, rng=0))
    bad = a[:1].copy()
    bad[0, KS_COLS.start] = 2  # 7x7 depth-wise in layer 0 (always active)
    bad[0, DW_A.start] = BITS.index(4)
    assert not apq.feasible(bad)[0]
    # the same choice on an inactive layer does not matter
    inactive = apq.parse(json.dumps(_spec(d=[2, 4, 4, 4, 4, 1])))[None, :].copy()
    inactive[0, KS_COLS.start + 3], inactive[0, DW_A.start + 3] = 2, BITS.index(4)
    assert apq.feasible(inactive)[0]


def test_flops_grow_with_middle_width_and_depth(apq) -> None:
    small = apq.parse(json.dumps(_spec(d=[2, 2, 2, 2, 2, 1])))
    big = apq.parse(json.dumps(_spec(e=[6] * 21)))
    f = apq.flops(np.stack([small, big]))
    assert 0 < f[0] < f[1]
