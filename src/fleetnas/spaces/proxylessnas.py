"""The ProxylessNAS-Mobile space (Cai, Zhu, Han, ICLR 2019) with runnable networks.

224 px input; a fixed head (3x3 conv 3 -> 32 stride 2, then a 3x3 depth-wise MBConv with
expansion 1 to 16 channels, no shortcut) and tail (1x1 conv 320 -> 1280 ``Conv_1``, then global
pool and the 1000-way classifier ``Logits``); between them 21 MBConv layers in six stages of
widths 24/40/80/96/192/320 with 4/4/4/4/4/1 layers, strides 2/2/2/1/2/1 on each stage's first
layer. Each layer ``layer_i`` is one of ``k<3|5|7>_e<3|6>`` (kernel, expansion ratio: middle
width ``round(c_in * e)``) or ``zero`` (the layer is skipped: its identity shortcut carries the
input through); a stage's first layer cannot be ``zero``. Activations are ReLU6; a layer with
stride 1 and equal widths adds its input (``idskip``).

This is the space of ProxylessNAS's Google Pixel 1 latency table (``mobile_trim.yaml``,
:class:`fleetnas.predict.ProxylessLatencyLUT`); :meth:`ProxylessNASSpace.op_keys` builds that
table's operator keys (``expanded_conv-input:56x56x24-output:56x56x24-expand:3-kernel:5-stride:1-
idskip:1``, where ``expand`` is the ratio). The native string is ``layer_0=k3_e3,...``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from fleetnas.spaces._registry import SPACES
from fleetnas.spaces.base import Decision
from fleetnas.spaces.layers import Layer
from fleetnas.spaces.yaml_space import YamlSpace

if TYPE_CHECKING:
    import torch

WIDTHS = (24, 40, 80, 96, 192, 320)
DEPTHS = (4, 4, 4, 4, 4, 1)
STRIDES = (2, 2, 2, 1, 2, 1)
OPS = ("k3_e3", "k3_e6", "k5_e3", "k5_e6", "k7_e3", "k7_e6", "zero")
KS = (3, 5, 7)
EXPANDS = (3, 6)
RESOLUTION = 224
STEM_WIDTH, FIRST_WIDTH, FEATURE_WIDTH, NUM_CLASSES = 32, 16, 1280, 1000
N_LAYERS = sum(DEPTHS)


class LayerIO(NamedTuple):
    """Shapes of one searchable layer at the space's resolution."""

    hw: int
    c_in: int
    hw_out: int
    c_out: int
    stride: int
    idskip: int
    stage: int
    pos: int


def op_kernel_expand(op: str) -> tuple[int, int]:
    """``"k5_e3"`` -> (5, 3)."""
    k, e = op.split("_")
    return int(k[1:]), int(e[1:])


def _shape(*dims: int) -> str:
    return "x".join(str(d) for d in dims)


def _out(hw: int, stride: int) -> int:
    return (hw - 1) // stride + 1


def mbconv_key(io: LayerIO, k: int, e: int) -> str:
    """The table key of an MBConv layer (``expand`` is the ratio, as in ``mobile_trim.yaml``)."""
    return (
        f"expanded_conv-input:{_shape(io.hw, io.hw, io.c_in)}-output:"
        f"{_shape(io.hw_out, io.hw_out, io.c_out)}-expand:{e}-kernel:{k}-stride:{io.stride}"
        f"-idskip:{io.idskip}"
    )


