"""The compression layer: precision and width per block as ordinary decisions."""

from __future__ import annotations

import io
import json

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from fleetnas.cli.main import main
from fleetnas.errors import InputError
from fleetnas.spaces import get_space, space_names
from fleetnas.spaces.compression import CompressedSpace, compressed

NB = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|none~1|avg_pool_3x3~2|"


def test_registered_and_sized() -> None:
    assert {"nb201+q", "ofa_mbv3+q"} <= set(space_names())
    sp = get_space("nb201+q")
    assert isinstance(sp, CompressedSpace)
    assert sp.n_decisions == 6 + 2 * 3 and sp.size == 15625 * 3**6
    assert [d.name for d in sp.decisions[6:]] == [
        *(f"q_stage{s}" for s in range(3)),
        *(f"w_stage{s}" for s in range(3)),
    ]


def test_native_strings_single_value_list_and_bare_base() -> None:
    sp = get_space("nb201+q")
    bare = sp.parse(NB)
    assert (bare[6:] == 0).all() and sp.format(bare) == f"{NB}@q=fp32;w=1"
    a = sp.parse(f"{NB}@q=int8,fp32,fp16;w=1,0.5,0.75")
    assert sp.format(a) == f"{NB}@q=int8,fp32,fp16;w=1,0.5,0.75"
    assert sp.policy(a)["stage1"] == {"precision": "fp32", "width": 0.5, "active": True}
    everywhere = sp.parse(f"{NB}@q=int8")
    assert sp.format(everywhere) == f"{NB}@q=int8;w=1"
    w, act = sp.bits(everywhere[None, :])
    assert (w == 8).all() and (act == 8).all()


