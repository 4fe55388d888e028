"""FBNet space as used by HW-NAS-Bench and HELP: 22 searchable layers x 9 blocks (9^22 designs).

Configuration from HW-NAS-Bench (GATECH-EIC/HW-NAS-Bench, ``hw_nas_bench_api/fbnet_models/
model_infer.py`` ``FBNet_Infer`` and ``hw_nas_bench_api.fbnet_get_metrics``), CIFAR-100 setting
that HELP's FBNet data uses (``metainfo.pt``: dataset ``cifar100``, 100 classes): input 3x32x32;
stem 3x3 conv 3->16 stride 1 + BN + ReLU; seven stages of [1, 4, 4, 4, 4, 4, 1] layers with
[16, 24, 32, 64, 112, 184, 352] channels and first-layer strides [1, 1, 2, 2, 1, 2, 1]; header
1x1 conv 352->1504 + BN + ReLU; global average pool; linear 1504->100.

A block ``kK_eE[_gG]`` is a 1x1 conv Cin->E*Cin (G groups) + BN + ReLU, a channel shuffle when
G > 1, a KxK depthwise conv (stride s) + BN + ReLU, a 1x1 conv ->Cout (G groups) + BN, and an
identity residual when Cin == Cout and s == 1. ``skip`` is the identity, or a 1x1 conv (stride s)
+ BN + ReLU when the stride or the width changes. Op names and their order are HELP's
(= HW-NAS-Bench's ``op_idx_list`` order).

Cost model as in :mod:`fleetnas.spaces.nb201`: BN folds away, activations fuse, channel shuffles
and residual additions are ``elementwise`` layers; ``params`` counts conv and linear weights and
biases (= ``Conv2d``/``Linear`` parameters of :meth:`FBNetSpace.to_torch`).
"""

from __future__ import annotations

import ast
import functools
import json
from typing import TYPE_CHECKING

import numpy as np

from fleetnas.errors import InputError
from fleetnas.spaces._registry import SPACES
from fleetnas.spaces.base import Decision, SearchSpace
from fleetnas.spaces.layers import Layer

if TYPE_CHECKING:
    import torch

OPS = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
#: (kernel, expansion, groups) of each block; ``None`` for skip.
BLOCKS = {op: (int(op[1]), int(op[4]), 2 if op.endswith("_g2") else 1) for op in OPS[:-1]}
STAGE_LAYERS = (1, 4, 4, 4, 4, 4, 1)
STAGE_CHANNELS = (16, 24, 32, 64, 112, 184, 352)
STAGE_STRIDES = (1, 1, 2, 2, 1, 2, 1)
STEM_CHANNELS = 16
HEADER_CHANNELS = 1504
INPUT_HW = 32
NUM_CLASSES = 100


@functools.cache
def _positions() -> tuple[tuple[int, int, int, int], ...]:
    """Per searchable layer: (in channels, out channels, stride, input height/width)."""
    out = []
    c_in, hw = STEM_CHANNELS, INPUT_HW
    for n, c, s in zip(STAGE_LAYERS, STAGE_CHANNELS, STAGE_STRIDES, strict=True):
        for i in range(n):
            stride = s if i == 0 else 1
            out.append((c_in, c, stride, hw))
            c_in, hw = c, hw // stride
    return tuple(out)


def _block_layers(op: str, c_in: int, c_out: int, stride: int, hw: int) -> list[Layer]:
    hw_out = hw // stride
    if op == "skip":
        if stride == 1 and c_in == c_out:
            return []
        return [Layer("pwconv", c_in, c_out, hw, hw_out, stride=stride)]
    k, e, g = BLOCKS[op]
    mid = c_in * e
    out = [Layer("pwconv", c_in, mid, hw, hw, groups=g)]
    if g > 1:
        out.append(Layer("elementwise", mid, mid, hw, hw))
    out += [
        Layer("dwconv", mid, mid, hw, hw_out, kernel=k, stride=stride, groups=mid),
        Layer("pwconv", mid, c_out, hw_out, hw_out, groups=g),
    ]
    if stride == 1 and c_in == c_out:
        out.append(Layer("elementwise", c_out, c_out, hw_out, hw_out))
    return out


def _fixed_layers(head: bool) -> list[Layer]:
    if not head:
        return [Layer("conv", 3, STEM_CHANNELS, INPUT_HW, INPUT_HW, kernel=3)]
    c, hw = STAGE_CHANNELS[-1], _positions()[-1][3] // _positions()[-1][2]
    return [
        Layer("pwconv", c, HEADER_CHANNELS, hw, hw),
        Layer("pool", HEADER_CHANNELS, HEADER_CHANNELS, hw, 1, kernel=hw),
        Layer("fc", HEADER_CHANNELS, NUM_CLASSES, 1, 1),
    ]


