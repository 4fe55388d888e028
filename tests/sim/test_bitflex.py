"""Synthetic bit-flexible accelerators pricing APQ designs (fleetnas.sim.bitflex)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from fleetnas.errors import InputError
from fleetnas.sim.bitflex import FAMILIES, BitFlexModel, sample_bitflex, simulate_bitflex
from fleetnas.spaces import get_space
from fleetnas.spaces.apq import BITS, DW_A, DW_W, PW_A, PW_W


@pytest.fixture(scope="module")
def space():
    return get_space("apq")


def _at_bits(space, archs, bits):
    out = archs.copy()
    for cols in (PW_W, PW_A, DW_W, DW_A):
        out[:, cols] = BITS.index(bits)
    return space.canonicalize(out)


def test_fewer_bits_are_faster_on_bit_flexible_families_only(space):
    base = space.sample(20, 0)
    base[:, :21] = np.minimum(base[:, :21], 1)  # no 7x7, so 4-bit activations are feasible
    a8, a4 = _at_bits(space, base, 8), _at_bits(space, base, 4)
    models = sample_bitflex(40, rng=3)
    l8, e8 = simulate_bitflex(models, space, a8)
    l4, e4 = simulate_bitflex(models, space, a4)
    for j, m in enumerate(models):
        if m.family == "int8":
            assert np.allclose(l8[:, j], l4[:, j])
        else:
            assert (l4[:, j] < l8[:, j]).all(), m.family
        assert (e4[:, j] < e8[:, j]).all() or m.family == "int8"
    assert {m.family for m in models} == set(FAMILIES)


def test_energy_includes_static_power_and_shapes(space):
    a = space.sample(7, 1)
    m = sample_bitflex(1, rng=0)[0]
    lat, en = simulate_bitflex([m], space, a)
    assert lat.shape == en.shape == (7, 1)
    hot = replace(m, static_w=m.static_w + 1.0)
    _, en_hot = simulate_bitflex([hot], space, a)
    assert np.allclose(en_hot - en, lat)


def test_wider_and_deeper_designs_cost_more(space):
    small = space.canonicalize(np.zeros((1, space.n_decisions), dtype=np.int64))
    big = small.copy()
    big[0, 21:42] = np.asarray(space.cardinalities[21:42]) - 1
    big[0, 42:47] = 2
    lat, en = simulate_bitflex(sample_bitflex(10, rng=5), space, np.concatenate([small, big]))
    assert (lat[1] > lat[0]).all() and (en[1] > en[0]).all()


def test_bad_input_is_one_clear_error(space):
    m = sample_bitflex(1, rng=0)[0]
    with pytest.raises(InputError, match="unknown bit-flexible family 'tpu'"):
        BitFlexModel(**{**m.to_dict(), "family": "tpu"})
    with pytest.raises(InputError, match="unknown bit-flexible families"):
        sample_bitflex(2, families={"gpu": 1.0})
    with pytest.raises(InputError, match="'apq' designs"):
        simulate_bitflex([m], get_space("nb201"), np.zeros((1, 6), dtype=np.int64))
