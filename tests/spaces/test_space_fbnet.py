"""FBNet: HELP's op order and strings, errors, per-layer cost."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fleetnas.errors import InputError
from fleetnas.spaces import get_space
from fleetnas.spaces.fbnet import OPS

SPACE = get_space("fbnet")


def test_help_archs_round_trip_with_op_names_in_help_order(data_dir: Path) -> None:
    meta = torch.load(data_dir / "help/fbnet/metainfo.pt", weights_only=False)
    assert meta["dataset"] == "cifar100" and meta["num_classes"] == 100
    idx = np.array([m["op_idx_list"] for m in meta["arch"]], dtype=np.int64)
    np.testing.assert_array_equal(
        np.array(torch.load(data_dir / "help/fbnet/arch.pt", weights_only=False)), idx
    )
    names = [m["arch_str"] for m in meta["arch"]]
    assert len(names) == 5_000
    parsed = SPACE.parse_many(["-".join(n) for n in names])
    np.testing.assert_array_equal(parsed, idx)
    assert SPACE.format_many(parsed) == ["-".join(n) for n in names]
    np.testing.assert_array_equal(SPACE.parse(str(names[0])), idx[0])
    np.testing.assert_array_equal(SPACE.parse('["' + '","'.join(names[1]) + '"]'), idx[1])


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("-".join(["k3_e1"] * 21), "has 21 layers, expected 22"),
        ("-".join(["k3_e1"] * 21 + ["k7_e6"]), "layer 21 has unknown op 'k7_e6'"),
        ("[" + ",".join(["1"] * 22) + "]", "layer 0 has unknown op 1"),
        ("['k3_e1', ", "not a valid list"),
    ],
)
def test_parse_errors(text: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        SPACE.parse(text)


def test_skip_everywhere_is_cheapest_and_k5_e6_most_expensive() -> None:
    archs = np.array([[OPS.index(op)] * 22 for op in OPS])
    flops, params = SPACE.flops(archs), SPACE.params(archs)
    assert flops.argmin() == OPS.index("skip") and flops.argmax() == OPS.index("k5_e6")
    assert params.argmin() == OPS.index("skip") and params.argmax() == OPS.index("k5_e6")
    # Grouped 1x1 convs halve the pointwise weights: g2 blocks are lighter than plain e1 blocks.
    assert params[OPS.index("k3_e1_g2")] < params[OPS.index("k3_e1")]


def test_network_input_and_classes() -> None:
    arch = SPACE.sample(1, rng=0)[0]
    assert SPACE.input_shape(arch, batch=4) == (4, 3, 32, 32)
    assert SPACE.to_torch(arch, num_classes=10)(torch.randn(1, 3, 32, 32)).shape == (1, 10)
