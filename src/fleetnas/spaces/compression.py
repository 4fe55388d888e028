"""Compression as design decisions: a precision and a channel-width ratio per block.

:class:`CompressedSpace` wraps a base space that has compression hooks (``compression_blocks``,
``block_active``, ``block_layers``, ``torch_blocks``; NB201 and OFA-MobileNetV3 have them) and
appends, per block, two ordinary categorical decisions: ``q_<block>`` (precision: fp32 / fp16 /
int8, or ``w<b>a<b>`` weight/activation bits in 4/6/8 where a cost model prices them) and
``w_<block>`` (width ratio: the share of channels kept by pruning). A compressed design is
therefore an ``n x (D + 2B)`` int array like any other; sampling, mutation, encoding, the stores
and both approaches need no special case.

Native string: the base design's string, ``@``, then ``q=<precisions>;w=<ratios>`` with one
value per block in :meth:`compression_blocks` order, or a single value when every active block
shares it, e.g. ``|nor_conv_3x3~0|+...|@q=int8,fp32,int8;w=1,0.75,1``. A base string without
``@`` is the uncompressed design (fp32, width 1). Blocks that do not run (OFA layers beyond a
stage's depth) are canonicalized to the first choices and zeroed in the encoding.

Registered: ``nb201+q`` and ``ofa_mbv3+q`` (precisions fp32/fp16/int8, widths 1/0.75/0.5).
:meth:`CompressedSpace.to_torch` builds the network with the pruned channel counts for real;
its top-level modules are named by block, so :meth:`CompressedSpace.onnx_node_prefixes` tells
a runtime which ONNX nodes to quantize (``quantize_static(..., nodes_to_quantize=...)``).
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.spaces._registry import SPACES
from fleetnas.spaces.base import Decision, SearchSpace, _is_tensor
from fleetnas.spaces.layers import Layer

if TYPE_CHECKING:
    import torch

#: Precisions of the compression layer, in choice order (index 0 = uncompressed).
PRECISIONS = ("fp32", "fp16", "int8")
#: Width ratios (share of a block's channels kept), in choice order (index 0 = unpruned).
WIDTHS = (1.0, 0.75, 0.5)
#: Bits of weights and activations per named precision (for cost and accuracy models).
PRECISION_BITS = {"fp32": (32, 32), "fp16": (16, 16), "int8": (8, 8)}
#: Sub-byte / mixed W/A precisions ``w<bits>a<bits>`` accepted besides the named ones, for cost
#: models that price them (APQ's BitFusion table knows 4, 6 and 8 bits).
WA_BITS = (4, 6, 8)


def precision_bits(name: str) -> tuple[int, int]:
    """(weight bits, activation bits) of a precision: ``fp32``, ``fp16``, ``int8`` or
    ``w<b>a<b>`` with bits in 4/6/8 (e.g. ``w4a8``); :class:`InputError` otherwise."""
    if name in PRECISION_BITS:
        return PRECISION_BITS[name]
    m = re.fullmatch(r"w(\d+)a(\d+)", str(name))
    if m and int(m[1]) in WA_BITS and int(m[2]) in WA_BITS:
        return int(m[1]), int(m[2])
    raise InputError(
        f"unknown precision {name!r}; expected {', '.join(PRECISION_BITS)} or w<b>a<b> with "
        f"b in {', '.join(map(str, WA_BITS))} (e.g. w4a8)"
    )


HOOKS = ("compression_blocks", "block_active", "block_layers", "torch_blocks")


class CompressedSpace(SearchSpace):
    """A base space plus a precision and a width ratio per block (see the module docstring).

    Decisions: the base's ``D`` decisions, then ``q_<block>`` for every block, then
    ``w_<block>`` for every block (``D + 2B`` in all).
    """

    def __init__(
        self,
        base: SearchSpace,
        precisions: Sequence[str] = PRECISIONS,
        widths: Sequence[float] = WIDTHS,
        name: str | None = None,
    ) -> None:
        missing = [h for h in HOOKS if not hasattr(base, h)]
        if missing:
            raise InputError(
                f"space {base.name!r} cannot be compressed: it lacks {', '.join(missing)}"
            )
        precisions, widths = tuple(precisions), tuple(float(w) for w in widths)
        if not precisions or len(set(precisions)) != len(precisions):
            raise InputError(f"precisions must be distinct and not empty, got {list(precisions)}")
        for p in precisions:
            precision_bits(p)
        if not widths or any(not 0.0 < w <= 1.0 for w in widths):
            raise InputError(f"width ratios must lie in (0, 1], got {list(widths)}")
        self.base = base
        self.precisions, self.widths = precisions, widths
        self.blocks: tuple[str, ...] = tuple(base.compression_blocks())
        self.name = name or f"{base.name}+q"
        self.decisions = (
            *base.decisions,
            *(Decision(f"q_{b}", precisions) for b in self.blocks),
            *(Decision(f"w_{b}", widths) for b in self.blocks),
        )

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "base": self.base.describe(),
            "blocks": list(self.blocks),
        }

    # ---- split and join ----------------------------------------------------------------
    def split(self, archs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``n x D'`` -> (``n x D`` base designs, ``n x B`` precision idx, ``n x B`` width idx)."""
        a = self.check(archs)
        d, b = self.base.n_decisions, self.n_blocks
        return a[:, :d], a[:, d : d + b], a[:, d + b :]

    def join(self, base: np.ndarray, prec: np.ndarray, width: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`split` (checked)."""
        base = self.base.check(base)
        n = base.shape[0]
        prec = np.broadcast_to(np.asarray(prec, dtype=np.int64), (n, self.n_blocks))
        width = np.broadcast_to(np.asarray(width, dtype=np.int64), (n, self.n_blocks))
        return self.check(np.concatenate([base, prec, width], axis=1))

    def policy(self, arch: np.ndarray) -> dict[str, dict[str, Any]]:
        """``{block: {"precision", "width", "active"}}`` of one design."""
        a = self.canonicalize(self.check(arch))
        _, prec, width = self.split(a)
        active = self.block_active(a)[0]
        return {
            b: {
                "precision": self.precisions[prec[0, i]],
                "width": self.widths[width[0, i]],
                "active": bool(active[i]),
            }
            for i, b in enumerate(self.blocks)
        }

    def block_active(self, archs: np.ndarray) -> np.ndarray:
        """``n x B`` bool: which blocks run in each design."""
        return np.asarray(self.base.block_active(self.split(archs)[0]), dtype=bool)

    def bits(self, archs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(``n x B`` weight bits, ``n x B`` activation bits) per block."""
        _, prec, _ = self.split(archs)
        table = np.array([precision_bits(p) for p in self.precisions], dtype=np.int64)
        return table[prec, 0], table[prec, 1]

    def width_ratios(self, archs: np.ndarray) -> np.ndarray:
        """``n x B`` float: width ratio per block."""
        return np.asarray(self.widths)[self.split(archs)[2]]

    # ---- canonical form and encoding -----------------------------------------------------
    def canonicalize(self, archs: np.ndarray) -> np.ndarray:
        raw = np.asarray(archs)
        a = self.check(raw).copy()
        d, b = self.base.n_decisions, self.n_blocks
        a[:, :d] = self.base.canonicalize(a[:, :d])
        inactive = ~self.block_active(a)
        a[:, d : d + b][inactive] = 0
        a[:, d + b :][inactive] = 0
        return a[0] if raw.ndim == 1 else a

    def encode(self, archs: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """The base's encoding, then one-hots of precision and width (inactive blocks zero)."""
        if _is_tensor(archs):
            return self.relax_encode(archs)
        a = self.check(archs)
        base, _, _ = self.split(a)
        n_base = self.base.n_features
        out = super().encode(a)
        out[:, :n_base] = self.base.encode(base)
        active = self.block_active(a)
        o = self.offsets
        d = self.base.n_decisions
        for k in range(2 * self.n_blocks):
            out[:, o[d + k] : o[d + k + 1]] *= active[:, k % self.n_blocks, None]
        return out

    def relax_encode(self, probs: torch.Tensor) -> torch.Tensor:
        """The base's relaxed encoding of its part; compression probabilities scaled by
        P(block active) where the base says (``relaxed_block_active``)."""
        import torch

        probs = super().relax_encode(probs)
        n_base = self.base.n_features
        extra = probs[:, n_base:]
        if hasattr(self.base, "relaxed_block_active"):
            active = self.base.relaxed_block_active(probs[:, :n_base])
            sizes = [len(self.precisions)] * self.n_blocks + [len(self.widths)] * self.n_blocks
            scale = torch.repeat_interleave(
                torch.cat([active, active], dim=1), torch.as_tensor(sizes), dim=1
            )
            extra = extra * scale
        return torch.cat([self.base.relax_encode(probs[:, :n_base]), extra], dim=1)

    # ---- strings ------------------------------------------------------------------------
    def parse(self, text: str) -> np.ndarray:
        s = str(text).strip()
        base_text, sep, policy = s.rpartition("@") if "@" in s else (s, "", "")
        base = self.base.parse(base_text)
        prec = np.zeros(self.n_blocks, dtype=np.int64)
        width = np.zeros(self.n_blocks, dtype=np.int64)
        if sep:
            prec, width = self._parse_policy(policy, s)
        a = np.concatenate([np.asarray(base, dtype=np.int64), prec, width])
        return self.canonicalize(a[None, :])[0]

    def _parse_policy(self, policy: str, whole: str) -> tuple[np.ndarray, np.ndarray]:
        fields: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in policy.split(";"))):
            key, eq, value = part.partition("=")
            if not eq or key.strip() not in ("q", "w") or key.strip() in fields:
                raise InputError(
                    f"{self.name} design {whole[-120:]!r}: policy part {part!r} should be "
                    "'q=<precision>[,...]' or 'w=<ratio>[,...]', each at most once"
                )
            fields[key.strip()] = value
        prec = self._policy_values(fields.get("q", self.precisions[0]), "q", whole)
        width = self._policy_values(fields.get("w", str(self.widths[0])), "w", whole)
        return prec, width

    def _policy_values(self, text: str, key: str, whole: str) -> np.ndarray:
        values = [v.strip() for v in text.split(",")]
        if len(values) not in (1, self.n_blocks):
            raise InputError(
                f"{self.name} design {whole[-120:]!r}: {key}= has {len(values)} values, "
                f"expected 1 or {self.n_blocks} (blocks {', '.join(self.blocks)})"
            )
        out = []
        for i, v in enumerate(values):
            where = self.blocks[i] if len(values) > 1 else "every block"
            if key == "q":
                if v not in self.precisions:
                    raise InputError(
                        f"{self.name} design: unknown precision {v!r} for {where}; expected "
                        f"one of {', '.join(self.precisions)}"
                    )
                out.append(self.precisions.index(v))
                continue
            try:
                w = float(v)
            except ValueError:
                w = float("nan")
            match = [j for j, c in enumerate(self.widths) if abs(c - w) < 1e-9]
            if not match:
                raise InputError(
                    f"{self.name} design: width ratio {v!r} for {where} is not in the space; "
                    f"expected one of {', '.join(_fmt_ratio(c) for c in self.widths)}"
                )
            out.append(match[0])
        return np.asarray(out * (self.n_blocks if len(out) == 1 else 1), dtype=np.int64)

    def format(self, arch: np.ndarray) -> str:
        a = self.canonicalize(self.check(arch))
        base, prec, width = self.split(a)
        active = self.block_active(a)[0]
        q = _compact([self.precisions[i] for i in prec[0]], active)
        w = _compact([_fmt_ratio(self.widths[i]) for i in width[0]], active)
        return f"{self.base.format(base[0])}@q={q};w={w}"

    # ---- cost and networks ----------------------------------------------------------------
    def block_layers(self, arch: np.ndarray) -> list[tuple[int, Layer]]:
        """(block index, layer) of one design with its pruned channel counts."""
        base, _, width = self.split(arch)
        return self.base.block_layers(base[0], widths=[self.widths[i] for i in width[0]])

    def layers(self, arch: np.ndarray) -> list[Layer]:
        return [layer for _, layer in self.block_layers(arch)]

    def block_macs(self, archs: np.ndarray, unpruned: bool = False) -> np.ndarray:
        """``n x (B + 1)`` MACs per block, the last column for the fixed fp32 parts; with
        ``unpruned`` at width 1 everywhere. Vectorized where the base has ``block_macs``."""
        a = self.check(archs)
        base, _, width = self.split(a)
        ratios = np.asarray(self.widths)[width]
        if unpruned:
            ratios = np.ones_like(ratios)
        if hasattr(self.base, "block_macs"):
            return np.asarray(self.base.block_macs(base, ratios), dtype=float)
        out = np.zeros((len(a), self.n_blocks + 1))
        for i in range(len(a)):
            for b, layer in self.base.block_layers(base[i], widths=list(ratios[i])):
                out[i, b if b >= 0 else self.n_blocks] += layer.macs
        return out

    def layer_precisions(self, arch: np.ndarray) -> list[str]:
        """Precision of each layer of :meth:`layers` (fixed parts are fp32)."""
        _, prec, _ = self.split(arch)
        return [
            self.precisions[prec[0, b]] if b >= 0 else "fp32" for b, _ in self.block_layers(arch)
        ]

    def input_shape(self, arch: np.ndarray, batch: int = 1) -> tuple[int, ...]:
        return self.base.input_shape(self.split(arch)[0][0], batch)

    def to_torch(self, arch: np.ndarray, num_classes: int | None = None) -> torch.nn.Module:
        """The base network with each block's channels pruned to its width ratio (random
        weights). Top-level modules are named by part (e.g. ``s1_c0``, ``L7``); see
        :meth:`module_precisions`."""
        from torch import nn

        base, _, width = self.split(self.canonicalize(self.check(arch)))
        parts = self.base.torch_blocks(
            base[0], num_classes, widths=[self.widths[i] for i in width[0]]
        )
        return nn.Sequential(OrderedDict((name, m) for name, _, m in parts))

    def module_precisions(self, arch: np.ndarray) -> dict[str, str]:
        """Top-level module name of :meth:`to_torch` -> its precision (fixed parts fp32)."""
        base, prec, _ = self.split(self.canonicalize(self.check(arch)))
        return {
            name: self.precisions[prec[0, b]] if b >= 0 else "fp32"
            for name, b, _ in _torch_parts(self.base, base[0])
        }

    def onnx_node_prefixes(self, arch: np.ndarray, precision: str = "int8") -> list[str]:
        """Prefixes of the ONNX node names (legacy exporter, ``/<module>/...``) of the blocks
        at ``precision``: pass the matching nodes as ``nodes_to_quantize``."""
        precision_bits(precision)
        return [f"/{m}/" for m, p in self.module_precisions(arch).items() if p == precision]

    def nodes_at(
        self, arch: np.ndarray, node_names: Sequence[str], precision: str = "int8"
    ) -> list[str]:
        """The names among ``node_names`` (an exported graph's) that belong to blocks at
        ``precision``."""
        prefixes = tuple(self.onnx_node_prefixes(arch, precision))
        return [n for n in node_names if prefixes and n.startswith(prefixes)]


