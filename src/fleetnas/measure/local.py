"""Real measurements on this machine with ONNX Runtime or PyTorch eager execution.

``onnxruntime:threads=1,batch=1,precision=fp32,opt=all`` exports each architecture's network to
ONNX once (cached, :mod:`fleetnas.measure.export`) and times it in fresh worker processes
(:mod:`fleetnas.measure.timing`); ``torch:threads=1,batch=1`` times the eager network itself.
Each setting is its own device (:mod:`fleetnas.measure.settings`). Latency is milliseconds per
batch (the median of all timed runs). Energy is offered only when a real meter (RAPL, NVML)
answers on this machine; it is never estimated.

Spec keys: ``threads``, ``batch``, ``precision`` (``fp32``/``int8``), ``opt`` (``disable``,
``basic``, ``extended``, ``all``) select the device; ``prefix`` names it (default ``local``);
the fields of :class:`~fleetnas.measure.timing.TimingConfig` (``repeats``, ``processes``,
``warmup``, ``retries``, ``cpus=0+1``, ``energy=1``, noise thresholds) set how it is measured.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.errors import InputError, MeasurementError
from fleetnas.measure.base import MEASURERS, MeasurementCost, Measurer, MeasureResult
from fleetnas.measure.energy import detect_meter
from fleetnas.measure.export import OPSET, export_onnx
from fleetnas.measure.settings import RuntimeSetting
from fleetnas.measure.timing import TimingConfig, TimingReport, time_models

if TYPE_CHECKING:
    from fleetnas.devices import Device
    from fleetnas.spaces import SearchSpace
    from fleetnas.store import Store

#: Per-value statistics stored next to the median (``noisy`` is 1 where every attempt was noisy).
EXTRA_STATS = ("p90", "iqr", "min", "noisy", "attempts")


class LocalRuntimeMeasurer(Measurer):
    """Times networks on this machine under one :class:`RuntimeSetting`."""

    statistic = "median"
    strict_identity = True

    def __init__(
        self,
        setting: RuntimeSetting,
        timing: TimingConfig | None = None,
        store: Store | None = None,
        device: Device | None = None,
        reuse: bool = True,
        device_prefix: str = "local",
    ) -> None:
        self.setting = setting
        self.timing = timing or TimingConfig()
        self.meter = detect_meter("auto") if self.timing.energy else None
        device = device or setting.device(prefix=device_prefix)
        super().__init__(device, store=store, reuse=reuse)
        self.method = setting.runtime
        real_energy = self.meter is not None and self.meter.is_real
        self.metrics = ("latency", "energy") if real_energy else ("latency",)
        #: Export facts of the last call: ``(architectures exported, taken from cache, seconds)``.
        self.last_export: tuple[int, int, float] = (0, 0, 0.0)
        self.last_report: TimingReport | None = None

    def prepare(self, space: SearchSpace, archs: np.ndarray) -> list[dict[str, Any]]:
        """Worker model entries (one per distinct architecture), exporting ONNX as needed."""
        models: list[dict[str, Any]] = []
        seen: set[str] = set()
        exported = cached = 0
        seconds = 0.0
        for arch in space.check(archs):
            key = space.arch_hash(arch)
            if key in seen:
                continue
            seen.add(key)
            if self.setting.runtime == "onnxruntime":
                ex = export_onnx(space, arch, self.setting.batch, self.setting.precision)
                exported += not ex.cached
                cached += ex.cached
                seconds += ex.seconds
                models.append({"key": key, "onnx": str(ex.path)})
            else:
                space.input_shape(arch, self.setting.batch)  # fails early if not runnable
                models.append({"key": key, "space": space.name, "arch": space.format(arch)})
        self.last_export = (exported, cached, seconds)
        return models

    def _measure(
        self,
        space: SearchSpace,
        archs: np.ndarray,
        metrics: Sequence[str],
        deadline: float | None = None,
        cancel: threading.Event | None = None,
    ) -> MeasureResult:
        models = self.prepare(space, archs)
        report = time_models(
            models,
            self.setting.runtime,
            self.setting.threads,
            self.setting.batch,
            self.setting.opt,
            self.timing,
            deadline=deadline,
            cancel=cancel,
        )
        self.last_report = report
        keys = [space.arch_hash(a) for a in archs]
        timings = [report.timings[k] for k in keys]
        lat_stats = {
            name: np.array([t.stats[name] for t in timings], dtype=float)
            for name in ("median", "p90", "iqr", "min")
        }
        stats_lat = {
            "p90": lat_stats["p90"],
            "iqr": lat_stats["iqr"],
            "min": lat_stats["min"],
            "noisy": np.array([float(t.noisy) for t in timings]),
            "attempts": np.array([float(t.attempts) for t in timings]),
            "n": np.array([int(t.stats["n"]) for t in timings], dtype=np.int64),
        }
        values: dict[str, np.ndarray] = {}
        units: dict[str, str] = {}
        stats: dict[str, dict[str, np.ndarray]] = {}
        for m in metrics:
            if m == "latency":
                values[m], units[m], stats[m] = lat_stats["median"], "ms", stats_lat
            elif m == "energy":
                vals = [t.energy_j for t in timings]
                if any(v is None for v in vals):
                    raise MeasurementError(f"no real energy meter answered on {self.device.name!r}")
                values[m] = np.array(vals, dtype=float) * 1e3
                units[m] = "mJ"
                stats[m] = {"n": np.full(len(archs), self.timing.processes, dtype=np.int64)}
        cost = MeasurementCost(measurements=len(models), device_seconds=report.device_seconds)
        return MeasureResult(
            archs=archs,
            values=values,
            units=units,
            cost=cost,
            is_estimate={m: False for m in metrics},
            stats=stats,
        )

    def measure_within(
        self,
        space: SearchSpace,
        archs: np.ndarray,
        metrics: Sequence[str],
        deadline: float | None,
        cancel: threading.Event | None = None,
    ) -> MeasureResult:
        """Measure without the store (as an agent does), stopping at ``deadline``
        (:func:`time.monotonic`) or when ``cancel`` is set."""
        archs = space.check(archs)
        missing = [m for m in metrics if m not in self.metrics]
        if missing:
            raise InputError(
                f"{self.device.name!r} cannot measure {', '.join(missing)}; it offers "
                f"{', '.join(self.metrics)}"
            )
        result = self._measure(space, archs, metrics, deadline=deadline, cancel=cancel)
        self.total_cost.add(result.cost)
        return result

    def identity(self) -> dict[str, Any]:
        """The runtime setting (and ONNX export scheme) on top of the device record."""
        return {
            **super().identity(),
            "setting": self.setting.to_dict(),
            "opset": OPSET if self.setting.runtime == "onnxruntime" else None,
        }

    def measure_onnx(self, model: bytes) -> MeasureResult:
        """Latency of a user's own ONNX model (its bytes) under this setting, timed like a
        space's designs (fresh processes, warm-up, repeats); not written to the store."""
        import os
        import tempfile

        from fleetnas.measure.modelfile import check_onnx_bytes

        if self.setting.runtime != "onnxruntime":
            raise InputError(
                f"setting {self.setting.slug!r} runs PyTorch networks, not ONNX model files; "
                "use onnxruntime[:threads=N,...]"
            )
        if self.setting.precision != "fp32":
            raise InputError(
                "an ONNX model file is timed as it is; precision=int8 quantizes a space's "
                "designs only (quantize the file yourself)"
            )
        check_onnx_bytes(model)
        fd, path = tempfile.mkstemp(suffix=".onnx")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(model)
            report = time_models(
                [{"key": "upload", "onnx": path}],
                "onnxruntime",
                self.setting.threads,
                self.setting.batch,
                self.setting.opt,
                self.timing,
            )
        finally:
            os.unlink(path)
        self.last_report = report
        t = report.timings["upload"]
        stats = {
            "p90": np.array([t.stats["p90"]]),
            "iqr": np.array([t.stats["iqr"]]),
            "min": np.array([t.stats["min"]]),
            "noisy": np.array([float(t.noisy)]),
            "attempts": np.array([float(t.attempts)]),
            "n": np.array([int(t.stats["n"])], dtype=np.int64),
        }
        result = MeasureResult(
            archs=np.zeros((1, 0), dtype=np.int64),
            values={"latency": np.array([t.stats["median"]], dtype=float)},
            units={"latency": "ms"},
            cost=MeasurementCost(measurements=1, device_seconds=report.device_seconds),
            is_estimate={"latency": False},
            stats={"latency": stats},
        )
        self.total_cost.add(result.cost)
        return result

    def info(self) -> dict[str, Any]:
        from fleetnas.store.hostinfo import host_info

        return {
            **super().info(),
            "setting": self.setting.to_dict(),
            "timing": self.timing.to_dict(),
            "opset": OPSET if self.setting.runtime == "onnxruntime" else None,
            "int8": "onnxruntime static QDQ, random-normal calibration"
            if self.setting.precision == "int8"
            else None,
            "energy_meter": self.meter.describe() if self.meter is not None else None,
            "workers": self.last_report.workers if self.last_report is not None else [],
            "host": host_info(),
            "fingerprint": self.device.fingerprint,
        }


