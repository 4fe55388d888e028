"""The analytical device model: a small parameter vector that prices layers.

A layer of kind ``k`` run at batch ``b`` on device ``d`` takes (milliseconds)::

    t_compute = b * flops / (peak * eff[k] * util),   util = b*out / (b*out + knee)
    t_memory  = (b * activation_elems + weight_elems) * bytes_per_elem / (bandwidth * eff_mem)
    roof      = (t_compute**P + t_memory**P) ** (1/P)                    (smooth roofline)
    t_layer   = overhead + roof - overlap * min(overhead, roof)

``util`` is the fraction of the device's parallel lanes a layer can fill: small feature maps
(few output elements) leave most of a GPU idle while a microcontroller is always full.
``overlap`` is how much of the per-layer dispatch overhead hides behind the device's work
(asynchronous launches: near 1 on GPUs, where a small layer costs ``max(overhead, roof)``; near
0 on CPUs, where they add up). Each convolution is followed by ``unfused_ops`` elementwise
passes over its output (batch norm, activation) that the runtime leaves unfused, each priced like
a layer with a read and a write of the output: about 2 for eager PyTorch, near 0 for TFLite or
TensorRT (the spaces' layer lists assume full fusion, so this is where the runtime shows).
A network takes ``fixed + sum(t_layer)`` over its layers (branches of a cell run one after
another, as they do on edge runtimes). Energy (millijoules) is dynamic energy per FLOP and per
byte moved plus static power times latency.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.spaces.layers import LAYER_KINDS

#: Bytes per tensor element for each supported precision.
PRECISIONS: dict[str, int] = {"fp32": 4, "fp16": 2, "int16": 2, "int8": 1}

#: Exponent of the smooth roofline (``max`` is the limit ``P -> inf``; at 4 the blend is at most
#: 19 % above the max, where compute and memory time are equal).
ROOFLINE_P = 4.0

#: Parameters the calibration fits (positive, fitted in log space); the rest are fixed.
FIT_PARAMS = (
    "peak_gflops",
    "mem_bandwidth_gbs",
    "overhead_us",
    "knee",
    "fixed_ms",
    "unfused_ops",
    "overlap",
    "eff_conv",
    "eff_dwconv",
    "eff_pwconv",
    "eff_pool",
    "eff_elementwise",
    "eff_fc",
    "eff_mem",
)

#: The catalog's hardware ``kind`` of each family.
FAMILY_KIND = {
    "desktop_gpu": "gpu",
    "server_cpu": "cpu",
    "desktop_cpu": "cpu",
    "embedded_cpu": "cpu",
    "mobile_cpu": "mobile",
    "mobile_gpu": "mobile",
    "npu": "npu",
    "asic": "asic",
    "fpga": "fpga",
    "microcontroller": "mcu",
}

_EFF = tuple(f"eff_{k}" for k in LAYER_KINDS)


@dataclass(frozen=True)
class DeviceModel:
    """Parameters of one simulated device setting (hardware plus batch size and precision).

    Throughputs are at ``precision``; ``eff_<kind>`` is the fraction of ``peak_gflops`` that a
    layer class reaches when the device is fully utilized (a DSP/NPU has a tiny ``eff_dwconv``).
    ``unfused_ops`` counts elementwise passes per convolution left unfused by the runtime and
    ``overlap`` (0..1) the share of the per-layer overhead hidden behind the device's work.
    ``eff_mem`` is the fraction of the DRAM bandwidth a layer sees (above 1 when its tensors
    stay in cache). ``cores``, ``clock_ghz`` and ``memory_gb`` are descriptive specs kept
    consistent with the pricing parameters by the generator
    (``peak_gflops = cores * clock_ghz * flops_per_cycle``).
    """

    family: str
    peak_gflops: float
    mem_bandwidth_gbs: float
    overhead_us: float
    knee: float
    fixed_ms: float = 0.0
    unfused_ops: float = 0.0
    overlap: float = 0.0
    eff_conv: float = 0.6
    eff_dwconv: float = 0.3
    eff_pwconv: float = 0.6
    eff_pool: float = 0.2
    eff_elementwise: float = 0.2
    eff_fc: float = 0.3
    eff_mem: float = 0.7
    batch_size: int = 1
    precision: str = "fp32"
    static_power_w: float = 1.0
    energy_pj_per_flop: float = 10.0
    energy_pj_per_byte: float = 100.0
    cores: int = 1
    clock_ghz: float = 1.0
    memory_gb: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise InputError(
                f"device model precision {self.precision!r} is not one of {', '.join(PRECISIONS)}"
            )
        if int(self.batch_size) < 1:
            raise InputError(f"device model batch_size must be >= 1, got {self.batch_size}")
        for name in (*FIT_PARAMS, "static_power_w", "energy_pj_per_flop", "energy_pj_per_byte"):
            v = getattr(self, name)
            ok = v >= 0 if name in ("fixed_ms", "unfused_ops", "overlap") else v > 0
            if name == "overlap":
                ok = ok and v <= 1
            if not (ok and math.isfinite(v)):
                raise InputError(f"device model parameter {name} must be positive, got {v!r}")

    # ---- derived quantities ------------------------------------------------------------------
    @property
    def bytes_per_elem(self) -> int:
        return PRECISIONS[self.precision]

    @property
    def efficiencies(self) -> np.ndarray:
        """Six float array: ``eff_<kind>`` in :data:`~fleetnas.spaces.layers.LAYER_KINDS` order."""
        return np.array([getattr(self, name) for name in _EFF], dtype=float)

    @property
    def tdp_w(self) -> float:
        """Power when compute and memory run flat out (static plus dynamic at peak)."""
        dyn = self.peak_gflops * self.energy_pj_per_flop + (
            self.mem_bandwidth_gbs * self.energy_pj_per_byte
        )
        return self.static_power_w + dyn * 1e-3

    def to_features(self) -> dict[str, Any]:
        """Spec features under the device catalog's keys (no hidden pricing parameters);
        ``simulated`` is true as for the catalog's simulator-backed columns."""
        return {
            "peak_gflops": _r(self.peak_gflops),
            "mem_bandwidth_gbs": _r(self.mem_bandwidth_gbs),
            "cores": int(self.cores),
            "clock_ghz": _r(self.clock_ghz),
            "memory_gb": _r(self.memory_gb),
            "tdp_w": _r(self.tdp_w),
            "batch_size": int(self.batch_size),
            "precision": self.precision,
            "kind": FAMILY_KIND.get(self.family, "other"),
            "simulated": True,
        }

    # ---- (de)serialization -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DeviceModel:
        known = {f.name: f for f in fields(cls) if f.name != "extra"}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise InputError(
                f"device model: unknown parameter(s) {', '.join(unknown)}; expected some of "
                f"{', '.join(known)}"
            )
        missing = [n for n in ("family", *FIT_PARAMS[:4]) if n not in d]
        if missing:
            raise InputError(f"device model: missing parameter(s) {', '.join(missing)}")
        kw: dict[str, Any] = {}
        for name, value in d.items():
            typ = known[name].type
            try:
                if typ in ("str", str):
                    kw[name] = str(value)
                elif typ in ("int", int):
                    kw[name] = int(float(value))
                else:
                    kw[name] = float(value)
            except (TypeError, ValueError):
                raise InputError(
                    f"device model parameter {name}: expected a number, got {value!r}"
                ) from None
        return cls(**kw)

    def to_spec(self) -> str:
        """``key=value,...`` (floats in round-trip precision), the argument of ``sim:``."""
        return ",".join(
            f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}" for k, v in self.to_dict().items()
        )

    @classmethod
    def from_spec(cls, arg: str) -> DeviceModel:
        from fleetnas.measure.spec import parse_options

        return cls.from_dict(parse_options(arg, "sim measurer spec"))

    def with_(self, **changes: Any) -> DeviceModel:
        """A copy with some parameters changed (validated)."""
        return replace(self, **changes)


