"""The operators of OFA-MobileNetV3 as a space of their own, so real measurers can time them.

An operator-level look-up table (``fleetnas predict lut``) needs every distinct block that the
space's networks contain, each runnable alone. This space has two decisions: the input
resolution ``r`` (the 25 of :mod:`fleetnas.spaces.ofa_mbv3`) and the operator slot ``op``:
``stem``, ``first``, ``s<stage>p<0|1>_k<k>_e<e>`` (a stage's first layer, with its stride and
channel change, and the layer at positions 1..3, which all have one shape) for every kernel
and expansion, and the head pieces ``conv_1``, ``avgpool``, ``conv_2``, ``logits``: 96 slots.

A design's native string is its operator key in once-for-all's latency-table notation (e.g.
``expanded_conv-input:56x56x32-output:28x28x48-expand:96-kernel:5-stride:2-idskip:0-se:1-hs:0``).
Two (resolution, slot) pairs with the same key (later stages of nearby resolutions share
feature-map sizes, the 1x1 head pieces are equal at every resolution) are one design:
:meth:`canonicalize` maps each to the lowest resolution with that key, so each operator is
exported, measured and stored once. Each operator's network is the very module that
:meth:`OFAMobileNetV3Space.torch_blocks` puts into a whole subnet (random weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from fleetnas.spaces import ofa_mbv3 as o
from fleetnas.spaces._registry import SPACES
from fleetnas.spaces.layers import Layer
from fleetnas.spaces.operators import OperatorSpace

if TYPE_CHECKING:
    import torch

HEAD_SLOTS = ("conv_1", "avgpool", "conv_2", "logits")
LAYER_SLOTS = tuple(
    f"s{s}p{p}_k{k}_e{e}"
    for s in range(o.N_STAGES)
    for p in (0, 1)
    for k in o.KS
    for e in o.EXPANDS
)
SLOTS = ("stem", "first", *LAYER_SLOTS, *HEAD_SLOTS)


def _shape(*dims: int) -> str:
    return "x".join(str(d) for d in dims)


def _parse_layer_slot(slot: str) -> tuple[int, int, int, int]:
    """``s<s>p<p>_k<k>_e<e>`` -> (stage, position, kernel, expansion)."""
    sp, k, e = slot.split("_")
    return int(sp[1]), int(sp[3]), int(k[1:]), int(e[1:])


class OFAOperatorSpace(OperatorSpace):
    """Operators of an :class:`~fleetnas.spaces.ofa_mbv3.OFAMobileNetV3Space` (see the module
    docstring). Decisions: ``r`` (25 resolutions), ``op`` (96 slots)."""

    resolutions = o.RESOLUTIONS
    slots = SLOTS

    def __init__(self, width_mult: float = 1.2) -> None:
        super().__init__(o.OFAMobileNetV3Space(width_mult))

    # ---- keys ----------------------------------------------------------------------------
    def _layer_io(self, r: int, stage: int, pos: int) -> tuple[int, int, int, int, int]:
        """(c_in, c_out, stride, hw_in, layer index) of a layer slot at resolution ``r``."""
        j = stage * o.MAX_DEPTH + pos
        c_in, c, stride, hw, _ = self.parent._stage_io(r)[j]
        return c_in, c, stride, hw, j

    def _head_hw(self, r: int) -> int:
        hw = (r - 1) // 2 + 1
        for s in o.STRIDES:
            hw = (hw - 1) // s + 1
        return hw

    def key(self, r: int, slot: str) -> str:
        """The once-for-all latency-table key of ``slot`` at resolution ``r``."""
        p = self.parent
        h = (r - 1) // 2 + 1
        f = self._head_hw(r)
        b0, first, last = p.block0_width, p.first_width, p.stage_widths[-1]
        fe, mix = p.final_expand_width, p.last_width
        fixed = {
            "stem": f"Conv-input:{_shape(r, r, 3)}-output:{_shape(h, h, first)}",
            "first": _mbconv_key(h, first, h, b0, b0, 3, 1, int(first == b0), 0, 0),
            "conv_1": f"Conv_1-input:{_shape(f, f, last)}-output:{_shape(f, f, fe)}",
            "avgpool": f"AvgPool2D-input:{_shape(f, f, fe)}-output:{_shape(1, 1, fe)}",
            "conv_2": f"Conv_2-input:{_shape(1, 1, fe)}-output:{_shape(1, 1, mix)}",
            "logits": f"Logits-input:{_shape(1, 1, mix)}-output:{o.NUM_CLASSES}",
        }
        if slot in fixed:
            return fixed[slot]
        s, pos, k, e = _parse_layer_slot(slot)
        c_in, c, stride, hw, _ = self._layer_io(r, s, pos)
        hw_out = (hw - 1) // stride + 1
        mid = o.middle_width(c_in, e)
        idskip = int(stride == 1 and c_in == c)
        se, hs = int(o.USE_SE[s]), int(o.ACTS[s] == "hswish")
        return _mbconv_key(hw, c_in, hw_out, c, mid, k, stride, idskip, se, hs)

    def sample_at(self, n: int, resolutions: Sequence[int], rng: np.random.Generator) -> np.ndarray:
        designs = self.parent.sample(n, rng)
        designs[:, o.R_COL] = [o.RESOLUTIONS.index(r) for r in rng.choice(list(resolutions), n)]
        return self.parent.canonicalize(designs)

    def layers(self, arch: np.ndarray) -> list[Layer]:
        r, slot = self._unpack(arch)
        p = self.parent
        if slot == "stem":
            return p._fixed_layers(r, head=False)[:1]
        if slot == "first":
            return p._fixed_layers(r, head=False)[1:]
        if slot in HEAD_SLOTS:
            return [p._fixed_layers(r, head=True)[HEAD_SLOTS.index(slot)]]
        s, pos, k, e = _parse_layer_slot(slot)
        c_in, c, stride, hw, _ = self._layer_io(r, s, pos)
        return p._block_layers(c_in, c, stride, hw, s, k, e)

    def input_shape(self, arch: np.ndarray, batch: int = 1) -> tuple[int, ...]:
        r, slot = self._unpack(arch)
        p = self.parent
        h, f = (r - 1) // 2 + 1, self._head_hw(r)
        if slot in ("stem", "first"):
            return (batch, 3, r, r) if slot == "stem" else (batch, p.first_width, h, h)
        if slot in HEAD_SLOTS:
            c, hw = {
                "conv_1": (p.stage_widths[-1], f),
                "avgpool": (p.final_expand_width, f),
                "conv_2": (p.final_expand_width, 1),
                "logits": (p.last_width, 1),
            }[slot]
            return (batch, c, hw, hw)
        s, pos, _, _ = _parse_layer_slot(slot)
        c_in, _, _, hw, _ = self._layer_io(r, s, pos)
        return (batch, c_in, hw, hw)

    def host_design(self, arch: np.ndarray) -> np.ndarray:
        """A parent design (``D`` array) whose network contains this operator."""
        r, slot = self._unpack(arch)
        a = np.zeros(self.parent.n_decisions, dtype=np.int64)
        a[o.R_COL] = o.RESOLUTIONS.index(r)
        if slot in LAYER_SLOTS:
            s, pos, k, e = _parse_layer_slot(slot)
            j = s * o.MAX_DEPTH + pos
            a[j], a[o.N_LAYERS + j] = o.KS.index(k), o.EXPANDS.index(e)
        return a

    def to_torch(self, arch: np.ndarray, num_classes: int | None = None) -> torch.nn.Module:
        """The operator's module, taken from a whole subnet's blocks (random weights)."""
        from torch import nn

        _, slot = self._unpack(arch)
        blocks = {n: m for n, _, m in self.parent.torch_blocks(self.host_design(arch))}
        if slot in ("stem", "first"):
            return blocks[slot]
        if slot in LAYER_SLOTS:
            s, pos, _, _ = _parse_layer_slot(slot)
            return blocks[f"L{s * o.MAX_DEPTH + pos}"]
        head = blocks["head"]
        return {
            "conv_1": head.pre,
            "avgpool": head.pool,
            "conv_2": head.mix,
            "logits": nn.Sequential(nn.Flatten(1), head.fc),
        }[slot]


def _mbconv_key(
    hw: int, cin: int, hw_out: int, cout: int, mid: int, k: int, stride: int, idskip: int,
    se: int, hs: int,
) -> str:  # fmt: skip
    return (
        f"expanded_conv-input:{_shape(hw, hw, cin)}-output:{_shape(hw_out, hw_out, cout)}"
        f"-expand:{mid}-kernel:{k}-stride:{stride}-idskip:{idskip}-se:{se}-hs:{hs}"
    )


SPACES.add("ofa_mbv3.ops", OFAOperatorSpace)
SPACES.add("ofa_mbv3_w1.0.ops", lambda: OFAOperatorSpace(width_mult=1.0))

__all__ = ["SLOTS", "OFAOperatorSpace"]
