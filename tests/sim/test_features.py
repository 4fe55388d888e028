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


def test_equal_layers_built_apart_count_as_one_layer(nb201, nb201_archs) -> None:
    """Counting by object identity (NB201 shares its layer objects) must give the same table
    as a space that builds every layer afresh: equal layers merge into one column."""
    import dataclasses

    from fleetnas.spaces.nb201 import NB201Space

    class FreshLayers(NB201Space):
        def layers(self, arch):
            return [dataclasses.replace(layer) for layer in super().layers(arch)]

    fresh = FreshLayers()
    a = nb201_archs[:25]
    shared_t, fresh_t = layer_table(nb201, a), layer_table(fresh, a)
    assert fresh_t.n_layers == len(set().union(*(set(fresh.layers(x)) for x in a)))
    np.testing.assert_allclose(fresh_t.totals()["flops"], shared_t.totals()["flops"])
    np.testing.assert_array_equal(fresh_t.counts.sum(axis=1), [[len(nb201.layers(x))] for x in a])
    distinct = [len(set(fresh.layers(x))) for x in a]
    np.testing.assert_array_equal(np.diff(fresh_t.counts.indptr), distinct)