def _r(x: float) -> float:
    return float(f"{x:.4g}")


@dataclass(frozen=True)
class ModelArrays:
    """``m`` device models as arrays, for vectorized pricing: each field an ``m`` float array,
    ``eff`` an ``m x 6`` array in :data:`LAYER_KINDS` order."""

    peak: np.ndarray
    bandwidth: np.ndarray
    overhead_ms: np.ndarray
    knee: np.ndarray
    fixed_ms: np.ndarray
    unfused: np.ndarray
    overlap: np.ndarray
    eff: np.ndarray
    batch: np.ndarray
    bytes_per_elem: np.ndarray
    static_w: np.ndarray
    pj_flop: np.ndarray
    pj_byte: np.ndarray

    @classmethod
    def of(cls, models: DeviceModel | list[DeviceModel] | tuple[DeviceModel, ...]) -> ModelArrays:
        ms = [models] if isinstance(models, DeviceModel) else list(models)

        def col(name: str) -> np.ndarray:
            return np.array([float(getattr(m, name)) for m in ms], dtype=float)

        return cls(
            peak=col("peak_gflops"),
            bandwidth=col("mem_bandwidth_gbs") * col("eff_mem"),
            overhead_ms=col("overhead_us") * 1e-3,
            knee=col("knee"),
            fixed_ms=col("fixed_ms"),
            unfused=col("unfused_ops"),
            overlap=col("overlap"),
            eff=np.array([m.efficiencies for m in ms], dtype=float).reshape(len(ms), 6),
            batch=col("batch_size"),
            bytes_per_elem=np.array([m.bytes_per_elem for m in ms], dtype=float),
            static_w=col("static_power_w"),
            pj_flop=col("energy_pj_per_flop"),
            pj_byte=col("energy_pj_per_byte"),
        )

    def __len__(self) -> int:
        return len(self.peak)
