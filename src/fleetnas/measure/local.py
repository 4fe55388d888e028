"""Real measurements on this machine with ONNX Runtime, LiteRT, OpenVINO or PyTorch eager.

``onnxruntime:threads=1,batch=1,precision=fp32,opt=all`` exports each architecture's network to
ONNX once (cached, :mod:`fleetnas.measure.export`) and times it in fresh worker processes
(:mod:`fleetnas.measure.timing`); ``litert:threads=1,precision=fp32|fp16|int8`` runs the
LiteRT interpreter (XNNPACK) on a ``litert-torch`` conversion and
``openvino:threads=1,precision=fp32|int8,hint=latency`` the OpenVINO CPU plugin on the ONNX
export (int8 through NNCF), both converted once and cached (:mod:`fleetnas.measure.convert`);
``executorch:threads=1`` runs an ExecuTorch program lowered to XNNPACK (fp32);
``torch:threads=1,batch=1`` times the eager network itself. Each setting, under its measurement
protocol, is its own device (:mod:`fleetnas.measure.settings`). Latency is milliseconds per
batch (the median of all timed runs). Energy is offered only when a real meter (RAPL, NVML)
answers on this machine; it is never estimated. A design that fails to convert, load or run is
*unmeasurable*: its value is NaN, the runtime's message is in
:attr:`~fleetnas.measure.base.MeasureResult.failures` and the store, and the others go on.

Spec keys: ``threads``, ``batch``, ``precision``, ``opt`` (ONNX Runtime: ``disable``,
``basic``, ``extended``, ``all``), ``quant`` (ONNX Runtime int8: ``static``/``dynamic``),
``hint`` (OpenVINO: ``latency``/``throughput``) select the device; ``prefix`` names it (default
``local``); the fields of :class:`~fleetnas.measure.timing.TimingConfig` (``repeats``,
``processes``, ``warmup``, ``retries``, ``cpus=0+1``, ``pin=0``, ``energy=1``, noise thresholds)
set the protocol it is measured under.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.errors import InputError, MeasurementError
from fleetnas.measure.base import MEASURERS, MeasurementCost, Measurer, MeasureResult
from fleetnas.measure.convert import convert_many
from fleetnas.measure.energy import detect_meter
from fleetnas.measure.export import OPSET, export_onnx
from fleetnas.measure.settings import RuntimeSetting
from fleetnas.measure.timing import TimingConfig, TimingReport, time_models

if TYPE_CHECKING:
    from fleetnas.devices import Device
    from fleetnas.spaces import SearchSpace
    from fleetnas.store import Store

#: Runtimes whose models :mod:`fleetnas.measure.convert` makes, and the worker entry's field.
CONVERTED = {"litert": "tflite", "openvino": "onnx", "executorch": "pte"}
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
        device = device or setting.device(prefix=device_prefix, timing=self.timing)
        wanted = self.timing.protocol()
        if device.features.get("protocol", wanted) != wanted:
            raise InputError(
                f"device {device.name!r} was recorded under the protocol "
                f"{device.features['protocol']!r}, not {wanted!r}; measure it under its own "
                "protocol or under another device name"
            )
        super().__init__(device, store=store, reuse=reuse)
        self.method = setting.runtime
        real_energy = self.meter is not None and self.meter.is_real
        self.metrics = ("latency", "energy") if real_energy else ("latency",)
        #: Export facts of the last call: ``(architectures exported, taken from cache, seconds)``.
        self.last_export: tuple[int, int, float] = (0, 0, 0.0)
        self.last_report: TimingReport | None = None

    def prepare(
        self, space: SearchSpace, archs: np.ndarray
    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """Worker model entries (one per distinct architecture), exporting or converting models
        as needed, and the designs that could not be converted (arch hash -> message)."""
        models: list[dict[str, Any]] = []
        failures: dict[str, str] = {}
        seen: set[str] = set()
        exported = cached = 0
        seconds = 0.0
        s = self.setting
        archs = space.check(archs)
        keys = [space.arch_hash(a) for a in archs]
        first = [i for i, k in enumerate(keys) if not (k in seen or seen.add(k))]
        if s.runtime in CONVERTED:
            t0 = time.perf_counter()
            done = convert_many(s.runtime, space, archs[first], s.batch, s.precision)
            seconds = time.perf_counter() - t0
            field = CONVERTED[s.runtime]
            for i, c in zip(first, done, strict=True):
                if c.path is None:
                    failures[keys[i]] = c.error
                    continue
                exported += not c.cached
                cached += c.cached
                name = "ir" if c.path.suffix == ".xml" else field
                models.append({"key": keys[i], name: str(c.path)})
        for i in first if s.runtime in ("onnxruntime", "torch") else ():
            arch, key = archs[i], keys[i]
            if s.runtime == "onnxruntime":
                try:
                    ex = export_onnx(space, arch, s.batch, self._onnx_precision())
                except MeasurementError as exc:
                    failures[key] = str(exc)
                    continue
                exported += not ex.cached
                cached += ex.cached
                seconds += ex.seconds
                models.append({"key": key, "onnx": str(ex.path)})
            else:
                space.input_shape(arch, s.batch)  # fails early if not runnable
                models.append({"key": key, "space": space.name, "arch": space.format(arch)})
        self.last_export = (exported, cached, seconds)
        return models, failures

    def _onnx_precision(self) -> str:
        s = self.setting
        return "int8dyn" if (s.precision, s.quant) == ("int8", "dynamic") else s.precision

    def _measure(
        self,
        space: SearchSpace,
        archs: np.ndarray,
        metrics: Sequence[str],
        deadline: float | None = None,
        cancel: threading.Event | None = None,
    ) -> MeasureResult:
        models, failures = self.prepare(space, archs)
        report = time_models(
            models,
            self.setting.runtime,
            self.setting.threads,
            self.setting.batch,
            self.setting.opt,
            self.timing,
            deadline=deadline,
            cancel=cancel,
            keep_going=True,
            hint=self.setting.hint,
        )
        self.last_report = report
        failures.update(report.failures)
        keys = [space.arch_hash(a) for a in archs]
        timings = [report.timings.get(k) for k in keys]

        def column(get: Any) -> np.ndarray:
            return np.array([np.nan if t is None else get(t) for t in timings], dtype=float)

        lat_stats = {
            name: column(lambda t, name=name: t.stats[name])
            for name in ("median", "p90", "iqr", "min")
        }
        stats_lat = {
            "p90": lat_stats["p90"],
            "iqr": lat_stats["iqr"],
            "min": lat_stats["min"],
            "session_spread": column(lambda t: t.session_spread),
            "noisy": column(lambda t: float(t.noisy)),
            "attempts": column(lambda t: float(t.attempts)),
            "n": np.array([0 if t is None else int(t.stats["n"]) for t in timings], np.int64),
        }
        values: dict[str, np.ndarray] = {}
        units: dict[str, str] = {}
        stats: dict[str, dict[str, np.ndarray]] = {}
        for m in metrics:
            if m == "latency":
                values[m], units[m], stats[m] = lat_stats["median"], "ms", stats_lat
            elif m == "energy":
                vals = [t.energy_j for t in timings if t is not None]
                if any(v is None for v in vals):
                    raise MeasurementError(f"no real energy meter answered on {self.device.name!r}")
                values[m] = column(lambda t: t.energy_j) * 1e3
                units[m] = "mJ"
                stats[m] = {"n": np.full(len(archs), self.timing.processes, dtype=np.int64)}
        # a failed attempt used device time but gave no value: it is not a measurement
        cost = MeasurementCost(
            measurements=len(models) - len(report.failures), device_seconds=report.device_seconds
        )
        return MeasureResult(
            archs=archs,
            values=values,
            units=units,
            cost=cost,
            is_estimate={m: False for m in metrics},
            stats=stats,
            failures={i: failures[k] for i, k in enumerate(keys) if k in failures},
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
        if result.failures:
            i, why = next(iter(result.failures.items()))
            raise MeasurementError(
                f"{len(result.failures)} design(s) could not be measured on "
                f"{self.device.name!r}; {space.format(archs[i])!r}: {why}"
            )
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
            "opset": OPSET if self.setting.runtime in ("onnxruntime", "openvino") else None,
            "conversion": self.device.features.get("quantization") or None,
            "protocol": self.timing.protocol(),
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
MEASURERS.add("litert", _factory("litert"))
MEASURERS.add("openvino", _factory("openvino"))
MEASURERS.add("executorch", _factory("executorch"))


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