def _torch_parts(base: Any, arch: np.ndarray) -> list[tuple[str, int, None]]:
    """(name, block) of the base's torch parts without building modules (cheap, cached)."""
    return _parts_cache(base, tuple(int(x) for x in arch))


@functools.lru_cache(maxsize=256)
def _parts_cache(base: Any, arch: tuple[int, ...]) -> list[tuple[str, int, None]]:
    return [(n, b, None) for n, b, _ in base.torch_blocks(np.asarray(arch), 10)]


def _compact(values: list[str], active: np.ndarray) -> str:
    """One value when every active block shares it (inactive blocks are canonical), else all."""
    shown = {v for v, on in zip(values, active, strict=True) if on}
    return shown.pop() if len(shown) == 1 else ",".join(values)


def _fmt_ratio(w: float) -> str:
    return f"{w:g}"


def compressed(base: SearchSpace | str, **kwargs: Any) -> CompressedSpace:
    """``base`` (a space or registered name) with the compression layer."""
    if isinstance(base, str):
        from fleetnas.spaces import get_space

        base = get_space(base)
    return CompressedSpace(base, **kwargs)


def _register() -> None:
    from fleetnas.spaces.nb201 import NB201Space
    from fleetnas.spaces.ofa_mbv3 import OFAMobileNetV3Space

    SPACES.add("nb201+q", lambda: CompressedSpace(NB201Space()))
    SPACES.add("ofa_mbv3+q", lambda: CompressedSpace(OFAMobileNetV3Space()))


_register()