class ProxylessNASSpace(YamlSpace):
    """ProxylessNAS-Mobile (see the module docstring): 21 decisions ``layer_i``."""

    has_network = True

    def __init__(self, resolution: int = RESOLUTION) -> None:
        decisions = []
        for depth in DEPTHS:
            for p in range(depth):
                ops = OPS[:-1] if p == 0 else OPS
                decisions.append(Decision(f"layer_{len(decisions)}", ops))
        super().__init__("proxylessnas", decisions, source="fleetnas.spaces.proxylessnas")
        self.resolution = int(resolution)

    # ---- shapes and keys --------------------------------------------------------------------
    def layer_io(self) -> list[LayerIO]:
        """Per searchable layer, in network order."""
        hw, c_in = _out(self.resolution, 2), FIRST_WIDTH
        out = []
        for s, (w, depth, stride) in enumerate(zip(WIDTHS, DEPTHS, STRIDES, strict=True)):
            for p in range(depth):
                st = stride if p == 0 else 1
                cin = c_in if p == 0 else w
                out.append(LayerIO(hw, cin, _out(hw, st), w, st, int(st == 1 and cin == w), s, p))
                hw = _out(hw, st)
            c_in = w
        return out

    def final_hw(self) -> int:
        return self.layer_io()[-1].hw_out

    def fixed_keys(self) -> dict[str, str]:
        """Keys of the fixed operators: ``stem``, ``first``, ``conv_1``, ``logits``."""
        r, h, f = self.resolution, _out(self.resolution, 2), self.final_hw()
        first = LayerIO(h, STEM_WIDTH, h, FIRST_WIDTH, 1, 0, -1, 0)
        return {
            "stem": f"Conv-input:{_shape(r, r, 3)}-output:{_shape(h, h, STEM_WIDTH)}",
            "first": mbconv_key(first, 3, 1),
            "conv_1": f"Conv_1-input:{_shape(f, f, WIDTHS[-1])}-output:"
            f"{_shape(f, f, FEATURE_WIDTH)}",
            "logits": f"Logits-input:{_shape(f, f, FEATURE_WIDTH)}-output:{NUM_CLASSES}",
        }

    def op_keys(self, arch: np.ndarray) -> list[str]:
        """The table keys one design sums, in network order (``zero`` layers add none)."""
        a = self.check(arch)[0]
        fixed = self.fixed_keys()
        keys = [fixed["stem"], fixed["first"]]
        for choice, io in zip(a, self.layer_io(), strict=True):
            if OPS[choice] != "zero":
                keys.append(mbconv_key(io, *op_kernel_expand(OPS[choice])))
        return [*keys, fixed["conv_1"], fixed["logits"]]

    # ---- cost -------------------------------------------------------------------------------
    def stem_layers(self) -> list[Layer]:
        r, h = self.resolution, _out(self.resolution, 2)
        return [Layer("conv", 3, STEM_WIDTH, r, h, kernel=3, stride=2)]

    def first_layers(self) -> list[Layer]:
        h = _out(self.resolution, 2)
        return [
            Layer("dwconv", STEM_WIDTH, STEM_WIDTH, h, h, kernel=3, groups=STEM_WIDTH),
            Layer("pwconv", STEM_WIDTH, FIRST_WIDTH, h, h),
        ]

    def block_layers(self, io: LayerIO, k: int, e: int) -> list[Layer]:
        mid = round(io.c_in * e)
        out = [
            Layer("pwconv", io.c_in, mid, io.hw, io.hw),
            Layer("dwconv", mid, mid, io.hw, io.hw_out, kernel=k, stride=io.stride, groups=mid),
            Layer("pwconv", mid, io.c_out, io.hw_out, io.hw_out),
        ]
        if io.idskip:
            out.append(Layer("elementwise", io.c_out, io.c_out, io.hw_out, io.hw_out))
        return out

    def conv1_layers(self) -> list[Layer]:
        f = self.final_hw()
        return [Layer("pwconv", WIDTHS[-1], FEATURE_WIDTH, f, f)]

    def logits_layers(self) -> list[Layer]:
        f = self.final_hw()
        return [
            Layer("pool", FEATURE_WIDTH, FEATURE_WIDTH, f, 1, kernel=f),
            Layer("fc", FEATURE_WIDTH, NUM_CLASSES, 1, 1),
        ]

    def layers(self, arch: np.ndarray) -> list[Layer]:
        a = self.check(arch)[0]
        out = self.stem_layers() + self.first_layers()
        for choice, io in zip(a, self.layer_io(), strict=True):
            if OPS[choice] != "zero":
                out += self.block_layers(io, *op_kernel_expand(OPS[choice]))
        return out + self.conv1_layers() + self.logits_layers()

    def flops(self, archs: np.ndarray) -> np.ndarray:
        """``n`` FLOPs (2 x MACs of :meth:`layers`)."""
        return np.array([2.0 * sum(x.macs for x in self.layers(a)) for a in self.check(archs)])

    def params(self, archs: np.ndarray) -> np.ndarray:
        return np.array([float(sum(x.params for x in self.layers(a))) for a in self.check(archs)])

    # ---- network ----------------------------------------------------------------------------
    def input_shape(self, arch: np.ndarray, batch: int = 1) -> tuple[int, ...]:
        self.check(arch)
        return (batch, 3, self.resolution, self.resolution)

    def to_torch(self, arch: np.ndarray, num_classes: int | None = None) -> torch.nn.Module:
        """The network with random weights (logits output)."""
        from torch import nn

        return nn.Sequential(*[m for _, m in self.torch_blocks(arch, num_classes)])

    def torch_blocks(
        self, arch: np.ndarray, num_classes: int | None = None
    ) -> list[tuple[str, torch.nn.Module]]:
        """(name, module) in order: ``stem``, ``first``, ``L<i>`` per non-``zero`` layer,
        ``conv_1``, ``logits`` (pool, flatten, classifier): one module per table key."""
        from torch import nn

        from fleetnas.spaces import _torch_blocks as tb

        a = self.check(arch)[0]
        mods: list[tuple[str, nn.Module]] = [
            ("stem", tb.conv_bn(3, STEM_WIDTH, 3, stride=2, act="relu6")),
            ("first", self.mbconv(LayerIO(0, STEM_WIDTH, 0, FIRST_WIDTH, 1, 0, -1, 0), 3, 1)),
        ]
        for i, (choice, io) in enumerate(zip(a, self.layer_io(), strict=True)):
            if OPS[choice] != "zero":
                mods.append((f"L{i}", self.mbconv(io, *op_kernel_expand(OPS[choice]))))
        mods.append(("conv_1", tb.conv_bn(WIDTHS[-1], FEATURE_WIDTH, 1, act="relu6")))
        fc = nn.Linear(FEATURE_WIDTH, num_classes or NUM_CLASSES)
        logits = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), fc)
        return [*mods, ("logits", logits)]

    @staticmethod
    def mbconv(io: LayerIO, k: int, e: int) -> torch.nn.Module:
        """One MBConv layer: [1x1 expand + BN + ReLU6] (not for ``e == 1``), k x k depth-wise +
        BN + ReLU6, 1x1 project + BN; the identity added when ``io.idskip``."""
        from torch import nn

        from fleetnas.spaces import _torch_blocks as tb

        mid = round(io.c_in * e)
        parts = [tb.conv_bn(io.c_in, mid, 1, act="relu6")] if e != 1 else []
        parts += [
            tb.conv_bn(mid, mid, k, io.stride, groups=mid, act="relu6"),
            tb.conv_bn(mid, io.c_out, 1),
        ]
        body = nn.Sequential(*parts)
        return tb.Residual(body) if io.idskip else body


SPACES.add("proxylessnas", ProxylessNASSpace)

__all__ = ["OPS", "LayerIO", "ProxylessNASSpace", "mbconv_key", "op_kernel_expand"]