@SPACES.register("fbnet")
class FBNetSpace(SearchSpace):
    """FBNet blocks on the HW-NAS-Bench CIFAR-100 macro network (HELP's ``fbnet`` data).

    Native string: the 22 op names joined by ``-`` (``k3_e1-skip-...``); :meth:`parse` also
    accepts a JSON or Python list of op names.
    """

    name = "fbnet"
    decisions = tuple(Decision(f"layer_{i}", OPS) for i in range(sum(STAGE_LAYERS)))

    def parse(self, text: str) -> np.ndarray:
        s = str(text).strip()
        if s.startswith("["):
            try:
                names = json.loads(s)
            except ValueError:
                try:
                    names = ast.literal_eval(s)
                except (ValueError, SyntaxError):
                    raise InputError(f"fbnet design {s[:60]!r} is not a valid list") from None
            if not isinstance(names, list):
                raise InputError(f"fbnet design {s[:60]!r} is not a list of op names")
        else:
            names = s.split("-")
        if len(names) != self.n_decisions:
            raise InputError(
                f"fbnet design has {len(names)} layers, expected {self.n_decisions} op names "
                f"joined by '-'"
            )
        out = np.empty(self.n_decisions, dtype=np.int64)
        for i, name in enumerate(names):
            if not isinstance(name, str) or name.strip() not in OPS:
                raise InputError(
                    f"fbnet design: layer {i} has unknown op {name!r}; "
                    f"expected one of {', '.join(OPS)}"
                )
            out[i] = OPS.index(name.strip())
        return out

    def format(self, arch: np.ndarray) -> str:
        return "-".join(OPS[i] for i in self.check(arch)[0])

    def layers(self, arch: np.ndarray) -> list[Layer]:
        a = self.check(arch)[0]
        out = _fixed_layers(head=False)
        for op_idx, pos in zip(a, _positions(), strict=True):
            out += _block_layers(OPS[op_idx], *pos)
        return out + _fixed_layers(head=True)

    def flops(self, archs: np.ndarray) -> np.ndarray:
        """``n`` FLOPs (2 x MACs of :meth:`layers`) from a per-layer per-op table, vectorized."""
        fixed, table = _cost_tables("macs")
        a = self.check(archs)
        return 2.0 * (fixed + table[np.arange(a.shape[1])[None, :], a].sum(axis=1))

    def params(self, archs: np.ndarray) -> np.ndarray:
        fixed, table = _cost_tables("params")
        a = self.check(archs)
        return (fixed + table[np.arange(a.shape[1])[None, :], a].sum(axis=1)).astype(float)

    def input_shape(self, arch: np.ndarray, batch: int = 1) -> tuple[int, ...]:
        return (batch, 3, INPUT_HW, INPUT_HW)

    def to_torch(self, arch: np.ndarray, num_classes: int | None = None) -> torch.nn.Module:
        """The HW-NAS-Bench FBNet CIFAR network with random weights (logits output)."""
        from torch import nn

        from fleetnas.spaces import _torch_blocks as tb

        a = self.check(arch)[0]
        mods: list[nn.Module] = [tb.conv_bn(3, STEM_CHANNELS, 3, act="relu")]
        for op_idx, (c_in, c_out, stride, _) in zip(a, _positions(), strict=True):
            op = OPS[op_idx]
            if op == "skip":
                same = stride == 1 and c_in == c_out
                mods.append(
                    nn.Identity() if same else tb.conv_bn(c_in, c_out, 1, stride, act="relu")
                )
                continue
            k, e, g = BLOCKS[op]
            mid = c_in * e
            body = nn.Sequential(
                tb.conv_bn(c_in, mid, 1, groups=g, act="relu"),
                *([tb.ChannelShuffle(g)] if g > 1 else []),
                tb.conv_bn(mid, mid, k, stride, groups=mid, act="relu"),
                tb.conv_bn(mid, c_out, 1, groups=g),
            )
            mods.append(tb.Residual(body) if stride == 1 and c_in == c_out else body)
        header = tb.conv_bn(STAGE_CHANNELS[-1], HEADER_CHANNELS, 1, act="relu")
        mods.append(tb.ClassifierHead(header, HEADER_CHANNELS, num_classes or NUM_CLASSES))
        return nn.Sequential(*mods)


@functools.cache
def _cost_tables(attr: str) -> tuple[int, np.ndarray]:
    """(fixed cost, ``22 x 9`` per-layer per-op cost) of MACs or params."""
    fixed = sum(getattr(x, attr) for x in _fixed_layers(False) + _fixed_layers(True))
    table = np.array(
        [
            [sum(getattr(x, attr) for x in _block_layers(op, *pos)) for op in OPS]
            for pos in _positions()
        ],
        dtype=np.int64,
    )
    return fixed, table
