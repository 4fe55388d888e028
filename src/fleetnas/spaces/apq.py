"""APQ's joint space: ProxylessNAS-Mobile architecture, pruning and per-layer quantization.

Source: the public APQ repository (mit-han-lab/apq, Wang et al., CVPR 2020), ``utils/converter.py``
(the encoding) and ``utils/latency_predictor.py`` (the layer shapes that the BitFusion table
prices). 224 px input; a fixed head (3x3 conv to 32 channels stride 2, then a 3x3 depthwise
MBConv to 16 channels) and tail (1x1 conv 320 -> 1280, global pool, classifier); between them 21
MBConv layers in six stages of widths 24/40/80/96/192/320 with 4/4/4/4/4/1 layers, strides
2/2/2/1/2/1 on each stage's first layer, identity residual where shapes allow.

Decisions (D = 131), per layer ``i`` of 21: ``ks_i`` in 3/5/7, ``mid_i`` the middle (expanded)
width in channels, from 4x to 6x the layer's input width in steps of 8 (the pruning decision; APQ
writes it as the ratio ``e = mid / c_in``), and four bit-widths in 8/6/4 (``pw_w_i``, ``pw_a_i``:
weights and activations of both point-wise convolutions; ``dw_w_i``, ``dw_a_i``: the depth-wise
one); per stage 0..4 the depth ``d_s`` in 2/3/4 (the last stage always has its one layer). Choice
0 is the least compressed (8 bits, 4x). Layers beyond a stage's depth are inactive and
canonicalized to choice 0, as APQ's ``feature2spec`` writes them (kernel 3, e = 4, 8 bits).

Not every combination has a cost: the BitFusion table has no 4-bit activations for a 7x7
depth-wise convolution (APQ's ``is_valid`` rejects them). :meth:`APQSpace.feasible` says which
designs avoid that; :meth:`APQSpace.sample` draws only feasible ones, as APQ's ``random_spec``.

Native string: APQ's own spec as compact JSON, ``{"ks":[21],"e":[21],"d":[6],
"pw_w_bits_setting":[21],"pw_a_bits_setting":[21],"dw_w_bits_setting":[21],
"dw_a_bits_setting":[21]}`` (``d`` has APQ's sixth entry, 1 for the last stage; five entries are
accepted too).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.spaces._registry import SPACES
from fleetnas.spaces.base import Decision, SearchSpace
from fleetnas.spaces.layers import Layer

if TYPE_CHECKING:
    import torch

N_LAYERS = 21
N_STAGES = 6
KS = (3, 5, 7)
DEPTHS = (2, 3, 4)
BITS = (8, 6, 4)
STAGE_WIDTHS = (24, 40, 80, 96, 192, 320)
STAGE_STRIDES = (2, 2, 2, 1, 2, 1)
STAGE_OF_LAYER = np.minimum(np.arange(N_LAYERS) // 4, N_STAGES - 1)
POS_IN_STAGE = np.arange(N_LAYERS) % 4
RESOLUTION = 224
STEM_WIDTH, FIRST_WIDTH, FEATURE_WIDTH, NUM_CLASSES = 32, 16, 1280, 1000
#: APQ's spec keys of the four bit-width decisions, in decision order.
BIT_KEYS = ("pw_w_bits_setting", "pw_a_bits_setting", "dw_w_bits_setting", "dw_a_bits_setting")

KS_COLS = slice(0, N_LAYERS)
MID_COLS = slice(N_LAYERS, 2 * N_LAYERS)
D_COLS = slice(2 * N_LAYERS, 2 * N_LAYERS + N_STAGES - 1)
BIT_START = 2 * N_LAYERS + N_STAGES - 1
PW_W, PW_A, DW_W, DW_A = (
    slice(BIT_START + k * N_LAYERS, BIT_START + (k + 1) * N_LAYERS) for k in range(4)
)


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round to a multiple of ``divisor``, never more than 10 % down (APQ / MobileNet rule)."""
    x = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return x + divisor if x < 0.9 * v else x


def layer_shapes() -> list[dict[str, int]]:
    """Per MBConv layer: ``c_in``, ``c_out``, ``hw`` (input side), ``stride``, ``stage``."""
    hw, c_in, out = RESOLUTION // 2, FIRST_WIDTH, []
    for i in range(N_LAYERS):
        s = int(STAGE_OF_LAYER[i])
        first = POS_IN_STAGE[i] == 0
        stride = STAGE_STRIDES[s] if first else 1
        cin = c_in if first else STAGE_WIDTHS[s]
        out.append({"c_in": cin, "c_out": STAGE_WIDTHS[s], "hw": hw, "stride": stride, "stage": s})
        if first:
            hw = (hw + 1) // 2 if stride == 2 else hw
            c_in = STAGE_WIDTHS[s]
    return out