def _factory(runtime: str):
    def make(
        arg: str = "",
        store: Store | None = None,
        device: Device | None = None,
        timing: TimingConfig | None = None,
        reuse: bool = True,
        **options: Any,
    ) -> LocalRuntimeMeasurer:
        setting, rest = RuntimeSetting.parse(runtime, arg)
        for k, v in options.items():
            rest.setdefault(k, str(v))
        prefix = rest.pop("prefix", "local")
        cfg = timing or TimingConfig.from_options(rest)
        if timing is not None and rest:
            raise InputError(
                f"give measuring options either in the spec or as timing=, not both "
                f"({', '.join(rest)})"
            )
        return LocalRuntimeMeasurer(
            setting, cfg, store=store, device=device, reuse=reuse, device_prefix=prefix
        )

    return make


MEASURERS.add("onnxruntime", _factory("onnxruntime"))
MEASURERS.add("torch", _factory("torch"))


def local_settings(
    threads: Sequence[int] = (1, 2),
    batches: Sequence[int] = (1, 8),
    precisions: Sequence[str] = ("fp32", "int8"),
    torch_threads: Sequence[int] = (1,),
) -> list[RuntimeSetting]:
    """The small real fleet of this machine: every ONNX Runtime combination plus torch."""
    out = [
        RuntimeSetting("onnxruntime", t, b, p) for t in threads for b in batches for p in precisions
    ]
    out += [RuntimeSetting("torch", t, 1, "fp32") for t in torch_threads]
    return out
