"""Behaviour every built-in space shares: sampling, variation, encoding, strings, cost, networks."""

from __future__ import annotations

import io

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from fleetnas.spaces import SearchSpace, get_space
from fleetnas.spaces._torch_blocks import count_params

BUILTIN = [
    "nb201",
    "fbnet",
    "ofa_mbv3",
    "ofa_mbv3_w1.0",
    "nb201+q",
    "ofa_mbv3+q",
    "apq",
    "proxylessnas",
]
CONV_KINDS = ("conv", "dwconv", "pwconv")


@pytest.fixture(params=BUILTIN)
def space(request: pytest.FixtureRequest) -> SearchSpace:
    return get_space(request.param)


def test_sample_is_seeded_valid_and_canonical(space: SearchSpace) -> None:
    a = space.sample(64, rng=3)
    assert a.shape == (64, space.n_decisions) and a.dtype == np.int64
    np.testing.assert_array_equal(a, space.sample(64, rng=3))
    assert not np.array_equal(a, space.sample(64, rng=4))
    np.testing.assert_array_equal(space.canonicalize(a), a)
    space.check(a)


def test_mutate_and_crossover_keep_designs_valid_and_canonical(space: SearchSpace) -> None:
    a, b = space.sample(50, rng=0), space.sample(50, rng=1)
    m = space.mutate(a, rng=2, prob=0.3)
    np.testing.assert_array_equal(m, space.mutate(a, rng=2, prob=0.3))
    assert (m != a).any() and (m == a).mean() > 0.5
    np.testing.assert_array_equal(space.canonicalize(m), m)
    c = space.crossover(a, b, rng=5)
    assert ((c == a) | (c == b)).all()
    np.testing.assert_array_equal(space.canonicalize(c), c)
    np.testing.assert_array_equal(space.mutate(a, rng=0, prob=0.0), a)


def test_encode_decode_round_trip_and_relaxed_encoding(space: SearchSpace) -> None:
    a = space.sample(20, rng=7)
    enc = space.encode(a)
    assert enc.shape == (20, space.n_features) and enc.dtype == np.float32
    np.testing.assert_array_equal(space.decode(enc), a)
    onehot = np.zeros_like(enc)
    onehot[np.arange(20)[:, None], a + space.offsets[:-1][None, :]] = 1.0
    probs = torch.tensor(onehot, requires_grad=True)
    relaxed = space.encode(probs)
    np.testing.assert_allclose(relaxed.detach().numpy(), enc, atol=1e-6)
    relaxed.sum().backward()
    assert probs.grad is not None and probs.grad.abs().sum() > 0


def test_format_parse_round_trip(space: SearchSpace) -> None:
    a = space.sample(30, rng=11)
    texts = space.format_many(a)
    np.testing.assert_array_equal(space.parse_many(texts), a)
    assert len({space.arch_hash(x) for x in a}) == len({tuple(x) for x in a})


def test_vectorized_cost_equals_sum_over_layers(space: SearchSpace) -> None:
    a = space.sample(12, rng=9)
    np.testing.assert_allclose(space.flops(a), SearchSpace.flops(space, a))
    np.testing.assert_allclose(space.params(a), SearchSpace.params(space, a))
    assert (space.flops(a) > 0).all() and (space.params(a) > 0).all()


def _torch_macs(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """MACs of every Conv2d and Linear module, from the real output shapes; and conv count."""
    total = [0, 0]

    def hook(mod: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        per_item = out[0].numel()
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            total[0] += per_item * (mod.in_channels // mod.groups) * k
            total[1] += 1
        else:
            total[0] += mod.in_features * mod.out_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total[0], total[1]


@pytest.mark.parametrize("seed", [0, 1])
def test_to_torch_matches_layers_params_and_exports_to_onnx(space: SearchSpace, seed: int) -> None:
    arch = space.sample(1, rng=seed)[0]
    if space.name.startswith("ofa"):
        arch[-1] = seed  # small resolutions (128, 132) keep the test fast
    model = space.to_torch(arch).eval()
    x = torch.randn(*space.input_shape(arch, batch=2))
    with torch.no_grad():
        y = model(x)
    assert y.shape[0] == 2 and torch.isfinite(y).all()

    assert count_params(model) == space.params(arch[None])[0]
    layers = space.layers(arch)
    macs, n_convs = _torch_macs(model, x[:1])
    assert macs == sum(lay.macs for lay in layers if lay.kind in (*CONV_KINDS, "fc"))
    assert n_convs == sum(lay.kind in CONV_KINDS for lay in layers)

    if seed:
        return  # one ONNX export per space keeps the suite fast
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, dynamo=False, input_names=["x"])
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {"x": x.numpy()})
    np.testing.assert_allclose(out, y.numpy(), rtol=1e-3, atol=1e-4)