SHAPES = layer_shapes()
#: Middle-width choices (channels) per layer: 4x..6x the input width in steps of 8.
MID_CHOICES = tuple(tuple(range(4 * s["c_in"], 6 * s["c_in"] + 8, 8)) for s in SHAPES)


@SPACES.register("apq")
class APQSpace(SearchSpace):
    """APQ's architecture + pruning + quantization space (see the module docstring)."""

    name = "apq"
    decisions = (
        *(Decision(f"ks_{i}", KS) for i in range(N_LAYERS)),
        *(Decision(f"mid_{i}", MID_CHOICES[i]) for i in range(N_LAYERS)),
        *(Decision(f"d_{s}", DEPTHS) for s in range(N_STAGES - 1)),
        *(
            Decision(f"{p}_{i}", BITS)
            for p in ("pw_w", "pw_a", "dw_w", "dw_a")
            for i in range(N_LAYERS)
        ),
    )

    # ---- structure ------------------------------------------------------------------------
    def active_layers(self, archs: np.ndarray) -> np.ndarray:
        """``n x 21`` bool: which MBConv layers run."""
        a = self.check(archs)
        depth = np.concatenate(
            [np.asarray(DEPTHS)[a[:, D_COLS]], np.ones((a.shape[0], 1), dtype=np.int64)], axis=1
        )
        return POS_IN_STAGE[None, :] < depth[:, STAGE_OF_LAYER]

    def canonicalize(self, archs: np.ndarray) -> np.ndarray:
        raw = np.asarray(archs)
        a = self.check(raw).copy()
        inactive = ~self.active_layers(a)
        for cols in (KS_COLS, MID_COLS, PW_W, PW_A, DW_W, DW_A):
            a[:, cols][inactive] = 0
        return a[0] if raw.ndim == 1 else a

    def feasible(self, archs: np.ndarray) -> np.ndarray:
        """``n`` bool: no active layer has a 7x7 depth-wise convolution with 4-bit activations
        (a shape the BitFusion table does not price)."""
        a = self.check(archs)
        bad = (a[:, KS_COLS] == KS.index(7)) & (a[:, DW_A] == BITS.index(4))
        return ~(bad & self.active_layers(a)).any(axis=1)

    def repair(self, archs: np.ndarray, log_probs: np.ndarray | None = None) -> np.ndarray:
        """Feasible canonical designs: every active layer with a 7x7 depth-wise convolution at
        4-bit activations gets 6-bit activations, or a 5x5 kernel where ``log_probs``
        (``n x D x Kmax`` per-decision log-probabilities, e.g. an optimizer network's) make
        (5x5, 4 bits) the likelier pair. Feasible designs are returned unchanged."""
        raw = np.asarray(archs)
        a = self.canonicalize(self.check(raw))
        a = a[None, :] if a.ndim == 1 else a.copy()
        bad = (a[:, KS_COLS] == KS.index(7)) & (a[:, DW_A] == BITS.index(4))
        bad &= self.active_layers(a)
        if bad.any():
            rows, layers = np.nonzero(bad)
            ks_col, a_col = layers, DW_A.start + layers
            to_k5 = np.zeros(len(rows), dtype=bool)
            if log_probs is not None:
                lp = np.asarray(log_probs, dtype=float)
                if lp.shape[:2] != a.shape:
                    raise InputError(
                        f"repair needs n x D x K log-probabilities for {a.shape[0]} designs, "
                        f"got shape {lp.shape}"
                    )
                keep = lp[rows, ks_col, KS.index(7)] + lp[rows, a_col, BITS.index(6)]
                swap = lp[rows, ks_col, KS.index(5)] + lp[rows, a_col, BITS.index(4)]
                to_k5 = swap > keep
            a[rows[to_k5], ks_col[to_k5]] = KS.index(5)
            a[rows[~to_k5], a_col[~to_k5]] = BITS.index(6)
        return a[0] if raw.ndim == 1 else a

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """``n`` uniformly random feasible designs (rejection, as APQ's ``random_spec``)."""
        rng = np.random.default_rng(rng)
        out = np.zeros((0, self.n_decisions), dtype=np.int64)
        while len(out) < n:
            cand = super().sample(max(2 * (n - len(out)), 8), rng)
            out = np.concatenate([out, cand[self.feasible(cand)]])
        return out[:n]

    def bits(self, archs: np.ndarray) -> dict[str, np.ndarray]:
        """``n x 21`` int bit-widths per key of :data:`BIT_KEYS`."""
        a = self.check(archs)
        b = np.asarray(BITS)
        return {k: b[a[:, c]] for k, c in zip(BIT_KEYS, (PW_W, PW_A, DW_W, DW_A), strict=True)}

    def middle_widths(self, archs: np.ndarray) -> np.ndarray:
        """``n x 21`` int middle widths (channels)."""
        a = self.check(archs)
        return np.array([[MID_CHOICES[i][j] for i, j in enumerate(row)] for row in a[:, MID_COLS]])

    # ---- strings --------------------------------------------------------------------------
    def to_dict(self, arch: np.ndarray) -> dict[str, Any]:
        """APQ's spec dict of one (canonical) design."""
        a = self.canonicalize(self.check(arch))[0]
        out: dict[str, Any] = {
            "ks": [KS[i] for i in a[KS_COLS]],
            "e": [MID_CHOICES[i][j] / SHAPES[i]["c_in"] for i, j in enumerate(a[MID_COLS])],
            "d": [DEPTHS[i] for i in a[D_COLS]] + [1],
        }
        for key, cols in zip(BIT_KEYS, (PW_W, PW_A, DW_W, DW_A), strict=True):
            out[key] = [BITS[i] for i in a[cols]]
        return out

    def format(self, arch: np.ndarray) -> str:
        return json.dumps(self.to_dict(arch), separators=(",", ":"))

    def parse(self, text: str) -> np.ndarray:
        s = str(text).strip()
        try:
            obj = json.loads(s)
        except ValueError:
            raise InputError(
                f"apq design {s[:80]!r} is not JSON like APQ's spec "
                '{"ks":[21],"e":[21],"d":[6],"pw_w_bits_setting":[21],...}'
            ) from None
        return self.parse_dict(obj)

    def parse_dict(self, obj: Any) -> np.ndarray:
        """APQ's spec dict (``wid`` ignored) -> ``D`` array."""
        if not isinstance(obj, dict):
            raise InputError("apq design must be a dict with keys ks, e, d and the bit settings")
        d = {k: v for k, v in obj.items() if k != "wid"}
        expected = {"ks", "e", "d", *BIT_KEYS}
        if set(d) != expected:
            missing, extra = sorted(expected - set(d)), sorted(set(d) - expected)
            raise InputError(
                f"apq design has keys {sorted(d)}; expected {sorted(expected)}"
                + (f" (missing: {', '.join(missing)})" if missing else "")
                + (f" (unknown: {', '.join(extra)})" if extra else "")
            )
        depth = d["d"]
        if not isinstance(depth, list) or len(depth) not in (N_STAGES - 1, N_STAGES):
            raise InputError(f"apq design: 'd' must list 5 or 6 depths, got {depth!r}")
        d_idx = [self._index("d", s, v, DEPTHS) for s, v in enumerate(depth[: N_STAGES - 1])]
        ks = self._list(d, "ks")
        e = self._list(d, "e")
        mids = []
        for i, ratio in enumerate(e):
            if isinstance(ratio, bool) or not isinstance(ratio, int | float):
                raise InputError(f"apq design: e[{i}] = {ratio!r} is not a number")
            mid = make_divisible(ratio * SHAPES[i]["c_in"])
            if mid not in MID_CHOICES[i]:
                lo, hi = MID_CHOICES[i][0], MID_CHOICES[i][-1]
                raise InputError(
                    f"apq design: e[{i}] = {ratio!r} gives a middle width of {mid} channels, "
                    f"outside the space ({lo}..{hi} step 8 for input width {SHAPES[i]['c_in']})"
                )
            mids.append(MID_CHOICES[i].index(mid))
        arch = [self._index("ks", i, v, KS) for i, v in enumerate(ks)] + mids + d_idx
        for key in BIT_KEYS:
            arch += [self._index(key, i, v, BITS) for i, v in enumerate(self._list(d, key))]
        return self.canonicalize(np.asarray(arch, dtype=np.int64)[None, :])[0]

    @staticmethod
    def _list(d: dict[str, Any], key: str) -> list[Any]:
        v = d[key]
        if not isinstance(v, list) or len(v) != N_LAYERS:
            got = f"{len(v)} values" if isinstance(v, list) else repr(v)
            raise InputError(f"apq design: {key!r} has {got}, expected {N_LAYERS}")
        return v

    @staticmethod
    def _index(key: str, i: int, v: Any, choices: tuple[int, ...]) -> int:
        if isinstance(v, bool) or not isinstance(v, int | float) or int(v) not in choices:
            shown = ", ".join(map(str, choices))
            raise InputError(f"apq design: {key}[{i}] = {v!r} is not one of {shown}")
        return choices.index(int(v))

    # ---- cost and network -----------------------------------------------------------------
    def block_layers(self, arch: np.ndarray) -> list[tuple[int, Layer]]:
        """(layer index, layer) of one design; -1 for the fixed head and tail."""
        a = self.canonicalize(self.check(arch))[0]
        active = self.active_layers(a)[0]
        h = RESOLUTION // 2
        out = [
            (-1, Layer("conv", 3, STEM_WIDTH, RESOLUTION, h, kernel=3, stride=2)),
            (-1, Layer("dwconv", STEM_WIDTH, STEM_WIDTH, h, h, kernel=3, groups=STEM_WIDTH)),
            (-1, Layer("pwconv", STEM_WIDTH, FIRST_WIDTH, h, h)),
        ]
        for i, sh in enumerate(SHAPES):
            if not active[i]:
                continue
            k, mid = KS[a[i]], MID_CHOICES[i][a[N_LAYERS + i]]
            hw, s = sh["hw"], sh["stride"]
            hw_out = (hw + 1) // 2 if s == 2 else hw
            out += [
                (i, Layer("pwconv", sh["c_in"], mid, hw, hw)),
                (i, Layer("dwconv", mid, mid, hw, hw_out, kernel=k, stride=s, groups=mid)),
                (i, Layer("pwconv", mid, sh["c_out"], hw_out, hw_out)),
            ]
            if s == 1 and sh["c_in"] == sh["c_out"]:
                out.append((i, Layer("elementwise", sh["c_out"], sh["c_out"], hw_out, hw_out)))
        f = 7
        return [
            *out,
            (-1, Layer("pwconv", STAGE_WIDTHS[-1], FEATURE_WIDTH, f, f)),
            (-1, Layer("pool", FEATURE_WIDTH, FEATURE_WIDTH, f, 1, kernel=f)),
            (-1, Layer("fc", FEATURE_WIDTH, NUM_CLASSES, 1, 1)),
        ]

    def layers(self, arch: np.ndarray) -> list[Layer]:
        return [layer for _, layer in self.block_layers(arch)]

    def input_shape(self, arch: np.ndarray, batch: int = 1) -> tuple[int, ...]:
        return (batch, 3, RESOLUTION, RESOLUTION)

    def to_torch(self, arch: np.ndarray, num_classes: int | None = None) -> torch.nn.Module:
        """The float ProxylessNAS-style network (ReLU6, random weights); layers are named
        ``L<i>`` so a runtime can quantize per layer (the bit-widths are not simulated here)."""
        from collections import OrderedDict

        from torch import nn

        from fleetnas.spaces import _torch_blocks as tb

        a = self.canonicalize(self.check(arch))[0]
        active = self.active_layers(a)[0]

        def cbr(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, act=True):
            mods = tb.conv_bn(c_in, c_out, k, stride, groups=groups)
            return nn.Sequential(*mods, nn.ReLU6()) if act else mods

        parts: list[tuple[str, nn.Module]] = [
            ("stem", cbr(3, STEM_WIDTH, 3, 2)),
            (
                "first",
                nn.Sequential(
                    cbr(STEM_WIDTH, STEM_WIDTH, 3, groups=STEM_WIDTH),
                    cbr(STEM_WIDTH, FIRST_WIDTH, 1, act=False),
                ),
            ),
        ]
        for i, sh in enumerate(SHAPES):
            if not active[i]:
                continue
            k, mid = KS[a[i]], MID_CHOICES[i][a[N_LAYERS + i]]
            body = nn.Sequential(
                cbr(sh["c_in"], mid, 1),
                cbr(mid, mid, k, sh["stride"], groups=mid),
                cbr(mid, sh["c_out"], 1, act=False),
            )
            skip = sh["stride"] == 1 and sh["c_in"] == sh["c_out"]
            parts.append((f"L{i}", tb.Residual(body) if skip else body))
        pre = cbr(STAGE_WIDTHS[-1], FEATURE_WIDTH, 1)
        parts.append(("head", tb.ClassifierHead(pre, FEATURE_WIDTH, num_classes or NUM_CLASSES)))
        return nn.Sequential(OrderedDict(parts))
