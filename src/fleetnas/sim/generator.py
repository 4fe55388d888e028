"""Synthetic devices: per-family parameter distributions, fleets, and fleets around real devices.

Each family draws its parameters independently and log-uniformly from the ranges in
:data:`FAMILY_PRIORS` (``precision`` and ``batch_size`` uniformly from their choices), then sets
``peak_gflops = cores * clock_ghz * flops_per_cycle * PRECISION_SPEEDUP[precision]`` so the spec
features agree with the pricing. What makes rankings flip between families:

- desktop GPUs have large per-layer overheads and need many parallel outputs (``knee`` 1e4-2e5)
  at batch 1, so latency follows the layer count; at batch 256 they become throughput-bound;
- CPUs (server, mobile, embedded) saturate with a few hundred outputs and follow FLOPs and bytes;
- a DSP/NPU runs dense and pointwise convolutions fast but depthwise ones and pooling at a few
  percent of peak;
- microcontrollers have tiny bandwidth and per-operator overheads of 0.05-2 ms.

The same ranges centre the priors of :func:`~fleetnas.sim.calibrate.calibrate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.sim.device import SimDevice
from fleetnas.sim.model import FIT_PARAMS, DeviceModel

#: Throughput multiplier of each precision over fp32 (wider SIMD / tensor units).
PRECISION_SPEEDUP = {"fp32": 1.0, "fp16": 2.0, "int16": 2.0, "int8": 4.0}

_R = tuple[float, float]

#: Parameter ranges per family: ``(low, high)`` drawn log-uniformly; ``precision`` and
#: ``batch_size`` are tuples of choices. ``flops_per_cycle`` is per core at fp32.
FAMILY_PRIORS: dict[str, dict[str, Any]] = {
    "desktop_gpu": {
        "cores": (1500, 10000), "clock_ghz": (1.2, 2), "flops_per_cycle": (2, 2),
        "mem_bandwidth_gbs": (200, 1000), "eff_mem": (0.5, 0.9), "memory_gb": (4, 24),
        "overhead_us": (5, 60), "knee": (3e4, 2e6), "fixed_ms": (0.1, 2),
        "eff_conv": (0.15, 0.6), "eff_dwconv": (0.03, 0.3), "eff_pwconv": (0.04, 0.4),
        "eff_pool": (0.005, 0.6), "eff_elementwise": (0.03, 0.2), "eff_fc": (0.05, 0.3),
        "static_power_w": (30, 90), "energy_pj_per_flop": (5, 25),
        "energy_pj_per_byte": (20, 80), "precision": ("fp32", "fp32", "fp16"),
        "batch_size": (1, 32, 256), "unfused_ops": (0.5, 2), "overlap": (0.5, 1),
    },
    "server_cpu": {
        "cores": (8, 32), "clock_ghz": (2, 3.5), "flops_per_cycle": (16, 64),
        "mem_bandwidth_gbs": (40, 200), "eff_mem": (0.5, 3), "memory_gb": (32, 512),
        "overhead_us": (3, 30), "knee": (1e3, 1e6), "fixed_ms": (0.05, 1),
        "eff_conv": (0.05, 0.5), "eff_dwconv": (0.05, 0.3), "eff_pwconv": (0.03, 0.3),
        "eff_pool": (0.01, 0.4), "eff_elementwise": (0.01, 0.1), "eff_fc": (0.05, 0.3),
        "static_power_w": (40, 120), "energy_pj_per_flop": (20, 80),
        "energy_pj_per_byte": (50, 200), "precision": ("fp32",),
        "batch_size": (1,), "unfused_ops": (0.3, 2), "overlap": (0.01, 0.1),
    },
    "desktop_cpu": {
        "cores": (4, 16), "clock_ghz": (2.5, 5), "flops_per_cycle": (16, 32),
        "mem_bandwidth_gbs": (25, 90), "eff_mem": (0.5, 3), "memory_gb": (8, 128),
        "overhead_us": (3, 30), "knee": (500, 200000), "fixed_ms": (0.05, 1),
        "eff_conv": (0.05, 0.5), "eff_dwconv": (0.05, 0.3), "eff_pwconv": (0.03, 0.3),
        "eff_pool": (0.01, 0.4), "eff_elementwise": (0.01, 0.1), "eff_fc": (0.05, 0.3),
        "static_power_w": (15, 60), "energy_pj_per_flop": (20, 80),
        "energy_pj_per_byte": (50, 200), "precision": ("fp32",),
        "batch_size": (1,), "unfused_ops": (0.3, 2), "overlap": (0.01, 0.1),
    },
    "mobile_cpu": {
        "cores": (4, 8), "clock_ghz": (1.5, 3), "flops_per_cycle": (8, 16),
        "mem_bandwidth_gbs": (8, 50), "eff_mem": (0.4, 2), "memory_gb": (2, 12),
        "overhead_us": (5, 60), "knee": (16, 512), "fixed_ms": (0.1, 2),
        "eff_conv": (0.04, 0.3), "eff_dwconv": (0.1, 0.5), "eff_pwconv": (0.01, 0.2),
        "eff_pool": (0.005, 0.2), "eff_elementwise": (0.02, 0.2), "eff_fc": (0.05, 0.3),
        "static_power_w": (0.3, 1.5), "energy_pj_per_flop": (5, 40),
        "energy_pj_per_byte": (50, 300), "precision": ("fp32", "fp32", "int8"),
        "batch_size": (1,), "unfused_ops": (0.01, 0.5), "overlap": (0.01, 0.1),
    },
    "mobile_gpu": {
        "cores": (64, 1024), "clock_ghz": (0.5, 1), "flops_per_cycle": (2, 4),
        "mem_bandwidth_gbs": (10, 50), "eff_mem": (0.4, 0.9), "memory_gb": (2, 12),
        "overhead_us": (20, 200), "knee": (1000, 100000), "fixed_ms": (0.5, 5),
        "eff_conv": (0.1, 0.5), "eff_dwconv": (0.05, 0.3), "eff_pwconv": (0.05, 0.5),
        "eff_pool": (0.01, 0.6), "eff_elementwise": (0.05, 0.3), "eff_fc": (0.02, 0.2),
        "static_power_w": (0.3, 1.5), "energy_pj_per_flop": (2, 15),
        "energy_pj_per_byte": (50, 300), "precision": ("fp16", "fp16", "fp32"),
        "batch_size": (1,), "unfused_ops": (0.01, 0.5), "overlap": (0.3, 1),
    },
    "npu": {
        "cores": (64, 1024), "clock_ghz": (0.5, 1.2), "flops_per_cycle": (2, 2),
        "mem_bandwidth_gbs": (10, 40), "eff_mem": (0.5, 1), "memory_gb": (2, 12),
        "overhead_us": (10, 150), "knee": (500, 20000), "fixed_ms": (0.2, 3),
        "eff_conv": (0.2, 0.8), "eff_dwconv": (0.003, 0.03), "eff_pwconv": (0.3, 0.9),
        "eff_pool": (0.005, 0.2), "eff_elementwise": (0.01, 0.1), "eff_fc": (0.02, 0.2),
        "static_power_w": (0.2, 1), "energy_pj_per_flop": (0.2, 2),
        "energy_pj_per_byte": (30, 200), "precision": ("int8", "int8", "fp16"),
        "batch_size": (1,), "unfused_ops": (0.01, 0.2), "overlap": (0.1, 1),
        "pwconv_vs_conv": (0.6, 1),
    },
    "microcontroller": {
        "cores": (1, 1), "clock_ghz": (0.05, 0.6), "flops_per_cycle": (0.5, 2),
        "mem_bandwidth_gbs": (0.05, 1), "eff_mem": (0.5, 1), "memory_gb": (0.0002, 0.002),
        "overhead_us": (50, 2000), "knee": (1, 4), "fixed_ms": (0.5, 20),
        "eff_conv": (0.3, 0.8), "eff_dwconv": (0.3, 0.9), "eff_pwconv": (0.3, 0.9),
        "eff_pool": (0.05, 1), "eff_elementwise": (0.1, 0.5), "eff_fc": (0.2, 0.8),
        "static_power_w": (0.005, 0.1), "energy_pj_per_flop": (5, 50),
        "energy_pj_per_byte": (5, 50), "precision": ("int8", "int8", "fp32"),
        "batch_size": (1,), "unfused_ops": (0.01, 0.5), "overlap": (0.01, 0.05),
    },
    "embedded_cpu": {
        "cores": (2, 4), "clock_ghz": (1, 2), "flops_per_cycle": (4, 16),
        "mem_bandwidth_gbs": (2, 8), "eff_mem": (0.4, 2), "memory_gb": (1, 8),
        "overhead_us": (1, 60), "knee": (8, 256), "fixed_ms": (0.05, 2),
        "eff_conv": (0.04, 0.3), "eff_dwconv": (0.1, 0.5), "eff_pwconv": (0.02, 0.2),
        "eff_pool": (0.005, 0.2), "eff_elementwise": (0.02, 0.3), "eff_fc": (0.05, 0.3),
        "static_power_w": (1, 3), "energy_pj_per_flop": (20, 100),
        "energy_pj_per_byte": (100, 500), "precision": ("fp32",),
        "batch_size": (1,), "unfused_ops": (0.01, 1), "overlap": (0.01, 0.1),
    },
    "asic": {
        "cores": (64, 1024), "clock_ghz": (0.2, 1), "flops_per_cycle": (2, 2),
        "mem_bandwidth_gbs": (2, 30), "eff_mem": (0.5, 1.5), "memory_gb": (0.001, 0.1),
        "overhead_us": (0.5, 20), "knee": (100, 20000), "fixed_ms": (0.01, 1),
        "eff_conv": (0.3, 0.9), "eff_dwconv": (0.01, 0.2), "eff_pwconv": (0.1, 0.7),
        "eff_pool": (0.005, 0.4), "eff_elementwise": (0.05, 0.5), "eff_fc": (0.05, 0.5),
        "static_power_w": (0.05, 0.5), "energy_pj_per_flop": (0.5, 5),
        "energy_pj_per_byte": (20, 200), "precision": ("int8", "fp16"),
        "batch_size": (1,), "unfused_ops": (0.01, 0.2), "overlap": (0.1, 1),
    },
    "fpga": {
        "cores": (256, 4096), "clock_ghz": (0.1, 0.4), "flops_per_cycle": (2, 2),
        "mem_bandwidth_gbs": (2, 20), "eff_mem": (0.5, 1.5), "memory_gb": (0.5, 8),
        "overhead_us": (0.5, 20), "knee": (100, 50000), "fixed_ms": (0.01, 1),
        "eff_conv": (0.3, 0.9), "eff_dwconv": (0.05, 0.5), "eff_pwconv": (0.05, 0.5),
        "eff_pool": (0.005, 0.4), "eff_elementwise": (0.05, 0.5), "eff_fc": (0.05, 0.5),
        "static_power_w": (1, 10), "energy_pj_per_flop": (2, 20),
        "energy_pj_per_byte": (20, 200), "precision": ("int8", "fp16"),
        "batch_size": (1,), "unfused_ops": (0.01, 0.2), "overlap": (0.1, 1),
    },
}  # fmt: skip

#: Families of :func:`generate_fleet` by default, with their shares.
DEFAULT_MIX: dict[str, float] = {
    "mobile_cpu": 0.25,
    "mobile_gpu": 0.15,
    "npu": 0.15,
    "desktop_gpu": 0.2,
    "microcontroller": 0.1,
    "embedded_cpu": 0.1,
    "server_cpu": 0.05,
}


#: Range of ``eff_pwconv / eff_conv``: at >= 1/9 a 1x1 convolution never computes longer than
#: the 3x3 one of the same shape (nine times its FLOPs), as in every measured HELP setting
#: (calibrated ratios 0.12-0.65). A family may set its own ``pwconv_vs_conv`` (an NPU runs 1x1
#: convolutions near its dense rate); ``FAMILY_PRIORS[...]["eff_pwconv"]`` only centres the
#: calibration prior.
PWCONV_VS_CONV: _R = (0.1, 1.0)
_NOT_DRAWN = ("precision", "batch_size", "eff_pwconv", "pwconv_vs_conv")


def _loguniform(rng: np.random.Generator, r: _R) -> float:
    lo, hi = float(r[0]), float(r[1])
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else lo


def sample_model(
    family: str, rng: np.random.Generator | int | None = None, **fixed: Any
) -> DeviceModel:
    """One device model of ``family`` drawn from :data:`FAMILY_PRIORS`; keywords in ``fixed``
    (e.g. ``batch_size=256``) override the draw."""
    if family not in FAMILY_PRIORS:
        raise InputError(
            f"no synthetic prior for device family {family!r}; expected one of "
            f"{', '.join(FAMILY_PRIORS)}"
        )
    rng = np.random.default_rng(rng)
    pri = FAMILY_PRIORS[family]
    precision = str(fixed.pop("precision", None) or rng.choice(pri["precision"]))
    batch = int(fixed.pop("batch_size", None) or rng.choice(pri["batch_size"]))
    draws = {k: _loguniform(rng, v) for k, v in pri.items() if k not in _NOT_DRAWN}
    pw_ratio = _loguniform(rng, pri.get("pwconv_vs_conv", PWCONV_VS_CONV))
    draws["eff_pwconv"] = min(1.0, draws["eff_conv"] * pw_ratio)
    cores = max(1, round(draws.pop("cores")))
    fpc = draws.pop("flops_per_cycle")
    peak = cores * draws["clock_ghz"] * fpc * PRECISION_SPEEDUP[precision]
    kw: dict[str, Any] = {
        **draws,
        "family": family,
        "cores": cores,
        "peak_gflops": peak,
        "precision": precision,
        "batch_size": batch,
    }
    kw.update(fixed)
    return DeviceModel(**kw)


def _normalize_mix(families: Sequence[str] | dict[str, float] | None) -> dict[str, float]:
    if families is None:
        mix = dict(DEFAULT_MIX)
    elif isinstance(families, dict):
        mix = {str(k): float(v) for k, v in families.items()}
    else:
        mix = dict.fromkeys(families, 1.0)
    for fam in mix:
        if fam not in FAMILY_PRIORS:
            raise InputError(
                f"generate_fleet: unknown family {fam!r}; expected some of "
                f"{', '.join(FAMILY_PRIORS)}"
            )
    total = sum(mix.values())
    if not mix or total <= 0:
        raise InputError("generate_fleet: families must name at least one family with weight > 0")
    return {k: v / total for k, v in mix.items()}


def generate_fleet(
    n: int,
    rng: np.random.Generator | int | None = None,
    families: Sequence[str] | dict[str, float] | None = None,
    around: Sequence[SimDevice | DeviceModel] | None = None,
    spread: float = 0.2,
    prefix: str = "sim",
) -> list[SimDevice]:
    """``n`` synthetic devices. Without ``around``: families in the given shares (a list means
    equal shares; default :data:`DEFAULT_MIX`), counts rounded so they sum to ``n``, parameters
    from :func:`sample_model`. With ``around``: :func:`fleet_around` those devices."""
    if n < 0:
        raise InputError(f"generate_fleet: n must be >= 0, got {n}")
    rng = np.random.default_rng(rng)
    if around is not None:
        return fleet_around(around, n, rng, spread=spread, prefix=prefix)
    mix = _normalize_mix(families)
    fams = list(mix)
    counts = np.floor(np.array([mix[f] for f in fams]) * n).astype(int)
    short = n - counts.sum()
    order = np.argsort(-(np.array([mix[f] for f in fams]) * n - counts), kind="stable")
    counts[order[:short]] += 1
    out: list[SimDevice] = []
    for fam, c in zip(fams, counts, strict=True):
        for _ in range(c):
            out.append(SimDevice(f"{prefix}-{fam}-{len(out):05d}", sample_model(fam, rng)))
    return out


#: Parameters :func:`fleet_around` perturbs (log-normally, independently).
PERTURBED = (*FIT_PARAMS, "static_power_w", "energy_pj_per_flop", "energy_pj_per_byte")
#: Fractions that stay at most 1 after perturbation.
_AT_MOST_ONE = (*(p for p in FIT_PARAMS if p.startswith("eff_") and p != "eff_mem"), "overlap")


def fleet_around(
    devices: Sequence[SimDevice | DeviceModel],
    n: int,
    rng: np.random.Generator | int | None = None,
    spread: float = 0.2,
    prefix: str = "sim",
) -> list[SimDevice]:
    """``n`` devices drawn around calibrated ones: device ``i`` starts from ``devices[i % k]`` and
    multiplies every pricing and energy parameter by ``exp(N(0, spread**2))``; family, batch and
    precision are kept; ``clock_ghz`` follows the change of peak so the specs stay consistent."""
    if not devices:
        raise InputError("fleet_around needs at least one device to draw around")
    if spread < 0:
        raise InputError(f"fleet_around: spread must be >= 0, got {spread}")
    rng = np.random.default_rng(rng)
    bases = [
        (d.name, d.model) if isinstance(d, SimDevice) else (f"m{j}", d)
        for j, d in enumerate(devices)
    ]
    out: list[SimDevice] = []
    for i in range(n):
        name, base = bases[i % len(bases)]
        ratio = dict(zip(PERTURBED, np.exp(rng.normal(0.0, spread, len(PERTURBED))), strict=True))
        changes: dict[str, Any] = {p: getattr(base, p) * float(r) for p, r in ratio.items()}
        for p in _AT_MOST_ONE:
            changes[p] = min(changes[p], max(1.0, getattr(base, p)))
        changes["clock_ghz"] = base.clock_ghz * float(ratio["peak_gflops"])
        out.append(SimDevice(f"{prefix}-{name}-{i:05d}", base.with_(**changes)))
    return out
