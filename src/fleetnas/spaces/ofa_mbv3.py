"""Once-for-All MobileNetV3 subnets: resolution, depth per stage, kernel and expansion per layer.

Source: the public once-for-all repository (mit-han-lab/once-for-all),
``ofa/imagenet_classification/elastic_nn/networks/ofa_mbv3.py`` (``OFAMobileNetV3``),
``elastic_nn/modules/dynamic_layers.py`` (``DynamicMBConvLayer.get_active_subnet``) and
``ofa/utils/pytorch_modules.py`` (``make_divisible``, ``SEModule``). Widths are
``make_divisible(base * width_mult, 8)`` of the base widths 16 (first conv), 16 (first block),
24/40/80/112/160 (stages), 960 (final expand) and 1280 (feature mix). The default space,
``ofa_mbv3``, uses ``width_mult=1.2`` (widths 24, 24, 32/48/96/136/192, 1152, 1536): the network
``ofa_mbv3_d234_e346_k357_w1.2`` behind HELP's OFA latencies, OFA's released accuracy predictor
and the Note10 latency tables. ``ofa_mbv3_w1.0`` is the MobileNetV3-Large width.

Network: 3x3 conv stride 2 + BN + h-swish; a first MBConv block (3x3 depthwise, expand 1, ReLU,
identity residual); five stages with strides 2/2/2/1/2, activations relu/relu/h-swish/h-swish/
h-swish, squeeze-excite in stages 2, 4 and 5, of ``d`` active layers each (first ``d`` of 4). A
layer is 1x1 expand to ``make_divisible(e * Cin, 8)`` + BN + act, KxK depthwise (stride on the
first layer of a stage) + BN + act, optional SE (reduce to ``make_divisible(mid // 4, 8)``, with
biases, ReLU, h-sigmoid), 1x1 project + BN, identity residual when shapes allow. Then 1x1 conv to
the final expand width + BN + h-swish, global average pool, 1x1 conv to the feature-mix width
(no BN) + h-swish, linear classifier (1000 classes).

Cost model as in :mod:`fleetnas.spaces.nb201`; SE pooling, its two 1x1 convs (on 1x1 maps,
with bias) and its gating multiply are layers.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.spaces._registry import SPACES
from fleetnas.spaces.base import Decision, SearchSpace, _is_tensor
from fleetnas.spaces.layers import Layer

if TYPE_CHECKING:
    import torch

KS = (3, 5, 7)
EXPANDS = (3, 4, 6)
DEPTHS = (2, 3, 4)
#: Input resolutions OFA trained with (128..224 step 4); the Note10 tables cover 160..224 step 16.
RESOLUTIONS = tuple(range(128, 225, 4))
N_STAGES = 5
MAX_DEPTH = 4
N_LAYERS = N_STAGES * MAX_DEPTH
BASE_WIDTHS = (16, 16, 24, 40, 80, 112, 160, 960, 1280)
STRIDES = (2, 2, 2, 1, 2)
ACTS = ("relu", "relu", "hswish", "hswish", "hswish")
USE_SE = (False, True, False, True, True)
NUM_CLASSES = 1000

KS_COLS = slice(0, N_LAYERS)
E_COLS = slice(N_LAYERS, 2 * N_LAYERS)
D_COLS = slice(2 * N_LAYERS, 2 * N_LAYERS + N_STAGES)
R_COL = 2 * N_LAYERS + N_STAGES
STAGE_OF_LAYER = np.repeat(np.arange(N_STAGES), MAX_DEPTH)
POS_IN_STAGE = np.tile(np.arange(MAX_DEPTH), N_STAGES)


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round ``v`` to a multiple of ``divisor``, never more than 10 % below ``v`` (as OFA does)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def middle_width(c_in: int, expand: int, width: float = 1.0) -> int:
    """Expanded channels of an MBConv layer, pruned to ``width`` of OFA's (multiple of 8)."""
    mid = make_divisible(round(c_in * expand))
    return mid if width == 1.0 else make_divisible(mid * width)


def _conv_out(hw: int, stride: int) -> int:
    return (hw - 1) // stride + 1