@pytest.mark.parametrize(
    ("policy", "needle"),
    [
        ("q=int4", "unknown precision 'int4'"),
        ("q=int8;w=0.3", "width ratio '0.3'"),
        ("q=int8,fp32", "2 values, expected 1 or 3"),
        ("x=1", "policy part 'x=1'"),
        ("q=int8;q=fp32", "each at most once"),
    ],
)
def test_bad_policy_is_one_clear_error(policy: str, needle: str) -> None:
    with pytest.raises(InputError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        get_space("nb201+q").parse(f"{NB}@{policy}")


def test_sub_byte_wa_precisions_where_a_cost_model_knows_them() -> None:
    sp = compressed("nb201", precisions=("int8", "w6a8", "w4a4"), name="nb201+wa")
    a = sp.parse(f"{NB}@q=w4a4,int8,w6a8")
    w, act = sp.bits(a[None, :])
    assert w.tolist() == [[4, 8, 6]] and act.tolist() == [[4, 8, 8]]
    assert sp.format(sp.parse(NB)).endswith("@q=int8;w=1")
    with pytest.raises(InputError, match="unknown precision 'w5a8'"):
        compressed("nb201", precisions=("fp32", "w5a8"))


def test_bad_wrapper_arguments() -> None:
    with pytest.raises(InputError, match="unknown precision 'int3'"):
        compressed("nb201", precisions=("fp32", "int3"))
    with pytest.raises(InputError, match=r"width ratios must lie in \(0, 1\]"):
        compressed("nb201", widths=(1.0, 1.5))
    with pytest.raises(InputError, match="cannot be compressed"):
        compressed("fbnet")


def _convs(model: nn.Module, prefix: str) -> list[nn.Conv2d]:
    return [
        m for n, m in model.named_modules() if n.startswith(prefix) and isinstance(m, nn.Conv2d)
    ]


def test_to_torch_prunes_channels_for_real() -> None:
    sp = get_space("nb201+q")
    full = sp.to_torch(sp.parse(NB))
    half = sp.to_torch(sp.parse(f"{NB}@w=0.5,1,0.75"))
    assert {c.out_channels for c in _convs(full, "s0_")} == {16}
    assert {c.out_channels for c in _convs(half, "s0_")} == {8}
    assert {c.out_channels for c in _convs(half, "s2_")} == {48}
    assert half.head.fc.in_features == 48
    a = sp.parse(f"{NB}@w=0.5,1,0.75")
    n_params = sum(
        p.numel()
        for m in half.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
        for p in m.parameters(recurse=False)
    )
    assert n_params == sp.params(a[None, :])[0] < sp.params(sp.parse(NB)[None, :])[0]
    assert half(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_ofa_width_prunes_middle_channels_and_inactive_blocks_are_canonical() -> None:
    sp = get_space("ofa_mbv3+q")
    base = get_space("ofa_mbv3")
    d = {"ks": [3] * 20, "e": [6] * 20, "d": [2] * 5, "r": 160}
    text = json.dumps(d, separators=(",", ":"))
    a = sp.parse(f"{text}@q=int8;w=0.5")
    pol = sp.policy(a)
    assert pol["L0"] == {"precision": "int8", "width": 0.5, "active": True}
    assert pol["L2"] == {"precision": "fp32", "width": 1.0, "active": False}
    assert sp.format(a) == f"{base.format(base.parse(text))}@q=int8;w=0.5"
    model = sp.to_torch(a)
    expand = model.L0[0][0]  # first 1x1 conv of layer 0 (24 -> 144 unpruned)
    assert expand.out_channels == 72
    assert sp.flops(a[None, :])[0] < base.flops(base.parse(text)[None, :])[0]
    enc = sp.encode(a[None, :])[0]
    o = sp.offsets
    q_l2 = base.n_decisions + 2
    assert enc[o[q_l2] : o[q_l2 + 1]].sum() == 0


def test_onnx_nodes_to_quantize_are_exactly_the_int8_blocks() -> None:
    sp = get_space("nb201+q")
    a = sp.parse(f"{NB}@q=fp32,int8,fp32")
    model = sp.to_torch(a).eval()
    buf = io.BytesIO()
    torch.onnx.export(model, (torch.zeros(1, 3, 32, 32),), buf, dynamo=False)
    names = [n.name for n in onnx.load_from_string(buf.getvalue()).graph.node]
    picked = sp.nodes_at(a, names)
    convs = [n for n in picked if n.endswith("/Conv")]
    # stage 1: reduction block (2 convs + shortcut 1x1) and 5 cells x 3 conv edges
    assert len(convs) == 3 + 5 * 3
    assert all(n.startswith(("/s1_red/", "/s1_c")) for n in picked)
    assert sp.nodes_at(sp.parse(NB), names) == []
    assert sp.layer_precisions(a).count("int8") == sum(1 for b, _ in sp.block_layers(a) if b == 1)


def test_spaces_show_prints_a_compressed_design(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spaces", "show", "-s", "nb201+q", f"{NB}@q=int8;w=1,0.5,1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["architecture"] == f"{NB}@q=int8;w=1,0.5,1"
    assert shown["compression"]["stage1"]["width"] == 0.5
    assert main(["spaces", "show", "-s", "nb201+q", f"{NB}@q=int8;w=1,0.5,1"]) == 0
    assert "compression policy" in capsys.readouterr().out
    assert main(["spaces", "show", "-s", "nb201+q", f"{NB}@q=int2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown precision 'int2'" in err and "\n" not in err


def test_mutation_reaches_compression_decisions() -> None:
    sp = get_space("nb201+q")
    a = np.zeros((200, sp.n_decisions), dtype=np.int64)
    m = sp.mutate(a, rng=0, prob=0.5)
    assert (m[:, 6:] != 0).any(axis=0).all()


@pytest.mark.parametrize("name", ["nb201+q", "ofa_mbv3+q"])
def test_block_macs_equal_the_layers_of_each_block(name: str) -> None:
    sp = get_space(name)
    a = sp.sample(12, rng=4)
    got = sp.block_macs(a)
    for i, arch in enumerate(a):
        want = np.zeros(sp.n_blocks + 1)
        for b, layer in sp.block_layers(arch):
            want[b if b >= 0 else sp.n_blocks] += layer.macs
        np.testing.assert_array_equal(got[i], want)
        assert got[i].sum() == sp.flops(arch[None, :])[0] / 2
    full = sp.block_macs(a, unpruned=True).sum(axis=1)
    base = sp.base.flops(sp.split(a)[0]) / 2
    np.testing.assert_array_equal(full, base)
