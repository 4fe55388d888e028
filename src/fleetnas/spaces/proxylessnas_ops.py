"""The operators of ProxylessNAS-Mobile as a space of their own (``proxylessnas.ops``), so
real measurers can time them for a look-up table in the layout of ProxylessNAS's
``mobile_trim.yaml``.

Decisions (:class:`~fleetnas.spaces.operators.OperatorSpace`): the resolution ``r`` (224 only:
the space has one) and the slot ``op``: ``stem``, ``first``, ``s<stage>p<0|1>_k<k>_e<e>`` (a
stage's first layer, with its stride and width change, and the layer at positions 1..3, which
all have one shape; the one-layer last stage has ``p0`` only) for every kernel and expansion,
and ``conv_1``, ``logits``: 70 slots, 70 distinct operators. A design's native string is its
``mobile_trim.yaml`` key. Each operator's network is the module that
:meth:`ProxylessNASSpace.torch_blocks` puts into a whole network (random weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from fleetnas.spaces import proxylessnas as px
from fleetnas.spaces._registry import SPACES
from fleetnas.spaces.layers import Layer
from fleetnas.spaces.operators import OperatorSpace

if TYPE_CHECKING:
    import torch

FIXED_SLOTS = ("stem", "first", "conv_1", "logits")
LAYER_SLOTS = tuple(
    f"s{s}p{p}_k{k}_e{e}"
    for s in range(len(px.WIDTHS))
    for p in ((0, 1) if px.DEPTHS[s] > 1 else (0,))
    for k in px.KS
    for e in px.EXPANDS
)
SLOTS = ("stem", "first", *LAYER_SLOTS, "conv_1", "logits")


def _parse_layer_slot(slot: str) -> tuple[int, int, int, int]:
    """``s<s>p<p>_k<k>_e<e>`` -> (stage, position, kernel, expansion)."""
    sp, k, e = slot.split("_")
    return int(sp[1]), int(sp[3]), int(k[1:]), int(e[1:])


class ProxylessOperatorSpace(OperatorSpace):
    """Operators of :class:`~fleetnas.spaces.proxylessnas.ProxylessNASSpace` (see the module
    docstring)."""

    resolutions = (px.RESOLUTION,)
    slots = SLOTS

    def __init__(self) -> None:
        super().__init__(px.ProxylessNASSpace())

    def _layer(self, slot: str) -> tuple[int, px.LayerIO, int, int]:
        """(layer index, shapes, kernel, expansion) of a layer slot."""
        s, pos, k, e = _parse_layer_slot(slot)
        i = sum(px.DEPTHS[:s]) + pos
        return i, self.parent.layer_io()[i], k, e

    def key(self, r: int, slot: str) -> str:
        if slot in FIXED_SLOTS:
            return self.parent.fixed_keys()[slot]
        _, io, k, e = self._layer(slot)
        return px.mbconv_key(io, k, e)

    def sample_at(self, n: int, resolutions: Sequence[int], rng: np.random.Generator) -> np.ndarray:
        self.check_resolutions(resolutions)
        return self.parent.sample(n, rng)

    # ---- networks ---------------------------------------------------------------------------
    def layers(self, arch: np.ndarray) -> list[Layer]:
        _, slot = self._unpack(arch)
        p = self.parent
        fixed = {
            "stem": p.stem_layers,
            "first": p.first_layers,
            "conv_1": p.conv1_layers,
            "logits": p.logits_layers,
        }
        if slot in fixed:
            return fixed[slot]()
        _, io, k, e = self._layer(slot)
        return p.block_layers(io, k, e)

    def input_shape(self, arch: np.ndarray, batch: int = 1) -> tuple[int, ...]:
        _, slot = self._unpack(arch)
        r, f = self.parent.resolution, self.parent.final_hw()
        h = (r - 1) // 2 + 1
        fixed = {
            "stem": (3, r),
            "first": (px.STEM_WIDTH, h),
            "conv_1": (px.WIDTHS[-1], f),
            "logits": (px.FEATURE_WIDTH, f),
        }
        if slot in fixed:
            c, hw = fixed[slot]
        else:
            _, io, _, _ = self._layer(slot)
            c, hw = io.c_in, io.hw
        return (batch, c, hw, hw)

    def host_design(self, arch: np.ndarray) -> np.ndarray:
        """A parent design (``D`` array) whose network contains this operator."""
        _, slot = self._unpack(arch)
        a = np.zeros(self.parent.n_decisions, dtype=np.int64)
        if slot in LAYER_SLOTS:
            i, _, k, e = self._layer(slot)
            a[i] = px.OPS.index(f"k{k}_e{e}")
        return a

    def to_torch(self, arch: np.ndarray, num_classes: int | None = None) -> torch.nn.Module:
        """The operator's module, taken from a whole network's blocks (random weights)."""
        _, slot = self._unpack(arch)
        blocks = dict(self.parent.torch_blocks(self.host_design(arch), num_classes))
        if slot in LAYER_SLOTS:
            return blocks[f"L{self._layer(slot)[0]}"]
        return blocks[slot]


SPACES.add("proxylessnas.ops", ProxylessOperatorSpace)

__all__ = ["SLOTS", "ProxylessOperatorSpace"]