class OFAMobileNetV3Space(SearchSpace):
    """OFA-MobileNetV3 subnets (``width_mult`` 1.2 by default, see the module docstring).

    Decisions (D = 46): ``ks_0..ks_19``, ``e_0..e_19``, ``d_0..d_4``, ``r``. Layers beyond a
    stage's depth are inactive; :meth:`canonicalize` sets their kernel and expansion to choice 0
    so equal networks have one representation, and :meth:`encode` zeroes their one-hot blocks.
    Native string: compact JSON ``{"ks":[20],"e":[20],"d":[5],"r":224}``.
    """

    decisions = (
        *(Decision(f"ks_{i}", KS) for i in range(N_LAYERS)),
        *(Decision(f"e_{i}", EXPANDS) for i in range(N_LAYERS)),
        *(Decision(f"d_{i}", DEPTHS) for i in range(N_STAGES)),
        Decision("r", RESOLUTIONS),
    )

    def __init__(self, width_mult: float = 1.2) -> None:
        self.width_mult = float(width_mult)
        self.name = "ofa_mbv3" if self.width_mult == 1.2 else f"ofa_mbv3_w{self.width_mult}"
        w = [make_divisible(b * self.width_mult) for b in BASE_WIDTHS]
        self.first_width, self.block0_width = w[0], w[1]
        self.stage_widths = tuple(w[2:7])
        self.final_expand_width, self.last_width = w[7], w[8]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "width_mult": self.width_mult}

    # ---- canonical form and encoding ---------------------------------------------------
    def active_layers(self, archs: np.ndarray) -> np.ndarray:
        """``n x 20`` bool: which layers run (position in stage < the stage's depth)."""
        a = self.check(archs)
        depth = np.asarray(DEPTHS)[a[:, D_COLS]]
        return POS_IN_STAGE[None, :] < depth[:, STAGE_OF_LAYER]

    def canonicalize(self, archs: np.ndarray) -> np.ndarray:
        raw = np.asarray(archs)
        a = self.check(raw).copy()
        inactive = ~self.active_layers(a)
        a[:, KS_COLS][inactive] = 0
        a[:, E_COLS][inactive] = 0
        return a[0] if raw.ndim == 1 else a

    def encode(self, archs: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """One-hot with the kernel and expansion blocks of inactive layers all zero."""
        if _is_tensor(archs):
            return self.relax_encode(archs)
        a = self.check(archs)
        out = super().encode(a)
        n = a.shape[0]
        mask = self.active_layers(a)[:, None, :, None]
        blocks = out[:, : 6 * N_LAYERS].reshape(n, 2, N_LAYERS, 3) * mask
        out[:, : 6 * N_LAYERS] = blocks.reshape(n, 6 * N_LAYERS)
        return out

    def relax_encode(self, probs: torch.Tensor) -> torch.Tensor:
        """Relaxed encoding: kernel/expansion probabilities scaled by P(layer active).

        With per-stage depth probabilities ``p(d)``, layer positions 0 and 1 are always active,
        position 2 with ``p(3) + p(4)`` and position 3 with ``p(4)``; a one-hot input gives
        exactly :meth:`encode` of the canonical design.
        """
        import torch

        probs = super().relax_encode(probs)
        n = probs.shape[0]
        active = self.relaxed_block_active(probs)
        blocks = probs[:, : 6 * N_LAYERS].reshape(n, 2, N_LAYERS, 3)
        blocks = blocks * active.reshape(n, 1, N_LAYERS, 1)
        return torch.cat([blocks.reshape(n, 6 * N_LAYERS), probs[:, 6 * N_LAYERS :]], dim=1)

    def relaxed_block_active(self, probs: torch.Tensor) -> torch.Tensor:
        """``n x 20`` P(layer active) of relaxed designs (``n x F`` probabilities)."""
        import torch

        n = probs.shape[0]
        pd = probs[:, 6 * N_LAYERS : 6 * N_LAYERS + 3 * N_STAGES].reshape(n, N_STAGES, 3)
        one = torch.ones_like(pd[:, :, 0])
        return torch.stack([one, one, pd[:, :, 1] + pd[:, :, 2], pd[:, :, 2]], dim=2).reshape(
            n, N_LAYERS
        )

    # ---- strings -----------------------------------------------------------------------
    def parse(self, text: str) -> np.ndarray:
        """JSON or Python dict text (HELP's ``repr`` with ``np.int64(...)`` too) -> ``D`` array."""
        s = str(text).strip()
        cleaned = re.sub(r"\b(?:np|numpy)\.(?:u?int\d*|float\d*)\(([^()]*)\)", r"\1", s)
        try:
            obj = json.loads(cleaned)
        except ValueError:
            try:
                obj = ast.literal_eval(cleaned)
            except (ValueError, SyntaxError):
                raise InputError(
                    f"{self.name} design {s[:80]!r} is not a JSON or Python dict like "
                    '{"ks":[20 ints],"e":[20 ints],"d":[5 ints],"r":224}'
                ) from None
        return self.parse_dict(obj)

    def parse_dict(self, obj: Mapping[str, Any]) -> np.ndarray:
        """A dict ``{ks, e, d, r}`` (OFA / HELP style; ``image_size`` for ``r``) -> ``D`` array."""
        if not isinstance(obj, Mapping):
            raise InputError(f"{self.name} design must be a dict with keys ks, e, d, r")
        d = dict(obj)
        if d.get("wid") is None:
            d.pop("wid", None)
        if "r" not in d and "image_size" in d:
            d["r"] = d.pop("image_size")
        unknown = sorted(set(d) - {"ks", "e", "d", "r"})
        missing = [k for k in ("ks", "e", "d", "r") if k not in d]
        if unknown or missing:
            raise InputError(
                f"{self.name} design has keys {sorted(d)}; expected ks, e, d, r"
                + (f" (unknown: {', '.join(unknown)})" if unknown else "")
                + (f" (missing: {', '.join(missing)})" if missing else "")
            )
        r = d["r"]
        if isinstance(r, list | tuple) and len(r) == 1:
            r = r[0]
        depth = self._values("d", d["d"], N_STAGES, DEPTHS)
        active = np.asarray([DEPTHS[i] for i in depth])[STAGE_OF_LAYER] > POS_IN_STAGE
        ks = self._values("ks", d["ks"], N_LAYERS, KS, active)
        e = self._values("e", d["e"], N_LAYERS, EXPANDS, active)
        (r_idx,) = self._values("r", [r], 1, RESOLUTIONS)
        return self.canonicalize(np.array([*ks, *e, *depth, r_idx], dtype=np.int64))

    def _values(
        self,
        key: str,
        values: Any,
        length: int,
        choices: tuple[int, ...],
        active: np.ndarray | None = None,
    ) -> list[int]:
        if not isinstance(values, list | tuple) or len(values) != length:
            got = f"{len(values)} values" if isinstance(values, list | tuple) else repr(values)
            raise InputError(f"{self.name} design: {key!r} has {got}, expected {length} ints")
        out = []
        for i, v in enumerate(values):
            inactive = active is not None and not active[i]
            if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v):
                raise InputError(f"{self.name} design: {key}[{i}] = {v!r} is not an integer")
            if int(v) in choices:
                out.append(choices.index(int(v)))
            elif inactive and int(v) == 0:
                out.append(0)
            else:
                where = f"{key}[{i}]" if length > 1 else key
                shown = (
                    f"{choices[0]}, {choices[1]}, ..., {choices[-1]}"
                    if len(choices) > 6
                    else ", ".join(map(str, choices))
                )
                raise InputError(f"{self.name} design: {where} = {v} is not one of {shown}")
        return out

    def to_dict(self, arch: np.ndarray) -> dict[str, Any]:
        """``D`` array -> ``{"ks": [20], "e": [20], "d": [5], "r": int}`` (canonical)."""
        a = self.canonicalize(self.check(arch))[0]
        return {
            "ks": [KS[i] for i in a[KS_COLS]],
            "e": [EXPANDS[i] for i in a[E_COLS]],
            "d": [DEPTHS[i] for i in a[D_COLS]],
            "r": RESOLUTIONS[a[R_COL]],
        }

    def format(self, arch: np.ndarray) -> str:
        return json.dumps(self.to_dict(arch), separators=(",", ":"))

    # ---- cost --------------------------------------------------------------------------
    def _stage_io(self, resolution: int) -> list[tuple[int, int, int, int, int]]:
        """Per layer: (in channels, out channels, stride, input hw, stage)."""
        hw = _conv_out(resolution, 2)
        c_in = self.block0_width
        out = []
        for s in range(N_STAGES):
            c = self.stage_widths[s]
            for p in range(MAX_DEPTH):
                stride = STRIDES[s] if p == 0 else 1
                out.append((c_in if p == 0 else c, c, stride, hw, s))
                if p == 0:
                    hw = _conv_out(hw, stride)
            c_in = c
        return out

    def _block_layers(
        self, c_in: int, c: int, stride: int, hw: int, stage: int, k: int, e: int, w: float = 1.0
    ) -> list[Layer]:
        mid = middle_width(c_in, e, w)
        hw_out = _conv_out(hw, stride)
        out = [
            Layer("pwconv", c_in, mid, hw, hw),
            Layer("dwconv", mid, mid, hw, hw_out, kernel=k, stride=stride, groups=mid),
        ]
        if USE_SE[stage]:
            se = make_divisible(mid // 4)
            out += [
                Layer("pool", mid, mid, hw_out, 1, kernel=hw_out),
                Layer("pwconv", mid, se, 1, 1, bias=True),
                Layer("pwconv", se, mid, 1, 1, bias=True),
                Layer("elementwise", mid, mid, hw_out, hw_out),
            ]
        out.append(Layer("pwconv", mid, c, hw_out, hw_out))
        if stride == 1 and c_in == c:
            out.append(Layer("elementwise", c, c, hw_out, hw_out))
        return out

    def _fixed_layers(self, resolution: int, head: bool) -> list[Layer]:
        hw = _conv_out(resolution, 2)
        c0, c1 = self.first_width, self.block0_width
        if not head:
            return [
                Layer("conv", 3, c0, resolution, hw, kernel=3, stride=2),
                Layer("dwconv", c0, c0, hw, hw, kernel=3, groups=c0),
                Layer("pwconv", c0, c1, hw, hw),
                *([Layer("elementwise", c1, c1, hw, hw)] if c0 == c1 else []),
            ]
        for s in STRIDES:
            hw = _conv_out(hw, s)
        cf, cl = self.final_expand_width, self.last_width
        return [
            Layer("pwconv", self.stage_widths[-1], cf, hw, hw),
            Layer("pool", cf, cf, hw, 1, kernel=hw),
            Layer("pwconv", cf, cl, 1, 1),
            Layer("fc", cl, NUM_CLASSES, 1, 1),
        ]

    def layers(self, arch: np.ndarray) -> list[Layer]:
        return [layer for _, layer in self.block_layers(arch)]

    # ---- compression hooks (fleetnas.spaces.compression) -------------------------------
    def compression_blocks(self) -> tuple[str, ...]:
        """The blocks a compression policy sets: the 20 MBConv layers ``L0..L19`` (their width
        ratio prunes the middle, expanded channels). The stem, the first block and the head
        stay fp32 at full width."""
        return tuple(f"L{j}" for j in range(N_LAYERS))

    def block_active(self, archs: np.ndarray) -> np.ndarray:
        return self.active_layers(archs)

    def block_macs(self, archs: np.ndarray, widths: np.ndarray) -> np.ndarray:
        """``n x 21`` MACs per layer block (0 when inactive) and (last column) of the fixed
        parts, vectorized; ``widths`` is ``n x 20`` width ratios of the middle channels."""
        a = self.canonicalize(self.check(archs))
        w = np.asarray(widths, dtype=float).reshape(len(a), N_LAYERS)
        values = tuple(float(v) for v in np.unique(w))
        table = _width_macs_table(self.width_mult, values)
        fixed, _ = _cost_tables(self.width_mult, "macs")
        r = a[:, R_COL]
        per = table[
            r[:, None],
            np.arange(N_LAYERS)[None, :],
            a[:, KS_COLS],
            a[:, E_COLS],
            np.searchsorted(np.asarray(values), w),
        ]
        per = np.where(self.active_layers(a), per, 0)
        return np.concatenate([per, fixed[r][:, None]], axis=1).astype(float)

    def block_layers(
        self, arch: np.ndarray, widths: Sequence[float] | None = None
    ) -> list[tuple[int, Layer]]:
        """(block index, layer) of one design; block -1 for the fixed stem and head."""
        a = self.canonicalize(self.check(arch))[0]
        r = RESOLUTIONS[a[R_COL]]
        active = self.active_layers(a)[0]
        ws = [1.0] * N_LAYERS if widths is None else list(widths)
        out = [(-1, x) for x in self._fixed_layers(r, head=False)]
        for j, io in enumerate(self._stage_io(r)):
            if active[j]:
                k, e = KS[a[j]], EXPANDS[a[N_LAYERS + j]]
                out += [(j, x) for x in self._block_layers(*io, k, e, ws[j])]
        return out + [(-1, x) for x in self._fixed_layers(r, head=True)]

    def _cost(self, archs: np.ndarray, attr: str) -> np.ndarray:
        a = self.check(archs)
        fixed, table = _cost_tables(self.width_mult, attr)
        r = a[:, R_COL]
        per = table[r[:, None], np.arange(N_LAYERS)[None, :], a[:, KS_COLS], a[:, E_COLS]]
        return (fixed[r] + (per * self.active_layers(a)).sum(axis=1)).astype(float)

    def flops(self, archs: np.ndarray) -> np.ndarray:
        """``n`` FLOPs (2 x MACs of :meth:`layers`) from per-(resolution, layer, k, e) tables."""
        return 2.0 * self._cost(archs, "macs")

    def params(self, archs: np.ndarray) -> np.ndarray:
        return self._cost(archs, "params")

    # ---- network -----------------------------------------------------------------------
    def input_shape(self, arch: np.ndarray, batch: int = 1) -> tuple[int, ...]:
        r = RESOLUTIONS[self.check(arch)[0, R_COL]]
        return (batch, 3, r, r)

    def to_torch(self, arch: np.ndarray, num_classes: int | None = None) -> torch.nn.Module:
        """The OFA subnet as a plain MobileNetV3 with random weights (logits output)."""
        from torch import nn

        return nn.Sequential(*[m for _, _, m in self.torch_blocks(arch, num_classes)])

    def torch_blocks(
        self,
        arch: np.ndarray,
        num_classes: int | None = None,
        widths: Sequence[float] | None = None,
    ) -> list[tuple[str, int, torch.nn.Module]]:
        """(name, block index, module) in order: ``stem``, ``first``, ``L<j>`` per active
        layer, ``head``; block -1 for the fixed parts."""
        from torch import nn

        from fleetnas.spaces import _torch_blocks as tb

        a = self.canonicalize(self.check(arch))[0]
        active = self.active_layers(a)[0]
        ws = [1.0] * N_LAYERS if widths is None else list(widths)
        c0, c1 = self.first_width, self.block0_width
        first_block = nn.Sequential(
            tb.conv_bn(c0, c0, 3, groups=c0, act="relu"), tb.conv_bn(c0, c1, 1)
        )
        mods: list[tuple[str, int, nn.Module]] = [
            ("stem", -1, tb.conv_bn(3, c0, 3, stride=2, act="hswish")),
            ("first", -1, tb.Residual(first_block) if c0 == c1 else first_block),
        ]
        for j, (c_in, c, stride, _, s) in enumerate(self._stage_io(RESOLUTIONS[a[R_COL]])):
            if not active[j]:
                continue
            k, e, act = KS[a[j]], EXPANDS[a[N_LAYERS + j]], ACTS[s]
            mid = middle_width(c_in, e, ws[j])
            body = nn.Sequential(
                tb.conv_bn(c_in, mid, 1, act=act),
                tb.conv_bn(mid, mid, k, stride, groups=mid, act=act),
                *([tb.SqueezeExcite(mid, make_divisible(mid // 4))] if USE_SE[s] else []),
                tb.conv_bn(mid, c, 1),
            )
            mods.append((f"L{j}", j, tb.Residual(body) if stride == 1 and c_in == c else body))
        cf, cl = self.final_expand_width, self.last_width
        pre = tb.conv_bn(self.stage_widths[-1], cf, 1, act="hswish")
        mix = tb.conv_bn(cf, cl, 1, act="hswish", bn=False)
        head = tb.ClassifierHead(pre, cl, num_classes or NUM_CLASSES, mix=mix)
        return [*mods, ("head", -1, head)]


@functools.cache
def _cost_tables(width_mult: float, attr: str) -> tuple[np.ndarray, np.ndarray]:
    """(``25`` fixed cost per resolution, ``25 x 20 x 3 x 3`` per-layer cost) of MACs or params."""
    space = OFAMobileNetV3Space(width_mult)
    fixed = np.zeros(len(RESOLUTIONS), dtype=np.int64)
    table = np.zeros((len(RESOLUTIONS), N_LAYERS, len(KS), len(EXPANDS)), dtype=np.int64)
    for ri, r in enumerate(RESOLUTIONS):
        fixed_layers = space._fixed_layers(r, False) + space._fixed_layers(r, True)
        fixed[ri] = sum(getattr(x, attr) for x in fixed_layers)
        for j, io in enumerate(space._stage_io(r)):
            for ki, k in enumerate(KS):
                for ei, e in enumerate(EXPANDS):
                    table[ri, j, ki, ei] = sum(
                        getattr(x, attr) for x in space._block_layers(*io, k, e)
                    )
    return fixed, table


@functools.cache
def _width_macs_table(width_mult: float, widths: tuple[float, ...]) -> np.ndarray:
    """``25 x 20 x 3 x 3 x W`` MACs of one layer per (resolution, layer, k, e, width ratio)."""
    space = OFAMobileNetV3Space(width_mult)
    table = np.zeros((len(RESOLUTIONS), N_LAYERS, len(KS), len(EXPANDS), len(widths)))
    for ri, r in enumerate(RESOLUTIONS):
        for j, io in enumerate(space._stage_io(r)):
            for ki, k in enumerate(KS):
                for ei, e in enumerate(EXPANDS):
                    for wi, w in enumerate(widths):
                        layers = space._block_layers(*io, k, e, w)
                        table[ri, j, ki, ei, wi] = sum(x.macs for x in layers)
    return table


SPACES.add("ofa_mbv3", OFAMobileNetV3Space)
SPACES.add("ofa_mbv3_w1.0", lambda: OFAMobileNetV3Space(width_mult=1.0))

_R_BUCKETS = (np.asarray(RESOLUTIONS) - 112) // 16


def ofa_accuracy_features(
    archs_or_relaxed: np.ndarray | torch.Tensor, space: OFAMobileNetV3Space | None = None
) -> np.ndarray | torch.Tensor:
    """The 128-d input of OFA's released accuracy predictor (``acc_predictor.pth``).

    Reproduces ``AccuracyPredictor.spec2feats`` of once-for-all's tutorial
    (``ofa/tutorial/accuracy_predictor.py``, the predictor whose state_dict keys are ``0.weight``
    .. ``6.bias``): 60 kernel one-hots (3 per layer, order 3/5/7), 60 expansion one-hots (order
    3/4/6), inactive layers all zero, then 8 resolution slots ``(r - 112) // 16`` (so r = 132
    shares slot 1 with 128). The ``MobileNetArchEncoder`` of ``ofa/nas/accuracy_predictor`` uses
    a different order (resolution first) and belongs to a different checkpoint format.

    ``n x 46`` int designs -> ``n x 128`` float32 NumPy; an ``n x 160`` float torch tensor of
    relaxed probabilities -> ``n x 128`` torch tensor, differentiable.
    """
    space = space or OFAMobileNetV3Space()
    if _is_tensor(archs_or_relaxed) and archs_or_relaxed.is_floating_point():
        import torch

        enc = space.relax_encode(archs_or_relaxed)
        onehot = np.zeros((len(RESOLUTIONS), 8), dtype=np.float32)
        onehot[np.arange(len(RESOLUTIONS)), _R_BUCKETS] = 1.0
        buckets = torch.as_tensor(onehot, dtype=enc.dtype, device=enc.device)
        return torch.cat([enc[:, : 6 * N_LAYERS], enc[:, -len(RESOLUTIONS) :] @ buckets], dim=1)
    if _is_tensor(archs_or_relaxed):
        archs_or_relaxed = archs_or_relaxed.detach().cpu().numpy()
    a = space.check(archs_or_relaxed)
    out = np.zeros((a.shape[0], 6 * N_LAYERS + 8), dtype=np.float32)
    out[:, : 6 * N_LAYERS] = space.encode(a)[:, : 6 * N_LAYERS]
    out[np.arange(a.shape[0]), 6 * N_LAYERS + _R_BUCKETS[a[:, R_COL]]] = 1.0
    return out
