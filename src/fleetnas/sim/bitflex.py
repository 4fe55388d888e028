"""Synthetic bit-flexible accelerators that price designs of APQ's space (``apq``).

Approach 2 on APQ's space needs many training devices whose latency and energy depend on the
per-layer weight/activation bit-widths. None is public besides BitFusion (APQ's table), which
is held out, so the training devices are drawn from this analytical model. Every convolution
of an active MBConv layer (point-wise expansion, depth-wise, point-wise projection; the fixed
head and tail run at 8 bits) costs a roofline::

    t_conv = max(MACs * bitcost(w, a) / (peak * util_type * kfac_k),
                 bytes(w, a) / bandwidth) + overhead
    e_conv = MACs * e_mac * (w a / 64) ** gamma_e + bytes * e_byte
    latency = fixed + sum t_conv,   energy = sum e_conv + static_power * latency

with ``bytes = weights * w / 8 + (inputs + outputs) * a / 8`` (tensors packed at their bit-width;
``int8`` devices store everything at 8 bits). ``util_type`` is 1 for point-wise and a per-device
depth-wise efficiency; ``kfac_k`` a per-device efficiency of the 5x5 and 7x7 depth-wise kernels.
The bit cost is the family's (:data:`FAMILIES`), raised to a per-device exponent ``gamma``:

- ``brick``: bit-level fusion of 2-bit bricks (Sharma et al., ISCA 2018, BitFusion's principle):
  ``ceil(w/2) ceil(a/2) / 16``;
- ``serial``: bit-serial in both operands (Loom-like): ``w a / 64``;
- ``serial_a``: bit-serial activations, 8-bit parallel weights (Stripes-like): ``a / 8``;
- ``int4x2``: int8 arrays with a double-rate int4 mode (tensor-core-like): 0.5 when both
  operands have at most 4 bits, else 1;
- ``int8``: fixed int8 MAC arrays: 1 (fewer bits save nothing, memory included).

The priors (log-uniform ranges in :func:`sample_bitflex`) are **assumptions** chosen before any
comparison with BitFusion and never fitted to its table; they are broad on purpose (peak 8-bit
throughput 20-500 GMAC/s, bandwidth 1-30 GB/s, depth-wise efficiency 0.05-0.6, ...).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.spaces.apq import (
    BITS,
    DW_A,
    DW_W,
    KS,
    KS_COLS,
    MID_CHOICES,
    MID_COLS,
    N_LAYERS,
    PW_A,
    PW_W,
    SHAPES,
    APQSpace,
)

FAMILIES = ("brick", "serial", "serial_a", "int4x2", "int8")
#: Share of each family in a generated fleet (default mix).
DEFAULT_FAMILY_MIX = {"brick": 0.3, "serial": 0.2, "serial_a": 0.15, "int4x2": 0.2, "int8": 0.15}
_N_MID = max(len(c) for c in MID_CHOICES)


@dataclass(frozen=True)
class BitFlexModel:
    """One synthetic bit-flexible accelerator (see the module docstring for the formulas).

    Units: ``peak`` MACs per ms at 8x8 bits, ``bandwidth`` bytes per ms, times in ms,
    ``e_mac`` mJ per 8-bit MAC, ``e_byte`` mJ per byte, ``static_w`` W (= mJ per ms).
    """

    name: str
    family: str
    peak: float
    bandwidth: float
    dw_util: float
    k5: float
    k7: float
    gamma: float
    overhead_ms: float
    fixed_ms: float
    e_mac: float
    e_byte: float
    gamma_e: float
    static_w: float

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise InputError(
                f"unknown bit-flexible family {self.family!r}; expected one of "
                f"{', '.join(FAMILIES)}"
            )

    def bitcost(self, w: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Relative MAC time at ``w``-bit weights and ``a``-bit activations (8x8 = 1)."""
        w, a = np.asarray(w, float), np.asarray(a, float)
        if self.family == "brick":
            c = np.ceil(w / 2) * np.ceil(a / 2) / 16.0
        elif self.family == "serial":
            c = w * a / 64.0
        elif self.family == "serial_a":
            c = a / 8.0 + 0.0 * w
        elif self.family == "int4x2":
            c = np.where((w <= 4) & (a <= 4), 0.5, 1.0)
        else:
            c = np.ones(np.broadcast(w, a).shape)
        return c**self.gamma

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_bitflex(
    n: int,
    rng: np.random.Generator | int | None = None,
    families: dict[str, float] | None = None,
    prefix: str = "bitflex",
) -> list[BitFlexModel]:
    """``n`` accelerators drawn from the family mix and the priors of the module docstring."""
    rng = np.random.default_rng(rng)
    mix = dict(DEFAULT_FAMILY_MIX if families is None else families)
    unknown = sorted(set(mix) - set(FAMILIES))
    if unknown:
        raise InputError(f"unknown bit-flexible families {unknown}; known: {', '.join(FAMILIES)}")
    names = list(mix)
    p = np.asarray([mix[k] for k in names], dtype=float)
    if not (p >= 0).all() or p.sum() <= 0:
        raise InputError("family shares must be non-negative with a positive sum")
    fam = rng.choice(names, size=n, p=p / p.sum())

    def logu(lo: float, hi: float) -> float:
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))

    out = []
    for i, f in enumerate(fam):
        out.append(
            BitFlexModel(
                name=f"{prefix}-{f}-{i:04d}",
                family=str(f),
                peak=logu(2e7, 5e8),
                bandwidth=logu(1e6, 3e7),
                dw_util=logu(0.05, 0.6),
                k5=float(rng.uniform(0.8, 1.0)),
                k7=float(rng.uniform(0.6, 1.0)),
                gamma=float(rng.uniform(0.6, 1.0)),
                overhead_ms=logu(0.002, 0.05),
                fixed_ms=logu(0.02, 0.5),
                e_mac=logu(2e-9, 3e-8),
                e_byte=logu(3e-8, 1e-6),
                gamma_e=float(rng.uniform(0.5, 1.0)),
                static_w=logu(0.02, 1.0),
            )
        )
    return out


