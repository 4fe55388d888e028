"""Layer tables: distinct layers and their counts reproduce each space's own cost figures."""

from __future__ import annotations

import numpy as np
import pytest

from fleetnas.sim import layer_table
from fleetnas.spaces import get_space


@pytest.mark.parametrize("space_name", ["nb201", "fbnet", "ofa_mbv3"])
def test_totals_match_space_flops_and_params(space_name: str) -> None:
    space = get_space(space_name)
    archs = space.sample(40, rng=1)
    table = layer_table(space, archs)
    totals = table.totals()
    np.testing.assert_allclose(totals["flops"], space.flops(archs), rtol=1e-9)
    np.testing.assert_allclose(totals["weight_elems"], space.params(archs), rtol=1e-9)
    np.testing.assert_array_equal(totals["layers"], [len(space.layers(a)) for a in archs])
    assert table.counts.shape == (40, table.n_layers) == (40, len(table.kind))


def test_rows_follow_the_requested_order_and_repeat(nb201, nb201_archs) -> None:
    a = nb201_archs[:30]
    t1 = layer_table(nb201, a)
    t2 = layer_table(nb201, np.concatenate([a[::-1], a[:1]]))
    c1 = t1.counts.toarray()
    c2 = t2.counts.toarray()[:, : c1.shape[1]]
    np.testing.assert_array_equal(c2[:30], c1[::-1])
    np.testing.assert_array_equal(c2[30], c1[0])
    assert layer_table(nb201, a[:0]).n == 0