class _Work:
    """Per-layer work tables of APQ's space, vectorized like :class:`BitFusionCost`: MACs,
    weights and activation elements (inputs + outputs) of the point-wise pair
    (``21 x mid``) and of the depth-wise conv (``21 x 3 x mid``), plus the fixed part."""

    def __init__(self, space: APQSpace) -> None:
        pw = np.zeros((3, N_LAYERS, _N_MID))
        dw = np.zeros((3, N_LAYERS, len(KS), _N_MID))
        for i, s in enumerate(SHAPES):
            hw, c_in, c_out = s["hw"], s["c_in"], s["c_out"]
            hw_out = (hw + 1) // 2 if s["stride"] == 2 else hw
            for m, mid in enumerate(MID_CHOICES[i]):
                pw[0, i, m] = c_in * mid * hw**2 + mid * c_out * hw_out**2
                pw[1, i, m] = c_in * mid + mid * c_out
                pw[2, i, m] = c_in * hw**2 + mid * hw**2 + mid * hw_out**2 + c_out * hw_out**2
                for k_i, k in enumerate(KS):
                    dw[0, i, k_i, m] = mid * k * k * hw_out**2
                    dw[1, i, k_i, m] = mid * k * k
                    dw[2, i, k_i, m] = mid * hw**2 + mid * hw_out**2
        self.pw, self.dw = pw, dw
        zero = space.canonicalize(np.zeros((1, space.n_decisions), dtype=np.int64))
        fixed = [layer for b, layer in space.block_layers(zero) if b < 0]
        self.fixed_macs = float(sum(lay.macs for lay in fixed))
        self.fixed_bytes = float(sum(lay.params + lay.activation_elems for lay in fixed))
        self.n_fixed = len(fixed)

    def of(self, space: APQSpace, archs: np.ndarray) -> dict[str, np.ndarray]:
        a = space.canonicalize(space.check(archs))
        if a.ndim == 1:
            a = a[None, :]
        layer = np.arange(N_LAYERS)[None, :]
        mid, ks = a[:, MID_COLS], a[:, KS_COLS]
        b = np.asarray(BITS, dtype=float)
        return {
            "active": space.active_layers(a),
            "pw": self.pw[:, layer, mid],
            "dw": self.dw[:, layer, ks, mid],
            "ks": np.asarray(KS)[ks],
            "pw_w": b[a[:, PW_W]],
            "pw_a": b[a[:, PW_A]],
            "dw_w": b[a[:, DW_W]],
            "dw_a": b[a[:, DW_A]],
        }


_WORK: dict[int, _Work] = {}


def _work(space: APQSpace) -> _Work:
    return _WORK.setdefault(id(space), _Work(space))


def _conv(
    d: BitFlexModel, work: np.ndarray, wb: np.ndarray, ab: np.ndarray, util: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Time and energy of one convolution kind (``work``: MACs, weights, activations)."""
    macs, weights, acts = work
    packed = d.family != "int8"
    nbytes = weights * (wb if packed else 8.0) / 8.0 + acts * (ab if packed else 8.0) / 8.0
    t_c = macs * d.bitcost(wb, ab) / (d.peak * util)
    t = np.maximum(t_c, nbytes / d.bandwidth) + d.overhead_ms
    e = macs * d.e_mac * ((wb * ab) / 64.0) ** d.gamma_e + nbytes * d.e_byte
    return t, e


def simulate_bitflex(
    models: list[BitFlexModel], space: APQSpace, archs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(latency ms, energy mJ)``, each ``n x m``, of ``n`` designs on ``m`` accelerators."""
    if not isinstance(space, APQSpace):
        raise InputError(f"bit-flexible accelerators price 'apq' designs, not {space.name!r}")
    wk = _work(space)
    w = wk.of(space, archs)
    act = w["active"]
    lat = np.empty((len(act), len(models)))
    en = np.empty((len(act), len(models)))
    for j, d in enumerate(models):
        t_pw, e_pw = _conv(d, w["pw"], w["pw_w"], w["pw_a"], 1.0)
        t_pw = t_pw + d.overhead_ms  # the point-wise pair is two convolutions
        kfac = np.where(w["ks"] == 3, 1.0, np.where(w["ks"] == 5, d.k5, d.k7))
        t_dw, e_dw = _conv(d, w["dw"], w["dw_w"], w["dw_a"], d.dw_util * kfac)
        t_fix = (
            d.fixed_ms
            + max(wk.fixed_macs / d.peak, wk.fixed_bytes / d.bandwidth)
            + wk.n_fixed * d.overhead_ms
        )
        lat[:, j] = t_fix + np.where(act, t_pw + t_dw, 0.0).sum(axis=1)
        e_fix = wk.fixed_macs * d.e_mac + wk.fixed_bytes * d.e_byte
        en[:, j] = e_fix + np.where(act, e_pw + e_dw, 0.0).sum(axis=1) + d.static_w * lat[:, j]
    return lat, en


__all__ = [
    "DEFAULT_FAMILY_MIX",
    "FAMILIES",
    "BitFlexModel",
    "sample_bitflex",
    "simulate_bitflex",
]
